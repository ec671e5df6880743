"""Forward mode in every semiring: ``jvp`` and ``jacobian`` (docs/forward.md).

No op has a forward rule of its own. An op's tangent rule is its backward rule *transposed*:
:func:`program` runs ``op.backward`` once with :class:`Recorder`, a semiring whose values are
symbolic linear expressions of the cotangent ``G`` (every primitive call becomes a node: scale,
⊕-sum, contraction, ⊕-scatter, index map, ⊕), and :func:`push_forward` applies the transpose of
that linear program to the inputs' tangents with the real semiring's primitives:

=============================  ====================================================
backward primitive             its transpose (forward)
=============================  ====================================================
``scale(g, w)``                ``scale(t, w)``, then ⊕ over the axes ``w`` broadcast
``sum(g, axes)``               broadcast ``t`` back over ``axes`` (an index map)
``matmul(g, W)``               ``matmul(t, Wᵀ)``, then ⊕ over broadcast batch axes
``scatter(g, index, shape)``   gather ``t[index]``
``map(g, fn)`` (a gather)      the gather's transpose: a permutation back, a ⊕-sum over
                               broadcast axes, or a ⊕-scatter (``fn`` is probed on an
                               array of flat indices to read which element goes where)
``Slice(index, g)``            gather ``t[index]``
``add(a, b)``                  the same ``t`` to both
=============================  ====================================================

The edge weights are the very arrays the backward rule hands to the primitives, so one definition
of each op serves both directions. :class:`Batched` adds a leading axis of seeds to any semiring
(a Jacobian in one sweep, either direction).

The forward sweep runs *during* the forward computation: :func:`jvp` installs a per-thread hook
on the recording of ops; when the next op is recorded, the previous one has its value, and its
tangent is computed from its parents' tangents, after which the node drops its saved arrays and
its links to its parents. Nothing of the tape outlives the layer it belongs to.
"""

from __future__ import annotations

import bisect
import itertools
import math
import threading
from typing import Any

import numpy as np

from . import backend, engine
from .axes import canonical_axes
from .engine import Slice
from .ops import core as _core
from .ops.core import unbroadcast
from .paths import Path, _flat_index, _step, edge_weight, parallel_edges
from .semirings.base import Semiring
from .semirings.sum_product import SumProduct
from .tensor import Tensor

__all__ = ["jvp", "jacobian", "Batched", "Recorder", "program", "push_forward", "ForwardResult"]


# -- the transposer: a backward rule, recorded as a linear program of G ----------------------------
_sym_order = itertools.count()


class Sym:
    """A node of a recorded backward rule: ``kind`` applied to ``args`` (symbolic values and
    parameters), of element ``shape``."""

    __slots__ = ("kind", "args", "shape", "seq")

    def __init__(self, kind: str, args: tuple, shape: tuple):
        self.kind, self.args, self.shape = kind, args, tuple(shape)
        self.seq = next(_sym_order)

    def __repr__(self) -> str:
        return f"Sym({self.kind}, {self.shape})"


def _probe(fn, shape: tuple):
    """The gather an index map ``fn`` performs: ``fn`` of the flat positions of ``shape``."""
    return np.asarray(fn(np.arange(math.prod(shape), dtype=np.int64).reshape(shape)))


class Recorder(Semiring):
    """A semiring whose values are :class:`Sym` expressions of the cotangent ``G``: running an op's
    backward with it records the linear program the rule applies (nothing is computed)."""

    name = "recorder"

    def shape(self, g):
        return g.shape

    def add(self, a, b):
        return Sym("add", (a, b), a.shape)

    def scale(self, g, weights):
        shape = np.broadcast_shapes(g.shape, np.shape(weights))
        return Sym("scale", (g, weights), shape)

    def scale_temporary(self, g, weights):
        return self.scale(g, weights)

    def sum(self, g, axes, keepdims=False):
        axes = canonical_axes(axes, len(g.shape))
        shape = tuple(1 if d in axes else n for d, n in enumerate(g.shape) if keepdims or d not in axes)
        return Sym("sum", (g, axes, keepdims), shape)

    def matmul(self, g, weights):
        w = np.shape(weights)
        if len(w) < 2 or len(g.shape) < 2:
            raise NotImplementedError("forward mode: a contraction with a 1-D operand in a backward rule")
        shape = np.broadcast_shapes(g.shape[:-2], w[:-2]) + (g.shape[-2], w[-1])
        return Sym("matmul", (g, weights), shape)

    def scatter(self, g, index, shape, unique):
        return Sym("scatter", (g, index), shape)

    def scatter_unique(self, g, index, shape, lead=0):
        return self.scatter(g, index, shape, True)

    def map(self, g, fn):
        idx = _probe(fn, g.shape)
        return Sym("map", (g, idx), idx.shape)

    def zeros(self, xp, shape, dtype):
        raise NotImplementedError("forward mode: a backward rule that builds a zero value itself")


RECORDER = Recorder()


def program(op, ctx, needs: tuple) -> tuple:
    """``(G, contributions)``: the op's backward rule recorded on the symbolic cotangent ``G``
    (one :class:`Sym` or ``None`` per input; a :class:`~semirad.engine.Slice` becomes a scatter)."""
    g = Sym("g", (), ctx.shape)
    out = []
    for c, shape in zip(op.backward(ctx, g, RECORDER, needs), ctx.shapes):
        if type(c) is Slice:
            c = Sym("scatter", (c.value, c.index), shape)
        out.append(c)
    return g, tuple(out)


def push_forward(g: Sym, roots: list, S) -> Any:
    """The transpose of a recorded program, in semiring ``S``: ``roots`` pairs each input's
    expression with that input's tangent; returns the ⊕ of what reaches ``G`` (None: nothing)."""
    cot: dict = {}
    syms: dict = {}
    stack = []
    for sym, value in roots:
        _accumulate(S, cot, sym, value)
        stack.append(sym)
    while stack:  # every expression node reachable from the roots
        s = stack.pop()
        if s.seq in syms:
            continue
        syms[s.seq] = s
        stack.extend(a for a in s.args if type(a) is Sym)
    for seq in sorted(syms, reverse=True):  # later nodes first: a node's cotangent is complete
        s = syms[seq]
        u = cot.pop(seq, None)
        if u is None or s.kind == "g":
            if s.kind == "g":
                cot[seq] = u
            continue
        kind, args = s.kind, s.args
        x = args[0]
        if kind == "add":
            _accumulate(S, cot, args[0], u)
            _accumulate(S, cot, args[1], u)
            continue
        if kind == "scale":
            v = unbroadcast(S, S.scale(u, args[1]), x.shape)
        elif kind == "sum":
            axes, shape = args[1], x.shape
            kept = tuple(1 if d in axes else n for d, n in enumerate(shape))
            v = S.map(u, lambda a, kept=kept, shape=shape: np.broadcast_to(a.reshape(kept), shape))
        elif kind == "matmul":
            v = unbroadcast(S, S.matmul(u, np.swapaxes(args[1], -1, -2)), x.shape)
        elif kind == "scatter":
            index = args[1]
            v = S.map(u, lambda a, index=index: a[index])
            v = unbroadcast(S, v, x.shape)
        elif kind == "map":
            v = _ungather(S, u, args[1], x.shape)
        else:  # pragma: no cover - every kind is above
            raise AssertionError(kind)
        _accumulate(S, cot, x, v)
    return cot.get(g.seq)


def _accumulate(S, cot: dict, sym: Sym, value) -> None:
    prev = cot.get(sym.seq)
    cot[sym.seq] = value if prev is None else S.add(prev, value)


def _ungather(S, u, idx, shape: tuple):
    """Transpose of the gather ``out = x.flat[idx]`` (``x`` of ``shape``) applied to ``u``."""
    spread = tuple(d for d in range(idx.ndim) if idx.strides[d] == 0 and idx.shape[d] > 1)
    if spread:  # a broadcast: one element read along these axes, whose transpose is a ⊕-sum
        u = S.sum(u, spread, keepdims=True)
        idx = idx[tuple(slice(0, 1) if d in spread else slice(None) for d in range(idx.ndim))]
    if not shape:  # every output element reads the one element of a 0-d x
        return S.sum(u, tuple(range(idx.ndim))) if idx.ndim else u
    flat = np.ascontiguousarray(idx).reshape(-1)
    n = math.prod(shape)
    if flat.size == n:
        if np.array_equal(flat, np.arange(n)):
            return S.map(u, lambda a: a.reshape(shape))
        inverse = np.argsort(flat, kind="stable")
        if np.array_equal(flat[inverse], np.arange(n)):  # a permutation: gather it back
            return S.map(u, lambda a: a.reshape(-1)[inverse].reshape(shape))
    unique = np.unique(flat).size == flat.size
    return S.scatter(u, np.unravel_index(idx, shape), shape, unique)


# -- a leading axis of seeds, for any semiring ---------------------------------------------------
class Batched(Semiring):
    """``inner`` with a leading axis of ``batch`` seeds on every value: a value of element shape
    ``s`` is an ``inner`` value of element shape ``(batch,) + s``. Rules see the shape ``s``; index
    maps are probed and applied as gathers on every row, so the rows never mix. One sweep with
    ``batch`` one-hot seeds gives ``batch`` rows of a Jacobian."""

    name = "batched"

    def __init__(self, inner: Semiring, batch: int):
        self.inner, self.batch = inner, int(batch)
        self.lead_axes = inner.lead_axes
        self.has_enter = inner.has_enter

    def zeros(self, xp, shape, dtype):
        return self.inner.zeros(xp, (self.batch,) + tuple(shape), dtype)

    def seed(self, array):
        return self.inner.seed(array)

    def shape(self, g):
        return tuple(self.inner.shape(g)[1:])

    def to_array(self, g, dtype):
        return self.inner.to_array(g, dtype)

    def add(self, a, b):
        return self.inner.add(a, b)

    def _lift(self, g, ndim: int):
        """``g`` with 1-axes inserted after the seed axis until its elements have ``ndim`` axes."""
        extra = ndim - len(self.shape(g))
        if extra <= 0:
            return g
        return self.inner.map(g, lambda a: a.reshape(a.shape[:1] + (1,) * extra + a.shape[1:]))

    def scale(self, g, weights):
        return self.inner.scale(self._lift(g, np.ndim(weights)), weights)

    def sum(self, g, axes, keepdims=False):
        axes = canonical_axes(axes, len(self.shape(g)))
        if not axes:
            return g
        return self.inner.sum(g, tuple(a + 1 for a in axes), keepdims)

    def matmul(self, g, weights):
        if np.ndim(weights) == 2:  # rows never mix: one (rows, n) @ (n, p) contraction for all seeds
            shape = self.shape(g)
            rows = self.inner.map(g, lambda a: a.reshape(-1, shape[-1]))
            out = self.inner.matmul(rows, weights)
            p = np.shape(weights)[-1]
            return self.inner.map(out, lambda a: a.reshape((self.batch,) + shape[:-1] + (p,)))
        return self.inner.matmul(self._lift(g, np.ndim(weights)), weights)

    def scatter(self, g, index, shape, unique):
        shape = tuple(shape)
        pos = backend.flat_positions(np, shape, index)
        g = self._lift(g, pos.ndim)
        b = self.batch
        flat = self.inner.map(g, lambda a: np.broadcast_to(a, (b,) + pos.shape).reshape(b, -1))
        n = math.prod(shape)
        out = self.inner.scatter(flat, (slice(None), pos.reshape(-1)), (b, n), unique)
        return self.inner.map(out, lambda a: a.reshape((b,) + shape))

    def scatter_unique(self, g, index, shape, lead=0):
        return self.scatter(g, index, shape, True)

    def add_at(self, buffer, index, g):
        return self.add(buffer, self.scatter(g, index, self.shape(buffer), True))

    def map(self, g, fn):
        idx = _probe(fn, self.shape(g))
        n = math.prod(self.shape(g))
        if idx.size == n and np.array_equal(idx.reshape(-1), np.arange(n)):
            return self.inner.map(g, lambda a: a.reshape(a.shape[:1] + idx.shape))
        return self.inner.map(g, lambda a: a.reshape(a.shape[0], -1)[:, idx])

    def for_sweep(self):
        return Batched(self.inner.for_sweep(), self.batch)

    def enter(self, g, node, base):
        # ids base*batch + flat over (batch,) + shape: unique, in creation order within every row
        return self.inner.enter(g, node, base * self.batch)

    def backpointers(self, kept):
        return self.inner.backpointers(kept)

    def __repr__(self) -> str:
        return f"Batched({self.inner!r}, {self.batch})"


# -- the forward sweep, run while the forward computation records --------------------------------
class _Tangent:
    """A node's tangent, in the node's ``grad`` slot while a forward sweep runs (a type no
    gradient has, so a user's ``.grad`` is never taken for one)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


class _LeafShim:
    """What ``enter`` sees for a primal leaf in the forward direction: a vertex whose value is
    re-seeded with its own element ids (a reverse sweep's leaf only keeps its backpointers)."""

    op = "forward-seed"

    def __init__(self, node):
        self.node, self.shape, self.dtype = node, node.shape, node.dtype

    def describe(self) -> str:
        return self.node.describe()


_local = threading.local()
_hook_lock = threading.Lock()
_hook_users = [0]


def _recording_hook(op, parents, xp, params, shapes):
    state = getattr(_local, "state", None)
    if state is not None and state.pending:
        state.flush()
    node = engine.record(op, parents, xp, params, shapes)
    if state is not None:
        state.pending.append(node)
    return node


def _install():
    with _hook_lock:
        if _hook_users[0] == 0:
            _core._record = _recording_hook
        _hook_users[0] += 1


def _uninstall():
    with _hook_lock:
        _hook_users[0] -= 1
        if _hook_users[0] == 0:
            _core._record = engine.record


class _ForwardSweep:
    def __init__(self, S, keep_graph: bool):
        self.S = S
        self.pending: list = []
        self.keep_graph = keep_graph
        self.next_base = 0
        self.order: list = []  # (keep_graph) every vertex entered, in order
        self.base: dict = {}
        self.kept: dict = {}
        self.enter = S.enter if getattr(S, "has_enter", True) else None

    def seed_leaf(self, node, value):
        value = self._enter(value, _LeafShim(node), node)
        node.grad = _Tangent(value)

    def _enter(self, value, shown, node):
        if self.enter is None:
            return value
        base = self.next_base
        self.next_base += math.prod(node.shape)
        value, keep = self.enter(value, shown, base)
        if self.keep_graph:
            self.order.append(node)
            self.base[node] = base
            if keep is not None and node.op is not None:
                self.kept[node] = keep
        return value

    def flush(self):
        pending, self.pending = self.pending, []
        for node in pending:
            self._process(node)

    def _process(self, node):
        if not hasattr(node, "shape"):  # its forward raised
            return
        parents = node.parents
        tangents = [p.grad.value if p is not None and type(p.grad) is _Tangent else None for p in parents]
        needs = tuple(t is not None for t in tangents)
        if True not in needs:
            return
        S = self.S
        try:
            g, contributions = program(node.op, node, needs)
        except NotImplementedError:
            value = _dense_fallback(node, tangents, needs, S)
        else:
            roots = [(c, t) for c, t in zip(contributions, tangents) if t is not None and c is not None]
            value = push_forward(g, roots, S) if roots else None
        if value is None:
            value = S.zeros(node.xp, node.shape, node.dtype)
        value = self._enter(value, node, node)
        node.grad = _Tangent(value)
        if not self.keep_graph:  # the tape of this layer ends here
            node.parents = (None,) * len(parents)
            node.saved = ()


def _dense_fallback(node, tangents, needs, S):
    """The tangent of an op whose backward rule the transposer cannot record (it builds a value with
    ``zeros``, or contracts with a 1-D operand...): its local Jacobian, read off the rule itself in
    SumProduct with one one-hot seed per output element (one batched call), is contracted with the
    inputs' tangents in ``S`` (DESIGN.md: an opaque op's edges are the entries of its local
    Jacobian; an exactly-0 entry is an edge of weight 0 there)."""
    n_out = max(math.prod(node.shape), 1)
    dense = Batched(SumProduct(), n_out)
    eye = np.eye(n_out, dtype=node.dtype if np.dtype(node.dtype).kind == "f" else np.float64)
    seeds = eye[:, : math.prod(node.shape)].reshape((n_out,) + tuple(node.shape))
    contributions = node.op.backward(node, seeds, dense, needs)
    value = None
    for c, t, shape in zip(contributions, tangents, node.shapes):
        if t is None or c is None:
            continue
        if type(c) is Slice:
            c = dense.scatter(c.value, c.index, shape, True)
        J = np.asarray(c).reshape(n_out, -1)  # J[o, i]
        row = S.map(t, lambda a: a.reshape(1, -1))
        part = S.map(S.matmul(row, J.T), lambda a: a.reshape(node.shape))
        value = part if value is None else S.add(value, part)
    return value


def _as_tuple(x):
    return (tuple(x), True) if isinstance(x, (tuple, list)) else ((x,), False)


def _run_forward(fn, primals: tuple, seeds: list, S, keep_graph: bool):
    """Run ``fn`` on leaves made of ``primals`` whose tangents are the semiring values ``seeds``;
    returns ``(outputs, is_tuple, output tangent values, sweep state)``."""
    if getattr(_local, "state", None) is not None:
        raise RuntimeError("jvp/jacobian inside the function of another jvp/jacobian is not supported")
    state = _ForwardSweep(S, keep_graph)
    leaves = []
    for p in primals:
        data = p.data if isinstance(p, Tensor) else p
        leaf = Tensor(data, requires_grad=True)
        leaves.append(leaf)
    state.leaves = [leaf._node for leaf in leaves]
    for leaf, seed in zip(leaves, seeds):
        state.seed_leaf(leaf._node, seed)
    _install()
    _local.state = state
    try:
        with _enabled():
            result = fn(*leaves)
        state.flush()
    finally:
        _local.state = None
        _uninstall()
    outputs, is_tuple = _as_tuple(result)
    values = []
    for out in outputs:
        if not isinstance(out, Tensor):
            raise TypeError(f"jvp: fn must return tensors (or a tuple of them), got {type(out).__name__}")
        node = out._node
        if node is not None and type(node.grad) is _Tangent:
            values.append(node.grad.value)
        else:  # does not depend on the primals
            values.append(S.zeros(backend.namespace(out.data), out.shape, out.dtype))
    return outputs, is_tuple, values, state


class _enabled:
    """Recording on (the forward sweep rides on it), whatever the caller's grad mode."""

    def __enter__(self):
        self.saved = engine._state.grad_enabled
        engine._state.grad_enabled = True  # (the count of open no_grad blocks only routes reads here)
        return self

    def __exit__(self, *exc):
        engine._state.grad_enabled = self.saved
        return False


class ForwardResult(tuple):
    """What :func:`jvp` returns: the pair ``(outputs, tangent_outputs)`` (unpack it), plus, for the
    path semirings, :meth:`path` (the best path from a seeded input element to an output element)."""

    def __new__(cls, outputs, tangents, semiring=None, state=None, output_tensors=()):
        self = super().__new__(cls, (outputs, tangents))
        self.semiring, self._state, self._outputs = semiring, state, tuple(output_tensors)
        return self

    def raw(self, output: int = 0):
        """The semiring value of output ``output``'s tangent."""
        return self._state.values[output]

    def path(self, output, index, rank: int = 0):
        """The best path (a :class:`semirad.paths.Path`, input first) from a seeded input element to
        element ``index`` of output ``output`` (its position in fn's outputs, or the tensor)."""
        if isinstance(output, Tensor):
            output = next(i for i, t in enumerate(self._outputs) if t is output)
        return _forward_path(self, output, index, rank)


def _lift_tangent(S, primal_shape, tangent):
    if isinstance(tangent, Tensor):
        tangent = tangent.data
    arr = np.asarray(tangent)
    if arr.shape != tuple(primal_shape):
        raise ValueError(f"jvp: tangent of shape {arr.shape} for a primal of shape {tuple(primal_shape)}")
    return lift_seed(S, np.array(arr, dtype=np.float64 if arr.dtype.kind != "f" else arr.dtype))


def lift_seed(S, arr):
    """A real seed array as a semiring value: ``S.seed`` of its non-zero entries, the semiring's
    zero (no path) where it is 0 (``S.seed`` alone would make a 0 a path of value 0 in MaxAbsProduct)."""
    if isinstance(S, Batched):  # arr has the seed axis already
        S = S.inner
    if arr.ndim == 0:
        return S.seed(arr) if arr != 0 else S.zeros(np, (), arr.dtype)
    where = np.nonzero(arr)
    return S.scatter(S.seed(arr[where]), where, arr.shape, True)


def jvp(fn, primals, tangents, semiring: Semiring | None = None, keep_graph: bool | None = None):
    """Forward mode: ``(outputs, tangent_outputs)`` of ``fn`` at ``primals`` pushed along ``tangents``.

    ``fn`` takes tensors and returns a tensor or a tuple of them; ``primals`` and ``tangents`` are
    one array (or tensor) each or tuples of them, of the same shapes. In SumProduct (the default) the
    tangent outputs are the Jacobian-vector products; in another semiring a tangent is a seed lifted
    with ``semiring.seed`` (``1`` on the chosen input elements) and the tangent outputs hold, for
    every output element, the ⊕ over paths from the seeded input elements of the ⊗ of edge weights
    and seeds. Tangents are computed as the ops run; no tape is kept, except that a path semiring
    (one with backpointers) keeps the graph so that :meth:`ForwardResult.path` can report edge
    weights (``keep_graph=False`` drops it).

    >>> import numpy as np, semirad as sr
    >>> out, tangent = sr.jvp(lambda x: (x * x).sum(), np.array([1.0, 2.0]), np.array([1.0, 0.0]))
    >>> float(out.item()), float(tangent)
    (5.0, 2.0)
    """
    S = SumProduct() if semiring is None else semiring
    primals, many = _as_tuple(primals)
    tangents, many_t = _as_tuple(tangents)
    if len(tangents) != len(primals):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    if keep_graph is None:
        keep_graph = hasattr(S, "backpointers")
    run = S.for_sweep()
    shapes = [np.shape(p.data if isinstance(p, Tensor) else p) for p in primals]
    reals = [np.asarray(t.data if isinstance(t, Tensor) else t) for t in tangents]
    seeds = [_lift_tangent(run, s, t) for s, t in zip(shapes, reals)]
    outputs, is_tuple, values, state = _run_forward(fn, primals, seeds, run, keep_graph)
    state.values, state.seeds = values, reals
    arrays = [_to_array(run, v, o.dtype) for v, o in zip(values, outputs)]
    detached = tuple(o.detach() for o in outputs)
    if is_tuple:
        return ForwardResult(detached, tuple(arrays), run, state, outputs)
    return ForwardResult(detached[0], arrays[0], run, state, outputs)


def _to_array(S, value, dtype):
    out = S.to_array(value, dtype)
    if isinstance(out, np.ndarray) and not out.flags.writeable:
        out = out.copy()
    return out


# -- Jacobians --------------------------------------------------------------------------------------
def jacobian(fn, inputs, semiring: Semiring | None = None, mode: str = "auto"):
    """The full matrix of semiring values between every input element and every output element.

    Shaped as ``torch.autograd.functional.jacobian``: ``out.shape + in.shape`` for one output and one
    input (tuples of them for several; a semiring with lead axes, such as ``KBest(k)``, puts them
    first: ``(k,) + out.shape + in.shape``). SumProduct gives the Jacobian, MaxAbsProduct the signed
    best-path products, Boolean the dependency structure. The seeds ride on an extra axis
    (:class:`Batched`): one sweep, ``mode="forward"`` with one seed per input element or
    ``"reverse"`` with one per output element; ``"auto"`` picks the one with fewer seeds (forward on a
    tie), after one evaluation of ``fn`` under ``no_grad`` to count the output elements.

    >>> import numpy as np, semirad as sr
    >>> sr.jacobian(lambda x: x * x, np.array([1.0, 3.0])).tolist()
    [[2.0, 0.0], [0.0, 6.0]]
    """
    if mode not in ("auto", "forward", "reverse"):
        raise ValueError(f"jacobian: mode must be 'auto', 'forward' or 'reverse', got {mode!r}")
    S = SumProduct() if semiring is None else semiring
    inputs, many_in = _as_tuple(inputs)
    arrays = [np.asarray(x.data if isinstance(x, Tensor) else x) for x in inputs]
    n_in = sum(a.size for a in arrays)
    if mode == "auto":
        with engine.no_grad():
            probe = fn(*[Tensor(a) for a in arrays])
        outs, _ = _as_tuple(probe)
        n_out = sum(o.data.size for o in outs)
        mode = "forward" if n_in <= n_out else "reverse"
    if mode == "forward":
        blocks, outputs, many_out = _jacobian_forward(fn, arrays, S, n_in)
    else:
        blocks, outputs, many_out = _jacobian_reverse(fn, arrays, S)
    rows = [tuple(row) if many_in else row[0] for row in blocks]
    return tuple(rows) if many_out else rows[0]


def _block(arr, lead_ndim: int, batch_shape: tuple):
    """``arr`` of shape ``lead + (B,) + rest`` as ``lead + rest + batch_shape``."""
    lead = arr.shape[:lead_ndim]
    rest = arr.shape[lead_ndim + 1 :]
    a = arr.reshape(lead + tuple(batch_shape) + rest)
    nb = len(batch_shape)
    order = list(range(lead_ndim)) + [lead_ndim + nb + i for i in range(len(rest))] + [lead_ndim + i for i in range(nb)]
    return a.transpose(order)


def _jacobian_forward(fn, arrays, S, n_in):
    B = max(n_in, 1)
    run = Batched(S, B).for_sweep()
    seeds, offset = [], 0
    for a in arrays:
        seed = np.zeros((B,) + a.shape, dtype=np.float64 if a.dtype.kind != "f" else a.dtype)
        seed.reshape(B, -1)[np.arange(offset, offset + a.size), np.arange(a.size)] = 1
        seeds.append(lift_seed(run, seed))
        offset += a.size
    outputs, many_out, values, _ = _run_forward(fn, arrays, seeds, run, keep_graph=False)
    blocks = []
    for out, value in zip(outputs, values):
        arr = np.asarray(_to_array(run, value, out.dtype))
        lead = arr.ndim - 1 - out.ndim
        row, offset = [], 0
        for a in arrays:
            part = arr[(slice(None),) * lead + (slice(offset, offset + a.size),)]
            row.append(_block(part, lead, a.shape))
            offset += a.size
        blocks.append(row)
    return blocks, outputs, many_out


def _jacobian_reverse(fn, arrays, S):
    leaves = [Tensor(a, requires_grad=True) for a in arrays]
    with _enabled():
        result = fn(*leaves)
    outputs, many_out = _as_tuple(result)
    blocks = []
    for out in outputs:
        B = max(out.data.size, 1)
        run = Batched(S, B)
        seed = np.eye(B, dtype=out.dtype if out.dtype.kind == "f" else np.float64)[:, : out.data.size]
        seed = seed.reshape((B,) + out.shape)
        graph = engine.ancestors(out._node) if out._node is not None else []
        members = set(graph)
        targets = [leaf._node for leaf in leaves if leaf._node in members]
        sweep = engine.sweep(out._node, targets, seed, run, graph=graph) if targets else None
        row = []
        for leaf, a in zip(leaves, arrays):
            if sweep is not None and leaf._node in sweep.values:
                value = sweep.values[leaf._node]
            else:
                value = run.zeros(np, a.shape, a.dtype)
            arr = np.asarray(_to_array(run, value, a.dtype))
            lead = arr.ndim - 1 - a.ndim
            arr = arr.reshape(arr.shape[:lead] + tuple(out.shape) + a.shape)
            row.append(arr)
        blocks.append(row)
    return blocks, outputs, many_out


# -- forward paths ------------------------------------------------------------------------------------
class ForwardPath(Path):
    """A :class:`~semirad.paths.Path` found by a forward sweep: the same steps (input element first,
    output element last), weights and seed (the tangent at the input element); ``value`` multiplies
    them in the forward sweep's order (seed first), so it equals the tangent output bit for bit."""

    @property
    def value(self) -> float:
        out = self.seed
        for w in self.weights:
            out *= w
        return out


def _forward_path(result: ForwardResult, output: int, index, rank: int) -> ForwardPath:
    state, S = result._state, result.semiring
    if not hasattr(S, "backpointers"):
        raise TypeError(f"{S!r} keeps no backpointers: paths need a path semiring (MaxAbsProduct, LogMaxAbs, KBest)")
    if not state.keep_graph:
        raise ValueError("this jvp dropped its graph (keep_graph=False): paths need the edge weights")
    out = result._outputs[output]
    node = out._node
    if node is None or node not in state.base:
        raise ValueError(f"output {output} does not depend on the primals")
    k = getattr(S, "k", None)
    ranks = k or 1
    if not 0 <= rank < ranks:
        raise IndexError(f"rank {rank} is out of range for {ranks} path{'s' if ranks > 1 else ''} per element")
    bases = [state.base[n] for n in state.order]
    flat = _flat_index(node.shape, index)
    steps, weights, seqs = [_step(node, flat)], [], [node.seq]
    while node.op is not None:
        kept = state.kept[node]
        if k is None:
            code = int(backend.to_numpy(S.backpointers(kept.reshape(-1)[flat])))
            target, next_rank, parallel = code, 0, None
        else:
            codes = backend.to_numpy(S.backpointers(kept.reshape(k, -1)[:, flat]))
            code = int(codes[rank])
            if code in (backend.NO_PATH, backend.END):
                target, next_rank, parallel = code, 0, None
            else:
                target, next_rank, parallel = code // k, code % k, int(np.count_nonzero(codes[:rank] == code))
        if target in (backend.NO_PATH, backend.END):
            which = f"path of rank {rank}" if rank else "path"
            where = f"element {steps[-1].index} of {node.describe()}"
            raise ValueError(f"{where} has no {which} from a seeded input element")
        at = bisect.bisect_right(bases, target) - 1
        source, source_flat = state.order[at], target - bases[at]
        if parallel is None:
            weights.append(edge_weight(source, source_flat, node, flat))
        else:
            weights.append(parallel_edges(source, source_flat, node, flat)[parallel])
        node, flat, rank = source, source_flat, next_rank
        steps.append(_step(node, flat))
        seqs.append(node.seq)
    seed = float(backend.to_numpy(state.seeds[state.leaves.index(node)].reshape(-1)[flat]))
    return ForwardPath(steps[::-1], weights[::-1], seqs[::-1], seed)
