"""Named things are declared once: audit actions, error codes, catalogue statuses (issue 13, item 7)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from archive import audit
from archive.api.errors import KIND_STATUS
from archive.audit import Actor
from archive.audit_actions import ACTIONS, UnknownAction
from archive.catalogue.models import (
    AuditEvent,
    Case,
    CaseStatus,
    Document,
    DocumentStatus,
    Hold,
    ItemStatus,
    LendingRequest,
)
from archive.context import Context
from archive.error_codes import CODES, Kind, markdown
from archive.errors import KINDS
from archive.permissions import Principal

ROOT = Path(__file__).parents[1]
PACKAGES = ("archive", "storage", "signing", "search")
AUDIT_CALLS = {"record", "audited", "answered"}  # audit.record and the refusal helpers: action is the third argument
CJK = re.compile(r"[\u4e00-\u9fff]")


def _modules(*packages: str) -> Iterator[tuple[Path, ast.Module]]:
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _constants(tree: ast.Module) -> dict[str, str]:
    """Module-level NAME = "literal" assignments (e.g. access.ACTION)."""
    out: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            out.update((t.id, node.value.value) for t in node.targets if isinstance(t, ast.Name))
    return out


def _strings(node: ast.expr, constants: dict[str, str]) -> list[str]:
    """The literal strings an argument can be: a literal, either branch of ``a if c else b``, a module constant."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _strings(node.body, constants) + _strings(node.orelse, constants)
    if isinstance(node, ast.Name) and node.id in constants:
        return [constants[node.id]]
    return []  # a parameter passed through (audited's ``action``): checked where the literal is written


def audit_actions_in_code() -> dict[str, str]:
    found: dict[str, str] = {}
    for path, tree in _modules("archive"):
        constants = _constants(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func_ = node.func
            name = func_.attr if isinstance(func_, ast.Attribute) else getattr(func_, "id", None)
            if name not in AUDIT_CALLS:
                continue
            args = [*node.args[2:3], *(k.value for k in node.keywords if k.arg == "action")]
            for arg in args:
                for action in _strings(arg, constants):
                    found.setdefault(action, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def error_codes_in_code() -> dict[str, str]:
    """Every ``code="..."`` keyword and every class-level ``code = "..."`` in the four packages."""
    found: dict[str, str] = {}
    for path, tree in _modules(*PACKAGES):
        for node in ast.walk(tree):
            literals: list[ast.expr] = []
            if isinstance(node, ast.Call):
                literals = [k.value for k in node.keywords if k.arg == "code"]
            elif isinstance(node, ast.ClassDef):
                for stmt in node.body:
                    targets = stmt.targets if isinstance(stmt, ast.Assign) else \
                        [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
                    value = getattr(stmt, "value", None)
                    if value is not None and any(isinstance(t, ast.Name) and t.id == "code" for t in targets):
                        literals.append(value)
            for lit in literals:
                if isinstance(lit, ast.Constant) and isinstance(lit.value, str) and lit.value:  # "": a data field
                    found.setdefault(lit.value, f"{path.relative_to(ROOT)}:{getattr(lit, 'lineno', 0)}")
    return found


# --- audit actions ---------------------------------------------------------------------------------------------

def test_every_audit_action_in_the_code_is_declared() -> None:
    """Given every literal action passed to audit.record (or the refusal helpers), then each is declared with its
    meaning in archive/audit_actions.py."""
    found = audit_actions_in_code()
    assert len(found) >= 50  # the scan sees the calls (guards against a scan that finds nothing)
    missing = {a: where for a, where in found.items() if a not in ACTIONS}
    assert not missing, f"declare these in archive/audit_actions.py: {missing}"


def test_every_declared_action_has_a_chinese_description_and_a_dotted_name() -> None:
    for action, meaning in ACTIONS.items():
        assert re.fullmatch(r"[a-z]+(\.[a-z]+)+", action), action
        assert CJK.search(meaning), action


def test_recording_an_undeclared_action_is_refused_and_writes_nothing(ctx: Context) -> None:
    """Given an action name not in the registry (a typo), when recorded, then it is refused before anything is
    written, and the chain is unchanged."""
    with ctx.catalogue.sessions() as s:
        before = s.scalar(select(func.count()).select_from(AuditEvent))
    with pytest.raises(UnknownAction, match=r"case\.opne"), ctx.catalogue.session() as s:
        audit.record(s, Actor.system(), "case.opne", target_type="case", target_id="X")
    with ctx.catalogue.sessions() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == before
        assert audit.verify(s).ok


def test_actor_of_a_principal() -> None:
    p = Principal(kind="client", id=7, name="core", permissions=frozenset())
    assert Actor.of(p) == Actor("client", "core")


# --- error codes -----------------------------------------------------------------------------------------------

def test_every_error_code_in_the_code_is_declared() -> None:
    """Given every ``code="..."`` in archive/, storage/, signing/ and search/, then each is declared in
    archive/error_codes.py (with its kind and Chinese meaning)."""
    found = error_codes_in_code()
    assert len(found) >= 200
    missing = {c: where for c, where in found.items() if c not in CODES}
    assert not missing, f"declare these in archive/error_codes.py: {missing}"


def test_every_declared_code_has_a_chinese_meaning_and_a_status() -> None:
    for name, code in CODES.items():
        assert re.fullmatch(r"[a-z][a-z0-9_.]*", name), name
        assert CJK.search(code.meaning), name
        assert code.kind in KIND_STATUS, name


def test_kinds_agree_with_the_package_errors() -> None:
    """Given the kinds the registry uses, the kinds errors may carry and the API's status table, Then all three are
    the same set: one list of kinds, one place (archive/api/errors.py) that gives each its HTTP status."""
    assert set(Kind) == set(KINDS) == set(KIND_STATUS)


def test_error_codes_doc_is_current() -> None:
    """docs/error-codes.md is generated: run `.venv/bin/python scripts/error_codes_doc.py` after changing codes."""
    doc = (ROOT / "docs" / "error-codes.md").read_text(encoding="utf-8")
    assert doc == markdown(KIND_STATUS)
    assert all(f"`{name}`" in doc for name in CODES)


# --- catalogue statuses and active documents -------------------------------------------------------------------

def test_statuses_are_enums_that_compare_with_their_strings() -> None:
    assert CaseStatus.FILED == "filed" and ItemStatus("destroyed") is ItemStatus.DESTROYED
    assert f"{DocumentStatus.ACTIVE}" == "active"


def test_an_unknown_status_is_refused_on_assignment() -> None:
    """Given a catalogue row, when a status outside its enum is assigned, then it is refused; a declared one is
    stored as its plain string."""
    case = Case(status="open")
    with pytest.raises(ValueError, match="filled"):
        case.status = "filled"
    case.status = CaseStatus.FILED
    assert case.status == "filed" and type(case.status) is str
    with pytest.raises(ValueError):
        Hold(status="archived")
    with pytest.raises(ValueError):
        LendingRequest(status="granted")


def test_active_documents_one_rule_in_python_and_in_sql() -> None:
    """Given a case with documents in every status, then only the active ones are its documents, and the SQL
    condition is the same test."""
    docs = [Document(sequence=i, status=s) for i, s in enumerate(DocumentStatus, 1)]
    case = Case(documents=docs)
    assert [d.status for d in case.active_documents] == ["active"]
    sql = str(select(Document.id).where(Document.is_active).compile(compile_kwargs={"literal_binds": True}))
    assert "document.status = 'active'" in sql
