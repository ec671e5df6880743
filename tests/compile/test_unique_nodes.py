"""Unique nodes: merging identical subexpressions leaves every semiring's results unchanged (the
paths through a merged vertex factor the same way: docs/compile.md, "Unique nodes")."""

from __future__ import annotations

import numpy as np
import pytest
from same_bits import arrays_of as _arrays

import semirad as sr
from semirad.testing import builtin_semirings

SEMIRINGS = builtin_semirings()
_SUMS = ("SumProduct", "SumAbs", "Entropy", "ComponentFlow")
_BEST = ("MaxAbsProduct", "LogMaxAbs", "KBest")

UNARY = [lambda a: a.tanh(), lambda a: a.sin(), lambda a: a * 2.0, lambda a: -a, lambda a: a.sigmoid(),
         lambda a: a.relu(), lambda a: a.sum(axis=0, keepdims=True) + a]  # fmt: skip
BINARY = [lambda a, b: a + b, lambda a, b: a * b, lambda a, b: a - b, lambda a, b: a @ b.T @ a]


def random_fn(seed: int, w):
    """A random DAG over ``x`` and ``w`` (both 3 x 3) whose ops are often applied twice to the
    same operands (identical subexpressions), some of them unused."""

    def fn(x):
        rng = np.random.default_rng(seed)
        pool = [x, w]
        for _ in range(int(rng.integers(4, 12))):
            repeat = 1 + int(rng.integers(0, 3))  # the same expression built 1 to 3 times
            if rng.random() < 0.5:
                op, a = UNARY[rng.integers(len(UNARY))], pool[rng.integers(len(pool))]
                made = [op(a) for _ in range(repeat)]
            else:
                op = BINARY[rng.integers(len(BINARY))]
                a, b = pool[rng.integers(len(pool))], pool[rng.integers(len(pool))]
                made = [op(a, b) for _ in range(repeat)]
            pool.extend(made)
        picks = rng.choice(len(pool), size=min(3, len(pool)), replace=False)
        out = pool[picks[0]]
        for i in picks[1:]:
            out = out + pool[i]
        out = out + (x * w).sin()  # (the output depends on both)
        return (out * out).sum()

    return fn


@pytest.mark.parametrize("seed", range(25))
def test_merging_keeps_every_semiring(seed):
    rng = np.random.default_rng(1000 + seed)
    w = sr.tensor(rng.uniform(-1, 1, (3, 3)), requires_grad=True, name="w")
    fn = random_fn(seed, w)
    example = np.zeros((3, 3))
    merged, plain = sr.compile(fn, example), sr.compile(fn, example, unique=False)
    assert plain.stats()["ops_merged"] == 0
    x = rng.uniform(-1, 1, (3, 3))
    xm, xp = sr.tensor(x, requires_grad=True, name="x"), sr.tensor(x, requires_grad=True, name="x")
    ym, yp = merged(xm), plain(xp)
    assert np.array_equal(ym.data, yp.data)
    for S in SEMIRINGS:
        rm, rp = sr.backward(ym, [w, xm], semiring=S), sr.backward(yp, [w, xp], semiring=S)
        for a, b in zip((rm[w], rm[xm]), (rp[w], rp[xp])):
            for u, v in zip(_arrays(a), _arrays(b)):
                if type(S).__name__ in _SUMS:
                    np.testing.assert_allclose(u, v, rtol=1e-9, atol=1e-12 * max(1.0, float(np.abs(v).max())))
                elif type(S).__name__ in _BEST:  # |best| is exact; a tie between paths of opposite
                    # signs (a - b with a, b identical) may be broken the other way: element ids change
                    assert np.array_equal(np.abs(u), np.abs(v)), type(S).__name__
                    assert np.array_equal(u[u == v], v[u == v])
                else:
                    assert np.array_equal(u, v), type(S).__name__
    tm = sr.trace(ym, [w])
    for index in np.ndindex(3, 3):  # a path's weights multiply to its value in the merged graph too
        path = tm.path(w, index)
        assert path.value == tm[w][index]
        assert np.isclose(np.prod(path.weights) * path.seed, path.value, rtol=1e-12, atol=0)


def test_count_semiring_counts_the_same_paths_in_a_merged_graph():
    """(x + y) + x·(x + y) with the two (x + y) stored once: x still has 3 paths to the output."""
    y = sr.tensor([2.0], requires_grad=True, name="y")

    def fn(x):
        return (x + y) + x * (x + y)

    g = sr.compile(fn, np.ones(1))
    assert g.stats()["ops_merged"] == 1
    x = sr.tensor([3.0], requires_grad=True, name="x")
    counts = sr.backward(g(x), [x, y], semiring=sr.semirings.Count())
    assert counts[x].tolist() == [3] and counts[y].tolist() == [2]
    assert sr.grad(g(x), [x])[0].tolist() == sr.grad(fn(x), [x])[0].tolist()
