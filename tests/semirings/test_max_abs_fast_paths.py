"""MaxAbsProduct's shortcuts for small graphs (a bias's sum over its batch, a vector times a matrix)
give the bits of the general steps and of the array reference, dead ends and ties included."""

import numpy as np
import pytest

import semirad as sr
from semirad import backend
from semirad.semirings.max_abs import dispatch
from semirad.semirings.max_abs import reference as max_abs_reference

NO_PATH = backend.NO_PATH


def _gradient(rng, shape, dtype):
    """Values with ties (small integers), zeros and a dead end ``(0, NO_PATH)``; increasing ids."""
    value = rng.integers(-2, 3, shape).astype(dtype)
    ids = np.arange(100, 100 + value.size, dtype=np.int64).reshape(shape)
    dead = rng.random(shape) < 0.2
    value[dead], ids[dead] = 0.0, NO_PATH
    return value, ids


def _same(got, want):
    for a, b in zip(got, want):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("rows", [1, 2, 5])
def test_the_sum_over_a_batch_is_the_reference_sum_of_rows(impl, dtype, rows):
    rng = np.random.default_rng(rows)
    S = sr.semirings.MaxAbsProduct()
    for _ in range(20):
        g = _gradient(rng, (rows, 7), dtype)
        want = max_abs_reference.sum_rows(np, *g)
        _same(S.sum(g, (0,)), want)
        _same(S.sum(g, [0]), want)  # (a list: the general steps)
        _same(S.sum(g, (0,), keepdims=True), [a.reshape(1, 7) for a in want])


@pytest.mark.parametrize("shape, axes", [((1, 3, 4), (0,)), ((3, 1, 4), (1,)), ((1, 4, 1), (0, 2)), ((2, 3), (0, 1))])
def test_a_sum_over_axes_of_one_element_each_is_a_reshape(impl, shape, axes):
    rng = np.random.default_rng(1)
    S = sr.semirings.MaxAbsProduct()
    g = _gradient(rng, shape, np.float64)
    for keepdims in (False, True):
        value, ids = S.sum(g, axes, keepdims=keepdims)
        moved = [np.moveaxis(a, axes, range(len(axes))) for a in g]
        rows = [a.reshape(int(np.prod([shape[d] for d in axes])), -1) for a in moved]
        want = max_abs_reference.sum_rows(np, *rows)
        out_shape = np.sum(g[0], axis=axes, keepdims=keepdims).shape
        _same((value, ids), [a.reshape(out_shape) for a in want])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layout", ["C", "F", "strided ids"])
def test_a_vector_times_a_matrix_is_the_reference_contraction(impl, dtype, layout):
    rng = np.random.default_rng(2)
    for n, p in [(1, 5), (3, 4), (20, 20), (9, 1)]:
        value, ids = _gradient(rng, (1, n), dtype)
        weights = rng.integers(-2, 3, (n, p)).astype(dtype)
        weights[:, 0] = 0.0  # a column of zeros: every product ties, dead ends lose to real paths
        if layout == "F":
            weights = np.asfortranarray(weights)
        if layout == "strided ids":
            ids = np.repeat(ids, 2, axis=1)[:, ::2]
        got = dispatch.matmul(np, value, ids, weights)
        want = max_abs_reference.matmul(np, value, ids, weights)
        want = max_abs_reference.real_paths_win_matmul_ties(np, value, ids, weights, *want)
        _same(got, want)


@pytest.mark.parametrize("batch", [1, 3])
def test_a_trace_of_a_small_network_does_not_depend_on_the_kernels(batch):
    """Linear + tanh layers with a dead end (outputs unused), at batch 1 (the shortcuts) and 3: one
    recorded graph, traced with the numba kernels and with the numpy steps."""
    sr.manual_seed(0)
    layers = [sr.nn.Linear(4, 6), sr.nn.Linear(6, 6), sr.nn.Linear(6, 3)]
    h = sr.tensor(np.random.default_rng(3).standard_normal((batch, 4)))
    for layer in layers:
        h = sr.tanh(layer(h))
    loss = (h[:, :2] * h[:, :2]).sum()
    params = [p for layer in layers for p in layer.parameters()]

    def trace():
        tr = sr.trace(loss, params)
        return [tr.raw(p) for p in params], str(tr.path(params[0], (0, 0)))

    with sr.kernels.using("numpy"):
        want, want_path = trace()
    got, got_path = trace()
    assert got_path == want_path
    for (v, i), (wv, wi) in zip(got, want):
        np.testing.assert_array_equal(v, wv)
        np.testing.assert_array_equal(i, wi)
    assert (want[-1][1][2] == NO_PATH).all()  # the last bias's unused output: a dead end
