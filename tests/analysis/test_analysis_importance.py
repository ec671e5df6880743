"""Component importance: the one-pass count equals walking every path; backprop's version equals
its definition (all paths enumerated with KBest); shares, groups and parameter groups."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

import semirad as sr
import semirad.nn.functional as F
from semirad import nn
from semirad.analysis import UNTAGGED, backprop_importance, component_importance
from semirad.semirings import KBest, LogMaxAbs, MaxAbsProduct, SumAbs


# -- small graphs with components ------------------------------------------------------------------
def mlp_graph(seed=0):
    rng = np.random.default_rng(seed)
    x = sr.tensor(rng.standard_normal((3, 4)))
    W1 = sr.tensor(rng.standard_normal((4, 5)), requires_grad=True, name="W1")
    b1 = sr.tensor(rng.standard_normal(5), requires_grad=True, name="b1")
    W2 = sr.tensor(rng.standard_normal((5, 2)), requires_grad=True, name="W2")
    with sr.component("enc"):
        with sr.component("lin"):
            h = x @ W1 + b1
        h = h.relu() * h.tanh()  # a vertex used twice, relu zeros (edges of weight 0)
    with sr.component("dec"):
        y = h @ W2
    loss = (y * y).mean() + (W1 * W1).sum() * 0.01  # x*x parallel edges; W1 also reaches the loss directly
    return loss, [W1, b1, W2]


def gather_graph(seed=1):
    rng = np.random.default_rng(seed)
    E = sr.tensor(rng.standard_normal((4, 3)), requires_grad=True, name="E")
    with sr.component("embed"):
        e = E[np.array([0, 2, 2, 3, 0])]  # repeated indices: separate edges
    with sr.component("mix"):
        m = sr.softmax(e, axis=1) * e
    loss = sr.logsumexp(m.sum(axis=0), axis=0)
    return loss, [E]


class TinyLM(nn.Module):
    def __init__(self, cell="LSTM", layers=1, bidirectional=False):
        super().__init__()
        self.embed = nn.Embedding(3, 2)
        rnn = {"LSTM": nn.LSTM, "GRU": nn.GRU, "RNN": nn.RNN}[cell]
        self.rnn = rnn(2, 3, num_layers=layers, batch_first=True, bidirectional=bidirectional)
        self.head = nn.Linear(3 * (2 if bidirectional else 1), 3)

    def forward(self, tokens):
        out = self.rnn(self.embed(tokens))[0]
        return self.head(out)


def lm_graph(cell="LSTM", layers=1, bidirectional=False, seed=0):
    sr.manual_seed(seed)
    model = TinyLM(cell, layers, bidirectional)
    tokens = np.random.default_rng(seed).integers(0, 3, (2, 4))
    with sr.component("loss"):
        pass
    logits = model(tokens[:, :-1])
    with sr.component("loss"):
        loss = F.cross_entropy(logits.reshape(-1, 3), tokens[:, 1:].reshape(-1))
    return loss, model


def walked(result, params, ranks=None):
    """Sum of Path.components() over every path of every element (the slow way)."""
    counts, paths = Counter(), 0
    for p in params:
        for index in np.ndindex(p.shape):
            if hasattr(result, "paths"):
                found = [path for r, path in enumerate(result.paths(p, index)) if ranks is None or r in ranks]
            else:
                try:
                    found = [result.path(p, index)]
                except ValueError:  # no path
                    found = []
            for path in found:
                paths += 1
                counts.update(path.components())
                assert sum(path.components().values()) == len(path.weights)
    return {(UNTAGGED if k is None else k): float(v) for k, v in counts.items()}, paths


GRAPHS = {
    "mlp": lambda: mlp_graph(),
    "gather": lambda: gather_graph(),
    "lstm": lambda: (lambda loss, m: (loss, list(m.parameters())))(*lm_graph("LSTM")),
    "gru-2-layers": lambda: (lambda loss, m: (loss, list(m.parameters())))(*lm_graph("GRU", layers=2)),
    "rnn-bidirectional": lambda: (lambda loss, m: (loss, list(m.parameters())))(*lm_graph("RNN", bidirectional=True)),
}


@pytest.mark.parametrize("name", list(GRAPHS))
def test_one_pass_count_equals_walking_every_best_path(name):
    loss, params = GRAPHS[name]()
    tr = sr.trace(loss, params)
    imp = component_importance(tr, params)
    expected, paths = walked(tr, params)
    assert imp.counts == pytest.approx(expected)
    assert set(imp.counts) == set(expected)
    assert imp.paths == paths
    assert imp.total == sum(expected.values())  # counts equal the number of path edges
    assert sum(imp.shares.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["mlp", "gather", "lstm"])
def test_log_max_abs_result_counts_the_same_paths(name):
    loss, params = GRAPHS[name]()
    r = sr.backward(loss, params, semiring=LogMaxAbs())
    imp = component_importance(r, params)
    expected, paths = walked(r, params)
    assert imp.counts == pytest.approx(expected) and imp.paths == paths
    assert imp.kind == "trace (log)"


@pytest.mark.parametrize("name", ["mlp", "gather", "lstm"])
def test_k_best_counts_every_one_of_the_k_paths(name):
    loss, params = GRAPHS[name]()
    r = sr.backward(loss, params, semiring=KBest(3))
    imp = component_importance(r, params)
    expected, paths = walked(r, params)
    assert imp.counts == pytest.approx(expected) and imp.paths == paths
    assert imp.kind == "k-best(3)"
    best_only = component_importance(r, params, ranks=[0])
    expected0, paths0 = walked(r, params, ranks=[0])
    assert best_only.counts == pytest.approx(expected0) and best_only.paths == paths0
    with pytest.raises(IndexError):
        component_importance(r, params, ranks=[3])


def test_intermediate_tensors_as_sources_count_their_own_paths_too():
    rng = np.random.default_rng(3)
    w = sr.tensor(rng.standard_normal((3, 3)), requires_grad=True, name="w")
    with sr.component("a"):
        h = (w @ w).tanh()
    with sr.component("b"):
        loss = (h * w).sum()
    tr = sr.trace(loss, [w, h])
    imp = component_importance(tr, [w, h])
    expected, paths = walked(tr, [w, h])
    assert imp.counts == pytest.approx(expected) and imp.paths == paths == 18


def test_default_params_are_every_input_and_elements_without_paths_are_left_out():
    x = sr.tensor([1.0, 2.0, 3.0], requires_grad=True, name="x")
    with sr.component("pick"):
        y = x[np.array([0, 2])]
    tr = sr.trace((y * 2.0).sum(), [x])
    imp = component_importance(tr)
    assert imp.elements == 3 and imp.paths == 2  # x[1] reaches nothing
    assert imp.counts == {"pick": 2.0, UNTAGGED: 4.0}


def test_parameter_groups_are_channels_of_the_same_pass():
    loss, model = lm_graph("LSTM")
    tr = sr.trace(loss, list(model.parameters()))
    groups = sr.analysis.by_module(model)
    imp = component_importance(tr, groups, group="across_time")
    assert list(imp.groups) == ["embed", "rnn", "head"]
    for label, pairs in groups.items():
        alone = component_importance(tr, [t for _, t in pairs], group="across_time")
        assert imp.groups[label].counts == pytest.approx(alone.counts)
        assert imp.groups[label].paths == alone.paths
    everything = component_importance(tr, model, group="across_time")
    assert imp.counts == pytest.approx(everything.counts)
    # overlapping groups: the union counts each element once
    both = component_importance(tr, {"all": model, "head": model.head})
    assert both.counts == pytest.approx(component_importance(tr, model).counts)
    assert both.groups["head"].counts == pytest.approx(component_importance(tr, model.head).counts)
    records = imp.records()
    assert {r["params"] for r in records} == {"(all)", "embed", "rnn", "head"}
    for g in ["(all)", "embed", "rnn", "head"]:
        assert sum(r["share"] for r in records if r["params"] == g) == pytest.approx(1.0)


def test_grouping_inclusive_counts_and_json_round_trip():
    loss, model = lm_graph("LSTM")
    tr = sr.trace(loss, list(model.parameters()))
    imp = component_importance(tr, model)
    gates = imp.group("across_time")
    assert set(gates.counts) >= {"rnn/input", "rnn/forget", "rnn/cell", "rnn/output", "rnn/proj", "head", "loss"}
    assert gates.total == imp.total and gates.paths == imp.paths
    assert gates.counts["rnn/forget"] == sum(v for k, v in imp.counts.items() if k.endswith("/forget"))
    assert imp.inclusive("rnn") == pytest.approx(sum(v for k, v in imp.counts.items() if k.startswith("rnn")))
    assert imp.rollup(1).counts["rnn"] == pytest.approx(imp.inclusive("rnn"))
    assert imp.share("rnn", inclusive=True) == pytest.approx(imp.rollup(1).shares["rnn"])
    per_step = imp.group(lambda name: name.split("/")[1] if name.startswith("rnn/t") else "other")
    assert sum(per_step.counts.values()) == imp.total
    by_pattern = imp.group({"gates": ["*/input", "*/forget", "*/output", "*/cell"]})
    assert set(by_pattern.counts) == {"gates", sr.analysis.OTHER}
    back = sr.analysis.ComponentImportance.from_dict(imp.to_dict())
    assert back.counts == imp.counts and back.paths == imp.paths
    text = str(gates)
    assert "rnn/forget" in text and "100.0 %" in text


def test_results_without_paths_are_refused():
    loss, params = mlp_graph()
    with pytest.raises(TypeError, match="path-capable"):
        component_importance(sr.backward(loss, params, semiring=SumAbs()), params)
    with pytest.raises(KeyError):
        component_importance(sr.trace(loss, params[:1]), params)


# -- backprop importance ---------------------------------------------------------------------------
def expected_flow(loss, params, k=600):
    """The definition, by enumeration: every path with a non-zero product (KBest with k >= #paths),
    weighted by |product| / Σ|products| of its element, edges counted per component."""
    r = sr.backward(loss, params, semiring=KBest(k))
    counts, elements = Counter(), 0
    for p in params:
        for index in np.ndindex(p.shape):
            paths = r.paths(p, index)
            assert len(paths) < k, "k too small to enumerate every path"
            weights = np.array([abs(path.value) for path in paths])
            if not paths or weights.sum() == 0:
                continue
            elements += 1
            for path, w in zip(paths, weights):
                for c, n in path.components().items():
                    counts[UNTAGGED if c is None else c] += n * w / weights.sum()
    return dict(counts), elements


@pytest.mark.parametrize("name", ["mlp", "gather"])
def test_backprop_importance_is_the_flow_weighted_expected_edge_count(name):
    loss, params = GRAPHS[name]()
    imp = backprop_importance(loss, params)
    expected, elements = expected_flow(loss, params)
    assert imp.counts == pytest.approx(expected, rel=1e-9)
    assert set(imp.counts) == set(expected)
    assert imp.paths == elements and imp.kind == "backprop"


def test_backprop_importance_on_a_recurrent_graph_groups_and_channels():
    loss, model = lm_graph("GRU")
    params = list(model.parameters())
    full = backprop_importance(loss, model)
    grouped = backprop_importance(loss, model, group="across_time")
    assert grouped.counts == pytest.approx(full.group("across_time").counts)
    # the flow channel is SumAbs itself
    flow = sr.analysis.ComponentFlow({}, 0)
    raw = sr.backward(loss, params, semiring=flow)
    sum_abs = sr.backward(loss, params, semiring=SumAbs())
    for p in params:
        assert np.allclose(raw[p][0], sum_abs[p])
    groups = backprop_importance(loss, sr.analysis.by_module(model), group="across_time")
    assert groups.groups["head"].counts == pytest.approx(
        backprop_importance(loss, model.head, group="across_time").counts
    )


def test_with_a_single_path_per_element_backprop_and_trace_agree():
    rng = np.random.default_rng(0)
    w = sr.tensor(rng.standard_normal(6), requires_grad=True, name="w")
    with sr.component("a"):
        y = (w * 2.0).exp()
    with sr.component("b"):
        z = y.tanh()
    loss = (z * sr.tensor(rng.standard_normal(6))).sum()
    bp = backprop_importance(loss, [w])
    tr = component_importance(sr.trace(loss, [w]), [w])
    assert bp.counts == pytest.approx(tr.counts)


def test_trace_and_log_trace_agree_and_max_abs_is_the_default_trace():
    loss, params = gather_graph(seed=4)  # no partial is exactly 0 (LogMaxAbs drops such edges)
    a = component_importance(sr.trace(loss, params), params)
    b = component_importance(sr.backward(loss, params, semiring=MaxAbsProduct()), params)
    c = component_importance(sr.backward(loss, params, semiring=LogMaxAbs()), params)
    assert a.counts == b.counts == pytest.approx(c.counts)


# -- random graphs -----------------------------------------------------------------------------------
COMPONENTS = [None, "a", "a/b", "a/b/c", "d"]


def _random_program(draw_ops, seed):
    rng = np.random.default_rng(seed)
    leaves = [sr.tensor(rng.standard_normal((3, 2)), requires_grad=True, name=f"p{i}") for i in range(2)]
    pool = list(leaves)
    for op, comp, pick in draw_ops:
        x = pool[pick % len(pool)]
        y = pool[(pick // 7) % len(pool)]
        names = COMPONENTS[comp].split("/") if COMPONENTS[comp] else []
        blocks = [sr.component(n) for n in names]
        for b in blocks:
            b.__enter__()
        try:
            if op == 0:
                z = (x * y).tanh()  # bounded ops: no overflow however deep
            elif op == 1:
                z = (x + y).tanh()
            elif op == 2:
                z = x.relu() - y
            elif op == 3:
                z = (x @ y.T @ x).tanh()  # (3, 2)
            elif op == 4:
                z = x[np.array([0, 0, 2])] * 2.0  # repeated rows
            elif op == 5:
                z = sr.concat([x[:, :1], y[:, 1:]], axis=1).sin() * 0.5
            else:
                z = (x.sum(axis=0, keepdims=True) * y).tanh()
        finally:
            for b in reversed(blocks):
                b.__exit__(None, None, None)
        pool.append(z)
    with sr.component("out"):
        loss = (pool[0] * pool[1]).sum() * 0.1
        for t in pool[2:]:
            loss = loss + (t * t).sum()
    return loss, leaves, pool


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@given(
    ops=st.lists(
        st.tuples(st.integers(0, 6), st.integers(0, len(COMPONENTS) - 1), st.integers(0, 48)), min_size=1, max_size=5
    ),
    seed=st.integers(0, 1000),
    k=st.sampled_from([1, 2]),
)
def test_random_graphs_one_pass_equals_walking(ops, seed, k):
    loss, leaves, pool = _random_program(ops, seed)
    sources = leaves + pool[2:3]  # an intermediate tensor too
    result = sr.trace(loss, sources) if k == 1 else sr.backward(loss, sources, semiring=KBest(k))
    imp = component_importance(result, sources)
    expected, paths = walked(result, sources)
    assert imp.counts == pytest.approx(expected)
    assert imp.paths == paths
