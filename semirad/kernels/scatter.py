"""numba kernel: MaxAbsProduct's ⊕-scatter with argmax (the backward of a gather whose index repeats:
an embedding lookup, a convolution's unfold, overlapping pooling windows).

One pass over the entries in C order keeps, per target, the entry of largest ``|value|``, a NaN
below every number, then the smallest id, then the first entry: the order of the ``lexsort`` of
:func:`semirad.semirings.max_abs.reference.scatter`, bit for bit. Each target's rank is held in
``key``: ``|value|``, ``-1`` for NaN, ``-2`` while no entry has reached it. A later entry replaces
the kept one only where it ranks strictly higher, so equal ranks keep the first.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types

from ..ids import NO_PATH


def _signature(dtype):
    ints = types.Array(types.int64, 3, "A", readonly=True)
    result = types.Tuple((types.Array(dtype, 1, "C"), types.int64[::1], types.boolean))
    return result(ints, types.Array(dtype, 3, "A", readonly=True), ints, types.int64)


@njit([_signature(types.float32), _signature(types.float64)], cache=True, boundscheck=False)
def _scatter(positions, values, ids, size):
    # allocated here, not in Python: a few µs a call, a small gather's whole cost (docs/design.md)
    out_v = np.zeros(size, dtype=values.dtype)
    out_i = np.full(size, NO_PATH, dtype=np.int64)
    key = np.full(size, -2, dtype=values.dtype)
    d0, d1, d2 = positions.shape
    for a in range(d0):
        for b in range(d1):
            for c in range(d2):
                t = positions[a, b, c]
                if t < 0 or t >= size:
                    return out_v, out_i, False
                v = values[a, b, c]
                k = abs(v) if v == v else key.dtype.type(-1)
                kt = key[t]
                i = ids[a, b, c]
                if k > kt or (k == kt and i < out_i[t]):
                    key[t] = k
                    out_v[t] = v
                    out_i[t] = i
    return out_v, out_i, True


def _three_axes(a: np.ndarray) -> np.ndarray:
    """``a`` as 3 axes in the same C order: a view where its leading axes merge, else a copy."""
    ndim = a.ndim
    if ndim == 3:
        return a
    if ndim == 1:
        return a[None, None]
    if ndim == 2:
        return a[None]
    if ndim == 0:
        return a.reshape(1, 1, 1)
    return a.reshape(-1, *a.shape[-2:])


def max_abs_scatter(positions: np.ndarray, values: np.ndarray, ids: np.ndarray, size: int):
    """Per target keep the entry of largest ``|value|`` (NaN lowest), ties to the smallest id, then
    to the first entry in C order; untouched targets hold ``(0, NO_PATH)``.

    ``positions`` (int64), ``values`` (float32/float64) and ``ids`` (int64) are arrays of one
    shape, any strides (read in place where their leading axes merge). Returns ``(values, ids)`` of
    length ``size``, or None where a position lies outside ``[0, size)`` (the caller runs the
    reference, which says what that does).

    >>> v, i = max_abs_scatter(np.array([1, 1, 0]), np.array([2.0, -2.0, 1.0]), np.array([7, 5, 3]), 3)
    >>> v.tolist(), i.tolist() == [3, 5, NO_PATH]
    ([1.0, -2.0, 0.0], True)
    """
    if positions.size == 0:
        return np.zeros(size, dtype=values.dtype), np.full(size, NO_PATH, dtype=np.int64)
    out_v, out_i, ok = _scatter(_three_axes(positions), _three_axes(values), _three_axes(ids), size)
    return (out_v, out_i) if ok else None
