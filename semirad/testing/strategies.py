"""hypothesis strategies for property tests of semirad code: arrays and tensors with values kept
away from kinks, broadcastable shapes, and semiring values drawn as the sweep makes them.

hypothesis is a test dependency (``pip install semirad[test]``), not a runtime one: this module
needs it, the rest of :mod:`semirad.testing` does not.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

try:
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as error:  # pragma: no cover - the message is the point
    raise ImportError(
        "semirad.testing.strategies needs hypothesis, a test dependency of semirad: "
        "pip install 'semirad[test]' (or pip install hypothesis)"
    ) from error

from ..semirings.base import Semiring
from ..tensor import tensor as _tensor
from .semiring_laws import semiring_value

__all__ = ["floats", "arrays", "tensors", "shapes", "broadcastable_shapes", "semiring_values", "distinct"]


def floats(
    lo: float = -2.0, hi: float = 2.0, *, away_from: Sequence[float] = (), gap: float = 0.1
) -> st.SearchStrategy:
    """Finite floats in ``[lo, hi]``, at least ``gap`` away from every point of ``away_from`` (the
    kinks of ``relu``/``abs`` at 0, a ``clip`` bound, a pole): a value drawn closer is moved out to
    ``point ± gap`` (and dropped if that leaves ``[lo, hi]``).

    >>> from hypothesis import given
    >>> from semirad.testing.strategies import floats
    >>> @given(floats(-1, 1, away_from=[0.0]))
    ... def test_away(x):
    ...     assert abs(x) >= 0.1
    >>> test_away()
    """
    base = st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    points = [float(p) for p in away_from]
    if not points:
        return base

    def push(x: float) -> float:
        for p in points:
            if abs(x - p) < gap:
                x = p + gap if x >= p else p - gap
        return x

    return base.map(push).filter(lambda x: lo <= x <= hi and all(abs(x - p) >= gap * (1 - 1e-12) for p in points))


def shapes(min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 3) -> st.SearchStrategy:
    """Array shapes (``hypothesis.extra.numpy.array_shapes`` with small defaults).

    >>> from hypothesis import given
    >>> from semirad.testing.strategies import shapes
    >>> @given(shapes(max_dims=2))
    ... def test_shape(s):
    ...     assert len(s) <= 2 and all(1 <= n <= 3 for n in s)
    >>> test_shape()
    """
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def arrays(
    shape: Any = None,
    dtype: Any = np.float64,
    elements: st.SearchStrategy | None = None,
    away_from: Sequence[float] = (),
    gap: float = 0.1,
) -> st.SearchStrategy:
    """numpy arrays of ``shape`` (a tuple, or a strategy of shapes; default :func:`shapes`) whose
    every element is drawn on its own (no constant fill that could hide a misplaced weight).
    ``elements`` defaults to :func:`floats` in ``[-2, 2]`` kept ``gap`` away from ``away_from``.

    >>> from hypothesis import given
    >>> from semirad.testing.strategies import arrays
    >>> @given(arrays((2, 3), away_from=[0.0]))
    ... def test_array(a):
    ...     assert a.shape == (2, 3) and (abs(a) >= 0.1).all()
    >>> test_array()
    """
    if elements is None:
        elements = floats(away_from=away_from, gap=gap)
    elif away_from:
        points = [float(p) for p in away_from]
        elements = elements.filter(lambda x: all(abs(x - p) >= gap for p in points))
    return hnp.arrays(dtype, shapes() if shape is None else shape, elements=elements, fill=st.nothing())


def tensors(
    shape: Any = None,
    dtype: Any = np.float64,
    elements: st.SearchStrategy | None = None,
    away_from: Sequence[float] = (),
    gap: float = 0.1,
    requires_grad: bool = True,
) -> st.SearchStrategy:
    """semirad tensors (leaves that require grad, by default) with values drawn as by :func:`arrays`.

    >>> import semirad as sr
    >>> from hypothesis import given
    >>> from semirad.testing import gradcheck
    >>> from semirad.testing.strategies import tensors
    >>> @given(tensors((3,), away_from=[0.0]))
    ... def test_relu(x):
    ...     assert gradcheck(lambda t: t.relu() * t, [x])
    >>> test_relu()
    """
    return arrays(shape, dtype, elements, away_from, gap).map(lambda a: _tensor(a, requires_grad=requires_grad))


def broadcastable_shapes(
    num_shapes: int = 2, *, min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 3, **kwargs
) -> st.SearchStrategy:
    """Tuples of ``num_shapes`` shapes that broadcast together (sizes of 1 and missing leading axes
    included); keyword arguments go to ``hypothesis.extra.numpy.mutually_broadcastable_shapes``
    (``signature=np.matmul.signature`` for matmul operands).

    >>> from hypothesis import given
    >>> from semirad.testing.strategies import broadcastable_shapes
    >>> @given(broadcastable_shapes(3))
    ... def test_broadcast(s):
    ...     np.broadcast_shapes(*s)
    >>> test_broadcast()
    """
    if "signature" not in kwargs:
        kwargs["num_shapes"] = num_shapes
    return hnp.mutually_broadcastable_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side, **kwargs
    ).map(lambda b: tuple(b.input_shapes))


@st.composite
def distinct(draw, shape) -> np.ndarray:
    """Pairwise distinct values (gaps of 0.25) in a random order: no ties for ``max``/``min``/``sort``.

    >>> from hypothesis import given
    >>> from semirad.testing.strategies import distinct
    >>> @given(distinct((2, 2)))
    ... def test_distinct(a):
    ...     assert len(set(a.ravel().tolist())) == 4
    >>> test_distinct()
    """
    n = int(np.prod(shape, dtype=np.int64))
    order = draw(st.permutations(range(n)))
    return (np.array(order, dtype=np.float64).reshape(shape) - n / 2) * 0.25


def semiring_values(
    S: Semiring, shape: tuple = (4,), *, n: int | None = None, base: int | None = None, terms: int = 1
) -> st.SearchStrategy:
    """Values of the semiring ``S`` drawn as the sweep makes them (:func:`~semirad.testing.semiring_value`):
    seeds on a grid of powers of two lifted by ``S.seed``, re-seeded by ``S.enter`` with ids from
    ``base`` (drawn when None), some elements "no path"; ``terms`` such parts ⊕-added.

    With ``n``, a tuple of ``n`` values whose ids are distinct (bases ``base``, ``base + 10**6``...),
    as the values meeting at a vertex of a sweep are: draw values that a law combines together this
    way (two separate draws may share ids, and MaxAbsProduct's ⊕ commutes only for distinct ids).

    >>> from hypothesis import given
    >>> from semirad.semirings import MaxAbsProduct
    >>> from semirad.testing.strategies import semiring_values
    >>> S = MaxAbsProduct()
    >>> @given(semiring_values(S, (3,), n=2))
    ... def test_commutes(ab):
    ...     a, b = ab
    ...     assert all((x == y).all() for x, y in zip(S.add(a, b), S.add(b, a)))
    >>> test_commutes()
    """
    bases = st.just(base) if base is not None else st.integers(0, 2**30).map(lambda b: b * 10_000)

    def make(seed_base):
        seed, first = seed_base
        rng = np.random.default_rng(seed)
        values = [semiring_value(S, tuple(shape), rng=rng, base=first + 10**6 * k, terms=terms) for k in range(n or 1)]
        return tuple(values) if n is not None else values[0]

    return st.tuples(st.integers(0, 2**32 - 1), bases).map(make)
