"""Path shares: the one-pass count equals walking every path; backprop's shares equal their
definition, computed by brute force over the explicit scalar graph; selectors, elements, errors."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import semirad as sr
from semirad import nn
from semirad.analysis import (
    PathShares,
    any_of,
    backprop_path_shares,
    components,
    edge,
    op,
    path_shares,
    tensors,
)
from semirad.engine import full_contribution
from semirad.semirings import KBest, LogMaxAbs, SumAbs, SumProduct

COMPONENTS = [None, "a", "a/b", "res", "d"]


def _in(names):
    blocks = [sr.component(n) for n in names]
    for b in blocks:
        b.__enter__()
    return blocks


def _out(blocks):
    for b in reversed(blocks):
        b.__exit__(None, None, None)


def random_program(ops, seed):
    """A small random graph with components, residual additions, matmuls and parallel edges."""
    rng = np.random.default_rng(seed)
    leaves = [sr.tensor(rng.standard_normal((3, 2)), requires_grad=True, name=f"p{i}") for i in range(2)]
    pool = list(leaves)
    for kind, comp, pick in ops:
        x = pool[pick % len(pool)]
        y = pool[(pick // 7) % len(pool)]
        blocks = _in(COMPONENTS[comp].split("/") if COMPONENTS[comp] else [])
        try:
            if kind == 0:
                z = (x * y).tanh()
            elif kind == 1:
                z = x + (y * 0.7).tanh()  # a residual addition: input 0 the stream, input 1 the branch
            elif kind == 2:
                z = x.relu() - y
            elif kind == 3:
                z = (x @ y.T @ x).tanh()
            elif kind == 4:
                z = x[np.array([0, 0, 2])] * 2.0
            elif kind == 5:
                z = x * x + y  # parallel edges
            else:
                z = (x.sum(axis=0, keepdims=True) * y).tanh()
        finally:
            _out(blocks)
        pool.append(z)
    with sr.component("out"):
        loss = (pool[0] * pool[1]).sum() * 0.1
        for t in pool[2:]:
            loss = loss + (t * t).sum() * 0.3
    return loss, leaves, pool


def selectors_for(pool):
    """Selectors of every kind: components, ops, a tensor, edges by input, unions."""
    return {
        "a": "a",  # a plain string: a component pattern, nested ones included
        "a.b": components("a.b"),  # dotted levels
        "mat": op("matmul"),
        "t": tensors(pool[-1]),
        "stream": edge(op="add", input=0),
        "branch": edge(component="*", op="add", input=1),
        "res-or-d": any_of("res", components("d")),
        "mul-edges": edge(op="mul"),
    }


# -- the slow references -----------------------------------------------------------------------------
def hits(selector_bits, steps):
    """The label bits of one walked path ``[(node, flat, rank), ...]``, by the definitions."""
    vertex, start, edges = selector_bits
    nodes = [n for n, _, _ in steps]
    out = start.get(nodes[0], 0)
    for node in nodes[1:]:
        out |= vertex.get(node, 0)
    for a, b in zip(nodes, nodes[1:]):
        out |= edges.get((a, b), 0)
    return out


def definitions(selectors, nodes):
    """Per node the bits of each label, evaluated straight from the documented meaning."""
    vertex, start, edges = {}, {}, {}
    for j, sel in enumerate(selectors):
        sel = sr.analysis.shares.as_selector(sel)
        for node in nodes:
            is_op = node.op is not None
            if isinstance(sel, sr.analysis.shares._Union):
                parts = sel.parts()
            else:
                parts = [sel]
            for part in parts:
                if isinstance(part, sr.analysis.shares._Components) and is_op and part.matches(node.component):
                    vertex[node] = vertex.get(node, 0) | 1 << j
                if isinstance(part, sr.analysis.shares._Ops) and is_op and node.op.name in part.names:
                    vertex[node] = vertex.get(node, 0) | 1 << j
                if isinstance(part, sr.analysis.shares._Tensors) and node in part.nodes:
                    vertex[node] = vertex.get(node, 0) | 1 << j
                    start[node] = start.get(node, 0) | 1 << j
                if isinstance(part, sr.analysis.shares._Edges) and is_op:
                    if part.op_name is not None and node.op.name != part.op_name:
                        continue
                    if part.component is not None and not part.component.matches(node.component):
                        continue
                    for i, p in enumerate(node.parents):
                        if p is not None and (part.input is None or part.input == i):
                            edges[(p, node)] = edges.get((p, node), 0) | 1 << j
    return vertex, start, edges


def walked_shares(result, sources, through, masks=None, ranks=None):
    """Counts by walking every selected path with ``Trace.walk``."""
    labels = list(through)
    nodes = result.sweep.order
    bits = definitions(list(through.values()), nodes)
    k = getattr(result.semiring, "k", 1)
    counts = dict.fromkeys(labels + ["none"], 0)
    total = 0
    combos = defaultdict(int)
    for s, src in enumerate(sources):
        node = src._node
        mask = np.ones(node.shape, bool) if masks is None or masks[s] is None else masks[s]
        for index in np.ndindex(node.shape):
            if not mask[index]:
                continue
            for rank in range(k):
                if ranks is not None and rank not in ranks:
                    continue
                steps = list(result.walk(node, index, rank))
                if not steps:
                    continue
                total += 1
                b = hits(bits, steps)
                for j, lab in enumerate(labels):
                    if b >> j & 1:
                        counts[lab] += 1
                counts["none"] += b == 0
                combos[tuple(lab for j, lab in enumerate(labels) if b >> j & 1)] += 1
    return counts, total, dict(combos)


def jacobian_edges(nodes):
    """The explicit scalar graph: ``(parent, flat) -> [(node, flat, weight, parent's node)]``, one
    entry per input slot (parallel edges stay separate), weights from one-hot SumProduct VJPs."""
    out = defaultdict(list)
    semiring = SumProduct()
    for node in nodes:
        if node.op is None:
            continue
        size = int(np.prod(node.shape))
        for i, parent in enumerate(node.parents):
            if parent is None or parent not in nodes:
                continue
            needs = tuple(j == i for j in range(len(node.parents)))
            for e in range(size):
                g = np.zeros(node.shape)
                g.reshape(-1)[e] = 1.0
                row = full_contribution(semiring, node.op.backward(node, g, semiring, needs)[i], parent.shape)
                for a, w in enumerate(np.asarray(row, dtype=float).reshape(-1)):
                    out[(parent, a)].append((node, e, float(w)))
    return out


def brute_force_flow(loss, sources, through, masks=None):
    """``{label: Σ |product| of the paths through it}``, ``none`` and the total, by dynamic programming
    over the explicit scalar graph on (vertex, labels hit after it) -- the definition, path by path."""
    graph = sr.engine.ancestors(loss._node)
    node_set = set(graph)
    labels = list(through)
    vertex, start, edges = definitions(list(through.values()), graph)
    out_edges = jacobian_edges(node_set)
    root = loss._node
    memo = {}

    def after(node, flat):  # {bits hit strictly after this vertex: Σ |product|}
        key = (node, flat)
        if key in memo:
            return memo[key]
        if node is root:
            memo[key] = {0: 1.0}
            return memo[key]
        found = defaultdict(float)
        for succ, e, w in out_edges.get((node, flat), ()):
            add = vertex.get(succ, 0) | edges.get((node, succ), 0)
            for b, flow in after(succ, e).items():
                found[b | add] += abs(w) * flow
        memo[key] = dict(found)
        return memo[key]

    counts = dict.fromkeys(labels + ["none"], 0.0)
    total = 0.0
    for s, src in enumerate(sources):
        node = src._node
        mask = np.ones(node.shape, bool) if masks is None or masks[s] is None else masks[s]
        for flat, index in enumerate(np.ndindex(node.shape)):
            if not mask[index]:
                continue
            for b, flow in after(node, flat).items():
                b |= start.get(node, 0)
                total += flow
                for j, lab in enumerate(labels):
                    if b >> j & 1:
                        counts[lab] += flow
                if b == 0:
                    counts["none"] += flow
    return counts, total


# -- trace: one pass == walking every path -----------------------------------------------------------
OPS = st.lists(st.tuples(st.integers(0, 6), st.integers(0, len(COMPONENTS) - 1), st.integers(0, 48)),
               min_size=1, max_size=5)  # fmt: skip


def _result(loss, sources, which):
    if which == "trace":
        return sr.trace(loss, sources)
    if which == "log":
        return sr.backward(loss, sources, semiring=LogMaxAbs())
    return sr.backward(loss, sources, semiring=KBest(int(which[-1])))


@settings(deadline=None)
@given(ops=OPS, seed=st.integers(0, 1000), which=st.sampled_from(["trace", "log", "kbest2", "kbest3"]),
       mask_seed=st.integers(0, 3), rank=st.sampled_from([None, [0], [1]]))  # fmt: skip
def test_random_graphs_one_pass_equals_walking_every_path(ops, seed, which, mask_seed, rank):
    loss, leaves, pool = random_program(ops, seed)
    sources = leaves + pool[2:3]  # an intermediate tensor too
    result = _result(loss, sources, which)
    k = getattr(result.semiring, "k", 1)
    ranks = None if rank is None or rank[0] >= k else rank
    through = selectors_for(pool)
    rng = np.random.default_rng(mask_seed)
    masks = None if mask_seed == 0 else [rng.random(s.shape) < 0.6 for s in sources]
    got = path_shares(result, sources, through, elements=masks, ranks=ranks, strict=False)
    counts, total, combos = walked_shares(result, sources, through, masks, ranks)
    assert got.counts == counts
    assert got.total == total == got.paths
    assert got.combinations == combos
    assert got.shares == pytest.approx({k: (v / total if total else 0.0) for k, v in counts.items()})


def test_sources_that_are_no_input_of_the_trace_but_vertices_of_the_sweep():
    loss, leaves, pool = random_program([(3, 1, 2), (1, 3, 15), (0, 2, 23)], 5)
    result = sr.trace(loss, leaves)  # pool[2] and pool[3] are vertices on the leaves' paths
    through = selectors_for(pool)
    got = path_shares(result, pool[2:4], through, strict=False)
    counts, total, _ = walked_shares(result, pool[2:4], through)
    assert got.counts == counts and got.total == total > 0


# -- backprop: one sweep == the definition by brute force ------------------------------------------
@settings(deadline=None, max_examples=40)
@given(ops=OPS, seed=st.integers(0, 1000), mask_seed=st.integers(0, 3))
def test_random_graphs_backprop_shares_equal_brute_force(ops, seed, mask_seed):
    loss, leaves, pool = random_program(ops, seed)
    sources = leaves + pool[2:3]
    through = selectors_for(pool)
    rng = np.random.default_rng(mask_seed)
    masks = None if mask_seed == 0 else [rng.random(s.shape) < 0.6 for s in sources]
    got = backprop_path_shares(loss, sources, through, elements=masks, strict=False)
    counts, total = brute_force_flow(loss, sources, through, masks)
    assert got.total == pytest.approx(total, rel=1e-9, abs=1e-12)
    for lab in counts:
        assert got.counts[lab] == pytest.approx(counts[lab], rel=1e-7, abs=1e-9 * max(total, 1e-300)), lab
    # the total is SumAbs, summed over the selected elements
    flow = sr.backward(loss, sources, semiring=SumAbs())
    assert got.total == pytest.approx(
        sum(float(np.asarray(flow[s])[m].sum()) for s, m in zip(sources, masks or [None] * 3) if m is not None)
        if masks
        else sum(float(np.asarray(flow[s]).sum()) for s in sources)
    )


def test_one_path_per_element_backprop_and_trace_shares_agree():
    rng = np.random.default_rng(0)
    w = sr.tensor(rng.standard_normal(6), requires_grad=True, name="w")
    with sr.component("a"):
        y = (w * 2.0).exp()
    with sr.component("b"):
        z = y.tanh()
    loss = (z * sr.tensor(rng.standard_normal(6))).sum()
    through = {"a": "a", "b": "b", "exp": op("exp")}
    tr = path_shares(sr.trace(loss, [w]), w, through)
    bp = backprop_path_shares(loss, w, through)
    assert tr.shares == pytest.approx(bp.shares)
    assert tr.shares == {"a": 1.0, "b": 1.0, "exp": 1.0, "none": 0.0}


def test_cancelling_paths_weigh_in_backprop_shares_but_not_in_the_trace():
    x = sr.tensor([1.0, 2.0], requires_grad=True, name="x")
    with sr.component("branch"):
        y = x * 3.0
    out = (y - x * 2.9).sum()  # gradient 0.1 per element: the paths nearly cancel
    tr = path_shares(sr.trace(out, [x]), x, {"branch": "branch"})
    bp = backprop_path_shares(out, x, {"branch": "branch"})
    assert tr.shares["branch"] == 1.0
    assert bp.shares["branch"] == pytest.approx(3.0 / 5.9)
    assert bp.total == pytest.approx(2 * 5.9)


# -- the transformer: key, query, value, and around them on the residual stream ------------------------
def transformer_graph(seed=0, layers=2, d_model=8, seq=4, batch=2):
    sr.manual_seed(seed)
    layer = nn.TransformerEncoderLayer(d_model, 2, dim_feedforward=16, dropout=0.0, batch_first=True)
    encoder = nn.TransformerEncoder(layer, layers)
    embed = nn.Embedding(5, d_model)
    tokens = np.random.default_rng(seed).integers(0, 5, (batch, seq))
    emb = embed(tokens)
    out = encoder(emb)
    loss = (out[:, -1] * sr.tensor(np.random.default_rng(seed + 1).standard_normal(d_model))).sum()
    return loss, emb, encoder, embed


def layer_selectors(layer):
    return {
        "query": f"layers.{layer}.self_attn.query",
        "key": f"layers.{layer}.self_attn.key",
        "value": f"layers.{layer}.self_attn.value",
        "residual": edge(component=f"layers.{layer}.residual_attn", op="add", input=0),
    }


@pytest.mark.parametrize("which", ["trace", "kbest2"])
def test_transformer_layer_shares_from_the_embedding_equal_walking(which):
    loss, emb, encoder, _ = transformer_graph()
    result = _result(loss, [emb], which)
    position0 = (slice(None), 0)
    mask = sr.analysis.shares.element_mask(emb.shape, position0)
    for layer in (0, 1):
        through = layer_selectors(layer)
        got = path_shares(result, emb, through, elements=position0)
        counts, total, combos = walked_shares(result, [emb], through, [mask])
        assert got.counts == counts and got.total == total and got.combinations == combos
        # every path from the embedding crosses each attention layer by exactly one of the four
        assert sum(n for c, n in combos.items() if len(c) == 1) == total, combos


def test_transformer_backprop_shares_are_one_sweep_and_sum_like_the_trace():
    loss, emb, encoder, _ = transformer_graph(layers=1, d_model=4, seq=3, batch=1)
    through = layer_selectors(0)
    got = backprop_path_shares(loss, emb, through)
    # the four branches partition the paths: their flows sum to the total, nothing goes through none
    assert sum(got.counts[k] for k in through) == pytest.approx(got.total)
    assert got.counts["none"] == pytest.approx(0.0, abs=1e-12 * got.total)
    counts, total = brute_force_flow(loss, [emb], through)
    assert got.total == pytest.approx(total)
    assert got.counts == pytest.approx(counts, rel=1e-7, abs=1e-12 * total)


# -- the result object -----------------------------------------------------------------------------
def test_result_round_trip_table_and_str():
    loss, leaves, pool = random_program([(3, 1, 2), (1, 3, 15)], 1)
    s = path_shares(sr.trace(loss, leaves), leaves, {"a": "a", "res": "res"})
    back = PathShares.from_dict(s.to_dict())
    assert back.counts == s.counts and back.total == s.total and back.combinations == s.combinations
    assert back.shares == s.shares and back.kind == "trace"
    text = str(s)
    assert "none" in text and "several labels" in text and s.table() == text
    b = backprop_path_shares(loss, leaves, {"a": "a", "res": "res"})
    back = PathShares.from_dict(b.to_dict())
    assert back.counts == b.counts and back.kind == "backprop" and back.combinations is None
    assert sum(s.counts[k] for k in ("none",)) <= s.total
    assert set(s.shares) == {"a", "res", "none"}


# -- errors ------------------------------------------------------------------------------------------
def test_clear_errors():
    loss, leaves, pool = random_program([(3, 1, 2)], 0)
    tr = sr.trace(loss, leaves)
    with pytest.raises(TypeError, match="path-capable"):
        path_shares(sr.backward(loss, leaves, semiring=SumAbs()), leaves, {"a": "a"})
    with pytest.raises(ValueError, match="matmull.*matches nothing.*ops: "):
        path_shares(tr, leaves, {"m": op("matmull")})
    with pytest.raises(ValueError, match="nope.*matches nothing"):
        backprop_path_shares(loss, leaves, {"m": "nope"})
    assert path_shares(tr, leaves, {"m": "nope"}, strict=False).counts["m"] == 0
    with pytest.raises(TypeError, match="selector"):
        path_shares(tr, leaves, {"m": 3})
    with pytest.raises(TypeError, match="input"):
        edge(op="add", input=-1)
    with pytest.raises(TypeError, match="needs"):
        edge()
    with pytest.raises(ValueError, match="'none'"):
        path_shares(tr, leaves, {"none": "a"})
    with pytest.raises(ValueError, match=r"shape \(2, 2\).*shape \(3, 2\)"):
        path_shares(tr, leaves[0], {"a": "a"}, elements=np.ones((2, 2), bool))
    with pytest.raises(TypeError, match="float64"):
        path_shares(tr, leaves[0], {"a": "a"}, elements=np.ones((3, 2)))
    with pytest.raises(IndexError, match=r"shape \(3, 2\)"):
        path_shares(tr, leaves[0], {"a": "a"}, elements=[7])
    with pytest.raises(TypeError, match="one entry per tensor"):
        path_shares(tr, leaves, {"a": "a"}, elements=np.ones((3, 2), bool))
    other = sr.tensor([1.0], requires_grad=True, name="other")
    with pytest.raises(ValueError, match="'other'.*not a vertex of this sweep"):
        path_shares(tr, other, {"a": "a"})
    with pytest.raises(ValueError, match="'other'"):
        backprop_path_shares(loss, other, {"a": "a"})
    with pytest.raises(IndexError, match="rank 1"):
        path_shares(tr, leaves, {"a": "a"}, ranks=[1])
    with pytest.raises(TypeError, match="non-empty dict"):
        path_shares(tr, leaves, {})


def test_elements_by_name_and_index_forms_agree():
    loss, leaves, pool = random_program([(3, 1, 2), (1, 3, 15)], 2)
    tr = sr.trace(loss, leaves)
    through = {"a": "a", "res": "res"}
    mask = np.zeros((3, 2), bool)
    mask[1] = True
    a = path_shares(tr, leaves, through, elements=[mask, None])
    b = path_shares(tr, leaves, through, elements={"p0": 1})
    c = path_shares(tr, leaves, through, elements=[np.nonzero(mask), np.ones((3, 2), bool)])
    assert a.counts == b.counts == c.counts
    assert a.elements == 2 + 6


# -- over_dataset: path shares per sample, mean ± std, saved and resumed --------------------------------
class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(5, 4)
        self.layer = nn.TransformerEncoderLayer(4, 2, dim_feedforward=8, dropout=0.0, batch_first=True)
        self.embedded = None

    def forward(self, tokens):
        self.embedded = self.embed(tokens[None])
        out = self.layer(self.embedded)
        return (out[:, -1] * out[:, 0]).sum()


def test_over_dataset_aggregates_path_shares_per_sample(tmp_path):
    sr.manual_seed(0)
    net = _Net()
    data = [np.array([1, 2, 3]), np.array([4, 0, 1]), np.array([2, 2, 4])]
    through = layer_selectors(0)
    through = {k: v.replace("layers.0.", "layer.") if isinstance(v, str) else v for k, v in through.items()}
    through["residual"] = edge(component="layer/residual_attn", op="add", input=0)
    spec = dict(sources=lambda: net.embedded, through=through, elements=(slice(None), 0), backprop=True)
    file = tmp_path / "shares.jsonl"
    first = sr.analysis.over_dataset(net, data, net, path=file, limit=2, progress=False, shares=spec)
    assert len(first) == 2 and not first.complete
    done = sr.analysis.over_dataset(net, data, net, path=file, progress=False, shares=spec)
    assert len(done) == 3 and done.complete
    # each sample's row is path_shares (and backprop_path_shares) of that sample
    expected = []
    for i, tokens in enumerate(data):
        loss = net(tokens)
        tr = sr.trace(loss, list(net.parameters()))
        want = path_shares(tr, net.embedded, through, elements=(slice(None), 0))
        assert done.share_results()[i].counts == want.counts
        bp = backprop_path_shares(loss, net.embedded, through, elements=(slice(None), 0))
        assert done.share_results("shares_backprop")[i].counts == pytest.approx(bp.counts)
        expected.append(want.shares)
    stats = done.share_stats()
    for label in through:
        values = [s[label] for s in expected]
        assert stats[label] == pytest.approx((np.mean(values), np.std(values)))
    loaded = sr.analysis.DatasetImportance.load(file)
    assert loaded.share_stats() == stats and loaded.share_stats("shares_backprop") == done.share_stats(
        "shares_backprop"
    )
    assert "shares mean ± std" in loaded.shares_table() and "shares_backprop" in str(loaded)
    done.save(tmp_path / "again.jsonl")
    assert sr.analysis.DatasetImportance.load(tmp_path / "again.jsonl").share_stats() == stats
    # another question is another configuration: no resume from this file
    with pytest.raises(sr.analysis.ResultsFileError, match="another configuration"):
        sr.analysis.over_dataset(net, data, net, path=file, progress=False, shares=dict(spec, through={"k": "layer"}))
    # a callable instead of the dict
    calls = sr.analysis.over_dataset(
        net, data[:1], net, progress=False,
        shares=lambda result, loss: path_shares(result, net.embedded, through, elements=(slice(None), 0)),
    )  # fmt: skip
    assert calls.share_results()[0].counts == done.share_results()[0].counts


def test_over_dataset_files_without_shares_still_resume(tmp_path):
    w = sr.tensor([1.0, -2.0], requires_grad=True, name="w")

    def loss_of(x):
        with sr.component("scale"):
            y = w * x
        return (y * y).sum()

    file = tmp_path / "old.jsonl"
    sr.analysis.over_dataset(loss_of, [1.0, 2.0], [w], path=file, limit=1, progress=False)
    assert '"shares"' not in file.read_text()  # the configuration of a run without shares is what it was
    rest = sr.analysis.over_dataset(loss_of, [1.0, 2.0], [w], path=file, progress=False)
    assert len(rest) == 2 and rest.share_results() == [] and "no path shares" in rest.shares_table()
    with pytest.raises(TypeError, match="unknown keys"):
        sr.analysis.over_dataset(
            loss_of, [1.0], [w], progress=False, shares=dict(sources=w, through={"s": "scale"}, x=1)
        )


def test_a_blocked_edge_hands_its_siblings_flow_to_a_source_itself():
    # the add's input 0 is the source: blocking input 1 sends the flow on to it at the add, before the
    # sweep reaches it (the value the sweep records for an input is the one before its enter)
    x = sr.tensor([0.3, -1.2], requires_grad=True, name="x")
    y = x + (x * 0.7).tanh()
    loss = (y * np.array([2.0, -3.0])).sum()
    through = {"branch": edge(op="add", input=1), "skip": edge(op="add", input=0)}
    got = backprop_path_shares(loss, x, through)
    branch = np.abs(0.7 * (1 - np.tanh(0.7 * x.numpy()) ** 2) * np.array([2.0, -3.0])).sum()
    skip = 5.0
    assert got.counts == pytest.approx({"branch": branch, "skip": skip, "none": 0.0})
    assert got.total == pytest.approx(branch + skip)
    assert got.counts == pytest.approx(brute_force_flow(loss, [x], through)[0])
