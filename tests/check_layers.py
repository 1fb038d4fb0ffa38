"""The layer contract of splitpinn (``make lint``; ``tests/test_layers.py``).

Every import of the package, at module level or inside a function (only ``if TYPE_CHECKING:``
blocks are exempt), must go from a layer to the same or a lower one, and no module may reach
itself through its imports (no cycles).  The layers, top to bottom:

    cli → api → io → analysis → solvers → numeric → models → declare → fractional

``splitpinn.errors`` is a leaf that any layer may import; the package's ``__init__`` sits on
top.  ``models/`` and ``fractional/`` are installed as ``splitpinn.models`` and
``splitpinn.fractional`` (setup.cfg's ``package_dir``), so the files are mapped here as
setuptools maps them.

    python tests/check_layers.py      # prints each violation; exit 1 if any
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Top to bottom.
LAYERS = ["cli", "api", "io", "analysis", "solvers", "numeric", "models", "declare", "fractional"]
#: Folders of the installed package, as setup.cfg's package_dir maps them.
FOLDERS = {"splitpinn": ROOT / "splitpinn", "splitpinn.models": ROOT / "models",
           "splitpinn.fractional": ROOT / "fractional"}


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    found = {}
    for prefix, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((prefix, *parts))] = path
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules that module ``name`` imports anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node):
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if child in known else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return {m for m in found if m in known and m != name}


def layer(name: str) -> int | None:
    """Index in LAYERS (0 = top) of a module; None for the root package and errors."""
    parts = name.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def violations() -> list[str]:
    known = modules()
    graph = {name: imports(name, path, known) for name, path in known.items()}
    found = []
    for name, targets in sorted(graph.items()):
        for target in sorted(targets):
            if target == "splitpinn.errors":
                continue
            if name == "splitpinn.errors":
                found.append(f"{name} imports {target}: errors is a leaf")
                continue
            here, there = layer(name), layer(target)
            if target == "splitpinn" or (here is not None and there is not None and there < here):
                found.append(f"{name} ({LAYERS[here] if here is not None else 'top'}) imports "
                             f"{target} ({'top' if there is None else LAYERS[there]}), a higher "
                             "layer")
    found += [f"import cycle: {' -> '.join(c)}" for c in cycles(graph)]
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def connect(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            connect(v)
    return out


if __name__ == "__main__":
    problems = violations()
    for line in problems:
        print(line)
    print(f"layers: {len(problems)} violation(s)" if problems else "layers: ok")
    sys.exit(1 if problems else 0)
