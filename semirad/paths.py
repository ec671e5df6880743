"""Best paths: following the backpointers a path-capable semiring kept during the sweep."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from . import backend
from .engine import Node, full_contribution
from .semirings.base import PATH_RESULTS, Result, path_protocol_problem
from .semirings.k_best import KBest
from .semirings.log_max_abs import LogMaxAbs
from .semirings.max_abs import MaxAbsProduct


class Step(NamedTuple):
    """One vertex of a path: the op that made its tensor, the tensor's name, shape and the index,
    and the component (``sr.component`` block) the op was recorded in."""

    op: str
    name: str | None
    shape: tuple
    index: tuple
    component: str | None = None

    def __str__(self) -> str:
        label = self.op + (f" {self.name!r}" if self.name else "")
        where = f"  in {self.component}" if self.component else ""
        return f"{label}{list(self.shape)}[{', '.join(str(i) for i in self.index)}]{where}"


class Path:
    """A path through the scalar graph from an input element to the output.

    ``steps`` are its vertices (first the input element, last the output element), ``weights`` the
    partial derivative on each edge (``len(steps) - 1`` of them), ``seed`` the seed of the sweep at
    the output element the path ends in (1 unless a seed was passed) and ``value`` the product of
    all of them: the path's product as the sweep computed it, so ``tr.path(t, i).value == tr[t][i]``.
    ``node_seqs`` (when the path comes from a sweep) are the creation numbers (``Node.seq``) of the
    tensors the steps lie in, e.g. to highlight the path in a drawing of the graph.

    >>> import semirad as sr
    >>> x = sr.tensor([1.0, -2.0], requires_grad=True, name="x")
    >>> tr = sr.trace(x * 3.0, [x], seed=np.array([5.0, 7.0]))
    >>> p = tr.path(x, 1)
    >>> p.weights, p.seed, p.value, float(tr[x][1])
    ([3.0], 7.0, 21.0, 21.0)
    """

    def __init__(self, steps: list, weights: list, node_seqs: list | None = None, seed: float = 1.0):
        self.steps = steps
        self.weights = weights
        self.node_seqs = node_seqs
        self.seed = seed

    def components(self, inclusive: bool = False) -> Counter:
        """The number of the path's edges in each component (``sr.component`` block).

        An edge belongs to the component of the op that *consumes* it, i.e. of the step it leads
        to: the edge ``W[0, 1] -> matmul[...]`` counts for the component the matmul was recorded in.
        Keys are full hierarchical names (``"encoder/lstm/t3/forget"``), ``None`` for ops outside
        any block; the counts sum to ``len(weights)``. With ``inclusive=True`` an edge also counts
        for every enclosing component (``"encoder/lstm/t3"``, ``"encoder/lstm"``, ``"encoder"``),
        so a name's count is the number of edges anywhere inside it (these no longer sum to the
        number of edges).

        >>> import semirad as sr
        >>> w = sr.tensor([1.0, 2.0], requires_grad=True, name="w")
        >>> with sr.component("a"):
        ...     y = w * 3.0
        ...     with sr.component("b"):
        ...         y = y.exp()
        >>> p = sr.trace(y.sum(), [w]).path(w, 0)
        >>> dict(p.components()), dict(p.components(inclusive=True))
        ({'a': 1, 'a/b': 1, None: 1}, {'a': 2, 'a/b': 1, None: 1})
        """
        counts = Counter()
        for step in self.steps[1:]:
            name = step.component
            if not inclusive or name is None:
                counts[name] += 1
                continue
            parts = name.split("/")
            for depth in range(1, len(parts) + 1):
                counts["/".join(parts[:depth])] += 1
        return counts

    @property
    def value(self) -> float:
        """The seed times the product of the edge weights, multiplied in the sweep's order (from the
        output back to the input), so that it equals the sweep's value bit for bit."""
        out = self.seed
        for w in reversed(self.weights):
            out *= w
        return out

    @property
    def log_abs_value(self) -> float:
        """``log |value|`` as a sum of ``log |seed|`` and every ``log |weight|``: finite where ``value``
        itself underflows."""
        with np.errstate(divide="ignore"):
            return float(sum(np.log(np.abs(np.float64(w))) for w in [self.seed, *self.weights]))

    @property
    def sign(self) -> int:
        """The sign of ``value`` (-1, 0 or +1), from the signs of the weights and of the seed."""
        out = int(np.sign(self.seed))
        for w in self.weights:
            out *= int(np.sign(w))
        return out

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self):
        return iter(self.steps)

    def __str__(self) -> str:
        lines = [f"path of value {self.value:.6g} ({len(self.weights)} edges)", f"  {self.steps[0]}"]
        for weight, step in zip(self.weights, self.steps[1:], strict=False):
            lines.append(f"  -> x {weight:<12.6g} {step}")
        if self.seed != 1.0:
            lines.append(f"  seed x {self.seed:.6g}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Path(value={self.value:.6g}, steps={len(self.steps)})"


def path_semiring(result, what: str):
    """The semiring of ``result`` if it follows the path protocol (see
    :func:`~semirad.semirings.base.path_protocol_problem`); else a ``TypeError`` that says, for
    ``what`` (``"component importance"``...), what the semiring lacks.

    >>> import semirad as sr
    >>> x = sr.tensor([1.0], requires_grad=True)
    >>> path_semiring(sr.backward(x * 2.0, [x], sr.semirings.Count()), "paths")   # doctest: +ELLIPSIS
    Traceback (most recent call last):
    TypeError: paths needs the result of a path-capable semiring ...: Count() keeps no paths: ...
    """
    semiring = getattr(result, "semiring", None)
    problem = "it is no result of a sweep" if semiring is None else path_protocol_problem(semiring)
    if problem is None and not hasattr(getattr(result, "sweep", None), "kept"):
        problem = "it holds no sweep"
    if problem is not None:
        raise TypeError(
            f"{what} needs the result of a path-capable semiring (sr.trace, LogMaxAbs, KBest, or one following "
            f"the path protocol of docs/semirings.md), got {type(result).__name__} of {semiring!r}: {problem}"
        )
    return semiring


def _ranks(semiring) -> int:
    """How many paths per element a path-capable semiring keeps (its ``k``; 1 if it has none)."""
    return int(getattr(semiring, "k", 1))


class Trace(Result):
    """Result of a path-capable sweep (MaxAbsProduct, or any semiring following the path protocol):
    ``tr[t]`` values and ``tr.path(t, index)`` best paths.

    >>> import semirad as sr
    >>> x = sr.tensor([2.0, -1.0], requires_grad=True, name="x")
    >>> tr = sr.trace((x * x).sum(), [x])
    >>> print(tr.path(x, 0))
    path of value 2 (2 edges)
      leaf 'x'[2][0]
      -> x 2            mul[2][0]
      -> x 1            sum[][]
    """

    def path(self, tensor, index, rank: int = 0) -> Path:
        """The best path from ``tensor[index]`` to the output (``index``: int or tuple); with ``k``
        paths per element (KBest), the ``rank``-th best (0: the best)."""
        node = self.node_of(tensor)
        k = _ranks(self.semiring)
        if not 0 <= rank < k:
            raise IndexError(f"rank {rank} is out of range for {self.semiring!r}")
        return self._follow(node, _flat_index(node.shape, index), rank)

    def walk(self, start, index, rank: int = 0) -> Iterator[tuple]:
        """The vertices of the ``rank``-th best path from ``start[index]`` to the output, one hop at a time.

        Yields ``(node, flat, rank)`` per vertex, the start first and the output element last:
        the graph node, the C-order flat position of the element in it, and the rank of the path
        continuing from there (always 0 for a plain trace). Nothing is yielded when the element has
        no path of that rank. Only backpointers are read (no edge weights, unlike :meth:`path`), so
        walking is cheap. ``start`` is an input tensor of the sweep or any node of its graph
        (``node_of``), ``index`` an int or a tuple as in :meth:`path`.

        >>> import semirad as sr
        >>> x = sr.tensor([2.0, -1.0], requires_grad=True, name="x")
        >>> tr = sr.trace((x * 3.0).sum(), [x])
        >>> [(node.op_name, flat, rank) for node, flat, rank in tr.walk(x, 1)]
        [('leaf', 1, 0), ('mul', 1, 0), ('sum', 0, 0)]
        """
        node = start if isinstance(start, Node) else self.node_of(start)
        if node not in self.sweep.kept:
            raise KeyError(f"{node.describe()} is not a vertex of this sweep")
        ranks = _ranks(self.semiring)
        if not 0 <= rank < ranks:
            raise IndexError(f"rank {rank} is out of range for {ranks} path{'s' if ranks > 1 else ''} per element")
        flat = _flat_index(node.shape, index)

        def hops():
            here, position, here_rank = node, flat, rank
            successor = None if here is self.sweep.root else self._hop(here, position, here_rank)
            if successor is not None and successor[0] == backend.NO_PATH:
                return
            yield here, position, here_rank
            while successor is not None:
                target, here_rank, _ = successor
                here, position = self.sweep.locate(target)
                yield here, position, here_rank
                successor = None if here is self.sweep.root else self._hop(here, position, here_rank)

        return hops()

    def _hop(self, node, flat: int, rank: int) -> tuple:
        """Where the ``rank``-th path leaving ``node[flat]`` goes next, from the kept backpointers.

        Returns ``(gid, next_rank, parallel)``: the global id of the next vertex (``NO_PATH`` if
        none), the rank of the path it continues with there, and which of the parallel edges between
        the two vertices it takes (an index into the semiring's ``rank_edges`` of them, or ``None``
        for the strongest). Read through the path protocol: ``semiring.backpointers`` decodes what
        the sweep kept, ``k`` ranks per element make a backpointer the code ``gid * k + rank``; the
        ``j``-th occurrence of a code among an element's ranks takes the ``j``-th parallel edge.
        """
        semiring = self.semiring
        k = _ranks(semiring)
        kept = self.sweep.kept[node]
        if k == 1:
            code = int(backend.to_numpy(semiring.backpointers(kept.reshape(-1)[flat])))
            return code, 0, (None if code in (backend.NO_PATH, backend.END) else 0)
        codes = backend.to_numpy(semiring.backpointers(kept.reshape(k, -1)[:, flat]))
        code = int(codes[rank])
        if code in (backend.NO_PATH, backend.END):
            return code, 0, None
        parallel = int(np.count_nonzero(codes[:rank] == code))
        return code // k, code % k, parallel

    def _follow(self, node, flat: int, rank: int) -> Path:
        sweep = self.sweep
        steps = [_step(node, flat)]
        weights = []
        seqs = [node.seq]
        while node is not sweep.root:
            target, next_rank, parallel = self._hop(node, flat, rank)
            if target == backend.NO_PATH:
                which = f"path of rank {rank}" if rank else "path"
                raise ValueError(f"element {steps[-1].index} of {node.describe()} has no {which} to the output")
            next_node, next_flat = sweep.locate(target)
            if parallel is None:
                weights.append(edge_weight(node, flat, next_node, next_flat))
            else:
                weights.append(parallel_edges(node, flat, next_node, next_flat, self.semiring)[parallel])
            node, flat, rank = next_node, next_flat, next_rank
            steps.append(_step(node, flat))
            seqs.append(node.seq)
        seed = 1.0 if sweep.seed is None else float(backend.to_numpy(sweep.seed.reshape(-1)[flat]))
        return Path(steps, weights, seqs, seed)


def edge_weight(source, source_flat: int, target, target_flat: int) -> float:
    """The weight of the best edge from ``source[source_flat]`` to ``target[target_flat]``.

    Runs ``target``'s backward in MaxAbsProduct with a one-hot seed, so parallel edges (``x * x``)
    stay separate and the strongest one is reported, exactly as the trace chose it.
    """
    best = None
    for value in _slot_weights(source, source_flat, target, target_flat):
        if best is None or abs(value) > abs(best):
            best = value
    return best


def parallel_edges(source, source_flat: int, target, target_flat: int, semiring=None) -> list:
    """The weights of every edge from ``source[source_flat]`` to ``target[target_flat]``.

    One per input slot of ``target``'s op that ``source`` fills (``x * x``: two), in the order
    ``semiring.rank_edges`` puts them (the path protocol); without a semiring, the ranking
    semirings' order: strongest (largest ``log |w|``) first, ties in slot order, edges of weight
    exactly 0 left out.
    """
    weights = _slot_weights(source, source_flat, target, target_flat)
    if semiring is not None:
        return list(semiring.rank_edges(weights))
    weights = [w for w in weights if w != 0]
    return sorted(weights, key=lambda w: -float(np.log(np.abs(np.float64(w)))))  # stable: slot order on ties


def _slot_weights(source, source_flat: int, target, target_flat: int) -> list:
    """Per input slot of ``target`` filled by ``source``: its edge weight (0 where it has no edge)."""
    semiring = MaxAbsProduct()
    xp = target.ctx.xp
    one_hot = xp.zeros(target.shape, dtype=target.dtype)
    one_hot.reshape(-1)[target_flat] = 1
    g = (one_hot, backend.element_ids(xp, 0, target.shape))
    needs = tuple(p is source for p in target.parents)
    out = []
    for parent, contribution in zip(target.parents, target.op.backward(target.ctx, g, semiring, needs), strict=False):
        if parent is source:
            contribution = full_contribution(semiring, contribution, source.shape)
            out.append(float(backend.to_numpy(contribution[0].reshape(-1)[source_flat])))
    return out


def _flat_index(shape: tuple, index) -> int:
    """The C-order flat position of ``index`` (an int, or one int per axis) in ``shape``.

    >>> _flat_index((2, 3), (1, 2)), _flat_index((4,), -1)
    (5, 3)
    """
    index = (index,) if isinstance(index, (int, np.integer)) else tuple(index)
    if len(index) != len(shape):
        raise IndexError(
            f"index {index} has {len(index)} {'entry' if len(index) == 1 else 'entries'}; an element of a tensor "
            f"of shape {shape} needs {len(shape)} (one per axis)"
        )
    if any(not -n <= i < n for i, n in zip(index, shape, strict=False)):
        raise IndexError(f"index {index} is out of range for shape {shape}")
    return int(np.ravel_multi_index(tuple(i % n for i, n in zip(index, shape, strict=False)), shape)) if shape else 0


def _step(node, flat: int) -> Step:
    index = tuple(int(i) for i in np.unravel_index(flat, node.shape)) if node.shape else ()
    return Step(node.op_name, node.name, node.shape, index, node.component)


# -- the ranking semirings' results (LogMaxAbs, KBest) --------------------------------------------


class RankedTrace(Trace):
    """A :class:`~semirad.paths.Trace` of a semiring that keeps ``k`` ranked paths per element
    (KBest, or any semiring following the path protocol with ``k > 1``): ``r.paths(t, index)``.

    A code ``gid * k + rank`` names the next vertex and the rank of the path it continues with
    there. Parallel edges (``x * x``) give one code per edge; the ``j``-th occurrence of a code in
    an element's list takes the ``j``-th of those edges in the semiring's ``rank_edges`` order.
    """

    def paths(self, tensor, index) -> list:
        """The best paths from ``tensor[index]``, best first: ``k`` of them, fewer if fewer exist."""
        node = self.node_of(tensor)
        flat = _flat_index(node.shape, index)
        k = _ranks(self.semiring)
        kept = self.sweep.kept[node].reshape(k, -1)[:, flat]
        codes = backend.to_numpy(self.semiring.backpointers(kept))
        return [self._follow(node, flat, r) for r in range(k) if int(codes[r]) != backend.NO_PATH]


class LogMaxAbsTrace(Trace):
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


# registration, in one direction: the semirings know nothing of the results that follow their paths
MaxAbsProduct.result_class = Trace
LogMaxAbs.result_class = LogMaxAbsTrace
KBest.result_class = KBestResult
# ...and any other semiring that follows the path protocol gets one of these (Semiring.result)
PATH_RESULTS.update(single=Trace, ranked=RankedTrace)
