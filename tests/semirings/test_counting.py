"""Boolean, Count, SumAbs and Entropy on graphs whose answers are known in closed form."""

import numpy as np

import semirad as sr
from semirad.semirings import Boolean, Count, Entropy, SumAbs


def test_boolean_finds_dead_relus_and_masked_positions():
    x = sr.tensor([[-1.0, 2.0, 3.0]], requires_grad=True)
    mask = np.array([[True, True, False]])
    loss = sr.where(mask, x.relu(), 0.0).sum()
    r = sr.backward(loss, [x], semiring=Boolean())
    assert r[x].dtype == bool and r[x].tolist() == [[False, True, False]]


def test_count_counts_parallel_edges_and_broadcast_copies():
    x = sr.tensor([1.0, 2.0], requires_grad=True)
    r = sr.backward((x * x).sum() + sr.broadcast_to(x, (5, 2)).sum(), [x], semiring=Count())
    assert r[x].dtype == np.float64 and r[x].tolist() == [7.0, 7.0]


def test_count_and_entropy_of_2_to_the_60_paths():
    x = sr.tensor(np.ones(1, dtype=np.float32), requires_grad=True)
    y = x
    for _ in range(60):
        y = y + y
    loss = y.sum()
    assert sr.backward(loss, [x], semiring=Count())[x].tolist() == [2.0**60]
    np.testing.assert_allclose(sr.backward(loss, [x], semiring=Entropy())[x], [60 * np.log(2)], rtol=1e-12)


def test_sum_abs_bounds_the_gradient_and_equals_it_without_cancellation():
    rng = np.random.default_rng(1)
    x = sr.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    W = sr.tensor(rng.standard_normal((4, 2)))
    loss = ((x @ W).tanh() * (x @ W)).sum()
    grad = sr.grad(loss, [x])[0]
    flow = sr.backward(loss, [x], semiring=SumAbs())[x]
    assert np.all(flow >= np.abs(grad) - 1e-12) and np.any(flow > np.abs(grad) + 1e-6)
    positive = (x.exp() * 2.0 + x.exp()).sum()  # every partial positive: nothing cancels
    np.testing.assert_allclose(sr.backward(positive, [x], semiring=SumAbs())[x], sr.grad(positive, [x])[0])
    cancel = (x * 3.0 - x * 3.0).sum()
    np.testing.assert_allclose(sr.backward(cancel, [x], semiring=SumAbs())[x], np.full((3, 4), 6.0))


def test_entropy_of_one_path_equal_paths_and_no_path():
    x = sr.tensor([1.0, -1.0, 2.0], requires_grad=True)
    one = sr.backward((x * 3.0).tanh().sum(), [x], semiring=Entropy())[x]
    np.testing.assert_allclose(one, 0.0, atol=1e-12)
    equal = sr.backward(sr.broadcast_to(x, (4, 3)).sum(), [x], semiring=Entropy())[x]
    np.testing.assert_allclose(equal, np.log(4.0), rtol=1e-12)
    none = sr.backward(x.relu().sum() + (x * 0.0).sum(), [x], semiring=Entropy())[x]
    np.testing.assert_allclose(none, [0.0, 0.0, 0.0], atol=1e-12)


def test_entropy_is_scale_free_and_matches_the_formula():
    x = sr.tensor([1.0], requires_grad=True)
    flows = np.array([1.0, 2.0, 5.0])
    loss = (sr.broadcast_to(x, (3,)) * sr.tensor(flows)).sum()
    p = flows / flows.sum()
    expected = -(p * np.log(p)).sum()
    for seed in (1.0, 1e-200, -7.0):
        r = sr.backward(loss * 1.0, [x], semiring=Entropy(), seed=np.array(seed))
        np.testing.assert_allclose(r[x], [expected], rtol=1e-9)
