"""The rule registry: each data-quality rule a small registered function with its code, dimension, object,
severity, where it runs, version, owning department and a fix hint in Chinese.

A rule's ``batch`` check returns the failing objects in a scope (the whole catalogue, cases changed since a time,
or a few cases for a re-check); its ``source`` check looks at one case or document as it is captured.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import false, literal, select, union_all
from sqlalchemy.orm import Session

from archive.catalogue.models import Case
from archive.context import Context

Q = TypeVar("Q", bound=Any)  # a Select of any columns

DIMENSIONS = {"completeness": "完整性", "accuracy": "准确性", "consistency": "一致性", "conformity": "规范性",
              "timeliness": "及时性"}
OBJECTS = {"case": "业务", "document": "材料", "item": "归档件", "import_row": "导入记录"}
SEVERITIES = {"block": "阻断", "error": "错误", "warn": "警告"}
WHERE = {"source": "源头", "batch": "批量", "both": "源头与批量", "reconciliation": "数据比对"}
DEPARTMENTS = {"business": "业务部门", "archive": "档案部门", "it": "信息部门", "finance": "财务部门",
               "bank": "受委托银行"}


@dataclass(frozen=True)
class Failure:
    """One object a rule rejects: what it is, the case it belongs to and the values that make it fail."""

    object_type: str
    object_key: str
    serial: str | None
    message: str
    branch: str | None = None
    key_values: dict[str, Any] = field(default_factory=dict)

    def fingerprint(self, rule: str) -> str:
        """Rule + object + key values: the same problem seen again in a later run is the same finding."""
        raw = json.dumps([rule, self.object_type, self.object_key, self.key_values], sort_keys=True,
                         ensure_ascii=False, default=str)
        return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class Scope:
    """Which objects a batch check looks at: all, cases changed since ``since``, or only ``serials``."""

    now: datetime
    since: datetime | None = None
    serials: tuple[str, ...] | None = None

    def cases(self, query: Q) -> Q:
        """``query`` (which selects from or joins ``case``) narrowed to this scope."""
        if self.serials is not None:
            query = query.where(Case.serial.in_(self.serials))
        if self.since is not None:
            query = query.where(Case.updated_at >= self.since)
        return query


def table_of(name: str, rows: Iterable[tuple[str, str]]) -> Any:
    """A small constant table (``a``, ``b``) as a subquery, to join a schedule's (type, material) pairs in one query
    on SQLite and PostgreSQL alike."""
    selects = [select(literal(a).label("a"), literal(b).label("b")) for a, b in rows]
    if not selects:
        selects = [select(literal("").label("a"), literal("").label("b")).where(false())]
    return union_all(*selects).subquery(name)


BatchCheck = Callable[[Context, Session, Scope], Iterable[Failure]]
SourceCheck = Callable[[Context, Session, Mapping[str, Any]], str | None]


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    dimension: str
    object: str
    severity: str
    where: str
    version: int
    owner: str
    hint: str
    batch: BatchCheck | None = None
    source: SourceCheck | None = None
    kind: str = "sql"  # sql: one query returns the failing rows; python: rows are read and checked one by one

    def describe(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, "dimension": self.dimension,
                "dimension_name": DIMENSIONS[self.dimension], "object": self.object,
                "object_name": OBJECTS[self.object], "severity": self.severity,
                "severity_name": SEVERITIES[self.severity], "where": self.where, "where_name": WHERE[self.where],
                "version": self.version, "owner": self.owner, "owner_name": DEPARTMENTS[self.owner],
                "hint": self.hint, "kind": self.kind}


REGISTRY: dict[str, Rule] = {}


def rule(code: str, name: str, *, dimension: str, object: str, severity: str, owner: str, hint: str,
         where: str = "batch", version: int = 1, kind: str = "sql") -> Callable[[BatchCheck], BatchCheck]:
    """Register the decorated batch check as a rule."""

    def register(check: BatchCheck) -> BatchCheck:
        add(Rule(code, name, dimension, object, severity, where, version, owner, hint, batch=check, kind=kind))
        return check

    return register


def add(r: Rule) -> Rule:
    assert r.code not in REGISTRY, r.code
    assert r.dimension in DIMENSIONS and r.object in OBJECTS and r.severity in SEVERITIES and r.where in WHERE
    assert r.owner in DEPARTMENTS and r.kind in ("sql", "python")
    REGISTRY[r.code] = r
    return r


def with_source(code: str, source: SourceCheck) -> None:
    """Give the registered rule ``code`` its check at the source (intake or upload)."""
    r = REGISTRY[code]
    REGISTRY[code] = Rule(r.code, r.name, r.dimension, r.object, r.severity, r.where, r.version, r.owner, r.hint,
                          batch=r.batch, source=source, kind=r.kind)
