"""The settings of ``semirad demo``: one dataclass, filled by the command line's flags."""

from __future__ import annotations

from dataclasses import dataclass

#: the one-line description ``semirad demo --help`` shows (the package docstring's first paragraph)
DESCRIPTION = "``semirad demo``: train a small LSTM language model, trace it as it learns, write a report."
#: elements per parameter in the top lists of ``compare`` (by ``|grad|`` and by ``|trace|``)
COMPARE_TOP = 5
#: fresh strings the final closing accuracy is measured on
TEST_STRINGS = 256
#: of those, the ones measured at every checkpoint
CHECKPOINT_TEST_STRINGS = 64


@dataclass
class DemoConfig:
    """Everything the demo does is set here (the command line's flags fill it).

    >>> DemoConfig(steps=10).steps, DemoConfig().hidden
    (10, 48)
    """

    steps: int = 600
    batch: int = 32
    length: int = 24
    embed: int = 8
    hidden: int = 48
    lr: float = 1e-2
    seed: int = 0
    trace_every: int = 50
    probe: int = 16
    eval_batches: int = 8
    eval_size: int = 8
    graph_length: int = 4
    device: str = "cpu"
    verify: bool = True
    progress: bool = True

    @classmethod
    def tiny(cls) -> DemoConfig:
        """The smallest run that exercises everything (a second or two): for doctests and smoke tests.

        >>> DemoConfig.tiny().steps, DemoConfig.tiny().progress
        (1, False)
        """
        return cls(
            steps=1,
            batch=2,
            length=4,
            embed=2,
            hidden=2,
            trace_every=1,
            probe=2,
            eval_batches=2,
            eval_size=1,
            graph_length=2,
            progress=False,
        )


#: the one-line description of the transformer study (``semirad demo --model transformer``)
TRANSFORMER_DESCRIPTION = (
    "train a small transformer encoder on subject-verb agreement across attractor nouns, then measure which "
    "share of the best paths from its embeddings runs through each layer's queries, keys, values and residual "
    "stream (trace, KBest and backprop), write a report."
)
#: fresh sentences the final accuracy is measured on
AGREEMENT_TEST_SENTENCES = 1000


@dataclass
class TransformerConfig:
    """The settings of the transformer study (``semirad demo --model transformer``).

    ``eval`` held-out sentences are traced one by one (the share's mean ± std is over them); ``k``
    is the number of paths per element of the ``KBest`` column; ``verify`` walks every best path of
    ``verify_sentences`` of them one by one and compares with the one-pass counts.

    >>> TransformerConfig().d_model, TransformerConfig.tiny().steps
    (32, 2)
    """

    steps: int = 200
    batch: int = 64
    lr: float = 3e-3
    seed: int = 0
    d_model: int = 32
    heads: int = 2
    layers: int = 2
    dim_feedforward: int = 64
    max_length: int = 16
    eval: int = 48
    k: int = 4
    test: int = AGREEMENT_TEST_SENTENCES
    log_every: int = 25
    verify_sentences: int = 1
    device: str = "cpu"
    verify: bool = True
    progress: bool = True

    @classmethod
    def tiny(cls) -> TransformerConfig:
        """A run of a few seconds that exercises everything: for doctests and smoke tests."""
        return cls(steps=2, batch=4, d_model=8, heads=2, layers=2, dim_feedforward=8, max_length=12, eval=3, k=2,
                   test=16, log_every=1, verify_sentences=1, progress=False)  # fmt: skip
