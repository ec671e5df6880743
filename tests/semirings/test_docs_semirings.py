"""docs/semirings.md: its code blocks run, and its MinAbsProduct is a working semiring."""

import numpy as np
from semiring_oracles import doc_namespace

import semirad as sr


def test_the_code_blocks_of_the_semirings_page_run():
    namespace = doc_namespace()  # every block's asserts hold
    assert issubclass(namespace["MinAbsProduct"], sr.semirings.Semiring)


def test_min_abs_product_from_the_docs_on_repeated_gathers_and_reductions():
    MinAbsProduct = doc_namespace()["MinAbsProduct"]
    x = sr.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = x[np.array([0, 0, 2])] * sr.tensor([4.0, -0.5, 2.0])
    loss = (y.reshape(3, 1) * sr.tensor([[1.0, 3.0]])).sum()
    r = sr.backward(loss, [x], semiring=MinAbsProduct())
    assert r[x].tolist() == [-0.5, np.inf, 2.0]  # x[1] reaches nothing
