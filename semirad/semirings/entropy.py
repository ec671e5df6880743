"""Entropy: how spread out the gradient flow is, via the expectation semiring.

Give every path ``π`` from an element to the output the probability ``p(π) ∝ |w(π)|`` (``w(π)``
the product of its partials). The entropy of that distribution,
``H = log Z - Σ_π |w(π)| log |w(π)| / Z`` with ``Z = Σ_π |w(π)|``, is 0 for an element with one
path (or none) and ``log n`` for ``n`` paths of equal flow.

Following Du et al. (2023), "Generalizing Backpropagation for Gradient-Based Interpretability",
it is one sweep in the *expectation semiring*: a value is a pair ``(p, r)``,

    (p1, r1) ⊕ (p2, r2) = (p1 + p2, r1 + r2)
    (p1, r1) ⊗ (p2, r2) = (p1 p2, p1 r2 + p2 r1)

and an edge of partial ``w`` is the pair ``(|w|, -|w| log |w|)``. Over all paths this gives
``p = Z`` and ``r = -Σ_π |w(π)| log |w(π)|``, so ``H = log p + r / p``. Both components are float64;
an edge whose partial is exactly 0 is not an edge. (A ``Z`` that underflows float64, e.g. a
chain of 1100 halvings, reads as "no path", entropy 0.)
"""

from __future__ import annotations

import numpy as np

from .. import backend
from .base import Semiring


def _edge(xp, weights):
    """``|w|`` and ``log |w|`` (0 where ``w == 0``, where it is multiplied by 0 anyway), float64."""
    a = xp.abs(xp.asarray(weights)).astype(np.float64)
    with np.errstate(divide="ignore"):
        return a, xp.where(a > 0, xp.log(xp.where(a > 0, a, 1.0)), 0.0)


class Entropy(Semiring):
    """The entropy (nats) of the distribution over an element's paths with ``p(path) ∝ |product|``.

    >>> import semirad as sr
    >>> x = sr.tensor([1.0, 1.0], requires_grad=True)
    >>> r = sr.backward((x * 2.0 + x * 2.0).sum() + x[0], [x], semiring=Entropy())
    >>> np.round(r[x], 6).tolist()   # x[0]: flows 2, 2, 1; x[1]: two equal paths, log 2
    [1.05492, 0.693147]
    """

    name = "entropy"

    def zeros(self, xp, shape, dtype):
        return xp.zeros(shape, dtype=np.float64), xp.zeros(shape, dtype=np.float64)

    def seed(self, array):
        xp = backend.namespace(array)
        a, log = _edge(xp, array)
        return a, -a * log

    def shape(self, g):
        return tuple(g[0].shape)

    def to_array(self, g, dtype):
        """The entropy ``log p + r / p`` (float64; 0 where there is no path)."""
        p, r = g
        xp = backend.namespace(p)
        safe = xp.where(p > 0, p, 1.0)
        return xp.where(p > 0, xp.maximum(xp.log(safe) + r / safe, 0.0), 0.0)

    def add(self, a, b):
        return a[0] + b[0], a[1] + b[1]

    def scale(self, g, weights):
        p, r = g
        a, log = _edge(backend.namespace(p), weights)
        # (a, -a log a) ⊗ (p, r) = (a p, a r - a log(a) p)
        return p * a, a * (r - p * log)

    def sum(self, g, axes, keepdims=False):
        return tuple(t.sum(axis=axes, keepdims=keepdims) for t in g)

    def matmul(self, g, weights):
        p, r = g
        a, log = _edge(backend.namespace(p, weights), weights)
        # out[i, k] = Σ_j (a_jk p_ij, a_jk r_ij - a_jk log(a_jk) p_ij)
        return p @ a, r @ a - p @ (a * log)

    def scatter(self, g, index, shape, unique):
        if unique:
            return self.scatter_unique(g, index, shape)
        xp = backend.namespace(g[0])
        size = int(np.prod(shape, dtype=np.int64))
        positions = backend.flat_positions(xp, shape, index)
        return tuple(
            backend.scatter_add(xp, positions, xp.broadcast_to(t, positions.shape), size).reshape(shape) for t in g
        )

    def map(self, g, fn):
        return fn(g[0]), fn(g[1])

    def times(self, a, b):
        """``a ⊗ b`` of two values: not used by the sweep, which only scales by weights."""
        return a[0] * b[0], a[0] * b[1] + b[0] * a[1]

    def one(self, xp, shape):
        """The ⊗-identity ``(1, 0)``."""
        return xp.ones(shape), xp.zeros(shape)
