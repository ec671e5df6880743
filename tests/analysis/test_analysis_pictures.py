"""DOT export (well-formed, clusters, the highlighted path) and the matplotlib figures."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import semirad as sr
import semirad.nn.functional as F
from semirad import engine, nn
from semirad.analysis import backprop_importance, compare, component_importance, to_dot, write_graph


def model_and_loss():
    sr.manual_seed(0)

    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(3, 2)
            self.lstm = nn.LSTM(2, 3, batch_first=True)
            self.head = nn.Linear(3, 3)

        def forward(self, tokens):
            return self.head(self.lstm(self.embed(tokens))[0])

    model = LM()
    tokens = np.array([[0, 2, 1, 1]])
    with sr.component("loss"):
        pass
    logits = model(tokens[:, :-1])
    with sr.component("loss"):
        loss = F.cross_entropy(logits.reshape(-1, 3), tokens[0, 1:])
    return model, loss


def check_dot(text: str) -> dict:
    """A small structural check of DOT text: balanced braces outside strings, statements closed,
    every edge between declared nodes. Returns the declared nodes and the edges."""
    lines = text.strip().splitlines()
    assert lines[0] == "digraph semirad {" and lines[-1] == "}"
    depth = 0
    for line in lines:
        bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', line)  # drop quoted strings (escapes included)
        assert bare.count('"') % 2 == 0, line
        depth += bare.count("{") - bare.count("}")
        assert depth >= 0, line
        stripped = bare.strip()
        assert stripped.endswith(("{", "}", ";")), line
    assert depth == 0
    nodes = set(re.findall(r"^\s*(n\d+) \[label=", text, re.M))
    edges = re.findall(r"^\s*(n\d+) -> (n\d+)(.*);$", text, re.M)
    for a, b, _ in edges:
        assert a in nodes and b in nodes
    clusters = re.findall(r"subgraph (cluster_\d+) \{", text)
    assert len(clusters) == len(set(clusters))
    return {"nodes": nodes, "edges": edges, "clusters": clusters}


def test_dot_is_well_formed_with_clusters_and_the_path_highlighted():
    model, loss = model_and_loss()
    tr = sr.trace(loss, [model.lstm.weight_hh_l0])
    path = tr.path(model.lstm.weight_hh_l0, (5, 1))
    text = to_dot(loss, path, title='a "quoted" title\\with backslash')
    parsed = check_dot(text)
    graph_nodes = engine.ancestors(loss._node)
    assert len(parsed["nodes"]) == len(graph_nodes)
    n_slots = sum(1 for n in graph_nodes for p in n.parents if p is not None)
    assert len(parsed["edges"]) == n_slots
    bold = [e for e in parsed["edges"] if "penwidth=2.5" in e[2]]
    assert len({(a, b) for a, b, _ in bold}) == len(set(zip(path.node_seqs, path.node_seqs[1:])))
    assert {f"n{s}" for s in path.node_seqs} <= parsed["nodes"]
    for name in ("embed", "lstm", "t0", "forget", "head", "loss"):
        assert f'label="{name}"' in text
    flat = check_dot(to_dot(loss, clusters=False))
    assert not flat["clusters"]
    two = check_dot(to_dot(loss, [path, tr.path(model.lstm.weight_hh_l0, (0, 0))]))
    assert len(two["nodes"]) == len(graph_nodes)
    with pytest.raises(ValueError, match="max_nodes"):
        to_dot(loss, max_nodes=10)


def test_write_graph_renders_when_dot_is_there_and_writes_plain_dot_otherwise(tmp_path, monkeypatch):
    model, loss = model_and_loss()
    path = sr.trace(loss, [model.head.weight]).path(model.head.weight, (0, 0))
    if shutil.which("dot"):
        files = write_graph(loss, tmp_path / "g.svg", formats=("svg", "png"), highlight=path)
        assert [f.name for f in files] == ["g.dot", "g.svg", "g.png"]
        ET.parse(files[1])  # the SVG is XML
        assert files[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    monkeypatch.setattr(shutil, "which", lambda name: None)
    files = write_graph(to_dot(loss, path), tmp_path / "plain")
    assert [f.name for f in files] == ["plain.dot"]
    check_dot(files[0].read_text())


def test_figures_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    from semirad.analysis import plots

    model, loss = model_and_loss()
    params = list(model.parameters())
    trace = component_importance(sr.trace(loss, params), model, group="across_time")
    bp = backprop_importance(loss, model, group="across_time")
    c = compare(loss, model)
    files = {
        "importance": plots.importance_figure({"backprop": bp, "trace": trace}, tmp_path / "importance.png"),
        "heatmaps": plots.heatmaps_figure(
            c.grads["lstm.weight_hh_l0"],
            c.traces["lstm.weight_hh_l0"],
            tmp_path / "heatmaps.png",
            name="lstm.weight_hh_l0",
        ),  # fmt: skip
        "ratios": plots.ratio_figure(c, tmp_path / "ratios.svg"),
        "history": plots.history_figure(
            [0, 1], {"trace": {"a": [0.1, 0.2]}, "backprop": {"a": [0.3, 0.1]}}, tmp_path / "history.png"
        ),  # fmt: skip
        "bias": plots.heatmaps_figure(c.grads["head.bias"], c.traces["head.bias"], tmp_path / "bias.png"),
    }
    for name in ("importance.png", "heatmaps.png", "history.png", "bias.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ET.parse(tmp_path / "ratios.svg")
    assert all(hasattr(fig, "savefig") for fig in files.values())
    axes = files["importance"].axes[0]
    assert [t.get_text() for t in axes.get_yticklabels()] == list(bp.counts)
