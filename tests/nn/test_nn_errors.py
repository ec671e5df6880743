"""Bad input: each a clear ``ValueError`` (or ``TypeError``) naming the module and the shapes."""

from __future__ import annotations

import numpy as np
import pytest

import semirad as sr
import semirad.nn.functional as F

nn = sr.nn

BAD_INPUTS = [
    (lambda: nn.Linear(4, 3), np.zeros((2, 5)), r"Linear\(in_features=4, out_features=3.*\(\*, 4\).*\(2, 5\)"),
    (lambda: nn.Linear(4, 3), np.float64(1.0), r"Linear.*shape \(\)"),
    (lambda: nn.Conv2d(3, 4, 3), np.zeros((2, 2, 8, 8)), r"Conv2d\(3, 4, kernel_size.*\(N, 3, H, W\).*\(2, 2, 8, 8\)"),
    (lambda: nn.Conv2d(3, 4, 3), np.zeros((8, 8)), r"Conv2d.*\(8, 8\)"),
    (lambda: nn.Conv2d(1, 1, 5), np.zeros((1, 1, 3, 8)), r"Conv2d.*\(1, 1, 3, 8\) is too small for kernel \(5, 5\)"),
    (lambda: nn.MaxPool2d(2), np.zeros((4, 4)), r"MaxPool2d\(kernel_size=2.*\(4, 4\)"),
    (lambda: nn.MaxPool2d(3, padding=2), np.zeros((1, 1, 6, 6)), r"MaxPool2d.*padding \(2, 2\).*half"),
    (lambda: nn.AvgPool2d(4), np.zeros((1, 1, 3, 8)), r"AvgPool2d.*\(1, 1, 3, 8\) is too small"),
    (lambda: nn.LayerNorm(4), np.zeros((2, 5)), r"LayerNorm\(\(4,\).*\(\*, 4\).*\(2, 5\)"),
    (lambda: nn.LSTM(3, 4), np.zeros((5, 2, 2)), r"LSTM\(3, 4\).*\(L, N, 3\).*\(5, 2, 2\)"),
    (lambda: nn.GRU(3, 4, batch_first=True), np.zeros((5, 2, 3, 1)), r"GRU\(3, 4, batch_first=True\).*\(N, L, 3\)"),
    (lambda: nn.RNN(3, 4), np.zeros(3), r"RNN\(3, 4\).*shape \(3,\)"),
    (lambda: nn.LSTMCell(3, 4), np.zeros((2, 4)), r"LSTMCell\(3, 4\).*\(N, 3\).*\(2, 4\)"),
    (lambda: nn.GRUCell(3, 4), np.zeros((2, 2, 3)), r"GRUCell\(3, 4\).*\(2, 2, 3\)"),
    (lambda: nn.Flatten(2), np.zeros((2, 3)), r"Flatten\(start_dim=2.*\(2, 3\)"),
    (lambda: nn.Embedding(5, 2), np.array([1, 5]), r"Embedding\(5, 2\): index 5 is out of range for 5 embeddings"),
    (lambda: nn.Embedding(5, 2), np.array([-1, 0]), r"Embedding\(5, 2\): index -1 is out of range"),
]  # fmt: skip


@pytest.mark.parametrize("make,x,message", BAD_INPUTS, ids=[m for _, _, m in BAD_INPUTS])
def test_wrong_input_shape(make, x, message):
    with pytest.raises(ValueError, match=message):
        make()(x)


def test_embedding_needs_integer_indices():
    with pytest.raises(TypeError, match=r"Embedding\(5, 2\): indices must be integers, got dtype float64"):
        nn.Embedding(5, 2)(np.array([1.0, 2.0]))


def test_wrong_recurrent_state_shapes():
    lstm = nn.LSTM(3, 4, num_layers=2)
    x = np.zeros((5, 2, 3))
    message = r"LSTM\(3, 4, num_layers=2\): expected h_0 of shape \(2, 2, 4\), got \(1, 2, 4\)"
    with pytest.raises(ValueError, match=message):
        lstm(x, (np.zeros((1, 2, 4)), np.zeros((2, 2, 4))))
    with pytest.raises(ValueError, match=r"expected c_0 of shape \(2, 2, 4\), got \(2, 4\)"):
        lstm(x, (np.zeros((2, 2, 4)), np.zeros((2, 4))))
    with pytest.raises(ValueError, match=r"hx must be a tuple \(h_0, c_0\)"):
        lstm(x, np.zeros((2, 2, 4)))
    with pytest.raises(ValueError, match=r"GRU\(3, 4\): expected h_0 of shape \(1, 4\), got \(1, 2, 4\)"):
        nn.GRU(3, 4)(np.zeros((5, 3)), np.zeros((1, 2, 4)))
    with pytest.raises(ValueError, match=r"RNNCell\(3, 4\): expected hx of shape \(2, 4\), got \(3, 4\)"):
        nn.RNNCell(3, 4)(np.zeros((2, 3)), np.zeros((3, 4)))  # fmt: skip


@pytest.mark.parametrize("loss", [F.cross_entropy, lambda x, t: F.nll_loss(F.log_softmax(x, 1), t)])
def test_target_out_of_range(loss):
    x = sr.tensor(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"target 4 is out of range for 4 classes \(input shape \(3, 4\)"):
        loss(x, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"target -2 is out of range for 4 classes"):
        loss(x, np.array([0, -2, 1]))
    with pytest.raises(ValueError, match=r"target of shape \(2,\) does not match input of shape \(3, 4\)"):
        loss(x, np.array([0, 1]))
    with pytest.raises(TypeError, match="indices must be integers"):
        loss(x, np.array([True, False, True]))


def test_other_loss_errors():
    x = sr.tensor(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"mse_loss: input of shape \(3, 4\) and target of shape \(3,\) differ"):
        F.mse_loss(x, np.zeros(3))
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits: target of shape \(4,\)"):
        F.binary_cross_entropy_with_logits(x, np.zeros(4))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.cross_entropy(x, np.array([0, 1, 2]), reduction="avg")
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\)"):
        F.cross_entropy(x, np.array([0, 1, 2]), weight=np.ones(3))
    with pytest.raises(ValueError, match="reduction must be"):
        nn.MSELoss(reduction="max")
    with pytest.raises(ValueError, match=r"probability targets must have the input's shape \(3, 4\)"):
        F.cross_entropy(x, np.full((3, 3), 0.25))


def test_functional_shape_errors():
    with pytest.raises(ValueError, match=r"linear: input of shape \(2, 3\) does not match weight of shape \(4, 5\)"):
        F.linear(np.zeros((2, 3)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match=r"conv2d: expected input with 2 channels, got shape \(1, 3, 4, 4\)"):
        F.conv2d(np.zeros((1, 3, 4, 4)), np.zeros((1, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"layer_norm: input of shape \(2, 3\) does not end with normalized_shape"):
        F.layer_norm(np.zeros((2, 3)), (2,))


def test_constructor_errors():
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(2, 3, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="padding_idx"):
        nn.Embedding(4, 2, padding_idx=4)
    with pytest.raises(TypeError, match="only floating-point"):
        nn.Parameter(np.arange(3))
    with pytest.raises(TypeError, match="cannot assign ndarray to parameter 'weight'"):
        nn.Linear(2, 2).weight = np.zeros((2, 2))


def test_loss_modules_name_themselves():
    x = sr.tensor(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"^CrossEntropyLoss\(\): target 7 is out of range for 4 classes"):
        nn.CrossEntropyLoss()(x, np.array([0, 7, 1]))
    with pytest.raises(ValueError, match=r"^NLLLoss\(reduction='sum'\): target of shape \(3, 1\) does not match"):
        nn.NLLLoss(reduction="sum")(x, np.zeros((3, 1), dtype=int))
    with pytest.raises(ValueError, match=r"^MSELoss\(\): input of shape \(3, 4\) and target of shape \(4,\) differ"):
        nn.MSELoss()(x, np.zeros(4))
