"""semirad.testing.strategies: what each strategy draws, and a clear ImportError without hypothesis."""

import subprocess
import sys
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import semirad as sr
from semirad.semirings import KBest, MaxAbsProduct
from semirad.testing import gradcheck
from semirad.testing.strategies import arrays, broadcastable_shapes, distinct, floats, semiring_values, tensors


@given(floats(-1, 1, away_from=[0.0, 0.5], gap=0.1))
def test_floats_keep_away_from_kinks(x):
    assert -1 <= x <= 1 and abs(x) >= 0.1 - 1e-12 and abs(x - 0.5) >= 0.1 - 1e-12


@given(arrays(st.tuples(st.integers(1, 3), st.integers(1, 3)), away_from=[0.0]))
def test_arrays_take_a_shape_strategy(a):
    assert a.ndim == 2 and a.dtype == np.float64 and (np.abs(a) >= 0.1 - 1e-12).all()


@given(tensors((3,), dtype=np.float32, elements=st.floats(-2, 2, width=32)))
def test_tensors_are_leaves_that_require_grad(x):
    assert isinstance(x, sr.Tensor) and x.requires_grad and x.dtype == np.float32 and x.shape == (3,)


@given(tensors((2, 2), away_from=[0.0]))
def test_a_property_of_a_custom_function(x):
    assert gradcheck(lambda t: (t.abs() * t).sum(axis=0), [x])


@given(broadcastable_shapes(3, max_dims=4))
def test_broadcastable_shapes_broadcast(shapes):
    assert len(shapes) == 3
    np.broadcast_shapes(*shapes)


@given(broadcastable_shapes(2, signature=np.matmul.signature))
def test_broadcastable_shapes_for_matmul(shapes):
    a, b = shapes
    np.matmul(np.zeros(a), np.zeros(b))


@given(distinct((3, 2)))
def test_distinct_values(a):
    assert len(np.unique(a)) == 6


@given(semiring_values(MaxAbsProduct(), (4,), n=2))
def test_semiring_values_have_distinct_ids_as_the_sweep_makes_them(ab):
    S = MaxAbsProduct()
    a, b = ab
    real = lambda v: v[1][v[1] != sr.backend.NO_PATH]  # noqa: E731
    assert not set(real(a).tolist()) & set(real(b).tolist())
    for x, y in zip(S.add(a, b), S.add(b, a)):
        np.testing.assert_array_equal(x, y)


@given(semiring_values(KBest(2), (2, 3), terms=2))
def test_semiring_values_of_a_ranked_semiring(value):
    key, sign, code = value
    assert key.shape == sign.shape == code.shape == (2, 2, 3)


def test_a_clear_message_without_hypothesis():
    code = (
        "import sys; sys.modules['hypothesis'] = None\n"
        "import semirad.testing as t\n"
        "t.gradcheck  # the rest of the kit works\n"
        "try:\n"
        "    from semirad.testing import strategies\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {"SEMIRAD_KERNELS": "numpy", "PATH": "", "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env, cwd=root)
    assert "semirad.testing.strategies needs hypothesis" in out.stdout, out.stderr
    assert "pip install 'semirad[test]'" in out.stdout
