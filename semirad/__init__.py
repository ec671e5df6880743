"""semirad: tape-based tensor autodiff whose one reverse sweep is parameterized by a semiring.

>>> import semirad as sr
>>> w = sr.tensor([1.0, -2.0], requires_grad=True, name="w")
>>> loss = (w * w).sum()
>>> sr.grad(loss, [w])[0].tolist()
[2.0, -4.0]
>>> sr.trace(loss, [w])[w].tolist()   # w*w is two edges of weight w each: the best path carries w
[1.0, -2.0]

``sr.nn``, ``sr.optim``, ``sr.analysis`` and ``sr.data`` are imported at their first use, and the
compiled kernels load in a background thread (docs/design.md, "Cold start").
"""

import importlib
from typing import TYPE_CHECKING

from . import kernels, semirings
from .api import backward, grad, trace
from .compile import compile as compile  # noqa: A004 (docs/compile.md; not in __all__: a star import keeps the builtin)
from .engine import component, no_grad
from .forward import jacobian, jvp
from .kernels import get_num_threads, set_num_threads
from .ops.core import OpError
from .ops.functions import *  # noqa: F401,F403
from .ops.functions import __all__ as _op_names
from .paths import Path, Step, Trace
from .rng import manual_seed
from .tensor import Tensor, tensor

if TYPE_CHECKING:  # imported at their first use (see __getattr__)
    from . import analysis, data, linalg, nn, optim

__version__ = "0.1.0"

__all__ = [
    "Tensor", "tensor", "no_grad", "component", "backward", "grad", "trace", "jvp", "jacobian", "semirings",
    "Path", "Step", "Trace", "OpError", "nn", "optim", "analysis", "data", "linalg", "manual_seed",
    "set_num_threads", "get_num_threads", *_op_names,
]  # fmt: skip

#: subpackages imported at their first use (``sr.nn``): ``import semirad`` stays short
_LAZY = ("analysis", "data", "linalg", "nn", "optim")


def __getattr__(name: str):
    """``sr.nn``, ``sr.optim``, ``sr.analysis``, ``sr.data``, ``sr.linalg``: imported at first use.

    >>> import semirad as sr
    >>> sr.optim.__name__
    'semirad.optim'
    """
    if name in _LAZY:
        return importlib.import_module(f"{__name__}.{name}")  # (which also sets it as an attribute)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list:
    return sorted(set(globals()) | set(_LAZY))


kernels.start()
