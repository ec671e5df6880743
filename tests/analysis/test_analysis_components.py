"""Components recorded by nn modules and recurrent layers; Path.components; groupings and parameter
selections."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

import semirad as sr
from semirad import engine, nn
from semirad.analysis import across_time, by_module, by_pattern, depth, patterns, select


def components_of(output):
    return Counter(n.component for n in engine.ancestors(output._node) if n.op is not None)


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer1 = nn.Linear(3, 4)
        self.block = nn.Sequential(nn.Tanh(), nn.Linear(4, 4))

    def forward(self, x):
        return self.block(self.layer1(x))


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.head = nn.Linear(4, 2)
        self.shared_act = nn.Tanh()

    def forward(self, x):
        h = self.encoder(x)
        h = self.encoder.layer1.weight.sum() * 0 + h  # ops in the model itself
        z = self.encoder.block[1](h)  # a grandchild called directly: named by its full attribute path
        return self.head(self.shared_act(z)).sum()


def test_module_calls_open_components_named_by_attribute_path():
    sr.manual_seed(0)
    loss = Model()(np.ones((2, 3)))
    comps = components_of(loss)
    assert {"encoder/layer1", "encoder/block/0", "encoder/block/1", "head", "shared_act"} <= set(comps)
    assert comps[None] >= 3  # the root module opens no component: its own ops are untagged
    assert not any(c and c.startswith("Model") for c in comps)


def test_module_components_nest_under_user_blocks_and_are_closed_after_errors():
    sr.manual_seed(0)
    lin = nn.Linear(2, 2)
    net = nn.Sequential(lin)
    with sr.component("outer"):
        y = net(np.ones((1, 2)))
    assert y._node.component == "outer/0"
    with pytest.raises(ValueError):
        net(np.ones((1, 5)))
    assert engine.current_component() is None
    assert lin(np.ones((1, 2)))._node.component is None  # called at top level: no name


def test_a_module_called_by_a_module_that_does_not_own_it_is_named_by_its_class():
    sr.manual_seed(0)
    stranger = nn.Linear(2, 2)

    class Borrower(nn.Module):
        def forward(self, x):
            return stranger(x)

    assert Borrower()(np.ones((1, 2)))._node.component == "Linear"


def test_lstm_gates_and_time_steps():
    sr.manual_seed(0)

    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(2, 3, batch_first=True)

        def forward(self, x):
            return self.lstm(x)[0].sum()

    loss = LM()(np.ones((1, 4, 2)))
    comps = set(components_of(loss))
    for t in range(4):
        for gate in ("input", "forget", "cell", "output", "proj"):
            assert f"lstm/t{t}/{gate}" in comps
    assert {"lstm/proj", "lstm"} <= comps
    assert {across_time(c) for c in comps if c} == {
        "lstm", "lstm/proj", "lstm/input", "lstm/forget", "lstm/cell", "lstm/output",
    }  # fmt: skip


def test_gru_rnn_multi_layer_bidirectional_and_cells():
    sr.manual_seed(0)
    gru = nn.GRU(2, 3, num_layers=2, bidirectional=True)
    x = np.ones((3, 1, 2))
    with sr.component("gru"):
        out, _ = gru(x)
    comps = set(components_of(out.sum()))
    for gate in ("reset", "update", "new", "proj"):
        assert f"gru/l1_reverse/t2/{gate}" in comps and f"gru/l0/t0/{gate}" in comps
    assert "gru/l1/proj" in comps
    rnn_out, _ = nn.RNN(2, 3)(x)
    assert {c for c in components_of(rnn_out.sum()) if c} == {"proj", "t0", "t1", "t2"} | {
        f"t{t}/proj" for t in range(3)
    }
    h, c = nn.LSTMCell(2, 3)(np.ones((1, 2)))
    assert {c for c in components_of(h.sum()) if c} == {"proj", "input", "forget", "cell", "output"}
    h = nn.GRUCell(2, 3)(np.ones((1, 2)))
    assert {c for c in components_of(h.sum()) if c} == {"proj", "reset", "update", "new"}


def test_recurrent_numbers_are_unchanged_by_components():
    """The components are tags only: the same numbers as the direct formulas."""
    sr.manual_seed(3)
    lstm = nn.LSTM(2, 3)
    x = np.random.default_rng(0).standard_normal((5, 1, 2))
    out, (h, c) = lstm(x)
    W_ih, W_hh, b_ih, b_hh = (p.numpy() for p in lstm.parameters())
    hh, cc = np.zeros(3), np.zeros(3)
    sig = lambda v: 1 / (1 + np.exp(-v))
    for t in range(5):
        g = W_ih @ x[t, 0] + b_ih + W_hh @ hh + b_hh
        i, f, gg, o = sig(g[:3]), sig(g[3:6]), np.tanh(g[6:9]), sig(g[9:])
        cc = f * cc + i * gg
        hh = o * np.tanh(cc)
    assert np.allclose(h.numpy()[0, 0], hh) and np.allclose(c.numpy()[0, 0], cc)


def test_path_components_counts_edges_by_the_consuming_op():
    w = sr.tensor([1.0, -2.0], requires_grad=True, name="w")
    with sr.component("enc"):
        with sr.component("l1"):
            y = w * 3.0
        y = y.tanh()
    loss = (y * y).sum()
    p = sr.trace(loss, [w]).path(w, 1)
    assert dict(p.components()) == {"enc/l1": 1, "enc": 1, None: 2}
    assert sum(p.components().values()) == len(p.weights)
    assert dict(p.components(inclusive=True)) == {"enc/l1": 1, "enc": 2, None: 2}
    assert p.node_seqs is not None and len(p.node_seqs) == len(p.steps)


def test_groupings():
    assert across_time("lstm/t3/forget") == "lstm/forget"
    assert across_time("enc/lstm/l1/t12/cell") == "enc/lstm/l1/cell"
    assert across_time("t3") == "(time steps)" and across_time("tx/t") == "tx/t"
    assert across_time(sr.analysis.UNTAGGED) == sr.analysis.UNTAGGED
    assert depth(2)("a/b/c") == "a/b" and depth(5)("a") == "a"
    with pytest.raises(ValueError):
        depth(0)
    g = patterns({"gates": ["*/forget", "*/input"], "head": "head*"})
    assert (g("lstm/t1/forget"), g("head"), g("lstm/proj")) == ("gates", "head", "(other)")
    assert sr.analysis.groups.grouping(None)("x/y") == "x/y"
    with pytest.raises(ValueError):
        sr.analysis.groups.grouping("no-such")


def test_parameter_selections():
    sr.manual_seed(0)
    model = Model()
    groups = by_module(model)
    assert list(groups) == ["encoder", "head"]
    assert [n for n, _ in groups["encoder"]] == [
        "encoder.layer1.weight", "encoder.layer1.bias", "encoder.block.1.weight", "encoder.block.1.bias",
    ]  # fmt: skip
    assert list(by_module(model, depth=2)) == ["encoder.layer1", "encoder.block", "head"]
    picked = by_pattern(model, {"weights": "*.weight", "nothing": "xyz*"})
    assert list(picked) == ["weights"] and len(picked["weights"]) == 3
    assert select(model, "head.*") == [model.head.weight, model.head.bias]
    named = sr.analysis.named_tensors([model.head, model.head.weight, ("mine", model.encoder.layer1.bias)])
    assert [n for n, _ in named] == ["head.weight", "head.bias", "mine"]
