"""What every op shares: the :class:`Op` protocol, :func:`apply` (which records the tape) and
:func:`unbroadcast` (the one place where broadcasting is undone, with ⊕)."""

from __future__ import annotations

import threading

import numpy as np

from .. import backend, engine
from ..axes import canonical_axes
from ..engine import Context
from ..engine import _Anywhere as _ANYWHERE
from ..readonly import protected


class OpError(ValueError):
    """Bad input to an op: the message names the op and the shapes involved."""


class OpIndexError(OpError, IndexError):
    """An index out of range for an op's input; also an ``IndexError`` so iteration stops on it."""


class Op:
    """An op: a forward on arrays and a backward that moves a semiring value to the inputs.

    ``backward(ctx, g, S, needs)`` returns one semiring value per input (``None`` where
    ``needs[i]`` is false), built only with the semiring ``S``'s primitives and real edge weights.
    """

    name = "op"

    def forward(self, ctx: Context, *arrays, **params):
        raise NotImplementedError

    def backward(self, ctx: Context, g, S, needs):
        raise NotImplementedError(f"op {self.name!r} has no backward rule")

    def __repr__(self) -> str:
        return f"<op {self.name}>"


def _describe(x) -> str:
    shape = getattr(x, "shape", None)
    return str(tuple(shape)) if shape is not None else type(x).__name__


class _Registry:
    """The tensor type, registered by :mod:`semirad.tensor` when it is imported: ops build tensors
    without importing the module that calls them (registration in one direction, as autograd's
    ``ArrayBox.register``)."""

    tensor = None


def register_tensor_type(cls) -> None:
    """Make ``cls`` the type that :func:`apply` returns and recognizes as a recorded input."""
    _Registry.tensor = cls


def tensor_type():
    """The registered tensor type (:class:`semirad.Tensor`).

    >>> import semirad as sr
    >>> tensor_type() is sr.Tensor
    True
    """
    return _Registry.tensor


def apply(op: Op, *inputs, **params):
    """Run ``op`` on tensors / arrays / Python scalars and record it on the tape.

    This is the hot path of every op (a few microseconds of Python per call), hence written flat.

    >>> import semirad as sr
    >>> from semirad.ops.elementwise import ADD
    >>> apply(ADD, sr.tensor([1.0]), 2.0).tolist()
    [3.0]
    """
    Tensor = _Registry.tensor
    n = len(inputs)
    if n == 2:  # binary ops and matmul, unrolled and called without packing arguments: a just-optimization
        a, b = inputs
        raw = 0  # how many operands are not tensors (a caller's arrays or numbers)
        if isinstance(a, Tensor):
            pa, a = a._node, a._data
            sa = a.shape if pa is None else pa.shape  # (a node's kept tuple: Tensor.data keeps it right)
        else:
            pa, sa, raw = None, getattr(a, "shape", ()), 1
        if isinstance(b, Tensor):
            pb, b = b._node, b._data
            sb = b.shape if pb is None else pb.shape
        else:
            pb, sb, raw = None, getattr(b, "shape", ()), raw + 2
        record = (pa is not None or pb is not None) and (not _ANYWHERE.no_grad or engine._state.grad_enabled)
        if record and raw:  # a caller's array the op may keep: it must not change (tensors' data is read-only)
            if raw & 1:
                a = protected(a)
            if raw & 2:
                b = protected(b)
        parents, shapes = (pa, pb), (sa, sb)
        arrays = None  # (built only where needed: cupy, a message)
    elif n == 1 and isinstance(inputs[0], Tensor):  # unary ops
        x = inputs[0]
        pa, a = x._node, x._data
        parents, shapes = (pa,), (a.shape if pa is None else pa.shape,)
        arrays = None
        record = pa is not None and (not _ANYWHERE.no_grad or engine._state.grad_enabled)
    else:
        arrays, parents, shapes = [], [], []
        record = False
        for x in inputs:
            if isinstance(x, Tensor):
                arrays.append(x._data)
                parents.append(x._node)
                shapes.append(x._data.shape)
                if x._node is not None:
                    record = True
            else:
                arrays.append(x)
                parents.append(None)
                shapes.append(getattr(x, "shape", ()))
        record = record and engine.recording()
        if record:
            arrays = [a if isinstance(x, Tensor) else protected(a) for a, x in zip(arrays, inputs)]
        arrays, parents, shapes = tuple(arrays), tuple(parents), tuple(shapes)
        n = 0
    if backend.cupy is None:
        xp = np
    else:
        if arrays is None:
            arrays = (a, b) if n == 2 else (a,)
        xp = backend.namespace(*arrays)
    ctx = _record(op, parents, xp, params, shapes) if record else Context(xp, params, shapes)
    try:
        if n == 2:
            out = op.forward(ctx, a, b, **params) if params else op.forward(ctx, a, b)
        elif n == 1:
            out = op.forward(ctx, a, **params) if params else op.forward(ctx, a)
        else:
            out = op.forward(ctx, *arrays, **params)
    except OpError:
        raise
    except (ValueError, IndexError, TypeError, np.exceptions.AxisError) as error:
        if arrays is None:
            arrays = (a, b) if n == 2 else (a,)
        shapes = ", ".join(_describe(a) for a in arrays)
        kind = OpIndexError if isinstance(error, IndexError) else OpError
        raise kind(f"{op.name}: {error} (input shapes: {shapes})") from None
    if type(out) is np.ndarray:
        out.setflags(write=False)  # the op may keep it for its backward: no in-place edit may change that
    elif not backend.is_array(out):
        out = xp.asarray(out)
        if type(out) is np.ndarray:
            out.setflags(write=False)
    t = _new(Tensor)
    t._data = out
    if record:
        shape = out.shape
        ctx.shape = _SHAPES.get(shape) or _shape(shape)
        ctx.dtype = out.dtype
        t._node = ctx
    else:
        t._node = None
    t._name = None
    if _tracing:  # sr.compile is recording a replay program somewhere (semirad/compile.py)
        _trace(op, inputs, params, ctx, t)
    return t


_new = object.__new__
_record = engine.record


#: one tuple per shape for the recorded nodes' ``shape`` (and, through their children's reading of
#: it, ``shapes``): numpy makes a new tuple at every ``.shape``, and a graph of 3400 ops kept 8000
#: equal ones alive, each watched by Python's cyclic garbage collector, whose collections they made
#: more frequent (docs/design.md, "Per-op overhead"). Emptied when it reaches ``_SHAPES_MAX``.
_SHAPES: dict = {}
_SHAPES_MAX = 4096


def _shape(shape: tuple) -> tuple:
    """The kept tuple equal to ``shape`` (``shape`` itself where none was kept)."""
    if len(_SHAPES) >= _SHAPES_MAX:
        _SHAPES.clear()
    return _SHAPES.setdefault(shape, shape)


#: one entry per ``sr.compile`` tracing open in any thread: while it is empty (always, outside a
#: compile) the hot path reads only this list. A list, as ``engine._open_components``: ``append``
#: and ``pop`` are atomic. Each thread's recorder is in ``_tracer.recorder``.
_tracing: list = []
_tracer = threading.local()


def _trace(op, inputs: tuple, params: dict, ctx, out) -> None:
    """The hook of :func:`apply` for ``sr.compile``: hands every op applied in this thread (recorded
    or not) to the thread's recorder, if one is open."""
    recorder = getattr(_tracer, "recorder", None)
    if recorder is not None:
        recorder(op, inputs, params, ctx, out)


def unbroadcast(S, g, shape: tuple):
    """⊕-reduce ``g`` over the axes that broadcasting from ``shape`` added or stretched."""
    g_shape = S.shape(g)
    if g_shape == shape:
        return g
    shape = tuple(shape)
    if g_shape == shape:
        return g
    lead = len(g_shape) - len(shape)
    if lead > 0 and g_shape[lead:] == shape:  # only leading axes added (a bias under a batch)
        return S.sum(g, _LEADING[lead] if lead < len(_LEADING) else tuple(range(lead)), keepdims=False)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and g_shape[lead + i] != 1
    )
    if axes:
        g = S.sum(g, axes, keepdims=False)
    return S.map(g, lambda a: a.reshape(shape))


_LEADING = [tuple(range(k)) for k in range(8)]


def normalize_axes(axis, ndim: int, op_name: str, shape: tuple) -> tuple:
    """``axis`` (None, int or tuple) as a sorted tuple of non-negative axes, checked; the error names the op.

    >>> normalize_axes(-1, 2, "sum", (3, 4))
    (1,)
    """
    try:
        return canonical_axes(axis, ndim)
    except ValueError as error:
        raise OpError(f"{op_name}: {error} for shape {shape}") from None
