"""Trigger events (保管期限起算事件): 贷款结清, 账户销户, 单位注销 reported by business systems.

An event starts the clock on the items waiting for it: filed items whose trigger (from the schedule
version they were filed under) matches, whose trigger date is still empty and whose case carries the
event's key. Each gets its trigger date and expiry (counted by that schedule's rule), a longer object
lock, an outbox row for the index, and the event one audit entry. Items whose trigger has not happened
are *pending*: they have no expiry and never show as expiring.

Every accepted request is kept as a ``TriggerEvent`` row, refused ones (an unknown loan, account or unit)
too, so the reporter's event id is idempotent: the same id and body give the first answer again, the
same id with another body is a conflict.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from archive import audit, indexing
from archive.audit import Actor
from archive.catalogue.models import ArchiveItem, Case, TriggerEvent
from archive.catalogue.types import utcnow
from archive.classification import Trigger
from archive.context import Context
from archive.errors import Conflict, InvalidInput
from archive.identifiers import mask_id_number, validate_id_number, validate_uscc
from archive.retention.holds import item_objects
from archive.retention.periods import expiry_date
from archive.retention.schedules import Schedules, extend_objects, lock_until

EVENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}")
ENDED = ("destroyed",)  # item statuses a trigger no longer concerns
EARLIEST = date(1991, 1, 1)  # 住房公积金 began in 1991: an earlier date is a typing error


@dataclass(frozen=True)
class EventSpec:
    name: str  # 贷款结清 …
    trigger: Trigger
    keys: tuple[str, ...]  # accepted business keys, any one of them
    unknown_code: str
    unknown_what: str


EVENTS: dict[str, EventSpec] = {
    "loan_settled": EventSpec("贷款结清", Trigger.LOAN_SETTLED, ("loan_contract_no",), "unknown_loan", "贷款"),
    "account_closed": EventSpec("账户销户", Trigger.ACCOUNT_CLOSED, ("personal_account", "id_number"),
                                "unknown_account", "个人账户"),
    "unit_deregistered": EventSpec("单位注销", Trigger.ACCOUNT_CLOSED, ("uscc",), "unknown_unit", "单位"),
}
ALIASES = {spec.name: code for code, spec in EVENTS.items()}
KEY_NAMES = {"loan_contract_no": "借款合同号", "personal_account": "个人账号", "id_number": "证件号码",
             "uscc": "统一社会信用代码"}
KEY_COLUMNS = {"loan_contract_no": Case.loan_contract_no, "personal_account": Case.personal_account,
               "id_number": Case.applicant_id_number, "uscc": Case.unit_uscc}


class EventIn(BaseModel):
    """A business event, with exactly the key its type needs."""

    model_config = ConfigDict(extra="forbid")
    event_id: str = Field(min_length=1, max_length=64, description="业务系统自己的事件编号（幂等键）",
                          examples=["CORE-EVT-20260301-0001"])
    event_type: str = Field(min_length=1, max_length=32, description="loan_settled 贷款结清、account_closed 账户销户、"
                            "unit_deregistered 单位注销（也可用中文名称）", examples=["loan_settled"])
    event_date: date = Field(description="事件发生日期（结清日、销户日、注销日），不能晚于今天",
                             examples=["2026-03-01"])
    loan_contract_no: str | None = Field(None, max_length=64, description="借款合同号（贷款结清）")
    personal_account: str | None = Field(None, max_length=32, description="个人账号（账户销户）")
    id_number: str | None = Field(None, max_length=32, description="证件号码（账户销户，可代替个人账号）")
    uscc: str | None = Field(None, max_length=32, description="统一社会信用代码（单位注销）")


@dataclass(frozen=True)
class Normalised:
    event_id: str
    event_type: str
    event_date: date
    key_kind: str
    key_value: str

    @property
    def spec(self) -> EventSpec:
        return EVENTS[self.event_type]

    def digest(self) -> str:
        body = [self.event_type, self.event_date.isoformat(), self.key_kind, self.key_value]
        return hashlib.sha256(json.dumps(body, ensure_ascii=False).encode()).hexdigest()

    def shown_key(self) -> str:
        """Keys as they may appear in answers and logs: 证件号码 masked (个人信息保护)."""
        return (mask_id_number(self.key_value) or "") if self.key_kind == "id_number" else self.key_value


def normalise(ctx: Context, data: EventIn) -> Normalised:
    """Check the event; each problem is a 422 naming the field, before anything is written."""
    event_id = data.event_id.strip()
    if not EVENT_ID.fullmatch(event_id):
        raise InvalidInput("事件编号应为 1-64 位字母、数字或 _ . : / -，且以字母或数字开头",
                           code="invalid_event_id", detail={"field": "event_id"})
    etype = ALIASES.get(data.event_type.strip(), data.event_type.strip())
    spec = EVENTS.get(etype)
    if spec is None:
        known = "、".join(f"{code}（{s.name}）" for code, s in EVENTS.items())
        raise InvalidInput(f"未知的事件类型 {data.event_type!r}，可用的事件类型：{known}",
                           code="unknown_event_type", detail={"field": "event_type", "value": data.event_type})
    given = {k: v.strip() for k in KEY_COLUMNS if (v := getattr(data, k)) is not None and v.strip()}
    foreign = [k for k in given if k not in spec.keys]
    if foreign:
        raise InvalidInput(f"{spec.name}事件不使用{'、'.join(KEY_NAMES[k] for k in foreign)}，"
                           f"请只填写{'或'.join(KEY_NAMES[k] for k in spec.keys)}",
                           code="unexpected_event_key", detail={"field": foreign[0]})
    ours = [k for k in spec.keys if k in given]
    if not ours:
        names = "或".join(f"{KEY_NAMES[k]}（{k}）" for k in spec.keys)
        raise InvalidInput(f"{spec.name}事件须填写{names}", code="missing_event_key",
                           detail={"field": spec.keys[0]})
    if len(ours) > 1:
        raise InvalidInput(f"{spec.name}事件请只填写{'或'.join(KEY_NAMES[k] for k in spec.keys)}其中一项",
                           code="ambiguous_event_key", detail={"field": ours[1]})
    kind, value = ours[0], given[ours[0]]
    if kind == "id_number":
        value = validate_id_number(value, "id_number")
    elif kind == "uscc":
        value = validate_uscc(value, "uscc")
    today = ctx.today()
    if data.event_date > today:
        raise InvalidInput(f"事件日期 {data.event_date.isoformat()} 晚于今天（{today.isoformat()}），"
                           "请报送已经发生的事件", code="event_date_in_future", detail={"field": "event_date"})
    if data.event_date < EARLIEST:
        raise InvalidInput(f"事件日期 {data.event_date.isoformat()} 早于住房公积金制度建立（1991年），请核对日期",
                           code="event_date_too_early", detail={"field": "event_date"})
    return Normalised(event_id, etype, data.event_date, kind, value)


def report(ctx: Context, session: Session, actor: Actor, data: EventIn,
           branches: frozenset[str] | None = None) -> tuple[int, dict[str, Any]]:
    """Record the event and start the clocks it starts; (HTTP status, body) — also for a refused event.

    A refused event (unknown key) is an answer, not an exception, so that its record and audit entry
    commit with the transaction.
    """
    ev = normalise(ctx, data)
    digest = ev.digest()
    first = _existing(session, actor, ev.event_id)
    if first is not None:
        return _replay(first, digest)
    row = TriggerEvent(reporter=actor.name, reporter_type=actor.kind, external_id=ev.event_id,
                       event_type=ev.event_type, key_kind=ev.key_kind, key_value=ev.key_value,
                       event_date=ev.event_date, body_digest=digest, outcome="pending", status=0, result={})
    try:
        with session.begin_nested():  # claims the event id; a concurrent twin waits, then replays
            session.add(row)
            session.flush()
    except IntegrityError:
        twin = _existing(session, actor, ev.event_id)
        if twin is None:
            raise
        return _replay(twin, digest)

    if not _known(session, ev, branches):
        spec = ev.spec
        body: dict[str, Any] = {"code": spec.unknown_code,
                "message": f"{KEY_NAMES[ev.key_kind]} {ev.shown_key()} 在档案系统中没有对应的{spec.unknown_what}业务，"
                           f"{spec.name}事件已登记但未生效；请核对{KEY_NAMES[ev.key_kind]}",
                "detail": {"event_id": ev.event_id, "record_id": row.id, "event_type": ev.event_type,
                           "key_kind": ev.key_kind, "key": ev.shown_key()}}
        _finish(session, actor, row, ev, "unknown_key", 404, body, [])
        return 404, body

    started, already = _start_clocks(ctx, session, ev, branches)
    outcome = "applied" if started else "nothing_waiting"
    body = {"id": row.id, "event_id": ev.event_id, "event_type": ev.event_type, "event_name": ev.spec.name,
            "event_date": ev.event_date.isoformat(), "key_kind": ev.key_kind, "key": ev.shown_key(),
            "outcome": outcome, "started": started, "already_started": already,
            "received_at": row.received_at.isoformat() if row.received_at else utcnow().isoformat()}
    _finish(session, actor, row, ev, outcome, 201, body, [s["archival_code"] for s in started])
    return 201, body


def _existing(session: Session, actor: Actor, event_id: str) -> TriggerEvent | None:
    return session.scalar(select(TriggerEvent).where(TriggerEvent.reporter == actor.name,
                                                     TriggerEvent.external_id == event_id))


def _replay(first: TriggerEvent, digest: str) -> tuple[int, dict[str, Any]]:
    if first.body_digest != digest:
        raise Conflict(f"事件编号 {first.external_id} 已于 {first.received_at:%Y-%m-%d %H:%M} 报送过，"
                       "且内容与本次不同；同一事件请原样重报，新的事件请使用新的事件编号", code="event_id_conflict",
                       detail={"event_id": first.external_id, "record_id": first.id})
    return (200 if first.status < 300 else first.status), first.result  # the first answer, as a replay


def _finish(session: Session, actor: Actor, row: TriggerEvent, ev: Normalised, outcome: str, status: int,
            body: dict[str, Any], codes: list[str]) -> None:
    row.outcome, row.status, row.result = outcome, status, body
    audit.record(session, actor, "retention.event", target_type="trigger_event", target_id=row.id,
                 outcome="refused" if status >= 400 else "success",
                 detail={"event_id": ev.event_id, "event_type": ev.event_type, "event_date": ev.event_date.isoformat(),
                         "key_kind": ev.key_kind, "key": ev.shown_key(), "result": outcome, "items": codes})


def _key_condition(ev: Normalised) -> ColumnElement[bool]:
    cond = KEY_COLUMNS[ev.key_kind] == ev.key_value
    if ev.event_type == "account_closed":  # a unit's files (with a USCC) wait for 单位注销, not a person's 销户
        cond = and_(cond, Case.unit_uscc.is_(None))
    return cond


def _known(session: Session, ev: Normalised, branches: frozenset[str] | None) -> bool:
    q = select(Case.id).where(KEY_COLUMNS[ev.key_kind] == ev.key_value).limit(1)
    if branches is not None:
        q = q.where(Case.branch.in_(branches))
    return session.scalar(q) is not None


def _start_clocks(ctx: Context, session: Session, ev: Normalised,
                  branches: frozenset[str] | None) -> tuple[list[dict[str, Any]], int]:
    base = [_key_condition(ev), ArchiveItem.trigger == ev.spec.trigger.value, ArchiveItem.status.not_in(ENDED)]
    if branches is not None:
        base.append(Case.branch.in_(branches))
    already = session.scalar(select(func.count()).select_from(ArchiveItem).join(Case, Case.id == ArchiveItem.case_id)
                             .where(*base, ArchiveItem.trigger_date.is_not(None))) or 0
    q = (select(ArchiveItem).join(Case, Case.id == ArchiveItem.case_id)
         .where(*base, ArchiveItem.trigger_date.is_(None))
         .options(joinedload(ArchiveItem.case).selectinload(Case.documents))
         .order_by(ArchiveItem.id).with_for_update(of=ArchiveItem))
    schedules = Schedules(session, ctx.schedule)
    started: list[dict[str, Any]] = []
    items = list(session.scalars(q).unique())
    objects = item_objects(session, [item.id for item in items])
    for item in items:
        schedule = schedules.of(item.schedule_version)
        counting = schedule.triggers[ev.spec.trigger].counting
        item.trigger_date = ev.event_date
        item.expiry_date = expiry_date(item.effective_retention, ev.event_date, counting)
        note = extend_objects(ctx, sorted(objects[item.id]), lock_until(item, ctx.zone))
        indexing.enqueue(session, item.case.serial)
        started.append({"archival_code": item.archival_code, "serial": item.case.serial,
                        "retention_code": item.effective_retention, "trigger_date": ev.event_date.isoformat(),
                        "expiry_date": item.expiry_date.isoformat() if item.expiry_date else None,
                        "store": note})
    return started, already


# --- pending items ------------------------------------------------------------------------------------

def pending(ctx: Context, session: Session, trigger: str | None = None, limit: int = 50, offset: int = 0,
            branches: frozenset[str] | None = None, pii: bool = False) -> dict[str, Any]:
    """Items still waiting for their trigger (待起算): counts by trigger and one page of them."""
    base: list[ColumnElement[bool]] = [ArchiveItem.trigger_date.is_(None), ArchiveItem.status.not_in(ENDED)]
    if branches is not None:
        base.append(Case.branch.in_(branches))
    counts: dict[str, int] = dict(session.execute(
        select(ArchiveItem.trigger, func.count()).join(Case, Case.id == ArchiveItem.case_id).where(*base)
        .group_by(ArchiveItem.trigger)).all())
    if trigger:
        if trigger not in {t.value for t in Trigger}:
            raise InvalidInput(f"未知的起算事件 {trigger!r}，可用：{'、'.join(t.value for t in Trigger)}",
                               code="unknown_trigger", detail={"field": "trigger"})
        base.append(ArchiveItem.trigger == trigger)
    rows = session.execute(select(ArchiveItem, Case).join(Case, Case.id == ArchiveItem.case_id).where(*base)
                           .order_by(ArchiveItem.filed_at, ArchiveItem.id).limit(limit).offset(offset)).all()
    names = {t.value: r.name for t, r in ctx.schedule.triggers.items()}
    items = [{"archival_code": i.archival_code, "serial": c.serial, "business_type": c.business_type,
              "retention_code": i.effective_retention, "trigger": i.trigger, "trigger_name": names.get(i.trigger),
              "waiting_for": _waiting_key(i.trigger, c, pii), "filed_at": i.filed_at.isoformat()}
             for i, c in rows]
    return {"total": sum(counts.values()), "by_trigger": counts, "items": items, "limit": limit, "offset": offset,
            "filtered_total": counts.get(trigger, 0) if trigger else sum(counts.values())}


def _waiting_key(trigger: str, case: Case, pii: bool) -> dict[str, str | None]:
    """The key the item waits on, so the business system can be asked for the right event."""
    if trigger == Trigger.LOAN_SETTLED:
        return {"loan_contract_no": case.loan_contract_no}
    if trigger == Trigger.ACCOUNT_CLOSED:
        if case.unit_uscc:
            return {"uscc": case.unit_uscc}
        shown = case.applicant_id_number if pii else mask_id_number(case.applicant_id_number)
        return {"personal_account": case.personal_account, "id_number": shown}
    return {}
