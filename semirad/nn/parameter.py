"""``nn.Parameter``: a leaf tensor that a :class:`~semirad.nn.Module` registers as trainable."""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor


class Parameter(Tensor):
    """A trainable leaf tensor (``requires_grad=True`` by default; the data is copied).

    Assigned as an attribute of a :class:`~semirad.nn.Module`, it is registered under that
    attribute's name and, unless named explicitly, takes its dotted name (``"fc1.weight"``) as
    its tensor name, so the steps of a traced path say which parameter they start from.

    >>> import semirad as sr
    >>> p = sr.nn.Parameter(np.zeros((2, 3)))
    >>> p.requires_grad, p.shape, p.is_leaf
    (True, (2, 3), True)
    """

    def __init__(self, data=None, requires_grad: bool = True, name: str | None = None):
        if data is None:
            data = np.empty(0)
        super().__init__(data, requires_grad=False, name=name)
        if self.data.dtype.kind not in "fc":
            raise TypeError(f"Parameter: only floating-point data can be a parameter, got dtype {self.data.dtype}")
        self._auto_name = name is None
        self.requires_grad = requires_grad

    def _set_auto_name(self, name: str) -> None:
        if self._auto_name:
            self.name = name

    def _replace(self, array) -> None:
        """Swap in a new array (same shape); a dtype change gets a fresh tape leaf."""
        dtype_changed = array.dtype != self.data.dtype
        self.data = array
        if dtype_changed and self.requires_grad:
            self.requires_grad = False
            self.requires_grad = True

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
