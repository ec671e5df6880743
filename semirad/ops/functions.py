"""The user-facing functions (``sr.exp``, ``sr.matmul``, ``sr.softmax``...).

Each one converts its arguments, checks what numpy would not report clearly, and applies one op
(or, for the composites at the end, several).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..axes import canonical_axes
from ..readonly import protected
from . import contraction as C
from . import elementwise as E
from . import index as I
from .core import OpError, apply, normalize_axes, tensor_type
from .einsum import einsum
from .scan import cumsum
from .selection import argmax, argmin, argsort, sort, take_along_axis
from .special import erf


def _t(x):
    Tensor = tensor_type()
    return x if isinstance(x, Tensor) else Tensor(x)


def _data(x):
    """A tensor's array; anything else as it is (an ndarray's own ``.data`` is a memoryview of it)."""
    return x._data if isinstance(x, tensor_type()) else x


def _unary(op):
    def fn(x):
        return apply(op, _t(x))

    fn.__name__ = op.name
    fn.__doc__ = f"""Elementwise ``{op.name}`` of a tensor.

    >>> import semirad as sr
    >>> sr.{op.name}(sr.tensor([0.5])).shape
    (1,)
    """
    return fn


def _binary(op):
    def fn(a, b):
        return apply(op, a, b)

    fn.__name__ = op.name
    fn.__doc__ = f"""Elementwise ``{op.name}`` with numpy broadcasting.

    >>> import semirad as sr
    >>> sr.{op.name}(sr.tensor([1.0, 2.0]), sr.tensor([3.0])).shape
    (2,)
    """
    return fn


neg = _unary(E.NEG)
exp = _unary(E.EXP)
log = _unary(E.LOG)
tanh = _unary(E.TANH)
sigmoid = _unary(E.SIGMOID)
relu = _unary(E.RELU)
abs = _unary(E.ABS)  # noqa: A001 - mirrors numpy's name
sqrt = _unary(E.SQRT)
sin = _unary(E.SIN)
cos = _unary(E.COS)
add = _binary(E.ADD)
sub = _binary(E.SUB)
mul = _binary(E.MUL)
div = _binary(E.DIV)
maximum = _binary(E.MAXIMUM)
minimum = _binary(E.MINIMUM)


def power(a, b):
    """``a ** b``; a Python-number exponent is a constant of the op, not a graph input.

    >>> import semirad as sr
    >>> sr.power(sr.tensor([2.0]), 3).tolist()
    [8.0]
    """
    if isinstance(b, (int, float, np.integer, np.floating)) and not isinstance(b, bool):
        return apply(E.POW_SCALAR, _t(a), p=b)
    return apply(E.POW, a, b)


def matmul(a, b):
    """Matrix product with numpy's ``@`` rules (1-D promotion, broadcast batch dims).

    >>> import semirad as sr
    >>> sr.matmul(sr.tensor(np.ones((2, 3))), sr.tensor(np.ones((3, 4)))).shape
    (2, 4)
    """
    return apply(C.MATMUL, _t(a), _t(b))


def where(condition, x, y):
    """``x`` where ``condition`` else ``y`` (``condition`` is a constant: no gradient flows to it).

    >>> import semirad as sr
    >>> sr.where(np.array([True, False]), sr.tensor([1.0, 2.0]), 0.0).tolist()
    [1.0, 0.0]
    """
    cond = _data(condition)
    xp_cond = cond if hasattr(cond, "dtype") else np.asarray(cond)
    if xp_cond.dtype != bool:
        raise OpError(f"where: condition must be boolean, got dtype {xp_cond.dtype}")
    return apply(E.WHERE, x, y, cond=protected(xp_cond))


def clip(x, min=None, max=None):  # noqa: A002 - numpy/PyTorch names
    """Clamp to ``[min, max]``; the edge weight is 1 inside (bounds included) and 0 outside.

    >>> import semirad as sr
    >>> sr.clip(sr.tensor([-2.0, 0.5, 3.0]), -1, 1).tolist()
    [-1.0, 0.5, 1.0]
    """
    x = _t(x)
    lo = -np.inf if min is None else protected(_data(min))
    hi = np.inf if max is None else protected(_data(max))
    try:
        shape = np.broadcast_shapes(x.shape, np.shape(lo), np.shape(hi))
    except ValueError:
        raise OpError(
            f"clip: bounds of shapes {np.shape(lo)} and {np.shape(hi)} do not broadcast with the input's "
            f"shape {x.shape}"
        ) from None
    if shape != x.shape:  # bounds that broadcast x: make the broadcast an op of its own
        x = broadcast_to(x, shape)
    return apply(E.CLIP, x, lo=lo, hi=hi)


def _reduction(op, doc):
    def fn(x, axis=None, keepdims=False):
        x = _t(x)
        axes = normalize_axes(axis, x.ndim, op.name, x.shape)
        return apply(op, x, axes=axes, keepdims=bool(keepdims))

    fn.__name__ = op.name
    fn.__doc__ = doc
    return fn


sum = _reduction(I.SUM, """Sum over ``axis`` (None, int or tuple).

    >>> import semirad as sr
    >>> sr.sum(sr.tensor([[1.0, 2.0]]), axis=1).tolist()
    [3.0]
    """)  # noqa: A001
mean = _reduction(I.MEAN, """Mean over ``axis``.

    >>> import semirad as sr
    >>> sr.mean(sr.tensor([1.0, 2.0])).item()
    1.5
    """)
max = _reduction(I.MAX, """Maximum over ``axis``; ties share the gradient evenly.

    >>> import semirad as sr
    >>> sr.max(sr.tensor([1.0, 3.0])).item()
    3.0
    """)  # noqa: A001
min = _reduction(I.MIN, """Minimum over ``axis``; ties share the gradient evenly.

    >>> import semirad as sr
    >>> sr.min(sr.tensor([1.0, 3.0])).item()
    1.0
    """)  # noqa: A001
logsumexp = _reduction(I.LOGSUMEXP, """``log(sum(exp(x)))`` over ``axis``, computed stably.

    >>> import semirad as sr
    >>> round(sr.logsumexp(sr.tensor([0.0, 0.0])).item(), 4)
    0.6931
    """)


def reshape(x, *shape):
    """Same elements in C order, new shape (one ``-1`` allowed).

    >>> import semirad as sr
    >>> sr.reshape(sr.tensor(np.arange(6.0)), 2, 3).shape
    (2, 3)
    """
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return apply(I.RESHAPE, _t(x), shape=tuple(int(n) for n in shape))


def transpose(x, *axes):
    """Permute axes (reverse them when none are given).

    >>> import semirad as sr
    >>> sr.transpose(sr.tensor(np.zeros((2, 3, 4))), 1, 0, 2).shape
    (3, 2, 4)
    """
    x = _t(x)
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    if not axes:
        axes = tuple(reversed(range(x.ndim)))
    try:
        complete = len(axes) == x.ndim and len(canonical_axes(axes, x.ndim)) == x.ndim
    except ValueError:
        complete = False
    if not complete:
        raise OpError(f"transpose: axes {axes} are not a permutation of the axes of shape {x.shape}")
    return apply(I.TRANSPOSE, x, axes=tuple(int(a) % x.ndim for a in axes))


def swapaxes(x, axis1: int, axis2: int):
    """Exchange two axes.

    >>> import semirad as sr
    >>> sr.swapaxes(sr.tensor(np.zeros((2, 3))), 0, 1).shape
    (3, 2)
    """
    x = _t(x)
    a1, a2 = (normalize_axes(a, x.ndim, "swapaxes", x.shape)[0] for a in (axis1, axis2))
    axes = list(range(x.ndim))
    axes[a1], axes[a2] = axes[a2], axes[a1]
    return apply(I.TRANSPOSE, x, axes=tuple(axes))


def expand_dims(x, axis: int):
    """Insert a length-1 axis at ``axis``.

    >>> import semirad as sr
    >>> sr.expand_dims(sr.tensor([1.0, 2.0]), 0).shape
    (1, 2)
    """
    return apply(I.EXPAND_DIMS, _t(x), axis=axis)


def squeeze(x, axis=None):
    """Remove length-1 axes (all of them, or those in ``axis``).

    >>> import semirad as sr
    >>> sr.squeeze(sr.tensor(np.zeros((1, 2, 1)))).shape
    (2,)
    """
    return apply(I.SQUEEZE, _t(x), axis=axis)


def broadcast_to(x, shape):
    """Broadcast to ``shape`` (each input element feeds every copy: separate edges).

    >>> import semirad as sr
    >>> sr.broadcast_to(sr.tensor([1.0, 2.0]), (3, 2)).shape
    (3, 2)
    """
    return apply(I.BROADCAST_TO, _t(x), shape=tuple(shape))


def getitem(x, index):
    """``x[index]``: basic slicing and integer-array indexing (repeated indices are separate edges).

    >>> import semirad as sr
    >>> sr.getitem(sr.tensor([1.0, 2.0, 3.0]), [0, 0, 2]).tolist()
    [1.0, 1.0, 3.0]
    """
    return apply(I.GETITEM, _t(x), index=_index(index))


def _index(index):
    if isinstance(index, tuple):
        return tuple(_index_part(i) for i in index)
    return _index_part(index)


def _index_part(part):
    part = _data(part)
    if isinstance(part, list):
        part = np.asarray(part)
        if part.size == 0 and part.dtype.kind == "f":  # x[[]]: an empty selection, as numpy
            part = part.astype(np.intp)
        return part
    return protected(part)  # the backward scatters by it: a caller's index array must not change


def concat(tensors: Sequence, axis: int = 0):
    """Join tensors along an existing axis.

    >>> import semirad as sr
    >>> sr.concat([sr.tensor([1.0]), sr.tensor([2.0, 3.0])]).tolist()
    [1.0, 2.0, 3.0]
    """
    tensors = [_t(x) for x in tensors]
    if not tensors:
        raise OpError("concat: needs at least one tensor")
    return apply(I.CONCAT, *tensors, axis=axis)


def stack(tensors: Sequence, axis: int = 0):
    """Join same-shaped tensors along a new axis.

    >>> import semirad as sr
    >>> sr.stack([sr.tensor([1.0]), sr.tensor([2.0])], axis=1).shape
    (1, 2)
    """
    tensors = [_t(x) for x in tensors]
    if not tensors:
        raise OpError("stack: needs at least one tensor")
    return apply(I.STACK, *tensors, axis=axis)


# -- composites: built from the ops above, so their intermediates are vertices of the graph -----


def log_softmax(x, axis: int = -1):
    """``x - logsumexp(x, axis)``: a composite whose every intermediate is a graph vertex.

    >>> import semirad as sr
    >>> round(float(sr.exp(sr.log_softmax(sr.tensor([1.0, 1.0]))).sum().item()), 6)
    1.0
    """
    x = _t(x)
    return x - logsumexp(x, axis=axis, keepdims=True)


def softmax(x, axis: int = -1):
    """``exp(log_softmax(x, axis))``: exact in every semiring (no fused VJP).

    >>> import semirad as sr
    >>> sr.softmax(sr.tensor([0.0, 0.0])).tolist()
    [0.5, 0.5]
    """
    return exp(log_softmax(x, axis=axis))


__all__ = [
    "neg", "exp", "log", "tanh", "sigmoid", "relu", "abs", "sqrt", "sin", "cos",
    "add", "sub", "mul", "div", "power", "maximum", "minimum", "where", "clip", "matmul",
    "sum", "mean", "max", "min", "logsumexp", "reshape", "transpose", "swapaxes", "expand_dims",
    "squeeze", "broadcast_to", "getitem", "concat", "stack", "log_softmax", "softmax",
    "erf", "cumsum", "sort", "argsort", "argmax", "argmin", "take_along_axis", "einsum",
]  # fmt: skip
