"""``Tensor``: a backend array plus the tape node that made it. No math lives here: operators and
methods call the functions of :mod:`semirad.ops` (the hottest ones apply their op directly)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from . import backend, engine
from .ops import contraction as C
from .ops import elementwise as E
from .ops import functions as F
from .ops.core import apply, register_tensor_type
from .readonly import freeze
from .semirings.base import Result
from .semirings.sum_product import SumProduct

_new = object.__new__


class Tensor:
    """An array that records the ops applied to it.

    >>> import semirad as sr
    >>> w = sr.tensor([1.0, 2.0], requires_grad=True, name="w")
    >>> loss = (w * w).sum()
    >>> loss.backward()
    >>> w.grad.tolist()
    [2.0, 4.0]
    """

    __slots__ = ("_data", "_node", "_name", "__weakref__")
    __array_ufunc__ = None  # numpy defers to our reflected operators: ndarray * Tensor -> Tensor

    def __init__(self, data: Any, requires_grad: bool = False, name: str | None = None, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        xp = backend.namespace(data) if backend.is_array(data) else np
        self._data = freeze(xp.array(data, dtype=dtype))  # a copy, as torch.tensor
        self._node = None
        self._name = name
        if requires_grad:
            self.requires_grad = True

    @classmethod
    def _wrap(cls, data, node):
        t = _new(cls)
        t._data = freeze(data)
        t._node = node
        t._name = None
        return t

    # -- attributes ---------------------------------------------------------------------------
    @property
    def data(self):
        """The array (read-only: a graph may keep it for its backward).

        Assigning a new array replaces it (the array becomes read-only; a view of writable memory
        is copied), and graphs recorded before keep the old one, so their gradients stay those of
        the values they saw. Writing into the array in place raises numpy's ``ValueError``.

        >>> import semirad as sr
        >>> w = sr.tensor([1.0, 2.0], requires_grad=True)
        >>> loss = (w * w).sum()
        >>> w.data = np.array([100.0, 2.0])
        >>> sr.grad(loss, [w])[0].tolist()
        [2.0, 4.0]
        """
        return self._data

    @data.setter
    def data(self, array) -> None:
        if isinstance(array, Tensor):
            array = array._data
        if not backend.is_array(array):
            raise TypeError(f"Tensor.data must be an array, got {type(array).__name__}")
        self._data = freeze(array)

    shape = property(lambda self: tuple(self.data.shape), doc="The array's shape.")
    ndim = property(lambda self: self.data.ndim, doc="Number of axes.")
    size = property(lambda self: int(self.data.size), doc="Number of elements.")
    dtype = property(lambda self: self.data.dtype, doc="The array's dtype.")

    @property
    def requires_grad(self) -> bool:
        """True when the tensor is a vertex of a recorded graph (a trainable leaf, or an op result)."""
        return self._node is not None

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        if self._node is not None and self._node.op is not None:
            raise RuntimeError("requires_grad can only be changed on a leaf tensor; use .detach()")
        if flag and self._node is None:
            if self.data.dtype.kind not in "fc":
                raise TypeError(f"only floating-point tensors can require grad, got dtype {self.data.dtype}")
            self._node = engine.leaf(self._data.shape, self._data.dtype, self._name)
        elif not flag:
            self._node = None

    @property
    def is_leaf(self) -> bool:
        """True unless the tensor was made by a recorded op."""
        return self._node is None or self._node.op is None

    @property
    def name(self) -> str | None:
        """An optional label, shown in paths and error messages."""
        return self._node.name if self._node is not None else self._name

    @name.setter
    def name(self, value: str | None) -> None:
        self._name = value
        if self._node is not None:
            self._node.name = value

    @property
    def grad(self):
        """The gradient that :meth:`backward` accumulated (leaves only), or None."""
        return self._node.grad if self._node is not None and self._node.op is None else None

    @grad.setter
    def grad(self, value) -> None:
        if self._node is None or self._node.op is not None:
            raise RuntimeError("only leaf tensors that require grad hold .grad")
        self._node.grad = value

    # -- conversion ---------------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The data as a numpy array (copied from the GPU if needed)."""
        return backend.to_numpy(self.data)

    def item(self) -> float:
        """The value of a one-element tensor as a Python number."""
        if self.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.numpy().reshape(()).item()

    def tolist(self):
        """The data as nested Python lists."""
        return self.numpy().tolist()

    def detach(self) -> Tensor:
        """The same data, cut from the graph."""
        return Tensor._wrap(self.data, None)

    def __array__(self, dtype=None, copy=None):
        out = self.numpy()
        return out if dtype is None else out.astype(dtype)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __bool__(self) -> bool:
        if self.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous; use .numpy().any()")
        return bool(self.numpy().reshape(()))

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        extra = f", name={self.name!r}" if self.name else ""
        extra += ", requires_grad=True" if self.requires_grad else ""
        return f"tensor({np.array2string(self.numpy(), separator=', ', prefix='tensor(')}{extra})"

    __hash__ = object.__hash__

    def __reduce_ex__(self, protocol):
        """Pickling and ``copy.deepcopy``: a leaf travels with its data, name, ``requires_grad`` and
        ``.grad`` (a copy is a new leaf of its own graph); a tensor made by a recorded op raises.

        >>> import copy, pickle
        >>> import semirad as sr
        >>> w = sr.tensor([1.0, 2.0], requires_grad=True, name="w")
        >>> pickle.loads(pickle.dumps(w))
        tensor([1., 2.], name='w', requires_grad=True)
        >>> copy.deepcopy(w * 2)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        RuntimeError: a tensor made by a recorded op (mul of shape (2,)) can't be pickled or deep-copied: ...
        """
        if not self.is_leaf:
            raise RuntimeError(
                f"a tensor made by a recorded op ({self._node.describe()}) can't be pickled or deep-copied: its "
                "graph holds functions and modules; save t.detach() (a leaf with the same data) or t.numpy() instead"
            )
        state = getattr(self, "__dict__", None)  # a subclass's own attributes (nn.Parameter's)
        return _rebuild_leaf, (type(self), self._data, self.requires_grad, self._name, self.grad, state)

    # -- autodiff -----------------------------------------------------------------------------
    def backward(self, seed=None, retain_graph: bool = False) -> None:
        """Backprop into ``.grad`` of every leaf this tensor depends on (accumulating, as PyTorch).

        A non-scalar tensor needs a ``seed`` of its own shape. Calling it twice on one graph
        raises unless the first call passed ``retain_graph=True``.
        """
        accumulate_grads(self, seed, retain_graph)

    # -- operators ----------------------------------------------------------------------------
    def __add__(self, other): return apply(E.ADD, self, other)
    def __radd__(self, other): return apply(E.ADD, other, self)
    def __sub__(self, other): return apply(E.SUB, self, other)
    def __rsub__(self, other): return apply(E.SUB, other, self)
    def __mul__(self, other): return apply(E.MUL, self, other)
    def __rmul__(self, other): return apply(E.MUL, other, self)
    def __truediv__(self, other): return apply(E.DIV, self, other)
    def __rtruediv__(self, other): return apply(E.DIV, other, self)
    def __pow__(self, other): return F.power(self, other)
    def __rpow__(self, other): return F.power(other, self)
    def __matmul__(self, other): return apply(C.MATMUL, self, other if isinstance(other, Tensor) else Tensor(other))
    def __rmatmul__(self, other): return apply(C.MATMUL, other if isinstance(other, Tensor) else Tensor(other), self)
    def __neg__(self): return apply(E.NEG, self)
    def __pos__(self): return self
    def __getitem__(self, index): return F.getitem(self, index)

    def _compare(self, other, fn):
        return Tensor(fn(self._data, other._data if isinstance(other, Tensor) else other))

    def __lt__(self, other): return self._compare(other, lambda a, b: a < b)
    def __le__(self, other): return self._compare(other, lambda a, b: a <= b)
    def __gt__(self, other): return self._compare(other, lambda a, b: a > b)
    def __ge__(self, other): return self._compare(other, lambda a, b: a >= b)
    def __eq__(self, other): return self._compare(other, lambda a, b: a == b)
    def __ne__(self, other): return self._compare(other, lambda a, b: a != b)

    # -- methods ------------------------------------------------------------------------------
    def exp(self): return apply(E.EXP, self)
    def log(self): return apply(E.LOG, self)
    def tanh(self): return apply(E.TANH, self)
    def sigmoid(self): return apply(E.SIGMOID, self)
    def relu(self): return apply(E.RELU, self)
    def abs(self): return apply(E.ABS, self)
    def sqrt(self): return apply(E.SQRT, self)
    def sin(self): return apply(E.SIN, self)
    def cos(self): return apply(E.COS, self)
    def clip(self, min=None, max=None): return F.clip(self, min, max)  # noqa: A002
    def sum(self, axis=None, keepdims=False): return F.sum(self, axis, keepdims)
    def mean(self, axis=None, keepdims=False): return F.mean(self, axis, keepdims)
    def max(self, axis=None, keepdims=False): return F.max(self, axis, keepdims)
    def min(self, axis=None, keepdims=False): return F.min(self, axis, keepdims)
    def logsumexp(self, axis=None, keepdims=False): return F.logsumexp(self, axis, keepdims)
    def softmax(self, axis=-1): return F.softmax(self, axis)
    def log_softmax(self, axis=-1): return F.log_softmax(self, axis)
    def reshape(self, *shape): return F.reshape(self, *shape)
    def transpose(self, *dims) -> Tensor:
        """Swap two axes, as PyTorch's ``transpose(dim0, dim1)`` (on a 2-D tensor too: ``(0, 1)``
        transposes it). Other forms follow numpy: no argument reverses the axes, a tuple (or three
        or more axes) is a permutation; :meth:`permute` says that explicitly.

        >>> import semirad as sr
        >>> x = sr.tensor([[1.0, 2.0, 3.0]])
        >>> x.transpose(0, 1).shape, x.transpose(1, 0).shape, x.transpose().shape
        ((3, 1), (3, 1), (3, 1))
        >>> sr.tensor(np.zeros((2, 3, 4))).transpose(0, 2).shape
        (4, 3, 2)
        """
        if len(dims) == 2 and all(isinstance(d, (int, np.integer)) for d in dims):
            return F.swapaxes(self, *dims)
        return F.transpose(self, *dims)

    def permute(self, *dims) -> Tensor:
        """Reorder the axes, as PyTorch's ``permute``: ``dims[i]`` is the input axis that becomes axis ``i``.

        >>> import semirad as sr
        >>> sr.tensor(np.zeros((2, 3, 4))).permute(2, 0, 1).shape
        (4, 2, 3)
        """
        return F.transpose(self, *dims)

    def swapaxes(self, axis1, axis2): return F.swapaxes(self, axis1, axis2)
    def expand_dims(self, axis): return F.expand_dims(self, axis)
    def squeeze(self, axis=None): return F.squeeze(self, axis)
    def broadcast_to(self, shape): return F.broadcast_to(self, shape)

    @property
    def T(self) -> Tensor:
        """The tensor with its axes reversed."""
        return F.transpose(self)


register_tensor_type(Tensor)


def seed_array(output: Tensor, seed) -> Any:
    """The seed of a sweep from ``output`` as a new array of its shape and dtype: ones for a
    one-element output, else ``seed`` (required), checked.

    >>> import semirad as sr
    >>> seed_array(sr.tensor([[2.0]]), None).tolist()
    [[1.0]]
    """
    xp = backend.namespace(output.data)
    if seed is None:
        if output.size != 1:
            raise ValueError(
                f"backward from a non-scalar output of shape {output.shape} needs an explicit seed of that shape"
            )
        return xp.ones(output.shape, dtype=output.dtype)
    seed = seed.data if isinstance(seed, Tensor) else seed
    seed = xp.array(seed, dtype=output.dtype)  # a copy: results read it after the call
    if tuple(seed.shape) != output.shape:
        raise ValueError(f"seed of shape {tuple(seed.shape)} does not match the output's shape {output.shape}")
    return seed


def accumulate_grads(output: Tensor, seed=None, retain_graph: bool = False) -> None:
    """``Tensor.backward``: SumProduct into ``.grad`` of every leaf that requires grad.

    >>> import semirad as sr
    >>> w = sr.tensor([1.0, 2.0], requires_grad=True)
    >>> accumulate_grads((w * w).sum()); w.grad.tolist()
    [2.0, 4.0]
    """
    if output._node is None:
        raise RuntimeError(
            f"backward() on a tensor of shape {output.shape} that is not part of a recorded graph "
            "(no input requires grad, or it was computed under no_grad())"
        )
    seed = seed_array(output, seed)
    graph = engine.ancestors(output._node)
    leaves = [n for n in graph if n.op is None]
    sweep = engine.sweep(output._node, leaves, seed, SumProduct(), mark_consumed=not retain_graph, graph=graph)
    result = Result(sweep)
    values = [result.semiring.to_array(sweep.values[node], node.dtype) for node in leaves]
    taken = set()
    with _accumulating:  # one read-add-write per leaf, as PyTorch's AccumulateGrad: no update lost to another thread
        for node, value in zip(leaves, values):
            if node.grad is not None:
                node.grad = node.grad + value
            elif _unshared(value, taken):
                node.grad = value
            else:
                node.grad = value.copy()


def _unshared(value, taken: set) -> bool:
    """Whether a sweep's value can become a ``.grad`` as it is: an array that owns its memory and is
    writable (so no view, no broadcast, no op's frozen forward array) and that no other leaf took."""
    if getattr(value, "base", 0) is not None or not value.flags.writeable or id(value) in taken:
        return False
    taken.add(id(value))
    return True


_accumulating = threading.Lock()


def _rebuild_leaf(cls, data, requires_grad: bool, name, grad, state) -> Tensor:
    """A leaf tensor from what :meth:`Tensor.__reduce_ex__` saved."""
    t = _new(cls)
    t._data = freeze(data)
    t._node = None
    t._name = name
    if state:
        t.__dict__.update(state)
    if requires_grad:
        t.requires_grad = True
        t._node.grad = grad
    return t


def tensor(data: Any, requires_grad: bool = False, name: str | None = None, dtype=None) -> Tensor:
    """Make a tensor from an array, a nested list or a number (numpy input keeps its dtype).

    >>> import semirad as sr
    >>> sr.tensor(np.zeros(3, dtype=np.float32), requires_grad=True, name="b").dtype
    dtype('float32')
    """
    return Tensor(data, requires_grad=requires_grad, name=name, dtype=dtype)
