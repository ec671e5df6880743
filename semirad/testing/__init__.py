"""semirad.testing: property-test your ops, models and semirings the way semirad tests its own.

* :func:`gradcheck`, :func:`jacobian_fd` — SumProduct gradients against central differences.
* :func:`check_op` — the dense-Jacobian oracle of an op in every semiring (zero-partial convention
  included), :func:`dense_jacobians`, :func:`edge_structure`, :func:`semiring_contraction`.
* :func:`check_semiring` — the semiring laws and every primitive against the ⊕-fold of ⊗ over
  explicit edges, exactly, on a grid of powers of two; :func:`semiring_value` draws values as a
  sweep makes them.
* :func:`brute_force`, :func:`scalar_graph`, :func:`graph_of`, :func:`check_paths` — the whole-graph reference:
  every path enumerated and folded, and every path a result returns checked edge by edge.
* :mod:`semirad.testing.strategies` — hypothesis strategies (``tensors``, ``broadcastable_shapes``,
  ``semiring_values``...); it needs hypothesis (``pip install semirad[test]``) and is imported on
  first use.

See docs/testing.md.

>>> import semirad as sr
>>> from semirad.testing import gradcheck
>>> gradcheck(lambda w: (w.exp() * w).sum(), [sr.tensor([0.5, -1.0], requires_grad=True)])
True
"""

from .brute import ScalarGraph, brute_force, check_paths, graph_of, scalar_graph
from .gradcheck import gradcheck, jacobian_fd
from .oracle import (
    Reach,
    builtin_semirings,
    check_backpointers,
    check_op,
    dense_jacobians,
    edge_structure,
    semiring_contraction,
    zero_partial_convention,
)
from .semiring_laws import check_semiring, semiring_value

__all__ = [
    "gradcheck", "jacobian_fd", "check_op", "dense_jacobians", "edge_structure", "semiring_contraction",
    "zero_partial_convention", "check_backpointers", "builtin_semirings", "Reach", "check_semiring",
    "semiring_value", "brute_force", "scalar_graph", "graph_of", "ScalarGraph", "check_paths", "strategies",
]  # fmt: skip


def __getattr__(name: str):
    if name == "strategies":  # needs hypothesis: imported on first use, with a clear message without it
        import importlib

        return importlib.import_module(".strategies", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
