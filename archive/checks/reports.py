"""Check reports (检测报告): persisted results of one run of check items on one subject."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from archive.audit import Actor
from archive.checks.base import CheckItem, Result, Stage


def save_report(session: Session, actor: Actor, stage: Stage, subject: str,
                results: list[tuple[CheckItem, Result]], **context: Any) -> Any:
    """Store a report (and its audit event) in the caller's transaction; returns the row (``id``, ``passed``)."""
    raise NotImplementedError  # owner: checks work (issue 9)
