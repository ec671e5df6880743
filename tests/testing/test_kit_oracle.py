"""semirad.testing.check_op: the dense-Jacobian oracle passes on built-in ops in every semiring,
catches a rule written for SumProduct only, and states (and lets you change) the zero-partial
convention."""

import numpy as np
import pytest
from broken import BuggyMaxMinProduct, MaxMinProduct, doubled_exp, forgot_the_two

import semirad as sr
from semirad.semirings import Boolean, Count, KBest, MaxAbsProduct, SumProduct
from semirad.testing import (
    builtin_semirings,
    check_op,
    dense_jacobians,
    edge_structure,
    gradcheck,
    semiring_contraction,
    zero_partial_convention,
)

OPS = {
    "mul-bcast": (lambda a, b: a * b, [(2, 3), (3,)]),
    "matmul": (lambda a, b: a @ b, [(2, 3), (3, 2)]),
    "relu": (lambda a: a.relu(), [(3, 4)]),
    "max-axis": (lambda a: sr.max(a, axis=1), [(3, 4)]),
    "gather": (lambda a: a[[0, 0, 2]], [(3, 2)]),
    "concat": (lambda a, b: sr.concat([a, b]), [(2,), (3,)]),
    "where": (lambda a, b: sr.where(np.array([True, False, True]), a, b), [(3,), (3,)]),
}


@pytest.mark.parametrize("name", OPS)
def test_builtin_ops_pass_in_every_semiring(name):
    fn, shapes = OPS[name]
    rng = np.random.default_rng(len(name))
    arrays = [rng.integers(-2, 3, s).astype(float) for s in shapes]  # zeros and ties
    check_op(fn, arrays, seed=1)


def test_a_rule_for_sumproduct_only_is_caught():
    x = [np.array([0.0, 1.0, -1.0])]
    check_op(doubled_exp, x, [SumProduct()], seed=0)  # right where ⊕ is +
    with pytest.raises(AssertionError, match=r"check_op: Count\(\), input 0"):  # one edge, counted twice
        check_op(doubled_exp, x, [Count()], seed=0)
    with pytest.raises(AssertionError, match=r"check_op: MaxAbsProduct\(\), input 0"):
        check_op(doubled_exp, x, [MaxAbsProduct()], seed=0)
    with pytest.raises(AssertionError, match=r"KBest\(3\)"):
        check_op(doubled_exp, x, [KBest(3)], seed=0)


def test_a_wrong_partial_is_for_gradcheck():
    """check_op compares semirings with SumProduct's Jacobian: a wrong partial, applied the same way
    in every semiring, is consistent; finite differences catch it."""
    check_op(forgot_the_two, [np.array([1.0, 2.0])], seed=0)
    with pytest.raises(AssertionError, match="analytic 1.0, numeric 2.0"):
        gradcheck(forgot_the_two, [sr.tensor([1.0, 2.0], requires_grad=True)])


def test_the_zero_partial_convention_is_stated_and_configurable():
    relu = (lambda a: a.relu(), [np.array([-1.0, 2.0, -3.0])])
    # a user's semiring in which an edge of weight 0 is a path of product 0: the default convention
    check_op(*relu, [MaxMinProduct()], seed=0)
    with pytest.raises(AssertionError) as error:
        check_op(*relu, [MaxMinProduct()], seed=0, zero_partials={"MaxMinProduct": "none"})
    message = str(error.value)
    assert "zero-partial convention 'none': an exactly-0 partial counts as no edge" in message
    assert "zero_partials={'MaxMinProduct': 'edge'}" in message
    assert zero_partial_convention(MaxAbsProduct()) == "edge" and zero_partial_convention(Boolean()) == "none"
    assert zero_partial_convention(Count(), "edge") == "edge"
    with pytest.raises(ValueError):
        zero_partial_convention(Count(), "maybe")


def test_the_per_op_oracle_cannot_see_the_max_min_bug():
    """The issue: the per-op oracle passes the buggy max-min-product (a seeded op has no dead end);
    check_semiring and brute_force are what catch it (test_kit_semiring_laws, test_kit_brute)."""
    for fn, arrays in OPS.values():
        rng = np.random.default_rng(0)
        check_op(fn, [rng.integers(-2, 3, s).astype(float) for s in arrays], [BuggyMaxMinProduct()], seed=0)


def test_structure_tells_a_zero_weight_edge_from_no_edge():
    x = sr.tensor([-1.0, 2.0, 3.0], requires_grad=True)
    y = x[:2].relu()
    (J,), (E,) = dense_jacobians(y, [x]), edge_structure(y, [x])
    assert J.tolist() == [[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    assert E.tolist() == [[True, False, False], [False, True, False]]
    value, ids = MaxAbsProduct().zeros(np, (), np.float64)
    got = semiring_contraction(MaxAbsProduct(), J, np.ones(2), np.float64, E, "edge")
    assert got.tolist() == [0.0, 1.0, 0.0]


def test_builtin_semirings_are_all_there():
    names = {type(S).__name__ for S in builtin_semirings()}
    assert names >= {"SumProduct", "MaxAbsProduct", "LogMaxAbs", "KBest", "Boolean", "Count", "SumAbs", "Entropy",
                     "ComponentFlow"}  # fmt: skip


def test_the_docs_min_abs_product_through_check_op_and_brute_force():
    import sys
    from pathlib import Path

    from semirad.testing import brute_force

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "semirings"))
    from semiring_oracles import doc_namespace

    S = doc_namespace()["MinAbsProduct"]()
    for name in ["mul-bcast", "matmul", "relu", "gather", "max-axis"]:
        fn, shapes = OPS[name]
        rng = np.random.default_rng(3)
        check_op(fn, [rng.integers(-2, 3, s).astype(float) for s in shapes], [S], seed=2)
    fn = lambda x, w: ((x @ w).relu() * x[0] + (x * -2.0).sum()).sum()  # noqa: E731
    xs = [sr.tensor([1.0, -2.0], requires_grad=True), sr.tensor([[2.0, 0.5], [-1.0, 1.0]], requires_grad=True)]
    result = sr.backward(fn(*xs), xs, semiring=S)
    for x, want in zip(xs, brute_force(fn, xs, S)):
        np.testing.assert_array_equal(result[x], want)
