"""``semirad.nn``: modules, losses, ``functional`` and ``init`` with PyTorch's names and layouts.

Every layer is composed from semirad's tensor ops (no backward rules of its own), so each one is
differentiable and traceable in every semiring.

>>> import numpy as np, semirad as sr
>>> _ = sr.manual_seed(0)
>>> model = sr.nn.Sequential(sr.nn.Linear(4, 8), sr.nn.Tanh(), sr.nn.Linear(8, 3))
>>> loss = sr.nn.functional.cross_entropy(model(np.ones((2, 4))), np.array([0, 2]))
>>> tr = sr.trace(loss, list(model.parameters()))
>>> tr.path(model[0].weight, (0, 0)).steps[0].name
'0.weight'
"""

from . import functional, init, utils
from .attention import MultiheadAttention
from .containers import ModuleDict, ModuleList, Sequential
from .conv import AvgPool2d, Conv1d, Conv2d, MaxPool2d
from .layers import (
    GELU,
    BatchNorm1d,
    BatchNorm2d,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    Dropout,
    Embedding,
    Flatten,
    Identity,
    LayerNorm,
    LeakyReLU,
    Linear,
    LogSoftmax,
    MSELoss,
    NLLLoss,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from .module import Module
from .parameter import Parameter
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase
from .transformer import TransformerEncoder, TransformerEncoderLayer

__all__ = [
    "functional", "init", "Module", "Parameter", "Sequential", "ModuleList", "Identity", "Linear", "Embedding",
    "Flatten", "ReLU", "Tanh", "Sigmoid", "Softmax", "LogSoftmax", "Dropout", "LayerNorm", "Conv2d", "MaxPool2d",
    "AvgPool2d", "RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell", "MSELoss",
    "CrossEntropyLoss", "NLLLoss", "BCEWithLogitsLoss",
    "GELU", "MultiheadAttention", "TransformerEncoderLayer", "TransformerEncoder",
    "utils", "ModuleDict", "Conv1d", "LeakyReLU", "BatchNorm1d", "BatchNorm2d",
]  # fmt: skip
