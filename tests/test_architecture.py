"""The layers of docs/design.md ("Architecture"), read from the source: every import of a semirad
module, at the top of a file or inside a function, goes to the same layer or one below, and the
modules import each other without a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "semirad"

#: lowest first; a module belongs to the first entry that is it or a package above it
LAYERS = [
    ["semirad.ids", "semirad.axes", "semirad.kernels"],
    ["semirad.backend", "semirad.fast"],
    ["semirad.readonly", "semirad.engine"],
    ["semirad.semirings"],
    ["semirad.ops"],
    ["semirad.tensor"],
    ["semirad.paths", "semirad.api", "semirad.forward"],
    ["semirad.rng", "semirad.nn", "semirad.optim"],
    ["semirad.analysis", "semirad.__main__", "semirad"],
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> int:
    best = None
    for level, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and (best is None or len(name) > len(best[1])):
                best = (level, name)
    assert best is not None, f"{module} is in no layer of LAYERS"
    return best[0]


def _imports(path: Path, module: str) -> set:
    """The semirad modules ``path`` imports (``from . import x`` names the submodule ``x`` when there is one)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "semirad")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "semirad":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.add(sub if _exists(sub) else target)
    out.discard(module)
    return out


def _exists(module: str) -> bool:
    path = ROOT.parent.joinpath(*module.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}
GRAPH = {m: _imports(p, m) for m, p in MODULES.items()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down_the_layers(module):
    own = _layer(module)
    upward = sorted(t for t in GRAPH[module] if _layer(t) > own)
    assert not upward, f"{module} (layer {own}) imports from a higher layer: {upward}"


def test_no_import_cycles():
    state: dict = {}
    cycles = []

    def visit(module, stack):
        state[module] = "open"
        stack.append(module)
        for target in sorted(GRAPH.get(module, ())):
            if target not in GRAPH:
                continue
            if state.get(target) == "open":
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target, stack)
        stack.pop()
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_layer_check_sees_an_upward_import(tmp_path):
    """The checker is not vacuous: an engine that imported the tensor module would be refused."""
    fake = ROOT / "engine.py"
    source = fake.read_text() + "\nfrom .tensor import Tensor\n"
    path = tmp_path / "engine.py"
    path.write_text(source)
    found = _imports(path, "semirad.engine")
    assert "semirad.tensor" in found and _layer("semirad.tensor") > _layer("semirad.engine")
