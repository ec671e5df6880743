"""Which implementation runs each of MaxAbsProduct's primitives: a compiled kernel (numba for numpy
arrays, :mod:`semirad.kernels.cuda` for cupy arrays) where it applies, else the array code of
:mod:`.reference`, which every kernel reproduces bit for bit. Also the finiteness checks a trace
makes at every vertex, and the proofs that spare it some.
"""

from __future__ import annotations

import math

import numpy as np

from ... import backend, kernels
from ...ids import NO_PATH
from . import reference

_ndarray = np.ndarray
_INT64 = np.dtype(np.int64)
_add_reduce = np.add.reduce
_KERNEL_DTYPES = kernels.DTYPES


#: traced vertices of strides other than C-contiguous below this many elements get their ids and finiteness
#: from one compiled pass, as C-contiguous ones of every size do (the strided pass is slower per element:
#: docs/design.md, "Thresholds")
_VERTEX_STRIDED_MAX = 1 << 11


#: results of at least this many elements are proven finite from their operands rather than checked
#: (measured: docs/design.md, "Thresholds")
_PROOF_MIN_ELEMENTS = 1 << 15


#: a max-abs contraction whose values or ids the kernel would copy into contiguous rows (views of
#: other strides) runs in blocks of rows that copy at most this many bytes each (:func:`_kernel_matmul`)
_PACK_BLOCK_BYTES = 1 << 20


_LARGEST_FLOAT = {np.dtype(t): float(np.finfo(t).max) for t in (np.float32, np.float64)}


def add(xp, a_values, a_ids, b_values, b_ids):
    """MaxAbsProduct's ``⊕`` of two ``(values, ids)`` pairs of one shape: ``b`` where ``|b| > |a|``,
    or ``|b| == |a|`` and ``b``'s id is the smaller, else ``a``.

    One compiled pass where the four arrays are numpy arrays laid out alike (all C- or all
    F-contiguous) with float32/float64 values of one dtype: numpy's eight passes and their
    temporaries took 1.34 ms at 141,312 elements (the accumulated input projection of an LSTM
    whose time steps are slices of it) and 10.7 µs at 1,536, this call 0.125 ms and 4.4 µs (Zen 3,
    timeit, allocator ``keep``). numpy's steps elsewhere (cupy, broadcast views, mixed dtypes).

    >>> a, b = np.array([1.0, -2.0, 3.0]), np.array([-2.0, 2.0, 1.0])
    >>> v, i = add(np, a, np.array([5, 5, 5]), b, np.array([6, 4, 6]))
    >>> v.tolist(), i.tolist()
    ([-2.0, 2.0, 3.0], [6, 4, 5])
    """
    order = _common_layout(a_values, a_ids, b_values, b_ids)
    if order is not None:
        out_v = np.empty(a_values.shape, dtype=a_values.dtype, order=order)
        out_i = np.empty(a_values.shape, dtype=np.int64, order=order)
        kernels.compiled("elementwise").max_abs_add(
            a_values.ravel("K"), a_ids.ravel("K"), b_values.ravel("K"), b_ids.ravel("K"),
            out_v.ravel("K"), out_i.ravel("K"),
        )
        return out_v, out_i
    return reference.add(xp, a_values, a_ids, b_values, b_ids)


def _common_layout(a_values, a_ids, b_values, b_ids):
    """``"C"`` or ``"F"`` where :func:`add`'s kernel reads the four arrays in one memory
    order (so ``ravel("K")`` gives views that pair up element for element), else None."""
    # (no generators: this runs at every add of a sweep, and four `all(...)` passes cost 1 µs)
    if not (
        type(a_values) is type(a_ids) is type(b_values) is type(b_ids) is _ndarray and kernels.enabled()
        and a_values.dtype in _KERNEL_DTYPES and b_values.dtype == a_values.dtype
        and a_ids.dtype == np.int64 and b_ids.dtype == np.int64
        and a_values.shape == a_ids.shape == b_values.shape == b_ids.shape
    ):
        return None
    flags = (a_values.flags, a_ids.flags, b_values.flags, b_ids.flags)
    if flags[0].c_contiguous and flags[1].c_contiguous and flags[2].c_contiguous and flags[3].c_contiguous:
        return "C"
    if flags[0].f_contiguous and flags[1].f_contiguous and flags[2].f_contiguous and flags[3].f_contiguous:
        return "F"
    return None


def all_finite(xp, a) -> bool:
    """Whether every element of ``a`` is finite, in one pass without a temporary.

    A sum is finite when every element is (NaN and inf propagate); on a C- or F-contiguous float
    numpy array the numba kernel sums ``a * 0`` (no overflow; 1.3-2x faster than numpy's pairwise ``sum``
    on large arrays, and on small ones one compiled call costs less than numpy's reduction: 0.6
    against 2.5 µs at 100 elements on Zen 3), elsewhere ``a.sum()`` runs (its overflow warning held
    back) and only a sum that is not finite (an overflow, or a real NaN/inf) pays for the exact
    ``isfinite(a).all()``.

    >>> all_finite(np, np.array([1.0, 2.0])), all_finite(np, np.array([1.0, np.inf]))
    (True, False)
    """
    if type(a) is _ndarray and a.dtype.kind in "fiub":
        flags = a.flags
        if flags.forc and a.dtype in _KERNEL_DTYPES and kernels.enabled():
            # (an F-contiguous array, as a weight's gradient (g.T @ x).T, is read in memory order)
            flat = a.ravel() if flags.c_contiguous else a.ravel("K")
            return not math.isnan(kernels.compiled("elementwise").non_finite_sum(flat))
        with np.errstate(over="ignore"):  # finite elements whose sum overflows are no user's concern
            if math.isfinite(_add_reduce(a, None)):  # (a small array: half the µs of bool(np.isfinite(a.sum())))
                return True
    elif bool(xp.isfinite(a.sum())):
        return True
    return bool(xp.isfinite(a).all())


def products_finite(xp, a, b, out_size: int) -> bool:
    """Whether every product of an element of ``a`` with an element of ``b`` is certainly finite,
    from ``max|a| * max|b|`` (rounding is monotone: no product rounds above the rounded bound).

    Used where each result of an op is one such product (a max-abs contraction) and reading ``a``
    and ``b`` is cheaper than checking the ``out_size`` results: ``False`` means "not known" (a
    NaN/inf input, a bound past the largest float, a dtype other than float32/float64, or a check
    of the results that would cost less).

    >>> products_finite(np, np.ones((200, 1)), np.full((1, 200), 1e300), 40000)
    True
    >>> products_finite(np, np.full((200, 1), 1e10), np.full((1, 200), 1e300), 40000)
    False
    """
    if out_size < _PROOF_MIN_ELEMENTS or a.size + b.size >= out_size or a.dtype.kind != "f" or b.dtype.kind != "f":
        return False
    dtype = backend.product_dtype(a, b)
    if dtype not in _KERNEL_DTYPES:
        return False
    flat_a = flat_b = None
    if (
        type(a) is _ndarray and type(b) is _ndarray and kernels.enabled()
        and a.dtype in _KERNEL_DTYPES and b.dtype in _KERNEL_DTYPES
    ):
        flat_a, flat_b = _flat_view(a), _flat_view(b)
    if flat_a is not None and flat_b is not None:
        largest = kernels.compiled("elementwise").largest_magnitude
        bound = largest(flat_a) * largest(flat_b)  # inf where an operand is not finite
    else:
        # float32 maxima multiply exactly in float64; float64 ones round as the products themselves do
        bound = float(xp.abs(a).max()) * float(xp.abs(b).max())
    return bound <= _LARGEST_FLOAT[dtype]


def _flat_view(a):
    """Every element of ``a`` as a 1-D view (in memory order), or None where that would need a copy:
    a copy of a large gradient would raise the sweep's peak memory. C- or F-contiguous arrays qualify,
    and so does any array with at most one axis longer than 1 (a column of a broadcast gradient).

    >>> _flat_view(np.ones((2, 3)).T).shape, _flat_view(np.ones((3, 4))[:, :2])
    ((6,), None)
    """
    if a.ndim == 1:
        return a
    if a.flags.forc:
        return a.ravel("K")
    if a.size == max(a.shape):
        return a.reshape(-1)  # one axis longer than 1 at most: a view whatever the strides
    return None


def traced_vertex(xp, value, ids, base: int):
    """A traced vertex's own ids and, where it was found on the way, whether ``value`` is finite.

    Returns ``(own, finite)``: ``own`` holds ``base + flat index`` for every element, ``NO_PATH``
    where ``ids`` (the successors of its best paths) is ``NO_PATH``, so that a dead end stays one;
    ``finite`` is True or False where one compiled call did both (float numpy arrays, C-contiguous
    or below ``_VERTEX_STRIDED_MAX`` elements on other strides: about 1.5 µs against 4 for the three
    numpy steps at 100 elements, 32 against 48 µs at 65,536), None elsewhere (not checked).

    >>> own, finite = traced_vertex(np, np.array([1.0, 2.0]), np.array([7, NO_PATH]), 10)
    >>> own.tolist() == [10, NO_PATH], finite in (True, None)
    (True, True)
    """
    if (
        type(value) is _ndarray and type(ids) is _ndarray and value.dtype in _KERNEL_DTYPES
        and ids.dtype == _INT64 and ids.shape == value.shape and kernels.enabled()
    ):
        if value.flags.c_contiguous and ids.flags.c_contiguous:
            own = np.empty(value.shape, dtype=_INT64)  # (ravel: views, 0.1 µs each against reshape's 0.2)
            return own, kernels.compiled("elementwise").traced_vertex(value.ravel(), ids.ravel(), base, own.ravel())
        if value.size < _VERTEX_STRIDED_MAX:
            own = np.empty(value.shape, dtype=_INT64)
            strided = kernels.compiled("elementwise").traced_vertex_strided
            return own, strided(value.reshape(-1), ids.reshape(-1), base, own.reshape(-1))
    return reference.vertex_ids(xp, ids, base), None


def scatter(xp, positions, values, ids, size: int):
    """Per target position keep the value of largest ``|value|``; ties go to the smallest id.

    Returns ``(value, id)`` arrays of length ``size``; untouched positions hold ``(0, NO_PATH)``.
    On numpy arrays with float32/float64 values the numba kernel runs where kernels are enabled
    (:mod:`semirad.kernels.scatter`, one pass), on cupy arrays the CUDA kernels where they apply
    (:mod:`semirad.kernels.cuda`), elsewhere :func:`reference.scatter` (a ``lexsort``); all give
    the same bits.

    >>> v, i = scatter(np, np.array([1, 1]), np.array([2.0, -2.0]), np.array([7, 5]), 2)
    >>> v.tolist(), i.tolist() == [NO_PATH, 5]
    ([0.0, -2.0], True)
    """
    if xp is np:
        if kernels.enabled() and values.dtype in _KERNEL_DTYPES and positions.shape == values.shape == ids.shape:
            found = kernels.compiled("scatter").max_abs_scatter(
                positions.astype(np.int64, copy=False), values, ids.astype(np.int64, copy=False), size
            )
            if found is not None:
                return found
    else:
        found = _cuda().scatter_max_abs(xp, positions, values, ids, size)
        if found is not None:
            return found
    return reference.scatter(xp, positions, values, ids, size)


def matmul(xp, values, ids, weights):
    """Max-abs-times contraction with argmax: the MaxAbsProduct form of ``values @ weights``.

    ``out[..., i, k] = values[..., i, j*] * weights[..., j*, k]`` with ``j*`` the ``j`` of largest
    ``|values[..., i, j] * weights[..., j, k]|`` (the first such ``j`` on ties), and
    ``out_ids[..., i, k] = ids[..., i, j*]``. Batch dimensions broadcast as in ``matmul``.
    Products are taken in ``result_type(values, weights)``; an empty ``j`` range gives
    ``(0, NO_PATH)`` (no path). On numpy arrays the numba kernel of :mod:`semirad.kernels` runs when
    it is installed and enabled (float32/float64, finite inputs), on cupy arrays the CUDA kernels of
    :mod:`semirad.kernels.cuda`; otherwise the array reference :func:`reference.matmul`. All give
    the same bits.

    >>> v, i = matmul(np, np.array([[1., -3.]]), np.array([[10, 11]]), np.array([[2.], [1.]]))
    >>> v.tolist(), i.tolist()
    ([[-3.0]], [[11]])
    """
    if values.shape[-1] <= 1:  # one candidate or none: no tie for a real path to lose
        return reference.matmul_one_candidate(xp, values, ids, weights)
    found = None
    if xp is np:
        if kernels.enabled() or kernels.worth_waiting(values.size * (weights.size // values.shape[-1])):
            dtype = backend.product_dtype(values, weights)
            if dtype in _KERNEL_DTYPES:
                found = _kernel_matmul(values, ids, weights, dtype)
    else:
        found = _cuda().max_abs_matmul(xp, values, ids, weights)
        found = None if found is None else (*found, None)
    if found is None:
        (out_v, out_i), dead_end = reference.matmul(xp, values, ids, weights), None
    else:
        out_v, out_i, dead_end = found
    if dead_end is None:  # not known: NO_PATH is the largest int64, one pass finds it
        dead_end = out_i.size and int(out_i.max()) == NO_PATH
    if dead_end:
        return reference.real_paths_win_matmul_ties(xp, values, ids, weights, out_v, out_i)
    return out_v, out_i


def _kernel_matmul(values, ids, weights, dtype):
    """The compiled contraction (:func:`semirad.kernels.max_abs_matmul`, on semirad's threads), its
    ``(out_values, out_ids, dead_end)`` or None, in blocks of rows where it would copy large operands.

    The kernel copies ``values`` and ``ids`` into contiguous rows where they are views of other
    strides (the transposed gradient ``g.T`` of a weight's contraction), in a scratch buffer kept
    for the next call only up to a few MiB: the weight of an LSTM's input projection, (3200 x 256)
    transposed, took a fresh 19.5 MiB, the peak of that trace. Output rows are independent (row
    ``i`` of the result reads row ``i`` of ``values`` and ``ids`` and all of ``weights``), so blocks
    of at most :data:`_PACK_BLOCK_BYTES` of copies (of 8 rows a thread at least), written into one
    result, give the same bits.

    >>> v = np.arange(12.0).reshape(3, 4).T      # a transposed view: copied by the kernel
    >>> i = np.arange(12).reshape(3, 4).T
    >>> w = np.array([[1.0], [-1.0], [2.0]])
    >>> out_v, out_i, _ = _kernel_matmul(v, i, w, np.dtype(np.float64))
    >>> out_v.ravel().tolist(), out_i.ravel().tolist()
    ([16.0, 18.0, 20.0, 22.0], [8, 9, 10, 11])
    """
    if values.ndim == 2 and weights.ndim == 2 and values.shape[0] == 1 and values.dtype == weights.dtype:
        # (speed) a vector times a matrix (the input gradient of a layer at batch 1): the kernel's serial
        # loop at any size, which copies one row at most: no threads to set, no blocks (0.7 µs less a call)
        return kernels.compiled("max_abs").max_abs_matmul(values, ids, weights, dtype)
    copied = (0 if values.flags.c_contiguous else values.itemsize) + (
        0 if ids.shape == values.shape and ids.flags.c_contiguous else ids.itemsize
    )
    if not copied or values.ndim < 2 or ids.ndim < 2:
        return kernels.max_abs_matmul(values, ids, weights, dtype)
    m, n = values.shape[-2:]
    rows = _PACK_BLOCK_BYTES // max(1, copied * n * (values.size // max(1, m * n)))
    # whole blocks of the kernel's 8 rows (its tasks), one at least for each of its threads
    rows = max(8 * kernels.get_num_threads(), rows - rows % 8)
    if rows >= m:
        return kernels.max_abs_matmul(values, ids, weights, dtype)
    batch = backend.broadcast_shapes(values.shape[:-2], weights.shape[:-2])
    out_v = out_i = None
    dead_ends = []
    per_row = ids.shape[-2] == m  # (else one row of ids broadcast over the rows)
    for start in range(0, m, rows):
        block = slice(start, start + rows)
        found = kernels.max_abs_matmul(values[..., block, :], ids[..., block, :] if per_row else ids, weights, dtype)
        if found is None:
            return None
        if out_v is None:
            out_v = np.empty(batch + (m, found[0].shape[-1]), dtype=found[0].dtype)
            out_i = np.empty(out_v.shape, dtype=np.int64)
        out_v[..., block, :], out_i[..., block, :] = found[0], found[1]
        dead_ends.append(found[2])
    return out_v, out_i, True if True in dead_ends else None if None in dead_ends else False


def sum_rows(xp, values, ids):
    """MaxAbsProduct's sum over axis 0 of 2-D ``(values, ids)`` of one shape: ``(out_values,
    out_ids)`` of the first row of largest ``|value|`` per column (a dead end gives way to the
    column's first real path). One compiled call where the kernel applies (numba on, float32/float64
    numpy arrays, some rows, finite values): over a bias's batch of 32 x 20 about 2 µs where the eight
    numpy steps take 15; :func:`reference.sum_rows` elsewhere.

    >>> v, i = np.array([[1.0, 0.0], [-3.0, 0.0]]), np.array([[5, NO_PATH], [6, 8]])
    >>> [out.tolist() for out in sum_rows(np, v, i)]
    [[-3.0, 0.0], [6, 8]]
    """
    if (
        type(values) is _ndarray and type(ids) is _ndarray and values.dtype in _KERNEL_DTYPES
        and ids.dtype == np.int64 and values.shape[0] and kernels.enabled()
    ):
        p = values.shape[1]
        out_v = np.empty(p, dtype=values.dtype)
        out_i = np.empty(p, dtype=np.int64)
        kernel = _kernel()
        contiguous = values.flags.c_contiguous and ids.flags.c_contiguous
        if (kernel.max_abs_sum_rows_contiguous if contiguous else kernel.max_abs_sum_rows)(values, ids, out_v, out_i):
            return out_v, out_i
    return reference.sum_rows(xp, values, ids)


def _kernel():
    """The numba contraction kernels (loaded on first use)."""
    return kernels.compiled("max_abs")


def _cuda():
    """The CUDA kernels' wrappers (imported on first use; they import cupy only when called)."""
    return kernels.compiled("cuda")
