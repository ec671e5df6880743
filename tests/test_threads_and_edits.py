"""Threads and in-place edits: recording state per thread, atomic leaf accumulation, and graphs
that an edit after the forward cannot change (read-only arrays, copies of a caller's arrays)."""

import threading

import numpy as np
import pytest

import semirad as sr
from semirad import nn

REPEATS = 20


def _in_threads(*bodies):
    """Run each body in its own thread; re-raise the first error a thread hit."""
    errors = []

    def guarded(body):
        try:
            body()
        except BaseException as error:  # noqa: BLE001 - handed to the main thread
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


# -- grad mode, components and the module call stack are per thread ------------------------------


@pytest.mark.parametrize("repeat", range(REPEATS))
def test_no_grad_in_one_thread_does_not_stop_recording_in_another(repeat):
    w = sr.tensor([1.0, 1.0], requires_grad=True)
    inside, recorded, leave = threading.Barrier(2), threading.Barrier(2), threading.Barrier(2)
    out = {}

    def a():
        with sr.no_grad():
            inside.wait()
            recorded.wait()
            out["a_mode"] = sr.engine.grad_enabled()
        leave.wait()

    def b():
        inside.wait()  # A is inside no_grad now
        t1 = (w * 2.0).sum()
        t2 = (w * 5.0).sum()
        out["grad"] = sr.grad(t1 + t2, [w])[0].tolist()
        recorded.wait()
        leave.wait()

    _in_threads(a, b)
    assert out["grad"] == [7.0, 7.0]
    assert out["a_mode"] is False
    assert sr.engine.grad_enabled()


@pytest.mark.parametrize("repeat", range(REPEATS))
def test_overlapping_no_grad_blocks_restore_each_threads_mode(repeat):
    a_in, b_in, a_out = threading.Barrier(2), threading.Barrier(2), threading.Barrier(2)
    modes = {}

    def a():  # A enters, B enters, A exits, B exits
        with sr.no_grad():
            a_in.wait()
            b_in.wait()
        modes["a_after"] = sr.engine.grad_enabled()
        a_out.wait()

    def b():
        a_in.wait()
        with sr.no_grad():
            b_in.wait()
            a_out.wait()
            modes["b_inside"] = sr.engine.grad_enabled()
        modes["b_after"] = sr.engine.grad_enabled()

    _in_threads(a, b)
    assert modes == {"a_after": True, "b_inside": False, "b_after": True}
    w = sr.tensor([1.0], requires_grad=True)
    assert (w * 2.0).requires_grad


def test_one_no_grad_object_shared_by_threads():
    shared = sr.no_grad()
    both_in = threading.Barrier(2)
    modes = []

    def body():
        with shared:
            both_in.wait()
            modes.append(sr.engine.grad_enabled())
        modes.append(sr.engine.grad_enabled())

    _in_threads(body, body)
    assert sorted(modes) == [False, False, True, True]


@pytest.mark.parametrize("repeat", range(REPEATS))
def test_components_are_per_thread(repeat):
    w = sr.tensor([1.0], requires_grad=True)
    opened, made = threading.Barrier(2), threading.Barrier(2)
    tags = {}

    def tagged(name):
        def body():
            with sr.component(name):
                opened.wait()  # both blocks are open now
                tags[name] = (w * 2.0)._node.component
                made.wait()

        return body

    _in_threads(tagged("alpha"), tagged("beta"))
    assert tags == {"alpha": "alpha", "beta": "beta"}


@pytest.mark.parametrize("repeat", range(5))
def test_module_call_stacks_are_per_thread(repeat):
    class Net(nn.Module):
        def __init__(self, gate):
            super().__init__()
            self.first = nn.Linear(2, 2)
            self.second = nn.Linear(2, 1)
            self.gate = gate

        def forward(self, x):
            h = self.first(x)
            self.gate.wait()  # the other thread is inside its own forward now
            return self.second(h).sum()

    gate = threading.Barrier(2)
    nets = [Net(gate), Net(gate)]
    components = {}

    def run(k):
        def body():
            loss = nets[k](np.ones((1, 2)))
            components[k] = {n.component for n in sr.engine.ancestors(loss._node) if n.op is not None}

        return body

    _in_threads(run(0), run(1))
    for k in (0, 1):
        assert components[k] == {"first", "second", None}


def test_a_new_thread_records_outside_any_component():
    seen = {}
    w = sr.tensor([1.0], requires_grad=True)

    def body():
        y = w * 2.0
        seen["component"], seen["recorded"] = y._node.component, y.requires_grad

    with sr.no_grad(), sr.component("outer"):
        _in_threads(body)
    assert seen == {"component": None, "recorded": True}


# -- concurrent backward() into shared leaves --------------------------------------------------------


@pytest.mark.parametrize("repeat", range(5))
def test_concurrent_backward_loses_no_update(repeat):
    w = sr.tensor(np.zeros(3), requires_grad=True)
    start = threading.Barrier(2)
    calls = 50

    def body():
        start.wait()
        for _ in range(calls):
            ((w + 1.5) * np.array([1.0, 2.0, 3.0])).sum().backward()

    _in_threads(body, body)
    np.testing.assert_array_equal(w.grad, 2 * calls * np.array([1.0, 2.0, 3.0]))


def test_two_threads_backward_one_graph_only_one_succeeds():
    w = sr.tensor([1.0, 2.0], requires_grad=True)
    for _ in range(REPEATS):
        w.grad = None
        loss = (w * w).sum()
        start = threading.Barrier(2)
        outcomes = []

        def body(loss=loss, start=start, outcomes=outcomes):
            start.wait()
            try:
                loss.backward()
                outcomes.append("ok")
            except RuntimeError as error:
                assert "retain_graph" in str(error)
                outcomes.append("refused")

        _in_threads(body, body)
        assert sorted(outcomes) == ["ok", "refused"]
        assert w.grad.tolist() == [2.0, 4.0]


def test_a_failed_backward_leaves_the_graph_usable():
    w = sr.tensor([1.0, 2.0], requires_grad=True)
    loss = (w * w).sum()
    with pytest.raises(ValueError, match="seed"):
        loss.backward(seed=np.ones(5))
    loss.backward()
    assert w.grad.tolist() == [2.0, 4.0]


def test_concurrent_traces_of_one_model_agree():
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1))
    x = rng.standard_normal((32, 64))
    params = list(model.parameters())
    reference = [a.copy() for a in (sr.trace(model(x).sum(), params)[p] for p in params)]
    mismatches = []

    def body():
        for _ in range(5):
            tr = sr.trace(model(x).sum(), params)
            if not all(np.array_equal(tr[p], r) for p, r in zip(params, reference)):
                mismatches.append(1)

    _in_threads(body, body, body)
    assert not mismatches


# -- in-place edits after the forward ---------------------------------------------------------------


def test_tensor_data_is_read_only_and_an_edit_raises():
    w = sr.tensor([1.0, 2.0], requires_grad=True)
    loss = (w * w).sum()
    with pytest.raises(ValueError, match="read-only"):
        w.data[0] = 100.0
    assert sr.grad(loss, [w])[0].tolist() == [2.0, 4.0]


def test_replacing_data_keeps_the_recorded_graph():
    w = sr.tensor([1.0, 2.0], requires_grad=True)
    loss = (w * w).sum()
    w.data = np.array([100.0, 2.0])
    assert sr.grad(loss, [w])[0].tolist() == [2.0, 4.0]
    assert sr.grad((w * w).sum(), [w])[0].tolist() == [200.0, 4.0]


def test_assigned_array_is_frozen_and_views_of_writable_memory_are_copied():
    owner = np.arange(6.0)
    w = sr.tensor([0.0, 0.0, 0.0], requires_grad=True)
    w.data = owner[:3]  # a view: its owner stays writable, so the tensor takes a copy
    loss = (w * w).sum()
    owner[:] = -1.0
    assert w.data.tolist() == [0.0, 1.0, 2.0]
    assert sr.grad(loss, [w])[0].tolist() == [0.0, 2.0, 4.0]
    fresh = np.ones(2)
    w.data = fresh
    assert not fresh.flags.writeable


def test_raw_numpy_operand_edited_after_the_forward():
    v = sr.tensor([1.0, 1.0], requires_grad=True)
    x = np.array([3.0, 4.0])
    loss = (v * x).sum()
    x[:] = [30.0, 40.0]
    assert sr.grad(loss, [v])[0].tolist() == [3.0, 4.0]
    assert x.flags.writeable  # the caller's array is left as it was: the op kept a copy


@pytest.mark.parametrize("make", [
    lambda v, x: (x * v).sum(),
    lambda v, x: (v @ x).sum(),
    lambda v, x: sr.where(x > 3.5, v, -v).sum(),
    lambda v, x: sr.clip(v, x - 10.0, x).sum(),
    lambda v, x: (v / x).sum(),
    lambda v, x: sr.maximum(v, x).sum(),
])  # fmt: skip
def test_every_kind_of_raw_operand_is_kept_as_it_was(make):
    v = sr.tensor([5.0, 1.0], requires_grad=True)
    x = np.array([3.0, 4.0])
    expected = [a.copy() for a in sr.grad(make(v, x.copy()), [v])]
    loss = make(v, x)
    x[:] = [-7.0, 0.5]
    np.testing.assert_array_equal(sr.grad(loss, [v])[0], expected[0])


def test_index_array_edited_after_the_forward():
    v = sr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    index = np.array([0, 0, 2])
    loss = (v[index] * np.array([1.0, 10.0, 100.0])).sum()
    index[:] = [1, 1, 1]
    assert sr.grad(loss, [v])[0].tolist() == [11.0, 0.0, 100.0]


def test_condition_edited_after_the_forward():
    v = sr.tensor([1.0, 2.0], requires_grad=True)
    cond = np.array([True, False])
    loss = sr.where(cond, v, 0.0).sum()
    cond[:] = [False, True]
    assert sr.grad(loss, [v])[0].tolist() == [1.0, 0.0]


def test_seed_edited_after_the_call_does_not_change_the_trace():
    x = sr.tensor([1.0, -2.0], requires_grad=True, name="x")
    seed = np.array([5.0, 7.0])
    tr = sr.trace(x * 3.0, [x], seed=seed)
    seed[:] = 0.0
    assert tr[x].tolist() == [15.0, 21.0]
    assert tr.path(x, 1).value == 21.0


def test_path_weights_agree_with_the_sweep_after_an_edit():
    u = sr.tensor([1.0, 2.0, 3.0], requires_grad=True, name="u")
    x = np.array([2.0, -5.0, 1.0])
    tr = sr.trace((u * x).tanh().sum(), [u])
    x[:] = 100.0
    with pytest.raises(ValueError):
        u.data[1] = 9.0
    for i in range(3):
        assert tr.path(u, i).value == pytest.approx(tr[u][i], rel=1e-15)


def test_optimizer_step_keeps_an_earlier_graph():
    w = sr.nn.Parameter(np.array([1.0, 2.0]))
    opt = sr.optim.SGD([w], lr=0.5)
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    opt.step()
    assert w.data.tolist() == [0.0, 0.0]
    assert sr.grad(loss, [w])[0].tolist() == [2.0, 4.0]


def test_init_functions_give_new_arrays():
    layer = nn.Linear(3, 2)
    x = np.ones((1, 3))
    loss = layer(x).sum()
    expected = sr.grad(loss, [layer.bias])[0].copy()
    before = layer.weight.data
    nn.init.zeros_(layer.weight)
    assert before.tolist() != layer.weight.data.tolist()
    np.testing.assert_array_equal(sr.grad(loss, [layer.weight])[0], np.ones((2, 3)))
    np.testing.assert_array_equal(sr.grad(loss, [layer.bias])[0], expected)


def test_op_outputs_are_read_only():
    w = sr.tensor([1.0, 2.0], requires_grad=True)
    y = w.exp()  # exp keeps its output for the backward
    loss = y.sum()
    with pytest.raises(ValueError, match="read-only"):
        y.data[0] = 0.0
    np.testing.assert_allclose(sr.grad(loss, [w])[0], np.exp([1.0, 2.0]))


# -- a seed's factor is part of every reading of a path -----------------------------------------------


def test_paths_include_the_seed_in_every_semiring():
    x = sr.tensor([1.0, -2.0, 0.5], requires_grad=True, name="x")
    w = sr.tensor([[3.0, -1.0], [0.5, 4.0], [2.0, 2.0]])
    seed = np.array([5.0, -7.0])
    out = x @ w
    tr = sr.trace(out, [x], seed=seed)
    log = sr.backward(out, [x], semiring=sr.semirings.LogMaxAbs(), seed=seed)
    best = sr.backward(out, [x], semiring=sr.semirings.KBest(2), seed=seed)
    for i in range(3):
        # brute force: every (output column) path of x[i] with its seed factor
        products = [x_w * s for x_w, s in zip(w.data[i], seed)]
        strongest = max(products, key=abs)
        path = tr.path(x, i)
        assert path.value == tr[x][i] == strongest
        assert path.sign == np.sign(strongest)
        assert path.log_abs_value == pytest.approx(np.log(abs(strongest)))
        log_path = log.path(x, i)
        assert log_path.log_abs_value == pytest.approx(log[x][i]) and log_path.sign == log.sign(x)[i]
        assert [p.value for p in best.paths(x, i)] == sorted(products, key=abs, reverse=True)
        assert "seed x" in str(path)


def test_one_semiring_instance_serves_sweeps_in_several_threads():
    shared = sr.semirings.MaxAbsProduct()
    rng = np.random.default_rng(1)
    weights = [sr.tensor(rng.standard_normal((96, 96)), requires_grad=True) for _ in range(3)]
    x = rng.standard_normal((64, 96))

    def loss(k):
        return ((x @ weights[k]).tanh() @ weights[k]).sum()

    expected = [sr.trace(loss(k), [weights[k]])[weights[k]].copy() for k in range(3)]
    got = {}
    start = threading.Barrier(3)

    def body(k):
        def run():
            start.wait()
            for _ in range(5):
                got[k] = sr.backward(loss(k), [weights[k]], semiring=shared)[weights[k]]

        return run

    _in_threads(*(body(k) for k in range(3)))
    for k in range(3):
        np.testing.assert_array_equal(got[k], expected[k])
    assert shared._proven_finite is None  # the sweeps' state lived in their own copies


def test_grads_are_writable_arrays_that_no_other_leaf_or_graph_shares():
    """``.grad`` takes the sweep's array without a copy only where nothing else holds it."""
    a = sr.tensor([1.0, 2.0], requires_grad=True)
    b = sr.tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()  # both receive the one seed array through the add
    assert a.grad is not b.grad
    a.grad[0] = 5.0
    assert b.grad.tolist() == [1.0, 1.0]
    w = sr.tensor(np.ones((3, 2)), requires_grad=True)
    x = sr.tensor(np.array([2.0, 3.0]), requires_grad=True)
    y = w @ x
    (y * 1.0).sum().backward()
    for grad in (w.grad, x.grad):
        grad += 1.0  # writable, as PyTorch's .grad
    assert np.array_equal(w.grad, np.array([[3.0, 4.0]] * 3)) and x.grad.tolist() == [4.0, 4.0]
    assert np.array_equal(w.data, np.ones((3, 2))) and x.data.tolist() == [2.0, 3.0]
    c = sr.tensor(np.ones(2), requires_grad=True)
    (c * 1.0).sum().backward()
    c.grad[0] = 9.0
    (c * 1.0).sum().backward()  # accumulates into what the user left there
    assert c.grad.tolist() == [10.0, 2.0]
