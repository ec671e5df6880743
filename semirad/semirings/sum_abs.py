"""SumAbs: Σ over paths of |product| (⊕ = +, ⊗ = × by |w|): total gradient flow, no cancellation."""

from __future__ import annotations

import numpy as np

from .. import backend
from .base import Semiring


class SumAbs(Semiring):
    """For every element, the sum over its paths of ``|product of partials|``.

    It bounds the gradient (``|grad| <= sum_abs``) and equals it where no two paths cancel.

    >>> import semirad as sr
    >>> x = sr.tensor([2.0], requires_grad=True)
    >>> sr.backward((x * 3.0 - x).sum(), [x], semiring=SumAbs())[x].tolist()   # gradient is 2
    [4.0]
    """

    name = "sum-abs"

    def zeros(self, xp, shape, dtype):
        return xp.zeros(shape, dtype=dtype)

    def seed(self, array):
        return backend.namespace(array).abs(array)

    def shape(self, g):
        return tuple(g.shape)

    def to_array(self, g, dtype):
        return g.astype(dtype, copy=False)

    def add(self, a, b):
        return a + b

    def scale(self, g, weights):
        return g * backend.namespace(g).abs(weights)

    def sum(self, g, axes, keepdims=False):
        return g.sum(axis=axes, keepdims=keepdims)

    def matmul(self, g, weights):
        return g @ backend.namespace(g, weights).abs(weights)

    def scatter(self, g, index, shape, unique):
        xp = backend.namespace(g)
        if unique:
            out = xp.zeros(shape, dtype=g.dtype)
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
        return xp.ones(shape)
