"""numba kernel: the max-abs-times contraction with argmax (MaxAbsProduct's ``matmul``).

``out[b, i, k] = v[i, j*] * w[j*, k]`` with ``j*`` the first ``j`` of largest ``|v[i, j] * w[j, k]|``,
and ``out_ids[b, i, k] = ids[i, j*]`` — bit for bit what the numpy reference
:func:`semirad.semirings.max_abs.reference.matmul` computes, for finite inputs of one float dtype.

How it is fast. A call runs up to two passes (serial for small calls). The packing pass copies each
chunk of ``kc`` columns of ``w`` (``CHUNK_BYTES`` per row) into contiguous rows of ``|w|`` and,
transposed, into contiguous columns of ``w``, and copies ``v`` and its ids into contiguous rows where
they are views of other strides (transposed, broadcast); the
packed operands live in one buffer per thread kept for the next call (:func:`_scratch`: a fresh
buffer of a few MiB costs a page fault per 4 KiB). Where fewer than ``PACK_MIN_ROW_BLOCKS`` blocks
of rows would share a chunk, a C-contiguous ``w`` is read in place instead; where nothing is to be packed
(``w`` read in place, ``v`` and its ids C-contiguous) there is no packing pass, and the tasks of the first
chunk check their rows of ``v``. The packing pass runs on numba's threads (``prange``) from
``PACK_PARALLEL_MIN_ELEMENTS`` elements packed, else on the calling thread: each parallel region ends at a
barrier, which a thread the scheduler took off its core holds up. In the second pass (``prange``) a
task is a block of ``ROWS`` output rows and a chunk of columns (the row block varies fastest, so that
one thread's tasks read one chunk); its running best and winners live in a small contiguous
scratch (the output's rows lie ``p`` apart: for ``p = 512`` float64 they would share L1 sets). The
loop over the columns ``k`` is innermost and elementwise, so LLVM vectorizes it (on row views
indexed from 0: an index it cannot prove non-negative keeps numba's wrap-around test and stops
the vectorizer); large calls ask LLVM for 512-bit vectors where the CPU has them
(:func:`_prefer_512_bit_vectors`, :data:`WIDE_MIN_WORK`). ``j`` advances in groups of 8 rows of
``|w|``, shared by the task's rows. From :data:`DEFER_MIN_N` ``j`` on (``DEFER_MIN_N_IN_PLACE``
when ``w`` is read in place), each lane keeps only the group's largest product (seven ``max``) and,
where it beats the running best by a strict ``>`` (an earlier group keeps a tie), the group's first
``j``; the last pass finds the first ``j`` of that group whose product equals the best with one
vector multiply and compare of the group's 8 products and a bit scan (:func:`_winner8`, an LLVM
intrinsic, on the value's row and the transposed chunk's column; :func:`_winner8_strided` on ``w``
read in place). For fewer ``j`` that search costs more than it saves, and a tournament with strict
``>`` at every match keeps the exact ``j`` instead (the earlier ``j`` on a tie). ``|a * b| == |a| *
|b|`` exactly, so the products compared are the reference's. Where ``w`` is packed and the search
deferred, a task's main loop runs on register tiles instead (:func:`_tiled_task`): ``TILE_ROWS`` rows by
``TILE_VECTORS`` 256-bit vectors of columns, whose running bests stay in registers through a group of 8
``j`` (:func:`_fold_group`, an LLVM intrinsic), so that each load of ``|w|`` serves 4 rows where the
untiled loop loads it once per row. The winning ``j`` is kept as a float
of the value dtype (lanes of one width vectorize; float32 is exact below ``2**24``). The last pass
writes the signed product ``v[i, j*] * w[j*, k]`` and the id, and each task says whether it wrote
a dead end (``NO_PATH``), which spares the caller a pass over the ids. A vector times a matrix has
its own serial loop built the same way (:func:`_vector_matrix`), and a small product of two
matrices runs the same passes from one compiled call (:func:`_run_small`): around small products
the Python of the general path cost more than the products. :func:`max_abs_sum_rows` is
MaxAbsProduct's sum over the rows of a matrix (a bias's gradient over its batch) in one call.

Non-finite input: the packing pass sums ``x - x`` (0, or NaN for inf and NaN) over every element
of ``v`` and of the packed ``w`` (tasks whose rows start at 0 do it for ``w`` read in place, and those of
the first chunk for ``v`` where there is no packing pass), and the
caller checks the sums; the kernel then returns None and the numpy reference runs, whose
``argmax`` decides what a NaN does (the trace then stops at the next vertex with a clear error,
as before).
"""

from __future__ import annotations

import math
import threading

import numpy as np
from llvmlite import ir
from numba import get_num_threads, njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from .elementwise import _NO_PATH, _by_layout

#: below this many products per call the serial kernel runs (thread start-up would dominate)
PARALLEL_MIN_WORK = 1 << 17
#: below this many products a product of two matrices (m > 1) is one compiled call (:func:`_small`),
#: and below ``WIDE_MIN_WORK`` too where numba runs one thread (measured: docs/design.md, "Thresholds")
SMALL_MAX_WORK = PARALLEL_MIN_WORK
#: from this many products per call 512-bit vectors are used where the CPU has them (switching to them
#: costs a few µs; docs/design.md, "Thresholds")
WIDE_MIN_WORK = 1 << 20
#: output rows per task: they share every load of ``|w|``
ROWS = 8
#: bytes of a row of a task's chunk of output columns (256 float32, 128 float64): the rows' running
#: best and winners and 8 rows of ``|w|`` (``(2 * ROWS + 8) * CHUNK_BYTES``) stay in L1
CHUNK_BYTES = 1024
#: from this many ``j`` a row block keeps only each group's largest product and finds the winner in
#: its group at the end (:func:`_update8`, :func:`_winner8`); below, a tournament keeps the exact ``j``
#: (:func:`_update8_exact`); where the weights are read in place, whose search reads a column of them,
#: from ``DEFER_MIN_N_IN_PLACE`` (measured: docs/design.md, "Thresholds")
DEFER_MIN_N = 64
DEFER_MIN_N_IN_PLACE = 256
#: from this many blocks of ``ROWS`` rows the weights are packed (their chunks, contiguous, and transposed
#: for the search) once for all the blocks; with fewer each task reads them in place (measured:
#: docs/design.md, "Thresholds")
PACK_MIN_ROW_BLOCKS = 12
#: the packing pass runs on the calling thread below this many elements packed (weights and values) or jobs;
#: from there on on numba's threads (measured: docs/design.md, "Thresholds")
PACK_PARALLEL_MIN_ELEMENTS = 1 << 16
PACK_PARALLEL_MIN_JOBS = 2

#: the tiles of the main loop where ``w`` is packed and the search deferred (:func:`_tiled_task`): rows, and
#: 256-bit vectors of columns (16 float32 or 8 float64): 8 running bests in registers, each load of ``|w|``
#: serving 4 rows (measured: docs/design.md, "Register tiles")
TILE_ROWS = 4
TILE_VECTORS = 2

#: the packed operands of a call live in one buffer per thread, kept for the next call up to this size:
#: a fresh buffer of a few MiB comes from the system with a page fault per 4 KiB at its first use (1000
#: faults made a (128 x 512) (x) (512 x 512) float64 contraction 1.7x slower)
SCRATCH_KEEP_BYTES = 1 << 23
_SCRATCH = threading.local()
_ALIGN = 64


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
def _fold_row_exact(scratch, av, i0, rows, j, wj, jj, kn):
    """Fold row ``j`` of ``|w|`` (``wj``) into the running best of each of a task's rows (``scratch[u]``, the
    winners ``scratch[ROWS + u]``), the winner ``jj`` (``j`` as a value-dtype float) kept exactly."""
    for u in range(rows):
        best = scratch[u]
        ix = scratch[ROWS + u]
        a = abs(av[i0 + u, j])
        for k in range(kn):
            _keep_larger(best, ix, k, a * wj[k], jj)


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


def _splat(builder, vec, x):
    """LLVM IR: the vector of type ``vec`` with ``x`` in every lane (for the intrinsics below)."""
    out = ir.Constant(vec, ir.Undefined)
    for e in range(vec.count):
        out = builder.insert_element(out, x, ir.Constant(ir.IntType(32), e))
    return out


@intrinsic
def _winner8(typingctx, a, ao, b, bo, best):
    """``(e, a[ao + e] * b[bo + e])`` for the first ``e`` in ``0 .. 7`` with ``|a[ao + e] * b[bo + e]| ==
    best`` (``e = 7`` if none): one vector multiply and compare, a bit scan of the mask (the search of a
    group of 8 ``j`` for its winner, in the row of the values and the transposed column of the weights).
    The caller keeps ``ao + 8`` and ``bo + 8`` within the rows: 1-D C-contiguous arrays of ``best``'s dtype.
    """
    if not (
        isinstance(a, types.Array) and isinstance(b, types.Array) and a.ndim == 1 and b.ndim == 1
        and a.layout == "C" and b.layout == "C" and a.dtype == b.dtype == best
        and best in (types.float32, types.float64)
    ):
        return None

    def codegen(context, builder, signature, args):
        aty, _, bty, _, _ = signature.args
        vec = ir.VectorType(context.get_value_type(aty.dtype), 8)
        name = "llvm.fabs.v8" + ("f32" if aty.dtype == types.float32 else "f64")
        fabs = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec]), name)

        def eight(aryty, ary, offset):
            data = context.make_array(aryty)(context, builder, ary).data
            return builder.load(builder.bitcast(builder.gep(data, [offset]), vec.as_pointer()), align=1)

        products = builder.fmul(eight(aty, args[0], args[1]), eight(bty, args[2], args[3]))
        splat = _splat(builder, vec, args[4])
        i8 = ir.IntType(8)
        mask = builder.bitcast(builder.fcmp_ordered("==", builder.call(fabs, [products]), splat), i8)
        mask = builder.or_(mask, ir.Constant(i8, 0x80))  # (e = 7 where nothing matches)
        cttz = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i8, [i8, ir.IntType(1)]), "llvm.cttz.i8")
        first = builder.call(cttz, [mask, ir.Constant(ir.IntType(1), 0)])
        value = builder.extract_element(products, first)
        return context.make_tuple(builder, signature.return_type, [builder.zext(first, ir.IntType(64)), value])

    return types.Tuple((types.int64, best))(a, types.intp, b, types.intp, best), codegen


@intrinsic
def _winner8_strided(typingctx, a, ao, b, bo, stride, best):
    """:func:`_winner8` with ``b[bo + e * stride]`` in place of ``b[bo + e]`` (a column of ``w`` read in place)."""
    if not (
        isinstance(a, types.Array) and isinstance(b, types.Array) and a.ndim == 1 and b.ndim == 1
        and a.layout == "C" and b.layout == "C" and a.dtype == b.dtype == best
        and best in (types.float32, types.float64)
    ):
        return None

    def codegen(context, builder, signature, args):
        aty, _, bty, _, _, _ = signature.args
        vec = ir.VectorType(context.get_value_type(aty.dtype), 8)
        name = "llvm.fabs.v8" + ("f32" if aty.dtype == types.float32 else "f64")
        fabs = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec]), name)
        i32 = ir.IntType(32)
        adata = context.make_array(aty)(context, builder, args[0]).data
        x = builder.load(builder.bitcast(builder.gep(adata, [args[1]]), vec.as_pointer()), align=1)
        bdata = context.make_array(bty)(context, builder, args[2]).data
        y = ir.Constant(vec, ir.Undefined)
        at = args[3]
        for e in range(8):
            y = builder.insert_element(y, builder.load(builder.gep(bdata, [at])), ir.Constant(i32, e))
            at = builder.add(at, args[4])
        products = builder.fmul(x, y)
        splat = _splat(builder, vec, args[5])
        i8 = ir.IntType(8)
        mask = builder.bitcast(builder.fcmp_ordered("==", builder.call(fabs, [products]), splat), i8)
        mask = builder.or_(mask, ir.Constant(i8, 0x80))
        cttz = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i8, [i8, ir.IntType(1)]), "llvm.cttz.i8")
        first = builder.call(cttz, [mask, ir.Constant(ir.IntType(1), 0)])
        value = builder.extract_element(products, first)
        return context.make_tuple(builder, signature.return_type, [builder.zext(first, ir.IntType(64)), value])

    return types.Tuple((types.int64, best))(a, types.intp, b, types.intp, types.intp, best), codegen


@intrinsic
def _fold_group(typingctx, tv, to, wf, wo, ws, count, st, so, io, ss, group):
    """Fold ``count`` rows ``j`` of ``|w|`` into the running best of a tile of ``TILE_ROWS`` rows by
    ``TILE_VECTORS`` 256-bit vectors of columns, kept in registers while the group runs.

    ``tv[to + t * TILE_ROWS + r]`` is ``|v[r, j + t]|`` and ``wf[wo + t * ws + lane]`` is ``|w[j + t, lane]|``.
    Row ``r``'s running best is ``st[so + r * ss + lane]`` and its winner ``st[io + r * ss + lane]``, which
    takes ``group`` (the group's first ``j``) where the group's largest product beats the best before it
    (strict ``>``: an earlier group keeps a tie). The products are those of :func:`_update8`, the same
    bits. The caller keeps every index within its 1-D C-contiguous arrays of ``group``'s dtype.
    """
    if not (
        all(isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C" and a.dtype == group for a in (tv, wf, st))
        and group in (types.float32, types.float64)
    ):
        return None

    def codegen(context, builder, signature, args):
        tv_, to_, wf_, wo_, ws_, count_, st_, so_, io_, ss_, group_ = args
        width = 8 if group == types.float32 else 4
        vec = ir.VectorType(context.get_value_type(group), width)
        intp = to_.type
        tdata, wdata, sdata = (
            context.make_array(signature.args[k])(context, builder, a).data for k, a in ((0, tv_), (2, wf_), (6, st_))
        )

        def at(data, offset):
            return builder.bitcast(builder.gep(data, [offset]), vec.as_pointer())

        def const(x):
            return ir.Constant(intp, x)

        tile = [(r, c) for r in range(TILE_ROWS) for c in range(TILE_VECTORS)]
        where = {(r, c): builder.add(builder.mul(ss_, const(r)), const(c * width)) for r, c in tile}
        before = {rc: builder.load(at(sdata, builder.add(so_, where[rc])), align=1) for rc in tile}
        running = {rc: cgutils.alloca_once(builder, vec) for rc in tile}  # registers, once LLVM promotes them
        for rc in tile:
            builder.store(before[rc], running[rc])
        with cgutils.for_range(builder, count_) as loop:
            row = builder.add(wo_, builder.mul(loop.index, ws_))
            w = [builder.load(at(wdata, builder.add(row, const(c * width))), align=1) for c in range(TILE_VECTORS)]
            a0 = builder.add(to_, builder.mul(loop.index, const(TILE_ROWS)))
            for r in range(TILE_ROWS):
                a = _splat(builder, vec, builder.load(builder.gep(tdata, [builder.add(a0, const(r))])))
                for c in range(TILE_VECTORS):
                    q = builder.fmul(a, w[c])
                    old = builder.load(running[(r, c)])
                    builder.store(builder.select(builder.fcmp_ordered(">", q, old), q, old), running[(r, c)])
        g = _splat(builder, vec, group_)
        for rc in tile:
            new = builder.load(running[rc])
            winner = at(sdata, builder.add(io_, where[rc]))
            won = builder.fcmp_ordered(">", new, before[rc])
            chosen = builder.select(won, g, builder.load(winner, align=1))
            builder.store(new, at(sdata, builder.add(so_, where[rc])), align=1)
            builder.store(chosen, winner, align=1)
        return context.get_dummy_value()

    i = types.intp
    return types.none(tv, i, wf, i, i, i, st, i, i, i, group), codegen


@njit(cache=True, inline="always")
def _copy_block(src, dst):
    """``dst[r, :cols] = src[r, :]`` for a 2-D ``src`` of any strides and rows ``dst[r]`` contiguous. Where
    the rows of ``src`` are not contiguous (a transposed view), 8 columns are read side by side, so that
    each cache line read serves 8 (float64) or 16 (float32) writes of a row."""
    rows, cols = src.shape
    if cols <= 1 or src.strides[1] == src.itemsize:
        for r in range(rows):
            s = src[r]
            d = dst[r]
            for c in range(cols):
                d[c] = s[c]
        return
    c8 = cols - cols % 8
    for c0 in range(0, c8, 8):
        s0 = src[:, c0]
        s1 = src[:, c0 + 1]
        s2 = src[:, c0 + 2]
        s3 = src[:, c0 + 3]
        s4 = src[:, c0 + 4]
        s5 = src[:, c0 + 5]
        s6 = src[:, c0 + 6]
        s7 = src[:, c0 + 7]
        for r in range(rows):
            d = dst[r, c0 : c0 + 8]
            d[0] = s0[r]
            d[1] = s1[r]
            d[2] = s2[r]
            d[3] = s3[r]
            d[4] = s4[r]
            d[5] = s5[r]
            d[6] = s6[r]
            d[7] = s7[r]
    for c in range(c8, cols):
        s = src[:, c]
        for r in range(rows):
            dst[r, c] = s[r]


def _pack_body(q, nrb, nkc, kc, flags, v, w, ids, pv_buf, pv, pid_buf, pw, pt, vbad, wbad):
    """Job ``q`` of the packing pass. The first ``nw`` jobs take a chunk of ``kc`` columns of a batch of
    ``w``: ``pw`` gets its ``|w|`` (rows of the chunk, contiguous: the main loop's operand) and ``pt`` the
    chunk transposed (signed: the search's and the result's), and ``wbad`` a row of ``w - w`` sums (NaN
    where a weight is not finite); none where the tasks read ``w`` in place. The others take a block of
    ``ROWS`` rows of a batch of ``v``: copied
    into ``pv_buf`` (and the ids into ``pid_buf``) where the flags say the caller's arrays are not
    C-contiguous, and checked like ``w`` into ``vbad``.
    """
    n = v.shape[2]
    nw = 0 if flags & _IN_PLACE else w.shape[0] * nkc
    if q < nw:
        b = q // nkc
        k0 = (q % nkc) * kc
        k1 = min(w.shape[2], k0 + kc)
        kn = k1 - k0
        src = w[b, :, k0:k1]
        dst = pw[b, q % nkc]
        _copy_block(src.T, pt[b, q % nkc])
        _copy_block(src, dst)
        chk = wbad[q]
        for k in range(kc):
            chk[k] = 0.0
        for j in range(n):
            d = dst[j]
            for k in range(kn):
                x = d[k]
                d[k] = abs(x)
                chk[k] += x - x
        return
    qv = q - nw
    b = qv // nrb
    i0 = (qv % nrb) * ROWS
    i1 = min(v.shape[1], i0 + ROWS)
    if flags & _PACK_V:
        _copy_block(v[b, i0:i1], pv_buf[b, i0:i1])
    if flags & _PACK_IDS:
        _copy_block(ids[b, i0:i1], pid_buf[b, i0:i1])
    chk = vbad[qv]
    for j in range(n):
        chk[j] = 0.0
    for i in range(i0, i1):
        row = pv[b, i]
        for j in range(n):
            chk[j] += row[j] - row[j]


@njit(cache=True, inline="always")
def _start_rows(scratch, rows, kn):
    """The running best of a task's first ``rows`` rows before any ``j`` (-1: every product is larger),
    their winners 0."""
    for u in range(rows):
        best = scratch[u]
        ix = scratch[ROWS + u]
        for k in range(kn):
            best[k] = -1.0
            ix[k] = 0.0


@njit(cache=True, inline="always")
def _task_place(t, nrb, nkc, kc, out_v):
    """Where task ``t`` writes: ``(batch, first row, rows, chunk, first column, columns)``. The row block
    varies fastest: consecutive tasks (one thread's share) read the same chunk of ``w``."""
    m = out_v.shape[1]
    p = out_v.shape[2]
    b = t // (nrb * nkc)
    r = t % (nrb * nkc)
    i0 = (r % nrb) * ROWS
    c = r // nrb
    k0 = c * kc
    return b, i0, min(m, i0 + ROWS) - i0, c, k0, min(p, k0 + kc) - k0


def _tiled_task_body(t, nrb, nkc, kc, flags, vix, wix, ids, iix, pv, pw, pt, out_v, out_i, dead):
    """Task ``t`` of :func:`_task_body` where ``w`` is packed and the search deferred: the main loop runs on
    tiles of ``TILE_ROWS`` rows and ``TILE_VECTORS`` vectors of columns (:func:`_fold_group`), the columns
    after the last whole tile on :func:`_update8`, the last ``n % 8`` rows of ``w`` exactly; then the search
    of each winning group (:func:`_winner8`), the signed products and the ids. The same bits as the
    untiled loop: each output's products are compared in the same order, groups with a strict ``>``."""
    n = pv.shape[2]
    n8 = n - n % 8
    b, i0, rows, c, k0, kn = _task_place(t, nrb, nkc, kc, out_v)
    av = pv[vix[b]]
    chunk = pw[wix[b], c]
    scratch = np.empty((2 * ROWS, kn), dtype=out_v.dtype)  # the running best of each row, then its winner
    _start_rows(scratch, ROWS, kn)  # (all ROWS: a tile reads and writes rows past the last)
    jf = np.empty(1, dtype=out_v.dtype)  # a j as a value-dtype float
    lanes = TILE_VECTORS * (32 // out_v.itemsize)
    kt = kn - kn % lanes
    flat = scratch.reshape(-1)
    cflat = chunk.reshape(-1)
    tv = np.empty(n8 * TILE_ROWS, dtype=out_v.dtype)  # |v| of a tile's rows, transposed
    for r0 in range(0, rows if kt else 0, TILE_ROWS):
        for u in range(TILE_ROWS):
            if r0 + u < rows:
                a = av[i0 + r0 + u]
                for j in range(n8):
                    tv[j * TILE_ROWS + u] = abs(a[j])
            else:
                for j in range(n8):
                    tv[j * TILE_ROWS + u] = 0.0
        for j in range(0, n8, 8):
            jf[0] = j
            for l0 in range(0, kt, lanes):
                _fold_group(tv, j * TILE_ROWS, cflat, j * kc + l0, kc, 8, flat, r0 * kn + l0, (ROWS + r0) * kn + l0,
                            kn, jf[0])
    if kt < kn:
        for j in range(0, n8, 8):
            jf[0] = j
            w0 = chunk[j, kt:kn]
            w1 = chunk[j + 1, kt:kn]
            w2 = chunk[j + 2, kt:kn]
            w3 = chunk[j + 3, kt:kn]
            w4 = chunk[j + 4, kt:kn]
            w5 = chunk[j + 5, kt:kn]
            w6 = chunk[j + 6, kt:kn]
            w7 = chunk[j + 7, kt:kn]
            for u in range(rows):
                a = av[i0 + u, j : j + 8]
                _update8(scratch[u, kt:], scratch[ROWS + u, kt:], a, w0, w1, w2, w3, w4, w5, w6, w7, jf[0], kn - kt)
    for j in range(n8, n):
        jf[0] = j
        jj = jf[0]  # (read once: LLVM cannot tell that the loop's stores leave jf alone)
        wj = chunk[j]
        _fold_row_exact(scratch, av, i0, rows, j, wj, jj, kn)
    # each output's winner: the search of its group, the signed product, the id; in separate loops, each
    # simple (one loop with all three ran 1.1-1.15x longer in float32)
    found = False
    idsb = ids[iix[b]]
    tr = pt[wix[b], c].reshape(-1)  # column k of the chunk: tr[k * n : (k + 1) * n]
    winners = np.empty(kn, dtype=np.int64)
    for u in range(rows):
        i = i0 + u
        best = scratch[u]
        ix = scratch[ROWS + u]
        res = out_v[b, i, k0 : k0 + kn]
        arg = out_i[b, i, k0 : k0 + kn]
        ai = av[i]
        for k in range(kn):
            winners[k] = int(ix[k])
        for k in range(kn):
            jj = max(winners[k], 0)  # (>= 0: LLVM drops the wrap-around of negative indices)
            at = k * n
            if jj < n8:
                e, res[k] = _winner8(ai, jj, tr, at + jj, best[k])
                winners[k] = jj + e
            else:
                res[k] = ai[jj] * tr[at + jj]
        if flags & _IDS_OF_W:
            for k in range(kn):
                idn = idsb[max(winners[k], 0), k0 + k]
                arg[k] = idn
                found |= idn == _NO_PATH
        else:
            idi = idsb[i]
            for k in range(kn):
                idn = idi[max(winners[k], 0)]
                arg[k] = idn
                found |= idn == _NO_PATH
    dead[t] = found


_tiled_task = njit(cache=True)(_tiled_task_body)


def _task_body(t, nrb, nkc, kc, flags, vix, wix, ids, iix, pv, pw, pt, wc, vbad, wbad, out_v, out_i, dead):
    """Task ``t``: a block of ``ROWS`` output rows and a chunk of ``kc`` columns, from the packed operands
    or, where the flags say so, from ``w`` read in place (``wc``, C-contiguous; the task's rows of ``w``
    then checked into ``wbad``); ``dead[t]`` says whether one of its ids is ``NO_PATH``. A packed ``w`` with the
    search deferred is :func:`_tiled_task`'s."""
    if flags & (_DEFER | _IN_PLACE) == _DEFER:
        _tiled_task(t, nrb, nkc, kc, flags, vix, wix, ids, iix, pv, pw, pt, out_v, out_i, dead)
        return
    p = out_v.shape[2]
    n = pv.shape[2]
    n8 = n - n % 8
    b, i0, rows, c, k0, kn = _task_place(t, nrb, nkc, kc, out_v)
    k1 = k0 + kn
    av = pv[vix[b]]
    in_place = flags & _IN_PLACE
    chunk = pw[0, 0] if in_place else pw[wix[b], c]
    wcb = wc[wix[b]] if in_place else wc[0]
    check = in_place and i0 == 0
    chk = wbad[b * nkc + c] if check else wbad[0]
    # rows 0 .. ROWS-1: the running best of the task's rows; ROWS .. 2*ROWS-1: the winning j (or its
    # group's first j) as value-dtype floats (lanes of one width vectorize); then, in place, |w| of the
    # current group of 8 rows of w. Loops run over range(kn) on row views indexed from 0: an index LLVM
    # knows is >= 0 vectorizes.
    scratch = np.empty((2 * ROWS + (8 if in_place else 0), kn), dtype=out_v.dtype)
    jf = np.empty(8, dtype=out_v.dtype)  # the group's j, as value-dtype floats
    deferred = flags & _DEFER != 0
    if flags & _CHECK_IN_TASKS and c == 0:  # no packing pass: the first chunk's tasks check their rows of v
        vchk = vbad[b * nrb + i0 // ROWS]
        for j in range(n):
            vchk[j] = 0.0
        for u in range(rows):
            row = av[i0 + u]
            for j in range(n):
                vchk[j] += row[j] - row[j]
    _start_rows(scratch, rows, kn)
    if check:
        for k in range(kc):
            chk[k] = 0.0
    for j in range(0, n8, 8):
        for e in range(8):
            jf[e] = j + e
        if in_place:
            for e in range(8):  # |w| of the group once, for all the task's rows
                src = wcb[j + e, k0:k1]
                dst = scratch[2 * ROWS + e]
                for k in range(kn):
                    dst[k] = abs(src[k])
            w0 = scratch[2 * ROWS]
            w1 = scratch[2 * ROWS + 1]
            w2 = scratch[2 * ROWS + 2]
            w3 = scratch[2 * ROWS + 3]
            w4 = scratch[2 * ROWS + 4]
            w5 = scratch[2 * ROWS + 5]
            w6 = scratch[2 * ROWS + 6]
            w7 = scratch[2 * ROWS + 7]
            if check:
                for k in range(kn):
                    chk[k] += ((w0[k] - w0[k]) + (w1[k] - w1[k])) + ((w2[k] - w2[k]) + (w3[k] - w3[k])) + (
                        ((w4[k] - w4[k]) + (w5[k] - w5[k])) + ((w6[k] - w6[k]) + (w7[k] - w7[k]))
                    )
        else:
            w0 = chunk[j]
            w1 = chunk[j + 1]
            w2 = chunk[j + 2]
            w3 = chunk[j + 3]
            w4 = chunk[j + 4]
            w5 = chunk[j + 5]
            w6 = chunk[j + 6]
            w7 = chunk[j + 7]
        if deferred:  # chosen outside the loop over rows: inside it, LLVM's code for small n ran 1.2x slower
            for u in range(rows):
                a = av[i0 + u, j : j + 8]
                _update8(scratch[u], scratch[ROWS + u], a, w0, w1, w2, w3, w4, w5, w6, w7, jf[0], kn)
        else:
            for u in range(rows):
                a = av[i0 + u, j : j + 8]
                _update8_exact(scratch[u], scratch[ROWS + u], a, w0, w1, w2, w3, w4, w5, w6, w7, jf, kn)
    for j in range(n8, n):
        jf[0] = j
        jj = jf[0]
        if in_place:
            src = wcb[j, k0:k1]
            wj = scratch[2 * ROWS]
            for k in range(kn):
                wj[k] = abs(src[k])
            if check:
                for k in range(kn):
                    chk[k] += wj[k] - wj[k]
        else:
            wj = chunk[j]
        _fold_row_exact(scratch, av, i0, rows, j, wj, jj, kn)
    # the winner (in place and deferred: the search of its group, a vector compare in the value's row and the
    # weight's column; packed and deferred is :func:`_tiled_task`), the signed product and the winner's id:
    # ids[i, j] (of v), or ids[j, k] (of w)
    found = False
    idsb = ids[iix[b]]
    tr = pt[0, 0].reshape(-1) if in_place else pt[wix[b], c].reshape(-1)  # column k: tr[k * n : (k + 1) * n]
    wflat = wcb.reshape(-1)
    for u in range(rows):
        i = i0 + u
        best = scratch[u]
        ix = scratch[ROWS + u]
        res = out_v[b, i, k0:k1]
        arg = out_i[b, i, k0:k1]
        ai = av[i]
        idi = idsb[i]
        for k in range(kn):
            jj = max(int(ix[k]), 0)  # (>= 0: LLVM drops the wrap-around of negative indices)
            if in_place:
                at = jj * p + k0 + k
                if deferred and jj < n8:
                    e, res[k] = _winner8_strided(ai, jj, wflat, at, p, best[k])
                    jj += e
                else:
                    res[k] = ai[jj] * wflat[at]
            else:  # (exact: packed and deferred is :func:`_tiled_task`)
                res[k] = ai[jj] * tr[k * n + jj]
            idn = idsb[jj, k0 + k] if flags & _IDS_OF_W else idi[jj]
            arg[k] = idn
            found |= idn == _NO_PATH
    dead[t] = found


#: bits of the kernels' ``flags``: the ids go with ``w`` (the transposed contraction of a ``x @ W.T``);
#: ``v`` and the ids are copied into contiguous rows first; ``w`` is read in place (not packed)
_IDS_OF_W, _PACK_V, _PACK_IDS, _IN_PLACE = 1, 2, 4, 8
#: the deferred search (:func:`_update8`, chosen by the caller from ``n``); no packing pass: nothing is packed
#: and the tasks of the first chunk check their rows of ``v`` (one parallel region, not two); the packing pass
#: runs on the calling thread (small: a second parallel region would cost more than it saves)
_DEFER, _CHECK_IN_TASKS, _PACK_SERIAL = 16, 32, 64


#: the task and the packing job are compiled once per argument types and called from each entry point
#: (inlined into each, numba's parfor passes and LLVM ran over them once per entry point and dtype: 45 s
#: each); the 512-bit variant inlines its own copy, which the vector-width attribute must reach
_task = njit(cache=True)(_task_body)
_task_inline = njit(cache=True, inline="always")(_task_body)
_pack = njit(cache=True)(_pack_body)


def _signature(dtype):
    # inputs typed read-only (a writable array converts to it), so that one compiled version per
    # dtype serves read-only views (broadcast ids) and writable arrays alike; v, w and ids take any
    # strides ("A": transposed and broadcast views are not copied by the caller), the packed operands
    # are C-contiguous
    def ro(dt, nd, layout="C"):
        return types.Array(dt, nd, layout, readonly=True)

    def rw(dt, nd):
        return types.Array(dt, nd, "C")

    i64 = types.int64
    return types.void(
        i64, i64, i64, i64, i64,  # ntasks, nrb, nkc, kc, flags
        ro(dtype, 3, "A"), ro(i64, 1), ro(dtype, 3, "A"), ro(i64, 1),  # v, vix, w, wix
        ro(i64, 3, "A"), ro(i64, 1),  # ids, iix
        rw(dtype, 3), ro(dtype, 3), rw(i64, 3), ro(i64, 3, "A"),  # pv_buf, pv, pid_buf, pid
        rw(dtype, 4), rw(dtype, 4), ro(dtype, 3), rw(dtype, 2), rw(dtype, 2),  # pw, pt, wc, vbad, wbad
        rw(dtype, 3), rw(i64, 3), types.Array(types.boolean, 1, "C"),  # out_v, out_i, dead
    )


@njit(cache=True, inline="always")
def _pack_jobs(flags, v, w, nrb, nkc):
    """The packing pass's jobs: chunks of ``w`` (none where it is read in place), blocks of rows of ``v`` (none
    where the tasks check them)."""
    if flags & _CHECK_IN_TASKS:
        return 0
    return (0 if flags & _IN_PLACE else w.shape[0] * nkc) + v.shape[0] * nrb


@njit(cache=True, inline="always")
def _task_wide(t, nrb, nkc, kc, flags, vix, wix, ids, iix, pv, pw, pt, wc, vbad, wbad, out_v, out_i, dead):
    _prefer_512_bit_vectors()
    _task_inline(t, nrb, nkc, kc, flags, vix, wix, ids, iix, pv, pw, pt, wc, vbad, wbad, out_v, out_i, dead)


def _parallel_wide_body(ntasks, nrb, nkc, kc, flags, v, vix, w, wix, ids, iix, pv_buf, pv, pid_buf, pid, pw, pt, wc,
                       vbad, wbad, out_v, out_i, dead):
    jobs = _pack_jobs(flags, v, w, nrb, nkc)
    if flags & _PACK_SERIAL:
        for q in range(jobs):
            _pack(q, nrb, nkc, kc, flags, v, w, ids, pv_buf, pv, pid_buf, pw, pt, vbad, wbad)
    elif jobs:
        for q in prange(jobs):
            _pack(q, nrb, nkc, kc, flags, v, w, ids, pv_buf, pv, pid_buf, pw, pt, vbad, wbad)
    for t in prange(ntasks):
        _task_wide(t, nrb, nkc, kc, flags, vix, wix, pid, iix, pv, pw, pt, wc, vbad, wbad, out_v, out_i, dead)


def _parallel_body(ntasks, nrb, nkc, kc, flags, v, vix, w, wix, ids, iix, pv_buf, pv, pid_buf, pid, pw, pt, wc, vbad,
                  wbad, out_v, out_i, dead):
    jobs = _pack_jobs(flags, v, w, nrb, nkc)
    if flags & _PACK_SERIAL:
        for q in range(jobs):
            _pack(q, nrb, nkc, kc, flags, v, w, ids, pv_buf, pv, pid_buf, pw, pt, vbad, wbad)
    elif jobs:
        for q in prange(jobs):
            _pack(q, nrb, nkc, kc, flags, v, w, ids, pv_buf, pv, pid_buf, pw, pt, vbad, wbad)
    for t in prange(ntasks):
        _task(t, nrb, nkc, kc, flags, vix, wix, pid, iix, pv, pw, pt, wc, vbad, wbad, out_v, out_i, dead)


def _serial_body(ntasks, nrb, nkc, kc, flags, v, vix, w, wix, ids, iix, pv_buf, pv, pid_buf, pid, pw, pt, wc, vbad,
                wbad, out_v, out_i, dead):
    for q in range(_pack_jobs(flags, v, w, nrb, nkc)):
        _pack(q, nrb, nkc, kc, flags, v, w, ids, pv_buf, pv, pid_buf, pw, pt, vbad, wbad)
    for t in range(ntasks):
        _task(t, nrb, nkc, kc, flags, vix, wix, pid, iix, pv, pw, pt, wc, vbad, wbad, out_v, out_i, dead)


def _host_has_avx512() -> bool:
    try:
        import llvmlite.binding as llvm

        return "+avx512f" in llvm.get_host_cpu_features().flatten().split(",")
    except (ImportError, RuntimeError, AttributeError):  # (LLVM does not say: the 512-bit variant, as before)
        return True


#: whether the 512-bit variant is compiled: without AVX-512 it is the same code as ``_parallel_body``'s
#: (the attribute changes nothing), so the large calls run that one and the 512-bit one is not compiled
WIDE_VECTORS = _host_has_avx512()

# The entry points are compiled per dtype at their first call, not at import: 10-36 s each on a 2-core
# Zen 3 (docs/design.md, "Cold start"), and a process that traces in one dtype compiles at most half of
# them. Each has one explicit signature (the layouts pinned), so numba makes no other specialization;
# the compiled code goes to numba's cache like an eager one's.
_BODIES: dict = {  # kind -> (the Python function, parallel, its signature for a numba dtype)
    "serial": (_serial_body, False, _signature), "parallel": (_parallel_body, True, _signature),
    "wide": (_parallel_wide_body, True, _signature),
}
_RUNNERS: dict = {}
_RUNNERS_LOCK = threading.Lock()


def runner(kind: str, dtype) -> object:
    """The compiled entry point ``kind`` (``"serial"``, ``"parallel"``, ``"wide"``, ``"small"``) for values of
    ``dtype``, compiled (or loaded from numba's cache) at its first use.

    >>> runner("serial", np.float64) is runner("serial", np.dtype("float64"))
    True
    """
    dtype = np.dtype(dtype)
    if kind == "wide" and not WIDE_VECTORS:
        kind = "parallel"
    key = (kind, dtype)
    fn = _RUNNERS.get(key)
    if fn is None:
        with _RUNNERS_LOCK:
            fn = _RUNNERS.get(key)
            if fn is None:
                body, parallel, signature_of = _BODIES[kind]
                signature = signature_of(types.float32 if dtype == np.float32 else types.float64)
                fn = _RUNNERS[key] = njit([signature], cache=True, parallel=parallel)(body)
    return fn


def compile_runners(dtypes=(np.float32, np.float64)) -> None:
    """Compile (or load from numba's cache) every entry point of the general kernel for ``dtypes`` now:
    :func:`semirad.kernels.load` calls this, so that a benchmark times no compilation.

    >>> compile_runners([np.float64])
    """
    for dtype in dtypes:
        for kind in _BODIES:
            runner(kind, dtype)


def _run_serial(*args) -> None:
    runner("serial", args[5].dtype)(*args)


def _run_parallel(*args) -> None:
    runner("parallel", args[5].dtype)(*args)


def _run_parallel_wide(*args) -> None:
    runner("wide", args[5].dtype)(*args)


def _batch_map(batch_shape: tuple, full: tuple) -> np.ndarray:
    """For each flat index of the broadcast batch ``full``, the flat index into ``batch_shape``."""
    own = np.arange(math.prod(batch_shape), dtype=np.int64).reshape(batch_shape)
    return np.ascontiguousarray(np.broadcast_to(own, full)).reshape(-1)


_ZERO = np.zeros(1, dtype=np.int64)
#: stand-ins for the arrays a kernel takes but does not read (the weights read in place where it packs
#: them, values and ids not packed)
_NO_WEIGHTS = _NO_VALUES = {np.dtype(t): np.zeros((1, 1, 1), dtype=t) for t in (np.float32, np.float64)}
_NO_IDS = np.zeros((1, 1, 1), dtype=np.int64)
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
            return None if out is None else (out[0].T, out[1].T, out[2])
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
    """A small product of two matrices: one compiled call that packs and checks the inputs, runs the
    serial tasks and says whether an output is a dead end (:func:`_run_small`). ``ids`` go with
    ``weights`` where ``ids_of_w`` (the transposed contraction of :func:`max_abs_matmul`).

    ``_run`` spends about 10 µs of Python around its kernel (allocations, reshapes, the checks of the
    kernel's sums, many arguments), more than the products of a (32 x 20) @ (20 x 20) layer take. The
    tasks are the same, and so are the bits.
    """
    (m, n), p = values.shape, weights.shape[1]
    dtype = values.dtype
    out_v = np.empty((1, m, p), dtype=dtype)
    out_i = np.empty((1, m, p), dtype=np.int64)
    v, i = values[None], ids[None]
    flags = _IDS_OF_W if ids_of_w else 0
    vc, ic = v, i
    if not values.flags.c_contiguous:
        flags |= _PACK_V
        vc = _NO_VALUES[dtype]
    if ids_of_w or not ids.flags.c_contiguous:
        flags |= 0 if ids_of_w else _PACK_IDS
        ic = _NO_IDS
    # (an upper bound on what _run_small carves: kc columns in every chunk, 7 arrays aligned)
    chunks = p + CHUNK_BYTES
    nbytes = m * n * 16 + (m * n // ROWS + n + chunks) * 8 + m * p + 10 * _ALIGN
    w = weights[None]
    if m < PACK_MIN_ROW_BLOCKS * ROWS and weights.flags.c_contiguous:
        flags |= _IN_PLACE
        wc = w
        flags |= _DEFER if n >= DEFER_MIN_N_IN_PLACE else 0
    else:
        wc = _NO_WEIGHTS[dtype]
        nbytes += 16 * n * chunks
        flags |= _DEFER if n >= DEFER_MIN_N else 0
    status = runner("small", v.dtype)(v, w, wc, i, vc, ic, out_v, out_i, flags, _scratch(nbytes))
    return None if status == _NOT_FINITE else (out_v[0], out_i[0], status == _DEAD_END)


@njit(cache=True, inline="always")
def _aligned_in(nbytes):
    return -(-nbytes // _ALIGN) * _ALIGN


def _small_signature(dtype):
    def ro(dt, layout="A"):
        return types.Array(dt, 3, layout, readonly=True)

    return types.int64(ro(dtype), ro(dtype), ro(dtype, "C"), ro(types.int64), ro(dtype, "C"), ro(types.int64, "C"),
                       types.Array(dtype, 3, "C"), types.Array(types.int64, 3, "C"), types.int64,
                       types.Array(types.uint8, 1, "C"))


def _small_body(v, w, wc, ids, vc, ic, out_v, out_i, flags, scratch):
    """The packing and the serial tasks of ``v[0] (x) w[0]`` into ``out_v[0]``, ``out_i[0]`` (ids of
    ``v``, or of ``w`` with ``_IDS_OF_W``; ``w`` read in place as ``wc`` with ``_IN_PLACE``; ``v`` and the
    ids as ``vc`` and ``ic`` unless packed), carving the packed operands from ``scratch``. Returns
    ``_NOT_FINITE`` (outputs undefined) if an element of ``v`` or ``w`` is not finite, else
    ``_DEAD_END`` if an output id is ``NO_PATH``, else ``_DONE``."""
    m, n = v.shape[1], v.shape[2]
    p = w.shape[2]
    kc = CHUNK_BYTES // out_v.itemsize
    nkc = (p + kc - 1) // kc
    nrb = (m + ROWS - 1) // ROWS
    packed = (nkc, n, kc) if flags & _IN_PLACE == 0 else (1, 1, 1)
    size = out_v.itemsize
    start = 0
    pv = scratch[start : start + m * n * size].view(out_v.dtype).reshape((1, m, n))
    start += _aligned_in(m * n * size)
    pid = scratch[start : start + m * n * 8].view(np.int64).reshape((1, m, n))
    start += _aligned_in(m * n * 8)
    chunks = packed[0] * packed[1] * packed[2] * size
    pw = scratch[start : start + chunks].view(out_v.dtype).reshape((1, packed[0], packed[1], packed[2]))
    start += _aligned_in(chunks)
    pt = scratch[start : start + chunks].view(out_v.dtype).reshape((1, packed[0], packed[2], packed[1]))
    start += _aligned_in(chunks)
    vbad = scratch[start : start + nrb * n * size].view(out_v.dtype).reshape((nrb, n))
    start += _aligned_in(nrb * n * size)
    wbad = scratch[start : start + nkc * kc * size].view(out_v.dtype).reshape((nkc, kc))
    start += _aligned_in(nkc * kc * size)
    ntasks = nrb * nkc
    dead = scratch[start : start + ntasks].view(np.bool_)
    values = pv if flags & _PACK_V else vc
    for q in range(_pack_jobs(flags, v, w, nrb, nkc)):
        _pack(q, nrb, nkc, kc, flags, v, w, ids, pv, values, pid, pw, pt, vbad, wbad)
    zero = np.zeros(1, dtype=np.int64)
    for t in range(ntasks):
        if flags & _IDS_OF_W:
            _task(t, nrb, nkc, kc, flags, zero, zero, ids, zero, values, pw, pt, wc, vbad, wbad, out_v, out_i, dead)
        else:
            rows = pid if flags & _PACK_IDS else ic
            _task(t, nrb, nkc, kc, flags, zero, zero, rows, zero, values, pw, pt, wc, vbad, wbad, out_v, out_i, dead)
    check = 0.0
    for q in range(nrb):
        for j in range(n):
            check += vbad[q, j]
    for q in range(nkc):
        for k in range(kc):
            check += wbad[q, k]
    if check != 0.0:  # NaN
        return _NOT_FINITE
    for t in range(ntasks):
        if dead[t]:
            return _DEAD_END
    return _DONE


_BODIES["small"] = (_small_body, False, _small_signature)


def _reduce_signature(dtype, layout):
    rows = types.Array(dtype, 2, layout, readonly=True), types.Array(types.int64, 2, layout, readonly=True)
    return types.boolean(*rows, types.Array(dtype, 1, "C"), types.Array(types.int64, 1, "C"))


def _sum_rows(v, ids, out_v, out_i):
    """MaxAbsProduct's sum over axis 0 of ``(v, ids)`` (``m >= 1`` rows): ``out_v[k] = v[i, k]``,
    ``out_i[k] = ids[i, k]`` for the first ``i`` of largest ``|v[i, k]|``, except that a dead end
    (``ids[i, k] == NO_PATH``, value 0) gives way to the column's first real path (then every value
    of the column is 0). Returns False (outputs undefined) if an element of ``v`` is not finite:
    numpy's ``argmax`` decides what a NaN does. No branch on the data in the loop over the rows (a
    strict ``>`` keeps the first row on ties), so that it vectorizes on C-contiguous rows.
    """
    m, p = v.shape
    best = np.empty(p, dtype=v.dtype)
    arg = np.zeros(p, dtype=np.int64)
    check = 0.0
    for k in range(p):
        best[k] = -1.0
    for i in range(m):
        row = v[i]
        for k in range(p):
            x = row[k]
            check += x - x
            q = abs(x)
            old = best[k]
            previous = arg[k]
            c = q > old
            best[k] = q if c else old + 0.0  # (whole stores, not masked ones: :func:`_keep_larger`)
            arg[k] = i if c else previous
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


#: :func:`_sum_rows` on any strides, and on C-contiguous arrays (vectorized: ``reassoc`` lets the sum
#: of ``x - x`` run in lanes, and a NaN still makes it NaN)
max_abs_sum_rows_contiguous, max_abs_sum_rows = _by_layout(
    _sum_rows, _reduce_signature, (types.float32, types.float64), fastmath={"reassoc"}
)


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
    w = np.asarray(weights, dtype=dtype).reshape((math.prod(weights.shape[:-2]), n, p))
    i = np.asarray(ids, dtype=np.int64)
    i = i.reshape((math.prod(i.shape[:-2]),) + i.shape[-2:])
    out_v = np.empty((nbatch, m, p), dtype=dtype)
    out_i = np.empty((nbatch, m, p), dtype=np.int64)
    dead_end = False
    if m and p:
        kc = min(CHUNK_BYTES // out_v.itemsize, p)  # (fewer columns than a chunk: packed as they are, not padded)
        nkc = (p + kc - 1) // kc
        nrb = (m + ROWS - 1) // ROWS
        ntasks = nbatch * nrb * nkc
        flags = _IDS_OF_W if ids_of_w else 0
        if w.flags.c_contiguous and nrb < PACK_MIN_ROW_BLOCKS:
            flags |= _IN_PLACE
        if not v.flags.c_contiguous:
            flags |= _PACK_V
        if not ids_of_w and not i.flags.c_contiguous:  # ids of v are read row by row: packed like v
            flags |= _PACK_IDS
        if flags & _IN_PLACE:
            flags |= _DEFER if n >= DEFER_MIN_N_IN_PLACE else 0
            if not flags & (_PACK_V | _PACK_IDS):
                flags |= _CHECK_IN_TASKS
        else:
            flags |= _DEFER if n >= DEFER_MIN_N else 0
        njobs = (0 if flags & _IN_PLACE else w.shape[0] * nkc) + v.shape[0] * nrb
        packing = (0 if flags & _IN_PLACE else w.shape[0] * n * p) + (v.size if flags & _PACK_V else 0)
        if njobs and (njobs < PACK_PARALLEL_MIN_JOBS or packing < PACK_PARALLEL_MIN_ELEMENTS):
            flags |= _PACK_SERIAL
        packed = (1, 1, 1, 1) if flags & _IN_PLACE else (w.shape[0], nkc, n, kc)
        shapes = (
            (v.shape if flags & _PACK_V else (1, 1, 1), dtype), (i.shape if flags & _PACK_IDS else (1, 1, 1), np.int64),
            (packed, dtype), (packed[:2] + packed[:1:-1], dtype),
            (((nbatch if flags & _CHECK_IN_TASKS else v.shape[0]) * nrb, n), dtype),  # (tasks: per output batch)
            (((nbatch if flags & _IN_PLACE else w.shape[0]) * nkc, kc), dtype), ((ntasks,), np.bool_),
        )
        pv_buf, pid_buf, pw, pt, vbad, wbad, dead = _carve(shapes)
        pv = pv_buf if flags & _PACK_V else v
        pid = pid_buf if flags & _PACK_IDS else i
        wc = w if flags & _IN_PLACE else _NO_WEIGHTS[out_v.dtype]
        args = (ntasks, nrb, nkc, kc, flags, v, vix, w, wix, i, vix if not ids_of_w else wix, pv_buf, pv, pid_buf, pid,
                pw, pt, wc, vbad, wbad, out_v, out_i, dead)
        work = nbatch * m * n * p
        if ntasks > 1 and (work >= WIDE_MIN_WORK or (work >= PARALLEL_MIN_WORK and get_num_threads() > 1)):
            with _PARALLEL:  # numba's workqueue threading layer must not be entered by two threads at once
                (_run_parallel_wide if work >= WIDE_MIN_WORK else _run_parallel)(*args)
        else:
            _run_serial(*args)
        if not (math.isfinite(vbad.sum()) and math.isfinite(wbad.sum())):
            return None
        dead_end = bool(dead.any())
    return out_v.reshape(batch + (m, p)), out_i.reshape(batch + (m, p)), dead_end


def _scratch(nbytes: int) -> np.ndarray:
    """A byte buffer of at least ``nbytes`` for the calling thread's packed operands (not to be returned)."""
    buffer = getattr(_SCRATCH, "buffer", None)
    if buffer is not None and buffer.nbytes >= nbytes:
        return buffer
    buffer = np.empty(nbytes, dtype=np.uint8)
    if nbytes <= SCRATCH_KEEP_BYTES:
        _SCRATCH.buffer = buffer
    return buffer


def _aligned(nbytes: int) -> int:
    return -(-nbytes // _ALIGN) * _ALIGN


def _carve(shapes) -> list:
    """Arrays of the given ``(shape, dtype)`` side by side in :func:`_scratch` (uninitialized)."""
    sizes = [_aligned(math.prod(shape) * np.dtype(dtype).itemsize) for shape, dtype in shapes]
    buffer = _scratch(sum(sizes))
    out, start = [], 0
    for (shape, dtype), size in zip(shapes, sizes):
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        out.append(buffer[start : start + nbytes].view(dtype).reshape(shape))
        start += size
    return out
