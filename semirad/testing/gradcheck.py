"""Finite differences: :func:`gradcheck` (SumProduct gradients against central differences) and
:func:`jacobian_fd` (the numeric Jacobian itself)."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from .. import api, backend, engine
from ..tensor import Tensor, tensor

#: outputs of at most this many elements are checked through their full Jacobian (one backward per
#: output element); larger ones through one random seed vector (one backward in all)
FULL_JACOBIAN_MAX = 16


def _as_inputs(inputs) -> list:
    return [inputs] if isinstance(inputs, Tensor) else list(inputs)


def _differentiable(x) -> bool:
    return isinstance(x, Tensor) and x.requires_grad and np.dtype(x.dtype).kind == "f"


def _float64_inputs(inputs: list) -> tuple[list, list]:
    """Fresh float64 leaves for the inputs that require grad (constants pass as they are), and
    the positions of those inputs."""
    out, wanted = [], []
    for k, x in enumerate(inputs):
        if _differentiable(x):
            out.append(tensor(np.array(backend.to_numpy(x.data), dtype=np.float64), requires_grad=True, name=x.name))
            wanted.append(k)
        else:
            out.append(x)
    return out, wanted


def _evaluate(fn: Callable, inputs: list, k: int, array: np.ndarray) -> np.ndarray:
    """``fn`` at ``inputs`` with input ``k`` replaced by ``array`` (no graph is recorded), as float64."""
    with engine.no_grad():
        args = [tensor(array) if i == k else x for i, x in enumerate(inputs)]
        out = fn(*args)
    return np.asarray(backend.to_numpy(out.data if isinstance(out, Tensor) else out), dtype=np.float64)


def jacobian_fd(fn: Callable, inputs: Sequence | Tensor, *, eps: float = 1e-6) -> list:
    """The Jacobian of ``fn`` by central differences in float64, one array per input.

    ``fn(*inputs)`` returns a tensor; for every input that is a floating-point tensor requiring
    grad the result holds ``J[out_index + in_index] = ∂out[out_index] / ∂in[in_index]`` (shape
    ``out.shape + in.shape``), computed as ``(fn(x + h) - fn(x - h)) / (2h)`` element by element
    with ``h = eps`` (the actual difference of the rounded arguments is the denominator); ``None``
    for the other inputs (constants, arrays, tensors that do not require grad).

    >>> import semirad as sr
    >>> from semirad.testing import jacobian_fd
    >>> x = sr.tensor([1.0, 2.0], requires_grad=True)
    >>> [J.round(6).tolist() for J in jacobian_fd(lambda t: t * t, [x])]
    [[[2.0, 0.0], [0.0, 4.0]]]
    """
    inputs, wanted = _float64_inputs(_as_inputs(inputs))
    out = []
    for k, x in enumerate(inputs):
        if k not in wanted:
            out.append(None)
            continue
        base = np.array(backend.to_numpy(x.data), dtype=np.float64)
        columns = []
        for j in np.ndindex(base.shape):
            hi, lo = base.copy(), base.copy()
            hi[j] += eps
            lo[j] -= eps
            columns.append((_evaluate(fn, inputs, k, hi) - _evaluate(fn, inputs, k, lo)) / (hi[j] - lo[j]))
        shape = _evaluate(fn, inputs, k, base).shape
        J = np.stack(columns, axis=-1) if columns else np.zeros(shape + (0,))
        out.append(J.reshape(shape + base.shape))
    return out


def _describe(k: int, x: Tensor) -> str:
    return f"input {k}" + (f" {x.name!r}" if x.name else "") + f" (shape {tuple(x.shape)})"


def gradcheck(
    fn: Callable,
    inputs: Sequence | Tensor,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: Any = None,
    raise_exception: bool = True,
) -> bool:
    """Check SumProduct gradients of ``fn`` at ``inputs`` against central differences in float64.

    Every input that is a floating-point tensor requiring grad is checked (it is copied to a fresh
    float64 leaf; other inputs are passed as they are). An analytic value ``a`` passes against the
    numeric ``n`` when ``|a - n| <= atol + rtol * |n|``.

    * Outputs of at most :data:`FULL_JACOBIAN_MAX` elements are compared through their full
      Jacobian (one backward per output element).
    * Larger outputs through one vector-Jacobian product: a random seed vector of the output's
      shape (signed, ``0.5 <= |s| <= 2``, so every output element counts) drawn with
      ``numpy.random.default_rng(seed)``.
    * ``seed`` may also be the seed array itself (the output's shape); then that VJP is compared.

    On failure raises ``AssertionError`` naming the input, the element, the analytic and the
    numeric value (``raise_exception=False``: returns False instead). Returns True when all agree.

    >>> import semirad as sr
    >>> from semirad.testing import gradcheck
    >>> x = sr.tensor([0.5, -1.0, 2.0], requires_grad=True, name="x")
    >>> gradcheck(lambda t: (t.tanh() * t).sum(), [x])
    True
    >>> from semirad.ops.core import Op, apply
    >>> class BadSquare(Op):                           # a rule that forgot the factor 2
    ...     name = "bad_square"
    ...     def forward(self, ctx, a):
    ...         ctx.saved = a
    ...         return a * a
    ...     def backward(self, ctx, g, S, needs):
    ...         return (S.scale(g, ctx.saved),)
    >>> gradcheck(lambda t: apply(BadSquare(), t), [x], raise_exception=False)
    False
    """
    originals = _as_inputs(inputs)
    inputs, wanted = _float64_inputs(originals)
    if not wanted:
        raise ValueError("gradcheck: no input is a floating-point tensor that requires grad")
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    xs = [inputs[k] for k in wanted]
    numeric = jacobian_fd(fn, inputs, eps=eps)
    explicit = seed is not None and not isinstance(seed, (int, np.integer, np.random.Generator))
    if explicit:
        seeds = [np.broadcast_to(np.asarray(backend.to_numpy(seed), dtype=np.float64), out.shape)]
    elif out.numel() <= FULL_JACOBIAN_MAX:
        seeds = [None] * out.numel()  # one-hot, built below
    else:
        rng = np.random.default_rng(seed)
        seeds = [rng.uniform(0.5, 2.0, out.shape) * rng.choice([-1.0, 1.0], out.shape)]
    full = not explicit and out.numel() <= FULL_JACOBIAN_MAX
    graph = set() if out._node is None else set(engine.ancestors(out._node))
    for j, s in enumerate(seeds):
        if full:
            s = np.zeros(out.shape)
            s.reshape(-1)[j] = 1.0
        reached = [x for x in xs if x._node in graph]  # an input the output does not depend on: gradient 0
        grads = dict(zip(map(id, reached), api.grad(out, reached, seed=s))) if reached else {}
        analytic = [np.asarray(backend.to_numpy(grads[id(x)]), dtype=np.float64) if id(x) in grads
                    else np.zeros(x.shape) for x in xs]  # fmt: skip
        for x, k, got in zip(xs, wanted, analytic):
            J = numeric[k]
            expected = J.reshape((-1,) + J.shape[len(out.shape):])[j] if full else np.tensordot(s, J, len(out.shape))
            message = _compare(got, expected, atol, rtol, k, x)
            if message is not None:
                where = f", output element {_index(j, out.shape)} (full Jacobian)" if full else (
                    " (vector-Jacobian product with a random seed)" if not explicit else " (with the given seed)")
                if raise_exception:
                    raise AssertionError(f"gradcheck: {message}{where}")
                return False
    return True


def _index(flat: int, shape: tuple) -> tuple:
    return tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()


def _compare(got, expected, atol, rtol, k, x) -> str | None:
    if got.shape != expected.shape:
        return f"{_describe(k, x)}: gradient of shape {got.shape}, expected {expected.shape}"
    bad = ~(np.abs(got - expected) <= atol + rtol * np.abs(expected))
    if not bad.any():
        return None
    flat = int(np.flatnonzero(bad.reshape(-1))[0])
    index = _index(flat, got.shape)
    a, n = float(got.reshape(-1)[flat]), float(expected.reshape(-1)[flat])
    return (
        f"{_describe(k, x)}, element {index}: analytic {a!r}, numeric {n!r} "
        f"(|difference| {abs(a - n):.3g} > atol {atol:g} + rtol {rtol:g} * |numeric|; "
        f"{int(bad.sum())} of {bad.size} elements differ)"
    )
