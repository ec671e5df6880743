"""compare(): every number against a direct computation; spearman and rankdata against formulas."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import semirad as sr
from semirad.analysis import compare, rankdata, spearman


def graph(seed=0):
    rng = np.random.default_rng(seed)
    x = sr.tensor(rng.standard_normal((6, 4)))
    W = sr.tensor(rng.standard_normal((4, 5)), requires_grad=True, name="W")
    b = sr.tensor(rng.standard_normal(5), requires_grad=True, name="b")
    V = sr.tensor(rng.standard_normal((5, 3)), requires_grad=True, name="V")
    h = (x @ W + b).tanh()
    loss = ((h @ V) ** 2).mean() + (h * h).sum() * 0.1
    return loss, [W, b, V]


def test_compare_numbers_equal_a_direct_computation():
    loss, params = graph()
    c = compare(loss, params, top=4)
    grads = sr.grad(loss, params)
    tr = sr.trace(loss, params)
    records = c.records()
    assert [r["param"] for r in records] == ["W", "b", "V"]
    for p, g, r in zip(params, grads, records):
        t = tr[p]
        ag, at = np.abs(g), np.abs(t)
        assert r["shape"] == p.shape and r["size"] == p.numel()
        assert r["grad_norm"] == pytest.approx(np.linalg.norm(g))
        assert r["grad_max"] == pytest.approx(ag.max())
        assert r["trace_max"] == pytest.approx(at.max())
        assert r["spearman"] == pytest.approx(spearman(ag, at))
        ratio = (at / ag)[ag > 0]
        full = c.ratio_array(r["param"])
        assert full.shape == p.shape and np.allclose(full[ag > 0], ratio) and np.isnan(full[ag == 0]).all()
        assert np.allclose(np.sort(c.ratios[r["param"]]), np.sort(ratio))
        assert r["ratio_median"] == pytest.approx(np.median(ratio))
        assert r["ratio_mean"] == pytest.approx(ratio.mean())
        assert (r["ratio_min"], r["ratio_max"]) == pytest.approx((ratio.min(), ratio.max()))
        assert r["ratio_above_1"] == pytest.approx((ratio > 1).mean())
        top_g = [
            tuple(int(i) for i in np.unravel_index(j, p.shape)) for j in np.argsort(-ag.ravel(), kind="stable")[:4]
        ]
        top_t = [
            tuple(int(i) for i in np.unravel_index(j, p.shape)) for j in np.argsort(-at.ravel(), kind="stable")[:4]
        ]
        assert [e["index"] for e in r["top_grad"]] == top_g
        assert [e["index"] for e in r["top_trace"]] == top_t
        for e in r["top_grad"] + r["top_trace"]:
            assert e["grad"] == g[e["index"]] and e["trace"] == t[e["index"]]
        assert r["top_overlap"] == len(set(top_g) & set(top_t))
    text = str(c)
    assert "spearman" in text and "W" in text.splitlines()[1]
    assert "by |trace|" in c.top_table()


def test_compare_accepts_a_module_and_the_best_path_share_is_one_on_a_single_path_graph():
    sr.manual_seed(0)
    lin = sr.nn.Linear(3, 2)
    loss = lin(np.ones((1, 3))).tanh().sum()
    c = compare(loss, lin)
    assert [r["param"] for r in c.records()] == ["weight", "bias"]
    for r in c.records():  # every element has exactly one path: trace == grad
        assert r["ratio_min"] == pytest.approx(1.0) and r["ratio_max"] == pytest.approx(1.0)


def test_rankdata_and_spearman():
    assert rankdata([3, 1, 2]).tolist() == [3.0, 1.0, 2.0]
    assert rankdata([5, 5, 1, 5]).tolist() == [3.0, 3.0, 1.0, 3.0]
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(50), rng.standard_normal(50)  # no ties: the classic formula
    d = rankdata(x) - rankdata(y)
    n = x.size
    assert spearman(x, y) == pytest.approx(1 - 6 * (d * d).sum() / (n * (n * n - 1)))
    assert spearman(x, np.exp(3 * x)) == pytest.approx(1.0)  # invariant under monotone maps
    assert spearman(x, -x) == pytest.approx(-1.0)
    assert np.isnan(spearman([1.0], [2.0])) and np.isnan(spearman([1, 1, 1], [1, 2, 3]))
    # with ties: Pearson of average ranks, checked by brute force over a tiny case
    a, b = np.array([1, 2, 2, 3]), np.array([4, 4, 1, 2])
    ra, rb = np.array([1, 2.5, 2.5, 4]), np.array([3.5, 3.5, 1, 2])
    assert spearman(a, b) == pytest.approx(np.corrcoef(ra, rb)[0, 1])
    for perm in itertools.permutations(range(4)):
        assert spearman(a[list(perm)], b[list(perm)]) == pytest.approx(spearman(a, b))
    with pytest.raises(ValueError):
        spearman([1, 2], [1, 2, 3])
