"""Array backends: numpy on the CPU, cupy on the GPU.

Everything that must know which array library holds the data goes through
:func:`namespace`; the few kernels a semiring needs (contraction with argmax,
scatter with argmax) live here too, so ops and semirings stay backend-free.
"""

from __future__ import annotations

import math

import numpy as np

from . import kernels

try:  # pragma: no cover - exercised only where cupy is installed
    import cupy
except Exception:  # ImportError, or a broken CUDA install
    cupy = None

#: backpointer of an element that has no path to the output (sorts after every real id)
NO_PATH = np.iinfo(np.int64).max
#: backpointer stored at the output itself: the path ends here
END = -1

_CHUNK_ELEMENTS = 1 << 22


def namespace(*arrays):
    """The array module (numpy or cupy) that holds ``arrays``.

    >>> namespace(np.zeros(2)) is np
    True
    """
    if cupy is not None:
        for a in arrays:
            if isinstance(a, cupy.ndarray):
                return cupy
    return np


def is_array(x) -> bool:
    """True for a numpy or cupy array."""
    return isinstance(x, np.ndarray) or (cupy is not None and isinstance(x, cupy.ndarray))


def to_numpy(a) -> np.ndarray:
    """A numpy copy (or view) of a numpy or cupy array."""
    if cupy is not None and isinstance(a, cupy.ndarray):
        return cupy.asnumpy(a)
    return np.asarray(a)


def element_ids(xp, base: int, shape: tuple) -> object:
    """Global vertex ids ``base + flat index`` for an array of ``shape``."""
    return xp.arange(base, base + math.prod(shape), dtype=np.int64).reshape(shape)


def flat_positions(xp, shape: tuple, index) -> object:
    """Flat C-order position in an array of ``shape`` of every element that ``a[index]`` selects."""
    size = int(np.prod(shape, dtype=np.int64))
    return xp.arange(size, dtype=np.int64).reshape(shape)[index]


def scatter_add(xp, positions, values, size: int):
    """``out = zeros(size); out[positions] += values`` with repeated positions adding up."""
    positions = positions.ravel()
    values = xp.broadcast_to(values, positions.shape if values.ndim == 0 else values.shape).ravel()
    if xp is np:
        if np.iscomplexobj(values):
            out = np.zeros(size, dtype=values.dtype)
            np.add.at(out, positions, values)
            return out
        return np.bincount(positions, weights=values, minlength=size).astype(values.dtype, copy=False)
    out = xp.zeros(size, dtype=values.dtype)  # pragma: no cover - GPU
    xp.add.at(out, positions, values)  # pragma: no cover - GPU
    return out  # pragma: no cover - GPU


def scatter_max_abs(xp, positions, values, ids, size: int):
    """Per target position keep the value of largest ``|value|``; ties go to the smallest id.

    Returns ``(value, id)`` arrays of length ``size``; untouched positions hold ``(0, NO_PATH)``.
    """
    return scatter_max_abs_reference(xp, positions, values, ids, size)


def scatter_max_abs_reference(xp, positions, values, ids, size: int):
    """:func:`scatter_max_abs` in plain array operations (one ``lexsort``): the algorithm that the
    compiled kernels must reproduce and fall back to.

    >>> v, i = scatter_max_abs_reference(np, np.array([1, 1, 0]), np.array([2., -2., 1.]), np.array([7, 5, 3]), 3)
    >>> v.tolist(), i.tolist()
    ([1.0, -2.0, 0.0], [3, 5, 9223372036854775807])
    """
    positions = positions.ravel()
    values = values.ravel()
    ids = ids.ravel()
    out_v = xp.zeros(size, dtype=values.dtype)
    out_i = xp.full(size, NO_PATH, dtype=np.int64)
    if positions.size == 0:
        return out_v, out_i
    # sort by position, then |value| descending, then id ascending: the first of each run wins
    order = xp.lexsort(xp.stack([ids, -xp.abs(values).astype(np.float64), positions]))
    sorted_pos = positions[order]
    first = xp.ones(sorted_pos.shape, dtype=bool)
    first[1:] = sorted_pos[1:] != sorted_pos[:-1]
    winners = order[first]
    out_v[positions[winners]] = values[winners]
    out_i[positions[winners]] = ids[winners]
    return out_v, out_i


def max_abs_matmul(xp, values, ids, weights):
    """Max-abs-times contraction with argmax: the MaxAbsProduct form of ``values @ weights``.

    ``out[..., i, k] = values[..., i, j*] * weights[..., j*, k]`` with ``j*`` the ``j`` of largest
    ``|values[..., i, j] * weights[..., j, k]|`` (the first such ``j`` on ties), and
    ``out_ids[..., i, k] = ids[..., i, j*]``. Batch dimensions broadcast as in ``matmul``.
    Products are taken in ``result_type(values, weights)``; an empty ``j`` range gives
    ``(0, NO_PATH)`` (no path). On numpy arrays the numba kernel of :mod:`semirad.kernels` runs when
    it is installed and enabled (float32/float64, finite inputs); otherwise the numpy reference
    :func:`max_abs_matmul_reference`. Both give the same bits.

    >>> v, i = max_abs_matmul(np, np.array([[1., -3.]]), np.array([[10, 11]]), np.array([[2.], [1.]]))
    >>> v.tolist(), i.tolist()
    ([[-3.0]], [[11]])
    """
    if values.shape[-1] <= 1:
        return _max_abs_matmul_trivial(xp, values, ids, weights)
    if xp is np and kernels.enabled():
        dtype = values.dtype if values.dtype == weights.dtype else np.result_type(values.dtype, weights.dtype)
        if dtype in _KERNEL_DTYPES:
            out = _kernel().max_abs_matmul(values, ids, weights, dtype)
            if out is not None:
                return out
    return max_abs_matmul_reference(xp, values, ids, weights)


_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_KERNEL = None


def _kernel():
    """The numba kernel module, imported (and its compiled code loaded) on first use."""
    global _KERNEL
    if _KERNEL is None:
        from .kernels import max_abs

        _KERNEL = max_abs
    return _KERNEL


def _max_abs_matmul_trivial(xp, values, ids, weights):
    """``n == 0``: no path; ``n == 1``: one product per output element, nothing to compare."""
    batch = np.broadcast_shapes(values.shape[:-2], weights.shape[:-2])
    shape = batch + (values.shape[-2], weights.shape[-1])
    dtype = np.result_type(values.dtype, weights.dtype)
    if values.shape[-1] == 0:
        return xp.zeros(shape, dtype=dtype), xp.full(shape, NO_PATH, dtype=np.int64)
    out_v = values * weights  # (..., m, 1) * (..., 1, p)
    out_i = xp.broadcast_to(xp.broadcast_to(ids, values.shape), shape)
    return out_v, out_i


def max_abs_matmul_reference(xp, values, ids, weights):
    """The array-library reference of :func:`max_abs_matmul` (numpy or cupy): chunked broadcasting.

    >>> v, i = max_abs_matmul_reference(np, np.array([[1., -3.]]), np.array([[10, 11]]), np.array([[2.], [1.]]))
    >>> v.tolist(), i.tolist()
    ([[-3.0]], [[11]])
    """
    batch = np.broadcast_shapes(values.shape[:-2], weights.shape[:-2])
    m, n = values.shape[-2:]
    p = weights.shape[-1]
    dtype = np.result_type(values.dtype, weights.dtype)
    if n == 0:
        return xp.zeros(batch + (m, p), dtype=dtype), xp.full(batch + (m, p), NO_PATH, dtype=np.int64)
    nb = math.prod(batch)
    v = xp.broadcast_to(values, batch + (m, n)).reshape(nb, m, n)
    i = xp.broadcast_to(ids, batch + (m, n)).reshape(nb, m, n)
    w = xp.broadcast_to(weights, batch + (n, p)).reshape(nb, n, p)
    out_v = xp.empty((nb, m, p), dtype=dtype)
    out_i = xp.empty((nb, m, p), dtype=np.int64)
    rows = max(1, _CHUNK_ELEMENTS // max(1, n * p))
    for b in range(v.shape[0]):
        for r0 in range(0, m, rows):
            r1 = min(m, r0 + rows)
            prod = v[b, r0:r1, :, None] * w[b, None, :, :]  # (rows, n, p)
            best = xp.abs(prod).argmax(axis=1)  # (rows, p); first max on ties
            out_v[b, r0:r1] = xp.take_along_axis(prod, best[:, None, :], axis=1)[:, 0, :]
            out_i[b, r0:r1] = xp.take_along_axis(i[b, r0:r1], best, axis=1)
    return out_v.reshape(batch + (m, p)), out_i.reshape(batch + (m, p))
