"""``sr.analysis``: what gradient tracing is for — which components the strongest paths run through.

* :func:`component_importance` — edges of the best paths of many parameters per component, in
  linear time; :func:`backprop_importance` — the same over all paths, weighted as backprop
  weights them; :func:`side_by_side` prints them together.
* :func:`path_shares` — the share of the best paths from chosen elements that passes through each of a
  few labelled sets (components, ops, tensors, edges: :func:`components`, :func:`op`, :func:`tensors`,
  :func:`edge`, :func:`any_of`), in one linear pass; :func:`backprop_path_shares` — the same over
  all paths weighted by ``|product|``, in one sweep.
* :func:`compare` — backprop against the trace per parameter (norms, rank correlation, the share
  of each element's gradient its best path carries, top elements).
* :func:`over_dataset` — importance per sample or batch, aggregated, with a progress bar and
  resumable partial results.
* :mod:`~semirad.analysis.groups` — groups of parameters (:func:`by_module`, :func:`by_pattern`)
  and of components (:func:`across_time`, :func:`depth`, :func:`patterns`).
* :func:`to_dot` / :func:`write_graph` — the recorded graph with components as clusters and a best
  path highlighted; :mod:`~semirad.analysis.plots` — matplotlib figures (optional extra ``plots``).
* :class:`ComponentFlow` — the semiring behind :func:`backprop_importance` (it lives in
  :mod:`semirad.semirings.component_flow`); :mod:`~semirad.analysis.tables` — the text tables;
  :mod:`~semirad.analysis.demo` — ``semirad demo`` (imported on use).

See ``docs/analysis.md``.
"""

from ..semirings.component_flow import ComponentFlow
from .compare import Comparison, compare, rankdata, spearman
from .dataset import DatasetChangedError, DatasetImportance, ResultsFileBusyError, ResultsFileError, over_dataset
from .dot import to_dot, write_graph
from .groups import (
    OTHER,
    UNTAGGED,
    across_time,
    by_module,
    by_pattern,
    depth,
    named_tensors,
    patterns,
    select,
)
from .importance import ComponentImportance, backprop_importance, component_importance
from .progress import progress_bar
from .shares import (
    PathShares,
    any_of,
    backprop_path_shares,
    components,
    edge,
    element_mask,
    op,
    path_shares,
    tensors,
)
from .tables import side_by_side

__all__ = [
    "component_importance",
    "backprop_importance",
    "ComponentImportance",
    "ComponentFlow",
    "side_by_side",
    "compare",
    "Comparison",
    "spearman",
    "rankdata",
    "over_dataset",
    "DatasetImportance",
    "ResultsFileError",
    "DatasetChangedError",
    "ResultsFileBusyError",
    "to_dot",
    "write_graph",
    "across_time",
    "depth",
    "patterns",
    "by_module",
    "by_pattern",
    "select",
    "named_tensors",
    "UNTAGGED",
    "OTHER",
    "progress_bar",
    "path_shares",
    "backprop_path_shares",
    "PathShares",
    "components",
    "op",
    "tensors",
    "edge",
    "any_of",
    "element_mask",
]
