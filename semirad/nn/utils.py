"""``nn.utils``: gradient clipping as ``torch.nn.utils`` (``clip_grad_norm_``, ``clip_grad_value_``).

Both read each parameter's ``.grad`` and replace it with a new array (gradients may be read-only
arrays that a graph still uses), so they never write into an array in place.

>>> import numpy as np, semirad as sr
>>> w = sr.nn.Parameter(np.array([3.0, 4.0]))
>>> (w * w).sum().backward()                    # grad (6, 8): norm 10
>>> round(clip_grad_norm_([w], max_norm=1.0).item(), 6), np.round(w.grad, 6).tolist()
(10.0, [0.6, 0.8])
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from .. import backend
from ..tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _with_grads(parameters) -> list[Tensor]:
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"expected tensors (parameters), but element {i} is {type(p).__name__}")
    return [p for p in params if p.grad is not None]


def _vector_norm(array, norm_type: float):
    """``torch.linalg.vector_norm(array, norm_type)`` of a whole array (as a 0-d array of its dtype)."""
    xp = backend.namespace(array)
    a = xp.abs(array)
    if a.size == 0:
        return xp.asarray(0.0, dtype=a.dtype)
    if norm_type == math.inf:
        return a.max()
    if norm_type == -math.inf:
        return a.min()
    if norm_type == 0:
        return xp.asarray(xp.count_nonzero(a), dtype=a.dtype)
    if norm_type == 1:
        return a.sum()
    if norm_type == 2:
        return xp.sqrt((a * a).sum())
    return (a**norm_type).sum() ** (1.0 / norm_type)


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:  # fmt: skip
    """Scale the gradients of ``parameters`` so that their joint ``norm_type``-norm is at most
    ``max_norm``; returns the norm before clipping (a 0-d tensor), as ``torch.nn.utils.clip_grad_norm_``.

    The joint norm is the norm of the per-parameter norms; every gradient is multiplied by
    ``min(max_norm / (total_norm + 1e-6), 1)``. A non-finite total norm raises a ``RuntimeError`` when
    ``error_if_nonfinite``, and otherwise scales by it as PyTorch does (NaN gradients, or zeros where
    the norm is infinite). ``foreach`` is accepted and ignored.

    >>> import numpy as np, semirad as sr
    >>> w = sr.nn.Parameter(np.array([1.0, -2.0]))
    >>> (w * 3.0).sum().backward()
    >>> clip_grad_norm_(w, 1.0, norm_type=float("inf")).item(), np.round(w.grad, 6).tolist()
    (3.0, [1.0, 1.0])
    """
    params = _with_grads(parameters)
    norm_type = float(norm_type)
    if not params:
        return Tensor(np.asarray(0.0))
    norms = [_vector_norm(p.grad, norm_type) for p in params]
    xp = backend.namespace(norms[0])
    total = _vector_norm(xp.stack([xp.asarray(n) for n in norms]), norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} for gradients from `parameters` is non-finite "
            f"({float(total)}), so it cannot be clipped. To disable this error and scale the gradients by the "
            "non-finite norm anyway, set `error_if_nonfinite=False`"
        )
    coefficient = xp.minimum(float(max_norm) / (total + 1e-6), 1.0)
    with np.errstate(invalid="ignore"):  # an infinite norm scales the infinite entries by 0, as PyTorch
        for p in params:
            grad = p.grad
            p.grad = (grad * coefficient.astype(grad.dtype)).astype(grad.dtype, copy=False)
    return Tensor(xp.asarray(total))


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float, foreach: bool | None = None) -> None:
    """Clamp every gradient of ``parameters`` to ``[-clip_value, clip_value]``, as
    ``torch.nn.utils.clip_grad_value_`` (``foreach`` is accepted and ignored).

    >>> import numpy as np, semirad as sr
    >>> w = sr.nn.Parameter(np.array([1.0, -2.0]))
    >>> (w * w).sum().backward()
    >>> clip_grad_value_([w], 1.5); w.grad.tolist()
    [1.5, -1.5]
    """
    clip_value = float(clip_value)
    for p in _with_grads(parameters):
        xp = backend.namespace(p.grad)
        p.grad = xp.clip(p.grad, -clip_value, clip_value)
