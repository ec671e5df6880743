"""Array backends: numpy on the CPU, cupy on the GPU; the seam every other module goes through.

:func:`namespace` names the array library that holds some arrays; the rest are the few generic
helpers that depend on it (host copies, element ids, flat positions, scatter-add). Speed helpers
for ops live in :mod:`semirad.fast`, each semiring's algorithms and their kernels beside it
(:mod:`semirad.semirings.max_abs`).
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from .ids import END, NO_PATH  # noqa: F401  (re-exported: backend.NO_PATH is what semirings read)

try:  # pragma: no cover - exercised only where cupy is installed
    import cupy
except Exception:  # ImportError, or a broken CUDA install
    cupy = None


def namespace(*arrays):
    """The array module (numpy or cupy) that holds ``arrays``.

    Arrays of two devices (a cupy array with a numpy array of one or more dimensions, or cupy
    arrays of two GPUs) are a :class:`DeviceError` naming each array's shape and device: the one
    place every op resolves its arrays' module (numbers and 0-d numpy arrays go with any device,
    as PyTorch's CPU scalars do).

    >>> namespace(np.zeros(2)) is np
    True
    """
    if cupy is not None:
        found = None
        for a in arrays:
            if isinstance(a, cupy.ndarray):
                if found is None:
                    found = a
                elif a.device.id != found.device.id:
                    raise DeviceError(_mixed_message(arrays))
        if found is not None:
            for a in arrays:
                if isinstance(a, np.ndarray) and not isinstance(a, cupy.ndarray) and a.ndim:
                    raise DeviceError(_mixed_message(arrays))
            return cupy
    return np


class DeviceError(ValueError):
    """Arrays of different devices met in one op (the message names each array's shape and device),
    or a device that is not there."""


def _mixed_message(arrays) -> str:
    """What :func:`namespace` says about arrays of two devices: the op and its input tensors' names
    where it was called from :func:`semirad.ops.core.apply` (found on the error path only)."""
    op, inputs = _calling_op()
    names = [getattr(x, "name", None) for x in inputs] if inputs is not None and len(inputs) == len(arrays) else []
    parts = []
    for i, a in enumerate(arrays):
        if is_array(a):
            name = f" {names[i]!r}" if i < len(names) and names[i] else ""
            parts.append(f"input {i}{name} of shape {tuple(a.shape)} on {device_of(a)}")
    where = f"{op}: " if op else ""
    return (
        f"{where}expected all inputs on one device, got " + ", ".join(parts)
        + " (move tensors with .to(device), .cuda() or .cpu(), modules with .to(device))"
    )


def _calling_op():
    """``(op name, inputs)`` of the :func:`semirad.ops.core.apply` call that asked, else ``(None, None)``."""
    import sys

    frame = sys._getframe(2)
    for _ in range(4):
        if frame is None:
            break
        if frame.f_code.co_name == "apply" and frame.f_globals.get("__name__") == "semirad.ops.core":
            op = frame.f_locals.get("op")
            return getattr(op, "name", None), frame.f_locals.get("inputs")
        frame = frame.f_back
    return None, None


def is_array(x) -> bool:
    """True for a numpy or cupy array."""
    return isinstance(x, np.ndarray) or (cupy is not None and isinstance(x, cupy.ndarray))


def to_numpy(a) -> np.ndarray:
    """A numpy copy (or view) of a numpy or cupy array."""
    if cupy is not None and isinstance(a, cupy.ndarray):
        return cupy.asnumpy(a)
    return np.asarray(a)


# -- devices ---------------------------------------------------------------------------------------
class Device:
    """Where an array lives, as PyTorch's ``torch.device``: ``Device("cpu")``, ``Device("cuda:1")``,
    ``Device("cuda", 1)``. ``"cuda"`` alone means cupy's current device when an array is moved there.
    Equal to its string form (``Device("cuda:0") == "cuda:0"``); an index-less ``"cuda"`` equals
    any ``cuda`` device.

    >>> d = Device("cuda:1")
    >>> d.type, d.index, str(d), d == "cuda:1", Device("cpu") == "cpu", Device("cuda") == d
    ('cuda', 1, 'cuda:1', True, True, True)
    """

    __slots__ = ("type", "index")

    def __init__(self, spec, index: int | None = None):
        if isinstance(spec, Device):
            spec, index = spec.type, spec.index if index is None else index
        elif not isinstance(spec, str):  # a torch.device: its type and index
            spec, index = getattr(spec, "type", spec), getattr(spec, "index", None) if index is None else index
            if not isinstance(spec, str):
                raise TypeError(f"a device is a string such as 'cpu' or 'cuda:0', got {type(spec).__name__}")
        kind, _, number = spec.strip().partition(":")
        if number:
            if index is not None or not number.isdigit():
                raise ValueError(f"invalid device {spec!r} (expected 'cpu', 'cuda' or 'cuda:N')")
            index = int(number)
        if kind not in ("cpu", "cuda"):
            raise ValueError(f"unknown device {spec!r} (semirad runs on 'cpu' (numpy) and 'cuda' / 'cuda:N' (cupy))")
        if kind == "cpu" and index not in (None, 0):
            raise ValueError(f"invalid device {spec!r}: the CPU has no index but 0")
        if index is not None and index < 0:
            raise ValueError(f"invalid device index {index}")
        self.type = kind
        self.index = None if kind == "cpu" else index

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        return f"device(type={self.type!r}" + ("" if self.index is None else f", index={self.index}") + ")"

    def __eq__(self, other) -> bool:
        if not isinstance(other, Device):
            try:
                other = Device(other)
            except (TypeError, ValueError):
                return NotImplemented
        if self.type != other.type:
            return False
        return self.index is None or other.index is None or self.index == other.index

    def __hash__(self) -> int:
        return hash(self.type)


CPU = Device("cpu")


def device_of(a) -> Device:
    """The :class:`Device` of an array: ``cpu`` for numpy, ``cuda:N`` for a cupy array on GPU ``N``.

    >>> device_of(np.zeros(2))
    device(type='cpu')
    """
    if cupy is not None and isinstance(a, cupy.ndarray):
        return Device("cuda", int(a.device.id))
    return CPU


def device_scope(array):
    """A context manager under which new arrays go to ``array``'s GPU: cupy makes every new array
    (copies, ones, results of a rule) on the *current* GPU, which need not be the one a graph lives
    on. Nothing to do for a host array.

    >>> with device_scope(np.zeros(2)):
    ...     pass
    """
    if cupy is not None and isinstance(array, cupy.ndarray):
        return array.device
    return _NO_SCOPE


_NO_SCOPE = contextlib.nullcontext()


def to_device(a, device):
    """``a`` on ``device`` (a :class:`Device` or its string): itself where it is there already, else
    a copy (host to GPU, GPU to host, or GPU to GPU).

    >>> a = np.zeros(2)
    >>> to_device(a, "cpu") is a
    True
    """
    device = Device(device)
    if device.type == "cpu":
        return to_numpy(a)
    cp = _require_cupy(device)
    index = device.index if device.index is not None else int(cp.cuda.runtime.getDevice())
    if isinstance(a, cp.ndarray) and int(a.device.id) == index:
        return a
    with cp.cuda.Device(index):
        if isinstance(a, cp.ndarray):
            return a.copy()  # cupy copies onto the current device
        return cp.asarray(a)


def _require_cupy(device):
    if cupy is None:
        raise DeviceError(
            f"unknown device {str(device)!r} here: it needs cupy and a CUDA GPU, and cupy is not available "
            "(pip install semirad[cuda] on a machine with CUDA 12); use 'cpu'"
        )
    count = cupy.cuda.runtime.getDeviceCount()
    if device.index is not None and device.index >= count:
        raise DeviceError(f"unknown device {str(device)!r}: cupy sees {count} CUDA device(s)")
    return cupy


def element_ids(xp, base: int, shape: tuple) -> object:
    """Global vertex ids ``base + flat index`` for an array of ``shape``."""
    return xp.arange(base, base + math.prod(shape), dtype=np.int64).reshape(shape)


def flat_positions(xp, shape: tuple, index) -> object:
    """Flat C-order position in an array of ``shape`` of every element that ``a[index]`` selects."""
    size = int(np.prod(shape, dtype=np.int64))
    return xp.arange(size, dtype=np.int64).reshape(shape)[index]


def scatter_add(xp, positions, values, size: int):
    """``out = zeros(size); out[positions] += values`` with repeated positions adding up."""
    positions = positions.ravel()
    values = xp.broadcast_to(values, positions.shape if values.ndim == 0 else values.shape).ravel()
    if xp is np:
        if np.iscomplexobj(values):
            out = np.zeros(size, dtype=values.dtype)
            np.add.at(out, positions, values)
            return out
        return np.bincount(positions, weights=values, minlength=size).astype(values.dtype, copy=False)
    out = xp.zeros(size, dtype=values.dtype)  # pragma: no cover - GPU
    xp.add.at(out, positions, values)  # pragma: no cover - GPU
    return out  # pragma: no cover - GPU


def broadcast_shapes(a: tuple, b: tuple) -> tuple:
    """``np.broadcast_shapes(a, b)``, without its few µs where the shapes are equal (the common case).

    >>> broadcast_shapes((2, 1), (3,)), broadcast_shapes((4,), (4,))
    ((2, 3), (4,))
    """
    return a if a == b else np.broadcast_shapes(a, b)


def product_dtype(a, b):
    """``np.result_type`` of two arrays, without its µs where their dtypes are equal.

    >>> product_dtype(np.ones(1, np.float32), np.ones(1)).name
    'float64'
    """
    return a.dtype if a.dtype == b.dtype else np.result_type(a.dtype, b.dtype)


#: elements of the largest temporary a blocked loop over rows builds (32 MiB of float64)
_CHUNK_ELEMENTS = 1 << 22


def row_blocks(rows: int, elements_per_row: int):
    """Slices of ``range(rows)`` such that a temporary of ``elements_per_row`` per row stays near
    ``2**22`` elements: the one chunked loop of the array references' broadcast contractions.

    >>> [(s.start, s.stop) for s in row_blocks(5, 2**21)]
    [(0, 2), (2, 4), (4, 5)]
    """
    step = max(1, _CHUNK_ELEMENTS // max(1, elements_per_row))
    return [slice(r0, min(rows, r0 + step)) for r0 in range(0, rows, step)]

