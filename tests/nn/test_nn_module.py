"""Module mechanics (registration, names, state dicts, modes), init, dropout and optimizers without torch."""

from __future__ import annotations

import math

import numpy as np
import pytest

import semirad as sr
import semirad.nn.functional as F

nn = sr.nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 6), nn.Tanh())
        self.head = nn.Linear(6, 2, bias=False)
        self.scale = nn.Parameter(np.ones(2))
        self.note = "plain attribute"

    def forward(self, x):
        return self.head(self.encoder(x)) * self.scale


def test_registration_names_and_order():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    # PyTorch lists a module's own parameters first, then its children's
    assert names == ["scale", "encoder.0.weight", "encoder.0.bias", "head.weight"]
    assert [p.name for p in net.parameters()] == names
    assert [n for n, _ in net.named_children()] == ["encoder", "head"]
    assert [n for n, _ in net.named_modules()] == ["", "encoder", "encoder.0", "encoder.1", "head"]
    assert net.head.bias is None and "head.bias" not in net.state_dict()
    assert net.note == "plain attribute"
    assert len(list(net.children())) == 2


def test_explicit_parameter_names_are_kept():
    lin = nn.Linear(2, 2)
    lin.weight = nn.Parameter(np.eye(2), name="W")
    seq = nn.Sequential(lin)
    assert seq[0].weight.name == "W" and seq[0].bias.name == "0.bias"


def test_shared_parameters_are_listed_once():
    a = nn.Linear(3, 3)
    seq = nn.Sequential(a, nn.ReLU(), a)
    assert len(list(seq.parameters())) == 2
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]  # as PyTorch


def test_module_without_super_init_is_a_clear_error():
    class Bad(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Bad()


def test_state_dict_round_trip_and_copies():
    sr.manual_seed(0)
    a, b = Net(), Net()
    state = a.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    state["head.weight"][:] = 0  # a copy: the model is unchanged
    assert np.any(a.head.weight.data != 0)
    b.load_state_dict(a.state_dict())
    x = np.random.default_rng(0).standard_normal((3, 4))
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())


def test_load_state_dict_errors_name_keys_and_shapes():
    net = Net()
    state = net.state_dict()
    missing = {k: v for k, v in state.items() if k != "head.weight"}
    with pytest.raises(ValueError, match=r"Net.load_state_dict: missing keys \['head.weight'\].*\(2, 6\)"):
        net.load_state_dict(missing)
    with pytest.raises(ValueError, match=r"unexpected keys \['extra'\]"):
        net.load_state_dict({**state, "extra": np.zeros(1)})
    bad = dict(state, **{"encoder.0.weight": np.zeros((4, 6))})
    with pytest.raises(ValueError, match=r"'encoder.0.weight' \(Linear.weight\).*\(6, 4\).*\(4, 6\)"):
        net.load_state_dict(bad)
    before = net.state_dict()
    partial = {"head.weight": np.ones((2, 6)), "encoder.0.bias": np.ones(3)}  # second entry has a wrong shape
    with pytest.raises(ValueError):
        net.load_state_dict(partial, strict=False)
    np.testing.assert_array_equal(net.head.weight.data, before["head.weight"])  # nothing copied
    result = net.load_state_dict({"head.weight": np.ones((2, 6)), "junk": 1}, strict=False)
    assert result.unexpected_keys == ["junk"] and "scale" in result.missing_keys
    np.testing.assert_array_equal(net.head.weight.data, np.ones((2, 6)))


def test_train_eval_and_dropout():
    net = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5))
    assert net.training and net[1].training
    net.eval()
    assert not net.training and not net[1].training
    x = np.ones((2, 3))
    np.testing.assert_array_equal(net(x).numpy(), net[0](x).numpy())
    net.train()
    assert net[1].training


def test_dropout_is_seeded_and_scaled():
    x = np.ones((200, 50))
    sr.manual_seed(5)
    a = F.dropout(x, 0.3).numpy()
    sr.manual_seed(5)
    b = F.dropout(x, 0.3).numpy()
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) == {0.0, 1 / 0.7}
    assert abs((a == 0).mean() - 0.3) < 0.02
    g = np.random.default_rng(1)
    c = nn.Dropout(0.3, generator=np.random.default_rng(1))(x).numpy()
    np.testing.assert_array_equal(c, F.dropout(x, 0.3, generator=g).numpy())
    assert np.all(F.dropout(x, 1.0).numpy() == 0)
    assert F.dropout(x, 0.0).numpy().tolist() == x.tolist()
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)


def test_zero_grad_and_backward_accumulate():
    net = Net()
    x = np.ones((2, 4))
    net(x).sum().backward()
    first = net.head.weight.grad.copy()
    net(x).sum().backward()
    np.testing.assert_allclose(net.head.weight.grad, 2 * first)
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_init_is_seeded_and_follows_pytorch_bounds():
    sr.manual_seed(123)
    a = nn.Linear(50, 40)
    sr.manual_seed(123)
    b = nn.Linear(50, 40)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    bound = 1 / math.sqrt(50)
    assert np.abs(a.weight.data).max() <= bound and np.abs(a.bias.data).max() <= bound
    assert np.abs(a.weight.data).max() > 0.9 * bound  # uniform over the whole interval
    c = nn.Linear(50, 40, generator=np.random.default_rng(0))
    d = nn.Linear(50, 40, generator=np.random.default_rng(0))
    np.testing.assert_array_equal(c.weight.data, d.weight.data)
    w = nn.Parameter(np.empty((400, 300)))
    nn.init.kaiming_normal_(w, nonlinearity="relu", generator=0)
    assert w.data.std() == pytest.approx(math.sqrt(2 / 300), rel=0.02)
    nn.init.xavier_uniform_(w, gain=2.0)
    assert np.abs(w.data).max() <= 2.0 * math.sqrt(6 / 700)
    nn.init.xavier_normal_(w)
    assert w.data.std() == pytest.approx(math.sqrt(2 / 700), rel=0.02)
    nn.init.kaiming_uniform_(w, mode="fan_out")
    assert np.abs(w.data).max() <= math.sqrt(3) * math.sqrt(2) / math.sqrt(400)  # a=0: gain sqrt(2)
    assert nn.Embedding(10, 4, padding_idx=3).weight.data[3].tolist() == [0.0] * 4
    lstm = nn.LSTM(3, 16)
    assert all(np.abs(p.data).max() <= 0.25 for p in lstm.parameters())
    conv = nn.Conv2d(2, 4, 3)
    assert np.abs(conv.weight.data).max() <= 1 / math.sqrt(18)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        nn.init.xavier_uniform_(nn.Parameter(np.zeros(3)))


def test_dtype_conversion_keeps_training_working():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1)).float()
    assert all(p.dtype == np.float32 for p in net.parameters())
    opt = sr.optim.SGD(net.parameters(), lr=0.1)
    x = np.ones((2, 3), dtype=np.float32)
    F.mse_loss(net(x), np.zeros((2, 1), dtype=np.float32)).backward()
    opt.step()
    assert all(p.dtype == np.float32 and p.grad.dtype == np.float32 for p in net.parameters())
    net.double()
    assert net(x).dtype == np.float64


def test_repr_looks_like_pytorch():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.LSTM(4, 5, num_layers=2, batch_first=True))
    text = repr(net)
    assert text.startswith("Sequential(\n  (0): Conv2d(1, 2, kernel_size=(3, 3), stride=(1, 1))")
    assert "(3): LSTM(4, 5, num_layers=2, batch_first=True)" in text
    assert repr(nn.Linear(2, 3)) == "Linear(in_features=2, out_features=3, bias=True)"


def test_containers():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(layers) == 3 and len(list(layers.parameters())) == 6
    assert [n for n, _ in layers.named_parameters()][:2] == ["0.weight", "0.bias"]
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    seq.append(nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear) and isinstance(seq[1:], nn.Sequential)
    with pytest.raises(IndexError, match="out of range"):
        seq[5]


def test_optimizer_basics_without_torch():
    w = nn.Parameter(np.array([3.0, -2.0]))
    opt = sr.optim.SGD([w], lr=0.1, momentum=0.9, nesterov=True)
    for _ in range(100):
        opt.zero_grad()
        (w * w).sum().backward()
        opt.step()
    assert np.abs(w.data).max() < 1e-3
    w2 = nn.Parameter(np.array([3.0, -2.0]))
    adam = sr.optim.Adam([w2], lr=0.1)
    for _ in range(300):
        adam.zero_grad()
        ((w2 - 1.0) ** 2).sum().backward()
        adam.step()
    np.testing.assert_allclose(w2.data, [1.0, 1.0], atol=1e-2)
    state = adam.state_dict()
    assert state["state"][0]["step"] == 300 and state["param_groups"][0]["params"] == [0]
    fresh = sr.optim.Adam([w2], lr=0.5)
    fresh.load_state_dict(state)
    assert fresh.param_groups[0]["lr"] == 0.1 and fresh.state[w2]["step"] == 300
    with pytest.raises(ValueError, match="empty parameter list"):
        sr.optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="Nesterov"):
        sr.optim.SGD([w], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="leaf tensor that requires grad"):
        sr.optim.Adam([w * 2])
    with pytest.raises(ValueError, match="more than one parameter group"):
        sr.optim.SGD([{"params": [w]}, {"params": [w]}], lr=0.1)


def test_step_does_not_disturb_an_earlier_graph():
    lin = nn.Linear(2, 1)
    opt = sr.optim.SGD(lin.parameters(), lr=1.0)
    loss = lin(np.ones((1, 2))).sum()
    before = sr.grad(loss, [lin.bias])[0].copy()
    loss.backward(retain_graph=True)
    opt.step()
    np.testing.assert_array_equal(sr.grad(loss, [lin.bias])[0], before)


def test_buffers_are_in_the_state_dict():
    class Scaler(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("running_mean", np.zeros(3))
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            return self.fc(x - self.running_mean)

    s = Scaler()
    assert list(s.state_dict()) == ["running_mean", "fc.weight", "fc.bias"]  # own entries first, as PyTorch
    assert [n for n, _ in s.named_buffers()] == ["running_mean"]
    state = s.state_dict()
    state["running_mean"] = np.ones(3)
    s.load_state_dict(state)
    np.testing.assert_array_equal(s.running_mean, np.ones(3))
    with pytest.raises(ValueError, match=r"'running_mean' \(Scaler.running_mean\).*\(3,\).*\(4,\)"):
        s.load_state_dict(dict(state, running_mean=np.ones(4)))


def test_deepcopy_gives_an_independent_model():
    import copy

    net = Net()
    twin = copy.deepcopy(net)
    twin.head.weight.data = np.zeros_like(twin.head.weight.data)
    assert np.any(net.head.weight.data != 0)
    twin(np.ones((1, 4))).sum().backward()
    assert net.head.weight.grad is None and twin.head.weight.grad is not None


def _tanh_component(model, x):
    """The component of the op under the final sum that ``model(x)`` records."""
    return model(x)._node.parents[0].component


class _Holder(sr.nn.Module):
    def __init__(self, first, second=None):
        super().__init__()
        self.first = first
        if second is not None:
            self.second = second

    def forward(self, x):
        return (self.first(x) if "second" not in self._modules else self.second(x)).sum()


def test_component_names_follow_changes_of_the_children():
    import copy
    import pickle

    x = sr.tensor(np.ones((1, 2)), requires_grad=True)
    tanh = sr.nn.Tanh()
    model = _Holder(tanh)
    assert _tanh_component(model, x) == "first"
    model.second = sr.nn.Tanh()  # a new child: the cached names are dropped
    assert _tanh_component(model, x) == "second"
    del model.second
    assert _tanh_component(model, x) == "first"
    shared = _Holder(tanh, tanh)  # one module under two names: the first name, as a scan finds it
    assert _tanh_component(shared, x) == "first"
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):  # stale ids in a copy
        assert _tanh_component(clone, x) == "first"
    model.add_module("first", sr.nn.Sigmoid())
    assert model(x)._node.parents[0].component == "first" and model(x)._node.parents[0].op_name == "sigmoid"
