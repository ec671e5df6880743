"""``python -m bench.trace_threads [repeats]``: the dense net's trace with semirad's kernels on 1 thread,
on 2 threads, and on the default policy (``"auto"``: the cores no other runnable thread wants),
against backprop at default threads, all interleaved in one process (:func:`bench.harness.interleaved`,
medians; the C allocator kept, as in ``bench.targets``). Shows whether the parallel kernel gains from
a second core on this machine, which the trace / backprop target of issue 20 depends on.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from . import harness


def rows(dtype, repeats: int) -> dict:
    from semirad import kernels

    from .targets import dense_net, semirad_backprop, semirad_trace

    model, x = dense_net(dtype)
    trace = semirad_trace(model, x)

    def on(threads):
        def run():
            kernels.set_num_threads(threads)
            try:
                return trace()
            finally:
                kernels.set_num_threads("auto")

        return run

    runners = {"backprop": semirad_backprop(model, x), "trace auto": trace, "trace 2 threads": on(2),
               "trace 1 thread": on(1)}  # fmt: skip
    return {k: v["median_s"] for k, v in harness.interleaved(runners, repeats=repeats).items() if "median_s" in v}


def main(argv=None) -> None:
    import semirad.kernels

    argv = sys.argv[1:] if argv is None else argv
    repeats = int(argv[0]) if argv else 15
    semirad.kernels.load()
    harness.set_allocator("keep")
    m = harness.machine()
    print(f"{m['cpu']}, {m['cores']} cores, load {os.getloadavg()[0]:.1f}")
    for dtype in (np.float32, np.float64):
        r = rows(dtype, repeats)
        cells = ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in r.items())
        ratios = ", ".join(f"{k} {v / r['backprop']:.2f}" for k, v in r.items() if k != "backprop")
        print(f"{np.dtype(dtype).name}: {cells}\n  trace / backprop: {ratios}")


if __name__ == "__main__":
    main()
