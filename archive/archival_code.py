"""档号 (archival reference code): template, allocation of 件号, and parsing.

The default template follows DA/T 22-2015's 件-level shape with the business category in the
机构(问题) slot: ``{全宗号}-YW·{年度}-{保管期限}-{类别}-{件号:06d}``, e.g. ``J001-YW·2024-D30-TQ-000123``.
件号 runs per (全宗, 年度, 保管期限, 类别) with no gaps: it is taken in the transaction that files the
item, so a rolled-back filing also rolls back its number.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from archive.catalogue.models import ArchivalCodeSequence
from archive.classification import RetentionCode
from archive.errors import ConfigError, Conflict, InvalidInput

# Template field → (attribute of CodeParts, regex of its value).
FIELDS: dict[str, tuple[str, str]] = {
    "全宗号": ("fonds", r"[0-9A-Za-z]{1,8}"),
    "门类": ("class_code", r"[A-Z]{2}"),
    "年度": ("year", r"\d{4}"),
    "保管期限": ("retention", r"Y|D30|D10"),
    "类别": ("category", r"[A-Z]{2}"),
    "件号": ("number", r"\d+"),
}
REQUIRED = ("全宗号", "年度", "保管期限", "类别", "件号")


@dataclass(frozen=True)
class CodeParts:
    fonds: str
    year: int
    retention: str
    category: str
    number: int
    class_code: str = "YW"  # 门类代码: 业务档案


class CodeRule:
    """A 档号 template compiled into a formatter and a strict parser."""

    def __init__(self, template: str) -> None:
        self.template = template
        pattern, self.width = "", None
        self._fields: list[str] = []
        self._prefixes: list[tuple[str, re.Pattern[str]]] = []  # to name the first wrong segment
        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as exc:
            raise _bad_template(template, str(exc)) from None
        for literal, field, spec, conv in parsed:
            pattern += re.escape(literal)
            if field is None:
                continue
            if field not in FIELDS or conv:
                raise _bad_template(template, f"未知字段 {{{field}}}，可用字段：{'、'.join(FIELDS)}")
            if field in self._fields:
                raise _bad_template(template, f"字段 {{{field}}} 出现了两次")
            attr, regex = FIELDS[field]
            if field == "件号":
                m = re.fullmatch(r"0(\d+)d", spec or "")
                if spec and not m:
                    raise _bad_template(template, "件号格式只能写成 {件号:0Nd}，例如 {件号:06d}")
                self.width = int(m.group(1)) if m else None
                regex = rf"\d{{{self.width}}}" if self.width else r"[1-9]\d*"
            elif spec:
                raise _bad_template(template, f"字段 {{{field}}} 不能带格式")
            pattern += f"(?P<{attr}>{regex})"
            self._fields.append(field)
            self._prefixes.append((field, re.compile(pattern)))
        missing = [f for f in REQUIRED if f not in self._fields]
        if missing:
            raise _bad_template(template, f"缺少必需字段 {'、'.join(missing)}")
        self._regex = re.compile(pattern)

    @property
    def max_number(self) -> int | None:
        return 10**self.width - 1 if self.width else None

    def format(self, parts: CodeParts) -> str:
        values = {f: getattr(parts, FIELDS[f][0]) for f in self._fields}
        return self.template.format(**values)

    def parse(self, code: str) -> CodeParts:
        m = self._regex.fullmatch(code.strip())
        if not m:
            part = next((f for f, p in self._prefixes if not p.match(code.strip())), None)
            where = f"，{part}部分有误" if part else ""
            raise InvalidInput(
                f"档号 {code!r} 不符合档号规则 {self.template}{where}",
                code="invalid_archival_code",
                detail={"field": "archival_code", "rule": self.template, "part": part},
            )
        g: dict[str, Any] = m.groupdict()
        number = int(g["number"])
        if number < 1:
            raise InvalidInput(f"档号 {code!r} 的件号不能为 0", code="invalid_archival_code",
                               detail={"field": "archival_code", "part": "件号"})
        return CodeParts(fonds=g["fonds"], year=int(g["year"]), retention=g["retention"],
                         category=g["category"], number=number, class_code=g.get("class_code") or "YW")

    def check(self, code: str, expected: CodeParts) -> list[str]:
        """Parse ``code`` and list each part that differs from the item's own fields (empty = consistent)."""
        parts = self.parse(code)
        names = {"fonds": "全宗号", "year": "年度", "retention": "保管期限", "category": "类别", "number": "件号"}
        return [f"{label}: 档号中为 {getattr(parts, attr)}，条目为 {getattr(expected, attr)}"
                for attr, label in names.items() if getattr(parts, attr) != getattr(expected, attr)]


def allocate(session: Session, rule: CodeRule, fonds: str, year: int, retention: str, category: str) -> CodeParts:
    """Take the next 件号 inside the caller's transaction (row-locked upsert; no gaps, no duplicates)."""
    from sqlalchemy.dialects import postgresql, sqlite

    RetentionCode(retention)
    dialect = session.get_bind().dialect.name
    inserts: dict[str, Callable[..., Any]] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}  # both upsert
    insert = inserts.get(dialect)
    if insert is None:
        raise ConfigError(f"不支持的数据库类型 {dialect}", code="unsupported_database")
    seq = ArchivalCodeSequence
    stmt = (
        insert(seq)
        .values(fonds_code=fonds, year=year, retention_code=retention, category=category, last_number=1)
        .on_conflict_do_update(
            index_elements=[seq.fonds_code, seq.year, seq.retention_code, seq.category],
            set_={"last_number": seq.last_number + 1},
        )
        .returning(seq.last_number)
    )
    return _parts(rule, fonds, year, retention, category, session.execute(stmt).scalar_one())


def peek(session: Session, rule: CodeRule, fonds: str, year: int, retention: str, category: str) -> CodeParts:
    """The 件号 :func:`allocate` would take now, without taking it (nothing is locked or written)."""
    RetentionCode(retention)
    seq = ArchivalCodeSequence
    last = session.scalar(select(seq.last_number).where(
        seq.fonds_code == fonds, seq.year == year, seq.retention_code == retention, seq.category == category))
    return _parts(rule, fonds, year, retention, category, (last or 0) + 1)


def _parts(rule: CodeRule, fonds: str, year: int, retention: str, category: str, number: int) -> CodeParts:
    if rule.max_number is not None and number > rule.max_number:
        raise Conflict(
            f"{year} 年度 {retention}-{category} 的件号已用尽（上限 {rule.max_number}），请调整档号规则的件号位数",
            code="archival_number_exhausted")
    return CodeParts(fonds=fonds, year=year, retention=retention, category=category, number=number)


def _bad_template(template: str, reason: str) -> ConfigError:
    return ConfigError(f"档号规则 ARCHIVE_ARCHIVAL_CODE_TEMPLATE={template!r} 有误：{reason}",
                       code="invalid_archival_code_template",
                       detail={"setting": "ARCHIVE_ARCHIVAL_CODE_TEMPLATE", "reason": reason})
