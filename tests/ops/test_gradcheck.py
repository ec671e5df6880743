"""Finite differences (central, float64) against SumProduct gradients, for every op of the contract,
through ``semirad.testing``.

Every test builds ``out = fn(*tensors)``, draws a random seed of ``out``'s shape (no zero entries, so
every output element counts), and has :func:`semirad.testing.gradcheck` compare
``sr.grad(out, tensors, seed=seed)`` with the central difference of ``sum(seed * fn(...))`` for every
element of every input. Values are drawn (:mod:`semirad.testing.strategies`) away from the points
where an op is not differentiable (kinks, ties, bounds, poles, non-positive bases).
"""

import operator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import semirad as sr
from semirad.testing import gradcheck, jacobian_fd
from semirad.testing.strategies import arrays, distinct, floats, shapes

EPS = 1e-5

# -- value domains (hypothesis element strategies) ------------------------------------------------


def _signed(lo, hi):
    return st.one_of(floats(lo, hi), floats(-hi, -lo))


def _grid(offset):
    """Multiples of 0.2 plus ``offset``: two grids with different offsets never tie (gap >= 0.1)."""
    return st.integers(-10, 10).map(lambda k: round(0.2 * k + offset, 10))


ANY = floats(-2, 2)
POS = floats(0.2, 2)  # log, sqrt, non-integer powers, tensor ** tensor bases
AWAY0 = floats(-2, 2, away_from=[0.0], gap=0.1)  # relu/abs kinks, division, negative integer powers
EVEN, ODD = _grid(0.0), _grid(0.1)  # maximum/minimum/clip: values on EVEN, thresholds on ODD


def values(shape, elements=ANY):
    """Arrays whose every element is drawn on its own (no constant fill that could hide a misplaced weight)."""
    return arrays(shape, elements=elements)


# -- the oracle -----------------------------------------------------------------------------------


def numerical_grads(fn, arrays, seed):
    """Central differences of ``sum(seed * fn(*arrays))`` with respect to every element of every array."""
    xs = [sr.tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in arrays]
    seed = np.asarray(seed, dtype=np.float64)
    return [np.tensordot(seed, J, seed.ndim) for J in jacobian_fd(fn, xs, eps=EPS)]


def check(data, fn, *arrays):
    """Assert that SumProduct gradients of ``fn`` at ``arrays`` match finite differences, for every input."""
    xs = [sr.tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    out = fn(*xs)
    assert out.dtype == np.float64
    seed = data.draw(values(out.shape, _signed(0.5, 2)), label="seed")
    gradcheck(fn, xs, seed=seed, eps=EPS, rtol=1e-5, atol=1e-6)


# -- elementwise ----------------------------------------------------------------------------------

UNARY = {
    "neg": (operator.neg, ANY),
    "exp": (sr.exp, ANY),
    "log": (lambda x: x.log(), POS),
    "tanh": (lambda x: x.tanh(), ANY),
    "sigmoid": (sr.sigmoid, floats(-6, 6)),
    "relu": (lambda x: x.relu(), AWAY0),
    "abs": (sr.abs, AWAY0),
    "sqrt": (lambda x: x.sqrt(), POS),
    "sin": (sr.sin, floats(-4, 4)),
    "cos": (lambda x: x.cos(), floats(-4, 4)),
    "x ** 0": (lambda x: x**0, ANY),  # d/dx == 0 everywhere, x == 0 included
    "x ** 1": (lambda x: x**1, ANY),
    "x ** zeros (array)": (lambda x: x ** np.zeros(x.shape), ANY),  # the tensor-exponent op, x == 0 included
    "x ** 3.0 (array)": (lambda x: x ** np.full(x.shape, 3.0), ANY),  # negative bases, integral exponent
    "x ** 2": (lambda x: x**2, ANY),
    "x ** 3": (lambda x: x**3, ANY),
    "x ** -2": (lambda x: x**-2, AWAY0),
    "x ** 0.5": (lambda x: x**0.5, POS),
    "x ** -1.5": (lambda x: sr.power(x, np.float64(-1.5)), POS),
    "2.0 ** x": (lambda x: 2.0**x, ANY),
    "0.5 ** x": (lambda x: 0.5**x, ANY),
    "2 ** x": (lambda x: 2**x, ANY),
    "2 - x": (lambda x: 2 - x, ANY),
    "3 * x": (lambda x: 3 * x, ANY),
    "1 / x": (lambda x: 1 / x, AWAY0),
    "x * x": (lambda x: x * x, ANY),
    "x / x.exp()": (lambda x: x / x.exp(), ANY),
    "clip": (lambda x: x.clip(-0.9, 0.9), EVEN),
    "clip min only": (lambda x: sr.clip(x, min=0.3), EVEN),
    "clip max only": (lambda x: sr.clip(x, max=-0.1), EVEN),
    "x[x > 0.3]": (lambda x: x[x > 0.3], EVEN),
}


@pytest.mark.parametrize("name", UNARY)
@given(data=st.data())
def test_unary(name, data):
    fn, elements = UNARY[name]
    check(data, fn, data.draw(values(shapes(max_side=4), elements)))


@st.composite
def sub_shape(draw, target):
    """A shape that broadcasts to ``target``: leading axes dropped, some axes set to 1."""
    drop = draw(st.integers(0, len(target)))
    return tuple(1 if draw(st.booleans()) else n for n in target[drop:])


@given(data=st.data())
def test_clip_with_array_bounds(data):
    """Bounds are constants that broadcast with x, possibly to a larger shape than x's."""
    (sx, slo, shi), _ = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=3))
    lo, hi = data.draw(values(slo, ODD)), data.draw(values(shi, ODD)) + 1.0
    check(data, lambda x: sr.clip(x, lo, hi), data.draw(values(sx, EVEN)))


# name: (fn, domain of a, domain of b, domain of x in fn(x, x))
BINARY = {
    "+": (operator.add, ANY, ANY, ANY),
    "-": (operator.sub, ANY, ANY, ANY),
    "*": (operator.mul, ANY, ANY, ANY),
    "/": (operator.truediv, ANY, AWAY0, AWAY0),
    "**": (operator.pow, POS, ANY, POS),
    "maximum": (sr.maximum, EVEN, ODD, EVEN),  # maximum(x, x) == x: ties split the weight evenly
    "minimum": (sr.minimum, EVEN, ODD, EVEN),
}


@pytest.mark.parametrize("mode", ["tensors", "scalar right", "scalar left", "array right", "array left", "same tensor"])
@pytest.mark.parametrize("name", BINARY)
@given(data=st.data())
def test_binary(name, mode, data):
    fn, dom_a, dom_b, dom_same = BINARY[name]
    (sa, sb), _ = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3))
    if mode == "tensors":
        check(data, fn, data.draw(values(sa, dom_a)), data.draw(values(sb, dom_b)))
    elif mode == "scalar right":
        b = data.draw(dom_b)
        check(data, lambda a: fn(a, b), data.draw(values(sa, dom_a)))
    elif mode == "scalar left":
        a = data.draw(dom_a)
        check(data, lambda b: fn(a, b), data.draw(values(sb, dom_b)))
    elif mode == "array right":  # a constant ndarray operand may broadcast the output past the tensor's shape
        b = data.draw(values(sb, dom_b))
        check(data, lambda a: fn(a, b), data.draw(values(sa, dom_a)))
    elif mode == "array left":  # ndarray OP Tensor goes through the reflected operators
        a = data.draw(values(sa, dom_a))
        check(data, lambda b: fn(a, b), data.draw(values(sb, dom_b)))
    else:
        check(data, lambda x: fn(x, x), data.draw(values(sa, dom_same)))


@pytest.mark.parametrize("mode", ["tensors", "scalar left", "scalar right", "same tensor"])
@given(data=st.data())
def test_where(mode, data):
    (sc, sa, sb), _ = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=3))
    cond = data.draw(hnp.arrays(bool, sc))
    a, b = data.draw(values(sa)), data.draw(values(sb))
    if mode == "tensors":
        check(data, lambda x, y: sr.where(cond, x, y), a, b)
    elif mode == "scalar left":
        check(data, lambda y: sr.where(cond, 0.5, y), b)
    elif mode == "scalar right":
        check(data, lambda x: sr.where(cond, x, -1.5), a)
    else:
        check(data, lambda x: sr.where(cond, x, x * 3.0), a)


# -- reductions and normalizations ----------------------------------------------------------------


@st.composite
def axis_args(draw, ndim):
    """None, an int (maybe negative) or a tuple of distinct axes (maybe negative, maybe empty)."""
    kind = draw(st.sampled_from(["none", "int", "tuple"] if ndim else ["none", "tuple"]))
    if kind == "none":
        return None
    if ndim == 0:
        return ()
    sign = lambda a: a - ndim if draw(st.booleans()) else a  # noqa: E731
    if kind == "int":
        return sign(draw(st.integers(0, ndim - 1)))
    return tuple(sign(a) for a in draw(st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim)))


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "logsumexp"])
@given(data=st.data())
def test_reduction(name, data):
    shape = data.draw(shapes(max_side=4))
    x = data.draw(distinct(shape) if name in ("max", "min") else values(shape, floats(-3, 3)))
    axis, keepdims = data.draw(axis_args(len(shape))), data.draw(st.booleans())
    if data.draw(st.booleans()):
        check(data, lambda t: getattr(sr, name)(t, axis=axis, keepdims=keepdims), x)
    else:
        method = {"max": "amax", "min": "amin"}.get(name, name)  # Tensor.max(dim) is PyTorch's (values, indices)
        check(data, lambda t: getattr(t, method)(axis, keepdims), x)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@given(data=st.data())
def test_softmax(name, data):
    shape = data.draw(shapes(min_dims=1, max_side=4))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = data.draw(values(shape, floats(-3, 3))) + data.draw(st.sampled_from([0.0, 30.0]))  # shift: stability
    if data.draw(st.booleans()):
        check(data, lambda t: getattr(sr, name)(t, axis=axis), x)
    else:
        check(data, lambda t: getattr(t, name)(axis), x)


def test_logsumexp_with_large_values():
    x = sr.tensor([[1000.0, 1000.0], [-1000.0, -999.0]], requires_grad=True)
    (g,) = sr.grad(x.logsumexp(axis=1), [x], seed=np.array([1.0, 2.0]))
    np.testing.assert_allclose(g, [[0.5, 0.5], [2 / (1 + np.e), 2 * np.e / (1 + np.e)]])


# -- shape ops ------------------------------------------------------------------------------------


@st.composite
def reshape_case(draw):
    shape = draw(shapes(max_dims=4))
    rest, target = int(np.prod(shape)), []
    while rest > 1:
        d = draw(st.sampled_from([k for k in range(2, rest + 1) if rest % k == 0]))
        target.append(d)
        rest //= d
    target = list(draw(st.permutations(target + [1] * draw(st.integers(0, 2)))))
    if target and draw(st.booleans()):
        target[draw(st.integers(0, len(target) - 1))] = -1
    form = draw(st.sampled_from(["varargs", "tuple", "function"]))
    if form == "varargs":
        return shape, lambda x: x.reshape(*target)
    if form == "tuple":
        return shape, lambda x: x.reshape(tuple(target))
    return shape, lambda x: sr.reshape(x, tuple(target))


@st.composite
def transpose_case(draw):
    shape = draw(shapes(max_dims=4))
    n = len(shape)
    perm = [a - n if draw(st.booleans()) else a for a in draw(st.permutations(range(n)))]
    return shape, draw(
        st.sampled_from(
            [lambda x: x.permute(*perm), lambda x: sr.transpose(x, perm), lambda x: x.T, lambda x: x.transpose()]
        )
    )


@st.composite
def swapaxes_case(draw):
    shape = draw(shapes(min_dims=1, max_dims=4))
    a1, a2 = (draw(st.integers(-len(shape), len(shape) - 1)) for _ in range(2))
    return shape, draw(st.sampled_from([lambda x: x.swapaxes(a1, a2), lambda x: sr.swapaxes(x, a1, a2)]))


@st.composite
def expand_dims_case(draw):
    shape = draw(shapes())
    axis = draw(st.integers(-len(shape) - 1, len(shape)))
    return shape, draw(st.sampled_from([lambda x: x.expand_dims(axis), lambda x: sr.expand_dims(x, axis)]))


@st.composite
def squeeze_case(draw):
    shape = tuple(draw(st.lists(st.sampled_from([1, 1, 2, 3]), max_size=4)))
    ones = [i for i, n in enumerate(shape) if n == 1]
    axis = None
    if ones and draw(st.booleans()):
        picked = [
            a - len(shape) if draw(st.booleans()) else a
            for a in draw(st.lists(st.sampled_from(ones), min_size=1, unique=True))
        ]
        axis = picked[0] if len(picked) == 1 and draw(st.booleans()) else tuple(picked)
    return shape, draw(st.sampled_from([lambda x: x.squeeze(axis), lambda x: sr.squeeze(x, axis)]))


@st.composite
def broadcast_to_case(draw):
    target = draw(shapes(max_dims=4))
    return draw(sub_shape(target)), draw(
        st.sampled_from([lambda x: x.broadcast_to(target), lambda x: sr.broadcast_to(x, target)])
    )


SHAPE_CASES = {
    "reshape": reshape_case(),
    "transpose": transpose_case(),
    "swapaxes": swapaxes_case(),
    "expand_dims": expand_dims_case(),
    "squeeze": squeeze_case(),
    "broadcast_to": broadcast_to_case(),
}


@pytest.mark.parametrize("name", SHAPE_CASES)
@given(data=st.data())
def test_shape_op(name, data):
    shape, fn = data.draw(SHAPE_CASES[name])
    check(data, fn, data.draw(values(shape)))


# -- indexing -------------------------------------------------------------------------------------


@st.composite
def repeated_indices(draw, n):
    """An integer array into an axis of length ``n`` (negative entries allowed) with at least one repeat."""
    idx = draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=4))
    idx.insert(draw(st.integers(0, len(idx))), idx[draw(st.integers(0, len(idx) - 1))])
    return np.array(idx)


@st.composite
def basic_index(draw, shape):
    return draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))


@st.composite
def gather_index(draw, shape):
    """One integer array on one axis, with repeats: ``x[:, [2, 0, 2]]`` (sometimes as a list)."""
    axis = draw(st.integers(0, len(shape) - 1))
    idx = draw(repeated_indices(shape[axis]))
    idx = idx.tolist() if draw(st.booleans()) else idx
    return idx if axis == 0 else (slice(None),) * axis + (idx,)


@st.composite
def mixed_index(draw, shape):
    """Per axis a slice (any step), an int or an integer array; the arrays share a length (repeats likely)."""
    k = draw(st.integers(1, 5))
    parts = []
    for n in shape:
        kind = draw(st.sampled_from(["slice", "int", "array"]))
        if kind == "slice":
            parts.append(
                slice(
                    *draw(
                        st.tuples(
                            st.none() | st.integers(-n, n),
                            st.none() | st.integers(-n, n),
                            st.sampled_from([None, 1, 2, -1, -2]),
                        )
                    )
                )
            )
        elif kind == "int":
            parts.append(draw(st.integers(-n, n - 1)))
        else:
            parts.append(np.array(draw(st.lists(st.integers(-n, n - 1), min_size=k, max_size=k))))
    return tuple(parts)


@st.composite
def all_arrays_index(draw, shape):
    return draw(hnp.integer_array_indices(shape, result_shape=shapes(max_dims=2, max_side=4)))


@st.composite
def mask_index(draw, shape):
    """A boolean mask over the whole array, or over the leading axis only."""
    if draw(st.booleans()):
        return draw(hnp.arrays(bool, shape))
    return draw(hnp.arrays(bool, shape[:1]))


INDEX_CASES = {
    "basic": basic_index,
    "gather with repeats": gather_index,
    "mixed": mixed_index,
    "integer arrays": all_arrays_index,
    "boolean mask": mask_index,
}


@pytest.mark.parametrize("name", INDEX_CASES)
@given(data=st.data())
def test_getitem(name, data):
    shape = data.draw(shapes(min_dims=0 if name == "basic" else 1, max_side=4))
    index = data.draw(INDEX_CASES[name](shape))
    check(data, lambda x: x[index], data.draw(values(shape)))


@given(data=st.data())
def test_getitem_twice_on_one_tensor(data):
    """Two gathers of one tensor, multiplied: every element reaches the output through several edges."""
    n = data.draw(st.integers(1, 5))
    i = data.draw(repeated_indices(n))
    check(data, lambda x: x[i] * x[i[::-1]] + x[::-1][i], data.draw(values((n, 2))))


# -- concat and stack -----------------------------------------------------------------------------


@st.composite
def uses(draw):
    """Which of ``n`` distinct tensors fill each slot: every tensor used at least once, some twice."""
    n = draw(st.integers(1, 3))
    return n, draw(st.permutations(list(range(n)) + draw(st.lists(st.integers(0, n - 1), max_size=2))))


@given(data=st.data())
def test_concat(data):
    n, slots = data.draw(uses())
    base = data.draw(shapes(min_dims=1))
    axis = data.draw(st.integers(-len(base), len(base) - 1))
    arrays = []
    for _ in range(n):
        shape = list(base)
        shape[axis] = data.draw(st.integers(1, 3))
        arrays.append(data.draw(values(tuple(shape))))
    check(data, lambda *xs: sr.concat([xs[s] for s in slots], axis=axis), *arrays)


@given(data=st.data())
def test_stack(data):
    n, slots = data.draw(uses())
    shape = data.draw(shapes())
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    arrays = [data.draw(values(shape)) for _ in range(n)]
    check(data, lambda *xs: sr.stack([xs[s] for s in slots], axis=axis), *arrays)


# -- matmul ---------------------------------------------------------------------------------------

MATMUL_SHAPES = [((2, 1, 3, 4), (5, 4, 2)), ((4,), (4, 3)), ((3, 4), (4,)), ((4,), (4,)), ((3,), (2, 3, 1))]


@pytest.mark.parametrize("mode", ["tensors", "array left", "array right"])
@given(data=st.data())
def test_matmul(mode, data):
    (sa, sb), _ = data.draw(hnp.mutually_broadcastable_shapes(signature=np.matmul.signature, max_dims=3, max_side=3))
    a, b = data.draw(values(sa)), data.draw(values(sb))
    if mode == "tensors":
        check(data, operator.matmul, a, b)
    elif mode == "array left":
        check(data, lambda y: a @ y, b)
    else:
        check(data, lambda x: sr.matmul(x, b), a)


@pytest.mark.parametrize("sa, sb", MATMUL_SHAPES)
@settings(max_examples=10)
@given(data=st.data())
def test_matmul_named_shapes(sa, sb, data):
    check(data, operator.matmul, data.draw(values(sa)), data.draw(values(sb)))


MATMUL_SAME = {
    "x @ x.T": lambda x: x @ x.T,
    "x.T @ x": lambda x: x.T @ x,
    "x @ x": lambda x: x @ x,
    "x @ x.swapaxes(-1, -2)": lambda x: x @ x.swapaxes(-1, -2),
}


@pytest.mark.parametrize("name", MATMUL_SAME)
@given(data=st.data())
def test_matmul_same_tensor(name, data):
    n = data.draw(st.integers(1, 3))
    shape = {"x @ x": (n, n), "x @ x.swapaxes(-1, -2)": (2, n, 3)}.get(name, (n, data.draw(st.integers(1, 3))))
    check(data, MATMUL_SAME[name], data.draw(values(shape)))


# -- a small network, end to end ------------------------------------------------------------------


@given(data=st.data())
def test_small_network(data):
    x, w, b = data.draw(values((4, 3))), data.draw(values((3, 2))), data.draw(values((2,)))
    check(data, lambda x, w, b: ((x @ w + b).tanh() ** 2).mean() + (x @ w).log_softmax()[:, 0].sum(), x, w, b)
