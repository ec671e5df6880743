"""engine.Plans / engine.Plan: a sweep whose structure is kept on its root gives the bits of a sweep
that works it out anew, in every semiring and for any targets; it holds exactly the references it
says it holds (compile.py counts on it); a wrong shape from a rule is reported until a sweep of
the plan completes; a cleared cache follows a changed graph."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from same_bits import assert_same

import semirad as sr
from semirad import engine
from semirad.ops.core import Op, apply
from semirad.tensor import seed_array
from semirad.testing import builtin_semirings


def _graph():
    """A graph with every kind of step: a constant input, a tensor used three times, a slice
    contribution (GetItem), an op with three inputs, and an intermediate that can be a target."""
    rng = np.random.default_rng(0)
    w = sr.tensor(rng.standard_normal((3, 4)), requires_grad=True, name="w")
    b = sr.tensor(rng.standard_normal(4), requires_grad=True, name="b")
    x = rng.standard_normal((2, 3))  # a constant
    h = (sr.tensor(x) @ w + b).tanh()
    parts = [h[:, :2] * h[:, 2:], h[:, 1:3].exp()]
    mid = sr.stack(parts).sum(0)  # (an op of two inputs through stack's concatenation)
    y = (sr.where(mid > 0, mid, h[:, :2]) * h[:, :2]).sum() + (b * b).sum()
    return y, w, b, h, mid


def _values(result, tensors):
    return [result.sweep.values[t._node] for t in tensors]


@pytest.mark.parametrize("S", builtin_semirings(), ids=lambda S: type(S).__name__)
def test_a_kept_plan_gives_the_bits_of_a_fresh_sweep(S):
    y, w, b, h, mid = _graph()
    fresh = {}
    for targets in ([w, b], [w, b, h], [mid, w], [b]):
        fresh[len(fresh)] = sr.backward(y, targets, semiring=S)
    y._node.plans = engine.Plans()
    for _ in range(2):  # the first call makes the plans, the second reuses them
        for k, targets in enumerate(([w, b], [w, b, h], [mid, w], [b])):
            kept = sr.backward(y, targets, semiring=S)
            assert_same(_values(kept, targets), _values(fresh[k], targets))
            assert kept.sweep.order == fresh[k].sweep.order
            assert kept.sweep.base == fresh[k].sweep.base
            assert set(kept.sweep.kept) == set(fresh[k].sweep.kept)
            for node in kept.sweep.kept:
                assert_same(kept.sweep.kept[node], fresh[k].sweep.kept[node])
    assert len(y._node.plans.plans) == 4
    plans = dict(y._node.plans.plans)
    sr.backward(y, [w, b], semiring=S)
    assert all(y._node.plans.plans[key] is plan for key, plan in plans.items())  # reused, not remade


def test_paths_of_a_kept_plan_are_those_of_a_fresh_sweep():
    y, w, b, h, mid = _graph()
    fresh = sr.trace(y, [w, b])
    y._node.plans = engine.Plans()
    sr.trace(y, [w, b])
    kept = sr.trace(y, [w, b])
    for t in (w, b):
        for index in np.ndindex(t.shape):
            p, q = fresh.path(t, index), kept.path(t, index)
            assert p.value == q.value and p.weights == q.weights
            assert [(s.op, s.index) for s in p.steps] == [(s.op, s.index) for s in q.steps]


def test_plans_hold_exactly_the_references_they_report():
    y, w, b, h, mid = _graph()
    nodes = engine.ancestors(y._node)
    before = {id(n): sys.getrefcount(n) for n in nodes}
    plans = engine.Plans()
    y._node.plans = plans
    for S in (sr.semirings.SumProduct(), sr.semirings.MaxAbsProduct()):
        for targets in ([w, b], [h]):
            sr.backward(y, targets, semiring=S)
    assert plans.plans
    for n in nodes:
        assert sys.getrefcount(n) - before[id(n)] == plans.holds(n), n
    outside = sr.tensor([1.0], requires_grad=True)._node
    assert plans.holds(outside) == 0
    plans.clear()
    for n in nodes:
        assert sys.getrefcount(n) == before[id(n)] and plans.holds(n) == 0


class _WrongShape(Op):
    """An op whose rule returns a gradient of the wrong shape while ``broken`` is set."""

    name = "wrong_shape"
    broken = True

    def forward(self, ctx, x):
        return x * 2.0

    def backward(self, ctx, g, S, needs):
        if _WrongShape.broken:
            return (S.map(g, lambda a: a[:1]),)
        return (S.scale(g, 2.0),)


def test_a_wrong_shape_is_reported_until_a_sweep_of_the_plan_completes():
    x = sr.tensor([1.0, 2.0], requires_grad=True)
    y = apply(_WrongShape(), x).sum()
    y._node.plans = engine.Plans()
    try:
        for _ in range(2):  # the failed sweep did not mark the plan checked
            with pytest.raises(RuntimeError, match=r"'wrong_shape' returned shape \(1,\) for an input of shape \(2,\)"):
                sr.grad(y, [x])
        _WrongShape.broken = False
        assert sr.grad(y, [x])[0].tolist() == [2.0, 2.0]
        (plan,) = y._node.plans.plans.values()
        assert plan.checked == {sr.semirings.SumProduct}
        # another semiring class is checked anew
        _WrongShape.broken = True
        with pytest.raises(RuntimeError, match="returned shape"):
            sr.trace(y, [x])
    finally:
        _WrongShape.broken = True


def test_a_cleared_cache_follows_a_changed_graph():
    a = sr.tensor([1.0, 2.0], requires_grad=True)
    c = sr.tensor([3.0, 5.0], requires_grad=True)
    h = a * 3.0
    y = (h * h).sum()
    y._node.plans = engine.Plans()
    assert sr.grad(y, [a])[0].tolist() == [18.0, 36.0]
    h._node.parents = (c._node, None)  # what compile.py's rebinding does to a replay's nodes
    with pytest.raises(ValueError, match="the output does not depend on it"):
        sr.grad(y, [c])  # the kept structure is the old graph's...
    y._node.plans.clear()
    assert sr.grad(y, [c])[0].tolist() == [18.0, 36.0]  # ...until cleared (the weights are h's saved ones)
    with pytest.raises(ValueError, match="the output does not depend on it"):
        sr.grad(y, [a])


def test_ancestors_and_graph_of_read_the_cache_without_sharing_a_list():
    y, w, b, h, mid = _graph()
    fresh = engine.ancestors(y._node)
    y._node.plans = engine.Plans()
    nodes, index = engine.graph_of(y._node)
    assert nodes == fresh and [index[n] for n in nodes] == list(range(len(nodes)))
    copy = engine.ancestors(y._node)
    assert copy == fresh and copy is not nodes
    copy.clear()
    assert engine.ancestors(y._node) == fresh


def test_a_sweep_with_no_target_on_a_path_keeps_nothing():
    x = sr.tensor([1.0], requires_grad=True)
    y = (x * 2.0).sum()
    other = sr.tensor([1.0], requires_grad=True)
    sweep = engine.sweep(y._node, [other._node], seed_array(y, None), sr.semirings.SumProduct())
    assert sweep.values == {} and sweep.order == []
