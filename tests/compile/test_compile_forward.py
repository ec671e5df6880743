"""Forward mode (sr.jvp, sr.jacobian) and compiling through a compiled graph: a call made while
something follows the ops as they are recorded runs the program through the ops, so the result is
that of the eager function, bit for bit, and the graph's instances are left as they were."""

from __future__ import annotations

import numpy as np
import pytest
from test_compile import MODELS, _inputs, assert_same

import semirad as sr

W = np.array([[1.0, 3.0], [-2.0, 0.5], [0.25, 4.0]])


def _small():
    w = sr.tensor(W, requires_grad=True, name="W")

    def f(x):
        return (x @ w).tanh() * x[:2]

    return f, w


@pytest.mark.parametrize(
    "S",
    [None, sr.semirings.MaxAbsProduct(), sr.semirings.LogMaxAbs(), sr.semirings.KBest(2), sr.semirings.Count()],
    ids=lambda S: type(S).__name__,
)
def test_jvp_of_a_compiled_graph_is_that_of_the_function(S):
    f, w = _small()
    x = np.array([2.0, -1.0, 0.5])
    g = sr.compile(f, x)
    for u in (np.array([1.0, 0.0, 0.0]), np.array([0.5, -2.0, 1.0])):
        (ye, te), (yc, tc) = sr.jvp(f, x, u, semiring=S), sr.jvp(g, x, u, semiring=S)
        assert_same(ye.data, yc.data)
        assert_same(te, tc)
        assert not np.all(tc == 0)


def test_forward_paths_through_a_compiled_graph():
    f, w = _small()
    x = np.array([2.0, -1.0, 0.5])
    g = sr.compile(f, x)
    S = sr.semirings.MaxAbsProduct()
    re, rc = sr.jvp(f, x, np.ones(3), semiring=S), sr.jvp(g, x, np.ones(3), semiring=S)
    for i in range(2):
        pe, pc = re.path(0, i), rc.path(0, i)
        assert pe.value == pc.value == rc[1][i]
        assert [(s.op, s.index, s.component) for s in pe.steps] == [(s.op, s.index, s.component) for s in pc.steps]


@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
@pytest.mark.parametrize("S", [None, sr.semirings.MaxAbsProduct(), sr.semirings.Boolean()],
                         ids=lambda S: type(S).__name__)  # fmt: skip
def test_jacobian_of_a_compiled_graph_is_that_of_the_function(mode, S):
    f, w = _small()
    x = np.array([2.0, -1.0, 0.5])
    g = sr.compile(f, x)
    assert_same(sr.jacobian(g, x, S, mode=mode), sr.jacobian(f, x, S, mode=mode))


@pytest.mark.parametrize("name", ["mlp", "lstm", "transformer"])
def test_jvp_of_compiled_models(name):
    model, fn, shapes = MODELS[name]()
    x = _inputs(shapes, 0)[0]
    g = sr.compile(fn, x, unique=False)
    u = np.random.default_rng(1).standard_normal(x.shape)
    (ye, te), (yc, tc) = sr.jvp(fn, x, u), sr.jvp(g, x, u)
    assert_same(ye.data, yc.data)
    assert_same(te, tc)


def test_a_jvp_leaves_the_graph_replayable():
    f, w = _small()
    x = np.array([2.0, -1.0, 0.5])
    g = sr.compile(f, x)
    y = g(x)  # an instance in use
    before = sr.grad(y, [w], seed=np.ones(2))
    sr.jvp(g, x, np.ones(3), keep_graph=False)  # (a forward sweep cuts the nodes it made)
    assert g.stats()["instances"] == 1  # no instance was taken by the jvp
    assert_same(sr.grad(y, [w], seed=np.ones(2)), before)
    x2 = np.array([0.1, 0.2, -0.3])
    assert_same(sr.grad(g(x2), [w], seed=np.ones(2)), sr.grad(f(sr.tensor(x2)), [w], seed=np.ones(2)))


def test_compiling_a_function_that_calls_a_compiled_graph_inlines_it():
    f, w = _small()
    x = np.array([2.0, -1.0, 0.5])
    g = sr.compile(f, x)

    def outer(x):
        return (g(x) * 3.0).sum()

    h = sr.compile(outer, x)
    assert h.stats()["ops"] == g.stats()["ops"] + 2
    for x2 in (x, np.array([0.1, 0.2, -0.3])):
        xe, xc = sr.tensor(x2, requires_grad=True), sr.tensor(x2, requires_grad=True)
        ye, yc = (f(xe) * 3.0).sum(), h(xc)
        assert_same(ye.data, yc.data)
        assert_same(sr.grad(ye, [w, xe]), sr.grad(yc, [w, xc]))
        assert sr.trace(yc, [w]).path(w, (0, 1)).value == sr.trace(ye, [w]).path(w, (0, 1)).value


def test_a_call_under_no_grad_through_the_ops_records_nothing():
    f, w = _small()
    x = np.array([2.0, -1.0, 0.5])
    g = sr.compile(f, x)

    def under(x):
        with sr.no_grad():
            inner = g(x)
        assert not inner.requires_grad
        return x * inner.sum()

    (_, te), (_, tc) = sr.jvp(lambda x: x * f(x).detach().sum(), x, np.ones(3)), sr.jvp(under, x, np.ones(3))
    assert_same(te, tc)


def test_forward_paths_through_a_compiled_model_keep_its_component_names():
    model, fn, shapes = MODELS["mlp"]()
    x = _inputs(shapes, 0)[0]
    g = sr.compile(fn, x)
    S = sr.semirings.MaxAbsProduct()
    seed = np.zeros(x.shape)
    seed[0] = 1.0
    re, rc = sr.jvp(fn, x, seed, semiring=S), sr.jvp(g, x, seed, semiring=S)
    pe, pc = re.path(0, ()), rc.path(0, ())
    assert pe.value == pc.value
    components = [s.component for s in pc.steps]
    assert components == [s.component for s in pe.steps] and "0" in components


def test_a_detached_value_stays_a_constant_through_the_ops():
    w = sr.tensor([1.0, 2.0], requires_grad=True)

    def fn(x):
        h = x * w
        return (h * h.detach()).sum()  # (h and h.detach() are one slot: the second stays a constant)

    x = np.array([0.3, -0.7])
    g = sr.compile(fn, x)
    (ye, te), (yc, tc) = sr.jvp(fn, x, np.array([1.0, 1.0])), sr.jvp(g, x, np.array([1.0, 1.0]))
    assert_same(ye.data, yc.data)
    assert_same(te, tc)
    assert float(tc) == pytest.approx(float((x * w.data * w.data).sum()))  # one edge, not two
