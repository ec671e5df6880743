"""A simulated CUDA device for tests: a stand-in for cupy backed by numpy.

``fakecupy.ndarray`` is a numpy ``ndarray`` subclass that carries a device id, so that
``backend.namespace`` takes the cupy path for it, semirad's numpy-only fast paths (``type(a) is
np.ndarray``) and numba kernels do not run on it, and arrays of two devices can be told apart.
Like cupy it refuses numpy arrays (of one or more dimensions) in its functions and ufuncs with a
``TypeError``, refuses arrays of another device with a ``ValueError``, returns 0-d device arrays
where numpy returns scalars, and hands host copies out only through ``asnumpy`` / ``.get()``.

``cuda.Device(n)`` (a context manager, as cupy's) picks the device new arrays go to; there are
:data:`DEVICES` devices. ``RawModule`` compiles the CUDA sources with the g++ emulation of
``tests/test_cuda_kernels.py`` (one OS thread per CUDA thread), so :mod:`semirad.kernels.cuda`
runs its real launches here; without g++ (or with ``kernels=False``) it raises and the tests turn
the kernels off, so the cupy reference runs instead.

:func:`installed` patches ``semirad.backend.cupy`` (the seam every other module reads) and
``semirad.kernels.cuda._cupy`` (the wrappers import cupy themselves) for the duration of a test.
"""

from __future__ import annotations

import threading
import types
from contextlib import contextmanager

import numpy as np

#: how many simulated GPUs there are
DEVICES = 2

_state = threading.local()


def _current() -> int:
    return getattr(_state, "device", 0)


def _is_host(a) -> bool:
    return type(a) is np.ndarray or (isinstance(a, np.ndarray) and not isinstance(a, ndarray))


class ndarray(np.ndarray):  # noqa: N801 - cupy's name
    """A numpy array that says it lives on simulated GPU ``device.id``."""

    _dev = 0

    def __array_finalize__(self, obj):
        self._dev = getattr(obj, "_dev", _current()) if isinstance(obj, ndarray) else _current()

    @property
    def device(self):
        return cuda.Device(self._dev)

    def copy(self, order="C"):
        """A copy on the current device (cupy's rule: how an array moves between GPUs)."""
        return _wrap(self.view(np.ndarray).copy(order), _current())

    def get(self) -> np.ndarray:
        """A host copy (cupy's ``get``)."""
        return np.array(self.view(np.ndarray))

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        dev = _check(inputs + tuple(kwargs.get("out", ()) or ()), f"{ufunc.__name__}.{method}")
        args = _unwrap(inputs)
        if "out" in kwargs:
            kwargs["out"] = _unwrap(kwargs["out"])
        result = getattr(ufunc, method)(*args, **kwargs)
        return _wrap(result, dev)

    def __array_function__(self, func, types, args, kwargs):
        dev = _check(_flatten(args) + _flatten(tuple(kwargs.values())), func.__name__)
        return _wrap(func(*_unwrap(args), **_unwrap(kwargs)), dev)

    def __getitem__(self, index):
        _check(_flatten((index,)), "__getitem__", host_ok=True)
        out = self.view(np.ndarray)[_unwrap(index)]
        return _wrap(out, self._dev)

    def __setitem__(self, index, value):
        _check((self,) + _flatten((value,)), "__setitem__")
        self.view(np.ndarray)[_unwrap(index)] = _unwrap(value)

    def __reduce__(self):
        raise TypeError("a fakecupy array can't be pickled (as cupy's, move it to the host first)")

    def __repr__(self) -> str:
        return f"fakecupy.{np.ndarray.__repr__(self.view(np.ndarray))} (cuda:{self._dev})"


def _flatten(args) -> tuple:
    out = []
    for a in args:
        if isinstance(a, (list, tuple)):
            out.extend(_flatten(a))
        else:
            out.append(a)
    return tuple(out)


def _check(args, what: str, host_ok: bool = False) -> int:
    """The device of the device arrays in ``args``; cupy's errors for host arrays and two devices."""
    dev = None
    for a in _flatten(args):
        if isinstance(a, ndarray):
            if dev is None:
                dev = a._dev
            elif a._dev != dev:
                raise ValueError(f"fakecupy {what}: arrays on devices {dev} and {a._dev}")
        elif not host_ok and _is_host(a) and a.ndim:
            raise TypeError(f"fakecupy {what}: Unsupported type {type(a)} (a host array given to the device)")
    return _current() if dev is None else dev


def _unwrap(x):
    if isinstance(x, ndarray):
        return x.view(np.ndarray)
    if isinstance(x, tuple):
        return tuple(_unwrap(v) for v in x)
    if isinstance(x, list):
        return [_unwrap(v) for v in x]
    if isinstance(x, dict):
        return {k: _unwrap(v) for k, v in x.items()}
    return x


def _wrap(x, dev: int):
    if type(x) is np.ndarray:
        out = x.view(ndarray)
        out._dev = dev
        return out
    if isinstance(x, np.generic) and not isinstance(x, (np.str_, np.bytes_)):
        out = np.asarray(x).view(ndarray)  # cupy gives 0-d arrays, not scalars
        out._dev = dev
        return out
    if isinstance(x, tuple) and type(x) is not tuple:  # a named tuple
        return type(x)(*[_wrap(v, dev) for v in x])
    if isinstance(x, (tuple, list)):
        return type(x)(_wrap(v, dev) for v in x)
    return x


# -- the module's functions ------------------------------------------------------------------------
_HOST_IN = {"array", "asarray", "asanyarray"}  # host-to-device copies (as cupy's)


def _function(name: str, fn):
    def call(*args, **kwargs):
        if name in _HOST_IN:
            src = args[0] if args else kwargs.get("obj", kwargs.get("a"))
            dev = _current()
            if isinstance(src, ndarray) and src._dev == dev and name != "array":
                if kwargs.get("dtype") in (None, src.dtype) and (len(args) < 2 or args[1] in (None, src.dtype)):
                    return src
            host = np.array(_unwrap(src)) if isinstance(src, ndarray) else src
            rest = args[1:]
            kwargs = {k: v for k, v in kwargs.items() if k not in ("obj", "a")}
            out = np.array(host, *rest, **kwargs)
            return _wrap(out, dev)
        dev = _check(_flatten(args) + _flatten(tuple(kwargs.values())), name)
        return _wrap(fn(*_unwrap(args), **_unwrap(kwargs)), dev)

    call.__name__ = name
    return call


class _Namespace(types.ModuleType):
    """numpy's functions (``fakecupy.zeros``, ``fakecupy.linalg.inv``...) with cupy's device rules."""

    def __init__(self, name, source):
        super().__init__(name)
        self._source = source

    def __getattr__(self, name):
        value = getattr(self._source, name)
        if isinstance(value, types.ModuleType) and name in ("linalg", "fft", "random"):
            value = _Namespace(f"{self.__name__}.{name}", value)
        elif callable(value) and not isinstance(value, (type, np.ufunc)):
            value = _function(name, value)  # ufuncs keep numpy's, which defer to ndarray.__array_ufunc__
        setattr(self, name, value)
        return value


# -- cupy.cuda ---------------------------------------------------------------------------------------
class _Device:
    """``cupy.cuda.Device(n)``: its id, attributes; ``with Device(n):`` makes it current."""

    def __init__(self, device=None):
        self.id = _current() if device is None else int(device)
        if not 0 <= self.id < DEVICES:
            raise RuntimeError(f"fakecupy: invalid device ordinal {self.id} ({DEVICES} devices)")
        self.attributes = {"MultiProcessorCount": 2}

    def __enter__(self):
        self._prev = getattr(_state, "stack", [])
        _state.stack = [*self._prev, _current()]
        _state.device = self.id
        return self

    def __exit__(self, *exc):
        _state.device = _state.stack.pop()
        return False

    def use(self):
        _state.device = self.id

    def synchronize(self):
        pass

    def __eq__(self, other):
        return isinstance(other, _Device) and other.id == self.id

    def __hash__(self):
        return self.id

    def __repr__(self):
        return f"<CUDA Device {self.id}>"


class _Event:
    def record(self, stream=None):
        import time

        self.t = time.perf_counter()

    def synchronize(self):
        pass


def _elapsed(start, stop) -> float:
    return (stop.t - start.t) * 1e3


cuda = types.SimpleNamespace(
    Device=_Device,
    Event=_Event,
    get_elapsed_time=_elapsed,
    runtime=types.SimpleNamespace(
        getDeviceCount=lambda: DEVICES,
        getDevice=_current,
        getDeviceProperties=lambda i: {"name": b"fakecupy simulated device"},
    ),
)


def _emulation_module(cache_dir):
    """cupy's ``RawModule`` run by the g++ emulation of the CUDA sources (tests/test_cuda_kernels.py)."""
    import test_cuda_kernels as emu

    if emu.GXX is None:
        return None
    launches = []

    def raw_module(code, options=()):
        return emu._EmuModule(code, options, cache_dir, launches)

    raw_module.launches = launches
    return raw_module


def _no_raw_module(code, options=()):
    raise RuntimeError("fakecupy: no kernel compiler (g++) for the simulated device")


def make(cache_dir=None) -> _Namespace:
    """A fresh stand-in module; with ``cache_dir`` (and g++) its ``RawModule`` runs the emulation."""
    mod = _Namespace("fakecupy", np)
    mod.ndarray = ndarray
    mod.cuda = cuda
    raw = _emulation_module(cache_dir) if cache_dir is not None else None
    mod.RawModule = raw or _no_raw_module
    mod.has_kernels = raw is not None
    mod.launches = raw.launches if raw is not None else []
    mod.asnumpy = lambda a, *args, **kwargs: a.get() if isinstance(a, ndarray) else np.asarray(a)
    mod.get_array_module = lambda *arrays: mod if any(isinstance(a, ndarray) for a in arrays) else np
    mod.ascontiguousarray = _function("ascontiguousarray", np.ascontiguousarray)
    return mod


@contextmanager
def installed(monkeypatch, cache_dir=None, kernels: bool = True):
    """Make a stand-in semirad's cupy for the block: ``backend.cupy`` and the CUDA wrappers'
    ``_cupy`` patched, their caches fresh, and the kernels on (emulated) where g++ exists and
    ``kernels`` is true, else off."""
    from semirad import backend
    from semirad.kernels import cuda as cuda_kernels

    fake = make(cache_dir if kernels else None)
    monkeypatch.setattr(backend, "cupy", fake)
    monkeypatch.setattr(cuda_kernels, "_cupy", lambda: fake)  # (the kernels' layer imports cupy itself)
    monkeypatch.setattr(cuda_kernels, "_MODULES", {})
    monkeypatch.setattr(cuda_kernels, "_enabled", bool(fake.has_kernels))
    cuda_kernels._offsets.cache_clear()
    cuda_kernels._sm_count.cache_clear()
    _state.device = 0
    try:
        yield fake
    finally:
        cuda_kernels._offsets.cache_clear()
        cuda_kernels._sm_count.cache_clear()
        _state.device = 0
