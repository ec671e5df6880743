"""A batch through one matrix (``(..., m, n) @ (n, p)``): the weight's rule folds the batch into one
contraction; it must give what the general rule gives (the weight broadcast to the batch, then its
contributions ⊕-added over the batch) in every semiring, ties included."""

from __future__ import annotations

import numpy as np
import pytest

import semirad as sr
from semirad.semirings import (
    Boolean,
    Count,
    KBest,
    LogMaxAbs,
    MaxAbsProduct,
    SumAbs,
    SumProduct,
)

SEMIRINGS = [SumProduct(), MaxAbsProduct(), LogMaxAbs(), KBest(3), SumAbs(), Boolean(), Count()]


def _values(rng, shape):
    # small integers and many equal magnitudes of both signs: ties everywhere
    return rng.choice([-2.0, -1.0, 1.0, 2.0], size=shape)


@pytest.mark.parametrize("semiring", SEMIRINGS, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("batch", [(4,), (2, 3)])
def test_weight_rule_of_a_batch_equals_the_broadcast_rule(semiring, batch):
    rng = np.random.default_rng(len(batch))
    a_data, w_data, mix = _values(rng, batch + (3, 5)), _values(rng, (5, 4)), _values(rng, batch + (3, 4))
    results = []
    for explicit in (False, True):
        a = sr.tensor(a_data, requires_grad=True)
        w = sr.tensor(w_data, requires_grad=True)
        weight = sr.broadcast_to(w, batch + (5, 4)) if explicit else w
        out = (sr.tanh(a @ weight) * sr.tensor(mix)).sum()
        r = sr.backward(out, [a, w], semiring=semiring)
        results.append((np.asarray(r[a]), np.asarray(r[w])))
    (a_fold, w_fold), (a_general, w_general) = results
    np.testing.assert_array_equal(a_fold, a_general)
    if isinstance(semiring, (SumProduct, SumAbs)):  # one sum in another order: equal up to rounding
        np.testing.assert_allclose(w_fold, w_general, rtol=1e-13, atol=0)
    else:  # selections and counts: the same winner, the same bits
        np.testing.assert_array_equal(w_fold, w_general)
