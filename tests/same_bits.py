"""Bit-for-bit comparison of sweep results (nested tuples, lists and dicts of arrays), shared by the
tests of replayed graphs and kept sweep plans."""

from __future__ import annotations

import numpy as np


def arrays_of(value) -> list:
    """The arrays of a result, flattened in a fixed order (a dict's by its keys' text)."""
    if isinstance(value, (tuple, list)):
        return [a for v in value for a in arrays_of(v)]
    if isinstance(value, dict):
        return [a for k in sorted(value, key=str) for a in arrays_of(value[k])]
    return [np.asarray(value)]


def assert_same(a, b) -> None:
    """Same arrays, dtypes, shapes and bits (NaN equal to NaN)."""
    a, b = arrays_of(a), arrays_of(b)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert np.array_equal(x, y, equal_nan=x.dtype.kind in "fc"), (x, y)
