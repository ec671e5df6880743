"""Contractions: backward is a semiring contraction of ``g`` with the other operand.

For ``Y = A @ B`` the scalar graph has an edge ``A[..., i, j] -> Y[..., i, k]`` of weight
``B[..., j, k]`` and an edge ``B[..., j, k] -> Y[..., i, k]`` of weight ``A[..., i, j]``, so

    gA[..., i, j] = ⊕_k g[..., i, k] ⊗ B[..., j, k]     (S.matmul(g, B^T))
    gB[..., j, k] = ⊕_i A[..., i, j] ⊗ g[..., i, k]     (S.matmul(g^T, A)^T)

then ⊕ over broadcast batch axes. 1-D operands are promoted as numpy does.

``linear(x, W, b) = x @ W.T + b`` (PyTorch's ``F.linear``, one op as PyTorch's ``addmm``) has the
edges ``x[..., i] -> y[..., j]`` of weight ``W[j, i]``, ``W[j, i] -> y[..., j]`` of weight
``x[..., i]`` and ``b[j] -> y[..., j]`` of weight 1: the composite ``x @ W.T + b`` without its two
inner vertices (``W.T``, a relabelling, and ``x @ W.T``, whose one edge has weight 1), so every
path's product is the same. Its rule makes the composite's contractions on the same operands: the
same values and bits in every semiring (tests/ops/test_linear.py); a path through it is two steps
shorter.
"""

from __future__ import annotations

from .. import backend, fast
from .core import Op, OpError, unbroadcast


class MatMul(Op):
    name = "matmul"

    def forward(self, ctx, a, b):
        ctx.saved = (a, b)
        if a.ndim and b.ndim and a.shape[-1] == b.shape[-2 if b.ndim > 1 else 0]:
            return fast.matmul(a, b)
        if a.ndim == 0 or b.ndim == 0:
            raise OpError(f"matmul: operands must be at least 1-D, got shapes {a.shape} and {b.shape}")
        raise OpError(f"matmul: shapes {a.shape} and {b.shape} are not aligned (inner sizes differ)")

    def backward(self, ctx, g, S, needs):
        a, b = ctx.saved
        xp = ctx.xp
        if a.ndim >= 2 and b.ndim == 2:  # a matrix, or a batch (a Linear over a sequence), times one matrix
            grad_a = S.matmul(g, b.T) if needs[0] else None
            grad_b = S.map(_rows_contraction(S, g, a), _swap_last) if needs[1] else None
            return grad_a, grad_b
        if a.ndim == 2 and b.ndim == 1:  # a matrix-vector product W @ x: the general case, fewer reshapes
            grad_a = S.matmul(S.map(g, _as_column), b.reshape(1, -1)) if needs[0] else None
            grad_b = S.map(S.matmul(S.map(g, _as_row), a), _as_vector) if needs[1] else None
            return grad_a, grad_b
        # (..., m, n) and (..., n, p); reshape, not [None, :], so that no stride is 0 (BLAS takes those)
        a2 = a.reshape(1, a.shape[0]) if a.ndim == 1 else a
        b2 = b.reshape(b.shape[0], 1) if b.ndim == 1 else b
        out_shape = backend.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]) + (a2.shape[-2], b2.shape[-1])
        g = S.map(g, lambda t: t.reshape(out_shape))
        grad_a = grad_b = None
        if needs[0]:
            full = S.matmul(g, xp.swapaxes(b2, -1, -2))
            grad_a = S.map(unbroadcast(S, full, a2.shape), lambda t: t.reshape(a.shape))
        if needs[1]:
            swap = _swap_last
            full = S.map(S.matmul(S.map(g, swap), a2), swap)
            grad_b = S.map(unbroadcast(S, full, b2.shape), lambda t: t.reshape(b.shape))
        return grad_a, grad_b


class Linear(Op):
    """``x @ w.T + b`` (``b`` optional) for ``w`` of shape ``(out, in)``, ``x`` of shape ``(..., in)``."""

    name = "linear"

    def forward(self, ctx, x, w, b=None):
        if w.ndim != 2 or x.ndim == 0 or x.shape[-1] != w.shape[1]:
            raise OpError(f"linear: input of shape {x.shape} does not match weight of shape {w.shape}")
        ctx.saved = (x, w)
        y = fast.matmul(x, w.T)  # (the composite's two calls: the same bits)
        return y if b is None else fast.add(ctx.xp, y, b)

    def backward(self, ctx, g, S, needs):
        x, w = ctx.saved
        grad_x = grad_w = grad_b = None
        if needs[0]:
            if x.ndim == 1:
                grad_x = S.map(S.matmul(S.map(g, _as_row), w), _as_vector)
            else:
                grad_x = S.matmul(g, w)
        if needs[1]:
            grad_w = _rows_contraction(S, g, x)
        if len(needs) == 2:
            return grad_x, grad_w
        if needs[2]:
            grad_b = unbroadcast(S, g, ctx.shapes[2])
        return grad_x, grad_w, grad_b


def _rows_contraction(S, g, a):
    """``S.matmul(gᵀ, a)`` over the rows of ``g`` and ``a`` (the gradient of a matrix that every row
    of ``a`` goes through: ``a @ W``, ``x @ W.T``), leading axes folded into the rows: one
    contraction, no per-batch partial sums to ⊕-add after (the same first-wins order over the
    flattened batch as the two-stage sum)."""
    if a.ndim != 2:
        g, a = S.map(g, _as_rows), a.reshape(-1, a.shape[-1])
    return S.matmul(S.map(g, _swap_last), a)


def _as_rows(t):
    return t.reshape(-1, t.shape[-1])


def _swap_last(t):
    return t.swapaxes(-1, -2)


def _as_column(t):
    return t.reshape(-1, 1)


def _as_row(t):
    return t.reshape(1, -1)


def _as_vector(t):
    return t.reshape(-1)


MATMUL = MatMul()
LINEAR = Linear()
