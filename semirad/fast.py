"""Speed helpers for the ops: each returns what the plain numpy expression in its docstring does
(the same bits unless it says otherwise), faster where that was measured (docs/design.md,
"Performance"): blocked BLAS products, a bias add, fused elementwise partials, semirad's tanh and
sigmoid, a cheaper ``broadcast_to``. cupy arrays and anything not covered get the plain expression.
"""

from __future__ import annotations

import math

import numpy as np

from . import backend, kernels
from .kernels import tanh as _tanh

_KERNEL_DTYPES = kernels.DTYPES
_FLOAT64 = np.dtype(np.float64)


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


#: ``np.dot`` is ``@`` for contiguous operands of 1 or 2 dimensions (the same BLAS calls, the same
#: bits) with less dispatch: a just-optimization (docs/design.md, "Thresholds")
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
    of BLAS calls of different sizes; blocks of the reduction add their partial sums in order. A
    C-contiguous stack of matrices times one matrix (a Linear over a sequence) is one product of
    the stack's rows (:func:`_folded`). Anything else (cupy arrays, other dimensions or dtypes,
    small products) is ``a @ b`` itself, through ``np.dot`` for C- or F-contiguous numpy operands
    of 1 or 2 dimensions (the same BLAS call and bits, about 0.5 µs less per call: a 3-4% faster
    backprop of 100-1000 small layers; on other strides the two can round differently, and ``@``
    runs).

    >>> a, b = np.ones((3000, 20)), np.ones((20, 20))
    >>> bool((matmul(a, b) == 20.0).all()), matmul(a.T, a).tolist()[0][0]
    (True, 3000.0)
    """
    if type(a) is not _ndarray or type(b) is not _ndarray:
        return a @ b
    if a.ndim != 2 or b.ndim != 2:
        if a.ndim > 2 and b.ndim == 2 and a.flags.c_contiguous and a.dtype == b.dtype and a.dtype in _GEMM_DTYPES:
            return _folded(a, b)
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


def _folded(a, b):
    """``a @ b`` for a C-contiguous stack ``a`` of shape ``(..., m, k)`` and one matrix ``b``: the
    stack's rows folded into one product of ``(prod(...) * m, k)`` by ``(k, n)``, as PyTorch's
    ``matmul`` does. numpy's ``matmul`` makes one BLAS call per matrix of the stack: for the input
    projection of an LSTM over 200 steps, (200, 16, 32) @ (32, 256), 2.2x slower (docs/design.md,
    "Thresholds"). The rows are the same, but BLAS may round a row differently in a product of
    another size (as :func:`matmul`'s blocks)."""
    rows = math.prod(a.shape[:-1])
    return matmul(a.reshape(rows, a.shape[-1]), b).reshape(a.shape[:-1] + (b.shape[1],))


#: a vector of at most ``_TILE_MAX_VECTOR`` elements added along the last axis of an array of at
#: least ``_TILE_MIN_ELEMENTS`` is tiled to about ``_TILE_WIDTH`` elements (numpy's inner loop)
_TILE_MAX_VECTOR = 64


_TILE_MIN_ELEMENTS = 1 << 17


_TILE_WIDTH = 1 << 14


#: arrays of at least this many elements go through the numba elementwise kernels, where enabled
#: (measured: docs/design.md, "Thresholds")
_FUSED_MIN_ELEMENTS = 1 << 13


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


#: smaller temporaries are not worth the checks of an in-place product
_IN_PLACE_MIN = 4096


def multiply_into(g, temporary):
    """``g * temporary``, written into ``temporary`` where that is a numpy array of ``g``'s shape and
    dtype (the caller's temporary, dropped afterwards: no new array, and a fresh array of a few MB
    can cost more in page faults than the multiply itself).

    >>> w = np.full(5000, 2.0)
    >>> out = multiply_into(np.ones(5000), w)
    >>> out is w, float(out[0])
    (True, 2.0)
    """
    if (
        type(temporary) is _ndarray and type(g) is _ndarray and temporary.size >= _IN_PLACE_MIN
        and temporary.shape == g.shape and temporary.dtype == g.dtype and temporary.flags.writeable
    ):
        return np.multiply(g, temporary, out=temporary)
    return g * temporary


def sum_axes(g, axes: tuple, keepdims: bool = False):
    """``g.sum(axis=axes, keepdims=keepdims)``; over leading axes of a large C-contiguous float array
    (a bias's gradient under a batch) as a product with a vector of ones, at BLAS speed, where
    numpy's reduction along a non-contiguous axis walks row by row (7x slower).

    >>> sum_axes(np.ones((5000, 3)), (0,)).tolist()
    [5000.0, 5000.0, 5000.0]
    """
    if g.size < 4096:  # (small: numpy's reduction itself, without ``ndarray.sum``'s Python wrapper)
        if type(g) is _ndarray:
            return _add_reduce(g, axes, None, None, keepdims)
        return g.sum(axis=axes, keepdims=keepdims)
    k = len(axes)
    if not keepdims and 0 < k < g.ndim and axes == tuple(range(k)) and g.dtype.kind == "f" and g.flags.c_contiguous:
        rows = math.prod(g.shape[:k])
        xp = backend.namespace(g)
        return (xp.ones(rows, dtype=g.dtype) @ g.reshape(rows, -1)).reshape(g.shape[k:])
    return g.sum(axis=axes, keepdims=keepdims)


_add_reduce = np.add.reduce  # what ``ndarray.sum`` calls (numpy's ``_methods._sum``): the same bits


def contract(g, weights):
    """``g @ weights`` for gradients: an outer product (``k == 1``) as a broadcast multiply (BLAS is
    slow there), and an operand with a 0 stride (a broadcast gradient, e.g. of a sum) copied first:
    numpy's matmul leaves BLAS for a loop 50x slower on it; the rest as :func:`matmul`.

    >>> contract(np.ones((2, 1)), np.ones((1, 3))).shape
    (2, 3)
    """
    if g.shape[-1] == 1:
        return g * weights
    if 0 in g.strides:
        g = g.copy()
    if 0 in weights.strides:
        weights = weights.copy()
    return matmul(g, weights)


def tanh(xp, x):
    """``tanh(x)`` as a new array: on a float64 numpy array with the numba kernels enabled, semirad's
    own tanh (:mod:`semirad.kernels.tanh`: within 2.1 ulp of the exact value, 4.5x numpy's speed
    where numpy's is a libm call per element); everywhere else ``xp.tanh(x)`` (the kernel's numpy
    transcription, :func:`tanh_reference`, is 2.2-4.5x slower than numpy's own, so the fallback is
    numpy's: the two modes agree to 2 ulp, not bit for bit).

    >>> tanh(np, np.array([0.0, -30.0])).tolist()
    [0.0, -1.0]
    """
    if type(x) is _ndarray and x.dtype == _FLOAT64 and kernels.on():
        if not kernels.enabled():  # loading: the kernel's numpy transcription, the same bits
            return _tanh.tanh_numpy(x)
        # (from one element: a call costs about 1.5 µs, numpy's libm tanh 34 ns an element)
        out = np.empty(x.shape, dtype=_FLOAT64)
        _elementwise().tanh(x.ravel(), out.ravel())  # (ravel: a view where x is C-contiguous, 0.1 µs less than reshape)
        return out
    if type(x) is np.float64 and kernels.on():  # (what 0.5 * a 0-d array gives: the same tanh as arrays)
        return _tanh.tanh_numpy(np.asarray(x))[()]
    return xp.tanh(x)


def tanh_reference(xp, x):
    """What :func:`tanh` computes with the kernels on, in numpy operations (the same bits): the
    reference the kernel is tested against, and what whole-graph tests run in place of numpy's tanh
    to compare the two kernel modes bit for bit.

    >>> bool(tanh_reference(np, np.array([0.5]))[0] == _tanh.tanh_numpy(np.array([0.5]))[0])
    True
    """
    if type(x) is _ndarray and x.dtype == _FLOAT64:
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


def _elementwise():
    """The compiled elementwise kernels (loaded on first use)."""
    return kernels.compiled("elementwise")
