"""Selection by index along one axis: ``take_along_axis``/``gather``, ``sort``, ``topk``, and the
integer-valued ``argsort``, ``argmax``, ``argmin``.

One op does the differentiable part: :class:`TakeAlong`, ``out = x[grid]`` where ``grid`` is an
advanced index that picks, for every output element, one element of ``x`` (the index array along the
axis, open ``arange`` grids along the others). Its scalar graph is one edge of weight 1 per output
element, and its backward the semiring's ⊕-scatter of ``g`` by the same index (repeats meet with
⊕). ``sort`` and ``topk`` are that op with the permutation numpy's stable ``argsort`` computes (no
repeats: a scatter without ⊕); the indices themselves are integer tensors outside the graph.

Ties are ordered by position, as a stable sort does (PyTorch's ``sort(stable=True)``, and in practice
its CPU ``sort``); NaN sorts above every number (last ascending, first descending), as PyTorch's.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from .. import backend
from ..readonly import freeze
from . import index as I
from .core import OpError, OpIndexError, apply, normalize_axes, tensor_type

#: what ``Tensor.sort`` and ``Tensor.topk`` return, as ``torch.return_types.sort`` / ``topk``
SortResult = namedtuple("sort", ["values", "indices"])
TopKResult = namedtuple("topk", ["values", "indices"])


class TakeAlong(I.GetItem):
    """``x[grid]`` for an advanced index ``grid`` built by :func:`along_axis_grid`; backward
    ``S.scatter(g, grid, x.shape, unique)``: ``unique`` where ``grid`` is a permutation (sort, topk)."""

    def __init__(self, name: str, unique: bool):
        self.name, self.unique = name, unique

    def backward(self, ctx, g, S, needs):
        return (S.scatter(g, ctx.params["index"], ctx.shapes[0], unique=self.unique),)


# fmt: off
TAKE_ALONG_AXIS = TakeAlong("take_along_axis", unique=False)
GATHER          = TakeAlong("gather", unique=False)
SORT            = TakeAlong("sort", unique=True)
TOPK            = TakeAlong("topk", unique=True)
# fmt: on


def _t(x):
    Tensor = tensor_type()
    return x if isinstance(x, Tensor) else Tensor(x)


def _integer_tensor(xp, array):
    """A non-differentiable int64 tensor (argsort, argmax... and the indices of sort and topk)."""
    return tensor_type()._wrap(freeze(xp.asarray(array).astype(np.int64, copy=False)), None)


def _index_array(indices, op_name: str, xp):
    """The caller's index (tensor, array or nested list) as an integer array, checked."""
    if isinstance(indices, tensor_type()):
        indices = indices.data
    indices = xp.asarray(indices)
    if indices.dtype.kind not in "iu":
        raise OpIndexError(f"{op_name}: indices must be an integer array, got dtype {indices.dtype}")
    return indices


def _check_range(indices, n: int, op_name: str, shape: tuple, negative: bool):
    """``indices`` along an axis of size ``n``: in ``[-n, n)`` (numpy) or ``[0, n)`` (PyTorch); negative
    ones counted from the end. The error names the op, the bad index and the shape."""
    low = -n if negative else 0
    if indices.size:
        smallest, largest = int(indices.min()), int(indices.max())
        bad = smallest if smallest < low else largest if largest >= n else None
        if bad is not None:
            raise OpIndexError(f"{op_name}: index {bad} is out of bounds for an axis of size {n} (input shape {shape})")
    return indices % n if negative and indices.size and n else indices


def along_axis_grid(xp, indices, axis: int, sizes: tuple) -> tuple:
    """The advanced index ``grid`` with ``x[grid][i] = x[i_0, ..., indices[i], ..., i_last]``: ``indices``
    at ``axis``, ``arange(sizes[d])`` shaped to broadcast along every other axis ``d``.

    >>> [g.tolist() for g in along_axis_grid(np, np.array([[2], [0]]), 1, (2, 1))]
    [[[0], [1]], [[2], [0]]]
    """
    ndim = len(sizes)
    grid = []
    for d, n in enumerate(sizes):
        if d == axis:
            grid.append(freeze(indices))
        else:
            grid.append(freeze(xp.arange(n).reshape((1,) * d + (n,) + (1,) * (ndim - d - 1))))
    return tuple(grid)


def take_along_axis(arr, indices, axis: int | None = -1):
    """numpy's ``take_along_axis``: ``out[..., i, ...] = arr[..., indices[..., i, ...], ...]`` along
    ``axis`` (``None``: of the flattened array, with 1-D ``indices``); the other axes of ``indices``
    broadcast against ``arr``'s. Negative indices count from the end. Each output element is an edge
    of weight 1 from the element it picks; an element picked twice gets both (⊕).

    >>> import semirad as sr
    >>> x = sr.tensor([[10.0, 30.0, 20.0]], requires_grad=True)
    >>> y = sr.take_along_axis(x, np.array([[1, 1, -1]]), axis=1)
    >>> y.tolist(), sr.grad(y.sum(), [x])[0].tolist()
    ([[30.0, 30.0, 20.0]], [[0.0, 2.0, 1.0]])
    """
    x = _t(arr)
    xp = backend.namespace(x.data)
    indices = _index_array(indices, "take_along_axis", xp)
    if axis is None:
        if indices.ndim != 1:
            raise OpError(f"take_along_axis: with axis=None the indices must be 1-D, got shape {indices.shape}")
        x = apply(I.RESHAPE, x, shape=(-1,))
        axis = 0
    if indices.ndim != x.ndim:
        raise OpError(
            f"take_along_axis: indices of shape {indices.shape} and the input of shape {x.shape} must have the "
            "same number of dimensions"
        )
    (axis,) = normalize_axes(_int_axis(axis, "take_along_axis"), x.ndim, "take_along_axis", x.shape)
    others = [(n, m) for d, (n, m) in enumerate(zip(x.shape, indices.shape)) if d != axis]
    if any(n != m and 1 not in (n, m) for n, m in others):
        raise OpError(
            f"take_along_axis: indices of shape {indices.shape} do not broadcast against the input of shape "
            f"{x.shape} along the axes other than {axis}"
        )
    indices = _check_range(indices, x.shape[axis], "take_along_axis", x.shape, negative=True)
    if x.shape[axis] == 0 and indices.size:
        raise OpIndexError(f"take_along_axis: cannot take from an empty axis {axis} of shape {x.shape}")
    sizes = tuple(x.shape[d] if d != axis else 0 for d in range(x.ndim))
    return apply(TAKE_ALONG_AXIS, x, index=along_axis_grid(xp, indices, axis, sizes))


def gather(x, dim: int, index):
    """PyTorch's ``gather``: ``out[i][j][k] = x[index[i][j][k]][j][k]`` for ``dim=0`` (and so on); the
    output has ``index``'s shape, which may be smaller than ``x``'s along the other axes (never larger).
    Indices must lie in ``[0, x.shape[dim])``. Backward: a ⊕-scatter, repeats meeting with ⊕.

    >>> import semirad as sr
    >>> gather(sr.tensor([[1.0, 2.0], [3.0, 4.0]]), 1, np.array([[0, 0], [1, 0]])).tolist()
    [[1.0, 1.0], [4.0, 3.0]]
    """
    x = _t(x)
    xp = backend.namespace(x.data)
    index = _index_array(index, "Tensor.gather", xp)
    if index.ndim != max(x.ndim, 1) and not (x.ndim == 0 and index.ndim == 0):
        raise OpError(
            f"Tensor.gather: index of shape {index.shape} and the input of shape {x.shape} must have the same "
            "number of dimensions"
        )
    if x.ndim == 0:  # PyTorch: a 0-d input takes a 0-d or 1-element index of 0
        x = apply(I.RESHAPE, x, shape=(1,))
        out_shape = index.shape
        index = index.reshape(-1)
    else:
        out_shape = None
    (d,) = normalize_axes(_int_axis(dim, "Tensor.gather"), x.ndim, "Tensor.gather", x.shape)
    if any(m > n for k, (n, m) in enumerate(zip(x.shape, index.shape)) if k != d):
        raise OpError(
            f"Tensor.gather: index of shape {index.shape} is larger than the input of shape {x.shape} along an "
            f"axis other than dim {d}"
        )
    index = _check_range(index, x.shape[d], "Tensor.gather", x.shape, negative=False)
    out = apply(GATHER, x, index=along_axis_grid(xp, index, d, index.shape))
    return out if out_shape is None else apply(I.RESHAPE, out, shape=out_shape)


def _int_axis(axis, op_name: str) -> int:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise OpError(f"{op_name}: the axis must be an int, got {axis!r}")
    return int(axis)


# -- sorting --------------------------------------------------------------------------------------


def sort_order(xp, data, axis: int, descending: bool = False):
    """The permutation that sorts ``data`` along ``axis``, stable: ties in their order of position in
    both directions; NaN last ascending and first descending (as PyTorch). Descending sorts the reversed
    array ascending and reverses the result, so that ties keep their order.

    >>> sort_order(np, np.array([2.0, np.nan, 1.0, 2.0]), 0, descending=True).tolist()
    [1, 0, 3, 2]
    """
    if not descending:
        return xp.argsort(data, axis=axis, kind="stable")
    n = data.shape[axis]
    reversed_order = xp.argsort(xp.flip(data, axis), axis=axis, kind="stable")
    return xp.flip((n - 1) - reversed_order, axis)


def _sorted_along(x, axis: int, descending: bool, op, k: int | None = None):
    """``(values, indices)``: ``x`` sorted along ``axis`` (its first ``k`` there), values through ``op``."""
    xp = backend.namespace(x.data)
    order = sort_order(xp, x.data, axis, descending)
    if k is not None:
        order = order[(slice(None),) * axis + (slice(0, k),)]
    values = apply(op, x, index=along_axis_grid(xp, order, axis, order.shape))
    return values, _integer_tensor(xp, order)


def _axis_or_flat(x, axis, op_name: str, zero_d_as_1d: bool = False):
    """``(x, axis)``; ``axis=None`` flattens ``x`` (numpy), as does a 0-d ``x`` with ``zero_d_as_1d``
    (numpy's ``argsort`` takes a 0-d array as 1-D, its ``sort`` refuses an axis of it)."""
    if axis is None or (x.ndim == 0 and zero_d_as_1d):
        if axis is not None:
            normalize_axes(_int_axis(axis, op_name), 1, op_name, x.shape)
        return apply(I.RESHAPE, x, shape=(-1,)), 0
    return x, normalize_axes(_int_axis(axis, op_name), x.ndim, op_name, x.shape)[0]


def sort(a, axis: int | None = -1, kind: str | None = None, *, stable: bool | None = None):
    """numpy's ``sort``: a sorted copy along ``axis`` (``None``: of the flattened array). The values are
    differentiable: each output element is an edge of weight 1 from the element that lands there.
    The sort is stable whatever ``kind``/``stable`` say (equal values keep their order, so the
    gradient of tied elements goes where a stable sort puts them); NaN sorts last.

    >>> import semirad as sr
    >>> x = sr.tensor([3.0, 1.0, 2.0], requires_grad=True)
    >>> y = sr.sort(x)
    >>> y.tolist(), sr.grad((y * sr.tensor([1.0, 10.0, 100.0])).sum(), [x])[0].tolist()
    ([1.0, 2.0, 3.0], [100.0, 1.0, 10.0])
    """
    x, axis = _axis_or_flat(_t(a), axis, "sort")
    return _sorted_along(x, axis, False, SORT)[0]


def argsort(a, axis: int | None = -1, kind: str | None = None, *, stable: bool | None = None):
    """numpy's ``argsort`` (stable whatever ``kind`` says): an integer tensor, outside the graph.

    >>> import semirad as sr
    >>> sr.argsort(sr.tensor([3.0, 1.0, 2.0, 1.0])).tolist()
    [1, 3, 2, 0]
    """
    x, axis = _axis_or_flat(_t(a), axis, "argsort", zero_d_as_1d=True)
    return _integer_tensor(backend.namespace(x.data), sort_order(backend.namespace(x.data), x.data, axis))


def sort_with_indices(x, dim: int = -1, descending: bool = False):
    """``Tensor.sort``: ``(values, indices)`` along ``dim`` as PyTorch's (a 0-d tensor sorts to itself).

    >>> import semirad as sr
    >>> sort_with_indices(sr.tensor([[2.0, 1.0, 2.0]]), descending=True)
    sort(values=tensor([[2., 2., 1.]]), indices=tensor([[0, 2, 1]]))
    """
    x, method = _t(x), "Tensor.sort"
    if x.ndim == 0:
        normalize_axes(_int_axis(dim, method), 1, method, x.shape)
        flat, _ = _sorted_along(apply(I.RESHAPE, x, shape=(1,)), 0, descending, SORT)
        xp = backend.namespace(x.data)
        return SortResult(apply(I.RESHAPE, flat, shape=()), _integer_tensor(xp, xp.zeros((), np.int64)))
    (d,) = normalize_axes(_int_axis(dim, method), x.ndim, method, x.shape)
    return SortResult(*_sorted_along(x, d, descending, SORT))


def argsort_dim(x, dim: int = -1, descending: bool = False):
    """``Tensor.argsort``: the permutation that sorts along ``dim`` (stable), an integer tensor; no op is
    recorded.

    >>> import semirad as sr
    >>> argsort_dim(sr.tensor([[2.0, 1.0, 2.0]]), descending=True).tolist()
    [[0, 2, 1]]
    """
    x = _t(x)
    xp = backend.namespace(x.data)
    (d,) = normalize_axes(_int_axis(dim, "Tensor.argsort"), max(x.ndim, 1), "Tensor.argsort", x.shape)
    if x.ndim == 0:
        return _integer_tensor(xp, xp.zeros((), np.int64))
    return _integer_tensor(xp, sort_order(xp, x.data, d, descending))


def topk(x, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):  # noqa: A002 - PyTorch's name
    """``Tensor.topk``: the ``k`` largest (``largest=False``: smallest) elements along ``dim`` and their
    indices, best first (also with ``sorted=False``, which PyTorch leaves unordered). Ties go to the
    lower index (PyTorch does not say which of equal elements it returns).

    >>> import semirad as sr
    >>> topk(sr.tensor([1.0, 5.0, 3.0, 5.0]), 2)
    topk(values=tensor([5., 5.]), indices=tensor([1, 3]))
    """
    x = _t(x)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise OpError(f"Tensor.topk: k must be an int, got {k!r}")
    source = apply(I.RESHAPE, x, shape=(1,)) if x.ndim == 0 else x
    (d,) = normalize_axes(_int_axis(dim, "Tensor.topk"), source.ndim, "Tensor.topk", x.shape)
    if not 0 <= k <= source.shape[d]:
        raise OpIndexError(f"Tensor.topk: k={k} is out of range for dim {dim} of a tensor of shape {x.shape}")
    values, indices = _sorted_along(source, d, bool(largest), TOPK, int(k))
    if x.ndim == 0 and k == 1:  # PyTorch: a 0-d tensor's top 1 is 0-d
        values, indices = apply(I.RESHAPE, values, shape=()), _integer_tensor(np, indices.data.reshape(()))
    return TopKResult(values, indices)


# -- argmax / argmin ------------------------------------------------------------------------------


def arg_extremum(a, axis, keepdims: bool, largest: bool, op_name: str):
    """The index of the first largest (smallest) element along ``axis`` (``None``: flat index; with
    ``keepdims`` every axis kept with length 1), as numpy's ``argmax`` and PyTorch's (which agree)."""
    x = _t(a)
    xp = backend.namespace(x.data)
    if axis is not None:
        axis = normalize_axes(_int_axis(axis, op_name), max(x.ndim, 1), op_name, x.shape)[0]
    try:
        out = (xp.argmax if largest else xp.argmin)(x.data, axis=axis, keepdims=bool(keepdims))
    except ValueError as error:  # an empty axis
        raise OpError(f"{op_name}: {error} (input shape {x.shape})") from None
    return _integer_tensor(xp, out)


def argmax(a, axis: int | None = None, *, keepdims: bool = False):
    """numpy's ``argmax``: the index of the first largest element along ``axis`` (``None``: of the
    flattened array); NaN counts as the largest. An integer tensor, outside the graph.

    >>> import semirad as sr
    >>> x = sr.tensor([[1.0, 3.0], [4.0, 2.0]])
    >>> sr.argmax(x).item(), sr.argmax(x, axis=1).tolist()
    (2, [1, 0])
    """
    return arg_extremum(a, axis, keepdims, True, "argmax")


def argmin(a, axis: int | None = None, *, keepdims: bool = False):
    """numpy's ``argmin``: the index of the first smallest element along ``axis`` (``None``: of the
    flattened array); NaN counts as the smallest. An integer tensor, outside the graph.

    >>> import semirad as sr
    >>> sr.argmin(sr.tensor([[1.0, 3.0], [0.0, 4.0]]), axis=0, keepdims=True).tolist()
    [[1, 0]]
    """
    return arg_extremum(a, axis, keepdims, False, "argmin")
