"""Component importance costs no more than the trace it reads.

    python bench/analysis_importance.py                 # LSTM language model, ~1.04M parameter elements
    python bench/analysis_importance.py --model mlp     # 3-layer MLP, ~1.6M parameter elements

Builds a model with at least 10^6 parameter elements, records one loss, then times (best of
``--repeat``):

* ``trace``: ``sr.trace(loss, params)``, the MaxAbsProduct sweep with backpointers;
* ``importance``: ``sr.analysis.component_importance(trace, model)``, the one-pass count of every
  component's edges over the best paths of *all* parameter elements;

and prints their ratio (importance / trace; the claim is <= 1). ``--backprop`` also times
``backprop_importance`` (a multi-channel SumAbs sweep, for reference). ``--json FILE`` writes the
numbers.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

import semirad as sr
import semirad.nn.functional as F
from semirad import nn


class LanguageModel(nn.Module):
    def __init__(self, vocab: int, embed: int, hidden: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, tokens):
        out, _ = self.lstm(self.embed(tokens))
        return self.head(out)


def build(kind: str, seed: int):
    sr.manual_seed(seed)
    rng = np.random.default_rng(seed)
    if kind == "lstm":
        vocab, embed, hidden, batch, length = 1000, 256, 256, 4, 16
        model = LanguageModel(vocab, embed, hidden)
        tokens = rng.integers(0, vocab, (batch, length + 1))

        def loss_fn():
            logits = model(tokens[:, :-1])
            with sr.component("loss"):
                return F.cross_entropy(logits.reshape(-1, vocab), tokens[:, 1:].reshape(-1))

        shape = (
            f"Embedding({vocab}, {embed}) -> LSTM({embed}, {hidden}) -> Linear({hidden}, {vocab}); "
            f"batch {batch} x {length} tokens"
        )
    elif kind == "mlp":
        width, batch = 1024, 32
        model = nn.Sequential(
            nn.Linear(512, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh(), nn.Linear(width, 10)
        )
        x = rng.standard_normal((batch, 512))
        y = rng.integers(0, 10, batch)

        def loss_fn():
            out = model(x)
            with sr.component("loss"):
                return F.cross_entropy(out, y)

        shape = f"MLP 512 -> {width} -> {width} -> 10 (tanh); batch {batch}"
    else:
        raise ValueError(kind)
    return model, loss_fn, shape


def best_of(fn, repeat: int):
    times, value = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return min(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["lstm", "mlp"], default="lstm")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backprop", action="store_true", help="also time backprop_importance")
    parser.add_argument("--json", help="write the numbers to this file")
    args = parser.parse_args()

    model, loss_fn, shape = build(args.model, args.seed)
    params = list(model.parameters())
    n_params = sum(p.numel() for p in params)
    assert n_params >= 10**6, n_params
    loss = loss_fn()
    t_trace, tr = best_of(lambda: sr.trace(loss, params), args.repeat)
    vertices = sum(int(np.prod(n.shape)) for n in tr.sweep.order)
    t_imp, imp = best_of(lambda: sr.analysis.component_importance(tr, model), args.repeat)
    numbers = {
        "model": args.model,
        "description": shape,
        "parameter_elements": int(n_params),
        "graph_nodes": len(tr.sweep.order),
        "graph_vertices": int(vertices),
        "paths": imp.paths,
        "path_edges": imp.total,
        "trace_s": t_trace,
        "importance_s": t_imp,
        "ratio": t_imp / t_trace,
        "repeat": args.repeat,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(f"model: {shape}")
    print(f"{n_params:,} parameter elements; graph of {numbers['graph_nodes']} tensors, {vertices:,} scalar vertices")
    print(f"trace (sr.trace)                        {t_trace:8.3f} s")
    print(f"component importance ({imp.paths:,} paths, {imp.total:,.0f} edges)  {t_imp:8.3f} s")
    verdict = "no more than the trace" if numbers["ratio"] <= 1 else "MORE than the trace"
    print(f"ratio importance / trace                {numbers['ratio']:8.3f}  ({verdict})")
    if args.backprop:
        del tr
        t_bp, bp = best_of(lambda: sr.analysis.backprop_importance(loss, model, group="across_time"), 1)
        numbers["backprop_importance_s"] = t_bp
        numbers["backprop_groups"] = len(bp.counts)
        print(f"backprop importance ({len(bp.counts)} groups)         {t_bp:8.3f} s")
    print()
    print(imp.group("across_time").table())
    if args.json:
        with open(args.json, "w") as f:
            json.dump(numbers, f, indent=1)


if __name__ == "__main__":
    main()
