"""Selections: groups of vertices (by component) and groups of parameters (by module, by name).

**Vertex groups.** Every recorded op carries the full name of the ``sr.component`` blocks it was
recorded in (``"encoder/lstm/t3/forget"``; ``nn.Module`` calls and recurrent layers open them by
themselves). A *grouping* maps such a name to the label of a group; results of
:func:`~semirad.analysis.component_importance` can be regrouped with any of:

* ``None``: every full name is its own group;
* an ``int`` ``n`` (or :func:`depth`): the first ``n`` levels (``"encoder/lstm"`` for ``n = 2``);
* :data:`across_time` (or ``"across_time"``): drop the time-step level ``t<k>``, so
  ``"lstm/t3/forget"`` and ``"lstm/t7/forget"`` both count for ``"lstm/forget"``;
* a ``dict`` ``{label: pattern or [patterns]}`` (or :func:`patterns`): shell-style patterns
  (``fnmatch``, where ``*`` also matches ``/``) against the full name, first match wins, others
  go to ``"(other)"``;
* any callable ``name -> label``.

Ops recorded outside any block are reported as ``"(untagged)"``; groupings leave that label alone.

**Parameter groups.** ``params`` arguments accept a tensor, a list of tensors, an ``nn.Module``
(all its parameters), or a ``dict`` ``{label: any of these}`` for several groups at once;
:func:`by_module` and :func:`by_pattern` build such dicts from a model.

>>> across_time("lstm/t12/forget"), depth(1)("lstm/t12/forget")
('lstm/forget', 'lstm')
>>> patterns({"gates": ["*/input", "*/forget"]})("lstm/t0/forget")
'gates'
"""

from __future__ import annotations

import fnmatch
import re
from typing import Callable

#: the label of ops recorded outside any ``sr.component`` block
UNTAGGED = "(untagged)"
#: the label :func:`patterns` gives to names that match no pattern
OTHER = "(other)"

_TIME = re.compile(r"^t\d+$")


def label(component: str | None) -> str:
    """The label of a node's component: its full name, or :data:`UNTAGGED`."""
    return UNTAGGED if component is None else component


def across_time(name: str) -> str:
    """Drop every time-step level (a level named ``t<digits>``): ``"lstm/t3/forget"`` -> ``"lstm/forget"``.

    A name that is nothing but time steps becomes ``"(time steps)"``.
    """
    if name == UNTAGGED:
        return name
    kept = [part for part in name.split("/") if not _TIME.match(part)]
    return "/".join(kept) if kept else "(time steps)"


def depth(n: int) -> Callable[[str], str]:
    """A grouping that keeps the first ``n`` levels of a name (``n >= 1``)."""
    if int(n) != n or n < 1:
        raise ValueError(f"depth must be a positive integer, got {n!r}")

    def truncate(name: str) -> str:
        return name if name == UNTAGGED else "/".join(name.split("/")[: int(n)])

    truncate.__name__ = f"depth({n})"
    return truncate


def patterns(mapping: dict, other: str = OTHER) -> Callable[[str], str]:
    """A grouping by shell-style patterns: ``{label: pattern or [patterns]}``, first match wins."""
    items = [(lab, [pats] if isinstance(pats, str) else list(pats)) for lab, pats in mapping.items()]

    def match(name: str) -> str:
        if name == UNTAGGED:
            return name
        for lab, pats in items:
            if any(fnmatch.fnmatchcase(name, p) for p in pats):
                return lab
        return other

    match.__name__ = f"patterns({list(mapping)})"
    return match


def grouping(by) -> Callable[[str], str]:
    """Normalize a grouping argument (``None``, int, ``"across_time"``, dict or callable) to a function."""
    if by is None:
        return lambda name: name
    if isinstance(by, bool):
        raise TypeError("a grouping is None, an int depth, 'across_time', a dict of patterns or a callable")
    if isinstance(by, int):
        return depth(by)
    if isinstance(by, str):
        if by in ("across_time", "gates"):
            return across_time
        raise ValueError(f"unknown grouping {by!r} (known: 'across_time')")
    if isinstance(by, dict):
        return patterns(by)
    if callable(by):

        def call(name: str) -> str:
            return name if name == UNTAGGED else str(by(name))

        return call
    raise TypeError(f"cannot group components by {type(by).__name__}")


def describe_grouping(by) -> str:
    """A stable text for a grouping argument (stored with partial results to check a resume)."""
    if by is None or isinstance(by, (int, str)):
        return repr(by)
    if isinstance(by, dict):
        return repr(sorted((str(k), repr(v)) for k, v in by.items()))
    return getattr(by, "__qualname__", getattr(by, "__name__", type(by).__name__))


# -- parameters ----------------------------------------------------------------------------------
def named_tensors(source, prefix: str = "") -> list:
    """``[(name, tensor)]`` for a tensor, a module, a ``(name, tensor)`` pair or a list of those.

    A module's parameters are named by their tensor names (the dotted names from the outermost
    module, ``"encoder.lstm.weight_hh_l0"``); tensors without a name are called ``"param<i>"``.
    """
    from ..nn.module import Module

    out = []

    def add(item, i):
        if isinstance(item, Module):  # tensor names are the full dotted names from the outermost module
            out.extend((p.name or n, p) for n, p in item.named_parameters(prefix=prefix))
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            out.append(item)
        elif hasattr(item, "_node"):
            out.append((item.name or f"param{i}", item))
        elif isinstance(item, (list, tuple)):
            for j, sub in enumerate(item):
                add(sub, j)
        else:
            raise TypeError(f"cannot select parameters from {type(item).__name__}")

    add(source, 0)
    seen, unique = set(), []
    for name, t in out:
        if id(t) not in seen:
            seen.add(id(t))
            unique.append((name, t))
    return unique


def by_module(model, depth: int = 1) -> dict:
    """Parameters grouped by the module that owns them, up to ``depth`` levels of its dotted name.

    >>> import semirad as sr
    >>> net = sr.nn.Sequential(sr.nn.Linear(2, 3), sr.nn.Tanh(), sr.nn.Linear(3, 1))
    >>> {k: [n for n, _ in v] for k, v in by_module(net).items()}
    {'0': ['0.weight', '0.bias'], '2': ['2.weight', '2.bias']}
    """
    groups: dict = {}
    for name, p in model.named_parameters():
        parts = name.split(".")[:-1]
        key = ".".join(parts[:depth]) if parts else "(root)"
        groups.setdefault(key, []).append((name, p))
    return groups


def by_pattern(model, pattern_map) -> dict:
    """Parameters grouped by shell-style patterns on their dotted names.

    ``pattern_map`` is ``{label: pattern or [patterns]}`` or a list of patterns (each its own
    label). A parameter joins every group whose pattern it matches; groups with no match are kept
    out.

    >>> import semirad as sr
    >>> lstm = sr.nn.LSTM(2, 3)
    >>> {k: [n for n, _ in v] for k, v in by_pattern(lstm, {"weights": "weight_*"}).items()}
    {'weights': ['weight_ih_l0', 'weight_hh_l0']}
    """
    if not isinstance(pattern_map, dict):
        pattern_map = {p: p for p in ([pattern_map] if isinstance(pattern_map, str) else pattern_map)}
    named = named_tensors(model)
    groups = {}
    for lab, pats in pattern_map.items():
        pats = [pats] if isinstance(pats, str) else list(pats)
        chosen = [(n, t) for n, t in named if any(fnmatch.fnmatchcase(n, p) for p in pats)]
        if chosen:
            groups[lab] = chosen
    return groups


def select(model, pattern: str) -> list:
    """The parameters of ``model`` whose dotted names match the shell-style ``pattern``."""
    return [t for n, t in named_tensors(model) if fnmatch.fnmatchcase(n, pattern)]


def parameter_groups(params) -> tuple[list, dict | None]:
    """``(union, groups)``: every selected ``(name, tensor)`` once, and the named groups (or None)."""
    if isinstance(params, dict):
        groups = {str(k): named_tensors(v) for k, v in params.items()}
        if not groups:
            raise ValueError("no parameter groups given")
        union = named_tensors([pair for pairs in groups.values() for pair in pairs])
        return union, groups
    return named_tensors(params), None
