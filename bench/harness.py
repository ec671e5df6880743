"""Timing and memory measurement, shared by every experiment.

Timings are medians of repeats, warm-up excluded, and *interleaved*: repeat ``r`` of every runner
is taken before repeat ``r + 1`` of any, so that drifts of a shared machine hit all columns alike
and ratios of medians taken in one run are comparable. :func:`interleaved` alternates the runners
call by call; :func:`in_blocks` gives each a block of calls after it ran alone for a while (steady
state: no call in the wake of another library's spinning worker threads).
"""

from __future__ import annotations

import gc
import math
import os
import platform
import statistics
import subprocess
import time
import tracemalloc
from typing import Callable

#: a runner whose single call takes longer than this is not repeated (its one timing is kept)
SLOW_CALL_S = 20.0


def set_threads(n: int | None) -> dict:
    """Limit BLAS, PyTorch and numba to ``n`` threads (None: leave the defaults); returns what was set."""
    info = {"requested": n}
    try:
        from threadpoolctl import threadpool_limits

        if n is not None:
            threadpool_limits(n)
        from threadpoolctl import threadpool_info

        info["blas"] = [(p.get("internal_api"), p.get("num_threads")) for p in threadpool_info()]
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn / numba setups
        info["blas"] = "threadpoolctl not installed"
    try:
        import numba

        if n is not None:
            numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
        info["numba"] = numba.get_num_threads()
    except ImportError:
        pass
    try:
        import torch

        if n is not None:
            torch.set_num_threads(n)
        info["torch"] = torch.get_num_threads()  # after numba: its threading layer's start-up resets it
    except ImportError:
        pass
    return info


#: glibc's mallopt parameters (malloc.h): M_TRIM_THRESHOLD -1 never trims the heap, M_MMAP_MAX 0
#: gives no allocation a mapping of its own (both documented in mallopt(3))
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def set_allocator(mode: str) -> str:
    """``"keep"``: the C allocator keeps freed memory in the process for reuse; ``"system"``: its defaults.

    Every framework measured here (numpy under semirad and HIPS autograd, PyTorch's CPU allocator)
    takes its large buffers from ``malloc``. glibc gives buffers above its mmap threshold (adaptive,
    at most 32 MiB) their own mapping and returns freed memory at the top of the heap to the kernel,
    so a sweep that frees and allocates many large buffers keeps touching fresh pages; on the
    virtual machines these numbers were taken on, the first touch of a fresh page costs several µs
    (13.5 ms to fill a new 32 MB array, 4 ms to fill it again), which made runs of the same
    code differ by up to 2x. ``"keep"`` tells glibc (``mallopt``) never to trim its heap and to
    serve every size from it, so freed memory is reused and the process keeps what it once
    touched; it applies to every column alike, and ``--allocator system`` measures with the
    defaults. (Thresholds of 1 GiB were not enough: a trace at width 2000 frees more than that at
    once, and its next run paid the first touch of all of it again, 2x slower.) Returns what was set.
    """
    if mode == "system":
        return "system"
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(_M_TRIM_THRESHOLD, ctypes.c_int(-1)) and libc.mallopt(_M_MMAP_MAX, ctypes.c_int(0))
    except (OSError, AttributeError):  # not glibc
        return "system (mallopt unavailable)"
    return "keep" if ok else "system (mallopt refused)"


def machine() -> dict:
    """What the numbers were taken on."""
    cpu = platform.processor() or ""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "cpu family", "model") and key not in fields:
                    fields[key] = value.strip()
                if not line.strip():  # the first processor is enough
                    break
    except OSError:
        pass
    if "model name" in fields:
        cpu = fields["model name"]
        if "cpu family" in fields and "model" in fields:  # a bare "AMD EPYC" names no generation
            cpu += f" (family {fields['cpu family']}, model {fields['model']})"
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        with open("/proc/meminfo") as f:
            info["memory_gb"] = round(int(f.readline().split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    import numpy

    info["numpy"] = numpy.__version__
    for name in ("torch", "autograd", "numba", "cupy"):
        try:
            module = __import__(name)
            info[name] = getattr(module, "__version__", "installed")
        except Exception:
            info[name] = None
    try:
        info["load_average"] = os.getloadavg()
    except OSError:
        pass
    try:
        info["git"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        pass
    return info


def time_call(fn: Callable, sync: Callable | None = None) -> float:
    t0 = time.perf_counter()
    out = fn()
    if sync is not None:
        sync()
    elapsed = time.perf_counter() - t0
    del out
    return elapsed


def balanced_orders(n: int) -> list:
    """Orders of ``n`` runners in which each runner directly follows each other one equally often
    (a Williams design: ``n`` orders for even ``n``, ``2n`` for odd). Rotating one order would not
    do: every runner would always follow the same one.

    >>> balanced_orders(4)
    [[0, 1, 3, 2], [1, 2, 0, 3], [2, 3, 1, 0], [3, 0, 2, 1]]
    """
    if n == 0:
        return []
    first = [0] + [(i + 1) // 2 if i % 2 else n - i // 2 for i in range(1, n)]  # 0, 1, n-1, 2, n-2, ...
    orders = [[(k + r) % n for k in first] for r in range(n)]
    return orders if n % 2 == 0 else orders + [order[::-1] for order in orders]


def interleaved(
    runners: dict, repeats: int, warmup: int = 1, budget_s: float | None = None, min_seconds: float = 0.0,
    max_repeats: int = 100,
) -> dict:
    """Median seconds per runner; ``runners`` maps a name to ``fn`` or ``(fn, sync)``.

    Each runner is warmed up ``warmup`` times, then the repeats are interleaved, in orders that change
    from round to round (:func:`balanced_orders`). Where a round (one call of every runner, estimated from the
    warm-up) takes less than ``min_seconds / repeats``, more rounds run, up to ``max_repeats``, to
    fill about ``min_seconds``: fast points get the repeats that make their median steady on a noisy
    machine, for little time. A runner whose warm-up call exceeds :data:`SLOW_CALL_S` (or
    ``budget_s``) is timed once and reported with ``repeats: 1``. A runner that raises is reported
    with its error.
    """
    out, live = {}, {}
    limit = SLOW_CALL_S if budget_s is None else budget_s
    round_s = 0.0
    for name, runner in runners.items():
        fn, sync = runner if isinstance(runner, tuple) else (runner, None)
        try:
            first = time_call(fn, sync)
            for _ in range(warmup - 1):
                first = time_call(fn, sync)
        except Exception as error:  # a framework that cannot run this config: say why
            out[name] = {"error": f"{type(error).__name__}: {error}"[:300]}
            continue
        if first > limit:
            out[name] = {"median_s": first, "repeats": 1, "times_s": [first]}
        else:
            live[name] = (fn, sync, [])
            round_s += first
    if min_seconds > 0 and round_s > 0:
        repeats = max(repeats, min(max_repeats, math.ceil(min_seconds / round_s)))
    gc.collect()
    runners_live = list(live.values())
    orders = balanced_orders(len(runners_live))
    for r in range(repeats):
        # a runner that frees much memory or thrashes the cache penalizes whichever runs next: the
        # orders let each runner follow each other one equally often
        for i in orders[r % len(orders)] if orders else ():
            fn, sync, times = runners_live[i]
            times.append(time_call(fn, sync))
    for name, (_, _, times) in live.items():
        out[name] = {"median_s": statistics.median(times), "repeats": len(times), "times_s": times}
    return out


def in_blocks(runners: dict, rounds: int, calls: int = 5, settle_s: float = 0.25, warmup: int = 1) -> dict:
    """Median seconds per runner in steady state: ``{name: {"median_s", "repeats", "times_s"}}``.

    :func:`interleaved` alternates runners call by call, so each call runs just after another runner's
    and inside what that one left behind: numpy's OpenBLAS keeps a worker thread spinning for about
    0.1 s after a multithreaded call (its ``OPENBLAS_THREAD_TIMEOUT``), and PyTorch run in its wake
    took twice its own time (docs/design.md, "Interleaved and steady timings"). Here each round gives
    every runner a block: the runner alone for ``settle_s`` seconds, untimed (the other libraries'
    workers go quiet, its own settle into its steady state), then ``calls`` timed calls. The runners
    take turns in orders that change from round to round (:func:`balanced_orders`), so that drifts of
    a shared machine still hit every runner alike.

    >>> calls = []
    >>> out = in_blocks({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, rounds=2,
    ...                 calls=3, settle_s=0.0)
    >>> out["a"]["repeats"], out["b"]["repeats"]
    (6, 6)
    """
    names, fns = list(runners), []
    for runner in runners.values():
        fn, sync = runner if isinstance(runner, tuple) else (runner, None)
        for _ in range(warmup):
            time_call(fn, sync)
        fns.append((fn, sync))
    times = {name: [] for name in names}
    orders = balanced_orders(len(names))
    gc.collect()
    for r in range(rounds):
        for i in orders[r % len(orders)] if orders else ():
            fn, sync = fns[i]
            start = time.perf_counter()
            while time.perf_counter() - start < settle_s:
                time_call(fn, sync)
            times[names[i]].extend(time_call(fn, sync) for _ in range(calls))
    return {name: {"median_s": statistics.median(t), "repeats": len(t), "times_s": t} for name, t in times.items()}


def peak_memory(build: Callable, sweep: Callable) -> dict:
    """Peak traced (tracemalloc) bytes of ``sweep(build())``: of the whole run, and above the graph.

    ``build()`` records the forward graph and returns what ``sweep`` needs; ``total`` is the peak
    from before the forward to the end of the sweep, ``sweep`` the peak during the sweep minus
    what the recorded graph already held (the sweep's own working memory, its result included).
    """
    sweep(build())  # warm-up: lazy imports and compiled kernels are loaded outside the measurement
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        graph = build()
        graph_bytes = tracemalloc.get_traced_memory()[0] - base
        before = tracemalloc.get_traced_memory()[0]
        total_peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.reset_peak()
        result = sweep(graph)
        sweep_peak = tracemalloc.get_traced_memory()[1] - before
        total_peak = max(total_peak, tracemalloc.get_traced_memory()[1] - base)
        del result, graph
    finally:
        tracemalloc.stop()
    return {"total_bytes": total_peak, "sweep_bytes": sweep_peak, "graph_bytes": graph_bytes}
