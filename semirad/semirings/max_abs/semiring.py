"""MaxAbsProduct: gradient tracing (⊕ = keep the larger |value|, ⊗ = signed ×), with backpointers.

A value is a pair ``(value, ids)``: ``value`` is the signed product of the best path found so far
and ``ids`` the global id of the vertex that path goes to next. Before a node's backward the
sweep calls :meth:`MaxAbsProduct.enter`, which stores the node's backpointers and replaces the
``ids`` by the node's own element ids, so whatever the op's rule does to the pair, each winning
contribution arrives at an input carrying the id of the output element it came through.

Ties (equal ``|value|``) go to the smaller id: the successor vertex created first (earliest op
in recording order, then the lowest C-order flat index within it).
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
        return a[0] * b[0], xp.where(a[1] == backend.NO_PATH, backend.NO_PATH, b[1])

    def for_sweep(self):
        """A copy with its own record of values proven finite (the sweep's state stays out of ``self``)."""
        fresh = copy.copy(self)
        fresh._proven_finite = {}  # id -> weakref of values known finite without a pass over them
        fresh._id_bound = 0
        return fresh

    def backpointers(self, kept):
        """What :meth:`enter` kept for a vertex (``sweep.kept[node]``, or any selection of it), as
        int64 global ids of the next vertex, ``NO_PATH`` and ``END`` as in :mod:`semirad.ids`: the
        one way to read them (a sweep keeps them as int32 where its ids fit, :func:`semirad.ids.compact`).

        >>> import semirad as sr
        >>> x = sr.tensor([1.0, -2.0], requires_grad=True)   # ids 0 and 1
        >>> h = x * 3.0                                      # ids 2 and 3
        >>> tr = sr.trace(h.sum(), [x])                      # the output: id 4
        >>> kept = tr.sweep.kept[h._node]
        >>> kept.dtype.name, tr.semiring.backpointers(kept).tolist()
        ('int32', [4, 4])
        """
        return _ids.widen(kept)

    def shape(self, g):
        return g[0].shape

    def to_array(self, g, dtype):
        return g[0].astype(dtype, copy=False)

    def add(self, a, b):
        return dispatch.add(backend.namespace(a[0], b[0]), a[0], a[1], b[0], b[1])

    def scale(self, g, weights):
        xp = backend.namespace(g[0])
        value = g[0] * weights
        ids = g[1] if value.shape == g[1].shape else fast.broadcast_to(xp, g[1], value.shape)
        return value, ids

    def sum(self, g, axes, keepdims=False):
        value, ids = g
        xp = backend.namespace(value)
        axes = canonical_axes(axes, value.ndim)
        if not axes:
            return g
        full = value.shape
        kept = [d for d in range(value.ndim) if d not in axes]
        kept_shape = tuple([full[d] for d in kept])
        shape = tuple([1 if d in axes else n for d, n in enumerate(full)]) if keepdims else kept_shape
        reduced = math.prod([full[a] for a in axes])
        if not reduced:  # nothing to reduce (a bias over an empty batch): no path
            return self.zeros(xp, shape, value.dtype)
        if ids.shape != full:
            ids = fast.broadcast_to(xp, ids, full)
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
        out = dispatch.matmul(xp, g[0], g[1], weights)
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
        if unique:
            return self.scatter_unique(g, index, shape)
        value, ids = g
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
        # a vertex with no path to the output stays a dead end: it must lose ties to real zero-valued paths
        own, finite = (None, None) if node.op is None else dispatch.traced_vertex(xp, value, ids, base)
        if self.check_finite and not finite and not self._known_finite(value) and not dispatch.all_finite(xp, value):
            check_finite(xp, value, node)
        if node.op is None:  # a leaf propagates nothing: only its backpointers are kept (the very
            return g, ids  # array of its value, which the sweep returns: a compact copy would add to it)
        # the backpointers, compact: every id in them names an element of a vertex entered before
        bound = self._id_bound
        if bound is not None:
            end = base + value.size
            self._id_bound = end if end > bound else bound
            ids = _ids.compact(xp, ids, bound)
        return (value, own), ids

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
