"""``python -m semirad`` / ``semirad``: the built-in demos.

* ``semirad demo`` — train a small transformer encoder on subject-verb agreement, then report per
  layer which share of the best paths from its embeddings runs through the queries, keys, values
  and the residual stream (trace, KBest, backprop) and write a report (``--out DIR``);
  ``semirad demo --model lstm`` — the LSTM language model study; see ``semirad demo --help``.
* ``semirad`` or ``semirad mlp`` — backprop vs gradient tracing on a small MLP, and one best path.
"""

from __future__ import annotations

import argparse

import numpy as np

import semirad as sr


def mlp_demo(seed: int = 0, batch: int = 16, hidden: int = 8) -> str:
    """Build a small tanh MLP, run backprop and the trace on the same graph, return the report.

    >>> "best path" in mlp_demo(batch=4, hidden=3)
    True
    """
    rng = np.random.default_rng(seed)
    x = sr.tensor(rng.standard_normal((batch, 4)), name="x")
    target = sr.tensor(rng.standard_normal((batch, 2)), name="target")
    W1 = sr.tensor(rng.standard_normal((4, hidden)) / 2, requires_grad=True, name="W1")
    b1 = sr.tensor(np.zeros(hidden), requires_grad=True, name="b1")
    W2 = sr.tensor(rng.standard_normal((hidden, 2)) / np.sqrt(hidden), requires_grad=True, name="W2")
    b2 = sr.tensor(np.zeros(2), requires_grad=True, name="b2")
    h = (x @ W1 + b1).tanh()
    h.name = "h"
    loss = ((h @ W2 + b2 - target) ** 2).mean()
    params = [W1, b1, W2, b2]

    grads = sr.grad(loss, params)
    trace = sr.trace(loss, params)
    lines = [f"small MLP 4 -> {hidden} -> 2, batch {batch}, loss {loss.item():.4f}", ""]
    lines.append(f"{'param':<6}{'shape':>10}{'|grad| max':>14}{'|trace| max':>14}{'best path / grad (median)':>28}")
    for p, g in zip(params, grads):
        t = trace[p]
        ratio = np.abs(t) / np.maximum(np.abs(g), 1e-300)
        lines.append(
            f"{p.name:<6}{str(p.shape):>10}{np.abs(g).max():>14.4g}{np.abs(t).max():>14.4g}{np.median(ratio):>28.3g}"
        )
    flat = int(np.abs(trace[W1]).argmax())
    index = np.unravel_index(flat, W1.shape)
    lines += [
        "",
        f"best path from W1{list(map(int, index))} (the strongest element of W1):",
        str(trace.path(W1, index)),
    ]
    return "\n".join(lines)


def main(argv=None) -> None:
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "demo":
        from .analysis.demo.cli import main as demo_main

        demo_main(argv[1:])
        return
    parser = argparse.ArgumentParser(
        prog="semirad", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="mlp",
        choices=["mlp", "demo"],
        help="mlp (default): backprop vs trace on a small MLP; demo: the transformer study (see demo --help)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=8)
    args = parser.parse_args(argv)
    if args.command == "demo":
        parser.error("put 'demo' first: semirad demo [flags] (see semirad demo --help)")
    print(mlp_demo(seed=args.seed, batch=args.batch, hidden=args.hidden))


if __name__ == "__main__":
    main()
