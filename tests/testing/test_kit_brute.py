"""semirad.testing.brute_force and check_paths: the enumerated paths agree with the sweep in every
built-in semiring; a broken rule or semiring disagrees; every kind of broken path is caught."""

from types import SimpleNamespace

import numpy as np
import pytest
from broken import BuggyMaxMinProduct, MaxMinProduct, doubled_exp
from hypothesis import given, settings
from hypothesis import strategies as st

import semirad as sr
from semirad.paths import Path, Step
from semirad.semirings import KBest, LogMaxAbs, MaxAbsProduct, SumProduct
from semirad.testing import ScalarGraph, brute_force, builtin_semirings, check_paths, scalar_graph
from semirad.testing.strategies import arrays

GRID = st.sampled_from([-1.0, -0.5, 0.0, 0.5, 1.0, 2.0])  # zeros and exact ties

GRAPHS = {
    "mlp": (lambda x, w: ((x @ w).tanh() * x[0]).sum(), [(2,), (2, 2)]),
    "square-gather": (lambda x: (x * x).sum() + x[[0, 0, 1]].sum(), [(3,)]),
    "concat-exp": (lambda x, y: (sr.concat([x, y]) * 2.0 - x.sum()).exp().mean(), [(2,), (1,)]),
    "x@x": (lambda X: (X @ X).sum(), [(2, 2)]),
    "relu-max": (lambda x: sr.maximum(x, 0.0).sum() * x.relu().sum(), [(3,)]),
    "softmax": (lambda x: sr.log_softmax(x * 2.0)[1:].sum(), [(3,)]),
    "bias-broadcast": (lambda x, b: (x * 2.0 + b).sigmoid().sum(axis=0) @ np.array([1.0, -1.0]), [(2, 2), (2,)]),
}


def compare(S, got, want, where):
    got = np.asarray(got, dtype=np.float64)
    if isinstance(S, KBest):  # slots of equal |product| may hold either sign where a tie group is cut
        got, want = np.abs(got), np.abs(want)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=where)


@pytest.mark.parametrize("name", GRAPHS)
@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_brute_force_agrees_with_the_sweep_in_every_semiring(name, data):
    fn, shapes = GRAPHS[name]
    values = [data.draw(arrays(s, elements=GRID)) for s in shapes]
    for S in builtin_semirings() + [KBest(1), MaxMinProduct()]:
        xs = [sr.tensor(v, requires_grad=True, name=f"x{k}") for k, v in enumerate(values)]
        result = sr.backward(fn(*xs), xs, semiring=S)
        for k, (x, want) in enumerate(zip(xs, brute_force(fn, xs, S))):
            compare(S, result[x], want, f"{S!r} input {k}")
        if hasattr(result, "path"):
            check_paths(result)


def test_brute_force_with_a_seed():
    x = sr.tensor([1.0, -2.0], requires_grad=True)
    seed = np.array([3.0, 0.5])
    (want,) = brute_force(lambda t: t * t, [x], SumProduct(), seed=seed)
    assert want.tolist() == (2 * x.numpy() * seed).tolist()
    (best,) = brute_force(lambda t: t * t, [x], MaxAbsProduct(), seed=seed)
    assert best.tolist() == [3.0, -1.0]


def test_brute_force_catches_a_rule_for_sumproduct_only():
    fn = lambda x: doubled_exp(x * -1.5).sum()  # noqa: E731
    x = sr.tensor([0.5, 1.0], requires_grad=True)
    for S in [SumProduct()]:
        np.testing.assert_allclose(sr.backward(fn(x), [x], semiring=S)[x], brute_force(fn, [x], S)[0])
    traced = sr.trace(fn(x), [x])[x]
    assert not np.allclose(traced, brute_force(fn, [x], MaxAbsProduct())[0])


def test_brute_force_catches_the_max_min_bug():
    """A dead end scaled by a negative weight: the sweep of the buggy semiring finds a path of +inf."""
    fn = lambda x, y: sr.concat([x * 2.0, y * -2.0])[:1].sum()  # noqa: E731
    xs = [sr.tensor([1.0], requires_grad=True), sr.tensor([1.0], requires_grad=True)]
    for S, same in [(MaxMinProduct(), True), (BuggyMaxMinProduct(), False)]:
        got = sr.backward(fn(*xs), xs, semiring=S)[xs[1]]
        assert np.array_equal(got, brute_force(fn, xs, S)[1]) == same


def test_scalar_graph_keeps_parallel_edges():
    graph, y, (X,) = scalar_graph(lambda t: (t @ t)[0, 1], [np.array([[-4.0, 2.0], [3.0, 0.5]])])
    start = graph.vertex(X._node, 1)  # X[0, 1] -> (X @ X)[0, 1]: as the left operand (X[1, 1]) and the right (X[0, 0])
    assert sorted(w[0] for _, w in graph.paths(start)) == [-4.0, 0.5]
    hand = ScalarGraph()
    a, b = hand.add_vertices(2)
    hand.add_edge(a, b, 0.0)
    hand.ends[b] = 1.0
    assert hand.fold(a, sr.semirings.Count()).tolist() == 0.0
    assert hand.fold(a, sr.semirings.Count(), zero_partials="edge").tolist() == 0.0  # Count's own scale drops it


# -- check_paths against broken paths ------------------------------------------------------------------


def trace():
    x = sr.tensor([1.0, -2.0, 0.5], requires_grad=True, name="x")
    y = x * np.array([3.0, 0.25, -1.0])
    return sr.trace((y.tanh() * y).sum(), [x])


def corrupt(result, change):
    """``result`` whose ``path`` hands every path through ``change(path, tensor, index)``."""
    real = result.path
    result.path = lambda t, index: change(real(t, index), t, index)
    return result


def rebuilt(p, steps=None, weights=None, seqs=None, seed=None):
    return Path(list(p.steps if steps is None else steps), list(p.weights if weights is None else weights),
                list(p.node_seqs if seqs is None else seqs), p.seed if seed is None else seed)  # fmt: skip


def moved_step(p, t, index):
    step = p.steps[1]
    other = Step(step.op, step.name, step.shape, ((step.index[0] + 1) % step.shape[0],), step.component)
    return rebuilt(p, steps=[p.steps[0], other, *p.steps[2:]])


class ValueOff(Path):
    @property
    def value(self):
        return super().value * 1.5


BROKEN_PATHS = {
    "no edge": (moved_step, "no edge"),
    "wrong weight": (lambda p, t, i: rebuilt(p, weights=[p.weights[0] * 2, *p.weights[1:]]), "has weight"),
    "wrong start": (lambda p, t, i: rebuilt(p, steps=[Step(*p.steps[0][:3], ((i[0] + 1) % 3,))] + p.steps[1:]),
                    "starts at"),  # fmt: skip
    "not at the output": (lambda p, t, i: rebuilt(p, steps=p.steps[:-1], weights=p.weights[:-1], seqs=p.node_seqs[:-1]),
                          "not at the output"),  # fmt: skip
    "wrong seed": (lambda p, t, i: rebuilt(p, seed=2.0), "seed 2.0"),
    "value is not the product": (lambda p, t, i: ValueOff(p.steps, p.weights, p.node_seqs, p.seed),
                                 "is not the product"),  # fmt: skip
    "missing weight": (lambda p, t, i: rebuilt(p, weights=p.weights[:-1]), "weights"),
}


@pytest.mark.parametrize("kind", BROKEN_PATHS)
def test_check_paths_catches_a_broken_path(kind):
    change, message = BROKEN_PATHS[kind]
    assert check_paths(trace()) == 3
    with pytest.raises(AssertionError, match=message):
        check_paths(corrupt(trace(), change))


def test_check_paths_catches_a_value_the_result_does_not_show():
    result = trace()
    shown = result[SimpleNamespace(_node=next(iter(result.sweep.values)))]
    result.__class__ = type("Shifted", (type(result),), {"__getitem__": lambda self, t: shown + 1.0})
    with pytest.raises(AssertionError, match="the result shows"):
        check_paths(result)


def test_check_paths_catches_a_missing_path():
    result = trace()

    def no_path(t, index):
        raise ValueError("no path")

    result.path = no_path
    with pytest.raises(AssertionError, match="has no path, yet the result shows"):
        check_paths(result)


@pytest.mark.parametrize("S", [MaxAbsProduct(), LogMaxAbs(), KBest(1), KBest(3)], ids=repr)
def test_check_paths_on_every_path_capable_semiring(S):
    x = sr.tensor([[1.0, 0.0], [-2.0, 0.5]], requires_grad=True, name="x")
    w = sr.tensor([[0.5, -1.0], [2.0, 0.0]], requires_grad=True, name="w")
    h = (x @ w).relu() * x
    result = sr.backward(h.sum() + (h * h).mean(), [x, w], semiring=S)
    assert check_paths(result) > 0


def test_check_paths_needs_paths():
    x = sr.tensor([1.0], requires_grad=True)
    with pytest.raises(TypeError, match="path-capable"):
        check_paths(sr.backward(x.sum(), [x]))
