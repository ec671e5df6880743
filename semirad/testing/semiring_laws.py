"""Check a semiring: its laws, and every primitive against the ⊕-fold of ⊗ over explicit edges.

Values are drawn as a sweep makes them (:func:`semiring_value`): real seeds on a grid of powers of
two lifted with ``seed``, handed to ``enter`` as a vertex of their own (so provenance ids are
distinct, as the sweep's are), some elements "no path" (``zeros``), and for the laws of ⊕ two such
values ⊕-added. Sums and products of powers of two are exact, so every comparison is ``==``
(``rtol`` relaxes it for semirings that take logarithms), ties included.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from ..semirings.base import Semiring

#: the real numbers drawn: powers of two of both signs, and 0 (exact sums and products)
GRID = np.array([0.25, 0.5, 1.0, 2.0, 4.0])
#: edge weights tried for the laws with a weight, negative ones early (0 last)
WEIGHTS = np.array([-2.0, 0.5, -0.25, 4.0, -1.0, 1.0, 2.0, -4.0, 0.25, -0.5, 0.0])


class _Vertex:
    """The vertex a drawn value belongs to, as ``enter`` sees a node of the graph."""

    op = "check_semiring"
    op_name = "check_semiring"
    parents = ()
    name = None
    component = None

    def __init__(self, shape):
        self.shape = tuple(shape)
        self.dtype = np.dtype(np.float64)
        self.seq = -1

    def describe(self) -> str:
        return f"a value of shape {self.shape} drawn by check_semiring"


def _rng(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _grid(rng, shape, zeros: bool = True) -> np.ndarray:
    mags = rng.choice(GRID, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    if zeros:
        mags = np.where(rng.random(shape) < 0.15, 0.0, mags)
    return np.asarray(mags, dtype=np.float64)


def _components(g) -> tuple:
    return g if isinstance(g, tuple) else (g,)


def _rebuild(g, parts):
    return tuple(parts) if isinstance(g, tuple) else parts[0]


def _lead(S) -> int:
    return int(getattr(S, "lead_axes", 0))


def _take(S: Semiring, g, index) -> Any:
    """Element ``index`` (a tuple of ints) of a value, every component alike (leading axes kept)."""
    lead = (slice(None),) * _lead(S)
    return _rebuild(g, [np.asarray(c[lead + tuple(index)]) for c in _components(g)])


def _where(S, mask, a, b):
    lead = _lead(S)
    parts = []
    for x, y in zip(_components(a), _components(b), strict=True):
        m = mask.reshape((1,) * lead + mask.shape)
        parts.append(np.where(m, x, y))
    return _rebuild(a, parts)


def _copy(g):
    return _rebuild(g, [np.array(c, copy=True) for c in _components(g)])


def semiring_value(
    S: Semiring, shape: tuple = (4,), *, rng=None, base: int = 0, terms: int = 1, dead: float = 0.25
) -> Any:
    """A value of ``S`` of element shape ``shape``, drawn as the sweep makes them.

    Each of ``terms`` parts is ``S.seed`` of a real array on the grid of powers of two (0 included)
    handed to ``S.enter`` as a vertex of its own whose first element id is ``base`` (the next
    parts ``base + size``, ``base + 2 size``...), so provenance ids are distinct from those of a value drawn with
    another ``base``; the parts are scaled by grid weights and ⊕-added; a fraction ``dead`` of the
    elements is "no path" (``S.zeros``).

    >>> from semirad.semirings import MaxAbsProduct
    >>> from semirad.testing import semiring_value
    >>> value, ids = semiring_value(MaxAbsProduct(), (3,), rng=0, base=10, dead=0.0)
    >>> ids.tolist()
    [10, 11, 12]
    """
    rng = _rng(rng)
    size = int(np.prod(shape, dtype=np.int64))
    value = None
    for t in range(terms):
        part = S.seed(_grid(rng, shape))
        if getattr(S, "has_enter", False):
            part, _ = S.for_sweep().enter(part, _Vertex(shape), base + max(size, 1) * t)
        if value is None:
            value = part
        else:
            value = S.add(value, S.scale(part, _grid(rng, shape, zeros=False)))
    if dead and size:
        value = _where(S, rng.random(shape) < dead, S.zeros(np, tuple(shape), np.float64), value)
    return value


# -- comparison and reporting ----------------------------------------------------------------------


def _show(S, g, index=None) -> str:
    parts = _components(_take(S, g, index) if index is not None else g)
    shown = []
    for c in parts:
        c = np.asarray(c)
        shown.append(repr(c.item()) if c.ndim == 0 else str(c.tolist()))
    return shown[0] if len(shown) == 1 else "(" + ", ".join(shown) + ")"


def _first_difference(S, x, y, rtol: float) -> tuple | None:
    """The first element (index tuple) where two values differ, or None; ``()`` with a reason when
    their structure differs."""
    xs, ys = _components(x), _components(y)
    if len(xs) != len(ys):
        return ((), f"{len(xs)} components against {len(ys)}")
    lead = _lead(S)
    for a, b in zip(xs, ys):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            return ((), f"shape {a.shape} against {b.shape}")
        if a.dtype.kind in "fc" or b.dtype.kind in "fc":
            with np.errstate(invalid="ignore"):
                same = (a == b) | (np.isnan(a) & np.isnan(b))
                if rtol:
                    same |= np.isclose(a, b, rtol=rtol, atol=0.0)
        else:
            same = a == b
        if not same.all():
            bad = ~same
            if lead:
                bad = bad.reshape(bad.shape[:lead] + (-1,)).any(axis=tuple(range(lead))).reshape(a.shape[lead:])
            flat = int(np.flatnonzero(bad.reshape(-1))[0]) if bad.size else 0
            return (tuple(int(i) for i in np.unravel_index(flat, bad.shape)) if bad.shape else (), None)
    return None


class _Failure(AssertionError):
    pass


class _Check:
    def __init__(self, S, rtol):
        self.S, self.rtol = S, rtol

    def same(self, x, y, law: str, left: str, right: str, operands: dict, visible_only: bool = False,
             elementwise: bool = True) -> None:
        S = self.S
        shown = S
        if visible_only:
            x, y = S.to_array(x, np.float64), S.to_array(y, np.float64)
            shown = _Plain()
        found = _first_difference(shown, x, y, self.rtol)
        if found is None:
            return
        index, reason = found
        if reason is not None:
            raise _Failure(f"{S!r}: {law}: {left} and {right} differ in structure: {reason}")
        where = f" at element {index}" if index else ""
        said = ", ".join(f"{name} = {_operand(S, name, v, index if elementwise else None)}"
                         for name, v in operands.items())  # fmt: skip
        raise _Failure(
            f"{S!r}: {law}{where}: {left} = {_show(shown, x, index)} but {right} = {_show(shown, y, index)}"
            + (f", with {said}" if said else "")
        )


def _operand(S, name: str, v, index) -> str:
    if name[0] in "wW":  # a real weight array, or a number
        arr = np.asarray(v)
        return repr(arr[index].item()) if index is not None and arr.ndim == len(index) and arr.ndim else str(
            arr.tolist())
    return _show(S, v, index)


class _Plain:
    lead_axes = 0

    def __repr__(self):
        return "to_array"


def _has(S, method: str) -> bool:
    return getattr(type(S), method, None) is not getattr(Semiring, method)


# -- the laws ----------------------------------------------------------------------------------------


def _laws(S, check: _Check, rng, shape, stage: int) -> None:
    """One draw of the laws of ``stage``: 0 those of ⊕, 1 those of ⊗ by edge weights, 2 those of
    ⊗ of two values (where ``S`` has ``times`` and ``one``)."""
    a = semiring_value(S, shape, rng=rng, base=0, terms=2)
    b = semiring_value(S, shape, rng=rng, base=10_000, terms=2)
    c = semiring_value(S, shape, rng=rng, base=20_000, terms=2)
    zero = S.zeros(np, shape, np.float64)
    add = S.add
    check.same(add(a, b), add(b, a), "⊕ is not commutative", "a ⊕ b", "b ⊕ a", {"a": a, "b": b})
    check.same(add(add(a, b), c), add(a, add(b, c)), "⊕ is not associative", "(a ⊕ b) ⊕ c", "a ⊕ (b ⊕ c)",
               {"a": a, "b": b, "c": c})  # fmt: skip
    check.same(add(zero, a), a, "zero is not the identity of ⊕", "zero ⊕ a", "a", {"zero": zero})
    check.same(add(a, zero), a, "zero is not the identity of ⊕", "a ⊕ zero", "a", {"zero": zero})
    if stage != 1:
        if stage == 2:
            _times_laws(S, check, rng, shape, a, zero)
        return
    # ⊗ by edge weights (all the sweep does): scale(g, w) is w ⊗ g
    zeros_w = S.zeros(np, WEIGHTS.shape, np.float64)
    scaled = S.scale(zeros_w, WEIGHTS)
    found = _first_difference(S, scaled, zeros_w, check.rtol)
    if found is not None:
        k = found[0][0] if found[0] else 0
        raise _Failure(
            f"{S!r}: zero does not annihilate: \"no path\" ⊗ the weight {float(WEIGHTS[k])!r} is "
            f"{_show(S, scaled, (k,))}, not zero = {_show(S, zeros_w, (k,))} (scale(zeros, w))"
        )
    check.same(S.scale(a, 1.0), a, "the weight 1 is not the identity of ⊗", "scale(a, 1.0)", "a", {})
    check.same(S.scale(a, np.ones(shape)), a, "the weight 1 is not the identity of ⊗", "scale(a, ones)", "a", {})
    w1, w2 = _grid(rng, shape), _grid(rng, shape)
    check.same(S.scale(S.scale(a, w2), w1), S.scale(a, w1 * w2), "⊗ is not associative",
               "scale(scale(a, w2), w1)", "scale(a, w1 * w2)", {"a": a, "w1": w1, "w2": w2})  # fmt: skip
    w = _grid(rng, shape, zeros=False)
    check.same(S.scale(add(a, b), w), add(S.scale(a, w), S.scale(b, w)), "⊗ does not distribute over ⊕",
               "scale(a ⊕ b, w)", "scale(a, w) ⊕ scale(b, w)", {"a": a, "b": b, "w": w})  # fmt: skip
    w0 = np.zeros(shape)  # every path through an edge of weight 0 ties: only the visible value must agree
    check.same(S.scale(add(a, b), w0), add(S.scale(a, w0), S.scale(b, w0)), "⊗ does not distribute over ⊕",
               "to_array(scale(a ⊕ b, 0))", "to_array(scale(a, 0) ⊕ scale(b, 0))", {"a": a, "b": b},
               visible_only=True)  # fmt: skip


def _times_laws(S, check: _Check, rng, shape, a, zero) -> None:
    add = S.add
    one = S.one(np, shape)
    times = S.times
    check.same(times(zero, a), zero, "zero does not annihilate", "zero ⊗ a", "zero", {"a": a})
    check.same(times(a, zero), zero, "zero does not annihilate", "a ⊗ zero", "zero", {"a": a})
    check.same(times(one, a), a, "one is not the identity of ⊗", "one ⊗ a", "a", {"one": one})
    check.same(times(a, one), a, "one is not the identity of ⊗", "to_array(a ⊗ one)", "to_array(a)",
               {"one": one}, visible_only=True)  # fmt: skip
    check.same(times(S.seed(np.ones(shape)), a), a, "seed(1) is not one", "seed(1) ⊗ a", "a", {})
    wl = _grid(rng, shape)
    check.same(times(S.seed(wl), a), S.scale(a, wl), "scale is not ⊗ by the lifted weight", "seed(w) ⊗ a",
               "scale(a, w)", {"a": a, "w": wl})  # fmt: skip
    fresh = [semiring_value(S, shape, rng=rng, base=base) for base in (30_000, 40_000, 50_000)]
    p, q, r = fresh
    check.same(times(times(p, q), r), times(p, times(q, r)), "⊗ is not associative", "(a ⊗ b) ⊗ c",
               "a ⊗ (b ⊗ c)", {"a": p, "b": q, "c": r}, visible_only=_has(S, "enter"))  # fmt: skip
    check.same(times(p, add(q, r)), add(times(p, q), times(p, r)), "⊗ does not distribute over ⊕ from the left",
               "a ⊗ (b ⊕ c)", "a ⊗ b ⊕ a ⊗ c", {"a": p, "b": q, "c": r},
               visible_only=_has(S, "enter"))  # fmt: skip


# -- the primitives against explicit edges ------------------------------------------------------


def _fold(S, terms, dtype=np.float64):
    """``zero ⊕ t1 ⊕ t2 ...`` of 0-d values, in order."""
    return functools.reduce(S.add, terms, S.zeros(np, (), dtype))


def _assemble(S, elements: list, shape: tuple):
    """A value of ``shape`` from its 0-d elements in C order (structurally, no primitive used)."""
    lead = _lead(S)
    template = elements[0] if elements else S.zeros(np, (), np.float64)
    parts = []
    for c, first in enumerate(_components(template)):
        first = np.asarray(first)
        if not elements:
            parts.append(np.zeros(first.shape + tuple(shape), dtype=first.dtype))
            continue
        arr = np.stack([np.asarray(_components(e)[c]) for e in elements], axis=lead)
        parts.append(arr.reshape(arr.shape[:lead] + tuple(shape)))
    return _rebuild(template, parts)


def _reference(S, out_shape, edges_of: Callable) -> Any:
    """The value whose element ``o`` is the ⊕-fold of ``edges_of(o)`` (a list of 0-d values)."""
    elements = [_fold(S, edges_of(o)) for o in np.ndindex(*out_shape)]
    return _assemble(S, elements, out_shape)


def _primitives(S, check: _Check, rng) -> None:
    def same(*args, **kwargs):
        check.same(*args, elementwise=False, **kwargs)

    def fresh(shape, base=0):
        return semiring_value(S, shape, rng=rng, base=base)

    def at(g, flat, shape):
        return _take(S, g, np.unravel_index(flat, shape) if shape else ())

    # scale: one edge per element, weights broadcasting against the value (more axes, size-1 axes, a number)
    for gshape, wshape in [((2, 3), (2, 3)), ((3,), (2, 3)), ((2, 1), (2, 3)), ((2, 3), ())]:
        g = fresh(gshape)
        W = _grid(rng, wshape) if wshape else float(rng.choice(WEIGHTS))
        out_shape = np.broadcast_shapes(gshape, np.shape(W))
        src = np.broadcast_to(np.arange(int(np.prod(gshape))).reshape(gshape), out_shape)
        Wb = np.broadcast_to(np.asarray(W, dtype=np.float64), out_shape)
        expected = _reference(S, out_shape, lambda o, g=g, src=src, Wb=Wb, gshape=gshape: [
            S.scale(at(g, int(src[o]), gshape), np.array(Wb[o]))])
        same(S.scale(g, W), expected, "scale is not ⊗ by each element's edge weight",
                   f"scale(g, w) (g of shape {gshape}, w of shape {np.shape(W)})", "the explicit edges",
                   {"g": g, "w": W})  # fmt: skip
        if wshape:
            same(S.scale_temporary(g, np.array(W)), S.scale(g, W), "scale_temporary is not scale",
                       "scale_temporary(g, w)", "scale(g, w)", {"g": g, "w": W})  # fmt: skip
    # sum: the ⊕-fold over the reduced axes, in C order
    g = fresh((2, 3))
    for axes in [(0,), (1,), (0, 1), (-1,), ()]:
        for keepdims in (False, True):
            canon = tuple(sorted(a % 2 for a in axes))
            kept = tuple(1 if d in canon else n for d, n in enumerate((2, 3))) if keepdims else tuple(
                n for d, n in enumerate((2, 3)) if d not in canon)

            def edges(o, canon=canon, keepdims=keepdims):
                o = list(o)
                full = o if keepdims else [None if d in canon else o.pop(0) for d in range(2)]
                return [_take(S, g, i) for i in np.ndindex(2, 3)
                        if all(d in canon or i[d] == full[d] for d in range(2))]  # fmt: skip

            same(S.sum(g, axes, keepdims), _reference(S, kept, edges), "sum is not the ⊕-fold of its axes",
                       f"sum(g, {axes}, keepdims={keepdims})", "the fold", {"g": g})  # fmt: skip
    empty = fresh((0, 3))
    same(S.sum(empty, (0,)), S.zeros(np, (3,), np.float64), "sum over an empty axis is not zero",
               "sum(g of shape (0, 3), (0,))", "zeros", {})  # fmt: skip
    # matmul: out[..., i, k] = ⊕_j g[..., i, j] ⊗ W[..., j, k]
    for gshape, wshape in [((2, 3), (3, 4)), ((2, 6), (6, 2)), ((2, 2, 3), (3, 2)), ((2, 1, 2, 3), (3, 3, 2))]:
        g, W = fresh(gshape), _grid(rng, wshape)
        batch = np.broadcast_shapes(gshape[:-2], wshape[:-2])
        m, n, p = gshape[-2], gshape[-1], wshape[-1]
        src = np.broadcast_to(np.arange(int(np.prod(gshape))).reshape(gshape), batch + (m, n))
        Wb = np.broadcast_to(W, batch + (n, p))

        def edges(o, g=g, src=src, Wb=Wb, gshape=gshape, n=n):
            *b, i, k = o
            return [S.scale(at(g, int(src[tuple(b) + (i, j)]), gshape), np.array(Wb[tuple(b) + (j, k)]))
                    for j in range(n)]  # fmt: skip

        same(S.matmul(g, W), _reference(S, batch + (m, p), edges), "matmul is not the ⊕-fold of ⊗",
                   f"matmul(g, W) (g of shape {gshape}, W of shape {wshape})", "the explicit edges",
                   {"g": g, "W": W})  # fmt: skip
    # scatter: out[t] = zero ⊕ every g[p] whose target is t (repeats meet with ⊕)
    n = 6
    g = fresh((n,))
    index = rng.integers(-3, 3, n)
    same(S.scatter(g, (index,), (3,), False),
               _reference(S, (3,), lambda o: [_take(S, g, (p,)) for p in range(n) if index[p] % 3 == o[0]]),
               "scatter is not the ⊕-fold of what meets", f"scatter(g, ({index.tolist()},), (3,))",
               "the fold", {"g": g})  # fmt: skip
    g2 = fresh((2, n))
    same(S.scatter(g2, (slice(None), index), (2, 3), False),
               _reference(S, (2, 3), lambda o: [_take(S, g2, (o[0], p)) for p in range(n) if index[p] % 3 == o[1]]),
               "scatter is not the ⊕-fold of what meets", f"scatter(g, (:, {index.tolist()}), (2, 3))",
               "the fold", {"g": g2})  # fmt: skip
    perm = rng.permutation(5)[:3]
    g3 = fresh((3,))
    for unique in (True, False):
        same(S.scatter(g3, (perm,), (5,), unique),
                   _reference(S, (5,), lambda o: [_take(S, g3, (p,)) for p in range(3) if perm[p] == o[0]]),
                   "scatter is not the ⊕-fold of what meets", f"scatter(g, ({perm.tolist()},), (5,), unique={unique})",
                   "the fold", {"g": g3})  # fmt: skip
    same(S.scatter_unique(g3, (perm,), (5,), lead=_lead(S)),
         _reference(S, (5,), lambda o: [_take(S, g3, (p,)) for p in range(3) if perm[p] == o[0]]),
         "scatter_unique is not scatter without repeats", f"scatter_unique(g, ({perm.tolist()},), (5,))",
         "the fold", {"g": g3})  # fmt: skip
    a, b = fresh((3,)), fresh((3,), base=300)
    same(S.plus(a, b), S.add(a, b), "plus is not add", "plus(a, b)", "add(a, b)", {"a": a, "b": b})
    same(S.zero(np, (3,)), S.zeros(np, (3,), np.float64), "zero is not zeros", "zero(np, (3,))", "zeros", {})
    # add_at: buffer[index] ⊕= g, in place or not
    buffer = fresh((5,), base=100)
    for index in [(perm,), slice(1, 4)]:
        targets = np.arange(5)[index]
        part = fresh((targets.size,), base=200)
        expected = _reference(S, (5,), lambda o, targets=targets, part=part, buffer=buffer: [_take(S, buffer, o)] + [
            _take(S, part, (p,)) for p in range(targets.size) if targets[p] == o[0]])
        same(S.add_at(_copy(buffer), index, part), expected, "add_at is not buffer[index] ⊕= g",
                   f"add_at(buffer, {index!r}, g)", "the fold", {"buffer": buffer, "g": part})  # fmt: skip
    # map: every component moved by the index map alike
    g = fresh((2, 3))
    maps = {
        "transpose": lambda a: a.swapaxes(-1, -2) if a.ndim >= 2 else a,
        "reshape": lambda a: a.reshape(a.shape[:-2] + (6,)),
        "reversed slice": lambda a: a[..., ::-1],
        "broadcast": lambda a: np.broadcast_to(a[..., None, :, :], a.shape[:-2] + (2, 2, 3)),
    }
    positions = np.arange(6).reshape(2, 3)
    for name, fn in maps.items():
        src = fn(positions)
        expected = _assemble(S, [at(g, int(f), (2, 3)) for f in src.reshape(-1)], src.shape)
        same(S.map(g, fn), expected, "map does not move every component alike", f"map(g, {name})",
                   "the moved elements", {"g": g})  # fmt: skip
    # seed and shape: per element
    w = _grid(rng, (2, 3))
    same(S.seed(w), _assemble(S, [S.seed(np.array(v)) for v in w.reshape(-1)], (2, 3)),
               "seed is not elementwise", "seed(w)", "the seeds of its elements", {"w": w})  # fmt: skip
    if tuple(S.shape(g)) != (2, 3):
        raise _Failure(f"{S!r}: shape(g) is {S.shape(g)} for a value of element shape (2, 3)")


def check_semiring(S: Semiring, *, examples: int = 20, seed: int = 0, rtol: float = 0.0, shape: tuple = (4,)) -> None:
    """Check ``S``'s laws and primitives, exactly, on values drawn as the sweep makes them.

    The laws (on ``examples`` draws of values of element ``shape``): ⊕ commutative and associative,
    zero its identity; zero annihilates (``scale(zeros, w) == zeros`` for every weight, negative
    and 0 included); the weight 1 is ⊗'s identity; ⊗ by edge weights associative
    (``scale(scale(a, w2), w1) == scale(a, w1 w2)``) and distributive over ⊕ (for a weight 0 only
    the visible values must agree: every path through it ties). Where ``S`` has ``times`` and
    ``one``: the same laws for ⊗ of two values (for a semiring with provenance, ``enter``, the
    ones that mix two values' provenance on the visible values), and ``times(seed(w), a) == scale(a, w)``.

    The primitives, each against the ⊕-fold (in C order, from zero) of ⊗ over its explicit edges,
    element by element on 0-d values: ``scale`` (weights broadcasting, a number), ``scale_temporary``,
    ``sum`` (every axis choice, keepdims, an empty axis), ``matmul`` (batch axes broadcasting either
    way), ``scatter`` (repeated and negative targets; ``unique``), ``scatter_unique``, ``add_at``,
    ``plus`` and ``zero`` (``add`` and ``zeros`` by their algebraic names), ``map`` (transpose,
    reshape, reversed slice, broadcast), ``seed`` and ``shape``.

    Comparisons are exact (NaN equals NaN; ``rtol`` relaxes float components, e.g. ``1e-12`` for a
    semiring that takes logarithms). Raises ``AssertionError`` with the first counter-example in words.

    >>> from semirad.semirings import MaxAbsProduct
    >>> from semirad.testing import check_semiring
    >>> check_semiring(MaxAbsProduct(), examples=3)
    """
    check = _Check(S, rtol)
    rng = np.random.default_rng(seed)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        for stage in (0, 1, 2) if _has(S, "times") and _has(S, "one") else (0, 1):
            for _ in range(examples):
                _laws(S, check, rng, tuple(shape), stage)
        for _ in range(max(1, examples // 4)):
            _primitives(S, check, rng)
