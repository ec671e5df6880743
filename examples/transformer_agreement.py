"""Subject-verb agreement with a transformer encoder, then: which branch do the best paths take?

    python examples/transformer_agreement.py                 # ~100% held-out accuracy, then the shares table
    python examples/transformer_agreement.py --out agreement # also shares.png and path.png (matplotlib)

The sentences are generated (``semirad.analysis.demo.agreement``): ``the old dog near the cats
behind the key [VERB] the birds .`` The model must give the masked verb the number of its subject
(the first noun), across one to three nouns in between, at least one of them of the other number
(an *attractor*). Model: token + position embeddings -> ``nn.TransformerEncoder`` of two
``nn.TransformerEncoderLayer`` -> ``Linear`` at the ``[VERB]`` position.

After training, every held-out sentence is traced alone from its **embeddings** ``h`` (the
encoder's input, an intermediate tensor) to its loss, and ``sr.analysis.path_shares`` counts, in
one pass, which share of the best paths from ``h`` goes in each layer through the query, the key,
the value, or around the attention on the residual stream (input 0 of the layer's
``residual_attn`` add); the same for the 4 best paths (``KBest(4)``) and, with
``backprop_path_shares``, for all paths weighted by ``|product|``. Printed as mean ± std over
the sentences. ``semirad demo`` runs the same study with a full report.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import semirad as sr
from semirad.analysis import backprop_path_shares, edge, path_shares
from semirad.analysis.demo.agreement import (
    AgreementTransformer,
    agreement_accuracy,
    agreement_batch,
    agreement_loss,
)

BRANCHES = ("query", "key", "value", "residual")


def branches(layers: int) -> dict:
    """``{"<layer>/<branch>": selector}``: the components of the attention's three inputs, and the
    residual stream's edge into the layer's ``residual_attn`` add."""
    through = {}
    for layer in range(layers):
        base = f"encoder/layers/{layer}"
        for name in ("query", "key", "value"):
            through[f"{layer}/{name}"] = f"{base}/self_attn/{name}"
        through[f"{layer}/residual"] = edge(component=f"{base}/residual_attn", op="add", input=0)
    return through


def train(model, steps: int, batch: int, lr: float, seed: int, say) -> list:
    rng = np.random.default_rng(seed)
    opt = sr.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for step in range(1, steps + 1):
        data = agreement_batch(rng, batch)
        opt.zero_grad()
        loss = agreement_loss(model, data)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step % 50 == 0:
            say(f"step {step:4d}  loss {np.mean(losses[-50:]):.4f}")
    return losses


def shares_over(model, held, through: dict, k: int = 4) -> dict:
    """``{method: {label: [share per sentence]}}`` for the trace, KBest(k) and backprop."""
    out = {"trace": {}, f"KBest({k})": {}, "backprop": {}}
    for i in range(len(held)):
        one = held.take(i)
        h = model.embeddings(one.tokens)  # the source: an intermediate tensor of the graph
        loss = agreement_loss(model, one, embedded=h)
        results = {
            "trace": path_shares(sr.trace(loss, [h]), [h], through),
            f"KBest({k})": path_shares(sr.backward(loss, [h], semiring=sr.semirings.KBest(k)), [h], through),
            "backprop": backprop_path_shares(loss, [h], through),
        }
        for method, result in results.items():
            for label, share in result.shares.items():
                out[method].setdefault(label, []).append(share)
    return out


def main(steps: int = 200, batch: int = 64, lr: float = 3e-3, seed: int = 0, d_model: int = 32, layers: int = 2,
         n_held: int = 32, n_test: int = 1000, out: str | None = None, verbose: bool = True) -> dict:  # fmt: skip
    say = print if verbose else (lambda *a, **k: None)
    start = time.perf_counter()
    sr.manual_seed(seed)
    model = AgreementTransformer(d_model=d_model, nhead=2, layers=layers, dim_feedforward=2 * d_model)
    losses = train(model, steps, batch, lr, seed, say)
    accuracy = agreement_accuracy(model, agreement_batch(np.random.default_rng(seed + 2), n_test))
    say(
        f"trained {steps} steps in {time.perf_counter() - start:.1f} s: accuracy {accuracy:.1%} "
        f"on {n_test} fresh sentences"
    )

    held = agreement_batch(np.random.default_rng(seed + 3), n_held)
    per_sentence = shares_over(model, held, branches(layers))
    mean = {m: {label: float(np.mean(v)) for label, v in rows.items()} for m, rows in per_sentence.items()}
    std = {m: {label: float(np.std(v)) for label, v in rows.items()} for m, rows in per_sentence.items()}
    say(f"\nshare of paths from the embeddings through each branch (mean ± std over {n_held} sentences)")
    say(f"{'layer':<6}{'branch':<10}" + "".join(f"{m:>18}" for m in mean))
    for layer in range(layers):
        for b in BRANCHES:
            label = f"{layer}/{b}"
            cells = "".join(f"{f'{100 * mean[m][label]:.1f} ± {100 * std[m][label]:.1f} %':>18}" for m in mean)
            say(f"{layer:<6}{b:<10}{cells}")

    if out is not None:
        from semirad.analysis.plots import path_figure, shares_figure

        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)

        def layered(table):
            return {m: {f"layer {la}": {b: v[f"{la}/{b}"] for b in BRANCHES} for la in range(layers)}
                    for m, v in table.items()}  # fmt: skip

        by_layer, errors = layered(mean), layered(std)
        shares_figure(by_layer, folder / "shares.png", errors=errors, title="share of best paths from the embeddings")
        one = held.take(0)
        h = model.embeddings(one.tokens)
        tr = sr.trace(agreement_loss(model, one, embedded=h), [h])
        position = int(one.subject[0])
        index = (0, position, int(np.abs(tr[h][0, position]).argmax()))
        path_figure(tr.path(h, index), folder / "path.png", title=f"best path from the subject in: {held.text(0)}")
        say(f"figures: {folder / 'shares.png'}, {folder / 'path.png'}")
    return {"losses": losses, "accuracy": accuracy, "mean": mean, "std": std, "seconds": time.perf_counter() - start}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--held-out", type=int, default=32, help="sentences traced for the shares")
    parser.add_argument("--out", default=None, help="a folder for shares.png and path.png")
    args = parser.parse_args()
    main(steps=args.steps, seed=args.seed, n_held=args.held_out, out=args.out)
