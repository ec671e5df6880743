"""What a demo run found (:class:`DemoFindings`): made by :mod:`.run`, read by :mod:`.report`."""

from __future__ import annotations

from dataclasses import dataclass

from ...paths import Path
from ...tensor import Tensor
from ..compare import Comparison
from ..dataset import DatasetImportance
from ..importance import ComponentImportance
from .config import DemoConfig


@dataclass
class DemoFindings:
    """What a demo run found: the numbers and objects the report is made of.

    ``history`` has one entry per checkpoint under ``step``, ``loss`` (probe batch), ``accuracy``
    (closing accuracy) and ``trace`` / ``backprop`` (importance dicts, time steps merged);
    ``seconds`` has ``train``, ``checkpoints``, ``final_trace`` and ``final_importance``.
    ``best_path`` is the best path of the strongest element ``best_index`` of the recurrent weight
    ``best_param`` on the probe batch; ``graph_output`` / ``graph_path`` are a small graph (one
    short string) and the best path from its strongest recurrent element ``graph_index``.
    """

    config: DemoConfig
    started: float
    parameters: int
    losses: list
    history: dict
    seconds: dict
    probe_loss: float
    closing_accuracy: float
    trace: ComponentImportance
    trace_full: ComponentImportance
    backprop: ComponentImportance
    by_group: ComponentImportance
    comparison: Comparison
    check: dict
    best_param: str | None
    best_index: tuple
    best_path: Path
    dataset: DatasetImportance
    graph_output: Tensor
    graph_path: Path
    graph_index: tuple
