"""Compiled CPU kernels (numba), used by :mod:`semirad.fast` and the semirings' dispatch modules
(:mod:`semirad.semirings.max_abs.dispatch`) when numba is installed.

numba is a runtime dependency; where it does not import (a platform without a wheel, a numba that
does not match numpy) a one-line warning says so. Without it, or with the environment variable
``SEMIRAD_KERNELS=numpy``, or after :func:`use` ``("numpy")``, every kernel falls back to the
numpy reference beside the algebra it speeds up; both give bit-identical results (the tests run both).

Cold start (docs/design.md, "Cold start"): this package does not import numba. ``import semirad``
calls :func:`start`, which imports numba and loads the kernels from numba's cache in a background
thread; until they are loaded :func:`enabled` is False and the numpy references (the same bits)
serve every call, except large max-abs contractions, which wait for the kernels
(:data:`WAIT_MIN_WORK`). ``SEMIRAD_KERNELS=numpy`` starts no thread and imports no numba.

Threads (docs/design.md, "Kernel threads"): the parallel kernels run on :func:`get_num_threads`
threads at most, set by ``SEMIRAD_NUM_THREADS`` or :func:`set_num_threads` for every thread of the
process; by default every core this process may use, and one thread while other work keeps those
cores busy.

>>> import semirad.kernels as K
>>> with K.using("numpy"):
...     K.enabled()
False
>>> with K.using("auto"):
...     K.wait() == K.AVAILABLE and K.enabled() == K.AVAILABLE
True
"""

from __future__ import annotations

import atexit
import importlib
import importlib.util
import os
import threading
import time
import warnings

import numpy as np

_MODES = ("auto", "numba", "numpy")
_mode = os.environ.get("SEMIRAD_KERNELS", "auto")
if _mode not in _MODES:
    _mode = "auto"

#: the dtypes the compiled kernels take
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

#: the kernel modules numba compiles: the loader imports them, and with them their kernels that have
#: signatures (read from numba's cache)
NUMBA_MODULES = ("elementwise", "max_abs", "scatter")
#: the ones the background loader imports: not ``max_abs``, imported at the first max-abs contraction;
#: its parallel entry points, which start numba's OpenMP pool as they load, load at the first large one
#: (an idle pool started early slowed BLAS and PyTorch in the same process 8x: docs/design.md, "Kernel threads")
LOADER_MODULES = ("elementwise", "scatter")

#: while the kernels load, max-abs contractions run on the numpy reference until they add up to this
#: many products; then they wait for the kernels (measured: docs/design.md, "Cold start")
WAIT_MIN_WORK = 1 << 22

#: how long (seconds) one look at the machine's runnable threads decides the parallel kernels' threads
_LOAD_WINDOW = 0.02
#: how long (seconds) after a parallel call of semirad's its own workers may still spin (libgomp's
#: default spin count is about 6 ms on Zen 3; see ``_SPIN_COUNT``)
_OWN_SPIN = 0.01

# The loader's state. ``_available``: whether numba imports (None: not known yet); ``_loaded``: numba
# imported and NUMBA_MODULES imported and warmed; ``_enabled``: what enabled() answers (kept as one
# global: it is read on hot paths); ``_on``: what on() answers.
_available: bool | None = None
_loaded = False
_enabled = False
_on = _mode != "numpy"
_done = threading.Event()
_loader: threading.Thread | None = None
_stopping = False
_state_lock = threading.Lock()
_COMPILED: dict = {}


def __getattr__(name: str):
    # AVAILABLE is set as a plain global once the loader knows; before that, reading it waits
    if name == "AVAILABLE":
        return wait()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def enabled() -> bool:
    """True when the numba kernels run for numpy arrays now: numba imported, the kernels loaded, and
    the mode not ``"numpy"``. False while they load (the numpy references run meanwhile).

    >>> enabled() in (True, False)
    True
    """
    return _enabled


def on() -> bool:
    """True when the kernel mode is on: the kernels run, or will once loaded. Where a kernel and numpy's
    own function differ in the last bits (``tanh``), a caller uses the kernel's numpy transcription
    while :func:`enabled` is False and this is True, so results do not depend on when the loading ends.

    >>> with using("numpy"):
    ...     on()
    False
    >>> with using("auto"):
    ...     on() == wait()
    True
    """
    return _on


def start() -> None:
    """Start loading the kernels in a background thread (``import semirad`` calls this): import numba
    and the kernel modules, whose kernels load from numba's cache (or compile, the first time).
    Does nothing in mode ``"numpy"`` (numba is not imported) or once started.

    >>> start()
    """
    if _mode != "numpy":
        _start_loader()


def wait() -> bool:
    """Wait until the kernels are loaded (starting the loader if needed); returns whether numba imports.

    >>> wait() in (True, False)
    True
    """
    if not _done.is_set():
        if threading.current_thread() is _loader:
            raise RuntimeError("semirad.kernels.wait() called by the kernel loader itself")
        _start_loader()
        _done.wait()
    return bool(_available)


def load() -> None:
    """Load every kernel now (wait for the background loader); a benchmark calls this before it times
    anything. Does nothing more without numba.

    >>> load()
    """
    if wait():
        compiled("max_abs").compile_runners()
        _started_threads()  # (loading the parallel entry points starts numba's threading layer)


def compiled(name: str):
    """The compiled kernel module ``semirad.kernels.<name>`` (``"elementwise"``, ``"max_abs"``, ``"cuda"``),
    imported on first use; a numba module waits for the loader.

    >>> compiled("elementwise").__name__ if wait() else "semirad.kernels.elementwise"
    'semirad.kernels.elementwise'
    """
    module = _COMPILED.get(name)
    if module is None:  # (a dict lookup: this runs at every kernel call, import_module costs a µs)
        if name in NUMBA_MODULES:
            wait()
        with _short_spin():
            module = _COMPILED[name] = importlib.import_module(f"{__name__}.{name}")
    return module


def use(mode: str) -> None:
    """Choose the CPU kernels: ``"auto"`` (numba when installed), ``"numba"`` (required) or ``"numpy"``.

    >>> previous = mode(); use("numpy"); mode()
    'numpy'
    >>> use(previous)
    """
    global _mode
    if mode not in _MODES:
        raise ValueError(f"kernel mode must be one of {_MODES}, got {mode!r}")
    if mode != "numpy":
        _start_loader()
    if mode == "numba" and not wait():
        raise RuntimeError("numba kernels requested but numba does not import (pip install numba)")
    with _state_lock:
        _mode = mode
        _refresh()


def mode() -> str:
    """The current kernel mode (``"auto"``, ``"numba"`` or ``"numpy"``).

    >>> mode() in ("auto", "numba", "numpy")
    True
    """
    return _mode


class using:
    """Context manager: ``with using("numpy"): ...`` runs a block with the given kernel mode.

    >>> with using("numpy"):
    ...     enabled()
    False
    """

    def __init__(self, mode: str):
        self.mode = mode

    def __enter__(self):
        self._previous = _mode
        use(self.mode)
        return self

    def __exit__(self, *exc):
        use(self._previous)
        return False


# -- the loader ------------------------------------------------------------------------------------
def _refresh() -> None:
    """Recompute what :func:`enabled` and :func:`on` answer (under ``_state_lock``)."""
    global _enabled, _on
    _enabled = _loaded and _available is True and _mode != "numpy"
    _on = _mode != "numpy" and _available is not False


def _start_loader() -> None:
    global _loader
    with _state_lock:
        if _done.is_set() or (_loader is not None and _loader.is_alive()):
            return
        try:
            installed = importlib.util.find_spec("numba") is not None
        except (ImportError, ValueError):  # (ValueError: sys.modules["numba"] is None)
            installed = False
        if installed:
            _loader = threading.Thread(target=_load, name="semirad-kernels-loader", daemon=True)
            _loader.start()
            return
    _load()  # the import fails at once: decided here, before any kernel is asked for


def _load() -> None:
    """The loader thread: import numba, then each module of :data:`LOADER_MODULES`, then call each kernel
    without a signature once (:func:`_warm`), so that a caller finds them loaded."""
    global _available, _loaded, AVAILABLE
    try:
        try:
            numba = importlib.import_module("numba")
        except Exception as error:  # ImportError, or a numba that does not match the installed numpy
            with _state_lock:
                _available = AVAILABLE = False
                _refresh()
            if _mode != "numpy":
                warnings.warn(
                    f"semirad: numba did not import ({type(error).__name__}: {error}); the numpy fallback "
                    "runs (same results, slower traces). Set SEMIRAD_KERNELS=numpy to silence this.",
                    stacklevel=1,
                )
            return
        _available = AVAILABLE = True
        _configure_threads(numba)
        with _short_spin():
            for name in LOADER_MODULES:
                if _stopping:
                    return
                try:
                    _COMPILED[name] = importlib.import_module(f"{__name__}.{name}")
                except Exception:  # noqa: S112  (compiled() imports it again at its first use, and raises there)
                    continue
                if name == "max_abs":
                    _started_threads()
        if not _stopping:
            try:
                _warm()
            except Exception:  # noqa: S110  (a kernel the warm-up names changed: it loads at its first call)
                pass
        with _state_lock:
            _loaded = True
            _refresh()
    finally:
        _done.set()


def _warm() -> None:
    """Call each kernel that has no signature once, with the argument types a trace and a backprop give
    it (inputs read-only: semirad freezes every array of a graph), so that its first call by a user
    does not load it from numba's cache (about 6 ms each)."""
    elementwise, max_abs = _COMPILED.get("elementwise"), _COMPILED.get("max_abs")
    for dtype in (np.float32, np.float64):
        one, out = _frozen(np.ones(2, dtype=dtype)), np.empty(2, dtype=dtype)
        if elementwise is not None:
            for writable in (False, True):
                a = np.ones((1, 2), dtype=dtype) if writable else _frozen(np.ones((1, 2), dtype=dtype))
                elementwise.add_vector_to_rows(a, one, np.empty((1, 2), dtype=dtype))
                elementwise.non_finite_sum(a.reshape(-1))
            elementwise.one_minus_square(one, out)
            elementwise.times_one_minus(one, out)
            if dtype is np.float64:  # (float64 only: float32 keeps numpy's tanh)
                elementwise.tanh(one, out)
        if max_abs is not None:
            weights = np.ones((2, 2), dtype=dtype)
            for w in (weights, _frozen(weights)):
                max_abs.max_abs_matmul(one.reshape(1, 2), np.zeros((1, 2), np.int64), w, np.dtype(dtype))


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _stop_loader() -> None:
    """At exit: let the loader finish the step it is in and stop (a thread inside LLVM must not see the
    interpreter and its libraries torn down under it)."""
    global _stopping
    _stopping = True
    loader = _loader
    if loader is not None and loader.is_alive() and loader is not threading.current_thread():
        loader.join()


def _before_fork() -> None:
    # a child must not inherit the import locks the loader holds: the loader finishes first
    loader = _loader
    if loader is not None and loader.is_alive() and loader is not threading.current_thread():
        loader.join(timeout=60)


def _after_fork_in_child() -> None:
    global _loader, _state_lock, _done
    _state_lock = threading.Lock()
    if not _done.is_set():  # the loader did not survive the fork: the next wait() starts another
        _loader, _done = None, threading.Event()


atexit.register(_stop_loader)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


# -- threads ---------------------------------------------------------------------------------------
def _parse_threads(value, origin: str) -> int | None:
    """A thread setting: a positive int, or None / ``"auto"`` for the default policy."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
        return None
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ValueError(f"{origin} must be a positive integer or 'auto', got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{origin} must be a positive integer or 'auto', got {value!r}")
    return int(value)


_threads: int | None = _parse_threads(os.environ.get("SEMIRAD_NUM_THREADS"), "SEMIRAD_NUM_THREADS")


def set_num_threads(n: int | str | None) -> None:
    """Set the most threads a parallel kernel of semirad uses, in every thread of the process: a positive
    int, or ``None`` / ``"auto"`` for the default (every core the process may run on, one thread while
    other work keeps those cores busy). ``SEMIRAD_NUM_THREADS`` sets it at start-up. numba's pool is
    sized at its start (``NUMBA_NUM_THREADS``, the cores), and ``numba.set_num_threads`` (numba's own
    setting, per thread) caps it too.

    >>> set_num_threads(1); get_num_threads()
    1
    >>> set_num_threads("auto")
    """
    global _threads
    _threads = _parse_threads(n, "the number of threads")


def get_num_threads() -> int:
    """The most threads a parallel kernel of semirad uses: the setting of :func:`set_num_threads`, else the
    cores this process may run on (fewer are used while other work keeps them busy).

    >>> get_num_threads() >= 1
    True
    """
    return _threads if _threads is not None else _cores()


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class _Machine:
    """How many of this process's cores the next parallel kernel call may take: those that no other
    runnable thread wants, from the instantaneous count of running and runnable threads of the
    machine in ``/proc/loadavg`` (the caller counted out; scaled to this process's share of the
    machine's CPUs where its affinity is a subset). Threads of this process count too: BLAS's and
    PyTorch's workers spin a while after each call, and a parallel kernel beside them waits for the
    core they hold. Looked at no more often than every ``_LOAD_WINDOW`` s, and not within
    ``_OWN_SPIN`` s of a parallel call of semirad's (its own workers would be counted). Every core
    where ``/proc/loadavg`` is not there to read."""

    def __init__(self):
        self.cores = _cores()
        self.share = self.cores / max(self.cores, os.cpu_count() or 1)
        self.free = self.cores
        self.seen = -1.0
        self.quiet_from = -1.0  # when the workers of semirad's last parallel call have gone to sleep

    def _runnable(self) -> int | None:
        try:
            with open("/proc/loadavg", "rb") as f:
                return int(f.read().split()[3].split(b"/")[0])
        except (OSError, ValueError, IndexError):
            return None

    def free_cores(self) -> int:
        now = time.monotonic()
        if now - self.seen >= _LOAD_WINDOW and now >= self.quiet_from:
            self.seen = now
            runnable = self._runnable()
            if runnable is not None:
                others = max(0, runnable - 1) * self.share
                self.free = max(1, min(self.cores, self.cores - int(others + 0.5)))
        return self.free

    def ran_parallel(self) -> None:
        self.quiet_from = time.monotonic() + _OWN_SPIN


_machine: _Machine | None = None


def _threads_now() -> int:
    """The threads of the next parallel kernel call: the setting, else the free cores."""
    global _machine
    if _threads is not None:
        return _threads
    if _machine is None:
        _machine = _Machine()
    return _machine.free_cores()


#: numba's get_num_threads and set_num_threads (set by the loader)
_numba_threads: tuple = ()

#: libgomp's spin count for numba's OpenMP pool where the user set none: its workers wait this many
#: spins (about 0.2 ms) for the next parallel region, then sleep (docs/design.md, "Kernel threads")
_SPIN_COUNT = "10000"


def _configure_threads(numba) -> None:
    """Keep numba's thread functions (:func:`max_abs_matmul` calls them)."""
    global _numba_threads
    _numba_threads = (numba.get_num_threads, numba.set_num_threads)


class _short_spin:
    """While numba's threading layer may start (loading the parallel kernels starts it): where it loads
    GNU OpenMP for the first time and neither ``OMP_WAIT_POLICY`` nor ``GOMP_SPINCOUNT`` is set, a
    short spin (``_SPIN_COUNT``); libgomp reads it once, when it loads, and the variable is removed again."""

    def __enter__(self):
        self.ours = "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ
        if self.ours:
            os.environ["GOMP_SPINCOUNT"] = _SPIN_COUNT

    def __exit__(self, *exc):
        if self.ours:
            os.environ.pop("GOMP_SPINCOUNT", None)
        return False


#: the process in which numba's threading layer started (None: not yet)
_launched_in: int | None = None


def _started_threads() -> None:
    """Note that numba's threading layer has started in this process (loading the parallel kernels
    from numba's cache starts it). GNU OpenMP is not fork-safe: numba ends a forked child that runs
    parallel work after its parent started the layer, so such a child runs no parallel kernel
    (:func:`max_abs_matmul`)."""
    global _launched_in
    if _launched_in is None:
        _launched_in = os.getpid()


def max_abs_matmul(values, ids, weights, dtype):
    """:func:`semirad.kernels.max_abs.max_abs_matmul` on semirad's threads: where the contraction is
    large enough for the parallel kernel, the calling thread's numba thread count is lowered to
    :func:`get_num_threads` (or to the free cores, by default) for the call. The arguments and the
    result are the kernel's.

    >>> v, i, dead = max_abs_matmul(np.array([[1.0, -3.0]]), np.array([[10, 11]]), np.array([[2.0], [1.0]]),
    ...                             np.dtype(np.float64))
    >>> v.tolist(), i.tolist()
    ([[-3.0]], [[11]])
    """
    kernels = compiled("max_abs")
    if values.size * (weights.size // values.shape[-1]) < kernels.PARALLEL_MIN_WORK:  # (products, or more)
        return kernels.max_abs_matmul(values, ids, weights, dtype)
    if _launched_in is None:
        with _short_spin():
            _numba_threads[0]()  # starts the threading layer, if a kernel's loading did not
        _started_threads()
    elif _launched_in != os.getpid():
        return None  # a forked child of a process whose OpenMP pool started: numba would end it (the reference runs)
    have, want = _numba_threads[0](), _threads_now()
    lowered = want < have
    if lowered:
        _numba_threads[1](want)
    try:
        return kernels.max_abs_matmul(values, ids, weights, dtype)
    finally:
        if lowered:
            _numba_threads[1](have)
        if min(want, have) > 1 and _machine is not None:
            _machine.ran_parallel()


def worth_waiting(work: int) -> bool:
    """Whether a max-abs contraction of ``work`` products runs the kernel: True when :func:`enabled`; while
    the kernels load, True once the contractions the numpy reference ran meanwhile (this one included)
    add up to :data:`WAIT_MIN_WORK` products, after waiting for the kernels (the reference takes about
    100 times a kernel's time: waiting then costs less than going on without them).

    >>> worth_waiting(1) == enabled()
    True
    """
    global _fallback_work
    if _enabled:
        return True
    if not _on or _done.is_set():
        return False
    _fallback_work += work
    if _fallback_work < WAIT_MIN_WORK:
        return False
    wait()
    return _enabled


#: products the numpy reference contracted while the kernels loaded (see :func:`worth_waiting`)
_fallback_work = 0
