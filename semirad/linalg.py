"""``sr.linalg``: linear algebra with numpy.linalg / torch.linalg names, batched ``(..., n, n)``
inputs, and derivatives in every semiring (docs/linalg.md).

SumProduct uses the closed-form matrix rules (Giles 2008; Murray 2016; Seeger et al. 2017;
Townsend 2016); every other semiring gets each op's exact local partials as edge weights: two
contractions for ``inv``/``solve``/``solve_triangular``, one weight per element for ``slogdet``,
the dense local Jacobian for ``cholesky``, ``qr``, ``svd`` and ``eigh`` (n⁴ weights per n x n
matrix, under :func:`set_dense_limit`). ``det``, ``matrix_power``, the norms, ``trace``,
``diagonal`` and ``outer`` are composites of ops.

>>> import semirad as sr
>>> A = sr.tensor([[4.0, 2.0], [2.0, 3.0]], requires_grad=True)
>>> logdet = 2 * sr.log(sr.linalg.diagonal(sr.linalg.cholesky(A))).sum()
>>> sr.grad(logdet, [A])[0].round(6).tolist()          # the gradient of log det A is A⁻¹
[[0.375, -0.25], [-0.25, 0.5]]
"""

from .ops.linalg import (
    DenseJacobianOp,
    EighResult,
    QRResult,
    SlogdetResult,
    SVDResult,
    cholesky,
    dense_limit,
    det,
    diagonal,
    eigh,
    eigvalsh,
    inv,
    matrix_norm,
    matrix_power,
    norm,
    outer,
    qr,
    set_dense_limit,
    slogdet,
    solve,
    solve_triangular,
    svd,
    svdvals,
    trace,
    vector_norm,
)

__all__ = [
    "inv", "solve", "det", "slogdet", "cholesky", "solve_triangular", "qr", "svd", "svdvals", "eigh",
    "eigvalsh", "norm", "vector_norm", "matrix_norm", "matrix_power", "trace", "diagonal", "outer",
    "set_dense_limit", "dense_limit", "DenseJacobianOp", "SlogdetResult", "QRResult", "SVDResult", "EighResult",
]  # fmt: skip
