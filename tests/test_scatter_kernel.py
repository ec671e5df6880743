"""MaxAbsProduct's ⊕-scatter with argmax: the numba kernel (:mod:`semirad.kernels.scatter`) against
the ``lexsort`` reference (:func:`semirad.semirings.max_abs.reference.scatter`), bit for bit (values
compared as integers, so the sign of a zero and NaN's bits count, and ids), on drawn positions with
many repeats, ties of equal ``|value|`` and opposite sign, zeros, NaN, dead ends, both dtypes and
any strides; and whole traces of an embedding lookup and a conv net under both kernel modes.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import semirad as sr
from semirad import kernels
from semirad.ids import END, NO_PATH
from semirad.semirings.max_abs import dispatch, reference

pytestmark = pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")

DTYPES = [np.float32, np.float64]
#: few magnitudes, both signs and both zeros: most entries that meet at a target tie
VALUES = [0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, np.inf, -np.inf, np.nan, -np.nan]
#: few ids, repeated: ties of equal |value| often have equal ids too, and then the first entry wins
IDS = [0, 1, 2, 3, 7, END, NO_PATH, 2**53, 2**53 + 1, NO_PATH - 1]


def rule(positions, values, ids, size):
    """The documented rule, entry by entry in C order: the larger ``|value|`` (NaN below every
    number), then the smaller id; an equal rank keeps the earlier entry."""
    out_v = np.zeros(size, dtype=values.dtype)
    out_i = np.full(size, NO_PATH, dtype=np.int64)
    rank = [None] * size
    for t, v, i in zip(positions.ravel().tolist(), values.ravel(), ids.ravel().tolist(), strict=True):
        key = (-1.0 if np.isnan(v) else float(abs(v)), -i)
        if rank[t] is None or key > rank[t]:
            rank[t], out_v[t], out_i[t] = key, v, i
    return out_v, out_i


def bits(a: np.ndarray) -> np.ndarray:
    return a.view(f"i{a.dtype.itemsize}")


def assert_identical(got, want):
    (gv, gi), (wv, wi) = got, want
    assert gv.dtype == wv.dtype and gi.dtype == wi.dtype == np.int64
    assert gv.shape == wv.shape and gi.shape == wi.shape
    assert np.array_equal(bits(gv), bits(wv)), (gv, wv)
    assert np.array_equal(gi, wi), (gi, wi)


def laid_out(a: np.ndarray, layout: str) -> np.ndarray:
    """``a`` (same shape and elements) as a C array, a transpose, a strided view or read-only."""
    if layout == "transposed":
        return np.ascontiguousarray(a.T).T
    if layout == "strided":
        wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
        wide[..., ::2] = a
        return wide[..., ::2]
    if layout == "read-only":
        a = a.copy()
        a.setflags(write=False)
    return a


@st.composite
def scatters(draw):
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=5, min_side=0, max_side=3))
    entries = int(np.prod(shape))
    size = draw(st.integers(1 if entries else 0, 9))  # few targets: many repeats, some untouched
    positions = np.array(draw(st.lists(st.integers(0, max(size - 1, 0)), min_size=entries, max_size=entries)))
    values = np.array(draw(st.lists(st.sampled_from(VALUES), min_size=entries, max_size=entries)), dtype=dtype)
    ids = np.array(draw(st.lists(st.sampled_from(IDS), min_size=entries, max_size=entries)), dtype=np.int64)
    layouts = st.sampled_from(["c", "transposed", "strided", "read-only"])
    arrays = (positions.reshape(shape).astype(np.int64), values.reshape(shape), ids.reshape(shape))
    return tuple(laid_out(a, draw(layouts)) for a in arrays) + (size,)


@given(scatters())
def test_kernel_equals_reference_bit_for_bit(case):
    positions, values, ids, size = case
    want = reference.scatter(np, positions, values, ids, size)
    assert_identical(rule(positions, values, ids, size), want)
    found = kernels.compiled("scatter").max_abs_scatter(positions, values, ids, size)
    assert found is not None  # every position in range: the kernel ran
    assert_identical(found, want)
    with kernels.using("numba"):
        assert_identical(dispatch.scatter(np, positions, values, ids, size), want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(4))
def test_large_random_scatters(dtype, seed):
    rng = np.random.default_rng(seed)
    n, size = 20_000, 1_000
    positions = rng.integers(0, size - 50, (4, 50, n // 200)).transpose(1, 0, 2)  # 50 targets untouched
    values = rng.choice(np.array([0.0, -0.0, 1.0, -1.0, 3.0, -3.0, np.nan], dtype=dtype), positions.shape)
    values[rng.random(positions.shape) < 0.3] = rng.standard_normal(1).astype(dtype)[0]
    ids = rng.choice(np.array([5, 6, NO_PATH]), positions.shape)
    with kernels.using("numba"):
        got = dispatch.scatter(np, positions, values, ids, size)
    assert_identical(got, reference.scatter(np, positions, values, ids, size))
    assert (got[1][size - 50 :] == NO_PATH).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,size", [((0,), 0), ((0,), 4), ((3, 0, 2), 5), ((0, 1, 2, 3, 4), 1)])
def test_empty_input_leaves_every_target_without_a_path(dtype, shape, size):
    positions, values, ids = np.zeros(shape, np.int64), np.zeros(shape, dtype), np.zeros(shape, np.int64)
    with kernels.using("numba"):
        v, i = dispatch.scatter(np, positions, values, ids, size)
    assert v.dtype == dtype and v.shape == i.shape == (size,)
    assert not bits(v).any() and (i == NO_PATH).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_ties_and_dead_ends(dtype):
    # target 0: equal |value|, opposite signs, the smaller id wins; target 1: a real zero beats a
    # dead end; target 2: equal |value| and id, the first entry (-0.0) wins; target 3: NaN loses to
    # a dead end; target 4: NaN alone; target 5: a dead end -0.0 alone keeps its sign
    positions = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 5])
    values = np.array([2.0, -2.0, 0.0, -0.0, -0.0, 0.0, np.nan, 0.0, np.nan, -0.0], dtype=dtype)
    ids = np.array([8, 3, NO_PATH, 9, 4, 4, 1, NO_PATH, 6, NO_PATH])
    with kernels.using("numba"):
        v, i = dispatch.scatter(np, positions, values, ids, 7)
    assert_identical((v, i), reference.scatter(np, positions, values, ids, 7))
    assert i.tolist() == [3, 9, 4, NO_PATH, 6, NO_PATH, NO_PATH]
    assert np.signbit(v).tolist() == [True, True, True, False, False, True, False]


def test_ids_compare_as_integers_above_2_to_the_53():
    # 2**53 + 1 and 2**53 are one float64: the smaller id must still win, not the first entry
    positions, values, ids = np.array([0, 0]), np.array([1.0, -1.0]), np.array([2**53 + 1, 2**53])
    for mode in ("numpy", "numba"):
        with kernels.using(mode):
            v, i = dispatch.scatter(np, positions, values, ids, 1)
        assert (v.tolist(), i.tolist()) == ([-1.0], [2**53])


@pytest.mark.parametrize("bad", [-1, 3])
def test_position_out_of_range_goes_to_the_reference(bad):
    positions, values, ids = np.array([0, bad, 1]), np.array([1.0, 2.0, 3.0]), np.array([1, 2, 3])
    assert kernels.compiled("scatter").max_abs_scatter(positions, values, ids, 3) is None
    if bad < 0:  # numpy's indexing wraps it in the reference; the dispatch gives the same
        with kernels.using("numba"):
            got = dispatch.scatter(np, positions, values, ids, 3)
        assert_identical(got, reference.scatter(np, positions, values, ids, 3))


def test_int32_positions_and_other_dtypes():
    positions, ids = np.array([1, 1, 0], dtype=np.int32), np.array([7, 5, 3])
    for values in (np.array([2.0, -2.0, 1.0]), np.array([2.0, -2.0, 1.0], dtype=np.float16)):
        with kernels.using("numba"):
            got = dispatch.scatter(np, positions, values, ids, 3)
        assert_identical(got, reference.scatter(np, positions, values, ids, 3))


# -- whole graphs ---------------------------------------------------------------------------------


def _ties(rng, shape, dtype):
    """Small integers: equal |value| everywhere, zeros (and dead ends behind a ReLU)."""
    return rng.integers(-2, 3, shape).astype(dtype)


def _set(param, values):
    param.data = values.astype(param.dtype)


def _embedding_trace(dtype):
    rng = np.random.default_rng(3)
    emb = sr.nn.Embedding(6, 4, dtype=dtype)
    head = sr.nn.Linear(4, 3, dtype=dtype)
    for p in (emb.weight, head.weight, head.bias):
        _set(p, _ties(rng, p.shape, dtype))
    tokens = rng.integers(0, 5, (5, 9))  # every row picked many times, row 5 never
    loss = sr.nn.functional.relu(head(emb(tokens))).sum()
    params = [emb.weight, head.weight, head.bias]
    return sr.trace(loss, params), params


def _conv_trace(dtype):
    rng = np.random.default_rng(4)
    net = sr.nn.Sequential(
        sr.nn.Conv2d(2, 3, 3, padding=1, dtype=dtype),
        sr.nn.ReLU(),
        sr.nn.MaxPool2d(3, stride=2, padding=1),
        sr.nn.Conv2d(3, 4, 2, dtype=dtype),
        sr.nn.MaxPool2d(2),
        sr.nn.Flatten(),
        sr.nn.Linear(4 * 2 * 2, 2, dtype=dtype),
    )
    params = list(net.parameters())
    for p in params:
        _set(p, _ties(rng, p.shape, dtype))
    x = sr.tensor(_ties(rng, (3, 2, 9, 9), dtype), requires_grad=True)  # the first unfold scatters too
    return sr.trace(net(x).sum(), [x] + params), [x] + params


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("build", [_embedding_trace, _conv_trace], ids=["embedding", "conv"])
def test_whole_trace_is_identical_under_both_kernel_modes(build, dtype, monkeypatch):
    with kernels.using("numpy"):
        ref, ref_params = build(dtype)
    module = kernels.compiled("scatter")
    calls = []
    kernel = module.max_abs_scatter
    monkeypatch.setattr(module, "max_abs_scatter", lambda *a: calls.append(a[3]) or kernel(*a))
    with kernels.using("numba"):
        tr, params = build(dtype)
    assert calls, "no scatter with repeats reached the kernel"
    for p, r in zip(params, ref_params, strict=True):
        assert np.array_equal(bits(tr[p]), bits(ref[r]))
        assert np.array_equal(tr.raw(p)[1], ref.raw(r)[1])
    p, r = params[0], ref_params[0]
    with_path = np.argwhere(ref.raw(r)[1] != NO_PATH)
    for index in map(tuple, with_path[:: max(1, len(with_path) // 5)]):
        assert [s.index for s in tr.path(p, index).steps] == [s.index for s in ref.path(r, index).steps]
