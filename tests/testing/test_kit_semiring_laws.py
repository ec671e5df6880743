"""semirad.testing.check_semiring: every built-in semiring passes; every broken law and primitive
is caught, with its first counter-example in words; the issue's max-min-product bug and the old
docs' MinAbsProduct are among them."""

import sys
from pathlib import Path

import numpy as np
import pytest
from broken import (
    AbsMatmul,
    AveragingPlus,
    BentScale,
    BuggyMaxMinProduct,
    DoubleScale,
    LazyTemporary,
    MaxMinProduct,
    MaxSum,
    OldMinAbsProduct,
    OverwritingAddAt,
    OverwritingScatter,
    SignedMaxProduct,
    ValuesOnlyMap,
    ZeroIsOne,
)

import semirad as sr
from semirad.semirings import Entropy, KBest, LogMaxAbs, MaxAbsProduct
from semirad.testing import builtin_semirings, check_semiring, semiring_value

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "semirings"))
from semiring_oracles import doc_namespace  # noqa: E402

#: semirings that take logarithms: their ⊗ rounds, so floats are compared to 1e-12
ROUNDING = (LogMaxAbs, Entropy)


@pytest.mark.parametrize("S", builtin_semirings() + [KBest(1)], ids=repr)
def test_every_builtin_semiring_passes(S):
    check_semiring(S, examples=10, rtol=1e-12 if isinstance(S, ROUNDING) else 0.0)


def test_the_docs_min_abs_product_passes():
    check_semiring(doc_namespace()["MinAbsProduct"](), examples=10)


def test_the_fixed_max_min_product_passes():
    check_semiring(MaxMinProduct(), examples=10)


BROKEN = [
    (OldMinAbsProduct(), r"⊕ is not commutative at element \(\d+,\): a ⊕ b = (-?[0-9.]+) but b ⊕ a = "),
    (AveragingPlus(), "⊕ is not associative"),
    (ZeroIsOne(), "zero is not the identity of ⊕"),
    (BuggyMaxMinProduct(), r'zero does not annihilate: "no path" ⊗ the weight -2.0 is \(inf, -inf\), not zero = '
                           r"\(-inf, inf\)"),  # fmt: skip
    (DoubleScale(), "the weight 1 is not the identity of ⊗"),
    (BentScale(), "⊗ is not associative"),
    (SignedMaxProduct(), "⊗ does not distribute over ⊕"),
    (MaxSum(), "sum is not the ⊕-fold of its axes"),
    (AbsMatmul(), "matmul is not the ⊕-fold of ⊗"),
    (OverwritingScatter(), "scatter is not the ⊕-fold of what meets"),
    (ValuesOnlyMap(), "map does not move every component alike"),
    (OverwritingAddAt(), r"add_at is not buffer\[index\] ⊕= g"),
    (LazyTemporary(), "scale_temporary is not scale"),
]


@pytest.mark.parametrize("S, message", BROKEN, ids=[type(S).__name__ for S, _ in BROKEN])
def test_a_broken_law_or_primitive_is_caught(S, message):
    with pytest.raises(AssertionError, match=message):
        check_semiring(S)


def test_the_old_min_abs_product_breaks_on_ties_of_opposite_sign():
    """What the law check finds, in a graph: the order of two equally weak paths decides the sign."""
    x = sr.tensor([1.5], requires_grad=True)
    one = sr.backward((x * 2.0).sum() + (x * -2.0).sum(), [x], semiring=OldMinAbsProduct())[x].tolist()
    other = sr.backward((x * -2.0).sum() + (x * 2.0).sum(), [x], semiring=OldMinAbsProduct())[x].tolist()
    assert one != other
    fixed = doc_namespace()["MinAbsProduct"]()
    assert sr.backward((x * 2.0).sum() + (x * -2.0).sum(), [x], semiring=fixed)[x].tolist() == [2.0]
    assert sr.backward((x * -2.0).sum() + (x * 2.0).sum(), [x], semiring=fixed)[x].tolist() == [2.0]


def test_the_max_min_product_bug_in_a_graph():
    """"No path" times a negative weight: y[0] reaches nothing, yet the buggy semiring gives it +inf."""
    x, y = sr.tensor([1.0], requires_grad=True), sr.tensor([1.0, 3.0], requires_grad=True)
    loss = sr.concat([x * 2.0, y[1:] * 0.5, y * -2.0])[:2].sum()  # (y * -2)[...] reaches nothing
    fixed = sr.backward(loss, [y], semiring=MaxMinProduct())[y]
    buggy = sr.backward(loss, [y], semiring=BuggyMaxMinProduct())[y]
    assert fixed[:, 0].tolist() == [-np.inf, np.inf] and fixed[:, 1].tolist() == [0.5, 0.5]
    assert buggy[0, 0] == np.inf  # the dead end became the best path


def test_values_are_drawn_as_the_sweep_makes_them():
    value, ids = semiring_value(MaxAbsProduct(), (2, 3), rng=1, base=50, dead=0.0)
    assert ids.tolist() == [[50, 51, 52], [53, 54, 55]]
    assert set(np.abs(value).ravel().tolist()) <= {0.0, 0.25, 0.5, 1.0, 2.0, 4.0}
    key, sign, code = semiring_value(KBest(2), (3,), rng=2, base=7, terms=2, dead=0.0)
    assert key.shape == (2, 3) and code.shape == (2, 3)
