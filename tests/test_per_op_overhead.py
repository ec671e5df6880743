"""The per-op fast paths (docs/design.md, "Per-op overhead") record the same graph and give the same
results as the general paths they shortcut."""

import threading

import numpy as np
import pytest

import semirad as sr
from semirad import engine
from semirad.ops import functions as F


def _graph(loss):
    """Every recorded node as (op name, component, shape, parent positions): the graph's structure."""
    nodes = engine.ancestors(loss._node)
    position = {n: i for i, n in enumerate(nodes)}
    return [
        (n.op_name, n.component, n.shape, tuple(None if p is None else position[p] for p in n.parents)) for n in nodes
    ]


def _functional_mlp(model, x):
    """The model's forward through ``nn.functional`` (the general path), under the same components."""
    h = sr.tensor(x)
    for name, m in model._modules.items():
        with sr.component(name):
            if isinstance(m, sr.nn.Linear):
                h = sr.nn.functional.linear(h, m.weight, m.bias)
            elif isinstance(m, sr.nn.Tanh):
                h = sr.nn.functional.tanh(h)
            else:
                h = sr.nn.functional.sigmoid(h)
    return (h * h).mean()


def test_linear_and_activations_record_the_graph_of_nn_functional():
    sr.manual_seed(0)
    model = sr.nn.Sequential(sr.nn.Linear(3, 4), sr.nn.Tanh(), sr.nn.Linear(4, 2), sr.nn.Sigmoid())
    x = np.arange(6.0).reshape(2, 3) / 7
    y = model(x)
    fast = (y * y).mean()
    general = _functional_mlp(model, x)
    assert _graph(fast) == _graph(general)
    assert [(n.op_name, n.component) for n in engine.ancestors(fast._node) if n.op is not None][:2] == [
        ("linear", "0"),
        ("tanh", "1"),
    ]
    got = sr.grad(fast, list(model.parameters()))
    want = sr.grad(general, list(model.parameters()))
    for a, b in zip(got, want):
        assert np.array_equal(a, b)


def test_linear_unusual_weights_keep_the_errors_of_nn_functional():
    lin = sr.nn.Linear(3, 2)
    with pytest.raises(ValueError, match="expected input of shape"):
        lin(np.ones((2, 4)))
    lin.weight = sr.nn.Parameter(np.ones((2, 3, 1)))
    with pytest.raises(ValueError, match="weight must be 2-D"):
        lin(np.ones((2, 3)))
    nobias = sr.nn.Linear(3, 2, bias=False)
    assert [n.op_name for n in engine.ancestors(nobias(np.ones((1, 3)))._node) if n.op is not None] == ["linear"]


@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (2, 3, 4)])
def test_T_is_transpose(shape):
    x = sr.tensor(np.arange(float(np.prod(shape))).reshape(shape), requires_grad=True)
    a, b = x.T, F.transpose(x)
    assert a.shape == b.shape and np.array_equal(a.data, b.data)
    assert a._node.params == b._node.params and a._node.op is b._node.op


def test_backward_grads_own_their_memory():
    """A weight's gradient arrives as a transposed view of a fresh product: it becomes ``.grad``
    without a copy, and still no two ``.grad`` share memory, nor any with a graph's arrays."""
    sr.manual_seed(1)
    lin = sr.nn.Linear(3, 3)
    x = sr.tensor(np.ones((2, 3)), requires_grad=True)
    y = lin(x)
    (y * y).sum().backward()
    grads = [lin.weight.grad, lin.bias.grad, x.grad]
    for i, g in enumerate(grads):
        assert g.flags.writeable
        for h in grads[i + 1 :]:
            assert not np.shares_memory(g, h)
        assert not np.shares_memory(g, lin.weight.data) and not np.shares_memory(g, x.data)
    want = 2 * (y.data.T @ x.data)
    assert np.allclose(lin.weight.grad, want)
    # one sweep value given to two leaves (x + x's two edges go to distinct leaves here): copied once
    a = sr.tensor([1.0, 2.0], requires_grad=True)
    b = sr.tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()
    assert not np.shares_memory(a.grad, b.grad)
    a.grad[0] = 7.0  # a .grad is the caller's to change
    assert b.grad.tolist() == [1.0, 1.0]


def test_zero_grad_reaches_shared_parameters_and_skips_empty_slots():
    shared = sr.nn.Linear(2, 2)
    model = sr.nn.Sequential(shared, sr.nn.Tanh(), shared)
    model(np.ones((1, 2))).sum().backward()
    model.register_module("missing", None)
    assert shared.weight.grad is not None
    model.zero_grad(set_to_none=False)
    assert np.array_equal(shared.weight.grad, np.zeros((2, 2)))
    model.zero_grad()
    assert shared.weight.grad is None and shared.bias.grad is None


def test_components_per_thread_with_the_lock_free_count():
    """Components opened in another thread do not tag this thread's ops, and the count of open
    components returns to zero."""
    w = sr.tensor([1.0], requires_grad=True)
    opened, release = threading.Event(), threading.Event()

    def other():
        with sr.component("elsewhere"):
            opened.set()
            release.wait(10)

    t = threading.Thread(target=other)
    t.start()
    opened.wait(10)
    try:
        assert (w * 2.0)._node.component is None
        with sr.component("a"):
            with sr.component("b"):
                assert (w * 2.0)._node.component == "a/b"
                assert engine.current_component() == "a/b"
            assert (w * 2.0)._node.component == "a"
    finally:
        release.set()
        t.join()
    assert engine.current_component() is None and not engine._open_components


def test_nodes_share_one_shape_tuple_per_shape(monkeypatch):
    """Recorded nodes keep one tuple per shape (numpy makes a new one at every ``.shape``; thousands of
    equal tuples kept alive made Python's cyclic collector run more often), every one equal to its
    tensor's shape, also when the kept tuples are emptied partway."""
    from semirad.ops import core

    def graph():
        sr.manual_seed(0)
        model = sr.nn.Sequential(*[sr.nn.Linear(6, 6) if k % 2 == 0 else sr.nn.Tanh() for k in range(40)])
        out = model(np.ones((3, 6)))
        tensors = [out]
        for _ in range(5):
            tensors.append(tensors[-1] * 2.0)
        return tensors, engine.ancestors(tensors[-1].sum()._node)

    tensors, nodes = graph()
    ops = [n for n in nodes if n.op is not None]
    assert len(ops) > 40
    assert len({id(n.shape) for n in ops}) == len({n.shape for n in ops})
    assert all(t._node.shape == t.shape for t in tensors)
    assert all(shape == tuple(parent.shape) for n in ops for shape, parent in zip(n.shapes, n.parents) if parent)

    monkeypatch.setattr(core, "_SHAPES_MAX", 2)  # emptied again and again
    core._SHAPES.clear()
    tensors, nodes = graph()
    assert all(t._node.shape == t.shape for t in tensors)
    np.testing.assert_allclose(sr.grad(tensors[-1].sum(), [tensors[0]])[0], np.full((3, 6), 32.0))
