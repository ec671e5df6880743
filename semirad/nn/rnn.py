"""Recurrent layers ``RNN``, ``LSTM``, ``GRU`` and their cells, with PyTorch's parameter names,
layouts (gates stacked along the first axis: LSTM ``i, f, g, o``, GRU ``r, z, n``) and return values.

Every gate is a composite of core ops (matmul, slicing, sigmoid, tanh, mul, add), so a trace
through a recurrent network follows real scalar edges back through time.

Components (``sr.component``; the layer itself is named by its attribute path, e.g. ``"lstm"``):

* ``<layer>/proj``: the input projection ``x W_ih^T + b_ih`` of all time steps at once, for LSTM
  and RNN ``+ b_hh`` too (added once for all steps: it only adds), and the weight transposes;
* ``<layer>/t<k>``: time step ``k`` (the position in the sequence, also for the reverse direction),
  containing ``<layer>/t<k>/proj`` (the step's slice of the input projection, ``h W_hh^T`` (GRU:
  ``+ b_hh``, whose ``b_hn`` part the reset gate multiplies) and their sum) and one component per gate:
  LSTM ``input`` (``i`` and ``i * g``), ``forget`` (``f`` and ``f * c``), ``cell`` (``g`` and
  ``c' = f * c + i * g``), ``output`` (``o``, ``tanh(c')`` and ``h' = o * tanh(c')``);
  GRU ``reset`` (``r`` and ``r * (W_hn h + b_hn)``), ``update`` (``z`` and
  ``h' = (1 - z) * n + z * h``), ``new`` (``n``); a plain RNN's activation is in ``t<k>`` itself;
* with several layers or directions, a level ``l<n>`` (``l<n>_reverse``) above those:
  ``"lstm/l1/t3/forget"``;
* the stacking of outputs and states stays in ``<layer>`` itself.

A cell (``LSTMCell``...) has the same ``proj`` and gate components without time steps.
``sr.analysis.across_time`` drops the ``t<k>`` level, so grouping by gate over all steps is one call.
"""

from __future__ import annotations

import math
from contextlib import nullcontext

import numpy as np

from .. import backend
from ..engine import component
from ..ops import functions as O
from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


#: the modes whose hidden bias only adds to the gates: it is added to the input projection, once
#: for all steps (an op per step less in an LSTM's forward and backward: 8% of its backprop's time)
_BIAS_IN_PROJECTION = ("LSTM", "RNN_TANH", "RNN_RELU")


def _projection(mode: str, x, w_ih, b_ih, b_hh):
    """``(xi, b_step)``: the input projection ``x @ W_ih.T + b_ih`` (gates stacked on the last axis),
    ``+ b_hh`` in the modes of :data:`_BIAS_IN_PROJECTION`, and the hidden bias each step still adds
    (a GRU's; None where the projection has it)."""
    xi = x @ w_ih.T
    if b_ih is not None:
        xi = xi + b_ih
    if b_hh is not None and mode in _BIAS_IN_PROJECTION:
        return xi + b_hh, None
    return xi, b_hh


def _step(mode: str, xi, state, w_hh_t, b_hh, hidden: int):
    """One time step. ``xi`` is the input projection and ``b_hh`` the hidden bias left to the step
    (both from :func:`_projection`), ``w_hh_t`` the transposed ``W_hh``. Returns the new state
    (``h`` or ``(h, c)``).

    Ops are recorded in components (see the module docstring): ``proj`` for the recurrent
    projection, then one block per gate.
    """
    H = hidden
    if mode == "LSTM":
        h, c = state
        with component("proj"):
            gates = xi + h @ w_hh_t
        with component("input"):
            i = O.sigmoid(gates[..., 0:H])
        with component("forget"):
            f = O.sigmoid(gates[..., H : 2 * H])
            kept = f * c
        with component("cell"):
            g = O.tanh(gates[..., 2 * H : 3 * H])
        with component("input"):
            written = i * g
        with component("cell"):
            c = kept + written
        with component("output"):
            o = O.sigmoid(gates[..., 3 * H : 4 * H])
            h = o * O.tanh(c)
        return h, c
    with component("proj"):
        gh = state @ w_hh_t
        if b_hh is not None:
            gh = gh + b_hh
    if mode == "GRU":
        with component("reset"):
            r = O.sigmoid(xi[..., 0:H] + gh[..., 0:H])
            reset = r * gh[..., 2 * H : 3 * H]
        with component("update"):
            z = O.sigmoid(xi[..., H : 2 * H] + gh[..., H : 2 * H])
        with component("new"):
            n = O.tanh(xi[..., 2 * H : 3 * H] + reset)
        with component("update"):
            return (1 - z) * n + z * state
    with component("proj"):
        pre = xi + gh
    return O.tanh(pre) if mode == "RNN_TANH" else O.relu(pre)


def _as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def _zeros_like_state(x: Tensor, shape) -> Tensor:
    xp = backend.namespace(x.data)
    return Tensor(xp.zeros(shape, dtype=x.dtype))


class RNNBase(Module):
    """Shared machinery of ``RNN``, ``LSTM`` and ``GRU`` (multi-layer, optional bidirectional)."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype=np.float64, generator=None):  # fmt: skip
        super().__init__()
        if mode not in _GATES:
            raise ValueError(f"unknown RNN mode {mode!r}")
        if int(num_layers) < 1 or int(hidden_size) < 1:
            raise ValueError(f"{type(self).__name__}: num_layers and hidden_size must be positive")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"dropout should be a number in range [0, 1], got {dropout}")
        self.mode = mode
        self.input_size, self.hidden_size, self.num_layers = int(input_size), int(hidden_size), int(num_layers)
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional = bidirectional
        directions = 2 if bidirectional else 1
        gates = _GATES[mode] * self.hidden_size
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else self.hidden_size * directions
            for direction in range(directions):
                sfx = f"_l{layer}" + ("_reverse" if direction else "")
                setattr(self, "weight_ih" + sfx, Parameter(np.zeros((gates, layer_input), dtype=dtype)))
                setattr(self, "weight_hh" + sfx, Parameter(np.zeros((gates, self.hidden_size), dtype=dtype)))
                if bias:
                    setattr(self, "bias_ih" + sfx, Parameter(np.zeros(gates, dtype=dtype)))
                    setattr(self, "bias_hh" + sfx, Parameter(np.zeros(gates, dtype=dtype)))
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None) -> None:
        """Every weight and bias from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as PyTorch."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound, generator=generator)

    def _layer_params(self, layer: int, direction: int):
        sfx = f"_l{layer}" + ("_reverse" if direction else "")
        get = self._parameters.get
        return get("weight_ih" + sfx), get("weight_hh" + sfx), get("bias_ih" + sfx), get("bias_hh" + sfx)

    def _check_state(self, h, expected: tuple, batched: bool, what: str) -> Tensor:
        h = _as_tensor(h)
        if h.shape != expected:
            raise ValueError(f"{self._label()}: expected {what} of shape {expected}, got {h.shape}")
        return h if batched else O.expand_dims(h, 1)

    def forward(self, input, hx=None):
        x = _as_tensor(input)
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size:
            layout = "(N, L, {0})" if self.batch_first else "(L, N, {0})"
            raise self._shape_error(f"input of shape {layout.format(self.input_size)} or (L, {self.input_size})",
                                    x.shape)  # fmt: skip
        batched = x.ndim == 3
        if batched and self.batch_first:
            x = O.swapaxes(x, 0, 1)
        if not batched:
            x = O.expand_dims(x, 1)
        steps, batch = x.shape[0], x.shape[1]
        directions = 2 if self.bidirectional else 1
        state_shape = (self.num_layers * directions, batch, self.hidden_size)
        expected = state_shape if batched else (state_shape[0], self.hidden_size)
        lstm = self.mode == "LSTM"
        if hx is None:
            h0 = _zeros_like_state(x, state_shape)
            c0 = _zeros_like_state(x, state_shape) if lstm else None
        elif lstm:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise ValueError(f"{self._label()}: hx must be a tuple (h_0, c_0), got {type(hx).__name__}")
            h0 = self._check_state(hx[0], expected, batched, "h_0")
            c0 = self._check_state(hx[1], expected, batched, "c_0")
        else:
            h0, c0 = self._check_state(hx, expected, batched, "h_0"), None

        layer_input = x
        h_n, c_n = [], []
        nested = self.num_layers > 1 or self.bidirectional
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                k = layer * directions + direction
                w_ih, w_hh, b_ih, b_hh = self._layer_params(layer, direction)
                scope = component(f"l{layer}" + ("_reverse" if direction else "")) if nested else nullcontext()
                with scope:
                    with component("proj"):
                        xi, b_step = _projection(self.mode, layer_input, w_ih, b_ih, b_hh)  # (L, N, gates * H)
                        w_hh_t = w_hh.T
                    state = (h0[k], c0[k]) if lstm else h0[k]
                    outs = [None] * steps
                    order = range(steps - 1, -1, -1) if direction else range(steps)
                    for t in order:
                        with component(f"t{t}"):
                            with component("proj"):
                                xi_t = xi[t]
                            state = _step(self.mode, xi_t, state, w_hh_t, b_step, self.hidden_size)
                        outs[t] = state[0] if lstm else state
                outputs.append(O.stack(outs, axis=0))
                h_n.append(state[0] if lstm else state)
                if lstm:
                    c_n.append(state[1])
            layer_input = outputs[0] if directions == 1 else O.concat(outputs, axis=2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, True)
        output = layer_input
        h_n = O.stack(h_n, axis=0)
        c_n = O.stack(c_n, axis=0) if lstm else None
        if not batched:
            output = O.squeeze(output, 1)
            h_n = O.squeeze(h_n, 1)
            c_n = O.squeeze(c_n, 1) if lstm else None
        elif self.batch_first:
            output = O.swapaxes(output, 0, 1)
        return (output, (h_n, c_n)) if lstm else (output, h_n)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(RNNBase):
    """Elman RNN: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` (or relu).

    Input ``(L, N, input_size)`` (``(N, L, input_size)`` with ``batch_first``) or unbatched
    ``(L, input_size)``; returns ``(output, h_n)`` like PyTorch.

    >>> import semirad as sr
    >>> rnn = sr.nn.RNN(3, 5, num_layers=2)
    >>> out, h_n = rnn(np.zeros((7, 2, 3)))
    >>> out.shape, h_n.shape
    ((7, 2, 5), (2, 2, 5))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype=np.float64, generator=None):  # fmt: skip
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: unknown nonlinearity {nonlinearity!r} (use 'tanh' or 'relu')")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size, num_layers,
                         bias, batch_first, dropout, bidirectional, dtype, generator)  # fmt: skip


class LSTM(RNNBase):
    """LSTM with PyTorch's gates ``i, f, g, o`` stacked in ``weight_ih_l0`` ``(4H, input_size)``.

    Returns ``(output, (h_n, c_n))``.

    >>> import semirad as sr
    >>> lstm = sr.nn.LSTM(3, 4, batch_first=True)
    >>> out, (h_n, c_n) = lstm(np.zeros((2, 6, 3)))
    >>> out.shape, h_n.shape, lstm.weight_ih_l0.shape
    ((2, 6, 4), (1, 2, 4), (16, 3))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype=np.float64, generator=None):  # fmt: skip
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         dtype, generator)  # fmt: skip


class GRU(RNNBase):
    """GRU with PyTorch's gates ``r, z, n`` and ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``.

    Returns ``(output, h_n)``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype=np.float64, generator=None):  # fmt: skip
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         dtype, generator)  # fmt: skip


class RNNCellBase(Module):
    """One step of a recurrent layer: parameters ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``."""

    mode = "RNN_TANH"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype=np.float64, generator=None):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = int(input_size), int(hidden_size), bias
        gates = _GATES[self.mode] * self.hidden_size
        self.weight_ih = Parameter(np.zeros((gates, self.input_size), dtype=dtype))
        self.weight_hh = Parameter(np.zeros((gates, self.hidden_size), dtype=dtype))
        self.bias_ih = Parameter(np.zeros(gates, dtype=dtype)) if bias else None
        self.bias_hh = Parameter(np.zeros(gates, dtype=dtype)) if bias else None
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound, generator=generator)

    def _state(self, x: Tensor, hx, batched: bool, what: str) -> Tensor:
        expected = (x.shape[0], self.hidden_size) if batched else (self.hidden_size,)
        if hx is None:
            return _zeros_like_state(x, expected)
        h = _as_tensor(hx)
        if h.shape != expected:
            raise ValueError(f"{self._label()}: expected {what} of shape {expected}, got {h.shape}")
        return h

    def _run(self, input, state_fn):
        x = _as_tensor(input)
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise self._shape_error(f"input of shape (N, {self.input_size}) or ({self.input_size},)", x.shape)
        with component("proj"):
            xi, b_step = _projection(self.mode, x, self.weight_ih, self.bias_ih, self.bias_hh)
        state = state_fn(x, x.ndim == 2)
        return _step(self.mode, xi, state, self.weight_hh.T, b_step, self.hidden_size)

    def forward(self, input, hx=None):
        return self._run(input, lambda x, batched: self._state(x, hx, batched, "hx"))

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        return s


class RNNCell(RNNCellBase):
    """``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (or relu)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 dtype=np.float64, generator=None):  # fmt: skip
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: unknown nonlinearity {nonlinearity!r} (use 'tanh' or 'relu')")
        self.mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, dtype, generator)


class LSTMCell(RNNCellBase):
    """One LSTM step: ``forward(input, (h, c)) -> (h', c')``."""

    mode = "LSTM"

    def forward(self, input, hx=None):
        def state(x, batched):
            if hx is None:
                return self._state(x, None, batched, "h"), self._state(x, None, batched, "c")
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise ValueError(f"{self._label()}: hx must be a tuple (h, c), got {type(hx).__name__}")
            return self._state(x, hx[0], batched, "h"), self._state(x, hx[1], batched, "c")

        return self._run(input, state)


class GRUCell(RNNCellBase):
    """One GRU step: ``forward(input, h) -> h'``."""

    mode = "GRU"
