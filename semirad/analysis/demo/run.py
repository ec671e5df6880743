"""The demo's run: train the model, trace it at checkpoints, and collect what the report shows.

:func:`train_and_trace` does the work and returns :class:`DemoFindings`; :func:`run_demo` adds
the report (:mod:`.report`). Nothing here formats or writes files, except the resumable
``over_dataset.json`` that :func:`~semirad.analysis.over_dataset` keeps.
"""

from __future__ import annotations

import time
from pathlib import Path as FilePath

import numpy as np

from ... import backend
from ...api import trace as _trace
from ...optim import Adam
from ...rng import manual_seed
from ..compare import compare
from ..dataset import DatasetImportance, over_dataset
from ..groups import across_time, by_module
from ..importance import backprop_importance, component_importance
from ..progress import progress_bar
from .checks import count_check
from .config import CHECKPOINT_TEST_STRINGS, COMPARE_TOP, TEST_STRINGS, DemoConfig
from .findings import DemoFindings
from .report import write_report
from .task import TOKENS, BracketLM, closing_accuracy, dyck_batch, lm_loss


def run_demo(config: DemoConfig, out_dir, say=print) -> dict:
    """Train, trace, write the report into ``out_dir``; returns the numbers (also in ``results.json``).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as out:
    ...     results = run_demo(DemoConfig.tiny(), out, say=lambda *lines: None)
    ...     written = sorted(p.name for p in FilePath(out).iterdir() if p.suffix in (".md", ".json"))
    >>> written, results["check"]["per_component_equal"]
    (['over_dataset.json', 'report.md', 'results.json'], True)
    """
    findings = train_and_trace(config, out_dir, say)
    return write_report(findings, out_dir, say)


def train_and_trace(config: DemoConfig, out_dir, say=print) -> DemoFindings:
    """Train the model of ``config``, tracing its probe batch at checkpoints, then analyse it.

    ``out_dir`` receives ``over_dataset.json`` (the held-out importance, resumable); ``say`` gets
    the one-line description of the run.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as out:
    ...     findings = train_and_trace(DemoConfig.tiny(), out, say=lambda *lines: None)
    >>> findings.history["step"], round(sum(findings.trace.shares.values()), 9)
    ([0, 1], 1.0)
    """
    _check_device(config.device)
    out = FilePath(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    manual_seed(config.seed)
    model = BracketLM(config.embed, config.hidden)
    _to_device(model, config.device)
    n_params = sum(p.numel() for p in model.parameters())
    probe = dyck_batch(np.random.default_rng(config.seed + 1), config.probe, config.length)
    test = dyck_batch(np.random.default_rng(config.seed + 2), TEST_STRINGS, config.length)
    say(
        f"semirad demo: Dyck-2 language model, strings of {config.length} brackets; model "
        f"Embedding({len(TOKENS)}, {config.embed}) -> LSTM({config.embed}, {config.hidden}) -> "
        f"Linear({config.hidden}, {len(TOKENS)}), {n_params} parameters"
    )
    losses, history, seconds = _train(config, model, probe, test)

    # the final analysis on the probe batch
    loss = lm_loss(model, probe)
    params = list(model.named_parameters())
    t0 = time.perf_counter()
    tr = _trace(loss, [p for _, p in params])
    seconds["final_trace"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    full = component_importance(tr, model)
    seconds["final_importance"] = time.perf_counter() - t0
    trace_imp = full.group(across_time)
    by_group = component_importance(tr, by_module(model), group=across_time)
    bp = backprop_importance(loss, model, group=across_time)
    comparison = compare(loss, model, top=COMPARE_TOP)
    check = count_check(tr, params, full, config.verify)
    w_hh = model.lstm.weight_hh_l0
    strongest = _strongest(tr, w_hh)
    best = tr.path(w_hh, strongest)
    del tr

    dataset = _held_out(config, model, out)
    graph_output, graph_index, graph_path = _small_graph(config, model, probe[:1], w_hh)
    return DemoFindings(
        config=config,
        started=started,
        parameters=int(n_params),
        losses=losses,
        history=history,
        seconds=seconds,
        probe_loss=float(loss.item()),
        closing_accuracy=closing_accuracy(model, test),
        trace=trace_imp,
        trace_full=full,
        backprop=bp,
        by_group=by_group,
        comparison=comparison,
        check=check,
        best_param=w_hh.name,
        best_index=strongest,
        best_path=best,
        dataset=dataset,
        graph_output=graph_output,
        graph_path=graph_path,
        graph_index=graph_index,
    )


def _train(config: DemoConfig, model: BracketLM, probe: np.ndarray, test: np.ndarray) -> tuple:
    """Adam on fresh batches; at step 0, every ``trace_every`` steps and at the end, both importance
    columns of the probe batch. Returns ``(losses, history, seconds)``."""
    rng = np.random.default_rng(config.seed)
    opt = Adam(model.parameters(), lr=config.lr)
    history: dict = {"step": [], "loss": [], "accuracy": [], "trace": [], "backprop": []}
    checkpoints = sorted({0, config.steps} | set(range(config.trace_every, config.steps, config.trace_every)))
    checkpoint_seconds = 0.0

    def checkpoint(step):
        nonlocal checkpoint_seconds
        t0 = time.perf_counter()
        loss = lm_loss(model, probe)
        tr = _trace(loss, list(model.parameters()))
        imp = component_importance(tr, model, group=across_time)
        del tr
        bp = backprop_importance(loss, model, group=across_time)
        checkpoint_seconds += time.perf_counter() - t0
        history["step"].append(step)
        history["loss"].append(float(loss.item()))
        history["accuracy"].append(closing_accuracy(model, test[:CHECKPOINT_TEST_STRINGS]))
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
    train_seconds = time.perf_counter() - train_start - checkpoint_seconds
    return losses, history, {"train": train_seconds, "checkpoints": checkpoint_seconds}


def _strongest(result, weight) -> tuple:
    """The index of the element of ``weight`` with the largest ``|result[weight]|``."""
    values = np.abs(backend.to_numpy(result[weight]))
    return tuple(int(i) for i in np.unravel_index(int(values.argmax()), weight.shape))


def _held_out(config: DemoConfig, model: BracketLM, out: FilePath) -> DatasetImportance:
    """Importance over held-out batches (``over_dataset``, its file in ``out``, started anew)."""
    eval_rng = np.random.default_rng(config.seed + 3)
    batches = [dyck_batch(eval_rng, config.eval_size, config.length) for _ in range(config.eval_batches)]
    return over_dataset(
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


def _small_graph(config: DemoConfig, model: BracketLM, string: np.ndarray, weight) -> tuple:
    """A graph small enough to draw: the first ``graph_length + 1`` tokens of ``string``, and the best
    path from the strongest element of ``weight``. Returns ``(loss, index, path)``."""
    short = string[:, : config.graph_length + 1]
    loss = lm_loss(model, short)
    tr = _trace(loss, [weight])
    index = _strongest(tr, weight)
    return loss, index, tr.path(weight, index)


def _check_device(device: str) -> None:
    """A clear error for a device that is not there, before anything runs: ``"cpu"``, ``"cuda"`` or
    ``"cuda:N"`` (:class:`semirad.backend.Device`)."""
    dev = backend.Device(device)  # a ValueError for an unknown one
    if dev.type == "cpu":
        return
    if backend.cupy is None:
        raise RuntimeError(
            "--device cuda needs cupy and a CUDA GPU, and cupy is not available here "
            "(pip install semirad[cuda] on a machine with CUDA 12); use --device cpu"
        )
    try:
        count = backend.cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # pragma: no cover - needs a broken CUDA set-up
        raise RuntimeError(f"--device cuda: cupy is installed but no CUDA device is usable ({error})") from None
    if dev.index is not None and dev.index >= count:
        raise RuntimeError(f"--device {device}: cupy sees {count} CUDA device(s)")


def _to_device(model: BracketLM, device: str) -> None:
    """Move the model's parameters and buffers to ``device`` (``Module.to``); data follows them
    (:func:`.task.lm_loss` puts each batch where the model is)."""
    if backend.Device(device).type != "cpu":
        model.to(device)
