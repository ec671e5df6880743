"""Accuracy of every elementwise op over its whole domain, against mpmath at 256 bits.

Forward values of the unary ops (``exp log tanh sigmoid erf relu abs sqrt sin cos neg``, ``x ** p``) and
the binary ones (``+ - * / **``, ``maximum minimum``), and the partials (edge weights) of the unary
ops as ``sr.grad`` of ``y.sum()`` gives them, on samples from the smallest subnormal to the largest
float of both signs (in float64 and float32), under both kernel modes. An error is measured in
ulps of the exact value: ``|got - exact| / spacing`` with ``spacing`` the distance between floats of
the dtype at ``|exact|`` (the subnormal spacing below the normal range); an exact value past the
largest float must give ``inf`` of its sign. The bound of each op (float64, float32):

* exact: ``neg abs relu maximum minimum`` and their partials: 0;
* correctly rounded by IEEE arithmetic: ``+ - * / sqrt``, ``x**2``, ``x**0.5``, ``x**-1``: 0.5;
* numpy's ``exp`` 1 / 3 and ``log`` 1 / 4 (the C library's are below 1 ulp, numpy's AVX-512 float64
  ``exp`` 0.77, its float32 SIMD ``exp`` and ``log`` 2.52 and 3.83); ``sin cos`` 4 / 2 and ``pow``
  4 / 4 (numpy's AVX-512 SVML code documents 4, its float32 ``sin cos`` 1.49; the C library's
  measure below 1 here);
* semirad's float64 ``tanh`` 2.2 (numpy's float32 ``tanh``: 3); ``sigmoid`` 3 / 0.51 (``1/(1 + e)``
  with ``e = exp(-x)``: ``e``'s error, the rounding of ``1 + e`` and of the quotient; float32 is
  computed in float64 and rounded once); ``erf`` 1 / 0.51 (the C library's in float64, 0.68 measured;
  float32 rounded once from it);
* partials (:data:`PARTIAL_ULPS`): ``exp``'s is its output (as ``exp``), ``log``'s ``1/x`` 0.5,
  ``sqrt``'s ``0.5/y`` 1.5, ``sin``'s and ``cos``'s as ``cos`` and ``sin``, ``x**p``'s ``p x**(p-1)``
  4.5 (0.5 for ``p = 2``), the sigmoid's (``(1 - y) y`` up to ``x = 1``, ``e / (1 + e)**2`` with
  ``e = exp(-x)`` past it: four roundings and ``exp``'s error) 5 / 2;
  ``tanh``'s ``1 - y*y`` from its output (as PyTorch's) 2 ulp plus ``2.5 eps`` / ``3.5 eps``
  absolute (:data:`PARTIAL_ABSOLUTE`), for the rounding of ``y`` near ``|y| = 1``; ``erf``'s
  ``2/sqrt(pi) exp(-hi) (1 - lo)`` with ``x**2 = hi + lo`` exact 3 / 0.51 (``exp``'s error and four
  roundings; 1.6 measured; float32 in float64, rounded once).

Where PyTorch is installed (not in CI), semirad must be within these bounds or no worse than
PyTorch float64/float32 at each point.
"""

from __future__ import annotations

import functools
import math
import warnings

import mpmath
import numpy as np
import pytest

import semirad as sr
from semirad import fast, kernels
from semirad.kernels import tanh as _tanh

PRECISION = 256
DTYPES = [np.float64, np.float32]
POWERS = [2.0, 3.0, 0.5, -1.0, 1.5, -2.5]

FORWARD_ULPS = {
    "neg": (0, 0), "abs": (0, 0), "relu": (0, 0), "maximum": (0, 0), "minimum": (0, 0),
    "add": (0.5, 0.5), "sub": (0.5, 0.5), "mul": (0.5, 0.5), "div": (0.5, 0.5), "sqrt": (0.5, 0.5),
    "exp": (1, 3), "log": (1, 4), "sin": (4, 2), "cos": (4, 2), "pow": (4, 4),
    "tanh": (2.2, 3), "sigmoid": (3, 0.51), "erf": (1, 0.51),
    "pow 2.0": (0.5, 0.5), "pow 0.5": (0.5, 0.5), "pow -1.0": (0.5, 0.5),
    "pow 3.0": (4, 4), "pow 1.5": (4, 4), "pow -2.5": (4, 4),
}
PARTIAL_ULPS = {
    "neg": (0, 0), "abs": (0, 0), "relu": (0, 0),
    "exp": (1, 3), "log": (0.5, 0.5), "sqrt": (1.5, 1.5), "sin": (4, 2), "cos": (4, 2),
    "tanh": (2, 2), "sigmoid": (5, 2), "erf": (3, 0.51), "pow 2.0": (0.5, 0.5),
    "pow 0.5": (4.5, 4.5), "pow -1.0": (4.5, 4.5), "pow 3.0": (4.5, 4.5), "pow 1.5": (4.5, 4.5), "pow -2.5": (4.5, 4.5),
}
#: ``1 - y*y`` near ``|y| = 1``, where an ulp of ``y`` is ``eps / 2``: ``y`` off by ``d`` ulps (2.1 for
#: semirad's float64 tanh, 3 for numpy's float32 one) moves it by ``d eps``, and ``y*y`` rounds by ``eps / 4``
PARTIAL_ABSOLUTE = {"tanh": (2.5, 3.5)}


def _mp_sigmoid(x):
    return 1 / (1 + mpmath.exp(-x))


def _mp_sigmoid_partial(x):
    e = mpmath.exp(-abs(x))
    return e / (1 + e) ** 2


def _mp_erf_partial(x):
    return 2 / mpmath.sqrt(mpmath.pi) * mpmath.exp(-x * x)


def _mp_pow(x, p):
    return mpmath.power(x, p) if x or p > 0 else mpmath.inf


UNARY = {  # name: (semirad op, exact value, exact partial, domain)
    "neg": (lambda t: -t, lambda x: -x, lambda x: mpmath.mpf(-1), "all"),
    "abs": (lambda t: t.abs(), abs, lambda x: mpmath.sign(x), "nonzero"),
    "relu": (lambda t: t.relu(), lambda x: max(x, 0), lambda x: mpmath.mpf(x > 0), "nonzero"),
    "exp": (lambda t: t.exp(), mpmath.exp, mpmath.exp, "all"),
    "log": (lambda t: t.log(), mpmath.log, lambda x: 1 / x, "positive"),
    "sqrt": (lambda t: t.sqrt(), mpmath.sqrt, lambda x: 1 / (2 * mpmath.sqrt(x)), "positive"),
    "sin": (lambda t: t.sin(), mpmath.sin, mpmath.cos, "all"),
    "cos": (lambda t: t.cos(), mpmath.cos, lambda x: -mpmath.sin(x), "all"),
    "tanh": (lambda t: t.tanh(), mpmath.tanh, lambda x: 1 / mpmath.cosh(x) ** 2, "all"),
    "sigmoid": (lambda t: t.sigmoid(), _mp_sigmoid, _mp_sigmoid_partial, "all"),
    "erf": (lambda t: t.erf(), mpmath.erf, _mp_erf_partial, "all"),
}
for _p in POWERS:
    UNARY[f"pow {_p}"] = (
        lambda t, p=_p: t**p,
        lambda x, p=_p: _mp_pow(x, p),
        lambda x, p=_p: p * _mp_pow(x, p - 1),
        "all" if _p == int(_p) else "positive",
    )
#: where the regimes of the algorithms change (the sigmoid's cancellation of old from -37 on,
#: the limits of exp, the saturation of tanh), added to the spread of magnitudes
LANDMARKS = [0.5, 1.0, 2.0, 10.0, 18.0, 19.1, 20.0, 36.0, 37.0, 38.0, 40.0, 100.0, 700.0, 709.0, 709.5,
             709.78, 710.0, 745.0, 745.13, 745.2, 88.7, 89.0, 103.0, 104.0, math.pi, 1e22]


def spread(dtype, domain: str, seed: int = 0) -> np.ndarray:
    """Finite values of ``dtype`` from the smallest subnormal to the largest float, about one per two
    binades (random significands), 400 more below 4 and the :data:`LANDMARKS`, with both signs unless
    ``domain`` says.

    >>> x = spread(np.float32, "positive")
    >>> bool(x.min() == np.finfo(np.float32).smallest_subnormal), bool(x.max() == np.finfo(np.float32).max)
    (True, True)
    """
    info = np.finfo(dtype)
    rng = np.random.default_rng(seed)
    exponents = np.arange(int(info.minexp) - int(info.nmant), int(info.maxexp), 2 if dtype == np.float64 else 1)
    values = np.ldexp(rng.uniform(1.0, 2.0, exponents.size), exponents)
    extras = [float(info.smallest_subnormal), float(info.tiny), float(info.max), float(info.eps), 1 - float(info.eps)]
    with np.errstate(over="ignore"):
        values = np.concatenate([values, extras, LANDMARKS, rng.uniform(0.0, 4.0, 400)]).astype(dtype)
    values = np.unique(values[np.isfinite(values) & (values > 0)])
    if domain in ("all", "nonzero"):
        values = np.concatenate([-values[::-1], values] if domain == "nonzero" else [-values[::-1], [0.0], values])
    return values.astype(dtype)


def spacing(exact, dtype) -> mpmath.mpf:
    """The distance between floats of ``dtype`` at ``|exact|`` (an mpmath number): ``2**(e - nmant)``
    for ``2**e <= |exact| < 2**(e + 1)``, the subnormal spacing below the normal range.

    >>> float(spacing(mpmath.mpf(1.5), np.float64)) == 2.0**-52, float(spacing(mpmath.mpf(0), np.float32))
    (True, 1.401298464324817e-45)
    """
    info = np.finfo(dtype)
    floor = int(info.minexp) - int(info.nmant)
    if exact == 0:
        return mpmath.ldexp(1, floor)
    return mpmath.ldexp(1, max(int(mpmath.frexp(exact)[1]) - 1 - int(info.nmant), floor))


def relative_errors(got: np.ndarray, exact: list, dtype, ulps: float, absolute: float = 0.0) -> np.ndarray:
    """``|got - exact| / (ulps * spacing + absolute * eps)`` per element: at most 1 where ``got`` is
    within the bound; ``inf`` where ``got`` is not finite and should be, or is finite where the exact
    value rounds past the largest float (which must give ``inf`` of its sign), or is NaN.

    >>> relative_errors(np.array([1.0, np.inf]), [mpmath.mpf(1) + mpmath.mpf(2) ** -52, mpmath.mpf(10) ** 400],
    ...                 np.float64, 1).tolist()
    [1.0, 0.0]
    """
    info = np.finfo(dtype)
    overflow = mpmath.ldexp(2 - mpmath.ldexp(1, -int(info.nmant) - 1), int(info.maxexp) - 1)
    eps = mpmath.mpf(float(info.eps))
    out = np.empty(len(exact))
    with mpmath.workprec(PRECISION):
        for i, (g, e) in enumerate(zip(got.tolist(), exact)):
            if math.isnan(g) or mpmath.isnan(e):
                out[i] = 0.0 if math.isnan(g) and mpmath.isnan(e) else math.inf
            elif mpmath.isinf(e) or abs(e) >= overflow:
                out[i] = 0.0 if math.isinf(g) and (g > 0) == (e > 0) else math.inf
            elif math.isinf(g):
                out[i] = math.inf
            else:
                allowed = ulps * spacing(e, dtype) + absolute * eps
                error = abs(mpmath.mpf(g) - e)
                out[i] = float(error / allowed) if allowed else (0.0 if error == 0 else math.inf)
    return out


@functools.cache
def unary_case(name: str, dtype) -> tuple:
    """``(x, exact values, exact partials)`` of a unary op on its :func:`spread` (cached: mpmath is slow).

    >>> x, values, partials = unary_case("neg", np.float32)
    >>> len(x) == len(values) == len(partials), float(values[-1]) == -float(x[-1])
    (True, True)
    """
    _, value, partial, domain = UNARY[name]
    x = spread(dtype, domain)
    with mpmath.workprec(PRECISION):
        xs = [mpmath.mpf(float(v)) for v in x]
        return x, [value(v) for v in xs], [partial(v) for v in xs]


def forward_and_partial(name: str, x: np.ndarray) -> tuple:
    """semirad's ``op(x)`` and its partial: ``sr.grad`` of ``op(x).sum()`` with respect to ``x``."""
    t = sr.tensor(x, requires_grad=True)
    with np.errstate(all="ignore"):
        y = UNARY[name][0](t)
        (g,) = sr.grad(y.sum(), [t])
    return y.numpy(), g


def worst(errors: np.ndarray, x: np.ndarray, got: np.ndarray, exact: list) -> str:
    """The failing elements, for an assertion message."""
    bad = np.flatnonzero(~(errors <= 1.0))[:6]
    return "; ".join(f"x={x[i]!r}: got {got[i]!r}, exact {mpmath.nstr(exact[i], 17)} ({errors[i]:.3g}x)" for i in bad)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_values_and_partials_are_within_their_bounds(impl, name, dtype):
    x, values, partials = unary_case(name, dtype)
    column = DTYPES.index(dtype)
    y, g = forward_and_partial(name, x)
    assert y.dtype == dtype and g.dtype == dtype
    err = relative_errors(y, values, dtype, FORWARD_ULPS[name][column])
    assert (err <= 1.0).all(), f"{name}: " + worst(err, x, y, values)
    err = relative_errors(g, partials, dtype, PARTIAL_ULPS[name][column], PARTIAL_ABSOLUTE.get(name, (0, 0))[column])
    assert (err <= 1.0).all(), f"{name} partial: " + worst(err, x, g, partials)


BINARY = {  # name: (semirad op, exact value, which pairs)
    "add": (lambda a, b: a + b, lambda a, b: a + b, "all"),
    "sub": (lambda a, b: a - b, lambda a, b: a - b, "all"),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, "all"),
    "div": (lambda a, b: a / b, lambda a, b: a / b, "nonzero divisor"),
    "pow": (lambda a, b: a**b, lambda a, b: mpmath.power(a, b), "positive base"),
    "maximum": (sr.maximum, max, "all"),
    "minimum": (sr.minimum, min, "all"),
}


@functools.cache
def binary_case(name: str, dtype) -> tuple:
    """``(a, b, exact values)``: every magnitude against every other (shuffled pairs), pairs of close
    values (cancellation), and for ``pow`` positive bases with exponents of either sign.

    >>> a, b, exact = binary_case("sub", np.float64)
    >>> len(a) == len(b) == len(exact), bool((a == b).any())
    (True, True)
    """
    rng = np.random.default_rng(1)
    a = spread(dtype, "all")
    b = rng.permutation(a)
    close = np.nextafter(a, np.zeros_like(a))
    a, b = np.concatenate([a, a, a]), np.concatenate([b, close, a])
    which = BINARY[name][2]
    if which == "nonzero divisor":
        a, b = a[b != 0], b[b != 0]
    elif which == "positive base":
        a = np.abs(a)
        b = (rng.uniform(-4, 4, a.size) * 10.0 ** rng.integers(-3, 3, a.size)).astype(dtype)
        keep = a > 0
        a, b = a[keep], b[keep]
    with mpmath.workprec(PRECISION):
        exact = [BINARY[name][1](mpmath.mpf(float(u)), mpmath.mpf(float(v))) for u, v in zip(a, b)]
    return a, b, exact


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_values_are_within_their_bounds(impl, name, dtype):
    a, b, exact = binary_case(name, dtype)
    with np.errstate(all="ignore"):
        y = BINARY[name][0](sr.tensor(a), sr.tensor(b)).numpy()
    assert y.dtype == dtype
    err = relative_errors(y, exact, dtype, FORWARD_ULPS[name][DTYPES.index(dtype)])
    assert (err <= 1.0).all(), f"{name}: " + worst(err, a, y, exact)


# -- the sigmoid: what the old formula got wrong ----------------------------------------------------


def test_sigmoid_log_has_the_finite_gradient_one_minus_sigmoid(impl):
    w = sr.tensor(np.array([-40.0, -100.0, -700.0, 0.0, 40.0]), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (g,) = sr.grad(w.sigmoid().log().sum(), [w])
    with mpmath.workprec(PRECISION):
        exact = [1 - _mp_sigmoid(mpmath.mpf(v)) for v in w.numpy().tolist()]
    assert np.isfinite(g).all()
    assert (relative_errors(g, exact, np.float64, 4) <= 1).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_sigmoid_special_values_without_warnings(impl, dtype):
    with np.errstate(over="ignore"):
        x = np.array([np.nan, -np.inf, np.inf, -0.0, 0.0, -1e300, 1e300, -750.0, -709.5, 800.0]).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = sr.tensor(x, requires_grad=True)
        y = t.sigmoid()
        (g,) = sr.grad(y.sum(), [t])
    assert np.isnan(y[0].item()) and np.isnan(g[0])
    assert y.numpy()[1:7].tolist() == [0.0, 1.0, 0.5, 0.5, 0.0, 1.0]
    assert g[1:7].tolist() == [0.0, 0.0, 0.25, 0.25, 0.0, 0.0]
    assert y.dtype == dtype and g.dtype == dtype


def test_the_old_sigmoid_and_its_partial_fail_these_bounds():
    """``0.5 (1 + tanh(x / 2))`` cancels for negative ``x`` (4e-4 relative at -30, 0 from -39 on), and
    ``y (1 - y)`` for positive ``x`` (0 from 37 on): the bounds above reject both."""
    x, values, partials = unary_case("sigmoid", np.float64)
    old = 0.5 * (1.0 + _tanh.tanh_numpy(0.5 * x))
    err = relative_errors(old, values, np.float64, FORWARD_ULPS["sigmoid"][0])
    assert (err[(x < -20) & (x > -745)] > 1e6).all() and (old[x < -39] == 0).all()
    err = relative_errors(old * (1.0 - old), partials, np.float64, PARTIAL_ULPS["sigmoid"][0])
    assert (err[(x > 10) & (x < 700)] > 1e3).all()
    at_37 = old[x == 37.0] * (1.0 - old[x == 37.0])
    assert at_37.tolist() == [0.0] and float(partials[list(x).index(37.0)]) > 8e-17


@pytest.mark.parametrize("name", sorted(UNARY))
def test_a_value_off_by_more_than_twice_the_bound_fails(name):
    """The check can fail: each value pushed outward by more than twice its bound in ulps."""
    x, values, _ = unary_case(name, np.float64)
    y, _ = forward_and_partial(name, x)
    ulps = FORWARD_ULPS[name][0]
    pushed = y.copy()
    with np.errstate(over="ignore"):
        for _ in range(int(2 * ulps) + 1):
            pushed = np.nextafter(pushed, np.copysign(np.inf, pushed))
    normal = (np.abs(y) >= np.finfo(np.float64).tiny) & (np.abs(y) < 1e300)
    assert normal.sum() > 100
    assert (relative_errors(pushed, values, np.float64, ulps)[normal] > 1).mean() > 0.99


# -- PyTorch, where it is installed (it is not in CI) -----------------------------------------------
TORCH_NAMES = {"neg": "neg", "abs": "abs", "relu": "relu", "exp": "exp", "log": "log", "sqrt": "sqrt",
               "sin": "sin", "cos": "cos", "tanh": "tanh", "sigmoid": "sigmoid", "erf": "erf"}


def torch_forward_and_partial(torch, name: str, x: np.ndarray) -> tuple:
    """PyTorch's ``op(x)`` and its autograd partial, as numpy arrays."""
    t = torch.tensor(x, requires_grad=True)
    y = t ** float(name.split()[1]) if name.startswith("pow") else getattr(torch, TORCH_NAMES[name])(t)
    y.sum().backward()
    return y.detach().numpy(), t.grad.numpy()


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("name", sorted(UNARY))
def test_no_worse_than_pytorch_where_past_the_bound(impl, name, dtype):
    """Per element: semirad's error (in units of its bound) is at most 1 or at most PyTorch's."""
    torch = pytest.importorskip("torch")
    x, values, partials = unary_case(name, dtype)
    column = DTYPES.index(dtype)
    y, g = forward_and_partial(name, x)
    ty, tg = torch_forward_and_partial(torch, name, x)
    for got, theirs, exact, ulps, absolute, what in (
        (y, ty, values, FORWARD_ULPS[name][column], 0.0, "value"),
        (g, tg, partials, PARTIAL_ULPS[name][column], PARTIAL_ABSOLUTE.get(name, (0, 0))[column], "partial"),
    ):
        ours = relative_errors(got, exact, dtype, ulps, absolute)
        bad = ~((ours <= 1.0) | (ours <= relative_errors(theirs, exact, dtype, ulps, absolute)))
        assert not bad.any(), f"{name} {what}: " + worst(np.where(bad, np.inf, 0.0), x, got, exact)


# -- the sigmoid's compiled kernels and their numpy references ------------------------------------
needs_numba = pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")


def sigmoid_inputs(dtype, n: int = 100_000) -> np.ndarray:
    """Every regime: both signs, magnitudes from subnormal to huge, dense from -750 to 750, specials."""
    rng = np.random.default_rng(7)
    x = np.concatenate([
        rng.uniform(-750, 750, n), rng.standard_normal(n) * 4,
        rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(-320, 3, n),
        spread(np.float64, "all"), [np.nan, np.inf, -np.inf, -0.0],
    ])
    with np.errstate(over="ignore"):
        return x.astype(dtype)


def exp_agrees(arguments: np.ndarray) -> np.ndarray:
    """Where numpy's ``exp`` gives the C library's bits (``math.exp``, which numba's kernels call)."""
    ours = np.exp(arguments)
    theirs = np.array([math.exp(a) for a in arguments.tolist()])
    return (ours == theirs) | (np.isnan(ours) & np.isnan(theirs))


def assert_same_bits_where_exp_agrees(got, want, agrees):
    """The same bits wherever numpy's ``exp`` and the C library's agree; within 2 ulp elsewhere."""
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    assert (same | ~agrees).all(), np.flatnonzero(~same & agrees)[:5]
    other = ~same
    if other.any():
        ulp = np.spacing(np.abs(want[other]).astype(want.dtype))
        assert (np.abs(got[other] - want[other]) <= 2 * ulp).all()


def exp_arguments(x: np.ndarray) -> tuple:
    """What the sigmoid and its partial take ``exp`` of, per element."""
    x64 = x.astype(np.float64)
    return np.where(x64 < fast._SIGMOID_LOW, x64, -x64), np.where(x64 > fast._SIGMOID_FAR, -x64, 0.0)


@needs_numba
@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_the_kernels_give_the_references_bits(dtype):
    from semirad.kernels import elementwise

    x = sigmoid_inputs(dtype)
    forward_args, partial_args = exp_arguments(x)
    y, w = np.empty_like(x), np.empty_like(x)
    elementwise.sigmoid(x, fast._SIGMOID_LOW, y)
    want = fast.sigmoid_reference(np, x)
    assert_same_bits_where_exp_agrees(y, want, exp_agrees(forward_args))
    elementwise.sigmoid_partial(x, want, fast._SIGMOID_FAR, w)
    assert_same_bits_where_exp_agrees(w, fast.sigmoid_partial_reference(np, x, want), exp_agrees(partial_args))


@needs_numba
@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_the_kernels_in_plain_python_give_the_references_bits(dtype):
    """The kernels' Python source, run by the interpreter (``math.exp`` is the C library's ``exp``)."""
    from semirad.kernels import elementwise

    x = sigmoid_inputs(dtype, 2000)
    forward_args, partial_args = exp_arguments(x)
    y, w = np.empty_like(x), np.empty_like(x)
    elementwise.sigmoid.py_func(x, fast._SIGMOID_LOW, y)
    want = fast.sigmoid_reference(np, x)
    assert_same_bits_where_exp_agrees(y, want, exp_agrees(forward_args))
    elementwise.sigmoid_partial.py_func(x, want, fast._SIGMOID_FAR, w)
    assert_same_bits_where_exp_agrees(w, fast.sigmoid_partial_reference(np, x, want), exp_agrees(partial_args))


@needs_numba
def test_the_kernels_run_where_their_probe_says_they_agree(monkeypatch):
    monkeypatch.setattr(fast, "_SIGMOID_KERNELS_AGREE", None)
    ramp = np.linspace(-750.0, 750.0, 6001)
    probe = np.concatenate([ramp, np.sin(ramp) * 10.0 ** np.linspace(-300, 2.85, ramp.size)])
    forward_args, partial_args = exp_arguments(probe)
    agree = bool(exp_agrees(forward_args).all() and exp_agrees(partial_args).all())
    with kernels.using("numba"):
        assert fast._sigmoid_kernels_agree() == agree
    from semirad.kernels import elementwise

    calls = []
    for name in ("sigmoid", "sigmoid_partial"):
        kernel = getattr(elementwise, name)
        monkeypatch.setattr(elementwise, name, lambda *args, _k=kernel, _n=name: calls.append(_n) or _k(*args))
    x = np.linspace(-50, 50, 12)
    for agree, mode, expected in ((True, "numba", ["sigmoid", "sigmoid_partial"]), (False, "numba", []),
                                  (True, "numpy", [])):
        calls.clear()
        monkeypatch.setattr(fast, "_SIGMOID_KERNELS_AGREE", agree)
        with kernels.using(mode):
            y = fast.sigmoid(np, x)
            fast.sigmoid_partial(np, x, y)
            fast.sigmoid(np, x.astype(np.float16))
            fast.sigmoid_partial(np, np.arange(12), y)
        assert calls == expected


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16, np.int64, bool])
@pytest.mark.parametrize("layout", ["C", "transposed", "strided", "0-d", "empty"])
def test_sigmoid_and_its_partial_on_every_layout_and_dtype(impl, dtype, layout):
    rng = np.random.default_rng(3)
    base = (rng.standard_normal((30, 20)) * 30).astype(dtype)
    x = {"C": base, "transposed": base.T, "strided": base[::2, ::3], "0-d": base[0, 0, ...],
         "empty": base[:0]}[layout]
    x.setflags(write=False)
    y = fast.sigmoid(np, x)
    out_dtype = np.float64 if np.dtype(dtype).kind in "biu" else np.dtype(dtype)
    assert y.shape == x.shape and y.dtype == out_dtype and not np.shares_memory(y, x)
    want = fast.sigmoid_reference(np, np.ascontiguousarray(x))
    np.testing.assert_array_equal(y, want)
    w = fast.sigmoid_partial(np, x, y)
    assert w.shape == x.shape and w.dtype == out_dtype and not np.shares_memory(w, y)
    np.testing.assert_array_equal(w, fast.sigmoid_partial_reference(np, np.ascontiguousarray(x), want))


# -- erf: its partial, and the compiled kernel against its numpy reference --------------------------


def test_the_naive_erf_partial_fails_the_bound_that_semirad_meets():
    """``2/sqrt(pi) exp(-x*x)`` loses ``x**2 eps`` relative to the rounding of ``x*x`` (up to 160 of the
    3 ulps allowed near ``x = 26``); semirad's exact square keeps every point of a dense grid in bound."""
    from semirad.ops.special import TWO_OVER_SQRT_PI

    x = np.linspace(4.0, 26.5, 300)
    with mpmath.workprec(PRECISION):
        exact = [_mp_erf_partial(mpmath.mpf(v)) for v in x.tolist()]
    naive = TWO_OVER_SQRT_PI * np.exp(-x * x)
    ulps = PARTIAL_ULPS["erf"][0]
    assert (relative_errors(naive, exact, np.float64, ulps)[x > 10] > 1).mean() > 0.7
    _, g = forward_and_partial("erf", x)
    err = relative_errors(g, exact, np.float64, ulps)
    assert (err <= 1).all(), worst(err, x, g, exact)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16, np.int64, bool])
@pytest.mark.parametrize("layout", ["C", "transposed", "strided", "0-d", "empty"])
def test_the_erf_kernel_gives_the_references_bits(dtype, layout):
    from semirad.ops.special import erf_reference, erf_values

    rng = np.random.default_rng(11)
    with np.errstate(over="ignore", invalid="ignore"):  # (NaN and inf cast to an integer dtype)
        base = np.concatenate([
            rng.standard_normal(4000) * 3, rng.choice([-1.0, 1.0], 2000) * 10.0 ** rng.uniform(-320, 3, 2000),
            [np.nan, np.inf, -np.inf, -0.0, 0.0, 5.9, 6.0, 27.0], np.zeros(52),
        ]).astype(dtype).reshape(60, 101)
    x = {"C": base, "transposed": base.T, "strided": base[::2, ::3], "0-d": base[0, 7, ...], "empty": base[:0]}[layout]
    x.setflags(write=False)
    with kernels.using("numba"):
        got = erf_values(np, x)
    want = erf_reference(np.ascontiguousarray(x))
    out_dtype = np.float64 if np.dtype(dtype).kind in "biu" else np.dtype(dtype)
    assert got.shape == x.shape and got.dtype == want.dtype == out_dtype
    np.testing.assert_array_equal(got, want)
    with kernels.using("numpy"):
        np.testing.assert_array_equal(erf_values(np, x), want)
