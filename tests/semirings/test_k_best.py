"""KBest(k): the k best paths of every element, with their paths."""

import numpy as np
import pytest

import semirad as sr
from semirad.semirings import KBest


def mlp(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    x = sr.tensor(rng.standard_normal((4, 3)).astype(dtype), name="x")
    W1 = sr.tensor(rng.standard_normal((3, 5)).astype(dtype), requires_grad=True, name="W1")
    W2 = sr.tensor(rng.standard_normal((5, 2)).astype(dtype), requires_grad=True, name="W2")
    loss = ((x @ W1).tanh() @ W2).sum()
    return loss, W1, W2


def test_k_best_of_one_is_the_trace_bit_for_bit():
    loss, W1, W2 = mlp(np.float32)
    tr = sr.trace(loss, [W1, W2])
    r = sr.backward(loss, [W1, W2], semiring=KBest(1))
    for t in (W1, W2):
        assert r[t].shape == (1,) + t.shape and r[t].dtype == np.float32
        np.testing.assert_array_equal(r[t][0], tr[t])
        assert r.path(t, (1, 1)).steps == tr.path(t, (1, 1)).steps


def test_k_best_values_are_ordered_and_paths_match_them():
    loss, W1, W2 = mlp()
    k = 4
    r = sr.backward(loss, [W1], semiring=KBest(k))
    v = r[W1]
    assert v.shape == (k, 3, 5)
    assert np.all(np.abs(v[:-1]) >= np.abs(v[1:]))
    np.testing.assert_array_equal(v[0], sr.trace(loss, [W1])[W1])
    paths = r.paths(W1, (2, 3))
    assert len(paths) == k  # W1[2, 3] reaches the loss through 4 rows x 2 outputs = 8 paths
    for rank, p in enumerate(paths):
        np.testing.assert_allclose(p.value, v[rank, 2, 3], rtol=1e-12)
        assert p.steps[0].name == "W1" and p.steps[0].index == (2, 3)
        assert r.path(W1, (2, 3), rank).steps == p.steps
    assert len({tuple(p.steps) for p in paths}) == k  # distinct vertex sequences here


def test_parallel_edges_are_distinct_paths():
    x = sr.tensor([3.0], requires_grad=True, name="x")
    r = sr.backward((x * x + x).sum(), [x], semiring=KBest(4))
    assert r[x][:, 0].tolist() == [3.0, 3.0, 1.0, 0.0]
    paths = r.paths(x, 0)
    assert [p.value for p in paths] == [3.0, 3.0, 1.0]
    assert paths[0].steps == paths[1].steps  # x*x: two edges between the same vertices


def test_parallel_edges_of_different_weights_are_followed_in_rank_order():
    x = sr.tensor([3.0], requires_grad=True, name="x")
    y = sr.power(x, x)  # edges x -> y of weight x * x**(x-1) = 27 and x**x * log(x) = 29.66
    r = sr.backward(y.sum(), [x], semiring=KBest(2))
    np.testing.assert_allclose(r[x][:, 0], [27 * np.log(3.0), 27.0])
    assert [p.weights[0] for p in r.paths(x, 0)] == pytest.approx([27 * np.log(3.0), 27.0])


def test_parallel_edges_of_opposite_sign():
    x = sr.tensor([2.0], requires_grad=True)
    r = sr.backward((x - x).sum(), [x], semiring=KBest(3))
    assert r[x][:, 0].tolist() == [1.0, -1.0, 0.0]
    assert [p.value for p in r.paths(x, 0)] == [1.0, -1.0]


def test_fewer_paths_than_k_and_bad_ranks():
    x = sr.tensor([-1.0, 2.0], requires_grad=True, name="x")
    r = sr.backward((x.relu() * 2.0).sum(), [x], semiring=KBest(3))
    assert r[x].tolist() == [[0.0, 2.0], [0.0, 0.0], [0.0, 0.0]]
    assert r.paths(x, 0) == []
    assert [p.value for p in r.paths(x, 1)] == [2.0]
    with pytest.raises(ValueError, match="rank 1"):
        r.path(x, 1, rank=1)
    with pytest.raises(IndexError):
        r.path(x, 1, rank=3)


@pytest.mark.parametrize("k", [0, -1, 2.5, True])
def test_k_must_be_a_positive_integer(k):
    with pytest.raises(ValueError):
        KBest(k)


def test_repeated_gather_and_broadcast_keep_the_best_k():
    x = sr.tensor([1.0, 2.0, 3.0], requires_grad=True, name="x")
    w = np.array([[1.0], [4.0], [-2.0], [0.5]])
    y = x[np.array([0, 2, 0, 0])] * 1.0  # x[0] feeds three outputs
    loss = (sr.broadcast_to(y, (1, 4)) @ sr.tensor(w)).sum()
    r = sr.backward(loss, [x], semiring=KBest(3))
    assert r[x][:, 0].tolist() == [-2.0, 1.0, 0.5]  # x[0] -> y[0], y[2], y[3] (weights 1, -2, 0.5)
    assert r[x][:, 2].tolist() == [4.0, 0.0, 0.0]
    assert r[x][:, 1].tolist() == [0.0, 0.0, 0.0]
