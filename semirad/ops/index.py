"""Index maps and reductions: backward moves ``g`` by the same index map, ⊕ where elements meet.

Reductions are index maps too: ``sum`` sends every input element to one output element with
weight 1, ``mean`` with weight 1/n, ``max``/``min`` with weight 1 to the winner (split evenly on
ties, as ``torch.amax``) and 0 to the others, ``logsumexp`` with weight ``softmax``.
"""

from __future__ import annotations

import numpy as np

from .. import fast
from ..engine import Slice
from .core import Op, unbroadcast


class Reshape(Op):
    """Any op that only re-labels elements in C order: reshape, squeeze, expand_dims, flatten."""

    def __init__(self, name, forward):
        self.name, self._forward = name, forward

    def forward(self, ctx, x, **params):
        return self._forward(ctx.xp, x, **params)

    def backward(self, ctx, g, S, needs):
        shape = ctx.shapes[0]
        return (S.map(g, lambda a: a.reshape(shape)),)


class Transpose(Op):
    name = "transpose"

    def forward(self, ctx, x, axes):
        return x.transpose(axes)

    def backward(self, ctx, g, S, needs):
        axes = ctx.params["axes"]
        inverse = tuple(sorted(range(len(axes)), key=axes.__getitem__))
        return (S.map(g, lambda a: a.transpose(inverse)),)


class BroadcastTo(Op):
    name = "broadcast_to"

    def forward(self, ctx, x, shape):
        return ctx.xp.broadcast_to(x, shape)

    def backward(self, ctx, g, S, needs):
        return (unbroadcast(S, g, ctx.shapes[0]),)


def is_unique_index(index) -> bool:
    """True when ``a[index]`` cannot select one element twice (basic indexing, or a bool mask)."""
    parts = index if isinstance(index, tuple) else (index,)
    for part in parts:
        if part is None or part is Ellipsis or isinstance(part, (slice, int, np.integer)):
            continue
        if getattr(part, "dtype", None) is not None and part.dtype.kind == "b":
            continue
        return False
    return True


class GetItem(Op):
    """``x[index]``: basic slicing and integer-array (gather) indexing, repeats allowed."""

    name = "getitem"

    def forward(self, ctx, x, index):
        return x[index]

    def backward(self, ctx, g, S, needs):
        index = ctx.params["index"]
        if is_unique_index(index):
            return (Slice(index, g),)  # ⊕-added into one buffer of x by the sweep
        return (S.scatter(g, index, ctx.shapes[0], unique=False),)


class Concat(Op):
    name = "concat"

    def forward(self, ctx, *xs, axis):
        return ctx.xp.concatenate(xs, axis=axis)

    def backward(self, ctx, g, S, needs):
        axis = ctx.params["axis"] % len(ctx.shapes[0])
        out, start = [], 0
        for need, shape in zip(needs, ctx.shapes, strict=False):
            stop = start + shape[axis]
            where = (slice(None),) * axis + (slice(start, stop),)
            out.append(S.map(g, lambda a, w=where: a[w]) if need else None)
            start = stop
        return tuple(out)


class Stack(Op):
    name = "stack"

    def forward(self, ctx, *xs, axis):
        return ctx.xp.stack(xs, axis=axis)

    def backward(self, ctx, g, S, needs):
        axis = ctx.params["axis"] % (len(ctx.shapes[0]) + 1)
        prefix = (slice(None),) * axis
        return tuple(S.map(g, lambda a, i=i: a[prefix + (i,)]) if need else None for i, need in enumerate(needs))


class Sum(Op):
    name = "sum"

    def forward(self, ctx, x, axes, keepdims):
        return ctx.xp.sum(x, axis=axes, keepdims=keepdims)

    def backward(self, ctx, g, S, needs):
        return (S.map(g, _spread(ctx)),)


class Mean(Op):
    name = "mean"

    def forward(self, ctx, x, axes, keepdims):
        return ctx.xp.mean(x, axis=axes, keepdims=keepdims)

    def backward(self, ctx, g, S, needs):
        shape, axes = ctx.shapes[0], ctx.params["axes"]
        count = int(np.prod([shape[a] for a in axes], dtype=np.int64))
        return (S.map(S.scale(g, 1.0 / max(count, 1)), _spread(ctx)),)


class Extremum(Op):
    """``max``/``min`` over axes; weight 1/(number of tied winners) to each winner, 0 elsewhere."""

    def __init__(self, name, reduce):
        self.name, self._reduce = name, reduce

    def forward(self, ctx, x, axes, keepdims):
        y = self._reduce(ctx.xp, x, axes)
        ctx.saved = (x, y)
        return y if keepdims else y.reshape([n for d, n in enumerate(x.shape) if d not in axes])

    def backward(self, ctx, g, S, needs):
        x, y = ctx.saved
        winners = (x == y).astype(x.dtype)
        weight = winners / winners.sum(axis=ctx.params["axes"], keepdims=True)
        return (S.scale(S.map(g, _spread(ctx)), weight),)


class LogSumExp(Op):
    name = "logsumexp"

    def forward(self, ctx, x, axes, keepdims):
        xp = ctx.xp
        top = xp.max(x, axis=axes, keepdims=True)
        top = xp.where(xp.isfinite(top), top, 0)
        y = xp.log(xp.sum(xp.exp(x - top), axis=axes, keepdims=True)) + top
        ctx.saved = (x, y)
        return y if keepdims else y.reshape([n for d, n in enumerate(x.shape) if d not in axes])

    def backward(self, ctx, g, S, needs):
        x, y = ctx.saved
        return (S.scale(S.map(g, _spread(ctx)), ctx.xp.exp(x - y)),)


def _spread(ctx):
    """The index map of a reduction's backward: output element to every input element it reduced."""
    shape, axes = ctx.shapes[0], ctx.params["axes"]
    kept = tuple(1 if d in axes else n for d, n in enumerate(shape))

    xp = ctx.xp
    return lambda a: fast.broadcast_to(xp, a.reshape(kept), shape)


# fmt: off
RESHAPE     = Reshape("reshape",     lambda xp, x, shape: x.reshape(shape))
EXPAND_DIMS = Reshape("expand_dims", lambda xp, x, axis: xp.expand_dims(x, axis))
SQUEEZE     = Reshape("squeeze",     lambda xp, x, axis: xp.squeeze(x, axis))
TRANSPOSE   = Transpose()
BROADCAST_TO = BroadcastTo()
GETITEM     = GetItem()
CONCAT      = Concat()
STACK       = Stack()
SUM         = Sum()
MEAN        = Mean()
MAX         = Extremum("max", lambda xp, x, axes: xp.max(x, axis=axes, keepdims=True))
MIN         = Extremum("min", lambda xp, x, axes: xp.min(x, axis=axes, keepdims=True))
LOGSUMEXP   = LogSumExp()
# fmt: on
