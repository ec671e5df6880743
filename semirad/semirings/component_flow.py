"""ComponentFlow: SumAbs with one extra channel per component group, counting edges along the flow.

A value has shape ``(1 + C,) + shape``. Channel 0 is ``P(v) = Σ_paths |product|`` (SumAbs);
channel ``1 + c`` is ``R_c(v) = Σ_paths |product| · (number of the path's edges in group c)``. Both
are sums over paths of products, so every primitive is SumAbs's applied to each channel; the one
addition is :meth:`ComponentFlow.enter`. ``R_c / P`` is the expected number of edges in ``c`` of a
path drawn with probability proportional to ``|product|``: what
:func:`semirad.analysis.backprop_importance` reports.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from .base import Semiring


class ComponentFlow(Semiring):
    """SumAbs with one extra channel per component group: a value has shape ``(1 + C,) + shape``.

    ``channel_of`` maps graph nodes to their group ``c`` (``0 <= c < channels``); nodes not in it
    count for no group. :func:`semirad.analysis.backprop_importance` runs it;
    ``sr.backward(loss, inputs, semiring=ComponentFlow(...))`` gives the raw channels.

    >>> import semirad as sr
    >>> w = sr.tensor([1.0, -2.0], requires_grad=True)
    >>> y = w * 3.0
    >>> loss = (y * y).sum()   # from w[i]: two paths (the parallel edges of y * y), 3 edges each
    >>> flow = sr.backward(loss, [w], semiring=ComponentFlow({y._node: 0, loss._node: 1}, 2))[w]
    >>> flow.tolist()   # P, then P · (edges into y), then P · (edges into the sum)
    [[18.0, 36.0], [18.0, 36.0], [18.0, 36.0]]
    """

    name = "component-flow"
    lead_axes = 1  # the channels

    def __init__(self, channel_of: dict, channels: int):
        self.channel_of = channel_of
        self.channels = int(channels)

    def zeros(self, xp, shape, dtype):
        return xp.zeros((self.channels + 1,) + tuple(shape))

    def seed(self, array):
        xp = backend.namespace(array)
        out = xp.zeros((self.channels + 1,) + tuple(array.shape))
        out[0] = xp.abs(array)
        return out

    def shape(self, g):
        return tuple(g.shape[1:])

    def to_array(self, g, dtype):
        return g

    def add(self, a, b):
        return a + b

    def scale(self, g, weights):
        xp = backend.namespace(g)
        w = xp.abs(weights) if backend.is_array(weights) else abs(weights)
        extra = getattr(w, "ndim", 0) - (g.ndim - 1)
        if extra > 0:
            g = g.reshape((g.shape[0],) + (1,) * extra + g.shape[1:])
        return g * w

    def sum(self, g, axes, keepdims=False):
        ndim = g.ndim - 1
        axes = tuple(sorted(a % ndim + 1 for a in axes)) if ndim else ()
        if not axes:
            return g
        return g.sum(axis=axes, keepdims=keepdims)

    def matmul(self, g, weights):
        xp = backend.namespace(g, weights)
        w = xp.abs(weights)
        extra = (w.ndim - 2) - (g.ndim - 3)
        if extra > 0:
            g = g.reshape((g.shape[0],) + (1,) * extra + g.shape[1:])
        return g @ w

    def scatter(self, g, index, shape, unique):
        if unique:
            return self.scatter_unique(g, index, shape, lead=self.lead_axes)
        xp = backend.namespace(g)
        size = int(np.prod(shape, dtype=np.int64))
        positions = backend.flat_positions(xp, shape, index)
        rows = [
            backend.scatter_add(xp, positions, xp.broadcast_to(g[c], positions.shape), size) for c in range(g.shape[0])
        ]
        return xp.stack(rows).reshape((g.shape[0],) + tuple(shape))

    def map(self, g, fn):
        xp = backend.namespace(g)
        return xp.stack([fn(g[c]) for c in range(g.shape[0])])

    def enter(self, g, node, base):
        """When node ``w`` of group ``c`` is complete, ``R_c(w) += P(w)``.

        That counts the edges into ``w`` (consumed by ``w``'s op) once for every path through them.
        """
        c = self.channel_of.get(node)
        if c is None or node.op is None:
            return g, None
        out = g.copy()
        out[1 + c] += out[0]
        return out, None

    def __repr__(self) -> str:
        return f"ComponentFlow({self.channels} groups)"
