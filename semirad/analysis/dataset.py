"""Component importance over a data set: one trace per sample (or batch), aggregated.

With ``path``, :func:`over_dataset` appends each sample's row to a results file as soon as it is
computed, so a long run can be stopped (Ctrl-C, ``limit``, a killed process) and resumed by calling
it again with the same ``path``. The file is a log of JSON lines (format ``"semirad.analysis.over_dataset/2"``):

* line 1, the header: ``{"format": ..., "config": {...}, "dataset": {"count": n, "first_batch_sha256": hex}}``
  (``count`` is null when ``batches`` has no ``len``; the hash is null for an empty data set);
* one line per sample: ``{"index": i, "loss": x, "trace": {...}}`` (and ``"backprop"``), in the
  order computed, each written with one ``write()``, so that a killed process loses at most the
  sample in flight and leaves at most one partial last line, which the next run cuts off;
* the end record ``{"complete": true, "samples": n}`` when the run went through every sample.

Files of the first format (one JSON object, ``"semirad.analysis.over_dataset/1"``) are still read,
and rewritten in the new one when a run resumes from them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from .. import backend, engine
from ..api import backward
from ..semirings.max_abs import MaxAbsProduct
from ..tensor import Tensor, seed_array
from .groups import describe_grouping, parameter_groups
from .importance import ComponentImportance, backprop_importance, component_importance
from .progress import progress_bar

try:  # POSIX; elsewhere results files are not locked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = [
    "over_dataset",
    "DatasetImportance",
    "ResultsFileError",
    "DatasetChangedError",
    "ResultsFileBusyError",
    "Moments",
]

_FORMAT = "semirad.analysis.over_dataset/2"
_OLD_FORMAT = "semirad.analysis.over_dataset/1"
#: how every header starts (its "format" comes first): a file holding only a prefix of this is a
#: header cut short by a crash, not somebody else's file
_HEADER_START = b'{"format":"' + _FORMAT.encode() + b'"'
_REMEDY = "the file is damaged or not a results file of over_dataset (remove it, or pass resume=False to start again)"


class ResultsFileError(ValueError):
    """A results file of :func:`over_dataset` that cannot be used (damaged, another configuration or data set).

    The message names the file (and the line, where one is to blame).

    >>> issubclass(ResultsFileError, ValueError)
    True
    """


class DatasetChangedError(ResultsFileError):
    """Resuming from a results file of another data set (another length, or another first batch).

    >>> issubclass(DatasetChangedError, ValueError)
    True
    """


class ResultsFileBusyError(RuntimeError):
    """Another :func:`over_dataset` run (this process or another one) holds the results file's lock.

    >>> issubclass(ResultsFileBusyError, RuntimeError)
    True
    """


class DatasetImportance:
    """Per-sample component importance and its mean and standard deviation over the samples.

    ``rows`` (the per-sample table) are dicts: ``index`` (position in ``batches``), ``loss``,
    ``trace`` (a :meth:`ComponentImportance.to_dict`), and ``backprop`` when it was computed.
    ``complete`` is False when the run stopped early (``limit`` or an interruption).
    ``fingerprint`` is what identifies the data set: ``{"count": n, "first_batch_sha256": hex}``
    (either may be None: unknown).

    >>> result = _example()
    >>> len(result), result.complete, sorted(result.mean().items())
    (2, True, [('a', 0.625), ('b', 0.375)])
    """

    def __init__(self, rows: list, config: dict, complete: bool = True, fingerprint: dict | None = None):
        self.rows = sorted(rows, key=lambda r: r["index"])
        self.config = config
        self.complete = complete
        self.fingerprint = dict(fingerprint) if fingerprint else {"count": None, "first_batch_sha256": None}

    def __len__(self) -> int:
        return len(self.rows)

    def results(self, kind: str = "trace") -> list:
        """The :class:`ComponentImportance` of every sample (``kind``: ``"trace"`` or ``"backprop"``).

        >>> [imp.counts for imp in _example().results()]
        [{'a': 3.0, 'b': 1.0}, {'a': 1.0, 'b': 1.0}]
        """
        return [ComponentImportance.from_dict(r[kind]) for r in self.rows if kind in r]

    def components(self, kind: str = "trace") -> list:
        """Every component label seen, in first-seen order.

        >>> _example().components()
        ['a', 'b']
        """
        out: list = []
        for imp in self.results(kind):
            for k in imp.counts:
                if k not in out:
                    out.append(k)
        return out

    def shares(self, kind: str = "trace") -> dict:
        """``{component: array of its share in each sample}`` (0 where a sample has none).

        >>> _example().shares()["a"].tolist()
        [0.75, 0.5]
        """
        results = self.results(kind)
        return {c: np.array([imp.shares.get(c, 0.0) for imp in results]) for c in self.components(kind)}

    def mean(self, kind: str = "trace") -> dict:
        """Mean share of each component over the samples.

        >>> _example().mean()
        {'a': 0.625, 'b': 0.375}
        """
        return {c: float(v.mean()) for c, v in self.shares(kind).items()}

    def std(self, kind: str = "trace") -> dict:
        """Standard deviation (population, ``ddof=0``) of each component's share over the samples.

        >>> _example().std()
        {'a': 0.125, 'b': 0.125}
        """
        return {c: float(v.std()) for c, v in self.shares(kind).items()}

    def moments(self, kind: str = "trace") -> dict:
        """``{component: Moments}`` of each component's share over the samples: counts, means and
        standard deviations that merge exactly with another run's (:meth:`Moments.merge`, e.g. two
        halves of a data set traced on two machines).

        >>> m = _example().moments()["a"]
        >>> m.count, m.mean, m.std
        (2, 0.625, 0.125)
        """
        return {c: Moments.of(v) for c, v in self.shares(kind).items()}

    def pooled(self, kind: str = "trace") -> ComponentImportance:
        """All samples' counts added up (shares weighted by each sample's number of edges).

        >>> _example().pooled().counts
        {'a': 4.0, 'b': 2.0}
        """
        counts: dict = {}
        paths = elements = 0
        for imp in self.results(kind):
            for k, v in imp.counts.items():
                counts[k] = counts.get(k, 0.0) + v
            paths += imp.paths
            elements += imp.elements
        return ComponentImportance(counts, paths, elements, kind)

    # -- path shares (over_dataset(..., shares=...)) --------------------------------------------------
    def share_results(self, kind: str = "shares") -> list:
        """The :class:`~semirad.analysis.PathShares` of every sample (``kind``: ``"shares"``, the
        trace's, or ``"shares_backprop"``)."""
        from .shares import PathShares

        return [PathShares.from_dict(r[kind]) for r in self.rows if kind in r]

    def share_values(self, kind: str = "shares") -> dict:
        """``{label: array of its share in each sample}`` (``"none"`` included); samples whose
        selected elements have no path at all are left out.

        >>> _example_shares().share_values()["key"].tolist()
        [0.75, 0.25]
        """
        results = [r for r in self.share_results(kind) if r.total]
        labels: list = []
        for r in results:
            labels += [k for k in r.counts if k not in labels]
        return {k: np.array([r.shares.get(k, 0.0) for r in results]) for k in labels}

    def share_stats(self, kind: str = "shares") -> dict:
        """``{label: (mean, std)}`` of the per-sample shares (population std, ``ddof=0``).

        >>> _example_shares().share_stats()
        {'key': (0.5, 0.25), 'none': (0.5, 0.25)}
        """
        return {k: (float(v.mean()), float(v.std())) for k, v in self.share_values(kind).items()}

    def shares_table(self) -> str:
        """Mean ± std over the samples of each label's path share (trace, and backprop if computed).

        >>> print(_example_shares().shares_table())
        path shares over 2 samples
        through         shares mean ± std
        key                 50.0 % ± 25.0
        none                50.0 % ± 25.0
        """
        kinds = [k for k in ("shares", "shares_backprop") if any(k in r for r in self.rows)]
        if not kinds:
            return "no path shares (pass shares=... to over_dataset)"
        stats = {k: self.share_stats(k) for k in kinds}
        labels: list = []
        for k in kinds:
            labels += [lab for lab in stats[k] if lab not in labels]
        width = max([len("through")] + [len(lab) for lab in labels]) + 2
        lines = [f"path shares over {len(self.share_results(kinds[0]))} samples"]
        lines.append("through".ljust(width) + "".join(f"{k + ' mean ± std':>24}" for k in kinds))
        for lab in labels:
            line = lab.ljust(width)
            for k in kinds:
                m, sd = stats[k].get(lab, (0.0, 0.0))
                line += f"{100 * m:.1f} % ± {100 * sd:.1f}".rjust(24)
            lines.append(line)
        return "\n".join(lines)

    def records(self) -> list:
        """One dict per (kind, component): ``kind``, ``component``, ``mean``, ``std``, ``min``, ``max``, ``samples``.

        >>> _example().records()[0]
        {'kind': 'trace', 'component': 'a', 'mean': 0.625, 'std': 0.125, 'min': 0.5, 'max': 0.75, 'samples': 2}
        """
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
        for kind in ("shares", "shares_backprop"):  # path shares: "component" is the label
            for c, v in self.share_values(kind).items():
                out.append({"kind": kind, "component": c, "mean": float(v.mean()), "std": float(v.std()),
                            "min": float(v.min()), "max": float(v.max()), "samples": int(v.size)})  # fmt: skip
        return out

    def table(self) -> str:
        """Mean ± std of the share of each component over the samples (trace, and backprop if computed).

        >>> print(_example().table())
        2 samples
        component          trace mean ± std
        a                     62.5 % ± 12.5
        b                     37.5 % ± 12.5
        """
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
        """The per-sample table: index, loss, paths, edges and the share of every component.

        >>> print(_example().sample_table())
         index      loss   paths     edges            a            b
             0       0.5       2         4       75.0 %       25.0 %
             1      0.25       2         2       50.0 %       50.0 %
        """
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
        if any("shares" in r for r in self.rows):
            return self.table() + "\n\n" + self.shares_table()
        return self.table()

    def __repr__(self) -> str:
        return f"DatasetImportance({len(self.rows)} samples{'' if self.complete else ', incomplete'})"

    def save(self, path: str | os.PathLike) -> None:
        """Write the results file (the format :func:`over_dataset` appends to) atomically.

        The lines go to a uniquely named temporary file in the same directory, which then replaces
        ``path`` (``os.replace``): a reader sees the old file or the new one, never a mixture.
        Raises :class:`ResultsFileBusyError` while an :func:`over_dataset` run is writing ``path``,
        and ``ValueError`` for rows that :meth:`load` would refuse (a repeated index, for instance).

        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     _example().save(Path(folder) / "results.jsonl")
        ...     print(DatasetImportance.load(Path(folder) / "results.jsonl"))
        2 samples
        component          trace mean ± std
        a                     62.5 % ± 12.5
        b                     37.5 % ± 12.5
        """
        path = Path(path)
        if not isinstance(self.config, dict):
            raise ValueError(f"cannot save to {path}: the configuration is not a dict ({self.config!r})")
        _check_rows(path, [(f"row {k}", row) for k, row in enumerate(self.rows)], self.config, self.fingerprint)
        records = [_header(self.config, self.fingerprint), *self.rows]
        if self.complete:
            records.append(_end_record(len(self.rows)))
        data = b"".join(_line(record) for record in records)  # before the file is touched: it may raise
        with _ResultsLog(path) as log:
            log.replace(data)

    @classmethod
    def load(cls, path: str | os.PathLike) -> DatasetImportance:
        """Read a results file of :func:`over_dataset` or :meth:`save` (also the older format ``/1``).

        A partial last line (a run killed in the middle of a write) is left out; anything else
        that is not a valid results file raises :class:`ResultsFileError` (a ``ValueError``) naming
        the file and the line.

        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     file = Path(folder) / "results.jsonl"
        ...     _example().save(file)
        ...     with open(file, "a") as cut:
        ...         _ = cut.write('{"index": 2, "lo')  # a run killed in the middle of a write
        ...     DatasetImportance.load(file)
        DatasetImportance(2 samples)
        """
        path = Path(path)
        contents = _parse(path, path.read_bytes())
        if contents.config is None:
            raise ResultsFileError(f"{path} is empty: a run that was stopped before it wrote anything")
        return cls(contents.rows, contents.config, contents.complete, contents.fingerprint)


def over_dataset(
    model_fn: Callable[[Any], Tensor],
    batches: Iterable,
    params: Any = None,
    *,
    group: Any = None,
    semiring: Any = None,
    backprop: bool = False,
    path: str | os.PathLike | None = None,
    resume: bool = True,
    limit: int | None = None,
    progress: bool | str = True,
    desc: str = "tracing",
    shares: Any = None,
    executor: Any = None,
    compile: bool | None = None,  # noqa: A002 (the name of sr.compile)
    in_flight: int | None = None,
    chunk: int | None = None,
) -> DatasetImportance:
    """Trace ``model_fn(batch)`` for every item of ``batches`` and aggregate component importance.

    ``model_fn(batch)`` returns the scalar loss (a recorded tensor) of one sample or batch.
    ``params`` selects the parameters whose best paths count (tensors, a module, or ``{label: ...}``
    groups; default: every leaf of the graph that requires grad), ``group`` groups components
    (e.g. ``"across_time"``), ``semiring`` is the path-capable semiring (default MaxAbsProduct;
    ``KBest(k)`` counts k paths per element), ``backprop=True`` adds :func:`backprop_importance` for
    each sample. ``progress``: True (tqdm, rich or plain), False, or a backend name.

    ``shares`` adds :func:`~semirad.analysis.path_shares` per sample (its mean ± std:
    :meth:`DatasetImportance.share_stats`, :meth:`DatasetImportance.shares_table`): a dict
    ``dict(sources=..., through={label: selector}, elements=None, ranks=None, backprop=False)``
    (``sources`` and ``elements`` may be callables without arguments, called after ``model_fn``:
    for a tensor the model makes anew for every sample, such as its embedding output, which must
    lie on the paths of the traced ``params``; ``backprop=True`` adds
    :func:`~semirad.analysis.backprop_path_shares`), or a callable ``(result, loss) -> PathShares``.

    With ``path``, every sample's row is appended to that results file (JSON lines, see the
    module's docstring) as soon as it is computed; calling again with the same ``path`` (and
    ``resume=True``) skips the samples already done, so an interrupted or killed run continues
    where it stopped. The file records the configuration (parameter names, semiring, grouping)
    and a fingerprint of the data set (its length, a sha256 of its first batch); resuming with
    another configuration or another data set raises :class:`ResultsFileError` (a ``ValueError``;
    :class:`DatasetChangedError` for the data set), as does a damaged file; ``resume=False``
    starts the file anew. While a run writes ``path`` it holds a lock on it: a second run on the
    same file raises :class:`ResultsFileBusyError`. ``limit`` stops after that many new samples
    (the result is then marked incomplete).

    ``executor`` runs the samples in parallel: a ``concurrent.futures.Executor`` (a
    ``ProcessPoolExecutor``: ``model_fn`` and ``params`` must pickle, so a module-level function
    or a ``functools.partial``; a ``ThreadPoolExecutor``) or a Dask ``distributed.Client``
    (``pip install semirad[dask]``). Each sample's row comes back to this process, which writes it
    to ``path`` as soon as it arrives (so a killed worker or driver loses only the samples in
    flight, at most ``in_flight``: default 4 per worker) and computes the statistics from the rows:
    the same numbers as a serial run. A task is ``chunk`` samples (default: about 2 tasks per worker
    and at most 16 samples; 1 when ``batches`` has no ``len``), whose rows come back together; at
    most ``in_flight`` tasks are submitted at a time (default 2 per worker). The first error in a
    sample (or a lost worker) stops the run after the rows already computed are written (those of
    the failing task's samples before the error included), and is raised. ``compile`` (default: on with an
    executor) has each worker record ``model_fn``'s graph once per batch signature
    (:func:`semirad.compile`, ``unique=False``) and replay it for its samples; a batch must then be
    an array, a number, or a tuple/list of them, and ``model_fn`` must not branch on the data
    (docs/compile.md). With ``compile=None`` a model that cannot be compiled runs eagerly.

    Returns a :class:`DatasetImportance`: ``table()`` (mean ± std), ``sample_table()``,
    ``mean()``, ``std()``, ``moments()``, ``records()``, ``rows``.

    >>> import tempfile
    >>> import semirad as sr
    >>> w = sr.tensor([1.0, -2.0], requires_grad=True, name="w")
    >>> def loss_of(x):
    ...     with sr.component("scale"):
    ...         y = w * x
    ...     return (y * y).sum()
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     file = Path(folder) / "importance.jsonl"
    ...     first = over_dataset(loss_of, [1.0, 3.0, 5.0], [w], path=file, limit=1, progress=False)
    ...     rest = over_dataset(loss_of, [1.0, 3.0, 5.0], [w], path=file, progress=False)  # resumes
    >>> len(first), first.complete, len(rest), rest.complete
    (1, False, 3, True)
    >>> round(rest.mean()["scale"], 4)
    0.3333
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
    if shares is not None:  # (absent otherwise: the configuration of earlier files stays the same)
        config["shares"] = _describe_shares(shares)
    count = len(batches) if hasattr(batches, "__len__") else None
    checkpoint = None if path is None else _Checkpoint(Path(path), config, count, resume)
    try:
        work = _Work(model_fn, params, semiring, group, backprop, shares,
                     (executor is not None) if compile is None else compile, compile is None)  # fmt: skip
        rows, complete, first_batch_digest = _trace_all(
            model_fn, batches, params, semiring, group, backprop, limit, progress, desc, checkpoint, shares,
            executor=executor, work=work, in_flight=in_flight, chunk=chunk,
        )
    finally:
        if checkpoint is not None:
            checkpoint.close()
    fingerprint = {"count": count, "first_batch_sha256": first_batch_digest}
    if checkpoint is not None:  # with what the file knew of the data set
        fingerprint = checkpoint.fingerprint
    return DatasetImportance(rows, config, complete, fingerprint)


def _trace_all(
    model_fn: Callable,
    batches: Iterable,
    params: Any,
    semiring: Any,
    group: Any,
    backprop: bool,
    limit: int | None,
    progress: bool | str,
    desc: str,
    checkpoint: _Checkpoint | None,
    shares: Any = None,
    executor: Any = None,
    work: _Work | None = None,
    in_flight: int | None = None,
    chunk: int | None = None,
) -> tuple:
    """The loop of :func:`over_dataset`: ``(rows, complete, the first batch's hash)``."""
    if executor is not None:
        return _trace_parallel(batches, limit, progress, desc, checkpoint, executor, work, in_flight, chunk)
    rows, done, _, bar = _start(batches, progress, desc, checkpoint)
    interrupted = False
    todo = _Todo(batches, done, limit, checkpoint)
    try:
        for i, batch in todo:
            loss = model_fn(batch) if work is None else work.loss(batch)  # (replayed where it compiles)
            rows.append(_row(i, loss, params, semiring, group, backprop, shares))
            if checkpoint is not None:
                checkpoint.append(rows[-1])
            bar.update()
            bar.set_postfix(loss=rows[-1]["loss"])
        complete = _finish(todo, checkpoint, len(rows))
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        bar.close()
        if interrupted:
            where = f"; partial results in {checkpoint.path} (call again to resume)" if checkpoint is not None else ""
            print(f"\ninterrupted after {len(rows)} samples{where}")
    return rows, complete, todo.first_batch_digest


def _start(batches, progress, desc, checkpoint) -> tuple:
    """What the serial and the parallel loop start from: ``(rows, done, total, bar)``, the rows a
    checkpoint holds, their indices, the number of batches (None without ``len``) and the progress
    bar, advanced past the rows done."""
    rows: list = [] if checkpoint is None else list(checkpoint.rows)
    done = {r["index"] for r in rows}
    total = len(batches) if hasattr(batches, "__len__") else None
    bar = progress_bar(total, desc, enable=bool(progress), backend=progress if isinstance(progress, str) else "auto")
    if done:
        bar.update(len(done))
    return rows, done, total, bar


def _finish(todo, checkpoint, n_rows: int) -> bool:
    """The end of a loop that ran to its end: whether every sample is done; the checkpoint started
    (an empty data set never started it) and, if so, marked complete."""
    complete = todo.complete
    if checkpoint is not None:
        if not checkpoint.started:
            checkpoint.start(None)
        if complete:
            checkpoint.finish(n_rows)
    return complete


class _Todo:
    """The ``(index, batch)`` pairs a run still has to do, in order: the first batch hashed (and the
    checkpoint started with it, before anything is used or written), the indices already ``done``
    skipped, each index checked against the checkpoint, and at most ``limit`` of them (``complete``
    turns False where the limit cut the run short).

    >>> todo = _Todo(["a", "b", "c"], done={0}, limit=1, checkpoint=None)
    >>> list(todo), todo.complete
    ([(1, 'b')], False)
    """

    def __init__(self, batches, done: set, limit: int | None, checkpoint: _Checkpoint | None):
        self.batches, self.done, self.limit, self.checkpoint = batches, done, limit, checkpoint
        self.first_batch_digest: str | None = None
        self.complete = True

    def __iter__(self):
        new = 0
        for i, batch in enumerate(self.batches):
            if i == 0:
                self.first_batch_digest = _batch_digest(batch)
                if self.checkpoint is not None:
                    self.checkpoint.start(self.first_batch_digest)
            if i in self.done:
                continue
            if self.limit is not None and new >= self.limit:
                self.complete = False
                return
            if self.checkpoint is not None:
                self.checkpoint.check_index(i)
            yield i, batch
            new += 1


# -- parallel runs (executor=...) and compiled graphs (compile=...) -------------------------------------

#: the work of the runs this process takes part in, by token: a worker keeps the first copy it
#: receives (its tensors are those of its compiled graphs) and its graphs, one per batch signature
_WORKERS: dict = {}
_WORKERS_LOCK = threading.Lock()
_WORKERS_KEPT = 8  # runs remembered per process (the oldest is forgotten first)


class _Work:
    """What every sample of one run needs, shipped to the workers (pickled once per task by a
    ``concurrent.futures`` pool, once per worker by Dask's ``scatter``)."""

    def __init__(self, model_fn, params, semiring, group, backprop: bool, shares, compile: bool, optional: bool):  # noqa: A002
        self.model_fn, self.params, self.semiring, self.group = model_fn, params, semiring, group
        self.backprop, self.shares = backprop, shares
        callable_shares = shares is not None and (
            callable(shares) or callable(shares.get("sources")) or callable(shares.get("elements"))
        )  # (they read what model_fn made: a replay does not run model_fn)
        if compile and callable_shares and not optional:
            raise ValueError(
                "over_dataset: compile=True with shares whose sources or elements are callables (they read "
                "tensors that model_fn makes; a replayed graph does not run model_fn)"
            )
        self.compile = bool(compile) and not callable_shares
        self.optional = optional
        self.token = secrets.token_hex(16)
        self.graphs: dict = {}
        self.lock = threading.Lock()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["graphs"], state["lock"] = {}, None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.lock = threading.Lock()

    def loss(self, batch):
        """``model_fn(batch)``, replayed from this worker's compiled graph where there is one."""
        if not self.compile:
            return self.model_fn(batch)
        flat = _flatten(batch)
        if flat is None:
            if self.optional:
                return self.model_fn(batch)
            raise TypeError(f"over_dataset(compile=True): a batch must be an array, a number or a tuple/list of "
                            f"them to be replayed, got {type(batch).__name__}")  # fmt: skip
        kind, arrays = flat
        key = (kind, tuple((a.shape, a.dtype.str) for a in arrays))
        graph = self.graphs.get(key, False)
        if graph is False:
            with self.lock:
                graph = self.graphs.get(key, False)
                if graph is False:
                    graph = self._compile(kind, arrays)
                    self.graphs[key] = graph
        if graph is None:
            return self.model_fn(batch)
        return graph(*arrays)

    def _compile(self, kind, arrays: list):
        from ..compile import compile as compile_graph

        model_fn = self.model_fn

        def replayed(*xs):
            return model_fn(_unflatten(kind, xs))

        try:
            return compile_graph(replayed, *arrays, unique=False)
        except Exception:
            if self.optional:
                return None  # (compile=None: this model runs eagerly)
            raise


def _flatten(batch):
    """``(kind, arrays)`` of a batch made of arrays and numbers, None for anything else."""
    if isinstance(batch, Tensor):
        return "tensor", [batch.data]
    if backend.is_array(batch) or isinstance(batch, (int, float, np.generic)) and not isinstance(batch, bool):
        return ("array" if backend.is_array(batch) else type(batch).__name__), [np.asarray(batch)]
    if isinstance(batch, (tuple, list)) and batch:
        parts = [_flatten(b) for b in batch]
        if any(p is None or p[0] in ("tuple", "list") for p in parts):
            return None
        return (type(batch).__name__, tuple(p[0] for p in parts)), [p[1][0] for p in parts]
    return None


def _unflatten(kind, xs: tuple):
    """The batch ``model_fn`` sees in a compiled graph: tensors where the batch had arrays or numbers."""
    if isinstance(kind, tuple):
        items = [x for x in xs]
        return tuple(items) if kind[0] == "tuple" else items
    return xs[0]


def _local_work(work: _Work) -> _Work:
    """This process's copy of the run's work (the first received; later copies are the same run)."""
    with _WORKERS_LOCK:
        mine = _WORKERS.get(work.token)
        if mine is None:
            mine = _WORKERS[work.token] = work
            while len(_WORKERS) > _WORKERS_KEPT:
                _WORKERS.pop(next(iter(_WORKERS)))
        return mine


def _run_sample(work: _Work, index: int, batch) -> dict:
    """One sample's row."""
    work = _local_work(work)
    loss = work.loss(batch)
    return _row(index, loss, work.params, work.semiring, work.group, work.backprop, work.shares)


def _run_samples(work: _Work, items: list) -> tuple:
    """What a worker runs: ``(rows, None)`` for ``[(index, batch), ...]``, or ``(the rows before
    the failing sample, the error)``."""
    rows: list = []
    for index, batch in items:
        try:
            rows.append(_run_sample(work, index, batch))
        except Exception as error:  # (handed back: the driver writes the rows done, then raises it)
            return rows, error
    return rows, None


def _is_dask_client(executor) -> bool:
    return type(executor).__module__.split(".")[0] == "distributed" and hasattr(executor, "scatter")


def _trace_parallel(batches, limit, progress, desc, checkpoint, executor, work: _Work, in_flight, chunk) -> tuple:
    """:func:`_trace_all` on an executor: tasks of ``chunk`` samples, at most ``in_flight`` of them
    submitted at a time, each row written (and counted) as it arrives, in any order."""
    rows, done, total, bar = _start(batches, progress, desc, checkpoint)
    dask = _is_dask_client(executor)
    if dask:
        workers = max(1, len(executor.scheduler_info().get("workers", {})))
        shipped = executor.scatter(work, broadcast=True, hash=False)

        def submit(items):
            return executor.submit(_run_samples, shipped, items, pure=False)
    else:
        workers = getattr(executor, "_max_workers", None) or os.cpu_count() or 2

        def submit(items):
            return executor.submit(_run_samples, work, items)

    window = in_flight if in_flight is not None else 2 * workers
    if chunk is None:
        chunk = 1 if total is None else max(1, min(16, (total - len(done)) // (2 * workers)))
    items: list = []
    pending = _InFlight(dask)
    failure = None

    def collect(finished) -> None:
        nonlocal failure
        for done_rows, error in finished:
            for row in done_rows:
                rows.append(row)
                if checkpoint is not None:
                    checkpoint.append(row)
                bar.update()
                bar.set_postfix(loss=row["loss"])
            if error is not None:
                failure = failure or error

    todo = _Todo(batches, done, limit, checkpoint)
    try:
        for i, batch in todo:
            items.append((i, batch))
            if len(items) < chunk:
                continue
            while len(pending) >= window and failure is None:
                collect(pending.finished())
            if failure is not None:
                break
            pending.add(submit(items))
            items = []
        if items and failure is None:
            pending.add(submit(items))
        while len(pending):
            collect(pending.finished())
        if failure is not None:
            raise failure
        complete = _finish(todo, checkpoint, len(rows))
    except BaseException:
        pending.cancel()
        raise
    finally:
        bar.close()
        with _WORKERS_LOCK:  # (a thread pool's workers share this process's copy)
            _WORKERS.pop(work.token, None)
    return rows, complete, todo.first_batch_digest


class _InFlight:
    """The tasks submitted and not collected yet. :meth:`finished` waits until at least one is done and
    returns what the done ones gave: each task's ``(rows, error)``, or ``([], error)`` where the task
    itself failed (a lost worker, a cancellation). On Dask, ``as_completed(with_results=True)`` fetches
    each result as its task ends, while the driver waits for the others, instead of a ``result()`` per
    task after the wait (a round trip each, about 12 ms on a local cluster; the two ways measured the
    same there, 0.526 against 0.537 s for 64 samples, medians of 8 interleaved runs: the overlap is
    for clusters farther away)."""

    def __init__(self, dask: bool):
        self.futures: set = set()
        self._completed = None
        if dask:
            import distributed

            self._completed = distributed.as_completed(with_results=True, raise_errors=False)

    def __len__(self) -> int:
        return len(self.futures)

    def add(self, future) -> None:
        self.futures.add(future)
        if self._completed is not None:
            self._completed.add(future)

    def finished(self) -> list:
        if self._completed is not None:
            future, result = next(self._completed)
            self.futures.discard(future)
            if future.status == "finished":
                return [result]
            error = result if isinstance(result, BaseException) else result[1]  # ((type, error, traceback))
            return [([], error)]
        import concurrent.futures as cf

        done, _ = cf.wait(self.futures, return_when=cf.FIRST_COMPLETED)
        self.futures -= done
        out = []
        for future in done:
            error = future.exception()
            out.append(([], error) if error is not None else future.result())
        return out

    def cancel(self) -> None:
        for future in self.futures:
            future.cancel()


# -- statistics merged exactly (Chan et al.'s parallel formulas) ---------------------------------------


@dataclass
class Moments:
    """Count, mean and sum of squared deviations (``m2``) of a sample of numbers; two merge
    exactly, in any grouping, with the parallel formulas of Chan, Golub and LeVeque (1979):
    ``merge`` of the moments of two parts gives the moments of their union without the numbers.

    >>> a, b = Moments.of([1.0, 2.0]), Moments.of([4.0])
    >>> m = a.merge(b)
    >>> m.count, m.mean, round(m.std, 6), Moments.of([1.0, 2.0, 4.0]).std == m.std
    (3, 2.3333333333333335, 1.247219, True)
    """

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0

    @classmethod
    def of(cls, values) -> Moments:
        """The moments of ``values`` (Welford's one-pass update, as a merge of one number at a time)."""
        out = cls()
        for v in values:
            out = out.merge(cls(1, float(v), 0.0))
        return out

    def merge(self, other: Moments) -> Moments:
        """The moments of both parts together (Chan et al.)."""
        n = self.count + other.count
        if n == 0:
            return Moments()
        if other.count == 0:
            return Moments(self.count, self.mean, self.m2)
        if self.count == 0:
            return Moments(other.count, other.mean, other.m2)
        delta = other.mean - self.mean
        mean = self.mean + delta * other.count / n
        m2 = self.m2 + other.m2 + delta * delta * self.count * other.count / n
        return Moments(n, mean, m2)

    @property
    def var(self) -> float:
        """Population variance (``ddof=0``); NaN for no numbers."""
        return self.m2 / self.count if self.count else float("nan")

    @property
    def std(self) -> float:
        """Population standard deviation (``ddof=0``), as :meth:`DatasetImportance.std`."""
        return math.sqrt(self.var) if self.count else float("nan")


def _row(index: int, loss, params, semiring, group, backprop: bool, shares: Any = None) -> dict:
    if loss._node is None:
        raise ValueError("over_dataset: model_fn returned a tensor that is not part of a recorded graph")
    if params is None:
        targets = [n for n in engine.ancestors(loss._node) if n.op is None]
        result = semiring.result(engine.sweep(loss._node, targets, seed_array(loss, None), semiring))
    else:  # sr.backward checks that every parameter is in the graph
        result = backward(loss, [t for _, t in parameter_groups(params)[0]], semiring)
    row = {"index": index, "loss": _float(loss)}
    row["trace"] = component_importance(result, params, group=group).to_dict()
    if shares is not None:
        row.update(_shares_row(shares, result, loss))
    del result
    if backprop:
        row["backprop"] = backprop_importance(loss, params, group=group).to_dict()
    return row


def _describe_shares(shares: Any) -> dict:
    """What the configuration records of a ``shares`` argument (to check a resume)."""
    from .shares import as_selector

    if callable(shares):
        return {"callable": getattr(shares, "__qualname__", type(shares).__name__)}
    if not isinstance(shares, dict) or "through" not in shares or "sources" not in shares:
        raise TypeError("over_dataset: shares is dict(sources=..., through={label: selector}, ...) or a callable "
                        "(result, loss) -> PathShares")  # fmt: skip
    unknown = set(shares) - {"sources", "through", "elements", "ranks", "backprop"}
    if unknown:
        raise TypeError(f"over_dataset: unknown keys {sorted(unknown)} in shares (known: sources, through, elements, "
                        "ranks, backprop)")  # fmt: skip
    sources = shares["sources"]
    if callable(sources):
        names = getattr(sources, "__qualname__", "callable")
    else:
        from .groups import named_tensors

        names = [n for n, _ in named_tensors(sources)]
    return {
        "sources": names,
        "through": {str(k): repr(as_selector(v)) for k, v in shares["through"].items()},
        "ranks": None if shares.get("ranks") is None else [int(r) for r in np.atleast_1d(shares["ranks"])],
        "elements": shares.get("elements") is not None,
        "backprop": bool(shares.get("backprop", False)),
    }


def _shares_row(shares: Any, result, loss) -> dict:
    """``{"shares": ...}`` (and ``"shares_backprop"``) of one sample."""
    from .shares import PathShares, backprop_path_shares, path_shares

    if callable(shares):
        found = shares(result, loss)
        if not isinstance(found, PathShares):
            raise TypeError(f"over_dataset: the shares callable returned {type(found).__name__}, not a PathShares")
        return {"shares": found.to_dict()}
    sources = shares["sources"]() if callable(shares["sources"]) else shares["sources"]
    elements = shares.get("elements")
    elements = elements() if callable(elements) else elements
    out = {"shares": path_shares(result, sources, shares["through"], elements, shares.get("ranks")).to_dict()}
    if shares.get("backprop"):
        out["shares_backprop"] = backprop_path_shares(loss, sources, shares["through"], elements).to_dict()
    return out


def _float(t) -> float:
    value = float(np.asarray(t.numpy()).reshape(-1)[0]) if t.numel() else float("nan")
    return value if math.isfinite(value) else float("nan")


def _example() -> DatasetImportance:
    """Two made-up samples of a model with components ``a`` and ``b`` (for the doctests).

    >>> len(_example())
    2
    """
    rows = [
        {"index": 0, "loss": 0.5, "trace": {"counts": {"a": 3.0, "b": 1.0}, "paths": 2, "elements": 2}},
        {"index": 1, "loss": 0.25, "trace": {"counts": {"a": 1.0, "b": 1.0}, "paths": 2, "elements": 2}},
    ]
    return DatasetImportance(rows, {"backprop": False}, fingerprint={"count": 2, "first_batch_sha256": None})


# -- the data set's fingerprint ----------------------------------------------------------------------


def _example_shares() -> DatasetImportance:
    """Two samples with path shares, for the doctests."""
    rows = [
        {"index": 0, "loss": 0.5, "trace": {"counts": {"a": 1.0}, "paths": 1, "elements": 1},
         "shares": {"counts": {"key": 3, "none": 1}, "total": 4}},
        {"index": 1, "loss": 0.25, "trace": {"counts": {"a": 1.0}, "paths": 1, "elements": 1},
         "shares": {"counts": {"key": 1, "none": 3}, "total": 4}},
    ]  # fmt: skip
    return DatasetImportance(rows, {"params": None, "shares": {"callable": "f"}})


def _batch_digest(batch: Any) -> str:
    """The sha256 (hex) of what can be seen of a batch: see :func:`_feed_digest`.

    >>> _batch_digest((np.zeros(2), 1)) == _batch_digest((np.zeros(2), 1))
    True
    >>> _batch_digest((np.zeros(2), 1)) == _batch_digest((np.zeros(2, dtype=np.float32), 1))
    False
    """
    digest = hashlib.sha256()
    _feed_digest(digest, batch)
    return digest.hexdigest()


def _feed_digest(digest, value: Any) -> None:
    """Add ``value`` to ``digest``: tuples, lists and dicts item by item; numpy/cupy arrays and
    Tensors by dtype, shape and bytes; numbers, strings, bytes, bools and None by ``repr``; any
    other object by its type's name only (its contents are not seen).

    >>> a, b = hashlib.sha256(), hashlib.sha256()
    >>> _feed_digest(a, {"x": [1, 2.5], "y": None})
    >>> _feed_digest(b, {"y": None, "x": [1, 2.5]})  # key order does not matter
    >>> a.hexdigest() == b.hexdigest()
    True
    """

    def tag(kind: str, text: str) -> None:
        digest.update(f"{kind}:{len(text)}:{text};".encode())

    if isinstance(value, Tensor):
        value = value.data
    if backend.is_array(value) or isinstance(value, np.generic):
        array = np.asarray(backend.to_numpy(value))
        if array.dtype.hasobject:  # the bytes of an object array are pointers: walk its items
            tag("object-array", repr(array.shape))
            for item in array.flat:
                _feed_digest(digest, item)
        else:
            tag("array", f"{array.dtype.str}{array.shape}")
            digest.update(np.ascontiguousarray(array).tobytes())
    elif isinstance(value, (tuple, list)):
        tag(type(value).__name__, str(len(value)))
        for item in value:
            _feed_digest(digest, item)
    elif isinstance(value, dict):
        tag("dict", str(len(value)))
        for key, item in sorted(value.items(), key=lambda pair: repr(pair[0])):
            _feed_digest(digest, key)
            _feed_digest(digest, item)
    elif value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        tag(type(value).__name__, repr(value))
    else:
        tag("object", f"{type(value).__module__}.{type(value).__qualname__}")


# -- reading results files -----------------------------------------------------------------------------


@dataclass
class _Contents:
    """What a results file holds. ``config`` is None for an empty file (or one whose header was
    cut short); ``rows_end`` is the byte offset past the last row (where appending continues)."""

    config: dict | None = None
    fingerprint: dict | None = None
    rows: list = field(default_factory=list)
    complete: bool = False
    old_format: bool = False
    rows_end: int = 0


def _damaged(path: Path, where: str | None, problem: str) -> ResultsFileError:
    return ResultsFileError(f"{path}{', ' + where if where else ''}: {problem}; {_REMEDY}")


def _kind_of(value: Any) -> str:
    """How a JSON value is described in error messages.

    >>> _kind_of([]), _kind_of(None), _kind_of(3), _kind_of({})
    ('a JSON array', 'JSON null', 'a JSON number', 'a JSON object')
    """
    if value is None:
        return "JSON null"
    if isinstance(value, bool):
        return "a JSON boolean"
    if isinstance(value, (int, float)):
        return "a JSON number"
    return {str: "a JSON string", list: "a JSON array", dict: "a JSON object"}.get(type(value), type(value).__name__)


def _parse_json(path: Path, where: str, line: bytes) -> Any:
    try:
        return json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise _damaged(path, where, f"not valid JSON ({error})") from None


_NOT_JSON = object()


def _parse(path: Path, data: bytes) -> _Contents:
    """Read a results file's bytes (either format); raise :class:`ResultsFileError` where they are not one."""
    if not data:
        return _Contents()
    lines = data.split(b"\n")
    tail = lines.pop()  # what follows the last newline: b"", or a line cut short by a crash
    try:
        head = json.loads(lines[0] if lines else tail)
        head_problem = ""
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        head, head_problem = _NOT_JSON, f"not valid JSON ({error})"
    if not (isinstance(head, dict) and head.get("format") == _FORMAT):
        if not lines and (tail.startswith(_HEADER_START) or _HEADER_START.startswith(tail)):
            return _Contents()  # the header was being written when the run was killed
        return _parse_not_a_log(path, data, head, head_problem)
    if not lines:  # a whole header, but cut before its newline: nothing was appended yet
        return _Contents()
    config, fingerprint = _check_header(path, head)
    contents = _Contents(config, fingerprint, rows_end=len(lines[0]) + 1)
    offset = contents.rows_end
    numbered_rows = []
    for number, line in enumerate(lines[1:], start=2):
        where = f"line {number}"
        record = _parse_json(path, where, line)
        if contents.complete:
            raise _damaged(path, where, "a record after the end record")
        if not isinstance(record, dict):
            raise _damaged(path, where, f"{_kind_of(record)}, not a row")
        offset += len(line) + 1
        if "index" in record:
            numbered_rows.append((where, record))
            contents.rows_end = offset
        elif "complete" in record:
            if record.get("complete") is not True or record != _end_record(len(numbered_rows)):
                raise _damaged(path, where, f"end record {record} does not match the {len(numbered_rows)} rows")
            contents.complete = True
        else:
            raise _damaged(path, where, "neither a row (no 'index') nor the end record")
    _check_rows(path, numbered_rows, config, fingerprint)
    contents.rows = [row for _, row in numbered_rows]
    return contents


def _parse_not_a_log(path: Path, data: bytes, head: Any, head_problem: str) -> _Contents:
    """A file whose first line is not a header: the first format, or an error saying what the file holds."""
    try:
        whole = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        whole = _NOT_JSON
    if isinstance(whole, dict) and whole.get("format") == _OLD_FORMAT:
        return _parse_old_format(path, whole)
    value, where = (whole, None) if whole is not _NOT_JSON else (head, "line 1")
    if value is _NOT_JSON:
        raise _damaged(path, where, head_problem)
    if isinstance(value, dict):
        has_format = "format" in value
        problem = f"format {value['format']!r}, not {_FORMAT!r}" if has_format else "a JSON object without 'format'"
    else:
        problem = f"{_kind_of(value)}, not the results of over_dataset"
    raise _damaged(path, where, problem)


def _parse_old_format(path: Path, data: dict) -> _Contents:
    """A file of the first format: one JSON object with ``format``, ``config``, ``complete``, ``rows``."""
    if not isinstance(data.get("config"), dict):
        raise _damaged(path, None, "no 'config' object")
    if not isinstance(data.get("rows"), list):
        raise _damaged(path, None, "no 'rows' array")
    if not isinstance(data.get("complete", False), bool):
        raise _damaged(path, None, "'complete' is not true or false")
    fingerprint = {"count": None, "first_batch_sha256": None}
    rows = list(data["rows"])
    _check_rows(path, [(f"row {k}", row) for k, row in enumerate(rows)], data["config"], fingerprint)
    return _Contents(data["config"], fingerprint, rows, bool(data.get("complete", False)), old_format=True)


def _check_header(path: Path, header: dict) -> tuple:
    """``(config, fingerprint)`` of a header line, checked."""
    if not isinstance(header.get("config"), dict):
        raise _damaged(path, "line 1", "the header has no 'config' object")
    fingerprint = header.get("dataset")
    if not isinstance(fingerprint, dict) or not {"count", "first_batch_sha256"} <= fingerprint.keys():
        raise _damaged(path, "line 1", "the header has no 'dataset' object with 'count' and 'first_batch_sha256'")
    count, digest = fingerprint["count"], fingerprint["first_batch_sha256"]
    if count is not None and not (_is_int(count) and count >= 0):
        raise _damaged(path, "line 1", f"the data set's count {count!r} is not a count")
    if digest is not None and not (isinstance(digest, str) and len(digest) == 64):
        raise _damaged(path, "line 1", f"the first batch's hash {digest!r} is not a sha256")
    return header["config"], {"count": count, "first_batch_sha256": digest}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_rows(path: Path, numbered_rows: list, config: dict, fingerprint: dict) -> None:
    """Check ``[(where, row), ...]``: keys and types, indices in range and each index once."""
    count = fingerprint.get("count")
    with_backprop = config.get("backprop")
    first_seen: dict = {}
    for where, row in numbered_rows:
        if not isinstance(row, dict):
            raise _damaged(path, where, f"{_kind_of(row)}, not a row")
        missing = [key for key in ("index", "loss", "trace") if key not in row]
        if with_backprop:
            missing += [] if "backprop" in row else ["backprop"]
        if missing:
            raise _damaged(path, where, f"the row has no {', '.join(repr(k) for k in missing)}")
        index = row["index"]
        if not _is_int(index):
            raise _damaged(path, where, f"index {index!r} is not an integer")
        if index < 0 or (count is not None and index >= count):
            limit = "" if count is None else f" of the {count} items"
            raise _damaged(path, where, f"index {index} is out of the range{limit} of the data set")
        if index in first_seen:
            raise _damaged(path, where, f"index {index} again (first at {first_seen[index]}): it would count twice")
        first_seen[index] = where
        if not _is_number(row["loss"]):
            raise _damaged(path, where, f"loss {row['loss']!r} is not a number")
        for kind in ("trace", "backprop"):
            if kind in row:
                problem = _importance_problem(row[kind])
                if problem:
                    raise _damaged(path, where, f"'{kind}' {problem}")
        if with_backprop is False and "backprop" in row:
            raise _damaged(path, where, "a 'backprop' column in a run without backprop")
        spec = config.get("shares")
        for kind in ("shares", "shares_backprop"):
            wanted = spec is not None and (kind == "shares" or spec.get("backprop"))
            if wanted and kind not in row:
                raise _damaged(path, where, f"the row has no {kind!r}")
            if kind in row and not wanted:
                raise _damaged(path, where, f"a {kind!r} column in a run without it")
            problem = _shares_problem(row[kind]) if kind in row else None
            if problem:
                raise _damaged(path, where, f"{kind!r} {problem}")


def _importance_problem(data: Any) -> str | None:
    """What keeps ``data`` from being a :meth:`ComponentImportance.to_dict` (None: nothing).

    >>> _importance_problem({"counts": {"a": 1.0}, "paths": 1, "elements": 1}) is None
    True
    >>> _importance_problem({"counts": [], "paths": 1, "elements": 1})
    "has no 'counts' object of numbers"
    """
    if not isinstance(data, dict):
        return f"is {_kind_of(data)}, not an object"
    counts = data.get("counts")
    if not isinstance(counts, dict) or not all(_is_number(v) for v in counts.values()):
        return "has no 'counts' object of numbers"
    for key in ("paths", "elements"):
        if not _is_int(data.get(key)):
            return f"has no integer {key!r}"
    for key in ("kind", "grouped_by"):
        if key in data and not isinstance(data[key], str):
            return f"has a {key!r} that is not a string"
    groups = data.get("groups", {})
    if not isinstance(groups, dict):
        return "has a 'groups' that is not an object"
    for label, group in groups.items():
        problem = _importance_problem(group)
        if problem:
            return f"group {label!r} {problem}"
    return None


def _shares_problem(data: Any) -> str | None:
    """What keeps ``data`` from being a :meth:`PathShares.to_dict` (None: nothing).

    >>> _shares_problem({"counts": {"a": 1, "none": 0}, "total": 1}) is None, _shares_problem({"counts": {}})
    (True, "has no number 'total'")
    """
    if not isinstance(data, dict):
        return f"is {_kind_of(data)}, not an object"
    counts = data.get("counts")
    if not isinstance(counts, dict) or not all(_is_number(v) for v in counts.values()):
        return "has no 'counts' object of numbers"
    if not _is_number(data.get("total")):
        return "has no number 'total'"
    return None


def _header(config: dict, fingerprint: dict) -> dict:
    return {"format": _FORMAT, "config": config, "dataset": fingerprint}


def _end_record(samples: int) -> dict:
    return {"complete": True, "samples": samples}


def _line(record: dict) -> bytes:
    """One record as one line of compact JSON.

    >>> _line({"index": 3, "loss": 0.5})
    b'{"index":3,"loss":0.5}\\n'
    """
    return json.dumps(record, separators=(",", ":")).encode() + b"\n"


# -- writing results files -----------------------------------------------------------------------------


class _ResultsLog:
    """A results file held open for one run: locked (``fcntl.flock``, exclusive, non-blocking),
    read, appended to with one ``write()`` per record, or replaced atomically."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = self._open_locked()

    def _open_locked(self) -> int:
        for _ in range(100):  # the file can be replaced between open() and flock(): then try the new one
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0), 0o666)
            if fcntl is None:
                return fd
            if not _lock(fd):
                os.close(fd)
                raise ResultsFileBusyError(f"another over_dataset run is writing {self.path} (it holds its lock)")
            if _same_file(fd, self.path):
                return fd
            os.close(fd)
        raise ResultsFileBusyError(f"another over_dataset run keeps replacing {self.path}")

    def __enter__(self) -> _ResultsLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the lock (closing the file does)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def read(self) -> bytes:
        """The whole file."""
        os.lseek(self.fd, 0, os.SEEK_SET)
        chunks = []
        while chunk := os.read(self.fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)

    def truncate(self, size: int) -> None:
        """Cut the file to ``size`` bytes (appending continues there)."""
        os.ftruncate(self.fd, size)

    def append(self, record: dict) -> None:
        """One line, one ``write()``: when it returns the line is the kernel's, safe from a killed process."""
        _write_all(self.fd, _line(record))

    def replace(self, data: bytes) -> None:
        """Replace the file's contents: a new file, locked before anyone can see it, renamed over it."""
        for _ in range(100):
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
            try:
                fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_BINARY", 0), 0o666)
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover - 100 collisions of 32 random bits
            raise FileExistsError(f"no free temporary name next to {self.path}")
        tmp_open = True
        try:
            if fcntl is not None:
                _lock(fd)  # nobody else knows the file yet: it is ours before it gets its name
            _write_all(fd, data)
            os.fsync(fd)
            if fcntl is None:  # there, an open file can be neither renamed nor replaced
                os.close(fd)
                tmp_open = False
                self.close()
            os.replace(tmp, self.path)
        except BaseException:
            if tmp_open:
                os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        if fcntl is None:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | getattr(os, "O_BINARY", 0))
        self.close()  # the lock of the replaced file goes; the new one is held since its creation
        self.fd = fd


def _lock(fd: int) -> bool:
    """Take the exclusive lock of an open file without waiting; False when somebody holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the open file ``fd`` (it was not replaced, nor removed)."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def _write_all(fd: int, data: bytes) -> None:
    written = os.write(fd, data)
    while written < len(data):  # a regular file takes it all at once, short of a full disk
        written += os.write(fd, data[written:])


class _Checkpoint:
    """The results file of one :func:`over_dataset` run: what is done, and the appending of what is new.

    Opening locks the file and, with ``resume``, reads and checks it (its format, configuration
    and data set length) without changing it. :meth:`start` compares the first batch's hash with
    the file's, then readies the file for appending: a new file, an old-format one or one whose
    fingerprint was incomplete is rewritten once (atomically); otherwise a partial last line and
    the end record are cut off.
    """

    def __init__(self, path: Path, config: dict, count: int | None, resume: bool):
        self.path = path
        self.config = config
        self.count = count
        self.started = False
        self.log = _ResultsLog(path)
        try:
            contents = _parse(path, self.log.read()) if resume else _Contents()
            self._check(contents)
        except BaseException:
            self.log.close()
            raise
        self.contents = contents
        self.rows = contents.rows
        self.fingerprint = {"count": count, "first_batch_sha256": None}

    def _check(self, contents: _Contents) -> None:
        if contents.config is None:
            return
        if contents.config != self.config:
            raise ResultsFileError(
                f"{self.path} holds results of another configuration ({contents.config}); "
                f"remove it or pass resume=False to start again with {self.config}"
            )
        stored = contents.fingerprint["count"]
        if stored is not None and self.count is not None and stored != self.count:
            raise DatasetChangedError(
                f"{self.path} holds results of a data set of {stored} items, this one has {self.count}: "
                "the data set changed; pass resume=False or remove the file to start again"
            )
        if self.count is not None:
            beyond = [r["index"] for r in contents.rows if r["index"] >= self.count]
            if beyond:
                raise DatasetChangedError(
                    f"{self.path} holds a row of index {beyond[0]}, out of the range of this data set of "
                    f"{self.count} items: the data set changed; pass resume=False or remove the file to start again"
                )

    def start(self, first_batch_digest: str | None) -> None:
        """Called with the first batch's hash (None: the data set is empty) before anything is traced."""
        stored = self.contents.fingerprint or {"count": None, "first_batch_sha256": None}
        recorded = stored["first_batch_sha256"]
        if recorded is not None and first_batch_digest != recorded:
            now = "none (the data set is empty)" if first_batch_digest is None else f"sha256 {first_batch_digest[:12]}…"
            raise DatasetChangedError(
                f"{self.path} holds results of another data set (its first batch differs: sha256 {recorded[:12]}… "
                f"in the file, {now} now): the data set changed; pass resume=False or remove the file to start again"
            )
        self.fingerprint = {
            "count": self.count if self.count is not None else stored["count"],
            "first_batch_sha256": first_batch_digest or stored["first_batch_sha256"],
        }
        if self.contents.config is None or self.contents.old_format or self.fingerprint != stored:
            self.log.replace(b"".join(_line(record) for record in [_header(self.config, self.fingerprint), *self.rows]))
        else:
            self.log.truncate(self.contents.rows_end)
        self.started = True

    def check_index(self, index: int) -> None:
        """Refuse to trace an item past the data set's recorded length (an iterator longer than before)."""
        count = self.fingerprint["count"]
        if count is not None and index >= count:
            raise DatasetChangedError(
                f"{self.path} holds results of a data set of {count} items, this one has more: the data set "
                "changed; pass resume=False or remove the file to start again"
            )

    def append(self, row: dict) -> None:
        """Append one sample's row (one ``write()``)."""
        self.log.append(row)

    def finish(self, samples: int) -> None:
        """Mark the run complete: the end record."""
        self.log.append(_end_record(samples))

    def close(self) -> None:
        """Release the file and its lock."""
        self.log.close()
