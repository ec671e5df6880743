"""Axis arguments: the one definition of how ``axis`` (None, an int or a tuple) becomes axes.

Ops (``ops.core.normalize_axes``, which names the op in its error) and semirings (their ``sum``)
both use :func:`canonical_axes`.
"""

from __future__ import annotations

import numpy as np


def canonical_axes(axis, ndim: int) -> tuple:
    """``axis`` as a sorted tuple of distinct non-negative axes of an array of ``ndim`` axes
    (``None``: all of them); ``ValueError`` for an axis out of range or repeated.

    >>> canonical_axes(-1, 3), canonical_axes((2, 0), 3), canonical_axes(None, 2)
    ((2,), (0, 2), (0, 1))
    >>> canonical_axes((0, -3), 3)
    Traceback (most recent call last):
    ...
    ValueError: repeated axis in (0, -3)
    """
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of range")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"repeated axis in {axis}")
    return tuple(sorted(out))
