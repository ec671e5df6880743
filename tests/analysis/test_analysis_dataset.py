"""over_dataset: per-sample rows, mean/std, progress bars, and stop/resume from a partial file."""

from __future__ import annotations

import io

import numpy as np
import pytest

import semirad as sr
import semirad.nn.functional as F
from semirad import nn
from semirad.analysis import DatasetImportance, component_importance, over_dataset, progress_bar


def setup(n=6):
    sr.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((2, 3)), rng.integers(0, 2, 2)) for _ in range(n)]

    def model_fn(batch):
        x, y = batch
        with sr.component("loss"):
            pass
        return F.cross_entropy(model(x), y)

    return model, batches, model_fn


def test_rows_mean_and_std_match_tracing_each_batch_directly():
    model, batches, model_fn = setup()
    result = over_dataset(model_fn, batches, model, progress=False, backprop=True)
    assert len(result) == 6 and result.complete
    direct = []
    for b in batches:
        loss = model_fn(b)
        direct.append(component_importance(sr.trace(loss, list(model.parameters())), model))
    for row, imp in zip(result.rows, direct):
        assert row["trace"]["counts"] == pytest.approx(imp.counts)
        assert "backprop" in row
    for comp in direct[0].counts:
        shares = np.array([imp.shares.get(comp, 0.0) for imp in direct])
        assert result.mean()[comp] == pytest.approx(shares.mean())
        assert result.std()[comp] == pytest.approx(shares.std())
    assert sum(result.mean().values()) == pytest.approx(1.0)
    assert sum(result.mean("backprop").values()) == pytest.approx(1.0)
    assert result.pooled().total == pytest.approx(sum(imp.total for imp in direct))
    kinds = {r["kind"] for r in result.records()}
    assert kinds == {"trace", "backprop"}
    assert "mean ± std" in result.table() and "index" in result.sample_table()


def test_stop_and_resume_from_the_partial_file(tmp_path):
    model, batches, model_fn = setup()
    path = tmp_path / "partial.json"
    calls = []

    def counting(batch):
        calls.append(1)
        return model_fn(batch)

    first = over_dataset(counting, batches, model, path=path, limit=2, progress=False, group=1)
    assert len(first) == 2 and not first.complete and len(calls) == 2
    saved = DatasetImportance.load(path)
    assert [r["index"] for r in saved.rows] == [0, 1] and not saved.complete

    # an interruption in the middle of the next run leaves what was done on disk
    def interrupting(batch):
        if len(calls) == 4:
            raise KeyboardInterrupt
        return counting(batch)

    with pytest.raises(KeyboardInterrupt):
        over_dataset(interrupting, batches, model, path=path, progress=False, group=1)
    assert [r["index"] for r in DatasetImportance.load(path).rows] == [0, 1, 2, 3]

    resumed = over_dataset(counting, iter(batches), model, path=path, progress=False, group=1)  # a generator too
    assert resumed.complete and len(resumed) == 6 and len(calls) == 6  # nothing traced twice
    fresh = over_dataset(model_fn, batches, model, progress=False, group=1)
    assert [r["trace"] for r in resumed.rows] == [r["trace"] for r in fresh.rows]
    assert resumed.mean() == pytest.approx(fresh.mean())
    assert DatasetImportance.load(path).complete

    with pytest.raises(ValueError, match="another configuration"):
        over_dataset(model_fn, batches, model, path=path, progress=False, group=None)
    again = over_dataset(model_fn, batches, model, path=path, progress=False, resume=False)
    assert len(again) == 6


def test_k_best_semiring_and_parameter_groups():
    model, batches, model_fn = setup(2)
    result = over_dataset(model_fn, batches, {"first": model[0], "last": model[2]},
                          semiring=sr.semirings.KBest(2), progress=False)  # fmt: skip
    row = result.rows[0]["trace"]
    assert row["kind"] == "k-best(2)" and set(row["groups"]) == {"first", "last"}


def test_plain_progress_bar_and_the_silent_one():
    out = io.StringIO()
    with progress_bar(20, "work", backend="plain", file=out) as bar:
        for _ in range(20):
            bar.update()
            bar.set_postfix(loss=0.5)
    lines = out.getvalue().splitlines()
    assert lines[-1].startswith("work [########################] 20/20") and "loss=0.5" in lines[-1]
    assert 2 <= len(lines) <= 12  # not a tty: about one line per 10 %
    bar = progress_bar(None, enable=False)
    bar.update(3)
    assert bar.n == 3
    with pytest.raises(ValueError):
        progress_bar(3, backend="nope")


def test_tqdm_backend_when_installed():
    pytest.importorskip("tqdm")
    out = io.StringIO()
    with progress_bar(3, "t", backend="tqdm", file=out) as bar:
        bar.update(3)
        bar.set_postfix(x=1.0)
    assert "3/3" in out.getvalue()
