"""``nn.TransformerEncoderLayer`` and ``nn.TransformerEncoder`` with PyTorch's names and arguments.

The two residual additions are recorded in their own components, ``residual_attn`` and
``residual_ffn``, so the ``add`` that joins the residual stream and a sublayer can be found in a
path. Its first input is the residual stream (the skip), its second the sublayer's output
(``self_attn`` then ``dropout1``; ``linear1``, the activation, ``dropout``, ``linear2``,
``dropout2``).
"""

from __future__ import annotations

import copy
from typing import Callable

import numpy as np

from ..engine import component
from ..tensor import Tensor
from . import functional as F
from .attention import MultiheadAttention
from .containers import ModuleList
from .layers import Dropout, LayerNorm, Linear
from .module import Module


def generate_square_subsequent_mask(sz: int, dtype=np.float64) -> np.ndarray:
    """The causal mask of ``nn.Transformer.generate_square_subsequent_mask``: ``-inf`` above the
    diagonal, 0 elsewhere (position ``i`` attends to ``j <= i``).

    >>> generate_square_subsequent_mask(3)
    array([[  0., -inf, -inf],
           [  0.,   0., -inf],
           [  0.,   0.,   0.]])
    """
    return F._causal_mask(int(sz), int(sz), dtype)


def _activation(activation) -> Callable:
    if isinstance(activation, str):
        if activation == "relu":
            return F.relu
        if activation == "gelu":
            return F.gelu
        raise ValueError(f"TransformerEncoderLayer: activation should be 'relu' or 'gelu', not {activation!r}")
    if not callable(activation):
        raise TypeError(f"TransformerEncoderLayer: activation must be 'relu', 'gelu' or a callable, "
                        f"got {type(activation).__name__}")  # fmt: skip
    return activation


class TransformerEncoderLayer(Module):
    """Self-attention and a feed-forward block, each with a residual connection and a LayerNorm,
    as ``torch.nn.TransformerEncoderLayer``.

    Submodules, named as PyTorch's (so its ``state_dict`` loads unchanged): ``self_attn``
    (:class:`MultiheadAttention`), ``linear1`` ``(dim_feedforward, d_model)``, ``dropout``,
    ``linear2``, ``norm1``, ``norm2``, ``dropout1``, ``dropout2`` (and ``activation`` when it is a
    module). ``forward(src, src_mask=None, src_key_padding_mask=None, is_causal=False)``:

    * ``norm_first=False``: ``x = norm1(x + sa(x))``, then ``x = norm2(x + ff(x))``;
    * ``norm_first=True``: ``x = x + sa(norm1(x))``, then ``x = x + ff(norm2(x))``.

    The two additions are recorded in the components ``residual_attn`` and ``residual_ffn``
    (input 0 of each ``add`` is the residual stream, input 1 the sublayer's output).

    >>> import semirad as sr
    >>> _ = sr.manual_seed(0)
    >>> layer = sr.nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, batch_first=True)
    >>> layer(np.zeros((3, 5, 8))).shape
    (3, 5, 8)
    >>> list(layer.state_dict())[:4]
    ['self_attn.in_proj_weight', 'self_attn.in_proj_bias', 'self_attn.out_proj.weight', 'self_attn.out_proj.bias']
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str | Callable = "relu", layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, dtype=np.float64, generator=None):  # fmt: skip
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                            dtype=dtype, generator=generator)  # fmt: skip
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype, generator=generator)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype, generator=generator)
        self.norm_first = bool(norm_first)
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = _activation(activation)
        self.batch_first = bool(batch_first)

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal: bool = False):
        x = src if isinstance(src, Tensor) else Tensor(src)
        if self.norm_first:
            attended = self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            with component("residual_attn"):
                x = x + attended
            fed = self._ff_block(self.norm2(x))
            with component("residual_ffn"):
                x = x + fed
        else:
            attended = self._sa_block(x, src_mask, src_key_padding_mask, is_causal)
            with component("residual_attn"):
                x = x + attended
            x = self.norm1(x)
            fed = self._ff_block(x)
            with component("residual_ffn"):
                x = x + fed
            x = self.norm2(x)
        return x

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal: bool):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False,
                           is_causal=is_causal)[0]  # fmt: skip
        return self.dropout1(x)

    def _ff_block(self, x):
        hidden = self.linear1(x)
        if isinstance(self.activation, Module):
            hidden = self.activation(hidden)
        else:
            with component("activation"):
                hidden = self.activation(hidden)
        return self.dropout2(self.linear2(self.dropout(hidden)))


class TransformerEncoder(Module):
    """A stack of ``num_layers`` deep copies of ``encoder_layer`` (``layers.0``, ``layers.1``...),
    then ``norm`` if given, as ``torch.nn.TransformerEncoder``.

    ``forward(src, mask=None, src_key_padding_mask=None, is_causal=None)`` passes the masks to every
    layer; ``is_causal=None`` means "is ``mask`` the causal mask?" (checked, as PyTorch).
    ``enable_nested_tensor`` and ``mask_check`` are accepted and ignored (they only choose PyTorch's
    fast paths).

    >>> import semirad as sr
    >>> _ = sr.manual_seed(0)
    >>> layer = sr.nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16)
    >>> encoder = sr.nn.TransformerEncoder(layer, num_layers=2, norm=sr.nn.LayerNorm(8))
    >>> encoder(np.zeros((5, 3, 8)), mask=sr.nn.transformer.generate_square_subsequent_mask(5)).shape
    (5, 3, 8)
    >>> [name for name in encoder.state_dict() if name.endswith("in_proj_weight")]
    ['layers.0.self_attn.in_proj_weight', 'layers.1.self_attn.in_proj_weight']
    """

    def __init__(self, encoder_layer: Module, num_layers: int, norm: Module | None = None,
                 enable_nested_tensor: bool = True, mask_check: bool = True):  # fmt: skip
        super().__init__()
        if not isinstance(encoder_layer, Module):
            raise TypeError(f"TransformerEncoder: encoder_layer must be a Module, got {type(encoder_layer).__name__}")
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(int(num_layers))])
        self.num_layers = int(num_layers)
        self.norm = norm
        self.enable_nested_tensor, self.mask_check = enable_nested_tensor, mask_check

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal: bool | None = None):
        output = src if isinstance(src, Tensor) else Tensor(src)
        if is_causal is None:
            is_causal = _is_causal_mask(mask, output.shape, self.layers[0] if self.num_layers else None)
        for layer in self.layers:
            output = layer(output, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=is_causal)
        if self.norm is not None:
            output = self.norm(output)
        return output


def _is_causal_mask(mask, shape, layer) -> bool:
    """Whether ``mask`` equals the causal mask of the sequence (PyTorch's ``_detect_is_causal_mask``)."""
    if mask is None:
        return False
    array = F._data(mask)
    batch_first = getattr(layer, "batch_first", False)
    length = shape[1] if batch_first and len(shape) == 3 else shape[0]
    causal = generate_square_subsequent_mask(length)
    if tuple(array.shape) != causal.shape:
        return False
    if array.dtype == bool:
        return bool(np.array_equal(np.asarray(array), np.isinf(causal)))
    return bool(np.array_equal(np.asarray(array), causal))
