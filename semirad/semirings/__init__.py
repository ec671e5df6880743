"""Semirings for the reverse sweep: one module each, all implementing :class:`Semiring`."""

from .base import Result, Semiring
from .max_abs import MaxAbsProduct
from .sum_product import SumProduct

__all__ = ["Semiring", "Result", "SumProduct", "MaxAbsProduct"]
