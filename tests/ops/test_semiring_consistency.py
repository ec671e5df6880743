"""Per-op semiring consistency (DESIGN.md section 4, second oracle), through ``semirad.testing``.

For one op ``y = op(x_1, ..., x_k)`` (every input slot its own tensor) :func:`semirad.testing.check_op`
reads the dense Jacobian ``J_k`` of each slot off SumProduct VJPs with one-hot seeds, and which
entries are edges off the same rule in ``Reach``; for *any* semiring ``S`` and output seed ``g`` the
sweep must give

    value(x[i]) = ⊕_j  J[j, i] ⊗ g[j]          (over the edges x[i] -> y[j])

computed element by element with ``S``'s own primitives on 0-d values (an exactly-0 partial is an
edge of weight 0 for SumProduct/MaxAbsProduct, no edge for the path-counting semirings). For
MaxAbsProduct the backpointers (and the one-edge paths ``tr.path``) are checked as well.

Composites (softmax, log_softmax) have no backward of their own; the whole-graph brute-force test
covers them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import semirad as sr
import semirad.nn.functional as F
from semirad import testing
from semirad.semirings import MaxAbsProduct, SumProduct
from semirad.testing import builtin_semirings, check_backpointers, dense_jacobians, semiring_contraction

__all__ = ["SEMIRINGS", "EXAMPLES", "check_op", "check_backpointers", "dense_jacobians", "semiring_contraction"]

#: every semiring is checked against the oracle (every built-in one; append your own here)
SEMIRINGS = builtin_semirings()
#: the loaded hypothesis profile's budget (tests/conftest.py); the cheap tests below use a multiple
EXAMPLES = settings.default.max_examples


def check_op(fn: Callable, arrays: list, rng: np.random.Generator, semirings=None) -> None:
    """:func:`semirad.testing.check_op` with this file's semirings and the test's generator."""
    testing.check_op(fn, arrays, SEMIRINGS if semirings is None else semirings, seed=rng)


# -- input makers -------------------------------------------------------------------------------


def normal(*shape):
    return lambda rng: rng.standard_normal(shape)


def positive(*shape):
    return lambda rng: rng.uniform(0.3, 2.0, shape)


def away_from_zero(*shape):
    return lambda rng: rng.choice([-1.0, 1.0], shape) * rng.uniform(0.3, 2.0, shape)


def f32(make):
    return lambda *shape: lambda rng: make(*shape)(rng).astype(np.float32)


def with_ties(*shape):
    """Values on a coarse grid, so reductions and maximum/minimum meet ties."""
    return lambda rng: rng.integers(-2, 3, shape).astype(np.float64)


@dataclass
class Case:
    id: str
    fn: Callable
    makers: tuple

    def arrays(self, rng):
        return [m(rng) for m in self.makers]


def C(id, fn, *makers):
    return pytest.param(Case(id, fn, makers), id=id)


MASK_2D = np.array([[True, False, True, True, False], [False, False, True, False, True],
                    [True, True, False, False, False], [False, True, True, False, True]])  # fmt: skip
MASK_1D = np.array([True, False, False, True, True])
COND = np.array([[True, False, True], [False, False, True]])


CASES = [
    # elementwise binary, with broadcasting and Python scalars
    C("add", lambda a, b: a + b, normal(2, 3), normal(2, 3)),
    C("add-bcast", lambda a, b: a + b, normal(2, 1, 3), normal(4, 1)),
    C("add-0d", lambda a, b: a + b, normal(), normal(3)),
    C("radd-scalar", lambda a: 2.0 + a, normal(2, 3)),
    C("sub", lambda a, b: a - b, normal(3), normal(2, 3)),
    C("rsub-scalar", lambda a: 1.5 - a, normal(4)),
    C("mul", lambda a, b: a * b, normal(2, 3), normal(2, 3)),
    C("mul-bcast", lambda a, b: a * b, normal(3, 1), normal(1, 4)),
    C("mul-scalar", lambda a: a * -3.0, normal(2, 2)),
    C("div", lambda a, b: a / b, normal(2, 3), away_from_zero(2, 3)),
    C("div-bcast", lambda a, b: a / b, normal(2, 1), away_from_zero(3)),
    C("rdiv-scalar", lambda a: 2.0 / a, away_from_zero(5)),
    C("div-scalar", lambda a: a / 3.0, normal(5)),
    C("pow-int", lambda a: a**3, normal(2, 3)),
    C("pow-frac", lambda a: a**2.5, positive(2, 3)),
    C("pow-neg", lambda a: sr.power(a, -1.5), positive(4)),
    C("pow-tensor", lambda a, b: a**b, positive(2, 3), normal(2, 3)),
    C("pow-tensor-bcast", lambda a, b: sr.power(a, b), positive(3), normal(2, 1)),
    C("rpow-scalar", lambda b: 2.0**b, normal(4)),
    C("maximum", lambda a, b: sr.maximum(a, b), normal(2, 3), normal(2, 3)),
    C("maximum-bcast", lambda a, b: sr.maximum(a, b), normal(2, 1), normal(3)),
    C("maximum-ties", lambda a, b: sr.maximum(a, b), with_ties(3, 4), with_ties(3, 4)),
    C("minimum", lambda a, b: sr.minimum(a, b), normal(2, 3), normal(2, 3)),
    C("minimum-bcast", lambda a, b: sr.minimum(a, b), normal(4, 1), normal(1, 3)),
    C("minimum-ties", lambda a, b: sr.minimum(a, b), with_ties(3, 4), with_ties(4)),
    C("where", lambda a, b: sr.where(COND, a, b), normal(2, 3), normal(2, 3)),
    C("where-bcast", lambda a, b: sr.where(COND, a, b), normal(3), normal(2, 1)),
    C("where-cond-bcast", lambda a, b: sr.where(COND[:, :1], a, b), normal(3), normal(2, 3)),
    # elementwise unary
    C("neg", lambda a: -a, normal(2, 3)),
    C("neg-fn", lambda a: sr.neg(a), normal(4)),
    C("exp", lambda a: a.exp(), normal(2, 3)),
    C("log", lambda a: a.log(), positive(2, 3)),
    C("tanh", lambda a: a.tanh(), normal(2, 3)),
    C("sigmoid", lambda a: a.sigmoid(), normal(2, 3)),
    C("relu", lambda a: a.relu(), normal(3, 4)),
    C("relu-zeros", lambda a: sr.relu(a), with_ties(3, 4)),
    C("abs", lambda a: a.abs(), normal(3, 4)),
    C("sqrt", lambda a: a.sqrt(), positive(2, 3)),
    C("sin", lambda a: a.sin(), normal(2, 3)),
    C("cos", lambda a: a.cos(), normal(2, 3)),
    C("clip", lambda a: a.clip(-0.5, 0.7), normal(3, 4)),
    C("clip-lo", lambda a: sr.clip(a, min=-0.2), normal(3, 4)),
    C("clip-hi", lambda a: sr.clip(a, max=0.1), normal(3, 4)),
    C("clip-bounds", lambda a: sr.clip(a, -1.0, 1.0), with_ties(3, 4)),
    C("clip-array", lambda a: sr.clip(a, np.full((3, 4), -0.3), 0.4), normal(3, 4)),
    # reductions
    C("sum", lambda a: a.sum(), normal(2, 3)),
    C("sum-axis", lambda a: a.sum(axis=1), normal(2, 3, 2)),
    C("sum-axes-keep", lambda a: a.sum(axis=(0, 2), keepdims=True), normal(2, 3, 2)),
    C("sum-empty-axes", lambda a: sr.sum(a, axis=()), normal(2, 3)),
    C("max-empty-axes", lambda a: sr.max(a, axis=()), normal(2, 3)),
    C("sum-neg-axis", lambda a: sr.sum(a, axis=-1), normal(3, 4)),
    C("mean", lambda a: a.mean(), normal(2, 3)),
    C("mean-axis", lambda a: a.mean(axis=0), normal(3, 4)),
    C("mean-axes-keep", lambda a: a.mean(axis=(1, 2), keepdims=True), normal(2, 3, 2)),
    C("max", lambda a: a.max(), normal(3, 4)),
    C("max-axis", lambda a: sr.max(a, axis=1), normal(3, 4)),
    C("max-axes-keep", lambda a: sr.max(a, axis=(0, 2), keepdims=True), normal(2, 3, 2)),
    C("max-ties", lambda a: sr.max(a, axis=-1), with_ties(4, 5)),
    C("min", lambda a: a.min(), normal(3, 4)),
    C("min-axis", lambda a: sr.min(a, axis=0, keepdims=True), normal(3, 4)),
    C("min-ties", lambda a: sr.min(a, axis=(0, 1)), with_ties(3, 4, 2)),
    C("logsumexp", lambda a: a.logsumexp(), normal(3, 4)),
    C("logsumexp-axis", lambda a: a.logsumexp(axis=1), normal(3, 4)),
    C("logsumexp-axes-keep", lambda a: sr.logsumexp(a, axis=(0, 2), keepdims=True), normal(2, 3, 2)),
    # index maps
    C("reshape", lambda a: a.reshape(3, 4), normal(2, 6)),
    C("reshape-minus1", lambda a: sr.reshape(a, (-1, 2)), normal(2, 3, 2)),
    C("transpose", lambda a: a.transpose(), normal(2, 3, 4)),
    C("transpose-axes", lambda a: a.transpose(1, 2, 0), normal(2, 3, 4)),
    C("T", lambda a: a.T, normal(3, 4)),
    C("swapaxes", lambda a: a.swapaxes(0, -1), normal(2, 3, 4)),
    C("expand_dims", lambda a: a.expand_dims(1), normal(3, 4)),
    C("expand_dims-neg", lambda a: sr.expand_dims(a, -1), normal(3, 4)),
    C("squeeze", lambda a: a.squeeze(), normal(1, 3, 1, 2)),
    C("squeeze-axis", lambda a: sr.squeeze(a, 2), normal(1, 3, 1, 2)),
    C("broadcast_to", lambda a: a.broadcast_to((2, 3)), normal(3)),
    C("broadcast_to-stretch", lambda a: sr.broadcast_to(a, (4, 2, 3)), normal(2, 1)),
    C("getitem-slice", lambda a: a[1:3, ::2], normal(4, 5)),
    C("getitem-negative-step", lambda a: a[::-1, -1:0:-2], normal(4, 5)),
    C("getitem-int", lambda a: a[2], normal(4, 5)),
    C("getitem-int-slice", lambda a: a[-1, 1:], normal(4, 5)),
    C("getitem-ellipsis-newaxis", lambda a: a[..., None, 1], normal(2, 3, 4)),
    C("getitem-int-array-repeats", lambda a: a[[0, 0, 2, 0]], normal(4, 5)),
    C("getitem-int-array-negative", lambda a: a[[-1, -1, 0]], normal(4, 5)),
    C("getitem-2d-int-array", lambda a: a[np.array([[0, 1], [1, 1]]), 2], normal(4, 5)),
    C("getitem-int-array-pairs", lambda a: a[[0, 0, 1, 3], [1, 1, 4, 1]], normal(4, 5)),
    C("getitem-slice-int-array", lambda a: a[:, [3, 3, 0]], normal(4, 5)),
    C("getitem-slice-then-array", lambda a: a[1:, [0, 0]], normal(4, 5)),
    C("getitem-bool-mask", lambda a: a[MASK_2D], normal(4, 5)),
    C("getitem-bool-mask-axis", lambda a: a[:, MASK_1D], normal(4, 5)),
    C("getitem-tensor-index", lambda a: sr.getitem(a, sr.tensor(np.array([2, 2, 1]))), normal(3, 2)),
    C("concat", lambda a, b: sr.concat([a, b]), normal(2, 3), normal(1, 3)),
    C("concat-3-neg-axis", lambda a, b, c: sr.concat([a, b, c], axis=-1), normal(2, 3), normal(2, 2), normal(2, 1)),
    C("concat-1d", lambda a, b: sr.concat([a, b]), normal(3), normal(2)),
    C("stack", lambda a, b, c: sr.stack([a, b, c]), normal(2, 3), normal(2, 3), normal(2, 3)),
    C("stack-axis1", lambda a, b: sr.stack([a, b], axis=1), normal(2, 3), normal(2, 3)),
    C("stack-neg-axis", lambda a, b: sr.stack([a, b], axis=-1), normal(2, 3), normal(2, 3)),
    # float32 (the dtype is kept; the oracle works in the output's dtype)
    C("f32-mul-bcast", lambda a, b: a * b, f32(normal)(2, 3), f32(normal)(3)),
    C("f32-mixed-add", lambda a, b: a + b, f32(normal)(2, 3), normal(3)),
    C("f32-tanh", lambda a: a.tanh(), f32(normal)(2, 3)),
    C("f32-max-axis", lambda a: sr.max(a, axis=0), f32(normal)(3, 4)),
    C("f32-gather", lambda a: a[[1, 1, 0]], f32(normal)(3, 2)),
    C("f32-matmul", lambda a, b: a @ b, f32(normal)(2, 3), f32(normal)(3, 2)),
    # contractions
    C("matmul", lambda a, b: a @ b, normal(2, 3), normal(3, 4)),
    C("matmul-vec-mat", lambda a, b: a @ b, normal(3), normal(3, 4)),
    C("matmul-mat-vec", lambda a, b: a @ b, normal(2, 3), normal(3)),
    C("matmul-vec-vec", lambda a, b: sr.matmul(a, b), normal(3), normal(3)),
    C("matmul-batch", lambda a, b: a @ b, normal(2, 2, 3), normal(2, 3, 2)),
    C("matmul-batch-bcast", lambda a, b: a @ b, normal(2, 1, 2, 3), normal(3, 3, 2)),
    C("matmul-batch-mat", lambda a, b: a @ b, normal(3, 2, 3), normal(3, 2)),
    C("matmul-vec-batch", lambda a, b: a @ b, normal(3), normal(2, 3, 4)),
    C("matmul-batch-vec", lambda a, b: a @ b, normal(2, 3, 4), normal(4)),
    C("matmul-rmatmul-array", lambda b: np.ones((2, 3)) @ b, normal(3, 2)),
    C("linear", lambda x, w, b: F.linear(x, w, b), normal(2, 3), normal(4, 3), normal(4)),
    C("linear-no-bias", lambda x, w: F.linear(x, w), normal(2, 3), normal(4, 3)),
    C("linear-vector", lambda x, w, b: F.linear(x, w, b), normal(3), normal(4, 3), normal(4)),
    C("linear-batch", lambda x, w, b: F.linear(x, w, b), normal(2, 2, 3), normal(4, 3), normal(4)),
    C("linear-bias-bcast", lambda x, w, b: F.linear(x, w, b), normal(2, 3), normal(4, 3), normal(1)),
    C("f32-linear", lambda x, w, b: F.linear(x, w, b), f32(normal)(2, 3), f32(normal)(4, 3), f32(normal)(4)),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_op_table(case: Case, seed: int):
    rng = np.random.default_rng([seed, sum(map(ord, case.id))])
    check_op(case.fn, case.arrays(rng), rng)


def test_oracle_catches_a_sumproduct_only_rule():
    """The oracle is not vacuous: a ``softmax`` with the SumProduct-only VJP ``s*(g - sum(g*s))``
    (one edge built as the ⊕ of two terms, DESIGN.md section 2) disagrees with it under MaxAbs."""
    from semirad.ops.core import Op, apply

    class FusedSoftmax(Op):
        name = "fused_softmax"

        def forward(self, ctx, x):
            e = np.exp(x - x.max())
            ctx.saved = e / e.sum()
            return ctx.saved

        def backward(self, ctx, g, S, needs):
            s = ctx.saved
            gs = S.sum(S.scale(g, s), (0,), keepdims=True)
            minus = S.scale(S.map(gs, lambda a: np.broadcast_to(a, s.shape)), -1.0)
            return (S.scale(S.add(g, minus), s),)

    rng = np.random.default_rng(5)
    fn = lambda a: apply(FusedSoftmax(), a)
    check_op(fn, [rng.standard_normal(4)], rng, semirings=[SumProduct()])  # right for backprop
    with pytest.raises(AssertionError):
        check_op(fn, [rng.standard_normal(4)], rng, semirings=[MaxAbsProduct()])


# -- hypothesis: shapes, broadcasting, axes and indices ------------------------------------------

values = st.integers(0, 2**32 - 1)

BINARY = {
    "add": (lambda a, b: a + b, normal, normal),
    "sub": (lambda a, b: a - b, normal, normal),
    "mul": (lambda a, b: a * b, normal, normal),
    "div": (lambda a, b: a / b, normal, away_from_zero),
    "pow": (lambda a, b: a**b, positive, normal),
    "maximum": (sr.maximum, with_ties, with_ties),
    "minimum": (sr.minimum, with_ties, with_ties),
}


@settings(max_examples=EXAMPLES)
@pytest.mark.parametrize("name", sorted(BINARY))
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3), seed=values)
def test_binary_broadcasting(name, shapes, seed):
    fn, make_a, make_b = BINARY[name]
    rng = np.random.default_rng(seed)
    (sa, sb) = shapes.input_shapes
    check_op(fn, [make_a(*sa)(rng), make_b(*sb)(rng)], rng)


@settings(max_examples=EXAMPLES)
@given(
    shapes=hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, max_side=3),
    seed=values,
)
def test_where_broadcasting(shapes, seed):
    rng = np.random.default_rng(seed)
    sc, sa, sb = shapes.input_shapes
    cond = rng.random(sc) < 0.5
    check_op(lambda a, b: sr.where(cond, a, b), [rng.standard_normal(sa), rng.standard_normal(sb)], rng)


UNARY = {
    "neg": (lambda a: -a, normal),
    "exp": (sr.exp, normal),
    "log": (sr.log, positive),
    "tanh": (sr.tanh, normal),
    "sigmoid": (sr.sigmoid, normal),
    "relu": (sr.relu, with_ties),
    "abs": (sr.abs, normal),
    "sqrt": (sr.sqrt, positive),
    "sin": (sr.sin, normal),
    "cos": (sr.cos, normal),
    "clip": (lambda a: sr.clip(a, -1.0, 0.5), with_ties),
    "pow3": (lambda a: a**3, normal),
}


@settings(max_examples=EXAMPLES)
@given(name=st.sampled_from(sorted(UNARY)), shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=3), seed=values)
def test_unary_shapes(name, shape, seed):
    fn, make = UNARY[name]
    rng = np.random.default_rng(seed)
    check_op(fn, [make(*shape)(rng)], rng)


REDUCTIONS = {"sum": sr.sum, "mean": sr.mean, "max": sr.max, "min": sr.min, "logsumexp": sr.logsumexp}


@st.composite
def shape_and_axis(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3))
    ndim = len(shape)
    axis = draw(
        st.one_of(
            st.none(),
            st.integers(-ndim, ndim - 1),
            st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(tuple),
        )
    )
    return shape, axis


@settings(max_examples=2 * EXAMPLES)
@given(
    name=st.sampled_from(sorted(REDUCTIONS)),
    shape_axis=shape_and_axis(),
    keepdims=st.booleans(),
    ties=st.booleans(),
    seed=values,
)
def test_reductions(name, shape_axis, keepdims, ties, seed):
    shape, axis = shape_axis
    rng = np.random.default_rng(seed)
    x = (with_ties if ties else normal)(*shape)(rng)
    check_op(lambda a: REDUCTIONS[name](a, axis=axis, keepdims=keepdims), [x], rng)


@st.composite
def matmul_shapes(draw):
    m, n, p = (draw(st.integers(1, 3)) for _ in range(3))
    batch = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=2))
    ba, bb = batch.input_shapes
    a_vec, b_vec = draw(st.booleans()), draw(st.booleans())
    sa = (n,) if a_vec else ba + (m, n)
    sb = (n,) if b_vec else bb + (n, p)
    return sa, sb


@settings(max_examples=2 * EXAMPLES)
@given(shapes=matmul_shapes(), seed=values)
def test_matmul_shapes(shapes, seed):
    sa, sb = shapes
    rng = np.random.default_rng(seed)
    check_op(lambda a, b: a @ b, [rng.standard_normal(sa), rng.standard_normal(sb)], rng)


@st.composite
def gather(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    axis = draw(st.integers(0, len(shape) - 1))
    n = shape[axis]
    idx_shape = draw(hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=4))
    idx = draw(hnp.arrays(np.int64, idx_shape, elements=st.integers(-n, n - 1)))
    return shape, axis, idx


@settings(max_examples=2 * EXAMPLES)
@given(spec=gather(), seed=values)
def test_getitem_integer_arrays(spec, seed):
    shape, axis, idx = spec
    rng = np.random.default_rng(seed)
    index = (slice(None),) * axis + (idx,)
    check_op(lambda a: a[index], [rng.standard_normal(shape)], rng)


@st.composite
def basic_index(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    return shape, draw(hnp.basic_indices(shape, min_dims=0, allow_newaxis=True, allow_ellipsis=True))


@settings(max_examples=2 * EXAMPLES)
@given(spec=basic_index(), seed=values)
def test_getitem_basic(spec, seed):
    shape, index = spec
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    if x[index].size == 0:
        return  # nothing selected: no edges to check
    check_op(lambda a: a[index], [x], rng)


@settings(max_examples=EXAMPLES)
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), seed=values)
def test_getitem_bool_mask(shape, seed):
    rng = np.random.default_rng(seed)
    mask = rng.random(shape) < 0.5
    mask.reshape(-1)[0] = True
    check_op(lambda a: a[mask], [rng.standard_normal(shape)], rng)


@settings(max_examples=EXAMPLES)
@given(
    shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3),
    sizes=st.lists(st.integers(1, 3), min_size=1, max_size=3),
    axis_pick=st.integers(0, 5),
    stack=st.booleans(),
    seed=values,
)
def test_concat_stack(shape, sizes, axis_pick, stack, seed):
    rng = np.random.default_rng(seed)
    if stack:
        axis = axis_pick % (len(shape) + 1) - (len(shape) + 1) * (axis_pick % 2)
        arrays = [rng.standard_normal(shape) for _ in sizes]
        check_op(lambda *ts: sr.stack(list(ts), axis=axis), arrays, rng)
    else:
        axis = axis_pick % len(shape)
        arrays = [rng.standard_normal(shape[:axis] + (n,) + shape[axis + 1 :]) for n in sizes]
        check_op(lambda *ts: sr.concat(list(ts), axis=axis - len(shape) * (axis_pick % 2)), arrays, rng)


@settings(max_examples=EXAMPLES)
@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=3), data=st.data(), seed=values)
def test_shape_maps(shape, data, seed):
    rng = np.random.default_rng(seed)
    ndim = len(shape)
    kind = data.draw(st.sampled_from(["reshape", "transpose", "swapaxes", "expand_dims", "squeeze", "broadcast_to"]))
    if kind == "reshape":
        new = data.draw(st.permutations(list(shape))).copy()
        fn = lambda a: a.reshape(*new)
    elif kind == "transpose":
        perm = data.draw(st.permutations(list(range(ndim))))
        fn = lambda a: a.permute(*perm)
    elif kind == "swapaxes":
        a1, a2 = data.draw(st.integers(-ndim, ndim - 1)), data.draw(st.integers(-ndim, ndim - 1))
        fn = lambda a: a.swapaxes(a1, a2)
    elif kind == "expand_dims":
        axis = data.draw(st.integers(-ndim - 1, ndim))
        fn = lambda a: a.expand_dims(axis)
    elif kind == "squeeze":
        ones = tuple(d for d, n in enumerate(shape) if n == 1)
        axis = data.draw(st.one_of(st.none(), st.sampled_from(ones) if ones else st.none()))
        fn = lambda a: a.squeeze(axis)
    else:
        lead = data.draw(hnp.array_shapes(min_dims=0, max_dims=1, min_side=1, max_side=2))
        target = lead + tuple(data.draw(st.integers(1, 2)) if n == 1 else n for n in shape)
        fn = lambda a: a.broadcast_to(target)
    check_op(fn, [rng.standard_normal(shape)], rng)
