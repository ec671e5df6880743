"""``linear`` (``x @ W.T + b``, the op of ``nn.Linear`` and ``F.linear``) against the composite it
replaces (DESIGN.md: a fused rule is proven equal to the composite).

The composite's scalar graph has two more vertices per output element, ``W.T`` (a relabelling) and
``x @ W.T`` (one edge of weight 1 into the bias add), so every path's product is the same: in every
built-in semiring the values of ``x``, ``W`` and ``b`` must be the same bits, and a traced path
must be the composite's path without those two vertices.
"""

from __future__ import annotations

import numpy as np
import pytest

import semirad as sr
import semirad.nn.functional as F
from semirad import engine
from semirad.testing import builtin_semirings

SEMIRINGS = builtin_semirings()


def composite(x, w, b=None):
    out = x @ w.T
    return out if b is None else out + b


def _leaves(rng, x_shape, out_features, bias, dtype):
    in_features = x_shape[-1]
    x = sr.tensor(rng.standard_normal(x_shape).astype(dtype), requires_grad=True)
    w = sr.tensor(rng.standard_normal((out_features, in_features)).astype(dtype), requires_grad=True)
    b = sr.tensor(rng.standard_normal(out_features).astype(dtype), requires_grad=True) if bias else None
    return x, w, b


def _network(layer, x, w, b, w2):
    """Two layers through ``layer``, the second sharing ``w2`` with a third (accumulation order)."""
    h = layer(x, w, b).tanh()
    h = layer(h, w2) * layer(h, w2, None).sin()
    return (h * h).sum()


def _values(S, loss, leaves):
    seed = np.ones(loss.shape, dtype=loss.dtype)
    sweep = engine.sweep(loss._node, [t._node for t in leaves], seed, S)
    return [sweep.values[t._node] for t in leaves]


def _components(value) -> list:
    if isinstance(value, tuple):
        return [c for v in value for c in _components(v)]
    return [np.asarray(value)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_shape", [(3,), (5, 3), (2, 4, 3)])
def test_every_semiring_gives_the_composites_bits(x_shape, bias, dtype):
    rng = np.random.default_rng(len(x_shape) + 10 * bias)
    x, w, b = _leaves(rng, x_shape, 4, bias, dtype)
    w2 = sr.tensor(rng.standard_normal((4, 4)).astype(dtype), requires_grad=True)
    leaves = [x, w, w2] + ([b] if bias else [])
    fused, plain = _network(F.linear, x, w, b, w2), _network(composite, x, w, b, w2)
    ops = [n.op_name for n in engine._ancestors(fused._node)]
    assert ops.count("linear") == 3 and "transpose" not in ops
    np.testing.assert_array_equal(fused.data, plain.data)
    for S in SEMIRINGS:
        got, want = _values(S, fused, leaves), _values(S, plain, leaves)
        for g, v in zip(got, want):
            g, v = _components(g), _components(v)
            if getattr(S, "backpointers", None) is not None and len(g) > 1:
                g, v = g[:1], v[:1]  # ids name vertices, and the composite has more (paths: below)
            for a, c in zip(g, v):
                assert a.dtype == c.dtype and a.shape == c.shape
                assert np.array_equal(a, c, equal_nan=True), (type(S).__name__, a, c)


@pytest.mark.parametrize("x_shape", [(3,), (5, 3), (2, 4, 3)])
def test_a_traced_path_is_the_composites_without_its_inner_vertices(x_shape):
    rng = np.random.default_rng(7)
    x, w, b = _leaves(rng, x_shape, 4, True, np.float64)
    w2 = sr.tensor(rng.standard_normal((4, 4)), requires_grad=True)
    fused, plain = _network(F.linear, x, w, b, w2), _network(composite, x, w, b, w2)
    tf, tp = sr.trace(fused, [x, w, b]), sr.trace(plain, [x, w, b])
    for t in (x, w, b):
        for index in np.ndindex(t.shape):
            pf, pp = tf.path(t, index), tp.path(t, index)
            assert pf.value == pp.value
            assert [(s.op, s.shape, s.index) for s in pf.steps] == _without_inner_vertices(pp.steps)


def _without_inner_vertices(steps) -> list:
    """The composite's steps with ``W.T`` left out and ``x @ W.T`` (then ``+ b``) named ``linear``
    (in ``_network`` every add is a bias add)."""
    out = []
    for i, s in enumerate(steps):
        if s.op == "transpose":
            continue
        if s.op == "matmul" and i + 1 < len(steps) and steps[i + 1].op == "add":
            continue  # (x @ W.T, then its bias: the fused vertex is the add's)
        op = "linear" if s.op in ("matmul", "add") else s.op
        out.append((op, s.shape, s.index))
    return out


def test_nn_linear_records_one_vertex_and_matches_torch_semantics():
    fc = sr.nn.Linear(3, 2)
    y = fc(np.ones((4, 3)))
    assert y._node.op_name == "linear"
    assert [p and p.op_name for p in y._node.parents] == [None, "leaf", "leaf"]  # (the array: no vertex)
    want = np.ones((4, 3)) @ fc.weight.data.T + fc.bias.data
    np.testing.assert_array_equal(y.data, want)


@pytest.mark.parametrize(
    "x_shape, w_shape, b_shape",
    [((2, 3), (4, 5), (4,)), ((2, 3), (3,), (4,)), ((), (4, 3), (4,)), ((2, 3), (4, 3), (3,))],
)
def test_bad_shapes_name_the_op_and_the_shapes(x_shape, w_shape, b_shape):
    x, w, b = sr.tensor(np.ones(x_shape)), sr.tensor(np.ones(w_shape)), sr.tensor(np.ones(b_shape))
    with pytest.raises(ValueError, match="linear") as error:
        F.linear(x, w, b)
    assert str(x_shape if x_shape else "") in str(error.value) or str(w_shape) in str(error.value)


@pytest.mark.parametrize("x_shape", [(3,), (5, 3), (2, 4, 3)])
def test_forward_mode_gives_the_composites_tangents(x_shape):
    """Forward mode transposes the op's backward rule (semirad.forward): the composite's tangents,
    to rounding in SumProduct (the weight's term is a contraction transposed, whose BLAS call sums
    in another order) and bit for bit in MaxAbsProduct (a product and a choice, no sum)."""
    rng = np.random.default_rng(3)
    primals = (rng.standard_normal(x_shape), rng.standard_normal((4, 3)), rng.standard_normal(4))
    tangents = tuple(rng.standard_normal(p.shape) for p in primals)
    for S in (None, sr.semirings.MaxAbsProduct()):
        _, fused = sr.jvp(lambda x, w, b: F.linear(x, w, b).tanh(), primals, tangents, semiring=S)
        _, plain = sr.jvp(lambda x, w, b: composite(x, w, b).tanh(), primals, tangents, semiring=S)
        if S is None:
            np.testing.assert_allclose(np.asarray(fused), np.asarray(plain), rtol=1e-14, atol=1e-16)
        else:
            np.testing.assert_array_equal(np.asarray(fused), np.asarray(plain))


def test_a_compiled_graph_of_linear_layers_replays_the_eager_bits():
    sr.manual_seed(0)
    model = sr.nn.Sequential(sr.nn.Linear(3, 5), sr.nn.Tanh(), sr.nn.Linear(5, 2))
    params = list(model.parameters())

    def fn(x):
        return (model(x) ** 2).mean()

    x = np.random.default_rng(1).standard_normal((4, 3))
    g = sr.compile(fn, x)
    for got, want in zip(sr.grad(g(x), params), sr.grad(fn(sr.tensor(x)), params)):
        np.testing.assert_array_equal(got, want)
    got, want = sr.trace(g(x), params), sr.trace(fn(sr.tensor(x)), params)
    for p in params:
        np.testing.assert_array_equal(got[p], want[p])
