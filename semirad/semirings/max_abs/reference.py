"""MaxAbsProduct's algorithms in array operations (numpy or cupy): the reference that the compiled
kernels reproduce bit for bit and fall back to (:mod:`.dispatch` chooses).

Ties (equal ``|value|``) go to the smaller id; a dead end ``(0, NO_PATH)`` loses to a real path of
value 0. ``argmax`` takes the first occurrence, which is the smallest id because freshly seeded ids
increase along every axis in C order.
"""

from __future__ import annotations

import math

import numpy as np

from ... import backend, fast
from ...ids import NO_PATH, NO_PATH32

_ndarray = np.ndarray


def add(xp, a_values, a_ids, b_values, b_ids):
    """``⊕`` of two ``(values, ids)`` pairs of one shape: ``b`` where ``|b| > |a|``, or ``|b| == |a|``
    and ``b``'s id is the smaller, else ``a``.

    >>> v, i = add(np, np.array([1.0, -2.0]), np.array([5, 5]), np.array([-2.0, 2.0]), np.array([6, 4]))
    >>> v.tolist(), i.tolist()
    ([-2.0, 2.0], [6, 4])
    """
    abs_a, abs_b = xp.abs(a_values), xp.abs(b_values)
    take_b = (abs_b > abs_a) | ((abs_b == abs_a) & (b_ids < a_ids))
    return xp.where(take_b, b_values, a_values), xp.where(take_b, b_ids, a_ids)


def vertex_ids(xp, ids, base: int, compact: bool = False):
    """A traced vertex's own ids: ``base + flat index``, ``NO_PATH`` where ``ids`` (the int64
    successors of its best paths) is ``NO_PATH``, so that a dead end stays one. ``compact``: as
    int32 in the form of :func:`semirad.ids.compact` (``NO_PATH32`` for ``NO_PATH``), for a caller
    that knows ``base + ids.size`` is at most :data:`semirad.ids.COMPACT_BELOW`.

    >>> vertex_ids(np, np.array([7, NO_PATH]), 10).tolist() == [10, NO_PATH]
    True
    >>> vertex_ids(np, np.array([7, NO_PATH]), 10, compact=True).tolist()
    [10, -1]
    """
    if compact:
        own = xp.arange(base, base + ids.size, dtype=np.int32).reshape(ids.shape)
    else:
        own = backend.element_ids(xp, base, ids.shape)
    if ids.size and int(ids.max()) == NO_PATH:  # NO_PATH is the largest int64: one pass, no temporary
        own[ids == NO_PATH] = NO_PATH32 if compact else NO_PATH
    return own


def scatter(xp, positions, values, ids, size: int):
    """:func:`.dispatch.scatter` in plain array operations (one ``lexsort``): the algorithm
    that the compiled kernels must reproduce and fall back to.

    >>> v, i = scatter(np, np.array([1, 1, 0]), np.array([2., -2., 1.]), np.array([7, 5, 3]), 3)
    >>> v.tolist(), i.tolist()
    ([1.0, -2.0, 0.0], [3, 5, 9223372036854775807])
    """
    positions = positions.ravel()
    values = values.ravel()
    ids = ids.ravel()
    out_v = xp.zeros(size, dtype=values.dtype)
    out_i = xp.full(size, NO_PATH, dtype=np.int64)
    if positions.size == 0:
        return out_v, out_i
    # sort by position, then |value| descending (NaN last), then id ascending: the first of each run
    # wins. numpy takes the keys apart, so ids and positions compare as integers (cupy's lexsort
    # takes one array, where they compare as float64: the same order below 2**53, and NO_PATH last)
    keys = (ids, -xp.abs(values).astype(np.float64), positions)
    order = xp.lexsort(keys if xp is np else xp.stack(keys))
    sorted_pos = positions[order]
    first = xp.ones(sorted_pos.shape, dtype=bool)
    first[1:] = sorted_pos[1:] != sorted_pos[:-1]
    winners = order[first]
    out_v[positions[winners]] = values[winners]
    out_i[positions[winners]] = ids[winners]
    return out_v, out_i


def sum_rows(xp, values, ids):
    """:func:`.dispatch.sum_rows` in array operations (numpy or cupy); ``argmax`` decides for NaN."""
    best = xp.abs(values).argmax(axis=0)  # first occurrence = smallest id on ties
    cols = xp.arange(values.shape[1])
    out_v, out_i = values[best, cols], ids[best, cols]
    if not out_i.size or int(out_i.max()) != NO_PATH:
        return out_v, out_i
    first, found = first_real_path(xp, ids.T)
    fix = (out_i == NO_PATH) & found
    return xp.where(fix, values[first, cols], out_v), xp.where(fix, ids[first, cols], out_i)


def first_real_path(xp, ids):
    """Along the last axis of ``ids``: the index of the first id that is not ``NO_PATH``, and whether
    there is one. A dead end ``(0, NO_PATH)`` ties with a real path of value 0 and must lose, where
    first-occurrence argmax would take whichever comes first.

    >>> first, found = first_real_path(np, np.array([[NO_PATH, 7, 8], [NO_PATH, NO_PATH, NO_PATH]]))
    >>> first.tolist(), found.tolist()
    ([1, 0], [True, False])
    """
    real = ids != NO_PATH
    return real.argmax(axis=-1), real.any(axis=-1)


def real_paths_win_matmul_ties(xp, values, ids, weights, out_v, out_i):
    """Where the contraction picked a dead end, every product was 0 (a dead end's value is 0): the
    first real ``j`` of the row, if any, wins that tie instead."""
    batch = backend.broadcast_shapes(values.shape[:-2], weights.shape[:-2])
    m, n = values.shape[-2:]
    p = weights.shape[-1]
    values = xp.broadcast_to(values, batch + (m, n))
    ids = xp.broadcast_to(ids, batch + (m, n))
    first, found = first_real_path(xp, ids)  # batch + (m,)
    fix = (out_i == NO_PATH) & found[..., None]
    if not bool(fix.any()):
        return out_v, out_i
    j = first[..., None]
    rows = xp.take_along_axis(xp.broadcast_to(weights, batch + (n, p)), xp.broadcast_to(j, batch + (m, p)), axis=-2)
    candidate_v = xp.take_along_axis(values, j, axis=-1) * rows
    candidate_i = xp.take_along_axis(ids, j, axis=-1)
    return xp.where(fix, candidate_v, out_v).astype(out_v.dtype, copy=False), xp.where(fix, candidate_i, out_i)


def matmul_one_candidate(xp, values, ids, weights):
    """``n == 0``: no path; ``n == 1``: one product per output element, nothing to compare."""
    if values.ndim == 2 and weights.ndim == 2 and values.shape[1] and type(ids) is _ndarray and ids.flags.c_contiguous:
        # (m, 1) * (1, p), the weight gradient of W @ x: the ids' view built directly (numpy's
        # broadcast_to costs 4 µs, the general path below 3.4 µs more than the product at 10 x 10)
        out_i = _ndarray((values.shape[0], weights.shape[1]), ids.dtype, ids, 0, (ids.strides[0], 0))
        out_i.setflags(write=False)
        return values * weights, out_i
    batch = backend.broadcast_shapes(values.shape[:-2], weights.shape[:-2])
    shape = batch + (values.shape[-2], weights.shape[-1])
    dtype = backend.product_dtype(values, weights)
    if values.shape[-1] == 0:
        return xp.zeros(shape, dtype=dtype), xp.full(shape, NO_PATH, dtype=np.int64)
    out_v = values * weights  # (..., m, 1) * (..., 1, p)
    out_i = fast.broadcast_to(xp, ids, shape)  # ids broadcast against values (..., m, 1), hence to (..., m, p)
    return out_v, out_i


def matmul(xp, values, ids, weights):
    """The array reference of :func:`.dispatch.matmul` (numpy or cupy): chunked broadcasting.

    >>> v, i = matmul(np, np.array([[1., -3.]]), np.array([[10, 11]]), np.array([[2.], [1.]]))
    >>> v.tolist(), i.tolist()
    ([[-3.0]], [[11]])
    """
    batch = np.broadcast_shapes(values.shape[:-2], weights.shape[:-2])
    m, n = values.shape[-2:]
    p = weights.shape[-1]
    dtype = np.result_type(values.dtype, weights.dtype)
    if n == 0:
        return xp.zeros(batch + (m, p), dtype=dtype), xp.full(batch + (m, p), NO_PATH, dtype=np.int64)
    nb = math.prod(batch)
    v = xp.broadcast_to(values, batch + (m, n)).reshape(nb, m, n)
    i = xp.broadcast_to(ids, batch + (m, n)).reshape(nb, m, n)
    w = xp.broadcast_to(weights, batch + (n, p)).reshape(nb, n, p)
    out_v = xp.empty((nb, m, p), dtype=dtype)
    out_i = xp.empty((nb, m, p), dtype=np.int64)
    blocks = backend.row_blocks(m, n * p)
    for b in range(v.shape[0]):
        for rows in blocks:
            prod = v[b, rows, :, None] * w[b, None, :, :]  # (rows, n, p)
            best = xp.abs(prod).argmax(axis=1)  # (rows, p); first max on ties
            out_v[b, rows] = xp.take_along_axis(prod, best[:, None, :], axis=1)[:, 0, :]
            out_i[b, rows] = xp.take_along_axis(i[b, rows], best, axis=1)
    return out_v.reshape(batch + (m, p)), out_i.reshape(batch + (m, p))
