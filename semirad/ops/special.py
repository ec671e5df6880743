"""Special functions: ``erf``, elementwise, with its partial ``2/sqrt(pi) exp(-x**2)``.

numpy has no ``erf``. The forward is the C library's ``erf`` in float64 (glibc's: below 1 ulp),
rounded once to the input's dtype: a numba kernel (:func:`semirad.kernels.elementwise.erf`) where the
kernels are enabled, else :func:`erf_reference` (Python's ``math.erf``, the same C function per
element): the same bits either way (tests/ops/test_new_ops.py checks it). The partial squares ``x``
exactly (Dekker's split), so its error stays a few ulps where ``exp(-x*x)`` alone would lose
``x**2 * eps`` relative (300 ulps near ``x = 26``). tests/test_accuracy.py bounds both against mpmath.
"""

from __future__ import annotations

import math

import numpy as np

from .. import kernels
from .core import apply, tensor_type
from .elementwise import Unary

#: ``2 / sqrt(pi)``, the partial of ``erf`` at 0
TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)

#: ``exp(-x*x)`` is 0 in float64 from ``|x| > 27.3`` on: larger ``|x|`` (inf included) are clamped
#: to this before squaring, so nothing overflows
_PARTIAL_CLAMP = 27.5

#: Dekker's splitter for float64: ``x * (2**27 + 1)`` splits ``x`` into two halves of 26 bits
_SPLITTER = 134217729.0

_math_erf = np.frompyfunc(math.erf, 1, 1)


def _result_dtype(x) -> np.dtype:
    """The dtype of ``erf(x)``: ``x``'s float dtype, float64 for integers and booleans (as ``np.exp``)."""
    return x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)


def erf_reference(x: np.ndarray) -> np.ndarray:
    """``erf(x)`` in float64 by Python's ``math.erf`` (the C library's), cast to ``x``'s float dtype: the
    numpy path, and the reference the compiled kernel is tested against (the same bits).

    >>> erf_reference(np.array([0.0, 0.5, -np.inf], dtype=np.float32)).tolist()
    [0.0, 0.5204998850822449, -1.0]
    """
    x = np.asarray(x)
    values = np.asarray(_math_erf(x.astype(np.float64, copy=False)), dtype=np.float64)
    return values.astype(_result_dtype(x), copy=False)


def erf_values(xp, x):
    """``erf(x)`` as a new array: the compiled kernel on float32/float64 numpy arrays while the kernels
    are enabled, :func:`erf_reference` on other numpy arrays, ``cupyx.scipy.special.erf`` on cupy.

    >>> erf_values(np, np.array([[1.0, -2.0]])).round(6).tolist()
    [[0.842701, -0.995322]]
    """
    if xp is not np:
        from cupyx.scipy import special as cupy_special

        return cupy_special.erf(x)
    if x.dtype in kernels.DTYPES and kernels.enabled():
        flat = np.ascontiguousarray(x).reshape(-1)
        out = np.empty(flat.size, dtype=x.dtype)
        return kernels.compiled("elementwise").erf(flat, out).reshape(x.shape)
    return erf_reference(x)


def erf_partial(xp, x, y):
    """``d erf(x)/dx = 2/sqrt(pi) exp(-x**2)``, a new array of ``y``'s dtype. In float64 ``x**2`` is
    ``hi + lo`` exactly and ``exp(-hi - lo) = exp(-hi) (1 - lo)`` (``|lo| < 1e-13``); narrower dtypes
    are computed in float64 (where their square is exact) and rounded once.

    >>> erf_partial(np, np.array([0.0, 1.0, np.inf]), None).round(12).tolist()
    [1.128379167096, 0.415107497421, 0.0]
    """
    dtype = y.dtype if y is not None else _result_dtype(x)
    a = xp.abs(x.astype(np.float64, copy=False))
    if dtype != np.float64:
        with np.errstate(over="ignore"):
            return (TWO_OVER_SQRT_PI * xp.exp(-(a * a))).astype(dtype)
    a = xp.minimum(a, _PARTIAL_CLAMP)  # (NaN stays NaN)
    hi = a * a
    split = a * _SPLITTER
    a_hi = split - (split - a)
    a_lo = a - a_hi
    lo = ((a_hi * a_hi - hi) + 2.0 * a_hi * a_lo) + a_lo * a_lo
    return (TWO_OVER_SQRT_PI * xp.exp(-hi)) * (1.0 - lo)


#: the op: one edge per element, of weight ``erf_partial`` (a new array: ``fresh``)
ERF = Unary("erf", erf_values, erf_partial, fresh=True)


def erf(x):
    """The error function ``2/sqrt(pi) ∫_0^x exp(-t**2) dt``, elementwise (as ``scipy.special.erf`` and
    ``torch.erf``; numpy has none). Integer input gives float64.

    >>> import semirad as sr
    >>> x = sr.tensor([0.0, 1.0], requires_grad=True)
    >>> [round(v, 6) for v in sr.erf(x).tolist()]
    [0.0, 0.842701]
    >>> [round(v, 6) for v in sr.grad(sr.erf(x).sum(), [x])[0].tolist()]
    [1.128379, 0.415107]
    """
    Tensor = tensor_type()
    return apply(ERF, x if isinstance(x, Tensor) else Tensor(x))
