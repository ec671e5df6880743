"""The functional entry points: ``sr.backward``, ``sr.grad``, ``sr.trace`` (and ``Tensor.backward``)."""

from __future__ import annotations

import threading
from typing import Sequence

from . import backend, engine
from .semirings.base import Result, Semiring
from .semirings.max_abs import MaxAbsProduct
from .semirings.sum_product import SumProduct
from .tensor import Tensor


def _seed_array(output, seed):
    xp = backend.namespace(output.data)
    if seed is None:
        if output.size != 1:
            raise ValueError(
                f"backward from a non-scalar output of shape {output.shape} needs an explicit seed of that shape"
            )
        return xp.ones(output.shape, dtype=output.dtype)
    seed = seed.data if isinstance(seed, Tensor) else seed
    seed = xp.array(seed, dtype=output.dtype)  # a copy: results read it after the call
    if tuple(seed.shape) != output.shape:
        raise ValueError(f"seed of shape {tuple(seed.shape)} does not match the output's shape {output.shape}")
    return seed


def _as_list(inputs) -> list:
    """The inputs of a sweep as a list: one tensor, or any iterable of them (a generator such as
    ``module.parameters()`` included)."""
    if isinstance(inputs, Tensor):
        return [inputs]
    try:
        return list(inputs)
    except TypeError:
        raise TypeError(f"inputs must be a tensor or an iterable of tensors, got {type(inputs).__name__}") from None


def _check_output(output, caller: str) -> None:
    if not isinstance(output, Tensor):
        raise TypeError(f"{caller}: the output must be a Tensor of a recorded graph, got {type(output).__name__}")


def _targets(output, inputs):
    if output._node is None:
        raise ValueError(
            f"the output (shape {output.shape}) is not part of a recorded graph: no input requires grad, "
            "or it was computed under no_grad()"
        )
    graph = engine.ancestors(output._node)
    members = set(graph)
    targets = []
    for i, t in enumerate(inputs):
        node = getattr(t, "_node", None)
        if node is None or node not in members:
            why = "it does not require grad" if node is None else "the output does not depend on it"
            label = f"{t.name!r} " if getattr(t, "name", None) else ""
            raise ValueError(f"input {i} {label}(shape {getattr(t, 'shape', None)}) is not in the graph: {why}")
        targets.append(node)
    return targets, graph


def backward(output, inputs: Sequence, semiring: Semiring | None = None, seed=None) -> Result:
    """Run one reverse sweep in ``semiring`` (default SumProduct) from ``output`` to ``inputs``.

    ``inputs`` may be leaves or intermediate tensors of the graph. Nothing is mutated.

    >>> import semirad as sr
    >>> x = sr.tensor([1.0, -3.0], requires_grad=True)
    >>> y = (x * 2.0).sum()
    >>> sr.backward(y, [x])[x].tolist()
    [2.0, 2.0]
    >>> sr.backward(y, [x], semiring=sr.semirings.MaxAbsProduct())[x].tolist()
    [2.0, 2.0]
    """
    _check_output(output, "backward")
    inputs = _as_list(inputs)
    semiring = SumProduct() if semiring is None else semiring
    seed_array = _seed_array(output, seed)
    targets, graph = _targets(output, inputs)
    return semiring.result(engine.sweep(output._node, targets, seed_array, semiring, graph=graph))


def grad(output, inputs: Sequence, seed=None) -> list:
    """Gradients of ``output`` with respect to ``inputs``, as a list of backend arrays.

    >>> import semirad as sr
    >>> w = sr.tensor([3.0], requires_grad=True)
    >>> [g.tolist() for g in sr.grad((w ** 2).sum(), [w])]
    [[6.0]]
    """
    _check_output(output, "grad")
    inputs = _as_list(inputs)
    result = backward(output, inputs, SumProduct(), seed)
    return [result[t] for t in inputs]


def trace(output, inputs: Sequence, seed=None):
    """Gradient tracing: ``backward(output, inputs, semiring=MaxAbsProduct())``.

    Returns a :class:`~semirad.paths.Trace`: ``tr[t]`` is the signed product of each element's best
    path, ``tr.path(t, index)`` the path itself.

    >>> import semirad as sr
    >>> w = sr.tensor([[1.0, 2.0]], requires_grad=True, name="w")
    >>> tr = sr.trace((w * 3.0).sum(), [w])
    >>> tr[w].tolist(), tr.path(w, (0, 1)).value
    ([[3.0, 3.0]], 3.0)
    """
    _check_output(output, "trace")
    return backward(output, inputs, MaxAbsProduct(), seed)


def accumulate_grads(output, seed=None, retain_graph: bool = False) -> None:
    """``Tensor.backward``: SumProduct into ``.grad`` of every leaf that requires grad."""
    if output._node is None:
        raise RuntimeError(
            f"backward() on a tensor of shape {output.shape} that is not part of a recorded graph "
            "(no input requires grad, or it was computed under no_grad())"
        )
    seed_array = _seed_array(output, seed)
    graph = engine.ancestors(output._node)
    leaves = [n for n in graph if n.op is None]
    sweep = engine.sweep(output._node, leaves, seed_array, SumProduct(), mark_consumed=not retain_graph, graph=graph)
    result = Result(sweep)
    values = [result.semiring.to_array(sweep.values[node], node.dtype) for node in leaves]
    with _accumulating:  # one read-add-write per leaf, as PyTorch's AccumulateGrad: no update lost to another thread
        for node, value in zip(leaves, values):
            node.grad = value.copy() if node.grad is None else node.grad + value


_accumulating = threading.Lock()
