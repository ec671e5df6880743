"""Forward mode through the linear-algebra ops: their tangent rules are their backward rules
transposed (semirad.forward), so ``<jvp(t), s> = <t, vjp(s)>`` for every op, and the tangent is the
directional derivative (central differences)."""

from __future__ import annotations

import numpy as np
import pytest
from linalg_cases import general, rng, spd

import semirad as sr

L = sr.linalg

if not hasattr(sr, "jvp"):  # pragma: no cover - forward mode lands separately
    pytest.skip("sr.jvp is not there yet", allow_module_level=True)

CASES = {
    "inv": (lambda a: L.inv(a), lambda r: general(r, (2,))),
    "solve_triangular": (lambda a: L.solve_triangular(a, np.ones((3, 2)), upper=True), lambda r: general(r, ())),
    "slogdet": (lambda a: L.slogdet(a).logabsdet, lambda r: general(r, (2,))),
    "cholesky": (lambda a: L.cholesky(a), lambda r: spd(r, (2,))),
    "eigenvectors": (lambda a: L.eigh(a).eigenvectors, lambda r: spd(r, ())),
    "svd_U": (lambda a: L.svd(a, full_matrices=False).U, lambda r: r.standard_normal((4, 3))),
}


@pytest.mark.parametrize("name", list(CASES))
def test_jvp_is_the_transpose_of_the_vjp_and_the_directional_derivative(name):
    fn, make = CASES[name]
    r = rng(30)
    a = make(r)
    t = r.standard_normal(a.shape)
    out, tangent = sr.jvp(fn, a, t)
    tangent = np.asarray(tangent)
    s = r.standard_normal(out.shape)
    x = sr.tensor(a, requires_grad=True)
    (cotangent,) = sr.grad(fn(x), [x], seed=s)
    np.testing.assert_allclose((tangent * s).sum(), (t * cotangent).sum(), rtol=1e-10)
    h = 1e-6
    fd = (fn(sr.tensor(a + h * t)).numpy() - fn(sr.tensor(a - h * t)).numpy()) / (2 * h)
    np.testing.assert_allclose(tangent, fd, rtol=1e-5, atol=1e-7)
