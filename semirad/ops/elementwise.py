"""Elementwise ops: each is its forward beside its local partial derivative(s).

One shared rule serves them all: scale ``g`` by the partial (the edge weight of the one edge
from each input element to its output element) and ⊕-reduce over broadcast axes.
A partial of ``None`` means the weight is exactly 1 (no scaling needed).
"""

from __future__ import annotations

import numpy as np

from .. import fast
from ..fast import one_minus_square
from .core import Op, unbroadcast


class Unary(Op):
    """``y = forward(xp, x, **params)`` with edge weight ``partial(xp, x, y, **params)``.

    ``fresh``: the partial is always a new array (or a number), never ``x``, ``y`` or another array
    that outlives the call, so the rule hands it to ``S.scale_temporary`` (which may write into it).
    """

    def __init__(self, name, forward, partial, fresh=False):
        self.name, self._forward, self._partial, self.fresh = name, forward, partial, fresh

    def forward(self, ctx, x, **params):
        y = self._forward(ctx.xp, x, **params) if params else self._forward(ctx.xp, x)
        ctx.saved = (x, y)
        return y

    def backward(self, ctx, g, S, needs):
        x, y = ctx.saved
        weight = self._partial(ctx.xp, x, y, **ctx.params) if ctx.params else self._partial(ctx.xp, x, y)
        if weight is None:
            return (g,)
        return (S.scale_temporary(g, weight) if self.fresh else S.scale(g, weight),)


class Binary(Op):
    """``y = forward(xp, a, b)`` (broadcasting) with edge weights ``partial_a``, ``partial_b``."""

    def __init__(self, name, forward, partial_a, partial_b):
        self.name, self._forward, self._partials = name, forward, (partial_a, partial_b)

    def forward(self, ctx, a, b, **params):
        y = self._forward(ctx.xp, a, b, **params) if params else self._forward(ctx.xp, a, b)
        ctx.saved = (a, b, y)
        return y

    def backward(self, ctx, g, S, needs):
        a, b, y = ctx.saved
        xp, params = ctx.xp, ctx.params
        out = []
        for need, partial, shape in zip(needs, self._partials, ctx.shapes):
            if not need:
                out.append(None)
            elif partial is _one:  # weight exactly 1: g itself
                out.append(unbroadcast(S, g, shape))
            else:
                weight = partial(xp, a, b, y, **params)
                out.append(unbroadcast(S, g if weight is None else S.scale(g, weight), shape))
        return tuple(out)


def _one(*_, **__):
    return None


def _as(mask, like):
    return mask.astype(like.dtype)


def _max_partial(xp, a, b, y):
    """∂max(a, b)/∂a: 1 where a wins, 1/2 on a tie (as PyTorch), 0 elsewhere."""
    return _as(a > b, y) + 0.5 * _as(a == b, y)


def _pow_partial(xp, x, y, p):
    """d(x**p)/dx = p x**(p-1), and exactly 0 for p == 0 (also at x == 0, as PyTorch)."""
    return p * x ** (p - 1) if p != 0 else xp.zeros_like(y)


def _pow_partial_base(xp, a, b, y):
    """d(a**b)/da = b a**(b-1), exactly 0 where b == 0 (as PyTorch)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return xp.where(b == 0, 0.0, b * a ** (b - 1.0))


def _pow_partial_exponent(xp, a, b, y):
    """d(a**b)/db = a**b log a, taken as 0 where a == 0 and b >= 0 (as PyTorch)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return xp.where((a == 0) & (b >= 0), 0.0, y * xp.log(a))


# fresh=True: the partial is a new array for every call, which the semiring may write the scaled
# gradient into (one temporary fewer per backward); EXP's partial is its saved output, NEG's a number
# fmt: off
NEG     = Unary("neg",     lambda xp, x: -x,                        lambda xp, x, y: -1.0)
EXP     = Unary("exp",     lambda xp, x: xp.exp(x),                 lambda xp, x, y: y)
LOG     = Unary("log",     lambda xp, x: xp.log(x),                 lambda xp, x, y: 1.0 / x, fresh=True)
TANH    = Unary("tanh",    lambda xp, x: fast.tanh(xp, x),
                           lambda xp, x, y: one_minus_square(xp, y), fresh=True)
SIGMOID = Unary("sigmoid", fast.sigmoid,                         fast.sigmoid_partial, fresh=True)
RELU    = Unary("relu",    lambda xp, x: xp.maximum(x, 0),          lambda xp, x, y: _as(x > 0, y), fresh=True)
ABS     = Unary("abs",     lambda xp, x: xp.abs(x),                 lambda xp, x, y: xp.sign(x), fresh=True)
SQRT    = Unary("sqrt",    lambda xp, x: xp.sqrt(x),                lambda xp, x, y: 0.5 / y, fresh=True)
SIN     = Unary("sin",     lambda xp, x: xp.sin(x),                 lambda xp, x, y: xp.cos(x), fresh=True)
COS     = Unary("cos",     lambda xp, x: xp.cos(x),                 lambda xp, x, y: -xp.sin(x), fresh=True)
POW_SCALAR = Unary("pow",  lambda xp, x, p: x ** p,                 _pow_partial, fresh=True)
CLIP    = Unary("clip",    lambda xp, x, lo, hi: xp.clip(x, lo, hi),
                           lambda xp, x, y, lo, hi: _as((x >= lo) & (x <= hi), y), fresh=True)

ADD = Binary("add", fast.add, _one, _one)  # a + b; a large bias add is faster there
SUB = Binary("sub", lambda xp, a, b: a - b, _one, lambda xp, a, b, y: -1.0)
MUL = Binary("mul", lambda xp, a, b: a * b, lambda xp, a, b, y: b, lambda xp, a, b, y: a)
DIV = Binary("div", lambda xp, a, b: a / b, lambda xp, a, b, y: 1.0 / b, lambda xp, a, b, y: -y / b)
POW = Binary("pow", lambda xp, a, b: a**b, _pow_partial_base, _pow_partial_exponent)
MAXIMUM = Binary("maximum", lambda xp, a, b: xp.maximum(a, b),
                 _max_partial, lambda xp, a, b, y: _max_partial(xp, b, a, y))
MINIMUM = Binary("minimum", lambda xp, a, b: xp.minimum(a, b),
                 lambda xp, a, b, y: _max_partial(xp, b, a, y), _max_partial)
WHERE = Binary("where", lambda xp, a, b, cond: xp.where(cond, a, b),
               lambda xp, a, b, y, cond: _as(xp.broadcast_to(cond, y.shape), y),
               lambda xp, a, b, y, cond: _as(~xp.broadcast_to(cond, y.shape), y))
# fmt: on
