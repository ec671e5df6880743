"""``Optimizer``: parameter groups, ``zero_grad``, ``step`` and state dicts in PyTorch's shape."""

from __future__ import annotations

import copy
import math
from typing import Any

from .. import backend
from ..tensor import Tensor


class Optimizer:
    """Base class: holds ``param_groups`` (dicts with ``"params"`` and hyper-parameters) and a
    per-parameter ``state``. Subclasses implement :meth:`_update` for one parameter.

    Parameters are updated by replacing their ``.data`` with a new array (same shape and dtype), so
    graphs recorded before a step keep the values they were computed with.
    """

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.state: dict = {}
        self.param_groups: list[dict] = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            "but got a Tensor")  # fmt: skip
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict) -> None:
        """Add a group of parameters with its own hyper-parameters (the others from ``defaults``)."""
        if not isinstance(group, dict):
            raise TypeError(f"param group must be a dict, got {type(group).__name__}")
        group = dict(group)
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__} can only optimize Tensors, but parameter {i} is "
                                f"{type(p).__name__}")  # fmt: skip
            if not p.is_leaf or not p.requires_grad:
                raise ValueError(f"{type(self).__name__}: parameter {i} (shape {p.shape}) must be a leaf tensor that "
                                 "requires grad")  # fmt: skip
            if id(p) in seen:
                raise ValueError(f"{type(self).__name__}: some parameters appear in more than one parameter group")
            seen.add(id(p))
        group["params"] = params
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear ``.grad`` of every parameter (to ``None`` by default, as PyTorch)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.grad = None if set_to_none else p.grad * 0

    def step(self, closure=None) -> Any:
        """Update every parameter that has a ``.grad``; ``closure`` (optional) recomputes the loss."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if grad.shape != p.data.shape:
                    raise ValueError(f"{type(self).__name__}: gradient of shape {grad.shape} for a parameter of "
                                     f"shape {p.shape}")  # fmt: skip
                state = self.state.setdefault(p, {})
                new = self._update(p.data, grad, state, group)
                p.data = new.astype(p.data.dtype, copy=False)
        return loss

    def _update(self, param, grad, state: dict, group: dict):
        raise NotImplementedError

    # -- state dicts ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}`` like PyTorch."""
        index, groups, state = {}, [], {}
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            ids = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
                if p in self.state and self.state[p]:
                    state[index[id(p)]] = {k: _copy(v) for k, v in self.state[p].items()}
            packed["params"] = ids
            groups.append(packed)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyper-parameters and per-parameter state saved by :meth:`state_dict`."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"{type(self).__name__}.load_state_dict: the state dict has {len(groups)} parameter "
                             f"groups, the optimizer {len(self.param_groups)}")  # fmt: skip
        sizes = [(len(g["params"]), len(s["params"])) for g, s in zip(self.param_groups, groups, strict=True)]
        if any(a != b for a, b in sizes):
            raise ValueError(f"{type(self).__name__}.load_state_dict: parameter group sizes differ "
                             f"(optimizer, state dict): {sizes}")  # fmt: skip
        self.state = {}
        for group, saved in zip(self.param_groups, groups, strict=True):
            for p, i in zip(group["params"], saved["params"], strict=True):
                if i in state_dict["state"]:
                    entry = {}
                    for k, v in state_dict["state"][i].items():
                        v = _copy(v)
                        if backend.is_array(v) and v.shape == p.shape:
                            v = backend.namespace(p.data).asarray(v, dtype=p.data.dtype)
                        entry[k] = v
                    self.state[p] = entry
            for k, v in saved.items():
                if k != "params":
                    group[k] = copy.deepcopy(v)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines) + "\n)"


def check_hyperparameter(what: str, value, upper: float = math.inf) -> None:
    """Refuse a hyper-parameter that is not a finite number in ``[0, upper)`` (NaN included), as a
    ``ValueError`` in PyTorch's words.

    >>> check_hyperparameter("learning rate", float("nan"))
    Traceback (most recent call last):
    ...
    ValueError: Invalid learning rate: nan (must be a finite number >= 0)
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"Invalid {what}: {value!r} (must be a number)") from None
    if not (0.0 <= number < upper and math.isfinite(number)):
        bound = "" if upper == math.inf else f" and < {upper:g}"
        raise ValueError(f"Invalid {what}: {value} (must be a finite number >= 0{bound})")


def _copy(value):
    return value.copy() if backend.is_array(value) else copy.deepcopy(value)
