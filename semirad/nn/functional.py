"""``nn.functional``: layers and losses as functions, all composed from semirad's tensor ops.

Nothing here has a backward rule of its own: every function is a composite of the core ops
(``matmul``, ``getitem`` with integer arrays, ``logsumexp``...), so its scalar graph is exact in
every semiring and a trace through it names the ops it passes. Argument names and defaults follow
``torch.nn.functional``.

>>> import semirad as sr
>>> import semirad.nn.functional as F
>>> logits = sr.tensor([[2.0, 0.0, -1.0]], requires_grad=True)
>>> round(F.cross_entropy(logits, np.array([0])).item(), 4)
0.1698
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .. import backend
from ..ops import functions as O
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
    out = x @ w.T
    if bias is not None:
        out = out + bias
    return out


def relu(input):
    return O.relu(_t(input))


def tanh(input):
    return O.tanh(_t(input))


def sigmoid(input):
    return O.sigmoid(_t(input))


def softmax(input, dim: int = -1):
    """``exp(log_softmax(input, dim))`` (a composite: exact in every semiring)."""
    return O.softmax(_t(input), axis=dim)


def log_softmax(input, dim: int = -1):
    """``input - logsumexp(input, dim)``."""
    return O.log_softmax(_t(input), axis=dim)


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
        out = windows.max(axis=axes) if reduce == "max" else windows.mean(axis=axes)
    else:
        flat = x.reshape(n, c, h * w)
        if padded:
            fill = -np.inf if reduce == "max" else 0.0
            flat = O.concat([flat, xp.full((n, c, 1), fill, dtype=x.dtype)], axis=2)
        windows = flat[:, :, xp.asarray(pos.T)]  # (N, C, L, K)
        if reduce == "max":
            out = windows.max(axis=-1)
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
    "conv2d", "max_pool2d", "avg_pool2d", "mse_loss", "nll_loss", "cross_entropy",
    "binary_cross_entropy_with_logits",
]  # fmt: skip
