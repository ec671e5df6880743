"""Careless input gets a clear error or numpy's answer, never a crash deep inside: pickling,
inputs given as generators, non-tensor outputs, empty selections, bounds that do not broadcast,
bad hyper-parameters and path indices of the wrong length."""

import copy
import pickle

import numpy as np
import pytest

import semirad as sr
from semirad import nn


def test_a_leaf_pickles_and_deep_copies_with_its_name_grad_and_read_only_data():
    w = sr.tensor([1.0, 2.0], requires_grad=True, name="w")
    (w * w).sum().backward()
    for clone in (pickle.loads(pickle.dumps(w)), copy.deepcopy(w)):
        assert clone.name == "w" and clone.requires_grad and clone.is_leaf
        assert clone.data.tolist() == [1.0, 2.0] and clone.grad.tolist() == [2.0, 4.0]
        assert not clone.data.flags.writeable
        assert clone._node is not w._node
        assert sr.grad((clone * 3.0).sum(), [clone])[0].tolist() == [3.0, 3.0]


def test_a_module_deep_copies_and_pickles_into_an_independent_model():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    x = np.random.default_rng(0).standard_normal((5, 3))
    expected = sr.grad(model(x).sum(), list(model.parameters()))
    for twin in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert [p.name for p in twin.parameters()] == [p.name for p in model.parameters()]
        for got, want in zip(sr.grad(twin(x).sum(), list(twin.parameters())), expected):
            np.testing.assert_array_equal(got, want)
        twin[0].weight.data = np.zeros((4, 3))
        assert model[0].weight.data.any()


@pytest.mark.parametrize("dump", [pickle.dumps, copy.deepcopy])
def test_a_recorded_tensor_refuses_with_what_to_save_instead(dump):
    w = sr.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"mul of shape \(2,\).*detach\(\)"):
        dump(w * 2.0)
    assert dump(w.detach()) is not None


@pytest.mark.parametrize("semiring", [None, sr.semirings.MaxAbsProduct(), sr.semirings.KBest(2)])
@pytest.mark.parametrize("dump", [pickle.dumps, copy.deepcopy])
def test_results_refuse_with_what_to_save_instead_and_paths_pickle(semiring, dump):
    w = sr.tensor([1.0, -2.0], requires_grad=True, name="w")
    result = sr.backward((w * w).sum(), [w], semiring=semiring)
    with pytest.raises(TypeError, match=r"can't be pickled.*r\[t\]"):
        dump(result)
    if hasattr(result, "path"):
        path = result.path(w, 1)
        clone = pickle.loads(pickle.dumps(path))
        assert clone.value == path.value and clone.steps == path.steps and clone.weights == path.weights


def test_inputs_may_be_a_generator_or_one_tensor():
    model = nn.Linear(2, 1)
    loss = model(np.ones((3, 2))).sum()
    by_list = sr.grad(loss, list(model.parameters()))
    by_generator = sr.grad(loss, model.parameters())
    assert len(by_generator) == 2
    for a, b in zip(by_list, by_generator):
        np.testing.assert_array_equal(a, b)
    assert sr.trace(loss, model.parameters())[model.bias].tolist() == [1.0]
    np.testing.assert_array_equal(sr.grad(loss, model.bias)[0], by_list[1])


@pytest.mark.parametrize("fn", [sr.grad, sr.trace, sr.backward])
def test_an_output_that_is_not_a_tensor_is_a_type_error(fn):
    w = sr.tensor([1.0], requires_grad=True)
    with pytest.raises(TypeError, match="output must be a Tensor.*float"):
        fn(3.0, [w])
    with pytest.raises(TypeError, match="iterable of tensors"):
        fn((w * 2).sum(), 5)


def test_empty_selection_as_numpy():
    x = sr.tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    picked = x[[]]
    assert picked.shape == np.arange(6.0).reshape(3, 2)[[]].shape == (0, 2)
    loss = (picked.sum() + x.sum()) * 1.0
    assert sr.grad(loss, [x])[0].tolist() == np.ones((3, 2)).tolist()
    assert sr.trace(loss, [x])[x].tolist() == np.ones((3, 2)).tolist()


def test_clip_with_bounds_that_do_not_broadcast_names_clip_and_the_shapes():
    x = sr.tensor(np.zeros(3), requires_grad=True)
    with pytest.raises(ValueError, match=r"clip: .*\(4,\).*\(3,\)"):
        sr.clip(x, np.zeros(4), 1.0)


@pytest.mark.parametrize("make", [
    lambda ps: sr.optim.Adam(ps, lr=float("nan")),
    lambda ps: sr.optim.Adam(ps, lr=float("inf")),
    lambda ps: sr.optim.Adam(ps, eps=float("nan")),
    lambda ps: sr.optim.Adam(ps, betas=(float("nan"), 0.9)),
    lambda ps: sr.optim.Adam(ps, betas=(0.9, 1.0)),
    lambda ps: sr.optim.AdamW(ps, weight_decay=float("nan")),
    lambda ps: sr.optim.SGD(ps, lr=float("nan")),
    lambda ps: sr.optim.SGD(ps, lr=-1.0),
    lambda ps: sr.optim.SGD(ps, lr=0.1, momentum=float("nan")),
    lambda ps: sr.optim.SGD(ps, lr="fast"),
])  # fmt: skip
def test_optimizers_refuse_hyperparameters_that_are_not_finite_non_negative_numbers(make):
    with pytest.raises(ValueError, match="Invalid"):
        make([sr.nn.Parameter(np.ones(2))])


def test_a_path_index_of_the_wrong_length_says_how_many_entries_it_needs():
    x = sr.tensor(np.ones((2, 3, 4)), requires_grad=True)
    tr = sr.trace((x * 2.0).sum(), [x])
    with pytest.raises(IndexError, match=r"needs 3 \(one per axis\)"):
        tr.path(x, 3)
    with pytest.raises(IndexError, match="out of range"):
        tr.path(x, (0, 3, 0))
    assert tr.path(x, (1, 2, 3)).value == 2.0


# -- Tensor.data of another shape or dtype ----------------------------------------------------------
def test_leaf_data_of_another_shape_or_dtype_is_a_new_leaf():
    """A leaf that requires grad took a new array of another shape, and every sweep then failed with
    an internal "backward rule of 'mul' returned shape (3,) for an input of shape (2,)": the leaf's
    node kept the old shape. As in PyTorch, the new shape (and dtype) is the leaf's from then on."""
    w = sr.tensor(np.ones(2), requires_grad=True, name="w")
    before = (w * w).sum()
    w.data = np.array([1.0, -2.0, 3.0])
    loss = (w * w).sum()
    np.testing.assert_array_equal(sr.grad(loss, [w])[0], [2.0, -4.0, 6.0])
    np.testing.assert_array_equal(sr.trace(loss, [w])[w], [1.0, -2.0, 3.0])
    loss.backward()
    np.testing.assert_array_equal(w.grad, [2.0, -4.0, 6.0])
    assert w._node.describe() == "leaf 'w' of shape (3,)"
    with pytest.raises(ValueError, match="not in the graph"):  # the graph recorded before has the old leaf
        sr.grad(before, [w])
    w.data = np.ones(3, dtype=np.float32)
    grad = sr.grad((w * w).sum(), [w])[0]
    assert grad.dtype == np.float32 and w.grad is None  # a new leaf: no .grad yet


def test_same_shape_data_keeps_the_leaf_and_its_graphs():
    w = sr.tensor(np.ones(2), requires_grad=True)
    node = w._node
    loss = (w * w).sum()
    w.data = np.full(2, 3.0)
    assert w._node is node
    np.testing.assert_array_equal(sr.grad(loss, [w])[0], [2.0, 2.0])  # the values that graph saw


def test_computed_tensor_keeps_its_shape_and_dtype():
    w = sr.tensor(np.ones(3), requires_grad=True)
    y = w * 2.0
    with pytest.raises(ValueError, match=r"computed by mul of shape \(3,\).*got shape \(4,\)"):
        y.data = np.ones(4)
    with pytest.raises(ValueError, match="dtype float32"):
        y.data = np.ones(3, dtype=np.float32)
    y.data = np.full(3, 5.0)  # same shape and dtype: allowed, as before
    assert y.numpy().tolist() == [5.0, 5.0, 5.0]
