"""``elements=`` in component_importance, backprop_importance and compare: only the selected
elements' paths count, checked against walking (or enumerating) the paths of those elements only."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

import semirad as sr
from semirad.analysis import UNTAGGED, backprop_importance, compare, component_importance, spearman
from semirad.analysis.shares import element_mask
from semirad.semirings import KBest


def graph(seed=0):
    rng = np.random.default_rng(seed)
    x = sr.tensor(rng.standard_normal((3, 4)))
    W1 = sr.tensor(rng.standard_normal((4, 5)), requires_grad=True, name="W1")
    W2 = sr.tensor(rng.standard_normal((5, 2)), requires_grad=True, name="W2")
    with sr.component("enc"):
        h = (x @ W1).tanh()
    with sr.component("dec"):
        y = h @ W2
    with sr.component("reg"):  # strong for some elements of W1 only: where a path goes depends on the element
        reg = (W1 * W1 * sr.tensor(rng.random((4, 5)) ** 4 * 3.0)).sum()
    with sr.component("first"):  # W2 has one consumer (its backpointers are kept transposed); column 0 ends here
        first = y[:, 0].tanh().sum()
    loss = (y[:, 1] * y[:, 1]).mean() + first + reg
    return loss, [W1, W2]


MASKS = {
    "W1": np.random.default_rng(3).random((4, 5)) < 0.4,
    "W2": np.array([[True, False], [True, False], [False, True], [True, True], [False, False]]),
}


def walked(result, params, masks, ranks=None):
    counts, paths = Counter(), 0
    for p in params:
        mask = masks.get(p.name)
        for index in np.ndindex(p.shape):
            if mask is not None and not mask[index]:
                continue
            found = result.paths(p, index) if hasattr(result, "paths") else [result.path(p, index)]
            for r, path in enumerate(found):
                if ranks is None or r in ranks:
                    paths += 1
                    counts.update(path.components())
    return {(UNTAGGED if k is None else k): float(v) for k, v in counts.items()}, paths


@pytest.mark.parametrize("k", [1, 3])
def test_component_importance_counts_only_the_selected_elements_paths(k):
    loss, params = graph()
    result = sr.trace(loss, params) if k == 1 else sr.backward(loss, params, semiring=KBest(k))
    imp = component_importance(result, params, elements=[MASKS["W1"], MASKS["W2"]])
    expected, paths = walked(result, params, MASKS)
    assert imp.counts == pytest.approx(expected) and imp.paths == paths
    assert imp.elements == MASKS["W1"].sum() + MASKS["W2"].sum()
    by_name = component_importance(result, params, elements={"W2": MASKS["W2"]})
    expected, paths = walked(result, params, {"W2": MASKS["W2"]})
    assert by_name.counts == pytest.approx(expected) and by_name.paths == paths
    one = component_importance(result, params[0], elements=np.nonzero(MASKS["W1"]))
    assert one.counts == pytest.approx(walked(result, params[:1], {"W1": MASKS["W1"]})[0])
    # W2's backpointers are kept transposed (Fortran order): the mask follows that order
    two = component_importance(result, params[1], elements=np.nonzero(MASKS["W2"]))
    assert two.counts == pytest.approx(walked(result, params[1:], {"W2": MASKS["W2"]})[0])


def test_backprop_importance_counts_only_the_selected_elements():
    loss, params = graph()
    imp = backprop_importance(loss, params, elements=[MASKS["W1"], None])
    r = sr.backward(loss, params, semiring=KBest(200))
    counts, elements = Counter(), 0
    for p in params:
        mask = MASKS["W1"] if p.name == "W1" else np.ones(p.shape, bool)
        for index in np.ndindex(p.shape):
            if not mask[index]:
                continue
            paths = r.paths(p, index)
            assert len(paths) < 200
            weights = np.array([abs(path.value) for path in paths])
            if weights.sum() == 0:
                continue
            elements += 1
            for path, w in zip(paths, weights):
                for c, n in path.components().items():
                    counts[UNTAGGED if c is None else c] += n * w / weights.sum()
    assert imp.counts == pytest.approx(dict(counts), rel=1e-9)
    assert imp.paths == elements


def test_compare_with_elements_restricts_every_statistic():
    loss, params = graph()
    full = compare(loss, params)
    part = compare(loss, params, elements={"W1": MASKS["W1"]})
    g, t = np.abs(full.grads["W1"]), np.abs(full.traces["W1"])
    rec = {r["param"]: r for r in part.records()}
    m = MASKS["W1"]
    assert rec["W1"]["size"] == m.sum()
    assert rec["W1"]["spearman"] == pytest.approx(spearman(g[m], t[m]))
    assert rec["W1"]["grad_max"] == pytest.approx(g[m].max())
    assert all(m[e["index"]] for e in rec["W1"]["top_grad"])
    best = np.unravel_index(np.argmax(np.where(m, g, -1)), m.shape)
    assert rec["W1"]["top_grad"][0]["index"] == tuple(int(i) for i in best)
    assert rec["W2"] == {r["param"]: r for r in full.records()}["W2"]


def test_element_mask_forms_and_errors():
    assert element_mask((2, 3), None).all()
    assert element_mask((2, 3), 1).tolist() == [[False] * 3, [True] * 3]
    assert element_mask((2, 3), np.array([[True, False, True], [False] * 3])).sum() == 2
    assert element_mask((2, 3), (np.array([0, 1]), np.array([2, 0]))).sum() == 2
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 3\)"):
        element_mask((2, 3), np.ones(3, bool))
    with pytest.raises(TypeError, match="float"):
        element_mask((2, 3), np.array([0.5]))
    with pytest.raises(IndexError, match=r"\(2, 3\)"):
        element_mask((2, 3), (5, 0))
    loss, params = graph()
    with pytest.raises(KeyError, match="W9"):
        component_importance(sr.trace(loss, params), params, elements={"W9": 0})
