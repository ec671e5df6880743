"""``python -m bench.stack_matmul [rounds]``: a stack of matrices times one matrix, as
``semirad.fast.matmul`` runs it (the stack's rows folded into one product, as PyTorch's ``matmul``)
against numpy's ``@`` (one BLAS call per matrix of the stack).

Two levels, each in one process with its runners in blocks (:func:`bench.harness.in_blocks`,
steady state, medians):

* the products alone: an LSTM's input projection over 200 steps and its backward, and the
  projections of a transformer encoder layer (batch 8, 128 tokens, width 256, feed-forward 1024),
  float64 and float32;
* whole models, with ``semirad.fast._folded`` switched back to ``a @ b``: the LSTM of
  bench/targets.py (L = 200, forward + ``sr.grad``) and a ``TransformerEncoderLayer`` (forward +
  ``sr.grad`` and forward + ``sr.trace``), float64.

Prints milliseconds and the ratios folded / numpy's ``@``.
"""

from __future__ import annotations

import sys

import numpy as np

from . import harness

#: (name, stack shape, matrix shape): the matrix is a transposed weight where the model's is
PRODUCTS = [
    ("LSTM input projection x @ W_ih.T", (200, 16, 32), (256, 32), True),
    ("its backward g @ W_ih", (200, 16, 256), (256, 32), False),
    ("transformer in_proj x @ W.T", (8, 128, 256), (768, 256), True),
    ("transformer linear1 x @ W.T", (8, 128, 256), (1024, 256), True),
    ("transformer linear2 x @ W.T", (8, 128, 1024), (256, 1024), True),
]


def product_rows(rounds: int) -> list:
    from semirad import fast

    rng = np.random.default_rng(0)
    rows = []
    for dtype in (np.float64, np.float32):
        for name, stack, matrix, transposed in PRODUCTS:
            a = rng.standard_normal(stack).astype(dtype)
            w = rng.standard_normal(matrix).astype(dtype)
            b = w.T if transposed else w
            assert np.allclose(fast.matmul(a, b), a @ b, rtol=1e-4 if dtype == np.float32 else 1e-10, atol=1e-3)
            t = harness.in_blocks({"folded": lambda a=a, b=b: fast.matmul(a, b), "numpy @": lambda a=a, b=b: a @ b},
                                  rounds=rounds, calls=5, settle_s=0.1)  # fmt: skip
            rows.append((f"{name} {stack} @ {b.shape}, {np.dtype(dtype).name}", t))
    return rows


def model_rows(rounds: int) -> list:
    import semirad as sr
    from semirad import fast

    from .targets import load_kernels, loss_of, lstm

    load_kernels()
    folded = fast._folded

    def unfolded(a, b):
        return a @ b

    def switched(run, fold: bool):
        def call():
            fast._folded = folded if fold else unfolded
            try:
                return run()
            finally:
                fast._folded = folded

        return call

    rows = []
    model, x = lstm(200)
    xs, params = sr.tensor(x), list(model.parameters())

    def lstm_grad():
        return sr.grad(loss_of(model, xs), params)

    t = harness.in_blocks({"folded": switched(lstm_grad, True), "numpy @": switched(lstm_grad, False)},
                          rounds=rounds, calls=3)  # fmt: skip
    rows.append(("LSTM (N 16, H 64, input 32) L = 200, forward + sr.grad, float64", t))

    sr.manual_seed(0)
    layer = sr.nn.TransformerEncoderLayer(d_model=256, nhead=4, dim_feedforward=1024, dropout=0.0, batch_first=True)
    tokens = sr.tensor(np.random.default_rng(1).standard_normal((8, 128, 256)))
    params = list(layer.parameters())

    def loss():
        y = layer(tokens)
        return (y * y).mean()

    for what, sweep in (("sr.grad", sr.grad), ("sr.trace", sr.trace)):
        def run(sweep=sweep):
            return sweep(loss(), params)

        t = harness.in_blocks({"folded": switched(run, True), "numpy @": switched(run, False)}, rounds=rounds, calls=3)
        rows.append((f"TransformerEncoderLayer (8 x 128 x 256, 4 heads, ff 1024), forward + {what}, float64", t))
    return rows


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    rounds = int(argv[0]) if argv else 6
    harness.set_allocator("keep")
    info = harness.machine()
    print(f"# {info['cpu']}, {info['cores']} cores, numpy {info['numpy']}, git {info.get('git')}")
    print("| case | folded (ms) | numpy @ (ms) | folded / @ |")
    print("|---|---|---|---|")
    for name, t in product_rows(rounds) + model_rows(rounds):
        f, n = t["folded"]["median_s"] * 1e3, t["numpy @"]["median_s"] * 1e3
        print(f"| {name} | {f:.3g} | {n:.3g} | {f / n:.2f} |")


if __name__ == "__main__":
    main()
