"""Semirings and rules for the tests of ``semirad.testing``: the issue's max-min-product (buggy and
fixed), the old worked ``MinAbsProduct`` of docs/semirings.md, one semiring per broken law and
primitive, and an op whose backward holds for SumProduct only."""

from __future__ import annotations

import numpy as np

from semirad import backend, fast
from semirad.ops.core import Op, apply
from semirad.semirings import MaxAbsProduct, Semiring, SumProduct

INF = np.inf


class MaxMinProduct(Semiring):
    """For every element, the largest and the smallest signed product over its paths: ``(hi, lo)``;
    "no path" is ``(-inf, inf)``; an edge of weight 0 is an edge (a path of product 0)."""

    name = "max-min-product"

    def zeros(self, xp, shape, dtype):
        return np.full(shape, -INF), np.full(shape, INF)

    def seed(self, array):
        a = np.array(array, dtype=np.float64)
        return a, a.copy()

    def one(self, xp, shape):
        return np.ones(shape), np.ones(shape)

    def shape(self, g):
        return g[0].shape

    def to_array(self, g, dtype):
        return np.stack([g[0], g[1]]).astype(dtype)

    def add(self, a, b):
        return np.maximum(a[0], b[0]), np.minimum(a[1], b[1])

    def scale(self, g, weights):
        hi, lo = g
        w = np.asarray(weights, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            x, y = hi * w, lo * w
        none = np.broadcast_to(hi == -INF, x.shape)  # the fix: no path stays no path
        return np.where(none, -INF, np.maximum(x, y)), np.where(none, INF, np.minimum(x, y))

    def times(self, a, b):
        with np.errstate(invalid="ignore"):
            products = [a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1]]
        none = (a[0] == -INF) | (b[0] == -INF)
        return np.where(none, -INF, np.maximum.reduce(products)), np.where(none, INF, np.minimum.reduce(products))

    def sum(self, g, axes, keepdims=False):
        axes = tuple(axes)
        return (np.max(g[0], axis=axes, keepdims=keepdims, initial=-INF),
                np.min(g[1], axis=axes, keepdims=keepdims, initial=INF))  # fmt: skip

    def matmul(self, g, weights):
        w = np.asarray(weights)
        return self.sum(self.scale(self.map(g, lambda a: a[..., :, :, None]), w[..., None, :, :]), (-2,))

    def scatter(self, g, index, shape, unique):
        hi, lo = self.zeros(np, shape, None)
        targets = np.arange(hi.size).reshape(shape)[index]
        np.maximum.at(hi.reshape(-1), targets, np.broadcast_to(g[0], targets.shape))
        np.minimum.at(lo.reshape(-1), targets, np.broadcast_to(g[1], targets.shape))
        return hi, lo

    def map(self, g, fn):
        return fn(g[0]), fn(g[1])


class BuggyMaxMinProduct(MaxMinProduct):
    """The issue's bug: "no path" times a negative weight becomes +inf (and times 0, NaN)."""

    def scale(self, g, weights):
        w = np.asarray(weights, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            x, y = g[0] * w, g[1] * w
        return np.maximum(x, y), np.minimum(x, y)


class OldMinAbsProduct(Semiring):
    """The worked example of docs/semirings.md before issue 23: ⊕ keeps ``a`` on ties, so it does
    not commute on ties of opposite sign."""

    name = "old-min-abs-product"

    def zeros(self, xp, shape, dtype):
        return xp.full(shape, np.inf, dtype=dtype)

    def seed(self, array):
        return np.where(array == 0, np.inf, array)

    def shape(self, g):
        return g.shape

    def to_array(self, g, dtype):
        return g.astype(dtype, copy=False)

    def add(self, a, b):
        return np.where(np.abs(b) < np.abs(a), b, a)

    def scale(self, g, weights):
        w = np.asarray(weights)
        with np.errstate(invalid="ignore"):
            return np.where((w == 0) | np.isinf(g), np.inf, g * w)

    def sum(self, g, axes, keepdims=False):
        axes = tuple(a % g.ndim for a in axes)
        moved = np.moveaxis(g, axes, tuple(range(g.ndim - len(axes), g.ndim)))
        flat = moved.reshape(moved.shape[: g.ndim - len(axes)] + (-1,))
        best = np.abs(flat).argmin(axis=-1)[..., None]
        out = np.take_along_axis(flat, best, axis=-1)[..., 0]
        return np.expand_dims(out, axes) if keepdims else out

    def matmul(self, g, weights):
        w = np.asarray(weights)
        candidates = self.scale(g[..., :, :, None], w[..., None, :, :])
        best = np.abs(candidates).argmin(axis=-2)[..., None, :]
        return np.take_along_axis(candidates, best, axis=-2)[..., 0, :]

    def scatter(self, g, index, shape, unique):
        out = np.full(shape, np.inf, dtype=g.dtype)
        flat = out.reshape(-1)
        targets = np.arange(flat.size).reshape(shape)[index]
        for t, v in zip(targets.ravel(), np.broadcast_to(g, targets.shape).ravel()):
            flat[t] = self.add(flat[t], v)
        return out

    def map(self, g, fn):
        return fn(g)


# -- one broken law each ---------------------------------------------------------------------------


class AveragingPlus(SumProduct):
    """⊕ is the mean: commutative, not associative."""

    def add(self, a, b):
        return (a + b) / 2


class ZeroIsOne(SumProduct):
    """"No path" is 1: not the identity of ⊕."""

    def zeros(self, xp, shape, dtype):
        return xp.ones(shape, dtype=dtype)


class DoubleScale(SumProduct):
    """Every edge counts twice: the weight 1 is not the identity of ⊗."""

    def scale(self, g, weights):
        return g * weights * 2


class BentScale(SumProduct):
    """Weights above 1 in magnitude are bent (``w -> 2w - sign(w)``): ⊗ by edges is not associative."""

    def scale(self, g, weights):
        w = np.asarray(weights, dtype=np.float64)
        return g * np.where(np.abs(w) > 1, 2 * w - np.sign(w), w)


class SignedMaxProduct(Semiring):
    """⊕ = max of signed products, ⊗ = ×: a negative weight turns the max into the min, so ⊗ does
    not distribute over ⊕."""

    name = "signed-max-product"

    def zeros(self, xp, shape, dtype):
        return np.full(shape, -INF)

    def seed(self, array):
        return np.array(array, dtype=np.float64)

    def one(self, xp, shape):
        return np.ones(shape)

    def shape(self, g):
        return g.shape

    def to_array(self, g, dtype):
        return g.astype(dtype)

    def add(self, a, b):
        return np.maximum(a, b)

    def scale(self, g, weights):
        with np.errstate(invalid="ignore"):
            return np.where(g == -INF, -INF, g * np.asarray(weights, dtype=np.float64))

    def times(self, a, b):
        with np.errstate(invalid="ignore"):
            return np.where((a == -INF) | (b == -INF), -INF, a * b)

    def sum(self, g, axes, keepdims=False):
        return np.max(g, axis=tuple(axes), keepdims=keepdims, initial=-INF)

    def matmul(self, g, weights):
        return self.sum(self.scale(g[..., :, :, None], np.asarray(weights)[..., None, :, :]), (-2,))

    def scatter(self, g, index, shape, unique):
        out = np.full(shape, -INF)
        targets = np.arange(out.size).reshape(shape)[index]
        np.maximum.at(out.reshape(-1), targets, np.broadcast_to(g, targets.shape))
        return out

    def map(self, g, fn):
        return fn(g)


# -- one broken primitive each ---------------------------------------------------------------------


class MaxSum(SumProduct):
    """``sum`` keeps the largest term instead of adding."""

    def sum(self, g, axes, keepdims=False):
        return np.max(g, axis=tuple(axes), keepdims=keepdims, initial=0.0) if axes else g


class AbsMatmul(SumProduct):
    """``matmul`` contracts with ``|W|``."""

    def matmul(self, g, weights):
        return fast.contract(g, np.abs(weights))


class OverwritingScatter(SumProduct):
    """``scatter`` lets a repeated target keep only its last contribution."""

    def scatter(self, g, index, shape, unique):
        out = np.zeros(shape, dtype=g.dtype)
        targets = backend.flat_positions(np, shape, index)
        out.reshape(-1)[targets.reshape(-1)] = np.broadcast_to(g, targets.shape).reshape(-1)
        return out


class ValuesOnlyMap(MaxAbsProduct):
    """``map`` moves the values but not their ids."""

    def map(self, g, fn):
        moved = fn(g[0])
        return moved, np.broadcast_to(g[1].reshape(-1)[: 1], moved.shape).copy() if moved.size else g[1][:0]


class OverwritingAddAt(SumProduct):
    """``add_at`` writes the contribution over the buffer instead of ⊕-adding it."""

    def add_at(self, buffer, index, g):
        buffer[index] = g
        return buffer


class LazyTemporary(SumProduct):
    """``scale_temporary`` forgets to scale."""

    def scale_temporary(self, g, weights):
        return g


# -- a rule written for SumProduct only --------------------------------------------------------------


class DoubledExp(Op):
    """``2 exp(x)``, whose one edge of weight ``2 e^x`` the backward builds as ``g e^x ⊕ g e^x``: right
    for SumProduct, wrong in every semiring whose ⊕ is not +."""

    name = "doubled_exp"

    def forward(self, ctx, a):
        ctx.saved = np.exp(a)
        return 2 * ctx.saved

    def backward(self, ctx, g, S, needs):
        edge = S.scale(g, ctx.saved)
        return (S.add(edge, edge),)


def doubled_exp(x):
    return apply(DoubledExp(), x)


class ForgotTheTwo(Op):
    """``x * x`` with the backward of ``x²/2``: wrong for SumProduct too."""

    name = "forgot_the_two"

    def forward(self, ctx, a):
        ctx.saved = a
        return a * a

    def backward(self, ctx, g, S, needs):
        return (S.scale(g, ctx.saved),)


def forgot_the_two(x):
    return apply(ForgotTheTwo(), x)
