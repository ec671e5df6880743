"""over_dataset(..., executor=...): the same rows and statistics as a serial run, rows written as
they arrive, a failed or killed worker loses only the samples in flight, a resume neither loses nor
double-counts, and each worker replays a compiled graph."""

from __future__ import annotations

import concurrent.futures as cf
import functools
import json
import os
import threading
import time

import numpy as np
import pytest

import semirad as sr
from semirad.analysis import dataset as D
from semirad.analysis import over_dataset


def make_model():
    sr.manual_seed(0)
    nn = sr.nn
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 2))


def loss_of(model, batch, fail_at=None, exit_at=None):
    """The per-sample loss (module level: a process pool pickles it with the model)."""
    x, y = batch
    if fail_at is not None and float(np.asarray(x.data if isinstance(x, sr.Tensor) else x)[0]) == fail_at:
        raise RuntimeError("a sample that fails")
    if exit_at is not None and float(np.asarray(x.data if isinstance(x, sr.Tensor) else x)[0]) == exit_at:
        os._exit(3)  # a worker that dies
    return ((model(x) - y) ** 2).mean()


def batches(n=24, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(4), rng.standard_normal(2)) for _ in range(n)]


def _key(result):
    return [json.dumps(r, sort_keys=True) for r in result.rows]


@pytest.fixture(scope="module")
def serial():
    model = make_model()
    return over_dataset(functools.partial(loss_of, model), batches(), progress=False, backprop=True)


@pytest.mark.parametrize("pool", ["thread", "process"])
def test_executor_gives_the_serial_rows(serial, pool, tmp_path):
    model = make_model()
    make = cf.ThreadPoolExecutor if pool == "thread" else cf.ProcessPoolExecutor
    with make(2) as executor:
        result = over_dataset(functools.partial(loss_of, model), batches(), progress=False, backprop=True,
                              executor=executor, path=tmp_path / "r.jsonl")  # fmt: skip
    assert result.complete and len(result) == 24
    assert _key(result) == _key(serial)  # bit for bit: compiled replay == eager
    assert result.mean() == serial.mean() and result.std() == serial.std()
    reloaded = D.DatasetImportance.load(tmp_path / "r.jsonl")
    assert _key(reloaded) == _key(serial)


def test_serial_compiled_equals_eager(serial):
    model = make_model()
    result = over_dataset(functools.partial(loss_of, model), batches(), progress=False, backprop=True, compile=True)
    assert _key(result) == _key(serial)


def test_an_error_in_a_sample_keeps_the_rows_done_and_a_resume_completes(serial, tmp_path):
    model = make_model()
    data = batches()
    file = tmp_path / "r.jsonl"
    failing = functools.partial(loss_of, model, fail_at=float(data[13][0][0]))
    with cf.ThreadPoolExecutor(2) as executor:
        with pytest.raises(RuntimeError, match="a sample that fails"):
            # (eager: a compiled graph would not run the Python test of the data, docs/compile.md)
            over_dataset(failing, data, progress=False, backprop=True, executor=executor, path=file, in_flight=3,
                         compile=False)
    kept = [json.loads(line) for line in file.read_bytes().splitlines()[1:]]
    indices = [r["index"] for r in kept]
    assert 13 not in indices and len(indices) == len(set(indices)) and len(indices) >= 10
    with cf.ThreadPoolExecutor(2) as executor:
        result = over_dataset(functools.partial(loss_of, model), data, progress=False, backprop=True,
                              executor=executor, path=file)  # fmt: skip
    assert result.complete and _key(result) == _key(serial)
    lines = [json.loads(line) for line in file.read_bytes().splitlines()[1:]]
    assert sorted(r["index"] for r in lines if "index" in r) == list(range(24))  # each once
    assert lines[-1] == {"complete": True, "samples": 24}


def test_a_killed_worker_loses_only_samples_in_flight(serial, tmp_path):
    model = make_model()
    data = batches()
    file = tmp_path / "r.jsonl"
    dying = functools.partial(loss_of, model, exit_at=float(data[17][0][0]))
    with cf.ProcessPoolExecutor(2) as executor:
        with pytest.raises(cf.process.BrokenProcessPool):
            over_dataset(dying, data, progress=False, backprop=True, executor=executor, path=file, in_flight=2,
                         compile=False)
    done = [json.loads(line)["index"] for line in file.read_bytes().splitlines()[1:]]
    assert len(done) == len(set(done)) and 17 not in done and len(done) >= 12
    with cf.ProcessPoolExecutor(2) as executor:
        result = over_dataset(functools.partial(loss_of, model), data, progress=False, backprop=True,
                              executor=executor, path=file)  # fmt: skip
    assert result.complete and _key(result) == _key(serial)


def test_each_worker_compiles_once_per_batch_signature():
    model = make_model()
    work = D._Work(functools.partial(loss_of, model), None, sr.semirings.MaxAbsProduct(), None, False, None,
                   True, False)  # fmt: skip
    data = batches(8)
    threads = [threading.Thread(target=D._run_sample, args=(work, i, b)) for i, b in enumerate(data)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    local = D._local_work(work)
    assert len(local.graphs) == 1
    (graph,) = local.graphs.values()
    assert graph.stats()["instances"] >= 1
    D._WORKERS.pop(work.token, None)


def test_moments_merge_exactly():
    rng = np.random.default_rng(0)
    values = rng.standard_normal(1000)
    parts = np.array_split(values, 7)
    merged = D.Moments()
    for p in parts:
        merged = merged.merge(D.Moments.of(p))
    assert merged.count == 1000
    assert np.isclose(merged.mean, values.mean(), rtol=1e-14, atol=1e-16)
    assert np.isclose(merged.std, values.std(), rtol=1e-13)
    swapped = D.Moments.of(parts[1]).merge(D.Moments.of(parts[0]))
    assert np.isclose(swapped.std, np.concatenate(parts[:2]).std(), rtol=1e-13)


def test_result_moments_match_mean_and_std(serial):
    for c, m in serial.moments().items():
        assert m.count == len(serial)
        assert np.isclose(m.mean, serial.mean()[c], rtol=1e-13) and np.isclose(m.std, serial.std()[c], rtol=1e-12)


def test_dask_local_cluster(serial, tmp_path):
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None)  # fmt: skip
    with cluster, distributed.Client(cluster) as client:
        model = make_model()
        result = over_dataset(functools.partial(loss_of, model), batches(), progress=False, backprop=True,
                              executor=client, path=tmp_path / "r.jsonl")  # fmt: skip
        # the driver's view of tasks on Dask: a task's own (rows, error), a task that raised, a cancelled one
        tasks = D._InFlight(dask=True)
        tasks.add(client.submit(_rows_and_no_error, pure=False))
        tasks.add(client.submit(_raises, pure=False))
        outcomes = tasks.finished() + tasks.finished()
        slow = client.submit(time.sleep, 30, pure=False)
        tasks.add(slow)
        slow.cancel()
        outcomes += tasks.finished()
    assert result.complete and _key(result) == _key(serial)
    assert len(tasks) == 0 and ([{"index": 7}], None) in outcomes
    errors = [error for rows, error in outcomes if error is not None]
    assert len(errors) == 2 and all(rows == [] for rows, error in outcomes if error is not None)
    assert any(isinstance(e, ValueError) and "a task that raised" in str(e) for e in errors)
    assert any("Cancelled" in type(e).__name__ for e in errors), [type(e) for e in errors]


def _rows_and_no_error():
    return [{"index": 7}], None


def _raises():
    raise ValueError("a task that raised")
