"""``semirad demo``: two studies of where the strongest gradient paths of a trained network run.

``semirad demo`` (``--model transformer``, the default; :mod:`.transformer_run`) trains a small
transformer encoder on **subject-verb agreement across attractors** (generated sentences such as
``the old dog near the cats [VERB] .``; the masked verb must take the number of the first noun,
with nouns of the other number in between), then traces held-out sentences from their
embeddings and reports, per layer, the share of the best paths that go through the queries, the
keys, the values and around the attention on the residual stream — ``sr.trace`` beside
``KBest(k)`` beside backprop (:func:`~semirad.analysis.path_shares`,
:func:`~semirad.analysis.backprop_path_shares`), mean ± std over the sentences, with figures and
a path picture (:func:`~semirad.analysis.plots.path_figure`). Modules: :mod:`.agreement` (the
data, the model, loss and accuracy), :mod:`.transformer_run` (training and the study) and
:mod:`.transformer_report` (``results.json``, ``report.md``, figures, the printed summary).

``semirad demo --model lstm`` trains a small LSTM language model and traces it as it learns.
The task is generated here (nothing is downloaded): **Dyck-2 language modelling**. Strings of
balanced brackets of two kinds, ``( )`` and ``[ ]``; the model reads a string and predicts every
next bracket. Whether a bracket opens or closes, and which kind opens, is a coin flip the model can
only learn the odds of; but *which kind closes* is determined by the string so far: the model has
to remember, for the innermost open bracket, its kind. The closing accuracy (chance: 50 %) says
how well it does; the component importance says where its strongest gradient paths run while it
learns (embedding, the LSTM's input projection and gates, the output layer, the loss).

In the LSTM study two columns are compared throughout (``docs/analysis.md`` has the definitions):

* **trace** — :func:`~semirad.analysis.component_importance`: for every parameter element its
  single best path to the loss (``sr.trace``); the share of those paths' edges in each component.
* **backprop** — :func:`~semirad.analysis.backprop_importance`: for every parameter element *all*
  its paths, a path weighted by ``|product of its partials|`` (its part of the gradient before
  cancellation); the expected share of edges in each component. Same units, so the two compare.

One module per concern for the LSTM: :mod:`.task` (the data, the model, loss and accuracy),
:mod:`.config` (:class:`DemoConfig`; :class:`TransformerConfig` too), :mod:`.run` (training,
tracing, collecting the findings), :mod:`.checks` (the one-pass count against walking every
path), :mod:`.report` (``results.json``, ``report.md``, figures, graph, the printed summary) and
:mod:`.cli` (the flags of both studies and the entry point).
"""

from .agreement import AgreementTransformer, agreement_accuracy, agreement_batch, agreement_loss
from .checks import walk_components
from .cli import add_arguments, config_from_args, main
from .config import DemoConfig, TransformerConfig
from .run import run_demo
from .task import TOKENS, BracketLM, closing_accuracy, dyck_batch, lm_loss
from .transformer_report import run_transformer_demo

__all__ = [
    "TransformerConfig",
    "run_transformer_demo",
    "agreement_batch",
    "AgreementTransformer",
    "agreement_loss",
    "agreement_accuracy",
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
