"""Semiring laws on each new semiring's value type, and its bulk primitives against ⊕ and ⊗.

⊕ is the semiring's ``add``; ⊗ of two values is its documented ``times`` (the sweep itself only
⊗-multiplies by real edge weights, ``scale(g, w) == times(seed(w), g)``, which is checked too).
Values are drawn on a dyadic grid, so sums and products are exact and the laws are checked with
``==``, ties included.

MaxAbsProduct, LogMaxAbs and KBest carry provenance (a code naming where each path goes next; ⊗ keeps the code
of its right operand, the continuation). With codes as the tie-break every law the sweep relies on
holds exactly, ties included: ⊕ associative and commutative, ⊗ by an edge distributing over ⊕
from the left, identities and the annihilating zero. Two laws mix codes of different operands in
a way no tie-break can order (``(b ⊕ c) ⊗ a`` and ``(a ⊗ b) ⊗ c`` compare paths that end in the
same code with different signs), so they are checked on continuous values, where ties do not occur.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semirad import backend
from semirad.semirings import Boolean, Count, Entropy, KBest, LogMaxAbs, MaxAbsProduct, SumAbs, SumProduct

N = 4  # elements per value in the law tests
GRID = [0.25, 0.5, 1.0, 1.5, 2.0, 3.0]


# -- value strategies ---------------------------------------------------------------------------


def ranked_value(S, entries, shape):
    """Build a LogMaxAbs/KBest value from per-element lists of ``(|v|, sign, code)``."""
    k = S.k
    size = int(np.prod(shape))
    key = np.full((k, size), S.empty)
    sign = np.zeros((k, size), dtype=np.int8)
    code = np.full((k, size), backend.NO_PATH, dtype=np.int64)
    for i, items in enumerate(entries):
        items = sorted(items, key=lambda e: (-e[0], e[2]))[:k]
        for r, (mag, s, c) in enumerate(items):
            key[r, i] = np.log(mag) if S.log_domain else mag
            sign[r, i], code[r, i] = s, c
    return key.reshape((k,) + shape), sign.reshape((k,) + shape), code.reshape((k,) + shape)


@st.composite
def grid_values(draw, S, shape=(N,), offset=0, real_zeros=True):
    """A value of ``S`` with every number on the dyadic grid (ranked: unique codes from ``offset``;
    MaxAbsProduct: ids ``offset + C-order index``, as the sweep seeds them, some elements dead ends,
    and with ``real_zeros`` some real paths of value 0)."""
    size = int(np.prod(shape))
    if isinstance(S, MaxAbsProduct):
        signed = st.sampled_from(GRID).flatmap(lambda m: st.sampled_from([m, -m]))
        kinds = st.sampled_from(["path", "path", "dead"] + (["zero"] if real_zeros else []))
        values, ids = np.zeros(size), offset + np.arange(size, dtype=np.int64)
        for i in range(size):
            kind = draw(kinds)
            if kind == "path":
                values[i] = draw(signed)
            elif kind == "dead":
                ids[i] = backend.NO_PATH
        return values.reshape(shape), ids.reshape(shape)
    if isinstance(S, SumProduct) and type(S) is SumProduct:
        signed = st.sampled_from([0.0] + GRID).flatmap(lambda m: st.sampled_from([m, -m]))
        return np.array(draw(st.lists(signed, min_size=size, max_size=size))).reshape(shape)
    if isinstance(S, Boolean):
        return np.array(draw(st.lists(st.booleans(), min_size=size, max_size=size))).reshape(shape)
    if isinstance(S, Count):
        return np.array(draw(st.lists(st.integers(0, 4), min_size=size, max_size=size)), float).reshape(shape)
    mags = st.sampled_from([0.0] + GRID)
    if isinstance(S, SumAbs):
        return np.array(draw(st.lists(mags, min_size=size, max_size=size))).reshape(shape)
    if isinstance(S, Entropy):
        p = draw(st.lists(mags, min_size=size, max_size=size))
        r = draw(st.lists(st.sampled_from([-2.0, -0.5, 0.0, 0.25, 1.0, 1.5]), min_size=size, max_size=size))
        return np.array(p).reshape(shape), np.array(r).reshape(shape)
    codes = iter(draw(st.permutations(range(offset, offset + size * S.k))))
    # LogMaxAbs keys are logs of powers of two, so their sums stay exact too
    grid = [0.25, 0.5, 1.0, 2.0, 4.0] if S.log_domain else GRID
    entries = []
    for _ in range(size):
        n = draw(st.integers(0, S.k))
        entries.append([(draw(st.sampled_from(grid)), draw(st.sampled_from([-1, 1])), next(codes)) for _ in range(n)])
    return ranked_value(S, entries, shape)


def random_ranked(S, rng, offset, shape=(N,)):
    """A LogMaxAbs/KBest/MaxAbsProduct value with continuous magnitudes (no ties) and unique codes."""
    size = int(np.prod(shape))
    if isinstance(S, MaxAbsProduct):
        values = rng.uniform(0.2, 5.0, size) * rng.choice([-1.0, 1.0], size)
        ids = offset + np.arange(size, dtype=np.int64)
        dead = rng.random(size) < 0.25
        values[dead], ids[dead] = 0.0, backend.NO_PATH
        return values.reshape(shape), ids.reshape(shape)
    codes = iter(rng.permutation(size * S.k) + offset)

    def entry():
        return float(rng.uniform(0.2, 5.0)), int(rng.choice([-1, 1])), int(next(codes))

    entries = [[entry() for _ in range(rng.integers(0, S.k + 1))] for _ in range(size)]
    return ranked_value(S, entries, shape)


def assert_same(S, x, y, close=False):
    xs = x if isinstance(x, tuple) else (x,)
    ys = y if isinstance(y, tuple) else (y,)
    assert len(xs) == len(ys)
    for a, b in zip(xs, ys, strict=True):
        assert a.shape == b.shape, (a.shape, b.shape)
        if close and a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
        else:
            np.testing.assert_array_equal(a, b)


SEMIRINGS = [SumProduct(), MaxAbsProduct(), Boolean(), Count(), SumAbs(), Entropy(), LogMaxAbs(), KBest(3), KBest(1)]
IDS = [repr(S) for S in SEMIRINGS]
RANKED = [S for S in SEMIRINGS if hasattr(S, "k")]
#: semirings whose values carry where each path goes next (the last component of a value)
PROVENANCE = RANKED + [S for S in SEMIRINGS if isinstance(S, MaxAbsProduct)]
#: the loaded hypothesis profile's budget (tests/conftest.py)
EXAMPLES = settings.default.max_examples
law = functools.partial(settings, max_examples=EXAMPLES, deadline=None)


def three(S):
    return st.tuples(grid_values(S, offset=0), grid_values(S, offset=100), grid_values(S, offset=200))


# -- the laws -----------------------------------------------------------------------------------


@pytest.mark.parametrize("S", SEMIRINGS, ids=IDS)
@law()
@given(data=st.data())
def test_plus_is_associative_and_commutative(S, data):
    a, b, c = data.draw(three(S))
    assert_same(S, S.add(a, b), S.add(b, a))
    assert_same(S, S.add(S.add(a, b), c), S.add(a, S.add(b, c)))


@pytest.mark.parametrize("S", SEMIRINGS, ids=IDS)
@law()
@given(data=st.data())
def test_identities_and_zero(S, data):
    a, b, _ = data.draw(three(S))
    zero, one = S.zeros(np, (N,), np.float64), S.one(np, (N,))
    assert_same(S, S.add(zero, a), a)
    assert_same(S, S.add(a, zero), a)
    assert_same(S, S.times(one, a), a)
    assert_same(S, S.times(zero, a), zero)
    assert_same(S, S.times(a, zero), zero)
    right = S.times(a, one)
    if S in PROVENANCE:  # a ⊗ one ends at one: the numbers of a, the code of one's path (END)
        assert_same(S, right[:-1], a[:-1])
        assert np.all((right[-1] == backend.END) | (right[-1] == backend.NO_PATH))
    else:
        assert_same(S, right, a)


@pytest.mark.parametrize("S", SEMIRINGS, ids=IDS)
@law()
@given(data=st.data())
def test_times_distributes_over_plus_from_the_left(S, data):
    a, b, c = data.draw(three(S))
    if isinstance(S, MaxAbsProduct):  # an edge of weight 0 is an edge there: b ⊕ c picks by |value|
        a = data.draw(grid_values(S, offset=300, real_zeros=False))  # first, a ⊗ b ⊕ a ⊗ c all tie
    assert_same(S, S.times(a, S.add(b, c)), S.add(S.times(a, b), S.times(a, c)))


@pytest.mark.parametrize("S", [S for S in SEMIRINGS if S not in PROVENANCE], ids=lambda S: repr(S))
@law()
@given(data=st.data())
def test_times_is_associative_and_distributes_from_the_right(S, data):
    a, b, c = data.draw(three(S))
    assert_same(S, S.times(S.times(a, b), c), S.times(a, S.times(b, c)))
    assert_same(S, S.times(S.add(b, c), a), S.add(S.times(b, a), S.times(c, a)))


@pytest.mark.parametrize("S", PROVENANCE, ids=lambda S: repr(S))
@law()
@given(seed=st.integers(0, 2**32 - 1))
def test_ranked_times_is_associative_and_distributes_from_the_right(S, seed):
    rng = np.random.default_rng(seed)
    a, b, c = (random_ranked(S, rng, offset) for offset in (0, 100, 200))
    assert_same(S, S.times(S.times(a, b), c), S.times(a, S.times(b, c)), close=True)
    assert_same(S, S.times(S.add(b, c), a), S.add(S.times(b, a), S.times(c, a)), close=True)


# -- the primitives the op rules call, against ⊕ and ⊗ ------------------------------------------

weights = st.lists(st.sampled_from([0.0, 0.5, -0.5, 1.0, -2.0, 3.0]), min_size=6, max_size=6).map(
    lambda w: np.array(w).reshape(2, 3)
)


def fold(S, values):
    return functools.reduce(S.add, values)


def part(S, g, index):
    return S.map(g, lambda a: a[index])


@pytest.mark.parametrize("S", SEMIRINGS, ids=IDS)
@law()
@given(data=st.data(), w=weights)
def test_scale_is_times_by_the_lifted_weight(S, data, w):
    g = data.draw(grid_values(S, shape=(2, 3)))
    close = isinstance(S, Entropy)  # an edge's r-component is -|w| log |w|: not on the grid
    assert_same(S, S.scale(g, w), S.times(S.seed(w), g), close)
    assert_same(S, S.scale(g, -2.0), S.times(S.seed(np.full((2, 3), -2.0)), g), close)
    g1 = part(S, g, (slice(None), slice(0, 1)))  # (2, 1) against (2, 3) weights: broadcast
    assert_same(S, S.scale(g1, w), S.times(S.seed(w), S.map(g1, lambda a: np.broadcast_to(a, (2, 3)))), close)


@pytest.mark.parametrize("S", SEMIRINGS, ids=IDS)
@law()
@given(data=st.data(), keepdims=st.booleans())
def test_sum_is_a_fold_of_plus(S, data, keepdims):
    g = data.draw(grid_values(S, shape=(2, 3)))
    assert_same(S, S.sum(g, (1,)), fold(S, [part(S, g, (slice(None), j)) for j in range(3)]))
    assert_same(S, S.sum(g, (0,)), fold(S, [part(S, g, i) for i in range(2)]))
    whole = fold(S, [part(S, g, (i, j)) for i in range(2) for j in range(3)])
    assert_same(S, S.sum(g, (0, 1)), whole)
    if keepdims:
        assert_same(S, S.sum(g, (0, 1), keepdims=True), S.map(whole, lambda a: a.reshape(1, 1)))


def matmul_by_columns(S, g, W):
    """``out[i, q] = ⊕_j g[i, j] ⊗ W[j, q]`` as a fold of scaled columns."""
    n = W.shape[0]
    return fold(S, [S.scale(part(S, g, (slice(None), slice(j, j + 1))), W[j : j + 1]) for j in range(n)])


@pytest.mark.parametrize("S", SEMIRINGS, ids=IDS)
@law()
@given(data=st.data(), n=st.sampled_from([2, 6]))
def test_matmul_is_a_fold_of_scaled_columns(S, data, n):
    g = data.draw(grid_values(S, shape=(2, n)))  # grid values: many ties
    W = np.array(data.draw(st.lists(st.sampled_from([0.0, 0.5, -0.5, 1.0, -2.0, 3.0]), min_size=3 * n, max_size=3 * n)))
    W = W.reshape(n, 3)
    close = isinstance(S, Entropy)
    expected = matmul_by_columns(S, g, W)
    assert_same(S, S.matmul(g, W), expected, close)
    batched = S.map(g, lambda a: np.broadcast_to(a, (2, 2, n)))
    assert_same(S, S.matmul(batched, W), S.map(expected, lambda a: np.broadcast_to(a, (2, 2, 3))), close)


@pytest.mark.parametrize("S", RANKED, ids=lambda S: repr(S))
@law()
@given(seed=st.integers(0, 2**32 - 1))
def test_ranked_matmul_without_ties(S, seed):
    """Continuous values: KBest ranks only the columns of the k best slot-0 candidates."""
    rng = np.random.default_rng(seed)
    g = random_ranked(S, rng, 0, shape=(3, 7))
    W = rng.standard_normal((7, 4)) * (rng.random((7, 4)) < 0.8)
    assert_same(S, S.matmul(g, W), matmul_by_columns(S, g, W))


@pytest.mark.parametrize("S", SEMIRINGS, ids=IDS)
@law()
@given(data=st.data(), index=st.lists(st.integers(-3, 2), min_size=1, max_size=6))
def test_scatter_is_a_fold_of_plus(S, data, index):
    g = data.draw(grid_values(S, shape=(len(index),)))
    index = np.array(index)
    pieces = [S.zeros(np, (3,), np.float64)]
    for p, target in enumerate(index):
        pieces.append(S.scatter(part(S, g, slice(p, p + 1)), (np.array([target]),), (3,), unique=True))
    assert_same(S, S.scatter(g, (index,), (3,), unique=False), fold(S, pieces))


@pytest.mark.parametrize("S", SEMIRINGS, ids=IDS)
@law(max_examples=max(1, EXAMPLES // 3))
@given(data=st.data(), w=weights)
def test_scale_by_weights_with_more_axes_and_empty_sums(S, data, w):
    g = data.draw(grid_values(S, shape=(3,)))
    close = isinstance(S, Entropy)
    spread = S.map(g, lambda a: np.broadcast_to(a, (2, 3)))
    assert_same(S, S.scale(g, w), S.times(S.seed(w), spread), close)
    assert_same(S, S.sum(g, ()), g)
    assert_same(S, S.sum(S.map(g, lambda a: a[:0]), (0,)), S.zeros(np, (), np.float64))


def test_select_pads_when_there_are_fewer_candidates_than_k():
    from semirad.semirings._ranked import select

    key = np.array([[2.0, 5.0], [1.0, 1.0]])
    sign = np.array([[1, -1], [1, -1]], dtype=np.int8)
    code = np.array([[7, 3], [9, 4]])
    out = select(np, key, sign, code, 3, 0.0)
    assert out[0].tolist() == [[5.0, 2.0, 0.0], [1.0, 1.0, 0.0]]
    assert out[1].tolist() == [[-1, 1, 0], [-1, 1, 0]]  # the tie goes to the smaller code
    assert out[2].tolist() == [[3, 7, backend.NO_PATH], [4, 9, backend.NO_PATH]]
    empty = select(np, key[:, :0], sign[:, :0], code[:, :0], 2, -np.inf)
    assert empty[0].tolist() == [[-np.inf, -np.inf]] * 2 and empty[2].tolist() == [[backend.NO_PATH] * 2] * 2
