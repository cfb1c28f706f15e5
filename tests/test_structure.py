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
