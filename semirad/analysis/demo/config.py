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
