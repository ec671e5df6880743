"""LogMaxAbs: MaxAbsProduct's best paths in the log domain."""

import numpy as np
import pytest

import semirad as sr
from semirad.semirings import LogMaxAbs


def test_float32_chain_of_2000_halvings_does_not_underflow():
    x = sr.tensor(np.array([1.0, -3.0], dtype=np.float32), requires_grad=True, name="x")
    y = x
    for _ in range(2000):
        y = y * 0.5
    loss = y.sum()
    assert sr.trace(loss, [x])[x].tolist() == [0.0, 0.0]  # MaxAbsProduct underflows to 0
    r = sr.backward(loss, [x], semiring=LogMaxAbs())
    np.testing.assert_allclose(r[x], [2000 * np.log(0.5)] * 2, rtol=1e-12)
    assert r[x].dtype == np.float64
    assert r.sign(x).tolist() == [1, 1]
    path = r.path(x, 1)
    assert len(path.steps) == 2002 and path.steps[0].name == "x" and path.steps[-1].op == "sum"
    assert path.value == 0.0  # the product itself underflows even in float64...
    np.testing.assert_allclose(path.log_abs_value, 2000 * np.log(0.5), rtol=1e-9)  # ...its log does not
    assert path.sign == 1


def test_sign_of_a_long_negative_chain():
    x = sr.tensor(np.array([2.0], dtype=np.float32), requires_grad=True)
    y = x
    for _ in range(1001):
        y = y * -0.25
    r = sr.backward(y.sum(), [x], semiring=LogMaxAbs())
    np.testing.assert_allclose(r[x], [1001 * np.log(0.25)], rtol=1e-12)
    assert r.sign(x).tolist() == [-1] and r.path(x, 0).sign == -1


def test_agrees_with_max_abs_product_on_an_mlp():
    rng = np.random.default_rng(0)
    x = sr.tensor(rng.standard_normal((5, 4)), name="x")
    W1 = sr.tensor(rng.standard_normal((4, 6)), requires_grad=True, name="W1")
    W2 = sr.tensor(rng.standard_normal((6, 3)), requires_grad=True, name="W2")
    h = (x @ W1).relu()
    loss = (sr.log_softmax(h @ W2) * sr.tensor(rng.standard_normal((5, 3)))).sum()
    tr = sr.trace(loss, [W1, W2, h])
    r = sr.backward(loss, [W1, W2, h], semiring=LogMaxAbs())
    for t in (W1, W2, h):
        value = tr[t]
        with np.errstate(divide="ignore"):
            np.testing.assert_allclose(r[t], np.log(np.abs(value)), rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(r.sign(t), np.sign(value))
        for i in np.flatnonzero(value.reshape(-1))[:6]:
            index = np.unravel_index(i, t.shape)
            assert r.path(t, index).steps == tr.path(t, index).steps


def test_no_path_is_minus_inf_with_sign_0():
    x = sr.tensor([-1.0, 2.0], requires_grad=True, name="x")
    r = sr.backward((x.relu() * 3.0).sum(), [x], semiring=LogMaxAbs())
    np.testing.assert_allclose(r[x], [-np.inf, np.log(3.0)])
    assert r.sign(x).tolist() == [0, 1]
    with pytest.raises(ValueError, match="has no path to the output"):
        r.path(x, 0)
    assert sr.trace((x.relu() * 3.0).sum(), [x])[x].tolist() == [0.0, 3.0]


def test_ties_go_to_the_successor_created_first():
    for first, second, sign in ((2.0, -2.0, 1), (-2.0, 2.0, -1)):
        x = sr.tensor([1.0], requires_grad=True)
        a = x * first
        a.name = "a"
        b = x * second
        b.name = "b"
        r = sr.backward(a.sum() + b.sum(), [x], semiring=LogMaxAbs())
        assert r.sign(x).tolist() == [sign]
        assert r.path(x, 0).steps[1].name == "a"


def test_nan_reaching_the_sweep_is_reported():
    x = sr.tensor([1.0, -1.0], requires_grad=True)
    with pytest.raises(FloatingPointError, match="non-finite"):
        sr.backward(x.sqrt().sum(), [x], semiring=LogMaxAbs())


def test_repr_and_result_is_independent_of_the_sweep():
    assert repr(LogMaxAbs()) == "LogMaxAbs()"
    x = sr.tensor([1.0], requires_grad=True)
    r = sr.backward((x * 2.0).sum(), [x], semiring=LogMaxAbs())
    r[x][0] = 99.0
    assert r[x][0] == np.log(2.0)
