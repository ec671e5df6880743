"""cupy wrappers of the MaxAbsProduct CUDA kernels (sources in :mod:`semirad.kernels.cuda_sources`).

:func:`max_abs_matmul` and :func:`scatter_max_abs` take the arguments of, and return bit for bit
what, :func:`semirad.semirings.max_abs.dispatch.matmul` and ``.scatter`` return for cupy arrays
(they are reached from there). cupy is imported on first use: this module imports without it. Each dtype's
source is compiled once per device (``cupy.RawModule``, cached here and on disk by cupy).
Nothing here synchronises with the host: shapes and strides decide every launch, the per-batch
offset tables are built on the host once per layout and cached on the device.

Routing of :func:`max_abs_matmul` (float32/float64 after ``result_type``; anything else, and
sizes beyond 32-bit indices, get None: the caller, :mod:`semirad.semirings.max_abs.dispatch`, runs the
cupy reference :func:`semirad.semirings.max_abs.reference.matmul`):

* ``n <= 1`` or an empty dimension: no comparison to make (as the backend's trivial case);
* weights without a batch of their own: the batch of ``values`` is folded into its rows;
* one batch, one row (``m == 1``) or one column (``p == 1``): the matrix-vector kernels, which
  read either operand in place, row- or column-major (``x @ W.T`` needs no copy of ``W``);
* otherwise the tiled kernel; an operand whose last axis is not contiguous is copied first.

``python -m semirad.kernels.cuda`` prints :func:`benchmark` (needs a GPU).
"""

from __future__ import annotations

import math
import os
from functools import cache, lru_cache

import numpy as np

from ..ids import NO_PATH
from . import cuda_sources as S

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_INT32_LIMIT = 2**31 - 1024  # indices kept in int inside the kernels stay below this
_I64 = np.dtype(np.int64)

#: set ``SEMIRAD_CUDA_KERNELS=reference`` to run the cupy reference instead (A/B checks)
_enabled = os.environ.get("SEMIRAD_CUDA_KERNELS", "auto") != "reference"


def use_kernels(flag: bool) -> None:
    """Turn the CUDA kernels on (default) or off (the cupy reference of the backend runs instead)."""
    global _enabled
    _enabled = bool(flag)


def kernels_enabled() -> bool:
    """True when :func:`max_abs_matmul` / :func:`scatter_max_abs` run the CUDA kernels."""
    return _enabled


def _cupy():
    import cupy

    return cupy


def available() -> bool:
    """True when cupy imports and sees at least one CUDA device.

    >>> isinstance(available(), bool)
    True
    """
    try:
        cp = _cupy()
        return cp.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


# -- compilation ----------------------------------------------------------------------------------
_MODULES: dict = {}


def _function(name: str, dtype):
    """The compiled kernel ``name`` for value ``dtype`` on the current device (compiled once)."""
    cp = _cupy()
    dtype = np.dtype(dtype)
    key = (cp.cuda.runtime.getDevice(), dtype.str)
    mod = _MODULES.get(key)
    if mod is None:
        mod = _MODULES[key] = [cp.RawModule(code=S.source(dtype), options=S.OPTIONS), {}]
    fn = mod[1].get(name)
    if fn is None:
        fn = mod[1][name] = mod[0].get_function(S.kernel_name(name, dtype))
    return fn


@cache
def _sm_count(device: int) -> int:
    return int(_cupy().cuda.Device(device).attributes["MultiProcessorCount"])


@lru_cache(maxsize=1024)
def _offsets(device: int, own: tuple, strides: tuple, full: tuple):
    """Device array: for each flat index of batch ``full``, the element offset of that batch in an
    operand of batch shape ``own`` (right-aligned, broadcast) and element strides ``strides``.

    Built with device operations (no host-to-device copy, no synchronisation) and cached per layout.
    """
    cp = _cupy()
    with cp.cuda.Device(device):
        off = cp.zeros(full, dtype=np.int64)
        lead = len(full) - len(own)
        for d, (size, stride) in enumerate(zip(own, strides)):
            if size > 1 and stride:
                shape = [1] * len(full)
                shape[lead + d] = size
                off = off + (cp.arange(size, dtype=np.int64) * stride).reshape(shape)
        return cp.ascontiguousarray(cp.broadcast_to(off, full)).reshape(-1)


def _element_strides(a, itemsize: int):
    """Strides of ``a`` in elements, or None when one is not a whole number of elements."""
    if any(s % itemsize for s in a.strides):
        return None
    return tuple(s // itemsize for s in a.strides)


def _unit_last(cp, a):
    """``a`` itself when its last axis is contiguous (strides whole elements), else a C-contiguous copy."""
    st = _element_strides(a, a.itemsize)
    if st is None or (a.shape[-1] > 1 and st[-1] != 1):
        return cp.ascontiguousarray(a)
    return a


def _grid(count: int, threads: int, cap: int = 65535 * 32) -> int:
    return max(1, min(cap, (count + threads - 1) // threads))


# -- contraction ----------------------------------------------------------------------------------
def max_abs_matmul(xp, values, ids, weights):
    """Max-abs-times contraction with argmax on cupy arrays (see
    :func:`semirad.semirings.max_abs.dispatch.matmul`), or None where the kernels do not apply (numpy
    arrays, other dtypes, sizes past 32-bit indices, ``SEMIRAD_CUDA_KERNELS=reference``): the caller
    then runs the reference.

    ``out[..., i, k] = values[..., i, j*] * weights[..., j*, k]`` and ``out_ids[..., i, k] =
    ids[..., i, j*]`` with ``j*`` the first ``j`` of largest ``|values[..., i, j] * weights[..., j, k]|``;
    batch dimensions broadcast; ``n == 0`` gives ``(0, NO_PATH)``.
    """
    if xp is np:
        return None
    cp = _cupy()
    if values.ndim < 2 or weights.ndim < 2 or values.shape[-1] != weights.shape[-2]:
        raise ValueError(f"max_abs_matmul: shapes {values.shape} and {weights.shape} do not contract")
    batch = np.broadcast_shapes(values.shape[:-2], weights.shape[:-2])
    m, n = values.shape[-2:]
    p = weights.shape[-1]
    dtype = np.result_type(values.dtype, weights.dtype)
    shape = batch + (m, p)
    if n == 0:
        return cp.zeros(shape, dtype=dtype), cp.full(shape, NO_PATH, dtype=np.int64)
    if n == 1:  # one product per output: nothing to compare
        out_v = values * weights
        out_i = cp.broadcast_to(cp.broadcast_to(ids, values.shape), shape)
        return out_v, out_i
    if not _enabled or dtype not in _DTYPES or max(m, n, p) >= _INT32_LIMIT:
        return None
    if math.prod(shape) == 0:
        return cp.zeros(shape, dtype=dtype), cp.full(shape, NO_PATH, dtype=np.int64)
    values = values.astype(dtype, copy=False)
    weights = weights.astype(dtype, copy=False)
    ids = cp.broadcast_to(ids.astype(np.int64, copy=False), values.shape)
    if batch and math.prod(weights.shape[:-2]) == 1 and values.shape[:-2] == batch:
        # weights shared by the whole batch: one (batch * m, n) @ (n, p) contraction
        rows = math.prod(batch) * m
        if rows < _INT32_LIMIT:
            v2 = values.reshape(rows, n)
            i2 = ids.reshape(rows, n)
            w2 = weights.reshape(n, p)
            out_v, out_i = _contract2(cp, v2, i2, w2, rows, n, p, dtype)
            return out_v.reshape(shape), out_i.reshape(shape)
    if math.prod(batch) == 1:
        v2 = values[(0,) * (values.ndim - 2)]
        i2 = ids[(0,) * (ids.ndim - 2)]
        w2 = weights[(0,) * (weights.ndim - 2)]
        out_v, out_i = _contract2(cp, v2, i2, w2, m, n, p, dtype)
        return out_v.reshape(shape), out_i.reshape(shape)
    return _tiled(cp, values, ids, weights, batch, m, n, p, dtype)


def _contract2(cp, v, i, w, m, n, p, dtype):
    """One 2-D contraction ``(m, n) @ (n, p)``: the matrix-vector kernels where they apply."""
    if m == 1:
        return _vecmat(cp, v, i, w, n, p, dtype)
    if p == 1:
        return _matvec(cp, v, i, w, m, n, dtype)
    return _tiled(cp, v, i, w, (), m, n, p, dtype)


def _tiled(cp, values, ids, weights, batch, m, n, p, dtype):
    isz = dtype.itemsize
    a = _unit_last(cp, values)
    b = _unit_last(cp, weights)
    ist = _element_strides(ids, 8)
    if ist is None:
        ids = cp.ascontiguousarray(ids)
        ist = _element_strides(ids, 8)
    ast = _element_strides(a, isz)
    bst = _element_strides(b, isz)
    dev = cp.cuda.runtime.getDevice()
    aoff = _offsets(dev, a.shape[:-2], ast[:-2], batch)
    boff = _offsets(dev, b.shape[:-2], bst[:-2], batch)
    ioff = _offsets(dev, ids.shape[:-2], ist[:-2], batch)
    nb = math.prod(batch)
    out_v = cp.empty(batch + (m, p), dtype=dtype)
    out_i = cp.empty(batch + (m, p), dtype=np.int64)
    tiles = nb * (-(-m // S.TILE_M)) * (-(-p // S.TILE_N))
    fn = _function(S.TILED, dtype)
    fn(
        (min(tiles, 2**31 - 1),), (S.TILE_THREADS,),
        (a, aoff, np.int64(ast[-2]), b, boff, np.int64(bst[-2]), ids, ioff, np.int64(ist[-2]), np.int64(ist[-1]),
         out_v, out_i, np.int64(nb), np.int32(m), np.int32(n), np.int32(p)),
    )
    return out_v, out_i


def _split(blocks: int, n: int, min_chunk: int, device: int) -> tuple:
    """Chunks of ``j`` per output: enough blocks to fill the device, chunks of at least ``min_chunk``."""
    want = 4 * _sm_count(device)
    s = max(1, min(-(-want // blocks), -(-n // min_chunk), 65535))
    chunk = -(-n // s)
    return -(-n // chunk), chunk


def _mv(cp, a, lda, a_rows, x, incx, ids, ids_sr, ids_sj, n, r_count, dtype):
    """Launch the partial kernel (rows or cols of ``a``) and the finalize kernel: ``r_count`` outputs."""
    dev = cp.cuda.runtime.getDevice()
    if a_rows:
        blocks = -(-r_count // S.MV_WARPS)
        s, chunk = _split(blocks, n, 32 * 16, dev)
        grid, block, name = (blocks, s), (32 * S.MV_WARPS,), S.MV_ROWS
    else:
        blocks = -(-r_count // S.MV_COLS_X)
        s, chunk = _split(blocks, n, S.MV_COLS_Y * 16, dev)
        grid, block, name = (blocks, s), (S.MV_COLS_X, S.MV_COLS_Y), S.MV_COLS
    part_v = cp.empty(s * r_count, dtype=dtype)
    part_j = cp.empty(s * r_count, dtype=np.int32)
    args = (a, np.int64(lda), x, np.int64(incx), np.int32(n), np.int64(r_count), np.int32(chunk), part_v, part_j)
    _function(name, dtype)(grid, block, args)
    out_v = cp.empty(r_count, dtype=dtype)
    out_i = cp.empty(r_count, dtype=np.int64)
    _function(S.MV_FINALIZE, dtype)(
        (_grid(r_count, S.FLAT_THREADS),), (S.FLAT_THREADS,),
        (part_v, part_j, np.int32(s), np.int64(r_count), a, np.int64(lda), np.int32(1 if a_rows else 0), x,
         np.int64(incx), ids, np.int64(ids_sr), np.int64(ids_sj), out_v, out_i),
    )
    return out_v, out_i


def _strided(cp, a, itemsize):
    st = _element_strides(a, itemsize)
    if st is None:
        a = cp.ascontiguousarray(a)
        st = _element_strides(a, itemsize)
    return a, st


def _vecmat(cp, v, i, w, n, p, dtype):
    """``(1, n) @ (n, p)``: output ``k`` contracts column ``k`` of ``w`` with the row ``v[0]``."""
    isz = dtype.itemsize
    x, xst = _strided(cp, v[0], isz)
    ids, ist = _strided(cp, i[0], 8)
    w, wst = _strided(cp, w, isz)
    if wst[1] == 1 or p == 1:  # row-major: 32 consecutive columns per block, coalesced rows
        return _mv(cp, w, wst[0], False, x, xst[0], ids, 0, ist[0], n, p, dtype)
    if wst[0] == 1:  # column-major (w = W.T of a C-contiguous W): one warp per column
        return _mv(cp, w, wst[1], True, x, xst[0], ids, 0, ist[0], n, p, dtype)
    w = cp.ascontiguousarray(w)
    return _mv(cp, w, p, False, x, xst[0], ids, 0, ist[0], n, p, dtype)


def _matvec(cp, v, i, w, m, n, dtype):
    """``(m, n) @ (n, 1)``: output ``i`` contracts row ``i`` of ``v`` with the column ``w[:, 0]``."""
    isz = dtype.itemsize
    x, xst = _strided(cp, w[:, 0], isz)
    ids, ist = _strided(cp, i, 8)
    v, vst = _strided(cp, v, isz)
    if vst[1] == 1:  # row-major: one warp per row
        return _mv(cp, v, vst[0], True, x, xst[0], ids, ist[0], ist[1], n, m, dtype)
    if vst[0] == 1:  # column-major: 32 consecutive rows per block
        return _mv(cp, v, vst[1], False, x, xst[0], ids, ist[0], ist[1], n, m, dtype)
    v = cp.ascontiguousarray(v)
    return _mv(cp, v, n, True, x, xst[0], ids, ist[0], ist[1], n, m, dtype)


# -- scatter --------------------------------------------------------------------------------------
_KEY_DTYPES = {np.dtype(np.float32): np.uint32, np.dtype(np.float64): np.uint64}


def scatter_max_abs(xp, positions, values, ids, size: int):
    """Per target keep the value of largest ``|value|``, ties to the smallest id (then the first entry).

    Same arguments and result as :func:`semirad.semirings.max_abs.dispatch.scatter`: ``(value, id)``
    arrays of length ``size``; untouched targets hold ``(0, NO_PATH)``; NaN loses to every number.
    None where the kernels do not apply (numpy arrays, other dtypes, kernels off): the caller then
    runs the reference.
    """
    if xp is np or not _enabled or np.dtype(values.dtype) not in _DTYPES:
        return None
    cp = _cupy()
    positions = positions.ravel()
    if values.size != positions.size:
        values = cp.broadcast_to(values, positions.shape)
    if ids.size != positions.size:
        ids = cp.broadcast_to(ids, positions.shape)
    dtype = np.dtype(values.dtype)
    out_v = cp.zeros(size, dtype=dtype)
    out_i = cp.full(size, NO_PATH, dtype=np.int64)
    count = positions.size
    if count == 0 or size == 0:
        return out_v, out_i
    pos = cp.ascontiguousarray(positions.astype(np.int64, copy=False))
    vals = cp.ascontiguousarray(values.ravel())
    idv = cp.ascontiguousarray(ids.astype(np.int64, copy=False).ravel())
    keys = cp.zeros(size, dtype=_KEY_DTYPES[dtype])
    win = cp.full(size, NO_PATH, dtype=np.int64)
    grid, block = (_grid(count, S.FLAT_THREADS),), (S.FLAT_THREADS,)
    n64, s64 = np.int64(count), np.int64(size)
    _function(S.SCATTER_KEY, dtype)(grid, block, (pos, vals, n64, s64, keys))
    _function(S.SCATTER_ID, dtype)(grid, block, (pos, vals, idv, n64, s64, keys, out_i))
    _function(S.SCATTER_ENTRY, dtype)(grid, block, (pos, vals, idv, n64, s64, keys, out_i, win))
    _function(S.SCATTER_WRITE, dtype)(
        (_grid(size, S.FLAT_THREADS),), (S.FLAT_THREADS,), (vals, win, np.int64(size), out_v)
    )
    return out_v, out_i


# -- benchmark ------------------------------------------------------------------------------------
def _time(cp, fn, repeat: int) -> float:
    """Seconds per call of ``fn()``: ``repeat`` calls between two CUDA events, after one warm-up call
    (the host queues launches ahead of the device, so launch overhead shows only where it dominates)."""
    fn()
    start, stop = cp.cuda.Event(), cp.cuda.Event()
    start.record()
    for _ in range(repeat):
        fn()
    stop.record()
    stop.synchronize()
    return cp.cuda.get_elapsed_time(start, stop) / 1e3 / repeat


def benchmark(size: int = 4096, mv: int = 5000, repeat: int = 10, seed: int = 0) -> list:
    """Time the kernels against cuBLAS (``cupy.matmul``) of the same shapes; returns rows of results.

    Rows: ``(case, dtype, seconds kernel, seconds cuBLAS, ratio, products per second)``. The
    issue's targets: ratio <= 3 for the contraction at 4096³, <= 2 for matrix-vector at N = 5000.
    """
    cp = _cupy()
    rng = cp.random.default_rng(seed)
    rows = []

    def case(name, v, w, ids):
        dtype = np.result_type(v.dtype, w.dtype)
        t_k = _time(cp, lambda: max_abs_matmul(cp, v, ids, w), repeat)
        t_b = _time(cp, lambda: cp.matmul(v, w), repeat)
        prods = math.prod(np.broadcast_shapes(v.shape[:-2], w.shape[:-2])) * v.shape[-2] * v.shape[-1] * w.shape[-1]
        rows.append((name, str(dtype), t_k, t_b, t_k / t_b, prods / t_k))

    for dtype in (np.float32, np.float64):
        v = rng.standard_normal((size, size), dtype=dtype)
        w = rng.standard_normal((size, size), dtype=dtype)
        ids = cp.arange(size * size, dtype=np.int64).reshape(size, size)
        case(f"matmul {size}^3", v, w, ids)
        x = rng.standard_normal((1, mv), dtype=dtype)
        big = rng.standard_normal((mv, mv), dtype=dtype)
        xi = cp.arange(mv, dtype=np.int64).reshape(1, mv)
        case(f"vecmat 1x{mv} @ {mv}x{mv}", x, big, xi)
        case(f"vecmat 1x{mv} @ ({mv}x{mv}).T", x, big.T, xi)
        mi = cp.arange(mv * mv, dtype=np.int64).reshape(mv, mv)
        case(f"matvec {mv}x{mv} @ {mv}x1", big, x.T, mi)
        for bsz in (64, 512):
            v = rng.standard_normal((bsz, 1024), dtype=dtype)
            w = rng.standard_normal((1024, 1024), dtype=dtype)
            case(f"dense layer {bsz}x1024 @ 1024x1024", v, w, cp.arange(bsz * 1024, dtype=np.int64).reshape(bsz, 1024))
    return rows


def _main() -> None:  # pragma: no cover - needs a GPU
    cp = _cupy()
    print(f"device: {cp.cuda.runtime.getDeviceProperties(cp.cuda.runtime.getDevice())['name'].decode()}")
    print(f"{'case':42s} {'dtype':8s} {'kernel ms':>10s} {'cuBLAS ms':>10s} {'ratio':>7s} {'Gprod/s':>9s}")
    for name, dt, tk, tb, ratio, rate in benchmark():
        print(f"{name:42s} {dt:8s} {tk * 1e3:10.3f} {tb * 1e3:10.3f} {ratio:7.2f} {rate / 1e9:9.1f}")


if __name__ == "__main__":  # pragma: no cover
    _main()
