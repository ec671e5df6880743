"""The demo's task and model: next-bracket prediction on Dyck-2 strings with a small LSTM.

Strings of balanced brackets of two kinds, ``( )`` and ``[ ]``, are generated here (nothing is
downloaded). Whether a bracket opens or closes, and which kind opens, is a coin flip; which kind
*closes* is determined by the string so far, which :func:`closing_accuracy` measures.
"""

from __future__ import annotations

import numpy as np

from ... import backend
from ... import nn as _nn
from ...engine import component, no_grad
from ...nn import functional as F
from ...tensor import Tensor

TOKENS = "()[]"
CLOSER_OF = {0: 1, 2: 3}  # token id of an opening bracket -> token id of its closing bracket


def dyck_batch(rng: np.random.Generator, n: int, length: int) -> np.ndarray:
    """``n`` random balanced strings of ``length`` (even) brackets, as token ids ``(n, length)``.

    >>> seqs = dyck_batch(np.random.default_rng(0), 3, 6)
    >>> seqs.shape, ["".join(TOKENS[t] for t in row) for row in seqs]
    ((3, 6), ['[]()[]', '[[[]]]', '[][][]'])
    """
    if length < 2 or length % 2:
        raise ValueError(f"the string length must be even and at least 2, got {length}")
    out = np.empty((n, length), dtype=np.int64)
    for row in range(n):
        stack: list = []
        for i in range(length):
            remaining = length - i
            must_close = len(stack) >= remaining
            can_open = len(stack) + 1 <= remaining - 1
            if stack and (must_close or not can_open or rng.random() < 0.5):
                out[row, i] = CLOSER_OF[stack.pop()]
            else:
                kind = 0 if rng.random() < 0.5 else 2
                stack.append(kind)
                out[row, i] = kind
    return out


class BracketLM(_nn.Module):
    """``Embedding -> LSTM -> Linear``: next-bracket logits at every position.

    >>> BracketLM(embed=2, hidden=3)(dyck_batch(np.random.default_rng(0), 5, 4)).shape
    (5, 4, 4)
    """

    def __init__(self, embed: int = 8, hidden: int = 48):
        super().__init__()
        self.embed = _nn.Embedding(len(TOKENS), embed)
        self.lstm = _nn.LSTM(embed, hidden, batch_first=True)
        self.head = _nn.Linear(hidden, len(TOKENS))

    def forward(self, tokens) -> Tensor:
        out, _ = self.lstm(self.embed(tokens))
        return self.head(out)


def lm_loss(model: _nn.Module, seqs: np.ndarray) -> Tensor:
    """Mean next-token cross-entropy; the loss ops are recorded in the component ``"loss"``.

    >>> import semirad as sr
    >>> model = BracketLM(2, 3)
    >>> loss = lm_loss(model, dyck_batch(np.random.default_rng(0), 4, 6))
    >>> loss.shape, sr.trace(loss, [model.head.bias]).path(model.head.bias, 0).steps[-1].component
    ((), 'loss')
    """
    logits = model(seqs[:, :-1])
    with component("loss"):
        return F.cross_entropy(logits.reshape(-1, len(TOKENS)), seqs[:, 1:].reshape(-1))


def closing_accuracy(model: _nn.Module, seqs: np.ndarray) -> float:
    """Among positions whose next token closes a bracket: how often the right closer beats the wrong one.

    >>> 0.0 <= closing_accuracy(BracketLM(2, 3), dyck_batch(np.random.default_rng(0), 8, 6)) <= 1.0
    True
    """
    with no_grad():
        logits = backend.to_numpy(model(seqs[:, :-1]).data)
    target = seqs[:, 1:]
    closing = (target == 1) | (target == 3)
    right = np.take_along_axis(logits, target[..., None], axis=-1)[..., 0]
    wrong = np.take_along_axis(logits, (target ^ 2)[..., None], axis=-1)[..., 0]
    return float((right > wrong)[closing].mean())
