"""Forward backpointers: ``jvp(...).path(output, index)`` walks from the seeded input element to an
output element; on graphs without ties it is the very path the reverse trace finds between the two."""

from __future__ import annotations

import numpy as np
import pytest

import semirad as sr
import semirad.nn.functional as F
from semirad.forward import ForwardPath
from semirad.semirings import KBest, LogMaxAbs, MaxAbsProduct


def random_graph(rng):
    W = sr.tensor(rng.standard_normal((4, 4)))
    steps = rng.integers(0, 5, size=4)

    def fn(x):
        h = x
        for s in steps:
            if s == 0:
                h = h @ W
            elif s == 1:
                h = (h * 1.3).tanh() * h
            elif s == 2:
                h = h[:, [3, 0, 0, 2]] + h.T.reshape(2, 4)[::-1]
            elif s == 3:
                h = h * h.sum(axis=1, keepdims=True)
            else:
                h = F.softmax(h, dim=-1)
        return h

    return fn


def _where(step):
    return step.op, step.shape, step.index


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("S", [MaxAbsProduct(), LogMaxAbs(), KBest(2)], ids=repr)
def test_forward_path_is_the_reverse_trace_path(S, seed):
    rng = np.random.default_rng(seed)
    fn = random_graph(rng)
    x = rng.standard_normal((2, 4))
    i = (int(rng.integers(2)), int(rng.integers(4)))
    one_in = np.zeros_like(x)
    one_in[i] = 1
    result = sr.jvp(fn, x, one_in, semiring=S)
    reached = np.argwhere(np.asarray(sr.jvp(fn, x, one_in, semiring=sr.semirings.Count())[1]) >= getattr(S, "k", 1))
    if not len(reached):
        pytest.skip("no output element has enough paths from the seeded element")
    o = tuple(int(a) for a in reached[rng.integers(len(reached))])
    leaf = sr.tensor(x, requires_grad=True)
    out = fn(leaf)
    one_out = np.zeros(out.shape)
    one_out[o] = 1
    tr = sr.backward(out, [leaf], S, seed=one_out)
    for rank in range(getattr(S, "k", 1)):
        forward = result.path(0, o, rank) if isinstance(S, KBest) else result.path(0, o)
        reverse = tr.path(leaf, i, rank) if isinstance(S, KBest) else tr.path(leaf, i)
        assert isinstance(forward, ForwardPath) and isinstance(forward, sr.Path)
        assert [_where(s) for s in forward.steps] == [_where(s) for s in reverse.steps]
        assert forward.steps[0].op == "leaf" and forward.steps[0].index == i and forward.steps[-1].index == o
        assert np.isclose(forward.value, reverse.value, rtol=1e-12)
        tangent = np.asarray(result[1])
        if isinstance(S, MaxAbsProduct):
            assert forward.value == tangent[o]  # bit for bit: multiplied in the sweep's order
        elif isinstance(S, KBest):
            assert np.isclose(forward.value, tangent[(rank,) + o], rtol=1e-12)
        else:
            assert np.isclose(forward.log_abs_value, tangent[o], rtol=1e-12)


def test_paths_start_at_the_seeded_elements_and_ties_go_to_the_earlier_input():
    x = np.array([1.0, -1.0, 3.0])
    fn = lambda t: (t * t[::-1]).sum().reshape(1)  # x0*x2 (twice), x1*x1: |3| beats |1|
    result = sr.jvp(fn, x, np.array([1.0, 1.0, 0.0]), semiring=MaxAbsProduct())
    p = result.path(0, 0)
    assert p.steps[0].index == (0,) and p.value == 3.0
    # a tie between x0 and x1 (both seeded, equal |weight|): the element created first wins
    result = sr.jvp(lambda t: t.sum().reshape(1), np.array([1.0, 1.0]), np.array([1.0, 1.0]), semiring=MaxAbsProduct())
    assert result.path(0, 0).steps[0].index == (0,)


def test_no_path_and_errors():
    result = sr.jvp(lambda t: t * 2.0, np.ones(2), np.array([1.0, 0.0]), semiring=KBest(1))
    assert result.path(0, 0).value == 2.0
    with pytest.raises(ValueError, match="no path"):
        result.path(0, 1)
    with pytest.raises(TypeError, match="backpointers"):
        sr.jvp(lambda t: t * 2.0, np.ones(2), np.ones(2)).path(0, 0)
    with pytest.raises(ValueError, match="keep_graph"):
        sr.jvp(lambda t: t * 2.0, np.ones(2), np.ones(2), semiring=MaxAbsProduct(), keep_graph=False).path(0, 0)
