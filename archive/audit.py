"""Audit log (审计日志): append-only and hash-chained.

Each event carries the SHA-256 of its predecessor, so editing, removing or reordering any stored
event breaks the chain at that event. Events are written in the same transaction as the change they
record; the chain head's row lock serialises appends across concurrent transactions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.orm import Session

from archive.audit_actions import check as declared
from archive.catalogue.models import AuditChainHead, AuditEvent
from archive.catalogue.types import utcnow

GENESIS = "0" * 64


class _Named(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def name(self) -> str: ...


@dataclass(frozen=True)
class Actor:
    """Who did it: a person, a business system, or the system itself (CLI, worker)."""

    kind: str  # user | client | system
    name: str

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        return cls("system", name)

    @classmethod
    def of(cls, principal: _Named) -> Actor:
        """The actor of an authenticated principal (archive.permissions.Principal: a user or a client)."""
        return cls(principal.kind, principal.name)


def record(session: Session, actor: Actor, action: str, *, target_type: str | None = None,
           target_id: str | int | None = None, outcome: str = "success",
           detail: dict[str, Any] | None = None) -> AuditEvent:
    """Append one event to the chain inside the caller's transaction."""
    declared(action)  # every action is declared once, with its meaning (archive/audit_actions.py)
    # populate_existing: a head this session loaded earlier may be stale (record_many moves it by a plain UPDATE)
    head = session.execute(select(AuditChainHead).where(AuditChainHead.id == 1).with_for_update()
                           .execution_options(populate_existing=True)).scalar_one()
    event = AuditEvent(
        seq=head.seq + 1, at=utcnow(), actor=actor.name, actor_type=actor.kind, action=action,
        target_type=target_type, target_id=None if target_id is None else str(target_id),
        outcome=outcome, detail=detail or {}, prev_hash=head.hash,
    )
    event.hash = event_hash(event)
    session.add(event)
    head.seq, head.hash = event.seq, event.hash
    session.flush()
    return event


Entry = tuple[Actor, str, str | None, str | None, dict[str, Any]]  # actor, action, target type and id, detail


class Event(NamedTuple):
    """An :data:`Entry` with its outcome (``success`` unless told)."""

    actor: Actor
    action: str
    target_type: str | None
    target_id: str | None
    detail: dict[str, Any]
    outcome: str = "success"


def record_many(session: Session | Connection, entries: Sequence[Entry] | Sequence[Event]) -> int:
    """Append several events (successful unless an :class:`Event` says otherwise), in the order given, inside the
    caller's transaction (a session or a connection): the chain head is locked, read and written once and the
    events go in as one bulk insert (the access register's group commit, archive.access.AccessWriter; a filing's
    report and item events). Returns the last event's sequence number."""
    head = AuditChainHead.__table__
    seq, prev = session.execute(select(head.c.seq, head.c.hash).where(head.c.id == 1).with_for_update()).one()
    at, rows = utcnow(), []
    for entry in entries:
        actor, action, target_type, target_id, detail, outcome = Event(*entry)
        declared(action)
        seq += 1
        row = {"seq": seq, "at": at, "actor": actor.name, "actor_type": actor.kind, "action": action,
               "target_type": target_type, "target_id": target_id, "outcome": outcome, "detail": detail,
               "prev_hash": prev}
        row["hash"] = prev = _digest(row)
        rows.append(row)
    if rows:
        session.execute(insert(AuditEvent), rows)
        session.execute(update(AuditChainHead).where(AuditChainHead.id == 1).values(seq=seq, hash=prev))
    return int(seq)


def event_hash(e: AuditEvent) -> str:
    return _digest({"seq": e.seq, "at": e.at, "actor": e.actor, "actor_type": e.actor_type, "action": e.action,
                    "target_type": e.target_type, "target_id": e.target_id, "outcome": e.outcome, "detail": e.detail,
                    "prev_hash": e.prev_hash})


def _digest(event: dict[str, Any]) -> str:
    """SHA-256 of an event's canonical JSON (its hash left out)."""
    body = {k: _instant(v) if k == "at" else v for k, v in event.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _instant(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    broken_at: int | None = None
    reason: str | None = None


def verify(session: Session, batch: int = 5000,
           progress: Callable[[int, int | None], None] | None = None) -> ChainReport:
    """Walk the whole chain in order and name the first broken link; ``progress(checked, total)`` after each batch
    (a background job shows it)."""
    expected_prev, expected_seq, checked = GENESIS, 1, 0
    total = session.scalar(select(AuditChainHead.seq).where(AuditChainHead.id == 1)) if progress else None
    for e in _events(session, batch):
        if progress is not None and checked % batch == 0:
            progress(checked, total)
        if e.seq != expected_seq:
            return ChainReport(False, checked, expected_seq, f"事件 {expected_seq} 缺失（链在此处断开）")
        if e.prev_hash != expected_prev:
            return ChainReport(False, checked, e.seq, f"事件 {e.seq} 的前序摘要与事件 {e.seq - 1} 不符")
        if event_hash(e) != e.hash:
            return ChainReport(False, checked, e.seq, f"事件 {e.seq} 的内容与其摘要不符（记录被修改）")
        expected_prev, expected_seq, checked = e.hash, e.seq + 1, checked + 1
    head = session.get(AuditChainHead, 1)
    if head is None or head.seq != checked or head.hash != expected_prev:
        return ChainReport(False, checked, checked + 1, "链尾与链头记录不符（末尾事件被删除或链头被修改）")
    return ChainReport(True, checked)


def _events(session: Session, batch: int) -> Iterator[AuditEvent]:
    last = 0
    while True:
        rows = session.execute(
            select(AuditEvent).where(AuditEvent.seq > last).order_by(AuditEvent.seq).limit(batch)
        ).scalars().all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq
        session.expunge_all()


def seq_at(session: Session, when: datetime) -> int:
    """The sequence number of the first event at or after ``when`` (one past the last if none): the log is appended
    in time order under the chain head's lock, so a time filter becomes a range of the primary key, found by
    bisection in a few dozen primary-key reads even over millions of events (``at`` has no index)."""
    head = session.scalar(select(AuditChainHead.seq).where(AuditChainHead.id == 1)) or 0
    lo, hi = 1, head + 1
    while lo < hi:
        mid = (lo + hi) // 2
        at = session.scalar(select(AuditEvent.at).where(AuditEvent.seq == mid))
        if at is None or at >= when:
            hi = mid
        else:
            lo = mid + 1
    return lo
