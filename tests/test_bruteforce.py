"""Whole-graph oracle (DESIGN.md section 4, third oracle).

Hypothesis builds small random graphs of semirad ops. Beside every op the test builds its own
*scalar reference*: one vertex per tensor element and an explicit list of edges whose weights come
from the test's own per-op scalar formulas (never from semirad's backward rules); parallel edges
(``x * x``) stay separate. Brute force (DFS over every path from an element to the loss) then
gives, per element, the sum over paths (= the gradient) and the signed value of the path with the
largest ``|product|`` (= the trace). The trace's paths are mapped back onto the reference through
the tensors' names and checked edge by edge.

The enumeration is ``semirad.testing``'s (:class:`~semirad.testing.ScalarGraph`), and the kit is held
to this reference: the scalar graph it reads off semirad's rules (:func:`semirad.testing.scalar_graph`)
must have the reference's paths, with the same products, and every path of the trace must pass
:func:`semirad.testing.check_paths`.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import semirad as sr
from semirad.kernels.tanh import tanh_numpy
from semirad.testing import ScalarGraph, check_paths, graph_of

RTOL = 1e-9
#: the loaded hypothesis profile's budget (tests/conftest.py); one example takes a few ms
EXAMPLES = settings.default.max_examples
MAX_PATHS = 20_000  # per start vertex; bigger graphs are rejected, not enumerated


# -- the independent scalar reference -----------------------------------------------------------


class Ref:
    """A tensor of the reference graph: forward values, vertex ids, the semirad tensor beside it."""

    def __init__(self, name: str, op: str, val: np.ndarray, ids: np.ndarray, tensor):
        self.name, self.op, self.val, self.ids, self.tensor = name, op, val, ids, tensor

    @property
    def shape(self):
        return self.val.shape


class Graph:
    """Builds a semirad graph and its scalar reference side by side."""

    def __init__(self):
        self.n_vertices = 0
        self.out_edges = defaultdict(list)  # vertex -> [(successor, weight), ...], parallel edges kept
        self.by_name: dict[str, Ref] = {}
        self.vertex_of: dict[int, tuple[Ref, int]] = {}
        self.inputs: list[Ref] = []
        self.used: set[str] = set()

    # bookkeeping
    def _new(self, op: str, val, tensor, prefix="v") -> Ref:
        val = np.asarray(val, dtype=np.float64)
        ids = np.arange(self.n_vertices, self.n_vertices + val.size).reshape(val.shape)
        self.n_vertices += val.size
        name = f"{prefix}{len(self.by_name)}"
        tensor.name = name
        ref = Ref(name, op, val, ids, tensor)
        self.by_name[name] = ref
        for flat, v in enumerate(ids.reshape(-1)):
            self.vertex_of[int(v)] = (ref, flat)
        return ref

    def _edges(self, src_ids, dst_ids, weights) -> None:
        src = np.asarray(src_ids).reshape(-1)
        dst = np.asarray(dst_ids).reshape(-1)
        w = np.broadcast_to(np.asarray(weights, dtype=np.float64), np.asarray(dst_ids).shape).reshape(-1)
        assert src.shape == dst.shape == w.shape
        for s, d, x in zip(src, dst, w, strict=True):
            self.out_edges[int(s)].append((int(d), float(x)))

    def _use(self, *refs):
        self.used.update(r.name for r in refs)

    # ops
    def leaf(self, value) -> Ref:
        t = sr.tensor(np.asarray(value, dtype=np.float64), requires_grad=True)
        ref = self._new("leaf", value, t, prefix="x")
        self.inputs.append(ref)
        return ref

    def unary(self, kind: str, a: Ref) -> Ref:
        x = a.val
        if kind == "tanh":  # semirad's float64 tanh (tests/test_tanh.py checks it against long double):
            t = tanh_numpy(np.asarray(x, dtype=np.float64))  # 1 - y*y near saturation magnifies an ulp
            val, w = t, 1.0 - t**2
        elif kind == "exp":
            val, w = np.exp(x), np.exp(x)
        elif kind == "sigmoid":
            s = 1.0 / (1.0 + np.exp(-x))
            e = np.exp(-np.abs(x))  # s (1 - s) cancels for large x: e / (1 + e)^2 is the same partial, exact
            val, w = s, e / (1.0 + e) ** 2
        else:
            raise AssertionError(kind)
        out = self._new(kind, val, getattr(a.tensor, kind)())
        self._edges(a.ids, out.ids, w)
        self._use(a)
        return out

    def binary(self, kind: str, a: Ref, b: Ref) -> Ref:
        shape = np.broadcast_shapes(a.shape, b.shape)
        va, vb = np.broadcast_to(a.val, shape), np.broadcast_to(b.val, shape)
        ia, ib = np.broadcast_to(a.ids, shape), np.broadcast_to(b.ids, shape)
        one = np.ones(shape)
        if kind == "add":
            val, wa, wb, t = va + vb, one, one, a.tensor + b.tensor
        elif kind == "sub":
            val, wa, wb, t = va - vb, one, -one, a.tensor - b.tensor
        elif kind == "mul":
            val, wa, wb, t = va * vb, vb, va, a.tensor * b.tensor
        elif kind == "div":
            val, wa, wb, t = va / vb, 1.0 / vb, -va / (vb * vb), a.tensor / b.tensor
        else:
            raise AssertionError(kind)
        out = self._new(kind, val, t)
        self._edges(ia, out.ids, wa)  # a and b may be one tensor: two separate (parallel) edges
        self._edges(ib, out.ids, wb)
        self._use(a, b)
        return out

    def matmul(self, a: Ref, b: Ref) -> Ref:
        A = a.val.reshape(1, -1) if a.val.ndim == 1 else a.val
        B = b.val.reshape(-1, 1) if b.val.ndim == 1 else b.val
        IA = a.ids.reshape(A.shape)
        IB = b.ids.reshape(B.shape)
        m, n = A.shape
        p = B.shape[1]
        val = np.zeros((m, p))
        for i in range(m):
            for k in range(p):
                val[i, k] = sum(A[i, j] * B[j, k] for j in range(n))
        out_shape = ((m,) if a.val.ndim == 2 else ()) + ((p,) if b.val.ndim == 2 else ())
        out = self._new("matmul", val.reshape(out_shape), a.tensor @ b.tensor)
        IO = out.ids.reshape(m, p)  # flat order of the promoted (m, p) equals the real output's
        for i in range(m):
            for k in range(p):
                for j in range(n):
                    self.out_edges[int(IA[i, j])].append((int(IO[i, k]), float(B[j, k])))
                    self.out_edges[int(IB[j, k])].append((int(IO[i, k]), float(A[i, j])))
        self._use(a, b)
        return out

    def reduce(self, kind: str, a: Ref, axis, keepdims: bool) -> Ref:
        axes = tuple(range(a.val.ndim)) if axis is None else (axis % a.val.ndim,)
        count = int(np.prod([a.shape[d] for d in axes]))
        val = a.val.sum(axis=axes, keepdims=keepdims) / (count if kind == "mean" else 1)
        t = getattr(a.tensor, kind)(axis=axis, keepdims=keepdims)
        out = self._new(kind, val, t)
        kept = tuple(1 if d in axes else n for d, n in enumerate(a.shape))
        target = np.broadcast_to(out.ids.reshape(kept), a.shape)  # the output element each input feeds
        self._edges(a.ids, target, 1.0 / count if kind == "mean" else 1.0)
        self._use(a)
        return out

    def gather(self, a: Ref, axis: int, idx: np.ndarray) -> Ref:
        index = (slice(None),) * axis + (idx,)
        out = self._new("getitem", a.val[index], a.tensor[index])
        self._edges(a.ids[index], out.ids, 1.0)  # repeated indices: one edge per output element
        self._use(a)
        return out

    def concat(self, parts: list, axis: int) -> Ref:
        val = np.concatenate([p.val for p in parts], axis=axis)
        out = self._new("concat", val, sr.concat([p.tensor for p in parts], axis=axis))
        self._edges(np.concatenate([p.ids for p in parts], axis=axis), out.ids, 1.0)
        self._use(*parts)
        return out

    # queries
    def paths_from(self, start: int, end: int) -> list:
        """Products of the edge weights of every path from ``start`` to ``end`` (brute force:
        :meth:`semirad.testing.ScalarGraph.paths` on the reference's edges)."""
        scalar = ScalarGraph()
        scalar.out_edges, scalar.ends = self.out_edges, {end: 1.0}
        return [math.prod(weights) for _, weights in scalar.paths(start)]

    def count_paths(self, end: int) -> dict:
        count = defaultdict(int)
        count[end] = 1
        for v in range(self.n_vertices - 1, -1, -1):  # vertices are numbered in topological order
            if v != end:
                count[v] = sum(count[u] for u, _ in self.out_edges[v])
        return count

    def vertex(self, step) -> int:
        ref = self.by_name.get(step.name)
        assert ref is not None, f"path step {step} names no tensor of the reference graph"
        assert step.op == ref.op, f"step {step}: op {step.op!r}, the reference made {ref.name} by {ref.op!r}"
        assert tuple(step.shape) == ref.shape, f"step {step}: shape differs from {ref.shape}"
        return int(ref.ids[tuple(step.index)]) if ref.shape else int(ref.ids)


# -- the checks ---------------------------------------------------------------------------------


def check_graph(graph: Graph, loss: Ref, targets: list) -> None:
    """Gradient, trace values and best paths of ``targets`` against brute force on the reference."""
    assert loss.shape == ()
    end = int(loss.ids)
    # forward values: BLAS may sum a matmul in another order (or fused), so a value that cancels to 0
    # in the reference may come out as a rounding error of the graph's scale
    scale = max(1.0, max(float(np.max(np.abs(ref.val), initial=0.0)) for ref in graph.by_name.values()))
    for ref in graph.by_name.values():
        np.testing.assert_allclose(ref.tensor.numpy(), ref.val, rtol=1e-12, atol=1e-14 * scale, err_msg=ref.name)

    counts = graph.count_paths(end)
    if any(counts[int(v)] > MAX_PATHS for t in targets for v in t.ids.reshape(-1)):
        reject()  # too many paths to enumerate (does not happen with the sizes drawn here)

    tensors = [t.tensor for t in targets]
    grads = sr.grad(loss.tensor, tensors)
    tr = sr.trace(loss.tensor, tensors)
    check_paths(tr)  # the kit's path check, on its own scalar graph
    kit = graph_of(loss.tensor)  # the kit's scalar graph, read off semirad's rules, against the reference
    for ref, grad in zip(targets, grads, strict=True):
        traced = np.asarray(tr[ref.tensor])
        assert traced.shape == ref.shape and np.asarray(grad).shape == ref.shape
        for flat, v in enumerate(ref.ids.reshape(-1)):
            index = tuple(int(i) for i in np.unravel_index(flat, ref.shape)) if ref.shape else ()
            where = f"{ref.name}{list(index)}"
            products = np.array(graph.paths_from(int(v), end))
            kit_products = [math.prod(w) for _, w in kit.paths(kit.vertex(ref.tensor._node, flat))]
            assert len(kit_products) == len(products), f"{where}: the kit finds {len(kit_products)} paths"
            np.testing.assert_allclose(sorted(kit_products), sorted(products), rtol=RTOL, atol=1e-300, err_msg=where)
            total = products.sum() if products.size else 0.0
            scale = np.abs(products).sum() if products.size else 0.0
            np.testing.assert_allclose(grad[index], total, rtol=RTOL, atol=RTOL * scale, err_msg=f"grad {where}")

            value = float(traced[index])
            if not products.size:
                assert value == 0.0, f"{where} has no path to the loss, yet its trace is {value}"
                with pytest.raises(ValueError):
                    tr.path(ref.tensor, index)
                continue
            best = np.abs(products).max()
            tied = products[np.abs(products) >= best * (1 - RTOL)]  # the best, up to rounding and ties
            assert np.isclose(abs(value), best, rtol=RTOL, atol=0), f"trace {where}: {value}, best |path| {best}"
            assert np.isclose(value, tied, rtol=RTOL, atol=0).any(), f"trace {where}: {value}, best paths {tied}"
            check_path(graph, tr.path(ref.tensor, index), int(v), end, value, where)


def check_path(graph: Graph, path, start: int, end: int, value: float, where: str) -> None:
    assert len(path.weights) == len(path.steps) - 1, where
    vertices = [graph.vertex(step) for step in path.steps]
    assert vertices[0] == start, f"path of {where} starts at {path.steps[0]}"
    assert vertices[-1] == end, f"path of {where} ends at {path.steps[-1]}, not at the loss"
    product = 1.0
    for k, (v, u) in enumerate(zip(vertices, vertices[1:], strict=False)):
        parallel = [w for succ, w in graph.out_edges[v] if succ == u]
        assert parallel, f"path of {where}: no edge {path.steps[k]} -> {path.steps[k + 1]} in the reference"
        strongest = max(abs(w) for w in parallel)
        best_edges = [w for w in parallel if abs(w) >= strongest * (1 - RTOL)]
        assert np.isclose(path.weights[k], best_edges, rtol=RTOL, atol=0).any(), (
            f"path of {where}: edge {path.steps[k]} -> {path.steps[k + 1]} has weight {path.weights[k]}, "
            f"the reference's strongest parallel edge(s): {best_edges}"
        )
        product *= path.weights[k]
    assert np.isclose(path.value, product, rtol=RTOL, atol=0), where
    assert np.isclose(path.value, value, rtol=RTOL, atol=0), f"path of {where}: value {path.value}, trace {value}"


# -- random graphs ------------------------------------------------------------------------------

SHAPES = [(2,), (3,), (2, 2), (2, 3), (3, 2), (1, 3), (2, 1)]
OPS = ["add", "sub", "mul", "div", "square", "tanh", "exp", "sigmoid", "matmul", "sum", "gather", "concat"]
GRID = st.sampled_from([k / 4 for k in range(-6, 7)])  # coarse grid: zeros and exact ties happen


def draw_values(data, shape, grid: bool, rng):
    if grid:
        return data.draw(hnp.arrays(np.float64, shape, elements=GRID))
    return rng.uniform(-1.5, 1.5, shape)


def build_random_graph(data):
    grid = data.draw(st.booleans(), label="grid values")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    g = Graph()
    pool = [g.leaf(draw_values(data, data.draw(st.sampled_from(SHAPES)), grid, rng))
            for _ in range(data.draw(st.integers(1, 3), label="inputs"))]  # fmt: skip

    def pick(candidates):
        return candidates[data.draw(st.integers(0, len(candidates) - 1))]

    for _ in range(data.draw(st.integers(2, 6), label="ops")):
        kind = data.draw(st.sampled_from(OPS))
        a = pick(pool)
        out = None
        if kind in ("add", "sub", "mul", "div"):
            partners = [b for b in pool if _broadcasts(a.shape, b.shape)]
            if kind == "div":
                partners = [b for b in partners if b.val.size and np.abs(b.val).min() >= 0.25]
            if partners:
                out = g.binary(kind, a, pick(partners))
        elif kind == "square":  # one tensor used twice: parallel edges
            out = g.binary("mul", a, a)
        elif kind == "exp" and np.abs(a.val).max(initial=0) <= 3:
            out = g.unary("exp", a)
        elif kind == "sigmoid":
            out = g.unary("sigmoid", a)
        elif kind == "matmul" and a.val.ndim in (1, 2):
            n = a.shape[-1]
            partners = [b for b in pool if b.val.ndim in (1, 2) and b.shape[0] == n]
            if partners and data.draw(st.booleans()):
                out = g.matmul(a, pick(partners))
            elif len(g.inputs) < 4:  # a fresh weight input, on either side of a
                p = data.draw(st.sampled_from([(), (1,), (2,), (3,)]))
                if data.draw(st.booleans(), label="a on the left"):
                    out = g.matmul(a, g.leaf(draw_values(data, (n,) + p, grid, rng)))
                else:
                    out = g.matmul(g.leaf(draw_values(data, p + (a.shape[0],), grid, rng)), a)
        elif kind == "sum" and a.val.ndim >= 1:
            axis = data.draw(st.integers(-a.val.ndim, a.val.ndim - 1))
            out = g.reduce(data.draw(st.sampled_from(["sum", "mean"])), a, axis, data.draw(st.booleans()))
        elif kind == "gather" and a.val.ndim >= 1:
            axis = data.draw(st.integers(0, a.val.ndim - 1))
            n = a.shape[axis]
            idx = np.array(data.draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=4)))
            out = g.gather(a, axis, idx)
        elif kind == "concat" and a.val.ndim >= 1:
            axis = data.draw(st.integers(0, a.val.ndim - 1))
            partners = [
                b
                for b in pool
                if b.val.ndim == a.val.ndim
                and all(m == n for d, (m, n) in enumerate(zip(a.shape, b.shape, strict=True)) if d != axis)
            ]
            b = pick(partners)  # a itself is always a partner
            if a.val.size + b.val.size <= 12:
                out = g.concat([a, b], axis)
        if out is None:
            out = g.unary("tanh", a)
        pool.append(out)

    # the loss: every tensor nothing consumed (a sink), reduced to a scalar, added up
    sinks = [r for r in pool if r.name not in g.used]
    parts = [g.reduce(data.draw(st.sampled_from(["sum", "mean"])), s, None, False) for s in sinks]
    loss = parts[0]
    for part in parts[1:]:
        loss = g.binary("add", loss, part)
    return g, pool, loss


def _broadcasts(a, b) -> bool:
    try:
        np.broadcast_shapes(a, b)
    except ValueError:
        return False
    return True


@settings(max_examples=4 * EXAMPLES)
@given(data=st.data())
def test_random_graphs_match_brute_force(data):
    g, pool, loss = build_random_graph(data)
    targets = list(g.inputs)
    inner = [r for r in pool if r.op != "leaf"]
    if inner and data.draw(st.booleans(), label="trace an intermediate too"):
        targets.append(inner[data.draw(st.integers(0, len(inner) - 1))])
    check_graph(g, loss, targets)


# -- fixed graphs with hand-derived answers -----------------------------------------------------


def signed_max_abs(values, axis):
    """The element of largest ``|value|`` along ``axis``, with its sign."""
    values = np.asarray(values)
    best = np.abs(values).argmax(axis=axis)
    return np.take_along_axis(values, np.expand_dims(best, axis), axis=axis).squeeze(axis), best


def test_matmul_rule():
    """``Y = X @ W.T``-style rule from the issue: ``tr[X][b, j] = max_i |W[j, i] g[b, i]|`` (signed)."""
    rng = np.random.default_rng(1)
    Xv, Wv, Cv = rng.standard_normal((3, 4)), rng.standard_normal((4, 5)), rng.standard_normal((3, 5))
    X = sr.tensor(Xv, requires_grad=True, name="X")
    W = sr.tensor(Wv, requires_grad=True, name="W")
    Y = X @ W
    Y.name = "Y"
    loss = (Y * sr.tensor(Cv)).sum()  # so g = tr[Y] = C
    tr = sr.trace(loss, [X, W, Y])
    np.testing.assert_allclose(tr[Y], Cv, rtol=1e-12)
    # X[b, j] -> Y[b, i] has weight W[j, i]; W[j, i] -> Y[b, i] has weight X[b, j]
    expect_x, arg_i = signed_max_abs(Wv[None, :, :] * Cv[:, None, :], axis=2)  # (b, j, i)
    expect_w, _ = signed_max_abs(Xv[:, :, None] * Cv[:, None, :], axis=0)  # (b, j, i)
    np.testing.assert_allclose(tr[X], expect_x, rtol=1e-12)
    np.testing.assert_allclose(tr[W], expect_w, rtol=1e-12)
    gX, gW = sr.grad(loss, [X, W])
    np.testing.assert_allclose(gX, Cv @ Wv.T, rtol=1e-12)
    np.testing.assert_allclose(gW, Xv.T @ Cv, rtol=1e-12)
    b, j = 2, 1
    path = tr.path(X, (b, j))
    i = int(arg_i[b, j])
    assert [s.op for s in path.steps] == ["leaf", "matmul", "mul", "sum"]
    assert path.steps[0].index == (b, j) and path.steps[1].index == (b, i) and path.steps[1].name == "Y"
    np.testing.assert_allclose(path.weights, [Wv[j, i], Cv[b, i], 1.0], rtol=1e-12)
    np.testing.assert_allclose(path.value, expect_x[b, j], rtol=1e-12)


def test_square_has_two_parallel_edges():
    """``x * x``: two edges of weight ``x`` each; the gradient adds them, the trace keeps one."""
    xv = np.array([2.0, -0.5, 1.5])
    x = sr.tensor(xv, requires_grad=True, name="x")
    loss = (x * x).sum()
    np.testing.assert_allclose(sr.grad(loss, [x])[0], 2 * xv)
    tr = sr.trace(loss, [x])
    np.testing.assert_allclose(tr[x], xv)
    path = tr.path(x, 1)
    assert [s.op for s in path.steps] == ["leaf", "mul", "sum"]
    assert path.steps[1].index == (1,)
    np.testing.assert_allclose(path.weights, [-0.5, 1.0])


def test_diamond():
    """``y = tanh(x)`` feeds ``2 y`` and ``exp(y)``: the best branch is the larger of 2 and ``e^y``."""
    xv = np.array([-1.0, 0.2, 1.5])
    x = sr.tensor(xv, requires_grad=True, name="x")
    y = x.tanh()
    loss = (y * 2.0 + y.exp()).sum()
    t = np.tanh(xv)
    dt = 1 - t**2
    np.testing.assert_allclose(sr.grad(loss, [x])[0], dt * (2 + np.exp(t)), rtol=1e-12)
    tr = sr.trace(loss, [x])
    np.testing.assert_allclose(tr[x], dt * np.maximum(2.0, np.exp(t)), rtol=1e-12)
    assert np.exp(t[2]) > 2 > np.exp(t[1])
    assert [s.op for s in tr.path(x, 1).steps] == ["leaf", "tanh", "mul", "add", "sum"]
    assert [s.op for s in tr.path(x, 2).steps] == ["leaf", "tanh", "exp", "add", "sum"]
    np.testing.assert_allclose(tr.path(x, 2).weights, [dt[2], np.exp(t[2]), 1.0, 1.0], rtol=1e-12)


def test_opposite_branches_cancel_in_the_gradient_not_in_the_trace():
    xv = np.array([0.7, -1.2])
    x = sr.tensor(xv, requires_grad=True, name="x")
    loss = (x * 3.0 - x * 2.0).sum()
    np.testing.assert_allclose(sr.grad(loss, [x])[0], [1.0, 1.0])
    tr = sr.trace(loss, [x])
    np.testing.assert_allclose(tr[x], [3.0, 3.0])
    np.testing.assert_allclose(tr.path(x, 0).weights, [3.0, 1.0, 1.0])


def test_repeated_gather_and_unreached_element():
    """``x[[0, 0, 1]] * c``: x[0] has two edges (to outputs 0 and 1), x[2] none."""
    c = np.array([-2.0, 0.5, 3.0])
    x = sr.tensor([1.0, 1.0, 1.0], requires_grad=True, name="x")
    loss = (x[[0, 0, 1]] * c).sum()
    np.testing.assert_allclose(sr.grad(loss, [x])[0], [c[0] + c[1], c[2], 0.0])
    tr = sr.trace(loss, [x])
    np.testing.assert_allclose(tr[x], [-2.0, 3.0, 0.0])
    path = tr.path(x, 0)
    assert path.steps[1].op == "getitem" and path.steps[1].index == (0,)
    np.testing.assert_allclose(path.weights, [1.0, -2.0, 1.0])
    with pytest.raises(ValueError):
        tr.path(x, 2)


def test_broadcast_edges():
    """``x (3,) * C (2, 3)``: x[j] has one edge per row b, weight C[b, j]."""
    Cv = np.array([[1.0, -4.0, 0.5], [-3.0, 2.0, 0.25]])
    x = sr.tensor([1.0, 1.0, 1.0], requires_grad=True, name="x")
    loss = (x * Cv).sum()
    np.testing.assert_allclose(sr.grad(loss, [x])[0], Cv.sum(axis=0))
    tr = sr.trace(loss, [x])
    np.testing.assert_allclose(tr[x], [-3.0, -4.0, 0.5])
    assert tr.path(x, 0).steps[1].index == (1, 0)


def test_reference_is_not_vacuous():
    """The brute-force checker rejects a trace that is off: feed it a reference whose edge is wrong."""
    g = Graph()
    x = g.leaf(np.array([0.5, -1.5]))
    y = g.binary("mul", x, x)
    loss = g.reduce("sum", y, None, False)
    g.out_edges[int(x.ids[1])][0] = (int(y.ids[1]), 7.0)  # corrupt one parallel edge
    with pytest.raises(AssertionError):
        check_graph(g, loss, [x])


def test_parallel_edges_of_different_weight():
    """``Y = X @ X``: ``X[0, 1] -> Y[0, 1]`` is two edges, of weights ``X[1, 1]`` (X as the left operand)
    and ``X[0, 0]`` (as the right one); the path must report the stronger."""
    Xv = np.array([[-4.0, 2.0], [3.0, 0.5]])
    X = sr.tensor(Xv, requires_grad=True, name="X")
    loss = (X @ X)[0, 1]
    np.testing.assert_allclose(sr.grad(loss, [X])[0][0, 1], Xv[0, 0] + Xv[1, 1])
    tr = sr.trace(loss, [X])
    assert tr[X][0, 1] == -4.0
    path = tr.path(X, (0, 1))
    assert [s.op for s in path.steps] == ["leaf", "matmul", "getitem"]
    assert path.weights == [-4.0, 1.0] and path.value == -4.0


def test_ties_go_to_the_successor_created_first():
    """The documented rule (semirad/semirings/max_abs.py): on equal ``|value|`` the best path goes to
    the vertex created first: the earlier op, then the lower flat index."""
    x = sr.tensor([1.5], requires_grad=True, name="x")
    first, second = x * -2.0, x * 2.0  # same |weight|, opposite signs
    tr = sr.trace((second + first).sum(), [x])
    assert tr[x][0] == -2.0
    assert tr.path(x, 0).steps[1].op == "mul" and tr.path(x, 0).weights[0] == -2.0
    y = x * np.array([3.0, -3.0])  # one op, two successors of equal |weight|
    tr = sr.trace(y.sum(), [x])
    assert tr[x][0] == 3.0 and tr.path(x, 0).steps[1].index == (0,)
    y = x * np.array([-3.0, 3.0])
    tr = sr.trace(y.sum(), [x])
    assert tr[x][0] == -3.0 and tr.path(x, 0).steps[1].index == (0,)


def test_zero_valued_path_is_not_a_dead_end():
    x = sr.tensor([1.0, 1.0], requires_grad=True, name="x")
    y = x * 2.0  # y[1] reaches nothing
    z = x * 0.0  # x[1] -> z[1] -> sum -> add: a real path, of product 0
    loss = y[0] + z.sum()
    tr = sr.trace(loss, [x])
    np.testing.assert_allclose(tr[x], [2.0, 0.0])
    path = tr.path(x, 1)
    assert [s.op for s in path.steps] == ["leaf", "mul", "sum", "add"]
    assert path.weights == [0.0, 1.0, 1.0]
