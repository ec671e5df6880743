"""``nn.functional``: layers and losses as functions, all composed from semirad's tensor ops.

Nothing here has a backward rule of its own: every function is a composite of the core ops
(``matmul``, ``getitem`` with integer arrays, ``logsumexp``...), so its scalar graph is exact in
every semiring and a trace through it names the ops it passes. ``linear`` is itself a core op
(:class:`semirad.ops.contraction.Linear`: one vertex per output element, as PyTorch's ``addmm``).
Argument names and defaults follow ``torch.nn.functional``.

>>> import semirad as sr
>>> import semirad.nn.functional as F
>>> logits = sr.tensor([[2.0, 0.0, -1.0]], requires_grad=True)
>>> round(F.cross_entropy(logits, np.array([0])).item(), 4)
0.1698
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np

from .. import backend
from ..engine import component
from ..ops import functions as O
from ..ops.contraction import LINEAR
from ..ops.core import apply
from ..rng import get_generator
from ..tensor import Tensor

_REDUCTIONS = ("mean", "sum", "none")


def _t(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def _data(x):
    if isinstance(x, Tensor):
        return x.data
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor
        return x.detach().cpu().numpy()
    return x if backend.is_array(x) else np.asarray(x)


def _pair(value, name: str) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    value = tuple(int(v) for v in value)
    if len(value) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value}")
    return value


def _reduce(loss, reduction: str, fn: str):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{fn}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


# -- layers ---------------------------------------------------------------------------------------


def linear(input, weight, bias=None):
    """``input @ weight.T + bias`` with ``weight`` of shape ``(out_features, in_features)``.

    >>> import semirad as sr
    >>> linear(sr.tensor(np.ones((2, 3))), sr.tensor(np.ones((4, 3)))).shape
    (2, 4)
    """
    x, w = _t(input), _t(weight)
    if w.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape {w.shape}")
    if x.ndim == 0 or x.shape[-1] != w.shape[1]:
        raise ValueError(
            f"linear: input of shape {x.shape} does not match weight of shape {w.shape} "
            f"(the input's last dimension must be {w.shape[1]})"
        )
    if bias is None:
        return apply(LINEAR, x, w)
    return apply(LINEAR, x, w, _t(bias))


def relu(input):
    return O.relu(_t(input))


def tanh(input):
    return O.tanh(_t(input))


def sigmoid(input):
    return O.sigmoid(_t(input))


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False):
    """``x`` where ``x > 0``, else ``negative_slope * x``: one ``mul`` by the local slope (1 or
    ``negative_slope``, the latter at 0 as PyTorch), so each element keeps its single exact edge.
    ``inplace`` is accepted for PyTorch code; the result is always a new tensor.

    >>> import semirad as sr
    >>> leaky_relu(sr.tensor([-2.0, 0.0, 3.0]), 0.1).tolist()
    [-0.2, 0.0, 3.0]
    """
    x = _t(input)
    xp = backend.namespace(x.data)
    slope = xp.where(x.data > 0, 1.0, float(negative_slope)).astype(x.dtype, copy=False)
    return x * slope


def softmax(input, dim: int | None = None, _stacklevel: int = 3, dtype=None):
    """``exp(log_softmax(input, dim))`` (a composite: exact in every semiring), optionally after a
    cast to ``dtype``. Without ``dim`` it warns and picks PyTorch's implicit dim (0 for 0-, 1- and
    3-D input, else 1), as ``torch.nn.functional.softmax`` does.

    >>> import semirad as sr
    >>> softmax(sr.tensor([[0.0, 0.0]]), dim=-1).tolist()
    [[0.5, 0.5]]
    """
    x = _t(input)
    return x.softmax(_softmax_dim("softmax", dim, x.ndim, _stacklevel), dtype)


def log_softmax(input, dim: int | None = None, _stacklevel: int = 3, dtype=None):
    """``input - logsumexp(input, dim)``; ``dim`` and ``dtype`` as in :func:`softmax`.

    >>> import semirad as sr
    >>> round(log_softmax(sr.tensor([0.0, 0.0]), dim=0)[0].item(), 4)
    -0.6931
    """
    x = _t(input)
    return x.log_softmax(_softmax_dim("log_softmax", dim, x.ndim, _stacklevel), dtype)


def _softmax_dim(name: str, dim, ndim: int, stacklevel: int) -> int:
    """``dim``, or PyTorch's deprecated implicit choice (with its warning) when it is None."""
    if dim is not None:
        return dim
    warnings.warn(
        f"Implicit dimension choice for {name} has been deprecated. Change the call to include dim=X as an argument.",
        UserWarning,
        stacklevel=stacklevel,
    )
    return 0 if ndim in (0, 1, 3) else 1


def dropout(input, p: float = 0.5, training: bool = True, generator=None):
    """Zero each element with probability ``p`` and scale the rest by ``1/(1-p)`` (only when training).

    The mask comes from ``generator`` (a ``numpy.random.Generator`` or int seed) or the default
    generator that ``sr.manual_seed`` reseeds.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    x = _t(input)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * np.zeros(x.shape, dtype=x.dtype)
    keep = get_generator(generator).random(x.shape) >= p
    xp = backend.namespace(x.data)
    return x * xp.asarray(keep.astype(x.dtype) / (1.0 - p))


def embedding(input, weight, padding_idx: int | None = None):
    """Rows of ``weight`` picked by the integer array ``input`` (a gather: repeated indices are
    separate edges). The row ``padding_idx`` gets no gradient, as in PyTorch."""
    w = _t(weight)
    idx = _int_array(input, "embedding")
    if w.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got shape {w.shape}")
    n = w.shape[0]
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        bad = int(idx.min()) if idx.min() < 0 else int(idx.max())
        raise ValueError(
            f"embedding: index {bad} is out of range for {n} embeddings (indices of shape {tuple(idx.shape)})"
        )
    xp = backend.namespace(w.data)
    out = w[xp.asarray(idx)]
    if padding_idx is not None:
        keep = xp.asarray(idx != _padding_index(padding_idx, n))[..., None]
        out = O.where(xp.broadcast_to(keep, out.shape), out, out.detach())
    return out


def _padding_index(padding_idx: int, n: int) -> int:
    if not -n <= padding_idx < n:
        raise ValueError(f"padding_idx {padding_idx} must be within num_embeddings ({n})")
    return padding_idx % n


def _int_array(x, fn: str) -> np.ndarray:
    a = backend.to_numpy(_data(x))
    if a.dtype.kind not in "iu":
        if a.size:
            raise TypeError(f"{fn}: indices must be integers, got dtype {a.dtype}")
        a = a.astype(np.int64)
    return a


def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5):
    """``(x - mean) / sqrt(var + eps) * weight + bias`` over the last ``len(normalized_shape)`` axes
    (biased variance, as PyTorch); every intermediate is a graph vertex."""
    x = _t(input)
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or x.ndim < k or tuple(x.shape[-k:]) != tuple(shape):
        raise ValueError(f"layer_norm: input of shape {x.shape} does not end with normalized_shape {tuple(shape)}")
    axes = tuple(range(x.ndim - k, x.ndim))
    centered = x - x.mean(axis=axes, keepdims=True)
    var = (centered * centered).mean(axis=axes, keepdims=True)
    out = centered / O.sqrt(var + eps)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


# -- GELU and attention ---------------------------------------------------------------------------

_SQRT_HALF = float(np.sqrt(0.5))
_TANH_GELU_SCALE = float(np.sqrt(2.0 / np.pi))


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5):  # fmt: skip
    """Normalise each channel (axis 1) of ``(N, C, *)`` input, then ``* weight + bias``, as PyTorch.

    Training (or no running statistics): the batch mean and biased variance over every axis but 1,
    composed from ``mean``/``sub``/``mul``/``sqrt``/``div`` (every intermediate a graph vertex); the
    running statistics, when given, are updated in place (a tensor's ``.data`` is replaced) with
    ``(1 - momentum) * running + momentum * batch`` and the unbiased variance. Otherwise the running
    statistics are constants of the graph.

    >>> import semirad as sr
    >>> mean, var = np.zeros(2), np.ones(2)
    >>> out = batch_norm(sr.tensor([[0.0, 1.0], [2.0, 5.0]]), mean, var, training=True)
    >>> out.numpy().round(3).tolist(), mean.round(6).tolist(), var.round(6).tolist()
    ([[-1.0, -1.0], [1.0, 1.0]], [0.1, 0.3], [1.1, 1.7])
    """
    out, new_mean, new_var = _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps,
                                         "batch_norm")  # fmt: skip
    for stat, new, name in ((running_mean, new_mean, "running_mean"), (running_var, new_var, "running_var")):
        if new is None:
            continue
        if isinstance(stat, Tensor):
            stat.data = new
        elif backend.is_array(stat) and (not isinstance(stat, np.ndarray) or stat.flags.writeable):
            stat[...] = new
        else:
            raise ValueError(
                f"batch_norm: {name} must be a writable array or a tensor to be updated in training mode, "
                f"got a read-only {type(stat).__name__}"
            )
    return out


def _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps, fn: str):
    """``(output, new running mean, new running var)``; the new statistics are None when not updated."""
    x = _t(input)
    if x.ndim < 2:
        raise ValueError(f"{fn}: expected an input of shape (N, C, *) with a channel axis, got shape {x.shape}")
    channels = x.shape[1]
    for name, value in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                        ("bias", bias)):  # fmt: skip
        if value is not None and tuple(_data(value).shape) != (channels,):
            raise ValueError(
                f"{fn}: {name} of shape {tuple(_data(value).shape)} does not match the {channels} channels of "
                f"input of shape {x.shape}"
            )
    if not training and (running_mean is None or running_var is None):
        raise ValueError(f"{fn}: running_mean and running_var are needed when training=False")
    stat_shape = (1, channels) + (1,) * (x.ndim - 2)
    xp = backend.namespace(x.data)
    new_mean = new_var = None
    if training:
        count = int(np.prod(x.shape)) // channels if channels else 0
        if count <= 1:
            raise ValueError(
                f"{fn}: expected more than 1 value per channel when training, got input of shape {x.shape}"
            )
        axes = (0,) + tuple(range(2, x.ndim))
        mean = O.mean(x, axis=axes, keepdims=True)
        centered = x - mean
        var = O.mean(centered * centered, axis=axes, keepdims=True)
        out = centered / O.sqrt(var + eps)
        m = float(momentum)
        if running_mean is not None:
            old = _data(running_mean)
            new_mean = ((1 - m) * old + m * mean.data.reshape(channels)).astype(old.dtype, copy=False)
        if running_var is not None:
            old = _data(running_var)
            unbiased = var.data.reshape(channels) * (count / (count - 1))
            new_var = ((1 - m) * old + m * unbiased).astype(old.dtype, copy=False)
    else:
        mean = xp.asarray(_data(running_mean)).reshape(stat_shape).astype(x.dtype)
        std = xp.sqrt(xp.asarray(_data(running_var)).reshape(stat_shape).astype(x.dtype) + eps)
        out = (x - mean) / std
    if weight is not None:
        out = out * O.reshape(_t(weight), stat_shape)
    if bias is not None:
        out = out + O.reshape(_t(bias), stat_shape)
    return out, new_mean, new_var


def gelu(input, approximate: str = "none"):
    """Gaussian error linear unit: ``x * Φ(x)`` = ``0.5 x (1 + erf(x / √2))``, or with
    ``approximate="tanh"`` ``0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))``, as PyTorch.

    A composite of ``erf``, ``mul`` and ``add`` (PyTorch's formula); the tanh form is computed as
    ``x · sigmoid(2 √(2/π) (x + 0.044715 x³))``, the same function without the cancellation of
    ``1 + tanh`` for negative ``x``. ``x`` reaches the output along two edges (the factor ``x`` and
    the one inside ``Φ``).

    >>> import semirad as sr
    >>> [round(v, 4) for v in gelu(sr.tensor([-1.0, 0.0, 2.0]), approximate="tanh").tolist()]
    [-0.1588, 0.0, 1.9546]
    """
    x = _t(input)
    if approximate == "none":
        return x * 0.5 * (O.erf(x * _SQRT_HALF) + 1.0)
    if approximate == "tanh":
        inner = (x + O.power(x, 3) * 0.044715) * (2.0 * _TANH_GELU_SCALE)
        return x * O.sigmoid(inner)  # 0.5 (1 + tanh(u)) = sigmoid(2u)
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def _float_mask(mask, dtype, fn: str, name: str, true_means_masked: bool = True):
    """``mask`` as an additive float array: a bool mask becomes ``-inf`` where it masks, 0 elsewhere
    (``True`` masks in ``nn.MultiheadAttention``; ``True`` keeps in ``scaled_dot_product_attention``);
    a float mask is added as it is. ``None`` stays ``None``."""
    if mask is None:
        return None
    array = _data(mask)
    kind = array.dtype.kind
    if kind == "b":
        xp = backend.namespace(array)
        masked = array if true_means_masked else ~array
        return xp.where(masked, -np.inf, 0.0).astype(dtype)
    if kind != "f":
        raise TypeError(f"{fn}: {name} must be a bool or floating-point array, got dtype {array.dtype}")
    return array.astype(dtype, copy=False)


def _causal_mask(query_len: int, key_len: int, dtype) -> np.ndarray:
    """``-inf`` above the diagonal of a ``(query_len, key_len)`` grid: query ``i`` sees keys ``j <= i``."""
    return np.triu(np.full((query_len, key_len), -np.inf, dtype=dtype), k=1)


def _attend(q, k, v, mask, scale: float, dropout_p: float, generator, fn: str):
    """``softmax(q kᵀ · scale + mask) v`` over the last two axes, with its steps recorded in the
    components ``scores`` (``q kᵀ · scale + mask``), ``softmax`` (and attention dropout) and ``mix``
    (``weights @ v``). Returns ``(output, weights)``.

    ``mask`` is additive (``-inf`` masks a key: its weight is exactly 0, so no path passes
    it with a nonzero weight). A query whose every key is masked would divide 0 by 0; it is refused.
    """
    if mask is not None:
        shape = tuple(q.shape[:-1]) + (k.shape[-2],)
        xp = backend.namespace(mask)
        try:
            full = xp.broadcast_to(mask, shape)
        except ValueError:
            raise ValueError(f"{fn}: attention mask of shape {tuple(mask.shape)} does not broadcast "
                             f"to the scores' shape {shape}") from None  # fmt: skip
        blocked = backend.to_numpy(xp.isneginf(full).all(axis=-1))
        if blocked.any():
            where = tuple(int(i) for i in np.argwhere(blocked)[0])
            raise ValueError(
                f"{fn}: every key is masked for the query at scores index {where} (scores of shape "
                f"{shape}); its softmax would be 0/0 (PyTorch gives NaN or 0 there). Leave at least "
                "one key unmasked for every query"
            )
    with component("scores"):
        scores = (q * scale) @ O.swapaxes(k, -1, -2)
        if mask is not None:
            scores = scores + mask
    with component("softmax"):
        weights = O.softmax(scores, axis=-1)
        if dropout_p > 0.0:
            weights = dropout(weights, dropout_p, True, generator)
    with component("mix"):
        out = weights @ v
    return out, weights


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p: float = 0.0, is_causal: bool = False,
                                 scale: float | None = None):  # fmt: skip
    """``softmax(query @ keyᵀ · scale + mask) @ value`` with PyTorch's arguments and shapes:
    ``query`` ``(..., L, E)``, ``key`` ``(..., S, E)``, ``value`` ``(..., S, Ev)`` → ``(..., L, Ev)``.

    ``attn_mask`` broadcasts to ``(..., L, S)``: a bool mask keeps the keys where it is ``True``
    (PyTorch's rule here, the opposite of ``nn.MultiheadAttention``'s), a float mask is added to
    the scores. ``is_causal`` lets query ``i`` see keys ``j <= i`` (not together with
    ``attn_mask``). ``scale`` defaults to ``1/sqrt(E)``; dropout (``dropout_p``) is applied to the
    weights whenever ``dropout_p > 0``. The steps are recorded in the components ``scores``,
    ``softmax`` and ``mix``. A query whose every key is masked is an error (PyTorch returns 0).

    >>> import semirad as sr
    >>> q = sr.tensor(np.ones((2, 3, 4)))
    >>> scaled_dot_product_attention(q, q, sr.tensor(np.ones((2, 3, 5))), is_causal=True).shape
    (2, 3, 5)
    """
    fn = "scaled_dot_product_attention"
    q, k, v = _t(query), _t(key), _t(value)
    if min(q.ndim, k.ndim, v.ndim) < 2 or q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"{fn}: expected query (..., L, E), key (..., S, E) and value (..., S, Ev), got shapes "
            f"{q.shape}, {k.shape} and {v.shape}"
        )
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"{fn}: dropout_p must be between 0 and 1, got {dropout_p}")
    if is_causal and attn_mask is not None:
        raise ValueError(f"{fn}: attn_mask must not be given together with is_causal=True")
    if is_causal:
        mask = backend.namespace(q.data).asarray(_causal_mask(q.shape[-2], k.shape[-2], q.dtype))
    else:
        mask = _float_mask(attn_mask, q.dtype, fn, "attn_mask", true_means_masked=False)
    scale = 1.0 / float(np.sqrt(q.shape[-1])) if scale is None else float(scale)
    return _attend(q, k, v, mask, scale, float(dropout_p), None, fn)[0]


# -- convolution and pooling: unfold (an integer-array gather) + matmul / reduction ---------------


@lru_cache(maxsize=128)
def _window_positions(h, w, kh, kw, sh, sw, pads, dh, dw):
    """Flat position in an ``h*w`` image of each kernel tap (rows) of each output pixel (columns);
    taps that fall in the padding point at position ``h*w`` (one extra padding element)."""
    top, bottom, left, right = pads
    oh = (h + top + bottom - dh * (kh - 1) - 1) // sh + 1
    ow = (w + left + right - dw * (kw - 1) - 1) // sw + 1
    if oh < 1 or ow < 1:
        return None, oh, ow, False
    ys = (np.arange(oh) * sh - top)[None, :, None] + (np.arange(kh) * dh)[:, None, None]  # (kh, oh, 1)
    xs = (np.arange(ow) * sw - left)[None, None, :] + (np.arange(kw) * dw)[:, None, None]  # (kw, 1, ow)
    ys = ys[:, None, :, :]  # (kh, 1, oh, 1)
    xs = xs[None, :, :, :]  # (1, kw, 1, ow)
    inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
    pos = np.where(inside, ys * w + xs, h * w).reshape(kh * kw, oh * ow)
    pos.setflags(write=False)
    return pos, oh, ow, not bool(inside.all())


@lru_cache(maxsize=128)
def _unfold_index(h, w, kernel, stride, pads, dilation, channels):
    """Gather index into the flattened ``(channels*h*w [+1])`` image: rows (channel, ky, kx) in C
    order, matching ``weight.reshape(out, channels*kh*kw)``; padding taps read the one zero element
    appended after the image."""
    pos = _window_positions(h, w, *kernel, *stride, pads, *dilation)[0]
    plane = h * w
    chan = np.arange(channels)[:, None, None] * plane
    index = np.where(pos[None] == plane, channels * plane, chan + pos[None]).reshape(channels * pos.shape[0], -1)
    index.setflags(write=False)
    return index


def _pads(padding, kernel, dilation, name: str) -> tuple[int, int, int, int]:
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0
        if padding == "same":
            out = []
            for k, d in zip(kernel, dilation, strict=True):
                total = d * (k - 1)
                out += [total // 2, total - total // 2]
            return tuple(out)
        raise ValueError(f"{name}: padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    ph, pw = _pair(padding, "padding")
    if ph < 0 or pw < 0:
        raise ValueError(f"{name}: padding must be non-negative, got {padding}")
    return ph, ph, pw, pw


def _image_input(input, fn: str, channels: int | None = None):
    x = _t(input)
    if x.ndim not in (3, 4):
        raise ValueError(f"{fn}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape {x.shape}")
    batched = x.ndim == 4
    if not batched:
        x = O.expand_dims(x, 0)
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{fn}: expected input with {channels} channels, got shape {_t(input).shape}")
    return x, batched


def _positions(x_shape, kernel, stride, pads, dilation, fn: str, original_shape):
    h, w = x_shape[2], x_shape[3]
    pos, oh, ow, padded = _window_positions(h, w, *kernel, *stride, pads, *dilation)
    if pos is None:
        raise ValueError(
            f"{fn}: input of shape {tuple(original_shape)} is too small for kernel {kernel} with "
            f"padding {pads[::2]} and dilation {dilation} (output would be {oh}x{ow})"
        )
    return pos, oh, ow, padded


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1):
    """2-D cross-correlation as PyTorch computes it, built as unfold + matmul.

    The unfold is one integer-array gather from the flattened image (padding taps read one extra
    zero element), so every weight-input product is an edge of the matmul's scalar graph.

    >>> import semirad as sr
    >>> conv2d(sr.tensor(np.ones((1, 2, 5, 5))), sr.tensor(np.ones((3, 2, 3, 3))), padding=1).shape
    (1, 3, 5, 5)
    """
    w = _t(weight)
    if w.ndim != 4:
        raise ValueError(f"conv2d: weight must be 4-D (out_channels, in_channels/groups, kH, kW), got {w.shape}")
    if groups < 1 or w.shape[0] % groups:
        raise ValueError(f"conv2d: out_channels {w.shape[0]} is not divisible by groups {groups}")
    x, batched = _image_input(input, "conv2d", w.shape[1] * groups)
    kernel = (w.shape[2], w.shape[3])
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    if min(stride) < 1 or min(dilation) < 1:
        raise ValueError(f"conv2d: stride and dilation must be positive, got {stride} and {dilation}")
    if padding == "same" and stride != (1, 1):
        raise ValueError("conv2d: padding='same' is not supported for strided convolutions")
    pads = _pads(padding, kernel, dilation, "conv2d")
    pos, oh, ow, padded = _positions(x.shape, kernel, stride, pads, dilation, "conv2d", _t(input).shape)
    n, c, h, wd = x.shape
    cg = c // groups
    xp = backend.namespace(x.data)
    index = xp.asarray(_unfold_index(h, wd, kernel, stride, pads, dilation, cg))
    outs = []
    og = w.shape[0] // groups
    for g in range(groups):
        xg = x if groups == 1 else x[:, g * cg : (g + 1) * cg]
        flat = xg.reshape(n, cg * h * wd)
        if padded:
            flat = O.concat([flat, xp.zeros((n, 1), dtype=x.dtype)], axis=1)
        cols = flat[:, index]  # (N, cg*kh*kw, L)
        wg = w if groups == 1 else w[g * og : (g + 1) * og]
        outs.append(wg.reshape(og, -1) @ cols)  # (N, og, L)
    out = outs[0] if groups == 1 else O.concat(outs, axis=1)
    if bias is not None:
        out = out + _t(bias).reshape(-1, 1)
    out = out.reshape(n, w.shape[0], oh, ow)
    return out if batched else O.squeeze(out, 0)


def _pool(input, kernel_size, stride, padding, reduce: str, fn: str, count_include_pad: bool = True, dilation=1):
    x, batched = _image_input(input, fn)
    kernel = _pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else _pair(stride, "stride")
    dilation = _pair(dilation, "dilation")
    ph, pw = _pair(padding, "padding")
    if min(kernel) < 1 or min(stride) < 1:
        raise ValueError(f"{fn}: kernel_size and stride must be positive, got {kernel} and {stride}")
    if ph > kernel[0] // 2 or pw > kernel[1] // 2 or min(ph, pw) < 0:
        raise ValueError(f"{fn}: padding {(ph, pw)} should be at most half of the kernel size {kernel}")
    n, c, h, w = x.shape
    pos, oh, ow, padded = _positions(x.shape, kernel, stride, (ph, ph, pw, pw), dilation, fn, _t(input).shape)
    xp = backend.namespace(x.data)
    if not padded and stride == kernel and dilation == (1, 1):
        # non-overlapping windows: a crop and a reshape instead of a gather (the same scalar graph)
        crop = x if (oh * kernel[0], ow * kernel[1]) == (h, w) else x[:, :, : oh * kernel[0], : ow * kernel[1]]
        windows = crop.reshape(n, c, oh, kernel[0], ow, kernel[1])
        axes = (3, 5)
        out = windows.amax(axis=axes) if reduce == "max" else windows.mean(axis=axes)
    else:
        flat = x.reshape(n, c, h * w)
        if padded:
            fill = -np.inf if reduce == "max" else 0.0
            flat = O.concat([flat, xp.full((n, c, 1), fill, dtype=x.dtype)], axis=2)
        windows = flat[:, :, xp.asarray(pos.T)]  # (N, C, L, K)
        if reduce == "max":
            out = windows.amax(axis=-1)
        elif count_include_pad or not padded:
            out = windows.mean(axis=-1)
        else:
            counts = (pos != h * w).sum(axis=0).astype(x.dtype)  # real taps per output pixel
            out = windows.sum(axis=-1) / xp.asarray(counts)
        out = out.reshape(n, c, oh, ow)
    return out if batched else O.squeeze(out, 0)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1):
    """Max over each window (padding reads ``-inf``); ties split the gradient evenly."""
    return _pool(input, kernel_size, stride, padding, "max", "max_pool2d", dilation=dilation)


def avg_pool2d(input, kernel_size, stride=None, padding=0, count_include_pad: bool = True):
    """Mean over each window (zero padding counted unless ``count_include_pad=False``)."""
    return _pool(input, kernel_size, stride, padding, "mean", "avg_pool2d", count_include_pad)


def _single(value, name: str) -> int:
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError(f"{name} must be an int or a 1-tuple, got {tuple(value)}")
        value = value[0]
    return int(value)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1):
    """1-D cross-correlation over ``(N, C, L)`` or ``(C, L)`` input, as PyTorch: :func:`conv2d` (unfold +
    matmul) on a height-1 image, so the scalar graph again has one edge per weight-input product.

    >>> import semirad as sr
    >>> conv1d(sr.tensor(np.ones((1, 2, 7))), sr.tensor(np.ones((3, 2, 3))), stride=2, padding=1).shape
    (1, 3, 4)
    """
    w, x = _t(weight), _t(input)
    if w.ndim != 3:
        raise ValueError(f"conv1d: weight must be 3-D (out_channels, in_channels/groups, kW), got shape {w.shape}")
    if x.ndim not in (2, 3):
        raise ValueError(f"conv1d: expected a 2-D (C, L) or 3-D (N, C, L) input, got shape {x.shape}")
    if groups < 1 or w.shape[0] % groups:
        raise ValueError(f"conv1d: out_channels {w.shape[0]} is not divisible by groups {groups}")
    if x.shape[-2] != w.shape[1] * groups:
        raise ValueError(
            f"conv1d: expected input with {w.shape[1] * groups} channels for weight of shape {w.shape} and "
            f"groups={groups}, got input of shape {x.shape}"
        )
    stride, dilation = _single(stride, "stride"), _single(dilation, "dilation")
    if stride < 1 or dilation < 1:
        raise ValueError(f"conv1d: stride and dilation must be positive, got {stride} and {dilation}")
    if isinstance(padding, str):
        if padding not in ("valid", "same"):
            raise ValueError(f"conv1d: padding must be an int, a 1-tuple, 'valid' or 'same', got {padding!r}")
        if padding == "same" and stride != 1:
            raise ValueError("conv1d: padding='same' is not supported for strided convolutions")
        pad_2d, total = padding, 0 if padding == "valid" else dilation * (w.shape[2] - 1)
    else:
        p = _single(padding, "padding")
        if p < 0:
            raise ValueError(f"conv1d: padding must be non-negative, got {padding}")
        pad_2d, total = (0, p), 2 * p
    length = (x.shape[-1] + total - dilation * (w.shape[2] - 1) - 1) // stride + 1
    if length < 1:
        raise ValueError(
            f"conv1d: input of shape {x.shape} is too small for kernel size {w.shape[2]} with padding {padding} "
            f"and dilation {dilation} (output length would be {length})"
        )
    out = conv2d(O.expand_dims(x, -2), O.expand_dims(w, -2), bias, (1, stride), pad_2d, (1, dilation), groups)
    return O.squeeze(out, -2)


PAD_MODES = ("constant", "reflect", "replicate", "circular")


def pad(input, pad, mode: str = "constant", value: float | None = None):
    """Pad (or, with negative amounts, crop) the trailing axes, as ``torch.nn.functional.pad``.

    ``pad`` is ``(left, right)`` for the last axis, then ``(left, right)`` for the one before, and so on.
    ``"constant"`` joins blocks of ``value`` (default 0) with ``concat``; ``"reflect"`` (mirror without
    repeating the edge), ``"replicate"`` (repeat the edge) and ``"circular"`` (wrap around) are one
    integer-array gather per axis, so every output element has exactly one edge to the element it
    copies, in every semiring. Non-constant modes pad any number of axes (PyTorch: 1 to 3).

    >>> import semirad as sr
    >>> x = sr.tensor([[1.0, 2.0, 3.0]])
    >>> pad(x, (2, 1), mode="reflect").tolist(), pad(x, (1, -1), value=9.0).tolist()
    ([[3.0, 2.0, 1.0, 2.0, 3.0, 2.0]], [[9.0, 1.0, 2.0]])
    """
    x = _t(input)
    try:
        amounts = [int(p) for p in pad]
    except (TypeError, ValueError):
        raise TypeError(f"pad: pad must be a sequence of ints, got {pad!r}") from None
    if len(amounts) % 2:
        raise ValueError(f"pad: padding length must be divisible by 2, got {tuple(amounts)}")
    if len(amounts) // 2 > x.ndim:
        raise ValueError(
            f"pad: padding {tuple(amounts)} pads {len(amounts) // 2} axes, but the input of shape {x.shape} "
            f"has only {x.ndim}"
        )
    if mode not in PAD_MODES:
        raise ValueError(f"pad: mode must be one of {PAD_MODES}, got {mode!r}")
    if mode != "constant" and value not in (None, 0, 0.0):
        raise ValueError(f"pad: mode {mode!r} takes no value (got value={value})")
    for k in range(len(amounts) // 2):
        axis = x.ndim - 1 - k
        left, right = amounts[2 * k], amounts[2 * k + 1]
        if left or right:
            x = _pad_axis(x, axis, left, right, mode, 0.0 if value is None else float(value), _t(input).shape)
    return x


def _pad_axis(x, axis: int, left: int, right: int, mode: str, value: float, original_shape):
    n = x.shape[axis]
    size = n + left + right
    where = f"pad: {mode} padding ({left}, {right}) of axis {axis} of input of shape {tuple(original_shape)}"
    if size < (0 if mode == "constant" else 1):
        raise ValueError(f"{where} leaves {size} elements")
    if mode == "reflect" and (left >= n or right >= n):
        raise ValueError(f"{where}: reflect padding must be smaller than the axis ({n})")
    if mode == "replicate" and n == 0:
        raise ValueError(f"{where}: cannot replicate an empty axis")
    if mode == "circular" and (left > n or right > n):
        raise ValueError(f"{where}: circular padding can wrap around at most once (axis of {n})")
    before = (slice(None),) * axis
    if mode in ("constant", "circular"):  # crop the negative amounts first
        if left < 0 or right < 0:
            x = O.getitem(x, before + (slice(max(-left, 0), n - max(-right, 0)),))
            n, left, right = x.shape[axis], max(left, 0), max(right, 0)
        if mode == "constant":
            xp = backend.namespace(x.data)
            blocks = []
            for width in (left, right):
                shape = list(x.shape)
                shape[axis] = width
                blocks.append(xp.full(shape, value, dtype=x.dtype) if width else None)
            parts = [b for b in (blocks[0], x, blocks[1]) if b is not None]
            return parts[0] if len(parts) == 1 else O.concat(parts, axis=axis)
        if not left and not right:
            return x
    positions = np.arange(-left, n + right)
    if mode == "reflect":
        index = (n - 1) - np.abs((n - 1) - np.abs(positions))
    elif mode == "replicate":
        index = np.clip(positions, 0, n - 1)
    else:
        index = positions % n
    xp = backend.namespace(x.data)
    return O.getitem(x, before + (xp.asarray(index),))


# -- losses ---------------------------------------------------------------------------------------


def mse_loss(input, target, reduction: str = "mean"):
    """``(input - target) ** 2``, reduced; the shapes must be equal.

    >>> import semirad as sr
    >>> mse_loss(sr.tensor([1.0, 3.0]), np.array([0.0, 1.0])).item()
    2.5
    """
    x = _t(input)
    t_shape = tuple(getattr(target, "shape", np.shape(target)))
    if t_shape != x.shape:
        raise ValueError(f"mse_loss: input of shape {x.shape} and target of shape {t_shape} differ")
    diff = x - (target if isinstance(target, Tensor) else _data(target))
    return _reduce(diff * diff, reduction, "mse_loss")


def nll_loss(input, target, weight=None, ignore_index: int = -100, reduction: str = "mean"):
    """Negative log-likelihood of integer class targets from log-probabilities ``input``.

    ``input`` is ``(N, C)``, ``(C,)`` or ``(N, C, d1, ...)`` with targets ``(N,)``, ``()`` or
    ``(N, d1, ...)``. The pick is an integer-array gather. ``weight`` (per class) and
    ``ignore_index`` as in PyTorch: the mean divides by the total weight of the counted targets.
    """
    return _nll(_t(input), target, weight, ignore_index, reduction, "nll_loss")


def _nll(x, target, weight, ignore_index, reduction, fn):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{fn}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    t = _int_array(target, fn)
    if x.ndim == 0:
        raise ValueError(f"{fn}: input must have a class dimension, got shape {x.shape}")
    expected = () if x.ndim == 1 else (x.shape[0],) + tuple(x.shape[2:])
    if tuple(t.shape) != expected:
        raise ValueError(
            f"{fn}: target of shape {tuple(t.shape)} does not match input of shape {x.shape} "
            f"(expected target shape {expected})"
        )
    n_classes = x.shape[0] if x.ndim == 1 else x.shape[1]
    valid = t != ignore_index
    bad = valid & ((t < 0) | (t >= n_classes))
    if bad.any():
        raise ValueError(
            f"{fn}: target {int(t[bad].reshape(-1)[0])} is out of range for {n_classes} classes "
            f"(input shape {x.shape}, valid targets are 0..{n_classes - 1}"
            + (f" or ignore_index={ignore_index})" if ignore_index != -100 else ")")
        )
    # move the class axis last and flatten: (M, C) log-probabilities, (M,) targets
    logp = x.reshape(1, n_classes) if x.ndim == 1 else x
    if logp.ndim > 2:
        logp = O.transpose(logp, (0, *range(2, logp.ndim), 1))
    logp = logp.reshape(-1, n_classes)
    flat_t = np.where(valid, t, 0).reshape(-1)
    xp = backend.namespace(logp.data)
    picked = -logp[xp.asarray(np.arange(flat_t.size)), xp.asarray(flat_t)]
    w = None
    if weight is not None:
        wdata = backend.to_numpy(_data(weight)).astype(x.dtype)
        if wdata.shape != (n_classes,):
            raise ValueError(f"{fn}: weight must have shape ({n_classes},), got {wdata.shape}")
        w = wdata[flat_t] * valid.reshape(-1)
    elif not valid.all():
        w = valid.reshape(-1).astype(x.dtype)
    losses = picked if w is None else picked * xp.asarray(w)
    if reduction == "none":
        return losses.reshape(t.shape)
    if reduction == "sum":
        return losses.sum()
    if w is None:
        return losses.mean()
    return losses.sum() / float(w.sum())


def cross_entropy(input, target, weight=None, ignore_index: int = -100, reduction: str = "mean"):
    """``nll_loss(log_softmax(input, dim=1), target)`` for integer targets; a float ``target`` of
    the input's shape is read as class probabilities (``-sum(target * log_softmax)``).

    >>> import semirad as sr
    >>> round(cross_entropy(sr.tensor([[0.0, 0.0]]), np.array([1])).item(), 4)
    0.6931
    """
    x = _t(input)
    if x.ndim == 0:
        raise ValueError(f"cross_entropy: input must have a class dimension, got shape {x.shape}")
    class_axis = 0 if x.ndim == 1 else 1
    logp = O.log_softmax(x, axis=class_axis)
    tdata = _data(target)
    if getattr(tdata, "dtype", np.dtype(int)).kind == "f":
        if tuple(tdata.shape) != x.shape:
            raise ValueError(
                f"cross_entropy: probability targets must have the input's shape {x.shape}, got {tuple(tdata.shape)}"
            )
        probs = target if isinstance(target, Tensor) else tdata
        if weight is not None:
            wshape = [1] * x.ndim
            wshape[class_axis] = -1
            probs = probs * backend.to_numpy(_data(weight)).astype(x.dtype).reshape(wshape)
        losses = -(logp * probs).sum(axis=class_axis)
        return _reduce(losses, reduction, "cross_entropy")
    return _nll(logp, target, weight, ignore_index, reduction, "cross_entropy")


def binary_cross_entropy_with_logits(input, target, weight=None, reduction: str = "mean", pos_weight=None):
    """``-[t log σ(x) + (1 - t) log(1 - σ(x))]`` computed stably as
    ``(1 - t) x + (1 + (pos_weight - 1) t) · logsumexp(0, -x)`` (smooth everywhere)."""
    x = _t(input)
    t = target if isinstance(target, Tensor) else _data(target)
    if tuple(t.shape) != x.shape:
        raise ValueError(
            f"binary_cross_entropy_with_logits: target of shape {tuple(t.shape)} differs from input of shape {x.shape}"
        )
    xp = backend.namespace(x.data)
    softplus_neg = O.logsumexp(O.stack([xp.zeros(x.shape, dtype=x.dtype), -x], axis=0), axis=0)  # log(1 + e^-x)
    if pos_weight is None:
        loss = x * (1 - t) + softplus_neg
    else:
        pw = pos_weight if isinstance(pos_weight, Tensor) else _data(pos_weight)
        loss = x * (1 - t) + softplus_neg * ((pw - 1) * t + 1)
    if weight is not None:
        loss = loss * (weight if isinstance(weight, Tensor) else _data(weight))
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


__all__ = [
    "linear", "relu", "tanh", "sigmoid", "softmax", "log_softmax", "dropout", "embedding", "layer_norm",
    "gelu", "scaled_dot_product_attention",
    "leaky_relu", "batch_norm", "conv1d", "pad",
    "conv2d", "max_pool2d", "avg_pool2d", "mse_loss", "nll_loss", "cross_entropy",
    "binary_cross_entropy_with_logits",
]  # fmt: skip
