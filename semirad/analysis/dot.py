"""Graphviz DOT pictures of a recorded graph: ops with shapes, components as clusters, best paths
highlighted. :func:`write_graph` renders SVG/PNG when Graphviz's ``dot`` is on the PATH and
writes the plain ``.dot`` file either way."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path as FilePath

from .. import engine

__all__ = ["to_dot", "write_graph"]

_PATH_COLORS = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e"]


def _quote(text: str) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(output, highlight=None, *, title: str | None = None, clusters: bool = True, max_nodes: int = 5000) -> str:
    """The DOT text of the graph that ``output`` was computed from.

    One box per op (its name, tensor name and shape), one ellipse per leaf (parameters named), one
    arrow per input slot (so ``x * x`` has two), pointing toward the output. With ``clusters``,
    every ``sr.component`` block is a (nested) cluster. ``highlight`` is a :class:`~semirad.Path`
    (from ``trace.path``) or a list of them: their vertices are marked with the element index and
    their edges drawn bold, labelled with the edge weight. ``max_nodes`` guards against drawings
    nobody can read (a ``ValueError`` says how many nodes there are).

    >>> import semirad as sr
    >>> w = sr.tensor([1.0, 2.0], requires_grad=True, name="w")
    >>> with sr.component("f"):
    ...     y = (w * 3.0).exp()
    >>> loss = y.sum()
    >>> text = to_dot(loss, sr.trace(loss, [w]).path(w, 1))
    >>> text.splitlines()[0], "subgraph cluster_1" in text, "penwidth=2.5" in text
    ('digraph semirad {', True, True)
    """
    node = output if isinstance(output, engine.Node) else getattr(output, "_node", None)
    if node is None:
        raise ValueError("to_dot: the output is not part of a recorded graph")
    nodes = engine.ancestors(node)
    if len(nodes) > max_nodes:
        raise ValueError(
            f"to_dot: the graph has {len(nodes)} nodes (max_nodes={max_nodes}); draw a smaller "
            "input (a shorter sequence, a smaller batch) or raise max_nodes"
        )
    paths = [] if highlight is None else ([highlight] if hasattr(highlight, "steps") else list(highlight))
    marks: dict = {}  # seq -> [(path number, element index)]
    edges: dict = {}  # (parent seq, child seq) -> [(path number, weight)]
    for number, path in enumerate(paths):
        seqs = getattr(path, "node_seqs", None)
        if seqs is None:
            raise ValueError("to_dot: highlight needs paths that come from a trace (Path.node_seqs)")
        for seq, step in zip(seqs, path.steps):
            marks.setdefault(seq, []).append((number, step.index))
        for (a, b), weight in zip(zip(seqs, seqs[1:]), path.weights):
            edges.setdefault((a, b), []).append((number, weight))

    lines = [
        "digraph semirad {",
        '  graph [rankdir=TB, fontname="Helvetica", fontsize=11, compound=true];',
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9, color="#777777"];',
    ]
    if title:
        lines.append(f"  label={_quote(title)}; labelloc=t;")

    def node_line(n, indent):
        text = n.op_name + (f" {n.name}" if n.name else "") + f"\n{list(n.shape)}"
        attrs = (
            ["shape=box", 'style="rounded"']
            if n.op is not None
            else ["shape=ellipse", 'style="filled"', 'fillcolor="#eeeeee"']
        )
        if n.seq in marks:
            number = marks[n.seq][0][0]
            shown = ", ".join(str(list(index)) for _, index in marks[n.seq][:3])
            text += f"\n@ {shown}" + (" ..." if len(marks[n.seq]) > 3 else "")
            color = _PATH_COLORS[number % len(_PATH_COLORS)]
            attrs += [f'color="{color}"', "penwidth=2.5", f'fontcolor="{color}"']
        return f"{indent}n{n.seq} [label={_quote(text)}, {', '.join(attrs)}];"

    if clusters:
        tree: dict = {"nodes": [], "children": {}}
        for n in nodes:
            where = tree
            for part in n.component.split("/") if n.component else []:
                where = where["children"].setdefault(part, {"nodes": [], "children": {}})
            where["nodes"].append(n)
        counter = [0]

        def emit(branch, name, indent):
            counter[0] += 1
            lines.append(f"{indent}subgraph cluster_{counter[0]} {{")
            lines.append(f'{indent}  label={_quote(name)}; style="rounded,dashed"; color="#999999";')
            for n in branch["nodes"]:
                lines.append(node_line(n, indent + "  "))
            for child_name, child in branch["children"].items():
                emit(child, child_name, indent + "  ")
            lines.append(f"{indent}}}")

        for n in tree["nodes"]:
            lines.append(node_line(n, "  "))
        for child_name, child in tree["children"].items():
            emit(child, child_name, "  ")
    else:
        for n in nodes:
            lines.append(node_line(n, "  "))

    for n in nodes:
        for parent in n.parents:
            if parent is None:
                continue
            on = edges.get((parent.seq, n.seq))
            if on:
                number, weight = on[0]
                color = _PATH_COLORS[number % len(_PATH_COLORS)]
                lines.append(
                    f'  n{parent.seq} -> n{n.seq} [color="{color}", penwidth=2.5, '
                    f'label={_quote(f"x {weight:.3g}")}, fontcolor="{color}"];'
                )
            else:
                lines.append(f"  n{parent.seq} -> n{n.seq};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_graph(graph, path, formats=("svg",), highlight=None, **options) -> list:
    """Write the DOT file of ``graph`` (an output tensor, or DOT text from :func:`to_dot`) to
    ``path`` (``.dot`` added) and, when Graphviz's ``dot`` is on the PATH, render it to each of
    ``formats`` (``"svg"``, ``"png"``, ``"pdf"``...). Returns the paths of the files written; the
    ``.dot`` file is always first. ``highlight`` and ``options`` go to :func:`to_dot`.
    """
    text = graph if isinstance(graph, str) else to_dot(graph, highlight, **options)
    base = FilePath(path)
    if base.suffix.lower() in (".dot", ".gv", ".svg", ".png", ".pdf"):
        base = base.with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    dot_file = base.with_suffix(".dot")
    dot_file.write_text(text)
    written = [dot_file]
    program = shutil.which("dot")
    if program is None:
        return written
    for fmt in formats:
        out = base.with_suffix("." + fmt)
        subprocess.run(
            [program, f"-T{fmt}", str(dot_file), "-o", str(out)], check=True, capture_output=True, timeout=300
        )
        written.append(out)
    return written
