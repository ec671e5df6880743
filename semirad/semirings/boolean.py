"""Boolean: reachability (⊕ = or, ⊗ = and, an edge of partial exactly 0 is no edge)."""

from __future__ import annotations

import numpy as np

from .. import backend
from .base import Semiring


def _nonzero(xp, weights):
    return xp.asarray(weights) != 0


class Boolean(Semiring):
    """Whether an element reaches the output through non-zero partials (dead ReLUs, masks...).

    >>> import semirad as sr
    >>> x = sr.tensor([-1.0, 2.0], requires_grad=True)
    >>> sr.backward(x.relu().sum(), [x], semiring=Boolean())[x].tolist()
    [False, True]
    """

    name = "boolean"

    def zeros(self, xp, shape, dtype):
        return xp.zeros(shape, dtype=bool)

    def seed(self, array):
        return _nonzero(backend.namespace(array), array)

    def shape(self, g):
        return tuple(g.shape)

    def to_array(self, g, dtype):
        """A bool array (``dtype`` is ignored)."""
        return g

    def add(self, a, b):
        return a | b

    def scale(self, g, weights):
        return g & _nonzero(backend.namespace(g), weights)

    def sum(self, g, axes, keepdims=False):
        return g.any(axis=axes, keepdims=keepdims)

    def matmul(self, g, weights):
        xp = backend.namespace(g, weights)
        # a sum of non-negative terms is > 0 exactly when one term is: float32 rounding cannot hide it
        return (g.astype(np.float32) @ _nonzero(xp, weights).astype(np.float32)) > 0

    def scatter(self, g, index, shape, unique):
        if unique:
            return self.scatter_unique(g, index, shape)
        xp = backend.namespace(g)
        out = xp.zeros(shape, dtype=bool)
        positions = backend.flat_positions(xp, shape, index)
        hits = positions[xp.broadcast_to(g, positions.shape)]
        out.reshape(-1)[hits] = True
        return out

    def map(self, g, fn):
        return fn(g)

    def times(self, a, b):
        """``a ⊗ b`` of two values (and): not used by the sweep, which only scales by weights."""
        return a & b

    def one(self, xp, shape):
        """The ⊗-identity."""
        return xp.ones(shape, dtype=bool)
