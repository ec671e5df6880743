"""The whole-graph reference: every path of a small graph enumerated and folded (:func:`brute_force`),
and every path a result returns checked edge by edge (:func:`check_paths`).

The scalar graph (:func:`scalar_graph`) has one vertex per element of every tensor of the recorded
graph, numbered in creation order as the sweep numbers them, and one edge per input slot of an op
and pair of elements that the op's rule connects: its weight is read off the rule run in SumProduct
with a one-hot seed (so ``x * x`` gives two parallel edges of weight ``x``), whether it is an edge
off the same rule in :class:`~semirad.testing.Reach` (an edge of weight 0 is still an edge). The
weights are those :func:`~semirad.testing.gradcheck` checks against finite differences; nothing of
the semiring under test is used to build the graph.
"""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace
from typing import Any, Callable, Sequence

import numpy as np

from .. import backend, engine
from ..semirings import SumProduct
from ..semirings.base import Semiring, path_protocol_problem
from ..tensor import Tensor, tensor
from .oracle import Reach, zero_partial_convention


class _Vertex:
    """A scalar vertex as ``enter`` sees a node (its op, shape)."""

    op = "vertex"
    name = None

    def __init__(self, node=None):
        self.shape = ()
        self.dtype = np.dtype(np.float64) if node is None else node.dtype
        self._node = node

    def describe(self) -> str:
        return "a vertex of a scalar graph" if self._node is None else f"an element of {self._node.describe()}"


class ScalarGraph:
    """A graph with one vertex per tensor element and explicit, possibly parallel, weighted edges.

    ``out_edges[v]`` lists ``(u, weight)`` per edge ``v -> u``; ``ends`` maps each output vertex to
    its seed; ``vertex(node, flat)`` and ``element(v)`` translate between vertices and graph elements.
    Vertices are numbered in a topological order (every edge goes to a larger number).

    >>> from semirad.testing import ScalarGraph
    >>> g = ScalarGraph()
    >>> a, b, out = g.add_vertices(3)
    >>> g.add_edge(a, b, 2.0); g.add_edge(a, b, -1.0); g.add_edge(b, out, 3.0)
    >>> g.ends[out] = 1.0
    >>> sorted(w for _, w in g.paths(a))
    [(-1.0, 3.0), (2.0, 3.0)]
    """

    def __init__(self):
        self.out_edges: dict = defaultdict(list)
        self.ends: dict = {}
        self.size = 0
        self._vertex: dict = {}
        self._element: list = []

    def add_vertices(self, n: int, node=None) -> range:
        """``n`` new vertices (the elements of ``node`` in C order, where given)."""
        first = self.size
        self.size += n
        for flat in range(n):
            self._element.append((node, flat))
            if node is not None:
                self._vertex[(node, flat)] = first + flat
        return range(first, first + n)

    def add_edge(self, source: int, target: int, weight: float) -> None:
        """An edge ``source -> target`` (parallel edges stay separate)."""
        self.out_edges[source].append((target, float(weight)))

    def vertex(self, node, flat: int) -> int:
        return self._vertex[(node, flat)]

    def element(self, v: int) -> tuple:
        """``(node, flat)`` of a vertex."""
        return self._element[v]

    def edges(self, source: int, target: int) -> list:
        """The weights of every edge ``source -> target``."""
        return [w for u, w in self.out_edges.get(source, ()) if u == target]

    def paths(self, start: int, limit: int = 100_000) -> list:
        """Every path from ``start`` to an end vertex as ``(vertices, weights)``, vertices from ``start``
        to the end, in lexicographic order of the vertices; parallel edges give separate paths."""
        out = []
        stack = [((start,), ())]
        while stack:
            verts, weights = stack.pop()
            v = verts[-1]
            if v in self.ends:
                out.append((verts, weights))
                if len(out) > limit:
                    raise OverflowError(f"more than {limit} paths from vertex {start}")
            for u, w in reversed(self.out_edges.get(v, ())):
                stack.append((verts + (u,), weights + (w,)))
        out.sort(key=lambda p: p[0])
        return out

    def fold(self, start: int, S: Semiring, *, dtype=np.float64, zero_partials=None) -> Any:
        """The 0-d value of ``start``: the ⊕ over its paths (in lexicographic order of their vertices)
        of the ⊗ of their edge weights and the end's seed. Each path's product is built from the end
        back, ``enter`` giving it the id of the vertex it goes through, as the sweep does, so that ties
        are broken as the sweep breaks them. With the ``"none"`` convention a path through an edge of
        weight exactly 0 is left out."""
        convention = zero_partial_convention(S, zero_partials)
        acc = S.zeros(np, (), dtype)
        for verts, weights in self.paths(start):
            if convention == "none" and any(w == 0 for w in weights):
                continue
            g = S.seed(np.array(self.ends[verts[-1]], dtype=dtype))
            for v, w in zip(reversed(verts[1:]), reversed(weights)):
                if getattr(S, "has_enter", False):
                    g, _ = S.enter(g, _Vertex(self.element(v)[0]), v)
                g = S.scale(g, np.array(w, dtype=dtype))
            acc = S.add(acc, g)
        return acc


def _rule_edges(node, S, g):
    """The contribution of ``node``'s rule to each of its input slots for the value ``g`` (full size)."""
    needs = tuple(p is not None for p in node.parents)
    out = []
    for parent, contribution in zip(node.parents, node.op.backward(node, g, S, needs)):
        out.append(None if parent is None else engine.full_contribution(S, contribution, parent.shape))
    return out


def node_edges(node) -> list:
    """Per input slot of ``node``'s op: ``(parent, J, E)`` with ``J[j, i]`` the weight and ``E[j, i]``
    whether there is an edge from ``parent[i]`` to ``node[j]`` (None for a constant slot).

    >>> import semirad as sr
    >>> x = sr.tensor([-1.0, 2.0], requires_grad=True)
    >>> (parent, J, E), = node_edges(x.relu()._node)
    >>> J.tolist(), E.tolist()
    ([[0.0, 0.0], [0.0, 1.0]], [[True, False], [False, True]])
    """
    n_out = int(np.prod(node.shape, dtype=np.int64))
    slots = [
        None if p is None else (p, np.zeros((n_out, int(np.prod(p.shape, dtype=np.int64)))),
                                np.zeros((n_out, int(np.prod(p.shape, dtype=np.int64))), dtype=bool))
        for p in node.parents
    ]  # fmt: skip
    xp = node.ctx.xp
    for j in range(n_out):
        one_hot = xp.zeros(node.shape, dtype=node.dtype)
        one_hot.reshape(-1)[j] = 1
        weights = _rule_edges(node, SumProduct(), one_hot)
        reach = _rule_edges(node, Reach(), one_hot != 0)
        for slot, w, r in zip(slots, weights, reach):
            if slot is not None:
                slot[1][j] = np.asarray(backend.to_numpy(w), dtype=np.float64).reshape(-1)
                slot[2][j] = np.asarray(backend.to_numpy(r)).reshape(-1) | (slot[1][j] != 0)
    return slots


def graph_of(output: Tensor, seed=None) -> ScalarGraph:
    """The scalar graph of the recorded graph that made ``output`` (every ancestor), ends seeded with
    ``seed`` (ones by default).

    >>> import semirad as sr
    >>> from semirad.testing import graph_of
    >>> x = sr.tensor([2.0, -1.0], requires_grad=True)
    >>> graph = graph_of((x * 3.0).sum())
    >>> [w for _, w in graph.paths(graph.vertex(x._node, 1))]
    [(3.0, 1.0)]
    """
    graph = ScalarGraph()
    order = engine.ancestors(output._node)
    for node in order:
        graph.add_vertices(int(np.prod(node.shape, dtype=np.int64)), node)
    for node in order:
        if node.op is None:
            continue
        for slot in node_edges(node):
            if slot is None:
                continue
            parent, J, E = slot
            for j, i in zip(*np.nonzero(E)):
                graph.add_edge(graph.vertex(parent, int(i)), graph.vertex(node, int(j)), J[j, i])
    seeds = np.ones(output.shape) if seed is None else np.broadcast_to(np.asarray(seed, np.float64), output.shape)
    for flat, s in enumerate(np.asarray(seeds, dtype=np.float64).reshape(-1)):
        graph.ends[graph.vertex(output._node, flat)] = float(s)
    return graph


def _leaves(inputs) -> list:
    out = []
    for k, a in enumerate(inputs):
        if isinstance(a, Tensor) and a.requires_grad:
            out.append(a)
        else:
            value = backend.to_numpy(a.data) if isinstance(a, Tensor) else np.asarray(a)
            out.append(tensor(np.array(value), requires_grad=True, name=f"x{k}"))
    return out


def scalar_graph(fn: Callable, inputs: Sequence, *, seed=None) -> tuple[ScalarGraph, Tensor, list]:
    """Record ``fn(*inputs)`` and return ``(graph, output, leaves)``: its scalar graph, the output and
    the input tensors (tensors that require grad are used as they are; arrays become leaves
    ``x0, x1...``).

    >>> import semirad as sr
    >>> from semirad.testing import scalar_graph
    >>> graph, y, (x,) = scalar_graph(lambda t: (t * t).sum(), [np.array([3.0])])
    >>> [w for _, w in graph.paths(graph.vertex(x._node, 0))]    # x * x: two parallel edges
    [(3.0, 1.0), (3.0, 1.0)]
    """
    leaves = _leaves(inputs)
    out = fn(*leaves)
    return graph_of(out, seed), out, leaves


def brute_force(fn: Callable, inputs: Sequence, semiring: Semiring, *, seed=None, zero_partials=None) -> list:
    """The whole-graph reference: for every input, every element's paths to the output enumerated on
    the scalar graph of ``fn(*inputs)`` and folded in ``semiring``, shown as ``result[t]`` shows it
    (``semiring.to_array``), one array per input.

    Compare with ``sr.backward(fn(*inputs), inputs, semiring=semiring, seed=seed)``; with a seed of
    ones by default. Only for small graphs (the number of paths grows fast). ``zero_partials``: as
    in :func:`~semirad.testing.check_op`. Ties between paths are broken as the sweep breaks them (the
    successor created first), so for MaxAbsProduct signs agree on ties too.

    >>> import semirad as sr
    >>> from semirad.testing import brute_force
    >>> from semirad.semirings import Count, MaxAbsProduct
    >>> fn = lambda x, w: ((x @ w).tanh() * x[0]).sum()
    >>> x, w = np.array([1.0, -2.0]), np.array([[0.5, 1.0], [2.0, 0.0]])
    >>> brute_force(fn, [x, w], Count())[0].tolist()   # x[1] -> (x @ w)[1] weighs 0: no path for Count
    [4.0, 1.0]
    >>> xt, wt = sr.tensor(x, requires_grad=True), sr.tensor(w, requires_grad=True)
    >>> got = sr.backward(fn(xt, wt), [xt, wt], semiring=MaxAbsProduct())
    >>> [np.allclose(a, got[t]) for a, t in zip(brute_force(fn, [xt, wt], MaxAbsProduct()), [xt, wt])]
    [True, True]
    """
    graph, out, leaves = scalar_graph(fn, inputs, seed=seed)
    results = []
    for x in leaves:
        node = x._node
        size = int(np.prod(node.shape, dtype=np.int64))
        values = [graph.fold(graph.vertex(node, flat), semiring, dtype=np.dtype(out.dtype),
                             zero_partials=zero_partials) for flat in range(size)]  # fmt: skip
        shown = [np.asarray(backend.to_numpy(semiring.to_array(v, node.dtype))) for v in values]
        if not shown:
            results.append(np.asarray(backend.to_numpy(semiring.to_array(
                semiring.zeros(np, node.shape, node.dtype), node.dtype))))
            continue
        lead = np.stack(shown, axis=-1)
        results.append(lead.reshape(lead.shape[:-1] + tuple(node.shape)))
    return results


# -- paths a result returns ----------------------------------------------------------------------------


def _index(flat: int, shape: tuple) -> tuple:
    return tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()


class _Edges:
    """The edges into each node of a sweep, computed on first use."""

    def __init__(self):
        self._cache = {}

    def between(self, source, s_flat: int, target, t_flat: int) -> list | None:
        """The weights of the edges ``source[s_flat] -> target[t_flat]``, None if ``source`` is no
        parent of ``target``."""
        if target.op is None or not any(p is source for p in target.parents):
            return None
        if target not in self._cache:
            self._cache[target] = node_edges(target)
        out = []
        for slot in self._cache[target]:
            if slot is not None and slot[0] is source and slot[2][t_flat, s_flat]:
                out.append(float(slot[1][t_flat, s_flat]))
        return out


def check_paths(result, *, rtol: float = 1e-12, max_elements: int | None = None) -> int:
    """Check every path ``result`` returns: for every input of the sweep and every element, each path
    (``result.path(t, index)``, or every one of ``result.paths(t, index)``) starts at that element,
    ends at the output, takes only real edges of the scalar graph with their weights (one of the
    parallel edges, where there are several), has the sweep's seed at its end, and its value is the
    product of its weights and seed and what ``result[t]`` shows for it. An element without a path
    must show "no path". Returns the number of paths checked; raises ``AssertionError`` naming the
    path and what is wrong.

    >>> import semirad as sr
    >>> from semirad.testing import check_paths
    >>> x = sr.tensor([1.0, -2.0], requires_grad=True, name="x")
    >>> check_paths(sr.trace((x * x * 3.0).sum(), [x]))
    2
    """
    if not hasattr(result, "path"):
        semiring = getattr(result, "semiring", None)
        problem = path_protocol_problem(semiring) if semiring is not None else None
        raise TypeError(
            f"check_paths needs the result of a path-capable semiring (one whose result has .path), got "
            f"{type(result).__name__}" + (f": {problem}" if problem else "")
        )
    sweep = result.sweep
    S = sweep.semiring
    by_seq = {node.seq: node for node in sweep.order}
    edges = _Edges()
    checked = 0
    for node in list(sweep.values):
        handle = SimpleNamespace(_node=node, name=node.name, shape=node.shape)
        shown = np.asarray(backend.to_numpy(result[handle]), dtype=np.float64)
        lead = shown.ndim - len(node.shape)  # KBest shows (k,) + shape; LogMaxAbs, with k = 1, the shape
        size = int(np.prod(node.shape, dtype=np.int64))
        for flat in range(size if max_elements is None else min(size, max_elements)):
            index = _index(flat, node.shape)
            where = f"{node.describe()} element {list(index)}"
            if hasattr(result, "paths"):
                found = list(enumerate(result.paths(handle, index)))
            else:
                try:
                    found = [(0, result.path(handle, index))]
                except ValueError:
                    found = []
            if not found:
                nothing = np.asarray(backend.to_numpy(S.to_array(S.zeros(np, (), node.dtype), node.dtype)),
                                     dtype=np.float64).reshape(-1)  # fmt: skip
                got = shown.reshape(shown.shape[:lead] + (-1,))[..., flat].reshape(-1)
                assert np.array_equal(got, nothing, equal_nan=True), (
                    f"check_paths: {where} has no path, yet the result shows {got.tolist()} (no path is "
                    f"{nothing.tolist()})"
                )
                continue
            for rank, path in found:
                _check_path(path, node, flat, rank, sweep, by_seq, edges, S, shown, lead, where, rtol)
                checked += 1
    return checked


def _check_path(path, node, flat, rank, sweep, by_seq, edges, S, shown, lead, where, rtol) -> None:
    said = f"check_paths: path {rank} of {where}" if rank else f"check_paths: the path of {where}"
    seqs = getattr(path, "node_seqs", None)
    assert seqs is not None and len(seqs) == len(path.steps), f"{said} does not name the nodes of its steps"
    assert len(path.weights) == len(path.steps) - 1, (
        f"{said} has {len(path.steps)} steps but {len(path.weights)} weights"
    )
    assert seqs[0] == node.seq and tuple(path.steps[0].index) == _index(flat, node.shape), (
        f"{said} starts at {path.steps[0]}, not at the element itself"
    )
    assert seqs[-1] == sweep.root.seq, f"{said} ends at {path.steps[-1]}, not at the output"
    nodes = []
    for k, (seq, step) in enumerate(zip(seqs, path.steps)):
        n = by_seq.get(seq)
        assert n is not None, f"{said}: step {k} ({step}) is no vertex of the sweep's graph"
        assert tuple(step.shape) == tuple(n.shape), f"{said}: step {k} ({step}) has not the shape of its node"
        nodes.append((n, int(np.ravel_multi_index(tuple(step.index), n.shape)) if n.shape else 0))
    for k, ((a, i), (b, j)) in enumerate(zip(nodes, nodes[1:])):
        weights = edges.between(a, i, b, j)
        assert weights, f"{said}: no edge {path.steps[k]} -> {path.steps[k + 1]} in the scalar graph (hop {k})"
        w = path.weights[k]
        assert any(np.isclose(w, x, rtol=rtol, atol=0.0) for x in weights), (
            f"{said}: the edge {path.steps[k]} -> {path.steps[k + 1]} has weight {w!r} in the path, but "
            f"{weights} in the scalar graph"
        )
    end_flat = nodes[-1][1]
    seed = 1.0 if sweep.seed is None else float(np.asarray(backend.to_numpy(sweep.seed)).reshape(-1)[end_flat])
    assert float(path.seed) == seed, f"{said}: seed {path.seed!r}, but the sweep was seeded with {seed!r} there"
    product = seed
    for w in reversed(path.weights):
        product *= w
    value = path.value
    assert np.isclose(value, product, rtol=rtol, atol=0.0) or value == product, (
        f"{said}: value {value!r} is not the product of its weights and seed, {product!r}"
    )
    lifted = np.asarray(backend.to_numpy(S.to_array(S.seed(np.array(value, dtype=np.float64)), np.float64)))
    lifted = lifted.reshape(-1)[0]
    got = shown.reshape(shown.shape[:lead] + (-1,))[..., flat]
    got = got[rank] if lead else got
    assert np.isclose(got, lifted, rtol=rtol, atol=0.0, equal_nan=True) or got == lifted, (
        f"{said}: the result shows {float(got)!r}, but the path's value {value!r} shows as {float(lifted)!r}"
    )
