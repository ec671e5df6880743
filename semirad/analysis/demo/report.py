"""The demo's report: ``results.json``, ``report.md``, the figures, the graph and the printed summary.

Everything here formats what :func:`~semirad.analysis.demo.run.train_and_trace` found; nothing
is computed again.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path as FilePath
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..dot import to_dot, write_graph
from ..groups import UNTAGGED, label
from ..tables import side_by_side
from .config import COMPARE_TOP, TEST_STRINGS
from .task import TOKENS

if TYPE_CHECKING:
    from .findings import DemoFindings

RECURRENT_WEIGHT = "lstm.weight_hh_l0"  # the weight whose best paths the report shows


def write_report(findings: DemoFindings, out_dir, say: Callable = print) -> dict:
    """Write ``results.json``, ``report.md``, the figures and the graph into ``out_dir``, print the
    summary with ``say``; returns the numbers of ``results.json``.

    >>> import tempfile
    >>> from semirad.analysis.demo import DemoConfig
    >>> from semirad.analysis.demo.run import train_and_trace
    >>> with tempfile.TemporaryDirectory() as out:
    ...     findings = train_and_trace(DemoConfig.tiny(), out, say=lambda *lines: None)
    ...     said = []
    ...     results = write_report(findings, out, say=said.append)
    ...     report = (FilePath(out) / "report.md").read_text()
    >>> report.splitlines()[0]
    '# semirad demo: where does the gradient of an LSTM language model run?'
    >>> said[1].startswith("trained 1 steps"), results["history"]["step"]
    (True, [0, 1])
    """
    out = FilePath(out_dir)
    graph_files = _write_graph(out, findings)
    figures = _write_figures(out, findings)
    results = _results(findings, figures, graph_files)
    results["seconds"]["total"] = time.perf_counter() - findings.started
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "report.md").write_text(_markdown(results, findings, figures, graph_files))
    for block in _summary(results, findings, out, figures, graph_files):
        say(block)
    return results


def _results(findings: DemoFindings, figures: list, graph_files: list) -> dict:
    """The numbers of ``results.json`` (``seconds["total"]`` is filled in when it is written)."""
    dataset = findings.dataset
    best = findings.best_path
    return {
        "config": asdict(findings.config),
        "parameters": findings.parameters,
        "final_loss": float(np.mean(findings.losses[-20:])) if findings.losses else findings.probe_loss,
        "probe_loss": findings.probe_loss,
        "closing_accuracy": findings.closing_accuracy,
        "seconds": {"total": None, **findings.seconds},
        "trace": findings.trace.to_dict(),
        "trace_full": findings.trace_full.to_dict(),
        "backprop": findings.backprop.to_dict(),
        "by_parameter_group": {g: imp.to_dict() for g, imp in findings.by_group.groups.items()},
        "compare": _jsonable(findings.comparison.records()),
        "dataset": {
            "mean": dataset.mean("trace"),
            "std": dataset.std("trace"),
            "backprop_mean": dataset.mean("backprop"),
            "backprop_std": dataset.std("backprop"),
            "samples": len(dataset),
        },
        "history": findings.history,
        "check": findings.check,
        "best_path": {
            "param": findings.best_param,
            "index": list(findings.best_index),
            "value": best.value,
            "edges": len(best.weights),
            "components": {label(k): v for k, v in best.components().items()},
        },
        "files": {"figures": [f.name for f in figures], "graph": [f.name for f in graph_files]},
    }


def _write_graph(out: FilePath, findings: DemoFindings) -> list:
    """``graph.dot`` (and ``graph.svg`` with Graphviz): the small graph, its best path highlighted."""
    dot = to_dot(
        findings.graph_output,
        findings.graph_path,
        title=f"best path from {RECURRENT_WEIGHT}{list(findings.graph_index)} on one string of "
        f"{findings.config.graph_length} brackets",
    )
    return write_graph(dot, out / "graph", formats=("svg",))


def _write_figures(out: FilePath, findings: DemoFindings) -> list:
    """The four figures, with matplotlib (none without it)."""
    from ..plots import have_matplotlib, heatmaps_figure, history_figure, importance_figure, ratio_figure

    if not have_matplotlib():
        return []
    comparison, history = findings.comparison, findings.history
    weight = findings.best_param or RECURRENT_WEIGHT
    files = [out / "importance.png", out / "heatmaps_weight_hh.png", out / "ratios.png", out / "history.png"]
    importance_figure(
        {"backprop": findings.backprop, "trace": findings.trace},
        files[0],
        title="component importance: share of path edges (all time steps)",
    )
    heatmaps_figure(comparison.grads[weight], comparison.traces[weight], files[1], name=weight)
    ratio_figure(comparison, files[2])
    series = {}
    for kind in ("trace", "backprop"):
        comps: list = []
        for d in history[kind]:
            for c in d["counts"]:
                if c not in comps:
                    comps.append(c)
        series[kind] = {c: [_share(d, c) for d in history[kind]] for c in comps if c not in ("lstm", UNTAGGED)}
    history_figure(history["step"], series, files[3], title="component importance during training (probe batch)")
    return files


def _summary(results: dict, findings: DemoFindings, out: FilePath, figures: list, graph_files: list) -> list:
    """What ``semirad demo`` prints at the end, one ``say`` call per entry."""
    seconds = results["seconds"]
    return [
        "",
        f"trained {findings.config.steps} steps in {seconds['train']:.1f} s; loss {results['final_loss']:.4f}, "
        f"closing accuracy {results['closing_accuracy']:.1%} (chance 50 %)",
        "",
        "component importance on the probe batch (share of path edges; every time step counted in its gate):",
        side_by_side({"backprop": findings.backprop, "trace": findings.trace}),
        "",
        "backprop vs trace per parameter:",
        findings.comparison.table(),
        "",
        f"importance over {len(findings.dataset)} held-out batches (mean ± std):",
        findings.dataset.table(),
        "",
        f"the trace took {seconds['final_trace']:.3f} s, component importance over all {findings.trace_full.paths} "
        f"paths {seconds['final_importance']:.3f} s",
        f"report: {out / 'report.md'} ({len(figures)} figures, graph: {', '.join(f.name for f in graph_files)})",
    ]


def _markdown(results: dict, findings: DemoFindings, figures: list, graph_files: list) -> str:
    """``report.md``: the tables, figures, a best path and the checks, with what each column means."""
    c = results["config"]
    trace_imp, bp, by_group = findings.trace, findings.backprop, findings.by_group
    comparison, dataset, best = findings.comparison, findings.dataset, findings.best_path
    comps: list = []
    for imp in (bp, trace_imp):
        for k in imp.counts:
            if k not in comps:
                comps.append(k)
    importance_rows = [
        [
            f"`{k}`",
            f"{100 * bp.shares.get(k, 0):.1f} %",
            f"{100 * trace_imp.shares.get(k, 0):.1f} %",
            f"{trace_imp.counts.get(k, 0):.0f}",
        ]
        for k in comps
    ]
    importance_rows.append(
        [
            "**total**",
            f"{100 * sum(bp.shares.values()):.1f} %",
            f"{100 * sum(trace_imp.shares.values()):.1f} %",
            f"{trace_imp.total:.0f}",
        ]
    )
    groups = list(by_group.groups)
    group_rows = [
        [f"`{k}`"] + [f"{100 * by_group.groups[g].shares.get(k, 0):.1f} %" for g in groups]
        for k in comps
        if any(k in by_group.groups[g].counts for g in groups)
    ]
    hist = results["history"]
    gate_cols = [k for k in comps if k.startswith("lstm/")] + ["embed", "head"]
    history_rows = []
    for i, step in enumerate(hist["step"]):
        row = [step, f"{hist['loss'][i]:.3f}", f"{hist['accuracy'][i]:.0%}"]
        row += [
            f"{100 * _share(hist['trace'][i], k):.1f} / {100 * _share(hist['backprop'][i], k):.1f}" for k in gate_cols
        ]
        history_rows.append(row)
    compare_rows = []
    for r in comparison.records():
        compare_rows.append(
            [
                f"`{r['param']}`",
                str(r["shape"]),
                f"{r['grad_norm']:.3g}",
                f"{r['trace_max']:.3g}",
                f"{r['spearman']:.3f}",
                f"{r['ratio_median']:.3g}",
                f"{r['ratio_min']:.2g} – {r['ratio_max']:.2g}",
                f"{r['top_overlap']}/{comparison.top}",
            ]
        )
    dmean, dstd = dataset.mean("trace"), dataset.std("trace")
    bmean, bstd = dataset.mean("backprop"), dataset.std("backprop")
    dataset_rows = [
        [
            f"`{k}`",
            f"{100 * bmean.get(k, 0):.1f} ± {100 * bstd.get(k, 0):.1f} %",
            f"{100 * dmean.get(k, 0):.1f} ± {100 * dstd.get(k, 0):.1f} %",
        ]
        for k in comps
    ]
    check = results["check"]
    s = results["seconds"]
    figs = {f.name: f.name for f in figures}
    graph_img = next((f.name for f in graph_files if f.suffix == ".svg"), None)
    parts = [
        "# semirad demo: where does the gradient of an LSTM language model run?",
        "",
        f"**Task.** Next-bracket prediction on Dyck-2 strings: {c['length']} balanced brackets `( ) [ ]`, generated "
        f"(seed {c['seed']}). Which kind of bracket *closes* is determined by the string so far, so the model has "
        "to remember the kind of the innermost open bracket; opening and closing themselves are coin flips.",
        "",
        f"**Model.** `Embedding({len(TOKENS)}, {c['embed']}) -> LSTM({c['embed']}, {c['hidden']}) -> "
        f"Linear({c['hidden']}, {len(TOKENS)})`, {results['parameters']} parameters, trained for {c['steps']} Adam "
        f"steps (batch {c['batch']}, lr {c['lr']}) in {s['train']:.1f} s. Final training loss "
        f"{results['final_loss']:.4f}; closing accuracy on {TEST_STRINGS} fresh strings "
        f"**{results['closing_accuracy']:.1%}** "
        "(chance: 50 %).",
        "",
        "## Component importance",
        "",
        f"On a probe batch of {c['probe']} strings, for every one of the {results['parameters']} parameter elements:",
        "",
        "* **trace**: its single best path to the loss (`sr.trace`, MaxAbsProduct); the column is the share of "
        "all those paths' edges that lie in each component (an edge belongs to the component of the op that "
        "consumes it).",
        "* **backprop**: *all* its paths, each weighted by `|product of its partials|` (its part of the gradient "
        "before cancellation); the column is the expected share of edges in each component "
        "(`sr.analysis.backprop_importance`).",
        "",
        "Time steps are merged (`across_time`): `lstm/forget` is the forget gate at every step. `lstm/proj` holds "
        "the gate pre-activations (`x W_ih^T + b_ih`, `h W_hh^T + b_hh`), `lstm` the layer's glue (stacking "
        "outputs), `loss` the cross-entropy.",
        "",
        _md_table(["component", "backprop", "trace", "trace edges"], importance_rows),
        "",
    ]
    if "importance.png" in figs:
        parts += ["![component importance](importance.png)", ""]
    parts += [
        "### By parameter group (trace)",
        "",
        "Where the best paths of each module's parameters run:",
        "",
        _md_table(["component"] + [f"`{g}` params" for g in groups], group_rows),
        "",
        "## During training",
        "",
        f"Trace / backprop share (%) of each component on the probe batch, every {c['trace_every']} steps:",
        "",
        _md_table(["step", "loss", "closing acc."] + [f"`{k}`" for k in gate_cols], history_rows),
        "",
    ]
    if "history.png" in figs:
        parts += ["![importance during training](history.png)", ""]
    parts += [
        "## Backprop vs trace per parameter",
        "",
        "`|trace|/|grad|` is the share of an element's gradient that its best path alone carries (above 1 where "
        "paths of opposite sign cancel); Spearman is the rank correlation of `|grad|` and `|trace|` over the "
        f"elements; the last column counts the elements the top-{COMPARE_TOP} lists by `|grad|` and by `|trace|` "
        "share.",
        "",
        _md_table(
            ["param", "shape", "‖grad‖", "max |trace|", "Spearman", "median |trace|/|grad|", "range"]
            + [f"top-{COMPARE_TOP} shared"],
            compare_rows,
        ),
        "",
    ]
    if "heatmaps_weight_hh.png" in figs:
        parts += ["![|grad| vs |trace| of lstm.weight_hh_l0](heatmaps_weight_hh.png)", ""]
    if "ratios.png" in figs:
        parts += ["![distribution of |trace| / |grad|](ratios.png)", ""]
    parts += [
        f"## Over {len(dataset)} held-out batches",
        "",
        f"`sr.analysis.over_dataset`, {c['eval_batches']} batches of {c['eval_size']} strings; mean ± std of the "
        "share per batch (partial results: `over_dataset.json`, resumable).",
        "",
        _md_table(["component", "backprop", "trace"], dataset_rows),
        "",
        "## A best path",
        "",
        f"The strongest element of `lstm.weight_hh_l0` on the probe batch, {results['best_path']['index']}, "
        f"reaches the loss over {len(best.weights)} edges with product {best.value:.4g}; its edges per component: "
        + ", ".join(f"`{k}` {v}" for k, v in results["best_path"]["components"].items())
        + ".",
        "",
        "```",
        _abbreviate(str(best)),
        "```",
        "",
        "The recorded graph of one short string, components as clusters, the best path from the strongest "
        "recurrent weight in red: "
        + (
            f"![graph]({graph_img})"
            if graph_img
            else "[`graph.dot`](graph.dot) (install Graphviz to render it: `dot -Tsvg graph.dot -o graph.svg`)"
        ),
        "",
        "## Checks",
        "",
        f"* shares sum to {check['shares_sum']:.12f}",
        f"* edges counted in one pass (all {check['paths']} paths): {check['edges_counted']:.0f}"
        + (
            f"; walking every path one by one: {check['edges_walked']:.0f} edges over {check['paths_walked']} paths, "
            f"per component equal: {check['per_component_equal']}"
            if "edges_walked" in check
            else ""
        ),
        f"* the final trace took {s['final_trace']:.3f} s, the one-pass importance {s['final_importance']:.3f} s",
        f"* total run time {s['total']:.1f} s",
        "",
        "Numbers: `results.json`. Made by `semirad demo` (`python -m semirad demo --help`).",
        "",
    ]
    return "\n".join(parts)


def _md_table(header: list, rows: list) -> str:
    """A Markdown table (``|`` in cells escaped).

    >>> print(_md_table(["a", "b|c"], [[1, 2]]))
    | a | b\\|c |
    | --- | --- |
    | 1 | 2 |
    """
    lines = [
        "| " + " | ".join(h.replace("|", "\\|") for h in header) + " |",
        "|" + "|".join(" --- " for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _share(importance: dict, component: str) -> float:
    """The share of ``component`` in an importance dict (``to_dict()``), 0 for an empty one.

    >>> _share({"counts": {"a": 3.0, "b": 1.0}}, "a"), _share({"counts": {}}, "a")
    (0.75, 0.0)
    """
    total = sum(importance["counts"].values())
    return importance["counts"].get(component, 0.0) / total if total else 0.0


def _abbreviate(text: str, keep: int = 14) -> str:
    """``text`` with the lines between its first ``keep + 1`` and last ``keep`` replaced by a count.

    >>> print(_abbreviate("\\n".join("abcdefg"), keep=2))
    a
    b
    c
      ... 2 more steps ...
    f
    g
    """
    lines = text.splitlines()
    if len(lines) <= 2 * keep + 1:
        return text
    return "\n".join(lines[: keep + 1] + [f"  ... {len(lines) - 2 * keep - 1} more steps ..."] + lines[-keep:])


def _jsonable(value):
    """``value`` with tuples as lists, numpy scalars as Python numbers and NaN or inf as ``None``.

    >>> _jsonable({"a": (np.float64(1.5), float("nan")), "b": np.int64(2)})
    {'a': [1.5, None], 'b': 2}
    """
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.floating, np.integer)):
        return _jsonable(value.item())
    return value
