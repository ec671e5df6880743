"""Before/after figures of the optimizations, measured side by side in one run.

    python -m bench.before_after [--ref COMMIT] [--rounds 5] [--repeats 5] [--only TEXT ...]

``--ref`` (default: the commit the optimizations started from) is extracted with ``git archive``
into a temporary directory; each round runs the cases of :mod:`bench._cases` once against that
tree ("before") and once against this checkout ("after"), alternating, single-threaded. A case's
figure is the median over rounds of its per-round median; the ratio after/before is < 1 when the
change made it faster. Kernel figures (numba vs the numpy reference, same process) follow. Writes
``bench/results/before_after.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
#: the last commit before the optimizations of issue 6
DEFAULT_REF = "2aecf62"


def _run_tree(tree: str, args: dict) -> dict:
    env = dict(os.environ, PYTHONPATH=tree, OMP_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, os.path.join(HERE, "_cases.py"), json.dumps(args)],
        cwd=tree, env=env, capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def kernel_figures(repeats: int = 5) -> list:
    """numba kernel vs numpy reference vs BLAS matmul, on the shapes of the benchmarks (1 thread)."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from semirad import kernels
    from semirad.semirings.max_abs import dispatch, reference

    threadpool_limits(1)
    if not kernels.AVAILABLE:
        return []
    import numba

    numba.set_num_threads(1)
    from ._cases import _median

    rng = np.random.default_rng(0)
    rows = []
    for m, n, p, what in (
        (64, 500, 500, "dense layer, gradient of the input (batch 64, width 500)"),
        (500, 64, 500, "dense layer, gradient of the weight (batch 64, width 500)"),
        (64, 1000, 1000, "dense layer, gradient of the input (batch 64, width 1000)"),
        (1000, 64, 1000, "dense layer, gradient of the weight (batch 64, width 1000)"),
        (1, 2000, 2000, "matrix-vector product, gradient of the vector (N 2000)"),
        (32, 20, 20, "small layer (batch 32, width 20)"),
    ):
        for dtype in (np.float64, np.float32):
            v = rng.standard_normal((m, n)).astype(dtype)
            w = rng.standard_normal((n, p)).astype(dtype)
            ids = np.arange(m * n).reshape(m, n)
            blas = _median(lambda v=v, w=w: v @ w, repeats)
            with kernels.using("numba"):
                fast = _median(lambda v=v, w=w, ids=ids: dispatch.matmul(np, v, ids, w), repeats)
            ref = _median(
                lambda v=v, w=w, ids=ids: reference.matmul(np, v, ids, w), max(1, repeats // 2)
            )
            rows.append({
                "shape": f"({m}x{n}) @ ({n}x{p})", "what": what, "dtype": np.dtype(dtype).name,
                "blas_s": blas, "numpy_reference_s": ref, "numba_s": fast,
                "numpy/blas": ref / blas, "numba/blas": fast / blas, "numpy/numba": ref / fast,
            })
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.before_after", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", default=DEFAULT_REF)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", nargs="*", help="only cases whose name contains one of these")
    parser.add_argument("--no-kernels", action="store_true", help="skip the kernel figures")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "archive", args.ref, "semirad"], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        trees = {"before": tmp, "after": ROOT}
        rounds = {"before": [], "after": []}
        case_args = {"repeats": args.repeats, "only": args.only}
        for r in range(args.rounds):
            for label in ("before", "after") if r % 2 == 0 else ("after", "before"):
                rounds[label].append(_run_tree(trees[label], case_args))
            print(f"round {r + 1}/{args.rounds} done", flush=True)
    names = [k for k in rounds["after"][0] if not k.startswith("_")]
    table = []
    for name in names:
        before = statistics.median(rr[name] for rr in rounds["before"] if name in rr)
        after = statistics.median(rr[name] for rr in rounds["after"])
        table.append({"case": name, "before_s": before, "after_s": after, "after/before": after / before})
    kernels = [] if args.no_kernels else kernel_figures(args.repeats)
    result = {
        "ref": args.ref, "rounds": args.rounds, "repeats": args.repeats, "threads": 1,
        "semirad_before": rounds["before"][0]["_semirad"], "semirad_after": rounds["after"][0]["_semirad"],
        "cases": table, "kernels": kernels, "wall_s": time.perf_counter() - t0,
    }
    from .harness import machine

    result["machine"] = machine()
    os.makedirs(args.out, exist_ok=True)
    suffix = "" if not args.only else "_" + "_".join(o.replace(" ", "").replace("=", "") for o in args.only)
    with open(os.path.join(args.out, f"before_after{suffix}.json"), "w") as f:
        json.dump(result, f, indent=1)
    lines = [
        f"# Before/after (ref {args.ref} vs this checkout; median of {args.rounds} alternating rounds x "
        f"{args.repeats} repeats, 1 thread; {result['machine'].get('cpu')})",
        "",
        "| case | before ms | after ms | after/before |",
        "|---|---|---|---|",
    ]
    for row in table:
        lines.append(
            f"| {row['case']} | {row['before_s'] * 1e3:.3f} | {row['after_s'] * 1e3:.3f} | {row['after/before']:.2f} |"
        )
    if kernels:
        lines += [
            "",
            "## Max-abs contraction with argmax (MaxAbsProduct.matmul), 1 thread",
            "",
            "| shape | dtype | what | BLAS matmul ms | numpy reference ms | numba ms | numpy/BLAS | numba/BLAS "
            "| speed-up |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for k in kernels:
            lines.append(
                f"| {k['shape']} | {k['dtype']} | {k['what']} | {k['blas_s'] * 1e3:.3f} | "
                f"{k['numpy_reference_s'] * 1e3:.2f} | "
                f"{k['numba_s'] * 1e3:.3f} | {k['numpy/blas']:.1f} | {k['numba/blas']:.1f} | {k['numpy/numba']:.1f} |"
            )
    text = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, f"before_after{suffix}.md"), "w") as f:
        f.write(text)
    print(text)
    print(f"({result['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
