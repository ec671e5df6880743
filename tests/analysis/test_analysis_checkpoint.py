"""over_dataset's results file: an append-only log that survives a killed process, refuses damaged
files, other data sets and a second writer, reads the first format, and costs one line per sample."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import semirad as sr
from semirad.analysis import DatasetImportance, over_dataset
from semirad.analysis import dataset as dataset_module
from semirad.analysis.dataset import (
    DatasetChangedError,
    ResultsFileBusyError,
    ResultsFileError,
    _batch_digest,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: results files are not locked there
    fcntl = None

REPO = Path(__file__).resolve().parents[2]
needs_locks = pytest.mark.skipif(fcntl is None, reason="no fcntl: results files are not locked")

#: the tiny problem, as a script: the killed child runs it, this process imports it to resume
TINY_PROBLEM = '''
import sys
import time

import numpy as np

import semirad as sr
from semirad import nn
from semirad.analysis import over_dataset


def problem(samples=40):
    sr.manual_seed(0)
    model = nn.Linear(4, 2)
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((3, 4)), rng.standard_normal((3, 2))) for _ in range(samples)]

    def loss_of(batch):
        x, target = batch
        error = model(x) - target
        with sr.component("loss"):
            return (error * error).sum()

    return model, batches, loss_of


if __name__ == "__main__":
    model, batches, loss_of = problem()

    def slowly(batch):
        time.sleep(0.05)
        return loss_of(batch)

    over_dataset(slowly, batches, model, path=sys.argv[1], progress=False)
'''


@pytest.fixture
def tiny(tmp_path):
    """The module of TINY_PROBLEM (its file is ``tiny.__file__``)."""
    script = tmp_path / "tiny_problem.py"
    script.write_text(TINY_PROBLEM)
    spec = importlib.util.spec_from_file_location("tiny_problem", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def counting(loss_of, calls: list):
    def counted(batch):
        calls.append(1)
        return loss_of(batch)

    return counted


def row_lines(path: Path) -> int:
    """Complete row lines in a results file (0 when it does not exist yet)."""
    if not path.exists():
        return 0
    return sum(1 for line in path.read_bytes().split(b"\n")[:-1] if line.startswith(b'{"index"'))


def indices_on_disk(path: Path) -> list:
    """The index of every row line, in file order (each line must be valid JSON)."""
    data = path.read_bytes()
    assert data.endswith(b"\n")
    records = [json.loads(line) for line in data.split(b"\n")[:-1]]
    return [r["index"] for r in records if "index" in r]


# -- crash safety ----------------------------------------------------------------------------------------


def test_a_killed_run_resumes_to_the_result_of_an_uninterrupted_one(tmp_path, tiny):
    path = tmp_path / "killed.jsonl"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    child = subprocess.Popen([sys.executable, tiny.__file__, str(path)], cwd=REPO, env=env)
    model, batches, loss_of = tiny.problem()
    try:
        deadline = time.monotonic() + 120
        while row_lines(path) < 5:
            assert child.poll() is None, "the child ended before it could be killed"
            assert time.monotonic() < deadline, "the child wrote no rows"
            time.sleep(0.01)
        if fcntl is not None:  # while it runs, a second writer (this process) is refused
            busy = f"another over_dataset run is writing {re.escape(str(path))}"
            with pytest.raises(ResultsFileBusyError, match=busy):
                over_dataset(loss_of, batches, model, path=path, progress=False)
        assert child.poll() is None
        os.kill(child.pid, signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL

    before = DatasetImportance.load(path)
    assert 5 <= len(before) < len(batches) and not before.complete
    calls: list = []
    resumed = over_dataset(counting(loss_of, calls), batches, model, path=path, progress=False)
    fresh = over_dataset(loss_of, batches, model, progress=False)
    assert len(calls) == len(batches) - len(before)  # what the child finished is not traced again
    assert resumed.complete and resumed.rows == fresh.rows
    assert resumed.mean() == fresh.mean() and resumed.std() == fresh.std()
    assert sorted(indices_on_disk(path)) == list(range(len(batches)))  # every index exactly once
    reloaded = DatasetImportance.load(path)
    assert reloaded.complete and reloaded.rows == fresh.rows


def test_a_file_cut_in_the_middle_of_a_line_resumes(tmp_path, tiny):
    model, batches, loss_of = tiny.problem(8)
    path = tmp_path / "cut.jsonl"
    over_dataset(loss_of, batches, model, path=path, limit=3, progress=False)
    data = path.read_bytes()
    path.write_bytes(data[:-10])  # the third row, cut short by a crash
    assert [r["index"] for r in DatasetImportance.load(path).rows] == [0, 1]
    assert not DatasetImportance.load(path).complete

    calls: list = []
    resumed = over_dataset(counting(loss_of, calls), batches, model, path=path, progress=False)
    assert len(calls) == 6 and resumed.complete
    assert resumed.rows == over_dataset(loss_of, batches, model, progress=False).rows
    assert indices_on_disk(path) == list(range(8))  # the cut line is gone, not left in the middle


def test_a_header_cut_short_starts_the_run_again(tmp_path, tiny):
    model, batches, loss_of = tiny.problem(4)
    path = tmp_path / "cut-header.jsonl"
    over_dataset(loss_of, batches, model, path=path, limit=1, progress=False)
    path.write_bytes(path.read_bytes()[:25])
    with pytest.raises(ResultsFileError, match="empty"):
        DatasetImportance.load(path)
    calls: list = []
    assert len(over_dataset(counting(loss_of, calls), batches, model, path=path, progress=False)) == 4
    assert len(calls) == 4 and indices_on_disk(path) == [0, 1, 2, 3]


# -- damaged files -----------------------------------------------------------------------------------------


def _edit_lines(edit):
    """A damage that edits the list of a file's records (JSON values) and writes them back, one a line."""

    def damage(data: bytes) -> bytes:
        records = [json.loads(line) for line in data.split(b"\n")[:-1]]
        edit(records)
        return b"".join(json.dumps(r).encode() + b"\n" for r in records)

    return damage


def _insert(position: int, line: bytes):
    """A damage that inserts a raw line before line ``position`` (0: the first)."""

    def damage(data: bytes) -> bytes:
        lines = data.split(b"\n")
        return b"\n".join(lines[:position] + [line] + lines[position:])

    return damage


def _set(line: int, key, value):
    def edit(records):
        if value is KeyError:
            del records[line][key]
        else:
            records[line][key] = value

    return _edit_lines(edit)


DAMAGES = {
    "an empty JSON array": lambda data: b"[]",
    "JSON null": lambda data: b"null\n",
    "a number": lambda data: b"3.5",
    "an object without keys": lambda data: b"{}\n",
    "another format": lambda data: b'{"format": "something/else"}\n',
    "a header without config": lambda data: b'{"format":"semirad.analysis.over_dataset/2"}\n' + data.split(b"\n", 1)[1],
    "a header without dataset": _set(0, "dataset", KeyError),
    "a header with a bad count": _set(0, "dataset", {"count": -1, "first_batch_sha256": None}),
    "a garbage line in the middle": _insert(2, b"garbage"),
    "an empty line in the middle": _insert(2, b""),
    "bytes that are not UTF-8": _insert(1, b"\xff\xfe"),
    "a line that is an array": lambda data: data + b"[1, 2]\n",
    "a duplicated row": _edit_lines(lambda records: records.insert(2, records[1])),
    "a negative index": _set(1, "index", -1),
    "an index past the data set": _set(1, "index", 8),
    "an index that is a string": _set(1, "index", "0"),
    "an index that is a boolean": _set(1, "index", True),
    "a row without trace": _set(2, "trace", KeyError),
    "a row without loss": _set(2, "loss", KeyError),
    "a loss that is a string": _set(2, "loss", "small"),
    "a trace that is a list": _set(2, "trace", []),
    "counts that are a list": _set(2, "trace", {"counts": [], "paths": 1, "elements": 1}),
    "paths that are a string": _set(2, "trace", {"counts": {"a": 1.0}, "paths": "1", "elements": 1}),
    "a record that is neither row nor end": _edit_lines(lambda records: records.append({"note": 1})),
    "an end record that miscounts": _edit_lines(lambda records: records.append({"complete": True, "samples": 9})),
    "a row after the end record": _edit_lines(
        lambda records: records.extend([{"complete": True, "samples": 3}, dict(records[1], index=5)])
    ),
    "an old-format file without rows": lambda data: json.dumps(
        {"format": "semirad.analysis.over_dataset/1", "config": {}, "complete": False}
    ).encode(),
    "an old-format file with a duplicated row": lambda data: json.dumps(
        {"format": "semirad.analysis.over_dataset/1", "config": json.loads(data.split(b"\n")[0])["config"],
         "rows": [json.loads(data.split(b"\n")[1])] * 2}  # fmt: skip
    ).encode(),
}


@pytest.mark.parametrize("damage", list(DAMAGES), ids=list(DAMAGES))
def test_a_damaged_file_raises_a_value_error_naming_it(tmp_path, tiny, damage):
    model, batches, loss_of = tiny.problem(8)
    path = tmp_path / "damaged.jsonl"
    over_dataset(loss_of, batches, model, path=path, limit=3, progress=False)
    path.write_bytes(DAMAGES[damage](path.read_bytes()))
    damaged = path.read_bytes()
    with pytest.raises(ResultsFileError, match=re.escape(str(path))) as loading:
        DatasetImportance.load(path)
    assert isinstance(loading.value, ValueError)
    calls: list = []
    with pytest.raises(ValueError, match=re.escape(str(path))):
        over_dataset(counting(loss_of, calls), batches, model, path=path, progress=False)
    assert calls == [] and path.read_bytes() == damaged  # refused before anything was traced or written
    assert len(over_dataset(loss_of, batches, model, path=path, resume=False, progress=False)) == 8


def test_errors_say_which_line(tmp_path, tiny):
    model, batches, loss_of = tiny.problem(8)
    path = tmp_path / "lines.jsonl"
    over_dataset(loss_of, batches, model, path=path, limit=3, progress=False)
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join(lines[:2] + [b"{not json"] + lines[2:]))
    with pytest.raises(ValueError, match=r"line 3: not valid JSON"):
        DatasetImportance.load(path)
    path.write_bytes(b"\n".join(lines[:3] + [lines[1]] + lines[3:]))
    with pytest.raises(ValueError, match=r"line 4: index 0 again \(first at line 2\)"):
        DatasetImportance.load(path)


def test_rows_past_a_shorter_data_set_are_refused(tmp_path, tiny):
    model, batches, loss_of = tiny.problem(8)
    path = tmp_path / "iterated.jsonl"
    over_dataset(loss_of, iter(batches), model, path=path, limit=3, progress=False)  # no len: count unknown
    assert DatasetImportance.load(path).fingerprint["count"] is None
    with pytest.raises(DatasetChangedError, match="index 2, out of the range of this data set of 2 items"):
        over_dataset(loss_of, batches[:2], model, path=path, progress=False)


def test_save_refuses_rows_that_load_would_refuse(tmp_path, tiny):
    model, batches, loss_of = tiny.problem(2)
    result = over_dataset(loss_of, batches, model, progress=False)
    twice = DatasetImportance(result.rows + result.rows[:1], result.config)
    with pytest.raises(ValueError, match="index 0 again"):
        twice.save(tmp_path / "twice.jsonl")
    assert not (tmp_path / "twice.jsonl").exists()
    unwritable = DatasetImportance(result.rows, dict(result.config, note=object()))
    with pytest.raises(TypeError):
        unwritable.save(tmp_path / "unwritable.jsonl")
    assert not (tmp_path / "unwritable.jsonl").exists()  # nothing half-written, not even an empty file


# -- one writer at a time ------------------------------------------------------------------------------------


@needs_locks
def test_a_second_writer_is_refused_while_the_lock_is_held(tmp_path, tiny):
    model, batches, loss_of = tiny.problem(4)
    path = tmp_path / "locked.jsonl"
    over_dataset(loss_of, batches, model, path=path, limit=2, progress=False)
    before = path.read_bytes()
    with open(path, "ab") as other:  # another open file description, as another process would have
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(ResultsFileBusyError, match=f"another over_dataset run is writing {re.escape(str(path))}"):
            over_dataset(loss_of, batches, model, path=path, progress=False)
        with pytest.raises(ResultsFileBusyError):
            DatasetImportance.load(path).save(path)
        with pytest.raises(ResultsFileBusyError):  # resume=False does not break in either
            over_dataset(loss_of, batches, model, path=path, resume=False, progress=False)
    assert path.read_bytes() == before
    assert over_dataset(loss_of, batches, model, path=path, progress=False).complete  # free again


@needs_locks
def test_a_run_started_inside_a_run_on_the_same_file_is_refused(tmp_path, tiny):
    model, batches, loss_of = tiny.problem(4)
    path = tmp_path / "nested.jsonl"

    def nested(batch):
        if batch is batches[2]:
            over_dataset(loss_of, batches, model, path=path, progress=False)
        return loss_of(batch)

    with pytest.raises(ResultsFileBusyError):
        over_dataset(nested, batches, model, path=path, progress=False)
    assert indices_on_disk(path) == [0, 1]  # the outer run's rows are intact
    assert over_dataset(loss_of, batches, model, path=path, progress=False).complete


@needs_locks
def test_a_file_replaced_while_it_was_being_locked_is_opened_again(tmp_path, tiny, monkeypatch):
    model, batches, loss_of = tiny.problem(4)
    path = tmp_path / "replaced.jsonl"
    over_dataset(loss_of, batches, model, path=path, limit=2, progress=False)
    replacement = tmp_path / "replacement"
    replacement.write_bytes(path.read_bytes())
    real_lock = dataset_module._lock

    def lock_after_a_replace(fd):
        if replacement.exists():  # another writer replaces the file between our open() and flock()
            os.replace(replacement, path)
        return real_lock(fd)

    monkeypatch.setattr(dataset_module, "_lock", lock_after_a_replace)
    result = over_dataset(loss_of, batches, model, path=path, progress=False)
    assert result.complete and not replacement.exists()
    assert indices_on_disk(path) == [0, 1, 2, 3]  # the rows went to the file at path, not to the replaced one


def test_no_shared_temporary_file(tmp_path, tiny):
    model, batches, loss_of = tiny.problem(3)
    path = tmp_path / "results.jsonl"
    someone_elses = tmp_path / "results.jsonl.tmp"
    someone_elses.write_text("not ours")
    over_dataset(loss_of, batches, model, path=path, progress=False)
    DatasetImportance.load(path).save(path)
    over_dataset(loss_of, batches, model, path=path, resume=False, progress=False)
    assert someone_elses.read_text() == "not ours"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.jsonl", "results.jsonl.tmp", "tiny_problem.py"]


# -- another data set ----------------------------------------------------------------------------------------


def _changed_first_batch(batches):
    x, target = batches[0]
    x = x.copy()
    x[0, 0] += 1e-9
    return [(x, target)] + batches[1:]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(_changed_first_batch, id="first batch, list"),
        pytest.param(lambda b: iter(_changed_first_batch(b)), id="first batch, iterator"),
        pytest.param(lambda b: [(x.astype(np.float32), t) for x, t in b[:1]] + b[1:], id="first batch's dtype"),
        pytest.param(lambda b: b + b[:1], id="one more item"),
        pytest.param(lambda b: b[:-1], id="one item less"),
        pytest.param(lambda b: iter([]), id="an exhausted iterator"),
    ],
)
def test_a_changed_data_set_is_refused_on_resume(tmp_path, tiny, change):
    model, batches, loss_of = tiny.problem(6)
    path = tmp_path / "changed.jsonl"
    over_dataset(loss_of, batches, model, path=path, limit=2, progress=False)
    before = path.read_bytes()
    calls: list = []
    with pytest.raises(DatasetChangedError, match=f"{re.escape(str(path))}.*the data set changed.*resume=False"):
        over_dataset(counting(loss_of, calls), change(batches), model, path=path, progress=False)
    assert calls == [] and path.read_bytes() == before
    again = over_dataset(loss_of, change(batches), model, path=path, resume=False, progress=False)
    assert again.complete and DatasetImportance.load(path).fingerprint == again.fingerprint


def test_an_iterator_longer_than_the_recorded_data_set_is_refused_at_its_extra_item(tmp_path, tiny):
    model, batches, loss_of = tiny.problem(6)
    path = tmp_path / "longer.jsonl"
    over_dataset(loss_of, batches, model, path=path, limit=2, progress=False)
    with pytest.raises(DatasetChangedError, match="data set of 6 items, this one has more"):
        over_dataset(loss_of, iter(batches + batches[:1]), model, path=path, progress=False)
    assert indices_on_disk(path) == list(range(6))  # the file stays readable: no index 6 in it
    assert not DatasetImportance.load(path).complete


def test_the_same_data_set_resumes_from_a_list_or_an_iterator(tmp_path, tiny):
    model, batches, loss_of = tiny.problem(6)
    path = tmp_path / "same.jsonl"
    over_dataset(loss_of, batches, model, path=path, limit=2, progress=False)
    copies = [(x.copy(), t.copy()) for x, t in batches]  # equal contents, other objects
    over_dataset(loss_of, iter(copies), model, path=path, limit=2, progress=False)
    assert over_dataset(loss_of, copies, model, path=path, progress=False).complete
    fingerprint = DatasetImportance.load(path).fingerprint
    assert fingerprint == {"count": 6, "first_batch_sha256": _batch_digest(batches[0])}
    assert over_dataset(loss_of, batches, model, progress=False).fingerprint == fingerprint  # without a file too


def test_what_the_fingerprint_sees():
    x = np.arange(6.0).reshape(2, 3)
    assert _batch_digest(sr.tensor(x)) == _batch_digest(sr.tensor(x.copy()))
    assert _batch_digest(sr.tensor(x)) != _batch_digest(sr.tensor(x + 1))
    assert _batch_digest(x) != _batch_digest(x.reshape(3, 2))  # shape counts
    assert _batch_digest({"a": x, "b": [1, "two", None]}) == _batch_digest({"b": [1, "two", None], "a": x})
    assert _batch_digest((1, 2)) != _batch_digest([1, 2]) != _batch_digest((1, 2.0))
    assert _batch_digest(True) != _batch_digest(1)
    assert _batch_digest(np.array([1, "a"], dtype=object)) != _batch_digest(np.array([1, "b"], dtype=object))

    class Opaque:
        def __init__(self, value):
            self.value = value

    assert _batch_digest(Opaque(1)) == _batch_digest(Opaque(2))  # by its type only (documented)


# -- the first format ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("complete", [False, True])
def test_files_of_the_first_format_load_and_resume(tmp_path, tiny, complete):
    model, batches, loss_of = tiny.problem(6)
    done = over_dataset(loss_of, batches, model, limit=None if complete else 2, progress=False)
    path = tmp_path / "old.json"
    old = {"format": "semirad.analysis.over_dataset/1", "config": done.config, "complete": complete, "rows": done.rows}
    path.write_text(json.dumps(old, indent=1))  # as the first format wrote it

    loaded = DatasetImportance.load(path)
    assert loaded.rows == done.rows and loaded.complete == complete and loaded.config == done.config
    calls: list = []
    resumed = over_dataset(counting(loss_of, calls), batches, model, path=path, progress=False)
    assert len(calls) == (0 if complete else 4) and resumed.complete
    assert resumed.rows == over_dataset(loss_of, batches, model, progress=False).rows
    assert json.loads(path.read_bytes().split(b"\n")[0])["format"] == "semirad.analysis.over_dataset/2"  # converted
    assert indices_on_disk(path) == list(range(6)) and DatasetImportance.load(path).complete


# -- the cost: one line per sample ---------------------------------------------------------------------------


def test_each_sample_appends_one_line_and_nothing_is_rewritten(tmp_path, tiny, monkeypatch):
    model, batches, loss_of = tiny.problem(30)
    path = tmp_path / "cost.jsonl"
    snapshots = []

    def observed(batch):  # what the file holds before each sample
        snapshots.append((path.stat().st_ino, path.read_bytes()))
        return loss_of(batch)

    writes = []  # (inode written to, bytes)
    real_write = os.write

    def recorded_write(fd, data):
        writes.append((os.fstat(fd).st_ino, len(data)))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", recorded_write)
    over_dataset(observed, batches, model, path=path, limit=20, progress=False)
    middle = path.read_bytes()
    inode = path.stat().st_ino
    over_dataset(observed, batches, model, path=path, progress=False)
    monkeypatch.undo()
    final = path.read_bytes()

    to_file = [size for ino, size in writes if ino == inode]
    assert sum(to_file) == len(final)  # every byte of the file written once: no rewrite of earlier rows
    assert len(to_file) == 1 + 30 + 1  # the header, one write per row, the end record
    assert {ino for ino, _ in snapshots} == {inode} == {path.stat().st_ino}  # never replaced after the header
    states = [data for _, data in snapshots[:20]] + [middle] + [data for _, data in snapshots[20:]] + [final]
    for before, after in zip(states, states[1:]):
        assert after.startswith(before)  # append-only
    new_lines = [after.count(b"\n") - before.count(b"\n") for before, after in zip(states, states[1:])]
    assert new_lines == [1] * 20 + [0] + [1] * 9 + [2]  # a row per sample; the resume adds none; the end record
    assert final.endswith(b'\n{"complete":true,"samples":30}\n')
