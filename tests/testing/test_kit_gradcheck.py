"""semirad.testing.gradcheck and jacobian_fd: they pass on right rules and name what a wrong one gets wrong."""

import numpy as np
import pytest
from broken import forgot_the_two

import semirad as sr
from semirad.testing import gradcheck, jacobian_fd


def test_jacobian_fd_of_a_small_function():
    x = sr.tensor([1.0, -2.0], requires_grad=True)
    w = sr.tensor([[0.5, 1.0, 2.0], [-1.0, 0.0, 3.0]], requires_grad=True)
    Jx, Jw = jacobian_fd(lambda a, b: a @ b, [x, w])
    assert Jx.shape == (3, 2) and Jw.shape == (3, 2, 3)
    np.testing.assert_allclose(Jx, w.numpy().T, atol=1e-8)
    np.testing.assert_allclose(Jw[1, :, 1], x.numpy(), atol=1e-8)
    np.testing.assert_allclose(Jw[1, :, 0], 0.0, atol=1e-8)


def test_jacobian_fd_skips_constants():
    x = sr.tensor([1.0, 2.0], requires_grad=True)
    c = sr.tensor([3.0, 4.0])
    Jx, Jc, Ja = jacobian_fd(lambda a, b, arr: a * b + arr, [x, c, np.ones(2)])
    assert Jc is None and Ja is None
    np.testing.assert_allclose(Jx, np.diag([3.0, 4.0]), atol=1e-8)


@pytest.mark.parametrize("n", [3, 40])  # the full Jacobian, and a random seed vector
def test_gradcheck_passes_on_right_rules(n):
    rng = np.random.default_rng(n)
    x = sr.tensor(rng.uniform(0.2, 2.0, n), requires_grad=True, name="x")
    w = sr.tensor(rng.standard_normal((n, 2)), requires_grad=True, name="w")
    assert gradcheck(lambda a, b: (a.log()[:, None] * b).tanh() @ np.ones(2), [x, w], seed=1)
    assert gradcheck(lambda a: sr.softmax(a * 3.0), [x])
    assert gradcheck(lambda a: (a * a).sum(), x)  # one tensor, a scalar output


def test_gradcheck_with_a_given_seed_array_and_float32_inputs():
    x = sr.tensor(np.array([0.5, -1.5, 2.0], dtype=np.float32), requires_grad=True)
    assert gradcheck(lambda a: a.exp() * a, [x], seed=np.array([1.0, -2.0, 0.5]))


@pytest.mark.parametrize("n", [2, 30])
def test_gradcheck_names_input_element_analytic_and_numeric(n):
    x = sr.tensor(np.linspace(1.0, 2.0, n), requires_grad=True, name="x")
    c = sr.tensor(np.ones(n))
    with pytest.raises(AssertionError) as error:
        gradcheck(lambda const, a: forgot_the_two(a) + const, [c, x])
    message = str(error.value)
    assert "input 1 'x'" in message and "element (0,)" in message
    if n == 2:  # the full Jacobian: d(x²)/dx at x = 1 is 2, the rule says 1
        assert "analytic 1.0" in message and "numeric 2.0" in message and "output element (0,)" in message
    else:  # a random seed vector s: analytic s[0] x[0], numeric 2 s[0] x[0]
        analytic = float(message.split("analytic ")[1].split(",")[0])
        numeric = float(message.split("numeric ")[1].split(" ")[0])
        assert numeric == pytest.approx(2 * analytic, rel=1e-6) and "random seed" in message
    assert gradcheck(lambda a: forgot_the_two(a), [x], raise_exception=False) is False


def test_gradcheck_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="requires grad"):
        gradcheck(lambda a: a * 2.0, [sr.tensor([1.0])])


def test_gradcheck_with_an_input_the_output_does_not_depend_on():
    x, y = sr.tensor([1.0, 2.0], requires_grad=True), sr.tensor([3.0], requires_grad=True)
    assert gradcheck(lambda a, b: a * 2.0, [x, y])
    assert gradcheck(lambda a: sr.tensor([1.0, 2.0]), [x])  # a constant output: every gradient 0
