"""sr.compile on the simulated GPU (``tests/fakecupy``): a graph compiled on a device replays there with
the eager graph's bits (grad, trace and its paths), and inputs or parameters on another device are a
clear DeviceError naming them, not a failure inside an op."""

from __future__ import annotations

import fakecupy
import numpy as np
import pytest
from same_bits import assert_same

import semirad as sr
from semirad.backend import DeviceError


@pytest.fixture
def cp(monkeypatch):
    with fakecupy.installed(monkeypatch, kernels=False) as fake:
        yield fake


def _model_and_loss(device):
    sr.manual_seed(0)
    model = sr.nn.Sequential(sr.nn.Linear(4, 8), sr.nn.Tanh(), sr.nn.Linear(8, 3)).to(device)

    def loss(x):
        return (model(x) ** 2).mean()

    return model, loss


def _host(arrays, cp):
    return [cp.asnumpy(a) for a in arrays]


def test_a_graph_compiled_on_a_gpu_replays_there_with_the_eager_bits(cp):
    model, loss = _model_and_loss("cuda")
    params = list(model.parameters())
    rng = np.random.default_rng(0)
    g = sr.compile(loss, cp.asarray(rng.normal(size=(5, 4))))
    for _ in range(2):  # (a second call replays into the same instance or another one)
        x = cp.asarray(rng.normal(size=(5, 4)))
        y = g(x)
        assert isinstance(y.data, cp.ndarray) and y.device == "cuda:0"
        eager = loss(sr.tensor(x))
        assert_same(_host(sr.grad(y, params), cp), _host(sr.grad(eager, params), cp))
        replayed, recorded = sr.trace(g(x), params), sr.trace(loss(sr.tensor(x)), params)
        for p in params:
            assert isinstance(replayed[p], cp.ndarray)
            assert_same(cp.asnumpy(replayed[p]), cp.asnumpy(recorded[p]))
        for index in [(0, 0), (7, 3)]:
            assert str(replayed.path(params[0], index)) == str(recorded.path(params[0], index))


def test_inputs_on_another_device_are_a_clear_error(cp):
    model, loss = _model_and_loss("cuda")
    g = sr.compile(loss, cp.zeros((5, 4)))
    with cp.cuda.Device(1):
        elsewhere = cp.zeros((5, 4))
    with pytest.raises(DeviceError, match=r"input 0 \('x'\) of shape \(5, 4\) is on cuda:1; .*compiled for cuda:0"):
        g(elsewhere)
    with pytest.raises(ValueError, match=r"input 0 \('x'\) has shape \(5, 4\) .*ndarray.*compiled for shape"):
        g(np.zeros((5, 4)))  # a host array where the graph takes a device one


def test_parameters_moved_after_compiling_are_a_clear_error(cp):
    model, loss = _model_and_loss("cuda")
    g = sr.compile(loss, cp.zeros((5, 4)))
    model.to("cuda:1")
    with pytest.raises(DeviceError, match=r"captured tensor .*of shape \(8, 4\) is now on cuda:1; .*on cuda:0"):
        g(cp.zeros((5, 4)))  # (the input where the graph was compiled, the parameters no longer)
    model.cpu()
    with pytest.raises(DeviceError, match=r"is now on cpu; .*on cuda:0"):
        g(cp.zeros((5, 4)))
    model.to("cuda:0")  # back where it was compiled: replays again
    assert g(cp.zeros((5, 4))).device == "cuda:0"


def test_a_parameter_edited_in_place_on_the_gpu_is_seen_by_the_next_call(cp):
    """cupy arrays have no read-only flag: a replay must not reuse what it computed from a parameter
    alone (``w * 2``, a new array) because the parameter still holds the same array object."""
    rng = np.random.default_rng(1)
    w = sr.tensor(rng.normal(size=(3, 4)), requires_grad=True, name="w").cuda()

    def loss(x):
        return ((x @ (w * 2.0).T).tanh() ** 2).mean()

    x = cp.asarray(rng.normal(size=(5, 4)))
    g = sr.compile(loss, x)
    g(x)
    w.data[...] = w.data * -3.0  # in place: the same array object
    replayed, eager = g(x), loss(sr.tensor(x))
    assert_same(cp.asnumpy(replayed.data), cp.asnumpy(eager.data))
    assert_same(_host(sr.grad(replayed, [w]), cp), _host(sr.grad(eager, [w]), cp))
