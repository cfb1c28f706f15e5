"""Schedule versions (分类方案版本) and re-applying a newer schedule to filed items.

Every distinct content of the classification schedule is kept in the catalogue (digest, label, the TOML
text, when and by whom first seen); an item records the version it was filed under
(``ArchiveItem.schedule_version`` holds ``ScheduleVersion.ref``). A schedule change therefore applies to
items filed afterwards. Moving existing items to the schedule in force is an archivist's audited action
that first lists each change (dry run) and then applies it with a reason: shortening is refused for
items under hold and changes the catalogue only (object locks can only be extended); lengthening also
extends the object-store retention of the item's rendition and originals. Items whose period an appraisal
decided (鉴定 keep) or that sit on a destruction list awaiting execution are skipped, with the reason.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from archive import audit, indexing
from archive.audit import Actor
from archive.catalogue.models import AppraisalDecision, ArchiveItem, Case, ScheduleVersion, TriggerEvent
from archive.classification import RetentionCode, Schedule, Trigger, parse_schedule
from archive.context import Context
from archive.errors import Conflict, InvalidInput
from archive.retention import holds
from archive.retention.periods import case_keys, expiry_date, lock_end

MAX_LISTED = 1000  # changes listed in one answer; counts always cover everything
CHUNK = 500


_DIGESTS: dict[int, tuple[Schedule, str]] = {}  # id -> (the schedule, kept alive so its id is not reused; digest)


def digest_of(schedule: Schedule) -> str:
    """SHA-256 of the schedule's canonical content: comments and layout do not make a new version.

    Remembered per schedule object (a loaded schedule is frozen; a reloaded or copied one is another object): every
    filing asks, and dumping the whole schedule to canonical JSON took ~0.3 ms of each (issue 17)."""
    known = _DIGESTS.get(id(schedule))
    if known is not None and known[0] is schedule:
        return known[1]
    content = schedule.model_dump(mode="json", by_alias=True)
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    if len(_DIGESTS) >= 16:  # schedules are few (one per load); tests make many
        _DIGESTS.clear()
    _DIGESTS[id(schedule)] = (schedule, digest)
    return digest


def ensure_version(session: Session, schedule: Schedule, actor: Actor | None = None) -> ScheduleVersion:
    """The catalogue row of this schedule's content, recorded (and audited) the first time it is seen.

    Safe under concurrency: a second writer of the same content loses on the unique digest inside a
    savepoint and reads the winner's row.
    """
    digest = digest_of(schedule)
    row = session.scalar(select(ScheduleVersion).where(ScheduleVersion.digest == digest))
    if row is not None:
        return row
    actor = actor or Actor.system()
    label = schedule.version
    taken = session.scalar(select(ScheduleVersion.id).where(ScheduleVersion.ref == label))
    ref = label if taken is None else f"{label[:31]}+{digest[:8]}"  # same label, other content
    row = ScheduleVersion(ref=ref, label=label, digest=digest, source=schedule.source_name[:255] or "-",
                          text=schedule.source_text, first_seen_by=actor.name)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        winner = session.scalar(select(ScheduleVersion).where(ScheduleVersion.digest == digest))
        if winner is None:
            raise
        return winner
    audit.record(session, actor, "schedule.version.record", target_type="schedule_version", target_id=ref,
                 detail={"label": label, "digest": digest, "source": row.source})
    return row


def record_current(ctx: Context, actor: Actor | None = None) -> ScheduleVersion:
    """Record the schedule in force (at start-up and from the CLI), in its own transaction."""
    with ctx.catalogue.session() as s:
        row = ensure_version(s, ctx.schedule, actor)
        s.flush()
        s.expunge(row)
        return row


def list_versions(session: Session) -> list[ScheduleVersion]:
    return list(session.scalars(select(ScheduleVersion).order_by(ScheduleVersion.first_seen, ScheduleVersion.id)))


_PARSED: dict[str, Schedule] = {}  # digest -> parsed schedule; a version's text never changes


class Schedules:
    """The schedules items were filed under, each parsed once per process."""

    def __init__(self, session: Session, current: Schedule) -> None:
        self._session, self._current = session, current
        self._cache: dict[str, Schedule] = {}

    def of(self, ref: str) -> Schedule:
        """The schedule of ``ref``; items filed before versions were recorded fall back to the current one."""
        if ref not in self._cache:
            row = self._session.execute(select(ScheduleVersion.digest, ScheduleVersion.text)
                                        .where(ScheduleVersion.ref == ref)).first()
            if row is None or not row.text:
                self._cache[ref] = self._current
            else:
                if row.digest not in _PARSED:
                    _PARSED[row.digest] = parse_schedule(f"schedule_version:{ref}", row.text)
                self._cache[ref] = _PARSED[row.digest]
        return self._cache[ref]


# --- re-applying the schedule in force --------------------------------------------------------------

@dataclass
class Change:
    """What re-applying the schedule does to one item."""

    item_id: int
    archival_code: str
    serial: str
    business_type: str
    old_code: str
    new_code: str
    old_trigger: str
    new_trigger: str
    old_trigger_date: date | None
    new_trigger_date: date | None
    old_expiry: date | None
    new_expiry: date | None
    kind: str  # lengthen, shorten, changed, unchanged
    refused: str | None = None  # a key of REFUSED
    store_note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {f: (v.isoformat() if isinstance(v := getattr(self, f), date) else v) for f in _CHANGE_FIELDS}


_CHANGE_FIELDS = tuple(Change.__dataclass_fields__)

# Why an item is skipped: appraisal and a destruction list decide its period, not the schedule.
REFUSED = {"held": "冻结中，不能缩短", "type_not_in_schedule": "现行方案无此业务类型",
           "appraised": "已经鉴定确定保管期限", "on_destruction_list": "已列入待执行的销毁清册，不能调整保管期限"}


@dataclass
class Plan:
    version_ref: str
    changes: list[Change] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    digest: str = ""

    def summary(self, limit: int = MAX_LISTED) -> dict[str, Any]:
        listed = [c for c in self.changes if c.kind != "unchanged" or c.refused]
        return {"version": self.version_ref, "plan_digest": self.digest, "counts": self.counts,
                "items": [c.as_dict() | {"refused_message": REFUSED.get(c.refused or "")} for c in listed[:limit]],
                "listed": min(len(listed), limit),
                "total_listed": len(listed)}


def plan(ctx: Context, session: Session, business_types: list[str] | None = None) -> Plan:
    """The dry run: per item filed under another schedule version, old code/expiry → new code/expiry."""
    current = ensure_version(session, ctx.schedule)
    result = Plan(version_ref=current.ref)
    events = _EventDates(session)
    for row in _items_to_reapply(session, current.ref, business_types):
        result.changes.append(_change(ctx, row, events))
    shortening = [c.item_id for c in result.changes if c.kind == "shorten" and not c.refused]
    held = holds.held_item_ids(session, shortening) if shortening else set()
    settled = _settled_by_appraisal(session, [c.item_id for c in result.changes if not c.refused])
    for c in result.changes:
        if c.item_id in settled:
            c.refused = settled[c.item_id]
        elif c.item_id in held:
            c.refused = "held"
        if c.kind == "shorten" and not c.refused:
            c.store_note = "对象存储的保留期（合规锁定）不能缩短，仅修改目录中的保管期限与到期日"
    counts: dict[str, int] = {"items": len(result.changes)}
    for c in result.changes:
        key = f"refused_{c.refused}" if c.refused else c.kind
        counts[key] = counts.get(key, 0) + 1
    result.counts = counts
    canonical = json.dumps([c.as_dict() for c in result.changes], sort_keys=True, separators=(",", ":"))
    result.digest = hashlib.sha256(f"{current.ref}\n{canonical}".encode()).hexdigest()
    return result


def apply(ctx: Context, session: Session, actor: Actor, reason: str, business_types: list[str] | None = None,
          expected_digest: str | None = None) -> Plan:
    """Apply the plan inside the caller's transaction; refused items are left as they are."""
    reason = reason.strip()
    if len(reason) < 2:
        raise InvalidInput("请说明重新适用分类方案的理由", code="missing_reason", detail={"field": "reason"})
    result = plan(ctx, session, business_types)
    if expected_digest and expected_digest != result.digest:
        raise Conflict("预览之后档案或分类方案已有变化，请重新预览后再执行", code="plan_changed",
                       detail={"expected": expected_digest, "actual": result.digest})
    wanted = [c.item_id for c in result.changes if not c.refused]
    items: dict[int, ArchiveItem] = {}
    for start in range(0, len(wanted), CHUNK):  # bounded IN lists (SQLite's variable limit)
        q = select(ArchiveItem).options(joinedload(ArchiveItem.case)).where(
            ArchiveItem.id.in_(wanted[start:start + CHUNK]))
        items.update((i.id, i) for i in session.scalars(q))
    objects = holds.item_objects(session, [c.item_id for c in result.changes if c.kind == "lengthen" and not c.refused])
    for c in result.changes:
        if c.refused:
            continue
        item = items[c.item_id]
        item.current_retention = None if c.new_code == item.retention_code else c.new_code
        item.trigger, item.trigger_date, item.expiry_date = c.new_trigger, c.new_trigger_date, c.new_expiry
        item.schedule_version = result.version_ref
        if c.kind == "lengthen":  # before the commit: a failed commit only leaves longer locks behind
            c.store_note = extend_objects(ctx, sorted(objects[item.id]), lock_until(item, ctx.zone))
        if c.kind != "unchanged":
            audit.record(session, actor, "item.retention.reapply", target_type="item", target_id=item.archival_code,
                         detail={"version": result.version_ref, "kind": c.kind, "reason": reason,
                                 "old": {"code": c.old_code, "trigger": c.old_trigger,
                                         "expiry": _iso(c.old_expiry)},
                                 "new": {"code": c.new_code, "trigger": c.new_trigger,
                                         "expiry": _iso(c.new_expiry)}})
            indexing.enqueue(session, item.case.serial)
    audit.record(session, actor, "schedule.reapply", target_type="schedule_version", target_id=result.version_ref,
                 detail={"reason": reason, "counts": result.counts, "plan_digest": result.digest,
                         "business_types": business_types or []})
    session.flush()
    return result


def _settled_by_appraisal(session: Session, item_ids: list[int]) -> dict[int, str]:
    """Items whose period an appraisal set (applied keep) or that sit on a destruction list not yet executed."""
    out: dict[int, str] = {}
    for start in range(0, len(item_ids), CHUNK):
        for item_id, decision in session.execute(
                select(AppraisalDecision.item_id, AppraisalDecision.decision)
                .where(AppraisalDecision.item_id.in_(item_ids[start:start + CHUNK]),
                       or_((AppraisalDecision.decision == "keep") & (AppraisalDecision.status == "applied"),
                           (AppraisalDecision.decision == "destroy") & (AppraisalDecision.status == "listed")))):
            if decision == "destroy" or item_id not in out:
                out[item_id] = "on_destruction_list" if decision == "destroy" else "appraised"
    return out


def _items_to_reapply(session: Session, ref: str, business_types: list[str] | None) -> Iterator[Any]:
    """Rows with just what a change needs (ORM objects cost ten times more over a whole catalogue)."""
    q = (select(ArchiveItem.id, ArchiveItem.archival_code, ArchiveItem.retention_code, ArchiveItem.current_retention,
                ArchiveItem.trigger, ArchiveItem.trigger_date, ArchiveItem.expiry_date, Case.serial,
                Case.business_type, Case.closed_at, Case.loan_contract_no, Case.unit_uscc, Case.personal_account,
                Case.applicant_id_number)
         .join(Case, Case.id == ArchiveItem.case_id)
         .where(ArchiveItem.schedule_version != ref, ArchiveItem.status != "destroyed")
         .order_by(ArchiveItem.id))
    if business_types:
        q = q.where(Case.business_type.in_(business_types))
    yield from session.execute(q).yield_per(CHUNK)


def _change(ctx: Context, row: Any, events: _EventDates) -> Change:
    old_code = row.current_retention or row.retention_code
    base = dict(item_id=row.id, archival_code=row.archival_code, serial=row.serial,
                business_type=row.business_type, old_code=old_code, old_trigger=row.trigger,
                old_trigger_date=row.trigger_date, old_expiry=row.expiry_date)
    bt = ctx.schedule.types.get(row.business_type)
    if bt is None:
        return Change(**base, new_code=old_code, new_trigger=row.trigger, new_trigger_date=row.trigger_date,
                      new_expiry=row.expiry_date, kind="unchanged", refused="type_not_in_schedule")
    new_trigger = bt.trigger.value
    same = new_trigger == row.trigger  # keep a started clock; a new trigger may have happened already
    trigger_date = row.trigger_date if same else _trigger_date(ctx, row, bt.trigger, events)
    new_expiry = expiry_date(bt.retention, trigger_date, ctx.schedule.triggers[bt.trigger].counting)
    kind = _kind(old_code, row.expiry_date, bt.retention.value, new_expiry)
    if kind == "unchanged" and (new_trigger, trigger_date) != (row.trigger, row.trigger_date):
        kind = "changed"
    return Change(**base, new_code=bt.retention.value, new_trigger=new_trigger, new_trigger_date=trigger_date,
                  new_expiry=new_expiry, kind=kind)


def _kind(old_code: str, old_expiry: date | None, new_code: str, new_expiry: date | None) -> str:
    """Shortening wins over lengthening: a shorter period or an earlier end needs the hold check."""
    old_years, new_years = RetentionCode(old_code).years, RetentionCode(new_code).years
    inf = date.max  # 永久, or still waiting for the trigger: no end yet
    old_end = old_expiry or inf
    new_end = new_expiry or inf
    if (new_years is not None and (old_years is None or new_years < old_years)) or new_end < old_end:
        return "shorten"
    if (old_years is not None and (new_years is None or new_years > old_years)) or new_end > old_end:
        return "lengthen"
    return "unchanged"


def _trigger_date(ctx: Context, case: Any, trigger: Trigger, events: _EventDates) -> date | None:
    """The new trigger's date: from the case for 业务办结/会计年度终了, from recorded events otherwise."""
    if trigger is Trigger.BUSINESS_CLOSED or trigger is Trigger.FISCAL_YEAR_END:
        if case.closed_at is None:
            return None
        closed = case.closed_at.astimezone(ctx.zone).date()
        return closed if trigger is Trigger.BUSINESS_CLOSED else date(closed.year, 12, 31)
    return events.first(case, trigger)


class _EventDates:
    """Earliest applied business event for a case's keys (a re-applied trigger may already have happened)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def first(self, case: Any, trigger: Trigger) -> date | None:
        keys = case_keys(case, trigger)
        if not keys:
            return None
        conds = [(TriggerEvent.event_type == et) & (TriggerEvent.key_kind == kind) & (TriggerEvent.key_value == v)
                 for et, kind, v in keys]
        q = select(TriggerEvent.event_date).where(TriggerEvent.status < 300, or_(*conds)) \
            .order_by(TriggerEvent.event_date).limit(1)
        return self._session.scalar(q)


def lock_until(item: ArchiveItem, zone: Any) -> datetime:
    """The object-lock end for the item as it now stands (the rule of filing: periods.lock_end)."""
    closed = item.case.closed_at.astimezone(zone).date() if item.case.closed_at else item.filed_at.date()
    return lock_end(item.expiry_date, RetentionCode(item.effective_retention).years, closed)


def extend_objects(ctx: Context, keys: list[str], until: datetime) -> str:
    until = ctx.store.capped(until)  # a store that keeps no later lock (Ceph RGW: 2106); extend-locks renews it
    extended = 0
    for key in keys:
        current = ctx.store.stat(key).retain_until
        if until > datetime.now(UTC) and (current is None or current < until):
            ctx.store.set_retention(key, until)
            extended += 1
    return f"已将 {extended} 个对象的保留期延长至 {until:%Y-%m-%d}" if extended else \
        f"对象保留期已不早于 {until:%Y-%m-%d}，无需延长"


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None
