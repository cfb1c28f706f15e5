"""Routers stay thin (issue 13): the API's errors are the domain's, their status is decided only by
archive/api/errors.py, and permissions are checked only by archive.authorization.require."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import archive
from archive.errors import ERRORS, ArchiveError

ROOT = Path(archive.__file__).parent


def _subclasses(cls: type) -> set[type]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub, *_subclasses(sub)}
    return out


def _modules(package: str) -> list[str]:
    pkg = importlib.import_module(package)
    return [m.name for m in pkgutil.walk_packages(pkg.__path__, f"{package}.")]


def test_routers_define_no_errors_of_their_own() -> None:
    """Given every route module, When its classes are listed, Then none is an error: a refusal a route raises is one
    of the domain's errors, answered by the one handler."""
    for name in _modules("archive.api.routes"):
        module = importlib.import_module(name)
        own = [c for _, c in inspect.getmembers(module, inspect.isclass)
               if c.__module__ == name and issubclass(c, ERRORS)]
        assert own == [], f"{name} defines {own}"


def test_errors_carry_a_kind_and_no_http_status() -> None:
    """Given every error class of archive/ (after the app has imported them all), When read, Then none carries an
    HTTP status and no raise site passes one: the status follows from the kind in archive/api/errors.py."""
    importlib.import_module("archive.api.app")
    for cls in {ArchiveError, *_subclasses(ArchiveError)}:
        assert not hasattr(cls, "status"), f"{cls.__qualname__} still has a status"
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                assert "status" not in {k.arg for k in node.exc.keywords}, f"{path}:{node.lineno} raises with status="


def test_only_the_one_check_refuses_for_want_of_a_permission() -> None:
    """Given the API's modules, When their raise statements are read, Then none raises PermissionDenied itself: every
    permission refusal goes through archive.authorization.require, which audits it."""
    for path in (ROOT / "api").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                func = node.exc.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                assert name != "PermissionDenied", f"{path}:{node.lineno} raises PermissionDenied by hand"
