"""Path shares: which share of the strongest paths from chosen elements passes through chosen places?

:func:`path_shares` answers, for the best path (trace, ``LogMaxAbs``) or the ``k`` best paths
(``KBest``) of every selected element of one or more *source* tensors, whether the path passes
through each of a few labelled sets of the graph — e.g. ``{"key": "*/1/self_attn/key",
"residual": edge(component="*/1/residual_attn", op="add", input=0)}`` — and reports counts and
shares per label and the share that passes through none of them. :func:`backprop_path_shares`
asks the same of *all* paths, weighted by ``|product|`` as backprop weighs them, so that the two
columns compare (see ``docs/analysis.md``, "Path shares").

**Selectors** say which vertices (or edges) a label stands for:

* :func:`components` (a plain string is one): vertices made by ops recorded in components whose full
  name matches a shell pattern (``fnmatch``; ``*`` matches ``/`` too; levels may be written with
  ``/`` or ``.``, so ``"layers.1.self_attn.key"`` and ``"layers/1/self_attn/key"`` are the same
  pattern); a component also stands for every component nested inside it;
* :func:`op`: vertices made by ops of the given names (``"matmul"``, ``"add"``...);
* :func:`tensors` (a Tensor is one): the elements of those tensors;
* :func:`edge`: the edges into an op's result from the tensor in one of its inputs, e.g.
  ``edge(component="layers/0/residual_attn", op="add", input=0)``: the residual stream's side of
  ``x + attn(x)`` (both sides feed the same ``add``, so no component can tell them apart);
* :func:`any_of` (a list is one): the union.

**What "passes through" means.** A path passes through a component or op selector if one of its
steps *after the first* lies in a matching vertex, i.e. if it uses an edge consumed by a matching
op (as :meth:`semirad.Path.components` counts edges); through a tensor selector if one of its
steps, the first included, lies in the tensor; through an edge selector if it steps along one of
those edges. A path can pass through several labels (the query projection, then the residual
stream of the next layer): the shares of the labels can sum to more than 1; ``"none"`` is the
share through none of them, and :attr:`PathShares.combinations` counts each combination once.

**Linear time.** A path-capable sweep keeps one backpointer per vertex (per (vertex, rank) pair
for ``KBest``): the state its path continues at, always in a tensor created later. So whether
the rest of a path passes through a label is a property of the *state* it is in, and one pass
over the nodes from the output backwards computes it for every state at once, as a bit mask with
one bit per label: ``bits[s] = own(s) | edge(s -> next(s)) | bits[next(s)]``, one gather per
node (plus a comparison per edge selector at the nodes it starts from). The answer for the
sources is read off their states: ``O(vertices)``, no walk per path.
:func:`backprop_path_shares` is one sweep of :class:`~semirad.semirings.path_flow.PathFlow`
(``SumAbs`` with one channel per label plus two: the total, and the flow avoiding the set,
so flow through = total - avoiding).
"""

from __future__ import annotations

import fnmatch
import math
import re

import numpy as np

from .. import backend, engine
from ..paths import path_semiring
from ..semirings.path_flow import PathFlow
from ..tensor import Tensor, seed_array
from .importance import _backpointers, _kind, _per_source, element_mask

__all__ = [
    "PathShares",
    "path_shares",
    "backprop_path_shares",
    "components",
    "op",
    "tensors",
    "edge",
    "any_of",
    "Selector",
    "element_mask",
]

NONE = "none"  # the label of paths through no labelled set


# -- selectors ---------------------------------------------------------------------------------------
class Selector:
    """A set of vertices and edges of the scalar graph (see the module docstring). Made by
    :func:`components`, :func:`op`, :func:`tensors`, :func:`edge` or :func:`any_of`.

    ``vertex(node)``: whether every vertex of ``node`` is in the set once a path has stepped into
    it; ``start(node)``: whether a path that *starts* in ``node`` is in the set from its first
    step; ``edge_slots(node)``: the input slots of ``node``'s op whose edges into ``node`` are in
    the set (an empty tuple: none). A selector is resolved against the nodes of a graph: nothing
    else is read.
    """

    def vertex(self, node) -> bool:
        return False

    def start(self, node) -> bool:
        return False

    def edge_slots(self, node) -> tuple:
        return ()

    def parts(self) -> list:
        return [self]

    def __or__(self, other):
        return any_of(self, other)


_MATCHERS: dict = {}  # patterns -> (compiled regex, {name: matched}): shared by every selector of those patterns


def _matcher(patterns: tuple):
    found = _MATCHERS.get(patterns)
    if found is None:
        if len(_MATCHERS) > 256:
            _MATCHERS.clear()
        alternatives = [fnmatch.translate(q) for pat in patterns for q in (pat, pat + "/*", pat + ".*")]
        found = _MATCHERS[patterns] = (re.compile("|".join(alternatives)), {})
    return found


class _Components(Selector):
    def __init__(self, patterns):
        self.patterns = []
        for p in patterns:
            if not isinstance(p, str) or not p:
                raise TypeError(f"a component pattern is a non-empty string, got {p!r}")
            self.patterns.append(p)
        self._regex, self._cache = _matcher(tuple(self.patterns))

    def matches(self, name) -> bool:
        """Whether the full component name ``name`` (levels joined by ``/``) matches."""
        if name is None:
            return False
        hit = self._cache.get(name)
        if hit is None:
            regex = self._regex
            hit = bool(regex.match(name) or regex.match(name.replace("/", ".")))
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[name] = hit
        return hit

    def vertex(self, node) -> bool:
        return node.op is not None and self.matches(node.component)

    def __repr__(self) -> str:
        return f"components({', '.join(repr(p) for p in self.patterns)})"


class _Ops(Selector):
    def __init__(self, names):
        self.names = []
        for n in names:
            if not isinstance(n, str) or not n:
                raise TypeError(f"an op name is a non-empty string (e.g. 'matmul'), got {n!r}")
            self.names.append(n)

    def vertex(self, node) -> bool:
        return node.op is not None and node.op.name in self.names

    def __repr__(self) -> str:
        return f"op({', '.join(repr(n) for n in self.names)})"


class _Tensors(Selector):
    def __init__(self, items):
        self.nodes = []
        for t in items:
            node = t if isinstance(t, engine.Node) else getattr(t, "_node", None)
            if node is None:
                what = f"a tensor of shape {t.shape} that is not part of a recorded graph" if isinstance(
                    t, Tensor) else type(t).__name__  # fmt: skip
                raise TypeError(f"tensors(): expected recorded tensors, got {what}")
            self.nodes.append(node)
        self._set = set(self.nodes)

    def vertex(self, node) -> bool:
        return node in self._set

    def start(self, node) -> bool:
        return node in self._set

    def __repr__(self) -> str:
        return f"tensors({', '.join(n.describe() for n in self.nodes)})"


class _Edges(Selector):
    def __init__(self, component, op_name, input):
        self.component = None if component is None else _Components([component] if isinstance(component, str)
                                                                     else list(component))  # fmt: skip
        if op_name is not None and (not isinstance(op_name, str) or not op_name):
            raise TypeError(f"edge(op=...) is an op name such as 'add', got {op_name!r}")
        self.op_name = op_name
        if input is not None and (isinstance(input, bool) or not isinstance(input, (int, np.integer)) or input < 0):
            raise TypeError(f"edge(input=...) is the position of the op's input (0, 1, ...), got {input!r}")
        self.input = None if input is None else int(input)

    def edge_slots(self, node) -> tuple:
        if node.op is None:
            return ()
        if self.op_name is not None and node.op.name != self.op_name:
            return ()
        if self.component is not None and not self.component.matches(node.component):
            return ()
        parents = node.parents
        if self.input is None:
            return tuple(i for i, p in enumerate(parents) if p is not None)
        if self.input >= len(parents) or parents[self.input] is None:
            return ()
        return (self.input,)

    def __repr__(self) -> str:
        args = []
        if self.component is not None:
            args.append(f"component={self.component.patterns[0]!r}" if len(self.component.patterns) == 1
                        else f"component={self.component.patterns!r}")  # fmt: skip
        if self.op_name is not None:
            args.append(f"op={self.op_name!r}")
        if self.input is not None:
            args.append(f"input={self.input}")
        return f"edge({', '.join(args)})"


class _Union(Selector):
    def __init__(self, selectors):
        self.selectors = [as_selector(s) for s in selectors]

    def vertex(self, node) -> bool:
        return any(s.vertex(node) for s in self.selectors)

    def start(self, node) -> bool:
        return any(s.start(node) for s in self.selectors)

    def edge_slots(self, node) -> tuple:
        slots = set()
        for s in self.selectors:
            slots.update(s.edge_slots(node))
        return tuple(sorted(slots))

    def parts(self) -> list:
        return [p for s in self.selectors for p in s.parts()]

    def __repr__(self) -> str:
        return f"any_of({', '.join(repr(s) for s in self.selectors)})"


def components(*patterns: str) -> Selector:
    """The vertices made by ops recorded in a component whose full name matches one of ``patterns``.

    Patterns are shell-style (``fnmatch``, case-sensitive; ``*`` also matches ``/``); levels can be
    written with ``/`` (as names are kept) or ``.`` (as parameters are named). A pattern also
    matches every component nested inside a match. A plain string given as a selector is this.

    >>> s = components("layers.1.self_attn.key")
    >>> [s.matches(name) for name in ("layers/1/self_attn/key", "layers/1/self_attn/key/sub", "layers/1/keys")]
    [True, True, False]
    """
    if not patterns:
        raise TypeError("components() needs at least one pattern")
    return _Components(patterns)


def op(*names: str) -> Selector:
    """The vertices made by ops of these names (``op("matmul")``; ``Node.op_name`` gives the name)."""
    if not names:
        raise TypeError("op() needs at least one op name, e.g. op('matmul')")
    return _Ops(names)


def tensors(*items) -> Selector:
    """The elements of these recorded tensors; a path that starts in one passes through it."""
    if not items:
        raise TypeError("tensors() needs at least one tensor")
    return _Tensors(items)


def edge(component=None, op: str | None = None, input: int | None = None) -> Selector:
    """The edges into the result of an op from its input number ``input`` (all inputs if None),
    for ops of name ``op`` recorded in a component matching ``component`` (a pattern as in
    :func:`components`; any component if None).

    ``edge(component="layers/0/residual_attn", op="add", input=0)`` is the residual stream's side of
    the residual addition of ``nn.TransformerEncoderLayer``, ``input=1`` the attention's side.
    Where one tensor fills several inputs of an op (``x + x``), its edges into the op count as
    edges of every input it fills.

    >>> edge(component="layers/0/residual_attn", op="add", input=0)
    edge(component='layers/0/residual_attn', op='add', input=0)
    """
    if component is None and op is None:
        raise TypeError("edge() needs a component pattern or an op name (or both)")
    return _Edges(component, op, input)


def any_of(*selectors) -> Selector:
    """The union of several selectors (a list given as a selector is this)."""
    return _Union(selectors)


def as_selector(value) -> Selector:
    """A selector from what ``through={label: ...}`` accepts: a :class:`Selector`, a string (a
    component pattern), a tensor, or a list/tuple of these (their union)."""
    if isinstance(value, Selector):
        return value
    if isinstance(value, str):
        return components(value)
    if isinstance(value, (Tensor, engine.Node)):
        return tensors(value)
    if isinstance(value, (list, tuple)):
        return any_of(*value)
    raise TypeError(
        f"a selector is a component pattern (str), a Tensor, a selector from sr.analysis (components, op, "
        f"tensors, edge, any_of) or a list of those; got {type(value).__name__}"
    )


def _sources(sweep_nodes, sources, elements, caller: str):
    """``[(name, node, mask)]``: each source once, with the mask of its selected elements."""
    from .groups import named_tensors

    if isinstance(sources, (Tensor, engine.Node)):
        sources = [sources]
    named = []
    for i, item in enumerate(sources if isinstance(sources, (list, tuple)) else [sources]):
        if isinstance(item, engine.Node):
            named.append((item.name or f"source{i}", item))
        else:
            named.extend(named_tensors(item))
    if not named:
        raise ValueError(f"{caller}: no source tensors given")
    per = _per_source(named, elements, caller, "sources")
    out, seen = [], {}
    for (name, t), chosen in zip(named, per, strict=True):
        node = t if isinstance(t, engine.Node) else getattr(t, "_node", None)
        if node is None or node not in sweep_nodes:
            why = (
                "it is not part of a recorded graph"
                if node is None
                else "it is not a vertex of this sweep "
                "(the output does not depend on it, or it lies outside the sweep's inputs' paths)"
            )
            raise ValueError(f"{caller}: source {name!r} of shape {getattr(t, 'shape', None)}: {why}")
        mask = element_mask(node.shape, chosen, f"source {name!r}").reshape(-1)
        if node in seen:
            seen[node][2] |= mask
            continue
        entry = [name, node, mask]
        seen[node] = entry
        out.append(entry)
    return [tuple(e) for e in out]


# -- the result --------------------------------------------------------------------------------------
class PathShares:
    """Counts and shares of the counted paths through each labelled set (see :func:`path_shares`).

    ``counts[label]`` is the number of counted paths through ``label`` (for
    :func:`backprop_path_shares`: the summed ``|product|`` of all paths through it), ``counts["none"]``
    the same for paths through none of the labels; ``total`` is the number of paths counted (the summed
    ``|product|`` of all paths); ``shares[label] = counts[label] / total``. A path can pass through
    several labels: shares may sum to more than 1. ``combinations`` (trace results only) counts
    paths per exact combination of labels (a tuple of labels, ``()`` for none). ``kind`` says
    what was counted: ``"trace"``, ``"trace (log)"``, ``"k-best(4)"``, ``"backprop"``; ``paths``
    the number of paths (for backprop: of source elements with some flow), ``elements`` the
    number of selected source elements.

    >>> import semirad as sr
    >>> x = sr.tensor([1.0, -3.0], requires_grad=True, name="x")
    >>> with sr.component("double"):
    ...     y = x * 2.0
    >>> out = (y + x * 0.5).sum()        # x[i]: through "double" (2) or around it (0.5)
    >>> shares = path_shares(sr.trace(out, [x]), x, {"double": "double"})
    >>> shares.counts, shares.shares["double"]
    ({'double': 2, 'none': 0}, 1.0)
    >>> backprop_path_shares(out, x, {"double": "double"}).shares
    {'double': 0.8, 'none': 0.2}
    """

    def __init__(self, counts: dict, total, kind: str = "trace", paths: int = 0, elements: int = 0,
                 combinations: dict | None = None, selectors: dict | None = None):  # fmt: skip
        integral = kind != "backprop"
        self.counts = {str(k): (int(v) if integral else float(v)) for k, v in counts.items()}
        self.total = int(total) if integral else float(total)
        self.kind = kind
        self.paths = int(paths)
        self.elements = int(elements)
        self.combinations = None if combinations is None else {tuple(k): int(v) for k, v in combinations.items()}
        self.selectors = dict(selectors or {})

    @property
    def labels(self) -> list:
        """The labels, in the order given (without ``"none"``)."""
        return [k for k in self.counts if k != NONE]

    @property
    def shares(self) -> dict:
        """``{label: count / total}``, ``"none"`` last (all 0 when nothing was counted)."""
        total = self.total
        return {k: (v / total if total else 0.0) for k, v in self.counts.items()}

    def table(self, title: str | None = None) -> str:
        """A text table: one row per label (and ``none``), count and share."""
        unit = "|product|" if self.kind == "backprop" else "paths"
        head = title or f"path shares ({self.kind}): {self.total:.6g} {unit} from {self.elements} elements"
        width = max([len(k) for k in self.counts] + [8])
        lines = [head, f"  {'through':<{width}}  {'count':>12}  {'share':>8}"]
        for k, v in self.counts.items():
            share = self.shares[k]
            count = f"{v:>12.6g}" if isinstance(v, float) else f"{v:>12d}"
            lines.append(f"  {k:<{width}}  {count}  {share:>8.1%}")
        if self.kind != "backprop" and len(self.labels) > 1:
            lines.append("  (a path can pass through several labels: shares may sum to more than 100%)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}: {v:.1%}" for k, v in self.shares.items())
        return f"PathShares({self.kind}, {self.total:.6g}; {shown})"

    def to_dict(self) -> dict:
        """A JSON-ready dict (:meth:`from_dict` reads it back); selectors are kept as text."""
        out = {
            "kind": self.kind,
            "counts": dict(self.counts),
            "total": self.total,
            "paths": self.paths,
            "elements": self.elements,
            "selectors": {k: str(v) for k, v in self.selectors.items()},
        }
        if self.combinations is not None:
            out["combinations"] = [[list(k), v] for k, v in self.combinations.items()]
        return out

    @classmethod
    def from_dict(cls, data: dict) -> PathShares:
        """The :class:`PathShares` that :meth:`to_dict` wrote.

        >>> s = PathShares({"a": 3, "none": 1}, 4, combinations={("a",): 3, (): 1})
        >>> PathShares.from_dict(s.to_dict()).shares == s.shares
        True
        """
        combos = data.get("combinations")
        return cls(
            data["counts"],
            data["total"],
            data.get("kind", "trace"),
            data.get("paths", 0),
            data.get("elements", 0),
            None if combos is None else {tuple(k): v for k, v in combos},
            data.get("selectors"),
        )


# -- the plan: which vertex, start and edge carries which bit ------------------------------------------
def _labels(through) -> tuple[list, list]:
    if not isinstance(through, dict) or not through:
        raise TypeError("through must be a non-empty dict {label: selector}, e.g. {'key': 'layers/1/self_attn/key'}")
    labels, selectors = [], []
    for lab, sel in through.items():
        lab = str(lab)
        if lab == NONE:
            raise ValueError(f"{NONE!r} is the label of the paths through no set; pick another label")
        labels.append(lab)
        selectors.append(as_selector(sel))
    if len(labels) > 62:
        raise ValueError(f"at most 62 labels in one call, got {len(labels)}")
    return labels, selectors


def _plan(nodes, labels, selectors, strict: bool, caller: str):
    """Per node: ``vertex`` bits, ``start`` bits, and ``{(parent, slot-bits)}`` of edge bits into it."""
    vertex, start, edges = {}, {}, {}
    hit = [False] * len(labels)
    for node in nodes:
        v = s = 0
        for j, sel in enumerate(selectors):
            bit = 1 << j
            if sel.vertex(node):
                v |= bit
                hit[j] = True
            if sel.start(node):
                s |= bit
            slots = sel.edge_slots(node)
            if slots:
                for parent in {node.parents[i] for i in slots}:
                    key = (parent, node)
                    edges[key] = edges.get(key, 0) | bit
                    hit[j] = True
        if v:
            vertex[node] = v
        if s:
            start[node] = s
    if strict:
        for j, ok in enumerate(hit):
            if not ok:
                raise ValueError(_nothing_matched(caller, labels[j], selectors[j], nodes))
    return vertex, start, edges


def _nothing_matched(caller, lab, sel, nodes) -> str:
    comps = sorted({n.component for n in nodes if n.op is not None and n.component is not None})
    ops = sorted({n.op.name for n in nodes if n.op is not None})
    shown = ", ".join(comps[:12]) + (f", ... ({len(comps)} in all)" if len(comps) > 12 else "")
    return (f"{caller}: the selector of {lab!r}, {sel!r}, matches nothing in this sweep's graph (components there: "
            f"{shown or 'none'}; ops: {', '.join(ops)}); pass strict=False to allow that")  # fmt: skip


def _bits_dtype(n: int):
    for dtype in (np.uint8, np.uint16, np.uint32, np.uint64):
        if n <= np.iinfo(dtype).bits:
            return dtype
    raise ValueError(n)


# -- trace: one pass over the backpointers -------------------------------------------------------------
def path_shares(result, sources, through: dict, elements=None, ranks=None, strict: bool = True) -> PathShares:
    """The share of the best paths from the selected source elements that pass through each labelled set.

    ``result``: what :func:`semirad.trace` returns (or a sweep of ``LogMaxAbs`` or ``KBest(k)``:
    every one of the ``k`` paths of an element counts, or only the ``ranks`` given, e.g. ``[0]``).
    ``sources``: a tensor, a list of tensors or an ``nn.Module`` (its parameters); any tensor whose
    elements are vertices of the sweep: the sweep's inputs (parameters, the input, an intermediate
    activation passed to ``sr.trace``) or any tensor on their paths to the output.
    ``through``: ``{label: selector}``, see :func:`components`, :func:`op`, :func:`tensors`,
    :func:`edge`, :func:`any_of` (a string is a component pattern, a list a union).
    ``elements``: which elements of the source count (see :func:`element_mask`: a boolean mask of
    its shape, or an index such as ``(slice(None), 0)``); with several sources a list (one entry
    per source, ``None`` for all) or ``{name: elements}``. Elements without a path to the output
    are left out. ``strict``: a selector that matches nothing in the graph raises (a typo, most
    likely).

    One pass over the sweep's nodes, linear in the number of vertices (module docstring); equal to
    walking every path (:meth:`semirad.paths.Trace.walk`), which the tests check.

    >>> import semirad as sr
    >>> w = sr.tensor([[1.0, 4.0], [2.0, 0.5]], requires_grad=True, name="w")
    >>> x = sr.tensor([[1.0, 1.0]], requires_grad=True)
    >>> with sr.component("mix"):
    ...     h = x @ w
    >>> out = (h + x * 3.0).sum()
    >>> s = path_shares(sr.trace(out, [x]), x, {"mix": "mix", "skip": edge(op="add", input=1)})
    >>> s.counts, s.combinations
    ({'mix': 1, 'skip': 1, 'none': 0}, {('mix',): 1, ('skip',): 1})
    """
    try:
        path_semiring(result, "path_shares")
    except TypeError as error:
        raise TypeError(f"{error}; for all paths weighted as backprop weighs them use "
                        "backprop_path_shares(output, sources, through)") from None  # fmt: skip
    labels, selectors = _labels(through)
    k, codes_of = _backpointers(result, "path_shares")
    sweep = result.sweep
    order, base = sweep.order, sweep.base
    chosen = _sources(sweep.kept, sources, elements, "path_shares")
    rank_mask = None
    if ranks is not None:
        rank_mask = np.zeros(k, dtype=bool)
        for r in np.atleast_1d(ranks):
            if not 0 <= int(r) < k:
                raise IndexError(f"path_shares: rank {int(r)} is out of range for {k} path{'s' if k > 1 else ''} "
                                 "per element")  # fmt: skip
            rank_mask[int(r)] = True

    # the nodes a selected path can visit: the sources and everything made from them
    reach = {node for _, node, _ in chosen}
    for node in order:
        if node not in reach:
            for p in node.parents:
                if p is not None and p in reach:
                    reach.add(node)
                    break
    nodes = [n for n in order if n in reach]
    vertex, start, edges = _plan(nodes if not strict else order, labels, selectors, strict, "path_shares")
    out_edges: dict = {}
    for (parent, node), bit in edges.items():
        if parent in reach and node in reach:
            out_edges.setdefault(parent, []).append((node, bit))

    dtype = _bits_dtype(len(labels))
    last = order[-1]
    bits = np.zeros((base[last] + _size(last.shape)) * k, dtype=dtype)
    source_nodes = {node for _, node, _ in chosen}
    at_sources = {}
    no_path = backend.NO_PATH
    for node in reversed(nodes):
        size = _size(node.shape)
        lo = base[node] * k
        codes, layout = codes_of(node)
        first, top = (int(codes.min()), int(codes.max())) if codes.size else (0, 0)
        if first >= 0 and top != no_path:  # every state goes on to a successor: one gather
            valid = None
            after = bits[codes]
        else:  # the output (END) or states without a path (NO_PATH): nothing after them
            valid = (codes >= 0) & (codes != no_path)
            after = np.where(valid, bits[np.where(valid, codes, 0)], dtype(0))
        for successor, bit in out_edges.get(node, ()):
            s_lo = base[successor] * k
            into = (codes >= s_lo) & (codes < s_lo + _size(successor.shape) * k)
            after |= np.where(into, dtype(bit), dtype(0))
        if layout is not None:  # the codes came in the Fortran order of the node's shape (k == 1)
            after = after.reshape(node.shape, order=layout).reshape(-1)
        own = vertex.get(node)
        bits[lo : lo + size * k] = after if own is None else after | dtype(own)
        if node in source_nodes:
            has = codes != no_path
            if layout is not None:
                has = has.reshape(node.shape, order=layout).reshape(-1)
            at_sources[node] = (after | dtype(start.get(node, 0)), has)

    picked = []
    n_elements = 0
    for _, node, mask in chosen:
        begin, has = at_sources[node]
        take = np.repeat(mask, k) & has
        if rank_mask is not None:
            take &= np.tile(rank_mask, _size(node.shape))
        picked.append(begin[take])
        n_elements += int(mask.sum())
    found = np.concatenate(picked) if picked else np.zeros(0, dtype=dtype)
    counts = {lab: int(np.count_nonzero(found & dtype(1 << j))) for j, lab in enumerate(labels)}
    counts[NONE] = int(np.count_nonzero(found == 0))
    values, numbers = np.unique(found, return_counts=True)
    combos = {tuple(lab for j, lab in enumerate(labels) if int(v) >> j & 1): int(c) for v, c in zip(values, numbers)}
    return PathShares(counts, found.size, _kind(result), found.size, n_elements, combos,
                      dict(zip(labels, selectors)))  # fmt: skip


def _size(shape) -> int:
    return int(math.prod(shape))


# -- backprop: one sweep of PathFlow ------------------------------------------------------------------
def backprop_path_shares(output, sources, through: dict, elements=None, seed=None, strict: bool = True) -> PathShares:
    """:func:`path_shares` asked of all paths: the share of ``Σ |product|`` over every path from the
    selected source elements to the output that passes through each labelled set.

    Each path counts with the weight backprop gives it, without its sign: ``|product of its edge
    weights|`` (so paths that cancel in the gradient still count). ``counts[label]`` is the summed
    ``|product|`` of the paths through ``label``, ``total`` that of all paths, ``counts["none"]``
    that of the paths through none of the labels; selectors and ``elements`` as in
    :func:`path_shares`. Sources are tensors the output depends on (leaves or intermediate).

    One reverse sweep of :class:`~semirad.semirings.path_flow.PathFlow`: ``SumAbs`` on ``len(through)
    + 2`` channels (the total flow, and per label and for their union the flow of the paths that
    avoid it; through = total - avoiding).

    >>> import semirad as sr
    >>> x = sr.tensor([1.0], requires_grad=True, name="x")
    >>> with sr.component("big"):
    ...     y = x * 3.0
    >>> out = (y - x).sum()   # two paths: 3 through "big", -1 around it; gradient 2
    >>> backprop_path_shares(out, x, {"big": "big"}).shares
    {'big': 0.75, 'none': 0.25}
    """
    if not isinstance(output, Tensor) or output._node is None:
        raise TypeError("backprop_path_shares: the output must be a Tensor of a recorded graph")
    labels, selectors = _labels(through)
    graph = engine.ancestors(output._node)
    chosen = _sources(set(graph), sources, elements, "backprop_path_shares")
    targets = [node for _, node, _ in chosen]
    vertex, start, edges = _plan(graph, labels, selectors, strict, "backprop_path_shares")
    n = len(labels)

    # channel 1 + j avoids label j, channel 1 + n avoids them all
    def channels(bits):
        out = [j for j in range(n) if bits >> j & 1]
        return out + [n] if bits else out

    blocked = {node: channels(b) for node, b in vertex.items()}
    edge_blocks = {}
    for (parent, node), b in edges.items():
        edge_blocks.setdefault(node, []).append((parent, channels(b)))
    needed = set(targets)  # the nodes the sweep visits: the sources and everything made from them
    for node in graph:
        if node not in needed and any(p is not None and p in needed for p in node.parents):
            needed.add(node)
    semiring = PathFlow(blocked, edge_blocks, n + 1, needed)
    sweep = engine.sweep(output._node, targets, seed_array(output, seed), semiring, graph=graph)
    total = 0.0
    through_sum = np.zeros(n)
    none = 0.0
    paths = elements_n = 0
    for _name, node, mask in chosen:
        value = backend.to_numpy(semiring.value_at(sweep, node)).reshape(n + 2, -1)[:, mask]
        flow = value[0]
        avoid = value[1:].copy()
        s = start.get(node, 0)
        if s:  # a path starting in a selected tensor passes through it
            avoid[channels(s)] = 0.0
        total += float(flow.sum())
        through_sum += np.maximum(flow[None] - avoid[:n], 0.0).sum(axis=1)
        none += float(avoid[n].sum())
        paths += int(np.count_nonzero(flow > 0))
        elements_n += int(mask.sum())
    counts = {lab: float(through_sum[j]) for j, lab in enumerate(labels)}
    counts[NONE] = none
    return PathShares(counts, total, "backprop", paths, elements_n, None, dict(zip(labels, selectors)))
