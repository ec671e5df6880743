"""Basic layers, activations and loss modules, with PyTorch's names, shapes and default init."""

from __future__ import annotations

import math

import numpy as np

from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter


def _empty(shape, dtype):
    return Parameter(np.zeros(shape, dtype=dtype))


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
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise self._shape_error(f"input of shape (*, {self.in_features})", x.shape)
        return F.linear(x, self.weight, self.bias)

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
    def forward(self, input):
        return F.relu(input)


class Tanh(Module):
    def forward(self, input):
        return F.tanh(input)


class Sigmoid(Module):
    def forward(self, input):
        return F.sigmoid(input)


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

    def __init__(self, p: float = 0.5, generator=None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.generator = float(p), generator

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
