"""MaxAbsProduct (gradient tracing): the semiring (:mod:`.semiring`), its algorithms in array code
(:mod:`.reference`) and the choice of compiled kernel for each primitive (:mod:`.dispatch`)."""

from .semiring import MaxAbsProduct

__all__ = ["MaxAbsProduct"]
