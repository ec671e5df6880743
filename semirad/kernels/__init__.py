"""Compiled CPU kernels (numba), used by :mod:`semirad.fast` and the semirings' dispatch modules
(:mod:`semirad.semirings.max_abs.dispatch`) when numba is installed.

numba is a runtime dependency; where it does not import (a platform without a wheel, a numba that
does not match numpy) a one-line warning says so. Without it, or with the environment variable
``SEMIRAD_KERNELS=numpy``, or after :func:`use` ``("numpy")``, every kernel falls back to the
numpy reference beside the algebra it speeds up; both give bit-identical results (the tests run both).

>>> import semirad.kernels as K
>>> K.use("numpy"); K.enabled()
False
>>> K.use("auto"); K.enabled() == K.AVAILABLE
True
"""

from __future__ import annotations

import importlib
import os
import warnings

import numpy as np

try:
    import numba  # noqa: F401
except Exception as error:  # ImportError, or a numba that does not match the installed numpy
    AVAILABLE = False
    if os.environ.get("SEMIRAD_KERNELS", "auto") != "numpy":
        warnings.warn(
            f"semirad: numba did not import ({type(error).__name__}: {error}); the numpy fallback runs "
            "(same results, slower traces). Set SEMIRAD_KERNELS=numpy to silence this.",
            stacklevel=2,
        )
else:
    AVAILABLE = True

_MODES = ("auto", "numba", "numpy")
_mode = os.environ.get("SEMIRAD_KERNELS", "auto")
if _mode not in _MODES:
    _mode = "auto"


#: the dtypes the compiled kernels take
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def compiled(name: str):
    """The compiled kernel module ``semirad.kernels.<name>`` (``"elementwise"``, ``"max_abs"``),
    imported on first use: each kernel compiles, or loads from numba's cache, at its first call.

    >>> compiled("elementwise").__name__ if AVAILABLE else "semirad.kernels.elementwise"
    'semirad.kernels.elementwise'
    """
    module = _COMPILED.get(name)
    if module is None:  # (a dict lookup: this runs at every kernel call, import_module costs a µs)
        module = _COMPILED[name] = importlib.import_module(f"{__name__}.{name}")
    return module


_COMPILED: dict = {}


def use(mode: str) -> None:
    """Choose the CPU kernels: ``"auto"`` (numba when installed), ``"numba"`` (required) or ``"numpy"``."""
    global _mode
    if mode not in _MODES:
        raise ValueError(f"kernel mode must be one of {_MODES}, got {mode!r}")
    if mode == "numba" and not AVAILABLE:
        raise RuntimeError("numba kernels requested but numba does not import (pip install numba)")
    _mode = mode


def mode() -> str:
    """The current kernel mode (``"auto"``, ``"numba"`` or ``"numpy"``)."""
    return _mode


def enabled() -> bool:
    """True when the numba kernels are used for numpy arrays."""
    return AVAILABLE and _mode != "numpy"


def load() -> None:
    """Compile (or load from numba's cache) every kernel for float32 and float64 now rather than at its
    first use; a benchmark calls this before it times anything. Does nothing without numba.

    >>> import semirad.kernels as K
    >>> K.load()
    """
    if not AVAILABLE:
        return
    import numpy as np

    from . import elementwise, max_abs  # noqa: F401  (kernels with signatures compile on import)

    for dtype in (np.float32, np.float64):
        one = np.ones(1, dtype=dtype)
        elementwise.add_vector_to_rows(one.reshape(1, 1), one, np.empty((1, 1), dtype=dtype))
        elementwise.one_minus_square(one, np.empty_like(one))
        elementwise.times_one_minus(one, np.empty_like(one))
        elementwise.non_finite_sum(one)
        square = np.ones((2, 2), dtype=dtype)
        max_abs.max_abs_matmul(one.reshape(1, 1).repeat(2, 1), np.zeros((1, 2), np.int64), square, np.dtype(dtype))
    elementwise.tanh(np.ones(1), np.empty(1))  # (float64 only: float32 keeps numpy's tanh)


class using:
    """Context manager: ``with using("numpy"): ...`` runs a block with the given kernel mode."""

    def __init__(self, mode: str):
        self.mode = mode

    def __enter__(self):
        self._previous = _mode
        use(self.mode)
        return self

    def __exit__(self, *exc):
        use(self._previous)
        return False
