"""Results as JSON, matplotlib plots and a markdown table (``bench/results/``)."""

from __future__ import annotations

import json
import os

from . import experiments as E


def _ms(t) -> str:
    if t is None:
        return ""
    if "median_s" in t:
        return f"{t['median_s'] * 1e3:.3g}"
    if "skipped" in t:
        return "skipped"
    return "error"


def _fmt_ratio(r) -> str:
    return "" if r is None else f"{r:.2f}"


def findings(results: dict) -> dict:
    """The study's claims, confirmed or refuted by these numbers."""
    out = {}
    exps = results["experiments"]
    for name, exp in exps.items():
        rows = exp["rows"]
        f = {"expected_slope": E.EXPECTED[name], "fit_from_x": E.FIT_FROM[name], "slopes": {}, "top_slopes": {},
             "r2": {}}
        for col in E.COLUMNS:
            s = E.slope(rows, col, E.FIT_FROM[name])
            if s is not None:
                f["slopes"][col] = round(s, 2)
            s = E.top_slope(rows, col)
            if s is not None:
                f["top_slopes"][col] = round(s, 2)
            regressors = ("ops", "edges") if name == "random_graphs" else None
            r2 = E.poly_r2(rows, col, E.EXPECTED[name], regressors)
            if r2 is not None:
                f["r2"][col] = round(r2, 4)
        for label, num, den in (
            ("trace/backprop", E.SR_TRACE, E.SR_BP),
            ("semirad/PyTorch", E.SR_BP, E.TORCH),
            ("trace numpy-kernels/backprop", E.SR_TRACE_NP, E.SR_BP),
            ("PyTorch CUDA/CPU", E.TORCH_GPU, E.TORCH),
            ("semirad cupy/numpy backprop", E.SR_BP_GPU, E.SR_BP),
        ):
            rs = E.ratios(rows, num, den)
            if rs:
                vals = [r for _, r in rs]
                f[label] = {
                    "min": round(min(vals), 3), "max": round(max(vals), 3),
                    "median": round(sorted(vals)[len(vals) // 2], 3), "at_largest_x": round(rs[-1][1], 3),
                }
        mems = [r["memory"] for r in rows if "trace/backprop total" in r.get("memory", {})]
        if mems:
            f["memory trace/backprop total"] = round(max(m["trace/backprop total"] for m in mems), 3)
            f["memory trace/backprop sweep"] = round(max(m["trace/backprop sweep"] for m in mems), 3)
        out[name] = f
    return out


def claims(results: dict) -> list:
    """One line per claim of the study: confirmed / refuted / not measurable here."""
    f = results["findings"]
    lines = []

    def slope_claim(name, what, want):
        fn = f.get(name, {})
        top = {k: v for k, v in fn.get("top_slopes", {}).items() if k in (E.SR_BP, E.SR_TRACE, E.TORCH)}
        r2 = {k: v for k, v in fn.get("r2", {}).items() if k in top}
        if not top:
            lines.append(f"- {what}: not measured")
            return
        ok = all(abs(v - want) <= 0.3 for v in top.values())
        fit = all(v >= 0.98 for v in r2.values()) if r2 else False
        verdict = "confirmed" if ok else ("confirmed by the fit, not by the slope" if fit else "not confirmed")
        model = f"a polynomial of degree {want} in x"
        if name == "random_graphs":
            model = "an affine function of (ops, scalar edges)"
        desc = "; ".join(f"{k}: slope {v}, R2 {r2.get(k)}" for k, v in top.items())
        lines.append(f"- {what}: {verdict} (log-log slope at the largest sizes, {want} expected; R2 of time fitted as "
                     f"{model}): {desc}")

    slope_claim("layers", "time linear in the number of layers", 1)
    slope_claim("batch", "time linear in the batch size", 1)
    slope_claim("width", "time quadratic in the hidden width", 2)
    slope_claim("random_graphs", "time linear in the size of the scalar graph", 1)
    slope_claim("matvec", "matrix-vector product quadratic in N", 2)
    gpu = f.get("layers", {}).get("PyTorch CUDA/CPU")
    if gpu:
        verdict = "confirmed" if gpu["median"] > 1 else "refuted"
        lines.append(
            f"- GPU slower than CPU for serial small layers: {verdict} (PyTorch CUDA/CPU median {gpu['median']})"
        )
    else:
        lines.append("- GPU slower than CPU for serial small layers: not measurable here (no CUDA device); "
                     "the CUDA/cupy columns run where one exists")
    parts = []
    for name in ("layers", "batch", "width", "random_graphs", "matvec"):
        r = f.get(name, {}).get("trace/backprop")
        if r:
            parts.append(f"{name} {r['min']}-{r['max']}x (median {r['median']})")
    if parts:
        lines.append("- tracing more expensive than backprop: confirmed; trace/backprop time " + "; ".join(parts))
    return lines


def markdown(results: dict) -> str:
    m = results["machine"]
    out = [
        "# semirad benchmarks",
        "",
        f"Taken on {m.get('cpu')} ({m.get('cores')} cores, {m.get('memory_gb')} GB), Python {m.get('python')}, "
        f"numpy {m.get('numpy')}, torch {m.get('torch')}, autograd {m.get('autograd')}, numba {m.get('numba')}, "
        f"cupy {m.get('cupy')}; threads per framework: {results['threads'].get('requested')}; "
        f"C allocator: {results.get('allocator', 'system')} (see `bench/harness.py` `set_allocator`); "
        f"mode `{results['mode']}`, at least {results['repeats']} repeats per point, more for fast points "
        "(median, warm-up excluded, interleaved); "
        f"git {m.get('git')}; load average at start {m.get('load_average')}.",
        "",
        "Times in milliseconds for one forward + reverse sweep (the graph is recorded anew each time). "
        "`trace/bp` = semirad trace / semirad backprop, `bp/torch` = semirad backprop / PyTorch.",
        "",
    ]
    skipped = {k: v for k, v in results["available"].items() if v is not True}
    if skipped:
        out += ["Columns not run here: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()), ""]
    out += ["## Findings", ""] + claims(results) + [""]
    for name, exp in results["experiments"].items():
        rows = exp["rows"]
        cols = [c for c in E.COLUMNS if any(c in r["times"] for r in rows)]
        out += [f"## {name}: {exp['title']}", ""]
        head = [exp["x"]] + cols + ["trace/bp", "bp/torch", "trace/bp memory"]
        out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in rows:
            t = r["times"]
            tr = _ratio(t, E.SR_TRACE, E.SR_BP)
            bt = _ratio(t, E.SR_BP, E.TORCH)
            mem = r.get("memory", {}).get("trace/backprop total")
            cells = [str(r["x"])] + [_ms(t.get(c)) for c in cols] + [_fmt_ratio(tr), _fmt_ratio(bt), _fmt_ratio(mem)]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    out += [
        "Memory: peak tracemalloc bytes from before the forward to the end of the sweep (the result held by the "
        "caller included), trace / backprop on the same graph. `findings.json` also has the sweep-only peaks.",
        "",
    ]
    return "\n".join(out)


def _ratio(t, a, b):
    x, y = t.get(a, {}), t.get(b, {})
    if "median_s" in x and "median_s" in y:
        return x["median_s"] / y["median_s"]
    return None


def plots(results: dict, outdir: str) -> list:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written = []
    for name, exp in results["experiments"].items():
        rows = exp["rows"]
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        for col in E.COLUMNS:
            pts = [(r["x"], r["times"][col]["median_s"]) for r in rows if "median_s" in r["times"].get(col, {})]
            if not pts:
                continue
            style = "o" if name == "random_graphs" else "o-"
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=col, markersize=3)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(exp["x"])
        ax.set_ylabel("seconds (fwd + sweep, median)")
        ax.set_title(exp["title"], fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        path = os.path.join(outdir, f"{name}.png")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    # memory: trace / backprop per experiment
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for name, exp in results["experiments"].items():
        pts = [
            (r["x"], r["memory"]["trace/backprop total"])
            for r in exp["rows"]
            if "trace/backprop total" in r.get("memory", {})
        ]
        if pts:
            style = "o-" if name != "random_graphs" else "o"
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=name, markersize=3)
    ax.axhline(2.0, color="gray", linestyle="--", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("x of each experiment")
    ax.set_ylabel("peak memory, trace / backprop")
    ax.legend(fontsize=7)
    ax.grid(True, alpha=0.3)
    path = os.path.join(outdir, "memory.png")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    return written


def write(results: dict, outdir: str, suffix: str = "") -> list:
    os.makedirs(outdir, exist_ok=True)
    results["findings"] = findings(results)
    paths = []
    path = os.path.join(outdir, f"results{suffix}.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1, default=float)
    paths.append(path)
    path = os.path.join(outdir, f"results{suffix}.md")
    with open(path, "w") as f:
        f.write(markdown(results))
    paths.append(path)
    if not suffix:
        paths += plots(results, outdir)
    else:
        sub = os.path.join(outdir, suffix.strip("_"))
        os.makedirs(sub, exist_ok=True)
        paths += plots(results, sub)
    return paths
