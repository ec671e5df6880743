"""Text tables of component importance: one result (:func:`importance_table`) or several side by side.

The numbers come from :class:`~semirad.analysis.importance.ComponentImportance` (``counts``,
``shares``, ``total``, ``group``); nothing here computes them.
"""

from __future__ import annotations

__all__ = ["side_by_side", "importance_table"]


def side_by_side(columns: dict, counts: bool = True, by=None) -> str:
    """A text table of several :class:`ComponentImportance` results: one share column each.

    ``columns`` is ``{header: result}``; rows are the union of their components (in first-seen
    order); ``counts`` adds the edge counts of the last result; ``by`` regroups all of them first.

    >>> from semirad.analysis import ComponentImportance
    >>> a = ComponentImportance({"x": 3, "y": 1}, 1, 1, "trace")
    >>> b = ComponentImportance({"x": 1, "y": 1}, 1, 1, "backprop")
    >>> print(side_by_side({"backprop": b, "trace": a}))
    component    backprop    trace  trace edges
    x              50.0 %   75.0 %            3
    y              50.0 %   25.0 %            1
    total         100.0 %  100.0 %            4
    """
    if by is not None:
        columns = {h: imp.group(by) for h, imp in columns.items()}
    rows: list = []
    for imp in columns.values():
        for k in imp.counts:
            if k not in rows:
                rows.append(k)
    last_name, last = next(reversed(columns.items()), (None, None))
    count_head = "edges" if len(columns) == 1 else f"{last_name} edges"
    width = max([len("component"), len("total")] + [len(r) for r in rows]) + 2
    widths = [max(9, len(h) + 2) for h in columns]
    header = "component".ljust(width) + "".join(h.rjust(w) for h, w in zip(columns, widths))
    if counts and last is not None:
        header += count_head.rjust(max(11, len(count_head) + 2))
    lines = [header]
    for r in rows + ["total"]:
        line = r.ljust(width)
        for imp, w in zip(columns.values(), widths):
            share = (1.0 if imp.total else 0.0) if r == "total" else imp.shares.get(r, 0.0)
            line += f"{100 * share:.1f} %".rjust(w)
        if counts and last is not None:
            n = last.total if r == "total" else last.counts.get(r, 0.0)
            line += _format_count(n).rjust(max(11, len(count_head) + 2))
        lines.append(line)
    return "\n".join(lines)


def importance_table(importance, title: str | None = None) -> str:
    """``importance`` as a text table: a headline, then one row per component with its share and count.

    With parameter groups there is one share column per group, the union first (and no counts).

    >>> from semirad.analysis import ComponentImportance
    >>> print(importance_table(ComponentImportance({"x": 3, "y": 1}, 2, 2, "trace")))
    trace: 2 paths from 2 elements, 4 edges (2 per path)
    component      trace      edges
    x             75.0 %          3
    y             25.0 %          1
    total        100.0 %          4
    """
    if importance.groups:  # one column per parameter group, the union first
        columns = {"all params": importance}
        columns.update({f"{g} params": imp for g, imp in importance.groups.items()})
    else:
        columns = {importance.kind: importance}
    head = title or (
        f"{importance.kind}: {importance.paths} paths from {importance.elements} elements, "
        f"{importance.total:.6g} edges ({importance.mean_edges:.3g} per path)"
    )
    return head + "\n" + side_by_side(columns, counts=not importance.groups)


def _format_count(n: float) -> str:
    """An edge count: an integer as such, an expected (fractional) count to one decimal.

    >>> _format_count(3.0), _format_count(2.25)
    ('3', '2.2')
    """
    return str(int(round(n))) if float(n).is_integer() else f"{n:.1f}"
