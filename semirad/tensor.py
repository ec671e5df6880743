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
from .ops import index as I
from .ops import methods as M
from .ops import scan as SCAN
from .ops import selection as SELECT
from .ops import special as SPECIAL
from .ops.core import OpError, OpIndexError, apply, register_tensor_type
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

    def __init__(self, data: Any, requires_grad: bool = False, name: str | None = None, dtype=None, device=None):
        if isinstance(data, Tensor):
            data = data.data
        xp = backend.namespace(data) if backend.is_array(data) else np
        with backend.device_scope(data):  # (cupy copies onto the current GPU, not the array's)
            data = xp.array(data, dtype=dtype)  # a copy, as torch.tensor
        if device is not None:
            data = backend.to_device(data, device)
        self._data = freeze(data)
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
        the values they saw. Writing into the array in place raises numpy's ``ValueError``. A leaf
        that requires grad may take an array of another shape or dtype, as in PyTorch: it becomes
        a new leaf of that shape (same name, no ``.grad``; graphs recorded before keep the old one).
        A tensor an op computed keeps its shape and dtype (the graph's ops were recorded with them).

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
        array = freeze(array)
        node = self._node
        if node is not None and (tuple(array.shape) != node.shape or array.dtype != node.dtype):
            if node.op is not None:
                raise ValueError(
                    f"Tensor.data: this tensor was computed by {node.describe()} of dtype {node.dtype}; "
                    f"its data must keep that shape and dtype, got shape {tuple(array.shape)} and dtype "
                    f"{array.dtype} (detach() it first for a tensor of its own)"
                )
            self._node = engine.leaf(array.shape, array.dtype, node.name)  # (the old leaf stays in older graphs)
        self._data = array

    shape = property(lambda self: tuple(self._data.shape), doc="The array's shape.")

    @property
    def device(self) -> backend.Device:
        """Where the data lives: ``device(type='cpu')`` for a numpy array, ``cuda:N`` for a cupy array
        on GPU ``N`` (a :class:`semirad.backend.Device`, equal to its string).

        >>> import semirad as sr
        >>> sr.tensor([1.0]).device, sr.tensor([1.0]).device == "cpu"
        (device(type='cpu'), True)
        """
        return backend.device_of(self._data)

    ndim = property(lambda self: self._data.ndim, doc="Number of axes.")
    dtype = property(lambda self: self._data.dtype, doc="The array's dtype.")

    def size(self, dim: int | None = None):
        """The shape as a tuple (PyTorch's ``torch.Size``), or the length of axis ``dim``.

        >>> import semirad as sr
        >>> x = sr.tensor(np.zeros((2, 3)))
        >>> x.size(), x.size(1), x.size(-1), x.numel(), x.dim()
        ((2, 3), 3, 3, 6, 2)
        """
        if dim is None:
            return tuple(self._data.shape)
        if not self.ndim:
            raise OpIndexError(f"Tensor.size: a 0-d tensor has no dimension {dim} (shape ())")
        return self._data.shape[M.one_dim("size", dim, self.shape)]

    def numel(self) -> int:
        """The number of elements (numpy's ``.size``)."""
        return int(self._data.size)

    def nelement(self) -> int:
        """The number of elements (PyTorch's other name of :meth:`numel`)."""
        return int(self._data.size)

    def dim(self) -> int:
        """The number of axes (PyTorch's name of :attr:`ndim`)."""
        return self._data.ndim

    def ndimension(self) -> int:
        """The number of axes (PyTorch's other name of :meth:`dim`)."""
        return self._data.ndim

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
        if self._data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.numpy().reshape(()).item()

    def tolist(self):
        """The data as nested Python lists."""
        return self.numpy().tolist()

    def detach(self) -> Tensor:
        """The same data, cut from the graph."""
        return Tensor._wrap(self.data, None)

    def clone(self) -> Tensor:
        """A copy that stays in the graph (an identity op, ``clone``), as PyTorch's.

        >>> import semirad as sr
        >>> w = sr.tensor([1.0, 2.0], requires_grad=True)
        >>> c = w.clone()
        >>> c.requires_grad, c.is_leaf
        (True, False)
        """
        return M.clone(self)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set :attr:`requires_grad` in place and return the tensor, as PyTorch's.

        >>> import semirad as sr
        >>> sr.tensor([1.0]).requires_grad_().requires_grad
        True
        """
        self.requires_grad = requires_grad
        return self

    def to(self, *args, dtype=None, device=None, copy: bool = False, non_blocking: bool = False) -> Tensor:
        """The tensor with another dtype or on another device, as PyTorch's ``to(dtype)`` /
        ``to(other)`` / ``to(device, dtype)``: a floating-point cast is recorded (gradients flow back
        through it), an integer or bool one is a constant. ``torch`` dtypes are taken by name.
        Devices are ``"cpu"`` (numpy), ``"cuda"`` (cupy's current GPU) and ``"cuda:N"``
        (:class:`semirad.backend.Device`); ``to(other)`` takes ``other``'s dtype and device. A move
        copies the data: a leaf becomes a new leaf with the same name and ``requires_grad`` (move
        parameters and inputs before the forward); a tensor made by a recorded op can't move, since
        a sweep runs on one device. Without a change (and ``copy=False``) it returns the tensor itself.

        >>> import semirad as sr
        >>> x = sr.tensor([1.0, 2.0], requires_grad=True)
        >>> x.to(np.float32).dtype, x.to("cpu") is x, x.to("cpu", "float16").dtype
        (dtype('float32'), True, dtype('float16'))
        """
        dtype, device = to_arguments(args, dtype, device)
        out = self
        if device is not None and backend.Device(device) != self.device:
            out = self._moved(backend.Device(device))
            copy = False
        if dtype is None or (M.as_dtype(dtype) == out.dtype and not copy):
            return M.clone(out) if copy else out
        return M.astype(out, dtype)

    def _moved(self, device) -> Tensor:
        """A copy of this leaf on ``device``: a new leaf with the same name, ``requires_grad`` and
        subclass (an ``nn.Parameter`` stays one)."""
        if not self.is_leaf:
            raise RuntimeError(
                f"Tensor.to({str(device)!r}): a tensor made by a recorded op ({self._node.describe()}, on "
                f"{self.device}) can't move between devices, since a sweep runs on one device: move the "
                "leaves (parameters, inputs) before the forward, or move t.detach()"
            )
        t = _new(type(self))
        t._data = freeze(backend.to_device(self._data, device))
        t._node = None
        t._name = self._name
        state = getattr(self, "__dict__", None)
        if state:
            t.__dict__.update(state)
        if self.requires_grad:
            t.requires_grad = True
            t.name = self.name
        return t

    def cpu(self) -> Tensor:
        """The tensor on the host (numpy), as PyTorch's ``cpu()``: itself where it is there already.

        >>> import semirad as sr
        >>> x = sr.tensor([1.0])
        >>> x.cpu() is x
        True
        """
        return self.to("cpu")

    def cuda(self, device=None) -> Tensor:
        """The tensor on GPU ``device`` (an index or ``"cuda:N"``; cupy's current GPU when None), as
        PyTorch's ``cuda()``; see :meth:`to`."""
        if device is None:
            device = "cuda"
        elif isinstance(device, int):
            device = f"cuda:{device}"
        return self.to(device)

    def float(self) -> Tensor:
        """Cast to float32 (recorded, as PyTorch's ``float()``); see :meth:`to`.

        >>> import semirad as sr
        >>> sr.tensor([1.0]).float().dtype, sr.tensor([1.0]).double().dtype, sr.tensor([1.0]).half().dtype
        (dtype('float32'), dtype('float64'), dtype('float16'))
        """
        return self.to(np.float32)

    def double(self) -> Tensor:
        """Cast to float64 (recorded); see :meth:`to`."""
        return self.to(np.float64)

    def half(self) -> Tensor:
        """Cast to float16 (recorded); see :meth:`to`."""
        return self.to(np.float16)

    def int(self) -> Tensor:
        """Cast to int32 (a constant: no gradient), as PyTorch's ``int()``.

        >>> import semirad as sr
        >>> sr.tensor([1.7, -1.7]).int().tolist(), sr.tensor([2.0]).long().dtype, sr.tensor([0.0, 2.0]).bool().tolist()
        ([1, -1], dtype('int64'), [False, True])
        """
        return self.to(np.int32)

    def long(self) -> Tensor:
        """Cast to int64 (a constant); see :meth:`to`."""
        return self.to(np.int64)

    def bool(self) -> Tensor:
        """Cast to bool (a constant); see :meth:`to`."""
        return self.to(np.bool_)

    def __float__(self):
        """``float(t)`` of a one-element tensor (PyTorch's rule)."""
        return float(self._scalar())

    def __int__(self):
        """``int(t)`` of a one-element tensor, truncated toward zero (PyTorch's rule)."""
        return int(self._scalar())

    def _scalar(self):
        if self._data.size != 1:
            raise ValueError(
                f"only one element tensors can be converted to Python scalars (got shape {self.shape})"
            )
        return self.numpy().reshape(()).item()

    def __array__(self, dtype=None, copy=None):
        out = self.numpy()
        return out if dtype is None else out.astype(dtype)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __bool__(self) -> bool:
        if self._data.size != 1:
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

    def clamp(self, min=None, max=None) -> Tensor:  # noqa: A002
        """Clamp to ``[min, max]`` (PyTorch's name of :meth:`clip`).

        >>> import semirad as sr
        >>> sr.tensor([-2.0, 0.5, 3.0]).clamp(min=0.0, max=1.0).tolist()
        [0.0, 0.5, 1.0]
        """
        return F.clip(self, min, max)

    def add(self, other, *, alpha=1) -> Tensor:
        """``self + alpha * other``, as PyTorch's ``add``.

        >>> import semirad as sr
        >>> sr.tensor([1.0]).add(2.0, alpha=3).tolist(), sr.tensor([1.0]).sub(2.0).tolist()
        ([7.0], [-1.0])
        """
        return self + (other if alpha == 1 else other * alpha)

    def sub(self, other, *, alpha=1) -> Tensor:
        """``self - alpha * other``, as PyTorch's ``sub``."""
        return self - (other if alpha == 1 else other * alpha)

    def mul(self, other) -> Tensor:
        """``self * other``.

        >>> import semirad as sr
        >>> sr.tensor([3.0]).mul(2.0).tolist(), sr.tensor([3.0]).div(2.0).tolist(), sr.tensor([3.0]).pow(2).tolist()
        ([6.0], [1.5], [9.0])
        """
        return self * other

    def div(self, other) -> Tensor:
        """``self / other`` (true division)."""
        return self / other

    def pow(self, exponent) -> Tensor:
        """``self ** exponent``."""
        return F.power(self, exponent)

    def neg(self) -> Tensor:
        """``-self``."""
        return apply(E.NEG, self)

    def matmul(self, other) -> Tensor:
        """``self @ other``."""
        return self @ other

    def where(self, condition, other) -> Tensor:
        """``self`` where ``condition`` else ``other``, as PyTorch's ``x.where(condition, y)``.

        >>> import semirad as sr
        >>> x = sr.tensor([1.0, 2.0])
        >>> x.where(x > 1.5, 0.0).tolist(), x.masked_fill(x > 1.5, -1.0).tolist()
        ([0.0, 2.0], [1.0, -1.0])
        """
        return F.where(condition, self, other)

    def masked_fill(self, mask, value) -> Tensor:
        """``value`` where the bool ``mask`` (broadcast) is True, else ``self`` (a ``where``)."""
        return F.where(mask, value, self)

    # -- reductions: PyTorch's dim/keepdim, or numpy's axis/keepdims (one of the two) ---------------
    def sum(self, dim=None, keepdim=None, *, axis=None, keepdims=None, dtype=None) -> Tensor:
        """Sum over ``dim`` (an int, a tuple, or None/``()`` for every axis), as PyTorch's.

        >>> import semirad as sr
        >>> x = sr.tensor([[1.0, 2.0], [3.0, 4.0]])
        >>> x.sum(dim=1).tolist(), x.sum(axis=0, keepdims=True).tolist(), x.sum().item()
        ([3.0, 7.0], [[4.0, 6.0]], 10.0)
        """
        dim, keepdim = M.reduction_args("sum", dim, keepdim, axis, keepdims)
        return M.reduce(I.SUM, "sum", self._cast(dtype), dim, keepdim)

    def mean(self, dim=None, keepdim=None, *, axis=None, keepdims=None, dtype=None) -> Tensor:
        """Mean over ``dim``.

        >>> import semirad as sr
        >>> sr.tensor([[1.0, 2.0], [3.0, 4.0]]).mean(dim=(0, 1), keepdim=True).tolist()
        [[2.5]]
        """
        dim, keepdim = M.reduction_args("mean", dim, keepdim, axis, keepdims)
        return M.reduce(I.MEAN, "mean", self._cast(dtype), dim, keepdim)

    def max(self, dim=None, keepdim=None, *, axis=None, keepdims=None):
        """As PyTorch's: ``x.max()`` is the largest element (ties share the gradient evenly);
        ``x.max(dim)`` is a named tuple ``(values, indices)`` (the first largest element of each
        slice gets the gradient); ``x.max(other)`` with a tensor is the elementwise maximum.
        :meth:`amax` reduces several dims and returns values only.

        >>> import semirad as sr
        >>> x = sr.tensor([[1.0, 5.0], [7.0, 2.0]])
        >>> x.max().item(), x.max(1).values.tolist(), x.max(dim=1).indices.tolist()
        (7.0, [5.0, 7.0], [1, 0])
        """
        if isinstance(dim, Tensor) or backend.is_array(dim):
            return F.maximum(self, dim)
        dim, keepdim = M.reduction_args("max", dim, keepdim, axis, keepdims)
        return M.extremum(self, "max", dim, keepdim)

    def min(self, dim=None, keepdim=None, *, axis=None, keepdims=None):
        """As :meth:`max`, for the smallest elements.

        >>> import semirad as sr
        >>> values, indices = sr.tensor([[1.0, 5.0], [7.0, 2.0]]).min(0)
        >>> values.tolist(), indices.tolist()
        ([1.0, 2.0], [0, 1])
        """
        if isinstance(dim, Tensor) or backend.is_array(dim):
            return F.minimum(self, dim)
        dim, keepdim = M.reduction_args("min", dim, keepdim, axis, keepdims)
        return M.extremum(self, "min", dim, keepdim)

    def amax(self, dim=None, keepdim=None, *, axis=None, keepdims=None) -> Tensor:
        """The largest values over ``dim`` (any number of dims); ties share the gradient evenly.

        >>> import semirad as sr
        >>> sr.tensor([[1.0, 5.0], [7.0, 2.0]]).amax(dim=0).tolist()
        [7.0, 5.0]
        """
        dim, keepdim = M.reduction_args("amax", dim, keepdim, axis, keepdims)
        return M.reduce(I.MAX, "amax", self, dim, keepdim)

    def amin(self, dim=None, keepdim=None, *, axis=None, keepdims=None) -> Tensor:
        """The smallest values over ``dim``; ties share the gradient evenly."""
        dim, keepdim = M.reduction_args("amin", dim, keepdim, axis, keepdims)
        return M.reduce(I.MIN, "amin", self, dim, keepdim)

    def logsumexp(self, dim=None, keepdim=None, *, axis=None, keepdims=None) -> Tensor:
        """``log(sum(exp(x)))`` over ``dim``, computed stably (every axis when None).

        >>> import semirad as sr
        >>> round(sr.tensor([[0.0, 0.0]]).logsumexp(dim=1).item(), 4)
        0.6931
        """
        dim, keepdim = M.reduction_args("logsumexp", dim, keepdim, axis, keepdims)
        return M.reduce(I.LOGSUMEXP, "logsumexp", self, dim, keepdim)

    def softmax(self, dim=None, dtype=None, *, axis=None) -> Tensor:
        """Softmax over ``dim`` (the last axis when None; PyTorch requires it), optionally after a
        cast to ``dtype``; a composite ``exp(x - logsumexp(x))``.

        >>> import semirad as sr
        >>> sr.tensor([[0.0, 0.0]]).softmax(dim=-1).tolist()
        [[0.5, 0.5]]
        """
        dim = M.reduction_args("softmax", dim, None, axis, None)[0]
        return M.softmax(self, "softmax", dim, dtype)

    def log_softmax(self, dim=None, dtype=None, *, axis=None) -> Tensor:
        """``x - logsumexp(x)`` over ``dim`` (the last axis when None).

        >>> import semirad as sr
        >>> round(sr.tensor([0.0, 0.0]).log_softmax(0)[0].item(), 4)
        -0.6931
        """
        dim = M.reduction_args("log_softmax", dim, None, axis, None)[0]
        return M.softmax(self, "log_softmax", dim, dtype)

    def var(self, dim=None, unbiased=None, keepdim=None, *, correction=None, axis=None, keepdims=None) -> Tensor:
        """Variance over ``dim``, divided by ``N - correction`` (default 1, Bessel's; ``unbiased=False``
        is ``correction=0``), as PyTorch's; ``x.var(False)`` is PyTorch's one-argument form.

        >>> import semirad as sr
        >>> x = sr.tensor([[1.0, 3.0], [2.0, 6.0]])
        >>> x.var(dim=1).tolist(), x.var(1, unbiased=False).tolist(), x.std(correction=0, axis=0).tolist()
        ([2.0, 8.0], [1.0, 4.0], [0.5, 1.5])
        """
        if isinstance(dim, bool):
            dim, unbiased = None, dim
        dim, keepdim = M.reduction_args("var", dim, keepdim, axis, keepdims)
        return M.variance(self, "var", dim, M.correction_arg("var", unbiased, correction), keepdim)

    def std(self, dim=None, unbiased=None, keepdim=None, *, correction=None, axis=None, keepdims=None) -> Tensor:
        """``sqrt(var(...))`` with :meth:`var`'s arguments; its gradient is 0 where it is 0, as PyTorch's."""
        if isinstance(dim, bool):
            dim, unbiased = None, dim
        dim, keepdim = M.reduction_args("std", dim, keepdim, axis, keepdims)
        return M.standard_deviation(self, "std", dim, M.correction_arg("std", unbiased, correction), keepdim)

    def norm(self, p="fro", dim=None, keepdim=None, dtype=None, *, axis=None, keepdims=None) -> Tensor:
        """The vector ``p``-norm over ``dim`` (all elements when None), as PyTorch's: ``p`` ``"fro"``
        or 2 (the default), 1, ``inf``, ``-inf`` or any positive number. Where the norm is 0 its
        gradient is 0 (PyTorch's subgradient).

        >>> import semirad as sr
        >>> x = sr.tensor([[3.0, 4.0], [0.0, -1.0]])
        >>> round(x.norm().item() ** 2, 9), x.norm(dim=1).tolist(), x.norm(p=1, axis=0).tolist()
        (26.0, [5.0, 1.0], [3.0, 5.0])
        """
        dim, keepdim = M.reduction_args("norm", dim, keepdim, axis, keepdims)
        return M.norm(self._cast(dtype), p, dim, keepdim)

    def prod(self, dim=None, keepdim=None, *, axis=None, keepdims=None, dtype=None) -> Tensor:
        """Product over one ``dim`` (every element when None), as PyTorch's: a tree of pairwise
        products, so each element's gradient is the exact product of the others (zeros included).

        >>> import semirad as sr
        >>> sr.tensor([[1.0, 2.0], [3.0, 4.0]]).prod(dim=1).tolist(), sr.tensor([2.0, 0.0, 5.0]).prod().item()
        ([2.0, 12.0], 0.0)
        """
        dim, keepdim = M.reduction_args("prod", dim, keepdim, axis, keepdims)
        return M.product(self._cast(dtype), dim, keepdim)

    def _cast(self, dtype) -> Tensor:
        return self if dtype is None else M.astype(self, dtype)

    # -- shapes ---------------------------------------------------------------------------------
    def reshape(self, *shape): return F.reshape(self, *shape)

    def view(self, *shape) -> Tensor:
        """The elements in a new shape (ints or one tuple, one ``-1`` inferred), as PyTorch's ``view``.
        Arrays here are read-only, so a view and a copy can't be told apart: ``view`` is a reshape,
        also where PyTorch would refuse a non-contiguous layout. ``view(dtype)`` is not supported.

        >>> import semirad as sr
        >>> sr.tensor(np.zeros((2, 3))).view(3, 2).shape, sr.tensor(np.zeros((2, 3))).view((-1,)).shape
        ((3, 2), (6,))
        """
        return M.view(self, shape)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Merge the axes ``start_dim..end_dim`` into one, as PyTorch's.

        >>> import semirad as sr
        >>> sr.tensor(np.zeros((2, 3, 4))).flatten(1).shape, sr.tensor(np.zeros((2, 3, 4))).flatten().shape
        ((2, 12), (24,))
        """
        return M.flatten(self, start_dim, end_dim)

    def unsqueeze(self, dim: int) -> Tensor:
        """Insert an axis of length 1 at ``dim`` (``-1`` appends), as PyTorch's.

        >>> import semirad as sr
        >>> sr.tensor(np.zeros((2, 3))).unsqueeze(1).shape, sr.tensor(np.zeros((2, 3))).unsqueeze(-1).shape
        ((2, 1, 3), (2, 3, 1))
        """
        return F.expand_dims(self, M.one_dim("unsqueeze", dim, self.shape, extra=1))

    def squeeze(self, dim=None) -> Tensor:
        """Remove the axes of length 1 (those of ``dim``, an int or a tuple, when given); an axis of
        ``dim`` that is not of length 1 stays, as PyTorch's (``sr.squeeze``, numpy's, raises).

        >>> import semirad as sr
        >>> x = sr.tensor(np.zeros((2, 1, 3)))
        >>> x.squeeze().shape, x.squeeze(1).shape, x.squeeze(0).shape
        ((2, 3), (2, 3), (2, 1, 3))
        """
        return M.squeeze(self, dim)

    def t(self) -> Tensor:
        """The transpose of a matrix; a 0-D or 1-D tensor is returned as it is (PyTorch's rule).

        >>> import semirad as sr
        >>> sr.tensor(np.zeros((2, 3))).t().shape
        (3, 2)
        """
        if self.ndim > 2:
            raise OpError(f"Tensor.t: expects a tensor with <= 2 dimensions, got shape {self.shape} (use transpose)")
        return F.transpose(self)

    def expand(self, *sizes) -> Tensor:
        """Broadcast to ``sizes`` (``-1`` keeps an axis, new axes go in front), as PyTorch's.

        >>> import semirad as sr
        >>> sr.tensor(np.zeros((3, 1))).expand(2, -1, 4).shape
        (2, 3, 4)
        """
        return M.expand(self, M.sizes_argument(sizes))

    def expand_as(self, other) -> Tensor:
        """:meth:`expand` to ``other``'s shape."""
        return M.expand(self, tuple(other.shape))

    def repeat(self, *sizes) -> Tensor:
        """Tile the tensor ``sizes[i]`` times along each axis, as PyTorch's ``repeat`` (numpy's
        ``tile``; numpy's ``repeat`` is another thing).

        >>> import semirad as sr
        >>> sr.tensor([1.0, 2.0]).repeat(2, 2).tolist()
        [[1.0, 2.0, 1.0, 2.0], [1.0, 2.0, 1.0, 2.0]]
        """
        return M.repeat(self, M.sizes_argument(sizes))

    def chunk(self, chunks: int, dim: int = 0) -> tuple:
        """At most ``chunks`` pieces of equal size (the last may be smaller) along ``dim``, as PyTorch's.

        >>> import semirad as sr
        >>> [c.tolist() for c in sr.tensor([1.0, 2.0, 3.0, 4.0, 5.0]).chunk(2)]
        [[1.0, 2.0, 3.0], [4.0, 5.0]]
        """
        return M.chunk(self, chunks, dim)

    def split(self, split_size, dim: int = 0) -> tuple:
        """Pieces of ``split_size`` along ``dim`` (the last may be smaller), or of the sizes listed, as
        PyTorch's (numpy's ``split`` takes a number of pieces or cut points instead).

        >>> import semirad as sr
        >>> x = sr.tensor([1.0, 2.0, 3.0])
        >>> [p.tolist() for p in x.split(2)], [p.tolist() for p in x.split([1, 2])]
        ([[1.0, 2.0], [3.0]], [[1.0], [2.0, 3.0]])
        """
        return M.split(self, split_size, dim)

    def unbind(self, dim: int = 0) -> tuple:
        """The slices along ``dim``, as a tuple.

        >>> import semirad as sr
        >>> [t.tolist() for t in sr.tensor([[1.0, 2.0], [3.0, 4.0]]).unbind(1)]
        [[1.0, 3.0], [2.0, 4.0]]
        """
        return M.unbind(self, dim)

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
        return M.permute(self, dims)

    # -- in-place methods: PyTorch's rules (see docs/models.md, "Tensor methods") -------------------
    def add_(self, other, *, alpha=1) -> Tensor:
        """``self += alpha * other`` in place, as PyTorch's: refused on a leaf that requires grad
        while ops record; under ``sr.no_grad()`` (an optimizer step) the tensor gets a new array and
        stays the same leaf; on any other tensor the result is recorded and the tensor becomes it
        (graphs recorded before keep the values they saw).

        >>> import semirad as sr
        >>> w = sr.tensor([1.0, 2.0], requires_grad=True)
        >>> with sr.no_grad():
        ...     _ = w.sub_(0.5 * np.ones(2))
        >>> w.tolist(), w.is_leaf
        ([0.5, 1.5], True)
        """
        M.check_inplace(self, "add_")
        return M.assign_inplace(self, self.add(other, alpha=alpha), "add_")

    def sub_(self, other, *, alpha=1) -> Tensor:
        """``self -= alpha * other`` in place (:meth:`add_`'s rules)."""
        M.check_inplace(self, "sub_")
        return M.assign_inplace(self, self.sub(other, alpha=alpha), "sub_")

    def mul_(self, other) -> Tensor:
        """``self *= other`` in place (:meth:`add_`'s rules).

        >>> import semirad as sr
        >>> x = sr.tensor([1.0, 2.0])
        >>> x.mul_(3.0).div_(2.0).tolist()
        [1.5, 3.0]
        """
        M.check_inplace(self, "mul_")
        return M.assign_inplace(self, self * other, "mul_")

    def div_(self, other) -> Tensor:
        """``self /= other`` in place (:meth:`add_`'s rules)."""
        M.check_inplace(self, "div_")
        return M.assign_inplace(self, self / other, "div_")

    def pow_(self, exponent) -> Tensor:
        """``self **= exponent`` in place (:meth:`add_`'s rules)."""
        M.check_inplace(self, "pow_")
        return M.assign_inplace(self, F.power(self, exponent), "pow_")

    def clamp_(self, min=None, max=None) -> Tensor:  # noqa: A002
        """Clamp in place (:meth:`add_`'s rules).

        >>> import semirad as sr
        >>> sr.tensor([-1.0, 3.0]).clamp_(0.0, 1.0).tolist()
        [0.0, 1.0]
        """
        M.check_inplace(self, "clamp_")
        return M.assign_inplace(self, F.clip(self, min, max), "clamp_")

    def clip_(self, min=None, max=None) -> Tensor:  # noqa: A002
        """:meth:`clamp_` by its other name."""
        M.check_inplace(self, "clip_")
        return M.assign_inplace(self, F.clip(self, min, max), "clip_")

    def masked_fill_(self, mask, value) -> Tensor:
        """:meth:`masked_fill` in place (:meth:`add_`'s rules).

        >>> import semirad as sr
        >>> x = sr.tensor([1.0, 2.0])
        >>> x.masked_fill_(np.array([True, False]), 0.0).tolist()
        [0.0, 2.0]
        """
        M.check_inplace(self, "masked_fill_")
        return M.assign_inplace(self, self.masked_fill(mask, value), "masked_fill_")

    def fill_(self, value) -> Tensor:
        """Set every element to ``value`` in place (:meth:`add_`'s rules; recorded as a ``where``
        whose edges from the old values weigh 0, so nothing flows back to them, as PyTorch's).

        >>> import semirad as sr
        >>> w = sr.tensor([1.0, 2.0], requires_grad=True)
        >>> with sr.no_grad():
        ...     _ = w.fill_(0.5)
        >>> w.tolist()
        [0.5, 0.5]
        """
        M.check_inplace(self, "fill_")
        xp = backend.namespace(self._data)
        return M.assign_inplace(self, F.where(xp.zeros(self.shape, dtype=bool), self, value), "fill_")

    def zero_(self) -> Tensor:
        """:meth:`fill_` with 0.

        >>> import semirad as sr
        >>> sr.tensor([1.0, 2.0]).zero_().tolist()
        [0.0, 0.0]
        """
        M.check_inplace(self, "zero_")
        return self.fill_(0)

    def copy_(self, src) -> Tensor:
        """Take ``src``'s values (broadcast to this shape, cast to this dtype) in place (:meth:`add_`'s
        rules); gradients of later uses flow to ``src``, as PyTorch's.

        >>> import semirad as sr
        >>> sr.tensor([[1.0, 2.0], [3.0, 4.0]]).copy_(sr.tensor([5.0, 6.0])).tolist()
        [[5.0, 6.0], [5.0, 6.0]]
        """
        M.check_inplace(self, "copy_")
        src = src if isinstance(src, Tensor) else Tensor(src)
        if src.shape != self.shape:
            try:
                shape = np.broadcast_shapes(src.shape, self.shape)
            except ValueError:
                shape = None
            if shape != self.shape:
                raise RuntimeError(f"copy_: source of shape {src.shape} does not broadcast to the shape {self.shape}")
            return M.assign_inplace(self, F.broadcast_to(src, self.shape), "copy_")
        return M.assign_inplace(self, M.clone(src), "copy_")

    def __iadd__(self, other): return self.add_(other)
    def __isub__(self, other): return self.sub_(other)
    def __imul__(self, other): return self.mul_(other)
    def __itruediv__(self, other): return self.div_(other)

    def swapaxes(self, axis1, axis2): return F.swapaxes(self, axis1, axis2)
    def expand_dims(self, axis): return F.expand_dims(self, axis)
    def broadcast_to(self, shape): return F.broadcast_to(self, shape)

    # -- ops of issue 21: erf, cumsum, sort/topk/argsort, argmax/argmin, gather (PyTorch's names) ------
    def erf(self) -> Tensor:
        """The error function, elementwise (``torch.erf``); partial ``2/sqrt(pi) exp(-x**2)``.

        >>> import semirad as sr
        >>> round(sr.tensor([0.5]).erf().item(), 6)
        0.5205
        """
        return apply(SPECIAL.ERF, self)

    def cumsum(self, dim=None, dtype=None, *, axis=None) -> Tensor:
        """Cumulative sum along ``dim`` (``torch.cumsum``; numpy's name ``axis`` too), of the tensor cast
        to ``dtype`` first if given: each element feeds every later output along ``dim`` with weight 1.

        >>> import semirad as sr
        >>> sr.tensor([[1.0, 2.0, 3.0]]).cumsum(1).tolist()
        [[1.0, 3.0, 6.0]]
        """
        dim = M.reduction_args("cumsum", dim, None, axis, None)[0]
        if dim is None:
            raise TypeError("Tensor.cumsum() missing the dim to sum along")
        return SCAN.cumsum_dim(self if dtype is None else M.astype(self, dtype), dim)

    def sort(self, dim: int = -1, descending: bool = False, *, stable: bool = False):
        """``(values, indices)`` sorted along ``dim``, as ``torch.sort`` (always stable: ties keep their
        order; NaN sorts above every number). The values are differentiable (one edge of weight 1 from
        each element to where it lands), the indices an integer tensor.

        >>> import semirad as sr
        >>> sr.tensor([3.0, 1.0, 2.0]).sort(descending=True)
        sort(values=tensor([3., 2., 1.]), indices=tensor([0, 2, 1]))
        """
        return SELECT.sort_with_indices(self, dim, descending)

    def argsort(self, dim: int = -1, descending: bool = False, *, stable: bool = False) -> Tensor:
        """The indices that sort along ``dim``, as ``torch.argsort`` (stable).

        >>> import semirad as sr
        >>> sr.tensor([3.0, 1.0, 2.0]).argsort().tolist()
        [1, 2, 0]
        """
        return SELECT.argsort_dim(self, dim, descending)

    def topk(self, k: int, dim: int | None = None, largest: bool = True, sorted: bool = True):  # noqa: A002
        """``(values, indices)`` of the ``k`` largest (``largest=False``: smallest) elements along ``dim``
        (``None``: the last), best first, as ``torch.topk``; of equal elements the lower index comes first.

        >>> import semirad as sr
        >>> sr.tensor([1.0, 5.0, 3.0]).topk(2)
        topk(values=tensor([5., 3.]), indices=tensor([1, 2]))
        """
        return SELECT.topk(self, k, -1 if dim is None else dim, largest, sorted)

    def argmax(self, dim=None, keepdim=None, *, axis=None, keepdims=None) -> Tensor:
        """The index of the first largest element along ``dim`` (``None``: the flat index), as
        ``torch.argmax``; an integer tensor outside the graph.

        >>> import semirad as sr
        >>> x = sr.tensor([[1.0, 5.0], [7.0, 2.0]])
        >>> x.argmax().item(), x.argmax(dim=1).tolist(), x.argmax(1, keepdim=True).shape
        (2, [1, 0], (2, 1))
        """
        dim, keepdim = M.reduction_args("argmax", dim, keepdim, axis, keepdims)
        return SELECT.arg_extremum(self, dim, keepdim, True, "Tensor.argmax")

    def argmin(self, dim=None, keepdim=None, *, axis=None, keepdims=None) -> Tensor:
        """The index of the first smallest element along ``dim`` (``None``: the flat index), as
        ``torch.argmin``; an integer tensor outside the graph.

        >>> import semirad as sr
        >>> sr.tensor([[1.0, 5.0], [7.0, 2.0]]).argmin(dim=0).tolist()
        [0, 1]
        """
        dim, keepdim = M.reduction_args("argmin", dim, keepdim, axis, keepdims)
        return SELECT.arg_extremum(self, dim, keepdim, False, "Tensor.argmin")

    def gather(self, dim: int, index) -> Tensor:
        """``out[i][j] = self[index[i][j]][j]`` for ``dim=0`` (and so on), as ``torch.gather``: ``index``
        has ``self``'s number of dimensions and is no larger along the others. Backward: a ⊕-scatter
        (an element gathered twice gets both edges).

        >>> import semirad as sr
        >>> sr.tensor([[1.0, 2.0], [3.0, 4.0]]).gather(1, np.array([[1], [0]])).tolist()
        [[2.0], [3.0]]
        """
        return SELECT.gather(self, dim, index)

    def take_along_dim(self, indices, dim=None) -> Tensor:
        """``torch.take_along_dim``: numpy's ``take_along_axis`` along ``dim`` (``None``: of the flattened
        tensor, with the indices flattened too).

        >>> import semirad as sr
        >>> sr.tensor([[10.0, 30.0, 20.0]]).take_along_dim(np.array([[1, 2]]), dim=1).tolist()
        [[30.0, 20.0]]
        """
        if dim is None:
            indices = np.asarray(indices.data if isinstance(indices, Tensor) else indices).reshape(-1)
        return F.take_along_axis(self, indices, dim)

    def trace(self) -> Tensor:
        """The sum of the diagonal of a 2-D tensor, as ``torch.Tensor.trace`` (``sr.linalg.trace``
        for batches).

        >>> tensor([[1.0, 2.0], [3.0, 4.0]]).trace().item()
        5.0
        """
        from .ops import linalg

        return linalg.method_trace(self)

    def diagonal(self, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
        """The diagonal of the axes ``dim1``, ``dim2`` as the last axis, as ``torch.Tensor.diagonal``.

        >>> tensor([[1.0, 2.0], [3.0, 4.0]]).diagonal(1).tolist()
        [2.0]
        """
        from .ops import linalg

        return linalg.method_diagonal(self, offset, dim1, dim2)

    def outer(self, vec2) -> Tensor:
        """The outer product with another vector, as ``torch.Tensor.outer``.

        >>> tensor([1.0, 2.0]).outer(tensor([3.0])).tolist()
        [[3.0], [6.0]]
        """
        from .ops import linalg

        return linalg.outer(self, vec2)

    @property
    def T(self) -> Tensor:
        """The tensor with its axes reversed (``F.transpose(self)``, without its checks of the axes:
        reversed ones are always a permutation)."""
        ndim = self._data.ndim
        return apply(I.TRANSPOSE, self, axes=_REVERSED[ndim] if ndim < 8 else tuple(range(ndim - 1, -1, -1)))


register_tensor_type(Tensor)


_REVERSED = [tuple(range(n - 1, -1, -1)) for n in range(8)]


def seed_array(output: Tensor, seed) -> Any:
    """The seed of a sweep from ``output`` as a new array of its shape and dtype: ones for a
    one-element output, else ``seed`` (required), checked.

    >>> import semirad as sr
    >>> seed_array(sr.tensor([[2.0]]), None).tolist()
    [[1.0]]
    """
    xp = backend.namespace(output.data)
    if seed is None:
        if output._data.size != 1:
            raise ValueError(
                f"backward from a non-scalar output of shape {output.shape} needs an explicit seed of that shape"
            )
        with backend.device_scope(output._data):
            return xp.ones(output.shape, dtype=output.dtype)
    seed = seed.data if isinstance(seed, Tensor) else seed
    with backend.device_scope(output._data):
        seed = xp.array(seed, dtype=output.dtype)  # a copy (on the output's GPU): results read it after the call
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
    """Whether a sweep's value can become a ``.grad`` as it is: a writable array (so no broadcast, no
    op's frozen forward array) whose memory no other leaf took: one that owns its memory, or a
    writable view of one that does (a weight's gradient arrives transposed, ``(g.T @ x).T``), whose
    owner then counts as taken: no two ``.grad`` share memory."""
    if type(value) is not np.ndarray:
        owner = value if getattr(value, "base", 0) is None else None
    else:
        owner = value.base
        if owner is None:
            owner = value
        elif type(owner) is not np.ndarray or owner.base is not None or not owner.flags.writeable:
            owner = None
    if owner is None or not value.flags.writeable or id(owner) in taken:
        return False
    taken.add(id(owner))
    return True


_accumulating = threading.Lock()


#: the device types PyTorch names (``"cuda:0"`` is device type ``cuda``); only ``cpu`` is accepted here
_DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu", "meta", "hip", "xla", "ipu", "hpu", "mtia", "privateuseone")


def to_arguments(args: tuple, dtype=None, device=None) -> tuple:
    """``(dtype, device)`` from the positional arguments of a ``to(...)`` call (a tensor, a device, a
    dtype, in any order, as PyTorch takes them) and its keywords.

    >>> to_arguments(("cpu", "float32"))
    ('float32', 'cpu')
    """
    for arg in args:
        if isinstance(arg, Tensor):
            dtype = arg.dtype if dtype is None else dtype
            device = arg.device if device is None else device
        elif _is_device(arg):
            device = arg
        else:
            dtype = arg
    return dtype, device


def _is_device(arg) -> bool:
    """True for a device string (``"cpu"``, ``"cuda:1"``) or a ``torch.device``.

    >>> _is_device("cuda:1"), _is_device("float32")
    (True, False)
    """
    if type(arg).__name__ == "device" or isinstance(arg, backend.Device):
        return True
    return isinstance(arg, str) and arg.split(":")[0] in _DEVICE_TYPES


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


def tensor(data: Any, requires_grad: bool = False, name: str | None = None, dtype=None, device=None) -> Tensor:
    """Make a tensor from an array, a nested list or a number (numpy input keeps its dtype), on
    ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:N"``) when given, else where ``data`` lives.

    >>> import semirad as sr
    >>> sr.tensor(np.zeros(3, dtype=np.float32), requires_grad=True, name="b").dtype
    dtype('float32')
    >>> sr.tensor([1.0], device="cpu").device
    device(type='cpu')
    """
    return Tensor(data, requires_grad=requires_grad, name=name, dtype=dtype, device=device)
