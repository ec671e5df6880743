"""Every semiring on the linear-algebra ops: the per-op oracle (the op's dense Jacobian, read off
SumProduct with one-hot seeds, contracted in each semiring), a trace through ``inv`` whose edge is
the exact partial, the whole-graph brute force on small composites, and the limit of the dense rule."""

from __future__ import annotations

import numpy as np
import pytest
from linalg_cases import general, plain, rng, spd

import semirad as sr
from semirad.ops import linalg as OL
from semirad.ops.core import apply
from semirad.semirings import Count, KBest, MaxAbsProduct, SumAbs
from semirad.testing import Reach, brute_force, check_op, check_paths

L = sr.linalg
R = rng(11)

#: one op each, applied directly (the packed output of qr/svd/eigh included), so that check_op also
#: checks MaxAbsProduct's backpointers and one-edge paths
OPS = {
    "inv": (lambda a: L.inv(a), [general(R, (2,))]),
    "solve": (lambda a, b: apply(OL.SOLVE, a, b), [general(R, (2,)), R.standard_normal((2, 3, 2))]),
    "solve_triangular": (lambda a, b: apply(OL.SOLVE_TRIANGULAR, a, b, upper=False, unit=False),
                         [general(R, (2,)), R.standard_normal((2, 3, 2))]),
    "solve_triangular_unit": (lambda a, b: apply(OL.SOLVE_TRIANGULAR, a, b, upper=True, unit=True),
                              [general(R, ()), R.standard_normal((3, 1))]),
    "slogdet": (lambda a: L.slogdet(a).logabsdet, [plain(R, (2,))]),
    "cholesky": (lambda a: L.cholesky(a), [spd(R, (2,))]),
    "qr_packed": (lambda a: apply(OL.QR_OP, a), [plain(R, (2,), 3, 2)]),
    "svd_packed": (lambda a: apply(OL.SVD_OP, a, uv=True), [plain(R, (), 2, 3)]),
    "svdvals": (lambda a: L.svdvals(a), [plain(R, (2,), 3, 2)]),
    "eigh_packed": (lambda a: apply(OL.EIGH, a, vectors=True), [spd(R, (2,))]),
    "eigvalsh": (lambda a: L.eigvalsh(a), [spd(R, ())]),
    "diagonal": (lambda a: L.diagonal(a, 1), [plain(R, (2,), 3, 4)]),
    "trace": (lambda a: L.trace(a), [plain(R, (2,))]),
    "outer": (lambda a, b: L.outer(a, b), [R.standard_normal(3), R.standard_normal(2)]),
}  # fmt: skip


@pytest.mark.parametrize("name", list(OPS))
def test_op_is_exact_in_every_semiring(name):
    fn, inputs = OPS[name]
    check_op(fn, inputs, seed=3, paths=name not in ("trace", "outer"))  # (composites: paths of two edges)


@pytest.mark.parametrize(
    "name, fn, shape",
    [("Q", lambda a: L.qr(a).Q, (4, 3)), ("R", lambda a: L.qr(a).R, (3, 3)), ("U", lambda a: L.svd(a).U, (3, 3)),
     ("S", lambda a: L.svd(a, full_matrices=False).S, (2, 3)),
     ("Vh", lambda a: L.svd(a, full_matrices=False).Vh, (3, 2)),
     ("eigenvectors", lambda a: L.eigh(a).eigenvectors, (3, 3))],
)  # fmt: skip
def test_factors_are_exact_in_every_semiring(name, fn, shape):
    # a factor is a slice of the packed output: one more index map, one path per pair of elements
    a = spd(R, ()) if name == "eigenvectors" else plain(R, (), *shape)
    check_op(fn, [a], seed=4, paths=False)


def test_cholesky_rows_above_the_diagonal_have_no_edges():
    # Reach counts every edge, of weight 0 too: the constant upper triangle of L must have none
    a = sr.tensor(spd(R, ()), requires_grad=True)
    L_ = L.cholesky(a)
    seed = np.triu(np.ones((3, 3)), 1)  # only the (constant) upper triangle of L is seeded
    assert not sr.backward(L_, [a], semiring=Reach(), seed=seed)[a].any()
    assert sr.backward(L_, [a], semiring=Reach(), seed=np.tril(np.ones((3, 3))))[a].all()
    assert sr.backward(L_, [a], semiring=Count(), seed=np.tril(np.ones((3, 3))))[a].all()


def test_solve_triangular_reads_one_triangle():
    a = sr.tensor(general(R, ()), requires_grad=True)
    x = L.solve_triangular(a, np.ones((3, 2)), upper=True, unitriangular=True)
    for semiring in (Reach(), sr.semirings.Boolean()):
        reach = sr.backward(x.sum(), [a], semiring=semiring)[a]
        assert reach.tolist() == np.triu(np.ones((3, 3), dtype=bool), 1).tolist()


def test_trace_through_inv_has_the_exact_partial_as_edge_weight():
    A = general(R, (), 4)
    Ainv = np.linalg.inv(A)
    a = sr.tensor(A, requires_grad=True, name="A")
    y = L.inv(a)[1, 2]
    r = sr.trace(y, [a])
    expected = -np.outer(Ainv[1, :], Ainv[:, 2])  # ∂(A⁻¹)[1, 2]/∂A[k, l] = -A⁻¹[1, k] A⁻¹[l, 2]
    np.testing.assert_allclose(r[a], expected, rtol=1e-12)
    path = r.path(a, (3, 0))
    assert [s.op for s in path.steps] == ["leaf", "inv", "getitem"]
    assert path.steps[1].index == (1, 2)
    np.testing.assert_allclose(path.weights, [expected[3, 0], 1.0], rtol=1e-12)


@pytest.mark.parametrize("semiring", [MaxAbsProduct(), Count(), SumAbs(), KBest(2)], ids=lambda s: type(s).__name__)
@pytest.mark.parametrize(
    "name, fn, inputs",
    [("det", lambda a: L.det(a), [plain(rng(1), (), 2, 2)]),
     ("matrix_power", lambda a: L.matrix_power(a, 3).sum(), [plain(rng(2), (), 2, 2)]),
     ("logdet_cholesky", lambda a: L.diagonal(L.cholesky(a)).log().sum(), [spd(rng(3), (), 2)]),
     ("norm_nuc", lambda a: L.norm(a, "nuc"), [plain(rng(4), (), 2, 2)])],
)  # fmt: skip
def test_composites_match_the_brute_force(name, fn, inputs, semiring):
    xs = [sr.tensor(a, requires_grad=True) for a in inputs]
    got = sr.backward(fn(*xs), xs, semiring=semiring)
    for x, expected in zip(xs, brute_force(fn, inputs, semiring)):
        np.testing.assert_allclose(semiring.to_array(got.raw(x), x.dtype), expected, rtol=1e-12, atol=1e-14)
    if isinstance(semiring, MaxAbsProduct):
        assert check_paths(got) > 0


def test_dense_limit_is_a_clear_error_and_sumproduct_is_not_limited():
    a = sr.tensor(spd(R, (2,), 4), requires_grad=True)
    old = L.set_dense_limit(100)
    try:
        message = r"cholesky: .*dense local Jacobian.*input shape \(2, 4, 4\).*set_dense_limit"
        with pytest.raises(sr.OpError, match=message):
            sr.trace(L.cholesky(a).sum(), [a])
        g = sr.grad(L.cholesky(a).sum(), [a])[0]  # the closed-form rule: no limit
        assert np.isfinite(g).all()
        sr.trace(L.inv(a).sum(), [a])  # product-form ops: two contractions, no dense Jacobian
    finally:
        assert L.set_dense_limit(old) == 100
    assert L.dense_limit() == old
    sr.trace(L.cholesky(a).sum(), [a])


def test_float32_in_every_semiring():
    a = spd(R, (), 3).astype(np.float32)
    check_op(lambda t: L.cholesky(t), [a], seed=5)
    check_op(lambda t: L.inv(t), [a], seed=5)
