"""The transformer study's task and model: subject-verb agreement across attractor nouns.

Sentences are generated here from a tiny vocabulary (nothing is downloaded)::

    [opener ,] the [adj] SUBJECT (prep the [adj] NOUN){1..3} [VERB] [the [adj] NOUN] .

e.g. ``today , the old dog near the cats behind the key [VERB] the birds .`` The verb is masked
(``[VERB]``); its number is that of the SUBJECT, the first noun. At least one noun between the
subject and the verb is an **attractor** (the other number); the others, and the object after the
verb, are singular or plural by a coin flip, so neither the nearest noun, nor the majority, nor the
last noun of the sentence tells the answer (each of these shortcuts is right about half the time or
less, see :func:`shortcut_accuracies`). The model reads the whole sentence (no causal mask) and
classifies the number from its representation at the ``[VERB]`` position.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import backend
from ... import nn as _nn
from ...engine import component, no_grad
from ...nn import functional as F
from ...tensor import Tensor

PAD, VERB, THE, COMMA, STOP = "[pad]", "[VERB]", "the", ",", "."
OPENERS = ("today", "often", "then")
ADJECTIVES = ("old", "small", "red", "happy")
PREPOSITIONS = ("near", "behind", "of", "with", "beside")
STEMS = ("dog", "cat", "key", "author", "bird", "car", "tree", "farmer")
SINGULAR = STEMS
PLURAL = tuple(s + "s" for s in STEMS)
#: the vocabulary, token id = position; ``[pad]`` is 0
WORDS = (PAD, VERB, THE, COMMA, STOP, *OPENERS, *ADJECTIVES, *PREPOSITIONS, *SINGULAR, *PLURAL)
ID = {w: i for i, w in enumerate(WORDS)}
PAD_ID, VERB_ID = ID[PAD], ID[VERB]
#: number of every token: 0 singular noun, 1 plural noun, -1 not a noun
NUMBER = np.array([0 if w in SINGULAR else 1 if w in PLURAL else -1 for w in WORDS], dtype=np.int64)
LABELS = ("singular", "plural")
MAX_LENGTH = 16
MIN_LENGTH = 8


@dataclass
class AgreementData:
    """A batch of sentences: ``tokens`` ``(n, max_len)`` padded with 0, ``lengths``, ``verb`` (the
    position of ``[VERB]``), ``labels`` (0 singular, 1 plural: the subject's number), ``subject``
    (its position) and ``attractors`` (how many nouns of the other number stand between)."""

    tokens: np.ndarray
    lengths: np.ndarray
    verb: np.ndarray
    labels: np.ndarray
    subject: np.ndarray
    attractors: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def padding(self) -> np.ndarray:
        """The key padding mask, ``True`` at padding (PyTorch's rule)."""
        return self.tokens == PAD_ID

    def sentence(self, i: int) -> np.ndarray:
        """The tokens of sentence ``i`` without padding, ``(1, length)``."""
        return self.tokens[i : i + 1, : int(self.lengths[i])]

    def rows(self, chosen) -> AgreementData:
        """The sentences at the indices ``chosen`` (padding kept)."""
        chosen = np.asarray(chosen, dtype=np.int64)
        return AgreementData(*(getattr(self, f)[chosen] for f in ("tokens", "lengths", "verb", "labels", "subject",
                                                                   "attractors")))  # fmt: skip

    def take(self, i: int) -> AgreementData:
        """Sentence ``i`` alone, without padding.

        >>> data = agreement_batch(np.random.default_rng(0), 3)
        >>> one = data.take(1)
        >>> one.tokens.shape == (1, data.lengths[1]), bool(one.labels[0] == data.labels[1])
        (True, True)
        """
        n = int(self.lengths[i])
        return AgreementData(self.tokens[i : i + 1, :n], self.lengths[i : i + 1], self.verb[i : i + 1],
                             self.labels[i : i + 1], self.subject[i : i + 1], self.attractors[i : i + 1])  # fmt: skip

    def text(self, i: int) -> str:
        """Sentence ``i`` as words."""
        return " ".join(WORDS[t] for t in self.tokens[i, : int(self.lengths[i])])


def _noun(rng: np.random.Generator, number: int) -> int:
    stem = int(rng.integers(len(STEMS)))
    return ID[(PLURAL if number else SINGULAR)[stem]]


def _noun_phrase(rng: np.random.Generator, number: int, adjective: float) -> list:
    words = [ID[THE]]
    if rng.random() < adjective:
        words.append(ID[ADJECTIVES[int(rng.integers(len(ADJECTIVES)))]])
    return words + [_noun(rng, number)]


def agreement_sentence(rng: np.random.Generator, max_length: int = MAX_LENGTH, min_length: int = MIN_LENGTH) -> tuple:
    """One sentence ``(token ids, label, subject position, attractors)``, ``min_length`` to
    ``max_length`` tokens (drawn again until it fits).

    >>> ids, label, subject, attractors = agreement_sentence(np.random.default_rng(1))
    >>> " ".join(WORDS[t] for t in ids), LABELS[label], WORDS[ids[subject]], attractors
    ('the red tree beside the cars of the happy tree [VERB] .', 'singular', 'tree', 1)
    """
    if max_length < 7 or min_length > max_length:
        raise ValueError(f"sentences need 7 to max_length tokens, got min_length {min_length}, max_length {max_length}")
    while True:
        label = int(rng.integers(2))
        words: list = []
        if rng.random() < 0.4:
            words += [ID[OPENERS[int(rng.integers(len(OPENERS)))]], ID[COMMA]]
        words += _noun_phrase(rng, label, 0.3)
        subject = len(words) - 1
        k = int(rng.choice(3, p=(0.2, 0.4, 0.4))) + 1
        numbers = [1 - label if rng.random() < 0.5 else label for _ in range(k)]
        if 1 - label not in numbers:  # at least one attractor, not always the noun nearest the verb
            numbers[int(rng.integers(k - 1)) if k > 1 else 0] = 1 - label
        for number in numbers:
            words.append(ID[PREPOSITIONS[int(rng.integers(len(PREPOSITIONS)))]])
            words += _noun_phrase(rng, number, 0.3)
        words.append(VERB_ID)
        if rng.random() < 0.5:
            words += _noun_phrase(rng, int(rng.integers(2)), 0.3)
        words.append(ID[STOP])
        if min_length <= len(words) <= max_length:
            return np.array(words, dtype=np.int64), label, subject, sum(n != label for n in numbers)


def agreement_batch(
    rng: np.random.Generator, n: int, max_length: int = MAX_LENGTH, min_length: int = MIN_LENGTH
) -> AgreementData:
    """``n`` sentences of :func:`agreement_sentence`, padded to the longest.

    >>> data = agreement_batch(np.random.default_rng(0), 4)
    >>> data.tokens.shape[0], bool((data.tokens[np.arange(4), data.verb] == VERB_ID).all())
    (4, True)
    """
    rows = [agreement_sentence(rng, max_length, min_length) for _ in range(n)]
    lengths = np.array([len(r[0]) for r in rows], dtype=np.int64)
    tokens = np.full((n, int(lengths.max(initial=1))), PAD_ID, dtype=np.int64)
    for i, (ids, *_rest) in enumerate(rows):
        tokens[i, : len(ids)] = ids
    return AgreementData(
        tokens=tokens,
        lengths=lengths,
        verb=np.array([int(np.flatnonzero(r[0] == VERB_ID)[0]) for r in rows], dtype=np.int64),
        labels=np.array([r[1] for r in rows], dtype=np.int64),
        subject=np.array([r[2] for r in rows], dtype=np.int64),
        attractors=np.array([r[3] for r in rows], dtype=np.int64),
    )


def shortcut_accuracies(data: AgreementData) -> dict:
    """How often the shortcuts a model might take give the label: the number of the noun nearest
    before the verb, of the majority of nouns before it (ties: the nearest), of the last noun of
    the sentence; and the rule itself (the first noun: always 1).

    >>> acc = shortcut_accuracies(agreement_batch(np.random.default_rng(0), 2000))
    >>> acc["first noun"], all(acc[k] < 0.6 for k in ("nearest noun", "majority", "last noun"))
    (1.0, True)
    """
    out = {"first noun": [], "nearest noun": [], "majority": [], "last noun": []}
    for i in range(len(data)):
        ids = data.tokens[i, : data.lengths[i]]
        nums = NUMBER[ids]
        before = nums[: data.verb[i]]
        before = before[before >= 0]
        every = nums[nums >= 0]
        plural = int(before.sum())
        majority = int(before[-1]) if 2 * plural == len(before) else int(2 * plural > len(before))
        for key, guess in (("first noun", before[0]), ("nearest noun", before[-1]), ("majority", majority),
                           ("last noun", every[-1])):  # fmt: skip
            out[key].append(int(guess) == int(data.labels[i]))
    return {k: float(np.mean(v)) for k, v in out.items()}


class AgreementTransformer(_nn.Module):
    """Token and position embeddings -> ``nn.TransformerEncoder`` of ``layers``
    ``nn.TransformerEncoderLayer`` (post-norm, ReLU, no dropout) -> ``Linear(d_model, 2)`` at the
    ``[VERB]`` position.

    ``embeddings(tokens)`` is the encoder's input (token plus position embedding, recorded in the
    component ``"embeddings"``): the study traces from this tensor.

    >>> model = AgreementTransformer(d_model=8, nhead=2, layers=1, dim_feedforward=8)
    >>> data = agreement_batch(np.random.default_rng(0), 3)
    >>> model(data.tokens, data.verb, data.padding).shape
    (3, 2)
    """

    def __init__(self, d_model: int = 32, nhead: int = 2, layers: int = 2, dim_feedforward: int = 64,
                 max_length: int = MAX_LENGTH):  # fmt: skip
        super().__init__()
        self.embed = _nn.Embedding(len(WORDS), d_model)
        self.position = _nn.Embedding(max_length, d_model)
        layer = _nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward=dim_feedforward, dropout=0.0,
                                            batch_first=True)  # fmt: skip
        self.encoder = _nn.TransformerEncoder(layer, layers)
        self.head = _nn.Linear(d_model, len(LABELS))

    def embeddings(self, tokens) -> Tensor:
        tokens = np.asarray(tokens)
        with component("embeddings"):
            return self.embed(tokens) + self.position(np.arange(tokens.shape[1]))

    def forward(self, tokens, verb, padding=None, embedded: Tensor | None = None) -> Tensor:
        h = self.embeddings(tokens) if embedded is None else embedded
        if padding is not None and not np.asarray(padding).any():
            padding = None
        out = self.encoder(h, src_key_padding_mask=padding)
        verb = np.asarray(verb)
        return self.head(out[np.arange(len(verb)), verb])


def agreement_loss(model: AgreementTransformer, data: AgreementData, embedded: Tensor | None = None) -> Tensor:
    """Mean cross-entropy of the verb's number; the loss ops are recorded in the component ``"loss"``."""
    logits = model(data.tokens, data.verb, data.padding, embedded=embedded)
    with component("loss"):
        return F.cross_entropy(logits, data.labels)


def agreement_accuracy(model: AgreementTransformer, data: AgreementData) -> float:
    """The share of sentences whose verb number the model gets right.

    >>> model = AgreementTransformer(d_model=8, nhead=2, layers=1, dim_feedforward=8)
    >>> 0.0 <= agreement_accuracy(model, agreement_batch(np.random.default_rng(0), 16)) <= 1.0
    True
    """
    right = 0
    with no_grad():
        for start in range(0, len(data), 250):  # in chunks: the attention's arrays stay small
            part = data.rows(np.arange(start, min(start + 250, len(data))))
            logits = backend.to_numpy(model(part.tokens, part.verb, part.padding).data)
            right += int((logits.argmax(axis=1) == part.labels).sum())
    return right / max(1, len(data))
