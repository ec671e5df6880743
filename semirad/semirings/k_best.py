"""KBest(k): the ``k`` best paths of every element, by ``|product|``, with their backpointers.

Values are ``k``-slot lists of ``(|product|, sign, code)`` (see :mod:`semirad.semirings._ranked`): ⊕ merges
two lists and keeps the ``k`` best, ⊗ by an edge weight shifts every slot. Each slot's backpointer
names the next vertex *and* the rank of the path it continues with there, so every one of the ``k``
paths can be followed back. Paths are distinct paths of the scalar graph: parallel edges
(``x * x``) make distinct paths through the same vertices. Order: ``|product|`` descending, ties to
the smaller successor id (then its better rank), as MaxAbsProduct; ``KBest(1)`` is the trace.
An edge whose partial is exactly 0 is not an edge.
"""

from __future__ import annotations

from ._ranked import Ranked


class KBest(Ranked):
    """The ``k`` best paths of every element: ``r[t]`` has shape ``(k,) + t.shape``.

    >>> import semirad as sr
    >>> x = sr.tensor([3.0], requires_grad=True)
    >>> r = sr.backward((x * x + x).sum(), [x], semiring=KBest(4))
    >>> r[x][:, 0].tolist()   # x*x gives two edges of weight 3, x itself one of weight 1
    [3.0, 3.0, 1.0, 0.0]
    """

    name = "k-best"

    def __init__(self, k: int):
        super().__init__(k)

    def to_array(self, g, dtype):
        """The signed products, shape ``(k,) + shape`` in ``dtype``; 0 in empty slots."""
        key, sign, _ = g
        return (sign * key).astype(dtype, copy=False)

