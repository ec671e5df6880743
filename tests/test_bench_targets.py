"""bench/targets.py on tiny configurations: every row's function returns finite positive numbers
(no timing assertions), and the semirad models and their torch.nn twins agree in loss and gradients."""

import math

import numpy as np
import pytest

from bench import targets as T


def positive(x):
    return isinstance(x, float) and math.isfinite(x) and x > 0


def all_positive(times: dict):
    return bool(times) and all(positive(v) for v in times.values())


@pytest.fixture(scope="module", autouse=True)
def kernels_loaded():
    T.load_kernels()


# -- rows that need no torch ------------------------------------------------------------------------
def test_dense_row_without_torch():
    r = T.row_dense(np.float32, layers=2, width=8, batch=4, repeats=1, torch=False)
    assert set(r["times_s"]) == {"backprop", "trace", "sr.grad"}
    assert all_positive(r["times_s"]) and positive(r["trace_bp"])
    inter = r["interleaved"]  # the same runners timed call by call, beside the steady reading
    assert set(inter["times_s"]) == {"backprop", "trace", "sr.grad"} and all_positive(inter["times_s"])
    assert inter["trace_bp"] == inter["times_s"]["trace"] / inter["times_s"]["backprop"]


def test_cnn_row_without_torch():
    r = T.row_cnn(batch=2, size=12, repeats=1, torch=False)
    assert all_positive(r["times_s"]) and positive(r["trace_bp"])


def test_matvec_row():
    r = T.row_matvec(20, repeats=1)
    assert all_positive(r["times_s"]) and positive(r["trace_bp"]) and positive(r["trace_grad"])


def test_lstm_rows_without_torch():
    r = T.row_lstm(4, batch=2, hidden=3, inputs=2, repeats=1, torch=False)
    assert all_positive(r["times_s"]) and positive(r["trace_bp"])
    g = T.row_lstm_growth((2, 4, 8), batch=2, hidden=3, inputs=2, repeats=1, torch=False)
    assert math.isfinite(g["exponent"]) and all(all_positive(t) for t in g["times_s"].values())


def test_memory_rows():
    for model, x in (T.dense_net(np.float64, 2, 8, 4), T.lstm(3, 2, 3, 2)):
        r = T.row_memory(model, x)
        assert positive(r["total_ratio"]) and positive(r["sweep_ratio"])
        assert r["trace"]["total_bytes"] > 0 and r["backprop"]["total_bytes"] > 0


def test_coldstart_row():
    r = T.row_coldstart(runs=1)
    assert positive(r["import_s"]) and positive(r["first_trace_s"])


def test_coldstart_fallback_child(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_coldstart(name, globals=None, locals=None, fromlist=(), level=0):
        if name == "coldstart" or name.endswith(".coldstart"):
            raise ImportError("bench/coldstart.py absent")
        return real_import(name, globals, locals, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", no_coldstart)
    r = T._coldstart_once()
    assert r["via"] == "targets" and positive(r["import_s"]) and positive(r["first_trace_s"])


def test_exponent_fit():
    assert T.fit_exponent([1, 2, 4, 8], [3, 12, 48, 192]) == pytest.approx(2.0)


def test_markdown_names_every_row_and_the_machine():
    rows = [T._row("tiny_bp_torch", "a case", 0.5, "x"), T._row("lstm_growth", "b case", 1.5),
            T._row("import_s", "c case", None)]  # fmt: skip
    md = T.markdown({"mode": "quick", "machine": {"cpu": "some cpu"}, "threads": {"numba": 2}, "allocator": "keep",
                     "kernels": {}, "elapsed_s": 1.0, "rows": rows})  # fmt: skip
    assert "| a case | 0.5 | ≤ 1 | pass |" in md and "| b case | 1.5 | ≤ 1.1 | **FAIL** |" in md
    assert "not run" in md and "some cpu" in md and "1 of 3 targets met" in md


# -- torch: the same models, the same numbers ----------------------------------------------------------
TINY_MODELS = {
    "tiny": lambda dtype: T.tiny_net(dtype, layers=5),
    "dense": lambda dtype: T.dense_net(dtype, layers=2, width=16, batch=4),
    "cnn": lambda dtype: T.cnn(dtype, batch=2, size=12),
    "lstm": lambda dtype: T.lstm(5, batch=2, hidden=4, inputs=3, dtype=dtype),
}


@pytest.mark.parametrize("name", list(TINY_MODELS))
def test_semirad_and_torch_models_agree_in_float64(name):
    pytest.importorskip("torch")
    c = T.compare_with_torch(*TINY_MODELS[name](np.float64))
    assert math.isfinite(c["loss"]) and c["grad_max"] > 0
    assert c["loss_diff"] <= 1e-8 and c["grad_diff"] <= 1e-8, c


@pytest.mark.parametrize("name", ["tiny", "dense"])
def test_float32_models_run_in_float32_in_both(name):
    torch = pytest.importorskip("torch")
    model, x = TINY_MODELS[name](np.float32)
    assert x.dtype == np.float32 and all(p.dtype == np.float32 for p in model.parameters())
    assert all(p.dtype == torch.float32 for p in T.torch_copy(model).parameters())
    c = T.compare_with_torch(model, x)
    assert c["grad_diff"] <= 1e-5 * max(1.0, c["grad_max"]), c


def test_rows_with_torch():
    pytest.importorskip("torch")
    r = T.row_tiny(np.float64, layers=3, repeats=1)
    assert set(r["times_s"]) == {"backprop", "torch"} and all_positive(r["times_s"]) and positive(r["bp_torch"])
    r = T.row_dense(np.float64, layers=2, width=8, batch=4, repeats=1)
    assert all_positive(r["times_s"]) and positive(r["bp_torch"]) and positive(r["trace_bp"])
    assert r["bp_torch"] == r["times_s"]["backprop"] / r["times_s"]["torch"]
    assert positive(r["interleaved"]["bp_torch"])
    r = T.row_cnn(batch=2, size=12, repeats=1)
    assert all_positive(r["times_s"]) and positive(r["bp_torch"])
    r = T.row_lstm(4, batch=2, hidden=3, inputs=2, repeats=1)
    assert all_positive(r["times_s"]) and positive(r["bp_torch"]) and r["check"]["grad_diff"] <= 1e-8
    g = T.row_lstm_growth((2, 4), batch=2, hidden=3, inputs=2, repeats=1)
    assert math.isfinite(g["exponent"]) and math.isfinite(g["torch_exponent"])
