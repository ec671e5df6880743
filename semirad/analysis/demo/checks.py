"""The report's checks: the one-pass edge count against walking every best path one by one."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ...engine import Node
from ...paths import Trace
from ..groups import label
from ..importance import ComponentImportance


def walk_components(result: Trace, node: Node, flat: int, rank: int = 0) -> list | None:
    """The component labels of the edges of one path, by following backpointers one hop at a time
    (no edge weights: cheap). ``None`` when the element has no path.

    ``node`` is a node of the sweep (``result.node_of(tensor)``), ``flat`` the C-order position of
    the element in it, ``rank`` the path's rank (``KBest``).

    >>> import semirad as sr
    >>> w = sr.tensor([1.0, 0.0], requires_grad=True)
    >>> with sr.component("scale"):
    ...     y = w * 3.0
    >>> tr = sr.trace((y * y).sum(), [w])
    >>> walk_components(tr, tr.node_of(w), 0)
    ['scale', '(untagged)', '(untagged)']
    """
    index = tuple(int(i) for i in np.unravel_index(flat, node.shape)) if node.shape else ()
    return _edge_components(result.walk(node, index, rank))


def _edge_components(vertices: Iterator) -> list | None:
    """The component of each edge of a walked path (that of the vertex it enters); ``None`` for no path."""
    if next(vertices, None) is None:
        return None
    return [label(vertex.component) for vertex, _, _ in vertices]


def count_check(result: Trace, params: list, importance: ComponentImportance, verify: bool = True) -> dict:
    """Shares sum to 1, and (``verify``) the counted edges equal those of every path walked one by one.

    ``params`` are ``(name, tensor)`` pairs, ``importance`` is ``component_importance(result, ...)``
    of the same parameters, ungrouped.

    >>> import semirad as sr
    >>> from semirad.analysis import component_importance
    >>> w = sr.tensor([1.0, -2.0], requires_grad=True)
    >>> tr = sr.trace((w * w).sum(), [w])
    >>> check = count_check(tr, [("w", w)], component_importance(tr, [w]))
    >>> check["edges_counted"] == check["edges_walked"], check["per_component_equal"]
    (True, True)
    """
    check = {
        "shares_sum": float(sum(importance.shares.values())),
        "edges_counted": importance.total,
        "paths": importance.paths,
    }
    if verify:
        walked: dict = {}
        n_paths = 0
        for _, p in params:
            node = result.node_of(p)
            for index in np.ndindex(*node.shape):
                comps = _edge_components(result.walk(node, index))
                if comps is None:
                    continue
                n_paths += 1
                for c in comps:
                    walked[c] = walked.get(c, 0) + 1
        check.update(
            {
                "edges_walked": float(sum(walked.values())),
                "paths_walked": n_paths,
                "per_component_equal": all(walked.get(c, 0) == v for c, v in importance.counts.items())
                and set(walked) == set(importance.counts),
            }
        )
    return check
