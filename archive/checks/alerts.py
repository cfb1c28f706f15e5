"""Alerts (告警) raised by storage-check findings: one row per (item code, target), acknowledged by people.

A finding seen again moves ``last_seen`` and counts an occurrence; it never makes a second row. An
acknowledgement stays when the finding recurs: it says a person knows, not that it is fixed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from archive import audit
from archive.audit import Actor
from archive.catalogue.models import AlertSeverity, StorageAlert
from archive.catalogue.types import utcnow
from archive.checks.base import CheckItem, Outcome, Result
from archive.errors import ERRORS, Conflict, InvalidInput, NotFound

if TYPE_CHECKING:
    from archive.context import Context

CRITICAL, WARNING = AlertSeverity.CRITICAL.value, AlertSeverity.WARNING.value
SEVERITY_NAMES = {CRITICAL: "严重", WARNING: "警告"}
TARGET_MAX = 300
NOTE_MAX = 500


def severity_of(item: CheckItem, result: Result) -> str:
    """A failed blocking item is critical; a non-blocking one, or a check that could not run, a warning."""
    return CRITICAL if item.blocking and result.outcome is Outcome.FAILED else WARNING


def raise_alerts(session: Session, actor: Actor, findings: Iterable[tuple[CheckItem, Result]],
                 sweep_id: int | None = None) -> list[StorageAlert]:
    """Upsert an alert per failed or errored result; audit the new ones in one event. Returns the new alerts."""
    new: list[StorageAlert] = []
    now = utcnow()
    for item, result in findings:
        if result.outcome not in (Outcome.FAILED, Outcome.ERROR):
            continue
        target = (result.target or item.code)[:TARGET_MAX]
        severity = severity_of(item, result)
        alert = _existing(session, item.code, target)
        if alert is None:
            alert = StorageAlert(code=item.code, target=target, severity=severity, message=result.detail,
                                 detail=_jsonable(result.data), occurrences=1, sweep_id=sweep_id,
                                 first_seen=now, last_seen=now)
            try:
                with session.begin_nested():  # another sweep may raise the same alert at the same moment
                    session.add(alert)
                    session.flush()
                new.append(alert)
                continue
            except IntegrityError:
                alert = _existing(session, item.code, target)
                assert alert is not None
        if alert not in new:
            alert.last_seen, alert.occurrences, alert.sweep_id = now, alert.occurrences + 1, sweep_id
            alert.message, alert.detail, alert.severity = result.detail, _jsonable(result.data), severity
    session.flush()
    if new:
        audit.record(session, actor, "alert.raise", target_type="sweep", target_id=sweep_id, detail={
            "count": len(new), "alerts": [{"id": a.id, "code": a.code, "target": a.target} for a in new[:50]]})
    return new


def _existing(session: Session, code: str, target: str) -> StorageAlert | None:
    return session.scalar(select(StorageAlert).where(StorageAlert.code == code, StorageAlert.target == target)
                          .with_for_update())


def acknowledge(session: Session, actor: Actor, alert_id: int, note: str | None = None) -> StorageAlert:
    if note is not None and len(note) > NOTE_MAX:
        raise InvalidInput(f"处理说明不能超过 {NOTE_MAX} 字", code="note_too_long", detail={"max": NOTE_MAX})
    alert = session.scalar(select(StorageAlert).where(StorageAlert.id == alert_id).with_for_update())
    if alert is None:
        raise NotFound(f"告警 {alert_id} 不存在", code="alert_not_found", detail={"id": alert_id})
    if alert.acknowledged_at is not None:
        raise Conflict(f"告警 {alert_id} 已由 {alert.acknowledged_by} 于 {alert.acknowledged_at:%Y-%m-%d %H:%M} 确认，"
                       "无需重复确认", code="alert_already_acknowledged",
                       detail={"id": alert_id, "acknowledged_by": alert.acknowledged_by})
    alert.acknowledged_by, alert.acknowledged_at, alert.acknowledge_note = actor.name, utcnow(), note
    audit.record(session, actor, "alert.acknowledge", target_type="alert", target_id=alert.id,
                 detail={"code": alert.code, "target": alert.target, "note": note})
    return alert


def acknowledge_recorded(ctx: Context, session: Session, actor: Actor, alert_id: int,
                         note: str | None = None) -> StorageAlert:
    """:func:`acknowledge` for a person (API and UI): a refusal is kept in the audit log, nothing else changes."""
    try:
        return acknowledge(session, actor, alert_id, note)
    except ERRORS as exc:
        session.rollback()  # ends the request's transaction (on SQLite: frees the write lock) first
        with ctx.catalogue.session() as s:
            audit.record(s, actor, "alert.acknowledge", target_type="alert", target_id=alert_id,
                         outcome="refused", detail={"code": exc.code, "message": exc.message})
        raise


def query(session: Session, *, include_acknowledged: bool = False, severity: str | None = None,
          code: str | None = None, limit: int = 100, offset: int = 0) -> list[StorageAlert]:
    """Alerts, most recently seen first; unacknowledged only unless asked."""
    if severity is not None and severity not in SEVERITY_NAMES:
        raise InvalidInput(f"告警级别 {severity!r} 不存在；可选 critical（严重）、warning（警告）",
                           code="invalid_severity", detail={"severity": severity})
    q = select(StorageAlert)
    if not include_acknowledged:
        q = q.where(StorageAlert.acknowledged_at.is_(None))
    if severity is not None:
        q = q.where(StorageAlert.severity == severity)
    if code is not None:
        q = q.where(StorageAlert.code == code)
    q = q.order_by(StorageAlert.last_seen.desc(), StorageAlert.id.desc()).offset(offset).limit(limit)
    return list(session.scalars(q))


def counts(session: Session) -> dict[str, Any]:
    """Open (unacknowledged) alerts by severity, and all alerts: what /api/v1/alerts/summary shows."""
    rows = session.execute(select(StorageAlert.severity, StorageAlert.acknowledged_at.is_(None), func.count())
                           .group_by(StorageAlert.severity, StorageAlert.acknowledged_at.is_(None))).all()
    open_by = {CRITICAL: 0, WARNING: 0}
    total = 0
    for severity, unacknowledged, n in rows:
        total += n
        if unacknowledged:
            open_by[severity] = open_by.get(severity, 0) + n
    return {"open": sum(open_by.values()), "open_by_severity": open_by, "total": total}


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, str | int | float | bool | list | dict | type(None)) else str(v)
            for k, v in data.items()}
