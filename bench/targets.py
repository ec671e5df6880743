"""``python -m bench.targets [--quick] [--out DIR] [--allocator keep|system]``: every target of issue 20.

Each row's ratio is measured side by side in this one process, in steady state: the runners of a
row take turns in blocks (:func:`bench.harness.in_blocks`: each runner alone for ``SETTLE_S``, untimed,
then ``CALLS`` timed calls; medians), so that no call runs in the wake of another library's spinning
worker threads. The dense rows are also timed call by call (:func:`bench.harness.interleaved`), as
every row was before, and give those ratios in their details: alternating numpy's BLAS and PyTorch
call by call doubled PyTorch's time (docs/design.md, "Interleaved and steady timings"). At the
default threads of numba, BLAS and PyTorch
(nothing is pinned; the counts are recorded), with semirad's kernels compiled or loaded from cache
before anything is timed. Writes ``targets.json`` and ``targets.md`` (a table: case, measured,
target, pass) to ``bench/results`` (``--out`` to change). ``--quick``: fewer repeats, LSTM lengths
up to 200 only, three cold-start subprocesses (under about 3 minutes on 2 cores).

What is timed (all "backprop" columns are one forward recorded anew, then ``loss.backward()`` into
``.grad`` after ``zero_grad()``, for semirad and PyTorch alike; "trace" is the same forward, then
``sr.trace(loss, params)``); every loss is ``mean(y * y)`` of the model's output. The trace rows
also time ``sr.grad(loss, params)`` beside them and give trace / ``sr.grad`` in their details:
``Tensor.backward`` copies every gradient into ``.grad``, which ``sr.grad`` does not.

* ``tiny``: 101 layers ``Linear + Tanh`` (10 -> 20 -> ... -> 20 -> 10), batch 1, semirad.nn
  against torch.nn with the same weights;
* ``dense``: input 512, 4 layers ``Linear(512, 512) + Tanh``, batch 128;
* ``cnn``: input (64, 1, 28, 28), ``Conv2d(1, 8, 3), ReLU, MaxPool2d(2), Conv2d(8, 16, 3), ReLU,
  MaxPool2d(2), Flatten, Linear(400, 10)``, float64;
* ``matvec``: ``(W @ x).sum()``, W of 2000 x 2000, W and x leaves, float64;
* ``lstm``: ``LSTM(32, 64)`` over input (L, 16, 32), loss on the whole output sequence, float64;
* memory: tracemalloc peak from before the forward to the end of the sweep (graph, working
  memory and result or ``.grad``), :func:`bench.harness.peak_memory`;
* cold start: fresh ``python`` processes (bench/coldstart.py's ``_run`` where it is there):
  ``import semirad`` (numpy imported before it, not counted), then the first forward + ``sr.trace``
  of a small MLP (20-50-10, batch 8), after one unmeasured process that fills numba's cache.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

import numpy as np

from . import harness

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

#: (repeats, min_seconds per interleaved point, LSTM lengths of the growth fit, cold-start subprocesses)
SETTINGS = {
    "full": {"repeats": 11, "min_seconds": 2.0, "lengths": (25, 50, 100, 200, 400), "cold_runs": 5},
    "quick": {"repeats": 5, "min_seconds": 0.5, "lengths": (25, 50, 100, 200), "cold_runs": 3},
}

#: each runner of a row runs alone this long before its timed calls (numpy's OpenBLAS workers spin
#: about 0.1 s after a call: docs/design.md, "Interleaved and steady timings")
SETTLE_S = 0.25
#: timed calls per runner and block
CALLS = 3

#: the targets of issue 20 (every one an upper bound)
TARGETS = {
    "tiny_bp_torch": 1.0,
    "dense_bp_torch": 1.2,
    "dense_trace_bp": 3.0,
    "cnn_trace_bp": 3.0,
    "matvec_trace_bp": 1.5,
    "lstm_trace_bp": 3.0,
    "lstm_growth": 1.1,
    "lstm_bp_torch": 2.0,
    "memory_trace_bp": 2.0,
    "import_s": 0.3,
    "first_trace_s": 0.3,
}


def log(msg: str) -> None:
    print(msg, flush=True)


def have_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def load_kernels() -> None:
    """Compile (or load from cache) semirad's kernels, so no timing includes compilation."""
    import semirad.kernels as K

    if hasattr(K, "load"):
        K.load()


# -- the models, in semirad and in PyTorch with the same weights --------------------------------
def _np_dtype(dtype) -> np.dtype:
    return np.dtype(dtype)


def _torch_dtype(dtype):
    import torch

    return {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[_np_dtype(dtype)]


def mlp(layers: int, widths, dtype=np.float64, seed: int = 0):
    """semirad ``Sequential`` of ``layers`` x (Linear + Tanh) through ``widths`` (``layers + 1`` sizes)."""
    import semirad as sr

    sr.manual_seed(seed)
    mods = []
    for i in range(layers):
        mods += [sr.nn.Linear(widths[i], widths[i + 1], dtype=dtype), sr.nn.Tanh()]
    return sr.nn.Sequential(*mods)


def tiny_net(dtype=np.float64, layers: int = 101, seed: int = 0):
    """101 tiny tanh layers: 10 -> 20 -> ... -> 20 -> 10 (input 10, batch 1)."""
    model = mlp(layers, [10] + [20] * (layers - 1) + [10], dtype, seed)
    return model, _input((1, 10), dtype, seed)


def dense_net(dtype=np.float64, layers: int = 4, width: int = 512, batch: int = 128, seed: int = 0):
    """``layers`` x (Linear(width, width) + Tanh), input ``width``, batch ``batch``."""
    model = mlp(layers, [width] * (layers + 1), dtype, seed)
    return model, _input((batch, width), dtype, seed)


def cnn(dtype=np.float64, batch: int = 64, size: int = 28, seed: int = 0):
    """2 conv + pool: Conv2d(1, 8, 3), ReLU, MaxPool2d(2), Conv2d(8, 16, 3), ReLU, MaxPool2d(2), Flatten, Linear."""
    import semirad as sr

    sr.manual_seed(seed)
    side = ((size - 2) // 2 - 2) // 2
    nn = sr.nn
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, dtype=dtype), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, dtype=dtype), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * side * side, 10, dtype=dtype),
    )  # fmt: skip
    return model, _input((batch, 1, size, size), dtype, seed)


def lstm(length: int, batch: int = 16, hidden: int = 64, inputs: int = 32, dtype=np.float64, seed: int = 0):
    """semirad ``LSTM(inputs, hidden)`` and an input of shape (length, batch, inputs)."""
    import semirad as sr

    sr.manual_seed(seed)
    return sr.nn.LSTM(inputs, hidden, dtype=dtype), _input((length, batch, inputs), dtype, seed)


def _input(shape, dtype, seed):
    return np.random.default_rng(seed + 1).standard_normal(shape).astype(dtype)


def torch_copy(model):
    """The torch.nn twin of a semirad model built above (Sequential of Linear/Tanh/ReLU/Conv2d/
    MaxPool2d/Flatten, or LSTM), with the same parameters, copied by name."""
    import torch

    import semirad as sr

    def twin(m):
        if isinstance(m, sr.nn.Sequential):
            return torch.nn.Sequential(*[twin(c) for c in m])
        if isinstance(m, sr.nn.Linear):
            return torch.nn.Linear(m.in_features, m.out_features, bias=m.bias is not None)
        if isinstance(m, sr.nn.Conv2d):
            return torch.nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation,
                                   m.groups, bias=m.bias is not None)  # fmt: skip
        if isinstance(m, sr.nn.MaxPool2d):
            return torch.nn.MaxPool2d(m.kernel_size, m.stride, m.padding, m.dilation)
        if isinstance(m, sr.nn.LSTM):
            return torch.nn.LSTM(m.input_size, m.hidden_size, m.num_layers, m.bias, m.batch_first,
                                 m.dropout, m.bidirectional)  # fmt: skip
        for name in ("Tanh", "ReLU", "Flatten"):
            if isinstance(m, getattr(sr.nn, name)):
                return getattr(torch.nn, name)()
        raise TypeError(f"no torch twin for {type(m).__name__}")

    tm = twin(model)
    ours = dict(model.named_parameters())
    dtype = _torch_dtype(next(iter(ours.values())).dtype)
    tm = tm.to(dtype)
    with torch.no_grad():
        theirs = dict(tm.named_parameters())
        assert set(theirs) == set(ours), (sorted(theirs), sorted(ours))
        for name, p in theirs.items():
            p.copy_(torch.from_numpy(np.array(ours[name].data)))
    return tm


def _output(y):
    return y[0] if isinstance(y, tuple) else y  # an LSTM returns (output, (h_n, c_n))


def loss_of(model, x):
    """``mean(y * y)`` of the model's output (semirad or torch alike)."""
    y = _output(model(x))
    return (y * y).mean()


# -- runners --------------------------------------------------------------------------------------
def semirad_backprop(model, x):
    """forward + ``loss.backward()`` into ``.grad`` (``zero_grad`` first); ``.build``/``.sweep`` for memory."""
    import semirad as sr

    x = sr.tensor(x)

    def sweep(loss):
        model.zero_grad()
        loss.backward()

    def run():
        sweep(loss_of(model, x))

    run.build, run.sweep = (lambda: loss_of(model, x)), sweep
    return run


def semirad_grad(model, x):
    """forward + ``sr.grad(loss, params)``: backprop without ``.grad`` accumulation (for comparison:
    ``Tensor.backward`` copies each gradient into ``.grad``)."""
    import semirad as sr

    x = sr.tensor(x)
    params = list(model.parameters())

    def run():
        return sr.grad(loss_of(model, x), params)

    return run


def semirad_trace(model, x):
    """forward + ``sr.trace(loss, params)``; ``.build``/``.sweep`` for memory."""
    import semirad as sr

    x = sr.tensor(x)
    params = list(model.parameters())

    def sweep(loss):
        return sr.trace(loss, params)

    def run():
        return sweep(loss_of(model, x))

    run.build, run.sweep = (lambda: loss_of(model, x)), sweep
    return run


def torch_backprop(tmodel, x):
    """PyTorch eager: forward + ``loss.backward()`` (``zero_grad(set_to_none=True)`` first)."""
    import torch

    x = torch.from_numpy(np.array(x))

    def run():
        tmodel.zero_grad(set_to_none=True)
        loss_of(tmodel, x).backward()

    return run


def matvec_runners(n: int = 2000, seed: int = 0) -> dict:
    """``(W @ x).sum()`` with W (n, n) and x (n,) leaves: backprop (``.backward()``) and trace."""
    import semirad as sr

    from . import models

    W0, x0 = models.matvec_arrays(n, seed)
    W = sr.tensor(W0, requires_grad=True)
    x = sr.tensor(x0, requires_grad=True)

    def build():
        return (W @ x).sum()

    def backprop_sweep(loss):
        W.grad = x.grad = None
        loss.backward()

    def trace_sweep(loss):
        return sr.trace(loss, [W, x])

    def backprop():
        backprop_sweep(build())

    def grad():
        return sr.grad(build(), [W, x])

    def trace():
        return trace_sweep(build())

    backprop.build, backprop.sweep = build, backprop_sweep
    trace.build, trace.sweep = build, trace_sweep
    return {"backprop": backprop, "trace": trace, "sr.grad": grad}


def compare_with_torch(model, x) -> dict:
    """Loss and gradients of the semirad model and its torch twin: the largest absolute
    differences, and the largest gradient magnitude (to judge them by)."""
    import torch

    import semirad as sr

    tm = torch_copy(model)
    model.zero_grad()
    loss = loss_of(model, sr.tensor(x))
    loss.backward()
    tm.zero_grad(set_to_none=True)
    tloss = loss_of(tm, torch.from_numpy(np.array(x)))
    tloss.backward()
    theirs = dict(tm.named_parameters())
    grad_diff, grad_max = 0.0, 0.0
    for name, p in model.named_parameters():
        g, tg = np.asarray(p.grad), theirs[name].grad.numpy()
        grad_diff = max(grad_diff, float(np.max(np.abs(g - tg))))
        grad_max = max(grad_max, float(np.max(np.abs(tg))))
    return {"loss": loss.item(), "loss_diff": abs(loss.item() - tloss.item()), "grad_diff": grad_diff,
            "grad_max": grad_max}  # fmt: skip


# -- the rows -------------------------------------------------------------------------------------
def _time(runners: dict, repeats: int, min_seconds: float) -> dict:
    """Median seconds of each runner in steady state (``repeats`` rounds of blocks; ``min_seconds`` is
    :func:`_time_interleaved`'s, here unused: the settling already runs each runner for a while)."""
    out = harness.in_blocks(runners, rounds=repeats, calls=CALLS, settle_s=SETTLE_S)
    return {name: r["median_s"] for name, r in out.items()}


def _time_interleaved(runners: dict, repeats: int, min_seconds: float) -> dict:
    """Median seconds of each runner, the runners alternating call by call."""
    out = harness.interleaved(runners, repeats=repeats, min_seconds=min_seconds)
    for name, r in out.items():
        if "error" in r:
            raise RuntimeError(f"{name}: {r['error']}")
    return {name: r["median_s"] for name, r in out.items()}


def _ratio(times: dict, num: str, den: str) -> float:
    return times[num] / times[den]


def time_model(model, x, repeats: int = 5, min_seconds: float = 0.0, trace: bool = True, torch: bool = True,
               grad: bool = False, timer=_time) -> dict:  # fmt: skip
    """Median seconds of semirad backprop, semirad trace, PyTorch backprop (and with ``grad``,
    ``sr.grad``) of one model, in steady state (``timer=_time_interleaved``: call by call)."""
    runners = {"backprop": semirad_backprop(model, x)}
    if trace:
        runners["trace"] = semirad_trace(model, x)
    if grad:
        runners["sr.grad"] = semirad_grad(model, x)
    if torch:
        runners["torch"] = torch_backprop(torch_copy(model), x)
    return timer(runners, repeats, min_seconds)


def row_tiny(dtype=np.float64, layers: int = 101, repeats: int = 5, min_seconds: float = 0.0) -> dict:
    """backprop / PyTorch eager on 101 tiny tanh layers, batch 1."""
    t = time_model(*tiny_net(dtype, layers), repeats, min_seconds, trace=False)
    return {"times_s": t, "bp_torch": _ratio(t, "backprop", "torch")}


def row_dense(dtype=np.float64, layers: int = 4, width: int = 512, batch: int = 128, repeats: int = 5,
              min_seconds: float = 0.0, torch: bool = True) -> dict:  # fmt: skip
    """backprop / PyTorch and trace / backprop on the dense net, in steady state; the same ratios with the
    runners alternating call by call under ``"interleaved"``."""
    model, x = dense_net(dtype, layers, width, batch)
    t = time_model(model, x, repeats, min_seconds, torch=torch, grad=True)
    out = {"times_s": t, "trace_bp": _ratio(t, "trace", "backprop"), "trace_grad": _ratio(t, "trace", "sr.grad")}
    ti = time_model(model, x, repeats, min_seconds, torch=torch, grad=True, timer=_time_interleaved)
    out["interleaved"] = {"times_s": ti, "trace_bp": _ratio(ti, "trace", "backprop")}
    if torch:
        out["bp_torch"] = _ratio(t, "backprop", "torch")
        out["interleaved"]["bp_torch"] = _ratio(ti, "backprop", "torch")
    return out


def row_cnn(dtype=np.float64, batch: int = 64, size: int = 28, repeats: int = 5, min_seconds: float = 0.0,
            torch: bool = True) -> dict:  # fmt: skip
    """trace / backprop on the CNN (PyTorch's time recorded beside them)."""
    t = time_model(*cnn(dtype, batch, size), repeats, min_seconds, torch=torch, grad=True)
    out = {"times_s": t, "trace_bp": _ratio(t, "trace", "backprop"), "trace_grad": _ratio(t, "trace", "sr.grad")}
    if torch:
        out["bp_torch"] = _ratio(t, "backprop", "torch")
    return out


def row_matvec(n: int = 2000, repeats: int = 5, min_seconds: float = 0.0) -> dict:
    """trace / backprop on ``(W @ x).sum()``."""
    t = _time(matvec_runners(n), repeats, min_seconds)
    return {"times_s": t, "trace_bp": _ratio(t, "trace", "backprop"), "trace_grad": _ratio(t, "trace", "sr.grad")}


def row_lstm(length: int = 200, batch: int = 16, hidden: int = 64, inputs: int = 32, repeats: int = 5,
             min_seconds: float = 0.0, torch: bool = True, check: bool = True) -> dict:  # fmt: skip
    """trace / backprop and backprop / PyTorch ``nn.LSTM`` at one length (float64); with ``check``,
    the gradients of both are compared once first."""
    model, x = lstm(length, batch, hidden, inputs)
    out = {}
    if torch and check:
        out["check"] = compare_with_torch(model, x)
    t = time_model(model, x, repeats, min_seconds, torch=torch, grad=True)
    out.update({"times_s": t, "trace_bp": _ratio(t, "trace", "backprop"), "trace_grad": _ratio(t, "trace", "sr.grad")})
    if torch:
        out["bp_torch"] = _ratio(t, "backprop", "torch")
    return out


def fit_exponent(xs, ys) -> float:
    """Slope of log y against log x (least squares)."""
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def row_lstm_growth(lengths=(25, 50, 100, 200, 400), batch: int = 16, hidden: int = 64, inputs: int = 32,
                    repeats: int = 5, min_seconds: float = 0.0, torch: bool = True) -> dict:  # fmt: skip
    """LSTM backprop time at each length (semirad and PyTorch interleaved per length) and the
    growth exponents: slopes of log time against log length."""
    times = {}
    for L in lengths:
        log(f"  lstm growth: L = {L}")
        times[L] = time_model(*lstm(L, batch, hidden, inputs), repeats, min_seconds, trace=False, torch=torch)
    out = {"lengths": list(lengths), "times_s": {str(L): t for L, t in times.items()},
           "exponent": fit_exponent(lengths, [times[L]["backprop"] for L in lengths])}  # fmt: skip
    if torch:
        out["torch_exponent"] = fit_exponent(lengths, [times[L]["torch"] for L in lengths])
    return out


def row_memory(model, x) -> dict:
    """tracemalloc peaks of trace and backprop (forward included), and their ratios."""
    bp = harness.peak_memory(*_build_sweep(semirad_backprop(model, x)))
    tr = harness.peak_memory(*_build_sweep(semirad_trace(model, x)))
    return {"backprop": bp, "trace": tr, "total_ratio": tr["total_bytes"] / max(1, bp["total_bytes"]),
            "sweep_ratio": tr["sweep_bytes"] / max(1, bp["sweep_bytes"])}  # fmt: skip


def _build_sweep(run):
    return run.build, run.sweep


#: fallback child where bench/coldstart.py is absent: the same measurements as its ``_run``
_CHILD = r"""
import json, time
import numpy as np
t1 = time.perf_counter()
import semirad as sr
t2 = time.perf_counter()
layers = []
for a, b in zip([20, 50], [50, 10]):
    layers += [sr.nn.Linear(a, b), sr.nn.Tanh()]
model = sr.nn.Sequential(*layers[:-1])
params = list(model.parameters())
x = sr.tensor(np.random.default_rng(0).standard_normal((8, 20)))
t4 = time.perf_counter()
sr.trace((model(x) ** 2).mean(), params)
t5 = time.perf_counter()
print(json.dumps({"import": t2 - t1, "first": t5 - t4}))
"""

#: the first trace's net: bench/coldstart.py's small MLP (widths, batch), float64
COLD_NET = ([20, 50, 10], 8)


def _coldstart_once() -> dict:
    """One fresh process: ``import semirad`` (numpy imported before, not counted) and the first
    forward + ``sr.trace`` of the small MLP; bench/coldstart.py's measurement where it is there."""
    try:
        from .coldstart import _run
    except ImportError:
        _run = None
    if _run is not None:
        got = _run("trace", *COLD_NET)
    else:
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        res = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, cwd=ROOT, env=env,
                             check=False)  # fmt: skip
        if res.returncode != 0:
            raise RuntimeError(f"cold-start subprocess failed: {res.stderr[-2000:]}")
        got = json.loads(res.stdout.strip().splitlines()[-1])
    return {"import_s": got["import"], "first_trace_s": got["first"], "via": "bench.coldstart" if _run else "targets"}


def row_coldstart(runs: int = 5) -> dict:
    """Medians over ``runs`` fresh processes of ``import semirad`` (numpy's import excluded, as in
    bench/coldstart.py) and of the first forward + trace of a small MLP (20-50-10, batch 8), after
    one unmeasured process that fills numba's cache."""
    _coldstart_once()
    samples = [_coldstart_once() for _ in range(runs)]
    out = {key: statistics.median(s[key] for s in samples) for key in ("import_s", "first_trace_s")}
    out["via"], out["samples"] = samples[0]["via"], samples
    return out


# -- the whole run --------------------------------------------------------------------------------
def threads_info() -> dict:
    info = harness.set_threads(None)  # None: only reads the defaults
    import semirad.kernels as K

    if hasattr(K, "get_num_threads"):  # semirad's own cap on its parallel kernels (fewer under load)
        info["semirad"] = K.get_num_threads()
    try:
        import numba

        try:
            info["numba_threading_layer"] = numba.threading_layer()
        except ValueError:  # no parallel kernel has run yet
            info["numba_threading_layer"] = None
    except ImportError:
        pass
    return info


def _row(key: str, case: str, measured, detail: str = "") -> dict:
    target = TARGETS[key]
    ok = None if measured is None or not math.isfinite(measured) else bool(measured <= target)
    return {"key": key, "case": case, "measured": measured, "target": target, "pass": ok, "detail": detail}


def _ms(t: dict) -> str:
    return ", ".join(f"{k} {v * 1e3:.3g} ms" for k, v in t.items())


def _grad_note(r: dict) -> str:
    return f"{_ms(r['times_s'])}; trace / sr.grad {r['trace_grad']:.3g}"


def run_all(mode: str = "full", allocator: str = "keep") -> dict:
    s = SETTINGS[mode]
    reps, mins = s["repeats"], s["min_seconds"]
    alloc = harness.set_allocator(allocator)
    started = time.perf_counter()
    import semirad
    import semirad.kernels as K

    load_kernels()
    torch = have_torch()
    rows, raw = [], {}
    skip = "torch not installed"

    for dtype in (np.float64, np.float32):
        name = np.dtype(dtype).name
        if torch:
            log(f"tiny {name}")
            r = raw[f"tiny_{name}"] = row_tiny(dtype, repeats=reps, min_seconds=mins)
            rows.append(_row("tiny_bp_torch", f"backprop / PyTorch, 101 tiny tanh layers, batch 1, {name}",
                             r["bp_torch"], _ms(r["times_s"])))  # fmt: skip
        else:
            rows.append(_row("tiny_bp_torch", f"backprop / PyTorch, 101 tiny tanh layers, {name}", None, skip))
    for dtype in (np.float32, np.float64):
        name = np.dtype(dtype).name
        log(f"dense {name}")
        r = raw[f"dense_{name}"] = row_dense(dtype, repeats=reps, min_seconds=mins, torch=torch)
        label = f"dense 4 x 512 (input 512), batch 128, {name}"
        inter = r["interleaved"]
        rows.append(_row("dense_bp_torch", f"backprop / PyTorch, {label}", r.get("bp_torch"),
                         f"{_ms(r['times_s'])}; interleaved call by call {inter['bp_torch']:.3g} "
                         f"({_ms(inter['times_s'])})" if torch else skip))  # fmt: skip
        rows.append(_row("dense_trace_bp", f"trace / backprop, {label}", r["trace_bp"],
                         f"{_grad_note(r)}; interleaved call by call {inter['trace_bp']:.3g}"))  # fmt: skip
    log("cnn")
    r = raw["cnn"] = row_cnn(repeats=reps, min_seconds=mins, torch=torch)
    rows.append(_row("cnn_trace_bp", "trace / backprop, CNN (2 conv + pool), batch 64, 1x28x28, float64",
                     r["trace_bp"], _grad_note(r)))  # fmt: skip
    log("matvec")
    r = raw["matvec"] = row_matvec(2000, repeats=reps, min_seconds=mins)
    rows.append(_row("matvec_trace_bp", "trace / backprop, matrix-vector W @ x, N = 2000, float64", r["trace_bp"],
                     _grad_note(r)))  # fmt: skip
    log("lstm L = 200")
    r = raw["lstm"] = row_lstm(200, repeats=reps, min_seconds=mins, torch=torch)
    label = "LSTM (N 16, H 64, input 32), L = 200, float64"
    rows.append(_row("lstm_trace_bp", f"trace / backprop, {label}", r["trace_bp"], _grad_note(r)))
    if torch:
        c = r["check"]
        rows.append(_row("lstm_bp_torch", f"backprop / PyTorch nn.LSTM, {label}", r["bp_torch"],
                         f"{_ms(r['times_s'])}; grads vs torch: max diff {c['grad_diff']:.2g} "
                         f"(max |grad| {c['grad_max']:.2g})"))  # fmt: skip
    else:
        rows.append(_row("lstm_bp_torch", f"backprop / PyTorch nn.LSTM, {label}", None, skip))
    log("lstm growth")
    lengths = s["lengths"]
    r = raw["lstm_growth"] = row_lstm_growth(lengths, repeats=max(3, reps // 2), min_seconds=mins, torch=torch)
    detail = "backprop ms: " + ", ".join(f"{L}: {r['times_s'][str(L)]['backprop'] * 1e3:.3g}" for L in lengths)
    if torch:
        detail += f"; PyTorch exponent {r['torch_exponent']:.2f}"
    rows.append(_row("lstm_growth", f"LSTM backprop growth exponent, L = {lengths[0]} to {lengths[-1]}",
                     r["exponent"], detail))  # fmt: skip
    log("memory")
    for name, (model, x) in (("dense float64", dense_net(np.float64)), ("LSTM L = 200", lstm(200))):
        r = raw[f"memory {name}"] = row_memory(model, x)
        mib = {k: r[k]["total_bytes"] / 2**20 for k in ("trace", "backprop")}
        detail = f"trace {mib['trace']:.3g} MiB, backprop {mib['backprop']:.3g} MiB; sweep only {r['sweep_ratio']:.2f}"
        rows.append(_row("memory_trace_bp", f"peak memory trace / backprop (tracemalloc), {name}", r["total_ratio"],
                         detail))  # fmt: skip
    log("cold start")
    r = raw["coldstart"] = row_coldstart(s["cold_runs"])
    n = s["cold_runs"]
    via = f"measured by {r['via']}"
    rows.append(_row("import_s", f"`import semirad` (numpy imported before) in a fresh process, s (median of {n})",
                     r["import_s"], via))  # fmt: skip
    rows.append(_row("first_trace_s", f"first forward + trace (MLP 20-50-10, batch 8) in a fresh process, s "
                     f"(median of {n})", r["first_trace_s"], via))  # fmt: skip
    return {
        "mode": mode,
        "machine": harness.machine(),
        "threads": threads_info(),
        "allocator": alloc,
        "kernels": {"numba": K.AVAILABLE, "enabled": K.enabled(), "mode": K.mode()},
        "semirad": os.path.dirname(semirad.__file__),
        "elapsed_s": time.perf_counter() - started,
        "rows": rows,
        "raw": raw,
    }


def _fmt(x) -> str:
    return "—" if x is None else f"{x:.3g}"


def markdown(result: dict) -> str:
    m, t = result["machine"], result["threads"]
    passed = sum(r["pass"] is True for r in result["rows"])
    lines = [
        f"# Targets of issue 20 ({result['mode']} run)",
        "",
        f"`python -m bench.targets{' --quick' if result['mode'] == 'quick' else ''}`: ratios of medians, every "
        "row's runners taking turns in blocks in one process (steady state: each alone for "
        f"{SETTLE_S:g} s untimed, then {CALLS} timed calls), default threads, kernels loaded before timing; "
        f"{passed} of {len(result['rows'])} targets met.",
        "",
        "| case | measured | target | pass | details |",
        "|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        ok = {True: "pass", False: "**FAIL**", None: "not run"}[r["pass"]]
        lines.append(f"| {r['case']} | {_fmt(r['measured'])} | ≤ {r['target']:g} | {ok} | {r['detail']} |")
    lines += [
        "",
        f"Machine: {m.get('cpu')}, {m.get('cores')} cores, {m.get('memory_gb')} GB, Python {m.get('python')}, "
        f"numpy {m.get('numpy')}, torch {m.get('torch')}, numba {m.get('numba')}, git {m.get('git')}, "
        f"load average at the end {tuple(round(x, 2) for x in m.get('load_average', ()))}.",
        f"Threads (defaults, not pinned): semirad kernels {t.get('semirad', '(no setting)')}, "
        f"numba {t.get('numba')} ({t.get('numba_threading_layer')} layer), "
        f"BLAS {t.get('blas')}, torch {t.get('torch')}. C allocator: {result['allocator']}. "
        f"Kernels: {result['kernels']}. Run took {result['elapsed_s']:.0f} s.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.targets", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, LSTM lengths up to 200 (< 3 minutes)")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    parser.add_argument("--allocator", choices=["keep", "system"], default="keep",
                        help="as in python -m bench (bench/harness.py set_allocator)")  # fmt: skip
    args = parser.parse_args(argv)
    result = run_all("quick" if args.quick else "full", args.allocator)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "targets.json"), "w") as f:
        json.dump(result, f, indent=1, default=str)
    md = markdown(result)
    with open(os.path.join(args.out, "targets.md"), "w") as f:
        f.write(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
