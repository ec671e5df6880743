"""Where a value or a derivative does not exist, the documented OpError names the op and the shape
(docs/linalg.md, "Undefined cases"); where it exists (singular values alone at a repeat), none."""

from __future__ import annotations

import numpy as np
import pytest
from linalg_cases import general, plain, rng, spd

import semirad as sr

L = sr.linalg
OpError = sr.OpError
#: where the error points: the input's shape and the batch element
AT = r" \(input shape \(2, 3, 3\), batch element \(1,\)"


def _singular_batch():
    a = general(rng(0), (2,))
    a[1] = [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.0, 1.0, 1.0]]
    return a


def test_inv_and_solve_of_a_singular_matrix():
    a = _singular_batch()
    with pytest.raises(OpError, match=r"^inv: the matrix is singular" + AT):
        L.inv(a)
    with pytest.raises(OpError, match=r"^solve: the matrix is singular" + AT):
        L.solve(a, np.ones((2, 3, 1)))
    with pytest.raises(OpError, match=r"^solve_triangular: the matrix is singular \(input shape \(3, 3\)\)"):
        L.solve_triangular(np.diag([1.0, 0.0, 2.0]), np.ones((3, 1)), upper=False)


@pytest.mark.parametrize("fn, name", [(lambda a: L.det(a), "det"), (lambda a: L.slogdet(a).logabsdet, "slogdet")])
def test_det_gradient_at_a_singular_matrix(fn, name):
    x = sr.tensor(_singular_batch(), requires_grad=True)
    y = fn(x)
    assert y.numpy()[1] == (0.0 if name == "det" else -np.inf)  # the value exists
    pattern = rf"^{name}: the gradient of log\|det\| does not exist at a singular matrix" + AT
    for run in (sr.grad, sr.trace):
        with pytest.raises(OpError, match=pattern):
            run(y.sum(), [x])


def test_cholesky_of_a_matrix_that_is_not_positive_definite():
    a = np.stack([spd(rng(1), ()), np.diag([1.0, -1.0, 2.0])])
    with pytest.raises(OpError, match=r"^cholesky: the matrix is not positive definite" + AT):
        L.cholesky(a)


def test_qr_gradients_that_do_not_exist():
    wide = sr.tensor(plain(rng(2), (), 2, 3), requires_grad=True)
    Q, R = L.qr(wide)  # the forward is fine
    message = r"^qr: the gradient of a wide matrix \(m < n\) is not implemented \(input shape \(2, 3\)\)"
    with pytest.raises(OpError, match=message):
        sr.grad(R.sum(), [wide])
    a = plain(rng(3), (), 3, 2)
    a[:, 1] = 2 * a[:, 0]
    deficient = sr.tensor(a, requires_grad=True)
    message = r"^qr: the gradient does not exist for a matrix of deficient column rank \(input shape \(3, 2\)\)"
    with pytest.raises(OpError, match=message):
        sr.grad(L.qr(deficient).Q.sum(), [deficient])


def test_svd_at_repeated_singular_values():
    x = sr.tensor(np.diag([2.0, 2.0, 1.0]), requires_grad=True)
    U, S, Vh = L.svd(x)
    message = r"^svd: the gradient does not exist: repeated singular values \(input shape \(3, 3\)"
    for run in (sr.grad, sr.trace):
        with pytest.raises(OpError, match=message):
            run((U * U).sum() + S.sum(), [x])
    # the singular values alone have a gradient there: U Vh for the sum
    np.testing.assert_allclose(sr.grad(S.sum(), [x])[0], np.eye(3), atol=1e-12)
    np.testing.assert_allclose(sr.grad(L.svdvals(x).sum(), [x])[0], np.eye(3), atol=1e-12)
    assert sr.trace(L.svdvals(x).sum(), [x])[x].shape == (3, 3)


def test_svd_of_a_non_square_rank_deficient_matrix():
    a = np.zeros((3, 2))
    a[0, 0] = 1.0
    x = sr.tensor(a, requires_grad=True)
    U = L.svd(x, full_matrices=False).U
    message = r"^svd: the gradient does not exist: a zero singular value of a non-square matrix \(input shape \(3, 2\)"
    with pytest.raises(OpError, match=message):
        sr.grad((U * U).sum(), [x])


def test_svd_full_matrices_of_a_non_square_matrix():
    message = r"^svd: full_matrices=True is not supported for a non-square input \(shape \(2, 3\)\)"
    with pytest.raises(OpError, match=message):
        L.svd(np.ones((2, 3)))
    assert L.svd(np.eye(2)).U.shape == (2, 2)  # square: full and reduced agree


def test_eigh_at_repeated_eigenvalues():
    a = np.stack([spd(rng(4), ()), np.diag([1.0, 3.0, 3.0])])
    x = sr.tensor(a, requires_grad=True)
    w, V = L.eigh(x)
    with pytest.raises(OpError, match=r"^eigh: the gradient does not exist: repeated eigenvalues" + AT):
        sr.grad((V * V).sum(), [x])
    # the eigenvalues alone have a gradient there
    expected = np.stack([np.eye(3), np.eye(3)])  # the sum of the eigenvalues is the trace
    np.testing.assert_allclose(sr.grad(w.sum(), [x])[0], expected, atol=1e-12)
    np.testing.assert_allclose(sr.grad(L.eigvalsh(x).sum(), [x])[0], expected, atol=1e-12)


SQUARE = r"expected a square matrix or a batch of them \(\.\.\., n, n\), got shape"


@pytest.mark.parametrize(
    "call, message",
    [(lambda: L.inv(np.ones((2, 3))), r"^inv: " + SQUARE + r" \(2, 3\)"),
     (lambda: L.det(np.ones(3)), r"^det: " + SQUARE + r" \(3,\)"),
     (lambda: L.cholesky(np.ones((3, 2))), r"^cholesky: " + SQUARE + r" \(3, 2\)"),
     (lambda: L.eigh(np.ones((2, 3))), r"^eigh: " + SQUARE + r" \(2, 3\)"),
     (lambda: L.solve(np.eye(3), np.ones((2, 1))), r"^solve: shapes \(3, 3\) and \(2, 1\) do not match"),
     (lambda: L.solve(np.ones((2, 3, 3)), np.ones((3, 3, 1))),
      r"batch shapes of \(2, 3, 3\) and \(3, 3, 1\) do not broadcast"),
     (lambda: L.qr(np.ones(3)), r"^qr: expected a matrix or a batch of them \(\.\.\., m, n\), got shape \(3,\)"),
     (lambda: L.qr(np.ones((2, 2)), mode="complete"), r"^qr: mode='complete' is not supported"),
     (lambda: L.matrix_power(np.eye(2), 1.5), r"^matrix_power: the exponent must be an integer, got 1.5"),
     (lambda: L.norm(np.ones((2, 2, 2)), 1), r"^norm: ord=1 needs a 1-D or 2-D input or an axis, got shape"),
     (lambda: L.matrix_norm(np.ones((2, 2)), 3), r"^matrix_norm: ord=3 is not supported"),
     (lambda: L.vector_norm(np.ones(2), "fro"), r"^vector_norm: ord='fro' is not a vector norm"),
     (lambda: L.outer(np.ones((2, 2)), np.ones(2)), r"^outer: expected two vectors, got shapes \(2, 2\) and \(2,\)"),
     (lambda: sr.tensor(np.ones(3)).trace(), r"^Tensor.trace: expected a 2-D tensor, got shape \(3,\)"),
     (lambda: sr.tensor(np.ones((2, 2))).diagonal(0, 1, 1), r"^Tensor.diagonal: the two axes must differ"),
     (lambda: L.diagonal(np.ones(2)), r"^diagonal: expected at least 2 dimensions, got shape \(2,\)")],
)  # fmt: skip
def test_bad_arguments(call, message):
    with pytest.raises(OpError, match=message):
        call()


def test_matrix_power_zero_is_a_constant_identity():
    out = L.matrix_power(sr.tensor(np.ones((2, 3, 3)), requires_grad=True), 0)
    assert out.tolist() == np.broadcast_to(np.eye(3), (2, 3, 3)).tolist() and not out.requires_grad
