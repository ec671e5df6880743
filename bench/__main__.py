"""``python -m bench [--quick] [--only NAME ...] [--threads N] [--allocator keep|system] [--repeats R] [--out DIR]``.

Runs the five experiments of the gradient-tracing scaling study and writes JSON, plots and a
markdown table to ``bench/results/`` (``--quick``: small grids, under 2 minutes on 2 cores;
its files are suffixed ``_quick`` so that they never overwrite a full run).
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def main(argv=None) -> int:
    from . import experiments as E

    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small grids, few repeats (< 2 minutes)")
    parser.add_argument("--only", nargs="*", choices=list(E.SPECS), help="run only these experiments")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="threads for BLAS, PyTorch and numba (default 1: stable ratios on a shared machine; 0 = defaults)",
    )
    parser.add_argument(
        "--allocator", choices=["keep", "system"], default="keep",
        help="keep: the C allocator keeps freed memory for reuse (default; see bench/harness.py set_allocator); "
        "system: its defaults",
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per point (default 7, quick 3)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)

    from . import harness, report

    mode = "quick" if args.quick else "full"
    repeats = args.repeats or (3 if args.quick else 7)
    threads = harness.set_threads(args.threads or None)
    allocator = harness.set_allocator(args.allocator)
    have = E.available()
    results = {
        "mode": mode, "repeats": repeats, "threads": threads, "allocator": allocator, "machine": harness.machine(),
        "available": have, "experiments": {},
    }
    print(f"bench ({mode}, {repeats} repeats, threads {threads.get('requested')}, allocator {allocator}); "
          "columns not run: "
          + (", ".join(f"{k} ({v})" for k, v in have.items() if v is not True) or "none"), flush=True)
    import semirad.kernels as K

    if K.enabled():  # load (or, after a change, compile) the numba kernels before anything is timed
        t1 = time.perf_counter()
        K.load()
        print(f"numba kernels ready in {time.perf_counter() - t1:.1f} s", flush=True)
    t0 = time.perf_counter()
    for name in args.only or list(E.SPECS):
        t1 = time.perf_counter()
        print(f"{name}: {E.SPECS[name]['title']}", flush=True)
        harness.set_threads(args.threads or None)  # again: libraries loaded since (scipy's BLAS) start unlimited
        results["experiments"][name] = E.run_experiment(name, mode, have, repeats, log=lambda s: print(s, flush=True))
        print(f"  ({time.perf_counter() - t1:.1f} s)", flush=True)
    results["wall_s"] = time.perf_counter() - t0
    results["threads_at_end"] = harness.set_threads(None)  # what the libraries actually used
    suffix = "_quick" if args.quick else ""
    if args.only and not args.quick:
        suffix = "_" + "_".join(args.only)
    if args.allocator == "system":
        suffix += "_system_allocator"
    paths = report.write(results, args.out, suffix)
    print("\n".join(report.claims(results)))
    print(f"wrote {', '.join(paths)} in {results['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
