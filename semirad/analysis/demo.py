"""``semirad demo``: train a small LSTM language model, trace it as it learns, write a report.

The task is generated here (nothing is downloaded): **Dyck-2 language modelling**. Strings of
balanced brackets of two kinds, ``( )`` and ``[ ]``; the model reads a string and predicts every
next bracket. Whether a bracket opens or closes, and which kind opens, is a coin flip the model can
only learn the odds of; but *which kind closes* is determined by the string so far: the model has
to remember, for the innermost open bracket, its kind. The closing accuracy (chance: 50 %) says
how well it does; the component importance says where its strongest gradient paths run while it
learns (embedding, the LSTM's input projection and gates, the output layer, the loss).

Two columns are compared throughout (``docs/analysis.md`` has the definitions):

* **trace** — :func:`~semirad.analysis.component_importance`: for every parameter element its
  single best path to the loss (``sr.trace``); the share of those paths' edges in each component.
* **backprop** — :func:`~semirad.analysis.backprop_importance`: for every parameter element *all*
  its paths, a path weighted by ``|product of its partials|`` (its part of the gradient before
  cancellation); the expected share of edges in each component. Same units, so the two compare.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path as FilePath

import numpy as np

from .. import backend
from .. import nn as _nn
from ..api import trace as _trace
from ..engine import component
from ..nn import functional as F
from ..optim import Adam
from ..rng import manual_seed
from .compare import compare
from .dataset import over_dataset
from .dot import to_dot, write_graph
from .groups import UNTAGGED, across_time, by_module, label
from .importance import backprop_importance, component_importance, side_by_side
from .progress import progress_bar

TOKENS = "()[]"
_OPEN = {0: 1, 2: 3}  # opener -> its closer


@dataclass
class DemoConfig:
    """Everything the demo does is set here (the command line's flags fill it)."""

    steps: int = 600
    batch: int = 32
    length: int = 24
    embed: int = 8
    hidden: int = 48
    lr: float = 1e-2
    seed: int = 0
    trace_every: int = 50
    probe: int = 16
    eval_batches: int = 8
    eval_size: int = 8
    graph_length: int = 4
    device: str = "cpu"
    verify: bool = True
    progress: bool = True


# -- the task -------------------------------------------------------------------------------------
def dyck_batch(rng, n: int, length: int) -> np.ndarray:
    """``n`` random balanced strings of ``length`` (even) brackets, as token ids ``(n, length)``."""
    if length < 2 or length % 2:
        raise ValueError(f"the string length must be even and at least 2, got {length}")
    out = np.empty((n, length), dtype=np.int64)
    for row in range(n):
        stack: list = []
        for i in range(length):
            remaining = length - i
            must_close = len(stack) >= remaining
            can_open = len(stack) + 1 <= remaining - 1
            if stack and (must_close or not can_open or rng.random() < 0.5):
                out[row, i] = _OPEN[stack.pop()]
            else:
                kind = 0 if rng.random() < 0.5 else 2
                stack.append(kind)
                out[row, i] = kind
    return out


class BracketLM(_nn.Module):
    """``Embedding -> LSTM -> Linear``: next-bracket logits at every position."""

    def __init__(self, embed: int = 8, hidden: int = 48):
        super().__init__()
        self.embed = _nn.Embedding(len(TOKENS), embed)
        self.lstm = _nn.LSTM(embed, hidden, batch_first=True)
        self.head = _nn.Linear(hidden, len(TOKENS))

    def forward(self, tokens):
        out, _ = self.lstm(self.embed(tokens))
        return self.head(out)


def lm_loss(model, seqs):
    """Mean next-token cross-entropy; the loss ops are recorded in the component ``"loss"``."""
    logits = model(seqs[:, :-1])
    with component("loss"):
        return F.cross_entropy(logits.reshape(-1, len(TOKENS)), seqs[:, 1:].reshape(-1))


def closing_accuracy(model, seqs) -> float:
    """Among positions whose next token closes a bracket: how often the right closer beats the wrong one."""
    from .. import no_grad

    with no_grad():
        logits = backend.to_numpy(model(seqs[:, :-1]).data)
    target = seqs[:, 1:]
    closing = (target == 1) | (target == 3)
    right = np.take_along_axis(logits, target[..., None], axis=-1)[..., 0]
    wrong = np.take_along_axis(logits, (target ^ 2)[..., None], axis=-1)[..., 0]
    return float((right > wrong)[closing].mean())


# -- the run -------------------------------------------------------------------------------------
def run_demo(config: DemoConfig, out_dir, say=print) -> dict:
    """Train, trace, write the report into ``out_dir``; returns the numbers (also in ``results.json``)."""
    _check_device(config.device)
    out = FilePath(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = BracketLM(config.embed, config.hidden)
    _to_device(model, config.device)
    n_params = sum(p.size for p in model.parameters())
    opt = Adam(model.parameters(), lr=config.lr)
    probe = dyck_batch(np.random.default_rng(config.seed + 1), config.probe, config.length)
    test = dyck_batch(np.random.default_rng(config.seed + 2), 256, config.length)
    say(
        f"semirad demo: Dyck-2 language model, strings of {config.length} brackets; model "
        f"Embedding({len(TOKENS)}, {config.embed}) -> LSTM({config.embed}, {config.hidden}) -> "
        f"Linear({config.hidden}, {len(TOKENS)}), {n_params} parameters"
    )

    history: dict = {"step": [], "loss": [], "accuracy": [], "trace": [], "backprop": []}
    checkpoints = sorted({0, config.steps} | set(range(config.trace_every, config.steps, config.trace_every)))
    trace_seconds = 0.0

    def checkpoint(step):
        nonlocal trace_seconds
        t0 = time.perf_counter()
        loss = lm_loss(model, probe)
        tr = _trace(loss, list(model.parameters()))
        imp = component_importance(tr, model, group=across_time)
        del tr
        bp = backprop_importance(loss, model, group=across_time)
        trace_seconds += time.perf_counter() - t0
        history["step"].append(step)
        history["loss"].append(float(loss.item()))
        history["accuracy"].append(closing_accuracy(model, test[:64]))
        history["trace"].append(imp.to_dict())
        history["backprop"].append(bp.to_dict())

    losses = []
    train_start = time.perf_counter()
    with progress_bar(config.steps, "training", enable=config.progress) as bar:
        checkpoint(0)
        for step in range(1, config.steps + 1):
            seqs = dyck_batch(rng, config.batch, config.length)
            opt.zero_grad()
            loss = lm_loss(model, seqs)
            loss.backward()
            opt.step()
            losses.append(float(loss.item()))
            if step in checkpoints:
                checkpoint(step)
            bar.update()
            if step % 10 == 0 or step == config.steps or step in checkpoints:
                bar.set_postfix(loss=float(np.mean(losses[-10:])), closing_acc=history["accuracy"][-1])
    train_seconds = time.perf_counter() - train_start - trace_seconds

    # the final analysis on the probe batch
    loss = lm_loss(model, probe)
    params = list(model.named_parameters())
    t0 = time.perf_counter()
    tr = _trace(loss, [p for _, p in params])
    trace_time = time.perf_counter() - t0
    t0 = time.perf_counter()
    full = component_importance(tr, model)
    importance_time = time.perf_counter() - t0
    trace_imp = full.group(across_time)
    by_group = component_importance(tr, by_module(model), group=across_time)
    bp = backprop_importance(loss, model, group=across_time)
    comparison = compare(loss, model, top=5)
    check = _consistency(tr, params, full, config.verify)
    w_hh = model.lstm.weight_hh_l0
    strongest = np.unravel_index(int(np.abs(backend.to_numpy(tr[w_hh])).argmax()), w_hh.shape)
    best = tr.path(w_hh, strongest)
    del tr

    # over held-out batches, resumable
    eval_rng = np.random.default_rng(config.seed + 3)
    batches = [dyck_batch(eval_rng, config.eval_size, config.length) for _ in range(config.eval_batches)]
    dataset = over_dataset(
        lambda b: lm_loss(model, b),
        batches,
        model,
        group=across_time,
        backprop=True,
        path=out / "over_dataset.json",
        resume=False,
        progress=config.progress,
        desc="held-out batches",
    )

    # a small graph to draw: one short string, its best path from the strongest recurrent weight
    short = probe[:1, : config.graph_length + 1]
    small_loss = lm_loss(model, short)
    small_tr = _trace(small_loss, [w_hh])
    idx = tuple(int(i) for i in np.unravel_index(int(np.abs(backend.to_numpy(small_tr[w_hh])).argmax()), w_hh.shape))
    small_path = small_tr.path(w_hh, idx)
    graph_files = write_graph(
        to_dot(
            small_loss,
            small_path,
            title=f"best path from lstm.weight_hh_l0{list(idx)} on one string of {config.graph_length} brackets",
        ),
        out / "graph",
        formats=("svg",),
    )

    figures = _figures(out, trace_imp, bp, comparison, history, w_hh.name or "lstm.weight_hh_l0")
    results = {
        "config": asdict(config),
        "parameters": int(n_params),
        "final_loss": float(np.mean(losses[-20:])) if losses else float(loss.item()),
        "probe_loss": float(loss.item()),
        "closing_accuracy": closing_accuracy(model, test),
        "seconds": {
            "total": None,
            "train": train_seconds,
            "checkpoints": trace_seconds,
            "final_trace": trace_time,
            "final_importance": importance_time,
        },
        "trace": trace_imp.to_dict(),
        "trace_full": full.to_dict(),
        "backprop": bp.to_dict(),
        "by_parameter_group": {g: imp.to_dict() for g, imp in by_group.groups.items()},
        "compare": _jsonable(comparison.records()),
        "dataset": {
            "mean": dataset.mean("trace"),
            "std": dataset.std("trace"),
            "backprop_mean": dataset.mean("backprop"),
            "backprop_std": dataset.std("backprop"),
            "samples": len(dataset),
        },
        "history": history,
        "check": check,
        "best_path": {
            "param": w_hh.name,
            "index": [int(i) for i in strongest],
            "value": best.value,
            "edges": len(best.weights),
            "components": dict(_labels(best.components())),
        },
        "files": {"figures": [f.name for f in figures], "graph": [f.name for f in graph_files]},
    }
    results["seconds"]["total"] = time.perf_counter() - started
    (out / "results.json").write_text(json.dumps(results, indent=1))
    report = _report(results, trace_imp, bp, by_group, comparison, dataset, best, figures, graph_files)
    (out / "report.md").write_text(report)

    say("")
    say(
        f"trained {config.steps} steps in {train_seconds:.1f} s; loss {results['final_loss']:.4f}, "
        f"closing accuracy {results['closing_accuracy']:.1%} (chance 50 %)"
    )
    say("")
    say("component importance on the probe batch (share of path edges; every time step counted in its gate):")
    say(side_by_side({"backprop": bp, "trace": trace_imp}))
    say("")
    say("backprop vs trace per parameter:")
    say(comparison.table())
    say("")
    say(f"importance over {len(dataset)} held-out batches (mean ± std):")
    say(dataset.table())
    say("")
    say(f"the trace took {trace_time:.3f} s, component importance over all {full.paths} paths {importance_time:.3f} s")
    say(f"report: {out / 'report.md'} ({len(figures)} figures, graph: {', '.join(f.name for f in graph_files)})")
    return results


def _check_device(device: str) -> None:
    if device == "cpu":
        return
    if device != "cuda":
        raise ValueError(f"unknown device {device!r} (use 'cpu' or 'cuda')")
    if backend.cupy is None:
        raise RuntimeError(
            "--device cuda needs cupy and a CUDA GPU, and cupy is not available here "
            "(pip install semirad[cuda] on a machine with CUDA 12); use --device cpu"
        )
    try:
        backend.cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # pragma: no cover - needs a broken CUDA set-up
        raise RuntimeError(f"--device cuda: cupy is installed but no CUDA device is usable ({error})") from None


def _to_device(model, device: str) -> None:
    if device != "cuda":
        return
    for p in model.parameters():  # pragma: no cover - needs a GPU
        p._replace(backend.cupy.asarray(p.data))


def _consistency(tr, params, full, verify: bool) -> dict:
    """Shares sum to 1, and (``verify``) the counted edges equal those of every path walked one by one."""
    check = {"shares_sum": float(sum(full.shares.values())), "edges_counted": full.total, "paths": full.paths}
    if verify:
        walked: dict = {}
        n_paths = 0
        for _, p in params:
            node = tr.node_of(p)
            for flat in range(p.size):
                comps = walk_components(tr, node, flat)
                if comps is None:
                    continue
                n_paths += 1
                for c in comps:
                    walked[c] = walked.get(c, 0) + 1
        check.update(
            {
                "edges_walked": float(sum(walked.values())),
                "paths_walked": n_paths,
                "per_component_equal": all(walked.get(c, 0) == v for c, v in full.counts.items())
                and set(walked) == set(full.counts),
            }
        )
    return check


def walk_components(result, node, flat: int, rank: int = 0):
    """The component labels of the edges of one path, by following backpointers one hop at a time
    (no edge weights: cheap). ``None`` when the element has no path."""
    sweep = result.sweep
    labels = []
    while node is not sweep.root:
        target, rank, _ = result._hop(node, flat, rank)
        if target == backend.NO_PATH:
            return None
        node, flat = sweep.locate(target)
        labels.append(label(node.component))
    return labels


def _labels(counter) -> dict:
    return {label(k): v for k, v in counter.items()}


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.floating, np.integer)):
        return _jsonable(value.item())
    return value


def _figures(out, trace_imp, bp, comparison, history, w_name) -> list:
    from .plots import have_matplotlib, heatmaps_figure, history_figure, importance_figure, ratio_figure

    if not have_matplotlib():
        return []
    files = [out / "importance.png", out / "heatmaps_weight_hh.png", out / "ratios.png", out / "history.png"]
    importance_figure(
        {"backprop": bp, "trace": trace_imp},
        files[0],
        title="component importance: share of path edges (all time steps)",
    )
    heatmaps_figure(comparison.grads[w_name], comparison.traces[w_name], files[1], name=w_name)
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


def _share(d: dict, c: str) -> float:
    total = sum(d["counts"].values())
    return d["counts"].get(c, 0.0) / total if total else 0.0


def _md_table(header: list, rows: list) -> str:
    lines = [
        "| " + " | ".join(h.replace("|", "\\|") for h in header) + " |",
        "|" + "|".join(" --- " for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _report(results, trace_imp, bp, by_group, comparison, dataset, best, figures, graph_files) -> str:
    c = results["config"]
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
        f"{results['final_loss']:.4f}; closing accuracy on 256 fresh strings **{results['closing_accuracy']:.1%}** "
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
        "elements; the last column counts the elements the top-5 lists by `|grad|` and by `|trace|` share.",
        "",
        _md_table(
            ["param", "shape", "‖grad‖", "max |trace|", "Spearman", "median |trace|/|grad|", "range", "top-5 shared"],
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


def _abbreviate(text: str, keep: int = 14) -> str:
    lines = text.splitlines()
    if len(lines) <= 2 * keep + 1:
        return text
    return "\n".join(lines[: keep + 1] + [f"  ... {len(lines) - 2 * keep - 1} more steps ..."] + lines[-keep:])


def add_arguments(parser) -> None:
    """The ``semirad demo`` flags."""
    d = DemoConfig()
    parser.add_argument("--out", default="semirad-demo", help="directory for the report (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=d.steps, help="training steps (default: %(default)s)")
    parser.add_argument("--hidden", type=int, default=d.hidden, help="LSTM hidden size (default: %(default)s)")
    parser.add_argument("--embed", type=int, default=d.embed, help="embedding size (default: %(default)s)")
    parser.add_argument("--length", type=int, default=d.length, help="brackets per string, even (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=d.batch, help="strings per training batch (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=d.seed, help="seed of data and init (default: %(default)s)")
    parser.add_argument(
        "--trace-every",
        type=int,
        default=d.trace_every,
        help="trace the probe batch every N steps (default: %(default)s)",
    )
    parser.add_argument("--probe", type=int, default=d.probe, help="strings in the probe batch (default: %(default)s)")
    parser.add_argument(
        "--eval-batches",
        type=int,
        default=d.eval_batches,
        help="held-out batches for over_dataset (default: %(default)s)",
    )
    parser.add_argument(
        "--eval-size", type=int, default=d.eval_size, help="strings per held-out batch (default: %(default)s)"
    )
    parser.add_argument(
        "--device", choices=["cpu", "cuda"], default="cpu", help="cpu (numpy) or cuda (cupy; needs a CUDA GPU)"
    )
    parser.add_argument("--no-verify", action="store_true", help="skip walking every path to check the counts")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def config_from_args(args) -> DemoConfig:
    if args.steps < 0 or args.trace_every < 1 or args.hidden < 1 or args.embed < 1 or args.probe < 1:
        raise ValueError("--steps must be >= 0; --trace-every, --hidden, --embed and --probe >= 1")
    return DemoConfig(
        steps=args.steps,
        batch=args.batch,
        length=args.length,
        embed=args.embed,
        hidden=args.hidden,
        lr=args.lr,
        seed=args.seed,
        trace_every=args.trace_every,
        probe=args.probe,
        eval_batches=args.eval_batches,
        eval_size=args.eval_size,
        device=args.device,
        verify=not args.no_verify,
        progress=not args.no_progress,
    )


__all__ = ["DemoConfig", "run_demo", "dyck_batch", "BracketLM", "lm_loss", "closing_accuracy", "walk_components"]
