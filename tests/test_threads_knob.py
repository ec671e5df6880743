"""The one knob of semirad's kernel threads (issue 20, item 2): ``SEMIRAD_NUM_THREADS`` and
``sr.set_num_threads`` / ``sr.get_num_threads``, honoured in whichever thread runs a kernel."""

import os
import pathlib
import subprocess
import sys
import threading

import numpy as np
import pytest

import semirad as sr
from semirad import kernels
from semirad.semirings.max_abs import dispatch, reference

ROOT = pathlib.Path(__file__).resolve().parents[1]

needs_numba = pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")


@pytest.fixture
def restore_setting():
    before = kernels._threads
    yield
    kernels._threads = before


def _import_with(value: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SEMIRAD_")}
    environ.update(PYTHONPATH=str(ROOT), SEMIRAD_NUM_THREADS=value, SEMIRAD_KERNELS="numpy")
    code = "import semirad as sr; print(sr.get_num_threads())"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ, cwd=ROOT,
                          timeout=120)


@pytest.mark.parametrize("value,want", [("1", 1), (" 3 ", 3), ("auto", None), ("", None)])
def test_the_environment_variable_sets_the_threads(value, want):
    out = _import_with(value)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == (want if want is not None else kernels._cores())


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_a_bad_environment_variable_is_a_clear_error(value):
    out = _import_with(value)
    assert out.returncode != 0
    assert "ValueError: SEMIRAD_NUM_THREADS must be a positive integer or 'auto'" in out.stderr


def test_the_function_sets_and_reads_the_threads(restore_setting):
    sr.set_num_threads(3)
    assert sr.get_num_threads() == 3 and kernels.get_num_threads() == 3
    sr.set_num_threads(np.int64(1))
    assert sr.get_num_threads() == 1
    sr.set_num_threads("auto")
    assert sr.get_num_threads() == kernels._cores()
    sr.set_num_threads(2)
    sr.set_num_threads(None)
    assert sr.get_num_threads() == kernels._cores()


@pytest.mark.parametrize("value", [0, -1, 1.5, "x", True, [2]])
def test_bad_values_are_a_clear_error(value, restore_setting):
    sr.set_num_threads(2)
    with pytest.raises(ValueError, match="the number of threads must be a positive integer or 'auto'"):
        sr.set_num_threads(value)
    assert sr.get_num_threads() == 2  # unchanged


def _threads_seen_by_the_kernel(monkeypatch, before_call=None) -> list:
    """Run a contraction large enough for the parallel kernel in a new thread; returns numba's thread
    count as the kernel saw it, and as the thread saw it after the call."""
    import numba

    module = kernels.compiled("max_abs")
    kernel = module.max_abs_matmul
    seen = []

    def recording(*args):
        seen.append(numba.get_num_threads())
        return kernel(*args)

    monkeypatch.setattr(module, "max_abs_matmul", recording)
    rng = np.random.default_rng(0)
    v, w = rng.standard_normal((64, 128)), rng.standard_normal((128, 64))
    ids = np.arange(v.size).reshape(v.shape)
    assert v.size * w.shape[1] >= module.PARALLEL_MIN_WORK
    results = []

    def run():
        if before_call is not None:
            before_call()
        results.append(dispatch.matmul(np, v, ids, w))
        seen.append(numba.get_num_threads())

    with kernels.using("numba"):  # (also where SEMIRAD_KERNELS=numpy runs the suite)
        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
    want = reference.matmul(np, v, ids, w)
    assert all(np.array_equal(a, b) for a, b in zip(results[0], want))
    return seen


@needs_numba
def test_the_setting_is_honoured_in_a_new_thread(monkeypatch, restore_setting):
    import numba

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba runs one thread here")
    sr.set_num_threads(1)  # in this thread; the kernel runs in another, whose numba count starts at the default
    kernel_saw, after = _threads_seen_by_the_kernel(monkeypatch)
    assert kernel_saw == 1
    assert after == numba.config.NUMBA_NUM_THREADS  # the thread's own numba setting, restored


@needs_numba
def test_numba_s_own_setting_of_a_thread_caps_semirad_s(monkeypatch, restore_setting):
    import numba

    sr.set_num_threads(max(2, numba.config.NUMBA_NUM_THREADS))
    kernel_saw, after = _threads_seen_by_the_kernel(monkeypatch, before_call=lambda: numba.set_num_threads(1))
    assert kernel_saw == after == 1


@pytest.mark.parametrize(
    "cores,machine_cpus,runnable,free",
    [(4, 4, 1, 4), (4, 4, 2, 3), (4, 4, 3, 2), (4, 4, 9, 1), (2, 2, 1, 2), (2, 2, 2, 1), (2, 2, 3, 1),
     (2, 64, 20, 1), (2, 64, 10, 2)],
)
def test_by_default_the_kernels_use_the_cores_no_other_thread_wants(cores, machine_cpus, runnable, free, monkeypatch):
    monkeypatch.setattr(kernels, "_cores", lambda: cores)
    monkeypatch.setattr(kernels.os, "cpu_count", lambda: machine_cpus)
    machine = kernels._Machine()
    monkeypatch.setattr(machine, "_runnable", lambda: runnable)  # the caller is one of them
    assert machine.free_cores() == free


def test_without_proc_loadavg_every_core_is_used(monkeypatch):
    machine = kernels._Machine()
    monkeypatch.setattr(machine, "_runnable", lambda: None)
    assert machine.free_cores() == kernels._cores()


def test_the_look_at_the_machine_is_kept_for_a_while_and_skipped_while_own_workers_spin(monkeypatch):
    machine = kernels._Machine()
    looks = []
    monkeypatch.setattr(machine, "_runnable", lambda: looks.append(1) or 1)
    for _ in range(100):
        machine.free_cores()
    assert len(looks) == 1
    now = kernels.time.monotonic()
    monkeypatch.setattr(kernels.time, "monotonic", lambda: now + kernels._LOAD_WINDOW)
    machine.ran_parallel()  # its workers may spin: they are not load
    machine.free_cores()
    assert len(looks) == 1
    monkeypatch.setattr(kernels.time, "monotonic", lambda: now + kernels._LOAD_WINDOW + kernels._OWN_SPIN)
    machine.free_cores()
    assert len(looks) == 2


@needs_numba
def test_a_parallel_call_tells_the_machine_its_workers_spin(monkeypatch, restore_setting):
    import numba

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba runs one thread here")
    machine = kernels._Machine()
    monkeypatch.setattr(kernels, "_machine", machine)
    monkeypatch.setattr(machine, "_runnable", lambda: 1)
    sr.set_num_threads(None)
    before = kernels.time.monotonic()
    _threads_seen_by_the_kernel(monkeypatch)
    assert machine.quiet_from >= before + kernels._OWN_SPIN
