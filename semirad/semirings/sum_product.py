"""SumProduct: ordinary backprop (⊕ = +, ⊗ = ×)."""

from __future__ import annotations

import math

import numpy as np

from .. import backend, fast
from .base import Semiring

#: smaller temporaries are not worth the checks of an in-place product
_IN_PLACE_MIN = 4096


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
        return g.shape  # a tuple for numpy and cupy arrays alike

    def to_array(self, g, dtype):
        return g.astype(dtype, copy=False)

    def add(self, a, b):
        return a + b

    def one(self, xp, shape):
        return xp.ones(shape)

    def times(self, a, b):
        return a * b

    def edge_weights(self, weights):
        """The real weight each edge carries in this semiring (SumProduct: the partial itself).

        Semirings that are SumProduct over transformed weights (SumAbs: ``|w|``, Count: ``w != 0``)
        override only this.
        """
        return weights

    def scale(self, g, weights):
        return g * self.edge_weights(weights)

    def scale_temporary(self, g, weights):
        w = self.edge_weights(weights)
        if (
            w is weights and type(w) is np.ndarray and type(g) is np.ndarray and w.size >= _IN_PLACE_MIN
            and w.shape == g.shape and w.dtype == g.dtype and w.flags.writeable
        ):
            # the weights are the caller's temporary: the product goes into them, no new array
            # (a fresh array of a few MB can cost more in page faults than the multiply itself)
            return np.multiply(g, w, out=w)
        return g * w

    def sum(self, g, axes, keepdims=False):
        k = len(axes)
        if (
            not keepdims and 0 < k < g.ndim and axes == tuple(range(k)) and g.dtype.kind == "f"
            and g.size >= 4096 and g.flags.c_contiguous
        ):
            # leading axes (a bias under a batch): a matrix-vector product with ones runs at BLAS speed,
            # where numpy's reduction along a non-contiguous axis walks row by row (7x slower)
            rows = math.prod(g.shape[:k])
            xp = backend.namespace(g)
            return (xp.ones(rows, dtype=g.dtype) @ g.reshape(rows, -1)).reshape(g.shape[k:])
        return g.sum(axis=axes, keepdims=keepdims)

    def matmul(self, g, weights):
        weights = self.edge_weights(weights)
        if g.shape[-1] == 1:  # one product per output element (an outer product): BLAS is slow at k = 1
            return g * weights
        # numpy's matmul leaves BLAS for a loop 50x slower when an operand has a 0 stride (a broadcast
        # gradient, e.g. of a sum): a copy of that operand costs far less than the product
        if 0 in g.strides:
            g = g.copy()
        if 0 in weights.strides:
            weights = weights.copy()
        return fast.matmul(g, weights)

    def scatter(self, g, index, shape, unique):
        if unique:
            return self.scatter_unique(g, index, shape)
        xp = backend.namespace(g)
        size = int(np.prod(shape, dtype=np.int64))
        positions = backend.flat_positions(xp, shape, index)
        return backend.scatter_add(xp, positions, xp.broadcast_to(g, positions.shape), size).reshape(shape)

    def map(self, g, fn):
        return fn(g)
