"""The composites behind the :class:`~semirad.Tensor` methods that follow PyTorch where numpy's
function of the same name differs or numpy has none (``x.max(1)``, ``var``, ``norm``, ``chunk``,
``split``, ``repeat``, in-place methods...). Each is built from the ops of :mod:`.functions` (index
maps, reductions, elementwise ops), so its scalar graph is exact in every semiring; the only ops
defined here are two identities, ``clone`` and ``astype``.

Arguments follow PyTorch (``dim``, ``keepdim``), and every reducing method also takes numpy's
``axis``/``keepdims``; bad dims raise an :class:`~semirad.OpError` naming the method and the shape.
"""

from __future__ import annotations

import math
import warnings
from collections import namedtuple

import numpy as np

from .. import backend, engine
from ..readonly import freeze
from . import functions as F
from . import index as I
from .core import OpError, OpIndexError, apply, tensor_type

#: identities of the scalar graph (one edge of weight 1 per element): a copy, and a dtype cast
#: (the sweep casts each leaf's result to its dtype, so the cast's backward passes ``g`` on as it is)
CLONE = I.Reshape("clone", lambda xp, x: x.copy())
ASTYPE = I.Reshape("astype", lambda xp, x, dtype: x.astype(dtype))

#: what ``x.max(dim)`` / ``x.min(dim)`` return, as ``torch.return_types.max``
MaxResult = namedtuple("max", ["values", "indices"])
MinResult = namedtuple("min", ["values", "indices"])


def _t(x):
    Tensor = tensor_type()
    return x if isinstance(x, Tensor) else Tensor(x)


# -- arguments ------------------------------------------------------------------------------------


def reduction_args(method: str, dim, keepdim, axis, keepdims) -> tuple:
    """``(dim, keepdim)`` from PyTorch's names or numpy's (``axis``, ``keepdims``); both forms of
    one argument is a ``TypeError`` naming the method.

    >>> reduction_args("sum", None, None, 1, True)
    (1, True)
    >>> reduction_args("sum", 0, None, 1, None)
    Traceback (most recent call last):
    ...
    TypeError: Tensor.sum() got both 'dim' and 'axis' (two names of one argument): pass one
    """
    if axis is not None:
        if dim is not None:
            raise TypeError(f"Tensor.{method}() got both 'dim' and 'axis' (two names of one argument): pass one")
        dim = axis
    if keepdims is not None:
        if keepdim is not None:
            raise TypeError(
                f"Tensor.{method}() got both 'keepdim' and 'keepdims' (two names of one argument): pass one"
            )
        keepdim = keepdims
    return dim, bool(keepdim)


def _dim_error(method: str, d, shape: tuple, n: int) -> OpIndexError:
    low, high = (-1, 0) if n == 0 else (-n, n - 1)
    return OpIndexError(
        f"Tensor.{method}: dimension {d} is out of range for a tensor of shape {shape} "
        f"(expected a dim in [{low}, {high}])"
    )


def one_dim(method: str, dim, shape: tuple, extra: int = 0) -> int:
    """``dim`` as a non-negative axis of ``shape`` (``extra`` more axes allowed, as ``unsqueeze``'s
    one); a 0-d tensor accepts ``0`` and ``-1``, as in PyTorch.

    >>> one_dim("softmax", -1, (2, 3))
    1
    """
    n = len(shape) + extra
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"Tensor.{method}: dim must be an int, got {dim!r}")
    bound = max(n, 1)
    if not -bound <= dim < bound:
        raise _dim_error(method, dim, shape, n)
    return int(dim) % bound if n else 0


def many_dims(method: str, dim, shape: tuple) -> tuple:
    """``dim`` (None, an int, or a sequence; empty means all, as in PyTorch) as sorted distinct axes.

    >>> many_dims("sum", (-1, 0), (2, 3, 4)), many_dims("sum", None, (2, 3)), many_dims("sum", (), (2,))
    ((0, 2), (0, 1), (0,))
    """
    if dim is None:
        return tuple(range(len(shape)))
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    if not dims:
        return tuple(range(len(shape)))
    out = sorted({one_dim(method, d, shape) for d in dims})
    if len(out) != len(dims) and len(shape):
        raise OpError(f"Tensor.{method}: dim {tuple(dims)} repeats an axis of shape {shape}")
    return tuple(out) if len(shape) else ()


def as_dtype(dtype):
    """A numpy dtype from a numpy dtype, a name, a Python type or a ``torch.dtype`` (by its name).

    >>> as_dtype("float32"), as_dtype(float)
    (dtype('float32'), dtype('float64'))
    """
    name = str(dtype)
    if name.startswith("torch."):  # torch.float32 -> float32, without importing torch
        name = name[len("torch.") :]
        try:
            return np.dtype(name)
        except TypeError:
            raise TypeError(f"dtype {dtype} has no numpy counterpart") from None
    return np.dtype(dtype)


# -- conversions ----------------------------------------------------------------------------------


def clone(x):
    """A copy recorded as an identity op (``clone``): gradients flow through it, as PyTorch's.

    >>> import semirad as sr
    >>> w = sr.tensor([1.0], requires_grad=True)
    >>> clone(w).requires_grad
    True
    """
    return apply(CLONE, _t(x))


def astype(x, dtype):
    """``x`` cast to ``dtype``: recorded (an identity edge) when the target is floating point, a
    constant otherwise (an integer result has no gradient, as in PyTorch).

    >>> import semirad as sr
    >>> astype(sr.tensor([1.5], requires_grad=True), "float32").dtype
    dtype('float32')
    """
    x = _t(x)
    dtype = as_dtype(dtype)
    if dtype.kind in "fc":
        return apply(ASTYPE, x, dtype=dtype)
    return tensor_type()._wrap(x.data.astype(dtype), None)


# -- reductions -----------------------------------------------------------------------------------


def reduce(op, method: str, x, dim, keepdim: bool):
    """A reduction op (``sum``, ``mean``, ``max``, ``min``, ``logsumexp``) over PyTorch-style dims."""
    axes = tuple(range(x.ndim)) if dim is None else many_dims(method, dim, x.shape)
    return apply(op, x, axes=axes, keepdims=keepdim)


def extremum(x, method: str, dim, keepdim: bool):
    """``x.max()``/``x.min()`` (no dim: the value, ties sharing the gradient evenly, as PyTorch's) or
    ``x.max(dim)`` (``(values, indices)``; the values are gathered at the first extreme element, so
    only that element gets the gradient, as PyTorch's).
    """
    largest = method == "max"
    if dim is None:
        if keepdim:
            raise TypeError(f"Tensor.{method}(): keepdim needs a dim")
        return (F.max if largest else F.min)(x)
    if isinstance(dim, (tuple, list)):
        raise TypeError(f"Tensor.{method}: dim must be one int (use amax/amin for several), got {dim!r}")
    d = one_dim(method, dim, x.shape)
    xp = backend.namespace(x.data)
    result = MaxResult if largest else MinResult
    if x.ndim == 0:
        return result(clone(x), tensor_type()._wrap(xp.zeros((), dtype=np.int64), None))
    if x.shape[d] == 0:
        raise OpIndexError(f"Tensor.{method}: dim {dim} of a tensor of shape {x.shape} is empty (nothing to reduce)")
    index = (xp.argmax if largest else xp.argmin)(x.data, axis=d).astype(np.int64)
    values = gather_along(x, index, d)
    if keepdim:
        values, index = F.expand_dims(values, d), xp.expand_dims(index, d)
    return result(values, tensor_type()._wrap(index, None))


def gather_along(x, index, d: int):
    """``out[..., k, ...] = x[..., index[..., k, ...], ...]`` where ``index`` has ``x``'s shape without
    axis ``d``: one integer-array getitem (one edge per output element)."""
    xp = backend.namespace(x.data)
    shape = index.shape
    grids = [xp.arange(n).reshape([n if j == i else 1 for j in range(len(shape))]) for i, n in enumerate(shape)]
    return F.getitem(x, tuple(grids[:d]) + (index,) + tuple(grids[d:]))


def correction_arg(method: str, unbiased, correction) -> float:
    """Bessel's correction from PyTorch's ``unbiased`` (a bool) or ``correction`` (default 1).

    >>> correction_arg("var", False, None), correction_arg("var", None, None)
    (0, 1)
    """
    if unbiased is not None and correction is not None:
        raise TypeError(f"Tensor.{method}() got both 'unbiased' and 'correction': pass one")
    if correction is not None:
        return correction
    return 1 if unbiased is None else int(bool(unbiased))


def variance(x, method: str, dim, correction, keepdim: bool):
    """``sum((x - mean)**2) / max(N - correction, 0)`` over ``dim``; a composite."""
    dims = many_dims(method, dim, x.shape)
    count = math.prod(x.shape[d] for d in dims)
    divisor = max(count - correction, 0)
    if divisor <= 0:
        warnings.warn(
            f"{method}(): degrees of freedom is <= 0 (correction {correction} for {count} elements); "
            "the result is inf or nan, as PyTorch's",
            RuntimeWarning,
            stacklevel=3,
        )
    centered = x - F.mean(x, dims, keepdims=True)
    total = F.sum(centered**2, dims, keepdims=keepdim)
    with np.errstate(divide="ignore", invalid="ignore"):
        return total / backend.namespace(x.data).asarray(divisor, dtype=total.dtype)


def safe_root(s, power: float):
    """``s ** power`` (``power`` in (0, 1), as a root), with gradient 0 where ``s == 0``, as PyTorch's
    norms and ``std`` there: two ``where``s keep the root's infinite slope at 0 off the graph. Where
    no element is 0 (the common case) it is the root alone."""
    root = (lambda t: F.sqrt(t)) if power == 0.5 else (lambda t: F.power(t, power))
    zero = s.data == 0
    if not zero.any():
        return root(s)
    xp = backend.namespace(s.data)
    zero = xp.asarray(zero)
    return F.where(zero, 0.0, root(F.where(zero, 1.0, s)))


def standard_deviation(x, method: str, dim, correction, keepdim: bool):
    """``sqrt(var)``; gradient 0 where the variance is 0 (as PyTorch)."""
    return safe_root(variance(x, method, dim, correction, keepdim), 0.5)


def norm(x, p, dim, keepdim: bool):
    """PyTorch's vector norm over ``dim`` (all elements when None): ``p`` 2 or ``"fro"`` (the
    default), 1, ``inf``, ``-inf`` or any other positive number; the gradient at 0 is 0, as PyTorch's."""
    if isinstance(p, str) and p != "fro":
        raise OpError(f"Tensor.norm: p={p!r} is not supported (use 'fro', inf, -inf or a positive number)")
    p = 2.0 if p == "fro" else float(p)
    dims = many_dims("norm", dim, x.shape)
    if p == math.inf:
        return F.max(F.abs(x), dims, keepdim)
    if p == -math.inf:
        return F.min(F.abs(x), dims, keepdim)
    if p == 1.0:
        return F.sum(F.abs(x), dims, keepdim)
    if p == 2.0:
        return safe_root(F.sum(x**2, dims, keepdim), 0.5)
    if not p > 0:
        raise OpError(f"Tensor.norm: p={p} is not supported (p must be positive, inf or -inf)")
    return safe_root(F.sum(F.abs(x) ** p, dims, keepdim), 1.0 / p)


def product(x, dim, keepdim: bool):
    """Product over one ``dim`` (or all elements): a tree of pairwise ``mul``s of slices, so every
    element's edges carry the product of its partners (exact at zeros too). Integers and bools
    multiply as int64, as in PyTorch."""
    if x.dtype.kind in "biu":
        x = astype(x, np.int64)
    if dim is None:
        out = _product_along(F.reshape(x, -1), 0)
        return F.reshape(out, (1,) * x.ndim) if keepdim else out
    d = one_dim("prod", dim, x.shape)
    if x.ndim == 0:
        return clone(x)
    out = _product_along(x, d)
    return F.expand_dims(out, d) if keepdim else out


def _product_along(x, d: int):
    before = (slice(None),) * d
    if x.shape[d] == 0:
        return F.sum(x, (d,)) + 1  # the empty product
    while x.shape[d] > 1:
        n = x.shape[d]
        half = n // 2
        paired = x[before + (slice(0, half),)] * x[before + (slice(half, 2 * half),)]
        x = F.concat([paired, x[before + (slice(2 * half, n),)]], axis=d) if n % 2 else paired
    return F.squeeze(x, d)


def softmax(x, method: str, dim, dtype):
    """``softmax``/``log_softmax`` over one dim (the last when None), optionally after a dtype cast."""
    if dtype is not None:
        x = astype(x, dtype)
    d = -1 if dim is None else one_dim(method, dim, x.shape)
    return (F.softmax if method == "softmax" else F.log_softmax)(x, axis=d)


# -- shapes: index maps ---------------------------------------------------------------------------


def sizes_argument(sizes) -> tuple:
    """``(2, 3)`` from ``f(2, 3)`` or ``f((2, 3))`` (PyTorch's two spellings of a shape)."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    return tuple(sizes)


def view(x, sizes: tuple, method: str = "view"):
    """``x`` reshaped to ``sizes`` (one ``-1`` inferred), checked with an error naming the method.

    >>> import semirad as sr
    >>> view(sr.tensor(np.zeros((2, 3))), (3, -1)).shape
    (3, 2)
    """
    sizes = sizes_argument(sizes)
    if any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) for n in sizes):
        raise TypeError(f"Tensor.{method}: sizes must be ints, got {sizes} ({method}(dtype) is not supported)")
    known = math.prod(n for n in sizes if n != -1)
    unknown = sum(n == -1 for n in sizes)
    fits = known == x.data.size if not unknown else known and x.data.size % known == 0
    if unknown > 1 or any(n < -1 for n in sizes) or not fits:
        raise OpError(
            f"Tensor.{method}: shape {sizes} is invalid for a tensor of shape {x.shape} ({x.data.size} elements)"
        )
    return F.reshape(x, tuple(int(n) for n in sizes))


def permute(x, dims: tuple):
    """Axis ``dims[i]`` of ``x`` becomes axis ``i`` (a transpose), checked with an error naming ``permute``."""
    dims = sizes_argument(dims)
    axes = [one_dim("permute", d, x.shape) for d in dims]
    if sorted(axes) != list(range(x.ndim)):
        raise OpError(f"Tensor.permute: dims {dims} are not a permutation of the dimensions of shape {x.shape}")
    return F.transpose(x, tuple(axes))


def flatten(x, start_dim: int, end_dim: int):
    """Merge axes ``start_dim..end_dim`` into one (a reshape); a 0-d tensor becomes 1-D, as PyTorch's."""
    start, end = one_dim("flatten", start_dim, x.shape), one_dim("flatten", end_dim, x.shape)
    if x.ndim == 0:
        return F.reshape(x, 1)
    if start > end:
        raise OpError(f"Tensor.flatten: start_dim {start_dim} comes after end_dim {end_dim} (shape {x.shape})")
    shape = x.shape[:start] + (math.prod(x.shape[start : end + 1]),) + x.shape[end + 1 :]
    return F.reshape(x, shape)


def squeeze(x, dim):
    """Remove the given axes that have length 1 (all length-1 axes when None); others stay, as
    PyTorch's (numpy's squeeze raises on them)."""
    if dim is None:
        return F.squeeze(x)
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    kept = tuple(sorted({one_dim("squeeze", d, x.shape) for d in dims}))
    return F.squeeze(x, tuple(d for d in kept if x.ndim and x.shape[d] == 1))


def expand(x, sizes: tuple):
    """Broadcast to ``sizes`` (``-1`` keeps an axis; new axes go in front), as PyTorch's ``expand``."""
    sizes = tuple(int(n) for n in sizes)
    lead = len(sizes) - x.ndim
    if lead < 0:
        raise OpError(
            f"Tensor.expand: the number of sizes {sizes} ({len(sizes)}) must be at least the number of "
            f"dimensions of the tensor of shape {x.shape}"
        )
    target = []
    for i, n in enumerate(sizes):
        old = x.shape[i - lead] if i >= lead else None
        if n == -1:
            if old is None:
                raise OpError(f"Tensor.expand: -1 is not allowed for the new leading dimension {i} (sizes {sizes})")
            n = old
        elif n < 0 or (old is not None and old != 1 and old != n):
            raise OpError(
                f"Tensor.expand: the expanded size {n} must match the existing size {old} at non-singleton "
                f"dimension {i} (target sizes {sizes}, tensor shape {x.shape})"
            )
        target.append(n)
    return F.broadcast_to(x, tuple(target))


def repeat(x, sizes: tuple):
    """Tile ``x`` ``sizes[i]`` times along each axis, as PyTorch's ``repeat`` (numpy's ``tile``):
    a broadcast between reshapes (each output element has one edge to the element it copies)."""
    sizes = tuple(int(n) for n in sizes)
    if len(sizes) < x.ndim:
        raise OpError(
            f"Tensor.repeat: the number of repeats {sizes} ({len(sizes)}) can not be smaller than the number of "
            f"dimensions of the tensor of shape {x.shape}"
        )
    if any(n < 0 for n in sizes):
        raise OpError(f"Tensor.repeat: repeats must be non-negative, got {sizes}")
    shape = (1,) * (len(sizes) - x.ndim) + x.shape
    spread = F.reshape(x, tuple(v for n in shape for v in (1, n)))
    tiled = F.broadcast_to(spread, tuple(v for r, n in zip(sizes, shape) for v in (r, n)))
    return F.reshape(tiled, tuple(r * n for r, n in zip(sizes, shape)))


def split(x, split_size_or_sections, dim: int) -> tuple:
    """Pieces along ``dim`` (basic slices: each piece is a ``getitem`` of ``x``), as PyTorch's
    ``split``: an int is the size of every piece but the last, a list gives every size."""
    d = one_dim("split", dim, x.shape)
    if x.ndim == 0:
        raise OpError("Tensor.split: a 0-d tensor has no dimension to split")
    n = x.shape[d]
    if isinstance(split_size_or_sections, (int, np.integer)):
        size = int(split_size_or_sections)
        if size < 0 or (size == 0 and n):
            raise OpError(f"Tensor.split: split_size must be positive, got {size} (dimension {dim} of shape {x.shape})")
        sizes = [size] * (n // size) + ([n % size] if n % size else []) if size else [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != n or any(s < 0 for s in sizes):
            raise OpError(
                f"Tensor.split: split sizes {sizes} must be non-negative and sum to {n} (dimension {dim} of "
                f"shape {x.shape})"
            )
    before = (slice(None),) * d
    pieces, start = [], 0
    for size in sizes:
        pieces.append(x[before + (slice(start, start + size),)])
        start += size
    return tuple(pieces)


def chunk(x, chunks: int, dim: int) -> tuple:
    """``split(x, ceil(n / chunks), dim)``: at most ``chunks`` pieces, as PyTorch's ``chunk``."""
    if chunks <= 0:
        raise OpError(f"Tensor.chunk: chunks must be greater than 0, got {chunks}")
    d = one_dim("chunk", dim, x.shape)
    if x.ndim == 0:
        raise OpError("Tensor.chunk: a 0-d tensor has no dimension to split")
    n = x.shape[d]
    if n == 0:
        return tuple(x for _ in range(chunks))
    return split(x, -(-n // chunks), d)


def unbind(x, dim: int) -> tuple:
    """The slices ``x[..., i, ...]`` along ``dim``, each a ``getitem`` of ``x``."""
    d = one_dim("unbind", dim, x.shape)
    if x.ndim == 0:
        raise OpError("Tensor.unbind: a 0-d tensor has no dimension to unbind")
    before = (slice(None),) * d
    return tuple(x[before + (i,)] for i in range(x.shape[d]))


# -- in-place methods -----------------------------------------------------------------------------


def check_inplace(x, method: str) -> None:
    """PyTorch's rule: a leaf that requires grad can't be changed in place while ops record."""
    if x._node is not None and x._node.op is None and engine.recording():
        raise RuntimeError(
            f"{method}: a leaf Variable that requires grad is being used in an in-place operation "
            "(do it under `with sr.no_grad():`, as an optimizer step does)"
        )


def assign_inplace(x, result, method: str):
    """Make ``x`` hold ``result`` (of ``x``'s shape; cast to its dtype) and return ``x``.

    A recorded ``result`` becomes ``x``'s node: later ops see the new value and differentiate
    through it, and graphs recorded before keep the arrays they saw. An unrecorded one (under
    ``no_grad``, or nothing requires grad) replaces only the data: a leaf stays the same leaf."""
    result = _t(result)
    if result.shape != x.shape:
        raise RuntimeError(f"{method}: output with shape {x.shape} doesn't match the broadcast shape {result.shape}")
    if result.dtype != x.dtype:
        if not np.can_cast(result.dtype, x.dtype, "same_kind"):
            raise RuntimeError(
                f"{method}: result type {result.dtype} can't be cast to the desired output type {x.dtype}"
            )
        result = astype(result, x.dtype)
    if result._node is not None:
        x._data, x._node = result._data, result._node
    else:
        x._data = freeze(result._data)
    return x
