"""Results of the ranking semirings (LogMaxAbs, KBest): their paths, via :class:`~semirad.paths.Trace`.

Imported lazily (from ``Semiring.result``) because :mod:`semirad.paths` imports the semirings' base.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..paths import Trace, _flat_index


class RankedTrace(Trace):
    """A :class:`~semirad.paths.Trace` whose backpointers are the ranking semirings' codes.

    A code ``gid * k + rank`` names the next vertex and the rank of the path it continues with
    there. Parallel edges (``x * x``) give one code per edge; the ``j``-th occurrence of a code in
    an element's list takes the ``j``-th strongest of those edges (the order the sweep ranked them in).
    """

    def _hop(self, node, flat, rank):
        k = self.semiring.k
        codes = backend.to_numpy(self.sweep.kept[node].reshape(k, -1)[:, flat])
        code = int(codes[rank])
        if code in (backend.NO_PATH, backend.END):
            return code, 0, None
        parallel = int(np.count_nonzero(codes[:rank] == code))
        return code // k, code % k, parallel


class LogMaxAbsTrace(RankedTrace):
    """Result of :class:`~semirad.semirings.LogMaxAbs`: ``r[t]`` is ``log |best product|`` (float64,
    ``-inf`` where no path), ``r.sign(t)`` its sign, ``r.path(t, index)`` the best path.

    >>> import semirad as sr
    >>> x = sr.tensor([2.0, -1.0], requires_grad=True, name="x")
    >>> r = sr.backward((x * x).sum(), [x], semiring=sr.semirings.LogMaxAbs())
    >>> np.exp(r[x]).tolist(), r.sign(x).tolist()
    ([2.0, 1.0], [1, -1])
    >>> r.path(x, 1).weights
    [-1.0, 1.0]
    """

    def sign(self, tensor):
        """The sign (-1, 0 or +1, int8) of each element's best product; 0 where there is no path."""
        return self.raw(tensor)[1][0].copy()


class KBestResult(RankedTrace):
    """Result of :class:`~semirad.semirings.KBest`: ``r[t]`` has shape ``(k,) + t.shape``, the signed
    products of the ``k`` best paths (0 where there are fewer); ``r.paths(t, index)`` the paths.

    >>> import semirad as sr
    >>> x = sr.tensor([1.0, -2.0], requires_grad=True, name="x")
    >>> w = sr.tensor([[3.0, 1.0], [0.5, 4.0]])
    >>> r = sr.backward((x @ w).sum(), [x], semiring=sr.semirings.KBest(3))
    >>> r[x].tolist()
    [[3.0, 4.0], [1.0, 0.5], [0.0, 0.0]]
    >>> [p.value for p in r.paths(x, 1)]
    [4.0, 0.5]
    """

    def path(self, tensor, index, rank: int = 0):
        """The ``rank``-th best path (0: the best) from ``tensor[index]`` to the output."""
        node = self.node_of(tensor)
        if not 0 <= rank < self.semiring.k:
            raise IndexError(f"rank {rank} is out of range for KBest({self.semiring.k})")
        return self._follow(node, _flat_index(node.shape, index), rank)

    def paths(self, tensor, index) -> list:
        """The best paths from ``tensor[index]``, best first: ``k`` of them, fewer if fewer exist."""
        node = self.node_of(tensor)
        flat = _flat_index(node.shape, index)
        codes = backend.to_numpy(self.sweep.kept[node].reshape(self.semiring.k, -1)[:, flat])
        return [self._follow(node, flat, r) for r in range(self.semiring.k) if int(codes[r]) != backend.NO_PATH]
