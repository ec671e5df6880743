"""SumProduct: ordinary backprop (⊕ = +, ⊗ = ×)."""

from __future__ import annotations

import numpy as np

from .. import backend
from .base import Semiring


class SumProduct(Semiring):
    """Sum over paths of the product of edge weights: the gradient.

    >>> import semirad as sr
    >>> x = sr.tensor([3.0], requires_grad=True)
    >>> sr.backward((x * x).sum(), [x], semiring=SumProduct())[x].tolist()
    [6.0]
    """

    name = "sum-product"

    def zeros(self, xp, shape, dtype):
        return xp.zeros(shape, dtype=dtype)

    def seed(self, array):
        return array

    def shape(self, g):
        return tuple(g.shape)

    def to_array(self, g, dtype):
        return g.astype(dtype, copy=False)

    def add(self, a, b):
        return a + b

    def scale(self, g, weights):
        return g * weights

    def sum(self, g, axes, keepdims=False):
        return g.sum(axis=axes, keepdims=keepdims)

    def matmul(self, g, weights):
        return g @ weights

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
