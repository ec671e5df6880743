"""Train a classifier on scikit-learn's bundled 8x8 digits with semirad, then trace the trained model.

    pip install scikit-learn          # optional example dependency (the data ships with it)
    python examples/digits_mlp.py                 # MLP 64-128-10, ~97% test accuracy
    python examples/digits_mlp.py --model cnn     # small CNN (Conv2d + MaxPool2d), ~97%

The model, loss and optimizer are written exactly as in PyTorch (``sr.nn``, ``sr.optim``). After
training, one MaxAbsProduct sweep (``sr.trace``) over a batch of test digits shows, for a few
parameters, the element whose strongest single path to the loss is largest, and that path.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import semirad as sr
import semirad.nn.functional as F
from semirad import nn


def load_data(seed: int = 0, test_fraction: float = 0.2):
    """Digits scaled to [0, 1], shuffled and split: ``(x_train, y_train, x_test, y_test)``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float64)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(test_fraction * len(x)))
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def build_model(kind: str = "mlp") -> nn.Module:
    if kind == "mlp":
        return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    if kind == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 8x8 -> 4x4
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 4x4 -> 2x2
            nn.Flatten(), nn.Linear(16 * 2 * 2, 10),
        )  # fmt: skip
    raise ValueError(f"unknown model {kind!r} (use 'mlp' or 'cnn')")


def _inputs(x, kind):
    return x if kind == "mlp" else x.reshape(-1, 1, 8, 8)


def accuracy(model, x, y, kind) -> float:
    model.eval()
    with sr.no_grad():
        logits = model(_inputs(x, kind)).numpy()
    model.train()
    return float((logits.argmax(axis=1) == y).mean())


def trace_report(model, x, y, kind, n_params: int = 3) -> str:
    """Trace the loss of a batch to the first, middle and last parameters; print their top paths."""
    loss = F.cross_entropy(model(_inputs(x, kind)), y)
    named = list(model.named_parameters())
    params = [p for _, p in named]
    tr = sr.trace(loss, params)
    grads = dict(zip([n for n, _ in named], sr.grad(loss, params), strict=True))
    picks = [named[0], named[len(named) // 2], named[-1]][:n_params]
    lines = [f"trace of the cross-entropy of {len(x)} test digits (loss {loss.item():.4f})"]
    for name, p in picks:
        values = np.asarray(tr[p])
        index = np.unravel_index(int(np.abs(values).argmax()), p.shape)
        where = ""
        if kind == "mlp" and name == "0.weight":
            where = f" (hidden unit {index[0]} <- pixel row {index[1] // 8}, column {index[1] % 8})"
        lines += [
            "",
            f"{name} {p.shape}: strongest element {tuple(int(i) for i in index)}{where}",
            f"  best single path {values[index]:+.4g}, gradient (sum over all paths) {grads[name][index]:+.4g}",
            "  " + str(tr.path(p, index)).replace("\n", "\n  "),
        ]
    return "\n".join(lines)


def main(steps: int = 800, model: str = "mlp", batch_size: int = 64, lr: float = 3e-3, seed: int = 0,
         log_every: int = 100, verbose: bool = True, trace: bool = True) -> dict:  # fmt: skip
    """Train for ``steps`` Adam steps; returns losses, test accuracy and timings."""
    say = print if verbose else (lambda *a, **k: None)
    start = time.perf_counter()
    sr.manual_seed(seed)
    x_train, y_train, x_test, y_test = load_data(seed)
    net = build_model(model)
    opt = sr.optim.Adam(net.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    say(f"digits: {len(x_train)} train / {len(x_test)} test, model:\n{net}")
    losses, order, pos = [], rng.permutation(len(x_train)), 0
    for step in range(1, steps + 1):
        if pos + batch_size > len(order):
            order, pos = rng.permutation(len(x_train)), 0
        batch = order[pos : pos + batch_size]
        pos += batch_size
        opt.zero_grad()
        loss = F.cross_entropy(net(_inputs(x_train[batch], model)), y_train[batch])
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if verbose and (step % log_every == 0 or step == 1):
            recent = np.mean(losses[-log_every:])
            say(f"step {step:5d}  loss {recent:.4f}  test accuracy {accuracy(net, x_test, y_test, model):.3f}")
    train_seconds = time.perf_counter() - start
    test_acc = accuracy(net, x_test, y_test, model)
    say(f"trained {steps} steps in {train_seconds:.1f} s: test accuracy {test_acc:.4f}")
    if trace:
        say("")
        say(trace_report(net, x_test[:16], y_test[:16], model))
    window = max(1, min(20, steps // 5))
    return {
        "losses": losses,
        "first_loss": float(np.mean(losses[:window])),
        "final_loss": float(np.mean(losses[-window:])),
        "test_accuracy": test_acc,
        "train_seconds": train_seconds,
        "seconds": time.perf_counter() - start,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: 800 mlp, 1500 cnn)")
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    steps = args.steps or (800 if args.model == "mlp" else 1500)
    lr = args.lr or (3e-3 if args.model == "mlp" else 1e-2)
    result = main(steps=steps, model=args.model, lr=lr, seed=args.seed)
    print(f"\ntotal {result['seconds']:.1f} s, test accuracy {result['test_accuracy']:.4f}")
