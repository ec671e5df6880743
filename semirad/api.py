"""The functional entry points: ``sr.backward``, ``sr.grad``, ``sr.trace`` (and ``Tensor.backward``)."""

from __future__ import annotations

from typing import Sequence

from . import engine
from .semirings.base import Result, Semiring
from .semirings.max_abs import MaxAbsProduct
from .semirings.sum_product import SumProduct
from .tensor import Tensor, seed_array


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
    graph, members = engine.graph_of(output._node)
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
    start = seed_array(output, seed)
    targets, graph = _targets(output, inputs)
    return semiring.result(engine.sweep(output._node, targets, start, semiring, graph=graph))


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
    # (``result[t]`` without its check that ``t`` was an input, which backward made: 1 µs a tensor less)
    return [result._array(t._node) for t in inputs]


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
