"""The transformer study's report: ``results.json``, ``report.md``, the figures and the printed summary.

Everything here formats what :func:`~semirad.analysis.demo.transformer_run.train_and_study`
found; nothing is computed again.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path as FilePath
from typing import TYPE_CHECKING, Callable

import numpy as np

from .agreement import LABELS, WORDS
from .config import TransformerConfig
from .report import _abbreviate, _jsonable, _md_table
from .transformer_run import BRANCHES, METHODS, by_layer, out_path, summarize, train_and_study

if TYPE_CHECKING:
    from .transformer_run import TransformerFindings

TITLE = "# semirad demo: which branches do a transformer's best paths take? (subject-verb agreement)"


def method_names(k: int) -> dict:
    """The column titles of the methods.

    >>> method_names(4)
    {'trace': 'trace', 'kbest': 'KBest(4)', 'backprop': 'backprop'}
    """
    return {"trace": "trace", "kbest": f"KBest({k})", "backprop": "backprop"}


def write_transformer_report(findings: TransformerFindings, out_dir, say: Callable = print) -> dict:
    """Write ``results.json``, ``report.md`` and the figures into ``out_dir``, print the summary with
    ``say``; returns the numbers of ``results.json``."""
    out = out_path(out_dir)
    figures = _write_figures(out, findings)
    results = _results(findings, figures)
    results["seconds"]["total"] = time.perf_counter() - findings.started
    (out / "results.json").write_text(json.dumps(_jsonable(results), indent=1))
    (out / "report.md").write_text(_markdown(results, findings, figures))
    for block in _summary(results, findings, out, figures):
        say(block)
    return results


def _results(findings: TransformerFindings, figures: list) -> dict:
    c = findings.config
    overall = summarize(findings.per_sentence)
    subject = summarize(findings.subject)
    layer_sums = [v for row in findings.check["layer_sums"] for key, v in row.items() if key != "method"]
    check = {
        "layer_sums_max_deviation": float(max((abs(v - 1.0) for v in layer_sums), default=0.0)),
        "none_max": float(max(findings.check["none"], default=0.0)),
        "walked": findings.check["walked"],
        "walked_equal": all(w["equal"] for w in findings.check["walked"]) if findings.check["walked"] else None,
    }
    best = next(iter(findings.paths.values()), None)
    return {
        "config": asdict(c),
        "parameters": findings.parameters,
        "accuracy": findings.accuracy,
        "accuracy_by_attractors": {str(k): v for k, v in findings.accuracy_by_attractors.items()},
        "shortcuts": findings.shortcuts,
        "final_loss": float(np.mean(findings.losses[-20:])) if findings.losses else None,
        "history": findings.history,
        "seconds": {"total": None, **findings.seconds},
        "shares": overall,
        "shares_by_layer": _layered(overall, c.layers),
        "subject_shares": subject,
        "subject_shares_by_layer": _layered(subject, c.layers),
        "check": check,
        "path": {
            "sentence": findings.path_sentence,
            "titles": list(findings.paths),
            "value": None if best is None else best.value,
            "edges": None if best is None else len(best.weights),
        },
        "files": {"figures": [f.name for f in figures]},
    }


def _layered(summary: dict, layers: int) -> dict:
    """``{method: {"layer l": {branch: {"mean": m, "std": s}}}}``."""
    out = {}
    for method, s in summary.items():
        means, stds = by_layer(s["mean"], layers), by_layer(s["std"], layers)
        out[method] = {
            layer: {b: {"mean": means[layer][b], "std": stds[layer][b]} for b in BRANCHES} for layer in means
        }
    return out


def _write_figures(out: FilePath, findings: TransformerFindings) -> list:
    """``shares.png`` (bars per layer and method), ``subject_shares.png`` and ``path.png`` (the path
    picture), with matplotlib (none without it)."""
    from ..plots import have_matplotlib, path_figure, shares_figure

    if not have_matplotlib():
        return []
    c = findings.config
    names = method_names(c.k)
    files = []
    pictures = (
        ("shares.png", findings.per_sentence, "from all embedding elements"),
        ("subject_shares.png", findings.subject, "from the subject's embedding"),
    )
    for filename, per_sentence, what in pictures:
        summary = summarize(per_sentence)
        columns = {names[m]: by_layer(summary[m]["mean"], c.layers) for m in METHODS}
        errors = {names[m]: by_layer(summary[m]["std"], c.layers) for m in METHODS}
        shares_figure(columns, out / filename, errors=errors,
                      title=f"share of paths {what} through each branch (mean ± std over "
                            f"{summary['trace']['samples']} sentences)")  # fmt: skip
        files.append(out / filename)
    if findings.paths:
        path_figure(findings.paths, out / "path.png", title=f"best paths in: {findings.path_sentence}")
        files.append(out / "path.png")
    return files


def _cell(summary: dict, method: str, key: str) -> str:
    mean, std = summary[method]["mean"].get(key, 0.0), summary[method]["std"].get(key, 0.0)
    return f"{100 * mean:.1f} ± {100 * std:.1f} %"


def share_rows(summary: dict, layers: int) -> list:
    """Rows ``[layer, branch, trace, KBest, backprop]`` (``mean ± std %``)."""
    rows = []
    for layer in range(layers):
        for b in BRANCHES:
            rows.append([str(layer), b] + [_cell(summary, m, f"{layer}/{b}") for m in METHODS])
    return rows


def share_table(summary: dict, layers: int, k: int) -> str:
    """The Markdown table of :func:`share_rows`."""
    names = method_names(k)
    return _md_table(["layer", "branch"] + [names[m] for m in METHODS], share_rows(summary, layers))


def _text_table(summary: dict, layers: int, k: int) -> str:
    names = method_names(k)
    header = ["layer", "branch"] + [names[m] for m in METHODS]
    rows = [header] + share_rows(summary, layers)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)


def _summary(results: dict, findings: TransformerFindings, out: FilePath, figures: list) -> list:
    c = findings.config
    s = results["seconds"]
    by_n = ", ".join(
        f"{n} attractor{'s' if n != '1' else ''} {v:.1%}" for n, v in results["accuracy_by_attractors"].items()
    )
    return [
        "",
        f"trained {c.steps} steps in {s['train']:.1f} s; held-out accuracy {results['accuracy']:.1%} on {c.test} "
        f"fresh sentences ({by_n})",
        "",
        f"share of paths from the embeddings through each branch, per layer (mean ± std over {c.eval} held-out "
        "sentences):",
        _text_table(results["shares"], c.layers, c.k),
        "",
        f"the study took {s['study_trace'] + s['study_kbest'] + s['study_backprop'] + s['study_forward']:.1f} s "
        f"(trace {s['study_trace']:.1f} s, KBest({c.k}) {s['study_kbest']:.1f} s, backprop {s['study_backprop']:.1f} s)"
        f"; total {s['total']:.1f} s",
        f"report: {out / 'report.md'} ({len(figures)} figures)",
    ]


def _markdown(results: dict, findings: TransformerFindings, figures: list) -> str:
    c = findings.config
    s = results["seconds"]
    names = method_names(c.k)
    figs = {f.name for f in figures}
    check = results["check"]
    examples = "\n".join(f"{text}   -> {LABELS[label]} ({n} attractor{'s' if n != 1 else ''})"
                         for text, label, n in findings.examples)  # fmt: skip
    attractor_rows = [[n, f"{100 * v:.1f} %"] for n, v in results["accuracy_by_attractors"].items()]
    shortcut_rows = [[k, f"{100 * v:.1f} %"] for k, v in results["shortcuts"].items()]
    hist = results["history"]
    history_rows = [[step, f"{hist['loss'][i]:.4f}", f"{100 * hist['accuracy'][i]:.1f} %"]
                    for i, step in enumerate(hist["step"])]  # fmt: skip
    parts = [
        TITLE,
        "",
        "**Task.** Subject-verb agreement, generated (nothing is downloaded): "
        "`[opener ,] the [adj] SUBJECT (prep the [adj] NOUN){1..3} [VERB] [the [adj] NOUN] .`, "
        f"{c.max_length} tokens at most, a vocabulary of {len(WORDS)} words. The verb is masked; its number is the "
        "subject's (the first noun). At least one noun between the subject and the verb has the other number "
        "(an *attractor*); the other nouns, and the object after the verb, are singular or plural by a coin flip. "
        "The model classifies the number from its representation at the `[VERB]` position.",
        "",
        "```",
        examples,
        "```",
        "",
        f"**Model.** Token + position embeddings -> `nn.TransformerEncoder` of {c.layers} "
        f"`nn.TransformerEncoderLayer(d_model={c.d_model}, nhead={c.heads}, dim_feedforward={c.dim_feedforward}, "
        f"dropout=0)` (post-norm, ReLU) -> `Linear({c.d_model}, 2)` at `[VERB]`; {results['parameters']} parameters. "
        f"{c.steps} Adam steps (batch {c.batch}, lr {c.lr}, seed {c.seed}) in {s['train']:.1f} s.",
        "",
        f"**Held-out accuracy: {100 * results['accuracy']:.1f} %** on {c.test} fresh sentences. By the number of "
        "attractors:",
        "",
        _md_table(["attractors", "accuracy"], attractor_rows),
        "",
        "What the shortcuts a model could take would score on the same sentences (the rule is the first noun):",
        "",
        _md_table(["rule", "right"], shortcut_rows),
        "",
        "## Which branch do the paths from the embeddings take?",
        "",
        f"Every one of {c.eval} held-out sentences is traced alone, from its **embeddings** (the encoder's input, "
        "token plus position embedding: an intermediate tensor, `sr.trace(loss, [h])`) to its loss. In each layer a "
        "path either enters the attention through the **query**, the **key** or the **value** projection, or goes "
        "around it on the **residual** stream (input 0 of the layer's `residual_attn` add); the four shares of a "
        "layer sum to 1. The columns:",
        "",
        "* **trace**: the best path (largest `|product of partials|`) of every embedding element; the share of those "
        "paths through each branch (`sr.analysis.path_shares` on `sr.trace`).",
        f"* **{names['kbest']}**: the {c.k} best paths of every element, each counted once "
        f"(`path_shares` on `sr.backward(..., semiring=KBest({c.k}))`).",
        "* **backprop**: *all* paths, each weighted by `|product|` (its part of the gradient before cancellation); "
        "the share of `Σ|product|` through each branch (`sr.analysis.backprop_path_shares`).",
        "",
        "Mean ± std over the sentences (each sentence's share is one sample):",
        "",
        share_table(results["shares"], c.layers, c.k),
        "",
    ]
    if "shares.png" in figs:
        parts += ["![shares per layer and method](shares.png)", ""]
    parts += [
        "### From the subject's embedding only",
        "",
        "The same question for the paths that start at the subject noun (`elements=` the subject's position): the "
        "information the answer needs.",
        "",
        share_table(results["subject_shares"], c.layers, c.k),
        "",
    ]
    if "subject_shares.png" in figs:
        parts += ["![shares from the subject](subject_shares.png)", ""]
    parts += [
        "## A best path",
        "",
        f"In the first held-out sentence, `{findings.path_sentence}`, the best path from the subject's strongest "
        "embedding element"
        + (f", beside the next best ones (`{names['kbest']}`)" if len(findings.paths) > 1 else "")
        + ":",
        "",
    ]
    if "path.png" in figs:
        parts += ["![best paths](path.png)", ""]
    parts += [
        "```",
        _abbreviate(findings.path_text),
        "```",
        "",
        "## Training",
        "",
        _md_table(["step", "loss", "accuracy (200 sentences)"], history_rows),
        "",
        "## Checks",
        "",
        f"* the four branches of every layer sum to 1 in every sentence and method (largest deviation "
        f"{check['layer_sums_max_deviation']:.2e}); paths through no branch at all: {check['none_max']:.2e}",
    ]
    for w in check["walked"]:
        parts.append(
            f"* {names[w['method']]}, sentence {w['sentence']}: walking all {w['paths_walked']} paths one by one gives "
            f"the one-pass counts: {w['equal']}"
        )
    parts += [
        f"* time: training {s['train']:.1f} s; study: forward {s['study_forward']:.1f} s, trace {s['study_trace']:.1f} "
        f"s, {names['kbest']} {s['study_kbest']:.1f} s, backprop {s['study_backprop']:.1f} s; total {s['total']:.1f} s",
        "",
        "Numbers: `results.json`. Made by `semirad demo --model transformer` (`semirad demo --help`).",
        "",
    ]
    return "\n".join(parts)


def run_transformer_demo(config: TransformerConfig, out_dir, say=print) -> dict:
    """Train, study, write the report into ``out_dir``; returns the numbers (also in ``results.json``).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as out:
    ...     results = run_transformer_demo(TransformerConfig.tiny(), out, say=lambda *lines: None)
    ...     written = sorted(p.name for p in FilePath(out).iterdir() if p.suffix in (".md", ".json"))
    >>> written, sorted(results["shares"])
    (['report.md', 'results.json'], ['backprop', 'kbest', 'trace'])
    """
    findings = train_and_study(config, say)
    return write_transformer_report(findings, out_dir, say)
