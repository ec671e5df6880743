"""Whole-graph brute force for every semiring of issue 4 (and the docs' MinAbsProduct).

Random graphs come from ``tests/test_bruteforce.py`` (its ``build_random_graph`` builds each
semirad graph beside an independent scalar reference; grid values give zero weights and exact
ties, ``x * x`` and ``X @ X`` parallel edges). Every path from each element to the loss is
enumerated on the reference; every semiring's value, and the paths that LogMaxAbs and KBest
report, must match.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from hypothesis import given, reject, settings
from hypothesis import strategies as st
from semiring_oracles import ORACLES, doc_namespace, enumerate_paths, k_best, live, products
from test_bruteforce import MAX_PATHS, build_random_graph

import semirad as sr
from semirad.semirings import Boolean, Count, Entropy, KBest, LogMaxAbs, SumAbs, SumProduct

K = 2  # smaller than most contraction sizes, so KBest's column pruning is exercised
RTOL = 1e-9
#: the loaded hypothesis profile's budget (tests/conftest.py)
EXAMPLES = settings.default.max_examples
MinAbsProduct = doc_namespace()["MinAbsProduct"]
SEMIRINGS = {
    "SumProduct": SumProduct(), "LogMaxAbs": LogMaxAbs(), "Boolean": Boolean(), "Count": Count(),
    "SumAbs": SumAbs(), "Entropy": Entropy(), "MinAbsProduct": MinAbsProduct(), "KBest": KBest(K),
}  # fmt: skip


def random_graph(data):
    g, pool, loss = build_random_graph(data)
    targets = list(g.inputs)
    inner = [r for r in pool if r.op != "leaf"]
    if inner and data.draw(st.booleans(), label="an intermediate too"):
        targets.append(inner[data.draw(st.integers(0, len(inner) - 1))])
    counts = g.count_paths(int(loss.ids))
    if any(counts[int(v)] > MAX_PATHS for t in targets for v in t.ids.reshape(-1)):
        reject()
    return g, loss, targets


def elements(ref):
    for flat, v in enumerate(ref.ids.reshape(-1)):
        yield flat, int(v), (tuple(int(i) for i in np.unravel_index(flat, ref.shape)) if ref.shape else ())


def check_path(graph, path, paths, start, end):
    """``path`` is one of the enumerated live paths: same vertices, the weights of its real edges."""
    verts = tuple(graph.vertex(s) for s in path.steps)
    assert verts[0] == start and verts[-1] == end, (path.steps[0], path.steps[-1])
    same = [w for v, w in paths if v == verts]
    assert same, f"{[str(s) for s in path.steps]} is not a path of the scalar graph"
    assert any(np.allclose(path.weights, w, rtol=RTOL, atol=0) for w in same), (path.weights, same)
    assert all(w != 0 for w in path.weights), "a path through an edge of weight 0"
    return verts, tuple(np.round(path.weights, 9))


def check_k_best(got, paths, k, where):
    """Magnitudes of the k best match; signs match for every group of equal magnitude kept whole."""
    vals = products(live(paths))
    expected = k_best(paths, k)
    np.testing.assert_allclose(np.abs(got), np.abs(expected), rtol=RTOL, atol=0, err_msg=where)
    for m in np.abs(expected[expected != 0]):
        group = [v for v in vals if np.isclose(abs(v), m, rtol=RTOL, atol=0)]
        kept = [v for v in got if np.isclose(abs(v), m, rtol=RTOL, atol=0)]
        if len(group) == len(kept):
            np.testing.assert_allclose(sorted(kept), sorted(group), rtol=RTOL, err_msg=where)


@settings(max_examples=2 * EXAMPLES, deadline=None)
@given(data=st.data())
def test_every_semiring_matches_the_enumerated_paths(data):
    g, loss, targets = random_graph(data)
    end = int(loss.ids)
    tensors = [t.tensor for t in targets]
    results = {name: sr.backward(loss.tensor, tensors, semiring=S) for name, S in SEMIRINGS.items()}
    for ref in targets:
        t = ref.tensor
        for flat, start, index in elements(ref):
            where = f"{ref.name}{list(index)}"
            paths = enumerate_paths(g.out_edges, start, end)
            scale = sum(abs(v) for v in products(paths))
            for name, oracle in ORACLES.items():
                got, want = results[name][t].reshape(-1)[flat], oracle(paths)
                if name in ("Boolean", "Count"):
                    assert got == want, (name, where, got, want)
                elif name == "MinAbsProduct":
                    np.testing.assert_allclose(abs(got), want, rtol=RTOL, err_msg=f"{name} {where}")
                else:
                    atol = RTOL * scale if name == "SumProduct" else 1e-12
                    np.testing.assert_allclose(got, want, rtol=RTOL, atol=atol, err_msg=f"{name} {where}")
            ranked = live(paths)
            # LogMaxAbs: the best path itself, its log-magnitude and its sign
            r = results["LogMaxAbs"]
            sign = r.sign(t).reshape(-1)[flat]
            if ranked:
                best = max(abs(v) for v in products(ranked))
                path = r.path(t, index)
                check_path(g, path, paths, start, end)
                assert np.isclose(path.log_abs_value, np.log(best), rtol=RTOL, atol=1e-12), where
                assert np.isclose(abs(path.value), best, rtol=RTOL) and path.sign == sign, where
                signs = {np.sign(v) for v in products(ranked) if np.isclose(abs(v), best, rtol=RTOL)}
                assert sign in signs, where
            else:
                assert sign == 0, where
            # KBest: values, and each reported path a distinct real path with the reported value
            kb = results["KBest"]
            got = kb[t].reshape(K, -1)[:, flat]
            check_k_best(got, paths, K, where)
            found = kb.paths(t, index)
            assert len(found) == min(K, len(ranked)), where
            seen = Counter()
            for rank, p in enumerate(found):
                seen[check_path(g, p, paths, start, end)] += 1
                np.testing.assert_allclose(p.value, got[rank], rtol=RTOL, err_msg=where)
            available = Counter((v, tuple(np.round(w, 9))) for v, w in ranked)
            assert all(n <= available[key] for key, n in seen.items()), f"{where}: a path reported twice"


@settings(max_examples=EXAMPLES, deadline=None)
@given(data=st.data())
def test_k_best_of_one_and_log_max_abs_follow_the_trace(data):
    """Where a live path exists, KBest(1) gives MaxAbsProduct's value and path bit for bit, and
    LogMaxAbs the same |value| (its path may differ only on an exact tie)."""
    g, loss, targets = random_graph(data)
    tensors = [t.tensor for t in targets]
    tr = sr.trace(loss.tensor, tensors)
    k1 = sr.backward(loss.tensor, tensors, semiring=KBest(1))
    lg = sr.backward(loss.tensor, tensors, semiring=LogMaxAbs())
    for ref in targets:
        t = ref.tensor
        alive = k1[t][0] != 0
        np.testing.assert_array_equal(k1[t][0][alive], tr[t][alive])
        np.testing.assert_allclose(np.exp(lg[t][alive]), np.abs(tr[t][alive]), rtol=1e-12)
        for flat, _, index in elements(ref):
            if alive.reshape(-1)[flat]:
                assert k1.path(t, index).steps == tr.path(t, index).steps
