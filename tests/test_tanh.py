"""semirad's float64 tanh (:mod:`semirad.kernels.tanh`): accurate to about 2 ulp everywhere, exact at the
special values, and the same bits from the numba kernel and the numpy transcription."""

import math
from fractions import Fraction

import numpy as np
import pytest

import semirad as sr
from semirad import fast, kernels
from semirad.kernels import tanh as _tanh

needs_numba = pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")
# long double has 11 more bits than float64 on x86-64 Linux, where CI runs; elsewhere it may be float64
needs_long_double = pytest.mark.skipif(
    np.finfo(np.longdouble).nmant < 60, reason="no extended-precision long double to measure ulps against"
)
SPECIAL = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 1e-300, 2.2e-308, 19.0, 19.1, 20.0, 1e308])


def kernel_tanh(x):
    out = np.empty_like(x)
    from semirad.kernels import elementwise

    return elementwise.tanh(x, out)


def samples(n=400_000, seed=0):
    """Every regime of the algorithm: tiny to huge magnitudes, both signs, each reduction step k."""
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [
            rng.uniform(-1, 1, n),
            rng.uniform(-25, 25, n),
            rng.choice([-1, 1], n) * 10.0 ** rng.uniform(-320, 1.5, n),
            np.linspace(0, 2, n),  # dense where the result crosses 0.5 and k goes 0 -> 1 -> 2
        ]
    )


def ulps_from_exact(y, x):
    exact = np.tanh(x.astype(np.longdouble))
    ulp = np.spacing(exact.astype(np.float64)).astype(np.longdouble)
    return np.abs((y.astype(np.longdouble) - exact) / ulp).astype(float)


@needs_long_double
def test_error_is_at_most_about_two_ulp_and_mostly_correctly_rounded():
    x = samples()
    err = ulps_from_exact(_tanh.tanh_numpy(x), x)
    assert err.max() <= 2.2
    assert err.mean() <= 0.45
    # the tiny ones are x itself, as the exact tanh rounds them
    tiny = np.abs(x) < 1e-9
    assert tiny.sum() > 1000 and np.array_equal(_tanh.tanh_numpy(x[tiny]), x[tiny])


def test_special_values_are_exact():
    y = _tanh.tanh_numpy(SPECIAL)
    want = [0.0, -0.0, 1.0, -1.0, np.nan, 5e-324, -5e-324, 1e-300, 2.2e-308, 1.0, 1.0, 1.0, 1.0]
    np.testing.assert_array_equal(y, want)
    assert np.array_equal(np.signbit(y[:2]), [False, True])
    assert np.array_equal(_tanh.tanh_numpy(-SPECIAL[2:]), -_tanh.tanh_numpy(SPECIAL[2:]), equal_nan=True)


def test_it_is_odd_bit_for_bit_and_monotone_on_a_fine_grid():
    x = samples(50_000, seed=1)
    assert np.array_equal(_tanh.tanh_numpy(-x), -_tanh.tanh_numpy(x))
    grid = np.linspace(-20, 20, 400_001)
    assert (np.diff(_tanh.tanh_numpy(grid)) >= 0).all()


@needs_numba
def test_the_kernel_gives_the_transcriptions_bits():
    x = np.concatenate([samples(100_000, seed=2), SPECIAL])
    assert np.array_equal(kernel_tanh(x).view(np.int64), _tanh.tanh_numpy(x).view(np.int64))


def test_the_loop_in_plain_python_gives_the_transcriptions_bits():
    x = np.concatenate([samples(300, seed=5), SPECIAL])
    assert np.array_equal(_tanh.tanh_loop(x, np.empty_like(x)).view(np.int64), _tanh.tanh_numpy(x).view(np.int64))


@pytest.mark.parametrize("shape", [(), (1,), (7,), (33, 20), (3, 4, 5)])
def test_fast_tanh_is_semirads_with_the_kernels_and_numpys_without(impl, shape):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape) * 3
    y = fast.tanh(np, x)
    transposed = fast.tanh(np, x.T)  # a non-contiguous view
    want = _tanh.tanh_numpy(x) if kernels.enabled() else np.tanh(x)
    assert np.array_equal(fast.tanh_reference(np, x), _tanh.tanh_numpy(x))
    assert y.shape == x.shape and y.dtype == np.float64
    assert np.array_equal(y, want)
    assert np.array_equal(transposed, want.T)


def test_backend_tanh_leaves_other_dtypes_to_numpy():
    x = np.linspace(-3, 3, 101, dtype=np.float32)
    assert np.array_equal(fast.tanh(np, x), np.tanh(x)) and fast.tanh(np, x).dtype == np.float32
    scalar = np.float64(0.3)  # what 0.5 * a 0-d array gives
    assert fast.tanh_reference(np, scalar) == _tanh.tanh_numpy(np.array([0.3]))[0]


def test_tanh_and_sigmoid_ops_use_it_forward_and_their_gradients_follow(impl):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((40, 30)) * 4
    t = sr.tensor(x, requires_grad=True)
    y, s = t.tanh(), t.sigmoid()
    (gy,) = sr.grad(y.sum(), [t])
    (gs,) = sr.grad(s.sum(), [t])
    assert np.array_equal(y.numpy(), _tanh.tanh_numpy(x) if kernels.enabled() else np.tanh(x))
    assert np.array_equal(s.numpy(), fast.sigmoid_reference(np, x))
    np.testing.assert_allclose(gy, 1 - np.tanh(x) ** 2, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(gs, np.exp(-x) / (1 + np.exp(-x)) ** 2, rtol=1e-12, atol=1e-15)


def test_ln2_split_is_exact_where_it_is_used():
    assert _tanh.LN2_HI + _tanh.LN2_LO == math.log(2.0)
    for k in range(59):  # k * LN2_HI is exact: its significand has room for k's 6 bits
        assert Fraction(k * _tanh.LN2_HI) == k * Fraction(_tanh.LN2_HI)
