"""The kernels behind :mod:`semirad.backend`: the numba max-abs contraction and the numpy reference.

Every test runs twice, once per implementation (``impl``: the numpy reference, and the numba
kernel where numba is installed), against an independent loop-by-loop reference written here:
for each output element, scan ``j`` upwards and keep the first largest ``|v[i, j] * w[j, k]|``.
"""

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import semirad as sr
from semirad import backend, fast, kernels
from semirad.semirings import MaxAbsProduct, SumProduct
from semirad.semirings.max_abs import dispatch as max_abs_dispatch
from semirad.semirings.max_abs import reference as max_abs_reference

IMPLS = ["numpy", pytest.param("numba", marks=pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed"))]


def loop_reference(values, ids, weights):
    """``max_abs_matmul`` by explicit loops (the documented rule, first j on equal ``|product|``)."""
    batch = np.broadcast_shapes(values.shape[:-2], weights.shape[:-2])
    m, n = values.shape[-2:]
    p = weights.shape[-1]
    dtype = np.result_type(values.dtype, weights.dtype)
    v = np.broadcast_to(values, batch + (m, n)).astype(dtype)
    w = np.broadcast_to(weights, batch + (n, p)).astype(dtype)
    i = np.broadcast_to(ids, values.shape)
    i = np.broadcast_to(i, batch + (m, n))
    out_v = np.zeros(batch + (m, p), dtype=dtype)
    out_i = np.full(batch + (m, p), backend.NO_PATH, dtype=np.int64)
    for b in itertools.product(*[range(d) for d in batch]):
        for r in range(m):
            for k in range(p):
                best, arg = -1.0, -1
                for j in range(n):
                    q = abs(v[b + (r, j)] * w[b + (j, k)])
                    if q > best:
                        best, arg = q, j
                if arg >= 0:
                    out_v[b + (r, k)] = v[b + (r, arg)] * w[b + (arg, k)]
                    out_i[b + (r, k)] = i[b + (r, arg)]
    return out_v, out_i


def check(values, ids, weights):
    got_v, got_i = max_abs_dispatch.matmul(np, values, ids, weights)
    want_v, want_i = loop_reference(values, ids, weights)
    assert got_v.dtype == want_v.dtype and got_i.dtype == np.int64
    assert got_v.shape == want_v.shape and got_i.shape == want_i.shape
    np.testing.assert_array_equal(got_v, want_v)  # bit for bit: the same products, the same winner
    np.testing.assert_array_equal(got_i, want_i)


def values_for(rng, shape, dtype, ties):
    if ties:  # few distinct magnitudes: many equal |products|, zeros included
        return rng.integers(-2, 3, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def fresh_ids(rng, shape):
    return rng.permutation(int(np.prod(shape))).reshape(shape).astype(np.int64) + 1000


# -- the contraction against the loop reference ---------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize(
    "m,n,p",
    # around the kernel's group of 8 rows of w (n = 7, 8, 9, 16, 17), empty and size-1 dims
    [(1, 1, 1), (3, 2, 5), (5, 7, 3), (4, 8, 4), (9, 9, 2), (2, 16, 3), (3, 17, 11), (0, 4, 3), (3, 4, 0), (3, 0, 4),
     (1, 30, 1), (1, 1, 30), (1, 37, 300), (1, 300, 37), (1, 2, 2),  # m = 1: the vector-matrix kernel
     (4, 1, 6)],  # n = 1: an outer product, nothing to compare
)
def test_matches_loop_reference(impl, dtype, ties, m, n, p):
    rng = np.random.default_rng(m * 100 + n * 10 + p)
    check(values_for(rng, (m, n), dtype, ties), fresh_ids(rng, (m, n)), values_for(rng, (n, p), dtype, ties))


@pytest.mark.parametrize("mode", IMPLS)
@given(
    m=st.integers(1, 12), n=st.integers(1, 20), p=st.integers(1, 12), seed=st.integers(0, 2**16),
    ties=st.booleans(), f32=st.booleans(),
)
def test_random_shapes_and_ties(mode, m, n, p, seed, ties, f32):
    rng = np.random.default_rng(seed)
    dtype = np.float32 if f32 else np.float64
    with kernels.using(mode):
        check(values_for(rng, (m, n), dtype, ties), fresh_ids(rng, (m, n)), values_for(rng, (n, p), dtype, ties))


@pytest.mark.parametrize(
    "vshape,wshape",
    [((3, 4, 5), (5, 2)), ((4, 5), (3, 5, 2)), ((2, 1, 3, 9), (4, 9, 2)), ((1, 3, 9), (2, 9, 2)),
     ((2, 3, 4, 9), (9, 6))],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batch_dimensions_broadcast(impl, vshape, wshape, dtype):
    rng = np.random.default_rng(len(vshape) * 7 + len(wshape))
    check(values_for(rng, vshape, dtype, True), fresh_ids(rng, vshape), values_for(rng, wshape, dtype, True))


def test_all_zero_products_take_the_first_j(impl):
    got_v, got_i = max_abs_dispatch.matmul(np, np.zeros((2, 11)), np.arange(22).reshape(2, 11), np.ones((11, 3)))
    np.testing.assert_array_equal(got_i, [[0, 0, 0], [11, 11, 11]])
    np.testing.assert_array_equal(got_v, np.zeros((2, 3)))


def test_an_exact_tie_goes_to_the_first_j_even_across_groups_of_eight(impl):
    v = np.zeros((1, 20))
    v[0, [3, 12, 19]] = [2.0, -2.0, 2.0]  # three equal |products|, in three groups of the kernel
    w = np.ones((20, 2))
    w[12, 1] = 1.5  # ... except in column 1, where j = 12 wins outright
    got_v, got_i = max_abs_dispatch.matmul(np, v, np.arange(100, 120)[None], w)
    np.testing.assert_array_equal(got_i, [[103, 112]])
    np.testing.assert_array_equal(got_v, [[2.0, -3.0]])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "m,n,p,transposed",
    # from DEFER_MIN_N j on, a row block keeps each group's largest product and finds the winner in
    # its group at the end: n around it, with a last partial group, and the x @ W.T reading
    # (DEFER_MIN_N_IN_PLACE where the weights are read in place)
    [(3, 63, 9, False), (5, 64, 9, False), (9, 69, 17, False), (6, 77, 10, True), (2, 128, 3, True),
     (3, 255, 9, False), (5, 256, 9, False), (4, 263, 12, False), (5, 517, 9, False), (2, 640, 3, True)],
)
def test_the_deferred_search_within_a_group_keeps_the_first_j(impl, packing, dtype, m, n, p, transposed):
    if kernels.AVAILABLE:  # the shapes above sit around the kernel's thresholds
        from semirad.kernels import max_abs

        assert (max_abs.DEFER_MIN_N, max_abs.DEFER_MIN_N_IN_PLACE) == (64, 256)
    rng = np.random.default_rng(m * 1000 + n)
    w = values_for(rng, (p, n), dtype, True).T if transposed else values_for(rng, (n, p), dtype, True)
    check(values_for(rng, (m, n), dtype, True), fresh_ids(rng, (m, n)), w)
    check(values_for(rng, (m, n), dtype, False), fresh_ids(rng, (m, n)), w)


@pytest.mark.parametrize("m", [1, 3])
def test_a_tie_inside_the_last_group_goes_to_its_first_j(impl, m):
    n = 520  # 65 groups of 8 (the deferred search for m = 3 too): the tie is inside the last one, at j = 515 and 517
    v = np.full((m, n), 0.5)
    v[:, [515, 517]] = [-3.0, 3.0]
    w = np.ones((n, 4))
    w[517, 2] = 1.25  # ... except in column 2, where j = 517 wins outright
    got_v, got_i = max_abs_dispatch.matmul(np, v, np.arange(m * n).reshape(m, n), w)
    np.testing.assert_array_equal(got_i, [[r * n + 515, r * n + 515, r * n + 517, r * n + 515] for r in range(m)])
    np.testing.assert_array_equal(got_v, [[-3.0, -3.0, 3.75, -3.0]] * m)


@pytest.fixture(params=["packed", "packed serially", "in place"])
def packing(request, monkeypatch):
    """The numba kernel packs the weights (contiguous chunks, and transposed for the search) from
    PACK_MIN_ROW_BLOCKS blocks of rows on, and reads them in place below; the packing pass runs on numba's
    threads from PACK_PARALLEL_MIN_ELEMENTS elements, on the calling thread below: each, whatever the shape."""
    if kernels.AVAILABLE:
        from semirad.kernels import max_abs

        monkeypatch.setattr(max_abs, "PACK_MIN_ROW_BLOCKS", 1 << 30 if request.param == "in place" else 1)
        monkeypatch.setattr(max_abs, "PACK_PARALLEL_MIN_ELEMENTS", 1 << 60 if request.param == "packed serially" else 0)
        monkeypatch.setattr(max_abs, "PACK_PARALLEL_MIN_JOBS", 0)
    return request.param


def _layouts(rng, m, n, p, dtype, ties):
    """``(v, ids, w)`` with v, w and the ids each C-contiguous or a transposed view, and ids also broadcast."""
    v = values_for(rng, (m, n), dtype, ties)
    vt = np.ascontiguousarray(v.T).T  # the same values, read as a transposed view
    w = values_for(rng, (n, p), dtype, ties)
    wt = np.ascontiguousarray(w.T).T
    ids = fresh_ids(rng, (m, n))
    idt = np.ascontiguousarray(ids.T).T
    for vv, ww, ii in itertools.product((v, vt), (w, wt), (ids, idt, np.broadcast_to(ids[:1], (m, n)))):
        yield vv, ii, ww


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "m,n,p",
    # the kernel's tasks: blocks of 8 rows (m = 7, 8, 9, 17), chunks of 128 (float64) or 256 (float32)
    # columns (p around them), groups of 8 j with a last partial group, below and above DEFER_MIN_N
    [(7, 64, 127), (8, 72, 128), (9, 65, 129), (17, 80, 255), (3, 130, 256), (10, 66, 257), (9, 40, 300),
     (16, 9, 513), (1, 64, 700)],
)
def test_tasks_at_the_edges_of_row_blocks_and_column_chunks(impl, packing, dtype, m, n, p):
    rng = np.random.default_rng(m * 1000 + n * 10 + p)
    for ties in (True, False):
        for v, ids, w in _layouts(rng, m, n, p, dtype, ties):
            got = max_abs_dispatch.matmul(np, v, ids, w)
            want = max_abs_reference.matmul(np, v, ids, w)
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_tie_in_every_place_of_a_group_goes_to_the_first_j(impl, packing, dtype):
    """The winner's search compares the 8 products of its group at once: the first equal one wins, at
    every position, in every column of a vector of lanes."""
    n, p = 96, 40  # deferred (n >= 64): 12 groups of 8
    for first in range(8):
        for second in range(first + 1, 9):
            v = np.full((2, n), 0.25, dtype=dtype)
            j0, j1 = 40 + first, 40 + second  # group 5 (j = 40 .. 47), the second maybe in group 6
            v[:, [j0, j1]] = [-3.0, 3.0]
            w = np.ones((n, p), dtype=dtype)
            w[j1, 7] = 2.0  # ... except in column 7, where j1 wins outright
            ids = np.arange(2 * n).reshape(2, n)
            got_v, got_i = max_abs_dispatch.matmul(np, v, ids, w)
            want_i = np.array([[r * n + j0] * p for r in range(2)])
            want_i[:, 7] = [j1, n + j1]
            np.testing.assert_array_equal(got_i, want_i)
            np.testing.assert_array_equal(got_v[:, 7], [6.0, 6.0])
            np.testing.assert_array_equal(np.delete(got_v, 7, axis=1), -3.0)


def test_calls_of_growing_and_shrinking_sizes_reuse_the_scratch(impl, packing):
    """The packed operands of a call live in a buffer kept for the next one: calls of other sizes and dtypes
    after it (larger, then smaller) see none of its contents."""
    rng = np.random.default_rng(21)
    for m, n, p, dtype in [(40, 80, 300, np.float64), (70, 300, 500, np.float32), (9, 20, 30, np.float64),
                           (70, 300, 500, np.float64), (33, 100, 90, np.float32)]:
        v, w = values_for(rng, (m, n), dtype, True), values_for(rng, (n, p), dtype, False)
        ids = fresh_ids(rng, (m, n))
        got = max_abs_dispatch.matmul(np, v, ids, w)
        want = max_abs_reference.matmul(np, v, ids, w)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("shape", [(6, 20, 9), (40, 90, 300)])  # one compiled call; the general kernel
@pytest.mark.parametrize("where", ["value", "weight", "C weight"])
def test_a_non_finite_element_of_a_transposed_operand_is_caught(impl, packing, shape, where):
    """Transposed views are copied into rows by the kernel, which checks them on the way."""
    m, n, p = shape
    rng = np.random.default_rng(22)
    v = np.ascontiguousarray(rng.standard_normal((n, m))).T
    w = np.ascontiguousarray(rng.standard_normal((p, n))).T
    if where == "value":
        v.base[n - 1, m - 1] = np.inf
    elif where == "weight":
        w.base[p - 1, n - 1] = np.nan
    else:  # a C-contiguous weight, read in place or packed
        w = np.ascontiguousarray(w)
        w[n - 3, p - 2] = -np.inf
    ids = fresh_ids(rng, (m, n))
    with np.errstate(invalid="ignore"):
        got = max_abs_dispatch.matmul(np, v, ids, w)
        want = max_abs_reference.matmul(np, v, ids, w)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def _kernel_flags(monkeypatch, max_abs):
    """The ``flags`` of every call of the general kernel's entry points (recorded, then passed on)."""
    seen = []
    for name in ("_run_serial", "_run_parallel", "_run_parallel_wide"):
        fn = getattr(max_abs, name)

        def spy(*args, fn=fn):
            seen.append(args[4])
            return fn(*args)

        monkeypatch.setattr(max_abs, name, spy)
    return seen


@pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "layout",
    # v C-contiguous with w read in place: no packing pass, the tasks of the first chunk check v (each
    # output batch, v broadcast over them); v transposed: the packing pass copies and checks it; w packed
    ["in place", "in place, v transposed", "in place, v broadcast over the batch", "packed", "packed serially"],
)
@pytest.mark.parametrize("where", ["value", "weight", "none"])
def test_the_general_kernel_declines_a_non_finite_operand_on_every_path(monkeypatch, dtype, layout, where):
    """The kernel itself returns None for a NaN or inf in any operand, whichever pass checks it (the
    dispatch then runs the reference): a missing check would return numbers."""
    from semirad.kernels import max_abs

    monkeypatch.setattr(max_abs, "PACK_MIN_ROW_BLOCKS", 1 if layout.startswith("packed") else 1 << 30)
    monkeypatch.setattr(max_abs, "PACK_PARALLEL_MIN_ELEMENTS", 1 << 60 if layout == "packed serially" else 0)
    monkeypatch.setattr(max_abs, "PACK_PARALLEL_MIN_JOBS", 0)
    seen = _kernel_flags(monkeypatch, max_abs)
    rng = np.random.default_rng(24)
    m, n, p = 40, 90, 300  # 1.08e6 products: the general kernel (not the one-call small path), 5 row blocks
    batch = (3,) if "batch" in layout else ()
    v = rng.standard_normal((m, n)).astype(dtype)
    if "transposed" in layout:
        v = np.ascontiguousarray(v.T).T
    w = rng.standard_normal(batch + (n, p)).astype(dtype)
    if where == "value":
        v[m - 1, n - 2] = np.nan  # the last row block
    elif where == "weight":
        w[(-1,) * len(batch) + (n - 1, p - 1)] = np.inf  # the last batch, row and chunk
    ids = fresh_ids(rng, (m, n))
    out = max_abs.max_abs_matmul(v, ids, w, np.dtype(dtype))
    assert len(seen) == 1
    flags = seen[0]
    assert bool(flags & max_abs._IN_PLACE) == layout.startswith("in place")
    assert bool(flags & max_abs._CHECK_IN_TASKS) == (layout in ("in place", "in place, v broadcast over the batch"))
    assert bool(flags & max_abs._PACK_SERIAL) == (layout == "packed serially")
    if where == "none":
        want = max_abs_reference.matmul(np, v, ids, w)
        np.testing.assert_array_equal(out[0], want[0])
        np.testing.assert_array_equal(out[1], want[1])
    else:
        assert out is None


@pytest.mark.parametrize("m,n,p", [(5, 30, 7), (64, 200, 300)])  # one compiled call; the general kernel
def test_a_dead_end_found_by_the_kernel_gives_way_to_a_real_path(impl, packing, m, n, p):
    """Each task says whether one of its ids is NO_PATH, so the caller needs no pass over the ids."""
    rng = np.random.default_rng(23)
    v, w = values_for(rng, (m, n), np.float64, True), values_for(rng, (n, p), np.float64, True)
    ids = fresh_ids(rng, (m, n))
    v[m - 1] = 0.0  # the last row: all products 0, the first j (a dead end) ties with real paths
    ids[m - 1, 0] = backend.NO_PATH
    got_v, got_i = max_abs_dispatch.matmul(np, v, ids, w)
    with kernels.using("numpy"):
        want_v, want_i = max_abs_dispatch.matmul(np, v, ids, w)
    np.testing.assert_array_equal(got_v, want_v)
    np.testing.assert_array_equal(got_i, want_i)
    assert (got_i[m - 1] == ids[m - 1, 1]).all()  # the first real path


@pytest.mark.parametrize("dtypes", [(np.float64, np.float64), (np.float32, np.float32), (np.float32, np.float64)])
def test_a_large_vector_matrix_product(impl, dtypes):
    """m = 1 with n * p past PARALLEL_MIN_WORK: the vector-matrix kernel, or, where the dtypes
    differ, the general kernel with tasks of one row."""
    rng = np.random.default_rng(len(str(dtypes)))
    v, w = values_for(rng, (1, 301), dtypes[0], True), values_for(rng, (301, 450), dtypes[1], True)
    check(v, fresh_ids(rng, (1, 301)), w)


@pytest.mark.parametrize("rows", [1, 4])
@pytest.mark.parametrize("where", [3, 9, 10])  # in a group of 8, in the last partial group (n = 11)
def test_a_non_finite_weight_anywhere_is_caught(impl, rows, where):
    rng = np.random.default_rng(where)
    v = rng.standard_normal((rows, 11))
    w = rng.standard_normal((11, 5))
    w[where, 3] = np.inf
    v[0, where] = 0.0  # 0 * inf: NaN, whose place in the result the numpy reference's argmax decides
    ids = fresh_ids(rng, (rows, 11))
    with np.errstate(invalid="ignore"):
        got = max_abs_dispatch.matmul(np, v, ids, w)
        want = max_abs_reference.matmul(np, v, ids, w)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert np.isnan(got[0][0, 3]) and np.isinf(got[0][1:, 3]).all()


def test_finite_products_whose_sum_overflows_still_match(impl):
    """The vector-matrix kernel tells a non-finite weight by the sum of the products, which large
    finite products overflow too: the numpy reference then runs, with the same answer."""
    rng = np.random.default_rng(8)
    v = rng.uniform(1, 2, (1, 20)) * 1e154
    w = rng.uniform(-2, 2, (20, 6)) * 1e153
    check(v, fresh_ids(rng, (1, 20)), w)
    assert np.isfinite(max_abs_dispatch.matmul(np, v, fresh_ids(rng, (1, 20)), w)[0]).all()


def test_mixed_dtypes_multiply_in_the_result_type(impl):
    rng = np.random.default_rng(3)
    v = rng.standard_normal((4, 9)).astype(np.float32)
    w = rng.standard_normal((9, 5))
    check(v, fresh_ids(rng, (4, 9)), w)
    assert max_abs_dispatch.matmul(np, v, fresh_ids(rng, (4, 9)), w)[0].dtype == np.float64


def test_views_transposed_weights_and_broadcast_ids(impl):
    rng = np.random.default_rng(4)
    w = rng.standard_normal((13, 9)).T  # a transposed view, as in x @ W.T
    v = rng.standard_normal((9, 6)).T  # a transposed view, as the gradient of a weight
    ids = np.broadcast_to(np.arange(9)[None, :], (6, 9))  # 0 strides, as after a broadcast
    check(v, ids, w)
    check(v, np.broadcast_to(np.arange(6)[:, None], (6, 9)), w)
    check(np.ascontiguousarray(v), fresh_ids(rng, (6, 9)), w)
    check(v.astype(np.float32), fresh_ids(rng, (6, 9)), w)  # the result type differs from w's: no in-place read
    for row in (v[:1], v[2:3]):  # one row (the vector-matrix kernel): transposed weights, broadcast ids
        check(row, np.broadcast_to(np.arange(9)[None, :], (1, 9)), w)
        check(row, np.broadcast_to(np.array([[7]]), (1, 9)), w)
        check(row.astype(np.float32), fresh_ids(rng, (1, 9)), w.astype(np.float32))


@pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")
@pytest.mark.parametrize("m,n,p", [(16, 80, 100), (400, 300, 300)])  # the small-product call, the general kernel
def test_a_transposed_weight_is_read_in_place(m, n, p):
    """``g @ W.T`` (a dense layer's input gradient): W is not copied, which would add its size to
    the sweep's peak memory; the smaller operand is."""
    import tracemalloc

    from semirad.kernels import max_abs

    assert (m * n * p < max_abs.SMALL_MAX_WORK) == (m == 16)
    rng = np.random.default_rng(13)
    w = rng.standard_normal((p, n))
    g, ids = rng.standard_normal((m, n)), fresh_ids(rng, (m, n))
    with kernels.using("numba"):  # (whatever SEMIRAD_KERNELS says: the kernel's memory is measured)
        max_abs_dispatch.matmul(np, g, ids, w.T)  # compiled and warm
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            out = max_abs_dispatch.matmul(np, g, ids, w.T)
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
    results = out[0].nbytes + out[1].nbytes
    assert peak < results + g.nbytes + w.nbytes // 2, (peak, results)
    want = max_abs_reference.matmul(np, g, ids, w.T)
    np.testing.assert_array_equal(out[0], want[0])
    np.testing.assert_array_equal(out[1], want[1])


def test_an_outer_product_takes_ids_of_any_strides(impl):
    rng = np.random.default_rng(12)
    v, w = rng.standard_normal((5, 1)), rng.standard_normal((1, 4))
    ids = fresh_ids(rng, (5, 2))
    for i in (ids[:, :1], ids[::-1, 1:], np.broadcast_to(np.int64(3), (5, 1)), np.ascontiguousarray(ids[:, :1])):
        check(v, i, w)
        check(v[::-1], i, w.T.copy().T)
    out_i = max_abs_dispatch.matmul(np, v, ids[:, :1].copy(), w)[1]
    assert not out_i.flags.writeable  # a view of the ids: a write would reach them


@pytest.mark.parametrize("where", ["value", "weight", "zero-times-inf"])
@pytest.mark.parametrize("rows", [5, 1])
def test_non_finite_inputs_behave_as_the_numpy_reference(impl, where, rows):
    rng = np.random.default_rng(5)
    v = rng.standard_normal((rows, 10))
    w = rng.standard_normal((10, 4))
    if where == "value":
        v[rows // 2, 3] = np.nan
    elif where == "weight":
        w[7, 1] = np.inf
    else:
        v[rows // 4, 4] = 0.0
        w[4, 2] = np.inf
    ids = fresh_ids(rng, (rows, 10))
    with np.errstate(invalid="ignore"):
        got = max_abs_dispatch.matmul(np, v, ids, w)
        want = max_abs_reference.matmul(np, v, ids, w)
    np.testing.assert_array_equal(got[0], want[0])  # NaN where the reference has NaN
    np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize(
    "m, n, p, dtype",
    [
        (21, 40, 600, np.float64),  # 21 * 40 * 600 products: the parallel kernel, several row blocks and chunks
        (37, 67, 700, np.float64),  # 1.7e6 products: its 512-bit compilation (WIDE_MIN_WORK)
        (37, 67, 700, np.float32),
        (130, 100, 300, np.float32),  # 17 blocks of rows: the weights packed at the real threshold
    ],
)
def test_large_enough_for_the_parallel_kernel(impl, packing, m, n, p, dtype):
    if impl == "numba" and m * n * p >= 1 << 20:
        from semirad.kernels import max_abs

        assert m * n * p >= max_abs.WIDE_MIN_WORK
    rng = np.random.default_rng(6)
    v = values_for(rng, (m, n), dtype, True)
    w = values_for(rng, (n, p), dtype, True)
    ids = fresh_ids(rng, (m, n))
    got = max_abs_dispatch.matmul(np, v, ids, w)
    want = max_abs_reference.matmul(np, v, ids, w)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")
@pytest.mark.parametrize("batch", [(), (3,)])  # one compiled call; the general kernel's serial loop
def test_one_numba_thread_runs_mid_sized_products_serially_with_the_same_bits(batch):
    import numba

    from semirad.kernels import max_abs

    m, n, p = 64, 50, 50
    assert max_abs.SMALL_MAX_WORK <= m * n * p < max_abs.WIDE_MIN_WORK
    rng = np.random.default_rng(14)
    v, w = values_for(rng, batch + (m, n), np.float64, True), values_for(rng, (p, n), np.float64, True).T
    ids = fresh_ids(rng, batch + (m, n))
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        got = max_abs_dispatch.matmul(np, v, ids, w)
    finally:
        numba.set_num_threads(before)
    want = max_abs_reference.matmul(np, v, ids, w)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


# -- batched products: broadcast batches, later batches ---------------------------------------------
@pytest.mark.parametrize(
    "vshape,wshape",
    [((6, 10, 16), (6, 16, 10)), ((2, 3, 9, 20), (2, 3, 20, 7)), ((4, 5, 9), (9, 3)), ((5, 9), (3, 9, 4)),
     ((2, 1, 5, 9), (1, 3, 9, 4)), ((3, 4, 140), (3, 140, 6)), ((2, 3, 9), (2, 9, 600)), ((1, 8, 8), (1, 8, 8))],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batched_products_of_every_layout(impl, packing, vshape, wshape, dtype):
    """Batches (attention heads) with broadcast batch axes, the deferred search (n = 140) and
    several column chunks (p = 600), on transposed views and broadcast ids."""
    rng = np.random.default_rng(sum(vshape) + sum(wshape))
    v, w = values_for(rng, vshape, dtype, True), values_for(rng, wshape, dtype, True)
    check(v, fresh_ids(rng, vshape), w)
    check(np.swapaxes(values_for(rng, vshape[:-2] + vshape[:-3:-1], dtype, False), -1, -2), fresh_ids(rng, vshape),
          np.swapaxes(values_for(rng, wshape[:-2] + wshape[:-3:-1], dtype, False), -1, -2))  # transposed views
    check(v, np.broadcast_to(np.arange(vshape[-1]), vshape), w)  # ids broadcast, as after a sum


@pytest.mark.parametrize("where", ["value", "weight", "zero-times-inf"])
def test_a_non_finite_input_in_a_later_batch_behaves_as_the_reference(impl, where):
    rng = np.random.default_rng(15)
    v, w = rng.standard_normal((4, 6, 10)), rng.standard_normal((4, 10, 5))
    if where == "value":
        v[3, 5, 9] = np.nan
    elif where == "weight":
        w[2, 9, 4] = -np.inf
    else:
        v[1, 0, 4], w[1, 4, 2] = 0.0, np.inf
    ids = fresh_ids(rng, v.shape)
    with np.errstate(invalid="ignore"):
        got = max_abs_dispatch.matmul(np, v, ids, w)
        want = max_abs_reference.matmul(np, v, ids, w)
    np.testing.assert_array_equal(got[0], want[0])  # NaN and inf where the reference has them
    np.testing.assert_array_equal(got[1], want[1])
    assert not np.isfinite(got[0]).all()


@pytest.mark.parametrize("batch", [0, 3])
def test_batched_products_with_empty_batches_rows_or_columns(impl, batch):
    rng = np.random.default_rng(16)
    for m, n, p in [(0, 4, 3), (3, 4, 0), (2, 5, 3)]:
        v, w = values_for(rng, (batch, m, n), np.float64, True), values_for(rng, (batch, n, p), np.float64, True)
        check(v, fresh_ids(rng, (batch, m, n)), w)


def test_a_dead_end_in_a_later_batch_gives_way_to_a_real_path(impl):
    values = np.array([[[1.0, 2.0]], [[0.0, 0.0]], [[0.0, 3.0]]])  # (3, 1, 2): batch 1 has a dead end first
    ids = np.array([[[5, 6]], [[backend.NO_PATH, 7]], [[backend.NO_PATH, 8]]])
    weights = np.array([[[1.0], [1.0]], [[1.0], [1.0]], [[1.0], [0.0]]])
    out_v, out_i = max_abs_dispatch.matmul(np, np.repeat(values, 2, axis=1), np.repeat(ids, 2, axis=1), weights)
    # batch 0: |2| wins (id 6); batch 1: products 0 and 0, the dead end first, the real path (id 7)
    # wins the tie; batch 2: products 0 (dead end) and 0 (real, 3 * 0), the real path again
    assert out_i[:, :, 0].tolist() == [[6, 6], [7, 7], [8, 8]]
    assert out_v[:, :, 0].tolist() == [[2.0, 2.0], [0.0, 0.0], [0.0, 0.0]]


# -- whole graphs: the two implementations give the same trace ------------------------------------
def _mlp_trace(dtype):
    rng = np.random.default_rng(7)
    x = sr.tensor(rng.integers(-2, 3, (6, 12)).astype(dtype))
    W1 = sr.tensor(rng.integers(-2, 3, (12, 10)).astype(dtype), requires_grad=True, name="W1")
    W2 = sr.tensor(rng.standard_normal((10, 3)).astype(dtype), requires_grad=True, name="W2")
    loss = ((x @ W1).tanh() @ W2).sum()
    tr = sr.trace(loss, [W1, W2])
    return tr, W1, W2


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_whole_trace_is_identical_under_both_kernels(dtype, monkeypatch):
    with kernels.using("numpy"), monkeypatch.context() as patch:
        patch.setattr(fast, "tanh", fast.tanh_reference)  # the tanh kernel's numpy transcription, not numpy's tanh
        ref, R1, R2 = _mlp_trace(dtype)
    modes = ["numba"] if kernels.AVAILABLE else []
    for mode in modes:
        with kernels.using(mode):
            tr, W1, W2 = _mlp_trace(dtype)
        for a, b in ((tr[W1], ref[R1]), (tr[W2], ref[R2])):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(tr.raw(W1)[1], ref.raw(R1)[1])
        assert [s.index for s in tr.path(W1, (3, 4)).steps] == [s.index for s in ref.path(R1, (3, 4)).steps]
    for t in (R1, R2):  # and every path's product is the reported value
        for index in np.ndindex(*t.shape):
            assert ref.path(t, index).value == pytest.approx(float(ref[t][index]), rel=1e-5)


# -- the fast paths of the semirings' other primitives --------------------------------------------
def test_sum_product_matmul_fast_paths_equal_plain_matmul():
    rng = np.random.default_rng(8)
    S = SumProduct()
    g, w = rng.standard_normal((7, 1)), rng.standard_normal((1, 5))
    np.testing.assert_array_equal(S.matmul(g, w), g @ w)  # k = 1: a broadcast multiply, same products
    g0 = np.broadcast_to(rng.standard_normal((1, 6)), (7, 6))  # a 0 stride: copied before BLAS
    w0 = rng.standard_normal((6, 4))
    np.testing.assert_allclose(S.matmul(g0, w0), np.ascontiguousarray(g0) @ w0, rtol=1e-15)
    np.testing.assert_allclose(S.matmul(w0.T, np.broadcast_to(w0[:, :1], (6, 3))), w0.T @ np.repeat(w0[:, :1], 3, 1))


@pytest.mark.parametrize("shape,axes", [((5000, 3), (0,)), ((3, 700, 2), (0, 1)), ((40, 3), (0,)), ((5, 6), (1,))])
def test_sum_product_sum_over_leading_axes(shape, axes):
    g = np.random.default_rng(9).standard_normal(shape)
    np.testing.assert_allclose(SumProduct().sum(g, axes), g.sum(axis=axes), rtol=1e-12, atol=1e-12)
    f = g.astype(np.float32)
    assert SumProduct().sum(f, axes).dtype == np.float32


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_max_abs_sum_over_one_axis_of_a_matrix(impl, axis, keepdims):
    rng = np.random.default_rng(10)
    value = rng.integers(-2, 3, (6, 5)).astype(float)
    ids = fresh_ids(rng, (6, 5))
    out_v, out_i = MaxAbsProduct().sum((value, ids), (axis,), keepdims)
    moved_v, moved_i = np.moveaxis(value, axis, -1), np.moveaxis(ids, axis, -1)
    first = np.abs(moved_v).argmax(axis=-1)  # first occurrence: the documented tie rule
    want_v = np.take_along_axis(moved_v, first[:, None], -1)[:, 0]
    want_i = np.take_along_axis(moved_i, first[:, None], -1)[:, 0]
    if keepdims:
        want_v, want_i = np.expand_dims(want_v, axis), np.expand_dims(want_i, axis)
    np.testing.assert_array_equal(out_v, want_v)
    np.testing.assert_array_equal(out_i, want_i)
    # ids broadcast along the reduced axis (as after scale) give the same result as materialized ones
    b_ids = np.broadcast_to(ids[:1], value.shape)
    np.testing.assert_array_equal(
        MaxAbsProduct().sum((value, b_ids), (axis,), keepdims)[1],
        MaxAbsProduct().sum((value, np.ascontiguousarray(b_ids)), (axis,), keepdims)[1],
    )


def _sum_rows_loop_reference(value, ids):
    """The documented rule by loops: first row of largest ``|value|``; a dead end gives way to the
    column's first real path."""
    out_v, out_i = np.empty(value.shape[1], value.dtype), np.empty(value.shape[1], np.int64)
    for k in range(value.shape[1]):
        i = max(range(value.shape[0]), key=lambda r: (abs(value[r, k]), -r))
        if ids[i, k] == backend.NO_PATH:
            i = next((r for r in range(value.shape[0]) if ids[r, k] != backend.NO_PATH), i)
        out_v[k], out_i[k] = value[i, k], ids[i, k]
    return out_v, out_i


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_max_abs_sum_over_rows_keeps_ties_dead_ends_and_views_right(impl, dtype):
    rng = np.random.default_rng(11)
    value = rng.integers(-2, 3, (7, 9)).astype(dtype)  # many ties
    ids = fresh_ids(rng, (7, 9))
    value[:, 2], ids[:3, 2] = 0, backend.NO_PATH  # dead ends first, then real paths of value 0
    value[:, 4], ids[:, 4] = 0, backend.NO_PATH  # nothing but dead ends
    cases = [
        (value, ids),
        (value[::-2], ids[::-2]),  # negative strides
        (np.asfortranarray(value), ids),
        (value, np.broadcast_to(ids[3], value.shape)),  # read-only, 0 strides
        (value[:1], ids[:1]),
    ]
    wide = rng.integers(-2, 3, (40, 100)).astype(dtype)  # C-contiguous and wide: the vectorized loop
    wide_ids = fresh_ids(rng, (40, 100))
    wide[:, 50:60], wide_ids[:9, 50:60] = 0, backend.NO_PATH
    cases += [(wide, wide_ids), (wide[:, 3:], wide_ids[:, 3:])]
    for v, i in cases:
        out_v, out_i = MaxAbsProduct().sum((v, i), (0,))
        want_v, want_i = _sum_rows_loop_reference(v, i)
        assert out_v.dtype == dtype
        np.testing.assert_array_equal(out_v, want_v)
        np.testing.assert_array_equal(out_i, want_i)
    value[5, 6] = np.nan  # numpy's argmax decides (the kernel steps aside)
    got = MaxAbsProduct().sum((value, ids), (0,))
    want = max_abs_reference.sum_rows(np, value, ids)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert np.isnan(got[0][6])


@pytest.mark.parametrize("axes", [(0, 1), (0, 2), (1,), (2,), (0, 1, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_max_abs_sum_over_several_axes_takes_the_first_in_c_order(impl, axes, keepdims):
    rng = np.random.default_rng(15)
    value = rng.integers(-2, 3, (3, 4, 5)).astype(float)
    ids = fresh_ids(rng, (3, 4, 5))
    value[:, 1, 2], ids[:2, 1, 2] = 0, backend.NO_PATH  # dead ends before real paths of value 0
    kept = [d for d in range(3) if d not in axes]
    rows = int(np.prod([value.shape[a] for a in axes]))
    shape = tuple(1 if d in axes else n for d, n in enumerate(value.shape)) if keepdims else tuple(
        value.shape[d] for d in kept
    )
    for i in (ids, np.broadcast_to(ids[:1], ids.shape)):  # materialized, and broadcast (0 strides)
        moved_v = np.transpose(value, list(axes) + kept).reshape(rows, -1)
        moved_i = np.transpose(i, list(axes) + kept).reshape(rows, -1)
        want_v, want_i = _sum_rows_loop_reference(moved_v, moved_i)
        out_v, out_i = MaxAbsProduct().sum((value, i[:1] if i is not ids else i), axes, keepdims)
        assert out_v.shape == shape == out_i.shape
        np.testing.assert_array_equal(out_v.reshape(-1), want_v)
        np.testing.assert_array_equal(out_i.reshape(-1), want_i)


# -- the switch -----------------------------------------------------------------------------------
def test_kernel_modes():
    with pytest.raises(ValueError, match="kernel mode"):
        kernels.use("fortran")
    with kernels.using("numpy"):
        assert not kernels.enabled() and kernels.mode() == "numpy"
    assert kernels.enabled() == (kernels.AVAILABLE and kernels.mode() != "numpy")
    if not kernels.AVAILABLE:
        with pytest.raises(RuntimeError, match="numba"):
            kernels.use("numba")


def _host_has_avx512() -> bool:
    if not kernels.AVAILABLE:
        return False
    import llvmlite.binding as llvm

    return "+avx512f" in llvm.get_host_cpu_features().flatten().split(",")


@pytest.mark.skipif(not _host_has_avx512(), reason="needs numba on a CPU with AVX-512")
def test_the_kernel_asks_llvm_for_512_bit_vectors_and_only_where_it_is_called():
    from numba import njit

    from semirad.kernels.max_abs import _prefer_512_bit_vectors

    def loop(a, b, out):
        for k in range(a.shape[0]):
            out[k] = max(a[k] * b[k], out[k])

    def marked_loop(a, b, out):
        _prefer_512_bit_vectors()
        loop_inlined(a, b, out)

    loop_inlined = njit(inline="always")(loop)
    plain, marked = njit(loop), njit(marked_loop)
    a = np.ones(256)
    for f in (plain, marked):
        out = np.zeros(256)
        f(a, 2 * a, out)
        assert (out == 2).all()
    plain_asm = "".join(plain.inspect_asm().values())
    marked_asm = "".join(marked.inspect_asm().values())
    assert "zmm" in marked_asm
    # numba's other functions keep LLVM's choice for this CPU (256-bit vectors on the AVX-512 CPUs it tunes so)
    assert marked_asm.count("zmm") > plain_asm.count("zmm")


_LAZY_RUNNERS = """
import numpy as np
import semirad.kernels.max_abs as M
before = sorted(M._RUNNERS)
v = np.arange(1.0, 13.0).reshape(3, 4)
w = np.arange(-10.0, 10.0).reshape(4, 5)
ids = np.arange(12, dtype=np.int64).reshape(3, 4)
out = M.max_abs_matmul(v, ids, w, np.dtype(np.float64))
after = sorted((kind, str(dtype)) for kind, dtype in M._RUNNERS)
print(before, after, out[0].tolist(), out[1].tolist())
"""


@pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")
def test_entry_points_compile_at_first_use_per_dtype(tmp_path):
    """Importing the kernel module compiles no entry point; a small float64 product compiles (or loads)
    the small one for float64 only."""
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", _LAZY_RUNNERS], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=600, check=True)  # fmt: skip
    v = np.arange(1.0, 13.0).reshape(3, 4)
    w = np.arange(-10.0, 10.0).reshape(4, 5)
    want_v, want_i = max_abs_reference.matmul(np, v, np.arange(12).reshape(3, 4), w)
    assert done.stdout.split()[:3] == ["[]", "[('small',", "'float64')]"]
    assert f"{want_v.tolist()} {want_i.tolist()}".replace(" ", "") in done.stdout.replace(" ", "")


@pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")
def test_the_512_bit_entry_point_is_compiled_only_for_avx512():
    max_abs = kernels.compiled("max_abs")
    wide, plain = max_abs.runner("wide", np.float32), max_abs.runner("parallel", np.float32)
    assert (wide is plain) == (not _host_has_avx512())
    assert max_abs.WIDE_VECTORS == _host_has_avx512()


@pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("p", [1, 20, 129])
def test_fewer_columns_than_a_chunk_are_packed_unpadded(dtype, p):
    """The general path with fewer output columns than a chunk holds (packed as they are) or one more:
    the reference's bits, values read in place or transposed."""
    max_abs = kernels.compiled("max_abs")
    rng = np.random.default_rng(p)
    m, n = 600, 300
    assert m * n * p >= max_abs.SMALL_MAX_WORK or p == 1
    w = rng.standard_normal((n, p)).astype(dtype)
    for v in (rng.standard_normal((m, n)).astype(dtype), rng.standard_normal((n, m)).astype(dtype).T):
        ids = np.arange(m * n, dtype=np.int64).reshape(m, n)
        got = max_abs_dispatch.matmul(np, v, ids, w)
        want = max_abs_reference.matmul(np, v, ids, w)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("m", [1, 3, 4, 5, 8, 11])
@pytest.mark.parametrize("n", [64, 71])
def test_register_tiles_keep_their_rows_and_columns_apart(packing, dtype, m, n):
    """Where the weights are packed and the search deferred, the main loop runs on tiles of TILE_ROWS rows and
    TILE_VECTORS 256-bit vectors of columns (16 float32, 8 float64), the columns after the last whole tile on
    the untiled loop: p on either side of one and two tiles, rows that fill a tile or not, a last partial group
    of j; against the loop reference, with ties and without."""
    lanes = 2 * 32 // np.dtype(dtype).itemsize
    if kernels.AVAILABLE:
        from semirad.kernels import max_abs

        assert max_abs.TILE_VECTORS * 32 // np.dtype(dtype).itemsize == lanes and max_abs.TILE_ROWS == 4
    rng = np.random.default_rng(m * 100 + n)
    for p in (lanes - 1, lanes, lanes + 1, 2 * lanes + 3):
        for ties in (True, False):
            check(values_for(rng, (m, n), dtype, ties), fresh_ids(rng, (m, n)), values_for(rng, (n, p), dtype, ties))


@given(
    m=st.integers(1, 40), n=st.integers(64, 140), p=st.integers(1, 70), seed=st.integers(0, 2**16),
    ties=st.booleans(), f32=st.booleans(), wide=st.booleans(),
)
def test_random_shapes_on_the_register_tiles(m, n, p, seed, ties, f32, wide):
    """Random shapes through the packed, deferred path (the register tiles, n >= DEFER_MIN_N, packed from
    one row block on), bit for bit the numpy reference: values and ids, with ties and without. ``wide``: the
    output's columns span two chunks (p above CHUNK_BYTES' columns), the last one partial."""
    dtype = np.float32 if f32 else np.float64
    if wide:
        p += 1024 // np.dtype(dtype).itemsize
    rng = np.random.default_rng(seed)
    v, w = values_for(rng, (m, n), dtype, ties), values_for(rng, (n, p), dtype, ties)
    ids = fresh_ids(rng, (m, n))
    with pytest.MonkeyPatch.context() as patch:
        if kernels.AVAILABLE:
            from semirad.kernels import max_abs

            patch.setattr(max_abs, "PACK_MIN_ROW_BLOCKS", 1)
        got = max_abs_dispatch.matmul(np, v, ids, w)
    want = max_abs_reference.matmul(np, v, ids, w)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
