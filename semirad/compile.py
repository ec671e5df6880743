"""Record once, replay many: ``sr.compile(fn, *example_inputs)`` (docs/compile.md).

Compiling runs ``fn`` once on the example inputs and keeps what :func:`~semirad.ops.core.apply` saw
as a *program*: one entry per op (the op, its parameters, and the slots its inputs come from: an
input of the call, a tensor captured from outside such as a parameter, a constant, or an earlier
op's output). Identical subexpressions (same op, same input slots, same parameters) are merged and
ops the outputs do not depend on are dropped (:meth:`Graph.stats`).

A call ``g(*inputs)`` runs each op's ``forward`` again on the stored structure: the tape's nodes are
made once per *instance* of the graph, and a call refreshes their saved state (``ctx.saved``) in
place, so a replay creates no Tensor and no Node per op. The output is a tensor of an ordinary
recorded graph: ``sr.grad``, ``sr.trace``, ``sr.backward(semiring=...)``, ``Tensor.backward``,
paths and the analyses work on it, with the same bits as on the eager graph.

A result of an earlier call stays valid: while the output tensor of a call (or anything that keeps
its node, such as a :class:`~semirad.paths.Trace`) is alive, the next call replays into another
instance (made on demand, then reused: a loop ``y = g(x); sr.grad(y, ...)`` alternates between two).
Calls from several threads take different instances.

What depends only on the graph's structure is kept with an instance: the reverse sweep's plan
(:class:`~semirad.engine.Plans` on the output nodes, cleared when a call binds other input
vertices), and the results of the ops that read only parameters and constants (run again when a
parameter holds another array). Keyword inputs follow ``jax.jit``: array keywords are inputs,
other keyword values static. Under forward mode (``sr.jvp``) or inside another ``compile``, a call
runs the program through the ops instead (docs/compile.md).

>>> import numpy as np
>>> import semirad as sr
>>> w = sr.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True, name="w")
>>> g = sr.compile(lambda x: (x @ w).tanh().sum(), np.zeros((1, 2)))
>>> y = g(np.array([[0.5, -0.5]]))
>>> [a.round(4).tolist() for a in sr.grad(y, [w])]
[[[0.21, 0.21], [-0.21, -0.21]]]
"""

from __future__ import annotations

import inspect
import operator
import sys
import threading
import weakref
from typing import Any, Callable

import numpy as np

from . import backend, engine
from .engine import Node
from .ops import core
from .readonly import protected
from .tensor import Tensor

__all__ = ["compile", "Graph", "CompileError"]

_new = object.__new__
_getrefcount = getattr(sys, "getrefcount", None)

# kinds of slots
_INPUT, _TENSOR, _CONST, _OP = 0, 1, 2, 3


class CompileError(RuntimeError):
    """``fn`` did something a replay cannot repeat (docs/compile.md, "What a graph cannot follow")."""


class _Entry:
    """One op of the program."""

    __slots__ = ("op", "ins", "params", "dynamic", "out", "ctx", "recorded", "alive")

    def __init__(self, op, ins: list, params: dict, dynamic: list, out: int, ctx, recorded: bool):
        self.op, self.ins, self.params, self.dynamic, self.out = op, ins, params, dynamic, out
        self.ctx, self.recorded, self.alive = ctx, recorded, True


class _Recorder:
    """Collects the program while ``fn`` runs under :func:`compile` (called by ``apply``'s hook)."""

    def __init__(self):
        self.slots: list = []  # (kind, payload): input index, tensor, constant value, entry index
        self.slot_of: dict = {}  # id(object) -> slot (objects kept alive in ``keep``)
        self.consts: dict = {}  # key of a Python scalar -> slot (one slot per distinct constant)
        self.keep: list = []
        self.entries: list = []

    def new_slot(self, kind: int, payload, *objects) -> int:
        slot = len(self.slots)
        self.slots.append((kind, payload))
        for obj in objects:
            self.slot_of[id(obj)] = slot
            self.keep.append(obj)
        return slot

    def slot(self, x) -> int:
        """The slot an op input comes from (made on first sight)."""
        found = self.slot_of.get(id(x))
        if found is not None:
            return found
        if isinstance(x, Tensor):
            found = self.slot_of.get(id(x._data))  # a tensor wrapping an array seen before
            if found is not None:
                return found
            return self.new_slot(_TENSOR, x, x)
        if isinstance(x, (bool, int, float, complex, np.generic)):
            key = (type(x).__name__, repr(x))
            if key not in self.consts:
                self.consts[key] = self.new_slot(_CONST, x)
            return self.consts[key]
        value = protected(x)
        return self.new_slot(_CONST, value, x, value)

    def __call__(self, op, inputs: tuple, params: dict, ctx, out: Tensor) -> None:
        ins = [self.slot(x) for x in inputs]
        dynamic = []
        for key, value in params.items():
            dyn = self._dynamic(value)
            if dyn is not None:
                dynamic.append((key, dyn))
        index = len(self.entries)
        slot = self.new_slot(_OP, index, out, out._data)
        self.entries.append(_Entry(op, ins, params, dynamic, slot, ctx, out._node is not None))

    def _dynamic(self, value):
        """A parameter that is (or holds, one tuple level down) an array the program computes or
        takes as input: its slot(s), substituted at each replay; else None (a fixed parameter)."""
        if backend.is_array(value):
            slot = self.slot_of.get(id(value))
            return slot if slot is not None and self.slots[slot][0] in (_INPUT, _OP) else None
        if isinstance(value, tuple):
            parts = [self._dynamic(v) if backend.is_array(v) else None for v in value]
            if any(p is not None for p in parts):
                return tuple(("slot", p) if p is not None else ("fixed", v) for p, v in zip(parts, value))
        return None


def _param_key(value) -> Any:
    """A hashable key of a parameter value: equal keys mean equal parameters (arrays by identity)."""
    if value is None or isinstance(value, (bool, int, float, complex, str, np.generic)):
        return (type(value).__name__, repr(value))
    if isinstance(value, (tuple, list)):
        return (type(value).__name__, tuple(_param_key(v) for v in value))
    if isinstance(value, slice):
        return ("slice", _param_key(value.start), _param_key(value.stop), _param_key(value.step))
    if isinstance(value, np.dtype):
        return ("dtype", value.str)
    if isinstance(value, dict):
        return ("dict", tuple(sorted((k, _param_key(v)) for k, v in value.items())))
    return ("object", id(value))


class _Instance:
    """One set of the graph's nodes (a context per op; a :class:`Node` per recorded op)."""

    __slots__ = ("ctxs", "bound", "outputs", "refs", "baseline", "busy", "consumers", "plans", "fixed", "varying",
                 "fixed_from", "fixed_values")  # fmt: skip


class Graph:
    """A replayable graph made by :func:`compile`; call it with arrays or tensors of the compiled
    shapes and dtypes. See the module's docstring and docs/compile.md."""

    def __init__(self, fn: Callable, names: list, specs: list, recorder: _Recorder, outputs: list,
                 multiple: bool, unique: bool, signature: _Signature):  # fmt: skip
        self.fn, self._names, self._specs, self._multiple = fn, names, specs, multiple
        self._signature = signature
        self._slots = recorder.slots
        entries = recorder.entries
        before = len(entries)
        recorded_before = sum(e.recorded for e in entries)
        canon = list(range(len(self._slots)))
        merged = 0
        if unique:
            seen: dict = {}
            for e in entries:
                ins = tuple(canon[s] for s in e.ins)
                key = (id(e.op), ins, tuple(sorted((k, _param_key(v)) for k, v in e.params.items()
                                                   if k not in dict(e.dynamic))),
                       tuple((k, _dyn_key(d, canon)) for k, d in e.dynamic),
                       tuple(p is None for p in e.ctx.parents) if e.recorded else None)  # fmt: skip
                first = seen.get(key)
                if first is None:
                    seen[key] = e
                else:
                    canon[e.out] = first.out
                    e.alive = False
                    merged += 1
        for e in entries:
            e.ins = [canon[s] for s in e.ins]
            e.dynamic = [(k, _remap(d, canon)) for k, d in e.dynamic]
        self._outputs = [canon[s] for s in outputs]
        # drop what the outputs do not depend on
        producer = {e.out: e for e in entries if e.alive}
        needed, stack = set(self._outputs), list(self._outputs)
        while stack:
            e = producer.get(stack.pop())
            if e is None:
                continue
            for s in [*e.ins, *_dyn_slots(e.dynamic)]:
                if s not in needed:
                    needed.add(s)
                    stack.append(s)
        dead = 0
        for e in entries:
            if e.alive and e.out not in needed:
                e.alive = False
                dead += 1
        self._entries = [e for e in entries if e.alive]
        for e in entries:  # (the compiling call's nodes serve as templates only: drop their arrays)
            if e.recorded:
                e.ctx.saved = ()
        self._stats = {
            "ops_traced": before, "ops_merged": merged, "ops_dropped": dead, "ops": len(self._entries),
            "nodes_before": recorded_before, "nodes_after": sum(e.recorded for e in self._entries),
        }  # fmt: skip
        self._template: list = [None] * len(self._slots)
        self._tensors: list = []  # (slot, tensor): read at every call (parameters change)
        for s, (kind, payload) in enumerate(self._slots):
            if kind == _CONST:
                self._template[s] = payload
            elif kind == _TENSOR:
                self._tensors.append((s, payload))
        self._tensor_devices = [backend.device_of(t._data) for _, t in self._tensors]
        self._input_slots = [s for s, (kind, _) in enumerate(self._slots) if kind == _INPUT]
        #: slots whose vertex is bound at each call: the inputs, then the captured tensors (a
        #: parameter whose leaf was replaced, by ``requires_grad_`` off and on, is followed)
        self._bindable = self._input_slots + [s for s, _ in self._tensors]
        # ops that read only captured tensors and constants (a parameter's transpose...) are *fixed*:
        # an instance runs them again only when one of those tensors holds another array (numpy arrays
        # in a graph are read-only, so the same array object is the same value; cupy arrays have no
        # read-only flag, so the fixed ops of a graph that reads them run at every call)
        known = {s for s, (kind, _) in enumerate(self._slots) if kind in (_TENSOR, _CONST)}
        self._fixed = [False] * len(self._entries)
        for k, e in enumerate(self._entries):
            if all(s in known for s in [*e.ins, *_dyn_slots(e.dynamic)]):
                self._fixed[k] = True
                known.add(e.out)
        reads = {s for e, fixed in zip(self._entries, self._fixed) if fixed for s in e.ins}
        self._fixed_reads = [s for s, _ in self._tensors if s in reads]  # (the tensors they read)
        self._fixed_outs = [e.out for e, fixed in zip(self._entries, self._fixed) if fixed]
        self._lock = threading.Lock()
        self._instances: list = []

    # -- instances ----------------------------------------------------------------------------
    def _new_instance(self) -> _Instance:
        inst = _Instance()
        node_of: dict = {}  # (an input is bound at each call: a tensor's vertex, or None for an array)
        for s, t in self._tensors:
            node_of[s] = t._node
        ctxs = []
        consumers: dict = {}  # input slot -> [(entry position, parent position)]
        for k, e in enumerate(self._entries):
            ctx = e.ctx
            if e.recorded:  # (a parent the eager call had as a constant, a detached tensor, stays one)
                parents = tuple(None if p is None else node_of.get(s) for s, p in zip(e.ins, ctx.parents))
            for j, s in enumerate(e.ins):
                if e.recorded and ctx.parents[j] is not None and self._slots[s][0] in (_INPUT, _TENSOR):
                    consumers.setdefault(s, []).append((k, j))
            if e.recorded:
                node = _new(Node)
                node.op, node.parents, node.xp, node.params, node.shapes = e.op, parents, ctx.xp, e.params, ctx.shapes
                node.saved = ()
                node.seq = next(engine._creation_order)
                node.name, node.grad, node.consumed, node.component = ctx.name, None, False, ctx.component
                node.shape, node.dtype = ctx.shape, ctx.dtype
                node_of[e.out] = node
            else:
                node = engine.Context(ctx.xp, e.params, ctx.shapes)
            ctxs.append(node)
        inst.ctxs = ctxs
        # its programs: (forward, context, input slots, parameters, dynamic parameters, output slot)
        programs: tuple = ([], [])
        for e, ctx, fixed in zip(self._entries, ctxs, self._fixed):
            programs[fixed].append((e.op.forward, ctx, tuple(e.ins), e.params, e.dynamic, e.out))
        inst.varying, inst.fixed = programs
        inst.fixed_from = inst.fixed_values = None  # (the arrays the fixed ops last ran on, and their results)
        inst.bound = dict.fromkeys(self._input_slots)
        inst.bound.update((s, t._node) for s, t in self._tensors)
        inst.consumers = consumers
        inst.outputs = [node_of.get(s) for s in self._outputs]
        # the sweeps from an output reuse their structure (engine.Plans) until _bind changes the graph
        mine = {id(ctx) for ctx in ctxs}
        inst.plans = []
        for node in inst.outputs:
            if node is not None and id(node) in mine and getattr(node, "plans", None) is None:
                node.plans = engine.Plans()
                inst.plans.append(node.plans)
        inst.refs = ()
        inst.busy = False
        inst.baseline = ()
        return inst

    def _in_use(self, inst: _Instance) -> bool:
        if inst.busy:
            return True
        for ref in inst.refs:
            if ref() is not None:
                return True
        if _getrefcount is None:
            return True  # (no reference counts: never reuse an instance that may be referenced)
        counts = _refcounts(inst.outputs)  # (first: the loop below holds references of its own)
        if counts == inst.baseline:
            return False
        for node, count, fresh in zip(inst.outputs, counts, inst.baseline):
            if node is not None and count != fresh + sum(p.holds(node) for p in inst.plans):
                return True
        return False

    def _take(self) -> _Instance:
        with self._lock:
            for inst in self._instances:
                if not self._in_use(inst):
                    inst.busy = True
                    return inst
        inst = self._new_instance()  # (outside the lock: a new instance is private until returned)
        if _getrefcount is not None:
            inst.baseline = _refcounts(inst.outputs)  # (no reference from outside yet)
        inst.busy = True
        with self._lock:
            self._instances.append(inst)
        return inst

    # -- calls --------------------------------------------------------------------------------
    def __call__(self, /, *inputs, **keywords):
        """Replay the graph on ``inputs`` (arrays or tensors of the compiled shapes and dtypes).

        Inputs go as they went to :func:`compile`: positional ones by position (or by their
        parameter's name), keyword ones by keyword; a static keyword (not an array) may be left out
        or repeated with its compiled value. An input given as a tensor that requires grad is a
        vertex of the returned graph (so ``sr.grad(y, [x])`` works); one given as an array (or a
        tensor that does not require grad) is a constant, as in an eager call.
        """
        if keywords or len(inputs) != len(self._specs) or not self._signature.plain:
            inputs = self._signature.bind(self._fn_name(), inputs, keywords)
        arrays, nodes = [], []
        for i, x in enumerate(inputs):
            node = None
            if isinstance(x, Tensor):
                a, node = x._data, x._node
            elif backend.is_array(x):
                a = protected(x)
            else:
                a = np.asarray(x)
            shape, dtype, kind, device = self._specs[i]
            if a.shape != shape or a.dtype != dtype or type(a) is not kind:
                raise ValueError(
                    f"compiled graph of {self._fn_name()}: input {i} ({self._names[i]!r}) has shape {tuple(a.shape)} "
                    f"and dtype {a.dtype} ({type(a).__name__}); the graph was compiled for shape {shape} and dtype "
                    f"{dtype} ({kind.__name__}): compile another graph for these inputs"
                )
            if device.type != "cpu" and backend.device_of(a) != device:
                raise backend.DeviceError(
                    f"compiled graph of {self._fn_name()}: input {i} ({self._names[i]!r}) of shape {tuple(a.shape)} "
                    f"is on {backend.device_of(a)}; the graph was compiled for {device}: move the input there, or "
                    "compile another graph for this device"
                )
            arrays.append(a)
            nodes.append(node)
        if backend.cupy is not None:
            self._check_captured_devices()
        if core._record is not engine.record or (core._tracing and getattr(core._tracer, "recorder", None)):
            return self._replay_through_ops(arrays, nodes)
        inst = self._take()
        try:
            return self._replay(inst, arrays, nodes)
        finally:
            inst.busy = False

    def _check_captured_devices(self) -> None:
        """The tensors ``fn`` captured (parameters) must be where they were when compiling: the
        program's constants and its ops' array module are that device's."""
        for (_, t), device in zip(self._tensors, self._tensor_devices):
            now = backend.device_of(t._data)
            if now != device:
                name = f" {t.name!r}" if t.name else ""
                raise backend.DeviceError(
                    f"compiled graph of {self._fn_name()}: the captured tensor{name} of shape {tuple(t.shape)} is "
                    f"now on {now}; the graph was compiled with it on {device}, where its constants are: compile the "
                    "graph again after moving the model"
                )

    def _replay_through_ops(self, arrays: list, nodes: list):
        """The program run through :func:`~semirad.ops.core.apply`, which makes new nodes, as an eager
        call does: what a call does while something follows the ops as they are recorded (forward
        mode's sweep swaps ``ops.core._record``; a :func:`compile` of a function that calls this
        graph traces them). Same ops, parameters, constants and component names as a replay."""
        vals: list = self._template.copy()  # (arrays, or tensors where the value may have a vertex)
        for s, a, node in zip(self._input_slots, arrays, nodes):
            vals[s] = a if node is None else Tensor._wrap(a, node)
        for s, t in self._tensors:
            vals[s] = t
        for e in self._entries:
            args = [vals[s] for s in e.ins]
            for j, a in enumerate(args):  # (an input that was a constant in the compiling call stays one)
                if isinstance(a, Tensor) and not (e.recorded and e.ctx.parents[j] is not None):
                    args[j] = a._data
            params = _dynamic_params(e.params, e.dynamic, vals) if e.dynamic else e.params
            out = core.apply(e.op, *args, **params)
            if out._node is not None:
                out._node.component, out._node.name = e.ctx.component, e.ctx.name
            vals[e.out] = out
        record = engine.recording()
        results = []
        for s in self._outputs:
            t = vals[s]
            if not isinstance(t, Tensor):
                t = Tensor._wrap(t, None)
            elif not record:
                t = Tensor._wrap(t._data, None)
            results.append(t)
        return tuple(results) if self._multiple else results[0]

    def _fn_name(self) -> str:
        return getattr(self.fn, "__qualname__", type(self.fn).__name__)

    def _bind(self, inst: _Instance, nodes: list) -> None:
        """Make the caller's input tensors (those that require grad) and the captured tensors'
        current vertices the parents of the ops that read them (``nodes``: in ``_bindable`` order)."""
        renumber = False
        bound = inst.bound
        for s, node in zip(self._bindable, nodes):
            if bound[s] is node:
                continue
            bound[s] = node
            for plans in inst.plans:  # (the graph below the outputs changes: plans made for it go)
                plans.clear()
            if node is not None and inst.ctxs and node.seq > _first_seq(inst):
                renumber = True
            for k, j in inst.consumers.get(s, ()):
                ctx = inst.ctxs[k]
                if type(ctx) is Node:
                    parents = list(ctx.parents)
                    parents[j] = node
                    ctx.parents = tuple(parents)
        if renumber:  # creation order is a topological order: the graph's nodes come after its inputs
            count = engine._creation_order
            for ctx in inst.ctxs:
                if type(ctx) is Node:
                    ctx.seq = next(count)

    def _replay(self, inst: _Instance, arrays: list, nodes: list):
        vals = self._template.copy()
        for s, a in zip(self._input_slots, arrays):
            vals[s] = a
        for s, t in self._tensors:
            vals[s] = t._data
            nodes.append(t._node)
        self._bind(inst, nodes)
        for node in inst.outputs:
            if node is not None and node.consumed:  # a Tensor.backward() used the last replay's graph
                for ctx in inst.ctxs:
                    if type(ctx) is Node:
                        ctx.consumed = False
                break
        if inst.fixed:
            now = [vals[s] for s in self._fixed_reads]
            then = inst.fixed_from
            if then is not None and all(map(operator.is_, now, then)):
                for s, value in zip(self._fixed_outs, inst.fixed_values):
                    vals[s] = value
            else:
                inst.fixed_from = None  # (until the fixed ops ran: one of them may raise)
                _run(inst.fixed, vals)
                # reused while the same arrays come back, where those cannot change: read-only numpy
                # arrays (a cupy array has no read-only flag: an in-place edit would go unseen)
                inst.fixed_from = now if all(map(_immutable, now)) else None
                inst.fixed_values = [vals[s] for s in self._fixed_outs]
        _run(inst.varying, vals)
        record = engine.recording()
        results = []
        for s, node in zip(self._outputs, inst.outputs):
            t = _new(Tensor)
            t._data = vals[s]
            kind = self._slots[s][0]
            if kind == _OP:
                t._node = node if record else None
            elif kind == _INPUT:
                t._node = inst.bound[s] if record else None
            else:
                t._node = None
            t._name = None
            results.append(t)
        if record:
            inst.refs = [weakref.ref(t) for t in results]
        if self._multiple:
            return tuple(results)
        return results[0]

    # -- reports ------------------------------------------------------------------------------
    def stats(self) -> dict:
        """Sizes of the program: ops traced, merged (identical subexpressions), dropped (the outputs
        do not depend on them), kept; recorded nodes (tape vertices) before and after.

        >>> import numpy as np, semirad as sr
        >>> g = sr.compile(lambda x: (x + 1.0) * (x + 1.0) + x.exp(), np.ones(2))
        >>> s = g.stats(); s["ops_traced"], s["ops_merged"], s["nodes_before"], s["nodes_after"]
        (5, 1, 5, 4)
        """
        return dict(self._stats, instances=len(self._instances))

    def __repr__(self) -> str:
        s = self._stats
        shapes = [spec[0] for spec in self._specs]
        return f"<compiled graph of {self._fn_name()}: {s['ops']} ops ({s['ops_traced']} traced), inputs {shapes}>"


def _run(program: list, vals: list) -> None:
    """Run ops of a program (see :meth:`Graph._new_instance`) on the slot values ``vals``, in place."""
    ndarray, is_array = np.ndarray, backend.is_array
    for forward, ctx, ins, params, dynamic, out in program:
        if dynamic:
            params = ctx.params = _dynamic_params(params, dynamic, vals)
        n = len(ins)
        if n == 1:
            y = forward(ctx, vals[ins[0]], **params) if params else forward(ctx, vals[ins[0]])
        elif n == 2:
            a, b = vals[ins[0]], vals[ins[1]]
            y = forward(ctx, a, b, **params) if params else forward(ctx, a, b)
        else:
            y = forward(ctx, *[vals[s] for s in ins], **params)
        if type(y) is ndarray:
            y.setflags(write=False)
        elif not is_array(y):
            y = ctx.xp.asarray(y)
            if type(y) is ndarray:
                y.setflags(write=False)
        vals[out] = y


def _array(value):
    return value._data if isinstance(value, Tensor) else value


def _dynamic_params(params: dict, dynamic: list, vals: list) -> dict:
    """``params`` with each dynamic parameter (see ``_Recorder._dynamic``) read from the slot values
    ``vals``: one slot, or a tuple of slots and fixed values (a tensor's array where the call runs
    through the ops)."""
    params = dict(params)
    for key, d in dynamic:
        if type(d) is int:
            params[key] = _array(vals[d])
        else:
            params[key] = tuple(_array(vals[v]) if how == "slot" else v for how, v in d)
    return params


def _immutable(a) -> bool:
    """Whether ``a`` is a read-only numpy array (its values cannot change while it is this object)."""
    return type(a) is np.ndarray and not a.flags.writeable


def _refcounts(nodes: list) -> list:
    """Reference counts of the output nodes (compared with those of a fresh instance, plus what the
    instance's :class:`~semirad.engine.Plans` hold: anything more is an output tensor, a sweep, a
    trace... that still uses the instance)."""
    return [None if n is None else _getrefcount(n) for n in nodes]


def _first_seq(inst: _Instance) -> int:
    for ctx in inst.ctxs:
        if type(ctx) is Node:
            return ctx.seq
    return sys.maxsize


def _dyn_key(d, canon: list):
    if type(d) is int:
        return ("slot", canon[d])
    return tuple((how, canon[v]) if how == "slot" else (how, _param_key(v)) for how, v in d)


def _remap(d, canon: list):
    if type(d) is int:
        return canon[d]
    return tuple((how, canon[v]) if how == "slot" else (how, v) for how, v in d)


def _dyn_slots(dynamic: list) -> list:
    out = []
    for _, d in dynamic:
        if type(d) is int:
            out.append(d)
        else:
            out.extend(v for how, v in d if how == "slot")
    return out


def compile(fn: Callable, /, *example_inputs, unique: bool = True, **example_keywords) -> Graph:  # noqa: A001
    """Record ``fn(*example_inputs, **example_keywords)`` once and return a :class:`Graph` that replays it.

    ``example_inputs`` are arrays or tensors; a call of the graph takes inputs of the same shapes,
    dtypes and array types. A keyword whose value is an array or a tensor is an input too (given by
    keyword at each call); any other keyword value (a flag, a number, a string) is *static*: ``fn``
    sees it while compiling and a call may leave it out or repeat it, but not change it, as with
    ``jax.jit``'s ``static_argnames``. Floating-point inputs are made leaves of the recorded graph
    while compiling, so every op that depends on them is part of the program. ``fn`` returns a
    tensor or a tuple/list of tensors. ``unique=False`` keeps identical subexpressions apart (the
    program is then the eager tape op for op). Tensors that ``fn`` reads from outside (a model's
    parameters) are read again at every call: an optimizer step between calls is seen by the next call.

    >>> import numpy as np, semirad as sr
    >>> g = sr.compile(lambda x: (x * x).sum(), np.zeros(3))
    >>> x = sr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> y = g(x)
    >>> y.item(), sr.grad(y, [x])[0].tolist()
    (14.0, [2.0, 4.0, 6.0])
    >>> g(np.zeros(4))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: compiled graph of <lambda>: input 0 ('x') has shape (4,) ... compiled for shape (3,) ...
    >>> masked = sr.compile(lambda x, mask=None, scale=1.0: (x * mask).sum() * scale, np.ones(2), mask=np.ones(2))
    >>> masked(np.array([1.0, 2.0]), mask=np.array([0.0, 1.0])).item()
    2.0
    """
    signature = _Signature.of(fn, len(example_inputs), example_keywords)
    names = signature.names
    recorder = _Recorder()
    specs, traced = [], []
    examples = list(example_inputs) + [example_keywords[k] for k in names[len(example_inputs) :]]
    for i, x in enumerate(examples):
        a = x._data if isinstance(x, Tensor) else (protected(x) if backend.is_array(x) else np.asarray(x))
        specs.append((tuple(a.shape), a.dtype, type(a), backend.device_of(a)))
        t = Tensor._wrap(a, None)
        if a.dtype.kind in "fc":
            t._node = engine.leaf(a.shape, a.dtype, names[i])
        recorder.new_slot(_INPUT, i, t, a)
        traced.append(t)
    positional = traced[: len(example_inputs)]
    keywords = dict(zip(names[len(example_inputs) :], traced[len(example_inputs) :]), **signature.static)
    core._tracer.recorder = recorder
    core._tracing.append(None)
    try:
        with _grad_on():
            out = fn(*positional, **keywords)
    finally:
        core._tracing.pop()
        core._tracer.recorder = None
    multiple = isinstance(out, (tuple, list))
    outs = list(out) if multiple else [out]
    slots = []
    for j, t in enumerate(outs):
        if not isinstance(t, Tensor):
            raise CompileError(
                f"compile: {getattr(fn, '__qualname__', fn)} must return a tensor or a tuple of tensors; "
                f"output {j} is a {type(t).__name__}"
            )
        s = recorder.slot_of.get(id(t))
        if s is None or recorder.slots[s][0] not in (_OP, _INPUT):
            raise CompileError(
                f"compile: output {j} of {getattr(fn, '__qualname__', fn)} was not computed by the ops of this call "
                "(a tensor from outside, or a result of a call that bypasses the ops): nothing to replay"
            )
        slots.append(s)
    _check_complete(recorder, outs)
    return Graph(fn, names, specs, recorder, slots, multiple, unique, signature)


_MISSING = object()


class _Signature:
    """How the arguments of a call map to the graph's inputs: ``names`` (the positional inputs, by
    ``fn``'s parameter names, then the keyword ones), how many may be given by position, which by
    name, and the static keywords with their compiled values."""

    def __init__(self, names: list, by_position: list, by_name: dict, static: dict):
        self.names, self.by_position, self.by_name, self.static = names, by_position, by_name, static
        #: whether a call with every input by position, in order, needs no binding (the fast path)
        self.plain = by_position == list(range(len(names)))

    @classmethod
    def of(cls, fn: Callable, n: int, keywords: dict) -> _Signature:
        params = _safe_params(fn)
        ordered = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        names = [p.name for p in ordered[:n]]
        names += [f"input{i}" for i in range(len(names), n)]
        by_name = {p.name: i for i, p in enumerate(ordered[:n]) if p.kind == p.POSITIONAL_OR_KEYWORD}
        static = {}
        for key, value in keywords.items():
            if isinstance(value, Tensor) or backend.is_array(value):
                by_name[key] = len(names)
                names.append(key)
            else:
                static[key] = value
        by_position = list(range(n))  # (then, as Python binds them, keyword inputs that fn takes by position)
        for p in ordered[n:]:
            if p.kind != p.POSITIONAL_OR_KEYWORD or p.name not in by_name:
                break
            by_position.append(by_name[p.name])
        return cls(names, by_position, by_name, static)

    def bind(self, fn_name: str, args: tuple, keywords: dict) -> list:
        """The inputs of a call in the graph's order; a missing, unknown, doubled or changed argument
        raises a ``TypeError`` (``ValueError`` for a changed static keyword) that names it."""
        where = f"compiled graph of {fn_name}"
        n = len(self.names)
        if len(args) > len(self.by_position):
            many = "inputs" if len(self.by_position) == n else "positional inputs"
            raise TypeError(f"{where}: expected {len(self.by_position)} {many}, got {len(args)}")
        given = [_MISSING] * n
        for i, arg in zip(self.by_position, args):
            given[i] = arg
        for key, value in keywords.items():
            i = self.by_name.get(key)
            if i is not None:
                if given[i] is not _MISSING:
                    raise TypeError(f"{where}: input {key!r} given twice (by position and by keyword)")
                given[i] = value
            elif key in self.static:
                compiled = self.static[key]
                if not _same(value, compiled):
                    raise ValueError(
                        f"{where}: keyword {key!r} is {value!r}, the graph was compiled with {compiled!r} "
                        "(a static keyword: compile another graph for this value)"
                    )
            else:
                known = ", ".join(repr(k) for k in [*self.by_name, *self.static]) or "none"
                raise TypeError(f"{where}: unexpected keyword {key!r} (its keywords: {known})")
        missing = [name for name, value in zip(self.names, given) if value is _MISSING]
        if missing:
            raise TypeError(
                f"{where}: expected {n} inputs, got {n - len(missing)} (missing {', '.join(map(repr, missing))})"
            )
        return given


def _same(a, b) -> bool:
    """Whether a static keyword's value is the compiled one (same type, equal; anything that does
    not compare to a plain bool must be the same object)."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    try:
        equal = a == b
    except Exception:  # noqa: BLE001 (a comparison that raises is a difference)
        return False
    return isinstance(equal, (bool, np.bool_)) and bool(equal)


class _grad_on:
    """Recording on for the tracing call (an enclosing ``no_grad`` would record nothing to replay)."""

    def __enter__(self):
        self.previous = engine._state.grad_enabled
        if not self.previous:
            engine._state.grad_enabled = True
            engine._count("no_grad", -1)
        return self

    def __exit__(self, *exc):
        if not self.previous:
            engine._state.grad_enabled = False
            engine._count("no_grad", 1)
        return False


def _check_complete(recorder: _Recorder, outs: list) -> None:
    """Every recorded op the outputs depend on must be in the program (else a replay would keep a
    stale vertex): ops that build their nodes by themselves are not replayable. Vertices of tensors
    from outside the call (parameters, earlier graphs) are where the walk stops."""
    mine = {id(e.ctx) for e in recorder.entries}
    outside = {id(t._node) for t in recorder.keep if isinstance(t, Tensor) and t._node is not None}
    seen, stack = set(), [t._node for t in outs if t._node is not None]
    while stack:
        node = stack.pop()
        if id(node) in seen or node.op is None or id(node) in outside:
            continue
        seen.add(id(node))
        if id(node) not in mine:
            raise CompileError(
                f"compile: the graph holds {node.describe()}, which was not made through semirad's ops during "
                "this call (an op that records its own nodes): it cannot be replayed"
            )
        stack.extend(p for p in node.parents if p is not None)


def _safe_params(fn: Callable) -> list:
    try:
        return list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return []
