"""Component importance over a data set: one trace per sample (or batch), aggregated.

Partial results go to a JSON file after every sample, so a long run can be stopped (Ctrl-C, or
``limit``) and resumed by calling :func:`over_dataset` again with the same ``path``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from .. import engine
from ..api import _seed_array, backward
from ..semirings.max_abs import MaxAbsProduct
from .groups import describe_grouping, parameter_groups
from .importance import ComponentImportance, backprop_importance, component_importance
from .progress import progress_bar

__all__ = ["over_dataset", "DatasetImportance"]

_FORMAT = "semirad.analysis.over_dataset/1"


class DatasetImportance:
    """Per-sample component importance and its mean and standard deviation over the samples.

    ``rows`` (the per-sample table) are dicts: ``index`` (position in ``batches``), ``loss``,
    ``trace`` (a :meth:`ComponentImportance.to_dict`), and ``backprop`` when it was computed.
    ``complete`` is False when the run stopped early (``limit`` or an interruption).
    """

    def __init__(self, rows: list, config: dict, complete: bool = True):
        self.rows = sorted(rows, key=lambda r: r["index"])
        self.config = config
        self.complete = complete

    def __len__(self) -> int:
        return len(self.rows)

    def results(self, kind: str = "trace") -> list:
        """The :class:`ComponentImportance` of every sample (``kind``: ``"trace"`` or ``"backprop"``)."""
        return [ComponentImportance.from_dict(r[kind]) for r in self.rows if kind in r]

    def components(self, kind: str = "trace") -> list:
        """Every component label seen, in first-seen order."""
        out: list = []
        for imp in self.results(kind):
            for k in imp.counts:
                if k not in out:
                    out.append(k)
        return out

    def shares(self, kind: str = "trace") -> dict:
        """``{component: array of its share in each sample}`` (0 where a sample has none)."""
        results = self.results(kind)
        return {c: np.array([imp.shares.get(c, 0.0) for imp in results]) for c in self.components(kind)}

    def mean(self, kind: str = "trace") -> dict:
        """Mean share of each component over the samples."""
        return {c: float(v.mean()) for c, v in self.shares(kind).items()}

    def std(self, kind: str = "trace") -> dict:
        """Standard deviation (population, ``ddof=0``) of each component's share over the samples."""
        return {c: float(v.std()) for c, v in self.shares(kind).items()}

    def pooled(self, kind: str = "trace") -> ComponentImportance:
        """All samples' counts added up (shares weighted by each sample's number of edges)."""
        counts: dict = {}
        paths = elements = 0
        for imp in self.results(kind):
            for k, v in imp.counts.items():
                counts[k] = counts.get(k, 0.0) + v
            paths += imp.paths
            elements += imp.elements
        return ComponentImportance(counts, paths, elements, kind)

    def records(self) -> list:
        """One dict per (kind, component): ``kind``, ``component``, ``mean``, ``std``, ``min``, ``max``, ``samples``."""
        out = []
        for kind in ("trace", "backprop"):
            for c, v in self.shares(kind).items():
                out.append(
                    {
                        "kind": kind,
                        "component": c,
                        "mean": float(v.mean()),
                        "std": float(v.std()),
                        "min": float(v.min()),
                        "max": float(v.max()),
                        "samples": int(v.size),
                    }
                )
        return out

    def table(self) -> str:
        """Mean ± std of the share of each component over the samples (trace, and backprop if computed)."""
        kinds = [k for k in ("backprop", "trace") if any(k in r for r in self.rows)]
        comps: list = []
        for kind in kinds:
            for c in self.components(kind):
                if c not in comps:
                    comps.append(c)
        width = max([len("component")] + [len(c) for c in comps]) + 2
        head = "component".ljust(width) + "".join(f"{k + ' mean ± std':>24}" for k in kinds)
        lines = [f"{len(self.rows)} samples" + ("" if self.complete else " (incomplete run)"), head]
        stats = {k: (self.mean(k), self.std(k)) for k in kinds}
        for c in comps:
            line = c.ljust(width)
            for k in kinds:
                m, s = stats[k][0].get(c, 0.0), stats[k][1].get(c, 0.0)
                line += f"{100 * m:.1f} % ± {100 * s:.1f}".rjust(24)
            lines.append(line)
        return "\n".join(lines)

    def sample_table(self, kind: str = "trace") -> str:
        """The per-sample table: index, loss, paths, edges and the share of every component."""
        comps = self.components(kind)
        head = f"{'index':>6}{'loss':>10}{'paths':>8}{'edges':>10}" + "".join(f"{c[-12:]:>13}" for c in comps)
        lines = [head]
        for r in self.rows:
            if kind not in r:
                continue
            imp = ComponentImportance.from_dict(r[kind])
            line = f"{r['index']:>6}{r['loss']:>10.4g}{imp.paths:>8}{imp.total:>10.4g}"
            line += "".join(f"{100 * imp.shares.get(c, 0.0):>11.1f} %" for c in comps)
            lines.append(line)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return f"DatasetImportance({len(self.rows)} samples{'' if self.complete else ', incomplete'})"

    def save(self, path) -> None:
        """Write the rows and configuration as JSON (atomically: a temporary file, then a rename)."""
        _write(Path(path), {"format": _FORMAT, "config": self.config, "complete": self.complete, "rows": self.rows})

    @classmethod
    def load(cls, path) -> DatasetImportance:
        data = json.loads(Path(path).read_text())
        if data.get("format") != _FORMAT:
            raise ValueError(f"{path} is not a partial result of over_dataset (format {data.get('format')!r})")
        return cls(data["rows"], data["config"], data.get("complete", False))


def over_dataset(
    model_fn,
    batches,
    params=None,
    *,
    group=None,
    semiring=None,
    backprop: bool = False,
    path=None,
    resume: bool = True,
    limit: int | None = None,
    progress=True,
    desc: str = "tracing",
) -> DatasetImportance:
    """Trace ``model_fn(batch)`` for every item of ``batches`` and aggregate component importance.

    ``model_fn(batch)`` returns the scalar loss (a recorded tensor) of one sample or batch.
    ``params`` selects the parameters whose best paths count (tensors, a module, or ``{label: ...}``
    groups; default: every leaf of the graph that requires grad), ``group`` groups components
    (e.g. ``"across_time"``), ``semiring`` is the path-capable semiring (default MaxAbsProduct;
    ``KBest(k)`` counts k paths per element), ``backprop=True`` adds :func:`backprop_importance` for
    each sample. ``progress``: True (tqdm, rich or plain), False, or a backend name.

    With ``path``, the rows are written to that JSON file after every sample; calling again with
    the same ``path`` (and ``resume=True``) skips the samples already done, so an interrupted run
    continues where it stopped. The file records the configuration (parameter names, semiring,
    grouping) and a resume with a different one is refused. ``limit`` stops after that many new
    samples (the result is then marked incomplete).

    Returns a :class:`DatasetImportance`: ``table()`` (mean ± std), ``sample_table()``,
    ``mean()``, ``std()``, ``records()``, ``rows``.
    """
    semiring = MaxAbsProduct() if semiring is None else semiring
    named = None if params is None else parameter_groups(params)[0]
    config = {
        "params": None if named is None else [n for n, _ in named],
        "semiring": repr(semiring),
        "group": describe_grouping(group),
        "backprop": bool(backprop),
        "param_groups": sorted(params) if isinstance(params, dict) else None,
    }
    rows: list = []
    path = Path(path) if path is not None else None
    if path is not None and path.exists() and resume:
        previous = DatasetImportance.load(path)
        if previous.config != config:
            raise ValueError(
                f"{path} holds results of another configuration ({previous.config}); "
                f"remove it or pass resume=False to start again with {config}"
            )
        rows = list(previous.rows)
    done = {r["index"] for r in rows}
    total = len(batches) if hasattr(batches, "__len__") else None
    backend_name = progress if isinstance(progress, str) else "auto"
    bar = progress_bar(total, desc, enable=bool(progress), backend=backend_name)
    if done:
        bar.update(len(done))
    new = 0
    complete = True
    try:
        for i, batch in enumerate(batches):
            if i in done:
                continue
            if limit is not None and new >= limit:
                complete = False
                break
            loss = model_fn(batch)
            rows.append(_row(i, loss, params, semiring, group, backprop))
            new += 1
            if path is not None:
                DatasetImportance(rows, config, complete=False).save(path)
            bar.update()
            bar.set_postfix(loss=rows[-1]["loss"])
    except KeyboardInterrupt:
        bar.close()
        where = f"; partial results in {path} (call again to resume)" if path is not None else ""
        print(f"\ninterrupted after {len(rows)} samples{where}")
        raise
    bar.close()
    result = DatasetImportance(rows, config, complete)
    if path is not None:
        result.save(path)
    return result


def _row(index: int, loss, params, semiring, group, backprop: bool) -> dict:
    if loss._node is None:
        raise ValueError("over_dataset: model_fn returned a tensor that is not part of a recorded graph")
    if params is None:
        targets = [n for n in engine.ancestors(loss._node) if n.op is None]
        result = semiring.result(engine.sweep(loss._node, targets, _seed_array(loss, None), semiring))
    else:  # sr.backward checks that every parameter is in the graph
        result = backward(loss, [t for _, t in parameter_groups(params)[0]], semiring)
    row = {"index": index, "loss": _float(loss)}
    row["trace"] = component_importance(result, params, group=group).to_dict()
    del result
    if backprop:
        row["backprop"] = backprop_importance(loss, params, group=group).to_dict()
    return row


def _float(t) -> float:
    value = float(np.asarray(t.numpy()).reshape(-1)[0]) if t.size else float("nan")
    return value if math.isfinite(value) else float("nan")


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)
