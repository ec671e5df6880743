"""``semirad.optim``: optimizers with PyTorch's update rules, ``zero_grad``, ``step`` and state dicts;
``lr_scheduler`` with PyTorch's schedulers."""

from . import lr_scheduler
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "lr_scheduler"]
