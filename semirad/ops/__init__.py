"""Every op, grouped by family: elementwise, index maps and reductions, contractions, composites."""

from .core import Op, OpError, apply  # noqa: F401
from .functions import *  # noqa: F401,F403
