"""numba kernels: elementwise passes that numpy runs in several (a bias add, the partials of tanh and
sigmoid) and the finiteness check of a trace.

The first three do in one pass over memory, with the same floating-point operations in the same
order, what :mod:`semirad.backend` otherwise does with numpy: the same bits. They pay on arrays of
a few MB, where every pass is a trip to memory: in a network of 16384 x 20 layers they made a
backprop 1.1x faster (see docs/design.md, Performance). ``non_finite_sum`` answers the question of
numpy's ``isfinite(a.sum())`` without its overflow and faster. Arrays are C-contiguous and of one
float dtype; the caller checks that.
"""

from __future__ import annotations

from numba import njit


@njit(cache=True, boundscheck=False)
def add_vector_to_rows(a, v, out):
    """``out[i, j] = a[i, j] + v[j]`` (numpy runs a broadcast add one short row at a time)."""
    rows, n = a.shape
    for i in range(rows):
        for j in range(n):
            out[i, j] = a[i, j] + v[j]
    return out


@njit(cache=True, boundscheck=False)
def one_minus_square(y, out):
    """``out = 1 - y * y`` (flat arrays): tanh's partial from its output."""
    one = y.dtype.type(1)
    for i in range(y.size):
        out[i] = one - y[i] * y[i]
    return out


@njit(cache=True, boundscheck=False)
def times_one_minus(y, out):
    """``out = y * (1 - y)`` (flat arrays): the sigmoid's partial from its output."""
    one = y.dtype.type(1)
    for i in range(y.size):
        out[i] = y[i] * (one - y[i])
    return out


@njit(cache=True, boundscheck=False, fastmath={"reassoc"})
def non_finite_sum(x):
    """Sum of ``x * 0`` over a flat array: 0 when every element is finite, NaN otherwise (inf * 0 and
    NaN * 0 are NaN). ``reassoc`` alone lets LLVM vectorize the sum; it may not assume away NaN."""
    acc = x.dtype.type(0)
    zero = x.dtype.type(0)
    for i in range(x.size):
        acc += x[i] * zero
    return acc
