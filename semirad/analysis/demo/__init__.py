"""``semirad demo``: train a small LSTM language model, trace it as it learns, write a report.

The task is generated here (nothing is downloaded): **Dyck-2 language modelling**. Strings of
balanced brackets of two kinds, ``( )`` and ``[ ]``; the model reads a string and predicts every
next bracket. Whether a bracket opens or closes, and which kind opens, is a coin flip the model can
only learn the odds of; but *which kind closes* is determined by the string so far: the model has
to remember, for the innermost open bracket, its kind. The closing accuracy (chance: 50 %) says
how well it does; the component importance says where its strongest gradient paths run while it
learns (embedding, the LSTM's input projection and gates, the output layer, the loss).

Two columns are compared throughout (``docs/analysis.md`` has the definitions):

* **trace** — :func:`~semirad.analysis.component_importance`: for every parameter element its
  single best path to the loss (``sr.trace``); the share of those paths' edges in each component.
* **backprop** — :func:`~semirad.analysis.backprop_importance`: for every parameter element *all*
  its paths, a path weighted by ``|product of its partials|`` (its part of the gradient before
  cancellation); the expected share of edges in each component. Same units, so the two compare.

One module per concern: :mod:`.task` (the data, the model, loss and accuracy), :mod:`.config`
(:class:`DemoConfig`), :mod:`.run` (training, tracing, collecting the findings), :mod:`.checks`
(the one-pass count against walking every path), :mod:`.report` (``results.json``,
``report.md``, figures, graph, the printed summary) and :mod:`.cli` (the flags and the entry point).
"""

from .checks import walk_components
from .cli import add_arguments, config_from_args, main
from .config import DemoConfig
from .run import run_demo
from .task import TOKENS, BracketLM, closing_accuracy, dyck_batch, lm_loss

__all__ = [
    "DemoConfig",
    "run_demo",
    "dyck_batch",
    "BracketLM",
    "lm_loss",
    "closing_accuracy",
    "walk_components",
    "add_arguments",
    "config_from_args",
    "main",
    "TOKENS",
]
