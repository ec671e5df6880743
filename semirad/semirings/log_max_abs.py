"""LogMaxAbs: gradient tracing in the log domain (the best paths of MaxAbsProduct, no underflow).

A value is ``(log, sign, code)`` with one slot (see :mod:`semirad.semirings._ranked`): the best
path's ``log |product|``, its sign, and where it goes next. ⊕ keeps the larger ``log``, ⊗ adds
``log |w|`` and multiplies signs, so a float32 chain of thousands of halvings (whose product
underflows to 0 in MaxAbsProduct after ~150 steps) keeps its exact log-magnitude.

Ties (equal ``log``) go to the smaller id, as in MaxAbsProduct. Products that are equal in exact
arithmetic can differ in their last bit of ``log`` and the reverse, so on exact ties the two
semirings may pick different (equally good) paths. An edge whose partial is exactly 0 is not an
edge; ``r[t]`` is ``-inf`` and ``r.sign(t)`` 0 where no path is left.
"""

from __future__ import annotations

from ._ranked import Ranked


class LogMaxAbs(Ranked):
    """For every element, ``log |product|`` and sign of the path with the largest ``|product|``.

    >>> import numpy as np, semirad as sr
    >>> x = sr.tensor([1.0], requires_grad=True, dtype=np.float32)
    >>> y = x
    >>> for _ in range(2000):
    ...     y = y * 0.5
    >>> r = sr.backward(y.sum(), [x], semiring=LogMaxAbs())
    >>> round(float(r[x][0] / np.log(0.5)), 6), int(r.sign(x)[0])
    (2000.0, 1)
    """

    name = "log-max-abs"
    path_kind = "trace (log)"  # the best paths, as a trace's

    def __init__(self):
        super().__init__(1, log_domain=True)

    def to_array(self, g, dtype):
        """``log |best product|`` (float64 whatever ``dtype``: its point is range, not storage)."""
        return g[0][0].copy()


    def __repr__(self) -> str:
        return "LogMaxAbs()"
