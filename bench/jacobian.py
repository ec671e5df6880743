"""When forward mode beats reverse: the Jacobian of a 10 -> 1,000 map, both ways.

    python -m bench.jacobian                      # SumProduct and MaxAbsProduct, 5 repeats
    python -m bench.jacobian --repeat 11 --inputs 10 --outputs 1000 --json out.json

The map: ``h = tanh(x @ W1)`` (``W1``: inputs x outputs), ``y = tanh(h @ W2) * h`` (``W2``:
outputs x outputs). ``sr.jacobian(..., mode="forward")`` runs one forward sweep with one seed per
input element (10 rows of tangents ride through every op); ``mode="reverse"`` one reverse sweep with
one seed per output element (1,000 rows). Runs are interleaved (forward, reverse, forward...) and
medians reported; both Jacobians are checked to agree.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np

import semirad as sr


def make(inputs: int, outputs: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    W1 = sr.tensor(rng.standard_normal((inputs, outputs)) / np.sqrt(inputs))
    W2 = sr.tensor(rng.standard_normal((outputs, outputs)) / np.sqrt(outputs))

    def fn(x):
        h = (x @ W1).tanh()
        return (h @ W2).tanh() * h

    return fn, rng.standard_normal(inputs)


def measure(inputs: int = 10, outputs: int = 1000, repeat: int = 5, semirings=None) -> dict:
    fn, x = make(inputs, outputs)
    semirings = semirings or [sr.semirings.SumProduct(), sr.semirings.MaxAbsProduct()]
    rows = {}
    for S in semirings:
        times = {"forward": [], "reverse": []}
        results = {}
        for _ in range(repeat):
            for mode in ("forward", "reverse"):
                start = time.perf_counter()
                results[mode] = sr.jacobian(fn, x, S, mode=mode)
                times[mode].append(time.perf_counter() - start)
        assert results["forward"].shape == (outputs, inputs)
        assert np.allclose(results["forward"], results["reverse"], rtol=1e-9, atol=1e-12)
        fwd, rev = statistics.median(times["forward"]), statistics.median(times["reverse"])
        rows[type(S).__name__] = {
            "forward_s": fwd,
            "reverse_s": rev,
            "reverse_over_forward": rev / fwd,
            "forward_min_s": min(times["forward"]),
            "reverse_min_s": min(times["reverse"]),
        }
    machine = platform.processor() or platform.machine()
    return {"inputs": inputs, "outputs": outputs, "repeat": repeat, "machine": machine, "numpy": np.__version__,
            "results": rows}  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=10)
    parser.add_argument("--outputs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    report = measure(args.inputs, args.outputs, args.repeat)
    print(f"Jacobian of a {args.inputs} -> {args.outputs} map (median of {args.repeat}, interleaved)")
    print(f"{'semiring':<16}{'forward (s)':>14}{'reverse (s)':>14}{'reverse/forward':>18}{'min fwd / rev (s)':>22}")
    for name, row in report["results"].items():
        fastest = f"{row['forward_min_s']:.4f} / {row['reverse_min_s']:.4f}"
        print(
            f"{name:<16}{row['forward_s']:>14.4f}{row['reverse_s']:>14.4f}{row['reverse_over_forward']:>18.1f}"
            f"{fastest:>22}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return report


if __name__ == "__main__":
    main()
