"""``python -m bench.fused_threshold``: the numba elementwise kernels of :mod:`semirad.fast` against
the numpy expressions they replace, around ``fast._FUSED_MIN_ELEMENTS`` (docs/design.md,
"Thresholds"): the bias add ``a + v`` (``fast.add``), tanh's partial ``1 - y * y``
(``fast.one_minus_square``) and the sigmoid's ``y * (1 - y)`` (``fast.times_one_minus``), float64,
timeit minima in µs. Both columns call the ``fast`` function, with the threshold set to 1 (the
kernel at every size) and to ``2**62`` (numpy at every size): the choice the threshold makes, with
the checks of the real path on both sides.
"""

from __future__ import annotations

import timeit

import numpy as np

SHAPES = [(16, 128), (16, 256), (32, 256), (16, 1024), (64, 256), (128, 256), (128, 512), (512, 512)]


def best_us(fn, elements: int) -> float:
    number = max(20, 200_000 // elements)
    return min(timeit.repeat(fn, number=number, repeat=7)) / number * 1e6


def main() -> None:
    from semirad import fast, kernels

    from . import harness

    kernels.wait()
    rng = np.random.default_rng(0)
    info = harness.machine()
    threshold = fast._FUSED_MIN_ELEMENTS
    print(f"# {info['cpu']}, numpy {info['numpy']}, numba {info['numba']}; threshold {threshold}")
    print("| elements (rows x n) | add: kernel | numpy | 1 - y*y: kernel | numpy | y*(1-y): kernel | numpy |")
    print("|---|---|---|---|---|---|---|")
    for rows, n in SHAPES:
        a, v = rng.standard_normal((rows, n)), rng.standard_normal(n)

        size = rows * n
        cells = []
        try:
            for fn in (lambda: fast.add(np, a, v), lambda: fast.one_minus_square(np, a),
                       lambda: fast.times_one_minus(np, a)):  # fmt: skip
                for setting in (1, 1 << 62):
                    fast._FUSED_MIN_ELEMENTS = setting
                    cells.append(best_us(fn, size))
        finally:
            fast._FUSED_MIN_ELEMENTS = threshold
        print(f"| {size} ({rows} x {n}) | " + " | ".join(f"{c:.2f}" for c in cells) + " |")

if __name__ == "__main__":
    main()
