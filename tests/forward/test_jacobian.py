"""``sr.jacobian`` in both directions: against ``torch.autograd.functional.jacobian`` (float64) on every
op family and an nn model, and, in every semiring, the forward sweep against reverse sweeps seeded at
one output element at a time (the existing, independent backward)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

import semirad as sr
import semirad.nn.functional as F
from semirad.forward import Batched
from semirad.semirings import KBest, LogMaxAbs, MaxAbsProduct
from semirad.testing import builtin_semirings

torch = pytest.importorskip("torch")


def _load(name: str):
    """A test module of tests/ops, imported by its basename as pytest imports it (so one module object)."""
    folder = str(Path(__file__).resolve().parent.parent / "ops")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module(name)


OP_CASES = [p.values[0] for p in _load("test_semiring_consistency").CASES]
_NEW_OPS = _load("test_new_ops")
EINSUM_CASES, TAKE_CASES = _NEW_OPS.EINSUM_CASES, _NEW_OPS.TAKE_CASES

W1 = np.linspace(-1.0, 1.2, 12).reshape(3, 4)
K1 = np.linspace(-0.5, 0.7, 2 * 1 * 3).reshape(2, 1, 3)

# (semirad fn, torch fn, input shapes)
FAMILIES = {
    "elementwise": (
        lambda x, y: (x * y).tanh() + x.exp() / (1.0 + y * y) - sr.maximum(x, y),
        lambda x, y: (x * y).tanh() + x.exp() / (1.0 + y * y) - torch.maximum(x, y),
        [(2, 3), (2, 3)],
    ),
    "broadcast-reduce": (
        lambda x, y: (x * y).sum(axis=0) + sr.max(x, axis=1).mean() + x.logsumexp(axis=1).sum(),
        lambda x, y: (x * y).sum(0) + x.amax(1).mean() + x.logsumexp(1).sum(),
        [(2, 3), (3,)],
    ),
    "matmul": (lambda x, y: x @ y @ sr.tensor(W1), lambda x, y: x @ y @ torch.tensor(W1), [(2, 3), (3, 3)]),
    "batched-matmul": (lambda x, y: x @ y, lambda x, y: x @ y, [(2, 2, 3), (3, 2)]),
    "einsum": (
        lambda x, y: sr.einsum("bij,jk->bik", x, y),
        lambda x, y: torch.einsum("bij,jk->bik", x, y),
        [(2, 2, 3), (3, 2)],
    ),
    "indexing": (
        lambda x, y: x[[0, 0, 1], 1:] * y[::-1][None] + sr.take_along_axis(x, np.array([[2, 0], [1, 1]]), 1).sum(),
        lambda x, y: (
            x[[0, 0, 1], 1:] * y.flip(0)[None] + torch.take_along_dim(x, torch.tensor([[2, 0], [1, 1]]), 1).sum()
        ),
        [(2, 3), (2,)],
    ),
    "scatter-like": (lambda x, y: sr.cumsum(x, axis=1) * y, lambda x, y: torch.cumsum(x, 1) * y, [(2, 3), (3,)]),
    "reshape-transpose-concat": (
        lambda x, y: sr.concat([x.T.reshape(-1), y, sr.stack([y, y[::-1]], axis=1).reshape(-1)]),
        lambda x, y: torch.cat([x.T.reshape(-1), y, torch.stack([y, y.flip(0)], 1).reshape(-1)]),
        [(2, 3), (3,)],
    ),
    "softmax": (lambda x, y: F.softmax(x * y, dim=-1), lambda x, y: torch.softmax(x * y, -1), [(2, 3), (3,)]),
    "conv1d": (
        lambda x, w: F.conv1d(x, w, stride=1, padding=1),
        lambda x, w: torch.nn.functional.conv1d(x, w, padding=1),
        [(1, 1, 5), (2, 1, 3)],
    ),
}


@pytest.mark.parametrize("name", sorted(FAMILIES))
@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_jacobian_matches_torch(name, mode):
    fn, tfn, shapes = FAMILIES[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    xs = tuple(rng.standard_normal(s) for s in shapes)
    ours = sr.jacobian(fn, xs, mode=mode)
    theirs = torch.autograd.functional.jacobian(tfn, tuple(torch.tensor(x) for x in xs))
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.shape == tuple(b.shape)
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-10, atol=1e-12)


def test_jacobian_of_an_nn_model_matches_torch():
    sr.manual_seed(0)
    model = sr.nn.Sequential(sr.nn.Linear(4, 5), sr.nn.Tanh(), sr.nn.Linear(5, 3), sr.nn.Softmax(dim=-1))
    ref = torch.nn.Sequential(
        torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3), torch.nn.Softmax(-1)
    ).double()
    with torch.no_grad():
        for (_, p), q in zip(model.named_parameters(), ref.parameters()):
            q.copy_(torch.tensor(p.data))
    x = np.random.default_rng(1).standard_normal((2, 4))
    expected = torch.autograd.functional.jacobian(ref, torch.tensor(x)).numpy()
    for mode in ("forward", "reverse", "auto"):
        np.testing.assert_allclose(sr.jacobian(model, x, mode=mode), expected, rtol=1e-10, atol=1e-13)


def test_auto_picks_the_direction_with_fewer_seeds(monkeypatch):
    import semirad.forward as fw

    called = []
    for name in ("_jacobian_forward", "_jacobian_reverse"):
        real = getattr(fw, name)
        monkeypatch.setattr(fw, name, lambda *a, real=real, name=name: called.append(name) or real(*a))
    sr.jacobian(lambda x: sr.concat([x, x, x]), np.ones(2))
    sr.jacobian(lambda x: x.sum(axis=0), np.ones((3, 2)))
    assert called == ["_jacobian_forward", "_jacobian_reverse"]


def test_one_sweep_not_a_loop_over_elements(monkeypatch):
    """Forward mode records each op once whatever the number of seeds."""
    import semirad.forward as fw

    processed = []
    real = fw._ForwardSweep._process
    monkeypatch.setattr(fw._ForwardSweep, "_process", lambda self, node: processed.append(node) or real(self, node))
    sr.jacobian(lambda x: (x * 2.0).tanh(), np.ones(50), mode="forward")
    assert len(processed) == 2


# -- every semiring: forward against per-element reverse sweeps ---------------------------------------
def reverse_by_element(fn, arrays, S):
    """Row by row: one reverse sweep per output element (the existing backward, one-hot seeds)."""
    leaves = [sr.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*leaves)
    blocks = [[] for _ in arrays]
    for o in range(out.data.size):
        seed = np.zeros(out.shape, dtype=out.dtype)
        seed.reshape(-1)[o] = 1
        members = set(sr.engine.ancestors(out._node)) if out._node is not None else set()
        used = [t for t in leaves if t._node in members]
        r = sr.backward(out, used, S, seed=seed) if used else None
        for i, (t, a) in enumerate(zip(leaves, arrays)):
            if r is not None and t in r:
                blocks[i].append(np.asarray(r[t]))
            else:
                blocks[i].append(np.asarray(S.to_array(S.zeros(np, a.shape, a.dtype), a.dtype)))
    result = []
    for rows, a in zip(blocks, arrays):
        if not rows:  # an empty output
            template = np.asarray(S.to_array(S.zeros(np, a.shape, a.dtype), a.dtype))
            result.append(np.zeros(template.shape[: template.ndim - a.ndim] + out.shape + a.shape))
            continue
        stacked = np.stack(rows, axis=-1 - a.ndim)  # lead + (n_out,) + in.shape
        lead = stacked.ndim - 1 - a.ndim
        result.append(stacked.reshape(stacked.shape[:lead] + out.shape + a.shape))
    return result


def _close(a, b, S):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    rtol = 1e-5 if a.dtype == np.float32 else 1e-9
    return a.shape == b.shape and np.allclose(a, b, rtol=rtol, atol=1e-9 if isinstance(S, LogMaxAbs) else 1e-12)


@pytest.mark.parametrize("case", OP_CASES, ids=[c.id for c in OP_CASES])
def test_every_op_forward_equals_reverse_in_every_semiring(case):
    rng = np.random.default_rng([7, sum(map(ord, case.id))])
    arrays = case.arrays(rng)
    for S in builtin_semirings():
        forward = sr.jacobian(case.fn, tuple(arrays), S, mode="forward")
        expected = reverse_by_element(case.fn, arrays, S)
        batched = sr.jacobian(case.fn, tuple(arrays), S, mode="reverse")
        for f, e, b in zip(forward, expected, batched):
            assert _close(f, e, S), (type(S).__name__, case.id, f, e)
            assert _close(b, e, S), (type(S).__name__, case.id, "reverse", b, e)


def _forward_equals_reverse(fn, arrays):
    for S in builtin_semirings():
        forward = sr.jacobian(fn, tuple(arrays), S, mode="forward")
        expected = reverse_by_element(fn, arrays, S)
        for f, e in zip(forward, expected):
            assert _close(f, e, S), (type(S).__name__, f, e)


@pytest.mark.parametrize("case", EINSUM_CASES, ids=[c[0].replace(" ", "_") for c in EINSUM_CASES])
def test_einsum_forward_equals_reverse_in_every_semiring(case):
    subscripts, *shapes = case
    rng = np.random.default_rng(sum(map(ord, subscripts)))
    _forward_equals_reverse(lambda *ts: sr.einsum(subscripts, *ts), [rng.standard_normal(s) for s in shapes])


@pytest.mark.parametrize("shape, indices, axis", TAKE_CASES)
def test_selection_forward_equals_reverse_in_every_semiring(shape, indices, axis):
    x = np.random.default_rng(len(shape)).standard_normal(shape)
    _forward_equals_reverse(lambda t: sr.take_along_axis(t, indices, axis=axis), [x])
    if axis is not None and x.ndim:
        _forward_equals_reverse(lambda t: t.sort(dim=axis).values * t, [x])
        _forward_equals_reverse(lambda t: t.topk(1, dim=axis).values.exp(), [x])


PATH_SEMIRINGS = [MaxAbsProduct(), LogMaxAbs(), KBest(3)]


def random_graph(rng):
    """A random composition of matmuls, elementwise ops, gathers and reductions."""
    W = sr.tensor(rng.standard_normal((4, 4)))
    steps = rng.integers(0, 6, size=5)

    def fn(x, y):
        h = x
        for s in steps:
            if s == 0:
                h = h @ W
            elif s == 1:
                h = (h * y).tanh()
            elif s == 2:
                h = h[:, [3, 0, 0, 2]] + h
            elif s == 3:
                h = h * h.sum(axis=1, keepdims=True)
            elif s == 4:
                h = sr.maximum(h, y[::-1])
            else:
                h = F.softmax(h, dim=-1) * h
        return h

    return fn


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("S", PATH_SEMIRINGS, ids=lambda S: repr(S))
def test_path_semirings_forward_equals_reverse_on_random_graphs(S, seed):
    rng = np.random.default_rng(seed)
    fn = random_graph(rng)
    arrays = [rng.standard_normal((2, 4)), rng.standard_normal(4)]
    forward = sr.jacobian(fn, tuple(arrays), S, mode="forward")
    for f, e in zip(forward, reverse_by_element(fn, arrays, S)):
        assert _close(f, e, S)


def test_the_check_can_fail():
    """The comparison above tells a wrong forward value: KBest's second-best paths are not the best."""
    fn = random_graph(np.random.default_rng(3))
    arrays = [np.random.default_rng(4).standard_normal((2, 4)), np.random.default_rng(5).standard_normal(4)]
    forward = sr.jacobian(fn, tuple(arrays), KBest(2), mode="forward")
    expected = reverse_by_element(fn, arrays, KBest(2))
    assert _close(forward[0], expected[0], KBest(2))
    assert not _close(forward[0][::-1], expected[0], KBest(2))


def test_boolean_jacobian_is_the_dependency_structure():
    x = np.array([1.0, 2.0, 3.0])
    J = sr.jacobian(lambda x: sr.concat([x[:1] * x[1:2], x[2:].relu(), (x * 0.0)[:1]]), x, sr.semirings.Boolean())
    assert J.tolist() == [[True, True, False], [False, False, True], [False, False, False]]


def test_batched_wrapper_keeps_rows_apart():
    S = Batched(sr.semirings.SumProduct(), 2)
    g = np.arange(6.0).reshape(2, 3)
    assert S.shape(g) == (3,)
    assert S.map(g, lambda a: a[::-1]).tolist() == [[2.0, 1.0, 0.0], [5.0, 4.0, 3.0]]
    assert S.scatter(g, (np.array([0, 0, 2]),), (3,), False).tolist() == [[1.0, 0.0, 2.0], [7.0, 0.0, 5.0]]
    assert S.sum(g, (0,)).tolist() == [3.0, 12.0]


def test_an_op_the_transposer_cannot_record_falls_back_to_its_local_jacobian():
    """A custom op whose backward builds a value from ``S.zeros`` (which the transposer does not
    record) is pushed forward through its dense local Jacobian, not silently wrong."""
    from semirad.ops.core import Op, apply

    class Outer(Op):  # y[i, j] = x[i] * v[j], backward accumulated onto S.zeros
        name = "outer"

        def forward(self, ctx, x, v):
            ctx.saved = (v,)
            return x[:, None] * v[None, :]

        def backward(self, ctx, g, S, needs):
            (v,) = ctx.saved
            start = S.zeros(ctx.xp, ctx.shapes[0], np.float64)
            return (S.add(start, S.map(S.matmul(g, v.reshape(-1, 1)), lambda a: a.reshape(-1))), None)

    import semirad.forward as fw

    v = np.array([2.0, -3.0])
    with pytest.raises(NotImplementedError):
        leaf = sr.tensor(np.ones(3), requires_grad=True)
        fw.program(Outer(), apply(Outer(), leaf, v)._node, (True, False))
    x = np.array([1.0, 0.5, -1.0])
    for S in (sr.semirings.SumProduct(), MaxAbsProduct(), KBest(2)):
        forward = sr.jacobian(lambda t: apply(Outer(), t, v), x, S, mode="forward")
        assert np.allclose(forward, sr.jacobian(lambda t: apply(Outer(), t, v), x, S, mode="reverse"))
    J = sr.jacobian(lambda t: apply(Outer(), t, v), x, mode="forward")
    assert np.allclose(J, np.einsum("ik,j->ijk", np.eye(3), v))


LINALG = {
    "inv": (lambda a: sr.linalg.inv(a), lambda a: torch.linalg.inv(a), "general"),
    "solve": (lambda a: sr.linalg.solve(a, np.arange(6.0).reshape(3, 2)),
              lambda a: torch.linalg.solve(a, torch.arange(6.0, dtype=torch.float64).reshape(3, 2)), "general"),
    "det": (lambda a: sr.linalg.det(a).reshape(1), lambda a: torch.linalg.det(a).reshape(1), "general"),
    "cholesky": (lambda a: sr.linalg.cholesky(a), lambda a: torch.linalg.cholesky(a), "spd"),
    "eigvalsh": (lambda a: sr.linalg.eigh(a)[0], lambda a: torch.linalg.eigh(a)[0], "spd"),
}  # fmt: skip


@pytest.mark.skipif(not hasattr(sr, "linalg"), reason="no sr.linalg")
@pytest.mark.parametrize("name", sorted(LINALG))
def test_linalg_forward_matches_torch_and_reverse_in_every_semiring(name):
    """The dense-Jacobian ops (DESIGN.md's opaque ops) go through the transposer too."""
    fn, tfn, kind = LINALG[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    A = rng.standard_normal((3, 3)) + 3 * np.eye(3)
    if kind == "spd":
        A = A @ A.T
    theirs = torch.autograd.functional.jacobian(tfn, torch.tensor(A)).numpy()
    if kind == "spd":  # the input's symmetric part is what these read: compare along symmetric directions
        theirs = (theirs + np.swapaxes(theirs, -1, -2)) / 2
        ours = sr.jacobian(fn, A, mode="forward")
        ours = (ours + np.swapaxes(ours, -1, -2)) / 2
    else:
        ours = sr.jacobian(fn, A, mode="forward")
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)
    _forward_equals_reverse(fn, [A])
