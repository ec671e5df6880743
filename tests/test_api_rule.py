"""The API rule (issue 21, docs/models.md "Tensor methods and sr functions"), checked name by name:
every public ``Tensor`` method that ``torch.Tensor`` also has behaves like it (values, shapes,
dtypes, tuple structure, and float64 gradients), and every ``sr.<name>`` that numpy also has behaves
like numpy's function. Each name needs a row of argument forms below (or a reason in ``EXCLUDED``),
so a new method or function without one fails here.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field

import numpy as np
import pytest

import semirad as sr

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(21)
BASE = RNG.standard_normal((2, 3, 4))  # distinct values: no ties, no kinks at 0
POSITIVE = RNG.uniform(0.5, 2.0, (2, 3, 4))
OTHER = RNG.standard_normal((2, 3, 4))
ONES = RNG.standard_normal((2, 1, 3, 1))
COLUMN = RNG.standard_normal((3, 1))
MATRIX = RNG.standard_normal((3, 4))
SINGLE = np.array([2.75])


@dataclass(frozen=True)
class Arr:
    """An array argument: a semirad tensor for semirad, a torch tensor for torch, itself for numpy."""

    array: np.ndarray
    grad: bool = True  # a float array argument of a differentiable method gets a gradient too


@dataclass(frozen=True)
class Dtype:
    """A dtype argument, by name: numpy's for semirad and numpy, ``torch.<name>`` for torch."""

    name: str


@dataclass
class Form:
    """One call: positional and keyword arguments, on ``on`` (the tensor the method is called on)."""

    args: tuple
    kwargs: dict = field(default_factory=dict)
    on: np.ndarray = None

    def label(self) -> str:
        def show(v):
            if isinstance(v, Arr):
                return f"array{v.array.shape}"
            if isinstance(v, Dtype):
                return v.name
            if isinstance(v, list) and v and isinstance(v[0], Arr):
                return "[" + ", ".join(show(a) for a in v) + "]"
            return repr(v)

        parts = [show(a) for a in self.args] + [f"{k}={show(v)}" for k, v in self.kwargs.items()]
        return "(" + ", ".join(parts) + ")"


def f(*args, on=None, **kwargs) -> Form:
    return Form(args, kwargs, on)


DIM_FORMS = [f(), f(1), f(dim=1), f((0, 2)), f(dim=(0, 2), keepdim=True), f(1, True), f(axis=1),
             f(axis=(0, 1), keepdims=True), f(dim=-1), f(dim=())]  # fmt: skip
EXTREMUM_FORMS = [f(), f(1), f(dim=1), f(1, True), f(dim=-1, keepdim=True), f(axis=1), f(axis=1, keepdims=True),
                  f(Arr(OTHER))]  # fmt: skip
AMAX_FORMS = [f(), f(1), f((0, 2)), f(dim=(0, 2), keepdim=True), f(axis=1, keepdims=True), f(dim=())]
ONE_DIM_FORMS = [f(1), f(dim=-1), f(axis=0), f(dim=2)]
VAR_FORMS = [f(), f(1), f(dim=1), f(1, False), f(1, True, True), f(dim=(0, 2), correction=0), f(False),
             f(dim=1, unbiased=False, keepdim=True), f(axis=1, keepdims=True), f(dim=1, correction=2)]  # fmt: skip
INF = math.inf

#: Tensor method -> the argument forms compared with torch.Tensor's method of the same name
METHODS: dict[str, list[Form]] = {
    "sum": DIM_FORMS,
    "mean": DIM_FORMS,
    "max": EXTREMUM_FORMS,
    "min": EXTREMUM_FORMS,
    "amax": AMAX_FORMS,
    "amin": AMAX_FORMS,
    "logsumexp": [f(1), f(dim=(0, 2)), f(1, True), f(axis=1), f(axis=-1, keepdims=True)],
    "softmax": ONE_DIM_FORMS,
    "log_softmax": ONE_DIM_FORMS,
    "var": VAR_FORMS,
    "std": VAR_FORMS,
    "norm": [f(), f(1), f(p=1), f(p=1, dim=1), f(2, 1, True), f(p=INF, dim=(0, 1)), f(p=-INF), f(p=3, dim=2),
             f(p="fro", dim=(1, 2)), f(axis=1, keepdims=True), f(p=0.5, dim=0, on=POSITIVE)],  # fmt: skip
    "prod": [f(), f(1), f(dim=-1, keepdim=True), f(axis=1), f(0, on=RNG.standard_normal((5, 2)))],
    "reshape": [f(6, 4), f((4, -1)), f(-1)],
    "view": [f(6, 4), f((4, -1)), f(24)],
    "flatten": [f(), f(1), f(0, 1), f(start_dim=1, end_dim=-1), f(-2), f(on=np.array(3.0))],
    "unsqueeze": [f(0), f(-1), f(2), f(dim=1)],
    "squeeze": [f(on=ONES), f(1, on=ONES), f(0, on=ONES), f((1, 3), on=ONES), f(-1, on=ONES), f(dim=2, on=ONES)],
    "permute": [f(2, 0, 1), f((1, 2, 0)), f(-1, 0, 1)],
    "transpose": [f(1, 2), f(0, -1), f(2, 0)],
    "swapaxes": [f(0, 2), f(1, -1)],
    "t": [f(on=MATRIX), f(on=SINGLE)],
    "trace": [f(on=MATRIX), f(on=RNG.standard_normal((3, 3)))],
    "diagonal": [f(on=MATRIX), f(1, on=MATRIX), f(-1, 1, 2), f(offset=1, dim1=2, dim2=0)],
    "outer": [f(Arr(MATRIX[0]), on=MATRIX[:, 0])],
    "expand": [f(2, 3, 4, on=COLUMN), f(-1, 5, on=COLUMN), f((2, -1, 3), on=COLUMN)],
    "expand_as": [f(Arr(BASE, grad=False), on=COLUMN)],
    "broadcast_to": [f((2, 3, 4), on=COLUMN)],
    "repeat": [f(2, 1, 1), f(1, 2, 3, 1), f((2, 2), on=COLUMN)],
    "chunk": [f(2, 2), f(3), f(2, -1), f(4, 1), f(chunks=2, dim=1)],
    "split": [f(2), f(2, 2), f([1, 2], 1), f(3, -1), f(split_size=1, dim=0)],
    "unbind": [f(), f(1), f(-1), f(dim=2)],
    "clip": [f(-0.5, 0.5), f(min=0.0), f(max=0.1)],
    "clamp": [f(-0.5, 0.5), f(min=0.0), f(max=0.1)],
    "exp": [f()],
    "log": [f(on=POSITIVE)],
    "tanh": [f()],
    "sigmoid": [f()],
    "relu": [f()],
    "abs": [f()],
    "sqrt": [f(on=POSITIVE)],
    "sin": [f()],
    "cos": [f()],
    "neg": [f()],
    "add": [f(Arr(OTHER)), f(2.0), f(Arr(OTHER), alpha=2)],
    "sub": [f(Arr(OTHER)), f(2.0), f(Arr(OTHER), alpha=0.5)],
    "mul": [f(Arr(OTHER)), f(3.0)],
    "div": [f(Arr(POSITIVE)), f(4.0)],
    "pow": [f(2, on=POSITIVE), f(Arr(OTHER), on=POSITIVE), f(0.5, on=POSITIVE)],
    "matmul": [f(Arr(MATRIX.T))],
    "where": [f(Arr(BASE > 0, grad=False), Arr(OTHER)), f(Arr(BASE > 0.5, grad=False), 0.0)],
    "masked_fill": [f(Arr(BASE > 0, grad=False), 0.5), f(Arr(np.array([True, False, True, False]), grad=False), -1.0)],
    "size": [f(), f(1), f(-1), f(dim=0)],
    "numel": [f()],
    "nelement": [f()],
    "dim": [f()],
    "ndimension": [f()],
    "item": [f(on=SINGLE)],
    "tolist": [f()],
    "numpy": [f()],
    "clone": [f()],
    "detach": [f()],
    "float": [f()],
    "double": [f()],
    "half": [f()],
    "int": [f()],
    "long": [f()],
    "bool": [f()],
    "cpu": [f()],
    "to": [f(Dtype("float32")), f("cpu"), f("cpu", Dtype("float32")), f(dtype=Dtype("float16")),
           f(Arr(SINGLE, grad=False))],
    # the ops of the other half of issue 21, compared where they exist
    "erf": [f()],
    "cumsum": [f(1), f(dim=-1), f(0)],
    "argmax": [f(), f(1), f(dim=1, keepdim=True), f(-1)],
    "argmin": [f(), f(1), f(dim=1, keepdim=True), f(-1)],
    "sort": [f(), f(1), f(dim=0, descending=True)],
    "argsort": [f(), f(1), f(dim=0, descending=True)],
    "topk": [f(2), f(2, dim=1, largest=False), f(1, 0)],
    "take_along_dim": [f(Arr(RNG.integers(0, 3, (2, 2, 4)), grad=False), 1),
                       f(Arr(RNG.integers(0, 4, (2, 3, 1)), grad=False), dim=-1)],
    "gather": [f(1, Arr(RNG.integers(0, 3, (2, 5, 4)), grad=False)),
               f(-1, Arr(RNG.integers(0, 4, (2, 3, 2)), grad=False))],
}  # fmt: skip

#: methods both have that are checked elsewhere, and why
EXCLUDED = {
    "cuda": "needs a GPU: tests/test_devices.py (simulated device) and tests/test_gpu.py",
    "backward": "autodiff itself: tests/test_tensor.py and the gradient parity below",
    "requires_grad_": "flag setter: tests/test_tensor.py",
    **{name: "in place: test_in_place_methods_match_torch" for name in [
        "add_", "sub_", "mul_", "div_", "pow_", "clamp_", "clip_", "fill_", "zero_", "copy_", "masked_fill_"]},
}  # fmt: skip

#: sr functions that numpy also has -> argument forms (Arr: a tensor for semirad, the array for numpy)
FUNCTIONS: dict[str, list[Form]] = {
    "exp": [f(Arr(BASE))],
    "log": [f(Arr(POSITIVE))],
    "tanh": [f(Arr(BASE))],
    "sqrt": [f(Arr(POSITIVE))],
    "sin": [f(Arr(BASE))],
    "cos": [f(Arr(BASE))],
    "abs": [f(Arr(BASE))],
    "add": [f(Arr(BASE), Arr(OTHER)), f(Arr(BASE), 2.0)],
    "power": [f(Arr(POSITIVE), 2), f(Arr(POSITIVE), Arr(OTHER))],
    "maximum": [f(Arr(BASE), Arr(OTHER)), f(Arr(BASE), 0.1)],
    "minimum": [f(Arr(BASE), Arr(OTHER))],
    "where": [f(Arr(BASE > 0), Arr(BASE), Arr(OTHER)), f(Arr(BASE > 0), Arr(BASE), 0.0)],
    "clip": [f(Arr(BASE), -0.5, 0.5), f(Arr(BASE), 0.0, None)],
    "matmul": [f(Arr(MATRIX), Arr(MATRIX.T)), f(Arr(BASE), Arr(MATRIX.T))],
    "sum": [f(Arr(BASE)), f(Arr(BASE), 1), f(Arr(BASE), (0, 2)), f(Arr(BASE), axis=1, keepdims=True),
            f(Arr(BASE), axis=())],  # fmt: skip
    "mean": [f(Arr(BASE)), f(Arr(BASE), 1), f(Arr(BASE), axis=(0, 2), keepdims=True)],
    "max": [f(Arr(BASE)), f(Arr(BASE), 1), f(Arr(BASE), axis=(0, 2)), f(Arr(BASE), axis=-1, keepdims=True)],
    "min": [f(Arr(BASE)), f(Arr(BASE), 1), f(Arr(BASE), axis=(0, 2))],
    "reshape": [f(Arr(BASE), (6, 4)), f(Arr(BASE), (-1,))],
    "transpose": [f(Arr(BASE)), f(Arr(BASE), (1, 0, 2))],
    "swapaxes": [f(Arr(BASE), 0, 2)],
    "expand_dims": [f(Arr(BASE), 1), f(Arr(BASE), -1)],
    "squeeze": [f(Arr(ONES)), f(Arr(ONES), 1)],
    "broadcast_to": [f(Arr(COLUMN), (2, 3, 4))],
    "concat": [f([Arr(BASE), Arr(OTHER)], 1), f([Arr(BASE), Arr(OTHER)])],
    "stack": [f([Arr(BASE), Arr(OTHER)], -1)],
    # the ops of the other half of issue 21, compared where they exist
    "cumsum": [f(Arr(BASE), 1), f(Arr(BASE), axis=-1)],
    "sort": [f(Arr(BASE)), f(Arr(BASE), 0)],
    "argsort": [f(Arr(BASE)), f(Arr(BASE), 1)],
    "argmax": [f(Arr(BASE)), f(Arr(BASE), 1), f(Arr(BASE), axis=1, keepdims=True)],
    "argmin": [f(Arr(BASE)), f(Arr(BASE), 1)],
    "take_along_axis": [f(Arr(BASE), Arr(RNG.integers(0, 3, (2, 5, 4))), 1)],
    "einsum": [f("ijk,kl->ijl", Arr(BASE), Arr(MATRIX.T)), f("ij,ij->i", Arr(MATRIX), Arr(MATRIX))],
}

#: sr names that numpy also has but that mean something else in semirad, and why
NOT_NUMPY = {
    "trace": "sr.trace is semirad's gradient tracing (best paths), not numpy's sum of a diagonal",
}


# -- converting arguments and comparing results ---------------------------------------------------


def to_semirad(value, requires_grad=False):
    if isinstance(value, Arr):
        grad = requires_grad and value.grad and value.array.dtype.kind == "f"
        return sr.tensor(value.array, requires_grad=grad)
    if isinstance(value, Dtype):
        return np.dtype(value.name)
    if isinstance(value, list):
        return [to_semirad(v, requires_grad) for v in value]
    return value


def to_torch(value, requires_grad=False):
    if isinstance(value, Arr):
        grad = requires_grad and value.grad and value.array.dtype.kind == "f"
        return torch.tensor(value.array, requires_grad=grad)
    if isinstance(value, Dtype):
        return getattr(torch, value.name)
    if isinstance(value, list):
        return [to_torch(v, requires_grad) for v in value]
    return value


def to_numpy(value):
    if isinstance(value, Arr):
        return value.array
    if isinstance(value, Dtype):
        return np.dtype(value.name)
    if isinstance(value, list):
        return [to_numpy(v) for v in value]
    return value


def torch_dtype(t) -> np.dtype:
    return np.dtype(str(t.dtype).removeprefix("torch."))


def assert_same(ours, theirs, where: str) -> None:
    """Values, shapes, dtypes and tuple structure of a semirad result equal those of torch's / numpy's."""
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, sr.Tensor), f"{where}: got {type(ours).__name__}, torch gives a tensor"
        assert ours.shape == tuple(theirs.shape), f"{where}: shape {ours.shape} != {tuple(theirs.shape)}"
        assert ours.dtype == torch_dtype(theirs), f"{where}: dtype {ours.dtype} != {theirs.dtype}"
        np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-12, atol=1e-13, err_msg=where)
    elif isinstance(theirs, np.ndarray) and not isinstance(ours, np.ndarray):
        assert isinstance(ours, sr.Tensor), f"{where}: got {type(ours).__name__}, numpy gives an array"
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, (
            f"{where}: {ours.shape} {ours.dtype} != {theirs.shape} {theirs.dtype}"
        )
        np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-12, atol=1e-13, err_msg=where)
    elif isinstance(theirs, tuple) and hasattr(theirs, "values") and hasattr(theirs, "indices"):
        assert isinstance(ours, tuple) and len(ours) == 2, f"{where}: got {type(ours).__name__}, not (values, indices)"
        assert ours.values is ours[0] and ours.indices is ours[1], f"{where}: fields are not named values, indices"
        assert_same(ours.values, theirs.values, where + ".values")
        assert_same(ours.indices, theirs.indices, where + ".indices")
    elif isinstance(theirs, (tuple, list)):
        assert type(ours) is type(theirs) or (isinstance(theirs, torch.Size) and type(ours) is tuple), (
            f"{where}: got {type(ours).__name__}, expected {type(theirs).__name__}"
        )
        assert len(ours) == len(theirs), f"{where}: {len(ours)} parts, expected {len(theirs)}"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(theirs, np.ndarray):
        np.testing.assert_array_equal(ours, theirs, err_msg=where)
        assert ours.dtype == theirs.dtype, where
    else:
        assert type(ours) is type(theirs) and ours == theirs, f"{where}: {ours!r} != {theirs!r}"


def assert_identical(a, b) -> None:
    """Two semirad results are the same: structure, shapes, dtypes and values."""
    if isinstance(a, tuple):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            assert_identical(x, y)
        return
    assert (a.shape, a.dtype) == (b.shape, b.dtype)
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def method_cases():
    for name, forms in METHODS.items():
        for form in forms:
            yield pytest.param(name, form, id=f"{name}{form.label()}")


def function_cases():
    for name, forms in FUNCTIONS.items():
        for form in forms:
            yield pytest.param(name, form, id=f"{name}{form.label()}")


def _public_methods(cls) -> set:
    return {n for n in dir(cls) if not n.startswith("_") and inspect.isfunction(inspect.getattr_static(cls, n))}


# -- the rule, method by method -------------------------------------------------------------------


def test_every_method_torch_also_has_has_a_row():
    shared = _public_methods(sr.Tensor) & set(dir(torch.Tensor))
    missing = sorted(shared - set(METHODS) - set(EXCLUDED))
    assert not missing, f"Tensor methods that torch.Tensor also has, without a row in METHODS: {missing}"
    assert "size" in shared and "view" in shared and "max" in shared  # the discovery itself works


def test_every_numpy_name_has_a_row():
    shared = {n for n in sr.__all__ if hasattr(np, n) and callable(getattr(sr, n, None))}
    missing = sorted(shared - set(FUNCTIONS) - set(NOT_NUMPY))
    assert not missing, f"sr functions that numpy also has, without a row in FUNCTIONS: {missing}"
    assert {"sum", "max", "transpose", "where"} <= shared


@pytest.mark.parametrize("name, form", list(method_cases()))
def test_method_matches_torch(name, form):
    if not hasattr(sr.Tensor, name):
        pytest.skip(f"Tensor.{name} is not there yet")
    data = BASE if form.on is None else form.on
    kwargs = {k: to_semirad(v) for k, v in form.kwargs.items()}
    ours = getattr(sr.tensor(data), name)(*to_semirad(list(form.args)), **kwargs)
    theirs = getattr(torch.tensor(data), name)(*to_torch(list(form.args)), **_torch_kwargs(form.kwargs))
    assert_same(ours, theirs, f"Tensor.{name}{form.label()}")


def _torch_kwargs(kwargs: dict) -> dict:
    """numpy's keyword names as PyTorch's (torch takes them for some methods only)."""
    renamed = {"axis": "dim", "keepdims": "keepdim"}
    return {renamed.get(k, k): to_torch(v) for k, v in kwargs.items()}


@pytest.mark.parametrize("name, form", list(function_cases()))
def test_function_matches_numpy(name, form):
    if not hasattr(sr, name):
        pytest.skip(f"sr.{name} is not there yet")
    ours = getattr(sr, name)(*to_semirad(list(form.args)), **{k: to_semirad(v) for k, v in form.kwargs.items()})
    theirs = getattr(np, name)(*to_numpy(list(form.args)), **{k: to_numpy(v) for k, v in form.kwargs.items()})
    assert_same(ours, np.asarray(theirs), f"sr.{name}{form.label()}")


def test_attributes_match_torch():
    for data in (BASE, MATRIX, SINGLE, np.array(1.5)):
        ours, theirs = sr.tensor(data), torch.tensor(data)
        assert ours.shape == tuple(theirs.shape) and type(ours.shape) is tuple
        assert ours.ndim == theirs.ndim and ours.dtype == torch_dtype(theirs)
        assert ours.size() == theirs.size() and ours.numel() == theirs.numel() and ours.dim() == theirs.dim()
    assert_same(sr.tensor(MATRIX).T, torch.tensor(MATRIX).T, "T")
    assert float(sr.tensor([2.5])) == float(torch.tensor([2.5])) == 2.5
    assert int(sr.tensor(-3.7)) == int(torch.tensor(-3.7)) == -3
    assert bool(sr.tensor([0.0])) is bool(torch.tensor([0.0])) is False


# -- gradients: float64 parity with torch for every differentiable form ---------------------------

NOT_DIFFERENTIABLE = {"size", "numel", "nelement", "dim", "ndimension", "item", "tolist", "numpy", "detach",
                      "int", "long", "bool", "argmax", "argmin", "argsort"}  # fmt: skip


def differentiable_cases():
    for name, forms in METHODS.items():
        if name in NOT_DIFFERENTIABLE:
            continue
        for form in forms:
            yield pytest.param(name, form, id=f"{name}{form.label()}")


def _float_parts(result) -> list:
    parts = list(result) if isinstance(result, (tuple, list)) else [result]
    return [p for p in parts if p.dtype.is_floating_point] if parts and isinstance(parts[0], torch.Tensor) else [
        p for p in parts if p.dtype.kind == "f"
    ]


@pytest.mark.parametrize("name, form", list(differentiable_cases()))
def test_method_gradients_match_torch(name, form):
    if not hasattr(sr.Tensor, name):
        pytest.skip(f"Tensor.{name} is not there yet")
    data = BASE if form.on is None else form.on
    x = sr.tensor(data, requires_grad=True)
    args = to_semirad(list(form.args), requires_grad=True)
    kwargs = {k: to_semirad(v, requires_grad=True) for k, v in form.kwargs.items()}
    tx = torch.tensor(data, requires_grad=True)
    targs = to_torch(list(form.args), requires_grad=True)
    ours, theirs = getattr(x, name)(*args, **kwargs), getattr(tx, name)(*targs, **_torch_kwargs(form.kwargs))
    ours_parts, their_parts = _float_parts(ours), _float_parts(theirs)
    assert len(ours_parts) == len(their_parts)
    if not their_parts or their_parts[0].dtype != torch.float64 or not their_parts[0].requires_grad:
        pytest.skip("no float64 result to differentiate")
    weights = [RNG.standard_normal(tuple(p.shape)) for p in their_parts]
    loss = sum(((p * w).sum() for p, w in zip(ours_parts, weights)), start=sr.tensor(0.0))
    their_loss = sum((p * torch.tensor(w)).sum() for p, w in zip(their_parts, weights))
    leaves = [x] + [a for a in args if isinstance(a, sr.Tensor) and a.requires_grad]
    their_leaves = [tx] + [a for a in targs if isinstance(a, torch.Tensor) and a.requires_grad]
    grads = sr.grad(loss, leaves)
    expected = torch.autograd.grad(their_loss, their_leaves, allow_unused=True)
    for i, (g, e) in enumerate(zip(grads, expected)):
        e = np.zeros(g.shape) if e is None else e.numpy()
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12, err_msg=f"Tensor.{name}{form.label()}: input {i}")


# -- errors ---------------------------------------------------------------------------------------

REDUCING = ["sum", "mean", "max", "min", "amax", "amin", "logsumexp", "var", "std", "norm", "prod", "softmax",
            "log_softmax", "argmax", "argmin"]  # fmt: skip


@pytest.mark.parametrize("name", REDUCING)
def test_reducing_methods_take_dim_or_axis_not_both(name):
    if not hasattr(sr.Tensor, name):
        pytest.skip(f"Tensor.{name} is not there yet")
    x = sr.tensor(BASE)
    method = getattr(x, name)
    assert_identical(method(axis=1), method(dim=1))
    with pytest.raises(TypeError, match=rf"{name}\b.*both 'dim' and 'axis'"):
        method(dim=1, axis=1)
    if name not in ("softmax", "log_softmax"):
        assert_identical(method(1, keepdims=True), method(1, keepdim=True))
        with pytest.raises(TypeError, match=rf"{name}\b.*both 'keepdim' and 'keepdims'"):
            method(1, keepdim=True, keepdims=True)


@pytest.mark.parametrize("name, call", [
    ("sum", lambda x: x.sum(3)), ("mean", lambda x: x.mean(dim=(0, -4))), ("max", lambda x: x.max(5)),
    ("amin", lambda x: x.amin(axis=3)), ("softmax", lambda x: x.softmax(3)), ("var", lambda x: x.var(-4)),
    ("norm", lambda x: x.norm(dim=7)), ("prod", lambda x: x.prod(3)), ("unsqueeze", lambda x: x.unsqueeze(4)),
    ("squeeze", lambda x: x.squeeze(3)), ("flatten", lambda x: x.flatten(0, 3)), ("chunk", lambda x: x.chunk(2, 3)),
    ("split", lambda x: x.split(1, -4)), ("unbind", lambda x: x.unbind(3)), ("size", lambda x: x.size(3)),
    ("permute", lambda x: x.permute(0, 1, 3)), ("logsumexp", lambda x: x.logsumexp(3)),
])  # fmt: skip
def test_a_bad_dim_names_the_method_and_the_shape(name, call):
    with pytest.raises(IndexError, match=rf"{name}.*\(2, 3, 4\)") as error:
        call(sr.tensor(BASE))
    assert isinstance(error.value, sr.OpError)
    with pytest.raises(IndexError):  # torch's exception type too
        call(torch.tensor(BASE))


@pytest.mark.parametrize("call, match", [
    (lambda x: x.view(5, -1), r"view.*\(5, -1\).*\(2, 3, 4\)"),
    (lambda x: x.view(-1, -1), r"view"),
    (lambda x: x.permute(0, 0, 1), r"permute.*\(0, 0, 1\).*\(2, 3, 4\)"),
    (lambda x: x.t(), r"t: .*<= 2.*\(2, 3, 4\)"),
    (lambda x: x.expand(2, 4, 4), r"expand.*existing size 3.*\(2, 3, 4\)"),
    (lambda x: x.expand(3, 4), r"expand.*\(2, 3, 4\)"),
    (lambda x: x.repeat(2), r"repeat.*\(2, 3, 4\)"),
    (lambda x: x.split([1, 1], 1), r"split.*sum to 3.*\(2, 3, 4\)"),
    (lambda x: x.split(0), r"split.*\(2, 3, 4\)"),
    (lambda x: x.chunk(0), r"chunk.*greater than 0"),
    (lambda x: x.mean(dim=(1, 1)), r"mean.*repeats.*\(2, 3, 4\)"),
    (lambda x: x.norm(p="nuc"), r"norm.*nuc"),
])  # fmt: skip
def test_bad_shapes_name_the_method(call, match):
    with pytest.raises(sr.OpError, match=match):
        call(sr.tensor(BASE))


def test_max_takes_one_dim_and_keepdim_needs_a_dim():
    x = sr.tensor(BASE)
    with pytest.raises(TypeError, match="amax"):
        x.max(dim=(0, 1))
    with pytest.raises(TypeError, match="keepdim"):
        x.max(keepdim=True)
    with pytest.raises(IndexError, match=r"max.*empty"):
        sr.tensor(np.zeros((2, 0))).max(1)
