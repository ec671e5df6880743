"""What checkpointing costs in ``sr.analysis.over_dataset``: the same run with and without ``path=``.

    python -m bench.checkpoint                    # 2,000 samples, 5 repeats
    python -m bench.checkpoint --samples 500 --repeats 1 --out /tmp/checkpoint.md

A tiny model (``nn.Linear(4, 2)``, a squared-error loss) keeps the tracing itself cheap, so what is
measured is mostly the per-sample bookkeeping, where a checkpoint that rewrote the whole file would
show as a cost growing with the number of samples done. Every repeat runs both columns one after
the other in this process (the checkpointed one into a fresh file in a temporary directory); the
table gives the median of each, their ratio, the file's size and the bytes per row, and writes it
to ``bench/results/checkpoint.md`` (``--out``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import semirad as sr
from semirad import nn
from semirad.analysis import over_dataset

RESULTS = Path(__file__).resolve().parent / "results" / "checkpoint.md"
#: measured once with this script (``--samples 2000 --repeats 1``) on the code before the append-only
#: format (commit e609c2f)
BEFORE = (
    "1.58 s without `path=` and 39.33 s with it (ratio 24.8, 19.7 ms per sample and growing with the file), "
    "2,000 samples, `--repeats 1`, commit e609c2f, AMD EPYC (family 25, model 1), 2 cores"
)


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (with its family and model numbers, which tell the
    generation of a bare "AMD EPYC"), else ``platform.processor()``, else ``"unknown"``.

    >>> isinstance(cpu_model(), str) and len(cpu_model()) > 0
    True
    """
    fields: dict = {}
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if not line.strip():  # the first processor is enough
                    break
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    if "model name" not in fields:
        return platform.processor() or "unknown"
    numbers = f" (family {fields['cpu family']}, model {fields['model']})" if "cpu family" in fields else ""
    return fields["model name"] + numbers


def tiny_problem(samples: int, seed: int = 0):
    """A ``Linear(4, 2)`` model, ``samples`` batches of one ``(x, target)`` pair and its loss function.

    >>> model, batches, loss_of = tiny_problem(3)
    >>> len(batches), loss_of(batches[0]).shape
    (3, ())
    """
    sr.manual_seed(seed)
    model = nn.Linear(4, 2)
    rng = np.random.default_rng(seed)
    batches = [(rng.standard_normal((1, 4)), rng.standard_normal((1, 2))) for _ in range(samples)]

    def loss_of(batch):
        x, target = batch
        error = model(x) - target
        return (error * error).sum()

    return model, batches, loss_of


def time_both(samples: int, directory: Path, path_first: bool = False) -> dict:
    """Seconds of one ``over_dataset`` run without and one with ``path=`` (a new file in ``directory``).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     figures = time_both(5, Path(d))
    >>> figures["rows_in_file"], figures["same_result"]
    (5, True)
    """
    model, batches, loss_of = tiny_problem(samples)
    path = directory / f"checkpoint-{time.monotonic_ns()}.jsonl"

    def timed(**path_or_none) -> tuple:
        start = time.perf_counter()
        result = over_dataset(loss_of, batches, model, progress=False, **path_or_none)
        return time.perf_counter() - start, result

    if path_first:
        path_s, checkpointed = timed(path=path)
        plain_s, plain = timed()
    else:
        plain_s, plain = timed()
        path_s, checkpointed = timed(path=path)
    size = path.stat().st_size
    rows_in_file = sum(1 for line in path.read_text().splitlines() if line.startswith('{"index"'))
    path.unlink()
    return {
        "plain_s": plain_s,
        "path_s": path_s,
        "file_bytes": size,
        "rows_in_file": rows_in_file,
        "same_result": plain.rows == checkpointed.rows,
    }


def run(samples: int, repeats: int) -> dict:
    """Repeats of :func:`time_both` (after a warm-up; which column runs first alternates); medians,
    their ratio and the machine.

    >>> figures = run(4, 1)
    >>> figures["samples"], figures["ratio"] > 0
    (4, True)
    """
    with tempfile.TemporaryDirectory(prefix="semirad-checkpoint-") as directory:
        time_both(min(samples, 200), Path(directory))  # warm-up: imports, caches, first allocations
        times = [time_both(samples, Path(directory), path_first=r % 2 == 1) for r in range(repeats)]
    plain_s = statistics.median(t["plain_s"] for t in times)
    path_s = statistics.median(t["path_s"] for t in times)
    return {
        "samples": samples,
        "repeats": repeats,
        "plain_s": plain_s,
        "path_s": path_s,
        "ratio": path_s / plain_s,
        "overhead_ms_per_sample": 1000 * (path_s - plain_s) / max(samples, 1),
        "file_bytes": times[-1]["file_bytes"],
        "bytes_per_row": times[-1]["file_bytes"] / max(samples, 1),
        "same_result": all(t["same_result"] for t in times),
        "all_times": [(t["plain_s"], t["path_s"]) for t in times],
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


def report(figures: dict) -> str:
    """The markdown report of :func:`run`'s figures.

    >>> text = report(run(3, 1))
    >>> "| with `path=` |" in text
    True
    """
    samples = figures["samples"]
    repeats = ", ".join(f"{a:.2f} / {b:.2f}" for a, b in figures["all_times"])
    return "\n".join(
        [
            "# Checkpoint cost of `sr.analysis.over_dataset`",
            "",
            f"`python -m bench.checkpoint --samples {samples} --repeats {figures['repeats']}`: "
            f"{samples:,} samples of `nn.Linear(4, 2)` with a squared-error loss, `progress=False`, the two "
            "columns one after the other in one process (median of the repeats, after a warm-up; which runs "
            "first alternates).",
            "",
            "| run | seconds | per sample |",
            "|---|---:|---:|",
            f"| without `path=` | {figures['plain_s']:.2f} | {1000 * figures['plain_s'] / samples:.2f} ms |",
            f"| with `path=` | {figures['path_s']:.2f} | {1000 * figures['path_s'] / samples:.2f} ms |",
            "",
            f"* ratio with / without: **{figures['ratio']:.2f}** "
            f"(checkpointing adds {figures['overhead_ms_per_sample']:.3f} ms per sample)",
            f"* file: {figures['file_bytes']:,} bytes, {figures['bytes_per_row']:.0f} bytes per row; "
            f"same rows with and without the file: {figures['same_result']}",
            f"* every repeat (without / with, s): {repeats}",
            f"* for reference, before this format (`/1`: the whole file re-sorted and rewritten, indented, after "
            f"every sample): {BEFORE}",
            f"* machine: {figures['cpu']}, {figures['cores']} cores; Python {figures['python']}, "
            f"numpy {figures['numpy']}; {figures['platform']}",
            "",
        ]
    )


def main(argv: list | None = None) -> int:
    """Run, print and write the report (``--out``; ``--out -`` prints only).

    >>> main(["--samples", "3", "--repeats", "1", "--out", "-"])  # doctest: +ELLIPSIS
    # Checkpoint cost of `sr.analysis.over_dataset`
    ...
    0
    """
    parser = argparse.ArgumentParser(
        prog="python -m bench.checkpoint", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--samples", type=int, default=2000, help="samples per run (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats (default: %(default)s)")
    parser.add_argument("--out", default=str(RESULTS), help="markdown file to write, - for none (default: %(default)s)")
    args = parser.parse_args(argv)
    text = report(run(args.samples, args.repeats))
    print(text)
    if args.out != "-":
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
