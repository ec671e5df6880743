"""The shared core of the path semirings that rank paths: LogMaxAbs (k = 1) and KBest (k).

A value holds, for every element, a list of ``k`` paths ordered best first, as three arrays of
shape ``(k,) + element shape``:

* ``key``   — the path's magnitude: ``|product|`` (in the values' dtype, ``0`` for an empty slot),
  or, in the log domain, ``log |product|`` (float64, ``-inf`` for an empty slot),
* ``sign``  — the sign of the product (int8: -1, +1, and 0 where there is no path),
* ``code``  — where the path goes next: ``gid * k + rank``, the global vertex id of the next
  vertex and the rank (slot) of the path it continues with there; ``NO_PATH`` for an empty slot,
  ``END`` at the output.

KBest keeps ``|product|`` (bit-exact products, as MaxAbsProduct); LogMaxAbs keeps ``log |product|``
so that a chain of thousands of small partials does not underflow. Paths are ordered by ``key``
descending, then by ``code`` ascending (the successor vertex created first, as in MaxAbsProduct,
then its better-ranked path); the sort is stable otherwise. An edge whose partial is exactly 0 is
not an edge: ``scale`` turns it into an empty slot (so does a product that underflows to 0).
Invariant: ``key`` is the empty key exactly where ``code == NO_PATH``.

Before a node's backward, :meth:`Ranked.enter` keeps the incoming codes as the node's
backpointers and re-seeds every slot with the code of *this* vertex and slot, so whatever an op
does to the value, each path arrives at an input carrying the code of the output slot it came
through (the same trick as MaxAbsProduct's ids, with a rank added).
"""

from __future__ import annotations

import copy

import numpy as np

from .. import backend
from .. import ids as _ids
from ..axes import canonical_axes
from .base import Semiring, check_finite


def select(xp, key, sign, code, k: int, empty: float, axis: int = -1):
    """The ``k`` best candidates along ``axis`` (key desc, then code asc; stable otherwise).

    Returns three arrays with ``axis`` replaced by ``k`` (empty slots padded at the end).
    """
    axis = axis % key.ndim
    m = key.shape[axis]
    if m == 0 or m < k:
        pad = key.shape[:axis] + (k - m,) + key.shape[axis + 1 :]
        fill = (xp.full(pad, empty, dtype=key.dtype), xp.zeros(pad, dtype=np.int8),
                xp.full(pad, backend.NO_PATH, dtype=np.int64))  # fmt: skip
        if m == 0:
            return fill
        best = select(xp, key, sign, code, m, empty, axis)
        return tuple(xp.concatenate([a, f], axis=axis) for a, f in zip(best, fill, strict=True))
    if k == 1:
        at = xp.expand_dims(key.argmax(axis=axis), axis)  # the first maximum...
        best = xp.take_along_axis(key, at, axis=axis)
        tied = key == best
        ambiguous = (tied.sum(axis=axis, keepdims=True) > 1) & (best != empty)
        if bool(ambiguous.any()):  # ...unless another candidate ties it: then the smallest code
            first = xp.where(tied, code, backend.NO_PATH).min(axis=axis, keepdims=True)
            at = xp.expand_dims((tied & (code == first)).argmax(axis=axis), axis)
        return tuple(xp.take_along_axis(a, at, axis=axis) for a in (key, sign, code))
    by_code = xp.argsort(code, axis=axis, kind="stable")
    key_c = xp.take_along_axis(key, by_code, axis=axis)
    order = xp.argsort(-key_c, axis=axis, kind="stable")
    at = xp.take_along_axis(by_code, xp.moveaxis(xp.moveaxis(order, axis, 0)[:k], 0, axis), axis=axis)
    return tuple(xp.take_along_axis(a, at, axis=axis) for a in (key, sign, code))


class Ranked(Semiring):
    """Base of LogMaxAbs and KBest: the ``k`` best paths of every element.

    ``log_domain`` picks the key: ``log |product|`` (float64) or ``|product|`` (the values' dtype).
    """

    #: check every vertex for NaN/+inf (ranking silently compares NaN otherwise)
    check_finite = True
    lead_axes = 1  # the k slots
    #: the path protocol (:class:`~semirad.semirings.Semiring`): ``code`` holds the backpointers
    #: (kept by an :meth:`enter` of this class's own, compact), ``k`` paths per element
    path_component = 2
    #: during a sweep (in the copy :meth:`for_sweep` makes): one past the largest element id entered
    #: so far (0 before the output), so that the codes kept at a vertex can be :func:`~semirad.ids.compact`
    _id_bound: int | None = None

    def __init__(self, k: int = 1, log_domain: bool = False):
        if isinstance(k, bool) or int(k) != k or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        self.k = int(k)
        self.log_domain = bool(log_domain)
        self.empty = -np.inf if log_domain else 0.0

    # -- the key of an edge weight, and ⊗ on keys ---------------------------------------------
    def weight_key(self, xp, weights):
        """``(key, sign)`` of an edge weight: ``log |w|`` (float64) or ``|w|``; sign as int8.

        Python numbers stay Python numbers in the linear domain, so they do not promote float32.
        """
        if type(weights) in (int, float):
            sign = int(weights > 0) - int(weights < 0)
            if not self.log_domain:
                return abs(weights), sign
            return (float(np.log(abs(weights))) if weights else -np.inf), sign
        w = xp.asarray(weights)
        sign = xp.sign(w).astype(np.int8)
        if not self.log_domain:
            return xp.abs(w), sign
        with np.errstate(divide="ignore"):
            return xp.log(xp.abs(w).astype(np.float64)), sign

    def _times_key(self, a, b):
        return a + b if self.log_domain else a * b

    # -- values -------------------------------------------------------------------------------
    def zeros(self, xp, shape, dtype):
        shape = (self.k,) + tuple(shape)
        dtype = np.float64 if self.log_domain or dtype is None else dtype
        return (xp.full(shape, self.empty, dtype=dtype), xp.zeros(shape, dtype=np.int8),
                xp.full(shape, backend.NO_PATH, dtype=np.int64))  # fmt: skip

    def seed(self, array):
        """Slot 0 holds the seed itself, a path that ends here; a seed of 0 is no path."""
        xp = backend.namespace(array)
        key, sign = self.weight_key(xp, array)
        out = self.zeros(xp, array.shape, key.dtype)
        out[0][0], out[1][0] = key, sign
        out[2][0] = xp.where(key == self.empty, backend.NO_PATH, backend.END)
        return out

    def shape(self, g):
        return tuple(g[0].shape[1:])

    # -- primitives ---------------------------------------------------------------------------
    def add(self, a, b):
        xp = backend.namespace(a[0], b[0])
        if self.k == 1:
            take_b = (b[0] > a[0]) | ((b[0] == a[0]) & (b[2] < a[2]))
            return tuple(xp.where(take_b, y, x) for x, y in zip(a, b, strict=True))
        both = [xp.moveaxis(xp.concatenate([x, y], axis=0), 0, -1) for x, y in zip(a, b, strict=True)]
        return tuple(xp.moveaxis(t, -1, 0) for t in select(xp, *both, self.k, self.empty))

    def scale(self, g, weights):
        key, sign, code = g
        xp = backend.namespace(key)
        w_key, w_sign = self.weight_key(xp, weights)
        extra = getattr(w_key, "ndim", 0) - (key.ndim - 1)
        if extra > 0:  # weights with more axes than the value: broadcast the value first
            key, sign, code = (a.reshape((self.k,) + (1,) * extra + a.shape[1:]) for a in (key, sign, code))
        out_key = self._times_key(key, w_key)
        out_sign = (sign * w_sign).astype(np.int8, copy=False)
        out_code = xp.where(out_key == self.empty, backend.NO_PATH, code)
        return out_key, out_sign, out_code

    def sum(self, g, axes, keepdims=False):
        xp = backend.namespace(g[0])
        ndim = g[0].ndim - 1
        axes = canonical_axes(axes, ndim)
        if not axes:
            return g
        shape = g[0].shape[1:]
        kept = [d for d in range(ndim) if d not in axes]
        kept_shape = tuple(shape[d] for d in kept)
        perm = [d + 1 for d in kept] + [0] + [d + 1 for d in axes]
        flat = [xp.broadcast_to(a, g[0].shape).transpose(perm).reshape(kept_shape + (-1,)) for a in g]
        out = [xp.moveaxis(a, -1, 0) for a in select(xp, *flat, self.k, self.empty)]
        if keepdims:
            full = (self.k,) + tuple(1 if d in axes else n for d, n in enumerate(shape))
            out = [a.reshape(full) for a in out]
        return tuple(out)

    def matmul(self, g, weights):
        key, sign, code = g
        xp = backend.namespace(key, weights)
        k = self.k
        w_key, w_sign = self.weight_key(xp, weights)
        batch = np.broadcast_shapes(key.shape[1:-2], w_key.shape[:-2])
        m, n = key.shape[-2:]
        p = w_key.shape[-1]
        src = [xp.moveaxis(xp.broadcast_to(a, (k,) + batch + (m, n)).reshape(k, -1, m, n), 0, 1)
               for a in (key, sign, code)]  # fmt: skip  # (B, k, m, n)
        wk = xp.broadcast_to(w_key, batch + (n, p)).reshape(-1, n, p)
        ws = xp.broadcast_to(w_sign, batch + (n, p)).reshape(-1, n, p)
        nb = src[0].shape[0]
        out = (xp.empty((nb, k, m, p), dtype=np.result_type(key.dtype, w_key.dtype)),
               xp.empty((nb, k, m, p), dtype=np.int8), xp.empty((nb, k, m, p), dtype=np.int64))  # fmt: skip
        blocks = backend.row_blocks(m, n * p)
        for b in range(nb):
            for rows in blocks:
                g_chunk = [a[b, :, rows] for a in src]  # (k, R, n)
                best = self._contract(xp, g_chunk, wk[b], ws[b])  # (R, p, k)
                for o, a in zip(out, best, strict=True):
                    o[b, :, rows] = xp.moveaxis(a, -1, 0)
        shape = (k,) + batch + (m, p)
        return tuple(xp.moveaxis(a, 1, 0).reshape(shape) for a in out)

    def _contract(self, xp, g, wk, ws):
        """``out[i, q]``: the ``k`` best of ``g[r, i, j] ⊗ W[j, q]`` over ``(r, j)``, shape ``(R, p, k)``.

        Candidates of slot 0 decide which columns ``j`` can matter: a slot-``r`` path through ``j``
        is never better than the slot-0 path through ``j``, so every one of the ``k`` best goes
        through a column whose slot-0 candidate is among the ``k`` best slot-0 candidates. Only
        those ``k`` columns are ranked in full (all of them when ties make the choice ambiguous).
        """
        k, (R, n), p = self.k, g[0].shape[1:], wk.shape[-1]
        key0 = self._times_key(g[0][0][:, :, None], wk[None])  # (R, n, p)
        if k == 1:
            code0 = xp.where(key0 == self.empty, backend.NO_PATH, g[2][0][:, :, None])
            best = select(xp, key0, g[1][0][:, :, None] * ws[None], code0, 1, self.empty, axis=1)
            return tuple(xp.moveaxis(a, 1, -1) for a in best)
        cols = None
        if n > k:
            part = xp.partition(key0, n - k, axis=1)
            threshold = part[:, n - k : n - k + 1]  # the k-th best slot-0 key, (R, 1, p)
            exact = ((key0 >= threshold).sum(axis=1) == k) | (threshold[:, 0] == self.empty)
            if bool(exact.all()):
                cols = xp.argpartition(key0, n - k, axis=1)[:, n - k :]  # (R, k, p)
        if cols is None:
            cols = xp.broadcast_to(xp.arange(n)[None, :, None], (R, n, p))
        i = xp.arange(R)[:, None, None]
        q = xp.arange(p)[None, None, :]
        c_key = self._times_key(g[0][:, i, cols], wk[cols, q][None])  # (k, R, c, p)
        c_sign = g[1][:, i, cols] * ws[cols, q][None]
        c_code = xp.where(c_key == self.empty, backend.NO_PATH, g[2][:, i, cols])
        c = cols.shape[1]
        flat = [a.transpose(1, 3, 0, 2).reshape(R, p, k * c) for a in (c_key, c_sign, c_code)]
        return select(xp, *flat, k, self.empty)

    def scatter(self, g, index, shape, unique):
        xp = backend.namespace(g[0])
        if unique:
            return self.scatter_unique(g, index, shape, lead=self.lead_axes)
        k = self.k
        size = int(np.prod(shape, dtype=np.int64))
        positions = backend.flat_positions(xp, shape, index)
        src = [xp.broadcast_to(a, (k,) + positions.shape).reshape(k, -1) for a in g]
        out = [a.reshape(k, size) for a in self.zeros(xp, (size,), g[0].dtype)]
        pos = positions.reshape(-1)
        if pos.size:
            key, sign, code = (a.reshape(-1) for a in src)
            pos = xp.broadcast_to(pos, (k, pos.size)).reshape(-1)
            keys = (code, -key, pos)  # the last key sorts first: by position, then key desc, then code
            order = xp.lexsort(keys if xp is np else xp.stack([a.astype(np.float64) for a in keys]))
            sorted_pos = pos[order]
            rank = xp.arange(order.size) - xp.searchsorted(sorted_pos, sorted_pos, side="left")
            keep = rank < k
            chosen, at_rank, at_pos = order[keep], rank[keep], sorted_pos[keep]
            for o, a in zip(out, (key, sign, code), strict=True):
                o[at_rank, at_pos] = a[chosen]
        return tuple(a.reshape((k,) + tuple(shape)) for a in out)

    def map(self, g, fn):
        xp = backend.namespace(g[0])
        if self.k == 1:
            return tuple(fn(a[0])[None] for a in g)
        return tuple(xp.stack([fn(a[r]) for r in range(self.k)]) for a in g)

    # -- hooks --------------------------------------------------------------------------------
    def for_sweep(self):
        """A copy that tracks the ids entered (so the codes it keeps can be compact)."""
        fresh = copy.copy(self)
        fresh._id_bound = 0
        return fresh

    def backpointers(self, kept):
        """What :meth:`enter` kept for a vertex (``sweep.kept[node]``, or any selection of it) as
        int64 codes ``gid * k + rank``, ``NO_PATH`` and ``END`` as in :mod:`semirad.ids`: the one
        way to read them (a sweep keeps them as int32 where its codes fit, :func:`semirad.ids.compact`)."""
        return _ids.widen(kept)

    def rank_edges(self, weights):
        """Parallel edges in the order the sweep ranks the paths through them: an edge of weight 0
        is no edge; the largest ``log |w|`` (float64) first, ties in slot order.

        >>> Ranked(2).rank_edges([1.0, 0.0, -3.0, 3.0])
        [-3.0, 3.0, 1.0]
        """
        kept = [w for w in weights if w != 0]
        return sorted(kept, key=lambda w: -float(np.log(np.abs(np.float64(w)))))  # stable: slot order on ties

    def enter(self, g, node, base):
        key, sign, code = g
        xp = backend.namespace(key)
        if self.check_finite:
            check_finite(xp, xp.where(key == -np.inf, 0.0, key) if self.log_domain else key, node)
        ids = backend.element_ids(xp, base, key.shape[1:]) * self.k
        ranks = xp.arange(self.k, dtype=np.int64).reshape((self.k,) + (1,) * (key.ndim - 1))
        fresh = xp.where(key == self.empty, backend.NO_PATH, ids[None] + ranks)
        bound = self._id_bound
        if bound is not None and node.op is not None:  # (a leaf's codes are its value's, returned: kept as they are)
            end = base + ids.size
            self._id_bound = end if end > bound else bound
            code = _ids.compact(xp, code, bound * self.k)  # every code names a vertex entered before
        return (key, sign, fresh), code

    # -- ⊗ of two values (not used by the sweep; for the semiring laws and for users) ----------
    def times(self, a, b):
        """``a ⊗ b`` elementwise: the ``k`` best concatenations of a path of ``a`` with one of ``b``.

        The code (where the path goes next) is taken from ``b``, as when the sweep extends the
        paths of a successor ``b`` by an edge ``a`` (``scale(b, w) == times(seed(w), b)``).
        """
        xp = backend.namespace(a[0], b[0])
        key = self._times_key(a[0][:, None], b[0][None, :])  # (k, k, ...)
        sign = a[1][:, None] * b[1][None, :]
        code = xp.where(key == self.empty, backend.NO_PATH, b[2][None, :])
        cand = [xp.moveaxis(t.reshape((self.k * self.k,) + t.shape[2:]), 0, -1) for t in (key, sign, code)]
        return tuple(xp.moveaxis(t, -1, 0) for t in select(xp, *cand, self.k, self.empty))

    def one(self, xp, shape):
        """The ⊗-identity: one path of product 1 (it ends here)."""
        return self.seed(xp.ones(shape))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.k})"
