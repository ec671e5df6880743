"""bench.replay's floor (``numpy_by_hand``) computes the gradient it claims to: the same numbers as
``sr.grad`` of the tiny net, so that its time is a fair floor under a replay of the same ops."""

import numpy as np
import pytest

import semirad as sr
from bench.replay import numpy_by_hand
from bench.targets import tiny_net


@pytest.mark.parametrize("layers", [2, 5, 101])
def test_numpy_by_hand_is_the_gradient_of_the_tiny_net(layers):
    model, x = tiny_net(layers=layers)
    y = model(x)
    want = sr.grad((y * y).mean(), list(model.parameters()))
    got = numpy_by_hand(model, x)()
    assert len(got) == len(want) == 2 * layers
    for a, b in zip(got, want):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-300)
