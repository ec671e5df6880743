"""numba kernels: elementwise passes that numpy runs in several (a bias add, the partials of tanh and
sigmoid) and the finiteness check of a trace.

The first three do in one pass over memory, with the same floating-point operations in the same
order, what :mod:`semirad.fast` otherwise does with numpy: the same bits. They pay on arrays of
a few MB, where every pass is a trip to memory: in a network of 16384 x 20 layers they made a
backprop 1.1x faster (see docs/design.md, Performance). ``non_finite_sum`` answers the question of
numpy's ``isfinite(a.sum())`` without its overflow and faster. Arrays are C-contiguous and of one
float dtype; the caller checks that. ``traced_vertex`` does a small traced vertex's bookkeeping
(finiteness, own ids, dead ends) in one call where numpy takes three, and ``largest_magnitude``
bounds a contraction's products (:func:`semirad.backend.products_finite`) in one call, and
``max_abs_add`` is MaxAbsProduct's ``⊕`` in one pass where numpy takes eight. ``tanh`` is
semirad's float64 tanh (:mod:`semirad.kernels.tanh`), 4.5x numpy's where numpy's is a libm call per
element. ``erf`` (numpy has none) is the C library's, one call per element.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types

from ..ids import NO_PATH as _NO_PATH
from .tanh import tanh_loop


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


def _add_signature(dtype):
    flat, ids = types.Array(dtype, 1, "C", readonly=True), types.Array(types.int64, 1, "C", readonly=True)
    return types.void(flat, ids, flat, ids, types.Array(dtype, 1, "C"), types.int64[::1])


@njit([_add_signature(types.float32), _add_signature(types.float64)], cache=True, boundscheck=False)
def max_abs_add(a, a_ids, b, b_ids, out, out_ids):
    """MaxAbsProduct's ``⊕`` over flat arrays: ``b`` where ``|b| > |a|``, or ``|b| == |a|`` and ``b``'s
    id is the smaller, else ``a`` (so a NaN on either side keeps ``a``, as numpy's comparisons do).
    Bitwise ``&``/``|`` rather than ``and``/``or``: no branch, so the loop vectorizes."""
    for i in range(a.size):
        x = abs(a[i])
        y = abs(b[i])
        take_b = (y > x) | ((y == x) & (b_ids[i] < a_ids[i]))
        out[i] = b[i] if take_b else a[i]
        out_ids[i] = b_ids[i] if take_b else a_ids[i]


def _by_layout(fn, signature, dtypes, **options) -> tuple:
    """``fn`` compiled (and cached) twice: ``(contiguous, strided)``, with ``signature(dtype, layout)`` for
    each of ``dtypes`` and layout ``"C"`` (whose loops vectorize), then ``"A"`` (any strides). Two
    dispatchers, not one with both: numba finds a C-contiguous argument's call ambiguous between them.
    The caller picks by the arrays' flags."""
    return tuple(njit([signature(d, layout) for d in dtypes], cache=True, **options)(fn) for layout in ("C", "A"))


def _vertex_signature(dtype, layout):
    # value and ids read-only (a writable array converts to this type); "A": any strides (a
    # broadcast gradient arrives with 0 strides), "C": contiguous, whose loops vectorize
    flat = types.Array(dtype, 1, layout, readonly=True)
    return types.boolean(flat, types.Array(types.int64, 1, layout, readonly=True), types.int64, types.int64[::1])


def _traced_vertex(value, ids, base, own):
    """``own[i] = base + i``, or ``NO_PATH`` where ``ids[i]`` is ``NO_PATH`` (a dead end stays one),
    over flat arrays; returns whether every element of ``value`` is finite (``x - x`` is 0 for finite
    ``x``, NaN for NaN and inf; ``reassoc`` lets the sum of them vectorize, NaN still propagates)."""
    check = 0.0
    for i in range(value.size):
        check += value[i] - value[i]
    for i in range(own.size):
        own[i] = _NO_PATH if ids[i] == _NO_PATH else base + i
    return check == 0.0


#: :func:`_traced_vertex` on C-contiguous arrays (vectorized; docs/design.md, "Thresholds"), and on any strides
traced_vertex, traced_vertex_strided = _by_layout(
    _traced_vertex, _vertex_signature, (types.float32, types.float64), boundscheck=False, fastmath={"reassoc"}
)


def _magnitude_bits(bits, mask):
    """The largest ``bits[i] & mask`` (``mask``: every bit but the sign's), over a flat integer view
    of a float array."""
    top = mask - mask
    for i in range(bits.size):
        b = bits[i] & mask
        top = b if b > top else top
    return top


def _bits_signature(itype, layout):
    return itype(types.Array(itype, 1, layout, readonly=True), itype)


#: :func:`_magnitude_bits` on C-contiguous views (the loop vectorizes) and on any strides
_magnitude_bits_contiguous, _magnitude_bits_strided = _by_layout(
    _magnitude_bits, _bits_signature, (types.int32, types.int64), boundscheck=False
)
#: the integer view of each float dtype, and every bit but the sign's
_BITS = {
    np.dtype(np.float32): (np.int32, np.int32(0x7FFFFFFF)),
    np.dtype(np.float64): (np.int64, np.int64(0x7FFFFFFFFFFFFFFF)),
}


def largest_magnitude(x: np.ndarray) -> float:
    """``max |x|`` over a flat float32/float64 array (of any strides), as a float64; inf if an element
    is not finite; 0 for an empty array.

    An integer max of the bit patterns without their sign bit: those of floats of one sign order as
    the numbers do, and NaN's and inf's lie above every finite number's. It vectorizes, where a float
    max that must see NaN does not (5x faster at 65,536 elements: docs/design.md, "Thresholds").

    >>> largest_magnitude(np.array([1.5, -4.0, 2.0])), largest_magnitude(np.array([1.0, np.nan], np.float32))
    (4.0, inf)
    """
    itype, mask = _BITS[x.dtype]
    bits = x.view(itype)
    top = (_magnitude_bits_contiguous if bits.flags.c_contiguous else _magnitude_bits_strided)(bits, mask)
    largest = float(itype(top).view(x.dtype))
    return largest if largest - largest == 0.0 else math.inf


#: ``out = tanh(x)`` (flat float64 arrays): :func:`semirad.kernels.tanh.tanh_loop` compiled (its source
#: file, which holds its constants, is what numba's cache checks); no ZeroDivisionError branch, so
#: the loop vectorizes
tanh = njit(cache=True, boundscheck=False, error_model="numpy")(tanh_loop)


def _sigmoid_signature(dtype, inputs):
    flat = types.Array(dtype, 1, "C", readonly=True)
    return types.void(*(flat,) * inputs, types.float64, types.Array(dtype, 1, "C"))


@njit([_sigmoid_signature(types.float32, 1), _sigmoid_signature(types.float64, 1)],
      cache=True, boundscheck=False, error_model="numpy")
def sigmoid(x, low, out):
    """``out = sigmoid(x)`` over flat float32/float64 arrays, in float64 with the operations of
    :func:`semirad.backend.sigmoid_reference` in the same order: ``exp(x)`` below ``low``, else
    ``1 / (1 + exp(-x))``. One call of the C library's ``exp`` per element (numba does not vectorize
    it); what it saves over numpy is the other passes."""
    for i in range(x.size):
        v = np.float64(x[i])
        out[i] = math.exp(v) if v < low else 1.0 / (1.0 + math.exp(-v))


@njit([_sigmoid_signature(types.float32, 2), _sigmoid_signature(types.float64, 2)],
      cache=True, boundscheck=False, error_model="numpy")
def sigmoid_partial(x, y, far, out):
    """``out = sigmoid'(x)`` from ``x`` and ``y = sigmoid(x)`` (flat arrays of one float dtype), in
    float64 with the operations of :func:`semirad.backend.sigmoid_partial_reference` in the same order:
    ``(1 - y) y`` everywhere, the elements past ``far`` noted without a branch (on inputs of random
    sign a branch costs about an ``exp``), then ``e / (1 + e)**2`` with ``e = exp(-x)`` for those."""
    beyond = np.empty(x.size, dtype=np.int64)
    count = 0
    for i in range(x.size):
        s = np.float64(y[i])
        out[i] = (1.0 - s) * s
        beyond[count] = i
        count += np.float64(x[i]) > far
    for j in range(count):
        e = math.exp(-np.float64(x[beyond[j]]))
        d = 1.0 + e
        out[beyond[j]] = e / (d * d)


@njit(cache=True, boundscheck=False)
def erf(x, out):
    """``out = erf(x)`` over flat float32/float64 arrays: the C library's ``erf`` in float64 (as Python's
    ``math.erf``, which :func:`semirad.ops.special.erf_reference` calls), rounded once to ``out``'s
    dtype. (numba would call ``erff`` on a float32 argument: hence the cast.)"""
    for i in range(x.size):
        out[i] = math.erf(np.float64(x[i]))
    return out
