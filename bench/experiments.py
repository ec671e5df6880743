"""The five experiments of the scaling study, and the columns each one times."""

from __future__ import annotations

import numpy as np

from . import harness, models

# column names, in table order
SR_BP = "semirad backprop"
SR_TRACE = "semirad trace"
SR_TRACE_NP = "semirad trace (numpy kernels)"
TORCH = "PyTorch backprop"
AUTOGRAD = "autograd backprop"
SR_BP_GPU = "semirad backprop (cupy)"
SR_TRACE_GPU = "semirad trace (cupy)"
TORCH_GPU = "PyTorch backprop (CUDA)"
COLUMNS = [SR_BP, SR_TRACE, SR_TRACE_NP, TORCH, AUTOGRAD, SR_BP_GPU, SR_TRACE_GPU, TORCH_GPU]

#: a column whose median exceeded this at one size is skipped at the larger sizes of that experiment
STOP_AFTER_S = {"full": 20.0, "quick": 2.0}


def available() -> dict:
    """Which optional columns can run here, and why not where they cannot."""
    out = {}
    try:
        import torch

        out["torch"] = True
        out["torch_cuda"] = bool(torch.cuda.is_available()) or "no CUDA device"
    except ImportError:
        out["torch"] = out["torch_cuda"] = "torch not installed"
    try:
        import autograd  # noqa: F401

        out["autograd"] = True
    except ImportError:
        out["autograd"] = "autograd not installed (pip install autograd)"
    try:
        import cupy

        out["cupy"] = cupy.cuda.runtime.getDeviceCount() > 0 or "no CUDA device"
    except Exception as error:  # ImportError, or a CUDA runtime without a device
        out["cupy"] = f"cupy unavailable ({type(error).__name__})"
    import semirad.kernels as K

    out["numba"] = K.AVAILABLE or "numba not installed: the trace column uses the numpy kernels"
    return out


def _gpu_sync():
    import cupy

    cupy.cuda.Device().synchronize()


def _torch_sync():
    import torch

    torch.cuda.synchronize()


def _with_kernels(mode: str, fn):
    import semirad.kernels as K

    def run():
        with K.using(mode):
            return fn()

    return run


def program_runners(prog, have: dict, skip: set, numpy_trace: bool) -> dict:
    """The runners of every column for one program (all columns do the same arithmetic)."""
    runners = {SR_BP: models.semirad_runner(prog, "grad"), SR_TRACE: models.semirad_runner(prog, "trace")}
    if have["numba"] is True and numpy_trace:
        runners[SR_TRACE_NP] = _with_kernels("numpy", models.semirad_runner(prog, "trace"))
    if have["torch"] is True:
        runners[TORCH] = models.torch_runner(prog)
    if have["autograd"] is True:
        runners[AUTOGRAD] = models.autograd_runner(prog)
    if have["cupy"] is True:
        runners[SR_BP_GPU] = (models.semirad_runner(prog, "grad", "cuda"), _gpu_sync)
        runners[SR_TRACE_GPU] = (models.semirad_runner(prog, "trace", "cuda"), _gpu_sync)
    if have["torch_cuda"] is True:
        runners[TORCH_GPU] = (models.torch_runner(prog, "cuda"), _torch_sync)
    return {k: v for k, v in runners.items() if k not in skip}


def matvec_runners(n, have: dict, skip: set, numpy_trace: bool) -> dict:
    runners = {SR_BP: models.matvec_semirad(n, "grad"), SR_TRACE: models.matvec_semirad(n, "trace")}
    if have["numba"] is True and numpy_trace:
        runners[SR_TRACE_NP] = _with_kernels("numpy", models.matvec_semirad(n, "trace"))
    if have["torch"] is True:
        runners[TORCH] = models.matvec_torch(n)
    if have["autograd"] is True:
        runners[AUTOGRAD] = models.matvec_autograd(n)
    if have["cupy"] is True:
        runners[SR_BP_GPU] = (models.matvec_semirad(n, "grad", "cuda"), _gpu_sync)
        runners[SR_TRACE_GPU] = (models.matvec_semirad(n, "trace", "cuda"), _gpu_sync)
    if have["torch_cuda"] is True:
        runners[TORCH_GPU] = (models.matvec_torch(n, "cuda"), _torch_sync)
    return {k: v for k, v in runners.items() if k not in skip}


def memory(runners: dict) -> dict:
    """Peak tracemalloc bytes of semirad trace vs backprop on the same graph."""
    out = {}
    for name in (SR_BP, SR_TRACE):
        run = runners.get(name)
        if run is not None and hasattr(run, "build"):
            out[name] = harness.peak_memory(run.build, run.sweep)
    if len(out) == 2:
        for key in ("total_bytes", "sweep_bytes"):
            out[f"trace/backprop {key.split('_')[0]}"] = out[SR_TRACE][key] / max(1, out[SR_BP][key])
    return out


# -- the experiments ------------------------------------------------------------------------------
SPECS = {
    "layers": {
        "title": "time vs number of layers (20 hidden units, input/output 10, batch 32)",
        "x": "layers",
        "full": [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
        "quick": [1, 10, 100, 1000],
        "program": lambda x: models.mlp(layers=x, width=20, batch=32),
        "numpy_trace_max": 10**9,
        "numpy_trace_max_quick": 100,
    },
    "batch": {
        "title": "time vs batch size (20 layers of 20 hidden units)",
        "x": "batch",
        "full": [1, 4, 16, 64, 256, 1024, 4096, 16384],
        "quick": [1, 64, 1024, 8192],
        "program": lambda x: models.mlp(layers=20, width=20, batch=x),
        "numpy_trace_max": 4096,
        "numpy_trace_max_quick": 1024,
    },
    "width": {
        "title": "time vs hidden width N (20 layers, input/output 10, batch 64)",
        "x": "width",
        "full": [10, 20, 50, 100, 200, 500, 1000, 2000],
        "quick": [10, 100, 500, 1000],
        "program": lambda x: models.mlp(layers=20, width=x, batch=64),
        "numpy_trace_max": 500,
        "numpy_trace_max_quick": 100,
    },
    "random_graphs": {
        "title": "time vs size of random diamond graphs (weight matrices and tanh, widths 10-500, batch 16)",
        "x": "scalar edges",
        "full": list(range(40)),
        "quick": list(range(8)),
        "program": lambda seed: models.random_graph(seed, batch=16),
        "numpy_trace_max": 10**9,
    },
    "matvec": {
        "title": "gradient and trace of a matrix-vector product W @ x (N x N)",
        "x": "N",
        "full": [100, 200, 500, 1000, 2000, 4000, 8000],
        "quick": [100, 1000, 4000],
        "numpy_trace_max": 10**9,
    },
}


#: seconds of timed rounds that a fast point fills with extra repeats (see ``harness.interleaved``)
MIN_SECONDS = {"full": 1.0, "quick": 0.25}


def run_experiment(name: str, mode: str, have: dict, repeats: int, log=print) -> dict:
    spec = SPECS[name]
    rows, stopped = [], {}
    for x in spec[mode]:
        skip = {col for col, why in stopped.items() if why}
        numpy_trace = x <= spec["numpy_trace_max"] and (mode == "full" or x <= spec.get("numpy_trace_max_quick", 10**9))
        if name == "matvec":
            runners = matvec_runners(x, have, skip, numpy_trace)
            row = {"x": x, "scalar": {"vertices": x * x + 2 * x + 1, "edges": 2 * x * x + x}}
        else:
            prog = spec["program"](x)
            runners = program_runners(prog, have, skip, numpy_trace)
            row = {"x": x, "scalar": prog.scalar_graph()}
            if name == "random_graphs":
                row["seed"], row["x"] = x, row["scalar"]["edges"]
                row["ops"], row["edges"] = len(prog.steps), row["scalar"]["edges"]
        row["times"] = harness.interleaved(runners, repeats, min_seconds=MIN_SECONDS[mode])
        row["memory"] = memory(runners)
        for col in skip:
            row["times"][col] = {"skipped": stopped[col]}
        for col, t in row["times"].items():
            med = t.get("median_s")
            if med is not None and med > STOP_AFTER_S[mode] and col not in stopped:
                stopped[col] = f"skipped above x={row['x']} (took {med:.1f} s there)"
        rows.append(row)
        log(f"  {name} x={row['x']}: " + ", ".join(
            f"{col} {t['median_s'] * 1e3:.2f} ms" for col, t in row["times"].items() if "median_s" in t
        ))
        del runners
    if name == "random_graphs":
        rows.sort(key=lambda r: r["x"])
    return {"title": spec["title"], "x": spec["x"], "rows": rows}


# -- findings -------------------------------------------------------------------------------------
def slope(rows, col, lo=None):
    """Least-squares slope of log(time) against log(x) over the rows with x >= lo."""
    pts = [
        (r["x"], r["times"][col]["median_s"])
        for r in rows
        if col in r["times"] and "median_s" in r["times"][col] and (lo is None or r["x"] >= lo)
    ]
    if len(pts) < 2:
        return None
    xs, ys = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return float(np.polyfit(xs, ys, 1)[0])


def _points(rows, col):
    return [(r, r["times"][col]["median_s"]) for r in rows if "median_s" in r["times"].get(col, {})]


def top_slope(rows, col):
    """Log-log slope at the large end: between the two largest x (the upper half of the points when
    there are more than 8, as for the random graphs)."""
    pts = sorted(_points(rows, col), key=lambda p: p[0]["x"])
    if len(pts) < 2:
        return None
    pts = pts[len(pts) // 2:] if len(pts) > 8 else pts[-2:]
    xs, ys = np.log([p[0]["x"] for p in pts]), np.log([p[1] for p in pts])
    return float(np.polyfit(xs, ys, 1)[0])


def poly_r2(rows, col, degree, regressors=None):
    """R^2 of time fitted as a polynomial of ``degree`` in x with an intercept (or, with
    ``regressors``, as an affine function of those row fields)."""
    pts = _points(rows, col)
    if len(pts) < degree + 2:
        return None
    t = np.array([p[1] for p in pts])
    if regressors:
        cols = [np.array([p[0][k] for p in pts], dtype=float) for k in regressors]
    else:
        x = np.array([p[0]["x"] for p in pts], dtype=float)
        cols = [x**d for d in range(1, degree + 1)]
    A = np.column_stack([np.ones_like(t)] + cols)
    coef, *_ = np.linalg.lstsq(A, t, rcond=None)
    resid = t - A @ coef
    total = ((t - t.mean()) ** 2).sum()
    return float(1 - (resid**2).sum() / total) if total > 0 else None


def ratios(rows, num, den):
    out = []
    for r in rows:
        a, b = r["times"].get(num, {}), r["times"].get(den, {})
        if "median_s" in a and "median_s" in b:
            out.append((r["x"], a["median_s"] / b["median_s"]))
    return out


FIT_FROM = {"layers": 10, "batch": 256, "width": 200, "matvec": 1000, "random_graphs": None}
EXPECTED = {"layers": 1, "batch": 1, "width": 2, "matvec": 2, "random_graphs": 1}
