"""numba kernel: the max-abs-times contraction with argmax (MaxAbsProduct's ``matmul``).

``out[b, i, k] = v[i, j*] * w[j*, k]`` with ``j*`` the first ``j`` of largest ``|v[i, j] * w[j, k]|``,
and ``out_ids[b, i, k] = ids[i, j*]`` — bit for bit what the numpy reference
:func:`semirad.backend.max_abs_matmul_reference` computes, for finite inputs of one float dtype.

How it is fast. A task is a block of ``ROWS`` output rows and a chunk of ``CHUNK`` output columns.
The loop over the columns ``k`` is innermost and elementwise, so LLVM vectorizes it (on chunk
views indexed from 0: an index it cannot prove non-negative keeps numba's wrap-around test and
stops the vectorizer); large calls ask LLVM for 512-bit vectors where the CPU has them
(:func:`_prefer_512_bit_vectors`, :data:`WIDE_MIN_WORK`). ``j`` advances in groups of 8 rows of
``w``: ``|w|`` of the group is written once to a small scratch shared by the task's rows. From
:data:`DEFER_MIN_N` ``j`` on, each lane keeps only the group's largest product (seven ``max``)
and, where it beats the running best by a strict ``>`` (an earlier group keeps a tie), the
group's first ``j``; the last pass finds the first ``j`` of that group whose product equals the
best (:func:`_first_of_group`). For fewer ``j`` that search costs more than it saves, and a
tournament with strict ``>`` at every match keeps the exact ``j`` instead (the earlier ``j`` on a
tie). ``|a * b| == |a| * |b|`` exactly, so the products compared are the reference's. The
winning ``j`` is kept as a float of the value dtype (lanes of one width vectorize; float32 is
exact below ``2**24``). The last pass writes the signed product ``v[i, j*] * w[j*, k]`` and the id.
A vector times a matrix has its own serial loop built the same way (:func:`_vector_matrix`), and
a small product of two matrices runs the same tasks from one compiled call that also checks the
inputs and looks for dead ends (:func:`_run_small`): around small products the Python of the
general path cost more than the products. :func:`max_abs_sum_rows` is MaxAbsProduct's sum over
the rows of a matrix (a bias's gradient over its batch) in one call.

Non-finite input: tasks whose rows start at 0 fold ``|w| - |w|`` (0, or NaN for inf and NaN)
into ``bad`` while they read ``w``, and the caller checks the values with one ``sum``; either
way the caller returns None and the numpy reference runs, whose ``argmax`` decides what a NaN
does (the trace then stops at the next vertex with a clear error, as before).
"""

from __future__ import annotations

import math
import threading

import numpy as np
from numba import get_num_threads, njit, prange, types
from numba.extending import intrinsic

from .elementwise import _NO_PATH

#: below this many products per call the serial kernel runs (thread start-up would dominate)
PARALLEL_MIN_WORK = 1 << 17
#: below this many products a product of two matrices (m > 1) is one compiled call (:func:`_small`),
#: and below ``WIDE_MIN_WORK`` too where numba runs one thread (measured: docs/design.md, "Thresholds")
SMALL_MAX_WORK = PARALLEL_MIN_WORK
#: from this many products per call 512-bit vectors are used where the CPU has them (switching to them
#: costs a few µs; docs/design.md, "Thresholds")
WIDE_MIN_WORK = 1 << 20
#: output rows per task: they share every load of ``w``
ROWS = 8
#: output columns per task: 8 rows of ``w`` (one group of j) plus the rows' running best stay in cache
CHUNK = 512
#: from this many ``j`` a row block keeps only each group's largest product and finds the winner in
#: its group at the end (:func:`_update8`, :func:`_first_of_group`); below, a tournament keeps the
#: exact ``j`` (:func:`_update8_exact`) (measured: docs/design.md, "Thresholds")
DEFER_MIN_N = 512


@intrinsic
def _prefer_512_bit_vectors(typingctx):
    """Mark the function being compiled with LLVM's ``prefer-vector-width=512``.

    On AVX-512 CPUs LLVM keeps to 256-bit vectors unless asked; the attribute asks for this kernel
    only (numba's other code, the user's included, is left as it is). Without AVX-512 it changes nothing.
    """

    def codegen(context, builder, signature, args):
        # llvmlite checks attribute names against a fixed list (a set); a string attribute added to
        # the set is written to the IR as is. Should a later llvmlite store them otherwise, the
        # kernel still compiles, only with LLVM's default vector width.
        try:
            set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        except TypeError:
            pass
        return context.get_dummy_value()

    return types.none(), codegen


@njit(cache=True, inline="always")
def _larger(a, b):
    """``max(a, b)`` for the values compared here (one vector instruction)."""
    return a if a > b else b


@njit(cache=True, inline="always")
def _max8(p0, p1, p2, p3, p4, p5, p6, p7):
    """The largest of 8 products (its value only: the group's winning ``j`` is found at the end)."""
    return _larger(
        _larger(_larger(p0, p1), _larger(p2, p3)),
        _larger(_larger(p4, p5), _larger(p6, p7)),
    )


@njit(cache=True, inline="always")
def _keep_larger(best, winner, k, q, j):
    """Merge the candidate ``q`` (from ``j``) into the running best of lane ``k``: a strict ``>``, so
    an earlier candidate keeps a tie.

    Written so that LLVM stores both lanes whole: given ``best[k] = q if c else best[k]`` it stores
    only where ``c`` holds (``vmaskmovpd``, microcoded and slow on AMD Zen; the loops ran 1.4x
    longer with it on Zen 3), and given ``winner[k]`` read after the compare, it loads it masked.
    ``old + 0.0`` is ``old`` to the bit for every value kept here (-1, or a product of magnitudes,
    never -0.0), but LLVM may not assume so.
    """
    old = best[k]
    previous = winner[k]
    c = q > old
    best[k] = q if c else old + 0.0
    winner[k] = j if c else previous


@njit(cache=True, inline="always")
def _abs8(a):
    """``|a[0]|, ..., |a[7]|``."""
    return abs(a[0]), abs(a[1]), abs(a[2]), abs(a[3]), abs(a[4]), abs(a[5]), abs(a[6]), abs(a[7])


@njit(cache=True, inline="always")
def _update8(best, ix, a, w0, w1, w2, w3, w4, w5, w6, w7, group, kn):
    """Fold 8 rows of ``|w|`` (rows ``j .. j+7``, times ``|a[j..j+7]|``) into the running best of one row;
    where the group's largest product beats the best so far (strict ``>``: an earlier group keeps a
    tie), ``ix`` takes the group's first ``j`` (``group``, a float of the value dtype).
    """
    a0, a1, a2, a3, a4, a5, a6, a7 = _abs8(a)
    for k in range(kn):
        q = _max8(a0 * w0[k], a1 * w1[k], a2 * w2[k], a3 * w3[k], a4 * w4[k], a5 * w5[k], a6 * w6[k], a7 * w7[k])
        _keep_larger(best, ix, k, q, group)


@njit(cache=True, inline="always")
def _tournament8(p0, p1, p2, p3, p4, p5, p6, p7, j0, j1, j2, j3, j4, j5, j6, j7):
    """The largest of 8 products and its j, by a tournament with strict '>' at every match: the
    earlier j wins a tie."""
    c = p1 > p0
    q01 = p1 if c else p0
    i01 = j1 if c else j0
    c = p3 > p2
    q23 = p3 if c else p2
    i23 = j3 if c else j2
    c = p5 > p4
    q45 = p5 if c else p4
    i45 = j5 if c else j4
    c = p7 > p6
    q67 = p7 if c else p6
    i67 = j7 if c else j6
    c = q23 > q01
    qa = q23 if c else q01
    ia = i23 if c else i01
    c = q67 > q45
    qb = q67 if c else q45
    ib = i67 if c else i45
    c = qb > qa
    return (qb if c else qa), (ib if c else ia)


@njit(cache=True, inline="always")
def _update8_exact(best, ix, a, w0, w1, w2, w3, w4, w5, w6, w7, j, kn):
    """:func:`_update8` keeping the exact winning ``j`` (``j[u]`` for row ``j + u``) by a tournament:
    more selects per product, no search at the end (the better choice where ``n`` is small)."""
    a0, a1, a2, a3, a4, a5, a6, a7 = _abs8(a)
    j0, j1, j2, j3, j4, j5, j6, j7 = j[0], j[1], j[2], j[3], j[4], j[5], j[6], j[7]
    for k in range(kn):
        p0 = a0 * w0[k]
        p1 = a1 * w1[k]
        p2 = a2 * w2[k]
        p3 = a3 * w3[k]
        p4 = a4 * w4[k]
        p5 = a5 * w5[k]
        p6 = a6 * w6[k]
        p7 = a7 * w7[k]
        q, iq = _tournament8(p0, p1, p2, p3, p4, p5, p6, p7, j0, j1, j2, j3, j4, j5, j6, j7)
        _keep_larger(best, ix, k, q, iq)


@njit(cache=True, inline="always")
def _first_of_group(v, w, j, k, best, n8):
    """The winning ``j`` of column ``k``: the first of the 8 rows ``j .. j+7`` (a group, ``j < n8``)
    with ``|v[j] * w[j, k]| == best``, or ``j`` itself (a row after the last group). The group
    holds the winner, and ``|a * b| == |a| * |b|`` exactly, so the product compared is the one
    that won. Eight compares and selects, no branch on the data."""
    if j >= n8:
        return j
    first = j + 7
    for u in range(6, -1, -1):
        first = j + u if abs(v[j + u]) * abs(w[j + u, k]) == best else first
    return first


@njit(cache=True, inline="always")
def _check8(chk, w0, w1, w2, w3, w4, w5, w6, w7, kn):
    """``chk += w - w`` over 8 rows (of ``|w|``): stays 0 while every weight is finite, NaN otherwise."""
    for k in range(kn):
        chk[k] += ((w0[k] - w0[k]) + (w1[k] - w1[k])) + ((w2[k] - w2[k]) + (w3[k] - w3[k])) + (
            ((w4[k] - w4[k]) + (w5[k] - w5[k])) + ((w6[k] - w6[k]) + (w7[k] - w7[k]))
        )


@njit(cache=True, inline="always")
def _task(t, nrb, nkc, kc, ids_of_w, v, vix, w, wix, ids, iix, out_v, out_i, bad):
    m = out_v.shape[1]
    p = out_v.shape[2]
    n = v.shape[2]
    n8 = n - n % 8
    b = t // (nrb * nkc)
    r = t % (nrb * nkc)
    i0 = (r // nkc) * ROWS
    i1 = min(m, i0 + ROWS)
    k0 = (r % nkc) * kc
    k1 = min(p, k0 + kc)
    kn = k1 - k0
    vb = v[vix[b]]
    wb = w[wix[b]]
    # loops run over range(kn) on chunk views: an index LLVM knows is >= 0 vectorizes
    # the winning j (or its group's first j) as a value-dtype float: lanes of one width
    idx = np.empty((ROWS, kn), dtype=out_v.dtype)
    jf = np.empty(8, dtype=out_v.dtype)  # the group's j, as value-dtype floats
    deferred = n >= DEFER_MIN_N
    aw = np.empty((8, kn), dtype=out_v.dtype)  # |w| of the current group of 8 rows, shared by the task's rows
    for i in range(i0, i1):
        best = out_v[b, i, k0:k1]
        ix = idx[i - i0]
        for k in range(kn):
            best[k] = -1.0
            ix[k] = 0.0
    for j in range(0, n8, 8):
        for u in range(8):
            jf[u] = j + u
        for u in range(8):  # |w| of the group once, for all the task's rows
            src = wb[j + u, k0:k1]
            dst = aw[u]
            for k in range(kn):
                dst[k] = abs(src[k])
        w0 = aw[0]
        w1 = aw[1]
        w2 = aw[2]
        w3 = aw[3]
        w4 = aw[4]
        w5 = aw[5]
        w6 = aw[6]
        w7 = aw[7]
        if i0 == 0:
            _check8(bad[b, k0:k1], w0, w1, w2, w3, w4, w5, w6, w7, kn)
        if deferred:  # chosen outside the loop over rows: inside it, LLVM's code for small n ran 1.2x slower
            for i in range(i0, i1):
                a = vb[i, j : j + 8]
                _update8(out_v[b, i, k0:k1], idx[i - i0], a, w0, w1, w2, w3, w4, w5, w6, w7, jf[0], kn)
        else:
            for i in range(i0, i1):
                a = vb[i, j : j + 8]
                _update8_exact(out_v[b, i, k0:k1], idx[i - i0], a, w0, w1, w2, w3, w4, w5, w6, w7, jf, kn)
    for j in range(n8, n):
        jf[0] = j
        jj = jf[0]
        wj = wb[j, k0:k1]
        if i0 == 0:
            chk = bad[b, k0:k1]
            for k in range(kn):
                chk[k] += wj[k] - wj[k]
        for i in range(i0, i1):
            best = out_v[b, i, k0:k1]
            ix = idx[i - i0]
            a = abs(vb[i, j])
            for k in range(kn):
                q = a * abs(wj[k])
                _keep_larger(best, ix, k, q, jj)
    # the winning j inside its group, the signed product and the id of the winner: ids[i, j] (of v),
    # or ids[j, k] when ids_of_w
    for i in range(i0, i1):
        best = out_v[b, i, k0:k1]
        arg = out_i[b, i, k0:k1]
        ix = idx[i - i0]
        vi = vb[i]
        if ids_of_w:
            idw = ids[iix[b]]
            for k in range(kn):
                jj = _first_of_group(vi, wb, int(ix[k]), k0 + k, best[k], n8) if deferred else int(ix[k])
                best[k] = vi[jj] * wb[jj, k0 + k]
                arg[k] = idw[jj, k0 + k]
        else:
            idsi = ids[iix[b], i]
            for k in range(kn):
                jj = _first_of_group(vi, wb, int(ix[k]), k0 + k, best[k], n8) if deferred else int(ix[k])
                best[k] = vi[jj] * wb[jj, k0 + k]
                arg[k] = idsi[jj]


def _signature(dtype):
    # inputs typed read-only (a writable array converts to it), so that one compiled version per
    # dtype serves read-only views (broadcast ids) and writable arrays alike; v and ids, read one
    # element at a time, take any strides ("A": transposed and broadcast views are not copied),
    # w, read along rows by the vectorized loop, must be C-contiguous
    def ro(dt, nd, layout="C"):
        return types.Array(dt, nd, layout, readonly=True)

    def rw(dt, nd):
        return types.Array(dt, nd, "C")

    i64 = types.int64
    return types.void(
        i64, i64, i64, i64, i64, ro(dtype, 3, "A"), ro(i64, 1), ro(dtype, 3), ro(i64, 1), ro(i64, 3, "A"), ro(i64, 1),
        rw(dtype, 3), rw(i64, 3), rw(dtype, 2),
    )


_SIGNATURES = [_signature(types.float32), _signature(types.float64)]


@njit(cache=True, inline="always")
def _task_wide(t, nrb, nkc, kc, ids_of_w, v, vix, w, wix, ids, iix, out_v, out_i, bad):
    _prefer_512_bit_vectors()
    _task(t, nrb, nkc, kc, ids_of_w, v, vix, w, wix, ids, iix, out_v, out_i, bad)


@njit(_SIGNATURES, cache=True, parallel=True)
def _run_parallel_wide(ntasks, nrb, nkc, kc, ids_of_w, v, vix, w, wix, ids, iix, out_v, out_i, bad):
    for t in prange(ntasks):
        _task_wide(t, nrb, nkc, kc, ids_of_w, v, vix, w, wix, ids, iix, out_v, out_i, bad)


@njit(_SIGNATURES, cache=True, parallel=True)
def _run_parallel(ntasks, nrb, nkc, kc, ids_of_w, v, vix, w, wix, ids, iix, out_v, out_i, bad):
    for t in prange(ntasks):
        _task(t, nrb, nkc, kc, ids_of_w, v, vix, w, wix, ids, iix, out_v, out_i, bad)


@njit(_SIGNATURES, cache=True)
def _run_serial(ntasks, nrb, nkc, kc, ids_of_w, v, vix, w, wix, ids, iix, out_v, out_i, bad):
    for t in range(ntasks):
        _task(t, nrb, nkc, kc, ids_of_w, v, vix, w, wix, ids, iix, out_v, out_i, bad)


def _batch_map(batch_shape: tuple, full: tuple) -> np.ndarray:
    """For each flat index of the broadcast batch ``full``, the flat index into ``batch_shape``."""
    own = np.arange(math.prod(batch_shape), dtype=np.int64).reshape(batch_shape)
    return np.ascontiguousarray(np.broadcast_to(own, full)).reshape(-1)


_ZERO = np.zeros(1, dtype=np.int64)
#: what :func:`_vector_matrix` found
_NOT_FINITE, _DONE, _DEAD_END = 0, 1, 2
_PARALLEL = threading.Lock()


def max_abs_matmul(values, ids, weights, dtype):
    """The kernel on numpy arrays of float ``dtype`` (float32/float64), ``n >= 1``.

    Returns ``(out_values, out_ids, dead_end)``, or ``None`` when a value or weight is not finite
    (the caller then runs the numpy reference, which defines what happens with NaN). ``dead_end``
    says whether an output id is ``NO_PATH`` where the kernel found out on the way, else is None.
    """
    m, n = values.shape[-2:]
    p = weights.shape[-1]
    if n >= 1 << 24 and dtype == np.float32:
        return None  # the winning j is kept as a float32 in the kernel: exact only below 2**24
    if ids.shape != values.shape:
        ids = np.broadcast_to(ids, values.shape)
    if values.ndim == 2 and weights.ndim == 2:
        if m == 1 and values.dtype == dtype and weights.dtype == dtype:
            return _one_row(values, ids, weights)
        # weights a transposed view (x @ W.T, the input gradient of a dense layer): contract
        # out.T = weights.T (x) values.T instead, which reads W in place and copies only the
        # smaller values; the ids then come from the second operand, and j is the same index
        swap = weights.dtype == dtype and weights.T.flags.c_contiguous and not weights.flags.c_contiguous and m <= p
        work = m * n * p
        if (
            (work < SMALL_MAX_WORK or (work < WIDE_MIN_WORK and get_num_threads() == 1))
            and values.dtype == dtype and weights.dtype == dtype and ids.dtype == np.int64
        ):
            if not swap:
                return _small(values, ids, weights)
            out = _small(weights.T, ids.T, values.T, ids_of_w=1)
            return None if out is None else (out[0].T, out[1].T, out[2])
        if swap:
            out = _run(weights.T, values.T, ids.T, dtype, (), 1, _ZERO, _ZERO, ids_of_w=1)
            return None if out is None else (out[0].T, out[1].T, None)
        return _run(values, weights, ids, dtype, (), 1, _ZERO, _ZERO)
    vb, wb = values.shape[:-2], weights.shape[:-2]
    batch = np.broadcast_shapes(vb, wb)
    nbatch = math.prod(batch)
    if vb == batch and wb == batch:
        vix = wix = np.arange(nbatch, dtype=np.int64)
    else:
        vix, wix = _batch_map(vb, batch), _batch_map(wb, batch)
    return _run(values, weights, ids, dtype, batch, nbatch, vix, wix)


def _small(values, ids, weights, ids_of_w=0):
    """A small product of two matrices: one compiled call that checks the inputs, runs the serial
    tasks and says whether an output is a dead end (:func:`_run_small`). ``ids`` go with
    ``weights`` where ``ids_of_w`` (the transposed contraction of :func:`max_abs_matmul`).

    ``_run`` spends about 10 µs of Python around its kernel (the checks of ``values`` and of the
    kernel's ``bad``, reshapes, allocations, fourteen arguments), and the caller another 2 on a
    pass for dead ends: more than the products of a (32 x 20) @ (20 x 20) layer take. The tasks
    are the same, and so are the bits.
    """
    m, p = values.shape[0], weights.shape[1]
    out_v = np.empty((1, m, p), dtype=values.dtype)
    out_i = np.empty((1, m, p), dtype=np.int64)
    status = _run_small(values[None], np.ascontiguousarray(weights)[None], ids[None], out_v, out_i, ids_of_w)
    return None if status == _NOT_FINITE else (out_v[0], out_i[0], status == _DEAD_END)


def _small_signature(dtype):
    def ro(dt, layout):
        return types.Array(dt, 3, layout, readonly=True)

    return types.int64(ro(dtype, "A"), ro(dtype, "C"), ro(types.int64, "A"), types.Array(dtype, 3, "C"),
                       types.Array(types.int64, 3, "C"), types.int64)


@njit([_small_signature(types.float32), _small_signature(types.float64)], cache=True)
def _run_small(v, w, ids, out_v, out_i, ids_of_w):
    """The serial tasks of ``v[0] (x) w[0]`` into ``out_v[0]``, ``out_i[0]`` (ids of ``v``, or of
    ``w`` where ``ids_of_w``). Returns ``_NOT_FINITE`` (outputs undefined) if an element of ``v``
    or ``w`` is not finite, else ``_DEAD_END`` if an output id is ``NO_PATH``, else ``_DONE``."""
    m, n = v.shape[1], v.shape[2]
    p = w.shape[2]
    check = 0.0
    for i in range(m):
        for j in range(n):
            check += v[0, i, j] - v[0, i, j]
    if check != 0.0:  # NaN
        return _NOT_FINITE
    bad = np.zeros((1, p), dtype=out_v.dtype)
    zero = np.zeros(1, dtype=np.int64)
    nrb = (m + ROWS - 1) // ROWS
    nkc = (p + CHUNK - 1) // CHUNK
    for t in range(nrb * nkc):
        _task(t, nrb, nkc, CHUNK, ids_of_w, v, zero, w, zero, ids, zero, out_v, out_i, bad)
    for k in range(p):
        check += bad[0, k]
    if check != 0.0:
        return _NOT_FINITE
    for i in range(m):
        for k in range(p):
            if out_i[0, i, k] == _NO_PATH:
                return _DEAD_END
    return _DONE


def _reduce_signature(dtype):
    return types.boolean(types.Array(dtype, 2, "A", readonly=True), types.Array(types.int64, 2, "A", readonly=True),
                         types.Array(dtype, 1, "C"), types.Array(types.int64, 1, "C"))


@njit([_reduce_signature(types.float32), _reduce_signature(types.float64)], cache=True)
def max_abs_sum_rows(v, ids, out_v, out_i):
    """MaxAbsProduct's sum over axis 0 of ``(v, ids)`` (``m >= 1`` rows, any strides): ``out_v[k] =
    v[i, k]``, ``out_i[k] = ids[i, k]`` for the first ``i`` of largest ``|v[i, k]|``, except that a
    dead end (``ids[i, k] == NO_PATH``, value 0) gives way to the column's first real path (then
    every value of the column is 0). Returns False (outputs undefined) if an element of ``v`` is
    not finite: numpy's ``argmax`` decides what a NaN does.
    """
    m, p = v.shape
    best = np.empty(p, dtype=v.dtype)
    arg = np.zeros(p, dtype=np.int64)
    check = 0.0
    for k in range(p):
        best[k] = -1.0
    for i in range(m):
        for k in range(p):
            x = v[i, k]
            check += x - x
            q = abs(x)
            if q > best[k]:
                best[k] = q
                arg[k] = i
    if check != 0.0:  # NaN
        return False
    for k in range(p):
        i = arg[k]
        if ids[i, k] == _NO_PATH:
            for r in range(m):
                if ids[r, k] != _NO_PATH:
                    i = r
                    break
        out_v[k] = v[i, k]
        out_i[k] = ids[i, k]
    return True


def _one_row(values, ids, weights):
    """A vector times a matrix (``m == 1``, serial): one compiled call, few arguments.

    For small products the general kernel's tasks cost more set-up than the work (13 µs, 32 for a
    transposed weight, against BLAS's 2 µs at 100 x 100; this path 6.5 and 11-15 on an Intel
    Xeon). For large ones this serial loop was as fast as the general kernel on two threads (AMD
    EPYC, Zen 1: 2.7 against 3.3 ms at 2000 x 2000, 10.3 against 10.7 at 4000, 0.63 against 0.51
    at 1000; on one thread the general kernel took 4.3 ms at 2000). The rule is the same (the
    first ``j`` keeps a tie), and so are the bits.
    """
    p = weights.shape[1]
    v = np.ascontiguousarray(values[0])
    i = np.ascontiguousarray(ids[0], dtype=np.int64)
    out_v = np.empty((1, p), dtype=values.dtype)
    out_i = np.empty((1, p), dtype=np.int64)
    # a transposed weight (x @ W.T) is copied: its rows would be reductions with an argmax, which
    # do not vectorize (a kernel with eight lanes over j ran 8.6 µs at 100 x 100, copy and kernel 8.7)
    status = _vector_matrix(v, np.ascontiguousarray(weights), i, out_v[0], out_i[0])
    return None if status == _NOT_FINITE else (out_v, out_i, status == _DEAD_END)


@njit(cache=True)
def _vector_matrix(v, w, ids, out_v, out_i):
    """``out_v[k] = v[j] * w[j, k]`` for the first ``j`` of largest ``|v[j] * w[j, k]|``, ``out_i[k] =
    ids[j]``. Returns ``_NOT_FINITE`` (and the outputs undefined) if an element of ``v`` or ``w`` is
    not finite, else ``_DEAD_END`` if an ``out_i`` is ``NO_PATH``, else ``_DONE``.

    Rows of ``w`` are taken 8 at a time, as in :func:`_update8`: the group's largest product, and
    the group's first ``j`` where it beats the best so far; the winner inside the group is found
    at the end (:func:`_first_of_group`). The sum of every product is not finite if a weight is
    not (``0 * inf`` is NaN).
    """
    n, p = w.shape
    n8 = n - n % 8
    best = np.empty(p, dtype=w.dtype)
    winner = np.zeros(p, dtype=w.dtype)  # a group's first j, as a value-dtype float: lanes of one width
    total = np.zeros(p, dtype=w.dtype)
    group = np.empty(1, dtype=w.dtype)
    for k in range(p):
        best[k] = -1.0
    for j in range(0, n8, 8):
        group[0] = j
        g = group[0]
        a0, a1, a2, a3, a4, a5, a6, a7 = _abs8(v[j : j + 8])
        w0, w1, w2, w3, w4, w5, w6, w7 = w[j], w[j + 1], w[j + 2], w[j + 3], w[j + 4], w[j + 5], w[j + 6], w[j + 7]
        for k in range(p):
            p0 = a0 * abs(w0[k])
            p1 = a1 * abs(w1[k])
            p2 = a2 * abs(w2[k])
            p3 = a3 * abs(w3[k])
            p4 = a4 * abs(w4[k])
            p5 = a5 * abs(w5[k])
            p6 = a6 * abs(w6[k])
            p7 = a7 * abs(w7[k])
            total[k] += ((p0 + p1) + (p2 + p3)) + ((p4 + p5) + (p6 + p7))
            q = _max8(p0, p1, p2, p3, p4, p5, p6, p7)
            _keep_larger(best, winner, k, q, g)
    for j in range(n8, n):
        group[0] = j
        g = group[0]
        a = abs(v[j])
        row = w[j]
        for k in range(p):
            q = a * abs(row[k])
            total[k] += q
            _keep_larger(best, winner, k, q, g)
    check = 0.0
    for j in range(n):
        check += v[j] - v[j]
    for k in range(p):
        check += total[k] - total[k]
    if check != 0.0:  # NaN
        return _NOT_FINITE
    status = _DONE
    for k in range(p):
        j = _first_of_group(v, w, int(winner[k]), k, best[k], n8)
        out_v[k] = v[j] * w[j, k]
        out_i[k] = ids[j]
        if ids[j] == _NO_PATH:
            status = _DEAD_END
    return status


def _run(values, weights, ids, dtype, batch, nbatch, vix, wix, ids_of_w=0):
    m, n = values.shape[-2:]
    p = weights.shape[-1]
    v = np.asarray(values, dtype=dtype).reshape((math.prod(values.shape[:-2]), m, n))  # a view when it can be
    s = v.sum()  # one pass, no temporary: not finite if an element is not (or if the sum overflows)
    if not math.isfinite(s) and not np.isfinite(v).all():
        return None
    w = np.ascontiguousarray(weights, dtype=dtype).reshape((math.prod(weights.shape[:-2]), n, p))
    i = np.asarray(ids, dtype=np.int64)
    i = i.reshape((math.prod(i.shape[:-2]),) + i.shape[-2:])
    out_v = np.empty((nbatch, m, p), dtype=dtype)
    out_i = np.empty((nbatch, m, p), dtype=np.int64)
    if m and p:
        bad = np.zeros((nbatch, p), dtype=dtype)
        nkc = (p + CHUNK - 1) // CHUNK
        nrb = (m + ROWS - 1) // ROWS
        ntasks = nbatch * nrb * nkc
        args = (ntasks, nrb, nkc, CHUNK, ids_of_w, v, vix, w, wix, i, vix if not ids_of_w else wix, out_v, out_i, bad)
        work = nbatch * m * n * p
        if ntasks > 1 and (work >= WIDE_MIN_WORK or (work >= PARALLEL_MIN_WORK and get_num_threads() > 1)):
            with _PARALLEL:  # numba's workqueue threading layer must not be entered by two threads at once
                (_run_parallel_wide if work >= WIDE_MIN_WORK else _run_parallel)(*args)
        else:
            _run_serial(*args)
        if not math.isfinite(bad.sum()):
            return None
    return out_v.reshape(batch + (m, p)), out_i.reshape(batch + (m, p)), None
