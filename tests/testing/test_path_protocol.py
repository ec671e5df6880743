"""The path protocol (docs/semirings.md, "Paths for your own semiring"): a semiring defined here, not
in semirad, that names its backpointer component gets paths equal to brute force, and
component_importance and path_shares equal to walking its paths; one that does not gets an error
naming what it lacks."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path as FilePath

import numpy as np
import pytest

import semirad as sr
from semirad.analysis import component_importance, path_shares
from semirad.ids import END, NO_PATH
from semirad.paths import RankedTrace, Trace
from semirad.semirings import Semiring
from semirad.semirings.base import path_protocol_problem
from semirad.semirings.k_best import KBest
from semirad.testing import brute_force, check_paths, check_semiring, graph_of


class Weakest(Semiring):
    """The path with the smallest |product| (inf: none); a value is ``(magnitude, sign, ids)``.
    ⊕ keeps the smallest ``(magnitude, id, sign)``; a 0 partial is no edge."""

    name = "weakest"
    path_component = 2

    def backpointers(self, kept):
        return kept

    def rank_edges(self, weights):
        return sorted((w for w in weights if w != 0), key=abs)

    def zeros(self, xp, shape, dtype):
        return (np.full(shape, np.inf, dtype=dtype), np.ones(shape, dtype=np.int8),
                np.full(shape, NO_PATH, dtype=np.int64))  # fmt: skip

    def seed(self, array):
        one = np.ones(np.shape(array))
        return self.scale((one, one.astype(np.int8), np.full(np.shape(array), END)), array)

    def shape(self, g):
        return g[0].shape

    def to_array(self, g, dtype):
        return (g[1] * g[0]).astype(dtype)

    def add(self, a, b):
        (ma, sa, ia), (mb, sb, ib) = a, b
        take_b = (mb < ma) | ((mb == ma) & ((ib < ia) | ((ib == ia) & (sb < sa))))
        return tuple(np.where(take_b, y, x) for x, y in zip(a, b, strict=True))

    def scale(self, g, weights):
        magnitude, sign, ids = g
        w = np.asarray(weights)
        dead = (w == 0) | np.isinf(magnitude)
        with np.errstate(invalid="ignore"):
            return (np.where(dead, np.inf, magnitude * np.abs(w)),
                    np.where(dead, 1, sign * np.sign(w)).astype(np.int8), np.where(dead, NO_PATH, ids))  # fmt: skip

    def sum(self, g, axes, keepdims=False):  # the ⊕-fold, one reduced element at a time
        m = g[0]
        axes = tuple(sorted(a % m.ndim for a in axes))
        keep = [d for d in range(m.ndim) if d not in axes]
        moved = [np.transpose(np.broadcast_to(c, m.shape), keep + list(axes)).reshape(
            tuple(m.shape[d] for d in keep) + (-1,)) for c in g]  # fmt: skip
        acc = self.zeros(np, moved[0].shape[:-1], m.dtype)
        for j in range(moved[0].shape[-1]):
            acc = self.add(acc, tuple(c[..., j] for c in moved))
        return tuple(np.expand_dims(c, axes) for c in acc) if keepdims else acc

    def matmul(self, g, weights):
        w = np.asarray(weights)
        return self.sum(self.scale(self.map(g, lambda a: a[..., :, :, None]), w[..., None, :, :]), (-2,))

    def scatter(self, g, index, shape, unique):
        out = self.zeros(np, shape, g[0].dtype)
        targets = np.arange(out[0].size).reshape(shape)[index]
        parts = [np.broadcast_to(c, targets.shape).ravel() for c in g]
        for t, *value in zip(targets.ravel(), *parts):
            for c, v in zip(out, self.add(tuple(c.flat[t] for c in out), tuple(value)), strict=True):
                c.flat[t] = v
        return out

    def map(self, g, fn):
        return tuple(fn(c) for c in g)


class TwoBest(Semiring):
    """KBest(2)'s algebra behind a class of its own: ``k = 2`` and the protocol's default ``enter``
    (not KBest's), so the codes ``gid * 2 + rank`` are made by the protocol."""

    name = "two-best"
    k = 2
    lead_axes = 1
    path_component = 2

    def __init__(self):
        self.inner = KBest(2)

    def backpointers(self, kept):
        return kept

    def rank_edges(self, weights):
        return self.inner.rank_edges(weights)

    def zeros(self, xp, shape, dtype):
        return self.inner.zeros(xp, shape, dtype)

    def seed(self, array):
        return self.inner.seed(array)

    def shape(self, g):
        return self.inner.shape(g)

    def to_array(self, g, dtype):
        return self.inner.to_array(g, dtype)

    def add(self, a, b):
        return self.inner.add(a, b)

    def scale(self, g, weights):
        return self.inner.scale(g, weights)

    def sum(self, g, axes, keepdims=False):
        return self.inner.sum(g, axes, keepdims)

    def matmul(self, g, weights):
        return self.inner.matmul(g, weights)

    def scatter(self, g, index, shape, unique):
        return self.inner.scatter(g, index, shape, unique)

    def map(self, g, fn):
        return self.inner.map(g, fn)


RNG = np.random.default_rng(30)  # (a draw where some weakest paths take a parallel edge and some skip h @ h)
X = RNG.uniform(0.3, 1.7, (2, 2)) * RNG.choice([-1.0, 1.0], (2, 2))
W = RNG.uniform(0.3, 1.7, (2, 2)) * RNG.choice([-1.0, 1.0], (2, 2))


def model(x, w):
    with sr.component("mix"):
        h = x @ w
    with sr.component("self"):
        q = h @ h  # h[a, b] -> q[a, b] twice: parallel edges of weights h[b, b] and h[a, a]
    r = (q.tanh() + x * 0.05).relu()
    with sr.component("out"):
        return (r * sr.tensor([[1.3, -0.4], [2.1, 0.9]])).sum()


def leaves():
    return [sr.tensor(X.copy(), requires_grad=True, name="x"), sr.tensor(W.copy(), requires_grad=True, name="w")]


def sweep(semiring):
    x, w = leaves()
    return sr.backward(model(x, w), [x, w], semiring=semiring), x, w


def walked_counts(result, params):
    counts, n = Counter(), 0
    for p in params:
        for index in np.ndindex(p.shape):
            found = result.paths(p, index) if hasattr(result, "paths") else _one(result, p, index)
            for path in found:
                n += 1
                counts.update(path.components())
    return {("(untagged)" if k is None else k): float(v) for k, v in counts.items()}, n


def _one(result, p, index):
    try:
        return [result.path(p, index)]
    except ValueError:
        return []


def walked_shares(result, sources, names):
    counts, n = dict.fromkeys([*names, "none"], 0), 0
    for p in sources:
        for index in np.ndindex(p.shape):
            found = result.paths(p, index) if hasattr(result, "paths") else _one(result, p, index)
            for path in found:
                n += 1
                hit = [name for name in names if any(s.component == name for s in path.steps[1:])]
                for name in hit:
                    counts[name] += 1
                counts["none"] += not hit
    return counts, n


# -- a user semiring with one path per element ---------------------------------------------------------


def test_the_user_semiring_is_a_lawful_semiring():
    check_semiring(Weakest(), examples=5)


def test_its_result_follows_paths_and_its_values_equal_brute_force():
    result, x, w = sweep(Weakest())
    assert isinstance(result, Trace) and not isinstance(result, RankedTrace)
    for t, want in zip([x, w], brute_force(model, [x, w], Weakest()), strict=True):
        np.testing.assert_array_equal(result[t], want)
    assert check_paths(result) == 8  # every element reaches the output here


def test_each_path_is_the_weakest_path_brute_force_finds():
    result, x, w = sweep(Weakest())
    graph = graph_of(_Handle(result.sweep.root))  # the very graph the sweep ran on
    for t in (x, w):
        for flat, index in enumerate(np.ndindex(t.shape)):
            paths = [(verts, ws) for verts, ws in graph.paths(graph.vertex(t._node, flat)) if all(ws)]
            magnitudes = [abs(np.prod(ws)) for _, ws in paths]
            verts, ws = paths[int(np.argmin(magnitudes))]
            assert sorted(magnitudes)[0] < sorted(magnitudes)[1]  # no tie: one right answer
            got = result.path(t, index)
            assert [(n.seq, f) for n, f in map(graph.element, verts)] == [
                (seq, int(np.ravel_multi_index(s.index, s.shape)) if s.shape else 0)
                for seq, s in zip(got.node_seqs, got.steps, strict=True)
            ]
            assert sorted(got.weights) == sorted(ws) and got.value == pytest.approx(result[t][index], rel=1e-12)


class _Handle:
    """The output's node, as graph_of reads a tensor."""

    def __init__(self, node):
        self._node, self.shape = node, node.shape


def test_a_weakest_path_takes_the_weaker_of_two_parallel_edges():
    """h[a, a] -> (h @ h)[a, a] twice: the semiring's rank_edges picks the edge; with the default
    (the stronger edge first) the paths would not be the ones the sweep ranked, and check_paths says so."""
    result, x, w = sweep(Weakest())
    took_parallel = 0
    for t in (x, w):
        for index in np.ndindex(t.shape):
            steps = result.path(t, index).steps
            hops = [(a.op, a.index, b.op, b.index) for a, b in zip(steps, steps[1:])]
            took_parallel += any(a == "matmul" and b == "matmul" and i == j for a, i, b, j in hops)
    assert took_parallel

    class StrongEdges(Weakest):
        rank_edges = Semiring.rank_edges

    wrong, _, _ = sweep(StrongEdges())
    with pytest.raises(AssertionError, match="check_paths"):
        check_paths(wrong)


def test_component_importance_and_path_shares_equal_walking_its_paths():
    result, x, w = sweep(Weakest())
    imp = component_importance(result, [x, w])
    counts, n = walked_counts(result, [x, w])
    assert imp.counts == counts and imp.paths == n == 8
    assert imp.kind == "weakest"  # path_kind: the semiring's name by default
    names = ["mix", "self", "out"]
    shares = path_shares(result, [x, w], {name: name for name in names})
    want, n = walked_shares(result, [x, w], names)
    assert shares.counts == want and shares.paths == n
    assert 0 < shares.counts["self"] < n  # some paths skip h @ h: the counts tell the paths apart


# -- a user semiring with k paths per element ------------------------------------------------------------


def test_k_paths_per_element_through_the_protocols_default_enter():
    result, x, w = sweep(TwoBest())
    assert isinstance(result, RankedTrace)
    reference, rx, rw = sweep(KBest(2))
    for t, r, want in zip([x, w], [rx, rw], brute_force(model, [x, w], TwoBest()), strict=True):
        np.testing.assert_array_equal(result[t], want)
        np.testing.assert_array_equal(result[t], reference[r])
        for index in np.ndindex(t.shape):
            ours, theirs = result.paths(t, index), reference.paths(r, index)
            assert [p.weights for p in ours] == [p.weights for p in theirs] and len(ours) == 2
            assert result.path(t, index, 1).weights == theirs[1].weights
    assert check_paths(result) == 16
    imp = component_importance(result, [x, w])
    counts, n = walked_counts(result, [x, w])
    assert imp.counts == counts == component_importance(reference, [rx, rw]).counts and imp.paths == n
    assert imp.kind == "two-best(2)"
    assert component_importance(result, [x, w], ranks=[1]).paths == 8
    shares = path_shares(result, [x, w], {"self": "self"})
    assert shares.counts == walked_shares(result, [x, w], ["self"])[0]
    with pytest.raises(IndexError, match="out of range"):
        result.path(x, (0, 0), 2)


# -- what the protocol asks for, and the errors without it -----------------------------------------------


class NoBackpointers(Weakest):
    backpointers = None


class NothingKept(Weakest):
    path_component = None


class BadRanks(Weakest):
    k = 0


@pytest.mark.parametrize(
    "semiring, missing",
    [
        (NoBackpointers(), r"no backpointers\(kept\) method"),
        (NothingKept(), "keeps nothing per vertex: set path_component"),
        (BadRanks(), "k = 0"),
    ],
)
def test_a_semiring_that_does_not_follow_the_protocol_is_told_what_it_lacks(semiring, missing):
    result, x, w = sweep(semiring)
    assert type(result) is sr.semirings.base.Result
    with pytest.raises(AttributeError, match=missing):
        result.path(x, (0, 0))
    with pytest.raises(AttributeError, match=missing):
        result.walk(x, (0, 0))
    with pytest.raises(TypeError, match="component importance needs the result of a path-capable semiring.*" + missing):
        component_importance(result, [x])
    with pytest.raises(TypeError, match="path_shares needs .*" + missing):
        path_shares(result, x, {"mix": "mix"})
    with pytest.raises(TypeError, match="check_paths needs .*" + missing):
        check_paths(result)


def test_one_path_per_element_has_no_paths_method_and_says_so():
    result, x, _ = sweep(Weakest())
    with pytest.raises(AttributeError, match=r"k = 1\): use .path"):
        result.paths(x, (0, 0))


def test_a_semiring_naming_its_own_result_class_keeps_it():
    class Mine(Trace):
        pass

    class WithResult(Weakest):
        result_class = Mine

    result, _, _ = sweep(WithResult())
    assert type(result) is Mine


def test_the_built_ins_follow_the_protocol_and_the_others_do_not():
    S = sr.semirings
    for semiring in (S.MaxAbsProduct(), S.LogMaxAbs(), S.KBest(3)):
        assert path_protocol_problem(semiring) is None
    assert [S.MaxAbsProduct().path_kind, S.LogMaxAbs().path_kind, S.KBest(3).path_kind] == [
        "trace", "trace (log)", "k-best(3)"]  # fmt: skip
    for semiring in (S.SumProduct(), S.Count(), S.Boolean(), S.SumAbs(), S.Entropy()):
        assert "no backpointers(kept)" in path_protocol_problem(semiring)
        assert not S.SumProduct().has_enter


def test_paths_importance_and_shares_ask_the_protocol_not_the_class():
    """No isinstance test on a built-in semiring or result class is left where the protocol answers."""
    root = FilePath(sr.__file__).parent
    named = {"MaxAbsProduct", "LogMaxAbs", "KBest", "Ranked", "Trace", "RankedTrace", "LogMaxAbsTrace", "KBestResult"}
    for module in ("paths.py", "analysis/importance.py", "analysis/shares.py"):
        tree = ast.parse((root / module).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance":
                used = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
                assert not used & named, f"{module}:{node.lineno} tests isinstance against {used & named}"
