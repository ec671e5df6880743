"""``cumsum``: a scan. Its scalar graph has an edge of weight 1 from ``x[i]`` to every ``out[j]`` with
``j >= i`` along the axis (``out[j] = sum_{i <= j} x[i]``), so its backward is the suffix ⊕ of ``g``:

    value(x[i]) = ⊕_{j >= i} g[j]

computed by doubling (Hillis-Steele): ``s_0 = g``, ``s_{k+1}[i] = s_k[i] ⊕ s_k[i + 2**k]`` (the
shifted copy a ⊕-scatter into the semiring's zeros, which is "no path" past the end). The windows
``[i, i + 2**k)`` and ``[i + 2**k, i + 2**(k+1))`` are disjoint, so every ``g[j]`` with ``j >= i`` enters
once: exact in every semiring (⊕ is associative and commutative), ``ceil(log2 n)`` scatters and ⊕s
of the whole value, ``O(N log n)`` work for ``N`` elements. A contraction with a triangular 0/1 matrix
would say the same for SumProduct at ``O(N n)``, but its zeros are not edges: MaxAbsProduct, whose
contraction keeps the first ``j`` of a tie, would point an element whose later ``g`` are all 0 at a
``j < i`` that it does not reach.
"""

from __future__ import annotations

import numpy as np

from . import index as I
from .core import Op, OpError, apply, normalize_axes, tensor_type


class CumSum(Op):
    """``out = cumsum(x, axis)``; backward: the suffix ⊕ of ``g`` along ``axis`` (module docstring)."""

    name = "cumsum"

    def forward(self, ctx, x, axis):
        return ctx.xp.cumsum(x, axis=axis)

    def backward(self, ctx, g, S, needs):
        shape, axis = ctx.shapes[0], ctx.params["axis"]
        n = shape[axis]
        after = (slice(None),) * (len(shape) - 1 - axis)  # from the end: S.map may see lead axes first
        step = 1
        while step < n:
            later = S.map(g, lambda a, s=step: a[(Ellipsis, slice(s, None)) + after])
            g = S.add(g, S.scatter(later, (Ellipsis, slice(0, n - step)) + after, shape, unique=True))
            step *= 2
        return (g,)


CUMSUM = CumSum()


def cumsum(a, axis: int | None = None):
    """Cumulative sum along ``axis`` (numpy's ``cumsum``; ``axis=None`` sums the flattened array).

    Each input element feeds every later output along the axis with weight 1.

    >>> import semirad as sr
    >>> x = sr.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    >>> sr.cumsum(x, axis=1).tolist()
    [[1.0, 3.0, 6.0]]
    >>> sr.grad(sr.cumsum(x, axis=1).sum(), [x])[0].tolist()
    [[3.0, 2.0, 1.0]]
    >>> sr.cumsum(x).shape
    (3,)
    """
    Tensor = tensor_type()
    x = a if isinstance(a, Tensor) else Tensor(a)
    if axis is None or x.ndim == 0:  # numpy: a 0-d array is taken as 1-D
        x = apply(I.RESHAPE, x, shape=(-1,))
    return apply(CUMSUM, x, axis=_one_axis(axis or 0, x, "cumsum"))


def _one_axis(axis, x, op_name: str) -> int:
    """``axis`` (one int) as a non-negative axis of ``x``, checked; the error names the op."""
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise OpError(f"{op_name}: axis must be an int, got {axis!r}")
    return normalize_axes(int(axis), x.ndim, op_name, x.shape)[0]


def cumsum_dim(x, dim: int):
    """``Tensor.cumsum(dim)``, as PyTorch's: along ``dim``; a 0-d tensor (``dim`` 0 or -1) stays 0-d.

    >>> import semirad as sr
    >>> cumsum_dim(sr.tensor([[1.0, 2.0], [3.0, 4.0]]), 0).tolist()
    [[1.0, 2.0], [4.0, 6.0]]
    """
    Tensor = tensor_type()
    x = x if isinstance(x, Tensor) else Tensor(x)
    if x.ndim == 0:
        flat = apply(I.RESHAPE, x, shape=(1,))
        return apply(I.RESHAPE, apply(CUMSUM, flat, axis=_one_axis(dim, flat, "Tensor.cumsum")), shape=())
    return apply(CUMSUM, x, axis=_one_axis(dim, x, "Tensor.cumsum"))
