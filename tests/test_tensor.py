"""The Tensor contract: attributes, conversions, operators with Python scalars, methods."""

import numpy as np
import pytest

import semirad as sr


def test_attributes_and_conversions():
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = sr.tensor(data, requires_grad=True, name="t")
    assert (t.shape, t.ndim, t.size(), t.numel(), t.dtype, t.name) == ((2, 3), 2, (2, 3), 6, np.float32, "t")
    assert t.requires_grad and t.is_leaf and t.grad is None
    np.testing.assert_array_equal(t.numpy(), data)
    data[0, 0] = 100.0
    assert t.numpy()[0, 0] == 0.0  # sr.tensor copies, as torch.tensor does
    assert sr.tensor([[2.5]]).item() == 2.5
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        t.item()
    d = t.detach()
    assert not d.requires_grad and d.data is t.data
    assert "requires_grad=True" in repr(t) and "name='t'" in repr(t)
    assert np.asarray(t).shape == (2, 3)
    assert [row.shape for row in t] == [(3,), (3,)]


def test_python_numbers_and_arrays_on_either_side():
    x = sr.tensor([1.0, 2.0], requires_grad=True)
    cases = {
        "x + 1": (x + 1, [2, 3]), "1 + x": (1 + x, [2, 3]), "x - 1": (x - 1, [0, 1]), "1 - x": (1 - x, [0, -1]),
        "2 * x": (2 * x, [2, 4]), "x / 2": (x / 2, [0.5, 1]), "2 / x": (2 / x, [2, 1]), "x ** 2": (x**2, [1, 4]),
        "2 ** x": (2**x, [2, 4]), "-x": (-x, [-1, -2]), "array * x": (np.array([3.0, 4.0]) * x, [3, 8]),
    }  # fmt: skip
    for label, (y, expected) in cases.items():
        assert isinstance(y, sr.Tensor) and y.requires_grad, label
        np.testing.assert_allclose(y.numpy(), expected, err_msg=label)


def test_python_scalars_keep_float32():
    x = sr.tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    for y in (x * 2.5, 1.0 - x, x**2, x / 3.0):
        assert y.dtype == np.float32


def test_methods_match_numpy():
    a = np.random.default_rng(0).standard_normal((2, 3, 4))
    t = sr.tensor(a)
    checks = [
        (t.sum(axis=(0, 2)), a.sum(axis=(0, 2))),
        (t.mean(axis=-1, keepdims=True), a.mean(axis=-1, keepdims=True)),
        (t.amax(axis=1), a.max(axis=1)),
        (t.min(), a.min()),
        (t.T, a.T),
        (t.transpose(1, 0, 2), a.transpose(1, 0, 2)),
        (t.swapaxes(0, 2), a.swapaxes(0, 2)),
        (t.reshape(6, 4), a.reshape(6, 4)),
        (t.reshape((4, -1)), a.reshape(4, -1)),
        (t.expand_dims(1), a[:, None]),
        (t[:, :1].squeeze(1), a[:, 0]),
        (t.broadcast_to((5, 2, 3, 4)), np.broadcast_to(a, (5, 2, 3, 4))),
        (t[1, ::-1, [0, 0, 3]], a[1, ::-1, [0, 0, 3]]),
        (t[a > 0], a[a > 0]),
        (t[..., None, 1], a[..., None, 1]),
        (t.exp(), np.exp(a)),
        (t.abs().sqrt(), np.sqrt(np.abs(a))),
        (t.sigmoid(), 1 / (1 + np.exp(-a))),
        (t.relu(), np.maximum(a, 0)),
        (t.clip(-0.5, 0.5), np.clip(a, -0.5, 0.5)),
        (t.clip(min=0), np.clip(a, 0, None)),
        (t.logsumexp(axis=2), np.log(np.exp(a).sum(axis=2))),
        (t.softmax(axis=0), np.exp(a) / np.exp(a).sum(axis=0, keepdims=True)),
        (t.log_softmax(), a - np.log(np.exp(a).sum(axis=-1, keepdims=True))),
        (sr.concat([t, t], axis=1), np.concatenate([a, a], axis=1)),
        (sr.stack([t, t], axis=-1), np.stack([a, a], axis=-1)),
        (sr.where(a > 0, t, 0.0), np.where(a > 0, a, 0.0)),
        (sr.maximum(t, 0.1), np.maximum(a, 0.1)),
        (sr.minimum(0.1, t), np.minimum(0.1, a)),
        (t @ a.swapaxes(1, 2), a @ a.swapaxes(1, 2)),
    ]
    for i, (got, expected) in enumerate(checks):
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, err_msg=f"case {i}")


def test_comparisons_give_constant_bool_tensors():
    x = sr.tensor([1.0, 2.0], requires_grad=True)
    mask = x > 1.5
    assert mask.dtype == bool and not mask.requires_grad
    np.testing.assert_array_equal((x == 2.0).numpy(), [False, True])
    np.testing.assert_allclose(sr.where(mask, x, -x).numpy(), [-1.0, 2.0])
    assert {x: 1}[x] == 1  # hashable by identity
    assert bool(sr.tensor(2.0) == 2.0) and not bool(sr.tensor([1.0]) == 2.0)
    with pytest.raises(ValueError, match=r"ambiguous"):
        bool(x == x)


def test_where_needs_a_boolean_condition():
    with pytest.raises(sr.OpError, match="boolean"):
        sr.where(np.array([1, 0]), sr.tensor([1.0, 2.0]), 0.0)


def test_requires_grad_only_changes_on_leaves():
    x = sr.tensor([1.0], requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad = False
    x.requires_grad = False
    assert not (x * 2).requires_grad


def test_transpose_with_two_axes_swaps_them_as_pytorch():
    a = np.arange(6.0).reshape(2, 3)
    t = sr.tensor(a, requires_grad=True)
    np.testing.assert_array_equal(t.transpose(0, 1).data, a.T)  # numpy's transpose(0, 1) would be a itself
    np.testing.assert_array_equal(t.transpose(-1, 0).data, a.T)
    b = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(sr.tensor(b).transpose(1, 2).data, b.swapaxes(1, 2))
    np.testing.assert_array_equal(sr.tensor(b).transpose(2, 0, 1).data, b.transpose(2, 0, 1))
    np.testing.assert_array_equal(sr.tensor(b).permute(2, 0, 1).data, b.transpose(2, 0, 1))
    np.testing.assert_array_equal(sr.transpose(sr.tensor(a), (0, 1)).data, a)  # sr.transpose is numpy's
    weights = np.arange(6.0).reshape(3, 2)
    grad = sr.grad((t.transpose(0, 1) * weights).sum(), [t])[0]
    np.testing.assert_array_equal(grad, weights.T)


# -- issue 21: PyTorch's methods (tests/test_api_rule.py compares each one with torch) -------------


def test_size_is_a_method_and_numel_the_element_count():
    t = sr.tensor(np.zeros((2, 3, 4)))
    assert t.size() == (2, 3, 4) and type(t.size()) is tuple and t.size(-1) == 4 and t.size(dim=0) == 2
    assert t.numel() == t.nelement() == 24 and t.dim() == t.ndimension() == t.ndim == 3
    assert sr.tensor(5.0).size() == () and sr.tensor(5.0).numel() == 1


def test_python_number_conversions():
    assert float(sr.tensor([[2.5]])) == 2.5 and isinstance(float(sr.tensor(2)), float)
    assert int(sr.tensor(-3.7)) == -3 and int(sr.tensor([7])) == 7
    loss = (sr.tensor([1.0, 2.0], requires_grad=True) ** 2).sum()
    assert f"{float(loss):.1f}" == "5.0"
    with pytest.raises(ValueError, match=r"one element.*\(2,\)"):
        float(sr.tensor([1.0, 2.0]))


def test_clone_and_casts_are_recorded_and_integer_casts_are_constants():
    w = sr.tensor([1.0, -2.0], requires_grad=True, name="w")
    c = w.clone()
    assert c.requires_grad and not c.is_leaf and c.data is not w.data
    np.testing.assert_array_equal(sr.grad((c * c).sum(), [w])[0], [2.0, -4.0])
    f32 = w.float()
    assert f32.dtype == np.float32 and f32.requires_grad and w.to(np.float64) is w and w.double() is w
    (g,) = sr.grad((f32 * f32).sum(), [w])
    assert g.dtype == np.float64 and g.tolist() == [2.0, -4.0]
    tr = sr.trace((f32.double() * 3.0).sum(), [w])
    assert [s.op for s in tr.path(w, (1,)).steps] == ["leaf", "astype", "astype", "mul", "sum"]
    assert tr.path(w, (1,)).value == 3.0
    assert [s.op for s in sr.trace(c.sum(), [w]).path(w, (0,)).steps] == ["leaf", "clone", "sum"]
    for cast in (w.int(), w.long(), w.bool(), w.to("int64")):
        assert not cast.requires_grad
    assert w.int().tolist() == [1, -2] and w.to(w.float()).dtype == np.float32
    with pytest.raises(ValueError, match="unknown device 'cuda'"):
        w.to("cuda")
    assert w.to("cpu") is w and w.to(device="cpu", dtype="float32").dtype == np.float32


def test_in_place_on_a_leaf_that_requires_grad_is_refused_outside_no_grad():
    w = sr.tensor([1.0, 2.0], requires_grad=True)
    for call in (lambda: w.add_(1.0), lambda: w.zero_(), lambda: w.mul_(2.0), lambda: w.copy_(np.zeros(2))):
        with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
            call()
    with pytest.raises(RuntimeError, match="leaf Variable"):
        w -= 1.0
    assert w.tolist() == [1.0, 2.0]


def test_in_place_under_no_grad_is_the_optimizer_idiom():
    w = sr.tensor([1.0, 2.0], requires_grad=True, name="w")
    old = w.data
    loss = (w * w).sum()
    loss.backward()
    node = w._node
    with sr.no_grad():
        w.sub_(0.1 * w.grad)
        w -= 0.1 * w.grad
        w.clamp_(max=1.5)
    assert w._node is node and w.is_leaf and w.name == "w" and w.grad.tolist() == [2.0, 4.0]
    np.testing.assert_allclose(w.numpy(), [0.6, 1.2])
    assert w.data is not old and not w.data.flags.writeable and old.tolist() == [1.0, 2.0]
    assert sr.grad(loss, [w])[0].tolist() == [2.0, 4.0]  # the graph recorded before keeps its values
    with sr.no_grad():
        w.zero_()
    assert w.tolist() == [0.0, 0.0] and w.requires_grad


def test_in_place_on_a_graph_tensor_rebinds_it_and_earlier_graphs_keep_their_values():
    x = sr.tensor([1.0, 2.0], requires_grad=True, name="x")
    y = x * 2
    z = y * 3
    expected_grad = sr.grad(z.sum(), [x])[0].copy()
    expected_path = sr.trace(z.sum(), [x]).path(x, (1,))
    y.add_(1)
    assert y.tolist() == [3.0, 5.0] and y.requires_grad and not y.is_leaf
    assert z.tolist() == [6.0, 12.0]
    np.testing.assert_array_equal(sr.grad(z.sum(), [x])[0], expected_grad)
    path = sr.trace(z.sum(), [x]).path(x, (1,))
    assert path.steps == expected_path.steps and path.value == expected_path.value
    later = (y * y).sum()  # y's later uses see y + 1, and differentiate through the add
    np.testing.assert_array_equal(sr.grad(later, [x])[0], [12.0, 20.0])
    assert [s.op for s in sr.trace(later, [x]).path(x, (0,)).steps] == ["leaf", "mul", "add", "mul", "sum"]
    y += x
    assert y.tolist() == [4.0, 7.0] and sr.grad(y.sum(), [x])[0].tolist() == [3.0, 3.0]


def test_in_place_methods_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    a, b, mask = rng.standard_normal((2, 3)), rng.standard_normal((2, 3)), rng.standard_normal(3) > 0
    cases = {
        "add_": lambda y, o: y.add_(o, alpha=0.5), "sub_": lambda y, o: y.sub_(o), "mul_": lambda y, o: y.mul_(o),
        "div_": lambda y, o: y.div_(o * o + 1.0), "pow_": lambda y, o: y.pow_(2),
        "clamp_": lambda y, o: y.clamp_(-0.5, 0.5), "clip_": lambda y, o: y.clip_(min=0.0),
        "fill_": lambda y, o: y.fill_(0.25), "zero_": lambda y, o: y.zero_(), "copy_": lambda y, o: y.copy_(o[0]),
        "masked_fill_": lambda y, o: y.masked_fill_(torch.tensor(mask) if isinstance(y, torch.Tensor) else mask, -1.0),
        "iadd": lambda y, o: y.__iadd__(o), "imul": lambda y, o: y.__imul__(o), "isub": lambda y, o: y.__isub__(o),
        "idiv": lambda y, o: y.__itruediv__(2.0),
    }  # fmt: skip
    for name, edit in cases.items():
        x, o = sr.tensor(a, requires_grad=True), sr.tensor(b, requires_grad=True)
        tx, to = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
        y, ty = x * 2.0, tx * 2.0
        assert edit(y, o) is y and edit(ty, to) is ty, name
        loss, their_loss = (y * b).sum() + (x * y).sum(), (ty * torch.tensor(b)).sum() + (tx * ty).sum()
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-14, err_msg=name)
        their = [e for e in torch.autograd.grad(their_loss, [tx, to], allow_unused=True) if e is not None]
        ours = sr.grad(loss, [x, o][: len(their)])  # o is in the graph exactly when torch's is
        for g, e in zip(ours, their, strict=True):
            np.testing.assert_allclose(g, e.numpy(), rtol=1e-12, err_msg=name)


def test_in_place_keeps_shape_and_dtype_as_torch():
    x = sr.tensor(np.ones(3))
    with pytest.raises(RuntimeError, match=r"add_: output with shape \(3,\) doesn't match the broadcast shape \(2, 3"):
        x.add_(np.ones((2, 3)))
    ints = sr.tensor(np.ones(3, dtype=np.int64))
    with pytest.raises(RuntimeError, match="result type float64 can't be cast to the desired output type int64"):
        ints.add_(1.5)
    f32 = sr.tensor(np.ones(3, dtype=np.float32))
    assert f32.add_(np.ones(3)).dtype == np.float32 and f32.tolist() == [2.0, 2.0, 2.0]
    with pytest.raises(RuntimeError, match=r"copy_: source of shape \(4,\)"):
        x.copy_(np.ones(4))


def test_functional_softmax_dim_as_torch():
    torch = pytest.importorskip("torch")
    import semirad.nn.functional as F

    a = np.random.default_rng(0).standard_normal((2, 3, 4))
    for dim in (0, 1, -1):
        np.testing.assert_allclose(F.softmax(sr.tensor(a), dim=dim).numpy(),
                                   torch.softmax(torch.tensor(a), dim).numpy(), rtol=1e-12)  # fmt: skip
        np.testing.assert_allclose(F.log_softmax(sr.tensor(a), dim).numpy(),
                                   torch.log_softmax(torch.tensor(a), dim).numpy(), rtol=1e-12)  # fmt: skip
    for shape in [(4,), (2, 3), (2, 3, 4), (2, 3, 4, 5)]:  # no dim: torch's implicit choice, and its warning
        b = np.random.default_rng(1).standard_normal(shape)
        with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
            ours = F.softmax(sr.tensor(b))
        with pytest.warns(UserWarning):
            theirs = torch.nn.functional.softmax(torch.tensor(b))
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12, err_msg=str(shape))
    assert F.softmax(sr.tensor(a), dim=1, dtype=np.float32).dtype == np.float32


def test_gradients_at_the_points_torch_defines_specially():
    torch = pytest.importorskip("torch")
    cases = {
        "norm at 0": (np.zeros((2, 3)), lambda t: t.norm()),
        "norm rows, one 0": (np.array([[0.0, 0.0], [3.0, 4.0]]), lambda t: t.norm(dim=1)),
        "3-norm at 0": (np.zeros(3), lambda t: t.norm(p=3)),
        "std of a constant": (np.full(4, 2.0), lambda t: t.std()),
        "prod with a zero": (np.array([[2.0, 0.0, 3.0], [1.0, 4.0, 5.0]]), lambda t: t.prod(1)),
        "prod with two zeros": (np.array([0.0, 2.0, 0.0, 3.0, 1.5]), lambda t: t.prod()),
        "max() ties": (np.array([[1.0, 3.0, 3.0], [3.0, 0.0, 2.0]]), lambda t: t.max()),
        "max(dim) ties": (np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]]), lambda t: t.max(1).values),
        "min(dim) ties": (np.array([[1.0, 3.0, 1.0], [2.0, 2.0, 0.0]]), lambda t: t.min(dim=1).values),
        "amax ties": (np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]]), lambda t: t.amax(1)),
        "inf-norm ties": (np.array([[1.0, -3.0, 3.0], [2.0, 2.0, 0.0]]), lambda t: t.norm(p=np.inf, dim=1)),
    }
    for label, (a, fn) in cases.items():
        x, tx = sr.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
        out, their = fn(x), fn(tx)
        np.testing.assert_allclose(out.numpy(), their.detach().numpy(), rtol=1e-14, err_msg=label)
        seed = np.arange(1.0, out.numel() + 1).reshape(out.shape)
        (g,) = sr.grad(out, [x], seed=seed)
        (expected,) = torch.autograd.grad(their, [tx], torch.tensor(seed))
        np.testing.assert_allclose(g, expected.numpy(), rtol=1e-14, err_msg=label)


def test_variance_without_degrees_of_freedom_warns_as_torch():
    torch = pytest.importorskip("torch")
    for a in (np.array([[1.0, 2.0]]), np.array([3.0])):
        with pytest.warns(RuntimeWarning, match="degrees of freedom"):
            ours = sr.tensor(a).var(dim=0)
        with pytest.warns(UserWarning):
            theirs = torch.tensor(a).var(dim=0)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_composite_methods_match_finite_differences():
    rng = np.random.default_rng(7)
    cases = {
        "var": (lambda t: t.var(dim=1, keepdim=True), rng.standard_normal((3, 4))),
        "std": (lambda t: t.std(0, correction=0), rng.standard_normal((3, 4))),
        "norm": (lambda t: t.norm(dim=(0, 2)), rng.standard_normal((2, 3, 2))),
        "norm p=3": (lambda t: t.norm(p=3, dim=1), rng.standard_normal((3, 4))),
        "prod": (lambda t: t.prod(dim=1), rng.standard_normal((2, 5))),
        "max(dim)": (lambda t: t.max(dim=0).values, rng.standard_normal((4, 3))),
        "logsumexp": (lambda t: t.logsumexp(dim=(0, 1)), rng.standard_normal((2, 3))),
        "repeat": (lambda t: t.repeat(2, 1, 3) * np.arange(36.0).reshape(4, 3, 3), rng.standard_normal((2, 3, 1))),
        "split": (lambda t: t.split([1, 2], dim=1)[1] * t.chunk(3, 1)[0], rng.standard_normal((2, 3))),
        "expand": (lambda t: t.expand(3, -1, 4) * np.arange(24.0).reshape(3, 2, 4), rng.standard_normal((2, 1))),
        "softmax": (lambda t: t.softmax(dim=0) * np.arange(6.0).reshape(2, 3), rng.standard_normal((2, 3))),
    }
    eps = 1e-6
    for label, (fn, a) in cases.items():
        x = sr.tensor(a, requires_grad=True)
        out = fn(x)
        seed = rng.standard_normal(out.shape)
        (g,) = sr.grad(out, [x], seed=seed)
        numeric = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            hi, lo = a.copy(), a.copy()
            hi[i] += eps
            lo[i] -= eps
            numeric[i] = np.sum(seed * (fn(sr.tensor(hi)).numpy() - fn(sr.tensor(lo)).numpy())) / (2 * eps)
        np.testing.assert_allclose(g, numeric, rtol=1e-6, atol=1e-8, err_msg=label)


def test_traces_through_the_composites_are_finite_and_name_their_ops():
    rng = np.random.default_rng(5)
    x = sr.tensor(rng.standard_normal((3, 4)), requires_grad=True, name="x")
    cases = {
        "max(dim)": (lambda t: t.max(1).values.sum(), "getitem"),
        "prod": (lambda t: t.prod(1).sum(), "mul"),
        "var": (lambda t: t.var(0).sum(), "pow"),
        "std": (lambda t: t.std().sum(), "sqrt"),
        "norm": (lambda t: t.norm(dim=1).sum(), "sqrt"),
        "chunk": (lambda t: (t.chunk(2, 1)[1] * 2.0).sum(), "getitem"),
        "repeat": (lambda t: t.repeat(2, 1).sum(), "broadcast_to"),
        "unbind": (lambda t: t.unbind(0)[2].sum(), "getitem"),
        "view": (lambda t: t.view(2, 6).flatten().unsqueeze(0).sum(), "reshape"),
        "masked_fill": (lambda t: t.masked_fill(t.data > 0, 0.0).sum(), "where"),
    }
    for label, (fn, op) in cases.items():
        loss = fn(x)
        tr = sr.trace(loss, [x])
        values = tr[x]
        assert np.all(np.isfinite(values)), label
        index = np.unravel_index(int(np.abs(values).argmax()), x.shape)
        path = tr.path(x, index)
        assert path.steps[0].name == "x" and op in [s.op for s in path.steps], f"{label}: {path.steps}"
        assert path.value == pytest.approx(float(values[index])), label
