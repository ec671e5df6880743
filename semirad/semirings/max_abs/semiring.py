"""MaxAbsProduct: gradient tracing (⊕ = keep the larger |value|, ⊗ = signed ×), with backpointers.

A value is a pair ``(value, ids)``: ``value`` is the signed product of the best path found so far
and ``ids`` the global id of the vertex that path goes to next. Before a node's backward the
sweep calls :meth:`MaxAbsProduct.enter`, which stores the node's backpointers and replaces the
``ids`` by the node's own element ids, so whatever the op's rule does to the pair, each winning
contribution arrives at an input carrying the id of the output element it came through.

Ties (equal ``|value|``) go to the smaller id: the successor vertex created first (earliest op
in recording order, then the lowest C-order flat index within it).

Ids are int64 where the primitives combine them. Two kinds of arrays are compact int32
(:func:`semirad.ids.compact`) where every id fits: the backpointers :meth:`~MaxAbsProduct.enter`
keeps, and the own ids of a vertex that only a leaf feeds (``W.T``, ``W.reshape(...)``, ``tanh(W)``),
which then become that leaf's result; the primitives widen compact ids they are given
(:func:`semirad.ids.widen`), and a leaf keeps them as they come.
"""

from __future__ import annotations

import copy
import math
import weakref

import numpy as np

from ... import backend, fast
from ... import ids as _ids
from ...axes import canonical_axes
from ..base import Semiring, check_finite
from . import dispatch


class MaxAbsProduct(Semiring):
    """For every element, the signed product of the path with the largest ``|product|``.

    >>> import semirad as sr
    >>> x = sr.tensor([1.0, -2.0], requires_grad=True)
    >>> w = sr.tensor([[3.0, 1.0], [0.5, 4.0]])
    >>> tr = sr.backward((x @ w).sum(), [x], semiring=MaxAbsProduct())
    >>> tr[x].tolist()
    [3.0, 4.0]
    """

    name = "max-abs-product"
    #: the path protocol (:class:`~semirad.semirings.Semiring`): ``ids`` holds the backpointers (this
    #: class keeps them in an :meth:`enter` of its own, compact); paths counted are reported as a trace
    path_component = 1
    path_kind = "trace"
    #: check every vertex for NaN/inf (a trace silently compares NaN otherwise)
    check_finite = True
    #: during a sweep (in the copy :meth:`for_sweep` makes): id -> weakref of values proven finite
    _proven_finite: dict | None = None
    #: during a sweep (in that copy): one past the largest element id entered so far (0 before the
    #: output), so that the backpointers kept at a vertex can be :func:`~semirad.ids.compact`
    _id_bound: int | None = None
    #: during a sweep (in that copy): id -> (weakref of an ids array, its compact form), so that
    #: ids that several vertices receive (an ``add`` hands one array to both inputs) are compacted
    #: once and kept once
    _compacted: dict | None = None

    def zeros(self, xp, shape, dtype):
        return xp.zeros(shape, dtype=dtype), xp.full(shape, backend.NO_PATH, dtype=np.int64)

    def seed(self, array):
        ids = backend.namespace(array).empty(array.shape, dtype=np.int64)
        ids.fill(backend.END)  # (half the µs of xp.full)
        return array, ids

    def one(self, xp, shape):
        return self.seed(xp.ones(shape))

    def times(self, a, b):
        """``a ⊗ b``: the product, continuing where ``b``'s path goes (``scale(b, w) == times(seed(w), b)``);
        no path when either has none."""
        xp = backend.namespace(a[0], b[0])
        return a[0] * b[0], xp.where(_wide(a[1]) == backend.NO_PATH, backend.NO_PATH, _wide(b[1]))

    def for_sweep(self):
        """A copy with its own record of values proven finite, of the largest id entered and of the
        ids compacted (the sweep's state stays out of ``self``)."""
        fresh = copy.copy(self)
        fresh._proven_finite = {}  # id -> weakref of values known finite without a pass over them
        fresh._id_bound = 0
        fresh._compacted = {}
        return fresh

    def backpointers(self, kept):
        """What :meth:`enter` kept for a vertex (``sweep.kept[node]``, or any selection of it), as
        int64 global ids of the next vertex, ``NO_PATH`` and ``END`` as in :mod:`semirad.ids`: the
        one way to read them (a sweep keeps them as int32 where its ids fit, :func:`semirad.ids.compact`).

        >>> import semirad as sr
        >>> x = sr.tensor(np.arange(1.0, 101.0), requires_grad=True)   # ids 0 .. 99
        >>> h = x * 3.0                                                 # ids 100 .. 199
        >>> tr = sr.trace(h.sum(), [x])                                 # the output: id 200
        >>> kept = tr.sweep.kept[h._node]
        >>> kept.dtype.name, tr.semiring.backpointers(kept)[:2].tolist()
        ('int32', [200, 200])
        """
        return _ids.widen(kept)

    def shape(self, g):
        return g[0].shape

    def to_array(self, g, dtype):
        return g[0].astype(dtype, copy=False)

    def add(self, a, b):
        # (a leaf's contribution from a compact vertex: widened)
        return dispatch.add(backend.namespace(a[0], b[0]), a[0], _wide(a[1]), b[0], _wide(b[1]))

    def scale(self, g, weights):
        xp = backend.namespace(g[0])
        value = g[0] * weights
        ids = g[1] if value.shape == g[1].shape else fast.broadcast_to(xp, g[1], value.shape)
        return value, ids

    def sum(self, g, axes, keepdims=False):
        value, ids = g[0], _wide(g[1])
        if type(axes) is tuple and axes == _FIRST and not keepdims and value.ndim == 2 and ids.shape == value.shape:
            # (speed) a bias under its batch (ops.core.unbroadcast): the rows as they are, the general
            # steps below skipped (12 µs a call where the sum itself takes 2)
            if value.shape[0] == 1:
                return value[0], ids[0]  # one row: nothing meets
            if value.shape[0]:
                return dispatch.sum_rows(backend.namespace(value), value, ids)
        xp = backend.namespace(value)
        axes = canonical_axes(axes, value.ndim)
        if not axes:
            return value, ids
        full = value.shape
        kept = [d for d in range(value.ndim) if d not in axes]
        kept_shape = tuple([full[d] for d in kept])
        shape = tuple([1 if d in axes else n for d, n in enumerate(full)]) if keepdims else kept_shape
        reduced = math.prod([full[a] for a in axes])
        if not reduced:  # nothing to reduce (a bias over an empty batch): no path
            return self.zeros(xp, shape, value.dtype)
        if ids.shape != full:
            ids = fast.broadcast_to(xp, ids, full)
        if reduced == 1:  # one element each: nothing meets
            return value.reshape(shape), ids.reshape(shape)
        # the reduced elements as rows (their C order: the first on ties), the kept ones as columns;
        # a view where the reduced axes lead a C-contiguous array (a bias under its batch)
        if kept and kept[0] < axes[-1]:
            order = list(axes) + kept
            value, ids = value.transpose(order), ids.transpose(order)
        rows = (reduced, math.prod(kept_shape))
        rows_v, rows_i = value.reshape(rows), ids.reshape(rows)
        out_v, out_i = dispatch.sum_rows(xp, rows_v, rows_i)
        return out_v.reshape(shape), out_i.reshape(shape)

    def matmul(self, g, weights):
        xp = backend.namespace(g[0], weights)
        out = dispatch.matmul(xp, g[0], _wide(g[1]), weights)
        # each result is one product g[i, j] * weights[j, k]: a bound on the inputs can spare `enter`
        # its pass over a large result (the weight gradient of a batch-1 dense layer)
        registry = self._proven_finite
        if (
            registry is not None and self.check_finite and out[0].size >= dispatch._PROOF_MIN_ELEMENTS
            and dispatch.products_finite(xp, g[0], weights, out[0].size)
        ):
            proven = _whole_memory(out[0])
            key = id(proven)  # the entry goes when the array does (the call runs as it is freed)
            registry[key] = weakref.ref(proven, lambda _, key=key: registry.pop(key, None))
        return out

    def scatter(self, g, index, shape, unique):
        value, ids = g[0], _wide(g[1])
        if unique:
            return self.scatter_unique((value, ids), index, shape)
        xp = backend.namespace(value)
        size = int(np.prod(shape, dtype=np.int64))
        positions = backend.flat_positions(xp, shape, index)
        value = xp.broadcast_to(value, positions.shape)
        ids = xp.broadcast_to(ids, positions.shape)
        out_v, out_i = dispatch.scatter(xp, positions, value, ids, size)
        return out_v.reshape(shape), out_i.reshape(shape)

    def map(self, g, fn):
        return fn(g[0]), fn(g[1])

    def enter(self, g, node, base):
        value, ids = g
        xp = backend.namespace(value)
        if node.op is None:  # a leaf propagates nothing: only its backpointers are kept (the very
            # array of its value, which the sweep returns: a compact copy would add to it; it is
            # compact already where the vertex that feeds it made its own ids so, below)
            if self.check_finite and not self._known_finite(value) and not dispatch.all_finite(xp, value):
                check_finite(xp, value, node)
            return g, ids
        ids = _wide(ids)
        bound = self._id_bound
        if bound is None:  # (outside a sweep's copy: no bound, nothing compact)
            own, finite = dispatch.traced_vertex(xp, value, ids, base)
        else:
            end = base + value.size
            if end > bound:
                self._id_bound = end
            # a vertex with no path to the output stays a dead end: it must lose ties to real zero-valued paths
            if end <= bound <= _ids.COMPACT_BELOW and _feeds_a_leaf_only(node):
                # a reverse sweep (vertices enter in reverse creation order, so below the ids entered
                # before; a forward sweep's own ids go on to the vertex's consumers): its own ids go to
                # the leaf only, whose result they become, compact
                own, finite = dispatch.reference.vertex_ids(xp, ids, base, compact=True), None
            else:
                own, finite = dispatch.traced_vertex(xp, value, ids, base)
            # the backpointers, compact: every id in them names an element of a vertex entered before
            if ids.size >= _ids.COMPACT_MIN_ELEMENTS:  # (else kept as they are: :func:`semirad.ids.compact`)
                ids = self._compact(xp, ids, bound)
        if not finite and self.check_finite and not self._known_finite(value) and not dispatch.all_finite(xp, value):
            check_finite(xp, value, node)
        return (value, own), ids

    def _compact(self, xp, ids, bound: int):
        """:func:`semirad.ids.compact` of ``ids``, made once for an array that several vertices
        receive (both inputs of an ``add``, of a ``mul`` by the same gradient...); ``ids`` of at
        least :data:`~semirad.ids.COMPACT_MIN_ELEMENTS` (smaller ones stay as they are)."""
        cache = self._compacted
        key = id(ids)
        known = cache.get(key)
        if known is not None and known[0]() is ids:
            return known[1]
        kept = _ids.compact(xp, ids, bound)
        if kept is not ids:  # (the entry goes when ``ids`` does)
            cache[key] = (weakref.ref(ids, lambda _, key=key: cache.pop(key, None)), kept)
        return kept

    def _known_finite(self, value) -> bool:
        """Whether :meth:`matmul` proved ``value``, or the array it is a view of, finite in this
        sweep (values are never written in place during a sweep; numpy and cupy point a view's
        ``base`` at the array that owns the memory, so a view holds only elements of it)."""
        proven = self._proven_finite
        if not proven or value.size < dispatch._PROOF_MIN_ELEMENTS:  # small: a slice at most, checked as usual
            return False
        for candidate in (value, getattr(value, "base", None)):
            ref = proven.get(id(candidate)) if candidate is not None else None
            if ref is not None and ref() is candidate:
                return True
        return False


_INT32 = np.dtype(np.int32)
_FIRST = (0,)


def _wide(ids):
    """Propagated ids as int64 (:func:`semirad.ids.widen`: a vertex's own ids may be compact)."""
    return ids if ids.dtype is not _INT32 else _ids.widen(ids)


def _feeds_a_leaf_only(node) -> bool:
    """Whether the one input of ``node`` is a leaf with as many elements: its own ids then reach
    that leaf (an index map or an elementwise op moves them; any other rule widens them first)."""
    parents = getattr(node, "parents", ())  # (a forward sweep's leaf seeds have none)
    if len(parents) != 1:
        return False
    parent = parents[0]
    return parent is not None and parent.op is None and math.prod(parent.shape) == math.prod(node.shape)


def _whole_memory(array):
    """``array``'s base where ``array`` is a contiguous view of all of it (a reshape), else ``array``:
    proving one proves the other."""
    base = getattr(array, "base", None)
    if (
        base is not None
        and getattr(base, "size", None) == array.size
        and getattr(base, "base", 0) is None
        and (array.flags.c_contiguous or array.flags.f_contiguous)
    ):
        return base
    return array
