"""Semirings for the reverse sweep: one module each, all implementing :class:`Semiring`.

See ``docs/semirings.md`` for what each one answers and how to write your own.
"""

from .base import Result, Semiring
from .boolean import Boolean
from .count import Count
from .entropy import Entropy
from .k_best import KBest
from .log_max_abs import LogMaxAbs
from .max_abs import MaxAbsProduct
from .sum_abs import SumAbs
from .sum_product import SumProduct

__all__ = [
    "Semiring", "Result", "SumProduct", "MaxAbsProduct",
    "LogMaxAbs", "KBest", "Boolean", "Count", "SumAbs", "Entropy",
]  # fmt: skip
