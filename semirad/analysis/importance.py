"""Component importance: through which components do the best paths of a set of parameters run?

:func:`component_importance` counts, for every component, the edges of the best paths of all
selected elements that lie in it, in one pass over the graph; :func:`backprop_importance` is the
same question asked of all paths at once, weighted as backprop weights them, so that the two can
be put side by side (:func:`side_by_side`).

**Which component an edge belongs to.** An edge ``a -> b`` of the scalar graph belongs to the
component of the op that *consumes* it, the op that made ``b`` (as in :meth:`semirad.Path.components`).
Counts are kept per full component name (``"lstm/t3/forget"``), each edge once; the hierarchy is
read off afterwards: :meth:`ComponentImportance.inclusive` sums a name and everything below it,
:meth:`ComponentImportance.group` merges names by any grouping (see :mod:`semirad.analysis.groups`).

**Linear time.** The backpointers a path-capable sweep keeps form a forest whose edges point
toward the output: every vertex (or, for ``KBest``, every (vertex, rank) pair) has one successor.
The number of selected paths entering a vertex is the sum over its predecessors of the number
leaving them, and a path leaves a vertex once for each path entering it plus one if it starts
there. Successors are created after their predecessors, so one pass over the nodes in creation
order, scattering each node's counts into its successors, counts every edge of every selected
path: ``O(vertices + edges of the forest)``, never one walk per element.

The text tables are in :mod:`semirad.analysis.tables`; the semiring behind
:func:`backprop_importance` is :class:`~semirad.semirings.component_flow.ComponentFlow`.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend, engine
from ..paths import path_semiring
from ..semirings.component_flow import ComponentFlow
from ..tensor import Tensor, seed_array
from .groups import describe_grouping, grouping, label, parameter_groups
from .tables import importance_table, side_by_side

__all__ = ["ComponentImportance", "component_importance", "backprop_importance", "side_by_side"]


class ComponentImportance:
    """How many edges of the counted paths lie in each component, and their share.

    ``counts`` maps component labels (full names, or group labels after :meth:`group`) to the
    number of path edges in them (a float: for :func:`backprop_importance` an expected number);
    ``paths`` is the number of paths counted and ``elements`` the number of parameter elements
    they start from; ``kind`` says what was counted (``"trace"``, ``"k-best(3)"``, ``"backprop"``...).
    With parameter groups, ``groups[label]`` holds the same for each group and the top level is
    their union (an element in two groups counts once there).

    >>> import semirad as sr
    >>> w = sr.tensor([1.0, -2.0], requires_grad=True, name="w")
    >>> with sr.component("scale"):
    ...     y = w * 3.0
    >>> imp = component_importance(sr.trace((y * y).sum(), [w]), [w])
    >>> imp.counts, imp.paths, imp.total
    ({'scale': 2.0, '(untagged)': 4.0}, 2, 6.0)
    >>> round(imp.shares["scale"], 4)
    0.3333
    """

    def __init__(
        self,
        counts: dict,
        paths: int,
        elements: int,
        kind: str = "trace",
        groups: dict | None = None,
        grouped_by: str = "None",
    ):
        self.counts = {str(k): float(v) for k, v in counts.items()}
        self.paths = int(paths)
        self.elements = int(elements)
        self.kind = kind
        self.groups = dict(groups or {})
        self.grouped_by = grouped_by

    # -- numbers ---------------------------------------------------------------------------------
    @property
    def total(self) -> float:
        """The number of counted path edges (all components)."""
        return float(sum(self.counts.values()))

    @property
    def shares(self) -> dict:
        """``{component: count / total}`` (all 0 when nothing was counted)."""
        total = self.total
        return {k: (v / total if total else 0.0) for k, v in self.counts.items()}

    @property
    def mean_edges(self) -> float:
        """Edges per counted path."""
        return self.total / self.paths if self.paths else 0.0

    def inclusive(self, name: str) -> float:
        """Edges in ``name`` and in every component nested inside it (``"lstm"``: ``"lstm/t3/forget"`` too)."""
        return float(sum(v for k, v in self.counts.items() if k == name or k.startswith(name + "/")))

    def share(self, name: str, inclusive: bool = False) -> float:
        """The share of edges in ``name`` (with ``inclusive``, in it or below it)."""
        total = self.total
        count = self.inclusive(name) if inclusive else self.counts.get(name, 0.0)
        return count / total if total else 0.0

    def group(self, by) -> ComponentImportance:
        """The same counts merged by a grouping (see :mod:`semirad.analysis.groups`)."""
        fn = grouping(by)
        merged: dict = {}
        for k, v in self.counts.items():
            key = fn(k)
            merged[key] = merged.get(key, 0.0) + v
        groups = {g: imp.group(by) for g, imp in self.groups.items()}
        return ComponentImportance(merged, self.paths, self.elements, self.kind, groups, describe_grouping(by))

    def rollup(self, levels: int) -> ComponentImportance:
        """``group(levels)``: counts summed up to the first ``levels`` levels of each name."""
        return self.group(int(levels))

    # -- output ----------------------------------------------------------------------------------
    def records(self) -> list:
        """One dict per (parameter group, component): ``params``, ``component``, ``count``, ``share``.

        ``params`` is ``"(all)"`` for the union of the selected parameters.
        """
        out = []
        for params, imp in [("(all)", self)] + list(self.groups.items()):
            for k, v in imp.counts.items():
                out.append({"params": params, "component": k, "count": v, "share": imp.shares[k], "kind": self.kind})
        return out

    def table(self, title: str | None = None) -> str:
        """A text table: one row per component, count and share (and per parameter group)."""
        return importance_table(self, title)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        top = sorted(self.shares.items(), key=lambda kv: -kv[1])[:3]
        shown = ", ".join(f"{k}: {v:.1%}" for k, v in top)
        return f"ComponentImportance({self.kind}, {self.paths} paths, {len(self.counts)} components; {shown})"

    def to_dict(self) -> dict:
        """A JSON-ready dict (:meth:`from_dict` reads it back)."""
        return {
            "kind": self.kind,
            "counts": self.counts,
            "paths": self.paths,
            "elements": self.elements,
            "grouped_by": self.grouped_by,
            "groups": {g: imp.to_dict() for g, imp in self.groups.items()},
        }

    @classmethod
    def from_dict(cls, data: dict) -> ComponentImportance:
        groups = {g: cls.from_dict(d) for g, d in data.get("groups", {}).items()}
        return cls(
            data["counts"],
            data["paths"],
            data["elements"],
            data.get("kind", "trace"),
            groups,
            data.get("grouped_by", "None"),
        )


# -- the linear-time count over a path forest -------------------------------------------------------
def component_importance(result, params=None, group=None, ranks=None, elements=None) -> ComponentImportance:
    """For every component, how many edges of the best paths of all elements of ``params`` lie in it.

    ``result`` is what a path-capable sweep returned: :func:`semirad.trace` (MaxAbsProduct),
    ``LogMaxAbs`` (the same best paths) or ``KBest(k)``. For ``KBest`` every one of the (up to)
    ``k`` paths of each element counts, each once (so counts are up to ``k`` times those of a trace
    and ``paths`` counts paths, not elements); ``ranks`` (e.g. ``[0]``) counts only those ranks.
    Elements without a path to the output are left out; a path of product 0 (a dead ReLU on it)
    still counts.

    ``params``: a tensor, a list, an ``nn.Module``, or ``{label: ...}`` for parameter groups
    (``result.groups``); default: every input of the sweep. ``group`` regroups the components
    (:mod:`semirad.analysis.groups`), e.g. ``"across_time"``. ``elements``: only the paths of these
    elements count (a boolean mask or an index of the parameter's elements, see
    :func:`semirad.analysis.shares.element_mask`; with several parameters a list, one entry per
    parameter, or ``{name: elements}``).

    Time and memory are linear in the number of vertices of the sweep (one pass in creation order);
    see the module docstring. The result equals summing :meth:`semirad.Path.components` over every
    path, which the tests check.
    """
    k, codes_of = _backpointers(result)
    sweep = result.sweep
    channels, n_elements = _channels(result, params)
    masks = _element_masks(result, params, elements, "component_importance")
    if masks:
        n_elements = [sum(int(masks[n].sum()) if n in masks else _size(n.shape) for n in nodes) for nodes in channels]
    order = sweep.order
    base = sweep.base
    sizes = [_size(n.shape) for n in order]
    n_states = (base[order[-1]] + sizes[-1]) * k if order else 0

    names: list = []
    index_of: dict = {}
    comp = {}
    for node in order:  # leaves consume no edge: components are listed in the order their first op ran
        name = label(node.component)
        if name not in index_of and node.op is not None:
            index_of[name] = len(names)
            names.append(name)
        comp[node] = index_of.get(name, -1)

    consumers: dict = {}
    for node in order:
        for parent in node.parents:
            if parent is not None and parent in base:
                consumers.setdefault(parent, []).append(node)

    rank_mask = None
    if ranks is not None:
        rank_mask = np.zeros(k, dtype=bool)
        for r in np.atleast_1d(ranks):
            if not 0 <= int(r) < k:
                raise IndexError(f"rank {int(r)} is out of range for k = {k}")
            rank_mask[int(r)] = True

    n_chan = len(channels)
    incoming = [np.zeros(n_states) for _ in range(n_chan)]
    counts = np.zeros((n_chan, len(names)))
    n_paths = np.zeros(n_chan, dtype=np.int64)
    touched = set().union(*[set(c) for c in channels]) if channels else set()
    for node, size in zip(order, sizes):
        if node not in touched:
            continue
        lo = base[node] * k
        # successor states, in the memory order of the kept array (no copy); ``here`` follows it
        codes, layout = codes_of(node)
        first, last = int(codes.min()), int(codes.max())
        if first >= 0 and last != backend.NO_PATH:  # every state goes on: no masks, no copies
            has_path = goes_on = None
            targets = codes
        else:
            has_path = codes != backend.NO_PATH
            goes_on = has_path & (codes != backend.END)
            targets = codes[goes_on]
        sources = [c for c in range(n_chan) if node in channels[c]]
        receives = node.op is not None  # a leaf has no incoming edge
        leaving = []
        for c in range(n_chan):
            here = None
            if receives:
                here = incoming[c][lo : lo + size * k]
                total = here.sum()
                if not total:
                    here = None
                else:
                    counts[c, comp[node]] += total
                    if layout is not None:  # follow the codes' order; a constant (a transposed weight) needs none
                        low, high = here.min(), here.max()
                        here = float(low) if low == high else here.reshape(node.shape).ravel(order=layout)
            if c in sources:
                start = np.ones(codes.shape, dtype=bool) if has_path is None else has_path
                if rank_mask is not None:
                    start = start & np.tile(rank_mask, size)
                if node in masks:  # only the selected elements' paths start here
                    start = start & _state_mask(masks[node], node, k, layout)
                n_paths[c] += int(np.count_nonzero(start))
                here = start if here is None else here + start
            if isinstance(here, np.ndarray) and goes_on is not None:
                here = here[goes_on]
            leaving.append(here)
        if targets.size and any(x is not None for x in leaving):
            bounds = (first, last) if goes_on is None else None  # ``targets`` is ``codes``: its range is known
            for c in range(n_chan):
                if leaving[c] is not None:
                    _scatter_add(incoming[c], targets, leaving[c], bounds)
            touched.update(consumers.get(node, ()))
    del incoming

    kind = _kind(result)
    results = []
    for c in range(n_chan):
        found = {names[j]: counts[c, j] for j in range(len(names)) if counts[c, j]}
        results.append(ComponentImportance(found, n_paths[c], n_elements[c], kind))
    top = results[0]
    if len(results) > 1:
        top.groups = dict(zip(_channel_labels(params), results[1:]))
    return top.group(group) if group is not None else top


def _scatter_add(out: np.ndarray, targets: np.ndarray, values, bounds: tuple | None = None) -> None:
    """``out[targets] += values`` with repeated targets adding up (bincount over a short span).

    ``values`` is a float array, a bool array (one path leaving where True) or a float (the same
    number leaving every element); ``bounds`` is ``(targets.min(), targets.max())`` if known.
    """
    if isinstance(values, np.ndarray) and values.dtype == bool:
        if not values.all():
            targets, bounds = targets[values], None
        values = 1.0
    if not targets.size:
        return
    lo, hi = bounds if bounds is not None else (int(targets.min()), int(targets.max()))
    span = hi - lo + 1
    scalar = not isinstance(values, np.ndarray)
    if span <= 4 * targets.size + 4096:
        if scalar:
            found = np.bincount(targets - lo, minlength=span)
            out[lo : hi + 1] += found if values == 1.0 else found * values
        else:
            out[lo : hi + 1] += np.bincount(targets - lo, weights=values, minlength=span)
    elif scalar:
        np.add.at(out, targets, np.full(targets.size, values))  # an array: numpy's fast path
    else:  # a copy of a view into ``out`` itself, or numpy buffers all of ``out``
        np.add.at(out, targets, values.copy() if np.may_share_memory(values, out) else values)


def _backpointer_layout(result) -> str:
    """How the sweep behind ``result`` keeps its backpointers (``sweep.kept[node]``), read off the
    path protocol of its semiring: ``"codes"`` where it keeps ``k > 1`` paths per element (``KBest``):
    ``(k,) + node.shape`` codes ``gid * k + rank``; ``"ids"`` for one path per element
    (``sr.trace``, ``LogMaxAbs``, whose one rank may lead: ``(1,) + node.shape``): the global id of
    the next vertex. A semiring that keeps no paths: a ``TypeError`` naming what it lacks.

    >>> import semirad as sr
    >>> x = sr.tensor([1.0], requires_grad=True)
    >>> k_best = sr.backward(x * 2.0, [x], sr.semirings.KBest(2))
    >>> _backpointer_layout(sr.trace(x * 2.0, [x])), _backpointer_layout(k_best)
    ('ids', 'codes')
    """
    semiring = path_semiring(result, "component importance")
    return "codes" if int(getattr(semiring, "k", 1)) > 1 else "ids"


def _backpointers(result, what: str = "component importance"):
    """``(k, codes_of)``: the number of ranks and a function giving a node's successor states.

    A state is ``gid * k + rank``; ``codes_of(node)`` returns ``(codes, layout)``: for every state
    of the node the state its path continues at (``NO_PATH``: no path, ``END``: the output), as a
    flat array, and the order of its elements: ``None`` for element-major C order (rank-minor),
    ``"F"`` for the Fortran order of the node's shape (``k == 1`` only; what a transposed
    backpointer array is in memory, so it is read without a copy). Everything is read through the
    path protocol: ``semiring.k`` and ``semiring.backpointers(kept)`` (int64, whatever the sweep kept).
    """
    semiring = path_semiring(result, what)
    k = int(getattr(semiring, "k", 1))
    kept, widen = result.sweep.kept, semiring.backpointers

    def flat(ids):
        if ids.flags.c_contiguous or ids.ndim < 2:
            return ids.reshape(-1), None
        if ids.flags.f_contiguous:
            return ids.ravel(order="F"), "F"
        return ids.reshape(-1), None

    def wrong(node, codes, want):
        return TypeError(
            f"{semiring!r} keeps backpointers of shape {codes.shape} for {node.describe()}, where {what} reads "
            f"{want}: its backpointers(kept) must give one int64 code per path of every element"
        )

    def codes_of(node):
        codes = np.asarray(backend.to_numpy(widen(kept[node])))
        shape = tuple(node.shape)
        if k == 1:
            if codes.shape == (1,) + shape:  # the one rank leads (LogMaxAbs)
                codes = codes[0]
            if codes.shape != shape:
                raise wrong(node, codes, f"one next-vertex id per element, shape {shape}")
            return flat(codes)
        if codes.shape != (k,) + shape:
            raise wrong(node, codes, f"k = {k} codes per element, shape {(k,) + shape}")
        return np.ascontiguousarray(codes.reshape(k, -1).T).reshape(-1), None

    return k, codes_of


def _kind(result) -> str:
    """What :func:`component_importance` counted, for ``ComponentImportance.kind``: the semiring's
    ``path_kind`` (the path protocol; its name by default).

    >>> import semirad as sr
    >>> x = sr.tensor([1.0], requires_grad=True)
    >>> _kind(sr.trace(x * 2.0, [x])), _kind(sr.backward(x * 2.0, [x], sr.semirings.KBest(3)))
    ('trace', 'k-best(3)')
    """
    semiring = result.semiring
    return str(getattr(semiring, "path_kind", None) or semiring.name)


def _channels(result, params):
    """The sets of source nodes to count: the union first, then each parameter group."""
    if params is None:
        nodes = set(result.sweep.values)
        return [nodes], [sum(_size(n.shape) for n in nodes)]
    union, groups = parameter_groups(params)
    sets = [union] + (list(groups.values()) if groups else [])
    channels, elements = [], []
    for pairs in sets:
        nodes = set()
        for _, t in pairs:
            nodes.add(result.node_of(t))
        channels.append(nodes)
        elements.append(sum(_size(n.shape) for n in nodes))
    return channels, elements


def _element_masks(result, params, elements, caller: str) -> dict:
    """``{node: flat mask}`` from an ``elements`` argument (``{}`` for None: every element)."""
    if elements is None:
        return {}
    if params is None:
        named = [(n.name or f"input{i}", n) for i, n in enumerate(result.sweep.values)]
    else:
        named = parameter_groups(params)[0]
    return element_masks(named, elements, caller)


def _state_mask(mask, node, k: int, layout) -> np.ndarray:
    """An element mask (C order) in the order of a node's backpointer states (``codes_of``)."""
    if layout is not None:  # k == 1, the Fortran order of the node's shape
        return mask.reshape(node.shape).ravel(order=layout)
    return np.repeat(mask, k) if k > 1 else mask


def _channel_labels(params) -> list:
    return [str(k) for k in params] if isinstance(params, dict) else []


def _size(shape) -> int:
    return int(math.prod(shape))


# -- backprop: all paths, weighted by |product| ------------------------------------------------------
def backprop_importance(output, params=None, group=None, seed=None, elements=None) -> ComponentImportance:
    """Component importance as backprop sees it: all paths, each weighted by its share of the flow.

    An element's gradient is the sum over *all* its paths to the output of the product of the edge
    weights. Draw one of those paths with probability ``|product| / Σ |products|`` (the distribution
    whose entropy :class:`~semirad.semirings.Entropy` computes): this counts, for every component,
    the *expected* number of the path's edges in it, summed over the selected elements. Each element
    counts once, as in :func:`component_importance`, whose paths are the single best ones; so the
    two results have the same units (path edges per element) and their shares compare directly.
    Elements whose paths all have product 0 (no gradient flow at all) are left out.

    It is one reverse sweep of :class:`ComponentFlow` (``SumAbs`` with one extra channel per
    component group), so its cost is that of ``len(groups) + 1`` SumAbs sweeps: pass a ``group``
    (e.g. ``"across_time"``) for graphs with many components. ``params`` as in
    :func:`component_importance` (default: every leaf that requires grad), ``elements`` too (only
    those elements count).

    >>> import semirad as sr
    >>> w = sr.tensor([1.0, -2.0], requires_grad=True, name="w")
    >>> with sr.component("scale"):
    ...     y = w * 3.0
    >>> imp = backprop_importance((y * y).sum(), [w])
    >>> imp.counts   # every path: 1 edge in "scale", then y * y (two parallel edges) and the sum
    {'scale': 2.0, '(untagged)': 4.0}
    """
    if output._node is None:
        raise ValueError("backprop_importance: the output is not part of a recorded graph")
    graph = engine.ancestors(output._node)
    if params is None:
        union = [(n.name or f"param{i}", n) for i, n in enumerate(n for n in graph if n.op is None)]
        groups = None
    else:
        union, groups = parameter_groups(params)
    fn = grouping(group)
    labels: list = []
    channel_of: dict = {}
    for node in graph:
        if node.op is None:
            continue
        lab = fn(label(node.component))
        if lab not in labels:
            labels.append(lab)
        channel_of[node] = labels.index(lab)
    nodes_of = {id(t): (t if isinstance(t, engine.Node) else t._node) for _, t in union}
    graph_set = set(graph)
    for name, t in union:
        node = nodes_of[id(t)]
        if node is None or node not in graph_set:
            raise ValueError(f"backprop_importance: {name!r} is not in the graph of the output")
    targets = list(dict.fromkeys(nodes_of.values()))
    masks = {} if elements is None else element_masks(union, elements, "backprop_importance")
    semiring = ComponentFlow(channel_of, len(labels))
    sweep = engine.sweep(output._node, targets, seed_array(output, seed), semiring)

    def summarize(pairs):
        total = np.zeros(len(labels))
        paths = elements = 0
        for node in dict.fromkeys(nodes_of[id(t)] for _, t in pairs):
            value = backend.to_numpy(sweep.values[node]).reshape(len(labels) + 1, -1)
            if node in masks:
                value = value[:, masks[node]]
            flow = value[0]
            alive = flow > 0
            total += (value[1:, alive] / flow[alive]).sum(axis=1)
            paths += int(alive.sum())
            elements += flow.size
        counts = {labels[j]: total[j] for j in range(len(labels)) if total[j]}
        return ComponentImportance(counts, paths, elements, "backprop", grouped_by=describe_grouping(group))

    top = summarize(union)
    if groups:
        top.groups = {g: summarize(pairs) for g, pairs in groups.items()}
    return top


# -- elements: which elements of a tensor count (elements= here, in compare and in path shares) ------------
def element_mask(shape: tuple, elements, what: str = "source") -> np.ndarray:
    """A boolean mask of ``shape`` from ``elements``: ``None`` (every element), a boolean mask of
    ``shape``, or anything that indexes an array of that shape as numpy does (an int, a slice, a
    tuple of those, integer index arrays: ``np.nonzero(...)`` or an index along the first axis).

    >>> element_mask((2, 3), (slice(None), 0)).tolist()
    [[True, False, False], [True, False, False]]
    >>> element_mask((2, 3), [1]).tolist()
    [[False, False, False], [True, True, True]]
    """
    shape = tuple(shape)
    if elements is None:
        return np.ones(shape, dtype=bool)
    if isinstance(elements, Tensor):
        elements = elements.numpy() if hasattr(elements, "numpy") else backend.to_numpy(elements.data)
    if isinstance(elements, (list, np.ndarray)) or backend.is_array(elements):
        array = np.asarray(backend.to_numpy(elements) if backend.is_array(elements) else elements)
        if array.dtype == bool:
            if array.shape != shape:
                raise ValueError(f"elements: a boolean mask of shape {array.shape} for a {what} of shape {shape} "
                                 "(it must have the same shape)")  # fmt: skip
            return array.copy()
        if array.size and not np.issubdtype(array.dtype, np.integer):
            raise TypeError(f"elements: a boolean mask or an integer index of the {what}'s elements, got an array "
                            f"of dtype {array.dtype}")  # fmt: skip
        elements = array.astype(np.int64)
    mask = np.zeros(shape, dtype=bool)
    try:
        mask[elements] = True
    except (IndexError, TypeError, ValueError) as error:
        raise IndexError(f"elements {_short(elements)} do not index a {what} of shape {shape}: {error}") from None
    return mask


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _per_source(named: list, elements, caller: str, what: str = "sources") -> list:
    """``elements`` as one entry per ``(name, tensor)`` of ``named`` (None: every element)."""
    if elements is None:
        return [None] * len(named)
    if isinstance(elements, dict):
        unknown = set(elements) - {n for n, _ in named}
        if unknown:
            raise KeyError(f"{caller}: elements given for {sorted(unknown)}, which are not among the {what} "
                           f"{[n for n, _ in named]}")  # fmt: skip
        return [elements.get(n) for n, _ in named]
    if len(named) == 1:
        return [elements]
    if isinstance(elements, (list, tuple)) and len(elements) == len(named) and not all(
            isinstance(e, (int, np.integer)) for e in elements):  # fmt: skip
        return list(elements)
    raise TypeError(f"{caller}: with {len(named)} {what}, elements is a list (one entry per tensor, None for all) "
                    "or a dict {name: elements}")  # fmt: skip


def element_masks(named: list, elements, caller: str, what: str = "parameters") -> dict:
    """``{node: flat boolean mask}`` of the selected elements of each tensor of ``named``
    (``[(name, tensor)]``), from an ``elements`` argument (see :func:`element_mask`); ``{}`` when
    ``elements`` is None. Tensors named twice get the union."""
    if elements is None:
        return {}
    out: dict = {}
    for (name, t), chosen in zip(named, _per_source(named, elements, caller, what), strict=True):
        node = t if isinstance(t, engine.Node) else getattr(t, "_node", None)
        if node is None:
            raise ValueError(f"{caller}: {name!r} (shape {getattr(t, 'shape', None)}) is not part of a recorded graph")
        mask = element_mask(node.shape, chosen, f"tensor {name!r}").reshape(-1)
        out[node] = out[node] | mask if node in out else mask
    return out
