"""Slice accumulation in the sweep (issue 20, item 4).

A backward rule that covers a slice of its input (``x[t]``, ``gates[..., 0:H]``) hands the sweep an
:class:`semirad.engine.Slice`, which is ⊕-added into one buffer of the input
(:meth:`Semiring.add_at`) rather than scattered full-size and added. The oracle is the rule it
replaced: every slice scattered to the input's full shape with ``scatter(..., unique=True)`` and
⊕-added; every semiring must give the same values (and MaxAbsProduct the same backpointers and paths).
"""

from __future__ import annotations

import numpy as np
import pytest

import semirad as sr
from semirad import engine
from semirad.ids import NO_PATH
from semirad.ops import index as index_ops
from semirad.semirings import Boolean, Count, Entropy, KBest, LogMaxAbs, SumAbs, SumProduct
from semirad.semirings.base import Semiring
from semirad.semirings.component_flow import ComponentFlow
from semirad.semirings.max_abs import MaxAbsProduct

SEMIRINGS = {
    "SumProduct": SumProduct(), "MaxAbsProduct": MaxAbsProduct(), "LogMaxAbs": LogMaxAbs(), "KBest": KBest(3),
    "Boolean": Boolean(), "Count": Count(), "SumAbs": SumAbs(), "Entropy": Entropy(),
}  # fmt: skip


def _full_size_rule(self, ctx, g, S, needs):
    """The rule before slice accumulation: every contribution materialized at the input's shape."""
    index = ctx.params["index"]
    return (S.scatter(g, index, ctx.shapes[0], unique=index_ops.is_unique_index(index)),)


def _graph(x, w):
    """Slices of every kind, overlapping slices, and whole-tensor contributions before and after them."""
    first = (x * w).sum()  # a whole contribution to x that reaches the sweep's ⊕ in some order
    steps = [(x[t] * (t + 1.5)).tanh().sum() for t in range(x.shape[0])]  # per-step slices
    lanes = [x[..., k : k + 2].sigmoid().sum() for k in range(0, x.shape[-1] - 1, 2)]  # along the last axis
    overlap = (x[1:3, 0] * x[2:4, 0]).sum()  # overlapping slices of one input, by two getitem ops
    special = x[None, 0, ..., 1].sum() + x[x.data > 0.3].sum() * 0.5  # None, Ellipsis, a bool mask
    mixed = (x * x).sum()  # a whole contribution after the slices
    return first + sum(steps) + sum(lanes) + overlap + special + mixed


def _results(S, monkeypatch=None, full_size=False):
    rng = np.random.default_rng(7)
    x = sr.tensor(rng.standard_normal((5, 6)), requires_grad=True)
    w = sr.tensor(rng.standard_normal((5, 6)), requires_grad=True)
    if full_size:
        monkeypatch.setattr(index_ops.GetItem, "backward", _full_size_rule)
    result = sr.backward(_graph(x, w), [x, w], semiring=S)
    return result, x, w


def _same(a, b):
    """Equal values (``-0.0 == 0.0``: a buffer keeps the sign of a zero that ``x + 0.0`` would drop)."""
    if isinstance(a, tuple):
        return all(_same(p, q) for p, q in zip(a, b, strict=True))
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


@pytest.mark.parametrize("name", list(SEMIRINGS))
def test_every_semiring_equals_the_full_size_rule(name, monkeypatch):
    S = SEMIRINGS[name]
    got, x, w = _results(S)
    with monkeypatch.context() as m:
        expected, x0, w0 = _results(S, m, full_size=True)
    for a, b in ((x, x0), (w, w0)):
        assert _same(got.sweep.values[a._node], expected.sweep.values[b._node]), name


def test_trace_paths_equal_the_full_size_rule(monkeypatch):
    got, x, _ = _results(MaxAbsProduct())
    with monkeypatch.context() as m:
        expected, x0, _ = _results(MaxAbsProduct(), m, full_size=True)
    assert np.array_equal(got[x], expected[x0])
    for flat in range(x.data.size):
        index = np.unravel_index(flat, x.shape)
        p, q = got.path(x, index), expected.path(x0, index)
        assert p.value == q.value and [s.op for s in p.steps] == [s.op for s in q.steps]


def test_component_flow_equals_the_full_size_rule(monkeypatch):
    def run(full_size):
        rng = np.random.default_rng(3)
        x = sr.tensor(rng.standard_normal((4, 3)), requires_grad=True)
        with monkeypatch.context() as m:
            if full_size:
                m.setattr(index_ops.GetItem, "backward", _full_size_rule)
            rows = [x[t] * 2.0 for t in range(4)]
            loss = sum((r * r).sum() for r in rows) + x.sum()
            flow = ComponentFlow({r._node: 0 for r in rows}, 1)
            return sr.backward(loss, [x], semiring=flow)[x]

    assert np.array_equal(run(False), run(True))


class _Counting(SumProduct):
    """SumProduct that counts the elements its ⊕ (``add``, ``add_at``) and scatters touch."""

    def __init__(self):
        self.touched = 0

    def add(self, a, b):
        self.touched += np.size(a)
        return super().add(a, b)

    def scatter(self, g, index, shape, unique):
        self.touched += int(np.prod(shape))
        return super().scatter(g, index, shape, unique)


@pytest.mark.parametrize("steps", [8, 64])
def test_per_step_slices_cost_their_own_size(steps):
    """L slices x[t] of an (L, n) input: ⊕ and scatter touch O(L n) elements, not O(L² n)."""
    n = 5
    x = sr.tensor(np.ones((steps, n)), requires_grad=True)
    loss = sum((x[t] * float(t)).sum() for t in range(steps))
    S = _Counting()
    grad = sr.backward(loss, [x], semiring=S)[x]
    assert np.array_equal(grad, np.repeat(np.arange(steps, dtype=float)[:, None], n, axis=1))
    assert S.touched <= 3 * steps * n  # one full-size buffer, then one slice per step


def test_lstm_backprop_cost_is_linear_in_length():
    """The quadratic term was the (L, N, 4H) input projection rebuilt for each of the L steps."""

    def touched(length):
        rng = np.random.default_rng(0)
        lstm = sr.nn.LSTM(3, 4)
        out, _ = lstm(sr.tensor(rng.standard_normal((length, 2, 3))))
        S = _Counting()
        sr.backward((out * out).sum(), list(lstm.parameters()), semiring=S)
        return S.touched

    short, long = touched(10), touched(80)
    assert long < 10 * short  # 8x the steps: linear growth gives 8x, quadratic 64x


def test_a_contribution_that_promotes_the_dtype_is_added_out_of_place():
    x = sr.tensor(np.array([1.0, 2.0, 3.0], dtype=np.float32), requires_grad=True)
    scale64 = sr.tensor(np.array([0.1, 0.2], dtype=np.float64))
    loss = (x[0:2] * 3.0).sum() + (x[1:3] * scale64).sum() + (x * x).sum()
    grad = sr.grad(loss, [x])[0]
    expected = np.float64(3.0) * np.array([1, 1, 0]) + np.array([0, 0.1, 0.2]) + 2 * np.array([1.0, 2.0, 3.0])
    assert np.allclose(np.asarray(grad, dtype=np.float64), expected, rtol=1e-6)


def test_full_contribution_materializes_a_slice():
    S = MaxAbsProduct()
    part = engine.Slice((slice(None), 1), (np.array([2.0, -3.0]), np.array([4, 5])))
    value, ids = engine.full_contribution(S, part, (2, 3))
    assert value.tolist() == [[0.0, 2.0, 0.0], [0.0, -3.0, 0.0]]
    assert ids[:, 1].tolist() == [4, 5] and (ids[:, [0, 2]] == NO_PATH).all()


def test_add_at_default_matches_add_of_the_scattered_slice():
    S = KBest(2)
    rng = np.random.default_rng(1)
    buffer = S.seed(rng.standard_normal((4, 3)))
    g = S.seed(rng.standard_normal((2, 3)))
    index = slice(1, 3)
    expected = S.add(tuple(a.copy() for a in buffer), S.scatter(g, index, (4, 3), True))
    got = S.add_at(tuple(a.copy() for a in buffer), index, g)
    assert all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))


@pytest.mark.parametrize(
    "index",
    [slice(1, 3), (Ellipsis, slice(0, 2)), (1, slice(None)), (slice(None), 2), (None, slice(0, 4, 2)),
     (np.array([0, 3]),), (slice(None), np.array([2, 0])), np.int64(2), (1, 2), (Ellipsis, 1, 0)],
)
@pytest.mark.parametrize("g_dtype", [np.float64, np.float32])
def test_sum_product_add_at_is_the_default_in_place(index, g_dtype):
    """SumProduct's in-place ``add_at`` (basic indexes, same dtype) gives the bits and dtype of the
    default's read, add and write back; other indexes and promoting dtypes take the default."""
    rng = np.random.default_rng(2)
    buffer = rng.standard_normal((4, 3)).astype(np.float32)
    g = np.asarray(rng.standard_normal(np.shape(np.zeros((4, 3))[index]))).astype(g_dtype)
    default_buffer = buffer.copy()
    expected = Semiring.add_at(SumProduct(), default_buffer, index, g)
    own = buffer.copy()
    got = SumProduct().add_at(own, index, g)
    assert got.dtype == expected.dtype and np.array_equal(got, expected)
    assert (got is own) == (expected is default_buffer)  # in place exactly where the default is
    if g_dtype == np.float64:  # promoted, out of place: the caller's buffer is left as it was
        assert np.array_equal(own, buffer)
