"""Devices in the API (``Tensor.device``, ``.to``/``.cpu``/``.cuda``, ``sr.tensor(device=...)``,
``Module.to``, optimizers, state dicts, mixed-device errors), the kernels wired for cupy arrays, and
the demo's and the benchmark's GPU paths, all on the simulated device of ``tests/fakecupy`` (numpy
arrays dressed as cupy arrays, two GPUs, the CUDA kernels run by their g++ emulation where g++
exists): they run on any machine. ``tests/test_gpu.py`` runs whole models on it and on a real GPU.
"""

from __future__ import annotations

import dataclasses
import sys

import fakecupy
import numpy as np
import pytest

import semirad as sr
from semirad import backend
from semirad.backend import Device, DeviceError
from semirad.kernels import cuda as cuda_kernels
from semirad.kernels import cuda_sources as S
from semirad.nn import functional as F


@pytest.fixture
def cp(monkeypatch, emulation_dir):
    """The simulated device, with the CUDA kernels emulated (where g++ exists)."""
    with fakecupy.installed(monkeypatch, emulation_dir) as fake:
        yield fake


@pytest.fixture
def cp_reference(monkeypatch):
    """The simulated device with the CUDA kernels off: the cupy references run (quicker)."""
    with fakecupy.installed(monkeypatch, kernels=False) as fake:
        yield fake


def _on_device(a, cp, index=0):
    return isinstance(a, cp.ndarray) and a.device.id == index


# == the device object ===============================================================================
def test_device_strings_parse_and_compare():
    assert str(Device("cuda:1")) == "cuda:1" and Device("cuda", 1) == Device("cuda:1") == "cuda:1"
    assert Device("cpu") == "cpu" and Device("cpu") != "cuda" and Device("cuda:0") != Device("cuda:1")
    assert Device("cuda") == "cuda:3"  # an index-less cuda is any GPU
    assert repr(Device("cuda:2")) == "device(type='cuda', index=2)"
    for bad in ("tpu", "cuda:x", "cpu:1", "cuda:-1"):
        with pytest.raises(ValueError):
            Device(bad)


def test_without_cupy_a_cuda_device_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(backend, "cupy", None)
    x = sr.tensor([1.0, 2.0])
    assert x.device == "cpu" and x.to("cpu") is x and x.cpu() is x
    for move in (lambda: sr.tensor([1.0], device="cuda"), x.cuda, lambda: sr.nn.Linear(2, 2).to("cuda")):
        with pytest.raises(DeviceError, match="cupy"):
            move()


# == tensors ============================================================================================
def test_tensor_moves_between_host_and_devices(cp):
    host = np.arange(6.0).reshape(2, 3)
    x = sr.tensor(host, device="cuda", requires_grad=True, name="x")
    assert x.device == "cuda:0" and str(x.device) == "cuda:0" and _on_device(x.data, cp)
    assert x.requires_grad and x.is_leaf and x.name == "x"
    assert x.to("cuda") is x and x.cuda() is x and x.to("cuda:0") is x
    back = x.cpu()
    assert type(back.data) is np.ndarray and back.device == "cpu" and back.requires_grad and back.name == "x"
    np.testing.assert_array_equal(back.numpy(), host)
    assert type(x.numpy()) is np.ndarray and x.tolist() == host.tolist()  # host copies where asked
    one = x.cuda(1)
    assert one.device == "cuda:1" and _on_device(one.data, cp, 1) and x.device == "cuda:0"
    assert x.to("cuda:1", np.float32).dtype == np.float32
    y = sr.tensor([1.0, 2.0]).to(one)  # to(other): other's device (and dtype)
    assert y.device == "cuda:1"
    assert sr.tensor(cp.asarray(host)).device == "cuda:0"  # device arrays stay where they are
    with cp.cuda.Device(1):
        on_one = cp.asarray(host)
    copied = sr.tensor(on_one)  # while GPU 0 is current: cupy alone would copy it onto GPU 0
    assert copied.device == "cuda:1" and _on_device(copied.data, cp, 1) and copied.data is not on_one
    p = sr.nn.Parameter(host).cuda()
    assert isinstance(p, sr.nn.Parameter) and p.device == "cuda:0"
    with pytest.raises(RuntimeError, match=r"recorded op \(mul .*on cuda:0\) can't move"):
        (x * 2).cpu()
    assert "tensor(" in repr(x)


def test_a_callers_device_array_an_op_keeps_stays_on_its_gpu(cp):
    """An op keeps a read-only copy of a caller's cupy array (cupy has no read-only flag); cupy's
    ``copy()`` makes it on the current GPU, which need not be the array's."""
    from semirad.readonly import protected

    with cp.cuda.Device(1):
        raw = cp.asarray(np.arange(3.0))
    kept = protected(raw)
    assert _on_device(kept, cp, 1) and kept is not raw
    x = sr.tensor(np.ones(3), requires_grad=True).cuda(1)
    y = x * raw  # GPU 0 is current
    assert y.device == "cuda:1"
    np.testing.assert_array_equal(cp.asnumpy(sr.grad(y.sum(), [x])[0]), np.arange(3.0))


def test_mixed_devices_are_a_clear_error_naming_op_tensors_and_devices(cp):
    w = sr.tensor(np.ones((3, 4)), requires_grad=True, name="W", device="cuda")
    v = sr.tensor(np.ones(4), name="v")
    with pytest.raises(DeviceError, match=r"matmul: .*'W' of shape \(3, 4\) on cuda:0, .*'v' of shape \(4,\) on cpu"):
        w @ v
    with pytest.raises(ValueError, match=r"add: .*'v' .* on cpu, .*'W' .* on cuda:0"):
        v + w
    w1 = w.to("cuda:1")
    with pytest.raises(DeviceError, match=r"mul: .* on cuda:1, .* on cuda:0"):
        w1 * w
    with pytest.raises(DeviceError, match=r"where: .*on cuda:0.*on cpu"):
        sr.where(np.ones((3, 4), dtype=bool), w, np.zeros((3, 4)))
    # numbers and 0-d host arrays go with any device, as PyTorch's CPU scalars
    assert (w * 2.0).device == (w + np.float64(1.0)).device == (w * np.array(3.0)).device == "cuda:0"


def test_a_second_gpu_computes_under_its_device_context(cp):
    """Ops run on cupy's current device (cupy's rule): tensors of cuda:1 inside ``cupy.cuda.Device(1)``."""
    rng = np.random.default_rng(7)
    w0, x0 = rng.standard_normal((3, 4)), rng.standard_normal((5, 3))
    w = sr.tensor(w0, requires_grad=True, name="W", device="cuda:1")
    x = sr.tensor(x0, device="cuda:1")
    with cp.cuda.Device(1):
        grad = sr.grad((x @ w).tanh().sum(), [w])[0]
        tr = sr.trace((x @ w).tanh().sum(), [w])
    assert _on_device(grad, cp, 1) and _on_device(tr[w], cp, 1) and _on_device(tr.raw(w)[1], cp, 1)
    host_w = sr.tensor(w0, requires_grad=True)
    want = sr.trace((sr.tensor(x0) @ host_w).tanh().sum(), [host_w])
    np.testing.assert_allclose(cp.asnumpy(tr[w]), want[host_w], rtol=1e-12)
    np.testing.assert_array_equal(cp.asnumpy(tr.raw(w)[1]), want.raw(host_w)[1])


# == modules, optimizers, state dicts =======================================================================
def _net():
    return sr.nn.Sequential(
        sr.nn.Linear(4, 6, generator=np.random.default_rng(0)), sr.nn.BatchNorm1d(6), sr.nn.Tanh(),
        sr.nn.Linear(6, 2, generator=np.random.default_rng(1)),
    )  # fmt: skip


def test_module_to_moves_parameters_buffers_and_grads(cp):
    net = _net()
    params = list(net.parameters())
    x = np.random.default_rng(2).standard_normal((5, 4))
    F.mse_loss(net(x), np.zeros((5, 2))).backward()
    want = net(x).numpy()
    assert net.to("cuda") is net
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]  # the same objects: optimizers see it
    for p in net.parameters():
        assert p.device == "cuda:0" and _on_device(p.grad, cp)
    for b in net.buffers():
        assert _on_device(b, cp)
    out = net(sr.tensor(x, device="cuda"))
    assert out.device == "cuda:0"
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-12)
    net.to("cuda:1")
    assert {str(p.device) for p in net.parameters()} == {"cuda:1"} and all(_on_device(b, cp, 1) for b in net.buffers())
    net.cpu()
    assert all(type(p.data) is np.ndarray and type(p.grad) is np.ndarray for p in net.parameters())
    assert all(type(b) is np.ndarray for b in net.buffers())
    net.to(sr.tensor(np.zeros(1, np.float32), device="cuda"))  # to(tensor): its device and dtype
    assert all(p.device == "cuda:0" and p.dtype == np.float32 for p in net.parameters())


def test_load_state_dict_from_host_arrays_lands_on_the_modules_device(cp):
    saved = _net().state_dict()
    assert all(type(a) is np.ndarray for a in saved.values())
    net = _net().to("cuda:1")
    net.load_state_dict({k: a + 1 for k, a in saved.items()})
    for key, value in net.state_dict(keep_vars=True).items():
        data = value.data if isinstance(value, sr.Tensor) else value
        assert _on_device(data, cp, 1), key
        np.testing.assert_array_equal(cp.asnumpy(data), saved[key] + 1)
    assert all(type(a) is np.ndarray for a in net.state_dict().values())  # state_dict(): host copies


@pytest.mark.parametrize("make", [
    lambda ps: sr.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01),
    lambda ps: sr.optim.Adam(ps, lr=0.01, amsgrad=True),
    lambda ps: sr.optim.AdamW(ps, lr=0.01),
])  # fmt: skip
def test_optimizers_keep_their_state_on_the_parameters_device(cp_reference, make):
    cp = cp_reference
    x, y = np.random.default_rng(3).standard_normal((8, 4)), np.random.default_rng(4).standard_normal((8, 2))
    runs = []
    for device in ("cpu", "cuda"):
        net = _net().to(device)
        opt = make(list(net.parameters()))
        xs, ys = sr.tensor(x, device=device), sr.tensor(y, device=device)
        for _ in range(3):
            opt.zero_grad()
            F.mse_loss(net(xs), ys).backward()
            opt.step()
        runs.append((net, opt))
    (cpu_net, cpu_opt), (gpu_net, gpu_opt) = runs
    for p_cpu, p_gpu in zip(cpu_net.parameters(), gpu_net.parameters()):
        assert p_gpu.device == "cuda:0"
        np.testing.assert_allclose(p_gpu.numpy(), p_cpu.numpy(), rtol=1e-7, atol=1e-12)  # (Adam amplifies rounding)
        arrays = [v for v in gpu_opt.state[p_gpu].values() if backend.is_array(v)]
        assert arrays and all(_on_device(v, cp) for v in arrays)
    # a state saved on the host loads onto the device of the parameters
    host_state = cpu_opt.state_dict()
    gpu_opt.load_state_dict(host_state)
    for p in gpu_net.parameters():
        assert all(_on_device(v, cp) for v in gpu_opt.state[p].values() if backend.is_array(v))


# == results on the device; the kernels wired ================================================================
def _model(xp_device):
    rng = np.random.default_rng(5)
    emb = sr.nn.Embedding(7, 5, generator=np.random.default_rng(6)).to(xp_device)
    w = sr.tensor(rng.standard_normal((5, 6)), requires_grad=True, name="W", device=xp_device)
    v = sr.tensor(rng.standard_normal(6), requires_grad=True, name="v", device=xp_device)
    tokens = rng.integers(0, 7, size=(4, 3))
    if xp_device != "cpu":
        tokens = backend.to_device(tokens, xp_device)
    h = (emb(tokens) @ w).tanh()  # a batched contraction (tiled), a gather with repeated rows (scatter)
    loss = ((h.reshape(12, 6) @ v) ** 2).sum()  # a matrix-vector product (v's rule: vector-matrix)
    return loss, [emb.weight, w, v]


def test_trace_runs_the_cuda_kernels_and_keeps_results_on_the_device(cp, monkeypatch):
    if not cp.has_kernels:
        pytest.skip("g++ not installed: no emulated kernels")
    copies = []
    host_copy = fakecupy.ndarray.get
    monkeypatch.setattr(fakecupy.ndarray, "get", lambda self: copies.append(self.shape) or host_copy(self))
    loss, params = _model("cuda")  # (F.embedding checks its indices on the host: a copy in the forward)
    cp.launches.clear()
    copies.clear()
    tr = sr.trace(loss, params)
    kinds = {name.replace("launch_", "").rsplit("_", 1)[0] for name in cp.launches}
    assert {S.TILED, S.SCATTER_KEY, S.SCATTER_WRITE} <= kinds and kinds & {S.MV_ROWS, S.MV_COLS}, kinds
    assert copies == [], "the trace copied arrays to the host"
    cpu_loss, cpu_params = _model("cpu")
    cpu_tr = sr.trace(cpu_loss, cpu_params)
    for p, q in zip(params, cpu_params):
        value, ids = tr.raw(p)
        assert _on_device(tr[p], cp) and _on_device(value, cp) and _on_device(ids, cp)
        # values to rounding (the host's tanh kernel and fast paths round differently from numpy's);
        # backpointers exactly
        np.testing.assert_allclose(cp.asnumpy(tr[p]), cpu_tr[q], rtol=1e-12, atol=1e-15)
        np.testing.assert_array_equal(cp.asnumpy(ids), cpu_tr.raw(q)[1])
        index = np.unravel_index(int(np.argmax(np.abs(cpu_tr[q]))), q.shape)
        path, cpu_path = tr.path(p, index), cpu_tr.path(q, index)
        assert [(s.op, s.index) for s in path.steps] == [(s.op, s.index) for s in cpu_path.steps]
        assert path.value == pytest.approx(cpu_path.value, rel=1e-12)
    # the kernels off: the cupy references, the same bits, no launches
    monkeypatch.setattr(cuda_kernels, "_enabled", False)
    cp.launches.clear()
    on_params = params
    loss, params = _model("cuda")
    off = sr.trace(loss, params)
    assert cp.launches == []
    for p_off, p_on in zip(params, on_params):
        np.testing.assert_array_equal(cp.asnumpy(off[p_off]), cp.asnumpy(tr[p_on]))  # the same bits
        np.testing.assert_array_equal(cp.asnumpy(off.raw(p_off)[1]), cp.asnumpy(tr.raw(p_on)[1]))


def test_backprop_uses_the_device_matmul_and_stays_on_the_device(cp_reference, monkeypatch):
    cp = cp_reference
    seen = []
    original = fakecupy.ndarray.__array_ufunc__

    def recording(self, ufunc, method, *inputs, **kwargs):
        seen.append(ufunc.__name__)
        return original(self, ufunc, method, *inputs, **kwargs)

    monkeypatch.setattr(fakecupy.ndarray, "__array_ufunc__", recording)
    loss, params = _model("cuda")
    seen.clear()
    grads = sr.grad(loss, params)
    assert seen.count("matmul") >= 3  # g @ W.T, x.T @ g, ... on the device (cuBLAS on a real GPU)
    cpu_loss, cpu_params = _model("cpu")
    for g, want in zip(grads, sr.grad(cpu_loss, cpu_params)):
        assert _on_device(g, cp)
        np.testing.assert_allclose(cp.asnumpy(g), want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("semiring", ["KBest", "LogMaxAbs", "SumAbs", "Count", "Boolean", "Entropy"])
def test_every_semiring_runs_on_the_device(cp_reference, semiring):
    S_ = getattr(sr.semirings, semiring)
    make = (lambda: S_(2)) if semiring == "KBest" else S_
    results = []
    for device in ("cpu", "cuda"):
        loss, params = _model(device)
        results.append((params, sr.backward(loss, params, semiring=make())))
    (cpu_params, cpu_res), (gpu_params, gpu_res) = results
    for p, q in zip(gpu_params, cpu_params):
        got, want = gpu_res[p], cpu_res[q]
        assert _on_device(got, cp_reference), type(got)
        np.testing.assert_allclose(cp_reference.asnumpy(got), want, rtol=1e-10, atol=1e-14)


def test_importance_on_the_device_matches_the_host(cp_reference):
    from semirad.analysis import component_importance

    shares = []
    for device in ("cpu", "cuda"):
        loss, params = _model(device)
        shares.append(component_importance(sr.trace(loss, params), params).shares)
    assert shares[0].keys() == shares[1].keys()
    for key in shares[0]:
        assert shares[1][key] == pytest.approx(shares[0][key], rel=1e-12)


# == the demo and the benchmark on the device =================================================================
def test_demo_runs_on_the_simulated_device(cp_reference, tmp_path):
    from semirad.analysis.demo.config import DemoConfig
    from semirad.analysis.demo.run import _check_device, train_and_trace

    runs = []
    for device in ("cpu", "cuda"):
        config = dataclasses.replace(DemoConfig.tiny(), device=device)
        runs.append(train_and_trace(config, tmp_path / device, say=lambda *lines: None))
    cpu, gpu = runs
    assert gpu.graph_output.device == "cuda:0" and cpu.graph_output.device == "cpu"
    assert gpu.check["per_component_equal"]
    np.testing.assert_allclose(gpu.losses, cpu.losses, rtol=1e-10)
    assert gpu.trace.shares == pytest.approx(cpu.trace.shares, rel=1e-9)
    assert [(s.op, s.index) for s in gpu.best_path.steps] == [(s.op, s.index) for s in cpu.best_path.steps]
    _check_device("cuda:1")
    with pytest.raises(RuntimeError, match="2 CUDA device"):
        _check_device("cuda:2")
    with pytest.raises(ValueError, match="unknown device"):
        _check_device("tpu")


def test_the_benchmarks_gpu_columns_run_on_the_simulated_device(cp_reference, monkeypatch):
    from bench import experiments, harness, models

    monkeypatch.setitem(sys.modules, "cupy", cp_reference)  # what `import cupy` in bench finds
    have = dict(experiments.available(), torch=False, torch_cuda=False, autograd=False)
    assert have["cupy"] is True
    for runners in (
        experiments.program_runners(models.mlp(layers=2, width=8, batch=4), have, set(), False),
        experiments.program_runners(models.random_graph(0, batch=2, sizes=(3, 12)), have, set(), False),
        experiments.matvec_runners(30, have, set(), False),
    ):
        pairs = ((experiments.SR_BP_GPU, experiments.SR_BP), (experiments.SR_TRACE_GPU, experiments.SR_TRACE))
        for gpu_col, cpu_col in pairs:
            fn, sync = runners[gpu_col]
            got, want = fn(), runners[cpu_col]()
            sync()
            if isinstance(got, list):
                for g, w in zip(got, want):
                    assert _on_device(g, cp_reference)
                    np.testing.assert_allclose(cp_reference.asnumpy(g), w, rtol=1e-10, atol=1e-14)
            elif hasattr(fn, "params"):  # a trace's Result
                for p, q in zip(fn.params, runners[cpu_col].params):
                    assert _on_device(got[p], cp_reference)
                    np.testing.assert_allclose(cp_reference.asnumpy(got[p]), want[q], rtol=1e-10, atol=1e-14)
        times = harness.interleaved(runners, 1)
        assert all("median_s" in times[col] for col in (experiments.SR_BP_GPU, experiments.SR_TRACE_GPU)), times
