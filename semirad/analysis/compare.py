"""Backprop against the trace, per parameter, on one graph.

For every element ``e`` of a parameter, backprop gives ``grad[e]`` (the sum over all paths of
their products) and the trace gives ``trace[e]`` (the product of the single best path). Their
ratio ``|trace| / |grad|`` is the share of the gradient the best path alone carries: near 1 where
one path dominates, small where the gradient is spread over many paths, above 1 where paths of
opposite signs cancel.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..api import backward
from ..semirings.max_abs import MaxAbsProduct
from ..semirings.sum_product import SumProduct
from .groups import named_tensors
from .importance import element_masks

__all__ = ["compare", "Comparison", "spearman", "rankdata"]


def rankdata(values) -> np.ndarray:
    """Ranks 1..n of the flattened ``values``, ties getting the average of their ranks (float64).

    >>> rankdata([10, 30, 20, 20]).tolist()
    [1.0, 4.0, 2.5, 2.5]
    """
    a = np.asarray(values).ravel()
    n = a.size
    order = np.argsort(a, kind="mergesort")
    ordered = a[order]
    new = np.ones(n, dtype=bool)
    new[1:] = ordered[1:] != ordered[:-1]
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], n)
    average = (starts + ends - 1) / 2.0 + 1.0
    ranks = np.empty(n)
    ranks[order] = average[np.cumsum(new) - 1]
    return ranks


def spearman(x, y) -> float:
    """Spearman's rank correlation of two equally long arrays (the Pearson correlation of their
    average ranks); NaN when there are fewer than 2 values or either is constant.

    >>> spearman([1, 2, 3, 4], [10, 20, 30, 45]), spearman([1, 2, 3], [3, 2, 1])
    (1.0, -1.0)
    """
    x, y = np.asarray(x).ravel(), np.asarray(y).ravel()
    if x.size != y.size:
        raise ValueError(f"spearman: arrays of different sizes {x.size} and {y.size}")
    if x.size < 2:
        return float("nan")
    rx, ry = rankdata(x), rankdata(y)
    rx -= rx.mean()
    ry -= ry.mean()
    denom = np.sqrt((rx * rx).sum() * (ry * ry).sum())
    if denom == 0:
        return float("nan")
    return float(np.clip((rx * ry).sum() / denom, -1.0, 1.0))


class Comparison:
    """Per parameter: backprop against the trace. ``records()`` is the data, ``str()`` the table.

    Attributes: ``names``; ``grads[name]`` and ``traces[name]`` (numpy arrays shaped like the
    parameter); ``ratios[name]`` (``|trace| / |grad|`` over the elements with a non-zero gradient,
    flattened); ``top`` (how many top elements each record lists); ``masks[name]`` (where given:
    a boolean array shaped like the parameter; the statistics and top lists cover only its elements).
    """

    def __init__(self, names: list, grads: dict, traces: dict, top: int = 5, masks: dict | None = None):
        self.names = list(names)
        self.grads, self.traces = grads, traces
        self.top = int(top)
        self.masks = dict(masks or {})
        self.ratios = {}
        for name in self.names:
            g, t = np.abs(grads[name]).ravel()[self._at(name)], np.abs(traces[name]).ravel()[self._at(name)]
            nz = g > 0
            self.ratios[name] = t[nz] / g[nz]
        self._records = [self._record(name) for name in self.names]

    def _at(self, name: str):
        """The flat positions of the elements that count (a slice: all)."""
        mask = self.masks.get(name)
        return slice(None) if mask is None else np.flatnonzero(np.asarray(mask).ravel())

    def _record(self, name: str) -> dict:
        g, t = self.grads[name], self.traces[name]
        at_ = self._at(name)
        positions = np.arange(g.size)[at_]
        ag, at = np.abs(g).ravel()[at_], np.abs(t).ravel()[at_]
        ratio = self.ratios[name]
        k = min(self.top, ag.size)

        def top_by(values):
            order = positions[np.argsort(-values, kind="stable")[:k]]
            return [
                {
                    "index": tuple(int(i) for i in np.unravel_index(int(j), g.shape)),
                    "grad": float(g.ravel()[j]),
                    "trace": float(t.ravel()[j]),
                }
                for j in order
            ]

        top_grad, top_trace = top_by(ag), top_by(at)
        overlap = len({e["index"] for e in top_grad} & {e["index"] for e in top_trace})
        return {
            "param": name,
            "shape": tuple(g.shape),
            "size": int(ag.size),
            "grad_norm": float(np.sqrt((ag * ag).sum())),
            "grad_max": float(ag.max()) if ag.size else 0.0,
            "trace_max": float(at.max()) if at.size else 0.0,
            "spearman": spearman(ag, at),
            "ratio_median": float(np.median(ratio)) if ratio.size else float("nan"),
            "ratio_mean": float(ratio.mean()) if ratio.size else float("nan"),
            "ratio_min": float(ratio.min()) if ratio.size else float("nan"),
            "ratio_max": float(ratio.max()) if ratio.size else float("nan"),
            "ratio_above_1": float((ratio > 1).mean()) if ratio.size else float("nan"),
            "top_grad": top_grad,
            "top_trace": top_trace,
            "top_overlap": overlap,
        }

    def ratio_array(self, name: str) -> np.ndarray:
        """``|trace| / |grad|`` shaped like the parameter (NaN where the gradient is 0)."""
        g, t = np.abs(self.grads[name]), np.abs(self.traces[name])
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(g > 0, t / np.where(g > 0, g, 1.0), np.nan)

    def records(self) -> list:
        """One dict per parameter: ``param``, ``shape``, ``size``, ``grad_norm`` (L2), ``grad_max``,
        ``trace_max`` (largest ``|trace|``), ``spearman`` (rank correlation of ``|grad|`` and
        ``|trace|`` over the elements), ``ratio_median``/``ratio_mean``/``ratio_min``/``ratio_max``
        (of ``|trace| / |grad|`` over elements with a non-zero gradient), ``ratio_above_1`` (the
        fraction of those where the best path exceeds the whole gradient: cancellation),
        ``top_grad`` and ``top_trace`` (the top elements by each: ``index``, ``grad``, ``trace``)
        and ``top_overlap`` (how many elements the two top lists share)."""
        return [dict(r) for r in self._records]

    def table(self) -> str:
        """The summary table (one row per parameter)."""
        head = (
            f"{'param':<22}{'shape':>14}{'|grad| L2':>11}{'max|grad|':>11}{'max|trace|':>11}"
            f"{'spearman':>10}{'|trace|/|grad| median [min, max]':>34}{'top-' + str(self.top) + ' shared':>14}"
        )
        lines = [head]
        for r in self._records:
            ratio = f"{r['ratio_median']:.3g} [{r['ratio_min']:.2g}, {r['ratio_max']:.2g}]"
            lines.append(
                f"{r['param'][:21]:<22}{str(r['shape']):>14}{r['grad_norm']:>11.3g}{r['grad_max']:>11.3g}"
                f"{r['trace_max']:>11.3g}{r['spearman']:>10.3f}{ratio:>34}{r['top_overlap']:>14d}"
            )
        return "\n".join(lines)

    def top_table(self) -> str:
        """The top elements of every parameter by ``|grad|`` and by ``|trace|``."""
        lines = []
        for r in self._records:
            lines.append(f"{r['param']}: top {len(r['top_grad'])} by |grad|  |  by |trace|")
            for a, b in zip(r["top_grad"], r["top_trace"]):
                lines.append(
                    f"  {str(a['index']):<14} grad {a['grad']:+.3e} trace {a['trace']:+.3e}   |  "
                    f"{str(b['index']):<14} grad {b['grad']:+.3e} trace {b['trace']:+.3e}"
                )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return f"Comparison({len(self.names)} parameters)"


def compare(output, params, top: int = 5, seed=None, elements=None) -> Comparison:
    """Run backprop (SumProduct) and the trace (MaxAbsProduct) on one graph and compare them.

    ``params``: a tensor, a list of tensors or ``(name, tensor)`` pairs, or an ``nn.Module``.
    Returns a :class:`Comparison`: ``print(c)`` for the table, ``c.records()`` for the numbers.
    ``elements``: only these elements of the parameters count (a boolean mask or an index, see
    :func:`semirad.analysis.shares.element_mask`; with several parameters a list, one entry per
    parameter, or ``{name: elements}``).

    >>> import semirad as sr
    >>> w = sr.tensor([[1.0, -2.0], [0.5, 3.0]], requires_grad=True, name="w")
    >>> x = sr.tensor([[1.0, 1.0], [2.0, -1.0]])
    >>> c = compare((x @ w).tanh().sum(), [w])
    >>> r = c.records()[0]
    >>> r["param"], r["shape"], r["top_grad"][0]["index"]
    ('w', (2, 2), (0, 0))
    """
    named = named_tensors(params)
    if not named:
        raise ValueError("compare: no parameters given")
    tensors = [t for _, t in named]
    grad = backward(output, tensors, SumProduct(), seed)
    trace = backward(output, tensors, MaxAbsProduct(), seed)
    by_node = {} if elements is None else element_masks(named, elements, "compare")
    names = []
    grads, traces, masks = {}, {}, {}
    for name, t in named:
        while name in grads:
            name += "'"
        names.append(name)
        grads[name] = backend.to_numpy(grad[t])
        traces[name] = backend.to_numpy(trace[t])
        if t._node in by_node:
            masks[name] = by_node[t._node].reshape(t.shape)
    return Comparison(names, grads, traces, top, masks)
