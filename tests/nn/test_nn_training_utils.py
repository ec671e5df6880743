"""Learning-rate schedulers, gradient clipping and ``sr.data.batches`` (against PyTorch where it has
them), and the CNN port of docs/models.md."""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import semirad as sr
from semirad import nn, optim
from semirad.optim import lr_scheduler

DOC = Path(__file__).resolve().parents[2] / "docs" / "models.md"


@pytest.fixture
def torch():
    torch = pytest.importorskip("torch")
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield torch
    torch.set_default_dtype(previous)


# -- schedulers ---------------------------------------------------------------------------------------

OPTIMIZERS = {
    "SGD": lambda m, groups: m.SGD(groups, lr=0.1, momentum=0.9),
    "Adam": lambda m, groups: m.Adam(groups, lr=0.05),
    "AdamW": lambda m, groups: m.AdamW(groups, lr=0.05, weight_decay=0.1),
}


class Decay:
    """A callable object: LambdaLR saves its attributes in the state dict (PyTorch does too)."""

    def __init__(self, rate: float):
        self.rate = rate

    def __call__(self, epoch: int) -> float:
        return self.rate**epoch


SCHEDULERS = {
    "StepLR": lambda m, opt: m.StepLR(opt, step_size=3, gamma=0.3),
    "CosineAnnealingLR": lambda m, opt: m.CosineAnnealingLR(opt, T_max=4, eta_min=0.001),  # past T_max: back up
    "CosineAnnealingLR-0": lambda m, opt: m.CosineAnnealingLR(opt, T_max=5),
    "LambdaLR": lambda m, opt: m.LambdaLR(opt, lambda epoch: 1.0 / (1 + epoch)),
    "LambdaLR-per-group": lambda m, opt: m.LambdaLR(opt, [lambda epoch: 0.9**epoch, Decay(0.5)]),
}


def _groups(params, module):
    """Two parameter groups, the second with its own learning rate."""
    return [{"params": [params[0]]}, {"params": [params[1]], "lr": 0.02}]


def _pair_of_params(torch):
    values = [np.array([1.0, -2.0, 0.5]), np.array([[0.3, -0.7]])]
    return [nn.Parameter(v.copy()) for v in values], [torch.nn.Parameter(torch.tensor(v)) for v in values]


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_scheduler_matches_torch_step_by_step(torch, optimizer, scheduler):
    ours_p, theirs_p = _pair_of_params(torch)
    opt = OPTIMIZERS[optimizer](optim, _groups(ours_p, nn))
    topt = OPTIMIZERS[optimizer](torch.optim, _groups(theirs_p, torch.nn))
    sched = SCHEDULERS[scheduler](lr_scheduler, opt)
    tsched = SCHEDULERS[scheduler](torch.optim.lr_scheduler, topt)
    assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-12, abs=1e-15)
    for step in range(11):
        opt.zero_grad(), topt.zero_grad()
        loss = sum(((p * p * p).sum() for p in ours_p), sr.tensor(0.0))
        tloss = sum((p * p * p).sum() for p in theirs_p)
        loss.backward(), tloss.backward()
        opt.step(), topt.step()
        sched.step(), tsched.step()
        assert sched.last_epoch == tsched.last_epoch == step + 1
        ours_lr, theirs_lr = sched.get_last_lr(), tsched.get_last_lr()
        np.testing.assert_allclose(ours_lr, theirs_lr, rtol=1e-12, atol=1e-15, err_msg=f"step {step}")
        assert [g["lr"] for g in opt.param_groups] == ours_lr
        for p, tp in zip(ours_p, theirs_p, strict=True):  # the optimizer used the scheduled rates
            np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-10, atol=1e-13)
    assert sorted(sched.state_dict()) == sorted(tsched.state_dict())


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_torch_scheduler_state_dict_loads_and_resumes(torch, scheduler):
    ours_p, theirs_p = _pair_of_params(torch)
    opt, topt = optim.SGD(_groups(ours_p, nn), lr=0.1), torch.optim.SGD(_groups(theirs_p, torch.nn), lr=0.1)
    tsched = SCHEDULERS[scheduler](torch.optim.lr_scheduler, topt)
    for _ in range(4):
        topt.step()
        tsched.step()
    sched = SCHEDULERS[scheduler](lr_scheduler, opt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch's warning about state dicts and optimizers
        state = tsched.state_dict()
    sched.load_state_dict(state)
    for group, tgroup in zip(opt.param_groups, topt.param_groups, strict=True):
        group["lr"] = tgroup["lr"]  # (what the optimizer's own state dict restores)
    for _ in range(5):
        opt.step(), topt.step()
        sched.step(), tsched.step()
        np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-12, atol=1e-15)
    if scheduler == "LambdaLR-per-group":
        assert sched.state_dict()["lr_lambdas"] == [None, {"rate": 0.5}]


def test_step_with_an_epoch_uses_the_closed_form_and_warns(torch):
    ours_p, theirs_p = _pair_of_params(torch)
    sched = lr_scheduler.StepLR(optim.SGD(ours_p, lr=1.0), step_size=2, gamma=0.5)
    tsched = torch.optim.lr_scheduler.StepLR(torch.optim.SGD(theirs_p, lr=1.0), step_size=2, gamma=0.5)
    with pytest.warns(UserWarning, match="epoch parameter in `scheduler.step\\(\\)`"):
        sched.step(5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tsched.step(5)
    assert sched.get_last_lr() == tsched.get_last_lr() == [0.25]
    cosine = lr_scheduler.CosineAnnealingLR(optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0), T_max=4)
    with pytest.warns(UserWarning):
        cosine.step(2)
    assert cosine.get_last_lr()[0] == pytest.approx(0.5, rel=1e-12)


def test_scheduler_errors_and_warnings():
    w = nn.Parameter(np.zeros(1))
    opt = optim.SGD([w], lr=0.1)
    with pytest.raises(TypeError, match="list is not an Optimizer"):
        lr_scheduler.StepLR([w], step_size=1)
    with pytest.raises(KeyError, match=r"'initial_lr' is not specified in param_groups\[0\]"):
        lr_scheduler.StepLR(opt, step_size=1, last_epoch=3)
    with pytest.raises(ValueError, match="Expected 1 lr_lambdas, but got 2"):
        lr_scheduler.LambdaLR(opt, [lambda e: 1.0, lambda e: 1.0])
    with pytest.raises(TypeError, match="lr_lambda 0 is not callable"):
        lr_scheduler.LambdaLR(opt, 0.5)
    sched = lr_scheduler.StepLR(opt, step_size=1)
    assert opt.param_groups[0]["initial_lr"] == 0.1
    with pytest.warns(UserWarning, match="please use `get_last_lr\\(\\)`"):
        sched.get_lr()
    resumed = lr_scheduler.StepLR(opt, step_size=1, gamma=0.5, last_epoch=0)  # resuming needs initial_lr: there
    assert resumed.last_epoch == 1 and resumed.get_last_lr() == [0.05]


# -- gradient clipping ------------------------------------------------------------------------------


def _with_grads(torch, grads):
    ours = [nn.Parameter(np.zeros_like(g)) for g in grads]
    theirs = [torch.nn.Parameter(torch.zeros(g.shape)) for g in grads]
    for p, tp, g in zip(ours, theirs, grads, strict=True):
        p.grad = g.copy()
        p.grad.setflags(write=False)  # as the sweep leaves them: clipping must replace, not write
        tp.grad = torch.tensor(g)
    return ours, theirs


GRADS = [np.array([3.0, -4.0, 0.5]), np.array([[1.0, 0.0], [-2.0, 7.0]]), np.array([0.25])]


@pytest.mark.parametrize("norm_type", [2.0, 1, math.inf, 3.5, 0.0])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(torch, max_norm, norm_type):
    ours, theirs = _with_grads(torch, GRADS)
    originals = [p.grad for p in ours]
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert isinstance(total, sr.Tensor) and total.shape == ()
    np.testing.assert_allclose(total.item(), ttotal.item(), rtol=1e-12)
    for p, tp, original, g in zip(ours, theirs, originals, GRADS, strict=True):
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-12, atol=1e-15)
        np.testing.assert_array_equal(original, g)  # the old array is untouched
        assert p.grad.dtype == g.dtype
    if max_norm == 0.5 and norm_type == 2.0:
        joint = np.sqrt(sum((p.grad**2).sum() for p in ours))
        assert joint == pytest.approx(0.5, rel=1e-5)


def test_clip_grad_norm_of_one_tensor_and_of_none(torch):
    w = nn.Parameter(np.array([6.0, 8.0]))
    w.grad = np.array([6.0, 8.0])
    assert nn.utils.clip_grad_norm_(w, 5.0).item() == 10.0  # a single tensor, as PyTorch accepts
    np.testing.assert_allclose(w.grad, [3.0, 4.0], rtol=1e-6)
    assert nn.utils.clip_grad_norm_([nn.Parameter(np.zeros(2))], 1.0).item() == 0.0  # no gradients


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_clip_grad_norm_with_a_nonfinite_gradient(torch, bad):
    grads = [np.array([1.0, bad]), np.array([2.0])]
    ours, theirs = _with_grads(torch, grads)
    with pytest.raises(RuntimeError, match="the total norm of order 2.0 for gradients from `parameters` is non-finite"):
        nn.utils.clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    with pytest.raises(RuntimeError):
        torch.nn.utils.clip_grad_norm_(theirs, 1.0, error_if_nonfinite=True)
    assert [p.grad.tolist() for p in ours][1] == [2.0]  # nothing was scaled before the error
    total = nn.utils.clip_grad_norm_(ours, 1.0)
    ttotal = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    np.testing.assert_array_equal(total.item(), ttotal.item())
    for p, tp in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(p.grad, tp.grad.numpy())  # NaN, or zeros where the norm is inf


def test_clip_grad_value_matches_torch(torch):
    ours, theirs = _with_grads(torch, GRADS)
    assert nn.utils.clip_grad_value_(ours, 1.5) is None
    torch.nn.utils.clip_grad_value_(theirs, 1.5)
    for p, tp in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(p.grad, tp.grad.numpy())


def test_clip_grad_norm_inside_a_training_step():
    sr.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    loss = (model(np.ones((2, 3))) * 100.0).sum()
    loss.backward()
    before = np.sqrt(sum((p.grad**2).sum() for p in model.parameters()))
    total = nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    assert total.item() == pytest.approx(before, rel=1e-12)
    after = np.sqrt(sum((p.grad**2).sum() for p in model.parameters()))
    assert after == pytest.approx(1.0, rel=1e-5)
    optim.SGD(model.parameters(), lr=0.1).step()  # the replaced gradients are ordinary arrays
    with pytest.raises(TypeError, match="expected tensors \\(parameters\\), but element 0 is ndarray"):
        nn.utils.clip_grad_norm_([np.zeros(2)], 1.0)


# -- sr.data.batches -----------------------------------------------------------------------------------


def test_batches_in_order_with_and_without_the_last_short_batch():
    x, y = np.arange(14.0).reshape(7, 2), np.arange(7)
    loader = sr.data.batches(x, y, batch_size=3)
    assert len(loader) == 3
    got = [(xb.tolist(), yb.tolist()) for xb, yb in loader]
    assert got == [(x[0:3].tolist(), [0, 1, 2]), (x[3:6].tolist(), [3, 4, 5]), (x[6:].tolist(), [6])]
    dropped = sr.data.batches(x, y, batch_size=3, drop_last=True)
    assert len(dropped) == 2 and [yb.tolist() for _, yb in dropped] == [[0, 1, 2], [3, 4, 5]]
    assert len(sr.data.batches(x, batch_size=7, drop_last=True)) == 1
    assert [len(b) for (b,) in sr.data.batches([1, 2, 3], batch_size=2)] == [2, 1]  # lists become arrays


def test_shuffled_batches_cover_every_row_once_with_a_new_order_each_epoch():
    x = np.arange(20)
    loader = sr.data.batches(x, x * 10, batch_size=6, shuffle=True, generator=3)
    epochs = []
    for _ in range(3):
        rows = [xb for xb, yb in loader]
        for xb, yb in zip(rows, [yb for _, yb in loader], strict=True):
            assert xb.shape == yb.shape
        epoch = np.concatenate(rows)
        assert sorted(epoch.tolist()) == list(range(20))
        epochs.append(epoch.tolist())
    assert epochs[0] != epochs[1] != epochs[2]
    again = sr.data.batches(x, x, batch_size=6, shuffle=True, generator=3)
    assert np.concatenate([xb for xb, _ in again]).tolist() == epochs[0]  # the same seed: the same orders
    for xb, yb in sr.data.batches(x, x * 10, batch_size=6, shuffle=True):
        np.testing.assert_array_equal(yb, xb * 10)  # rows stay paired


def test_shuffling_follows_manual_seed():
    x = np.arange(10)

    def first_epoch():
        return np.concatenate([b for (b,) in sr.data.batches(x, batch_size=4, shuffle=True)]).tolist()

    sr.manual_seed(5)
    a = first_epoch()
    sr.manual_seed(5)
    assert first_epoch() == a and a != list(range(10))


def test_batches_of_tensors_carry_gradients():
    x = sr.tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    total = None
    for (xb,) in sr.data.batches(x, batch_size=2, shuffle=True, generator=0):
        assert isinstance(xb, sr.Tensor)
        term = (xb * xb).sum()
        total = term if total is None else total + term
    (g,) = sr.grad(total, [x])
    np.testing.assert_array_equal(g, 2 * x.numpy())  # every row reached exactly once


def test_batches_errors():
    with pytest.raises(ValueError, match=r"same length along their first axis, got shapes \[\(3, 2\), \(4,\)\]"):
        sr.data.batches(np.zeros((3, 2)), np.zeros(4), batch_size=2)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        sr.data.batches(np.zeros(3), batch_size=0)
    with pytest.raises(TypeError, match="needs at least one array"):
        sr.data.batches(batch_size=2)
    with pytest.raises(TypeError):
        sr.data.batches(np.zeros(3), 2)  # batch_size is keyword-only: no silent misreading as an array


# -- the CNN port of docs/models.md ------------------------------------------------------------------


def _port_block() -> str:
    section = DOC.read_text().split("## Porting a PyTorch CNN", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def _as_pytorch(code: str) -> tuple[str, int]:
    """The PyTorch program the port was made from: each marked line replaced by its original."""
    lines, changed = [], 0
    for line in code.splitlines():
        match = re.match(r"^(\s*)(.*?)\s+# PyTorch: (.*)$", line)
        if match:
            changed += 1
            lines.append(match.group(1) + match.group(3))
        else:
            lines.append(line)
    return "\n".join(lines) + "\n", changed


def test_cnn_port_example_trains():
    namespace: dict = {}
    exec(compile(_port_block(), str(DOC), "exec"), namespace)
    assert namespace["accuracy"] >= 0.9
    model = namespace["model"]
    expected = ["conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
                "bn1.num_batches_tracked"]  # fmt: skip
    assert list(model.state_dict())[:7] == expected
    assert int(model.bn1.num_batches_tracked) == 4 * 10  # 4 epochs of 10 batches
    assert namespace["scheduler"].get_last_lr() == [1e-2 * 0.5**2]


def test_cnn_port_differs_from_pytorch_only_in_the_marked_lines():
    code = _port_block()
    pytorch, changed = _as_pytorch(code)
    assert changed == 7
    assert "semirad" not in pytorch and "sr." not in pytorch
    compile(pytorch, "pytorch_version", "exec")


@pytest.mark.slow
def test_cnn_port_example_runs_in_pytorch(torch):
    torch.set_default_dtype(torch.float32)
    namespace: dict = {}
    exec(compile(_as_pytorch(_port_block())[0], "pytorch_version", "exec"), namespace)
    assert namespace["accuracy"] >= 0.9
