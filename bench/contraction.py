"""The max-abs contraction against BLAS: ``python -m bench.contraction [--threads 1 0] [--repeats R] [--against FILE]``.

For float32 and float64 and the shapes of a dense layer's backward (and a few others), times
MaxAbsProduct's contraction with argmax (the numba kernel of ``semirad/kernels/max_abs.py`` as
``semirings.max_abs.dispatch.matmul`` calls it: what a trace pays) and the BLAS matmul ``v @ w`` of the same
operands, interleaved in one process (balanced orders, medians), and prints a markdown table of
the ratios kernel / BLAS. ``--threads 1`` limits numba and BLAS to one thread, ``0`` leaves their
defaults (both by default). ``--against FILE`` adds a column for another version of the kernel
module, e.g. ``git show HEAD:semirad/kernels/max_abs.py > /tmp/max_abs_before.py``, timed in the
same rounds (its ratio to BLAS, and its time over the current kernel's).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import statistics
import sys
import time

import numpy as np

from . import harness

#: (name, m, n, p, layout): ``v`` is ``m x n``, ``w`` is ``n x p``; ``layout`` says how they are laid out
#: in a trace: "g @ W.T" is a dense layer's input gradient (``w`` a transposed view of a C-contiguous
#: weight), "g.T @ x" its weight gradient as ``MatMul.backward`` asks for it (``v`` a transposed view)
CASES = [
    ("input grad g @ W.T", 128, 512, 512, "wT"),
    ("weight grad g.T @ x", 512, 128, 512, "vT"),
    ("128x512 @ 512x512", 128, 512, 512, "C"),
    ("64x256 @ 256x256", 64, 256, 256, "C"),
    ("matvec 1x2000 @ 2000x2000", 1, 2000, 2000, "C"),
]


def operands(m: int, n: int, p: int, layout: str, dtype, seed: int = 0):
    """``(v, ids, w)`` of one case, laid out as in a trace (``ids`` like ``v``)."""
    rng = np.random.default_rng(seed)
    if layout == "vT":
        v = rng.standard_normal((n, m)).astype(dtype).T
        ids = np.arange(m * n, dtype=np.int64).reshape(n, m).T
    else:
        v = rng.standard_normal((m, n)).astype(dtype)
        ids = np.arange(m * n, dtype=np.int64).reshape(m, n)
    w = rng.standard_normal((p, n)).astype(dtype).T if layout == "wT" else rng.standard_normal((n, p)).astype(dtype)
    return v, ids, w


def load_module(path: str):
    """Another version of ``semirad/kernels/max_abs.py``, imported as a sibling of the kernel package
    (its relative imports resolve there)."""
    name = "semirad.kernels._contraction_against"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def _threads(n: int | None):
    """numba and BLAS limited to ``n`` threads (None: their defaults) inside the block."""
    import numba
    from threadpoolctl import threadpool_limits

    old = numba.get_num_threads()
    if n is None:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        limits = contextlib.nullcontext()
    else:
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
        limits = threadpool_limits(n)
    try:
        with limits:
            yield
    finally:
        numba.set_num_threads(old)


def _contraction(module, dtype):
    """The contraction as ``semirings.max_abs.dispatch.matmul`` runs it on numpy arrays, with the kernel
    module ``module`` called directly (numba's current thread count, not semirad's thread policy)."""
    from semirad.ids import NO_PATH

    def run(v, ids, w):
        out_v, out_i, dead_end = module.max_abs_matmul(v, ids, w, dtype)
        if dead_end is None:  # (the dispatch's pass for dead ends where the kernel did not say)
            dead_end = out_i.size and int(out_i.max()) == NO_PATH
        return out_v, out_i

    return run


def measure(case, dtype, repeats: int, min_seconds: float, against=None, clock=time.perf_counter) -> dict:
    """Median seconds of BLAS, the kernel (and ``against``) on one case, interleaved."""
    _, m, n, p, layout = case
    v, ids, w = operands(m, n, p, layout, dtype)
    from semirad.kernels import max_abs

    current = _contraction(max_abs, dtype)
    runners = {"blas": lambda: v @ w, "kernel": lambda: current(v, ids, w)}
    if against is not None:
        other = _contraction(against, dtype)
        want = current(v, ids, w)
        got = other(v, ids, w)
        assert all(np.array_equal(a, b) for a, b in zip(want, got)), "the two kernels disagree"
        runners["against"] = lambda: other(v, ids, w)
    times = {name: [] for name in runners}
    for fn in runners.values():  # warm up (compiles, or loads numba's cache)
        fn()
        fn()
    start = time.perf_counter()
    orders = harness.balanced_orders(len(runners))
    names = list(runners)
    r = 0
    while r < repeats or time.perf_counter() - start < min_seconds:
        for i in orders[r % len(orders)]:
            t0 = clock()
            runners[names[i]]()
            times[names[i]].append(clock() - t0)
        r += 1
        if r >= 50 * repeats:
            break
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.contraction", description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 0], help="numba and BLAS threads (0: defaults)")
    parser.add_argument("--repeats", type=int, default=21, help="rounds at least (more to fill --seconds)")
    parser.add_argument("--seconds", type=float, default=1.0, help="time to fill per case, dtype and thread count")
    parser.add_argument("--dtypes", nargs="*", default=["float32", "float64"])
    parser.add_argument(
        "--clock", choices=["wall", "cpu"], default="wall",
        help="cpu: the calling thread's CPU time where one thread runs (a busy machine's time slices left out)",
    )
    parser.add_argument("--only", nargs="*", help="only the cases whose name contains one of these")
    parser.add_argument("--against", help="another version of semirad/kernels/max_abs.py for a side-by-side column")
    args = parser.parse_args(argv)

    import numba

    from semirad import kernels

    kernels.load()
    against = load_module(args.against) if args.against else None
    header = "| case | dtype | threads | BLAS ms | kernel ms | kernel / BLAS |"
    rule = "|---|---|---|---|---|---|"
    if against is not None:
        header += " against / BLAS | against / kernel |"
        rule += "---|---|"
    print(
        f"numba threads by default: {numba.config.NUMBA_NUM_THREADS}; medians of interleaved rounds; "
        f"clock: {'CPU time of the thread (1 thread)' if args.clock == 'cpu' else 'wall'}\n"
    )
    print(header)
    print(rule)
    for threads in args.threads:
        for case in CASES:
            if args.only and not any(word in case[0] for word in args.only):
                continue
            for dtype in args.dtypes:
                with _threads(threads or None):
                    label = str(threads) if threads else f"default ({numba.get_num_threads()})"
                    clock = time.thread_time if args.clock == "cpu" and threads == 1 else time.perf_counter
                    t = measure(case, np.dtype(dtype), args.repeats, args.seconds, against, clock)
                row = (
                    f"| {case[0]} | {dtype} | {label} | {t['blas'] * 1e3:.3f} | {t['kernel'] * 1e3:.3f} "
                    f"| {t['kernel'] / t['blas']:.2f} |"
                )
                if against is not None:
                    row += f" {t['against'] / t['blas']:.2f} | {t['against'] / t['kernel']:.2f} |"
                print(row, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
