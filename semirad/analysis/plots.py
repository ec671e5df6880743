"""matplotlib figures for the analysis (the optional extra ``plots``: ``pip install semirad[plots]``).

matplotlib is imported only when a figure is made, and only its object-oriented API is used
(``matplotlib.figure.Figure``): no pyplot, no global backend switch, nothing shown on screen.
Every function returns the ``Figure`` and, given ``path``, saves it there (PNG, SVG, PDF... by the
file's suffix).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "importance_figure",
    "heatmaps_figure",
    "ratio_figure",
    "history_figure",
    "path_figure",
    "shares_figure",
    "component_colors",
    "have_matplotlib",
]

_COLORS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860"]


def have_matplotlib() -> bool:
    """Whether matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(**kwargs):
    try:
        from matplotlib.figure import Figure
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("semirad's figures need matplotlib: pip install 'semirad[plots]'") from error
    return Figure(**kwargs)


def _save(fig, path):
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig


def importance_figure(columns: dict, path=None, title: str | None = None, by=None):
    """Component importance side by side: one horizontal bar per component for each result.

    ``columns`` is ``{label: ComponentImportance}`` (e.g. ``{"backprop": ..., "trace": ...}``);
    ``by`` regroups them first (see :mod:`semirad.analysis.groups`).
    """
    if by is not None:
        columns = {k: v.group(by) for k, v in columns.items()}
    rows: list = []
    for imp in columns.values():
        for k in imp.counts:
            if k not in rows:
                rows.append(k)
    fig = _figure(figsize=(7.5, 0.45 * len(rows) + 1.6))
    ax = fig.subplots()
    height = 0.8 / max(1, len(columns))
    y = np.arange(len(rows))
    for j, (name, imp) in enumerate(columns.items()):
        shares = [100 * imp.shares.get(r, 0.0) for r in rows]
        ax.barh(y + (j - (len(columns) - 1) / 2) * height, shares, height, label=name, color=_COLORS[j % len(_COLORS)])
    ax.set_yticks(y)
    ax.set_yticklabels(rows)
    ax.invert_yaxis()
    ax.set_xlabel("share of path edges (%)")
    ax.legend(loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title or "component importance")
    return _save(fig, path)


def heatmaps_figure(grad, trace, path=None, name: str = "", log: bool = True):
    """``|grad|``, ``|trace|`` and ``|trace| / |grad|`` of one weight matrix as three heatmaps.

    With ``log`` the colours are ``log10`` of the magnitudes (zeros shown blank). 1-D parameters
    are drawn as one row; higher-dimensional ones are flattened to ``(shape[0], -1)``; a matrix
    taller than wide is drawn transposed (rows along the x axis).
    """
    g = np.abs(np.asarray(grad, dtype=np.float64))
    t = np.abs(np.asarray(trace, dtype=np.float64))
    shape = tuple(np.shape(grad))
    if g.ndim != 2:
        g = g.reshape(1, -1) if g.ndim < 2 else g.reshape(g.shape[0], -1)
        t = t.reshape(g.shape)
    transposed = g.shape[0] > g.shape[1]
    if transposed:
        g, t = g.T, t.T
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(g > 0, t / np.where(g > 0, g, 1.0), np.nan)
        panels = [("|grad|", g), ("|trace|", t), ("|trace| / |grad|", ratio)]
        if log:
            panels = [
                (f"log10 {title}", np.where(a > 0, np.log10(np.where(a > 0, a, 1.0)), np.nan)) for title, a in panels
            ]
    height = float(np.clip(4.2 * g.shape[0] / g.shape[1], 1.2, 4.2)) + 1.0
    fig = _figure(figsize=(6.0, 3 * height + 0.6), layout="constrained")
    axes = fig.subplots(3, 1)
    for ax, (title, a) in zip(axes, panels):
        image = ax.imshow(a, aspect="auto", interpolation="nearest", cmap="viridis")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("row" if transposed else "column")
        ax.set_ylabel("column" if transposed else "row")
        fig.colorbar(image, ax=ax, shrink=0.9)
    fig.suptitle(f"{name} {shape}".strip() + (" (transposed)" if transposed else ""))
    return _save(fig, path)


def ratio_figure(ratios, path=None, bins: int = 50):
    """The distribution of ``|trace| / |grad|`` (log10 axis): one histogram per parameter.

    ``ratios`` is a :class:`~semirad.analysis.Comparison` or ``{name: array of ratios}``.
    """
    ratios = getattr(ratios, "ratios", ratios)
    fig = _figure(figsize=(7.5, 4.2))
    ax = fig.subplots()
    finite = {k: np.log10(v[(v > 0) & np.isfinite(v)]) for k, v in ratios.items()}
    values = [v for v in finite.values() if v.size]
    if values:
        lo = min(float(v.min()) for v in values)
        hi = max(float(v.max()) for v in values)
        edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
        for j, (k, v) in enumerate(finite.items()):
            if v.size:
                ax.hist(v, bins=edges, histtype="step", linewidth=1.6, label=k, color=_COLORS[j % len(_COLORS)])
    ax.axvline(0.0, color="black", linewidth=0.8, linestyle=":")
    ax.set_xlabel("log10 |trace| / |grad|   (0: the best path carries the whole gradient)")
    ax.set_ylabel("elements")
    ax.set_title("share of each element's gradient carried by its best path")
    if values:
        ax.legend(fontsize=8)
    return _save(fig, path)


def history_figure(steps, history: dict, path=None, title: str | None = None):
    """Shares over training: ``history`` is ``{kind: {component: [share at each step]}}``; one
    colour per component, solid for the first kind (e.g. trace), dashed for the second."""
    fig = _figure(figsize=(8, 4.5))
    ax = fig.subplots()
    styles = ["-", "--", ":", "-."]
    comps: list = []
    for series in history.values():
        for c in series:
            if c not in comps:
                comps.append(c)
    for i, (kind, series) in enumerate(history.items()):
        for j, c in enumerate(comps):
            if c in series:
                ax.plot(
                    steps,
                    100 * np.asarray(series[c]),
                    styles[i % len(styles)],
                    color=f"C{j % 10}",
                    label=f"{c} ({kind})",
                )
    ax.set_xlabel("training step")
    ax.set_ylabel("share of path edges (%)")
    ax.set_title(title or "component importance during training")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _save(fig, path)


#: the colour of a step outside any component (``sr.component`` block)
UNTAGGED_COLOR = "#d9d9d9"
_TAB20 = [
    "#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896", "#9467bd", "#c5b0d5",
    "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7", "#bcbd22", "#dbdb8d", "#17becf", "#9edae5",
]  # fmt: skip


def component_colors(names) -> dict:
    """A colour for every distinct name in ``names`` (in order of first appearance): matplotlib's
    ``tab20`` colours in turn (repeating after 20), light grey for ``None`` (untagged).

    >>> component_colors(["a", None, "b", "a"])
    {'a': '#1f77b4', None: '#d9d9d9', 'b': '#aec7e8'}
    """
    colors: dict = {}
    k = 0
    for name in names:
        if name in colors:
            continue
        if name is None:
            colors[None] = UNTAGGED_COLOR
        else:
            colors[name] = _TAB20[k % len(_TAB20)]
            k += 1
    return colors


def _ink(color: str) -> str:
    """Black or white, whichever reads better on ``color`` (``"#rrggbb"``).

    >>> _ink("#ffffff"), _ink("#1f77b4")
    ('black', 'white')
    """
    r, g, b = (int(color[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else "white"


def _step_text(step) -> tuple[str, str]:
    """The two lines of a step's box: ``op 'name' [shape]`` and ``[index]  component``."""
    head = step.op + (f" {step.name!r}" if step.name else "") + f" {list(step.shape)}"
    index = "[" + ", ".join(str(int(i)) for i in step.index) + "]"
    return head, f"{index}  {step.component}" if step.component else index


def path_figure(paths, path=None, title: str | None = None, group=None, fontsize: float = 6.5):
    """Best paths drawn as strips, without Graphviz: one column per path, one box per vertex.

    ``paths`` is a :class:`~semirad.paths.Path` (``tr.path(t, index)``), a list of them (drawn
    side by side) or a dict ``{label: path}`` (the labels head the columns). Every box shows the
    step's op, tensor name, shape, element index and component, and is coloured by its component
    (the same colour in every column; light grey outside any component; ``group`` — any grouping of
    :mod:`semirad.analysis.groups`, e.g. ``depth(3)`` — colours by group instead); between two boxes
    the edge's weight (the partial derivative, ``× w``). The path's value heads its column. A legend
    lists the colours.

    The boxes are ``matplotlib.patches.FancyBboxPatch`` es whose ``gid`` is ``"step:<column>:<k>"``
    (the ``k``-th vertex of a path); each box's text has the same ``gid``, each weight label
    ``"weight:<column>:<k>"`` (the edge from vertex ``k`` to ``k + 1``).

    >>> import semirad as sr
    >>> x = sr.tensor([1.0, -2.0], requires_grad=True, name="x")
    >>> with sr.component("scale"):
    ...     y = x * 3.0
    >>> fig = path_figure(sr.trace((y * y).sum(), [x]).path(x, 1))
    >>> [p.get_gid() for p in fig.axes[0].patches]
    ['step:0:0', 'step:0:1', 'step:0:2', 'step:0:3']
    """
    from matplotlib.patches import FancyBboxPatch, Patch

    from .groups import grouping

    if isinstance(paths, dict):
        labels, paths = list(paths), list(paths.values())
    elif isinstance(paths, (list, tuple)):
        paths = list(paths)
        labels = [None] * len(paths)
    else:
        paths, labels = [paths], [None]
    if not paths:
        raise ValueError("path_figure: no path to draw")
    key = (lambda name: name) if group is None else (lambda name: None if name is None else grouping(group)(name))
    colors = component_colors(key(step.component) for p in paths for step in p.steps)
    longest = max(len(p.steps) for p in paths)
    fig = _figure(figsize=(3.6 * len(paths) + 0.4, 0.42 * longest + 1.4 + 0.16 * len(colors)), layout="constrained")
    axes = fig.subplots(1, len(paths), squeeze=False)[0]
    height, gap = 0.62, 0.38
    for column, (ax, p, name) in enumerate(zip(axes, paths, labels)):
        for k, step in enumerate(p.steps):
            top = -k * (height + gap)
            box = FancyBboxPatch((0.0, top - height), 1.0, height, boxstyle="round,pad=0,rounding_size=0.08",
                                 facecolor=colors[key(step.component)], edgecolor="#333333", linewidth=0.6)  # fmt: skip
            box.set_gid(f"step:{column}:{k}")
            ax.add_patch(box)
            head, tail = _step_text(step)
            text = ax.text(0.5, top - height / 2, f"{head}\n{tail}", ha="center", va="center", fontsize=fontsize,
                           color=_ink(colors[key(step.component)]))  # fmt: skip
            text.set_gid(f"step:{column}:{k}")
            if k < len(p.weights):
                y0, y1 = top - height, top - height - gap
                ax.annotate("", xy=(0.5, y1), xytext=(0.5, y0),
                            arrowprops={"arrowstyle": "-|>", "color": "#333333", "lw": 0.7})  # fmt: skip
                weight = ax.text(0.54, (y0 + y1) / 2, f"× {p.weights[k]:.3g}", ha="left", va="center",
                                 fontsize=fontsize, color="#444444")  # fmt: skip
                weight.set_gid(f"weight:{column}:{k}")
        if getattr(p, "seed", 1.0) != 1.0:
            ax.text(0.5, -len(p.steps) * (height + gap) + gap / 2, f"seed × {p.seed:.3g}", ha="center",
                    va="center", fontsize=fontsize)  # fmt: skip
        ax.set_xlim(-0.04, 1.04)
        ax.set_ylim(-longest * (height + gap) + gap / 2 - 0.2, 0.2)
        ax.axis("off")
        heading = f"value {p.value:.4g}, {len(p.weights)} edges"
        ax.set_title(heading if name is None else f"{name}\n{heading}", fontsize=fontsize + 1.5)
    handles = [
        Patch(facecolor=c, edgecolor="#333333", label="(untagged)" if n is None else n) for n, c in colors.items()
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=max(1, min(len(handles), 2 * len(paths))),
               fontsize=fontsize, frameon=False)  # fmt: skip
    if title:
        fig.suptitle(title, fontsize=fontsize + 3)
    return _save(fig, path)


def shares_figure(columns: dict, path=None, title: str | None = None, errors: dict | None = None,
                  xlabel: str = "share of paths (%)"):  # fmt: skip
    """Shares per group and method: one panel per group (e.g. per layer), in it one bar per label
    (e.g. query, key, value, residual) for each method side by side, with error bars.

    ``columns`` is ``{method: {group: {label: share}}}`` (shares as fractions), ``errors`` the same
    shape (e.g. standard deviations over samples), drawn as error bars.

    >>> fig = shares_figure({"trace": {"layer 0": {"key": 0.25, "residual": 0.75}}})
    >>> [ax.get_title() for ax in fig.axes]
    ['layer 0']
    """
    methods = list(columns)
    groups: list = []
    for per_group in columns.values():
        for g in per_group:
            if g not in groups:
                groups.append(g)
    if not groups:
        raise ValueError("shares_figure: nothing to draw")
    labels: list = []
    for per_group in columns.values():
        for shares in per_group.values():
            for k in shares:
                if k not in labels:
                    labels.append(k)
    fig = _figure(figsize=(3.4 * len(groups) + 0.6, 0.5 * len(labels) * max(1, len(methods)) / 2 + 1.8),
                  layout="constrained")  # fmt: skip
    axes = fig.subplots(1, len(groups), squeeze=False, sharex=True)[0]
    bar = 0.8 / max(1, len(methods))
    y = np.arange(len(labels))
    for ax, g in zip(axes, groups):
        for j, m in enumerate(methods):
            shares = columns[m].get(g, {})
            values = [100 * shares.get(k, 0.0) for k in labels]
            err = None
            if errors is not None and m in errors:
                err = [100 * errors[m].get(g, {}).get(k, 0.0) for k in labels]
            ax.barh(y + (j - (len(methods) - 1) / 2) * bar, values, bar, xerr=err, label=m,
                    color=_COLORS[j % len(_COLORS)], error_kw={"elinewidth": 0.8, "capsize": 2})  # fmt: skip
        ax.set_yticks(y)
        ax.set_yticklabels(labels)
        ax.invert_yaxis()
        ax.set_title(str(g))
        ax.set_xlabel(xlabel)
        ax.grid(axis="x", alpha=0.3)
    axes[0].legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title)
    return _save(fig, path)
