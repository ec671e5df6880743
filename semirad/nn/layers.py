"""Basic layers, activations and loss modules, with PyTorch's names, shapes and default init."""

from __future__ import annotations

import math

import numpy as np

from ..ops import contraction as _C
from ..ops import elementwise as _E
from ..ops.core import apply as _apply
from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter


def _empty(shape, dtype):
    return Parameter(np.zeros(shape, dtype=dtype))


_NO_BIAS = object()


def _as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


class Identity(Module):
    """Returns its input."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Linear(Module):
    """``y = x @ weight.T + bias`` with ``weight`` of shape ``(out_features, in_features)``.

    Init as PyTorch: ``weight`` and ``bias`` from U(-1/sqrt(in_features), 1/sqrt(in_features)).

    >>> import semirad as sr
    >>> fc = sr.nn.Linear(3, 2)
    >>> fc.weight.shape, fc.bias.shape, fc(np.ones((5, 3))).shape
    ((2, 3), (2,), (5, 2))
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=np.float64, generator=None):
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = _empty((out_features, in_features), dtype)
        self.bias = _empty((out_features,), dtype) if bias else None
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=generator)
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0
            init.uniform_(self.bias, -bound, bound, generator=generator)

    def forward(self, input):
        x = _as_tensor(input)
        shape = x._data.shape
        if not shape or shape[-1] != self.in_features:
            raise self._shape_error(f"input of shape (*, {self.in_features})", shape)
        params = self.__dict__["_parameters"]
        w, b = params.get("weight"), params.get("bias", _NO_BIAS)
        if type(w) is not Parameter or b is _NO_BIAS or w._data.ndim != 2 or w._data.shape[1] != shape[-1]:
            return F.linear(x, self.weight, self.bias)  # (anything unusual: F.linear's checks and errors)
        # F.linear's op applied directly (a just-optimization: 1 µs a call less)
        return _apply(_C.LINEAR, x, w) if b is None else _apply(_C.LINEAR, x, w, b)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """A lookup table: ``weight[indices]`` with ``weight`` of shape ``(num_embeddings, embedding_dim)``
    from N(0, 1); the row ``padding_idx`` starts at zero and gets no gradient."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 dtype=np.float64, generator=None):  # fmt: skip
        super().__init__()
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        if padding_idx is not None:
            padding_idx = F._padding_index(padding_idx, self.num_embeddings)
        self.padding_idx = padding_idx
        self.weight = _empty((num_embeddings, embedding_dim), dtype)
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None) -> None:
        init.normal_(self.weight, generator=generator)
        if self.padding_idx is not None:
            weight = self.weight.data.copy()
            weight[self.padding_idx] = 0
            self.weight.data = weight

    def forward(self, input):
        return self._functional(F.embedding, input, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        pad = f", padding_idx={self.padding_idx}" if self.padding_idx is not None else ""
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


class Flatten(Module):
    """Flatten axes ``start_dim..end_dim`` into one (default: all but the batch axis)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input):
        x = _as_tensor(input)
        if x.ndim == 0:
            return x.reshape(1)
        nd = x.ndim
        if not (-nd <= self.start_dim < nd and -nd <= self.end_dim < nd):
            need = max(self.start_dim if self.start_dim >= 0 else -self.start_dim - 1,
                       self.end_dim if self.end_dim >= 0 else -self.end_dim - 1) + 1  # fmt: skip
            raise self._shape_error(f"an input with at least {need} dimensions", x.shape)
        start, end = self.start_dim % nd, self.end_dim % nd
        if start > end:
            raise ValueError(f"{self._label()}: start_dim comes after end_dim for input of shape {x.shape}")
        return x.reshape(x.shape[:start] + (-1,) + x.shape[end + 1 :])

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class ReLU(Module):
    """``max(x, 0)``. ``inplace`` is accepted for PyTorch's signature; the result is always a new tensor
    (a recorded graph keeps its input).

    >>> import semirad as sr
    >>> ReLU(inplace=True)(sr.tensor([-1.0, 2.0])).tolist()
    [0.0, 2.0]
    """

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = bool(inplace)

    def forward(self, input):
        return F.relu(input)


class Tanh(Module):
    def forward(self, input):
        return _apply(_E.TANH, input) if isinstance(input, Tensor) else F.tanh(input)


class Sigmoid(Module):
    def forward(self, input):
        return _apply(_E.SIGMOID, input) if isinstance(input, Tensor) else F.sigmoid(input)


class Softmax(Module):
    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    def forward(self, input):
        return F.log_softmax(input, self.dim)


class Dropout(Module):
    """Zero elements with probability ``p`` while training, scaling the rest by ``1/(1-p)``.

    Masks come from ``generator`` (a ``numpy.random.Generator``) or the default generator that
    ``sr.manual_seed`` reseeds; in ``eval()`` mode it is the identity.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False, *, generator=None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        if inplace not in (True, False):
            raise TypeError(f"Dropout: inplace must be a bool (PyTorch's second argument), got {inplace!r}")
        self.p, self.inplace, self.generator = float(p), bool(inplace), generator

    def forward(self, input):
        return F.dropout(input, self.p, self.training, self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class LayerNorm(Module):
    """Normalise over the trailing ``normalized_shape`` axes, then ``* weight + bias`` (ones, zeros)."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
                 dtype=np.float64):  # fmt: skip
        super().__init__()
        if isinstance(normalized_shape, (int, np.integer)):
            normalized_shape = (int(normalized_shape),)
        self.normalized_shape = tuple(int(n) for n in normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=dtype))
            self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dtype)) if bias else None
        else:
            self.weight = None
            self.bias = None

    def forward(self, input):
        x = _as_tensor(input)
        k = len(self.normalized_shape)
        if x.ndim < k or tuple(x.shape[x.ndim - k :]) != self.normalized_shape:
            raise self._shape_error(f"input of shape (*, {', '.join(map(str, self.normalized_shape))})", x.shape)
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


# -- losses ---------------------------------------------------------------------------------------


class _Loss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"{type(self).__name__}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}" if self.reduction != "mean" else ""


class MSELoss(_Loss):
    def forward(self, input, target):
        return self._functional(F.mse_loss, input, target, self.reduction)


class CrossEntropyLoss(_Loss):
    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(reduction)
        self.weight, self.ignore_index = weight, ignore_index

    def forward(self, input, target):
        return self._functional(F.cross_entropy, input, target, self.weight, self.ignore_index, self.reduction)


class NLLLoss(CrossEntropyLoss):
    def forward(self, input, target):
        return self._functional(F.nll_loss, input, target, self.weight, self.ignore_index, self.reduction)


class BCEWithLogitsLoss(_Loss):
    def __init__(self, weight=None, reduction: str = "mean", pos_weight=None):
        super().__init__(reduction)
        self.weight, self.pos_weight = weight, pos_weight

    def forward(self, input, target):
        return self._functional(F.binary_cross_entropy_with_logits, input, target, self.weight, self.reduction,
                                self.pos_weight)


class GELU(Module):
    """``x * Φ(x)`` (``approximate="none"``, through ``erf``) or its tanh approximation
    (``approximate="tanh"``), as ``torch.nn.GELU``; see :func:`semirad.nn.functional.gelu`.

    >>> import semirad as sr
    >>> round(sr.nn.GELU(approximate="tanh")(sr.tensor([1.0])).item(), 4)
    0.8412
    """

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class LeakyReLU(Module):
    """``x`` where ``x > 0``, else ``negative_slope * x`` (see :func:`semirad.nn.functional.leaky_relu`).

    >>> import semirad as sr
    >>> sr.nn.LeakyReLU(0.1)(sr.tensor([-1.0, 2.0])).tolist()
    [-0.1, 2.0]
    """

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope, self.inplace = float(negative_slope), bool(inplace)

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class _BatchNorm(Module):
    """What BatchNorm1d and BatchNorm2d share: ``weight`` (ones), ``bias`` (zeros), the buffers
    ``running_mean``, ``running_var`` and ``num_batches_tracked`` (int64), PyTorch's update rule."""

    _input_ndims: tuple = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, dtype=np.float64):  # fmt: skip
        super().__init__()
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), momentum
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        if self.affine:
            self.weight = _empty((self.num_features,), dtype)
            self.bias = _empty((self.num_features,), dtype)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", np.zeros(self.num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(self.num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, no batches tracked."""
        if self.track_running_stats:
            self.running_mean = np.zeros_like(self.running_mean)
            self.running_var = np.ones_like(self.running_var)
            self.num_batches_tracked = np.array(0, dtype=np.int64)

    def reset_parameters(self) -> None:
        """Reset the running statistics, ``weight`` to ones and ``bias`` to zeros."""
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            init.zeros_(self.bias)

    def _expected_input(self) -> str:
        raise NotImplementedError

    def forward(self, input):
        x = _as_tensor(input)
        if x.ndim not in self._input_ndims or x.shape[1] != self.num_features:
            raise self._shape_error(self._expected_input(), x.shape)
        factor = 0.0 if self.momentum is None else float(self.momentum)
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked = self.num_batches_tracked + 1
            if self.momentum is None:  # a cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked)
        batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        keep = not self.training or self.track_running_stats
        out, new_mean, new_var = F._batch_norm(
            x, self.running_mean if keep else None, self.running_var if keep else None, self.weight, self.bias,
            batch_stats, factor, self.eps, self._label(),
        )  # fmt: skip
        if new_mean is not None:
            self.running_mean = new_mean
        if new_var is not None:
            self.running_var = new_var
        return out

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")  # fmt: skip


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over ``(N, C)`` or ``(N, C, L)`` input, as ``torch.nn.BatchNorm1d``.

    Training mode normalises with the batch mean and biased variance (a composite of semirad's ops)
    and updates ``running_mean``/``running_var`` (unbiased variance) with ``momentum`` (``None``: a
    cumulative average); eval mode uses the running statistics.

    >>> import semirad as sr
    >>> bn = sr.nn.BatchNorm1d(2)
    >>> out = bn(np.array([[0.0, 1.0], [2.0, 5.0]]))
    >>> bn.running_mean.round(6).tolist(), int(bn.num_batches_tracked), list(bn.state_dict())
    ([0.1, 0.3], 1, ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked'])
    """

    _input_ndims = (2, 3)

    def _expected_input(self) -> str:
        c = self.num_features
        return f"a 2-D (N, {c}) or 3-D (N, {c}, L) input"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over ``(N, C, H, W)`` input, as ``torch.nn.BatchNorm2d`` (see :class:`BatchNorm1d`).

    >>> import semirad as sr
    >>> sr.nn.BatchNorm2d(3)(np.random.default_rng(0).standard_normal((2, 3, 4, 4))).shape
    (2, 3, 4, 4)
    """

    _input_ndims = (4,)

    def _expected_input(self) -> str:
        return f"a 4-D (N, {self.num_features}, H, W) input"
