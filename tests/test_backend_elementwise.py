"""The one-pass elementwise paths of :mod:`semirad.backend` (bias add, tanh and sigmoid partials).

Each runs twice, under the numpy fallback and under the numba kernels (where numba is installed),
and must give numpy's own arithmetic bit for bit, leave its inputs alone, and return a new array.
"""

import warnings

import numpy as np
import pytest

import semirad as sr
from semirad import backend, fast, kernels
from semirad.semirings.max_abs import dispatch

BIG = fast._FUSED_MIN_ELEMENTS  # from here on the kernels (or the tiled add) run
STRIDED_MAX = dispatch._VERTEX_STRIDED_MAX  # the vertex kernel takes other strides below this (C-contiguous: all)


def wide_range(rng, shape, dtype):
    """Values of every magnitude, both signs, zeros and exact ±1 included."""
    v = rng.standard_normal(shape) * 10.0 ** rng.integers(-30, 3, shape)
    v.flat[:4] = [0.0, 1.0, -1.0, 0.5]
    return v.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "shape",
    [(BIG // 20 + 7, 20), (BIG, 1), (3, BIG // 60 + 1, 20), (BIG // 100, 100), (7003, 20), (50, 4)],
)
def test_add_of_a_vector_along_the_last_axis_is_numpys_add(impl, dtype, shape):
    rng = np.random.default_rng(1)
    a, v = wide_range(rng, shape, dtype), wide_range(rng, shape[-1:], dtype)
    a_before, v_before = a.copy(), v.copy()
    for out, want in ((fast.add(np, a, v), a + v), (fast.add(np, v, a), v + a)):
        assert out.dtype == want.dtype and out.shape == want.shape
        np.testing.assert_array_equal(out, want)
        assert not np.shares_memory(out, a) and not np.shares_memory(out, v)
    np.testing.assert_array_equal(a, a_before)
    np.testing.assert_array_equal(v, v_before)


def test_add_of_views_mixed_dtypes_and_other_shapes_is_numpys_add(impl):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((40, BIG // 20))
    cases = [
        (a.T, rng.standard_normal(40)),  # not C-contiguous
        (a[:, ::2], rng.standard_normal(a[:, ::2].shape[1])),  # strided
        (a, rng.standard_normal(a.shape[1]).astype(np.float32)),  # mixed dtypes: promoted as numpy does
        (a, rng.standard_normal((1, a.shape[1]))),  # a row, not a vector
        (a.astype(np.float16), rng.standard_normal(a.shape[1]).astype(np.float16)),
        (a, a),
        (a, rng.standard_normal(2 * a.shape[1])[::2]),  # a strided vector (the kernel reads it in place)
    ]
    for x, y in cases:
        out = fast.add(np, x, y)
        want = x + y
        assert out.dtype == want.dtype
        np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(BIG + 3,), (BIG // 20, 20), (5,), (), (0,)])
def test_tanh_and_sigmoid_partials_are_numpys_arithmetic(impl, dtype, shape):
    rng = np.random.default_rng(3)
    y = wide_range(rng, shape, dtype) if shape else np.asarray(0.25, dtype=dtype)
    before = y.copy()
    one = dtype(1)
    for got, want in (
        (fast.one_minus_square(np, y), one - y * y),
        (fast.times_one_minus(np, y), y * (one - y)),
    ):
        assert np.asarray(got).dtype == np.asarray(want).dtype and np.shape(got) == np.shape(want)
        np.testing.assert_array_equal(got, want)
        if np.ndim(got):
            assert not np.shares_memory(got, y)
    np.testing.assert_array_equal(y, before)


def test_partials_of_views_and_other_dtypes(impl):
    rng = np.random.default_rng(4)
    y = rng.uniform(-1, 1, (200, BIG // 100))
    for view in (y.T, y[:, ::3], y.astype(np.float16)):
        np.testing.assert_array_equal(fast.one_minus_square(np, view), 1.0 - view * view)
        np.testing.assert_array_equal(fast.times_one_minus(np, view), view * (1.0 - view))


@pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")
def test_the_numba_kernels_are_the_ones_that_run_on_large_arrays(monkeypatch):
    from semirad.kernels import elementwise

    calls = []
    for name in ("add_vector_to_rows", "one_minus_square", "times_one_minus"):
        kernel = getattr(elementwise, name)
        monkeypatch.setattr(elementwise, name, lambda *args, _k=kernel, _n=name: calls.append(_n) or _k(*args))
    y = np.full((BIG // 20 + 1, 20), 0.5)
    with kernels.using("numba"):
        fast.add(np, y, np.ones(20))
        fast.one_minus_square(np, y)
        fast.times_one_minus(np, y)
        fast.one_minus_square(np, y[:10])  # small: numpy
    with kernels.using("numpy"):
        fast.add(np, y, np.ones(20))
    assert calls == ["add_vector_to_rows", "one_minus_square", "times_one_minus"]


def _network_sweeps(semiring):
    rng = np.random.default_rng(5)
    x = sr.tensor(rng.standard_normal((BIG // 16 + 5, 16)))
    W1 = sr.tensor(rng.standard_normal((16, 24)) / 4, requires_grad=True)
    b1 = sr.tensor(rng.standard_normal(24), requires_grad=True)
    W2 = sr.tensor(rng.standard_normal((24, 24)) / 5, requires_grad=True)
    b2 = sr.tensor(rng.standard_normal(24), requires_grad=True)
    h = (x @ W1 + b1).tanh()
    loss = ((b2 + h @ W2).sigmoid() ** 2).mean()
    out = sr.backward(loss, [W1, b1, W2, b2], semiring=semiring)
    return [out[t] for t in (W1, b1, W2, b2)]


@pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")
@pytest.mark.parametrize("semiring", [sr.semirings.SumProduct, sr.semirings.MaxAbsProduct])
def test_a_network_sweeps_to_the_same_bits_under_both_implementations(semiring, monkeypatch):
    with kernels.using("numpy"), monkeypatch.context() as patch:
        patch.setattr(fast, "tanh", fast.tanh_reference)  # the tanh kernel's numpy transcription, not numpy's tanh
        want = _network_sweeps(semiring())
    with kernels.using("numba"):
        got = _network_sweeps(semiring())
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    assert all(np.isfinite(a).all() and np.abs(a).max() > 0 for a in got)


# -- broadcast_to: numpy's result, built from strides -------------------------------------------------
@pytest.mark.parametrize(
    "source,shape",
    [
        ((), (5,)),
        ((), ()),
        ((3, 1), (2, 3, 4)),
        ((1,), (0,)),
        ((0, 1), (0, 7)),
        ((2, 3), (2, 3)),
        ((4,), (3, 2, 4)),
        ((1, 1), (6, 1)),
    ],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, bool])
def test_broadcast_to_is_numpys_read_only_view(source, shape, dtype):
    a = (np.arange(int(np.prod(source))) % 3).astype(dtype).reshape(source)
    got, want = fast.broadcast_to(np, a, shape), np.broadcast_to(a, shape)
    assert got.shape == want.shape and got.dtype == want.dtype and got.strides == want.strides
    np.testing.assert_array_equal(got, want)
    assert not got.flags.writeable and np.shares_memory(got, a) or got.size == 0
    with pytest.raises(ValueError):
        got[...] = 1


def test_broadcast_to_of_views_and_bad_shapes_behaves_as_numpy():
    a = np.arange(12.0).reshape(3, 4)
    for view, shape in ((a[:, ::2], (5, 3, 2)), (a.T, (2, 4, 3)), (np.array([None, 1], dtype=object), (3, 2))):
        np.testing.assert_array_equal(fast.broadcast_to(np, view, shape), np.broadcast_to(view, shape))
    for shape in ((4, 3), (3,), (2, 3, 5)):
        with pytest.raises(ValueError):
            fast.broadcast_to(np, a, shape)


# -- all_finite: the check every traced vertex goes through -------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("size", [5, BIG + 3])
def test_all_finite_finds_every_nan_and_inf_and_ignores_overflowing_sums(impl, dtype, size):
    rng = np.random.default_rng(6)
    a = rng.standard_normal(size).astype(dtype)
    assert dispatch.all_finite(np, a) and dispatch.all_finite(np, a.reshape(-1, 1)[::2])
    assert dispatch.all_finite(np, np.stack([a, a]).T)
    huge = np.full(size, np.finfo(dtype).max, dtype=dtype)  # finite elements whose sum overflows
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the overflow of the internal sum is not the user's
        assert dispatch.all_finite(np, huge) and dispatch.all_finite(np, huge[::2])
    for bad in (np.nan, np.inf, -np.inf):
        for where in (0, size // 2, size - 1):
            b = a.copy()
            b[where] = bad
            assert not dispatch.all_finite(np, b)
            assert not dispatch.all_finite(np, b.reshape(1, -1))
            assert not dispatch.all_finite(np, np.stack([a, b]).T)  # F-contiguous, as a weight's gradient
    assert dispatch.all_finite(np, np.arange(size)) and dispatch.all_finite(np, np.zeros((0, 3), dtype=dtype))


def test_all_finite_of_complex_int_and_bool_arrays():
    assert dispatch.all_finite(np, np.array([1 + 2j, 3j]))
    assert not dispatch.all_finite(np, np.array([1 + 1j, np.inf * 1j]))
    assert dispatch.all_finite(np, np.array([np.iinfo(np.int64).max] * 3)) and dispatch.all_finite(np, np.ones(4, bool))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_largest_magnitude_is_the_float_max_of_abs_and_inf_for_any_non_finite_element(dtype):
    from semirad.kernels import elementwise

    rng = np.random.default_rng(11)
    tiny = np.finfo(dtype).smallest_subnormal
    for x in (
        wide_range(rng, (5000,), dtype),  # every magnitude, both signs
        np.array([-0.0, 0.0, -tiny, 3 * tiny], dtype),  # zeros of both signs and subnormals
        np.array([-np.finfo(dtype).max, 1.0], dtype),  # the largest magnitude is negative
        np.zeros(0, dtype),
        np.full(3, -0.0, dtype),
    ):
        for view in (x, x[::3], x[::-1]):  # contiguous, strided, negative stride
            want = float(np.abs(view).max()) if view.size else 0.0
            assert elementwise.largest_magnitude(view) == want
    for bad in (np.nan, np.inf, -np.inf, -np.nan):
        x = wide_range(rng, (4001,), dtype)
        x[2000] = bad
        assert elementwise.largest_magnitude(x) == np.inf
        assert elementwise.largest_magnitude(x[::2]) == np.inf  # element 2000 kept
        assert elementwise.largest_magnitude(x[1::2]) < np.inf  # and left out


# -- products_finite: a bound that spares the trace its pass over a large contraction result ------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_products_finite_is_true_only_where_every_product_is_finite(impl, dtype):
    big = np.finfo(dtype).max
    rng = np.random.default_rng(7)
    out_size = 200 * 200
    for scale_a, scale_b in [(1.0, 1.0), (big / 4, 2.0), (big / 2, 2.0), (big, 1.0), (big, 1.5), (1e-30, 1e-30)]:
        a = (rng.uniform(-1, 1, (200, 1)) * scale_a).astype(dtype)
        b = (rng.uniform(-1, 1, (1, 200)) * scale_b).astype(dtype)
        a[0, 0], b[0, 0] = scale_a, -scale_b  # the extremes are present
        with np.errstate(over="ignore"):
            every_product_finite = bool(np.isfinite(a * b).all())
        assert dispatch.products_finite(np, a, b, out_size) == every_product_finite, (scale_a, scale_b)
    a, b = np.ones((200, 1), dtype), np.ones((1, 200), dtype)
    for bad in (np.nan, np.inf):
        a_bad = a.copy()
        a_bad[7, 0] = bad
        assert not dispatch.products_finite(np, a_bad, b, out_size)
        assert not dispatch.products_finite(np, b.T, a_bad.T, out_size)
        assert not dispatch.products_finite(np, a_bad[1::3], b[:, ::3], 67 * 67)  # strided views (row 7 kept)


def test_products_finite_says_not_known_where_checking_the_result_is_cheaper(impl):
    a, b = np.ones((200, 1)), np.ones((1, 200))
    assert dispatch.products_finite(np, a, b, 200 * 200)
    assert not dispatch.products_finite(np, a[:50], b[:, :50], 50 * 50)  # a small result: check it
    # the bound and its bookkeeping cost about as much as checking 2**15 results
    assert not dispatch.products_finite(np, a[:100], b[:, :100], 100 * 100)
    assert not dispatch.products_finite(np, a[:181], b[:, :181], 181 * 181)
    assert dispatch.products_finite(np, a[:182], b[:, :182], 182 * 182)
    # a column of a broadcast gradient (stride 0)
    column = np.broadcast_to(np.float64(2.0), (200,)).reshape(-1, 1)
    assert dispatch.products_finite(np, column, b, 200 * 200)
    assert not dispatch.products_finite(np, column, np.full((1, 200), 1e308), 200 * 200)
    assert not dispatch.products_finite(np, np.ones((200, 200)), np.ones((200, 200)), 200 * 200)  # inputs as big
    assert not dispatch.products_finite(np, a.astype(np.int64), b, 200 * 200)  # |int| may overflow
    assert not dispatch.products_finite(np, a.astype(np.float16), b.astype(np.float16), 200 * 200)


def test_the_compiled_bound_reads_transposed_operands_in_place():
    """A weight gradient's operand is often a transposed view (``g.T``): the bound must not copy
    it, or a trace's peak memory grows by it."""
    import tracemalloc

    if not kernels.AVAILABLE:
        pytest.skip("numba not installed")
    a = np.ones((64, 4000)).T  # F-contiguous, 2 MB
    b = np.ones((64, 4000))
    with kernels.using("numba"):
        dispatch.products_finite(np, a, b[:1], 4000 * 4000)  # compiled before measuring
        tracemalloc.start()
        try:
            assert dispatch.products_finite(np, a, b[:1], 4000 * 4000)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < a.nbytes // 10


def test_flat_view_is_a_view_or_none():
    for a in (np.ones((3, 4)), np.ones((3, 4)).T, np.ones((5, 1))[::2], np.broadcast_to(np.ones(()), (1, 6, 1))):
        flat = dispatch._flat_view(a)
        assert flat.shape == (a.size,) and np.shares_memory(flat, a) and sorted(flat) == sorted(a.ravel())
    assert dispatch._flat_view(np.ones((4, 4))[::2, ::2]) is None
    assert dispatch._flat_view(np.broadcast_to(np.ones(3), (2, 3))) is None


def test_trace_of_a_matrix_vector_product_proves_the_weight_gradient(monkeypatch, impl):
    """``(W @ x).sum()``: ``W``'s gradient is the outer product of a broadcast ones vector and ``x``;
    its bound is read off both (the compiled bound reads the broadcast column in place), so the
    200 x 200 result is not read again."""
    rng = np.random.default_rng(3)
    w = sr.tensor(rng.standard_normal((200, 200)), requires_grad=True)
    x = sr.tensor(rng.standard_normal(200), requires_grad=True)
    checked_sizes = []
    real_all_finite = dispatch.all_finite
    monkeypatch.setattr(dispatch, "all_finite", lambda xp, a: checked_sizes.append(a.size) or real_all_finite(xp, a))
    trace = sr.trace((w @ x).sum(), [w, x])
    assert 200 * 200 not in checked_sizes and 200 in checked_sizes  # x's gradient is checked
    np.testing.assert_array_equal(trace[w], np.ones((200, 1)) * x.data)  # one path per weight


@pytest.mark.parametrize("batch", [1, 3])
def test_trace_skips_the_pass_over_a_proven_weight_gradient_and_still_stops_at_overflow(monkeypatch, batch):
    """A dense layer ``x @ W`` with a batch much smaller than its width: the weight gradient's
    elements are single products ``x[b, i] * g[b, j]``, bounded from ``x`` and ``g``."""
    width = 200
    rng = np.random.default_rng(8)
    x = sr.tensor(rng.standard_normal((batch, width)), requires_grad=True, name="x")
    w = sr.tensor(rng.standard_normal((width, width)), requires_grad=True, name="W")
    checked_sizes = []
    real_all_finite = dispatch.all_finite
    monkeypatch.setattr(dispatch, "all_finite", lambda xp, a: checked_sizes.append(a.size) or real_all_finite(xp, a))
    trace = sr.trace((x @ w).sum(), [x, w])
    assert width * width not in checked_sizes  # the weight gradient was proven, not read again
    expected = np.abs(x.data).max(axis=0)[:, None] * np.ones(width)  # one path per weight, via max |x[b, i]|
    np.testing.assert_array_equal(np.abs(trace[w]), expected)
    # gradients whose products overflow are still found, with the place named
    scale = sr.tensor(np.full(width, 1e200))
    huge_x = sr.tensor(np.full((batch, width), 1e200), requires_grad=True, name="x")
    tiny_w = sr.tensor(np.full((width, width), 1e-250), requires_grad=True, name="W")
    with np.errstate(over="ignore"), pytest.raises(FloatingPointError, match=r"leaf 'W' of shape \(200, 200\)"):
        sr.trace(((huge_x @ tiny_w) * scale).sum(), [huge_x, tiny_w])


def test_max_abs_primitives_work_outside_a_sweep_on_proven_sizes():
    S = sr.semirings.MaxAbsProduct()  # no seed(): a user calling the primitive directly
    g = (np.ones((200, 1)), np.arange(200).reshape(200, 1))
    value, ids = S.matmul(g, np.full((1, 200), 2.0))
    assert value.shape == (200, 200) and (value == 2.0).all() and (ids[:, 0] == np.arange(200)).all()
    del value, ids
    assert not S.__dict__.get("_proven_finite")  # no entry outlives its array


# -- traced_vertex: a traced vertex's own ids, dead ends and finiteness ---------------------------------
def vertex_cases(rng, dtype):
    """(value, ids) pairs as they reach a vertex: contiguous, transposed, broadcast (0 strides), 0-d."""
    square = wide_range(rng, (6, 5), dtype)
    ids = rng.integers(0, 1000, (6, 5))
    ids[1, 2] = ids[4, 0] = backend.NO_PATH  # dead ends
    yield square, ids
    yield square.T, ids.T
    yield np.broadcast_to(dtype(3.0), (40,)), np.broadcast_to(np.int64(backend.NO_PATH), (40,))
    yield np.broadcast_to(square[:1], (3, 5)), np.broadcast_to(ids[1:2], (3, 5))
    yield np.asarray(dtype(-2.0)), np.asarray(7, dtype=np.int64)
    # the largest each kernel takes, and the smallest left to the numpy steps: strided, contiguous
    yield wide_range(rng, (2 * STRIDED_MAX - 2,), dtype)[::2], rng.integers(0, 5, 2 * STRIDED_MAX - 2)[::2]
    yield wide_range(rng, (2 * STRIDED_MAX,), dtype)[::2], rng.integers(0, 5, 2 * STRIDED_MAX)[::2]
    yield wide_range(rng, (1 << 17,), dtype), rng.integers(0, 5, 1 << 17)  # C-contiguous: the kernel at any size
    yield np.zeros((0, 3), dtype), np.zeros((0, 3), np.int64)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_traced_vertex_numbers_elements_keeps_dead_ends_and_sees_non_finite_values(impl, dtype):
    rng = np.random.default_rng(9)
    for value, ids in vertex_cases(rng, dtype):
        own, finite = dispatch.traced_vertex(np, value, ids, 100)
        want = np.arange(100, 100 + value.size, dtype=np.int64).reshape(value.shape)
        want[ids == backend.NO_PATH] = backend.NO_PATH
        assert own.dtype == np.int64 and own.shape == value.shape
        np.testing.assert_array_equal(own, want)
        contiguous = value.flags.c_contiguous and ids.flags.c_contiguous
        assert finite is (None if impl == "numpy" or (not contiguous and value.size >= STRIDED_MAX) else True)
        for bad in (np.nan, np.inf, -np.inf):
            if value.size == 0:
                continue
            broken = np.array(value, copy=True)
            broken.flat[value.size // 2] = bad
            own_b, finite_b = dispatch.traced_vertex(np, broken, ids, 100)
            np.testing.assert_array_equal(own_b, want)
            assert finite_b in (False, None) and (finite_b is None) == (finite is None)


def test_traced_vertex_leaves_its_inputs_alone(impl):
    value, ids = np.array([1.0, 2.0, 3.0]), np.array([4, backend.NO_PATH, 6])
    before = value.copy(), ids.copy()
    own, _ = dispatch.traced_vertex(np, value, ids, 0)
    np.testing.assert_array_equal(value, before[0])
    np.testing.assert_array_equal(ids, before[1])
    assert own is not ids and own.tolist() == [0, backend.NO_PATH, 2]


# -- MaxAbsProduct's ⊕ in one pass -----------------------------------------------------------------
def max_abs_add_by_loops(a, a_ids, b, b_ids):
    """The documented rule element by element: ``b`` where ``|b| > |a|``, or equal and ``b``'s id is
    smaller; ``a`` otherwise (NaN compares false, so a NaN on either side keeps ``a``)."""
    out, out_ids = a.copy(), a_ids.copy()
    for i in np.ndindex(a.shape):
        x, y = abs(a[i]), abs(b[i])
        if y > x or (y == x and b_ids[i] < a_ids[i]):
            out[i], out_ids[i] = b[i], b_ids[i]
    return out, out_ids


def add_operands(rng, shape, dtype):
    """Values with many equal magnitudes (ties both ways, ±0, sign flips), NaN and inf on both sides."""
    a = rng.integers(-3, 4, shape).astype(dtype)
    b = rng.integers(-3, 4, shape).astype(dtype)
    a.flat[:6] = [np.nan, 1.0, np.inf, -0.0, 2.0, np.nan]
    b.flat[:6] = [1.0, np.nan, -np.inf, 0.0, -2.0, np.nan]
    a_ids = rng.integers(0, 50, shape)
    b_ids = rng.integers(0, 50, shape)
    a_ids.flat[:2] = b_ids.flat[:2] = backend.NO_PATH  # dead ends meet
    return a, a_ids, b, b_ids


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(7,), (BIG + 5,), (23, 32, 19), (48, 19)])
@pytest.mark.parametrize("layout", ["C", "F", "mixed", "broadcast"])
def test_max_abs_add_follows_the_rule_on_every_layout(impl, dtype, shape, layout):
    rng = np.random.default_rng(len(shape) + len(layout))
    a, a_ids, b, b_ids = add_operands(rng, shape, dtype)
    if layout == "F":
        a, a_ids, b, b_ids = (np.asfortranarray(x) for x in (a, a_ids, b, b_ids))
    elif layout == "mixed":
        a, b_ids = np.asfortranarray(a), np.asfortranarray(b_ids)
    elif layout == "broadcast":  # b one value for all, as after a sum's backward
        b, b_ids = np.broadcast_to(b.flat[-1], shape), np.broadcast_to(b_ids.flat[-1], shape)
    before = [x.copy() for x in (a, a_ids, b, b_ids)]
    with np.errstate(invalid="ignore"):
        got_v, got_i = dispatch.add(np, a, a_ids, b, b_ids)
    want_v, want_i = max_abs_add_by_loops(a, a_ids, np.asarray(b), np.asarray(b_ids))
    assert got_v.dtype == np.dtype(dtype) and got_i.dtype == np.int64 and got_v.shape == shape == got_i.shape
    np.testing.assert_array_equal(got_v, want_v)  # NaN where the rule keeps a NaN
    np.testing.assert_array_equal(np.signbit(got_v), np.signbit(want_v))  # -0.0 and 0.0 told apart
    np.testing.assert_array_equal(got_i, want_i)
    for x, y in zip((a, a_ids, b, b_ids), before, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.shares_memory(got_v, a) and not np.shares_memory(got_i, a_ids)


@pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")
def test_max_abs_add_runs_the_kernel_where_the_layouts_agree(monkeypatch):
    calls = []
    real = fast._elementwise().max_abs_add
    monkeypatch.setattr(fast._elementwise(), "max_abs_add", lambda *args: calls.append(1) or real(*args))
    rng = np.random.default_rng(3)
    a, a_ids, b, b_ids = add_operands(rng, (40, 30), np.float64)
    with np.errstate(invalid="ignore"), kernels.using("numba"):  # (whatever SEMIRAD_KERNELS says)
        dispatch.add(np, a, a_ids, b, b_ids)
        dispatch.add(np, a.T, a_ids.T, b.T, b_ids.T)  # all F-contiguous
        assert len(calls) == 2
        dispatch.add(np, a, a_ids, b.astype(np.float32), b_ids)  # mixed dtypes: numpy's steps
        dispatch.add(np, a, a_ids.T.copy().T, b, b_ids)  # layouts differ: numpy's steps
    assert len(calls) == 2
