"""``nn.MultiheadAttention`` with PyTorch's parameters, arguments, masks and results.

Every call records its steps in components, so that a best path says which branch it took:
``query``, ``key`` and ``value`` (the input projection of each and its split into heads),
``scores`` (``q kᵀ / sqrt(head_dim)`` plus the mask), ``softmax`` (the attention weights, their
dropout and their average over heads), ``mix`` (``weights @ v`` and the merge of the heads) and
``out`` (``out_proj``). Inside a model they are nested under the module's name, e.g.
``"layers/0/self_attn/key"``.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..engine import component
from ..ops import functions as O
from ..tensor import Tensor
from . import functional as F
from . import init
from .layers import Linear
from .module import Module
from .parameter import Parameter


class NonDynamicallyQuantizableLinear(Linear):
    """``nn.Linear`` under the class name PyTorch gives ``MultiheadAttention.out_proj``."""


def _as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


class MultiheadAttention(Module):
    """Multi-head attention as ``torch.nn.MultiheadAttention``.

    Parameters, named and laid out as PyTorch's (so its ``state_dict`` loads unchanged):
    ``in_proj_weight`` ``(3E, E)`` (the query, key and value projections stacked) when ``kdim``
    and ``vdim`` equal ``embed_dim``, else ``q_proj_weight`` ``(E, E)``, ``k_proj_weight``
    ``(E, kdim)``, ``v_proj_weight`` ``(E, vdim)``; ``in_proj_bias`` ``(3E,)``;
    ``out_proj.weight`` ``(E, E)`` and ``out_proj.bias``; ``bias_k`` and ``bias_v`` ``(1, 1, E)``
    with ``add_bias_kv``. Init as PyTorch: Xavier-uniform projection weights, zero biases,
    ``out_proj.weight`` as ``nn.Linear``'s.

    ``forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
    average_attn_weights=True, is_causal=False)`` returns ``(attn_output, attn_weights or None)``.
    Inputs are ``(L, N, E)`` (``(N, L, E)`` with ``batch_first``) or unbatched ``(L, E)``. Masks as
    PyTorch: a bool mask is ``True`` where attention is *not* allowed, a float mask is added to the
    scores; ``attn_mask`` is ``(L, S)`` or ``(N * num_heads, L, S)``, ``key_padding_mask`` ``(N, S)``.
    ``is_causal`` is a hint that ``attn_mask`` is the causal mask (required with it, as in PyTorch).
    A query whose every key is masked is an error (PyTorch returns NaN or 0 there, depending on
    ``need_weights``).

    >>> import semirad as sr
    >>> _ = sr.manual_seed(0)
    >>> mha = sr.nn.MultiheadAttention(8, num_heads=2, batch_first=True)
    >>> x = np.random.default_rng(0).standard_normal((3, 5, 8))
    >>> out, weights = mha(x, x, x)
    >>> out.shape, weights.shape
    ((3, 5, 8), (3, 5, 5))
    >>> [name for name, _ in mha.named_parameters()]
    ['in_proj_weight', 'in_proj_bias', 'out_proj.weight', 'out_proj.bias']
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, dtype=np.float64, generator=None):  # fmt: skip
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"MultiheadAttention: embed_dim and num_heads must be positive, got {embed_dim} and "
                             f"{num_heads}")  # fmt: skip
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"MultiheadAttention: dropout must be between 0 and 1, got {dropout}")
        self.embed_dim = int(embed_dim)
        self.kdim = int(kdim) if kdim is not None else self.embed_dim
        self.vdim = int(vdim) if vdim is not None else self.embed_dim
        self._qkv_same_embed_dim = self.kdim == self.embed_dim and self.vdim == self.embed_dim
        self.num_heads = int(num_heads)
        self.dropout = float(dropout)
        self.batch_first = bool(batch_first)
        self.head_dim = self.embed_dim // self.num_heads
        if self.head_dim * self.num_heads != self.embed_dim:
            raise ValueError(f"MultiheadAttention: embed_dim {embed_dim} must be divisible by num_heads {num_heads}")
        E = self.embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(np.zeros((3 * E, E), dtype=dtype))
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.q_proj_weight = Parameter(np.zeros((E, E), dtype=dtype))
            self.k_proj_weight = Parameter(np.zeros((E, self.kdim), dtype=dtype))
            self.v_proj_weight = Parameter(np.zeros((E, self.vdim), dtype=dtype))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(np.zeros(3 * E, dtype=dtype))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(E, E, bias=bias, dtype=dtype, generator=generator)
        if add_bias_kv:
            self.bias_k = Parameter(np.zeros((1, 1, E), dtype=dtype))
            self.bias_v = Parameter(np.zeros((1, 1, E), dtype=dtype))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = bool(add_zero_attn)
        self._reset_parameters(generator)

    def _reset_parameters(self, generator=None) -> None:
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight, generator=generator)
        else:
            for weight in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(weight, generator=generator)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k, generator=generator)
            init.xavier_normal_(self.bias_v, generator=generator)

    def extra_repr(self) -> str:
        extra = f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"
        if not self._qkv_same_embed_dim:
            extra += f", kdim={self.kdim}, vdim={self.vdim}"
        return extra + (", batch_first=True" if self.batch_first else "")

    # -- forward ----------------------------------------------------------------------------------
    def forward(self, query, key, value, key_padding_mask=None, need_weights: bool = True, attn_mask=None,
                average_attn_weights: bool = True, is_causal: bool = False):  # fmt: skip
        query, key, value = _as_tensor(query), _as_tensor(key), _as_tensor(value)
        batched, query_len, key_len = self._check_shapes(query, key, value, key_padding_mask, attn_mask)
        xp = backend.namespace(query.data)
        kpm = F._float_mask(key_padding_mask, query.dtype, self._label(), "key_padding_mask")
        mask = F._float_mask(attn_mask, query.dtype, self._label(), "attn_mask")
        kpm, mask = (None if m is None else xp.asarray(m) for m in (kpm, mask))
        if is_causal and mask is None:
            raise ValueError(
                f"{self._label()}: is_causal=True is a hint that attn_mask is the causal mask and needs attn_mask "
                "(see nn.transformer.generate_square_subsequent_mask), as in PyTorch"
            )
        if is_causal and kpm is None and not need_weights:
            # PyTorch lets scaled_dot_product_attention build the causal mask here, ignoring attn_mask
            mask = xp.asarray(F._causal_mask(query_len, key_len, query.dtype))
        inputs = {"query": query, "key": key, "value": value}
        for name, x in inputs.items():
            if batched and self.batch_first:
                with component(name):
                    inputs[name] = O.swapaxes(x, 0, 1)
            elif not batched:
                with component(name):
                    inputs[name] = O.expand_dims(x, 1)
        if kpm is not None and not batched:
            kpm = kpm[None]
        L, N = inputs["query"].shape[:2]
        q, k, v = self._project(inputs)
        if mask is not None and mask.ndim == 2:
            mask = mask[None]
        if self.bias_k is not None:
            with component("key"):
                k = O.concat([k, O.broadcast_to(self.bias_k, (1, N, self.embed_dim))], axis=0)
            with component("value"):
                v = O.concat([v, O.broadcast_to(self.bias_v, (1, N, self.embed_dim))], axis=0)
            mask, kpm = _pad_last(mask), _pad_last(kpm)
        q = self._split_heads(q, "query")
        k = self._split_heads(k, "key")
        v = self._split_heads(v, "value")
        if self.add_zero_attn:
            zeros = xp.zeros((N * self.num_heads, 1, self.head_dim), dtype=k.dtype)
            with component("key"):
                k = O.concat([k, zeros], axis=1)
            with component("value"):
                v = O.concat([v, zeros], axis=1)
            mask, kpm = _pad_last(mask), _pad_last(kpm)
        S = k.shape[1]
        if kpm is not None:
            kpm = xp.broadcast_to(kpm.reshape(N, 1, 1, S), (N, self.num_heads, 1, S)).reshape(N * self.num_heads, 1, S)
            mask = kpm if mask is None else mask + kpm
        dropout_p = self.dropout if self.training else 0.0
        out, weights = F._attend(q, k, v, mask, 1.0 / float(np.sqrt(self.head_dim)), dropout_p, None, self._label())
        with component("mix"):
            out = O.reshape(O.swapaxes(out, 0, 1), L, N, self.embed_dim)
        with component("out"):
            out = F.linear(out, self.out_proj.weight, self.out_proj.bias)
            if not batched:
                out = O.squeeze(out, 1)
            elif self.batch_first:
                out = O.swapaxes(out, 0, 1)
        if not need_weights:
            return out, None
        with component("softmax"):
            weights = O.reshape(weights, N, self.num_heads, L, S)
            if average_attn_weights:
                weights = O.mean(weights, axis=1)
            if not batched:
                weights = O.squeeze(weights, 0)
        return out, weights

    def _project(self, inputs: dict) -> tuple:
        """The query, key and value projections, each in its component: ``(L, N, E)``, ``(S, N, E)`` twice."""
        E = self.embed_dim
        bias = self.in_proj_bias
        projected = []
        for i, (name, x) in enumerate(inputs.items()):
            with component(name):
                if self._qkv_same_embed_dim:
                    weight = self.in_proj_weight[i * E : (i + 1) * E]
                else:
                    weight = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)[i]
                projected.append(F.linear(x, weight, None if bias is None else bias[i * E : (i + 1) * E]))
        return tuple(projected)

    def _split_heads(self, x, name: str):
        """``(T, N, E)`` → ``(N * num_heads, T, head_dim)``, as PyTorch's ``view`` and ``transpose``."""
        with component(name):
            return O.swapaxes(O.reshape(x, x.shape[0], x.shape[1] * self.num_heads, self.head_dim), 0, 1)

    def _check_shapes(self, query, key, value, key_padding_mask, attn_mask) -> tuple[bool, int, int]:
        """Whether the call is batched, the query length and the key length; raises a ValueError
        naming the shapes where they do not fit."""
        label = self._label()
        shapes = f"query {query.shape}, key {key.shape}, value {value.shape}"
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            raise ValueError(f"{label}: expected query, key and value all 3-D (batched) or all 2-D (unbatched), "
                             f"got {shapes}")  # fmt: skip
        batched = query.ndim == 3
        dims = (query.shape[-1], key.shape[-1], value.shape[-1])
        if dims != (self.embed_dim, self.kdim, self.vdim):
            raise ValueError(f"{label}: expected feature sizes (embed_dim, kdim, vdim) = "
                             f"{(self.embed_dim, self.kdim, self.vdim)}, got {shapes}")  # fmt: skip
        seq, batch = (1, 0) if self.batch_first and batched else (0, 1)
        if key.shape[seq] != value.shape[seq] or (batched and not query.shape[batch] == key.shape[batch] ==
                                                  value.shape[batch]):  # fmt: skip
            raise ValueError(f"{label}: key and value must have the same length, and all three the same batch "
                             f"size, got {shapes}")  # fmt: skip
        L, S = query.shape[seq], key.shape[seq]
        N = query.shape[batch] if batched else 1
        if key_padding_mask is not None:
            expected = (N, S) if batched else (S,)
            if tuple(np.shape(F._data(key_padding_mask))) != expected:
                raise ValueError(f"{label}: key_padding_mask must have shape {expected} for {shapes}, got "
                                 f"{tuple(np.shape(F._data(key_padding_mask)))}")  # fmt: skip
        if attn_mask is not None:
            shape = tuple(np.shape(F._data(attn_mask)))
            allowed = [(L, S), (N * self.num_heads, L, S)]
            if shape not in allowed:
                raise ValueError(f"{label}: attn_mask must have shape {allowed[0]} or {allowed[1]} for {shapes}, "
                                 f"got {shape}")  # fmt: skip
        return batched, L, S


def _pad_last(mask):
    """A mask with one more key (appended, not masked), for ``bias_k`` or ``add_zero_attn``."""
    if mask is None:
        return None
    xp = backend.namespace(mask)
    return xp.concatenate([mask, xp.zeros(mask.shape[:-1] + (1,), dtype=mask.dtype)], axis=-1)
