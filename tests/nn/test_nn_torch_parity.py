"""Every module, loss and optimizer against PyTorch in float64 (skipped when torch is missing).

The PyTorch module's state dict is exported as numpy arrays and loaded unchanged into ours, so the
tests also check that names, order and array layouts match.
"""

from __future__ import annotations

import numpy as np
import pytest
from nn_cases import CASE_IDS, CASES, close, flatten, float_leaves, loss_weights, make, map_inputs, weighted_loss

import semirad as sr
import semirad.nn.functional as F

torch = pytest.importorskip("torch")

RTOL = 1e-9

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")


def torch_state(module) -> dict:
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}


@pytest.fixture(autouse=True)
def _float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(previous)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_module_matches_torch(case):
    theirs = case.torch_make(torch).double()
    theirs.train(not case.eval_mode)
    ours = make(case)
    state = torch_state(theirs)
    assert list(ours.state_dict()) == list(state), "state dict keys (and their order) differ from PyTorch's"
    ours.load_state_dict(state)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]

    args = case.inputs(np.random.default_rng(1))
    our_args = map_inputs(args, lambda a: sr.tensor(a, requires_grad=True), case.int_inputs)
    their_args = map_inputs(args, lambda a: torch.tensor(a, requires_grad=True), case.int_inputs)
    if case.int_inputs:
        their_args = (torch.as_tensor(args[0]),) + their_args[1:]
    our_out, their_out = flatten(ours(*our_args)), flatten(theirs(*their_args))
    assert len(our_out) == len(their_out)
    for k, (a, b) in enumerate(zip(our_out, their_out, strict=True)):
        close(a.numpy(), b, f"{case.id}: output {k}")

    weights = loss_weights(our_out)
    our_loss = weighted_loss(our_out, weights)
    their_loss = weighted_loss(their_out, [torch.tensor(w) for w in weights])
    our_leaves = [p for _, p in ours.named_parameters()] + float_leaves(our_args)
    their_leaves = [p for _, p in theirs.named_parameters()] + float_leaves(their_args)
    names = [n for n, _ in ours.named_parameters()] + [f"input {i}" for i in range(len(float_leaves(our_args)))]
    our_grads = sr.grad(our_loss, our_leaves)
    their_grads = torch.autograd.grad(their_loss, their_leaves, allow_unused=True)
    for name, g, tg in zip(names, our_grads, their_grads, strict=True):
        close(g, torch.zeros_like(their_leaves[names.index(name)]) if tg is None else tg, f"{case.id}: grad of {name}")


def test_loaded_torch_state_dict_survives_a_round_trip():
    theirs = torch.nn.LSTM(3, 4, num_layers=2).double()
    ours = sr.nn.LSTM(3, 4, num_layers=2)
    ours.load_state_dict(theirs.state_dict())  # torch tensors are accepted as they are
    back = {k: torch.tensor(v) for k, v in ours.state_dict().items()}
    theirs.load_state_dict(back)
    for k, v in theirs.state_dict().items():
        close(ours.state_dict()[k], v, k)


# -- losses and functional ---------------------------------------------------------------------


def _pair(rng, *shape):
    x = rng.standard_normal(shape)
    return sr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)


def _check_loss(ours, theirs, our_x, their_x, what):
    close(ours.numpy(), theirs, what)
    weights = np.random.default_rng(3).standard_normal(ours.shape)
    (g,) = sr.grad((ours * weights).sum(), [our_x])
    (tg,) = torch.autograd.grad((theirs * torch.tensor(weights)).sum(), [their_x])
    close(g, tg, what + " (grad)")


CE_CASES = [
    ("2d", (5, 4), (5,), {}),
    ("1d", (4,), (), {}),
    ("4d", (2, 3, 2, 2), (2, 2, 2), {}),
    ("weight", (6, 3), (6,), {"weight": np.array([0.2, 1.0, 3.0])}),
    ("ignore", (6, 3), (6,), {"ignore_index": 1}),
    ("weight-ignore-4d", (2, 3, 2, 1), (2, 2, 1), {"weight": np.array([0.5, 2.0, 1.0]), "ignore_index": 0}),
]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape_in,shape_t,kw", [c[1:] for c in CE_CASES], ids=[c[0] for c in CE_CASES])
def test_cross_entropy_and_nll_match_torch(shape_in, shape_t, kw, reduction):
    rng = np.random.default_rng(0)
    classes = shape_in[0] if len(shape_in) == 1 else shape_in[1]
    target = rng.integers(0, classes, size=shape_t)
    target.reshape(-1)[0] = 1
    tkw = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    x, tx = _pair(rng, *shape_in)
    ours = F.cross_entropy(x, target, reduction=reduction, **kw)
    theirs = torch.nn.functional.cross_entropy(tx, torch.tensor(target), reduction=reduction, **tkw)
    _check_loss(ours, theirs, x, tx, f"cross_entropy {shape_in} {kw} {reduction}")
    ours = sr.nn.NLLLoss(reduction=reduction, **kw)(F.log_softmax(x, 0 if x.ndim == 1 else 1), target)
    theirs = torch.nn.functional.nll_loss(torch.log_softmax(tx, 0 if tx.ndim == 1 else 1), torch.tensor(target),
                                          reduction=reduction, **tkw)  # fmt: skip
    _check_loss(ours, theirs, x, tx, f"nll_loss {shape_in} {kw} {reduction}")


@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_with_probability_targets_matches_torch(weighted):
    rng = np.random.default_rng(1)
    x, tx = _pair(rng, 4, 3)
    probs = rng.dirichlet(np.ones(3), size=4)
    w = np.array([0.3, 1.0, 2.0]) if weighted else None
    ours = sr.nn.CrossEntropyLoss(weight=w)(x, probs)
    theirs = torch.nn.functional.cross_entropy(tx, torch.tensor(probs), weight=None if w is None else torch.tensor(w))
    _check_loss(ours, theirs, x, tx, "cross_entropy with probabilities")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_and_bce_match_torch(reduction):
    rng = np.random.default_rng(2)
    x, tx = _pair(rng, 3, 4)
    target = rng.standard_normal((3, 4))
    ours, theirs = sr.nn.MSELoss(reduction)(x, target), torch.nn.functional.mse_loss(tx, torch.tensor(target),
                                                                                     reduction=reduction)  # fmt: skip
    _check_loss(ours, theirs, x, tx, "mse_loss")
    x, tx = sr.tensor(x.numpy() * 30, requires_grad=True), torch.tensor(tx.detach().numpy() * 30, requires_grad=True)
    labels = (rng.random((3, 4)) < 0.5).astype(float)
    labels[0, 0] = 0.3  # soft label
    weight, pos_weight = rng.random(4) + 0.5, rng.random(4) * 3
    for kw in ({}, {"weight": weight}, {"pos_weight": pos_weight}, {"weight": weight, "pos_weight": pos_weight}):
        ours = sr.nn.BCEWithLogitsLoss(reduction=reduction, **kw)(x, labels)
        theirs = torch.nn.functional.binary_cross_entropy_with_logits(
            tx, torch.tensor(labels), reduction=reduction, **{k: torch.tensor(v) for k, v in kw.items()}
        )
        _check_loss(ours, theirs, x, tx, f"binary_cross_entropy_with_logits {kw}")


def test_functional_softmax_linear_match_torch():
    rng = np.random.default_rng(4)
    x, tx = _pair(rng, 2, 3, 4)
    _check_loss(F.softmax(x, dim=1), torch.softmax(tx, 1), x, tx, "softmax")
    _check_loss(F.log_softmax(x, dim=0), torch.log_softmax(tx, 0), x, tx, "log_softmax")
    w = rng.standard_normal((5, 4))
    _check_loss(F.linear(x, w, np.ones(5)), torch.nn.functional.linear(tx, torch.tensor(w), torch.ones(5)), x, tx,
                "linear")  # fmt: skip


def test_init_gains_and_fans_match_torch():
    for name, param in [("linear", None), ("tanh", None), ("relu", None), ("leaky_relu", 0.2), ("selu", None)]:
        assert sr.nn.init.calculate_gain(name, param) == pytest.approx(torch.nn.init.calculate_gain(name, param))
    for shape in [(3, 4), (5, 2, 3, 3)]:
        assert sr.nn.init.calculate_fan_in_and_fan_out(np.empty(shape)) == \
            torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))  # fmt: skip


# -- optimizers ---------------------------------------------------------------------------------


def _models():
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2)).double()
    ours = sr.nn.Sequential(sr.nn.Linear(3, 5), sr.nn.Tanh(), sr.nn.Linear(5, 2))
    ours.load_state_dict(torch_state(theirs))
    return ours, theirs


OPTIMIZERS = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.5, "maximize": True}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.02, "amsgrad": True, "weight_decay": 0.01}),
    ("Adam", {"lr": 0.01, "betas": (0.3, 0.9), "maximize": True}),
    ("AdamW", {"lr": 0.01}),
    ("AdamW", {"lr": 0.02, "weight_decay": 0.5, "amsgrad": True}),
]


@pytest.mark.parametrize("name,kw", OPTIMIZERS, ids=[f"{n}-{'-'.join(map(str, k.values()))}" for n, k in OPTIMIZERS])
def test_optimizer_steps_match_torch(name, kw):
    ours, theirs = _models()
    our_opt = getattr(sr.optim, name)(ours.parameters(), **kw)
    their_opt = getattr(torch.optim, name)(theirs.parameters(), **kw)
    rng = np.random.default_rng(5)
    for step in range(6):
        x, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 2))
        our_opt.zero_grad()
        their_opt.zero_grad()
        F.mse_loss(ours(x), y).backward()
        torch.nn.functional.mse_loss(theirs(torch.tensor(x)), torch.tensor(y)).backward()
        our_opt.step()
        their_opt.step()
        for (n, p), (_, tp) in zip(ours.named_parameters(), theirs.named_parameters(), strict=True):
            close(p.data, tp, f"{name} {kw}: {n} after step {step + 1}")
    ours_sd, theirs_sd = our_opt.state_dict(), their_opt.state_dict()
    assert set(ours_sd) == set(theirs_sd) == {"state", "param_groups"}
    assert list(ours_sd["state"]) == list(theirs_sd["state"])
    for i, entry in theirs_sd["state"].items():
        assert set(ours_sd["state"][i]) == set(entry)
        for key, value in entry.items():
            close(np.asarray(ours_sd["state"][i][key]), value, f"state {i} {key}")
    for ours_g, theirs_g in zip(ours_sd["param_groups"], theirs_sd["param_groups"], strict=True):
        assert ours_g["params"] == theirs_g["params"]
        for key in kw:
            assert ours_g[key] == pytest.approx(theirs_g[key])


def test_optimizer_param_groups_match_torch():
    ours, theirs = _models()
    our_opt = sr.optim.SGD([{"params": ours[0].parameters(), "lr": 0.3}, {"params": ours[2].parameters()}],
                           lr=0.01, momentum=0.9)  # fmt: skip
    their_opt = torch.optim.SGD([{"params": theirs[0].parameters(), "lr": 0.3}, {"params": theirs[2].parameters()}],
                                lr=0.01, momentum=0.9)  # fmt: skip
    x, y = np.ones((2, 3)), np.zeros((2, 2))
    for _ in range(3):
        our_opt.zero_grad()
        their_opt.zero_grad()
        F.mse_loss(ours(x), y).backward()
        torch.nn.functional.mse_loss(theirs(torch.tensor(x)), torch.tensor(y)).backward()
        our_opt.step()
        their_opt.step()
    for (n, p), (_, tp) in zip(ours.named_parameters(), theirs.named_parameters(), strict=True):
        close(p.data, tp, n)
