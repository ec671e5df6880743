"""Array backends: numpy on the CPU, cupy on the GPU; the seam every other module goes through.

:func:`namespace` names the array library that holds some arrays; the rest are the few generic
helpers that depend on it (host copies, element ids, flat positions, scatter-add). Speed helpers
for ops live in :mod:`semirad.fast`, each semiring's algorithms and their kernels beside it
(:mod:`semirad.semirings.max_abs`).
"""

from __future__ import annotations

import math

import numpy as np

from .ids import END, NO_PATH  # noqa: F401  (re-exported: backend.NO_PATH is what semirings read)

try:  # pragma: no cover - exercised only where cupy is installed
    import cupy
except Exception:  # ImportError, or a broken CUDA install
    cupy = None


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


def broadcast_shapes(a: tuple, b: tuple) -> tuple:
    """``np.broadcast_shapes(a, b)``, without its few µs where the shapes are equal (the common case).

    >>> broadcast_shapes((2, 1), (3,)), broadcast_shapes((4,), (4,))
    ((2, 3), (4,))
    """
    return a if a == b else np.broadcast_shapes(a, b)


def product_dtype(a, b):
    """``np.result_type`` of two arrays, without its µs where their dtypes are equal.

    >>> product_dtype(np.ones(1, np.float32), np.ones(1)).name
    'float64'
    """
    return a.dtype if a.dtype == b.dtype else np.result_type(a.dtype, b.dtype)


#: elements of the largest temporary a blocked loop over rows builds (32 MiB of float64)
_CHUNK_ELEMENTS = 1 << 22


def row_blocks(rows: int, elements_per_row: int):
    """Slices of ``range(rows)`` such that a temporary of ``elements_per_row`` per row stays near
    ``2**22`` elements: the one chunked loop of the array references' broadcast contractions.

    >>> [(s.start, s.stop) for s in row_blocks(5, 2**21)]
    [(0, 2), (2, 4), (4, 5)]
    """
    step = max(1, _CHUNK_ELEMENTS // max(1, elements_per_row))
    return [slice(r0, min(rows, r0 + step)) for r0 in range(0, rows, step)]

