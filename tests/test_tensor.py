"""The Tensor contract: attributes, conversions, operators with Python scalars, methods."""

import numpy as np
import pytest

import semirad as sr


def test_attributes_and_conversions():
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = sr.tensor(data, requires_grad=True, name="t")
    assert (t.shape, t.ndim, t.size, t.dtype, t.name) == ((2, 3), 2, 6, np.float32, "t")
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
        (t.max(axis=1), a.max(axis=1)),
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
