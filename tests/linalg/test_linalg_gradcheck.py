"""SumProduct gradients of every linear-algebra function against central differences (float64),
for several batch shapes; the factors of qr, svd and eigh through weighted sums of their squares
(independent of the sign convention of their columns) and of themselves."""

from __future__ import annotations

import numpy as np
import pytest
from linalg_cases import BATCHES, general, plain, rng, spd, weights

import semirad as sr
from semirad.testing import gradcheck

L = sr.linalg


def _weighted(parts, seed, square=False):
    ws = weights(seed, *[p.shape for p in parts])
    return sum(((p * p if square else p) * w).sum() for p, w in zip(parts, ws))


def _cases(batch):
    r = rng(len(batch) + 20)
    return {
        "inv": (lambda a: L.inv(a), [general(r, batch)]),
        "solve": (lambda a, b: L.solve(a, b), [general(r, batch), r.standard_normal(batch + (3, 2))]),
        "solve_broadcast": (lambda a, b: L.solve(a, b), [general(r, ()), r.standard_normal(batch + (3, 1))]),
        "solve_triangular_lower": (lambda a, b: L.solve_triangular(a, b, upper=False),
                                   [general(r, batch), r.standard_normal(batch + (3, 2))]),
        "solve_triangular_upper_unit_right": (
            lambda a, b: L.solve_triangular(a, b, upper=True, left=False, unitriangular=True),
            [general(r, batch), r.standard_normal(batch + (2, 3))]),
        "det": (lambda a: L.det(a), [general(r, batch)]),
        "slogdet": (lambda a: L.slogdet(a).logabsdet, [plain(r, batch)]),
        "cholesky": (lambda a: L.cholesky(a), [spd(r, batch)]),
        "cholesky_upper": (lambda a: L.cholesky(a, upper=True), [spd(r, batch)]),
        "qr_squares": (lambda a: _weighted(L.qr(a), 1, True), [plain(r, batch, 4, 3)]),
        "qr": (lambda a: _weighted(L.qr(a), 2), [plain(r, batch, 3, 3)]),
        "svd_squares_tall": (lambda a: _weighted(L.svd(a, full_matrices=False), 3, True), [plain(r, batch, 4, 2)]),
        "svd_squares_wide": (lambda a: _weighted(L.svd(a, full_matrices=False), 4, True), [plain(r, batch, 2, 3)]),
        "svd": (lambda a: _weighted(L.svd(a), 5), [plain(r, batch)]),
        "svdvals": (lambda a: L.svdvals(a), [plain(r, batch, 3, 2)]),
        "eigh_squares": (lambda a: _weighted(L.eigh(a), 6, True), [spd(r, batch)]),
        "eigh": (lambda a: _weighted(L.eigh(a), 7), [spd(r, batch)]),
        "eigvalsh": (lambda a: L.eigvalsh(a), [spd(r, batch)]),
        "matrix_power": (lambda a: L.matrix_power(a, 4), [plain(r, batch)]),
        "matrix_power_negative": (lambda a: L.matrix_power(a, -3), [general(r, batch)]),
        "norm_fro": (lambda a: L.norm(a, axis=(-2, -1)), [plain(r, batch)]),
        "norm_nuc": (lambda a: L.matrix_norm(a, "nuc"), [plain(r, batch)]),
        "norm_2": (lambda a: L.matrix_norm(a, 2), [plain(r, batch)]),
        "norm_-2": (lambda a: L.matrix_norm(a, -2), [plain(r, batch)]),
        "norm_inf": (lambda a: L.matrix_norm(a, np.inf), [plain(r, batch)]),
        "vector_norm_3": (lambda a: L.vector_norm(a, 3, axis=-1), [plain(r, batch)]),
        "trace": (lambda a: L.trace(a, 1), [plain(r, batch)]),
        "diagonal": (lambda a: L.diagonal(a, -1), [plain(r, batch)]),
    }  # fmt: skip


NAMES = list(_cases(()))


@pytest.mark.parametrize("batch", BATCHES, ids=str)
@pytest.mark.parametrize("name", NAMES)
def test_gradients_match_finite_differences(name, batch):
    fn, arrays = _cases(batch)[name]
    assert gradcheck(fn, [sr.tensor(a, requires_grad=True) for a in arrays], seed=0, atol=1e-6, rtol=1e-5)


def test_gradcheck_catches_a_wrong_rule():
    """The check above can fail: a Cholesky rule without the symmetrization is off the
    derivative of what is computed."""
    from semirad.ops import linalg as OL

    a = sr.tensor(spd(rng(1), ()), requires_grad=True)
    right = OL.Cholesky.vjp
    try:
        OL.Cholesky.vjp = lambda self, ctx, g, needs: (right(self, ctx, g, needs)[0] * np.tril(np.ones((3, 3))),)
        assert not gradcheck(lambda t: L.cholesky(t), [a], raise_exception=False)
    finally:
        OL.Cholesky.vjp = right
    assert gradcheck(lambda t: L.cholesky(t), [a])
