"""semirad: tape-based tensor autodiff whose one reverse sweep is parameterized by a semiring.

>>> import semirad as sr
>>> w = sr.tensor([1.0, -2.0], requires_grad=True, name="w")
>>> loss = (w * w).sum()
>>> sr.grad(loss, [w])[0].tolist()
[2.0, -4.0]
>>> sr.trace(loss, [w])[w].tolist()   # w*w is two edges of weight w each: the best path carries w
[1.0, -2.0]
"""

from . import analysis, data, nn, optim, semirings
from .api import backward, grad, trace
from .engine import component, no_grad
from .ops.core import OpError
from .ops.functions import *  # noqa: F401,F403
from .ops.functions import __all__ as _op_names
from .paths import Path, Step, Trace
from .rng import manual_seed
from .tensor import Tensor, tensor

__version__ = "0.1.0"

__all__ = [
    "Tensor", "tensor", "no_grad", "component", "backward", "grad", "trace", "semirings",
    "Path", "Step", "Trace", "OpError", "nn", "optim", "analysis", "data", "manual_seed", *_op_names,
]  # fmt: skip
