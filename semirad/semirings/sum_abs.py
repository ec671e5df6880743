"""SumAbs: Σ over paths of |product| (⊕ = +, ⊗ = × by |w|): total gradient flow, no cancellation."""

from __future__ import annotations

from .. import backend
from .sum_product import SumProduct


class SumAbs(SumProduct):
    """For every element, the sum over its paths of ``|product of partials|``.

    It bounds the gradient (``|grad| <= sum_abs``) and equals it where no two paths cancel.

    >>> import semirad as sr
    >>> x = sr.tensor([2.0], requires_grad=True)
    >>> sr.backward((x * 3.0 - x).sum(), [x], semiring=SumAbs())[x].tolist()   # gradient is 2
    [4.0]
    """

    name = "sum-abs"

    def seed(self, array):
        return backend.namespace(array).abs(array)

    def edge_weights(self, weights):
        return abs(weights)

    def times(self, a, b):
        """``a ⊗ b`` of two values: not used by the sweep, which only scales by weights."""
        return a * b

    def one(self, xp, shape):
        """The ⊗-identity."""
        return xp.ones(shape)
