"""The ops of issue 21: ``erf``, ``cumsum``, ``sort``/``argsort``/``topk``, ``argmax``/``argmin``,
``take_along_axis``/``gather`` and ``einsum``.

For each: forward parity with numpy (the ``sr.`` function) and PyTorch (the Tensor method), every input
gradient against PyTorch in float64, finite differences, the per-op semiring oracle of
test_semiring_consistency.py (every semiring, MaxAbs backpointers and one-edge paths), and a trace
whose best paths name the op. Accuracy of ``erf`` against mpmath is in tests/test_accuracy.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import test_semiring_consistency as oracle
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from test_gradcheck import numerical_grads
from test_semiring_consistency import EXAMPLES, check_op

import semirad as sr
from semirad import kernels
from semirad.ops.special import erf_reference
from semirad.semirings import MaxAbsProduct

torch = pytest.importorskip("torch")


def rng_for(name: str, seed: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, sum(map(ord, name))])


def distinct(rng, shape) -> np.ndarray:
    """Pairwise distinct values (no ties), in a random order."""
    n = int(np.prod(shape, dtype=np.int64))
    return (rng.permutation(n) - n / 2).reshape(shape) * 0.25 + rng.uniform(-0.05, 0.05, shape)


def as_numpy(t):
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def check_torch_parity(ours, theirs, arrays, n_outputs_differentiable=None):
    """``ours(*tensors)`` against ``theirs(*torch tensors)`` in float64: the forward value(s) and the
    gradient of every input for a random seed of each differentiable output."""
    xs = [sr.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, tout = ours(*xs), theirs(*ts)
    outs, touts = (out, tout) if isinstance(out, tuple) else ((out,), (tout,))
    assert len(outs) == len(touts)
    for o, t in zip(outs, touts, strict=True):
        assert o.shape == tuple(t.shape)
        np.testing.assert_array_equal(o.numpy(), as_numpy(t))
    diff = [(o, t) for o, t in zip(outs, touts, strict=True) if o.dtype.kind == "f"]
    assert diff
    rng = np.random.default_rng(0)
    seeds = [rng.standard_normal(o.shape) for o, _ in diff]
    loss = sum(((o * s).sum() for (o, _), s in zip(diff, seeds, strict=True)), sr.tensor(0.0))
    ours_g = sr.grad(loss, xs)
    sum((t * torch.tensor(s)).sum() for (_, t), s in zip(diff, seeds, strict=True)).backward()
    for k, (g, t) in enumerate(zip(ours_g, ts, strict=True)):
        want = np.zeros(t.shape) if t.grad is None else t.grad.numpy()
        np.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-13, err_msg=f"input {k}")


def check_finite_differences(fn, arrays, rtol=1e-6, atol=1e-7):
    """SumProduct gradients against central differences of ``sum(seed * fn(...))``."""
    xs = [sr.tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    out = fn(*xs)
    seed = np.random.default_rng(1).uniform(0.5, 2.0, out.shape) * np.random.default_rng(2).choice([-1, 1], out.shape)
    got = sr.grad(out, xs, seed=seed)
    for k, (g, want) in enumerate(zip(got, numerical_grads(fn, [x.numpy() for x in xs], seed), strict=True)):
        np.testing.assert_allclose(g, want, rtol=rtol, atol=atol, err_msg=f"input {k}")


def check_composite(fn, arrays, rng):
    """The per-op oracle for a composite (several ops, so its best paths have several edges): every
    semiring's value against the contraction of the composite's Jacobian, which holds where each input
    element reaches each output element by one path at most (einsum of one or two operands, a reshape
    before an op); for MaxAbsProduct, each best path ends at the output element of the best product
    and its weights multiply to its value."""
    check_op(fn, arrays, rng, semirings=[S for S in oracle.SEMIRINGS if not isinstance(S, MaxAbsProduct)])
    xs = [sr.tensor(a, requires_grad=True, name=f"x{k}") for k, a in enumerate(arrays)]
    y = fn(*xs)
    g = np.asarray(rng.standard_normal(y.shape) + 0.0)
    tr = sr.backward(y, xs, semiring=MaxAbsProduct(), seed=g)
    for x, J in zip(xs, oracle.dense_jacobians(y, xs), strict=True):
        expected = oracle.semiring_contraction(MaxAbsProduct(), J, g, y.dtype)
        np.testing.assert_allclose(np.asarray(tr[x]).reshape(-1), expected, rtol=1e-12, atol=1e-14)
        for i in np.flatnonzero(expected):
            path = tr.path(x, tuple(int(k) for k in np.unravel_index(i, x.shape)))
            assert path.steps[-1].shape == y.shape and path.value == pytest.approx(expected[i], rel=1e-12)
            best = int(np.argmax(np.abs(J[:, i] * g.reshape(-1))))
            assert (np.ravel_multi_index(path.steps[-1].index, y.shape) if y.shape else 0) == best


def check_trace_names(loss, x, op_name: str):
    """A trace from ``loss`` to ``x``: finite, non-zero where the gradient is, and the best path of the
    largest element goes through ``op_name`` with the product of its weights equal to its value."""
    tr = sr.trace(loss, [x])
    values = np.asarray(tr[x])
    assert np.isfinite(values).all()
    g = sr.grad(loss, [x])[0]
    assert np.all((values != 0) | (g == 0))
    index = np.unravel_index(int(np.abs(values).argmax()), x.shape)
    path = tr.path(x, tuple(int(i) for i in index))
    ops = [step.op for step in path.steps]
    assert op_name in ops, ops
    assert path.value == pytest.approx(float(values[index]), rel=1e-12)
    return tr


# -- erf --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_erf_matches_pytorch_forward_and_gradient(impl, dtype):
    x = np.concatenate([np.linspace(-6, 6, 121), [0.0, -0.0, 1e-300, 27.0, -40.0, np.inf, -np.inf]]).astype(dtype)
    t = sr.tensor(x, requires_grad=True)
    y = t.erf()
    (g,) = sr.grad(y.sum(), [t])
    tt = torch.tensor(x, requires_grad=True)
    torch.erf(tt).sum().backward()
    assert y.dtype == dtype and g.dtype == dtype
    tol = dict(rtol=1e-15, atol=0) if dtype == np.float64 else dict(rtol=1e-6, atol=0)
    np.testing.assert_allclose(y.numpy(), torch.erf(tt).detach().numpy(), **tol)
    np.testing.assert_allclose(g, tt.grad.numpy(), rtol=4e-15 if dtype == np.float64 else 1e-6, atol=0)
    assert np.signbit(y.numpy()[x == 0]).tolist() == np.signbit(x[x == 0]).tolist()  # erf(-0.0) is -0.0
    assert sr.erf(x).numpy().tobytes() == y.numpy().tobytes()


def test_erf_of_integers_and_nan(impl):
    assert sr.erf(np.array([0, 1, -2])).dtype == np.float64
    np.testing.assert_array_equal(sr.erf([0, 1, -2]).numpy(), erf_reference(np.array([0.0, 1.0, -2.0])))
    t = sr.tensor([np.nan, 1.0], requires_grad=True)
    (g,) = sr.grad(t.erf().sum(), [t])
    assert np.isnan(t.erf().numpy()[0]) and np.isnan(g[0]) and np.isfinite(g[1])


def test_erf_kernel_and_numpy_give_the_same_bits():
    x = np.random.default_rng(0).standard_normal((50, 40)) * 3
    with kernels.using("numpy"):
        slow = sr.erf(x).numpy()
    kernels.wait()
    with kernels.using("auto"):
        fast = sr.erf(x[:, ::-1].T.T[:, ::-1]).numpy()  # a non-contiguous view with the same values
    assert slow.tobytes() == fast.tobytes()


def test_erf_finite_differences_oracle_and_trace():
    rng = rng_for("erf")
    check_finite_differences(sr.erf, [rng.standard_normal((3, 4))])
    check_op(lambda a: a.erf(), [rng.standard_normal((2, 3))], rng)
    x = sr.tensor(rng.standard_normal((3, 4)), requires_grad=True, name="x")
    check_trace_names((x.erf() * 2.0).sum(), x, "erf")


# -- cumsum -----------------------------------------------------------------------------------------

CUMSUM_SHAPES = [((5,), 0), ((3, 4), 1), ((4, 3), 0), ((2, 7, 3), 1), ((2, 9), -1), ((1,), 0), ((2, 0, 3), 1),
                 ((17,), 0), ((2, 3), None), ((), None), ((), 0), ((), -1)]  # fmt: skip


@pytest.mark.parametrize("shape, axis", CUMSUM_SHAPES)
def test_cumsum_matches_numpy(shape, axis):
    a = rng_for("cumsum").standard_normal(shape)
    got = sr.cumsum(a, axis=axis)
    want = np.cumsum(a, axis=axis)
    assert got.shape == want.shape
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("shape, dim", [s for s in CUMSUM_SHAPES if s[1] is not None])
def test_cumsum_method_matches_pytorch(shape, dim):
    a = rng_for("cumsum").standard_normal(shape)
    check_torch_parity(lambda x: x.cumsum(dim), lambda x: x.cumsum(dim), [a])


def test_cumsum_method_names_and_errors():
    x = sr.tensor(np.arange(6.0).reshape(2, 3))
    assert x.cumsum(axis=1).tolist() == x.cumsum(dim=1).tolist() == [[0.0, 1.0, 3.0], [3.0, 7.0, 12.0]]
    with pytest.raises(TypeError, match="Tensor.cumsum.*both 'dim' and 'axis'"):
        x.cumsum(dim=0, axis=0)
    with pytest.raises(TypeError, match="Tensor.cumsum"):
        x.cumsum()
    with pytest.raises(sr.OpError, match="cumsum.*2"):
        x.cumsum(2)
    with pytest.raises(sr.OpError, match="cumsum"):
        sr.cumsum(x, axis=(0, 1))
    assert sr.cumsum(np.array([1, 2, 3])).dtype == np.int64
    cast = sr.tensor(np.arange(3.0), requires_grad=True).cumsum(0, dtype="float32")
    assert cast.dtype == np.float32 and cast.requires_grad and cast.tolist() == [0.0, 1.0, 3.0]


@pytest.mark.parametrize("shape, axis", [((5,), 0), ((3, 4), 1), ((4, 3), -2), ((2, 6, 2), 1), ((1, 3), 0)])
def test_cumsum_every_semiring_and_finite_differences(shape, axis):
    rng = rng_for(f"cumsum{shape}")
    check_op(lambda a: sr.cumsum(a, axis=axis), [rng.standard_normal(shape)], rng)
    check_composite(lambda a: sr.cumsum(a), [rng.standard_normal(shape)], rng)  # flattened first
    check_finite_differences(lambda a: a.cumsum(axis), [rng.standard_normal(shape)])


@settings(max_examples=EXAMPLES)
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=6), data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_cumsum_shapes_every_semiring(shape, data, seed):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    rng = np.random.default_rng(seed)
    check_op(lambda a: sr.cumsum(a, axis=axis), [rng.standard_normal(shape)], rng)


def test_cumsum_best_paths_stay_on_real_edges():
    """``x[i]`` reaches only ``out[j]`` with ``j >= i``: where every such ``out[j]`` has a zero gradient the
    best path (value 0) still goes to one of them, never to an earlier output (a contraction with a
    triangular 0/1 matrix would pick ``out[0]``, the first of the tied zeros)."""
    x = sr.tensor(np.arange(1.0, 7.0), requires_grad=True, name="x")
    y = x.cumsum(0)
    loss = (y * np.array([1.0, -3.0, 2.0, 0.0, 0.0, 0.0])).sum()
    tr = sr.trace(loss, [x])
    assert tr[x].tolist() == [-3.0, -3.0, 2.0, 0.0, 0.0, 0.0]
    for i in range(6):
        path = tr.path(x, (i,))
        (j,) = path.steps[1].index
        assert path.steps[1].op == "cumsum" and j >= i, (i, j)
        assert j == [1, 1, 2, 3, 4, 5][i]  # ties (i = 0: |-3| beats 1 and 2) go to the smaller id
    tr2 = sr.backward(loss, [x], semiring=sr.semirings.Count())
    assert tr2[x].tolist() == [3.0, 2.0, 1.0, 0.0, 0.0, 0.0]  # paths through non-zero partials only


def test_cumsum_trace_names_the_op():
    rng = rng_for("cumsum-trace")
    x = sr.tensor(rng.standard_normal((3, 5)), requires_grad=True, name="x")
    check_trace_names((x.cumsum(1).tanh() * rng.standard_normal((3, 5))).sum(), x, "cumsum")


# -- sort, argsort, topk ------------------------------------------------------------------------------


@pytest.mark.parametrize("shape, axis", [((7,), -1), ((3, 5), 0), ((3, 5), 1), ((2, 3, 4), 1), ((3, 4), None),
                                         ((), None), ((), -1)])  # fmt: skip
def test_sort_and_argsort_match_numpy(shape, axis):
    rng = rng_for("sort")
    a = rng.integers(-3, 4, shape).astype(np.float64)  # ties: the stable order
    if a.ndim or axis is None:
        np.testing.assert_array_equal(sr.sort(a, axis=axis).numpy(), np.sort(a, axis=axis))
    else:  # numpy's sort refuses an axis of a 0-d array; its argsort takes the array as 1-D
        with pytest.raises(sr.OpError, match="sort: axis -1 is out of range"):
            sr.sort(a, axis=axis)
    np.testing.assert_array_equal(sr.argsort(a, axis=axis).numpy(), np.argsort(a, axis=axis, kind="stable"))
    assert sr.argsort(a, axis=axis).dtype == np.int64 and not sr.argsort(a, axis=axis).requires_grad


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("shape, dim", [((7,), -1), ((3, 5), 0), ((3, 5), 1), ((2, 3, 4), 1), ((), 0)])
def test_sort_method_matches_pytorch(shape, dim, descending):
    a = distinct(rng_for("sort-torch"), shape)
    check_torch_parity(lambda x: tuple(x.sort(dim, descending)), lambda x: tuple(x.sort(dim, descending)), [a])
    check_torch_parity(lambda x: x.argsort(dim, descending) * 1.0 + x.sum() * 0,
                       lambda x: x.argsort(dim, descending) * 1.0 + x.sum() * 0, [a])  # fmt: skip


@pytest.mark.parametrize("descending", [False, True])
def test_sort_ties_and_nan_as_pytorch_stable(descending):
    a = np.array([[2.0, 1.0, np.nan, 2.0, 1.0, -0.0, 0.0, np.nan], [0.0, 0.0, 0.0, 5.0, -1.0, 5.0, 3.0, 5.0]])
    values, indices = sr.tensor(a).sort(descending=descending)
    want = torch.tensor(a).sort(descending=descending, stable=True)
    np.testing.assert_array_equal(values.numpy(), want.values.numpy())
    np.testing.assert_array_equal(indices.numpy(), want.indices.numpy())
    result = sr.tensor(a).sort(1, descending)
    assert result.values is result[0] and result.indices is result[1]


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("shape, k, dim", [((7,), 3, -1), ((4, 5), 2, 0), ((4, 5), 5, 1), ((2, 3, 4), 1, 1),
                                           ((3, 4), 0, 1), ((), 1, 0)])  # fmt: skip
def test_topk_matches_pytorch(shape, k, dim, largest):
    a = distinct(rng_for("topk"), shape)
    if k:
        check_torch_parity(lambda x: tuple(x.topk(k, dim, largest)), lambda x: tuple(x.topk(k, dim, largest)), [a])
    values, indices = sr.tensor(a).topk(k, dim=dim, largest=largest)
    want = torch.tensor(a).topk(k, dim=dim, largest=largest)
    assert values.shape == tuple(want.values.shape) and indices.tolist() == want.indices.tolist()


def test_topk_ties_go_to_the_lower_index_and_errors():
    x = sr.tensor([2.0, 1.0, 2.0, 1.0, 2.0], requires_grad=True)
    values, indices = x.topk(2)
    assert values.tolist() == [2.0, 2.0] and indices.tolist() == [0, 2]
    assert x.topk(2, largest=False).indices.tolist() == [1, 3]
    assert sr.grad(values.sum(), [x])[0].tolist() == [1.0, 0.0, 1.0, 0.0, 0.0]
    with pytest.raises(sr.OpError, match="Tensor.topk: k=6 is out of range.*shape \\(5,\\)"):
        x.topk(6)
    with pytest.raises(sr.OpError, match="Tensor.topk"):
        x.topk(1, dim=1)
    with pytest.raises(sr.OpError, match="Tensor.topk: k must be an int"):
        x.topk(1.5)


def test_sort_topk_every_semiring_finite_differences_and_trace():
    rng = rng_for("sort-semirings")
    a = distinct(rng, (3, 4))
    check_op(lambda t: sr.sort(t, axis=1), [a], rng)
    check_composite(lambda t: sr.sort(t, axis=None), [a], rng)
    check_op(lambda t: t.sort(0, descending=True).values, [a], rng)
    check_op(lambda t: t.topk(2, dim=1).values, [a], rng)
    check_finite_differences(lambda t: sr.sort(t, axis=0) * np.arange(1.0, 4.0)[:, None], [a])
    check_finite_differences(lambda t: t.topk(3, dim=1, largest=False).values, [a])
    x = sr.tensor(a, requires_grad=True, name="x")
    check_trace_names((x.sort(1).values * np.arange(4.0)).sum(), x, "sort")
    check_trace_names((x.topk(2).values ** 2).sum(), x, "topk")


# -- argmax / argmin ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@pytest.mark.parametrize("shape, axis, keepdims", [((7,), None, False), ((3, 5), 0, False), ((3, 5), 1, True),
                                                   ((2, 3, 4), -1, False), ((3, 4), None, True), ((), None, False),
                                                   ((), 0, False)])  # fmt: skip
def test_argmax_argmin_match_numpy_and_pytorch(name, shape, axis, keepdims):
    a = np.random.default_rng(4).integers(-2, 3, shape).astype(np.float64)  # ties: the first index
    got = getattr(sr, name)(a, axis=axis, keepdims=keepdims)
    want = getattr(np, name)(a, axis=axis, keepdims=keepdims)
    assert got.dtype == np.int64 and not got.requires_grad and got.shape == want.shape
    np.testing.assert_array_equal(got.numpy(), want)
    method = getattr(sr.tensor(a, requires_grad=True), name)(dim=axis, keepdim=keepdims)
    theirs = getattr(torch.tensor(a), name)(dim=axis, keepdim=keepdims)
    assert method.shape == tuple(theirs.shape) and method.numpy().tolist() == theirs.numpy().tolist()
    assert getattr(sr.tensor(a), name)(axis=axis, keepdims=keepdims).tolist() == method.tolist()


def test_argmax_nan_errors_and_names():
    a = np.array([1.0, np.nan, 3.0, np.nan])
    assert sr.argmax(a).item() == torch.tensor(a).argmax().item() == 1
    assert sr.argmin(a).item() == torch.tensor(a).argmin().item() == 1
    x = sr.tensor(np.zeros((2, 0)))
    with pytest.raises(sr.OpError, match="Tensor.argmax.*shape \\(2, 0\\)"):
        x.argmax()
    assert x.argmax(dim=0).shape == (0,)
    with pytest.raises(sr.OpError, match="argmin"):
        sr.argmin(np.zeros(3), axis=1)
    with pytest.raises(TypeError, match="Tensor.argmax.*both 'dim' and 'axis'"):
        sr.tensor([1.0]).argmax(dim=0, axis=0)
    with pytest.raises(TypeError, match="Tensor.argmin.*both 'keepdim' and 'keepdims'"):
        sr.tensor([1.0]).argmin(0, keepdim=True, keepdims=True)


# -- take_along_axis and gather -----------------------------------------------------------------------

TAKE_CASES = [
    ((3, 4), np.array([[0, 3], [1, 1], [-1, 2]]), 1),  # repeats and a negative index
    ((3, 4), np.array([[2, 0, 1, 2]]), 0),  # indices broadcast along axis 1
    ((3, 1), np.array([[0, 0, 0]]).T.repeat(2, axis=1) * 0, 1),  # length-1 axis, picked twice
    ((2, 3, 4), np.random.default_rng(5).integers(0, 3, (2, 5, 1)), 1),
    ((5,), np.array([4, 4, 0, -5]), 0),
    ((2, 3), np.array([5, 0, 5]), None),  # (a reshape, then the op)
    ((3, 4), np.zeros((3, 0), dtype=np.int64), 1),
]


@pytest.mark.parametrize("shape, indices, axis", TAKE_CASES)
def test_take_along_axis_matches_numpy_and_every_semiring(shape, indices, axis):
    rng = rng_for(f"take{shape}")
    a = rng.standard_normal(shape)
    got = sr.take_along_axis(a, indices, axis=axis)
    want = np.take_along_axis(a, indices, axis=axis)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got.numpy(), want)
    if want.size:
        (check_op if axis is not None else check_composite)(lambda t: sr.take_along_axis(t, indices, axis), [a], rng)
        check_finite_differences(lambda t: sr.take_along_axis(t, indices, axis), [a])


@pytest.mark.parametrize("shape, dim, index", [
    ((3, 4), 1, np.array([[0, 3, 3], [1, 1, 0]])),  # smaller than the input along dim 0, repeats
    ((3, 4), 0, np.array([[2, 0, 1, 2], [2, 2, 2, 2], [0, 1, 0, 1], [1, 1, 1, 1]])),  # longer along dim
    ((2, 3, 4), -1, np.random.default_rng(6).integers(0, 4, (2, 2, 6))),
    ((5,), 0, np.array([4, 0, 4])),
    ((), 0, np.array(0)),
])  # fmt: skip
def test_gather_matches_pytorch(shape, dim, index):
    a = rng_for("gather").standard_normal(shape)
    check_torch_parity(lambda x: x.gather(dim, index), lambda x: x.gather(dim, torch.tensor(index)), [a])
    check_torch_parity(lambda x: x.gather(dim, sr.tensor(index)),
                       lambda x: torch.gather(x, dim, torch.tensor(index)), [a])  # fmt: skip
    if a.ndim:
        rng = rng_for("gather-oracle")
        check_op(lambda t: t.gather(dim, index), [a], rng)


def test_take_along_dim_matches_pytorch():
    a = rng_for("take_along_dim").standard_normal((3, 4))
    index = np.array([[0, 3], [1, 1], [2, 0]])
    check_torch_parity(lambda x: x.take_along_dim(index, dim=1),
                       lambda x: x.take_along_dim(torch.tensor(index), 1), [a])  # fmt: skip
    flat = np.array([[11, 0], [5, 5]])
    check_torch_parity(lambda x: x.take_along_dim(flat), lambda x: x.take_along_dim(torch.tensor(flat)), [a])


def test_gather_and_take_along_axis_errors_name_the_op_and_shapes():
    x = sr.tensor(np.zeros((3, 4)), requires_grad=True)
    with pytest.raises(sr.OpError, match="take_along_axis: index 4 is out of bounds.*size 4.*\\(3, 4\\)"):
        sr.take_along_axis(x, np.array([[4]]), axis=1)
    with pytest.raises(IndexError, match="take_along_axis: index -5"):
        sr.take_along_axis(x, np.array([[-5]]), axis=1)
    with pytest.raises(sr.OpError, match="take_along_axis: indices must be an integer array.*float64"):
        sr.take_along_axis(x, np.array([[0.0]]), axis=1)
    with pytest.raises(sr.OpError, match="take_along_axis: indices of shape \\(2,\\).*\\(3, 4\\).*same number"):
        sr.take_along_axis(x, np.array([0, 1]), axis=1)
    with pytest.raises(sr.OpError, match="take_along_axis: indices of shape \\(2, 1\\) do not broadcast"):
        sr.take_along_axis(x, np.array([[0], [1]]), axis=1)
    with pytest.raises(sr.OpError, match="take_along_axis: with axis=None the indices must be 1-D"):
        sr.take_along_axis(x, np.array([[0]]), axis=None)
    with pytest.raises(sr.OpError, match="Tensor.gather: index -1 is out of bounds"):
        x.gather(1, np.array([[-1]]))
    with pytest.raises(sr.OpError, match="Tensor.gather: index of shape \\(4, 1\\) is larger than the input"):
        x.gather(1, np.zeros((4, 1), dtype=np.int64))
    with pytest.raises(sr.OpError, match="Tensor.gather: index of shape \\(1,\\) and the input of shape \\(3, 4\\)"):
        x.gather(0, np.array([0]))
    with pytest.raises(sr.OpError, match="Tensor.gather"):
        x.gather(2, np.zeros((1, 1), dtype=np.int64))


def test_gather_trace_names_the_op():
    rng = rng_for("gather-trace")
    x = sr.tensor(rng.standard_normal((3, 5)), requires_grad=True, name="x")
    index = np.array([[4, 4, 0], [1, 2, 3], [0, 0, 0]])
    tr = check_trace_names((x.gather(1, index).exp() * rng.standard_normal((3, 3))).sum(), x, "gather")
    assert np.count_nonzero(np.asarray(tr[x])) == 6  # the elements gathered at least once
    check_trace_names((sr.take_along_axis(x, index, 1) * 3.0).sum(), x, "take_along_axis")


# -- einsum -------------------------------------------------------------------------------------------

EINSUM_CASES = [
    ("ij,jk->ik", (2, 3), (3, 4)),  # matrix product
    ("ij,jk", (2, 3), (3, 4)),  # implicit output
    ("bij,bjk->bik", (2, 2, 3), (2, 3, 4)),  # batch product
    ("bhqd,bhkd->bhqk", (2, 3, 4, 5), (2, 3, 6, 5)),  # attention scores
    ("bhqk,bhkd->bhqd", (2, 3, 4, 6), (2, 3, 6, 5)),  # attention mix
    ("i,j->ij", (3,), (4,)),  # outer product
    ("ij->", (2, 3)),  # sum
    ("ij->ji", (2, 3)),  # transpose
    ("ii->i", (3, 3)),  # diagonal
    ("ii", (3, 3)),  # trace
    ("iij->ji", (3, 3, 2)),
    ("...ij,...jk->...ik", (5, 2, 3), (3, 4)),
    ("...ij,...jk", (5, 1, 2, 3), (7, 3, 4)),  # ellipsis broadcasting
    ("i...->...", (2, 3, 4)),
    ("...i->i", (2, 3, 4)),  # PyTorch sums the ellipsis axes (numpy refuses)
    ("i,i", (3,), (3,)),  # dot product
    ("i,i->i", (3,), (3,)),  # elementwise product
    ("ij,ij->ij", (2, 3), (1, 3)),  # broadcasting a labelled axis
    ("ij,jk", (2, 1), (3, 4)),  # a contracted axis of length 1 against 3
    (",i", (), (3,)),  # a scalar operand
    ("ij,jk,kl->il", (2, 3), (3, 4), (4, 5)),  # three operands, left to right
    ("ij,j->i", (3, 4), (4,)),
    ("ijk,ikl->jl", (2, 3, 4), (2, 4, 5)),  # batch axis contracted as well
    ("ij,ji->", (3, 4), (4, 3)),
    ("aB,Ca", (2, 3), (4, 2)),  # implicit output in ASCII order: uppercase first
    (" ij , jk -> i k ", (2, 3), (3, 4)),  # spaces
    ("ab,cd->abcd", (2, 3), (4, 5)),
]


def _einsum_case(case):
    subscripts, *shapes = case
    arrays = [rng_for(subscripts).standard_normal(s) for s in shapes]
    return subscripts, arrays


@pytest.mark.parametrize("case", EINSUM_CASES, ids=[c[0].replace(" ", "_") for c in EINSUM_CASES])
def test_einsum_parity(case):
    subscripts, arrays = _einsum_case(case)
    if subscripts != "...i->i":
        want = np.einsum(subscripts, *arrays)
        got = sr.einsum(subscripts, *arrays)
        assert got.shape == want.shape
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)
    xs = [sr.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, ty = sr.einsum(subscripts, *xs), torch.einsum(subscripts, *ts)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    seed = np.random.default_rng(3).standard_normal(y.shape)
    ty.backward(torch.tensor(seed))
    for k, (g, t) in enumerate(zip(sr.grad(y, xs, seed=seed), ts, strict=True)):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-12, atol=1e-12, err_msg=f"operand {k}")
    assert sr.einsum(subscripts, xs).tolist() == y.tolist()  # operands as one list, as PyTorch takes them


#: one path at most from each input element to each output element: not so with three operands, where
#: the intermediate product is a vertex (``A[i, j]`` reaches ``out[i, l]`` through every ``(AB)[i, k]``),
#: nor where a contracted axis of length 1 is broadcast (``A[i, 0]`` meets each ``B[j, k]`` by a copy)
ONE_PATH_EINSUM = [c for c in EINSUM_CASES if len(c) <= 3 and max(map(len, c[1:])) <= 3
                   and c != ("ij,jk", (2, 1), (3, 4))]  # fmt: skip


@pytest.mark.parametrize("case", ONE_PATH_EINSUM, ids=[c[0].replace(" ", "_") for c in ONE_PATH_EINSUM])
def test_einsum_every_semiring(case):
    subscripts, arrays = _einsum_case(case)
    check_composite(lambda *ts: sr.einsum(subscripts, *ts), arrays, rng_for(subscripts, 1))


def test_einsum_finite_differences_and_trace():
    rng = rng_for("einsum-fd")
    a, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 4, 3))
    check_finite_differences(lambda x, y: sr.einsum("bij,bjk->bik", x, y), [a, b])
    check_finite_differences(lambda x: sr.einsum("bii->bi", x), [rng.standard_normal((2, 3, 3))])
    q = sr.tensor(rng.standard_normal((2, 3, 4)), requires_grad=True, name="q")
    k = sr.tensor(rng.standard_normal((2, 5, 4)))
    check_trace_names(sr.einsum("bqd,bkd->bqk", q, k).softmax(-1)[..., 0].sum(), q, "matmul")


def test_einsum_errors_name_the_op():
    a, b = np.ones((2, 3)), np.ones((4, 5))
    for subscripts, operands, message in [
        ("ij,jk->ik", (a, b), "einsum: subscript 'j' has length 3 in one operand and 4 in operand 1"),
        ("ij,jk", (a,), "einsum: subscripts 'ij,jk' name 2 operands, 1 were given"),
        ("ijk", (a,), "einsum: operand 0 has 2 dimensions but 3 subscripts"),
        ("i->ii", (np.ones(2),), "einsum: the output subscript 'i' appears more than once"),
        ("i->j", (np.ones(2),), "einsum: the output subscript 'j' appears in no operand"),
        ("i1", (a,), "einsum: subscripts 'i1' hold '1'"),
        ("ii", (a,), "einsum: subscript 'i' is repeated in operand 0 of shape \\(2, 3\\)"),
        ("i.j", (a,), "einsum: .* has a '.' that is not one '...'"),
        ("...ijk", (a,), "einsum: operand 0 has 2 dimensions, fewer than the 3 subscripts"),
        ("i->i->i", (np.ones(2),), "einsum: subscripts 'i->i->i' have a stray or repeated '->'"),
    ]:
        with pytest.raises(sr.OpError, match=message):
            sr.einsum(subscripts, *operands)
    with pytest.raises(sr.OpError, match="einsum: the subscripts must be a string"):
        sr.einsum(a, [0, 1])
    with pytest.raises(sr.OpError, match="einsum: needs at least one operand"):
        sr.einsum("")
