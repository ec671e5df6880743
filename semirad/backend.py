"""Array backends: numpy on the CPU, cupy on the GPU.

Everything that must know which array library holds the data goes through
:func:`namespace`; the few kernels a semiring needs (contraction with argmax,
scatter with argmax) live here too, so ops and semirings stay backend-free.
"""

from __future__ import annotations

import math

import numpy as np

from . import _tanh, kernels

try:  # pragma: no cover - exercised only where cupy is installed
    import cupy
except Exception:  # ImportError, or a broken CUDA install
    cupy = None

#: backpointer of an element that has no path to the output (sorts after every real id)
NO_PATH = np.iinfo(np.int64).max
#: backpointer stored at the output itself: the path ends here
END = -1

_CHUNK_ELEMENTS = 1 << 22


def namespace(*arrays):
    """The array module (numpy or cupy) that holds ``arrays``.

    >>> namespace(np.zeros(2)) is np
    True
    """
    if cupy is not None:
        for a in arrays:
            if isinstance(a, cupy.ndarray):
                return cupy
    return np


def is_array(x) -> bool:
    """True for a numpy or cupy array."""
    return isinstance(x, np.ndarray) or (cupy is not None and isinstance(x, cupy.ndarray))


def to_numpy(a) -> np.ndarray:
    """A numpy copy (or view) of a numpy or cupy array."""
    if cupy is not None and isinstance(a, cupy.ndarray):
        return cupy.asnumpy(a)
    return np.asarray(a)


#: OpenBLAS (numpy's BLAS) multiplies a product of at most this many terms (m * k * n) with its
#: direct "small matrix" kernel; past it, its blocked GEMM runs tall-skinny shapes 1.5-2x slower
_DIRECT_GEMM = 1_000_000
#: fewest rows (or reduction steps) per block: below it a block's Python costs more than it saves
_MIN_BLOCK = 256
#: most bytes of the two operands in one block of a reduction (smaller blocks stream faster: ~10%)
_REDUCTION_BLOCK_BYTES = 3 << 17
#: from this many rows, a small non-C-contiguous right operand (a transposed weight) is copied first
_COPY_ROWS = 64
#: a left operand of fewer elements goes straight to ``@`` (the checks would cost more than they save)
_MIN_ELEMENTS = 2048
_GEMM_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_ndarray = np.ndarray  # a module global: read on every call of the helpers below
_add_reduce = np.add.reduce
#: ``np.dot`` is ``@`` for contiguous operands of 1 or 2 dimensions (the same BLAS calls, the same
#: bits) at about 0.5 µs less per call: numpy's ``matmul`` is a generalized ufunc, with its dispatch
_dot = np.dot


def matmul(a, b):
    """``a @ b``; for 2-D float numpy arrays of tall-skinny shapes, in blocks that BLAS runs faster.

    A batch times a small weight (``x @ W``, ``g @ W.T`` with ``x``, ``g`` of 16384 x 20) is split
    into blocks of rows, and a product with a long reduction (``x.T @ g``) into blocks of the
    reduction whose partial products are summed, each block small enough for OpenBLAS's direct
    kernel (``m * k * n <= 10**6``; reduction blocks also at most 384 KiB of operands): about
    1.5x faster at a batch of 16384, where the one large call goes through its blocked GEMM. A
    small right operand that is not C-contiguous (a transposed weight) is copied first: the
    direct kernel is slow on it. Rows in blocks agree with the single product up to the rounding
    of BLAS calls of different sizes; blocks of the reduction add their partial sums in order.
    Anything else (cupy arrays, other dimensions or dtypes, small products) is ``a @ b`` itself,
    through ``np.dot`` for C- or F-contiguous numpy operands of 1 or 2 dimensions (the same BLAS
    call and bits, about 0.5 µs less per call: a 3-4% faster backprop of 100-1000 small layers; on
    other strides the two can round differently, and ``@`` runs).

    >>> a, b = np.ones((3000, 20)), np.ones((20, 20))
    >>> bool((matmul(a, b) == 20.0).all()), matmul(a.T, a).tolist()[0][0]
    (True, 3000.0)
    """
    if type(a) is not _ndarray or type(b) is not _ndarray:
        return a @ b
    if a.ndim != 2 or b.ndim != 2:
        return _dot(a, b) if 0 < a.ndim <= 2 and 0 < b.ndim <= 2 and a.flags.forc and b.flags.forc else a @ b
    if a.size < _MIN_ELEMENTS:
        return _dot(a, b) if a.flags.forc and b.flags.forc else a @ b
    m, k = a.shape
    n = b.shape[1]
    work = m * k * n
    if work <= _DIRECT_GEMM:
        if m >= _COPY_ROWS and a.dtype == b.dtype and a.dtype in _GEMM_DTYPES and not b.flags.c_contiguous:
            b = np.ascontiguousarray(b)
        return _dot(a, b) if a.flags.forc and b.flags.forc else a @ b
    if a.dtype != b.dtype or a.dtype not in _GEMM_DTYPES:
        return a @ b
    rows = _DIRECT_GEMM // (k * n)
    if rows >= _MIN_BLOCK:  # tall: blocks of rows, written in place
        if not b.flags.c_contiguous:
            b = np.ascontiguousarray(b)
        blocks = -(-m // rows)
        rows = -(-m // blocks)
        out = np.empty((m, n), dtype=a.dtype)
        for i in range(0, m, rows):
            np.matmul(a[i : i + rows], b, out=out[i : i + rows])
        return out
    steps = min(_DIRECT_GEMM // (m * n), _REDUCTION_BLOCK_BYTES // ((m + n) * a.itemsize))
    if steps >= _MIN_BLOCK:  # a long reduction: partial products over blocks of it, summed in order
        blocks = -(-k // steps)
        steps = -(-k // blocks)
        out = a[:, :steps] @ b[:steps]
        for j in range(steps, k, steps):
            out += a[:, j : j + steps] @ b[j : j + steps]
        return out
    return a @ b


#: a vector of at most ``_TILE_MAX_VECTOR`` elements added along the last axis of an array of at
#: least ``_TILE_MIN_ELEMENTS`` is tiled to about ``_TILE_WIDTH`` elements (numpy's inner loop)
_TILE_MAX_VECTOR = 64
_TILE_MIN_ELEMENTS = 1 << 17
_TILE_WIDTH = 1 << 14
#: arrays of at least this many elements go through the numba elementwise kernels (where enabled):
#: from about 2000 elements one compiled pass beats numpy's (2 x 1.4 µs against 1.9 / 2.0 µs for the
#: bias add and tanh's partial, 4096: 1.9 / 2.2 against 4.2 / 3.7; timeit, float64)
_FUSED_MIN_ELEMENTS = 1 << 11
#: C-contiguous traced vertices below this many elements get their ids and finiteness from one
#: compiled pass (:func:`traced_vertex`): 1.4 µs at 2048 elements, 3.8 at 10,000, 55 at 100,000,
#: against 5.6, 11 and 98 for numpy's steps with the check of the values (Zen 3)
_VERTEX_KERNEL_MAX = 1 << 16
#: results of at least this many elements are proven finite from their operands rather than checked.
#: With numba the bound is a compiled call per operand, and with its bookkeeping in the trace
#: (a weak reference to the result, a lookup at the vertex) about 3.7 µs against 0.12 ns per
#: element to check (AMD EPYC Zen 3: 2.2 µs at 10,000 results, 5.7 at 40,000); without numba
#: two ``abs().max()`` cost 12 µs at 200 elements against 9.5 to check 40,000 results
_PROOF_MIN_ELEMENTS = 1 << 15
_LARGEST_FLOAT = {np.dtype(t): float(np.finfo(t).max) for t in (np.float32, np.float64)}


def add(xp, a, b):
    """``a + b`` (``xp`` is the arrays' namespace); on numpy, a vector added along the last axis of
    a large array (a bias under a batch) runs faster.

    numpy adds ``(B, n) + (n,)`` one row of ``n`` elements at a time. With the numba kernels
    enabled, one compiled loop does the whole add (1.3x faster at 16384 x 20); without them, the
    array (C-contiguous) is viewed as ``(B / r, r * n)`` and the vector tiled ``r`` times, so each
    inner loop runs about 16384 elements (1.15x faster inside a network of 16384 x 20 layers);
    the rows past a multiple of ``r`` are added as they are. The same pairs are added: the same
    bits. Anything else (cupy arrays, other shapes, mixed dtypes, small arrays) is ``a + b`` itself.

    >>> add(np, np.zeros((7000, 20)), np.arange(20.0))[6999, :3].tolist()
    [0.0, 1.0, 2.0]
    """
    if type(a) is _ndarray and type(b) is _ndarray:  # (checks in the order that is cheapest for small arrays)
        if a.size >= _FUSED_MIN_ELEMENTS and b.ndim == 1 and a.ndim > 1 and a.dtype == b.dtype:
            return _add_vector(a, b, False)
        if b.size >= _FUSED_MIN_ELEMENTS and a.ndim == 1 and b.ndim > 1 and a.dtype == b.dtype:
            return _add_vector(b, a, True)
    return a + b


def _add_vector(a, v, vector_first):
    """``a + v`` (``v + a`` if ``vector_first``) for a vector ``v`` along the last axis of ``a`` (same
    dtype), by the numba kernel or tiled when that pays."""
    n = v.shape[0]
    if a.shape[-1] == n and a.flags.c_contiguous:
        if _elementwise_kernel_takes(a):
            out = np.empty(a.shape, dtype=a.dtype)
            _elementwise().add_vector_to_rows(a.reshape(-1, n), v, out.reshape(-1, n))  # x + y == y + x
            return out
        r = _TILE_WIDTH // n if n <= _TILE_MAX_VECTOR else 0
        if r >= 2 and a.size >= _TILE_MIN_ELEMENTS:
            return _add_tiled(a, v, vector_first, r)
    return v + a if vector_first else a + v


def _add_tiled(a, v, vector_first, r):
    n = v.shape[0]
    rows = a.size // n
    main = (rows - rows % r) * n  # elements in whole groups of r rows
    out = np.empty(a.shape, dtype=a.dtype)
    flat_a, flat_out = a.reshape(-1), out.reshape(-1)
    parts = [(flat_a[:main].reshape(-1, r * n), np.tile(v, r), flat_out[:main].reshape(-1, r * n))]
    if main < a.size:  # the rows past a multiple of r
        parts.append((flat_a[main:].reshape(-1, n), v, flat_out[main:].reshape(-1, n)))
    for x, w, o in parts:
        if vector_first:
            np.add(w, x, out=o)
        else:
            np.add(x, w, out=o)
    return out


def tanh(xp, x):
    """``tanh(x)`` as a new array. A float64 numpy array gets semirad's own tanh (:mod:`semirad._tanh`:
    within 2.1 ulp of the exact value, the same bits on every CPU and under both kernel modes), by the
    numba kernel (4.5x numpy's speed where numpy's is a libm call per element) or by its numpy
    transcription; anything else (cupy arrays, other dtypes) is ``xp.tanh(x)``.

    >>> tanh(np, np.array([0.0, -30.0])).tolist()
    [0.0, -1.0]
    """
    if type(x) is _ndarray and x.dtype == _FLOAT64:
        if kernels.enabled():  # (from one element: a call costs about 1.5 µs, numpy's libm tanh 34 ns an element)
            out = np.empty(x.shape, dtype=_FLOAT64)
            _elementwise().tanh(x.reshape(-1) if x.flags.c_contiguous else x.ravel(), out.reshape(-1))
            return out
        return _tanh.tanh_numpy(x)
    if type(x) is np.float64:  # (what 0.5 * a 0-d array gives)
        return _tanh.tanh_numpy(np.asarray(x))[()]
    return xp.tanh(x)


def one_minus_square(xp, y):
    """``1 - y * y`` as a new array (tanh's partial from its output), in one pass where it pays.

    >>> one_minus_square(np, np.array([0.0, 0.5, -1.0])).tolist()
    [1.0, 0.75, 0.0]
    """
    out = _fused_unary("one_minus_square", y)
    if out is None:
        out = y * y
        return xp.subtract(1.0, out, out=out) if isinstance(out, xp.ndarray) else 1.0 - out
    return out


def times_one_minus(xp, y):
    """``y * (1 - y)`` as a new array (the sigmoid's partial from its output), in one pass where it pays.

    >>> times_one_minus(np, np.array([0.0, 0.5, 1.0])).tolist()
    [0.0, 0.25, 0.0]
    """
    out = _fused_unary("times_one_minus", y)
    if out is None:
        out = 1.0 - y
        return xp.multiply(y, out, out=out) if isinstance(out, xp.ndarray) else y * out
    return out


#: from here down ``exp(-x)`` would overflow (``exp(709) ~ 8.2e307``); there ``exp(x) < 2**-1000``, so
#: ``1 + exp(x)`` rounds to 1 and ``sigmoid(x) = exp(x) / (1 + exp(x))`` is ``exp(x)`` itself
_SIGMOID_LOW = -709.0
#: the sigmoid's partial is ``(1 - y) y`` up to here: ``1 - y`` is exact, but the rounding of ``y`` is
#: a growing fraction of it (at most 2.5 ulp of the partial at ``x = 1``, 8 at 2, all of it from 37 on)
_SIGMOID_FAR = 1.0
#: whether the compiled sigmoid kernels give the numpy references' bits (None: not checked yet)
_SIGMOID_KERNELS_AGREE = None


def sigmoid(xp, x: np.ndarray) -> np.ndarray:
    """``sigmoid(x) = 1 / (1 + exp(-x))`` as a new array, within a few ulp of the exact value over the
    whole line (no cancellation: for ``x >= -709`` it is ``1 / (1 + exp(-x))``, whose steps each add a
    relative error of at most an ulp, and below that ``exp(x)``, see :data:`_SIGMOID_LOW`).

    A float32 array is computed in float64 and rounded once. On a float32/float64 numpy array with the
    numba kernels enabled, one compiled pass (``kernels.elementwise.sigmoid``) computes what
    :func:`sigmoid_reference` does with numpy, with the same operations (the same bits: both call the
    C library's ``exp``; where numpy's ``exp`` is another one, as numpy's own AVX-512 code, the
    kernel is not used, see :func:`_sigmoid_kernels_agree`). NaN gives NaN, ``-inf`` 0 and ``inf`` 1,
    without a warning.

    >>> [f"{v:.12g}" for v in sigmoid(np, np.array([0.0, -40.0, -750.0, np.inf, np.nan]))]
    ['0.5', '4.24835425529e-18', '0', '1', 'nan']
    """
    if (
        type(x) is _ndarray and x.dtype in _KERNEL_DTYPES and kernels.enabled()
        and (_SIGMOID_KERNELS_AGREE or (_SIGMOID_KERNELS_AGREE is None and _sigmoid_kernels_agree()))
    ):
        out = np.empty(x.shape, dtype=x.dtype)
        _elementwise().sigmoid(x.reshape(-1) if x.flags.c_contiguous else x.ravel(), _SIGMOID_LOW, out.reshape(-1))
        return out
    return sigmoid_reference(xp, x)


def sigmoid_reference(xp, x: np.ndarray) -> np.ndarray:
    """:func:`sigmoid` with array operations (numpy or cupy): five passes over a float64 ``x`` (and a
    gather where some ``x < -709``). float16 and float32 are computed in float64 and rounded once;
    integers give float64.

    >>> [f"{v:.6g}" for v in sigmoid_reference(np, np.array([-1000.0, -90.0, 0.0, 36.0], dtype=np.float32))]
    ['0', '8.19401e-40', '0.5', '1']
    >>> f"{sigmoid_reference(np, np.array(-709.5)):.12g}"
    '7.38014831401e-309'
    """
    if x.dtype.kind == "c":
        return 1.0 / (1.0 + xp.exp(-x))
    if x.dtype == _FLOAT64:
        y = xp.empty(x.shape, dtype=_FLOAT64)
        xp.negative(x, out=y)
    else:
        y = x.astype(_FLOAT64)
        xp.negative(y, out=y)
    low = x.size and not x.min() >= _SIGMOID_LOW  # (also where x holds a NaN)
    if low:
        with np.errstate(over="ignore"):
            xp.exp(y, out=y)
    else:
        xp.exp(y, out=y)
    y += 1.0
    out = y if x.dtype == _FLOAT64 or x.dtype.kind in "biu" else xp.empty(x.shape, dtype=x.dtype)
    xp.divide(1.0, y, out=out, dtype=_FLOAT64)
    if low:
        below = x < _SIGMOID_LOW
        out[below] = xp.exp(x[below].astype(_FLOAT64))
    return out


def sigmoid_partial(xp, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The sigmoid's partial ``sigmoid'(x) = sigmoid(x) sigmoid(-x)`` from its input ``x`` and output
    ``y = sigmoid(x)``, as a new array within a few ulp of the exact value everywhere: ``(1 - y) y``
    where ``x <= 1`` and ``e / (1 + e)**2`` with ``e = exp(-x)`` where ``x > 1`` (see
    :data:`_SIGMOID_FAR`). PyTorch's ``(1 - y) y`` everywhere cancels for positive ``x``, to 0 from
    ``x = 37`` on where the exact value is ``8.5e-17``. float32 is computed in float64 and rounded once.

    ``kernels.elementwise.sigmoid_partial`` where :func:`sigmoid`'s kernel runs (a pass over all
    elements, then the ``exp`` of those past 1 only), else :func:`sigmoid_partial_reference`; the same
    bits.

    >>> x = np.array([-40.0, 0.0, 40.0, np.inf])
    >>> [f"{v:.12g}" for v in sigmoid_partial(np, x, sigmoid(np, x))]
    ['4.24835425529e-18', '0.25', '4.24835425529e-18', '0']
    """
    if (
        type(x) is _ndarray and type(y) is _ndarray and x.dtype in _KERNEL_DTYPES and y.dtype == x.dtype
        and kernels.enabled()
        and (_SIGMOID_KERNELS_AGREE or (_SIGMOID_KERNELS_AGREE is None and _sigmoid_kernels_agree()))
    ):
        out = np.empty(y.shape, dtype=y.dtype)
        _elementwise().sigmoid_partial(
            x.reshape(-1) if x.flags.c_contiguous else x.ravel(),
            y.reshape(-1) if y.flags.c_contiguous else y.ravel(),
            _SIGMOID_FAR,
            out.reshape(-1),
        )
        return out
    return sigmoid_partial_reference(xp, x, y)


def sigmoid_partial_reference(xp, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """:func:`sigmoid_partial` with array operations (numpy or cupy): three passes, and the ``exp`` of
    the elements past :data:`_SIGMOID_FAR` gathered by their indices; in float64, float16 and float32
    rounded once at the end.

    >>> x = np.array([-1.0, 38.0, 800.0])
    >>> [f"{v:.12g}" for v in sigmoid_partial_reference(np, x, sigmoid_reference(np, x))]
    ['0.196611933241', '3.13913279205e-17', '0']
    """
    if y.dtype.kind == "c":
        return (1.0 - y) * y
    w = xp.empty(y.shape, dtype=_FLOAT64)
    xp.subtract(1.0, y, out=w, dtype=_FLOAT64)
    w = xp.multiply(w, y, out=w if y.dtype == _FLOAT64 else xp.empty(y.shape, dtype=y.dtype), dtype=_FLOAT64)
    far = xp.flatnonzero(x > _SIGMOID_FAR)  # (indices: gathering by a boolean mask is 5x slower)
    if far.size:
        e = xp.negative(x.take(far), dtype=_FLOAT64)
        xp.exp(e, out=e)
        d = e + 1.0
        d *= d
        e /= d
        w.reshape(-1)[far] = e
    return w


def _sigmoid_kernels_agree() -> bool:
    """Whether the compiled sigmoid kernels give :func:`sigmoid_reference`'s and
    :func:`sigmoid_partial_reference`'s bits on a probe of 12,000 points from -750 to 750 (checked
    once per process). They do where numba's ``exp`` and numpy's are the same C library function,
    as on CPUs without AVX-512; numpy's own AVX-512 ``exp`` (below 1 ulp, but not the C library's)
    differs by an ulp on some inputs, and there the references run in both kernel modes. False
    without numba.

    >>> _sigmoid_kernels_agree() in (True, False)
    True
    """
    global _SIGMOID_KERNELS_AGREE
    if not kernels.AVAILABLE:
        return False
    if _SIGMOID_KERNELS_AGREE is None:
        ramp = np.linspace(-750.0, 750.0, 6001)
        probe = np.concatenate([ramp, np.sin(ramp) * 10.0 ** np.linspace(-300, 2.85, ramp.size)])
        agree = True
        for dtype, bits in ((np.float64, np.int64), (np.float32, np.int32)):
            x = probe.astype(dtype)
            want, got = sigmoid_reference(np, x), np.empty_like(x)
            _elementwise().sigmoid(x, _SIGMOID_LOW, got)
            want_w, got_w = sigmoid_partial_reference(np, x, want), np.empty_like(x)
            _elementwise().sigmoid_partial(x, want, _SIGMOID_FAR, got_w)
            agree = agree and np.array_equal(got.view(bits), want.view(bits))
            agree = agree and np.array_equal(got_w.view(bits), want_w.view(bits))
        _SIGMOID_KERNELS_AGREE = bool(agree)
    return _SIGMOID_KERNELS_AGREE


def max_abs_add(xp, a_values, a_ids, b_values, b_ids):
    """MaxAbsProduct's ``⊕`` of two ``(values, ids)`` pairs of one shape: ``b`` where ``|b| > |a|``,
    or ``|b| == |a|`` and ``b``'s id is the smaller, else ``a``.

    One compiled pass where the four arrays are numpy arrays laid out alike (all C- or all
    F-contiguous) with float32/float64 values of one dtype: numpy's eight passes and their
    temporaries took 1.34 ms at 141,312 elements (the accumulated input projection of an LSTM
    whose time steps are slices of it) and 10.7 µs at 1,536, this call 0.125 ms and 4.4 µs (Zen 3,
    timeit, allocator ``keep``). numpy's steps elsewhere (cupy, broadcast views, mixed dtypes).

    >>> a, b = np.array([1.0, -2.0, 3.0]), np.array([-2.0, 2.0, 1.0])
    >>> v, i = max_abs_add(np, a, np.array([5, 5, 5]), b, np.array([6, 4, 6]))
    >>> v.tolist(), i.tolist()
    ([-2.0, 2.0, 3.0], [6, 4, 5])
    """
    order = _common_layout(a_values, a_ids, b_values, b_ids)
    if order is not None:
        out_v = np.empty(a_values.shape, dtype=a_values.dtype, order=order)
        out_i = np.empty(a_values.shape, dtype=np.int64, order=order)
        _elementwise().max_abs_add(
            a_values.ravel("K"), a_ids.ravel("K"), b_values.ravel("K"), b_ids.ravel("K"),
            out_v.ravel("K"), out_i.ravel("K"),
        )
        return out_v, out_i
    abs_a, abs_b = xp.abs(a_values), xp.abs(b_values)
    take_b = (abs_b > abs_a) | ((abs_b == abs_a) & (b_ids < a_ids))
    return xp.where(take_b, b_values, a_values), xp.where(take_b, b_ids, a_ids)


def _common_layout(a_values, a_ids, b_values, b_ids):
    """``"C"`` or ``"F"`` where :func:`max_abs_add`'s kernel reads the four arrays in one memory
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
        if a.dtype in _KERNEL_DTYPES and a.flags.forc and kernels.enabled():
            # (an F-contiguous array, as a weight's gradient (g.T @ x).T, is read in memory order)
            flat = a if a.ndim == 1 else a.reshape(-1) if a.flags.c_contiguous else a.ravel("K")
            return not math.isnan(_elementwise().non_finite_sum(flat))
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
    dtype = _product_dtype(a, b)
    if dtype not in _KERNEL_DTYPES:
        return False
    flat_a = flat_b = None
    if (
        type(a) is _ndarray and type(b) is _ndarray and kernels.enabled()
        and a.dtype in _KERNEL_DTYPES and b.dtype in _KERNEL_DTYPES
    ):
        flat_a, flat_b = _flat_view(a), _flat_view(b)
    if flat_a is not None and flat_b is not None:
        largest = _elementwise().largest_magnitude
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


def _elementwise_kernel_takes(a) -> bool:
    """Whether the numba elementwise kernels run on ``a``: a numpy float32/float64 array of at least
    ``_FUSED_MIN_ELEMENTS`` elements, C-contiguous, with the kernels enabled."""
    return (
        type(a) is _ndarray
        and a.size >= _FUSED_MIN_ELEMENTS
        and a.dtype in _KERNEL_DTYPES
        and a.flags.c_contiguous
        and kernels.enabled()
    )


def _fused_unary(kernel: str, y):
    """A new array from the numba kernel ``kernel`` of :mod:`semirad.kernels.elementwise` applied to
    ``y``, or None where it does not apply (see :func:`_elementwise_kernel_takes`)."""
    if _elementwise_kernel_takes(y):
        out = np.empty(y.shape, dtype=y.dtype)
        getattr(_elementwise(), kernel)(y.reshape(-1), out.reshape(-1))
        return out
    return None


def broadcast_to(xp, a, shape: tuple):
    """``xp.broadcast_to(a, shape)``: a read-only view; for a C-contiguous numpy array it is built
    from strides directly (numpy's function spends about 5 µs on argument handling, a cost that
    small graphs pay several times per sweep).

    >>> v = broadcast_to(np, np.array([[1.0], [2.0]]), (3, 2, 4))
    >>> v.shape, v[2, 1].tolist(), v.flags.writeable
    ((3, 2, 4), [2.0, 2.0, 2.0, 2.0], False)
    """
    if type(a) is not _ndarray or a.dtype.hasobject:
        return xp.broadcast_to(a, shape)
    if a.ndim == 0:  # a scalar's gradient spread over a sum's input
        strides = (0,) * len(shape)
    elif a.flags.c_contiguous and len(shape) >= a.ndim:
        lead = len(shape) - a.ndim
        strides = [0] * lead
        for have, want, stride in zip(a.shape, shape[lead:], a.strides):
            if have == 1:
                strides.append(0)
            elif have == want:
                strides.append(stride)
            else:
                return xp.broadcast_to(a, shape)  # numpy's error message
        strides = tuple(strides)
    else:
        return xp.broadcast_to(a, shape)
    out = _ndarray(shape, a.dtype, a, 0, strides)
    out.setflags(write=False)
    return out


def element_ids(xp, base: int, shape: tuple) -> object:
    """Global vertex ids ``base + flat index`` for an array of ``shape``."""
    return xp.arange(base, base + math.prod(shape), dtype=np.int64).reshape(shape)


def traced_vertex(xp, value, ids, base: int):
    """A traced vertex's own ids and, where it was found on the way, whether ``value`` is finite.

    Returns ``(own, finite)``: ``own`` holds ``base + flat index`` for every element, ``NO_PATH``
    where ``ids`` (the successors of its best paths) is ``NO_PATH``, so that a dead end stays one;
    ``finite`` is True or False where one compiled call did both (float numpy arrays below
    ``_VERTEX_KERNEL_MAX`` elements when C-contiguous, below ``_FUSED_MIN_ELEMENTS`` on other
    strides: about 1.5 µs against 4 for the three numpy steps at 100 elements), None elsewhere (not
    checked).

    >>> own, finite = traced_vertex(np, np.array([1.0, 2.0]), np.array([7, NO_PATH]), 10)
    >>> own.tolist() == [10, NO_PATH], finite in (True, None)
    (True, True)
    """
    if (
        type(value) is _ndarray and type(ids) is _ndarray and value.dtype in _KERNEL_DTYPES
        and ids.dtype == np.int64 and ids.shape == value.shape and kernels.enabled()
    ):
        contiguous = value.flags.c_contiguous and ids.flags.c_contiguous
        if value.size < (_VERTEX_KERNEL_MAX if contiguous else _FUSED_MIN_ELEMENTS):
            own = np.empty(value.shape, dtype=np.int64)
            kernel = _elementwise().traced_vertex if contiguous else _elementwise().traced_vertex_strided
            if value.ndim == 1:
                return own, kernel(value, ids, base, own)
            return own, kernel(value.reshape(-1), ids.reshape(-1), base, own.reshape(-1))
    own = element_ids(xp, base, value.shape)
    if ids.size and int(ids.max()) == NO_PATH:  # NO_PATH is the largest int64: one pass, no temporary
        own[ids == NO_PATH] = NO_PATH
    return own, None


def flat_positions(xp, shape: tuple, index) -> object:
    """Flat C-order position in an array of ``shape`` of every element that ``a[index]`` selects."""
    size = int(np.prod(shape, dtype=np.int64))
    return xp.arange(size, dtype=np.int64).reshape(shape)[index]


def scatter_add(xp, positions, values, size: int):
    """``out = zeros(size); out[positions] += values`` with repeated positions adding up."""
    positions = positions.ravel()
    values = xp.broadcast_to(values, positions.shape if values.ndim == 0 else values.shape).ravel()
    if xp is np:
        if np.iscomplexobj(values):
            out = np.zeros(size, dtype=values.dtype)
            np.add.at(out, positions, values)
            return out
        return np.bincount(positions, weights=values, minlength=size).astype(values.dtype, copy=False)
    out = xp.zeros(size, dtype=values.dtype)  # pragma: no cover - GPU
    xp.add.at(out, positions, values)  # pragma: no cover - GPU
    return out  # pragma: no cover - GPU


def scatter_max_abs(xp, positions, values, ids, size: int):
    """Per target position keep the value of largest ``|value|``; ties go to the smallest id.

    Returns ``(value, id)`` arrays of length ``size``; untouched positions hold ``(0, NO_PATH)``.
    """
    return scatter_max_abs_reference(xp, positions, values, ids, size)


def scatter_max_abs_reference(xp, positions, values, ids, size: int):
    """:func:`scatter_max_abs` in plain array operations (one ``lexsort``): the algorithm that the
    compiled kernels must reproduce and fall back to.

    >>> v, i = scatter_max_abs_reference(np, np.array([1, 1, 0]), np.array([2., -2., 1.]), np.array([7, 5, 3]), 3)
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
    # sort by position, then |value| descending, then id ascending: the first of each run wins
    order = xp.lexsort(xp.stack([ids, -xp.abs(values).astype(np.float64), positions]))
    sorted_pos = positions[order]
    first = xp.ones(sorted_pos.shape, dtype=bool)
    first[1:] = sorted_pos[1:] != sorted_pos[:-1]
    winners = order[first]
    out_v[positions[winners]] = values[winners]
    out_i[positions[winners]] = ids[winners]
    return out_v, out_i


def max_abs_matmul(xp, values, ids, weights):
    """Max-abs-times contraction with argmax: the MaxAbsProduct form of ``values @ weights``.

    ``out[..., i, k] = values[..., i, j*] * weights[..., j*, k]`` with ``j*`` the ``j`` of largest
    ``|values[..., i, j] * weights[..., j, k]|`` (the first such ``j`` on ties), and
    ``out_ids[..., i, k] = ids[..., i, j*]``. Batch dimensions broadcast as in ``matmul``.
    Products are taken in ``result_type(values, weights)``; an empty ``j`` range gives
    ``(0, NO_PATH)`` (no path). On numpy arrays the numba kernel of :mod:`semirad.kernels` runs when
    it is installed and enabled (float32/float64, finite inputs); otherwise the numpy reference
    :func:`max_abs_matmul_reference`. Both give the same bits.

    >>> v, i = max_abs_matmul(np, np.array([[1., -3.]]), np.array([[10, 11]]), np.array([[2.], [1.]]))
    >>> v.tolist(), i.tolist()
    ([[-3.0]], [[11]])
    """
    if values.shape[-1] <= 1:  # one candidate or none: no tie for a real path to lose
        return _max_abs_matmul_trivial(xp, values, ids, weights)
    found = None
    if xp is np and kernels.enabled():
        dtype = _product_dtype(values, weights)
        if dtype in _KERNEL_DTYPES:
            found = _kernel().max_abs_matmul(values, ids, weights, dtype)
    if found is None:
        (out_v, out_i), dead_end = max_abs_matmul_reference(xp, values, ids, weights), None
    else:
        out_v, out_i, dead_end = found
    if dead_end is None:  # not known: NO_PATH is the largest int64, one pass finds it
        dead_end = out_i.size and int(out_i.max()) == NO_PATH
    if dead_end:
        return _real_paths_win_matmul_ties(xp, values, ids, weights, out_v, out_i)
    return out_v, out_i


def max_abs_sum_rows(xp, values, ids):
    """MaxAbsProduct's sum over axis 0 of 2-D ``(values, ids)`` of one shape, in one compiled call:
    ``(out_values, out_ids)`` of the first row of largest ``|value|`` per column (a dead end gives
    way to the column's first real path), or None where the kernel does not apply (numba off, other
    dtypes, cupy, no rows, a value that is not finite): the caller then runs its array code.
    Over a bias's batch of 32 x 20 it takes about 2 µs where the eight numpy steps take 15.

    >>> v, i = np.array([[1.0, 0.0], [-3.0, 0.0]]), np.array([[5, NO_PATH], [6, 8]])
    >>> [out.tolist() for out in max_abs_sum_rows(np, v, i) or max_abs_sum_rows_reference(np, v, i)]
    [[-3.0, 0.0], [6, 8]]
    """
    if (
        type(values) is _ndarray and type(ids) is _ndarray and values.dtype in _KERNEL_DTYPES
        and ids.dtype == np.int64 and values.shape[0] and kernels.enabled()
    ):
        p = values.shape[1]
        out_v = np.empty(p, dtype=values.dtype)
        out_i = np.empty(p, dtype=np.int64)
        if _kernel().max_abs_sum_rows(values, ids, out_v, out_i):
            return out_v, out_i
    return None


def max_abs_sum_rows_reference(xp, values, ids):
    """:func:`max_abs_sum_rows` in array operations (numpy or cupy); ``argmax`` decides for NaN."""
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


def _real_paths_win_matmul_ties(xp, values, ids, weights, out_v, out_i):
    """Where the contraction picked a dead end, every product was 0 (a dead end's value is 0): the
    first real ``j`` of the row, if any, wins that tie instead."""
    batch = broadcast_shapes(values.shape[:-2], weights.shape[:-2])
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


_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_FLOAT64 = np.dtype(np.float64)
_KERNEL = _ELEMENTWISE = None


def _kernel():
    """The numba contraction kernel module, imported (and its compiled code loaded) on first use."""
    global _KERNEL
    if _KERNEL is None:
        from .kernels import max_abs

        _KERNEL = max_abs
    return _KERNEL


def _elementwise():
    """The numba elementwise kernel module, imported on first use (each kernel compiles, or loads
    from numba's cache, at its first call per dtype)."""
    global _ELEMENTWISE
    if _ELEMENTWISE is None:
        from .kernels import elementwise

        _ELEMENTWISE = elementwise
    return _ELEMENTWISE


def broadcast_shapes(a: tuple, b: tuple) -> tuple:
    """``np.broadcast_shapes(a, b)``, without its few µs where the shapes are equal (the common case).

    >>> broadcast_shapes((2, 1), (3,)), broadcast_shapes((4,), (4,))
    ((2, 3), (4,))
    """
    return a if a == b else np.broadcast_shapes(a, b)


def _product_dtype(a, b):
    """``np.result_type`` of two arrays, without its µs where their dtypes are equal."""
    return a.dtype if a.dtype == b.dtype else np.result_type(a.dtype, b.dtype)


def _max_abs_matmul_trivial(xp, values, ids, weights):
    """``n == 0``: no path; ``n == 1``: one product per output element, nothing to compare."""
    if values.ndim == 2 and weights.ndim == 2 and values.shape[1] and type(ids) is _ndarray and ids.flags.c_contiguous:
        # (m, 1) * (1, p), the weight gradient of W @ x: the ids' view built directly (numpy's
        # broadcast_to costs 4 µs, the general path below 3.4 µs more than the product at 10 x 10)
        out_i = _ndarray((values.shape[0], weights.shape[1]), ids.dtype, ids, 0, (ids.strides[0], 0))
        out_i.setflags(write=False)
        return values * weights, out_i
    batch = broadcast_shapes(values.shape[:-2], weights.shape[:-2])
    shape = batch + (values.shape[-2], weights.shape[-1])
    dtype = _product_dtype(values, weights)
    if values.shape[-1] == 0:
        return xp.zeros(shape, dtype=dtype), xp.full(shape, NO_PATH, dtype=np.int64)
    out_v = values * weights  # (..., m, 1) * (..., 1, p)
    out_i = broadcast_to(xp, ids, shape)  # ids broadcast against values (..., m, 1), hence to (..., m, p)
    return out_v, out_i


def max_abs_matmul_reference(xp, values, ids, weights):
    """The array-library reference of :func:`max_abs_matmul` (numpy or cupy): chunked broadcasting.

    >>> v, i = max_abs_matmul_reference(np, np.array([[1., -3.]]), np.array([[10, 11]]), np.array([[2.], [1.]]))
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
    rows = max(1, _CHUNK_ELEMENTS // max(1, n * p))
    for b in range(v.shape[0]):
        for r0 in range(0, m, rows):
            r1 = min(m, r0 + rows)
            prod = v[b, r0:r1, :, None] * w[b, None, :, :]  # (rows, n, p)
            best = xp.abs(prod).argmax(axis=1)  # (rows, p); first max on ties
            out_v[b, r0:r1] = xp.take_along_axis(prod, best[:, None, :], axis=1)[:, 0, :]
            out_i[b, r0:r1] = xp.take_along_axis(i[b, r0:r1], best, axis=1)
    return out_v.reshape(batch + (m, p)), out_i.reshape(batch + (m, p))
