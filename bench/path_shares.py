"""Path shares cost no more than the trace they read.

    python bench/path_shares.py                  # 2-layer transformer encoder, d_model 32, batch 8 x 16
    python bench/path_shares.py --repeat 11 --json out.json

Builds an embedding, a 2-layer ``nn.TransformerEncoder`` (d_model 32, 2 heads, feed-forward 64)
and a linear head on a batch of 8 sequences of 16 tokens, records one loss, then times, interleaved
(trace, shares, trace, shares...; ``--repeat`` pairs, medians reported):

* ``trace``: ``sr.trace(loss, params)``, the MaxAbsProduct sweep with backpointers;
* ``shares``: ``sr.analysis.path_shares(trace, params, through)``: for the best path of *every*
  parameter element, whether it passes through the query, key and value branches and along the
  residual stream of each layer (8 labels, one pass);

and prints the ratio shares / trace (the claim of issue 22: <= 1). The ratio of each pair is
taken too (its median is less sensitive to a noisy machine). ``--backprop`` also times one
``backprop_path_shares`` (a SumAbs sweep on 10 channels) for reference. ``--json FILE`` writes
the numbers.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np

import semirad as sr
import semirad.nn.functional as F
from semirad import nn


class Encoder(nn.Module):
    def __init__(self, vocab: int, d_model: int, nhead: int, layers: int, ff: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward=ff, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers)
        self.head = nn.Linear(d_model, vocab)

    def forward(self, tokens):
        return self.head(self.encoder(self.embed(tokens))[:, -1])


def through(layers: int) -> dict:
    """Query, key, value and the residual stream around them, per layer (components and edges)."""
    out = {}
    for i in range(layers):
        for branch in ("query", "key", "value"):
            out[f"{i}.{branch}"] = f"encoder.layers.{i}.self_attn.{branch}"
        out[f"{i}.residual"] = sr.analysis.edge(component=f"encoder/layers/{i}/residual_attn", op="add", input=0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7, help="interleaved (trace, shares) pairs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=16)
    parser.add_argument("--backprop", action="store_true", help="also time backprop_path_shares once")
    parser.add_argument("--json", help="write the numbers to this file")
    args = parser.parse_args()

    sr.manual_seed(args.seed)
    vocab, d_model, nhead, layers, ff = 16, 32, 2, 2, 64
    model = Encoder(vocab, d_model, nhead, layers, ff)
    rng = np.random.default_rng(args.seed)
    tokens = rng.integers(0, vocab, (args.batch, args.length))
    targets = rng.integers(0, vocab, args.batch)
    with sr.component("loss"):
        pass
    logits = model(tokens)
    with sr.component("loss"):
        loss = F.cross_entropy(logits, targets)
    params = list(model.parameters())
    n_params = sum(p.numel() for p in params)
    labels = through(layers)

    tr = sr.trace(loss, params)  # warm-up (kernels, caches) of both
    sr.analysis.path_shares(tr, params, labels)
    t_trace, t_shares, ratios = [], [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        tr = sr.trace(loss, params)
        t1 = time.perf_counter()
        shares = sr.analysis.path_shares(tr, params, labels)
        t2 = time.perf_counter()
        t_trace.append(t1 - t0)
        t_shares.append(t2 - t1)
        ratios.append((t2 - t1) / (t1 - t0))
    vertices = sum(int(np.prod(n.shape)) for n in tr.sweep.order)
    numbers = {
        "description": f"Embedding({vocab}, {d_model}) -> TransformerEncoder({layers} layers, d_model {d_model}, "
        f"{nhead} heads, ff {ff}) -> Linear; batch {args.batch} x {args.length} tokens",
        "parameter_elements": int(n_params),
        "graph_nodes": len(tr.sweep.order),
        "graph_vertices": int(vertices),
        "paths": shares.paths,
        "labels": len(labels),
        "trace_s_median": statistics.median(t_trace),
        "shares_s_median": statistics.median(t_shares),
        "ratio_of_medians": statistics.median(t_shares) / statistics.median(t_trace),
        "ratio_median_of_pairs": statistics.median(ratios),
        "trace_s": t_trace,
        "shares_s": t_shares,
        "repeat": args.repeat,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(f"model: {numbers['description']}")
    print(f"{n_params:,} parameter elements; graph of {numbers['graph_nodes']} tensors, {vertices:,} scalar vertices")
    print(f"trace (sr.trace), median of {args.repeat}          {numbers['trace_s_median'] * 1e3:9.1f} ms")
    print(f"path_shares ({shares.paths:,} paths, {len(labels)} labels)  {numbers['shares_s_median'] * 1e3:9.1f} ms")
    verdict = "no more than the trace" if numbers["ratio_of_medians"] <= 1 else "MORE than the trace"
    print(f"ratio shares / trace: {numbers['ratio_of_medians']:.3f} of the medians, "
          f"{numbers['ratio_median_of_pairs']:.3f} median of the pairs ({verdict})")  # fmt: skip
    if args.backprop:
        t0 = time.perf_counter()
        bp = sr.analysis.backprop_path_shares(loss, params, labels)
        numbers["backprop_shares_s"] = time.perf_counter() - t0
        print(f"backprop_path_shares ({len(labels) + 2} channels)  {numbers['backprop_shares_s'] * 1e3:9.1f} ms")
        print()
        print(bp.table())
    print()
    print(shares.table())
    if args.json:
        with open(args.json, "w") as f:
            json.dump(numbers, f, indent=1)


if __name__ == "__main__":
    main()
