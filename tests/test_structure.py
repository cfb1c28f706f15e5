"""Package boundaries: storage/, signing/ and search/ depend on nothing in archive/ (archive/ wires them)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIBRARIES = ("storage", "signing", "search")


def _imports_of_archive(source: str, name: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [f"{name}:{node.lineno} {n}" for n in names if n.split(".")[0] == "archive"]
    return found


def test_library_packages_import_nothing_from_archive() -> None:
    """Given every module of storage/, signing/ and search/, When their imports are parsed (also those inside
    functions and under TYPE_CHECKING), Then none names archive or a module under it."""
    files = [p for package in LIBRARIES for p in sorted((ROOT / package).rglob("*.py"))]
    assert len(files) > 20  # the packages were found
    hits = [h for p in files for h in _imports_of_archive(p.read_text(encoding="utf-8"), str(p.relative_to(ROOT)))]
    assert hits == []


def test_the_check_sees_an_archive_import() -> None:
    """Given a module that imports archive three ways (and look-alikes), When parsed, Then the three are reported."""
    source = ("import archive.errors\nfrom archive import context\nimport archiver\nfrom . import archive\n\n"
              "def f():\n    from archive.settings import Settings\n")
    assert _imports_of_archive(source, "probe.py") == [
        "probe.py:1 archive.errors", "probe.py:2 archive", "probe.py:7 archive.settings"]


# --- no import circles among archive/ modules ------------------------------------------------------------------


def _module_names(root: Path, package: str) -> dict[str, Path]:
    """Dotted name → file of every module of ``package`` (migrations excluded: Alembic loads them by path)."""
    names = {}
    for path in sorted((root / package).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        parts = list(path.relative_to(root).with_suffix("").parts)
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _is_type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def _imported(source: str, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``module`` imports when it runs: module-level imports and those inside
    functions (a circle hidden in a function is still a circle); not those under ``if TYPE_CHECKING``. Importing
    ``a.b.c`` also runs the packages ``a`` and ``a.b``, except those the importing module is itself inside."""
    own_package = module if is_package else module.rpartition(".")[0]
    ancestors = {".".join(module.split(".")[:n]) for n in range(1, module.count(".") + 1)} | {own_package}
    found: set[str] = set()

    def resolve(name: str) -> None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        parts = name.split(".")
        for n in range(1, len(parts) + 1):
            target = ".".join(parts[:n])
            if target in known and target != module and target not in ancestors:
                found.add(target)

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    resolve(alias.name)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parent = own_package.split(".")[: len(own_package.split(".")) - (child.level - 1)]
                    base = ".".join(parent + ([base] if base else []))
                for alias in child.names:
                    resolve(f"{base}.{alias.name}")
            visit(child)

    visit(ast.parse(source, module))
    return found


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return circles


def _import_graph(files: dict[str, tuple[str, bool]]) -> dict[str, set[str]]:
    known = set(files)
    return {m: _imported(source, m, is_package, known) for m, (source, is_package) in files.items()}


def test_archive_modules_import_each_other_without_circles() -> None:
    """Given every module of archive/, When the modules each one imports are collected (at module level and
    inside functions, so that no circle hides in a function), Then no group of modules imports itself round."""
    modules = _module_names(ROOT, "archive")
    assert len(modules) > 80 and "archive.retention.transfer" in modules
    files = {m: (p.read_text(encoding="utf-8"), p.name == "__init__.py") for m, p in modules.items()}
    graph = _import_graph(files)
    assert "archive.retention.bagit" in graph["archive.checks.yj"]  # the graph has the edges
    assert _circles(graph) == []


def test_the_circle_check_sees_a_circle_hidden_in_a_function() -> None:
    """Given four modules where a imports b at module level, b imports a inside a function, c imports d only
    under TYPE_CHECKING and d imports c, When the circles are found, Then a ↔ b is reported, c ↔ d is not."""
    files = {
        "pkg": ("", True),
        "pkg.a": ("from pkg import b\n", False),
        "pkg.b": ("def f():\n    from .a import thing\n", False),
        "pkg.c": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.d import D\n", False),
        "pkg.d": ("import pkg.c\n", False),
    }
    assert _circles(_import_graph(files)) == [["pkg.a", "pkg.b"]]
