"""Count: the number of paths (⊕ = +, ⊗ = × of counts), every edge of non-zero partial counting 1."""

from __future__ import annotations

import numpy as np

from .. import backend
from .sum_product import SumProduct


def _edges(xp, weights):
    return (xp.asarray(weights) != 0).astype(np.float64)


class Count(SumProduct):
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

    def to_array(self, g, dtype):
        """The counts as float64 (``dtype`` is ignored: counts outgrow float32's integers)."""
        return g

    def edge_weights(self, weights):
        return _edges(backend.namespace(weights) if hasattr(weights, "shape") else np, weights)

    def times(self, a, b):
        """``a ⊗ b`` of two values: not used by the sweep, which only scales by weights."""
        return a * b

    def one(self, xp, shape):
        """The ⊗-identity."""
        return xp.ones(shape, dtype=np.float64)
