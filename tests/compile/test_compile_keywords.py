"""Keyword inputs of a compiled graph, as a ``jax.jit`` user expects them: array keywords are inputs
(given by keyword, or by position where ``fn`` takes them so), other keyword values are static;
every wrong call names the argument."""

from __future__ import annotations

import numpy as np
import pytest
from test_compile import assert_same

import semirad as sr


def _fn(x, mask=None, scale=1.0, *, shift=None):
    y = (x * mask).tanh() * scale
    return (y + shift).sum() if shift is not None else y.sum()


def _eager(x, mask, scale=1.0, shift=None):
    xt = sr.tensor(x, requires_grad=True)
    mt = sr.tensor(mask, requires_grad=True)
    st = None if shift is None else sr.tensor(shift, requires_grad=True)
    return _fn(xt, mask=mt, scale=scale, shift=st), [xt, mt] + ([st] if st is not None else [])


def test_array_keywords_are_inputs_and_follow_the_call():
    g = sr.compile(_fn, np.zeros(3), mask=np.ones(3), scale=2.0, shift=np.zeros(3))
    rng = np.random.default_rng(0)
    for _ in range(2):
        x, mask, shift = rng.standard_normal(3), rng.standard_normal(3), rng.standard_normal(3)
        ye, inputs = _eager(x, mask, 2.0, shift)
        ts = [sr.tensor(a, requires_grad=True) for a in (x, mask, shift)]
        for y in (
            g(ts[0], mask=ts[1], shift=ts[2]),
            g(ts[0], shift=ts[2], mask=ts[1], scale=2.0),  # any order; a static keyword repeated
            g(x=ts[0], mask=ts[1], shift=ts[2]),  # a positional input by its name
            g(ts[0], ts[1], shift=ts[2]),  # a keyword input that fn takes by position, by position
        ):
            assert_same(y.data, ye.data)
            assert_same(sr.grad(y, ts), sr.grad(ye, inputs))
            assert_same(sr.trace(y, ts)[ts[1]], sr.trace(ye, inputs)[inputs[1]])


def test_static_keywords_are_fixed_at_compile_time():
    g = sr.compile(_fn, np.ones(2), mask=np.ones(2), scale=3.0)
    assert g(np.ones(2), mask=np.ones(2)).item() == pytest.approx(6 * np.tanh(1.0))
    with pytest.raises(ValueError, match=r"keyword 'scale' is 4\.0, the graph was compiled with 3\.0"):
        g(np.ones(2), mask=np.ones(2), scale=4.0)
    with pytest.raises(ValueError, match="keyword 'scale' is 3, the graph was compiled with 3.0"):
        g(np.ones(2), mask=np.ones(2), scale=3)  # (another type is another value: fn may tell 3 from 3.0)


def test_wrong_calls_name_the_argument():
    g = sr.compile(_fn, np.ones(2), mask=np.ones(2))
    with pytest.raises(TypeError, match=r"expected 2 inputs, got 1 \(missing 'mask'\)"):
        g(np.ones(2))
    with pytest.raises(TypeError, match=r"missing 'x'"):
        g(mask=np.ones(2))
    with pytest.raises(TypeError, match=r"unexpected keyword 'mas' \(its keywords: 'x', 'mask'\)"):
        g(np.ones(2), mas=np.ones(2))
    with pytest.raises(TypeError, match="input 'x' given twice"):
        g(np.ones(2), x=np.ones(2), mask=np.ones(2))
    with pytest.raises(TypeError, match="expected 2 inputs, got 3"):
        g(np.ones(2), np.ones(2), np.ones(2))
    with pytest.raises(ValueError, match=r"input 1 \('mask'\) has shape \(3,\)"):
        g(np.ones(2), mask=np.ones(3))


def test_keyword_only_inputs_cannot_be_given_by_position():
    g = sr.compile(_fn, np.ones(2), mask=np.ones(2), shift=np.zeros(2))
    with pytest.raises(TypeError, match="expected 2 positional inputs, got 3"):
        g(np.ones(2), np.ones(2), np.zeros(2))  # (fn's third parameter is scale, then shift by keyword only)
    assert g(np.ones(2), np.ones(2), shift=np.zeros(2)).item() == pytest.approx(2 * np.tanh(1.0))


def test_positional_only_parameters_cannot_be_given_by_name():
    def fn(x, /, w):
        return (x * w).sum()

    g = sr.compile(fn, np.ones(2), np.ones(2))
    assert g(np.ones(2), w=np.full(2, 2.0)).item() == 4.0
    with pytest.raises(TypeError, match="unexpected keyword 'x'"):
        g(x=np.ones(2), w=np.ones(2))


def test_keyword_inputs_in_stats_and_errors_of_a_graph_without_a_signature():
    class Model:
        def __call__(self, *xs, **kw):
            return sum((x * x).sum() for x in [*xs, *kw.values()])

    g = sr.compile(Model(), np.ones(2), extra=np.ones(3))
    assert g(np.ones(2), extra=np.full(3, 2.0)).item() == 14.0
    with pytest.raises(ValueError, match=r"input 1 \('extra'\)"):
        g(np.ones(2), extra=np.ones(2))
    with pytest.raises(TypeError, match="expected 1 positional inputs, got 2"):
        g(np.ones(2), np.ones(3))
