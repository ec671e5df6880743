"""End to end on a device: the same model on cupy arrays and on numpy arrays gives the same gradients
and the same trace (values up to rounding, since cuBLAS and OpenBLAS sum in different orders;
backpointers and best paths exactly, since random data leaves no product within rounding of
another).

Every case runs twice: on the simulated device (``tests/fakecupy``: numpy arrays dressed as cupy
ones, the CUDA kernels run by their g++ emulation where g++ exists, on any machine) and on a real
CUDA device (skipped where cupy or a device is missing).

The kernels alone are checked bit for bit in ``test_cuda_kernels.py``; these cases check the
wiring around them: arrays that stay on the device through every op and semiring primitive,
integer indices, scatters with repeated targets, and paths read back from device arrays.
"""

import numpy as np
import pytest

import semirad as sr
from semirad import backend
from semirad.nn import functional as F


def _device_cupy():
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
    except Exception:  # no cupy, no driver, no device
        return None
    return cupy


@pytest.fixture(params=["simulated", "gpu"])
def cp(request, monkeypatch):
    """The device's array module: the stand-in (tests/fakecupy), or real cupy on a CUDA device."""
    if request.param == "simulated":
        import fakecupy

        with fakecupy.installed(monkeypatch, request.getfixturevalue("emulation_dir")) as fake:
            yield fake
    else:
        real = _device_cupy()
        if real is None:
            pytest.skip("needs cupy and a CUDA device")
        monkeypatch.setattr(backend, "cupy", real)
        yield real


def _on(xp, model):
    """``model`` on the device for cupy (what ``semirad demo --device cuda`` does), as it is for numpy."""
    return model if xp is np else model.to("cuda")


def _both(cp, build):
    """``build(xp)`` returns ``(loss, params)``; run backprop and trace on numpy and on cupy."""
    runs = []
    for xp in (np, cp):
        loss, params = build(xp)
        grads = sr.grad(loss, params)
        loss, params = build(xp)
        runs.append((params, grads, sr.trace(loss, params)))
    return runs


def _same_results(cp, cpu, gpu, paths_per_param: int = 3):
    (cpu_params, cpu_grads, cpu_trace), (gpu_params, gpu_grads, gpu_trace) = cpu, gpu
    rng = np.random.default_rng(0)
    for p_cpu, p_gpu, g_cpu, g_gpu in zip(cpu_params, gpu_params, cpu_grads, gpu_grads):
        assert isinstance(g_gpu, cp.ndarray), "the gradient left the device"
        assert p_gpu.device == "cuda:0" and p_cpu.device == "cpu"
        np.testing.assert_allclose(cp.asnumpy(g_gpu), g_cpu, rtol=1e-9, atol=1e-12)
        value, ids = gpu_trace.raw(p_gpu)
        assert isinstance(value, cp.ndarray) and isinstance(ids, cp.ndarray), "the trace left the device"
        np.testing.assert_allclose(cp.asnumpy(gpu_trace[p_gpu]), cpu_trace[p_cpu], rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(cp.asnumpy(ids), cpu_trace.raw(p_cpu)[1])
        for flat in rng.choice(p_cpu.numel(), size=min(paths_per_param, p_cpu.numel()), replace=False):
            index = np.unravel_index(int(flat), p_cpu.shape)
            path_cpu, path_gpu = cpu_trace.path(p_cpu, index), gpu_trace.path(p_gpu, index)
            assert [(s.op, s.index) for s in path_gpu.steps] == [(s.op, s.index) for s in path_cpu.steps]
            assert path_gpu.value == pytest.approx(path_cpu.value, rel=1e-9, abs=1e-12)


def test_mlp_on_the_gpu_matches_the_cpu(cp):
    data = np.random.default_rng(1)
    x, target = data.standard_normal((32, 8)), data.standard_normal((32, 4))

    def build(xp):
        model = _on(xp, sr.nn.Sequential(
            sr.nn.Linear(8, 16, generator=np.random.default_rng(2)), sr.nn.Tanh(),
            sr.nn.Linear(16, 16, generator=np.random.default_rng(3)), sr.nn.ReLU(),
            sr.nn.Linear(16, 4, generator=np.random.default_rng(4)),
        ))  # fmt: skip
        loss = F.mse_loss(model(sr.tensor(xp.asarray(x))), sr.tensor(xp.asarray(target)))
        return loss, list(model.parameters())

    _same_results(cp, *_both(cp, build))


@pytest.mark.parametrize("n", [300, 2000])
def test_matrix_vector_trace_on_the_gpu_matches_the_cpu(cp, n):
    data = np.random.default_rng(n)
    w0, x0 = data.standard_normal((n, n)), data.standard_normal(n)

    def build(xp):
        w = sr.tensor(xp.asarray(w0), requires_grad=True, name="W")
        x = sr.tensor(xp.asarray(x0), requires_grad=True, name="x")
        return (w @ x).tanh().sum(), [w, x]

    _same_results(cp, *_both(cp, build))


def test_batched_dense_layers_on_the_gpu_match_the_cpu(cp):
    data = np.random.default_rng(5)
    x0 = data.standard_normal((64, 256))
    weights = [data.standard_normal((256, 256)) / 16 for _ in range(3)]

    def build(xp):
        ws = [sr.tensor(xp.asarray(w), requires_grad=True) for w in weights]
        h = sr.tensor(xp.asarray(x0))
        for w in ws:
            h = (h @ w).tanh()
        return (h * h).mean(), ws

    _same_results(cp, *_both(cp, build))


def test_lstm_on_the_gpu_matches_the_cpu(cp):
    data = np.random.default_rng(6)
    seq = data.standard_normal((5, 3, 6))

    def build(xp):
        lstm = _on(xp, sr.nn.LSTM(6, 12, generator=np.random.default_rng(7)))
        out, _ = lstm(sr.tensor(xp.asarray(seq)))
        return (out[-1] ** 2).sum(), list(lstm.parameters())

    _same_results(cp, *_both(cp, build))


def test_convolution_pooling_and_cross_entropy_on_the_gpu_match_the_cpu(cp):
    data = np.random.default_rng(8)
    images, labels = data.standard_normal((4, 2, 8, 8)), data.integers(0, 3, size=4)

    def build(xp):
        conv = _on(xp, sr.nn.Conv2d(2, 3, 3, padding=1, generator=np.random.default_rng(9)))
        head = _on(xp, sr.nn.Linear(3 * 4 * 4, 3, generator=np.random.default_rng(10)))
        h = F.max_pool2d(F.relu(conv(sr.tensor(xp.asarray(images)))), 2)
        loss = F.cross_entropy(head(h.reshape(4, -1)), xp.asarray(labels))
        return loss, list(conv.parameters()) + list(head.parameters())

    _same_results(cp, *_both(cp, build))


def test_repeated_gathers_on_the_gpu_match_the_cpu(cp):
    """An embedding read at repeated rows: the trace's scatter keeps the strongest of them."""
    data = np.random.default_rng(11)
    tokens = data.integers(0, 6, size=(4, 7))

    def build(xp):
        emb = _on(xp, sr.nn.Embedding(6, 5, generator=np.random.default_rng(12)))
        h = emb(xp.asarray(tokens))
        return (h.sum(axis=1).tanh() ** 2).sum(), list(emb.parameters())

    _same_results(cp, *_both(cp, build), paths_per_param=6)
