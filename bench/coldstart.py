"""Cold start: ``import semirad``, the first trace and the first backprop of a new process.

Each figure is the median over fresh Python processes (``--runs``, 5 by default) of one measurement
taken inside the process with ``time.perf_counter``; numba's on-disk cache is filled by a process
run first and not counted. Columns: the default (kernels loaded in a background thread), the kernels
loaded before the first call (``eager``: ``semirad.kernels.load()`` right after the import), and
``SEMIRAD_KERNELS=numpy``; ``--baseline DIR`` adds the default of another source tree (an export
of an older commit: ``git archive HEAD semirad | tar -x -C DIR``). Rows: ``import semirad``
(numpy excluded, it is imported first), the eager column's wait for the kernels, the whole
process of ``import semirad`` (start to exit), the first ``sr.trace`` and the first ``backward``
(forward included) of a small MLP (20-50-10, batch 8, float64) and of a dense net (4 x 512,
batch 128, float64).

    python -m bench.coldstart [--runs 5] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: run in a fresh process: prints one JSON object of seconds
_PROGRAM = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
t1 = time.perf_counter()
import semirad as sr
t2 = time.perf_counter()
if {eager}:
    sr.kernels.load()
t3 = time.perf_counter()
rng = np.random.default_rng(0)
widths, batch = {widths}, {batch}
layers = []
for a, b in zip(widths[:-1], widths[1:]):
    layers += [sr.nn.Linear(a, b), sr.nn.Tanh()]
model = sr.nn.Sequential(*layers[:-1])
params = list(model.parameters())
x = sr.tensor(rng.standard_normal((batch, widths[0])))
t4 = time.perf_counter()
loss = (model(x) ** 2).mean()
if "{what}" == "trace":
    sr.trace(loss, params)
else:
    loss.backward()
t5 = time.perf_counter()
print(json.dumps({{"import": t2 - t1, "wait": t3 - t2, "first": t5 - t4, "numba": "numba" in sys.modules}}))
"""

_NETS = {"small MLP 20-50-10, batch 8": ([20, 50, 10], 8), "dense 4 x 512, batch 128": ([512] * 5, 128)}
_COLUMNS = {"background (default)": {}, "eager": {"eager": True}, "SEMIRAD_KERNELS=numpy": {"env": "numpy"}}


def _environ(env: str | None, tree: str) -> dict:
    environ = dict(os.environ, PYTHONPATH=tree + os.pathsep + os.environ.get("PYTHONPATH", ""))
    environ.pop("SEMIRAD_KERNELS", None)
    if env is not None:
        environ["SEMIRAD_KERNELS"] = env
    return environ


def _run(what: str, widths: list, batch: int, eager: bool = False, env: str | None = None, tree: str = ROOT) -> dict:
    code = _PROGRAM.format(eager=eager, widths=widths, batch=batch, what=what)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_environ(env, tree),
                         cwd=tree, check=True)  # (cwd: ``python -c`` puts it first on sys.path)
    return json.loads(out.stdout)


def _process(env: str | None = None, tree: str = ROOT) -> float:
    """Wall time of a whole ``python -c "import semirad"`` process, start to exit."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import semirad"], env=_environ(env, tree), cwd=tree, check=True)
    return time.perf_counter() - t0


def measure(runs: int = 5, baseline: str | None = None) -> dict:
    """``{row: {column: median seconds}}`` over ``runs`` fresh processes per cell, interleaved; with
    ``baseline`` (another source tree) a column of its default.

    >>> sorted(measure(runs=1))[0]  # doctest: +SKIP
    'first backprop, dense 4 x 512, batch 128'
    """
    columns = dict(_COLUMNS)
    if baseline:
        columns[f"baseline {baseline}"] = {"tree": os.path.abspath(baseline)}
    for options in columns.values():  # fills numba's cache
        _run("trace", *_NETS["dense 4 x 512, batch 128"], **{k: v for k, v in options.items() if k != "env"})
    samples: dict = {}

    def add(row: str, column: str, seconds: float) -> None:
        samples.setdefault(row, {}).setdefault(column, []).append(seconds)

    for _ in range(runs):  # round by round: a drift of the machine hits every cell alike
        for column, options in columns.items():
            for net, (widths, batch) in _NETS.items():
                for what in ("trace", "backprop"):
                    got = _run(what, widths, batch, **options)
                    if net.startswith("small") and what == "trace":
                        add("import semirad", column, got["import"])
                        if options.get("eager"):
                            add("kernels.load() after the import", column, got["wait"])
                    add(f"first {what}, {net}", column, got["first"])
            if not options.get("eager"):
                add("process: import semirad, exit", column, _process(options.get("env"), options.get("tree", ROOT)))
    return {row: {col: statistics.median(v) for col, v in cells.items()} for row, cells in samples.items()}


def table(results: dict) -> str:
    """A markdown table of :func:`measure`'s results, in milliseconds.

    >>> print(table({"import semirad": {"eager": 0.1234}}))
    | | eager |
    |---|---|
    | import semirad | 123 |
    """
    columns = list(dict.fromkeys(c for cells in results.values() for c in cells))
    lines = ["| | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for row, cells in results.items():
        values = [f"{cells[c] * 1e3:.0f}" if c in cells else "" for c in columns]
        lines.append(f"| {row} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def main(argv: list | None = None) -> None:
    """Measure and print the table (milliseconds, medians of fresh processes)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per cell (median)")
    parser.add_argument("--baseline", help="another source tree (e.g. an export of an older commit): a column")
    args = parser.parse_args(argv)
    print(f"milliseconds, median of {args.runs} fresh processes; load average {os.getloadavg()}")
    print(table(measure(args.runs, args.baseline)))


if __name__ == "__main__":
    main()
