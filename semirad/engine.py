"""The tape and the one reverse sweep.

A :class:`Node` is a vertex *tensor* of the recorded graph: the op that made it, the op's saved
context and its parent nodes (``None`` for a constant input). :func:`sweep` walks the graph from
an output back to the requested inputs and is generic twice over: it knows no op (it calls
``node.op.backward``) and no semiring (it calls the semiring's ``seed``/``enter``/``add``). What
it walks is a :class:`Plan` (which vertices, in which order, which parents get what), made for
each sweep, or kept on the root (:class:`Plans`) where the graph below it does not change.
"""

from __future__ import annotations

import bisect
import itertools
import math
import operator
import threading
from typing import Any

from . import backend

_creation_order = itertools.count()  # next() on a count is atomic: ids stay unique across threads


class _ThreadState(threading.local):
    """What recording depends on, per thread (as PyTorch keeps grad mode per thread): whether ops
    record, the grad modes that enclosing :class:`no_grad` blocks restore, and the open components
    (each as its full name, innermost last, so a node reads its name without a join). A new thread
    starts recording, outside any component."""

    grad_enabled = True

    def __init__(self):
        self.saved_modes: list = []
        self.components: list = []


_state = _ThreadState()


class _Anywhere:
    """How many ``no_grad`` blocks are open in all threads together: while it is 0 (the common
    case) the hot path reads this int instead of the thread-local state (a just-optimization: 70 ns
    a read of a ``threading.local``). Changed under a lock, read without."""

    no_grad = 0
    lock = threading.Lock()


#: one entry per component open in any thread: while it is empty, :func:`record` does not read the
#: thread-local stack. A list, because ``append`` and ``pop`` are atomic (under the GIL and in
#: free-threaded builds alike): a count without a lock (docs/design.md, "Per-op overhead")
_open_components: list = []


def _count(what: str, step: int) -> None:
    with _Anywhere.lock:
        setattr(_Anywhere, what, getattr(_Anywhere, what) + step)


def recording() -> bool:
    """Whether ops record in this thread (the hot path's form of :func:`grad_enabled`)."""
    return not _Anywhere.no_grad or _state.grad_enabled


class Context:
    """What an op's forward keeps for its backward: ``xp`` (the array namespace), ``params``,
    ``shapes`` (of the inputs) and ``saved``. An op run without recording gets a bare one."""

    __slots__ = ("xp", "params", "saved", "shapes")

    def __init__(self, xp, params, shapes=()):
        self.xp = xp
        self.params = params
        self.saved = ()
        self.shapes = shapes


class Node(Context):
    """One recorded tensor: ``op(*parents)``; a leaf has no op. Made by :func:`record` (an op's
    node, which is also the op's context: one object per op, the tape is the hot path) or
    :func:`leaf`. ``plans`` is unset, except on a root whose maker keeps its graph fixed and lets
    sweeps keep their structure there (:class:`Plans`).
    """

    __slots__ = ("op", "parents", "shape", "dtype", "seq", "name", "grad", "consumed", "component", "plans")

    @property
    def ctx(self):
        """The op's context (the node itself), None for a leaf."""
        return None if self.op is None else self

    @property
    def op_name(self) -> str:
        return "leaf" if self.op is None else self.op.name

    def describe(self) -> str:
        named = f" {self.name!r}" if self.name else ""
        return f"{self.op_name}{named} of shape {self.shape}"

    def __repr__(self) -> str:
        return f"Node({self.describe()})"


class no_grad:
    """Context manager (and decorator) under which ops record nothing, in the calling thread only.

    >>> import semirad as sr
    >>> w = sr.tensor([1.0], requires_grad=True)
    >>> with sr.no_grad():
    ...     y = w * 2
    >>> y.requires_grad
    False
    """

    def __enter__(self):
        state = _state
        state.saved_modes.append(state.grad_enabled)
        state.grad_enabled = False
        _count("no_grad", 1)
        return self

    def __exit__(self, *exc):
        state = _state
        state.grad_enabled = state.saved_modes.pop()
        _count("no_grad", -1)
        return False

    def __call__(self, fn):
        def wrapped(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)

        wrapped.__name__, wrapped.__doc__ = fn.__name__, fn.__doc__
        return wrapped


class component:
    """Context manager that tags every node recorded inside with a component name.

    Nested blocks give hierarchical names joined by ``/``; a node records the full name at its
    creation (``None`` outside any block). Blocks are per thread: another thread's ops are not tagged.

    >>> import semirad as sr
    >>> w = sr.tensor([1.0], requires_grad=True)
    >>> with sr.component("encoder"):
    ...     with sr.component("layer1"):
    ...         y = w * 2.0
    >>> y._node.component
    'encoder/layer1'
    """

    def __init__(self, name: str):
        if not name or "/" in name:
            raise ValueError(f"a component name must be non-empty and contain no '/', got {name!r}")
        self.name = name

    def __enter__(self):
        push_component(self.name)
        return self

    def __exit__(self, *exc):
        pop_component()
        return False


def push_component(name: str) -> None:
    """Open a component in this thread without a :class:`component` object (the nn modules' hot
    path); ``name`` may hold several levels joined by ``/``. :func:`pop_component` closes it.

    >>> push_component("encoder/layer1"); current_component()
    'encoder/layer1'
    >>> pop_component(); current_component() is None
    True
    """
    stack = _state.components
    stack.append(f"{stack[-1]}/{name}" if stack else name)
    _open_components.append(None)


def pop_component() -> None:
    """Close the innermost component opened in this thread."""
    _state.components.pop()
    _open_components.pop()


def record(op, parents: tuple, xp, params: dict, shapes: tuple) -> Node:
    """The node of an op about to run: its forward fills ``saved``, the caller sets ``shape`` and
    ``dtype``. The one constructor of nodes (without ``__init__``: a few hundred ns per op less)."""
    node = _new(Node)
    node.op = op
    node.parents = parents
    node.xp = xp
    node.params = params
    node.shapes = shapes
    node.saved = ()
    node.seq = next(_creation_order)
    node.name = node.grad = None
    node.consumed = False
    if _open_components:
        stack = _state.components
        node.component = stack[-1] if stack else None
    else:
        node.component = None
    return node


def leaf(shape: tuple, dtype, name: str | None = None) -> Node:
    """A leaf's node: no op, no parents.

    >>> leaf((2, 3), "float64", "w").describe()
    "leaf 'w' of shape (2, 3)"
    """
    node = record(None, (), None, None, ())
    node.shape = tuple(shape)
    node.dtype = dtype
    node.name = name
    return node


_new = object.__new__


def current_component():
    """The full name of the innermost open component in this thread (``None`` outside any)."""
    stack = _state.components
    return stack[-1] if stack else None


def grad_enabled() -> bool:
    """Whether ops record the tape now in this thread (False inside :class:`no_grad`)."""
    return _state.grad_enabled


class Sweep:
    """Everything one reverse sweep produced: values at the targets, what the semiring kept per
    node, the seed it started from, and the global element ids (``base[node] + flat index``) of
    every vertex it visited."""

    def __init__(
        self, semiring, root: Node, order: list, bases: list | None, kept: dict, values: dict, seed: Any = None
    ):
        self.semiring, self.root, self.order = semiring, root, order
        self.kept, self.values = kept, values
        self.seed = seed  # the real seed array at the root (None: ones)
        self._bases = bases  # (the base of every node of ``order``, in its order)
        self._base = None

    @property
    def base(self) -> dict:
        """``node -> global id of its first element`` (made on first use)."""
        if self._base is None:
            if self._bases is None:
                self._bases = _bases(self.order)
            self._base = dict(zip(self.order, self._bases))
        return self._base

    def locate(self, gid: int) -> tuple[Node, int]:
        """The ``(node, flat index)`` of a global element id."""
        if self._bases is None:
            self._bases = _bases(self.order)
        i = bisect.bisect_right(self._bases, gid) - 1
        node = self.order[i]
        return node, gid - self._bases[i]


def ancestors(root: Node) -> list:
    """Every node ``root`` depends on (itself included), in creation order: a topological order."""
    plans = getattr(root, "plans", None)
    if plans is not None:
        return list(plans.graph(root)[0])
    return _ancestors(root)


def graph_of(root: Node) -> tuple[list, dict]:
    """``(ancestors(root), {node: its position there})``, kept with ``root.plans`` where set
    (:class:`Plans`); neither is to be changed by the caller.

    >>> import semirad as sr
    >>> w = sr.tensor([1.0], requires_grad=True)
    >>> nodes, index = graph_of((w * 2.0)._node)
    >>> [n.op_name for n in nodes], index[w._node]
    (['leaf', 'mul'], 0)
    """
    plans = getattr(root, "plans", None)
    if plans is not None:
        return plans.graph(root)
    return _indexed(_ancestors(root))


def _indexed(nodes: list) -> tuple[list, dict]:
    return nodes, dict(zip(nodes, range(len(nodes))))


def _ancestors(root: Node) -> list:
    seen = {root}
    stack = [root]
    add, push, pop = seen.add, stack.append, stack.pop
    while stack:
        for parent in pop().parents:
            if parent is not None and parent not in seen:
                add(parent)
                push(parent)
    return sorted(seen, key=_seq)


_seq = operator.attrgetter("seq")


class Plans:
    """What sweeps from one root reuse while no node below it changes its parents or ``seq``: the
    ancestors and, per targets and per whether the semiring enters vertices, a :class:`Plan`.

    Whoever can promise that the graph stays fixed sets one as ``root.plans`` (the slot is unset on
    other nodes) and calls :meth:`clear` when it changes the graph: compile.py does, on the outputs
    of a replayed graph, whose replays refresh only what a plan does not read (``saved``,
    ``params``). It holds two references to every node below the root (the ancestors list and its
    index) and none otherwise (plans hold positions), see :meth:`holds`.

    >>> import semirad as sr
    >>> w = sr.tensor([1.0, 2.0], requires_grad=True)
    >>> y = (w * w).sum()
    >>> y._node.plans = Plans()
    >>> sr.grad(y, [w])[0].tolist(), len(y._node.plans.plans)   # a plan made and kept
    ([2.0, 4.0], 1)
    >>> sr.grad(y, [w])[0].tolist(), len(y._node.plans.plans)   # and reused
    ([2.0, 4.0], 1)
    """

    __slots__ = ("_graph", "plans")

    def __init__(self):
        self._graph = None  # (ancestors, {node: position in them}), one object: read atomically
        self.plans: dict = {}

    def graph(self, root: Node) -> tuple:
        """``(ancestors(root), {node: its position there})``, made on first use."""
        known = self._graph
        if known is None:
            known = self._graph = _indexed(_ancestors(root))
        return known

    def clear(self) -> None:
        """Forget everything: the graph below the root changed."""
        self._graph = None
        self.plans = {}

    def holds(self, node: Node) -> int:
        """How many references this object holds to ``node`` (a reference count minus this is
        what others hold: compile.py's test of whether a replay's nodes are still in use)."""
        known = self._graph
        return 2 if known is not None and node in known[1] else 0


class Plan:
    """The structure of one sweep, the same at every sweep of an unchanged graph.

    ``positions``: where the vertices on a path from a target to the root are among the ancestors
    (the sweep's ``order``, creation order). ``steps``: per vertex of ``order``, in reverse,
    ``(position in order, op, needs, destinations, wanted)``, with ``op`` None where the sweep only
    takes the vertex's value and ``destinations`` the positions in ``order`` of the parents that
    get a contribution (None for the others). ``bases``: the element bases (:class:`Sweep`), where
    the semiring enters vertices; where it does not, the vertices whose value is only taken (the
    leaves) are not steps but ``taken``, read after the loop. ``checked``: the semiring classes
    whose contributions' shapes a sweep of this plan has checked (a rule's shapes depend on nothing
    else). A plan holds no node.
    """

    __slots__ = ("positions", "steps", "taken", "bases", "checked")

    def __init__(self, graph: list, targets: list, with_bases: bool):
        wanted = set(targets)
        on_path: dict = {}  # node -> position in order (``None`` is never a key: a constant input)
        get = on_path.get
        positions, steps, taken = [], [], []
        add_position, add_step = positions.append, steps.append
        position = 0
        for i, node in enumerate(graph):
            parents = node.parents
            n = len(parents)  # (no, one and two parents unrolled: most nodes, and ``needs`` tuples reused)
            if n == 1:
                d = get(parents[0])
                needs = None if d is None else _ONE
                destinations = (d,)
            elif n == 2:
                d0, d1 = get(parents[0]), get(parents[1])
                if d0 is None:
                    needs = None if d1 is None else _RIGHT
                else:
                    needs = _LEFT if d1 is None else _BOTH
                destinations = (d0, d1)
            elif n:
                destinations = tuple(map(get, parents))
                needs = tuple([d is not None for d in destinations])
                needs = needs if True in needs else None
            else:
                needs = None
            if needs is None:  # no parent on a path: on one only as a target (its value is taken)
                if node not in wanted:
                    continue
                if with_bases:
                    add_step((position, None, (), (), True))
                else:
                    taken.append(position)
            else:
                add_step((position, node.op, needs, destinations, node in wanted))
            on_path[node] = position
            position += 1
            add_position(i)
        steps.reverse()
        self.positions, self.steps, self.taken, self.checked = positions, tuple(steps), tuple(taken), set()
        self.bases = _bases(list(on_path)) if with_bases else None

    def order(self, graph: list) -> list:
        """The nodes of the sweep (in creation order) among ``graph``, the ancestors it was made from."""
        return [graph[i] for i in self.positions]


_ONE, _LEFT, _RIGHT, _BOTH = (True,), (True, False), (False, True), (True, True)


def sweep(
    root: Node, targets: list, seed: Any, semiring, mark_consumed: bool = False, graph: list | None = None
) -> Sweep:
    """Run ``semiring``'s reverse sweep from ``root`` (seeded with the array ``seed``) to ``targets``.

    Only nodes on some path from a target to the root are visited. Each node's value is complete
    when the sweep reaches it (reverse creation order); it is popped, handed to the semiring's
    ``enter`` hook and to the op's backward, and dropped. ``graph`` may pass ``ancestors(root)``
    when the caller has it already. ``mark_consumed`` (``Tensor.backward``) claims the graph's op
    nodes for this one sweep: a second claim, from any thread, raises (the claim is undone if the
    sweep fails). Where ``root.plans`` is set (:class:`Plans`) the structure is reused.
    """
    enters = getattr(semiring, "has_enter", True)
    plans = getattr(root, "plans", None)
    if plans is None:
        if graph is None:
            graph = _ancestors(root)
        plan = Plan(graph, targets, enters)
    else:
        graph, index = plans.graph(root)
        key = (tuple(map(index.get, targets)), enters)
        plan = plans.plans.get(key)
        if plan is None:
            plan = plans.plans[key] = Plan(graph, targets, enters)
    with backend.device_scope(seed):  # (the rules' new arrays on the graph's GPU, not the current one)
        if not mark_consumed:
            return _sweep(root, plan, graph, seed, semiring)
        claimed = _claim(graph)
        try:
            return _sweep(root, plan, graph, seed, semiring)
        except BaseException:
            for node in claimed:
                node.consumed = False
            raise


_claims = threading.Lock()


def _claim(graph: list) -> list:
    """Mark the op nodes of ``graph`` used by a backward(), atomically; raise if one already is."""
    ops = [n for n in graph if n.op is not None]
    with _claims:
        used = [n for n in ops if n.consumed]
        if used:
            raise RuntimeError(
                f"backward() through a graph that an earlier backward() already used (at {used[-1].describe()}); "
                "pass retain_graph=True to the first backward() to call it again"
            )
        for node in ops:
            node.consumed = True
    return ops


def _sweep(root: Node, plan: Plan, graph: list, seed: Any, semiring) -> Sweep:
    semiring = semiring.for_sweep() if hasattr(semiring, "for_sweep") else semiring
    order = plan.order(graph)
    bases = plan.bases
    enter = None if bases is None else semiring.enter
    add, shape_of = semiring.add, semiring.shape
    check = type(semiring) not in plan.checked
    kept, values = {}, {}
    pending = [None] * len(order)  # the value of each node of ``order``, while it is accumulated
    if order and order[-1] is root:
        pending[-1] = semiring.seed(seed)
    buffers = False  # whether a Slice made a _Buffer (a pending value the sweep owns)
    for i, op, needs, destinations, wanted in plan.steps:
        g = pending[i]
        pending[i] = None
        if buffers and type(g) is _Buffer:
            g = g.value
        node = order[i]
        if wanted:
            values[node] = g
        if enter is not None:
            g, keep = enter(g, node, bases[i])
            if keep is not None:
                kept[node] = keep
        if op is None:
            continue
        contributions = op.backward(node, g, semiring, needs)
        del g
        for j, contribution in zip(destinations, contributions):
            if j is None:
                continue
            previous = pending[j]
            if type(contribution) is Slice:
                pending[j] = _add_slice(semiring, previous, contribution, order[j].shape)
                buffers = True
            elif check and shape_of(contribution) != order[j].shape:
                _wrong_shape(op, shape_of(contribution), order[j])
            elif previous is None:
                pending[j] = contribution
            else:
                pending[j] = add(previous.value if buffers and type(previous) is _Buffer else previous, contribution)
    for i in plan.taken:
        g = pending[i]
        values[order[i]] = g.value if type(g) is _Buffer else g
    if check:
        plan.checked.add(type(semiring))
    return Sweep(semiring, root, order, bases, kept, values, seed)


def _wrong_shape(op, shape: tuple, parent: Node):
    raise RuntimeError(f"backward rule of {op.name!r} returned shape {shape} for an input of shape {parent.shape}")


class Slice:
    """A backward rule's contribution to a part of its input only: ``value`` ⊕-adds into
    ``input[index]`` (``index`` picks each element at most once), the rest of the input gets "no path".

    The sweep ⊕-adds it into one buffer per input (:meth:`Semiring.add_at`) instead of building it
    full-size and adding that: the per-step slices ``xi[t]`` of a sequence's input projection cost
    their own size, not the sequence's. :func:`full_contribution` gives the full-size value.
    """

    __slots__ = ("index", "value")

    def __init__(self, index, value):
        self.index, self.value = index, value


class _Buffer:
    """A pending value the sweep made itself, which :meth:`Semiring.add_at` may write into."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


def _add_slice(semiring, previous, part: Slice, shape: tuple) -> _Buffer:
    if previous is None:
        return _Buffer(semiring.scatter(part.value, part.index, shape, True))
    if type(previous) is _Buffer:
        previous.value = semiring.add_at(previous.value, part.index, part.value)
        return previous
    own = semiring.map(previous, _copy)  # another rule's value (may be a view, or kept elsewhere)
    return _Buffer(semiring.add_at(own, part.index, part.value))


def _copy(a):
    return a.copy()


def full_contribution(semiring, contribution, shape: tuple):
    """A backward rule's contribution to an input of ``shape`` as a full-size value (a
    :class:`Slice` scattered, anything else as it is).

    >>> from semirad.semirings import SumProduct
    >>> import numpy as np
    >>> full_contribution(SumProduct(), Slice(slice(1, 2), np.array([5.0])), (3,)).tolist()
    [0.0, 5.0, 0.0]
    """
    if type(contribution) is Slice:
        return semiring.scatter(contribution.value, contribution.index, shape, True)
    return contribution


def _bases(order: list) -> list:
    """Global id of the first element of every node of ``order``: elements are numbered in creation order."""
    bases, next_id = [], 0
    prod = math.prod
    for node in order:
        bases.append(next_id)
        next_id += prod(node.shape)
    return bases
