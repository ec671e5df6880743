"""What a replay reuses from one call to the next, and when it must not: the sweep's structure kept
on a replay's outputs (engine.Plans), the results of ops that read only parameters ("fixed" ops),
and the instance itself (reference counts that the kept structure must not disturb)."""

from __future__ import annotations

import numpy as np
import pytest
from test_compile import MODELS, _inputs, assert_same

import semirad as sr
from semirad.ops.core import Op, apply
from semirad.testing import builtin_semirings


def _sweep_values(result, tensors):
    return [result.sweep.values[t._node] for t in tensors]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_kept_plans_give_the_eager_bits_call_after_call(name):
    model, fn, shapes = MODELS[name]()
    g = sr.compile(fn, *_inputs(shapes, 0), unique=False)
    params = list(model.parameters())
    for seed in (1, 2, 3):  # the second and third calls reuse the plans of the first (or of the other instance)
        arrays = _inputs(shapes, seed)
        xe = [sr.tensor(a, requires_grad=True) for a in arrays]
        xc = [sr.tensor(a, requires_grad=True) for a in arrays]
        ye, yc = fn(*xe), g(*xc)
        for S in builtin_semirings():
            for te, tc in ((params, params), (params[:1] + xe, params[:1] + xc)):
                re, rc = sr.backward(ye, te, semiring=S), sr.backward(yc, tc, semiring=S)
                assert_same(_sweep_values(re, te), _sweep_values(rc, tc))
        te, tc = sr.trace(ye, params), sr.trace(yc, params)
        index = np.unravel_index(int(np.argmax(np.abs(te[params[0]]))), params[0].shape)
        assert te.path(params[0], index).value == tc.path(params[0], index).value
        del ye, yc, re, rc, te, tc
    assert g.stats()["instances"] <= 2


def test_a_replay_keeps_one_plan_per_targets_and_kind_of_semiring():
    w = sr.tensor([[1.0, -2.0], [0.5, 3.0]], requires_grad=True, name="w")
    g = sr.compile(lambda x: (x @ w).tanh().sum(), np.zeros((1, 2)))
    x = np.array([[0.3, -0.4]])
    seen = set()
    for _ in range(4):
        y = g(x)
        sr.grad(y, [w])
        sr.trace(y, [w])
        sr.backward(y, [w], semiring=sr.semirings.Count())  # (no enter: the plan of grad)
        seen.add(id(y._node))
        plans = y._node.plans.plans
        assert len(plans) == 2
        del y
    assert len(seen) == 1 and g.stats()["instances"] == 1  # one instance reused, plans and all


def test_an_input_tensor_bound_anew_clears_the_plans():
    w = sr.tensor([1.0, 2.0], requires_grad=True, name="w")
    g = sr.compile(lambda x: (x * w).tanh().sum(), np.zeros(2))
    for values in ([0.5, -1.0], [2.0, 0.25], [-0.3, 0.7]):
        x = sr.tensor(values, requires_grad=True)  # a new vertex at every call: the graph changes
        y = g(x)
        xe = sr.tensor(values, requires_grad=True)
        ye = (xe * w).tanh().sum()
        assert_same(sr.grad(y, [x, w]), sr.grad(ye, [xe, w]))
        tr, tre = sr.trace(y, [x]), sr.trace(ye, [xe])
        assert_same(tr[x], tre[xe])
        assert tr.path(x, 1).value == tre.path(xe, 1).value
        del y, tr
    # an array input after a tensor input: the vertex goes, so must the plans that went through it
    y = g(np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="not in the graph"):
        sr.grad(y, [x])
    assert sr.grad(y, [w])[0].tolist() == sr.grad((sr.tensor([0.5, 0.5]) * w).tanh().sum(), [w])[0].tolist()


def test_a_parameter_whose_leaf_is_replaced_after_a_sweep_is_followed():
    w = sr.tensor([1.0, 2.0], requires_grad=True, name="w")
    g = sr.compile(lambda x: (x * w).sum(), np.zeros(2))
    y = g(np.ones(2))
    assert sr.grad(y, [w])[0].tolist() == [1.0, 1.0]  # a plan is kept on this instance
    del y
    w.requires_grad_(False).requires_grad_(True)  # a new leaf
    y = g(np.array([3.0, 4.0]))
    assert sr.grad(y, [w])[0].tolist() == [3.0, 4.0]
    assert sr.trace(y, [w]).path(w, 1).value == 4.0


def test_instances_are_reused_while_plans_hold_their_outputs():
    """Plans hold references to the outputs' nodes: the test of whether an instance is in use
    discounts them (else every call would make a new instance, and keep the old ones)."""
    w = sr.tensor([1.0, 2.0], requires_grad=True)
    g = sr.compile(lambda x: ((x * w).tanh(), (x * w).sum()), np.zeros(2))  # one output under the other
    for _ in range(5):
        h, s = g(np.ones(2))
        sr.grad(s, [w])
        sr.trace(s, [w])
        sr.grad(h, [w], seed=np.ones(2))
        del h, s
    assert g.stats()["instances"] == 1
    h, s = g(np.ones(2))
    tr = sr.trace(s, [w])
    del h, s
    g(np.ones(2))  # tr holds the first instance's graph
    assert g.stats()["instances"] == 2
    before = tr[w].copy()
    del tr
    for _ in range(3):
        sr.trace(g(2 * np.ones(2))[1], [w])
    assert g.stats()["instances"] == 2
    assert before.tolist() == sr.trace((np.ones(2) * w).sum(), [w])[w].tolist()


class _Counted(Op):
    """``x * 2`` that counts its forward calls."""

    name = "counted"
    calls = 0

    def forward(self, ctx, x):
        _Counted.calls += 1
        return x * 2.0

    def backward(self, ctx, g, S, needs):
        return (S.scale(g, 2.0),)


def test_ops_of_parameters_only_run_again_when_a_parameter_changes():
    w = sr.tensor([[1.0, -2.0], [0.5, 3.0]], requires_grad=True, name="w")
    counted = _Counted()

    def fn(x):
        return (x @ apply(counted, w).T).tanh().sum()  # counted(w) and its transpose read w only

    g = sr.compile(fn, np.zeros((1, 2)))
    _Counted.calls = 0
    x = np.array([[0.3, -0.4]])
    for _ in range(3):
        y = g(x)
        assert_same(sr.grad(y, [w]), sr.grad(fn(sr.tensor(x)), [w]))
        del y
    assert _Counted.calls == 1 + 3  # the first replay ran it (the eager calls, 3 more)
    _Counted.calls = 0
    w.data = w.data * 0.5  # a new array: the fixed ops run again
    y = g(x)
    assert _Counted.calls == 1
    assert_same(y.data, fn(sr.tensor(x)).data)
    assert_same(sr.grad(y, [w]), sr.grad(fn(sr.tensor(x)), [w]))
    keep = y
    w.data = w.data + 1.0  # (keep holds the first instance: the second runs them for the new array)
    y2 = g(x)
    assert_same(y2.data, fn(sr.tensor(x)).data)
    assert_same(sr.grad(y2, [w]), sr.grad(fn(sr.tensor(x)), [w]))
    assert g.stats()["instances"] == 2 and keep is not y2


def test_a_training_loop_with_fixed_ops_follows_every_step():
    sr.manual_seed(0)
    model = sr.nn.Sequential(sr.nn.Linear(3, 4), sr.nn.Tanh(), sr.nn.Linear(4, 1))

    def fn(x):  # (a weight penalty: ops that read parameters only)
        return (model(x) ** 2).mean() + 0.01 * (model[0].weight ** 2).sum()

    g = sr.compile(fn, np.zeros((2, 3)))
    assert any(g._fixed)
    opt = sr.optim.SGD(model.parameters(), lr=0.1)
    rng = np.random.default_rng(0)
    for _ in range(4):
        x = rng.standard_normal((2, 3))
        expect = sr.grad(fn(sr.tensor(x)), list(model.parameters()))
        opt.zero_grad()
        y = g(x)
        assert_same(y.data, fn(sr.tensor(x)).data)
        assert_same(sr.grad(y, list(model.parameters())), expect)
        y.backward()
        opt.step()


def test_threads_sweeping_one_replay_share_its_plans():
    import threading

    rng = np.random.default_rng(4)
    w = sr.tensor(rng.standard_normal((4, 4)), requires_grad=True)
    g = sr.compile(lambda x: ((x @ w).tanh() @ w).sum(), np.zeros((2, 4)))
    x = rng.standard_normal((2, 4))
    expect_grad = sr.grad(((sr.tensor(x) @ w).tanh() @ w).sum(), [w])[0]
    expect_trace = sr.trace(((sr.tensor(x) @ w).tanh() @ w).sum(), [w])[w]
    y = g(x)
    errors = []

    def work():
        try:
            for _ in range(20):
                assert_same(sr.grad(y, [w])[0], expect_grad)
                assert_same(sr.trace(y, [w])[w], expect_trace)
        except BaseException as error:  # noqa: BLE001 (reported below)
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert len(y._node.plans.plans) == 2
