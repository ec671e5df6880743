"""What keeps a trace's memory down without changing a bit of it: a leaf's result holds compact
(int32) ids where the vertex that feeds it made its own ids compact, ids that several vertices
receive are compacted once, the primitives take compact ids as the int64 ids they stand for, and a
max-abs contraction whose operands the kernel would copy runs in blocks of rows."""

from __future__ import annotations

import numpy as np
import pytest

import semirad as sr
from semirad import ids, kernels
from semirad.semirings import MaxAbsProduct
from semirad.semirings.max_abs import dispatch
from semirad.semirings.max_abs import reference as max_abs_reference

NO_PATH = ids.NO_PATH


@pytest.fixture(autouse=True)
def compact_every_array(monkeypatch):
    """The graphs here are small: every kept array is compacted, whatever its size."""
    monkeypatch.setattr(ids, "COMPACT_MIN_ELEMENTS", 0)


def _net(seed=0):
    """A Linear layer (``x @ W.T + b``), a weight also used twice (``V.T`` and ``V * V``), a
    weight read directly (``h @ U``) and a weight of which only some elements reach the loss."""
    rng = np.random.default_rng(seed)
    sr.manual_seed(seed)
    lin = sr.nn.Linear(4, 3)
    V = sr.tensor(rng.standard_normal((3, 3)), requires_grad=True, name="V")
    U = sr.tensor(rng.standard_normal((3, 2)), requires_grad=True, name="U")
    D = sr.tensor(rng.standard_normal((2, 5)), requires_grad=True, name="D")
    x = sr.tensor(rng.standard_normal((6, 4)))
    h = lin(x).tanh() @ V.T
    loss = ((h @ U) ** 2).mean() + (V * V).sum() * 0.1 + D.T[1:3].sum()  # D.T[0], D.T[3:] reach nothing
    return loss, [lin.weight, lin.bias, V, U, D]


def _traces(monkeypatch):
    loss, params = _net()
    compact = sr.trace(loss, params)
    monkeypatch.setattr(ids, "COMPACT_BELOW", 0)  # nothing fits: int64 throughout
    loss_w, params_w = _net()
    wide = sr.trace(loss_w, params_w)
    monkeypatch.undo()
    return compact, params, wide, params_w


def test_a_leaf_fed_by_one_vertex_gets_compact_ids_and_reads_as_int64(monkeypatch):
    compact, params, wide, params_w = _traces(monkeypatch)
    weight, bias, V, U, D = params
    held = {p.name: compact.sweep.values[p._node][1] for p in params}
    # a transposed weight (D's) ends in a compact result: the vertex D.T fed only D
    assert held["D"].dtype == np.int32
    assert compact.sweep.kept[D._node] is held["D"]  # kept once: the result's array is the backpointers
    # V has two consumers (the ⊕ of the two widens), U, the Linear's weight (its one vertex is the
    # ``linear`` op) and the bias come out of a contraction / a sum
    assert held["V"].dtype == held["U"].dtype == held[weight.name].dtype == held[bias.name].dtype == np.int64
    for p, q in zip(params, params_w, strict=True):
        value, got = compact.raw(p)
        want_value, want = wide.raw(q)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(value, want_value)
        np.testing.assert_array_equal(got, want)
    # D's dead ends (NO_PATH32 held) read back as NO_PATH, and its paths are those of the int64 sweep
    assert (compact.raw(D)[1] == NO_PATH).sum() == 6 and (held["D"] == ids.NO_PATH32).sum() == 6
    for index in np.ndindex(D.shape):
        try:
            got_path = compact.path(D, index)
        except ValueError:
            with pytest.raises(ValueError):
                wide.path(params_w[4], index)
            continue
        want_path = wide.path(params_w[4], index)
        assert [tuple(s) for s in got_path.steps] == [tuple(s) for s in want_path.steps]
        assert got_path.weights == want_path.weights


def test_a_leaf_result_stays_int64_where_ids_past_int32_could_occur(monkeypatch):
    loss, params = _net()
    n_ids = sum(int(np.prod(n.shape, dtype=np.int64)) for n in sr.engine.ancestors(loss._node))
    monkeypatch.setattr(ids, "COMPACT_BELOW", 8)  # far below the sweep's ids
    tr = sr.trace(loss, params)
    assert n_ids > 8
    assert all(tr.sweep.values[p._node][1].dtype == np.int64 for p in params)


def test_ids_that_two_vertices_receive_are_compacted_once():
    x = sr.tensor([[1.0, -2.0, 3.0]], requires_grad=True)
    a, b = x * 2.0, x.tanh()
    y = a + b  # add hands its one gradient (and ids array) to both inputs
    tr = sr.trace((y * y).sum(), [x])
    kept_a, kept_b = tr.sweep.kept[a._node], tr.sweep.kept[b._node]
    assert kept_a.dtype == np.int32 and kept_a is kept_b
    np.testing.assert_array_equal(tr.semiring.backpointers(kept_a), tr.sweep.base[y._node] + np.arange(3)[None])


def test_only_a_reverse_sweep_makes_a_leaf_fed_vertex_compact(monkeypatch):
    """Vertices enter a reverse sweep with ever lower ids (only there do a vertex's own ids go to its
    inputs); in a forward sweep they go on to its consumers and stay int64."""
    w = sr.tensor(np.ones((2, 3)), requires_grad=True)
    t = w.T
    g = (np.ones((3, 2)), np.array([[50, 51], [NO_PATH, 52], [53, 54]]))
    reverse = MaxAbsProduct().for_sweep()
    reverse.enter((np.ones(()), np.full((), ids.END)), _Output(), 100)  # the output, entered first
    _, own = reverse.enter(g, t._node, 10)[0]
    assert own.dtype == np.int32 and own.tolist() == [[10, 11], [ids.NO_PATH32, 13], [14, 15]]
    forward = MaxAbsProduct().for_sweep()
    _, own = forward.enter(g, t._node, 10)[0]
    assert own.dtype == np.int64 and own.tolist() == [[10, 11], [NO_PATH, 13], [14, 15]]
    # Jacobians of such a graph, by a forward and by a reverse sweep: the bits of int64 ids throughout
    v = np.random.default_rng(1).standard_normal((2, 3))
    fn = lambda a: (a.T * 3.0).tanh() * a.reshape(3, 2)  # noqa: E731
    for mode in ("forward", "reverse"):
        got = sr.jacobian(fn, v, semiring=MaxAbsProduct(), mode=mode)
        monkeypatch.setattr(ids, "COMPACT_BELOW", 0)
        np.testing.assert_array_equal(got, sr.jacobian(fn, v, semiring=MaxAbsProduct(), mode=mode))
        monkeypatch.undo()


class _Output:
    """A stand-in output vertex (an op without inputs)."""

    op = "output"
    parents = ()
    shape = ()


def _compact_pair(rng, shape, dead=0.2):
    value = rng.standard_normal(shape)
    wide = rng.integers(0, 1000, size=shape).astype(np.int64)
    mask = rng.random(shape) < dead
    wide[mask] = NO_PATH
    value[mask] = 0.0
    return value, wide, ids.compact(np, wide, 1000)


@pytest.mark.usefixtures("impl")
def test_the_primitives_read_compact_ids_as_the_int64_ids_they_stand_for():
    rng = np.random.default_rng(3)
    S = MaxAbsProduct()
    v, wide, small = _compact_pair(rng, (5, 4))
    u, other, _ = _compact_pair(rng, (5, 4))
    u[0, 0], v[0, 0] = 2.0, -2.0  # a tie
    u[1, 1] = v[1, 1] = 0.0  # a dead end against a real zero, or two dead ends
    weights = rng.standard_normal((4, 3))
    cases = [
        (S.add((v, small), (u, other)), S.add((v, wide), (u, other))),
        (S.add((u, other), (v, small)), S.add((u, other), (v, wide))),
        (S.sum((v, small), (0,)), S.sum((v, wide), (0,))),
        (S.sum((v, small), (1,), keepdims=True), S.sum((v, wide), (1,), keepdims=True)),
        (S.sum((v, small), ()), S.sum((v, wide), ())),
        (S.matmul((v, small), weights), S.matmul((v, wide), weights)),
        (S.scatter((v, small), (np.array([0, 2, 2, 1, 0]),), (3, 4), False),
         S.scatter((v, wide), (np.array([0, 2, 2, 1, 0]),), (3, 4), False)),
        (S.scatter((v, small), (np.array([0, 2, 4, 1, 3]),), (5, 4), True),
         S.scatter((v, wide), (np.array([0, 2, 4, 1, 3]),), (5, 4), True)),
        (S.times((u, small), (v, other)), S.times((u, wide), (v, other))),
        (S.add_at((u.copy(), other.copy()), slice(0, 5), (v, small)),
         S.add_at((u.copy(), other.copy()), slice(0, 5), (v, wide))),
    ]  # fmt: skip
    for got, want in cases:
        assert got[1].dtype == np.int64
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


def _spy(monkeypatch):
    calls = []
    real = kernels.max_abs_matmul

    def counted(values, ids_, weights, dtype):
        calls.append(values.shape)
        return real(values, ids_, weights, dtype)

    monkeypatch.setattr(kernels, "max_abs_matmul", counted)
    return calls


def _operands(rng, dtype):
    """(values, ids, weights) of the layouts the kernel copies: transposed values and ids, ids
    broadcast over rows, a batch of transposed values against one matrix; zeros and dead ends
    that tie with real paths."""
    g = rng.standard_normal((37, 45)).astype(dtype)
    g[:, :3] = 0.0
    gid = np.arange(g.size, dtype=np.int64).reshape(g.shape)
    gid[:4, :2] = NO_PATH  # rows 0 and 1 of values g.T: dead ends first, then real zeros (which win)
    g[rng.random(g.shape) < 0.1] = 0.0
    w = rng.standard_normal((37, 6)).astype(dtype)
    batch = rng.standard_normal((3, 21, 19)).astype(dtype)
    bid = np.arange(batch.size, dtype=np.int64).reshape(batch.shape)
    return [
        (g.T, gid.T, w),
        (np.ascontiguousarray(g.T), np.arange(37, dtype=np.int64)[None, :], w),
        (batch.transpose(0, 2, 1), bid.transpose(0, 2, 1), w[:21]),
        (batch.transpose(0, 2, 1), bid.transpose(0, 2, 1), rng.standard_normal((3, 21, 4)).astype(dtype)),
    ]


@pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("threads", [1, 2])
def test_a_contraction_in_blocks_of_rows_gives_the_same_bits(dtype, threads, monkeypatch):
    rng = np.random.default_rng(7)
    monkeypatch.setattr(kernels, "get_num_threads", lambda: threads)  # 8 rows a block per thread at least
    calls = _spy(monkeypatch)
    with kernels.using("numba"):
        for values, ids_, weights in _operands(rng, dtype):
            monkeypatch.setattr(dispatch, "_PACK_BLOCK_BYTES", 1 << 40)
            whole = dispatch.matmul(np, values, ids_, weights)
            monkeypatch.setattr(dispatch, "_PACK_BLOCK_BYTES", 64)  # as few rows a block as there may be
            calls.clear()
            blocked = dispatch.matmul(np, values, ids_, weights)
            assert len(calls) == -(-values.shape[-2] // (8 * threads)) > 1
            wide_ids = np.broadcast_to(ids_, values.shape)
            reference = max_abs_reference.matmul(np, values, wide_ids, weights)
            reference = max_abs_reference.real_paths_win_matmul_ties(np, values, wide_ids, weights, *reference)
            if ids_.shape == (45, 37):  # (g.T and its ids: the dead ends lose to the real zeros)
                assert (reference[1][:2] == ids_[:2, 4:5]).all()
            for got in (blocked, whole):
                np.testing.assert_array_equal(got[0], reference[0])
                np.testing.assert_array_equal(got[1], reference[1])
                assert got[0].dtype == reference[0].dtype


@pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")
def test_contiguous_operands_run_in_one_call(monkeypatch):
    rng = np.random.default_rng(8)
    values = rng.standard_normal((64, 40))
    monkeypatch.setattr(dispatch, "_PACK_BLOCK_BYTES", 64)
    with kernels.using("numba"):
        calls = _spy(monkeypatch)
        dispatch.matmul(np, values, np.arange(values.size).reshape(values.shape), rng.standard_normal((40, 8)))
    assert len(calls) == 1
