"""``sr.jvp``: tangents against central differences, the adjoint identity against ``sr.grad``, and
the memory of a long chain (forward mode keeps no tape)."""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import semirad as sr
from semirad.semirings import MaxAbsProduct, SumAbs


def central_jvp(f, x, u, eps=1e-6):
    def val(z):
        with sr.no_grad():
            return np.asarray(f(sr.tensor(z)).data, dtype=np.float64)

    return (val(x + eps * u) - val(x - eps * u)) / (2 * eps)


FUNCTIONS = {
    "tanh-matmul": lambda x: (x.reshape(2, 3) @ sr.tensor(np.linspace(-1, 1, 12).reshape(3, 4))).tanh(),
    "softmax": lambda x: sr.nn.functional.softmax(x.reshape(2, 3), dim=-1),
    "broadcast-reduce": lambda x: (x.reshape(2, 3) * x.reshape(2, 3)[:1]).sum(axis=0) / x.mean(),
    "gather-concat": lambda x: sr.concat([x[[0, 0, 5]].exp(), sr.cumsum(x, axis=0), x.reshape(3, 2).T.reshape(-1)]),
    "max-logsumexp": lambda x: sr.stack([sr.max(x.reshape(2, 3), axis=1), x.reshape(2, 3).logsumexp(axis=1)]),
    "einsum": lambda x: sr.einsum("ij,jk->ik", x.reshape(2, 3), x.reshape(3, 2).sin()),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_jvp_matches_central_differences(name):
    f = FUNCTIONS[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    x, u = rng.standard_normal(6), rng.standard_normal(6)
    out, tangent = sr.jvp(f, x, u)
    with sr.no_grad():
        assert np.allclose(out.data, f(sr.tensor(x)).data)
    np.testing.assert_allclose(tangent, central_jvp(f, x, u), rtol=1e-6, atol=1e-7)


def test_jvp_tuples_and_an_output_that_does_not_depend():
    a, b = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    (s, p, c), (ts, tp, tc) = sr.jvp(lambda a, b: (a + b, a * b, sr.tensor([5.0])), (a, b), (np.ones(2), np.zeros(2)))
    assert ts.tolist() == [1.0, 1.0] and tp.tolist() == [3.0, -1.0] and tc.tolist() == [0.0]
    assert not s.requires_grad and p.tolist() == [3.0, -2.0] and c.tolist() == [5.0]


def test_jvp_under_no_grad_and_nested_use_raises():
    with sr.no_grad():
        _, t = sr.jvp(lambda x: x * 3.0, np.array([1.0]), np.array([1.0]))
    assert t.tolist() == [3.0]
    with pytest.raises(RuntimeError, match="inside"):
        sr.jvp(lambda x: sr.jvp(lambda y: y, np.ones(1), np.ones(1))[0] + x, np.ones(1), np.ones(1))
    _, t = sr.jvp(lambda x: x * 2.0, np.array([1.0]), np.array([1.0]))  # the hook was restored
    assert t.tolist() == [2.0]


# -- ⟨v, J u⟩ == ⟨Jᵀ v, u⟩ on drawn compositions ----------------------------------------------------
UNARY = [lambda t: t.tanh(), lambda t: t.sin(), lambda t: t * 1.5, lambda t: t.exp() * 0.1, lambda t: t.sigmoid()]
MIXERS = [
    lambda t, W: t @ W,
    lambda t, W: t * t[::-1],
    lambda t, W: t + t.sum(axis=1, keepdims=True),
    lambda t, W: t[:, [2, 0, 0]] * t,
    lambda t, W: sr.nn.functional.softmax(t, dim=-1),
    lambda t, W: sr.concat([t[:, 1:], t[:, :1] * 2.0], axis=1),
]


@settings(deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(UNARY) - 1), st.integers(0, len(MIXERS) - 1)), min_size=1, max_size=5),
       st.integers(0, 2**31))  # fmt: skip
def test_adjoint_identity_with_grad(program, seed):
    rng = np.random.default_rng(seed)
    W = sr.tensor(rng.standard_normal((3, 3)) * 0.5)

    def f(x):
        for unary, mixer in program:
            x = MIXERS[mixer](UNARY[unary](x), W)
        return x

    x, u = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    out, ju = sr.jvp(f, x, u)
    v = rng.standard_normal(out.shape)
    leaf = sr.tensor(x, requires_grad=True)
    (jtv,) = sr.grad(f(leaf), [leaf], seed=v)
    assume(np.all(np.isfinite(ju)) and np.all(np.isfinite(jtv)))  # (exp can overflow: inf - inf has no identity)
    assert adjoint_gap(f, x, u, v, ju, jtv) <= 1e-10


def adjoint_gap(f, x, u, v, ju, jtv) -> float:
    """``|<v, J u> - <J^T v, u>|`` relative to ``<|v|, |J| |u|>``, where ``|J|`` sums the magnitudes of
    each entry's paths (the SumAbs semiring): the size of the terms both sides add and cancel, which
    their rounding errors scale with. (Relative to the result itself, a program whose terms cancel
    fails on rounding alone: two tied entries of a softmax over inputs near 3e4, exact derivative 0,
    gave 4.03e-9 against 4.02e-9 from terms near 1e5.)"""
    leaf = sr.tensor(x, requires_grad=True)
    magnitude = sr.backward(f(leaf), [leaf], semiring=SumAbs(), seed=v)[leaf]
    scale = float(np.sum(magnitude * np.abs(u)))
    gap = abs(float(np.sum(v * ju)) - float(np.sum(jtv * u)))
    return gap / scale if scale > 0 else gap


def test_adjoint_identity_fails_for_a_wrong_tangent():
    """The identity above can fail: a tangent off by a factor is caught."""
    x, u, v = np.array([0.3, -0.2]), np.array([1.0, 2.0]), np.array([0.5, 1.0])
    _, ju = sr.jvp(lambda t: t.tanh(), x, u)
    leaf = sr.tensor(x, requires_grad=True)
    (jtv,) = sr.grad(leaf.tanh(), [leaf], seed=v)
    assert np.isclose(np.sum(v * ju), np.sum(jtv * u))
    assert not np.isclose(np.sum(v * 2 * ju), np.sum(jtv * u))
    assert adjoint_gap(lambda t: t.tanh(), x, u, v, ju, jtv) <= 1e-10
    assert adjoint_gap(lambda t: t.tanh(), x, u, v, 2 * ju, jtv) > 0.1


# -- memory: no tape ---------------------------------------------------------------------------------
def _peak(run) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_jvp_through_a_long_chain_holds_a_few_layers():
    layers, n = 300, 32_768  # 300 layers of 256 KiB tensors (the 1,000 x 1 MB, scaled)
    x, u = np.linspace(-1, 1, n), np.ones(n)
    layer_bytes = n * 8

    def chain(t):
        for _ in range(layers):
            t = (t * 0.9).tanh()
        return t

    sr.jvp(lambda t: (t * 0.9).tanh(), x, u)  # first use: kernels load, caches fill
    peak_forward = _peak(lambda: sr.jvp(chain, x, u))
    assert peak_forward < 24 * layer_bytes, peak_forward / layer_bytes

    def reverse():
        leaf = sr.tensor(x, requires_grad=True)
        sr.grad(chain(leaf), [leaf], seed=u)

    peak_reverse = _peak(reverse)
    assert peak_reverse > 0.9 * layers * layer_bytes  # the tape: every layer's saved arrays
    assert peak_forward < peak_reverse / 10


def test_a_path_semiring_keeps_the_graph_unless_told():
    n, layers = 4096, 100

    def chain(t):
        for _ in range(layers):
            t = (t * 0.9).tanh()
        return t

    x, u = np.linspace(-1, 1, n), np.ones(n)
    lean = _peak(lambda: sr.jvp(chain, x, u, semiring=MaxAbsProduct(), keep_graph=False))
    assert lean < 30 * n * 8
