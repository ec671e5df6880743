"""Count: the number of paths (⊕ = +, ⊗ = × of counts), every edge of non-zero partial counting 1."""

from __future__ import annotations

import numpy as np

from .. import backend
from .base import Semiring


def _edges(xp, weights):
    return (xp.asarray(weights) != 0).astype(np.float64)


class Count(Semiring):
    """How many paths through non-zero partials join an element to the output (float64).

    Parallel edges count separately: in ``x * x`` each element of ``x`` has two paths.

    >>> import semirad as sr
    >>> x = sr.tensor([1.0, 0.0], requires_grad=True)
    >>> sr.backward((x * x + x).sum(), [x], semiring=Count())[x].tolist()
    [3.0, 1.0]
    """

    name = "count"

    def zeros(self, xp, shape, dtype):
        return xp.zeros(shape, dtype=np.float64)

    def seed(self, array):
        return _edges(backend.namespace(array), array)

    def shape(self, g):
        return tuple(g.shape)

    def to_array(self, g, dtype):
        """The counts as float64 (``dtype`` is ignored: counts outgrow float32's integers)."""
        return g

    def add(self, a, b):
        return a + b

    def scale(self, g, weights):
        return g * _edges(backend.namespace(g), weights)

    def sum(self, g, axes, keepdims=False):
        return g.sum(axis=axes, keepdims=keepdims)

    def matmul(self, g, weights):
        return g @ _edges(backend.namespace(g, weights), weights)

    def scatter(self, g, index, shape, unique):
        xp = backend.namespace(g)
        if unique:
            out = xp.zeros(shape, dtype=np.float64)
            out[index] = g
            return out
        size = int(np.prod(shape, dtype=np.int64))
        positions = backend.flat_positions(xp, shape, index)
        return backend.scatter_add(xp, positions, xp.broadcast_to(g, positions.shape), size).reshape(shape)

    def map(self, g, fn):
        return fn(g)

    def times(self, a, b):
        """``a ⊗ b`` of two values: not used by the sweep, which only scales by weights."""
        return a * b

    def one(self, xp, shape):
        """The ⊗-identity."""
        return xp.ones(shape, dtype=np.float64)
