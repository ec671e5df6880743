"""Adam and AdamW with PyTorch's update rules (bias-corrected moments, optional AMSGrad)."""

from __future__ import annotations

import math

from .. import backend
from .optimizer import Optimizer, check_hyperparameter


def _lerp(start, end, weight: float):
    """``torch.lerp`` as computed on the CPU (two formulas, for accuracy on either side of 1/2)."""
    if weight < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1 - weight)


class Adam(Optimizer):
    """``torch.optim.Adam``: ``m = lerp(m, g, 1 - beta1)``, ``v = beta2 v + (1 - beta2) g²``,
    ``p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)``; ``weight_decay`` adds
    ``weight_decay * p`` to the gradient (L2), ``amsgrad`` uses the running maximum of ``v``.

    >>> import numpy as np, semirad as sr
    >>> w = sr.nn.Parameter(np.array([1.0]))
    >>> opt = Adam([w], lr=0.1)
    >>> (w * w).sum().backward(); opt.step(); round(float(w.data[0]), 6)
    0.9
    """

    decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 amsgrad: bool = False, maximize: bool = False):  # fmt: skip
        check_hyperparameter("learning rate", lr)
        check_hyperparameter("epsilon value", eps)
        if len(betas) != 2:
            raise ValueError(f"Invalid beta parameters: {betas} (need two)")
        check_hyperparameter("beta parameter at index 0", betas[0], upper=1.0)
        check_hyperparameter("beta parameter at index 1", betas[1], upper=1.0)
        check_hyperparameter("weight_decay value", weight_decay)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize)  # fmt: skip
        super().__init__(params, defaults)

    def _update(self, param, grad, state, group):
        xp = backend.namespace(param)
        lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        g = -grad if group["maximize"] else grad
        if not state:
            state["step"] = 0.0
            state["exp_avg"] = xp.zeros_like(param)
            state["exp_avg_sq"] = xp.zeros_like(param)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = xp.zeros_like(param)
        state["step"] += 1
        step = state["step"]
        if wd:
            if self.decoupled:
                param = param * (1 - lr * wd)
            else:
                g = g + wd * param
        state["exp_avg"] = m = _lerp(state["exp_avg"], g, 1 - beta1)
        state["exp_avg_sq"] = v = state["exp_avg_sq"] * beta2 + (1 - beta2) * g * g
        bias_correction1 = 1 - beta1**step
        bias_correction2_sqrt = math.sqrt(1 - beta2**step)
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = v = xp.maximum(state["max_exp_avg_sq"], v)
        denom = xp.sqrt(v) / bias_correction2_sqrt + eps
        return param - (lr / bias_correction1) * (m / denom)


class AdamW(Adam):
    """``torch.optim.AdamW``: Adam with decoupled weight decay ``p *= 1 - lr * weight_decay``."""

    decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2,
                 amsgrad: bool = False, maximize: bool = False):  # fmt: skip
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)
