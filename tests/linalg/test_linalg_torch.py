"""Parity with ``torch.linalg`` in float64: values, and gradients of a weighted sum of the outputs.
The factors of qr, svd and eigh have a sign per column that is a convention (LAPACK's, which may
differ between builds): they are compared through their squares, and the gradients are those of
the weighted sum of the squares, which does not depend on the signs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from linalg_cases import BATCHES, general, plain, rng, spd, triangular, weights

import semirad as sr

torch = pytest.importorskip("torch")
L = sr.linalg
TL = torch.linalg


def _case(name, batch):
    """(inputs, semirad fn -> parts, torch fn -> parts, indices of sign-ambiguous parts)."""
    r = rng(hash((name, batch)) % 2**32)
    if name == "inv":
        return [general(r, batch)], lambda a: [L.inv(a)], lambda a: [TL.inv(a)], ()
    if name == "solve":
        return ([general(r, batch), r.standard_normal(batch + (3, 2))], lambda a, b: [L.solve(a, b)],
                lambda a, b: [TL.solve(a, b)], ())  # fmt: skip
    if name == "solve_vector":  # numpy 2 / torch: a 1-D B is one vector
        return ([general(r, batch), r.standard_normal(3)], lambda a, b: [L.solve(a, b)],
                lambda a, b: [TL.solve(a, b)], ())  # fmt: skip
    if name == "solve_triangular":
        return ([triangular(r, batch), r.standard_normal(batch + (3, 2))],
                lambda a, b: [L.solve_triangular(a, b, upper=False)],
                lambda a, b: [TL.solve_triangular(a, b, upper=False)], ())  # fmt: skip
    if name == "solve_triangular_unit_right":  # the other triangle is read by neither (not zeroed here)
        return ([general(r, batch), r.standard_normal(batch + (2, 3))],
                lambda a, b: [L.solve_triangular(a, b, upper=True, left=False, unitriangular=True)],
                lambda a, b: [TL.solve_triangular(a, b, upper=True, left=False, unitriangular=True)], ())  # fmt: skip
    if name == "det":
        return [general(r, batch)], lambda a: [L.det(a)], lambda a: [TL.det(a)], ()
    if name == "det_negative":
        a = general(r, batch)
        a[..., 0, :] *= -1
        return [a], lambda a: [L.det(a)], lambda a: [TL.det(a)], ()
    if name == "slogdet":
        return [plain(r, batch)], lambda a: list(L.slogdet(a)), lambda a: list(TL.slogdet(a)), ()
    if name == "cholesky":
        return [spd(r, batch)], lambda a: [L.cholesky(a)], lambda a: [TL.cholesky(a)], ()
    if name == "cholesky_upper":
        return [spd(r, batch)], lambda a: [L.cholesky(a, upper=True)], lambda a: [TL.cholesky(a, upper=True)], ()
    if name == "qr_tall":
        return [plain(r, batch, 4, 3)], lambda a: list(L.qr(a)), lambda a: list(TL.qr(a)), (0, 1)
    if name == "qr_square":
        return [plain(r, batch)], lambda a: list(L.qr(a)), lambda a: list(TL.qr(a)), (0, 1)
    if name == "svd_tall":
        return ([plain(r, batch, 4, 3)], lambda a: list(L.svd(a, full_matrices=False)),
                lambda a: list(TL.svd(a, full_matrices=False)), (0, 2))  # fmt: skip
    if name == "svd_wide":
        return ([plain(r, batch, 2, 4)], lambda a: list(L.svd(a, full_matrices=False)),
                lambda a: list(TL.svd(a, full_matrices=False)), (0, 2))  # fmt: skip
    if name == "svd_square":
        return [plain(r, batch)], lambda a: list(L.svd(a)), lambda a: list(TL.svd(a)), (0, 2)
    if name == "svdvals":
        return [plain(r, batch, 3, 4)], lambda a: [L.svdvals(a)], lambda a: [TL.svdvals(a)], ()
    if name == "eigh":
        return [spd(r, batch)], lambda a: list(L.eigh(a)), lambda a: list(TL.eigh(a)), (1,)
    if name == "eigvalsh":
        return [spd(r, batch)], lambda a: [L.eigvalsh(a)], lambda a: [TL.eigvalsh(a)], ()
    if name == "matrix_power":
        return ([plain(r, batch)], lambda a: [L.matrix_power(a, 5)],
                lambda a: [TL.matrix_power(a, 5)], ())  # fmt: skip
    if name == "matrix_power_negative":
        return ([general(r, batch)], lambda a: [L.matrix_power(a, -2)],
                lambda a: [TL.matrix_power(a, -2)], ())  # fmt: skip
    raise KeyError(name)


NAMES = ["inv", "solve", "solve_vector", "solve_triangular", "solve_triangular_unit_right", "det", "det_negative",
         "slogdet", "cholesky", "cholesky_upper", "qr_tall", "qr_square", "svd_tall", "svd_wide", "svd_square",
         "svdvals", "eigh", "eigvalsh", "matrix_power", "matrix_power_negative"]  # fmt: skip


def _square_ambiguous(parts, ambiguous):
    return [p * p if k in ambiguous else p for k, p in enumerate(parts)]


@pytest.mark.parametrize("batch", BATCHES, ids=str)
@pytest.mark.parametrize("name", NAMES)
def test_values_and_gradients_match_torch(name, batch):
    if name == "solve_vector" and batch:
        pytest.skip("a 1-D B goes with an unbatched A")
    arrays, ours_fn, theirs_fn, ambiguous = _case(name, batch)
    xs = [sr.tensor(a, requires_grad=True) for a in arrays]
    txs = [torch.tensor(a, requires_grad=True) for a in arrays]
    ours = _square_ambiguous(ours_fn(*xs), ambiguous)
    theirs = _square_ambiguous(theirs_fn(*txs), ambiguous)
    assert len(ours) == len(theirs)
    for o, t in zip(ours, theirs):
        assert o.shape == tuple(t.shape) and o.dtype == np.float64
        np.testing.assert_allclose(o.numpy(), t.detach().numpy(), rtol=1e-9, atol=1e-11, err_msg=name)
    ws = weights(len(name), *[o.shape for o in ours])
    differentiable = [k for k, t in enumerate(theirs) if t.requires_grad]
    loss = sum((ours[k] * ws[k]).sum() for k in differentiable)
    their_loss = sum((theirs[k] * torch.tensor(ws[k])).sum() for k in differentiable)
    grads = sr.grad(loss, xs)
    expected = torch.autograd.grad(their_loss, txs)
    for i, (g, e) in enumerate(zip(grads, expected)):
        np.testing.assert_allclose(g, e.numpy(), rtol=1e-8, atol=1e-10, err_msg=f"{name}: input {i}")


VECTOR_ORDS = [None, 1, 2, math.inf, -math.inf, 3, 0.5, -1]
MATRIX_ORDS = ["fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf]


@pytest.mark.parametrize("ord", VECTOR_ORDS, ids=str)
def test_vector_norms_match_torch(ord):  # noqa: A002
    x = rng(3).standard_normal((2, 5))
    cases = [({"axis": 1}, {"dim": 1}), ({"axis": 0, "keepdims": True}, {"dim": 0, "keepdim": True})]
    for ours_kw, their_kw in cases:
        t = sr.tensor(x, requires_grad=True)
        tt = torch.tensor(x, requires_grad=True)
        ours = L.norm(t, ord, **ours_kw)
        theirs = TL.norm(tt, ord, **their_kw) if ord is not None else TL.norm(tt, **their_kw)
        np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(ours.numpy(), np.linalg.norm(x, ord, **ours_kw), rtol=1e-12)
        w = weights(1, ours.shape)[0]
        g = sr.grad((ours * w).sum(), [t])[0]
        (e,) = torch.autograd.grad((theirs * torch.tensor(w)).sum(), [tt])
        np.testing.assert_allclose(g, e.numpy(), rtol=1e-9, atol=1e-12, err_msg=f"ord={ord}")


@pytest.mark.parametrize("ord", MATRIX_ORDS, ids=str)
def test_matrix_norms_match_torch(ord):  # noqa: A002
    x = rng(4).standard_normal((2, 3, 4))
    for axis, keepdims in [((1, 2), False), ((2, 0), True)]:
        t = sr.tensor(x, requires_grad=True)
        tt = torch.tensor(x, requires_grad=True)
        ours = L.norm(t, ord, axis=axis, keepdims=keepdims)
        theirs = TL.norm(tt, ord, dim=axis, keepdim=keepdims)
        np.testing.assert_allclose(ours.numpy(), np.linalg.norm(x, ord, axis=axis, keepdims=keepdims), rtol=1e-12)
        np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-12)
        w = weights(2, ours.shape)[0]
        g = sr.grad((ours * w).sum(), [t])[0]
        (e,) = torch.autograd.grad((theirs * torch.tensor(w)).sum(), [tt])
        np.testing.assert_allclose(g, e.numpy(), rtol=1e-9, atol=1e-12, err_msg=f"ord={ord}, axis={axis}")


def test_norm_defaults_match_numpy():
    x = rng(5).standard_normal((3, 4))
    for kw in [{}, {"ord": "fro"}, {"ord": 1}, {"ord": "nuc"}, {"axis": 1}, {"axis": (0, 1), "ord": 2}]:
        np.testing.assert_allclose(L.norm(sr.tensor(x), **kw).numpy(), np.linalg.norm(x, **kw), rtol=1e-12)
    np.testing.assert_allclose(L.norm(sr.tensor(x[0]), ord=1).numpy(), np.linalg.norm(x[0], 1), rtol=1e-12)
    np.testing.assert_allclose(L.vector_norm(sr.tensor(x), 0).numpy(), 12.0)


@pytest.mark.parametrize(
    "method, args, data",
    [("trace", (), (3, 3)), ("trace", (), (2, 4)), ("diagonal", (), (3, 4)), ("diagonal", (1,), (3, 4)),
     ("diagonal", (-1, 1, 2), (2, 3, 4)), ("diagonal", (0, -1, 0), (2, 3, 4)), ("outer", ("vec",), (3,))],
)  # fmt: skip
def test_methods_match_torch(method, args, data):
    x = rng(6).standard_normal(data)
    other = rng(7).standard_normal(4)
    t, tt = sr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ours_args = [sr.tensor(other, requires_grad=True) if a == "vec" else a for a in args]
    their_args = [torch.tensor(other, requires_grad=True) if a == "vec" else a for a in args]
    ours, theirs = getattr(t, method)(*ours_args), getattr(tt, method)(*their_args)
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=0, atol=0)
    w = weights(3, ours.shape)[0]
    leaves = [t] + [a for a in ours_args if isinstance(a, sr.Tensor)]
    their_leaves = [tt] + [a for a in their_args if isinstance(a, torch.Tensor)]
    expected = torch.autograd.grad((theirs * torch.tensor(w)).sum(), their_leaves)
    for g, e in zip(sr.grad((ours * w).sum(), leaves), expected):
        np.testing.assert_allclose(g, e.numpy(), rtol=1e-12)


def test_linalg_trace_diagonal_outer_match_numpy():
    x = rng(8).standard_normal((2, 3, 4))
    for offset in (0, 1, -2):
        np.testing.assert_array_equal(L.diagonal(sr.tensor(x), offset).numpy(), np.linalg.diagonal(x, offset=offset))
        np.testing.assert_allclose(L.trace(sr.tensor(x), offset).numpy(), np.linalg.trace(x, offset=offset))
    a, b = x[0, 0], x[1, :, 1]
    np.testing.assert_array_equal(L.outer(sr.tensor(a), sr.tensor(b)).numpy(), np.linalg.outer(a, b))
