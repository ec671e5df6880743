"""A two-layer transformer encoder that learns "does the first token occur again?", then a trace.

    python examples/transformer.py            # ~99% accuracy on fresh sequences in about 15 s

Sequences of 8 tokens over a vocabulary of 8; the label says whether the first token occurs again
later (half of them do). The model is ``Embedding`` + learned positions -> ``nn.TransformerEncoder``
(2 layers of ``nn.TransformerEncoderLayer``, as in PyTorch) -> ``Linear`` on position 0, so the
answer has to be fetched by attention from the other positions.

After training, one MaxAbsProduct sweep (``sr.trace``) from the loss to the encoder's input (the
embeddings, an intermediate tensor) gives every embedding element its strongest single path, and
the path's steps name the components it passes: in the last layer it goes through the queries
(``layers/1/self_attn/query``), the keys, the values, or around the attention on the residual
stream (none of them).
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import numpy as np

import semirad as sr
import semirad.nn.functional as F
from semirad import nn

BRANCHES = ("query", "key", "value")


def make_dataset(rng, n: int, length: int = 8, vocab: int = 8):
    """``n`` token sequences ``(n, length)`` and labels (1 = the first token occurs again)."""
    y = rng.integers(0, 2, size=n)
    x = np.empty((n, length), dtype=np.int64)
    for k in range(n):
        first = rng.integers(vocab)
        others = rng.choice(np.setdiff1d(np.arange(vocab), [first]), size=length - 1)
        if y[k]:
            others[rng.integers(length - 1)] = first
        x[k] = np.concatenate([[first], others])
    return x, y


class RepeatClassifier(nn.Module):
    def __init__(self, vocab: int = 8, length: int = 8, d_model: int = 16, nhead: int = 2, layers: int = 2):
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        self.position = nn.Embedding(length, d_model)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward=32, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers)
        self.head = nn.Linear(d_model, 2)

    def embeddings(self, tokens):
        return self.embed(tokens) + self.position(np.arange(tokens.shape[1]))

    def forward(self, tokens, embedded=None):
        h = self.embeddings(tokens) if embedded is None else embedded
        return self.head(self.encoder(h)[:, 0])


def accuracy(model, x, y) -> float:
    with sr.no_grad():
        return float((model(x).numpy().argmax(axis=1) == y).mean())


def branch_shares(model, x, y) -> tuple[dict, str]:
    """The share of the embeddings' best paths that pass the last layer's queries, keys, values, or
    none of them (the residual stream), and one path as text."""
    h = model.embeddings(x)
    loss = F.cross_entropy(model(x, embedded=h), y)
    tr = sr.trace(loss, [h])
    last = f"encoder/layers/{model.encoder.num_layers - 1}/self_attn/"
    counts = Counter()
    for index in np.ndindex(*h.shape):
        components = {step.component for step in tr.path(h, index).steps}
        hit = [b for b in BRANCHES if last + b in components]
        counts[hit[0] if hit else "residual"] += 1
    total = sum(counts.values())
    shares = {name: counts[name] / total for name in (*BRANCHES, "residual")}
    index = np.unravel_index(int(np.abs(tr[h]).argmax()), h.shape)
    return shares, str(tr.path(h, index))


def main(steps: int = 200, batch_size: int = 64, lr: float = 1e-2, seed: int = 0, verbose: bool = True,
         n_test: int = 1000) -> dict:  # fmt: skip
    """Train for ``steps`` Adam steps on fresh batches; returns losses, test accuracy and the shares."""
    say = print if verbose else (lambda *a, **k: None)
    start = time.perf_counter()
    sr.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x_test, y_test = make_dataset(np.random.default_rng(seed + 1000), n_test)
    model = RepeatClassifier()
    opt = sr.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for step in range(1, steps + 1):
        x, y = make_dataset(rng, batch_size)
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if verbose and step % 100 == 0:
            say(f"step {step:4d}  loss {np.mean(losses[-100:]):.4f}  test accuracy "
                f"{accuracy(model, x_test[:300], y_test[:300]):.3f}")  # fmt: skip
    test_acc = accuracy(model, x_test, y_test)
    say(f"trained {steps} steps in {time.perf_counter() - start:.1f} s: accuracy {test_acc:.3f} on {n_test} "
        "fresh sequences")  # fmt: skip
    shares, path = branch_shares(model, x_test[:4], y_test[:4])
    say("best paths from the embeddings, in the last layer: "
        + ", ".join(f"{name} {share:.0%}" for name, share in shares.items()))  # fmt: skip
    say(f"the strongest one:\n{path}")
    window = max(1, min(50, steps // 5))
    return {
        "losses": losses,
        "first_loss": float(np.mean(losses[:window])),
        "final_loss": float(np.mean(losses[-window:])),
        "test_accuracy": test_acc,
        "shares": shares,
        "seconds": time.perf_counter() - start,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(steps=args.steps, seed=args.seed)
