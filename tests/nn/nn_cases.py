"""The modules under test, each with its PyTorch counterpart and a small input: shared by the
PyTorch-parity, finite-difference and trace tests of tests/nn."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

import semirad as sr
from semirad.ops import contraction, elementwise, index
from semirad.ops.core import Op

nn = sr.nn


@dataclass
class Case:
    id: str
    make: Callable[[], Any]  # our module
    torch_make: Callable[[Any], Any]  # torch -> torch module
    inputs: Callable[[np.random.Generator], tuple]  # forward arguments (arrays, possibly nested in tuples)
    int_inputs: bool = False  # the first argument is an integer index array (not differentiable)
    eval_mode: bool = False
    extra: dict = field(default_factory=dict)  # padding_rows: {param name: row that gets no gradient by design}


def _normal(*shape):
    return lambda rng: (rng.standard_normal(shape),)


def _seq(layers, *shape, state=None):
    """Input of shape ``shape`` and optionally an initial state of shape ``state`` (LSTM: a pair)."""

    def make(rng):
        x = rng.standard_normal(shape)
        if state is None:
            return (x,)
        if layers == "lstm":
            return (x, (0.5 * rng.standard_normal(state), 0.5 * rng.standard_normal(state)))
        return (x, 0.5 * rng.standard_normal(state))

    return make


def _mlp(torch_nn=None):
    m = torch_nn if torch_nn is not None else nn
    return m.Sequential(m.Linear(4, 5), m.ReLU(), m.Linear(5, 5), m.Tanh(), m.Dropout(0.3), m.Linear(5, 3), m.Sigmoid())


def _cnn(m):
    return m.Sequential(
        m.Conv2d(2, 3, 3, padding=1), m.ReLU(), m.MaxPool2d(2), m.Conv2d(3, 2, 2), m.Flatten(), m.Linear(2 * 1 * 1, 2)
    )


class _TinyLM:
    """Embedding -> LSTM -> LayerNorm -> Linear, as a user would write it (ours and torch's)."""

    @staticmethod
    def make(m, module_base):
        class TinyLM(module_base):
            def __init__(self):
                super().__init__()
                self.embed = m.Embedding(7, 3, padding_idx=0)
                self.lstm = m.LSTM(3, 4, batch_first=True)
                self.norm = m.LayerNorm(4)
                self.head = m.Linear(4, 7)

            def forward(self, tokens):
                out, _ = self.lstm(self.embed(tokens))
                return self.head(self.norm(out))

        return TinyLM()


def _tokens(rng):
    return (rng.integers(0, 7, size=(2, 4)),)


CASES = [
    Case("Linear", lambda: nn.Linear(4, 3), lambda t: t.nn.Linear(4, 3), _normal(2, 3, 4)),
    Case("Linear-nobias-1d", lambda: nn.Linear(4, 3, bias=False), lambda t: t.nn.Linear(4, 3, bias=False),
         _normal(4)),
    Case("Embedding", lambda: nn.Embedding(6, 3), lambda t: t.nn.Embedding(6, 3),
         lambda rng: (np.array([[0, 5, 2], [2, 2, 1]]),), int_inputs=True),
    Case("Embedding-padding", lambda: nn.Embedding(6, 3, padding_idx=2), lambda t: t.nn.Embedding(6, 3, padding_idx=2),
         lambda rng: (np.array([[0, 5, 2], [2, 2, 1]]),), int_inputs=True, extra={"padding_rows": {"weight": 2}}),
    Case("Sequential-MLP", _mlp, lambda t: _mlp(t.nn), _normal(3, 4), eval_mode=True),
    Case("ReLU", nn.ReLU, lambda t: t.nn.ReLU(), _normal(3, 4)),
    Case("Tanh", nn.Tanh, lambda t: t.nn.Tanh(), _normal(3, 4)),
    Case("Sigmoid", nn.Sigmoid, lambda t: t.nn.Sigmoid(), _normal(3, 4)),
    Case("Softmax", lambda: nn.Softmax(dim=1), lambda t: t.nn.Softmax(dim=1), _normal(2, 3, 2)),
    Case("LogSoftmax", lambda: nn.LogSoftmax(dim=-1), lambda t: t.nn.LogSoftmax(dim=-1), _normal(2, 4)),
    Case("Dropout-eval", lambda: nn.Dropout(0.5), lambda t: t.nn.Dropout(0.5), _normal(3, 4), eval_mode=True),
    Case("Identity", nn.Identity, lambda t: t.nn.Identity(), _normal(3, 2)),
    Case("Flatten", nn.Flatten, lambda t: t.nn.Flatten(), _normal(2, 3, 2, 2)),
    Case("LayerNorm", lambda: nn.LayerNorm(4), lambda t: t.nn.LayerNorm(4), _normal(2, 3, 4)),
    Case("LayerNorm-2d-nobias", lambda: nn.LayerNorm((3, 4), bias=False), lambda t: t.nn.LayerNorm((3, 4), bias=False),
         _normal(2, 3, 4)),
    Case("LayerNorm-noaffine", lambda: nn.LayerNorm(4, elementwise_affine=False),
         lambda t: t.nn.LayerNorm(4, elementwise_affine=False), _normal(3, 4)),
    Case("Conv2d", lambda: nn.Conv2d(2, 3, 3), lambda t: t.nn.Conv2d(2, 3, 3), _normal(2, 2, 5, 4)),
    Case("Conv2d-stride-pad", lambda: nn.Conv2d(2, 3, (3, 2), stride=2, padding=1),
         lambda t: t.nn.Conv2d(2, 3, (3, 2), stride=2, padding=1), _normal(2, 2, 5, 6)),
    Case("Conv2d-same-dilation", lambda: nn.Conv2d(1, 2, 2, padding="same", dilation=2, bias=False),
         lambda t: t.nn.Conv2d(1, 2, 2, padding="same", dilation=2, bias=False), _normal(1, 1, 4, 5)),
    Case("Conv2d-groups-unbatched", lambda: nn.Conv2d(4, 2, 3, padding=(0, 1), groups=2),
         lambda t: t.nn.Conv2d(4, 2, 3, padding=(0, 1), groups=2), _normal(4, 4, 3)),
    Case("Conv2d-same-asymmetric", lambda: nn.Conv2d(2, 2, (2, 3), padding="same"),
         lambda t: t.nn.Conv2d(2, 2, (2, 3), padding="same"), _normal(1, 2, 4, 4)),
    Case("MaxPool2d-dilation", lambda: nn.MaxPool2d(2, stride=1, padding=1, dilation=2),
         lambda t: t.nn.MaxPool2d(2, stride=1, padding=1, dilation=2), _normal(1, 2, 5, 4)),
    Case("MaxPool2d", lambda: nn.MaxPool2d(2), lambda t: t.nn.MaxPool2d(2), _normal(2, 2, 5, 4)),
    Case("MaxPool2d-overlap-pad", lambda: nn.MaxPool2d(3, stride=2, padding=1),
         lambda t: t.nn.MaxPool2d(3, stride=2, padding=1), _normal(1, 2, 5, 6)),
    Case("AvgPool2d", lambda: nn.AvgPool2d(2), lambda t: t.nn.AvgPool2d(2), _normal(2, 2, 4, 5)),
    Case("AvgPool2d-pad", lambda: nn.AvgPool2d(3, stride=2, padding=1),
         lambda t: t.nn.AvgPool2d(3, stride=2, padding=1), _normal(1, 2, 5, 5)),
    Case("AvgPool2d-pad-exclude", lambda: nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
         lambda t: t.nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), _normal(1, 2, 5, 5)),
    Case("CNN", lambda: _cnn(nn), lambda t: _cnn(t.nn), _normal(2, 2, 4, 4)),
    Case("RNN", lambda: nn.RNN(3, 4), lambda t: t.nn.RNN(3, 4), _seq("rnn", 5, 2, 3)),
    Case("RNN-relu-2layer-h0", lambda: nn.RNN(3, 4, num_layers=2, nonlinearity="relu"),
         lambda t: t.nn.RNN(3, 4, num_layers=2, nonlinearity="relu"), _seq("rnn", 4, 2, 3, state=(2, 2, 4))),
    Case("RNN-bidirectional-unbatched", lambda: nn.RNN(3, 2, bidirectional=True),
         lambda t: t.nn.RNN(3, 2, bidirectional=True), _seq("rnn", 4, 3)),
    Case("GRU", lambda: nn.GRU(3, 4), lambda t: t.nn.GRU(3, 4), _seq("gru", 4, 2, 3, state=(1, 2, 4))),
    Case("GRU-2layer-batch-first-nobias", lambda: nn.GRU(3, 2, num_layers=2, batch_first=True, bias=False),
         lambda t: t.nn.GRU(3, 2, num_layers=2, batch_first=True, bias=False), _seq("gru", 2, 4, 3)),
    Case("LSTM", lambda: nn.LSTM(3, 4), lambda t: t.nn.LSTM(3, 4), _seq("lstm", 4, 2, 3)),
    Case("LSTM-h0c0", lambda: nn.LSTM(3, 4), lambda t: t.nn.LSTM(3, 4), _seq("lstm", 3, 2, 3, state=(1, 2, 4))),
    Case("LSTM-2layer-bidirectional-batch-first", lambda: nn.LSTM(3, 2, num_layers=2, batch_first=True,
                                                                  bidirectional=True),
         lambda t: t.nn.LSTM(3, 2, num_layers=2, batch_first=True, bidirectional=True),
         _seq("lstm", 2, 3, 3, state=(4, 2, 2))),
    Case("RNNCell", lambda: nn.RNNCell(3, 4), lambda t: t.nn.RNNCell(3, 4), _seq("rnn", 2, 3, state=(2, 4))),
    Case("RNNCell-relu-unbatched", lambda: nn.RNNCell(3, 4, nonlinearity="relu"),
         lambda t: t.nn.RNNCell(3, 4, nonlinearity="relu"), _normal(3)),
    Case("GRUCell", lambda: nn.GRUCell(3, 4), lambda t: t.nn.GRUCell(3, 4), _seq("gru", 2, 3, state=(2, 4))),
    Case("LSTMCell", lambda: nn.LSTMCell(3, 4), lambda t: t.nn.LSTMCell(3, 4), _seq("lstm", 2, 3, state=(2, 4))),
    Case("TinyLM", lambda: _TinyLM.make(nn, nn.Module), lambda t: _TinyLM.make(t.nn, t.nn.Module), _tokens,
         int_inputs=True, extra={"padding_rows": {"embed.weight": 0}}),
]  # fmt: skip

CASE_IDS = [c.id for c in CASES]


def make(case: Case):
    module = case.make()
    if case.eval_mode:
        module.eval()
    return module


def flatten(out) -> list:
    """The tensors of a (possibly nested) module output, in order."""
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in flatten(o)]
    return [out]


def map_inputs(args, fn, first_is_index: bool):
    """Apply ``fn`` to every float array of ``args`` (nested tuples kept); integer arrays pass."""

    def go(a, position):
        if isinstance(a, tuple):
            return tuple(go(x, position) for x in a)
        if position == 0 and first_is_index:
            return a
        return fn(a)

    return tuple(go(a, i) for i, a in enumerate(args))


def float_leaves(args) -> list:
    return [a for a in flatten(list(args)) if getattr(a, "requires_grad", False)]


def weighted_loss(outputs: list, weights: list):
    """``sum_k (out_k * R_k).sum()``: a scalar whose gradient reaches every output element."""
    total = None
    for out, w in zip(outputs, weights, strict=True):
        term = (out * w).sum()
        total = term if total is None else total + term
    return total


def loss_weights(outputs: list, seed: int = 7) -> list:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(o.shape) for o in outputs]


def op_names() -> set:
    """The names of every core op (what a path step may say), plus ``leaf``."""
    names = {"leaf"}
    for module in (elementwise, index, contraction):
        names |= {v.name for v in vars(module).values() if isinstance(v, Op)}
    return names


def close(ours, theirs, what: str = "", rtol: float = 1e-9) -> None:
    """``ours`` (an array) equals ``theirs`` (an array or a torch tensor) to ``rtol``, relative to the
    larger of 1 and ``theirs``' largest magnitude."""
    ours = np.asarray(ours)
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != {theirs.shape}"
    scale = max(1.0, float(np.abs(theirs).max())) if theirs.size else 1.0
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol * scale, err_msg=what)
