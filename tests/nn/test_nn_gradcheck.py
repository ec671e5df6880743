"""Central finite differences (float64) for every module and loss: always run, no PyTorch needed."""

from __future__ import annotations

import numpy as np
import pytest
from nn_cases import CASE_IDS, CASES, flatten, float_leaves, loss_weights, make, map_inputs, weighted_loss

import semirad as sr
import semirad.nn.functional as F

EPS = 1e-6
SAMPLES = 25  # elements checked per tensor (all of them when it has fewer)


def check_gradients(loss_fn, leaves, rng, what="", frozen_rows=None):
    """``sr.grad`` of ``loss_fn()`` against central differences on sampled elements of ``leaves``.

    ``frozen_rows`` maps a leaf name to a row that gets no gradient by design (an embedding's
    ``padding_idx``): there the gradient must be zero instead.
    """
    frozen_rows = frozen_rows or {}
    grads = sr.grad(loss_fn(), leaves)
    for k, (leaf, grad) in enumerate(zip(leaves, grads, strict=True)):
        if leaf.name in frozen_rows:
            row = frozen_rows[leaf.name]
            assert not np.any(grad[row]), f"{what}: {leaf.name} row {row} (padding_idx) got a gradient"
            grad = grad.copy()
            grad[row] = np.nan  # not compared below
        original = leaf.data
        picks = range(original.size) if original.size <= SAMPLES else rng.choice(original.size, SAMPLES, replace=False)
        for i in picks:
            if np.isnan(grad.reshape(-1)[i]):
                continue
            with sr.no_grad():  # tensor data is read-only: each perturbation is a new array
                leaf.data = _perturbed(original, i, EPS)
                up = loss_fn().item()
                leaf.data = _perturbed(original, i, -EPS)
                down = loss_fn().item()
            leaf.data = original
            numeric = (up - down) / (2 * EPS)
            analytic = grad.reshape(-1)[i]
            assert abs(numeric - analytic) <= 1e-6 * max(1.0, abs(numeric)), (
                f"{what}: leaf {k} ({leaf.name or leaf.shape}) element {i}: analytic {analytic}, numeric {numeric}"
            )


def _perturbed(array, flat_index, step):
    out = array.copy()
    out.reshape(-1)[flat_index] += step
    return out


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_module_gradients_match_finite_differences(case):
    sr.manual_seed(0)
    module = make(case)
    args = map_inputs(case.inputs(np.random.default_rng(1)), lambda a: sr.tensor(a, requires_grad=True),
                      case.int_inputs)  # fmt: skip
    weights = loss_weights(flatten(module(*args)))

    def loss():
        return weighted_loss(flatten(module(*args)), weights)

    leaves = list(module.parameters()) + float_leaves(args)
    check_gradients(loss, leaves, np.random.default_rng(2), case.id, case.extra.get("padding_rows"))


def test_dropout_in_training_matches_finite_differences():
    x = sr.tensor(np.random.default_rng(0).standard_normal((4, 5)), requires_grad=True)
    drop = sr.nn.Dropout(0.4)

    def loss():
        sr.manual_seed(3)  # the same mask every call
        return (drop(x).tanh() * 2).sum()

    check_gradients(loss, [x], np.random.default_rng(0), "dropout")


LOSSES = [
    ("cross_entropy", lambda x, t: F.cross_entropy(x, t)),
    ("cross_entropy-sum-weight-ignore", lambda x, t: F.cross_entropy(x, t, weight=np.array([1.0, 2.0, 0.5]),
                                                                     ignore_index=2, reduction="sum")),
    ("nll_loss", lambda x, t: F.nll_loss(F.log_softmax(x, 1), t)),
    ("cross_entropy-probabilities", lambda x, t: F.cross_entropy(x, np.eye(3)[t] * 0.8 + 0.2 / 3)),
    ("mse_loss", lambda x, t: F.mse_loss(x, np.eye(3)[t])),
    ("bce_with_logits", lambda x, t: F.binary_cross_entropy_with_logits(x * 5, np.eye(3)[t],
                                                                       pos_weight=np.array([1.0, 2.0, 0.3]))),
]  # fmt: skip


@pytest.mark.parametrize("fn", [f for _, f in LOSSES], ids=[n for n, _ in LOSSES])
def test_losses_match_finite_differences(fn):
    rng = np.random.default_rng(4)
    x = sr.tensor(rng.standard_normal((5, 3)), requires_grad=True)
    target = np.array([0, 2, 1, 2, 0])
    check_gradients(lambda: fn(x, target), [x], rng, "loss")
