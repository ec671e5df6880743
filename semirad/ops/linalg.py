"""Linear algebra: the ops behind :mod:`semirad.linalg` and their public functions.

Every output element of a factorisation or an inverse may depend on every input element of its
matrix, so its scalar graph is a dense bipartite block per matrix of the batch, with the local
partials ``∂out_i/∂in_j`` as edge weights (docs/linalg.md). Three kinds of rule apply them:

* **product form** (``inv``, ``solve``, ``solve_triangular``): every partial is one product of two
  factors (``∂(A⁻¹)[i, j]/∂A[k, l] = -A⁻¹[i, k] A⁻¹[l, j]``), so ``g`` goes through two successive
  semiring contractions (``S.matmul``), exact in every semiring because ⊗ distributes over ⊕, in
  O(n³);
* **one weight per element** (``slogdet``: ``∂ log|det A| / ∂A[k, l] = A⁻¹[l, k]``): ``S.scale``;
* **dense local Jacobian** (:class:`DenseJacobianOp`: ``cholesky``, ``qr``, ``svd``, ``eigh``): for
  SumProduct the closed-form vector-Jacobian product (Murray 2016; Seeger et al. 2017; Townsend
  2016; Giles 2008), for every other semiring the Jacobian itself, read off that rule with one-hot
  seeds in one batched call and handed to ``S.matmul``: exact in every semiring, at n⁴ weights per
  n x n matrix, under a limit (:func:`set_dense_limit`).

The composites (``det``, ``matrix_power``, ``norm``, ``trace``, ``diagonal``, ``outer``) are built
from ops, so their intermediates are vertices of the graph.
"""

from __future__ import annotations

import math
import threading
from collections import namedtuple
from typing import Any

import numpy as np

from .. import backend
from ..semirings.sum_product import SumProduct
from . import functions as F
from . import methods as M
from .core import Op, OpError, apply, tensor_type

#: what the functions take and return: a semirad Tensor (the type :mod:`semirad.tensor` registers,
#: which ops may not import), or as an argument an array or anything numpy converts (a constant)
TensorLike = Any

SlogdetResult = namedtuple("SlogdetResult", ["sign", "logabsdet"])
QRResult = namedtuple("QRResult", ["Q", "R"])
SVDResult = namedtuple("SVDResult", ["U", "S", "Vh"])
EighResult = namedtuple("EighResult", ["eigenvalues", "eigenvectors"])

# -- the limit of the dense rule ------------------------------------------------------------------

#: default most entries a dense local Jacobian may have in one backward (weights, and one-hot seeds
#: as many): 2**22, 32 MiB in float64; for one n x n matrix: cholesky up to n = 53, eigh 44, qr 34, svd 31
DENSE_LIMIT_DEFAULT = 1 << 22
_limit = {"entries": DENSE_LIMIT_DEFAULT}
_limit_lock = threading.Lock()


def set_dense_limit(entries: int) -> int:
    """Set the most weights (entries) a dense local Jacobian may have in one op's backward, for
    every semiring but SumProduct (whose closed-form rules have no such cost); returns the previous
    limit. Above it the backward raises an :class:`~semirad.OpError` naming the op and the shape
    (instead of running out of memory).

    >>> import semirad as sr
    >>> old = sr.linalg.set_dense_limit(1 << 24)
    >>> sr.linalg.set_dense_limit(old) == 1 << 24
    True
    """
    entries = int(entries)
    if entries < 1:
        raise ValueError(f"set_dense_limit: the limit must be a positive number of entries, got {entries}")
    with _limit_lock:
        old, _limit["entries"] = _limit["entries"], entries
    return old


def dense_limit() -> int:
    """The current limit of :func:`set_dense_limit` (entries of one dense local Jacobian).

    >>> import semirad as sr
    >>> sr.linalg.dense_limit() >= 1
    True
    """
    return _limit["entries"]


# -- helpers on real arrays -----------------------------------------------------------------------


def _mT(a):
    return a.swapaxes(-1, -2)


def _contiguous(xp, a):
    return xp.ascontiguousarray(a)


def _sym(a):
    return (a + _mT(a)) * 0.5


def _tensor(x):
    Tensor = tensor_type()
    return x if isinstance(x, Tensor) else Tensor(x)


def _square(name: str, shape: tuple) -> int:
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise OpError(f"{name}: expected a square matrix or a batch of them (..., n, n), got shape {tuple(shape)}")
    return shape[-1]


def _matrix(name: str, shape: tuple) -> None:
    if len(shape) < 2:
        raise OpError(f"{name}: expected a matrix or a batch of them (..., m, n), got shape {tuple(shape)}")


def _first(mask) -> tuple:
    """The batch index of the first True element of ``mask`` (a batch-shaped bool array)."""
    mask = np.asarray(mask)
    if mask.ndim == 0:
        return ()
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(mask)), mask.shape))


def _where(shape: tuple, batch_index: tuple) -> str:
    return f"input shape {tuple(shape)}" + (f", batch element {batch_index}" if batch_index else "")


def _singular(name: str, xp, a, what: str) -> OpError:
    sign = np.asarray(xp.linalg.slogdet(a)[0] if a.size else np.ones(a.shape[:-2]))
    return OpError(f"{name}: the matrix is singular ({_where(a.shape, _first(sign == 0))}): {what}")


def _inverse(name: str, xp, a, what: str):
    try:
        out = xp.linalg.inv(a)
    except np.linalg.LinAlgError:
        raise _singular(name, xp, a, what) from None
    return out


def _gap_error(name: str, shape: tuple, what: str, values, batch_index) -> OpError:
    return OpError(
        f"{name}: the gradient does not exist: {what} ({_where(shape, batch_index)}; values "
        f"{np.round(np.asarray(values), 6).tolist()})"
    )


def _distinct(name: str, shape: tuple, values, what: str, xp) -> None:
    """Raise where two of ``values`` (sorted along the last axis) are equal to within
    ``size * eps * max|values|`` in some batch element."""
    if values.shape[-1] < 2:
        return
    gaps = xp.abs(xp.diff(values, axis=-1))
    scale = xp.max(xp.abs(values), axis=-1, keepdims=True)
    tol = values.shape[-1] * np.finfo(values.dtype).eps * scale
    bad = xp.any(gaps <= tol, axis=-1)
    if bool(xp.any(bad)):
        index = _first(bad)
        raise _gap_error(name, shape, what, values[index], index)


# -- product-form ops: two semiring contractions ---------------------------------------------------


def _swap(t):
    return t.swapaxes(-1, -2)


def _solve_weights_a(S, g, ainv, x, xp):
    """``gA[k, l] = ⊕_{i, c} (-A⁻¹[i, k] X[l, c]) ⊗ g[i, c]`` as two contractions: first over ``c``
    with ``X``, then over ``i`` with ``-A⁻¹`` (each edge's weight is the product of the two)."""
    h = S.matmul(g, _contiguous(xp, _mT(x)))  # h[i, l] = ⊕_c g[i, c] ⊗ X[l, c]
    return S.map(S.matmul(S.map(h, _swap), -ainv), _swap)  # gA^T[l, k] = ⊕_i h^T[l, i] ⊗ (-A⁻¹)[i, k]


def _solve_weights_b(S, g, ainv):
    """``gB[l, c] = ⊕_i A⁻¹[i, l] ⊗ g[i, c]``."""
    return S.map(S.matmul(S.map(g, _swap), ainv), _swap)


class Inv(Op):
    """``A⁻¹``: an edge ``A[k, l] -> Y[i, j]`` of weight ``-Y[i, k] Y[l, j]``."""

    name = "inv"

    def forward(self, ctx, a):
        _square(self.name, a.shape)
        y = _inverse(self.name, ctx.xp, a, "its inverse does not exist")
        ctx.saved = y
        return y

    def backward(self, ctx, g, S, needs):
        y = ctx.saved
        return (_solve_weights_a(S, g, y, y, ctx.xp),)


class Solve(Op):
    """``X = A⁻¹ B`` for matrices ``B`` of ``A``'s batch shape: edges ``A[k, l] -> X[i, c]`` of
    weight ``-A⁻¹[i, k] X[l, c]`` and ``B[l, c] -> X[i, c]`` of weight ``A⁻¹[i, l]``. With ``upper``
    (True or False) ``A`` is triangular: only that triangle is read (its strict part with ``unit``,
    whose diagonal is taken as 1), so only its elements have edges."""

    def __init__(self, name: str):
        self.name = name

    def forward(self, ctx, a, b, upper=None, unit=False):
        xp = ctx.xp
        n = _square(self.name, a.shape)
        if b.ndim < 2 or b.shape[-2] != n or b.shape[:-2] != a.shape[:-2]:
            raise OpError(f"{self.name}: shapes {tuple(a.shape)} and {tuple(b.shape)} do not match (expected "
                          "(..., n, n) and (..., n, k) with the same batch shape)")  # fmt: skip
        if upper is not None:
            a = xp.triu(a) if upper else xp.tril(a)
            if unit:
                a = a.copy()
                a[..., xp.arange(n), xp.arange(n)] = 1
        try:
            x = xp.linalg.solve(a, b)
        except np.linalg.LinAlgError:
            raise _singular(self.name, xp, a, "the system has no unique solution") from None
        ctx.saved = (a, x)
        return x

    def backward(self, ctx, g, S, needs):
        a, x = ctx.saved
        xp = ctx.xp
        ainv = _inverse(self.name, xp, a, "no gradient")
        grad_b = _solve_weights_b(S, g, ainv) if needs[1] else None
        grad_a = None
        if needs[0]:
            grad_a = _solve_weights_a(S, g, ainv, x, xp)
            upper, unit = ctx.params.get("upper"), ctx.params.get("unit", False)
            if upper is not None:  # only the triangle was read: the other elements have no edge
                n = a.shape[-1]
                rows, cols = (np.triu_indices if upper else np.tril_indices)(n, (1 if upper else -1) if unit else 0)
                rows, cols = xp.asarray(rows), xp.asarray(cols)
                index = (Ellipsis, rows, cols)
                grad_a = S.scatter(S.map(grad_a, lambda t: t[index]), index, ctx.shapes[0], True)
        return grad_a, grad_b


INV = Inv()
SOLVE = Solve("solve")
SOLVE_TRIANGULAR = Solve("solve_triangular")


class LogAbsDet(Op):
    """``log|det A|``: an edge ``A[k, l] -> out`` of weight ``A⁻¹[l, k]``. The gradient does not
    exist at a singular matrix: the backward raises an OpError naming the op (``det`` or
    ``slogdet``, the function called) and the shape."""

    def __init__(self, name: str):
        self.name = name

    def forward(self, ctx, a):
        _square(self.name, a.shape)
        sign, logabsdet = ctx.xp.linalg.slogdet(a)
        ctx.saved = (a, sign)
        return logabsdet

    def backward(self, ctx, g, S, needs):
        a, sign = ctx.saved
        xp = ctx.xp
        singular = sign == 0
        if bool(xp.any(singular)):
            raise OpError(
                f"{self.name}: the gradient of log|det| does not exist at a singular matrix "
                f"({_where(a.shape, _first(singular))})"
            )
        weights = _contiguous(xp, _mT(_inverse(self.name, xp, a, "no gradient")))
        batch = a.shape[:-2]
        spread = S.map(g, lambda t: xp.broadcast_to(t.reshape(batch + (1, 1)), a.shape))
        return (S.scale(spread, weights),)


LOGABSDET = LogAbsDet("slogdet")
LOGABSDET_OF_DET = LogAbsDet("det")


# -- the dense local Jacobian ----------------------------------------------------------------------


class DenseJacobianOp(Op):
    """An op with a vector-Jacobian rule but no element-level structure: each output element of a
    batch item may depend on each input element of that item.

    A subclass defines ``forward`` (which sets ``ctx.saved`` to a dict with at least ``"batch"``,
    the batch shape shared by the inputs and the output) and :meth:`vjp`, the SumProduct rule on
    real arrays, written so that extra leading axes of ``g`` broadcast (``...``-batched matmuls,
    ``swapaxes(-1, -2)``). SumProduct uses :meth:`vjp`; every other semiring gets the local
    Jacobian ``J[..., o, i] = ∂out[..., o]/∂in[..., i]`` (from :meth:`jacobian`: one-hot seeds
    through :meth:`vjp` in one call, unless a subclass has a closed form) contracted with ``g`` by
    ``S.matmul``: every edge weight is an exact partial, in every semiring. :meth:`support` may name
    the output elements that depend on the input at all (the others are constants: no edges).
    """

    def vjp(self, ctx, g, needs) -> tuple:
        raise NotImplementedError(f"op {self.name!r} has no vector-Jacobian rule")

    def support(self, ctx):
        """Flat indices (within one batch item's output) of the elements that depend on the
        inputs; None: all of them."""
        return None

    def jacobian(self, ctx, needs, rows) -> list:
        """``J_k`` of shape ``batch + (len(rows), in_k size)`` for every needed input (None for the
        others): one-hot seeds at the output elements ``rows``, through :meth:`vjp` in one call."""
        xp = ctx.xp
        batch = ctx.saved["batch"]
        core = tuple(ctx.shape[len(batch) :])
        size = math.prod(core)
        seeds = xp.zeros((len(rows), size), dtype=ctx.dtype)
        seeds[xp.arange(len(rows)), xp.asarray(rows)] = 1
        seeds = xp.broadcast_to(seeds.reshape((len(rows),) + (1,) * len(batch) + core), (len(rows),) + tuple(ctx.shape))
        out = []
        for k, grad in enumerate(self.vjp(ctx, seeds, needs)):
            if grad is None or not needs[k]:
                out.append(None)
                continue
            grad = xp.moveaxis(grad, 0, len(batch))
            out.append(_contiguous(xp, grad.reshape(batch + (len(rows), -1))))
        return out

    def backward(self, ctx, g, S, needs):
        if type(S) is SumProduct:
            return self.vjp(ctx, g, needs)
        batch = ctx.saved["batch"]
        size = math.prod(ctx.shape[len(batch) :])
        rows = self.support(ctx)
        rows = np.arange(size) if rows is None else np.asarray(rows)
        inputs = sum(math.prod(s[len(batch) :]) for s, need in zip(ctx.shapes, needs) if need)
        entries = math.prod(batch) * len(rows) * max(inputs, size)
        if entries > dense_limit():
            raise OpError(
                f"{self.name}: the dense local Jacobian for semiring {S.name!r} would have {entries:,} entries "
                f"(input shape {tuple(ctx.shapes[0])}, output shape {tuple(ctx.shape)}), above the limit of "
                f"{dense_limit():,}: raise it with sr.linalg.set_dense_limit(), or use SumProduct (sr.grad), "
                "whose closed-form rule costs O(n³) (docs/linalg.md)"
            )
        xp = ctx.xp
        index = (Ellipsis, xp.asarray(rows))
        picked = S.map(g, lambda t: t.reshape(batch + (size,))[index].reshape(batch + (1, len(rows))))
        out = []
        for k, J in enumerate(self.jacobian(ctx, needs, rows)):
            if J is None:
                out.append(None)
                continue
            shape = ctx.shapes[k]
            out.append(S.map(S.matmul(picked, J), lambda t, shape=shape: t.reshape(shape)))
        return tuple(out)


class Cholesky(DenseJacobianOp):
    """``L`` with ``L Lᵀ = (A + Aᵀ)/2``: the factor of the symmetric part, so that the gradient is
    symmetric (as PyTorch's) and equals the derivative of what is computed. Murray (2016)."""

    name = "cholesky"

    def forward(self, ctx, a):
        xp = ctx.xp
        n = _square(self.name, a.shape)
        s = _sym(a)
        try:
            L = xp.linalg.cholesky(s)
        except np.linalg.LinAlgError:
            eig = np.asarray(xp.linalg.eigvalsh(s)).min(axis=-1) if n else np.zeros(a.shape[:-2])
            raise OpError(
                f"cholesky: the matrix is not positive definite ({_where(a.shape, _first(eig <= 0))})"
            ) from None
        ctx.saved = {"batch": a.shape[:-2], "L": L}
        return L

    def support(self, ctx):
        n = ctx.shape[-1]
        return np.flatnonzero(np.tril(np.ones((n, n), dtype=bool)))

    def vjp(self, ctx, g, needs):
        xp = ctx.xp
        L = ctx.saved["L"]
        if "Linv" not in ctx.saved:
            ctx.saved["Linv"] = xp.linalg.inv(L)
        Linv = ctx.saved["Linv"]
        P = xp.tril(_mT(L) @ xp.tril(g))  # Φ(Lᵀ ḡ): the lower triangle, its diagonal halved
        d = xp.arange(L.shape[-1])
        P[..., d, d] *= 0.5
        S_ = _mT(Linv) @ P @ Linv
        return (_sym(S_),)


class QR(DenseJacobianOp):
    """Reduced QR, ``Q`` and ``R`` packed into one output (``Q`` then ``R``, each flattened). The
    gradient (m >= n, R invertible): ``M = R ḡ_Rᵀ - ḡ_Qᵀ Q``, ``Ā = (ḡ_Q + Q copyltu(M)) R⁻ᵀ``
    (Walter & Lehmann 2018; Seeger et al. 2017), as PyTorch."""

    name = "qr"

    def forward(self, ctx, a):
        xp = ctx.xp
        _matrix(self.name, a.shape)
        q, r = xp.linalg.qr(a)
        batch = a.shape[:-2]
        ctx.saved = {"batch": batch, "Q": q, "R": r}
        return xp.concatenate([q.reshape(batch + (-1,)), r.reshape(batch + (-1,))], axis=-1)

    def support(self, ctx):
        q, r = ctx.saved["Q"], ctx.saved["R"]
        nq = q.shape[-1] * q.shape[-2]
        upper = np.flatnonzero(np.triu(np.ones(r.shape[-2:], dtype=bool)))
        return np.concatenate([np.arange(nq), nq + upper])

    def vjp(self, ctx, g, needs):
        xp = ctx.xp
        q, r = ctx.saved["Q"], ctx.saved["R"]
        m, k = q.shape[-2:]
        n = r.shape[-1]
        shape = (m, n)
        if m < n:
            raise OpError(f"qr: the gradient of a wide matrix (m < n) is not implemented (input shape "
                          f"{tuple(q.shape[:-2]) + shape})")  # fmt: skip
        diag = xp.abs(xp.diagonal(r, axis1=-2, axis2=-1))
        tiny = diag <= n * np.finfo(r.dtype).eps * xp.max(diag, axis=-1, keepdims=True)
        if bool(xp.any(tiny)):
            raise OpError(f"qr: the gradient does not exist for a matrix of deficient column rank "
                          f"({_where(tuple(q.shape[:-2]) + shape, _first(xp.any(tiny, axis=-1)))})")  # fmt: skip
        gq = g[..., : m * k].reshape(g.shape[:-1] + (m, k))
        gr = g[..., m * k :].reshape(g.shape[:-1] + (k, n))
        M = r @ _mT(gr) - _mT(gq) @ q
        lower = xp.tril(M, -1)
        copy = lower + _mT(lower) + xp.tril(xp.triu(M))  # symmetric, from M's lower triangle
        x = gq + q @ copy
        return (_mT(xp.linalg.solve(r, _mT(x))),)  # x R⁻ᵀ


class SVD(DenseJacobianOp):
    """Reduced SVD ``A = U diag(S) Vh``; with ``uv`` the output packs ``U``, ``S``, ``Vh``, else it
    is ``S`` alone. Gradient: Townsend (2016), as PyTorch; it needs distinct singular values (and
    non-zero ones for a non-square ``A``) where ``U`` or ``Vh`` get a gradient."""

    name = "svd"

    def forward(self, ctx, a, uv=True):
        xp = ctx.xp
        _matrix(self.name, a.shape)
        u, s, vh = xp.linalg.svd(a, full_matrices=False)
        batch = a.shape[:-2]
        ctx.saved = {"batch": batch, "U": u, "S": s, "Vh": vh}
        if not uv:
            return s
        return xp.concatenate([u.reshape(batch + (-1,)), s, vh.reshape(batch + (-1,))], axis=-1)

    def vjp(self, ctx, g, needs):
        xp = ctx.xp
        u, s, vh = ctx.saved["U"], ctx.saved["S"], ctx.saved["Vh"]
        m, k = u.shape[-2:]
        n = vh.shape[-1]
        shape = tuple(u.shape[:-2]) + (m, n)
        if not ctx.params.get("uv", True):
            return (u @ (g[..., :, None] * vh),)
        gu = g[..., : m * k].reshape(g.shape[:-1] + (m, k))
        gs = g[..., m * k : m * k + k]
        gvh = g[..., m * k + k :].reshape(g.shape[:-1] + (k, n))
        inner = gs[..., :, None] * xp.eye(k, dtype=s.dtype)
        if bool(xp.any(gu)) or bool(xp.any(gvh)):
            _distinct(self.name, shape, s[..., ::-1] ** 2, "repeated singular values", xp)
            if m != n:
                small = s <= max(m, n) * np.finfo(s.dtype).eps * s[..., :1]
                if bool(xp.any(small)):
                    index = _first(xp.any(small, axis=-1))
                    raise _gap_error(self.name, shape, "a zero singular value of a non-square matrix",
                                     s[index], index)  # fmt: skip
            s2 = s**2
            diff = s2[..., None, :] - s2[..., :, None]  # s_j² - s_i²
            eye = xp.eye(k, dtype=bool)
            F_ = xp.where(eye, 0.0, 1.0 / xp.where(eye, 1.0, diff))
            gv = _mT(gvh)
            ut_gu = _mT(u) @ gu
            vt_gv = vh @ gv  # Vᵀ ḡ_V
            inner = (
                inner + (F_ * (ut_gu - _mT(ut_gu))) * s[..., None, :] + s[..., :, None] * (F_ * (vt_gv - _mT(vt_gv)))
            )
            out = u @ inner @ vh
            if m > k:  # (I - U Uᵀ) ḡ_U S⁻¹ Vᵀ
                out = out + (gu - u @ ut_gu) / s[..., None, :] @ vh
            if n > k:  # U S⁻¹ ḡ_Vᵀ (I - V Vᵀ)
                out = out + u @ ((gvh - _mT(vt_gv) @ vh) / s[..., :, None])
            return (out,)
        return (u @ inner @ vh,)


class Eigh(DenseJacobianOp):
    """Eigenvalues (ascending) and eigenvectors of ``(A + Aᵀ)/2``; with ``vectors`` the output packs
    the values, then ``V`` flattened, else it is the values alone. Gradient (Giles 2008): ``Ā =
    sym(V (diag(ḡ_w) + F ∘ (Vᵀ ḡ_V)) Vᵀ)``, ``F[i, j] = 1/(w_j - w_i)``, as PyTorch; it needs
    distinct eigenvalues where ``V`` gets a gradient."""

    name = "eigh"

    def forward(self, ctx, a, vectors=True):
        xp = ctx.xp
        _square(self.name, a.shape)
        w, v = xp.linalg.eigh(_sym(a))
        batch = a.shape[:-2]
        ctx.saved = {"batch": batch, "w": w, "V": v}
        return xp.concatenate([w, v.reshape(batch + (-1,))], axis=-1) if vectors else w

    def vjp(self, ctx, g, needs):
        xp = ctx.xp
        w, v = ctx.saved["w"], ctx.saved["V"]
        n = w.shape[-1]
        gw = g[..., :n]
        inner = gw[..., :, None] * xp.eye(n, dtype=w.dtype)
        if ctx.params.get("vectors", True):
            gv = g[..., n:].reshape(g.shape[:-1] + (n, n))
            if bool(xp.any(gv)):
                _distinct(self.name, tuple(v.shape), w, "repeated eigenvalues", xp)
                eye = xp.eye(n, dtype=bool)
                diff = w[..., None, :] - w[..., :, None]  # w_j - w_i
                F_ = xp.where(eye, 0.0, 1.0 / xp.where(eye, 1.0, diff))
                inner = inner + F_ * (_mT(v) @ gv)
        return (_sym(v @ inner @ _mT(v)),)


CHOLESKY = Cholesky()
QR_OP = QR()
SVD_OP = SVD()
EIGH = Eigh()


# -- public functions ------------------------------------------------------------------------------


def _broadcast_batch(a, b):
    """``a`` (..., n, n) and ``b`` (..., n, k) broadcast to one batch shape (index-map ops, only
    where a batch shape differs)."""
    try:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise OpError(f"batch shapes of {tuple(a.shape)} and {tuple(b.shape)} do not broadcast") from None
    if a.shape[:-2] != batch:
        a = F.broadcast_to(a, batch + a.shape[-2:])
    if b.shape[:-2] != batch:
        b = F.broadcast_to(b, batch + b.shape[-2:])
    return a, b


def inv(A: TensorLike) -> TensorLike:
    """The inverse of a square matrix (or of each in a batch ``(..., n, n)``), as ``numpy.linalg.inv``.

    A singular matrix raises an :class:`~semirad.OpError` naming ``inv`` and the shape (PyTorch
    raises too). Exact in every semiring in O(n³): each partial is ``-A⁻¹[i, k] A⁻¹[l, j]``.

    >>> import semirad as sr
    >>> sr.linalg.inv(sr.tensor([[2.0, 0.0], [0.0, 4.0]])).tolist()
    [[0.5, 0.0], [0.0, 0.25]]
    """
    return apply(INV, _tensor(A))


def solve(A: TensorLike, B: TensorLike) -> TensorLike:
    """``X`` with ``A X = B``, as ``numpy.linalg.solve`` (numpy 2): ``B`` of shape ``(..., n, k)``,
    or ``(n,)`` for one vector; batch shapes broadcast. A singular ``A`` raises an OpError naming
    ``solve`` and the shape.

    >>> import semirad as sr
    >>> sr.linalg.solve(sr.tensor([[2.0, 0.0], [0.0, 4.0]]), sr.tensor([1.0, 1.0])).tolist()
    [0.5, 0.25]
    """
    return _solve(SOLVE, A, B)


def _solve(op, A, B, **params):
    A, B = _tensor(A), _tensor(B)
    n = _square(op.name, A.shape)
    vector = B.ndim == 1
    if vector:
        if B.shape[0] != n:
            raise OpError(f"{op.name}: shapes {tuple(A.shape)} and {tuple(B.shape)} do not match")
        B = F.reshape(B, (n, 1))
    elif B.ndim < 2 or B.shape[-2] != n:
        raise OpError(f"{op.name}: shapes {tuple(A.shape)} and {tuple(B.shape)} do not match (expected B of shape "
                      "(..., n, k) or (n,))")  # fmt: skip
    A, B = _broadcast_batch(A, B)
    X = apply(op, A, B, **params)
    return F.reshape(X, X.shape[:-1]) if vector else X


def solve_triangular(
    A: TensorLike, B: TensorLike, *, upper: bool, left: bool = True, unitriangular: bool = False
) -> TensorLike:
    """``X`` with ``A X = B`` (``X A = B`` with ``left=False``) for a triangular ``A``, as
    ``torch.linalg.solve_triangular``: only the triangle named by ``upper`` is read (without its
    diagonal, taken as 1, with ``unitriangular``), so only its elements have edges. ``B``:
    ``(..., n, k)`` (``(..., k, n)`` with ``left=False``); batch shapes broadcast. A zero on the
    diagonal raises an OpError naming ``solve_triangular`` and the shape.

    >>> import semirad as sr
    >>> L = sr.tensor([[2.0, 0.0], [1.0, 1.0]])
    >>> sr.linalg.solve_triangular(L, sr.tensor([[2.0], [3.0]]), upper=False).tolist()
    [[1.0], [2.0]]
    """
    A, B = _tensor(A), _tensor(B)
    if not left:  # X A = B  <=>  Aᵀ Xᵀ = Bᵀ, with the other triangle
        _matrix("solve_triangular", B.shape)
        X = solve_triangular(F.swapaxes(A, -1, -2), F.swapaxes(B, -1, -2), upper=not upper,
                             unitriangular=unitriangular)  # fmt: skip
        return F.swapaxes(X, -1, -2)
    _matrix("solve_triangular", B.shape)
    return _solve(SOLVE_TRIANGULAR, A, B, upper=bool(upper), unit=bool(unitriangular))


def slogdet(A: TensorLike) -> SlogdetResult:
    """``(sign, logabsdet)`` of a square matrix (batch), as ``numpy.linalg.slogdet``; ``sign`` is a
    constant (no gradient, as in PyTorch). The gradient of ``logabsdet`` is ``A⁻ᵀ``; at a singular
    matrix (``sign == 0``, ``logabsdet == -inf``) the backward raises an OpError naming
    ``slogdet`` and the shape.

    >>> import semirad as sr
    >>> sign, logabsdet = sr.linalg.slogdet(sr.tensor([[-2.0, 0.0], [0.0, 1.0]]))
    >>> sign.item(), round(logabsdet.item(), 6)
    (-1.0, 0.693147)
    """
    return _slogdet(LOGABSDET, A)


def _slogdet(op, A) -> SlogdetResult:
    A = _tensor(A)
    logabsdet = apply(op, A)
    node = logabsdet._node
    sign = node.saved[1] if node is not None else backend.namespace(A.data).linalg.slogdet(A.data)[0]
    return SlogdetResult(tensor_type()(sign), logabsdet)


def det(A: TensorLike) -> TensorLike:
    """The determinant of a square matrix (batch), as ``numpy.linalg.det``: the composite
    ``sign * exp(logabsdet)`` of :func:`slogdet`, so its gradient is ``det(A) A⁻ᵀ``. The value at a
    singular matrix is 0; its gradient there raises an OpError naming ``det`` and the shape
    (PyTorch computes one through an SVD instead).

    >>> import semirad as sr
    >>> round(sr.linalg.det(sr.tensor([[1.0, 2.0], [3.0, 4.0]])).item(), 6)
    -2.0
    """
    sign, logabsdet = _slogdet(LOGABSDET_OF_DET, A)
    return F.exp(logabsdet) * sign


def cholesky(A: TensorLike, *, upper: bool = False) -> TensorLike:
    """The Cholesky factor ``L`` (lower; ``Lᵀ`` with ``upper``) of a symmetric positive-definite
    matrix (batch), as ``numpy.linalg.cholesky``. It factors the symmetric part ``(A + Aᵀ)/2``, so
    the gradient is symmetric, as PyTorch's (Murray 2016). A matrix that is not positive definite
    raises an OpError naming ``cholesky`` and the shape.

    >>> import semirad as sr
    >>> sr.linalg.cholesky(sr.tensor([[4.0, 2.0], [2.0, 2.0]])).tolist()
    [[2.0, 0.0], [1.0, 1.0]]
    """
    L = apply(CHOLESKY, _tensor(A))
    return F.swapaxes(L, -1, -2) if upper else L


def _unpack(packed, parts: list) -> list:
    """Slice a packed output into its parts: ``parts`` lists the core shapes."""
    batch = packed.shape[:-1]
    out, start = [], 0
    for shape in parts:
        size = math.prod(shape)
        piece = packed[(Ellipsis, slice(start, start + size))]
        out.append(F.reshape(piece, batch + tuple(shape)))
        start += size
    return out


def qr(A: TensorLike, mode: str = "reduced") -> QRResult:
    """The reduced QR decomposition ``(Q, R)`` of a matrix (batch ``(..., m, n)``), as
    ``numpy.linalg.qr``; only ``mode="reduced"``. Gradients for ``m >= n`` and full column rank
    (else the backward raises an OpError naming ``qr`` and the shape); PyTorch's rule.

    >>> import semirad as sr
    >>> Q, R = sr.linalg.qr(sr.tensor([[3.0, 0.0], [4.0, 5.0]]))
    >>> (Q @ R).numpy().round(6).tolist()
    [[3.0, 0.0], [4.0, 5.0]]
    """
    if mode != "reduced":
        raise OpError(f"qr: mode={mode!r} is not supported (only 'reduced')")
    A = _tensor(A)
    _matrix("qr", A.shape)
    m, n = A.shape[-2:]
    k = min(m, n)
    Q, R = _unpack(apply(QR_OP, A), [(m, k), (k, n)])
    return QRResult(Q, R)


def svd(A: TensorLike, full_matrices: bool = True) -> SVDResult:
    """``(U, S, Vh)`` with ``A = U diag(S) Vh`` (batch ``(..., m, n)``), as ``numpy.linalg.svd``;
    reduced factors only: ``full_matrices=True`` (numpy's default) is accepted for square matrices,
    where it is the same, and raises an OpError otherwise. The gradient (Townsend 2016, as PyTorch)
    needs distinct singular values, and non-zero ones for a non-square ``A``, where ``U`` or ``Vh``
    get a gradient: else the backward raises an OpError naming ``svd`` and the shape. Use
    :func:`svdvals` for the singular values alone (no such condition).

    >>> import semirad as sr
    >>> U, S, Vh = sr.linalg.svd(sr.tensor([[3.0, 0.0], [0.0, -2.0]]))
    >>> S.tolist()
    [3.0, 2.0]
    """
    A = _tensor(A)
    _matrix("svd", A.shape)
    m, n = A.shape[-2:]
    if full_matrices and m != n:
        raise OpError(f"svd: full_matrices=True is not supported for a non-square input (shape {tuple(A.shape)}): "
                      "pass full_matrices=False for the reduced factors")  # fmt: skip
    k = min(m, n)
    U, S, Vh = _unpack(apply(SVD_OP, A, uv=True), [(m, k), (k,), (k, n)])
    return SVDResult(U, S, Vh)


def svdvals(A: TensorLike) -> TensorLike:
    """The singular values (descending) of a matrix (batch), as ``torch.linalg.svdvals``; gradient
    ``U diag(ḡ) Vh``, defined at repeated singular values too.

    >>> import semirad as sr
    >>> sr.linalg.svdvals(sr.tensor([[0.0, 2.0], [1.0, 0.0]])).tolist()
    [2.0, 1.0]
    """
    A = _tensor(A)
    _matrix("svdvals", A.shape)
    return apply(SVD_OP, A, uv=False)


def eigh(A: TensorLike) -> EighResult:
    """Eigenvalues (ascending) and eigenvectors (columns) of a symmetric matrix (batch), as
    ``numpy.linalg.eigh``. It decomposes the symmetric part ``(A + Aᵀ)/2`` (so ``UPLO`` is not
    needed: on a symmetric input both triangles agree), and its gradient is symmetric, as PyTorch's
    (Giles 2008). Where the eigenvectors get a gradient the eigenvalues must be distinct, else the
    backward raises an OpError naming ``eigh`` and the shape; :func:`eigvalsh` has no such condition.

    >>> import semirad as sr
    >>> w, V = sr.linalg.eigh(sr.tensor([[2.0, 0.0], [0.0, 1.0]]))
    >>> w.tolist()
    [1.0, 2.0]
    """
    A = _tensor(A)
    n = _square("eigh", A.shape)
    w, V = _unpack(apply(EIGH, A, vectors=True), [(n,), (n, n)])
    return EighResult(w, V)


def eigvalsh(A: TensorLike) -> TensorLike:
    """The eigenvalues (ascending) of a symmetric matrix (batch), as ``numpy.linalg.eigvalsh``, of
    ``(A + Aᵀ)/2``; gradient ``V diag(ḡ) Vᵀ``.

    >>> import semirad as sr
    >>> sr.linalg.eigvalsh(sr.tensor([[2.0, 1.0], [1.0, 2.0]])).numpy().round(6).tolist()
    [1.0, 3.0]
    """
    A = _tensor(A)
    _square("eigvalsh", A.shape)
    return apply(EIGH, A, vectors=False)


def matrix_power(A: TensorLike, n: int) -> TensorLike:
    """``A`` to the integer power ``n`` (batch), as ``numpy.linalg.matrix_power``: a composite of
    matmuls by repeated squaring (``inv`` first for ``n < 0``). ``n == 0`` gives the identity as a
    constant (not on the graph).

    >>> import semirad as sr
    >>> sr.linalg.matrix_power(sr.tensor([[1.0, 1.0], [0.0, 1.0]]), 3).tolist()
    [[1.0, 3.0], [0.0, 1.0]]
    """
    A = _tensor(A)
    size = _square("matrix_power", A.shape)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise OpError(f"matrix_power: the exponent must be an integer, got {n!r}")
    n = int(n)
    if n == 0:
        eye = np.broadcast_to(np.eye(size, dtype=A.dtype), A.shape).copy()
        return tensor_type()(eye)
    if n < 0:
        A, n = inv(A), -n
    result, base = None, A
    while True:
        if n & 1:
            result = base if result is None else F.matmul(result, base)
        n >>= 1
        if not n:
            return result
        base = F.matmul(base, base)


def _diagonal(x, offset: int, axis1: int, axis2: int, name: str):
    x = _tensor(x)
    if x.ndim < 2:
        raise OpError(f"{name}: expected at least 2 dimensions, got shape {tuple(x.shape)}")
    a1, a2 = (M.one_dim(name, a, x.shape) for a in (axis1, axis2))
    if a1 == a2:
        raise OpError(f"{name}: the two axes must differ, got {axis1} and {axis2} for shape {tuple(x.shape)}")
    rest = [d for d in range(x.ndim) if d not in (a1, a2)]
    if rest + [a1, a2] != list(range(x.ndim)):
        x = F.transpose(x, tuple(rest + [a1, a2]))
    n1, n2 = x.shape[-2:]
    offset = int(offset)
    length = max(0, min(n1 - max(0, -offset), n2 - max(0, offset)))
    rows = np.arange(length) + max(0, -offset)
    cols = np.arange(length) + max(0, offset)
    return F.getitem(x, (Ellipsis, rows, cols))


def diagonal(x: TensorLike, offset: int = 0) -> TensorLike:
    """The diagonal (``offset`` above it, below if negative) of the last two axes, as
    ``numpy.linalg.diagonal``: an index map (one edge of weight 1 per element).

    >>> import semirad as sr
    >>> sr.linalg.diagonal(sr.tensor([[1.0, 2.0], [3.0, 4.0]])).tolist()
    [1.0, 4.0]
    """
    return _diagonal(x, offset, -2, -1, "diagonal")


def trace(x: TensorLike, offset: int = 0) -> TensorLike:
    """The sum of the diagonal of the last two axes, as ``numpy.linalg.trace``: the composite
    ``diagonal`` then ``sum``.

    >>> import semirad as sr
    >>> sr.linalg.trace(sr.tensor([[1.0, 2.0], [3.0, 4.0]])).item()
    5.0
    """
    return F.sum(_diagonal(x, offset, -2, -1, "trace"), axis=-1)


def outer(a: TensorLike, b: TensorLike) -> TensorLike:
    """The outer product of two vectors, as ``numpy.linalg.outer`` (1-D inputs only): the composite
    ``a[:, None] * b[None, :]``.

    >>> import semirad as sr
    >>> sr.linalg.outer(sr.tensor([1.0, 2.0]), sr.tensor([3.0, 4.0])).tolist()
    [[3.0, 4.0], [6.0, 8.0]]
    """
    a, b = _tensor(a), _tensor(b)
    if a.ndim != 1 or b.ndim != 1:
        raise OpError(f"outer: expected two vectors, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    return F.reshape(a, (-1, 1)) * F.reshape(b, (1, -1))


def vector_norm(x: TensorLike, ord: float = 2, axis: int | tuple | None = None, keepdims: bool = False) -> TensorLike:  # noqa: A002 - numpy's name
    """The vector ``ord``-norm over ``axis`` (all elements when None), as ``torch.linalg.vector_norm``:
    ``ord`` 2, 1, ``inf``, ``-inf``, 0 (the count of non-zeros: a constant) or any other number.
    A composite of elementwise ops and reductions; the gradient of a positive ``ord`` at 0 is 0.

    >>> import semirad as sr
    >>> sr.linalg.vector_norm(sr.tensor([3.0, -4.0])).item()
    5.0
    """
    x = _tensor(x)
    if isinstance(ord, str):
        raise OpError(f"vector_norm: ord={ord!r} is not a vector norm (use a number, inf or -inf)")
    ord = float(ord)  # noqa: A001
    if ord == 0:
        dims = M.many_dims("vector_norm", axis, x.shape)
        count = np.sum(np.asarray(x.data) != 0, axis=dims, keepdims=keepdims).astype(x.dtype)
        return tensor_type()(count)
    if ord > 0 or math.isinf(ord):
        return M.norm(x, ord, axis, keepdims)
    dims = M.many_dims("vector_norm", axis, x.shape)
    return F.power(F.sum(F.power(F.abs(x), ord), dims, keepdims=keepdims), 1.0 / ord)


def matrix_norm(A: TensorLike, ord: str | float = "fro", axis: tuple = (-2, -1), keepdims: bool = False) -> TensorLike:  # noqa: A002 - numpy's name
    """The matrix norm over the two axes ``axis``, as ``torch.linalg.matrix_norm``: ``"fro"``,
    ``"nuc"`` (the sum of the singular values), ``inf``/``-inf`` (max/min row sum of ``|A|``),
    ``1``/``-1`` (max/min column sum), ``2``/``-2`` (largest/smallest singular value). Composites
    of elementwise ops, reductions and :func:`svdvals`; ties of max/min share the gradient.

    >>> import semirad as sr
    >>> sr.linalg.matrix_norm(sr.tensor([[1.0, -2.0], [3.0, 4.0]]), 1).item()
    6.0
    """
    A = _tensor(A)
    if A.ndim < 2:
        raise OpError(f"matrix_norm: expected at least 2 dimensions, got shape {tuple(A.shape)}")
    axes = M.many_dims("matrix_norm", tuple(axis), A.shape)
    if len(axes) != 2 or len(tuple(axis)) != 2:
        raise OpError(f"matrix_norm: axis must name two different axes, got {axis} for shape {tuple(A.shape)}")
    r, c = (M.one_dim("matrix_norm", a, A.shape) for a in axis)
    if ord in ("fro", None):
        return M.norm(A, 2.0, (r, c), keepdims)
    if ord in ("nuc", 2, -2, 2.0, -2.0):
        rest = [d for d in range(A.ndim) if d not in (r, c)]
        values = svdvals(F.transpose(A, tuple(rest + [r, c])))
        out = (F.sum if ord == "nuc" else F.max if ord in (2, 2.0) else F.min)(values, axis=-1)
        if keepdims:
            shape = list(A.shape)
            shape[r] = shape[c] = 1
            out = F.reshape(out, tuple(shape))
        return out
    if ord in (1, -1, math.inf, -math.inf):
        summed, over = (r, c) if ord in (1, -1) else (c, r)
        reduce = F.max if ord in (1, math.inf) else F.min
        out = reduce(F.sum(F.abs(A), axis=summed, keepdims=True), axis=over, keepdims=True)
        return out if keepdims else F.squeeze(out, axis=(r, c))
    raise OpError(f"matrix_norm: ord={ord!r} is not supported (use 'fro', 'nuc', inf, -inf, 1, -1, 2 or -2)")


def norm(
    x: TensorLike, ord: str | float | None = None, axis: int | tuple | None = None, keepdims: bool = False
) -> TensorLike:  # noqa: A002 - numpy's name
    """A vector or matrix norm, as ``numpy.linalg.norm``: with ``axis`` None, ``ord`` None gives the
    2-norm of all elements, otherwise ``x`` must be 1-D (a vector norm) or 2-D (a matrix norm); an
    int ``axis`` gives vector norms, a pair of axes matrix norms (see :func:`vector_norm`,
    :func:`matrix_norm`).

    >>> import semirad as sr
    >>> sr.linalg.norm(sr.tensor([[3.0, 0.0], [0.0, 4.0]])).item()
    5.0
    """
    x = _tensor(x)
    if axis is None:
        if ord is None:
            return vector_norm(x, 2, None, keepdims)
        if x.ndim == 1:
            return vector_norm(x, ord, None, keepdims)
        if x.ndim == 2:
            return matrix_norm(x, ord, (0, 1), keepdims)
        raise OpError(f"norm: ord={ord!r} needs a 1-D or 2-D input or an axis, got shape {tuple(x.shape)}")
    if isinstance(axis, (int, np.integer)) or (isinstance(axis, tuple) and len(axis) == 1):
        return vector_norm(x, 2 if ord is None else ord, axis, keepdims)
    if isinstance(axis, (tuple, list)) and len(axis) == 2:
        return matrix_norm(x, "fro" if ord is None else ord, tuple(axis), keepdims)
    raise OpError(f"norm: axis must be None, an int or a pair of ints, got {axis!r}")


def method_trace(x: TensorLike) -> TensorLike:
    """``Tensor.trace()``: the sum of the diagonal of a 2-D tensor, as ``torch.Tensor.trace``.

    >>> import semirad as sr
    >>> method_trace(sr.tensor([[1.0, 2.0], [3.0, 4.0]])).item()
    5.0
    """
    x = _tensor(x)
    if x.ndim != 2:
        raise OpError(f"Tensor.trace: expected a 2-D tensor, got shape {tuple(x.shape)}")
    return F.sum(_diagonal(x, 0, 0, 1, "Tensor.trace"))


def method_diagonal(x: TensorLike, offset: int = 0, dim1: int = 0, dim2: int = 1) -> TensorLike:
    """``Tensor.diagonal(offset, dim1, dim2)``, as ``torch.Tensor.diagonal``: the diagonal as the
    last axis.

    >>> import semirad as sr
    >>> method_diagonal(sr.tensor(np.arange(8.0).reshape(2, 2, 2)), 0, 0, 2).tolist()
    [[0.0, 5.0], [2.0, 7.0]]
    """
    return _diagonal(x, offset, dim1, dim2, "Tensor.diagonal")


__all__ = [
    "inv", "solve", "det", "slogdet", "cholesky", "solve_triangular", "qr", "svd", "svdvals", "eigh",
    "eigvalsh", "norm", "vector_norm", "matrix_norm", "matrix_power", "trace", "diagonal", "outer",
    "set_dense_limit", "dense_limit", "DenseJacobianOp", "SlogdetResult", "QRResult", "SVDResult", "EighResult",
]  # fmt: skip
