"""LeakyReLU, BatchNorm1d/2d, Conv1d (and padding modes), F.pad, ModuleDict, and state dicts in
PyTorch's order: parity with PyTorch in float64, finite differences, traces and error messages."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from nn_cases import close, op_names
from test_nn_gradcheck import check_gradients
from test_nn_trace import _semirings

import semirad as sr
import semirad.nn.functional as F
from semirad import nn
from semirad.nn.module import IncompatibleKeys, StateDictError

RTOL = 1e-9


@pytest.fixture
def torch():
    torch = pytest.importorskip("torch")
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    yield torch
    torch.set_default_dtype(previous)


def paired(torch, ours, theirs):
    """Load the PyTorch module's state into ours (the keys must come in the same order)."""
    state = {k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()}
    assert list(ours.state_dict()) == list(state), "state dict keys (and their order) differ from PyTorch's"
    ours.load_state_dict(state)
    return ours, theirs


def check_step(torch, ours, theirs, x, what, weights_seed=7):
    """Forward and every parameter and input gradient of a weighted sum of the output, against PyTorch."""
    ox, tx = sr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, tout = ours(ox), theirs(tx)
    close(out.numpy(), tout, f"{what}: output")
    weights = np.random.default_rng(weights_seed).standard_normal(out.shape)
    params = [p for _, p in ours.named_parameters()]
    tparams = [p for _, p in theirs.named_parameters()]
    grads = sr.grad((out * weights).sum(), params + [ox])
    tgrads = torch.autograd.grad((tout * torch.tensor(weights)).sum(), tparams + [tx])
    names = [n for n, _ in ours.named_parameters()] + ["input"]
    for name, g, tg in zip(names, grads, tgrads, strict=True):
        close(g, tg, f"{what}: grad of {name}")


def check_buffers(ours, theirs, what):
    for name, buffer in theirs.named_buffers():
        mine = dict(ours.named_buffers())[name]
        np.testing.assert_allclose(mine, buffer.numpy(), rtol=1e-12, atol=0, err_msg=f"{what}: {name}")
        assert mine.dtype == buffer.numpy().dtype, f"{what}: {name} dtype"


# -- LeakyReLU --------------------------------------------------------------------------------------


@pytest.mark.parametrize("slope", [0.01, 0.2, -0.5, 1.5])
def test_leaky_relu_matches_torch(torch, slope):
    x = np.random.default_rng(0).standard_normal((3, 4))
    x[0, :2] = 0.0  # the kink: PyTorch's derivative there is the slope
    check_step(torch, nn.LeakyReLU(slope), torch.nn.LeakyReLU(slope), x, f"LeakyReLU({slope})")
    out = F.leaky_relu(sr.tensor(x), negative_slope=slope)
    close(out.numpy(), torch.nn.functional.leaky_relu(torch.tensor(x), slope), "F.leaky_relu")


def test_leaky_relu_default_slope_and_repr():
    assert nn.LeakyReLU().negative_slope == 0.01
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    x = sr.tensor([-1.0, 0.0, 2.0], requires_grad=True)
    (g,) = sr.grad(F.leaky_relu(x).sum(), [x])
    assert g.tolist() == [0.01, 0.01, 1.0]


# -- BatchNorm ---------------------------------------------------------------------------------------

BN_CASES = [
    ("1d-NC", lambda m: m.BatchNorm1d(3), (6, 3)),
    ("1d-NCL", lambda m: m.BatchNorm1d(3, momentum=0.3), (4, 3, 5)),
    ("1d-cumulative", lambda m: m.BatchNorm1d(2, momentum=None), (5, 2, 3)),
    ("1d-noaffine", lambda m: m.BatchNorm1d(3, affine=False, eps=1e-3), (4, 3)),
    ("1d-untracked", lambda m: m.BatchNorm1d(3, track_running_stats=False), (4, 3, 2)),
    ("2d", lambda m: m.BatchNorm2d(2), (3, 2, 4, 3)),
    ("2d-cumulative-noaffine", lambda m: m.BatchNorm2d(3, momentum=None, affine=False), (2, 3, 2, 2)),
]


@pytest.mark.parametrize("make,shape", [c[1:] for c in BN_CASES], ids=[c[0] for c in BN_CASES])
def test_batch_norm_matches_torch_in_training_and_eval(torch, make, shape):
    theirs = make(torch.nn).double()
    if theirs.affine:  # not the ones/zeros init: the gradients of weight and bias must be right too
        with torch.no_grad():
            theirs.weight.uniform_(0.5, 1.5)
            theirs.bias.uniform_(-0.5, 0.5)
    ours, theirs = paired(torch, make(nn), theirs)
    rng = np.random.default_rng(1)
    for step in range(3):  # running statistics after several training steps
        x = 2.0 * rng.standard_normal(shape) + step
        check_step(torch, ours, theirs, x, f"train step {step}", weights_seed=step)
        check_buffers(ours, theirs, f"after train step {step}")
    ours.eval(), theirs.eval()
    check_step(torch, ours, theirs, rng.standard_normal(shape), "eval")
    check_buffers(ours, theirs, "after eval")  # eval leaves the statistics alone


def test_batch_norm_running_stats_and_buffers():
    bn = nn.BatchNorm1d(2, momentum=0.5)
    assert [n for n, _ in bn.named_buffers()] == ["running_mean", "running_var", "num_batches_tracked"]
    assert bn.num_batches_tracked.dtype == np.int64 and bn.num_batches_tracked.shape == ()
    x = np.array([[1.0, 0.0], [3.0, 4.0], [5.0, 2.0]])
    bn(x)
    np.testing.assert_allclose(bn.running_mean, 0.5 * x.mean(0))
    np.testing.assert_allclose(bn.running_var, 0.5 + 0.5 * x.var(0, ddof=1))  # the unbiased variance
    assert int(bn.num_batches_tracked) == 1
    bn.eval()
    before = bn.state_dict()
    out = bn(x)
    np.testing.assert_allclose(out.numpy(), (x - bn.running_mean) / np.sqrt(bn.running_var + 1e-5))
    for key, value in bn.state_dict().items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)
    bn.reset_running_stats()
    assert bn.running_mean.tolist() == [0.0, 0.0] and bn.running_var.tolist() == [1.0, 1.0]
    assert int(bn.num_batches_tracked) == 0
    assert list(nn.BatchNorm2d(3, track_running_stats=False).state_dict()) == ["weight", "bias"]


def test_functional_batch_norm_updates_the_given_statistics(torch):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 2))
    mean, var = rng.standard_normal(3), rng.random(3) + 0.5
    tmean, tvar = torch.tensor(mean), torch.tensor(var)
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    out = F.batch_norm(sr.tensor(x), mean, var, w, b, training=True, momentum=0.2)
    tout = torch.nn.functional.batch_norm(torch.tensor(x), tmean, tvar, torch.tensor(w), torch.tensor(b),
                                          training=True, momentum=0.2)  # fmt: skip
    close(out.numpy(), tout, "output")
    close(mean, tmean, "running_mean (in place)")
    close(var, tvar, "running_var (in place)")
    stat = sr.tensor(np.zeros(3))  # a tensor's (read-only) data is replaced
    F.batch_norm(sr.tensor(x), stat, np.ones(3), training=True)
    close(stat.numpy(), 0.1 * x.mean(axis=(0, 2)), "tensor running_mean")
    out = F.batch_norm(sr.tensor(x), mean, var, w, b)  # eval: the statistics are constants
    tout = torch.nn.functional.batch_norm(torch.tensor(x), tmean, tvar, torch.tensor(w), torch.tensor(b))
    close(out.numpy(), tout, "eval output")


def test_batch_norm_errors_name_the_module_and_shape():
    bn1 = nn.BatchNorm1d(4)
    label = r"BatchNorm1d\(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True\)"
    expected = r": expected a 2-D \(N, 4\) or 3-D \(N, 4, L\) input, got input of shape \(2, 4, 3, 3\)"
    with pytest.raises(ValueError, match=label + expected):
        bn1(np.zeros((2, 4, 3, 3)))
    with pytest.raises(ValueError, match=r"BatchNorm1d\(4.*got input of shape \(2, 3\)"):
        bn1(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"BatchNorm2d\(2.*expected a 4-D \(N, 2, H, W\) input, got input .* \(5, 2\)"):
        nn.BatchNorm2d(2)(np.zeros((5, 2)))
    with pytest.raises(ValueError, match=r"BatchNorm1d\(4.*more than 1 value per channel when training.*\(1, 4\)"):
        bn1(np.zeros((1, 4)))
    bn1.eval()
    assert bn1(np.zeros((1, 4))).shape == (1, 4)  # eval mode takes a single sample
    with pytest.raises(ValueError, match=r"batch_norm: running_var of shape \(2,\) does not match the 3 channels"):
        F.batch_norm(np.zeros((2, 3)), np.zeros(3), np.ones(2))
    frozen = np.zeros(3)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="batch_norm: running_mean must be a writable array"):
        F.batch_norm(np.ones((2, 3)), frozen, np.ones(3), training=True)


def test_batch_norm_matches_finite_differences():
    rng = np.random.default_rng(0)
    bn = nn.BatchNorm1d(3)
    bn.weight.data = rng.uniform(0.5, 1.5, 3)
    bn.bias.data = rng.standard_normal(3)
    x = sr.tensor(rng.standard_normal((4, 3, 2)), requires_grad=True)
    weights = rng.standard_normal((4, 3, 2))
    check_gradients(lambda: (bn(x) * weights).sum(), [bn.weight, bn.bias, x], rng, "BatchNorm1d")


# -- Conv1d ------------------------------------------------------------------------------------------

CONV1D_CASES = [
    ("basic", dict(in_channels=2, out_channels=3, kernel_size=3), (2, 2, 7)),
    ("stride-pad-dilation", dict(in_channels=2, out_channels=3, kernel_size=3, stride=2, padding=2, dilation=2),
     (2, 2, 9)),
    ("groups-nobias", dict(in_channels=4, out_channels=2, kernel_size=2, groups=2, bias=False), (1, 4, 5)),
    ("same-even-kernel", dict(in_channels=1, out_channels=2, kernel_size=4, padding="same", dilation=2), (2, 1, 9)),
    ("valid-unbatched", dict(in_channels=3, out_channels=2, kernel_size=3, padding="valid"), (3, 6)),
    ("reflect", dict(in_channels=2, out_channels=2, kernel_size=3, padding=2, padding_mode="reflect"), (2, 2, 5)),
    ("replicate-stride", dict(in_channels=2, out_channels=3, kernel_size=3, stride=2, padding=1,
                              padding_mode="replicate"), (1, 2, 6)),
    ("circular-same", dict(in_channels=1, out_channels=2, kernel_size=4, padding="same", padding_mode="circular"),
     (2, 1, 5)),
]  # fmt: skip


@pytest.mark.parametrize("kwargs,shape", [c[1:] for c in CONV1D_CASES], ids=[c[0] for c in CONV1D_CASES])
def test_conv1d_matches_torch(torch, kwargs, shape):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch's note on 'same' with an even kernel
        theirs = torch.nn.Conv1d(**kwargs)
        ours, theirs = paired(torch, nn.Conv1d(**kwargs), theirs)
        check_step(torch, ours, theirs, np.random.default_rng(1).standard_normal(shape), f"Conv1d {kwargs}")
    assert repr(ours) == repr(theirs)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_conv2d_padding_modes_match_torch(torch, mode):
    kwargs = dict(in_channels=2, out_channels=3, kernel_size=(3, 2), padding=(1, 2), padding_mode=mode)
    ours, theirs = paired(torch, nn.Conv2d(**kwargs), torch.nn.Conv2d(**kwargs))
    check_step(torch, ours, theirs, np.random.default_rng(2).standard_normal((2, 2, 4, 5)), f"Conv2d {mode}")


def test_conv1d_init_matches_torchs_distribution():
    sr.manual_seed(0)
    conv = nn.Conv1d(4, 6, 5)
    bound = 1 / np.sqrt(4 * 5)  # kaiming_uniform(a=sqrt(5)) of fan_in 20, as the bias
    assert np.abs(conv.weight.data).max() <= bound and np.abs(conv.bias.data).max() <= bound
    assert np.abs(conv.weight.data).max() > 0.8 * bound


def test_conv1d_errors_name_the_op_and_shapes():
    conv = nn.Conv1d(2, 3, 3)
    label = r"Conv1d\(2, 3, kernel_size=\(3,\), stride=\(1,\)\)"
    with pytest.raises(ValueError, match=label + r": expected input of shape \(N, 2, L\) or \(2, L\), got .*3, 5\)"):
        conv(np.zeros((1, 3, 5)))
    with pytest.raises(ValueError, match=r"Conv1d\(2, 3.*: input of shape \(1, 2, 2\) is too small for kernel size 3"):
        conv(np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match=r"conv1d: weight must be 3-D"):
        F.conv1d(np.zeros((1, 2, 5)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"conv1d: expected input with 4 channels for weight of shape \(4, 2, 1\)"):
        F.conv1d(np.zeros((1, 2, 5)), np.zeros((4, 2, 1)), groups=2)
    with pytest.raises(ValueError, match=r"conv1d: out_channels 3 is not divisible by groups 2"):
        F.conv1d(np.zeros((1, 4, 5)), np.zeros((3, 2, 1)), groups=2)
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        nn.Conv1d(2, 3, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="Conv1d: padding='same' is not supported for strided"):
        nn.Conv1d(2, 3, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match=r"Conv2d\(.*reflect padding must be smaller than the axis"):
        nn.Conv2d(1, 1, 3, padding=3, padding_mode="reflect")(np.zeros((1, 1, 3, 3)))


def test_conv1d_matches_finite_differences():
    rng = np.random.default_rng(0)
    conv = nn.Conv1d(2, 2, 3, stride=2, padding=1, dilation=2, padding_mode="reflect")
    x = sr.tensor(rng.standard_normal((2, 2, 6)), requires_grad=True)
    weights = rng.standard_normal(conv(x).shape)
    check_gradients(lambda: (conv(x) * weights).sum(), [conv.weight, conv.bias, x], rng, "Conv1d")


# -- F.pad -------------------------------------------------------------------------------------------

PAD_CASES = [  # (input shape, pad) valid in PyTorch for every mode unless the mode is named
    ((2, 3, 5), (1, 2)),
    ((2, 3, 5), (4, 4)),  # reflect: the largest pad allowed (size - 1)
    ((2, 3, 5), (-1, 3)),  # a negative pad crops
    ((2, 3, 5), (2, -2)),
    ((1, 2, 3, 4), (1, 1, 2, 0)),
    ((1, 2, 3, 4), (3, -1, -1, 2)),
    ((2, 3, 4), (1, 2, 2, 1)),  # unbatched 2-D padding
    ((1, 1, 2, 3, 4), (1, 0, 1, 1, 0, 1)),
    ((2, 3, 5), (5, 5), "constant"),
    ((2, 3, 5), (5, 4), "circular"),  # wraps around once
    ((2, 3, 5), (-3, -2), "constant"),  # to an empty axis
    ((3, 4), (2, 1, -1, 3), "constant"),  # constant mode pads any axes
]


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("case", PAD_CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def test_pad_matches_torch(torch, case, mode):
    shape, amounts = case[:2]
    if len(case) == 3 and case[2] != mode:
        pytest.skip("a pad that only this mode accepts")
    x = np.random.default_rng(0).standard_normal(shape)
    ox, tx = sr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    value = 0.5 if mode == "constant" else None
    out = F.pad(ox, amounts, mode=mode, value=value)
    tout = torch.nn.functional.pad(tx, amounts, mode=mode, value=value)
    close(out.numpy(), tout, f"{mode} {amounts}")
    weights = np.random.default_rng(1).standard_normal(out.shape)
    (g,) = sr.grad((out * weights).sum(), [ox])
    (tg,) = torch.autograd.grad((tout * torch.tensor(weights)).sum(), [tx], allow_unused=True)
    close(g, torch.zeros_like(tx) if tg is None else tg, f"{mode} {amounts}: grad")


@pytest.mark.parametrize("mode,numpy_mode", [("reflect", "reflect"), ("replicate", "edge"), ("circular", "wrap")])
def test_pad_takes_any_number_of_axes_as_numpy_pad(mode, numpy_mode):
    x = np.arange(24.0).reshape(2, 3, 4)
    amounts = (3, 1, 2, 0, 1, 1)  # all three axes (PyTorch: 1-3 axes after a batch/channel axis)
    expected = np.pad(x, [(1, 1), (2, 0), (3, 1)], mode=numpy_mode)
    np.testing.assert_array_equal(F.pad(x, amounts, mode=mode).numpy(), expected)
    np.testing.assert_array_equal(F.pad(x[0, 0], (2, 3), mode=mode).numpy(), np.pad(x[0, 0], (2, 3), mode=numpy_mode))


def test_pad_is_one_gather_per_axis_with_single_edges():
    x = sr.tensor(np.arange(4.0), requires_grad=True, name="x")
    out = F.pad(x, (2, 1), mode="reflect")  # [2, 1, 0, 1, 2, 3, 2]
    assert out._node.op.name == "getitem"
    assert out.tolist() == [2.0, 1.0, 0.0, 1.0, 2.0, 3.0, 2.0]
    (g,) = sr.grad(out.sum(), [x])
    assert g.tolist() == [1.0, 2.0, 3.0, 1.0]  # each copy is an edge of weight 1
    tr = sr.trace((out * np.arange(1.0, 8.0)).sum(), [x])
    assert tr[x].tolist() == [3.0, 4.0, 7.0, 6.0]  # the best copy of each element


def test_pad_errors_are_clear():
    x = np.zeros((1, 2, 3))
    with pytest.raises(ValueError, match=r"pad: padding length must be divisible by 2, got \(1,\)"):
        F.pad(x, (1,))
    with pytest.raises(ValueError, match=r"pad: padding \(1, 1, 1, 1, 1, 1, 1, 1\) pads 4 axes, .*2, 3\) has only"):
        F.pad(x, (1,) * 8)
    with pytest.raises(ValueError, match=r"pad: mode must be one of .* got 'mirror'"):
        F.pad(x, (1, 1), mode="mirror")
    expected = r"pad: reflect padding \(3, 0\) of axis 2 of input of shape \(1, 2, 3\): reflect padding must be"
    with pytest.raises(ValueError, match=expected + r" smaller than the axis \(3\)"):
        F.pad(x, (3, 0), mode="reflect")
    with pytest.raises(ValueError, match=r"circular padding can wrap around at most once \(axis of 3\)"):
        F.pad(x, (4, 0), mode="circular")
    with pytest.raises(ValueError, match=r"pad: replicate padding \(-2, -1\) of axis 2 .* leaves 0 elements"):
        F.pad(x, (-2, -1), mode="replicate")
    with pytest.raises(ValueError, match=r"pad: constant padding \(-2, -2\) of axis 2 .* leaves -1 elements"):
        F.pad(x, (-2, -2))
    with pytest.raises(ValueError, match=r"pad: mode 'reflect' takes no value"):
        F.pad(x, (1, 1), mode="reflect", value=1.0)
    with pytest.raises(TypeError, match="pad: pad must be a sequence of ints"):
        F.pad(x, 1)


def test_pad_matches_finite_differences():
    rng = np.random.default_rng(0)
    x = sr.tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    for mode in ("constant", "reflect", "replicate", "circular"):
        weights = rng.standard_normal(F.pad(x, (2, 1, -1, 2), mode=mode).shape)
        check_gradients(lambda m=mode, w=weights: (F.pad(x, (2, 1, -1, 2), mode=m).tanh() * w).sum(), [x], rng, mode)


# -- traces ------------------------------------------------------------------------------------------

OPS = op_names()


class Net1d(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 3, 3, stride=2, padding=1, padding_mode="replicate")
        self.bn = nn.BatchNorm1d(3)
        self.act = nn.LeakyReLU(0.1)
        self.head = nn.Linear(3 * 4, 2)

    def forward(self, x):
        with sr.component("pad"):
            x = F.pad(x, (1, 2), mode="reflect")
        h = self.act(self.bn(self.conv(x)))
        return self.head(h.reshape(h.shape[0], -1))


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_trace_through_conv1d_batchnorm_leaky_relu_and_pad(training):
    sr.manual_seed(0)
    net = Net1d().train(training)
    rng = np.random.default_rng(0)
    net.train()(rng.standard_normal((4, 2, 5)))  # some running statistics
    net.train(training)
    x = sr.tensor(rng.standard_normal((4, 2, 5)), requires_grad=True, name="x")
    loss = F.cross_entropy(net(x), np.array([0, 1, 1, 0]))
    named = list(net.named_parameters())
    tr = sr.trace(loss, [p for _, p in named] + [x])
    grads = sr.grad(loss, [p for _, p in named] + [x])
    for (name, p), g in zip(named + [("x", x)], grads, strict=True):
        values = np.asarray(tr[p])
        assert np.all(np.isfinite(values)), name
        assert np.all((values != 0) | (g == 0)), f"{name} has a gradient but no best path"
        index = np.unravel_index(int(np.abs(values).argmax()), p.shape)
        path = tr.path(p, index)
        assert path.steps[0].name == name and all(s.op in OPS for s in path.steps)
        assert path.value == pytest.approx(float(values[index]), rel=1e-9)
    components = [s.component for s in tr.path(x, np.unravel_index(int(np.abs(tr[x]).argmax()), x.shape)).steps]
    for expected in ("pad", "conv", "bn", "act", "head"):
        assert expected in components, f"{expected} not on the path: {components}"
    conv_path = tr.path(net.conv.weight, (0, 0, 0))
    assert [s.op for s in conv_path.steps if s.component == "act"] == ["mul"]  # LeakyReLU: one edge


@pytest.mark.parametrize("semiring", _semirings(), ids=lambda c: c.__name__)
def test_every_semiring_sweeps_through_the_new_layers(semiring):
    try:
        S = semiring()
    except TypeError:
        S = semiring(2)  # KBest(k)
    sr.manual_seed(0)
    net = Net1d()
    loss = F.cross_entropy(net(np.random.default_rng(0).standard_normal((4, 2, 5))), np.array([0, 1, 1, 0]))
    params = list(net.parameters())
    result = sr.backward(loss, params, semiring=S)
    for p in params:
        value = np.asarray(result[p])
        assert value.shape[value.ndim - p.ndim :] == p.shape, f"{semiring.__name__}: {p.name}"
        if value.dtype.kind == "f":
            assert not np.isnan(value).any() and not np.isposinf(value).any(), f"{semiring.__name__}: {p.name}"


# -- ModuleDict --------------------------------------------------------------------------------------


def test_module_dict_api_matches_torch(torch):
    def build(m):
        d = m.ModuleDict({"b": m.Linear(2, 3), "a": m.BatchNorm1d(3)})
        d["c"] = m.Linear(3, 1)
        d.update([("d", m.ReLU()), ("b", m.Linear(2, 2))])  # replacing keeps the position
        d.update(m.ModuleDict({"e": m.Linear(1, 1)}))
        del d["d"]
        popped = d.pop("e")
        return d, popped

    ours, popped = build(nn)
    theirs, tpopped = build(torch.nn)
    assert list(ours) == list(theirs) == ["b", "a", "c"]
    assert list(ours.keys()) == list(theirs.keys())
    assert [type(v).__name__ for v in ours.values()] == [type(v).__name__ for v in theirs.values()]
    assert [k for k, _ in ours.items()] == [k for k, _ in theirs.items()]
    assert len(ours) == len(theirs) == 3 and "a" in ours and "e" not in ours
    assert type(popped).__name__ == type(tpopped).__name__ == "Linear"
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert ours["b"].weight.name == "b.weight"
    ours.clear()
    assert len(ours) == 0 and list(ours.state_dict()) == []


def test_module_dict_errors():
    d = nn.ModuleDict()
    with pytest.raises(KeyError):
        d["missing"]
    with pytest.raises(TypeError, match="ModuleDict keys must be strings"):
        d[1] = nn.ReLU()
    with pytest.raises(KeyError, match="can't contain '.'"):
        d["a.b"] = nn.ReLU()
    with pytest.raises(ValueError, match=r"element #0 of the iterable is not a \(key, module\) pair"):
        d.update([nn.ReLU()])
    with pytest.raises(NotImplementedError, match="ModuleDict has no forward"):
        d(1)


# -- state dicts: PyTorch's order, dtypes, strict ----------------------------------------------------


def _nested(m):
    """Buffers and parameters at several levels, containers, BatchNorm and a bidirectional LSTM."""

    def ones(n):
        return np.ones(n) if m is nn else __import__("torch").ones(n)

    class Block(m.Module):
        def __init__(self):
            super().__init__()
            self.conv = m.Conv1d(2, 2, 3, padding=1)
            self.register_buffer("scale", ones(2))
            self.bn = m.BatchNorm1d(2)
            self.gain = m.Parameter(ones(2))

    class Model(m.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("step", ones(1))
            self.blocks = m.ModuleList([Block(), Block()])
            self.heads = m.ModuleDict({"y": m.Linear(2, 1), "norm": m.BatchNorm2d(2)})
            self.lstm = m.LSTM(2, 3, num_layers=2, bidirectional=True)
            self.out_scale = m.Parameter(ones(1))

    return Model()


STATE_CASES = [
    ("BatchNorm1d", lambda m: m.BatchNorm1d(3)),
    ("BatchNorm2d-noaffine", lambda m: m.BatchNorm2d(3, affine=False)),
    ("LSTM", lambda m: m.LSTM(3, 4, num_layers=2, bidirectional=True)),
    ("Sequential-CNN", lambda m: m.Sequential(m.Conv2d(1, 2, 3), m.BatchNorm2d(2), m.ReLU(), m.Flatten(),
                                              m.Linear(2, 2), m.BatchNorm1d(2))),
    ("nested", _nested),
]  # fmt: skip


@pytest.mark.parametrize("make", [c[1] for c in STATE_CASES], ids=[c[0] for c in STATE_CASES])
def test_state_dict_order_is_torchs(torch, make):
    ours, theirs = make(nn), make(torch.nn).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())  # torch tensors, unchanged
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[key], value.numpy(), err_msg=key)
    assert list(ours.state_dict(prefix="model.")) == ["model." + k for k in theirs.state_dict()]


def test_state_dict_keep_vars_gives_the_parameters():
    bn = nn.BatchNorm1d(2)
    state = bn.state_dict(keep_vars=True)
    assert state["weight"] is bn.weight and state["running_mean"] is bn.running_mean
    copies = bn.state_dict()
    assert copies["weight"] is not bn.weight.data and copies["running_mean"] is not bn.running_mean


def test_loading_float32_weights_keeps_float64_and_warns_once(torch):
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2)).float()
    ours = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours.load_state_dict(theirs.state_dict())
    assert len(caught) == 1 and caught[0].category is UserWarning
    message = str(caught[0].message)
    assert message.startswith("Sequential.load_state_dict: converted 6 entries to the model's dtype: ")
    for key in ("0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var"):
        assert f"'{key}' (float32 -> float64)" in message
    assert "num_batches_tracked" not in message  # int64 into int64
    assert all(p.dtype == np.float64 for p in ours.parameters())
    assert ours[1].running_var.dtype == np.float64 and ours[1].num_batches_tracked.dtype == np.int64
    np.testing.assert_array_equal(ours[0].weight.data, theirs[0].weight.detach().double().numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same dtypes: no warning
        ours.load_state_dict(ours.state_dict())


def test_load_state_dict_strict_as_torch(torch):
    def make(m):
        return m.Sequential(m.Linear(2, 2), m.BatchNorm1d(2))

    ours, theirs = make(nn), make(torch.nn).double()
    state = {k: v for k, v in theirs.state_dict().items() if k != "1.running_var"}
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(StateDictError) as error:
        ours.load_state_dict(state)
    assert isinstance(error.value, ValueError) and isinstance(error.value, RuntimeError)
    assert "missing keys ['1.running_var']" in str(error.value)
    assert "unexpected keys ['extra.weight']" in str(error.value)
    with pytest.raises(RuntimeError):
        theirs.load_state_dict(state)  # PyTorch raises too
    result = ours.load_state_dict(state, strict=False)
    expected = theirs.load_state_dict(state, strict=False)
    assert isinstance(result, IncompatibleKeys)
    assert result.missing_keys == expected.missing_keys and result.unexpected_keys == expected.unexpected_keys
    np.testing.assert_array_equal(ours[1].running_mean, theirs[1].running_mean.numpy())
