"""``python -m bench.blas_spin [--runs N] [--out DIR]``: what numpy's OpenBLAS leaves running after a call,
and what it costs a trace and PyTorch in the same process.

1. **The spinning worker.** After one multithreaded BLAS product (512 x 512), the CPU time that the
   process's other threads take in the next 80 ms while the calling thread computes in Python
   (``/proc/self/task/*/stat``), and the same after 0.3 s idle. OpenBLAS's workers poll for the next job
   (``sched_yield``) for about ``2**OPENBLAS_THREAD_TIMEOUT`` cycles (2**28 by default, about 0.1 s)
   before they sleep; a thread that polls is runnable, holds a core, and counts in ``/proc/loadavg``.
2. **Its cost.** The dense rows of ``bench.targets`` (4 x ``Linear(512, 512)`` + tanh, batch 128; trace
   / backprop and backprop / PyTorch, in steady state and call by call) in fresh processes, alternately
   with the defaults and with ``OPENBLAS_THREAD_TIMEOUT=4`` (the workers sleep at once: numpy reads it
   when it loads OpenBLAS, so only a new process can change it).

Writes ``blas_spin.md`` to ``bench/results`` (``--out``). Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def other_threads_cpu_s() -> float:
    """CPU seconds (user + system) so far of every thread of this process but the calling one.

    >>> other_threads_cpu_s() >= 0.0
    True
    """
    me = str(threading.get_native_id())
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for tid in os.listdir("/proc/self/task"):
        if tid == me:
            continue
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat(5))
    return total / tick


def spin_share(after_blas: bool, window_s: float = 0.08) -> float:
    """The other threads' CPU time over ``window_s`` of Python work on this thread, as a share of the
    window: right after a 512 x 512 BLAS product (``after_blas``), or after 0.3 s idle."""
    import numpy as np

    a = np.random.default_rng(0).standard_normal((512, 512))
    a @ a  # the workers exist
    if after_blas:
        a @ a
    else:
        time.sleep(0.3)
    before, start = other_threads_cpu_s(), time.perf_counter()
    x = 0
    while time.perf_counter() - start < window_s:
        x += 1
    return (other_threads_cpu_s() - before) / (time.perf_counter() - start)


def _dense_child(repeats: int) -> None:
    """In a fresh process: the dense rows of ``bench.targets`` as JSON on stdout."""
    import numpy as np

    from . import targets

    targets.load_kernels()
    from . import harness

    harness.set_allocator("keep")
    out = {}
    for dtype in (np.float32, np.float64):
        r = targets.row_dense(dtype, repeats=repeats, torch=targets.have_torch())
        out[np.dtype(dtype).name] = {"steady": {k: r[k] for k in ("trace_bp", "bp_torch") if k in r},
                                     "interleaved": {k: v for k, v in r["interleaved"].items() if k != "times_s"},
                                     "times_ms": {k: v * 1e3 for k, v in r["times_s"].items()}}  # fmt: skip
    print(json.dumps(out))


def dense_in_fresh_process(timeout_env: str | None, repeats: int) -> dict:
    """:func:`_dense_child` in a new ``python``, with ``OPENBLAS_THREAD_TIMEOUT`` set to ``timeout_env``
    (None: as this process's environment has it)."""
    env = dict(os.environ)
    if timeout_env is None:
        env.pop("OPENBLAS_THREAD_TIMEOUT", None)
    else:
        env["OPENBLAS_THREAD_TIMEOUT"] = timeout_env
    code = f"from bench.blas_spin import _dense_child; _dense_child({repeats})"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    from . import harness

    parser = argparse.ArgumentParser(prog="python -m bench.blas_spin", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per setting (alternated)")
    parser.add_argument("--repeats", type=int, default=5, help="rounds per row in each process")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args(argv)

    shares = {"after a BLAS product": [spin_share(True) for _ in range(5)],
              "after 0.3 s idle": [spin_share(False) for _ in range(5)]}  # fmt: skip
    runs = {"default": [], "OPENBLAS_THREAD_TIMEOUT=4": []}
    for _ in range(args.runs):
        runs["default"].append(dense_in_fresh_process(None, args.repeats))
        runs["OPENBLAS_THREAD_TIMEOUT=4"].append(dense_in_fresh_process("4", args.repeats))

    m = harness.machine()
    lines = [
        "# numpy's OpenBLAS workers after a call, and what they cost",
        "",
        f"`python -m bench.blas_spin --runs {args.runs} --repeats {args.repeats}`; {m.get('cpu')}, "
        f"{m.get('cores')} cores, "
        f"numpy {m.get('numpy')}, torch {m.get('torch')}, numba {m.get('numba')}, git {m.get('git')}.",
        "",
        "Other threads' CPU time over 80 ms of Python on the calling thread, as a share of one core (5 measurements):",
        "",
    ]
    for name, values in shares.items():
        lines.append(f"* {name}: " + ", ".join(f"{v:.2f}" for v in values))
    lines += [
        "",
        "The dense net of `bench.targets` in fresh processes, alternately with each setting (steady: runners in "
        "blocks; interleaved: call by call):",
        "",
        "| setting | dtype | trace / backprop steady | interleaved | backprop / PyTorch steady | interleaved "
        "| ms steady: backprop, trace, PyTorch |",
        "|---|---|---|---|---|---|---|",
    ]
    for setting, results in runs.items():
        for dtype in ("float32", "float64"):
            for r in results:
                d = r[dtype]
                t = d["times_ms"]
                steady, inter = d["steady"], d["interleaved"]
                lines.append(
                    f"| {setting} | {dtype} | {steady['trace_bp']:.2f} | {inter['trace_bp']:.2f} | "
                    f"{steady.get('bp_torch', float('nan')):.2f} | {inter.get('bp_torch', float('nan')):.2f} | "
                    f"{t['backprop']:.1f}, {t['trace']:.1f}, {t.get('torch', float('nan')):.1f} |"
                )
    md = "\n".join(lines) + "\n"
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "blas_spin.md"), "w") as f:
        f.write(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
