"""PathFlow: SumAbs on several channels, each blind to the paths through one set of vertices or edges.

A value has shape ``(1 + C,) + shape``. Channel 0 is ``P(v) = Σ_paths |product|`` (SumAbs);
channel ``1 + c`` is the same sum over the paths from ``v`` that avoid set ``c``: the paths through
a blocked vertex, or along a blocked edge, are left out of it. The flow through set ``c`` is then
``P - channel c``: what :func:`semirad.analysis.backprop_path_shares` reports, in one sweep.

Every primitive is SumAbs's applied to each channel (those of
:class:`~semirad.semirings.component_flow.ComponentFlow`); the one addition is :meth:`PathFlow.enter`:

* a vertex tensor of set ``c`` gets channel ``1 + c`` zeroed when it is complete, before its op's
  backward, so no path through it reaches its inputs in that channel;
* for a blocked edge set "from input tensor ``a`` into ``b``", ``b``'s channel ``1 + c`` is zeroed
  the same way, and its flow into ``b``'s *other* inputs is computed right then, by ``b``'s own
  backward (in SumAbs, restricted to those inputs), and added to them when they are entered.

As in the engine, the value a sweep reports for one of its inputs is the value before ``enter``;
:meth:`PathFlow.value_at` adds what other inputs' edges brought it (a blocked edge's siblings).
"""

from __future__ import annotations

from .. import backend
from ..engine import full_contribution
from .component_flow import ComponentFlow


class PathFlow(ComponentFlow):
    """``(1 + channels,) + shape`` values: the total ``Σ |product|`` and, per channel, the same over the
    paths that avoid that channel's vertices and edges.

    ``blocked``: ``{node: [channel, ...]}`` (0-based channels, without the total); ``edge_blocks``:
    ``{node: [(input node, [channel, ...]), ...]}``: the edges from that input tensor into ``node``
    (every input slot it fills) are blocked in those channels; ``needed``: the nodes the sweep visits
    (a flow is only computed toward them; default: every input).

    >>> import numpy as np, semirad as sr
    >>> x = sr.tensor([2.0], requires_grad=True)
    >>> y = x * 3.0
    >>> out = (y + x).sum()     # from x: 3 through y, 1 straight into the add
    >>> flow = sr.backward(out, [x], semiring=PathFlow({y._node: [0]}, {out._node.parents[0]: [(x._node, [1])]}, 2))
    >>> flow[x].ravel().tolist()    # total, avoiding y, avoiding the edge x -> add
    [4.0, 1.0, 3.0]
    """

    name = "path-flow"

    def __init__(self, blocked: dict, edge_blocks: dict, channels: int, needed=None):
        super().__init__({}, channels)
        self.blocked = blocked
        self.edge_blocks = edge_blocks
        self.needed = needed
        self._pending: dict | None = None
        self._extra: dict | None = None

    def seed(self, array):
        """Every channel starts as ``|seed|``: at the output no path has met a blocked set yet."""
        xp = backend.namespace(array)
        return xp.broadcast_to(xp.abs(array), (self.channels + 1,) + tuple(array.shape)).astype(float)

    def for_sweep(self):
        fresh = PathFlow(self.blocked, self.edge_blocks, self.channels, self.needed)
        fresh._pending, fresh._extra = {}, {}
        return fresh

    def enter(self, g, node, base):
        extra = self._pending.pop(node, None) if self._pending is not None else None
        blocked = self.blocked.get(node)
        edges = self.edge_blocks.get(node) if node.op is not None else None
        if extra is None and blocked is None and not edges:
            return g, None
        out = g.astype(float, copy=True)
        if extra is not None:
            out += extra
            self._extra[node] = extra
        if blocked is not None:
            out[[1 + c for c in blocked]] = 0.0
        if edges:
            self._block_edges(out, node, edges, blocked or ())
        return out, None

    def _block_edges(self, out, node, edges, blocked) -> None:
        """Zero ``node``'s channels of blocked edges, after sending their flow on along ``node``'s other inputs."""
        parents = node.parents
        cut: dict = {}  # channel -> the input tensors whose edges into node it blocks
        for parent, chans in edges:
            for c in chans:
                if c not in blocked:
                    cut.setdefault(c, set()).add(parent)
        by_slots: dict = {}  # the inputs that still get the flow -> the channels that send it
        for c, cut_parents in cut.items():
            slots = tuple(
                i for i, p in enumerate(parents)
                if p is not None and p not in cut_parents and (self.needed is None or p in self.needed)
            )  # fmt: skip
            by_slots.setdefault(slots, []).append(c)
        for slots, chans in by_slots.items():
            if slots:
                part = out[[1 + c for c in chans]]
                flow = ComponentFlow({}, len(chans) - 1)  # the same SumAbs primitives, on these channels
                needs = tuple(i in slots for i in range(len(parents)))
                contributions = node.op.backward(node, part, flow, needs)
                for i, (parent, contribution) in enumerate(zip(parents, contributions)):
                    if i not in slots:
                        continue
                    full = full_contribution(flow, contribution, parent.shape)
                    pending = self._pending.get(parent)
                    if pending is None:
                        pending = self._pending[parent] = _zeros_like_channels(full, self.channels + 1)
                    for j, c in enumerate(chans):
                        pending[1 + c] += full[j]
            out[[1 + c for c in chans]] = 0.0

    def value_at(self, sweep, node):
        """The value of input ``node`` of a finished ``sweep`` of this semiring, with what blocked
        edges' siblings sent it."""
        value = sweep.values[node]
        extra = (sweep.semiring._extra or {}).get(node)
        return value if extra is None else value + extra

    def __repr__(self) -> str:
        return f"PathFlow({self.channels} channels)"


def _zeros_like_channels(part, channels: int):
    xp = backend.namespace(part)
    return xp.zeros((channels,) + tuple(part.shape[1:]))
