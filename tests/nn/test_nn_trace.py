"""A trace through every module: finite values, and best paths whose steps are real ops and edges."""

from __future__ import annotations

import numpy as np
import pytest
from nn_cases import CASE_IDS, CASES, flatten, loss_weights, make, map_inputs, op_names, weighted_loss

import semirad as sr
import semirad.nn.functional as F
from semirad import engine

OPS = op_names()


def check_trace(loss, module, what):
    named = list(module.named_parameters())
    params = [p for _, p in named]
    tr = sr.trace(loss, params)
    grads = sr.grad(loss, params)
    for (name, p), g in zip(named, grads, strict=True):
        values = np.asarray(tr[p])
        assert values.shape == p.shape
        assert np.all(np.isfinite(values)), f"{what}: trace of {name} is not finite"
        # an element the gradient reaches has a path (and the trace is zero only where every path is)
        assert np.all((values != 0) | (g == 0)), f"{what}: {name} has a gradient but no best path"
        index = np.unravel_index(int(np.abs(values).argmax()), p.shape)
        path = tr.path(p, index)
        assert path.steps[0].op == "leaf" and path.steps[0].name == name, f"{what}: path starts at {path.steps[0]}"
        assert tuple(path.steps[0].index) == tuple(int(i) for i in index)
        assert path.steps[-1].shape == ()
        assert all(step.op in OPS for step in path.steps), f"{what}: unknown op in {[s.op for s in path.steps]}"
        assert len(path.weights) == len(path.steps) - 1
        assert path.value == pytest.approx(float(values[index]), rel=1e-9, abs=1e-300), f"{what}: {name}\n{path}"
    return tr


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_trace_through_module(case):
    sr.manual_seed(0)
    module = make(case)
    args = map_inputs(case.inputs(np.random.default_rng(1)), sr.tensor, case.int_inputs)
    outputs = flatten(module(*args))
    if not list(module.parameters()):
        x = sr.tensor(np.asarray(args[0], dtype=float), requires_grad=True, name="x")
        outputs = flatten(module(x, *args[1:]))
        loss = weighted_loss(outputs, loss_weights(outputs))
        tr = sr.trace(loss, [x])
        assert np.all(np.isfinite(tr[x]))
        path = tr.path(x, np.unravel_index(int(np.abs(tr[x]).argmax()), x.shape))
        assert path.steps[0].name == "x" and all(s.op in OPS for s in path.steps)
        return
    loss = weighted_loss(outputs, loss_weights(outputs))
    check_trace(loss, module, case.id)


def test_trace_through_lstm_follows_time_steps():
    sr.manual_seed(1)
    lstm = sr.nn.LSTM(2, 3)
    head = sr.nn.Linear(3, 2)
    x = np.random.default_rng(0).standard_normal((6, 1, 2))
    out, (h_n, c_n) = lstm(x)
    loss = F.cross_entropy(head(h_n[0]), np.array([1]))
    tr = sr.trace(loss, [lstm.weight_ih_l0])
    # the best path from the first input weight to the loss
    path = tr.path(lstm.weight_ih_l0, (0, 0))
    ops = [s.op for s in path.steps]
    assert ops[0] == "leaf" and ops[-1] == "mean"  # cross_entropy's batch mean
    assert "matmul" in ops and "getitem" in ops  # the input projection, a gate slice
    assert {"sigmoid", "tanh"} & set(ops)


@pytest.mark.parametrize("kind,per_step", [("LSTM", False), ("RNN", False), ("GRU", True)])
def test_hidden_bias_enters_once_or_at_every_step(kind, per_step):
    """An LSTM's or RNN's b_hh only adds, so it joins the input projection once for all steps (in the
    layer's ``proj``); a GRU's, whose b_hn the reset gate multiplies, joins every step's ``proj``.
    Values and gradients stay PyTorch's (tests/nn/test_nn_torch_parity.py)."""
    sr.manual_seed(3)
    layer = getattr(sr.nn, kind)(2, 3)
    steps = 4
    out = layer(np.random.default_rng(0).standard_normal((steps, 1, 2)))[0]
    bias = layer.bias_hh_l0._node
    users = [n for n in engine.ancestors((out * out).sum()._node) if bias in n.parents]
    if per_step:
        assert sorted(n.component for n in users) == sorted(f"t{k}/proj" for k in range(steps))
    else:
        assert [n.component for n in users] == ["proj"] and users[0].shape == (steps, 1, layer.weight_hh_l0.shape[0])
    grad = sr.grad((out * out).sum(), [layer.bias_hh_l0])[0]
    assert np.all(np.isfinite(grad)) and np.any(grad != 0)


def test_trace_of_a_classifier_loss_names_the_loss_ops():
    sr.manual_seed(2)
    model = sr.nn.Sequential(sr.nn.Linear(4, 6), sr.nn.ReLU(), sr.nn.LayerNorm(6), sr.nn.Linear(6, 3))
    x = np.random.default_rng(0).standard_normal((5, 4))
    loss = F.cross_entropy(model(x), np.array([0, 1, 2, 1, 0]))
    tr = check_trace(loss, model, "classifier")
    path = tr.path(model[0].weight, (0, 0))
    assert path.steps[0].name == "0.weight"
    assert "relu" in [s.op for s in path.steps]


def _semirings():
    out = []
    for name in sr.semirings.__all__:
        cls = getattr(sr.semirings, name)
        if isinstance(cls, type) and issubclass(cls, sr.semirings.Semiring) and cls is not sr.semirings.Semiring:
            out.append(cls)
    return out


COMPOSITES = [c for c in CASES if c.id in ("TinyLM", "CNN", "GRU", "LayerNorm")]


@pytest.mark.parametrize("semiring", _semirings(), ids=lambda c: c.__name__)
@pytest.mark.parametrize("case", COMPOSITES, ids=lambda c: c.id)
def test_every_semiring_sweeps_through_composite_modules(case, semiring):
    try:
        S = semiring()
    except TypeError:
        S = semiring(2)  # KBest(k)
    sr.manual_seed(0)
    module = make(case)
    args = map_inputs(case.inputs(np.random.default_rng(1)), sr.tensor, case.int_inputs)
    outputs = flatten(module(*args))
    if case.id == "TinyLM":
        loss = F.cross_entropy(outputs[0].reshape(-1, 7), np.arange(8) % 7)
    else:
        loss = weighted_loss(outputs, loss_weights(outputs))
    params = list(module.parameters())
    result = sr.backward(loss, params, semiring=S)
    for p in params:
        value = np.asarray(result[p])  # KBest adds a leading axis of length k
        assert value.shape[value.ndim - p.ndim :] == p.shape, f"{semiring.__name__}: {p.name}"
        if value.dtype.kind == "f":  # (LogMaxAbs: -inf = log 0 where no path carries weight)
            assert not np.isnan(value).any() and not np.isposinf(value).any(), f"{semiring.__name__}: {p.name}"
