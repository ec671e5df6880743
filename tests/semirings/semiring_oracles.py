"""What each semiring must report for one element, given every path from it to the loss.

A path is ``(vertices, weights)``, as enumerated on the scalar reference graph of
``tests/test_bruteforce.py`` (which is independent of semirad's backward rules).
"""

from __future__ import annotations

import math

import numpy as np


def enumerate_paths(out_edges, start, end, limit=20000):
    """Every path ``start -> end`` as ``(vertices, weights)``; parallel edges give separate paths."""
    out = []
    stack = [(start, (start,), ())]
    while stack:
        v, verts, weights = stack.pop()
        if v == end:
            out.append((verts, weights))
            if len(out) > limit:
                raise OverflowError("too many paths")
            continue
        for u, w in out_edges.get(v, ()):
            stack.append((u, verts + (u,), weights + (w,)))
    return out


# -- what each semiring must report, from the list of paths of one element ---------------------


def products(paths):
    return [math.prod(w) for _, w in paths]


def live(paths):
    """The paths of the path-based semirings: an edge of weight exactly 0 is not an edge."""
    return [p for p in paths if all(w != 0 for w in p[1])]


def entropy(paths):
    flows = np.abs(products(live(paths)))
    if len(flows) == 0:
        return 0.0
    p = flows / flows.sum()
    return float(-(p * np.log(p)).sum())


def k_best(paths, k):
    """Signed products of the k best live paths by |product|, zero-padded."""
    vals = sorted(products(live(paths)), key=lambda v: -abs(v))[:k]
    return np.array(vals + [0.0] * (k - len(vals)))


def log_max_abs(paths):
    vals = np.abs(products(live(paths)))
    return float(np.log(vals.max())) if len(vals) else -np.inf


ORACLES = {
    "SumProduct": lambda paths: float(sum(products(paths))),
    "LogMaxAbs": log_max_abs,
    "Boolean": lambda paths: bool(live(paths)),
    "Count": lambda paths: float(len(live(paths))),
    "SumAbs": lambda paths: float(sum(abs(v) for v in products(paths))),
    "Entropy": entropy,
    "MinAbsProduct": lambda paths: float(min((abs(v) for v in products(live(paths))), default=np.inf)),
}


def doc_namespace(path="docs/semirings.md") -> dict:
    """Run every ```python block of a docs page in one namespace and return it."""
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[2]
    text = (root / path).read_text()
    namespace = {"__name__": "semirings_doc"}
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        exec(compile(block, str(root / path), "exec"), namespace)
    return namespace
