"""Shared inputs of the linear-algebra tests: well-conditioned matrices of a few batch shapes, and
one function per op whose value is sign-invariant (squares of the factors of qr, svd and eigh,
whose column signs are a convention), so that semirad and PyTorch can be compared on it."""

from __future__ import annotations

import numpy as np

import semirad as sr

BATCHES = [(), (2,), (2, 1)]


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def general(r, batch, n=3, m=None):
    """A well-conditioned (..., m, n) matrix: N(0, 1) plus ``n`` on the diagonal."""
    m = n if m is None else m
    a = r.standard_normal(tuple(batch) + (m, n))
    k = min(m, n)
    a[..., np.arange(k), np.arange(k)] += n
    return a


def plain(r, batch, m=3, n=3):
    """N(0, 1) entries (distinct singular values almost surely)."""
    return r.standard_normal(tuple(batch) + (m, n))


def spd(r, batch, n=3):
    """A symmetric positive-definite matrix with well-separated eigenvalues."""
    x = r.standard_normal(tuple(batch) + (n, n))
    return x @ x.swapaxes(-1, -2) + np.diag(np.arange(1.0, n + 1)) * 2 + n * np.eye(n)


def triangular(r, batch, n=3, upper=False):
    a = general(r, batch, n)
    return np.triu(a) if upper else np.tril(a)


def weights(seed: int, *shapes):
    """Fixed weights for a weighted sum of outputs (one array per shape)."""
    r = np.random.default_rng(1000 + seed)
    return [r.standard_normal(s) for s in shapes]


def weighted(lib, parts, ws, square=()):
    """``Σ_k Σ ws[k] * parts[k]`` (squared for the indices in ``square``), in semirad or torch."""
    total = 0
    for k, (p, w) in enumerate(zip(parts, ws)):
        q = p * p if k in square else p
        w = lib.tensor(w) if lib is not sr else w
        total = total + (q * w).sum()
    return total
