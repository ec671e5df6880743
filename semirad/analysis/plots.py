"""matplotlib figures for the analysis (the optional extra ``plots``: ``pip install semirad[plots]``).

matplotlib is imported only when a figure is made, and only its object-oriented API is used
(``matplotlib.figure.Figure``): no pyplot, no global backend switch, nothing shown on screen.
Every function returns the ``Figure`` and, given ``path``, saves it there (PNG, SVG, PDF... by the
file's suffix).
"""

from __future__ import annotations

import numpy as np

__all__ = ["importance_figure", "heatmaps_figure", "ratio_figure", "history_figure", "have_matplotlib"]

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
