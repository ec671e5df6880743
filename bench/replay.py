"""``python -m bench.replay [--quick] [--no-dask]``: the targets of issue 25 (record once, replay many).

One run, the runners of each row interleaved (:func:`bench.harness.interleaved`, medians), semirad's
kernels loaded before anything is timed. Prints a table of ratios (and writes nothing):

* ``tiny``: 101 layers ``Linear + Tanh`` (bench/targets.py ``tiny_net``), loss ``mean(y * y)``:
  the forward alone, and forward + ``sr.grad`` of the parameters, replayed from ``sr.compile`` vs recorded anew (eager)
  vs PyTorch eager (forward + ``torch.autograd.grad``);
* ``tiny trace``: forward + ``sr.trace`` of the parameters, replayed vs eager;
* ``numpy by hand``: the same forward + gradient written out in numpy for this net alone
  (:func:`numpy_by_hand`): the floor under any replay, as a ratio to eager;
* ``over_dataset``: 64 samples of a 2-layer transformer encoder (d_model 32, 4 heads, 8 tokens;
  trace per sample) on 2 worker processes (``ProcessPoolExecutor(2)``, and a Dask ``LocalCluster``
  of 2 single-threaded worker processes when ``distributed`` is installed) vs serial eager; each
  worker compiles the graph once and replays it. Wall-clock: the median of 3 runs each (5 without
  ``--quick``), after one warm-up run of the same samples;
* ``machine``: the speed-up 2 processes give on this machine at best (:func:`machine_ceiling`), and the
  over_dataset speed-up over it.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import functools
import os
import statistics
import sys
import time

import numpy as np

from . import harness

HERE = os.path.dirname(os.path.abspath(__file__))

#: the targets of issue 25 (upper bounds on ratios, except the speed-up: a lower bound)
TARGETS = {"replay/eager": 0.3, "replay/torch": 0.5, "replay trace/eager trace": 0.4, "speed-up 2 workers": 1.7}


def _tiny():
    import semirad as sr

    from .targets import tiny_net

    model, x = tiny_net()
    params = list(model.parameters())

    def fn(x):
        y = model(x)
        return (y * y).mean()

    return sr, model, params, fn, x


def tiny_rows(quick: bool) -> dict:
    """Medians of forward + grad (replay, eager, torch) and forward + trace (replay, eager)."""
    sr, model, params, fn, x = _tiny()
    g = sr.compile(fn, x)
    runners = {
        "replay forward": lambda: g(x),
        "eager forward": lambda: fn(sr.tensor(x)),
        "replay grad": lambda: sr.grad(g(x), params),
        "eager grad": lambda: sr.grad(fn(sr.tensor(x)), params),
        "replay trace": lambda: sr.trace(g(x), params),
        "eager trace": lambda: sr.trace(fn(sr.tensor(x)), params),
    }
    runners["numpy by hand"] = numpy_by_hand(model, x)
    torch_grad = torch_grad_runner(model, x)
    if torch_grad is not None:
        runners["torch grad"] = torch_grad
    return harness.interleaved(runners, repeats=5 if quick else 11, min_seconds=0.5 if quick else 2.0)


def numpy_by_hand(model, x):
    """Forward + gradient of the tiny net's loss written out in numpy for this one net (no tape, no
    rules, no checks; semirad's own tanh): the floor under any replay of the same ops.

    >>> import semirad as sr
    >>> from bench.targets import tiny_net
    >>> model, x = tiny_net(layers=3)
    >>> y = model(x)
    >>> want = sr.grad((y * y).mean(), list(model.parameters()))
    >>> got = numpy_by_hand(model, x)()
    >>> all(np.allclose(a, b) for a, b in zip(got, want))
    True
    """
    from semirad import fast

    weights = [(m.weight.data, m.bias.data) for m in model if hasattr(m, "weight")]

    def run():
        h, inputs = x, []
        for w, b in weights:
            inputs.append(h)
            h = fast.tanh(np, h @ w.T + b)
        g = (2.0 / h.size) * h  # d mean(h * h) / dh
        layers = []  # (gradient of W, of b), from the last layer back
        for (w, _), h_in in zip(reversed(weights), reversed(inputs)):
            gz = g * (1.0 - h * h)
            layers.append((gz.T @ h_in, gz.sum(0)))
            g, h = gz @ w, h_in
        return [grad for layer in reversed(layers) for grad in layer]

    return run


def torch_grad_runner(model, x):
    """PyTorch's forward + ``torch.autograd.grad`` of ``mean(y * y)`` for a copy of ``model``, or
    None without torch."""
    try:
        import torch

        from .targets import torch_copy
    except ImportError:  # pragma: no cover - torch is optional
        return None
    tm = torch_copy(model)
    tparams = list(tm.parameters())
    tx = torch.from_numpy(x)

    def torch_grad():
        y = tm(tx)
        return torch.autograd.grad((y * y).mean(), tparams)

    return torch_grad


# -- over_dataset ------------------------------------------------------------------------------------


def demo_model():
    import semirad as sr

    sr.manual_seed(0)
    layer = functools.partial(sr.nn.TransformerEncoderLayer, d_model=32, nhead=4, dim_feedforward=64, dropout=0.0,
                              batch_first=True)  # fmt: skip
    return sr.nn.TransformerEncoder(layer(), num_layers=2)


def demo_loss(model, batch):
    """The loss of one sample (module level: the process pool pickles it with the model)."""
    x, target = batch
    y = model(x)
    return ((y - target) ** 2).mean()


def demo_samples(n: int = 64):
    rng = np.random.default_rng(0)
    return [(rng.standard_normal((1, 8, 32)), rng.standard_normal((1, 8, 32))) for _ in range(n)]


def dataset_rows(dask: bool, runs: int = 3) -> dict:
    """Seconds of an over_dataset run over 64 samples (the median of ``runs``, after a warm-up run):
    serial eager, 2 processes, 2 Dask workers."""
    from semirad.analysis import over_dataset

    model = demo_model()
    fn = functools.partial(demo_loss, model)
    data = demo_samples()
    out = {}

    def timed(name, **kw):
        over_dataset(fn, data, progress=False, **kw)  # warm-up: every worker started, kernels loaded
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            result = over_dataset(fn, data, progress=False, **kw)
            times.append(time.perf_counter() - t)
        out[name] = statistics.median(times)
        return result

    serial = timed("serial")
    serial_compiled = timed("serial, compiled", compile=True)
    assert serial_compiled.rows == serial.rows
    with cf.ProcessPoolExecutor(2) as pool:
        assert timed("2 processes", executor=pool).rows == serial.rows
    if dask:
        try:
            import distributed
        except ImportError:
            return out
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                           dashboard_address=None)  # fmt: skip
        with cluster, distributed.Client(cluster) as client:
            assert timed("2 Dask workers", executor=client).rows == serial.rows
    return out


def _spin(n: int) -> float:
    """Seconds of a pure-Python loop of ``n`` steps (module level: a process pool pickles it)."""
    t = time.perf_counter()
    total = 0
    for i in range(n):
        total += i
    return time.perf_counter() - t


def machine_ceiling(steps: int = 5_000_000) -> float:
    """What 2 processes give on this machine at best: the speed-up of a pure-Python loop run in 2
    worker processes at once over the same loop run twice in a row in one (no data moves, no
    startup: the pool is warm). 2.0 on two free cores; less where the cores are shared (a VM's
    vCPUs on one physical core, other jobs)."""
    with cf.ProcessPoolExecutor(2) as pool:
        list(pool.map(_spin, [1000, 1000]))
        alone = min(_spin(steps) for _ in range(2))
        t = time.perf_counter()
        list(pool.map(_spin, [steps, steps]))
        both = time.perf_counter() - t
    return 2 * alone / both


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.replay", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-dask", action="store_true")
    args = parser.parse_args(argv)
    import semirad as sr

    sr.kernels.wait()
    t = tiny_rows(args.quick)
    med = {k: v.get("median_s", float("nan")) for k, v in t.items()}
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    print("\ntiny (101 tanh layers, batch 1): median seconds per call")
    for k, v in med.items():
        print(f"  {k:<14}{v * 1e3:9.3f} ms")
    rows = {
        "forward only: replay/eager": med["replay forward"] / med["eager forward"],
        "replay/eager": med["replay grad"] / med["eager grad"],
        "replay trace/eager trace": med["replay trace"] / med["eager trace"],
        "floor: numpy by hand/eager": med["numpy by hand"] / med["eager grad"],
    }
    if "torch grad" in med:
        rows["replay/torch"] = med["replay grad"] / med["torch grad"]
        rows["eager/torch"] = med["eager grad"] / med["torch grad"]
    d = dataset_rows(not args.no_dask, runs=3 if args.quick else 5)
    print("\nover_dataset, 64 samples of a 2-layer transformer encoder: seconds per run (median)")
    for k, v in d.items():
        print(f"  {k:<18}{v:8.2f} s")
    rows["speed-up 2 workers"] = d["serial"] / d["2 processes"]
    if "2 Dask workers" in d:
        rows["speed-up 2 Dask workers"] = d["serial"] / d["2 Dask workers"]
    rows["speed-up compiled, serial"] = d["serial"] / d["serial, compiled"]
    ceiling = machine_ceiling()
    rows["machine: 2 processes / 1"] = ceiling
    rows["2 workers' speed-up / machine's"] = rows["speed-up 2 workers"] / ceiling
    print("\nratio                          measured   target")
    for k, v in rows.items():
        target = TARGETS.get(k, TARGETS["speed-up 2 workers"] if k.startswith("speed-up 2 ") else None)
        print(f"  {k:<28}{v:9.3f}   {'' if target is None else target}")


if __name__ == "__main__":
    main()
