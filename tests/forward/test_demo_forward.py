"""The forward trace of one input token's influence in the demo's transformer (docs/forward.md): one
forward sweep seeded at a token's embedding gives, for every logit, the best path from that token,
equal to the best of the reverse traces' values over the token's elements."""

from __future__ import annotations

import numpy as np

import semirad as sr
from semirad.analysis.demo.agreement import AgreementTransformer, agreement_batch


def test_forward_trace_of_a_token_in_the_demo_transformer():
    sr.manual_seed(0)
    model = AgreementTransformer(d_model=8, nhead=2, layers=1, dim_feedforward=16)
    data = agreement_batch(np.random.default_rng(0), 2)
    with sr.no_grad():
        embedded = model.embeddings(data.tokens).data
    fn = lambda e: model(data.tokens, data.verb, data.padding, embedded=e)
    sentence, position = 1, 2
    seed = np.zeros_like(embedded)
    seed[sentence, position] = 1.0
    result = sr.jvp(fn, embedded, seed, semiring=sr.semirings.MaxAbsProduct())
    logits, influence = result
    assert influence.shape == logits.shape == (2, 2)
    assert np.all(influence[1 - sentence] == 0)  # sentences do not mix
    leaf = sr.tensor(embedded, requires_grad=True)
    out = fn(leaf)
    for label in range(2):
        g = np.zeros(out.shape)
        g[sentence, label] = 1.0
        reverse = sr.trace(out, [leaf], seed=g)[leaf][sentence, position]
        assert np.isclose(influence[sentence, label], reverse[np.abs(reverse).argmax()], rtol=1e-12)
        path = result.path(0, (sentence, label))
        assert path.steps[0].index[:2] == (sentence, position) and path.steps[-1].index == (sentence, label)
        assert path.value == influence[sentence, label]
    # and the Jacobian of the logits in the embeddings, both ways
    np.testing.assert_allclose(sr.jacobian(fn, embedded, mode="forward"), sr.jacobian(fn, embedded, mode="reverse"),
                               rtol=1e-10, atol=1e-14)  # fmt: skip
