"""问题数据: findings deduplicated by fingerprint across runs, and their lifecycle.

open → assigned (to a department, branch or 受委托银行) → fixing → submitted → verified; a submitted finding whose
re-check fails goes back to assigned. A waiver is proposed by one person and granted by another (waived).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from itertools import islice
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from archive import audit
from archive.audit import Actor
from archive.catalogue.models import DqFinding
from archive.catalogue.types import utcnow
from archive.dq.registry import Failure, Rule
from archive.errors import Conflict, InvalidInput, NotFound
from archive.identifiers import mask_id_number, mask_mobile

STATUSES = {"open": "待分派", "assigned": "已分派", "fixing": "整改中", "submitted": "已提交待复核",
            "verified": "已复核关闭", "waiver_proposed": "申请豁免", "waived": "已豁免"}
OWNER_KINDS = {"department": "部门", "branch": "网点", "bank": "受委托银行"}
LIVE = ("open", "assigned", "fixing", "submitted", "waiver_proposed")
MAX_LIMIT = 1000


def observe(session: Session, rule: Rule, failure: Failure, run_id: int | None, now: datetime,
            found: DqFinding | bool | None = False) -> bool:
    """Record that ``failure`` was seen: a new finding, or the known one's last_seen moves (a verified one that
    fails again is opened again). True when a new finding was made. ``found``: the finding already looked up
    (None: known not to exist), else it is looked up here."""
    fp = failure.fingerprint(rule.code)
    if found is False:
        found = session.scalar(select(DqFinding).where(DqFinding.fingerprint == fp))
    assert not isinstance(found, bool)
    if found is None:
        session.add(DqFinding(fingerprint=fp, rule_code=rule.code, rule_version=rule.version,
                              dimension=rule.dimension, severity=rule.severity, object_type=failure.object_type,
                              object_key=failure.object_key[:128], serial=failure.serial,
                              key_values=failure.key_values, message=failure.message, branch=failure.branch,
                              first_seen=now, last_seen=now, last_run_id=run_id, history=[]))
        return True
    found.last_seen, found.seen_count, found.last_run_id = now, found.seen_count + 1, run_id
    found.message, found.rule_version = failure.message, rule.version
    if found.status == "verified":
        _move(found, "open", "system", now, "再次检核仍不通过，重新打开")
        found.resolved_at = found.resolved_by = None
    return False


def observe_many(session: Session, rule: Rule, failures: Iterable[Failure], run_id: int | None,
                 now: datetime, chunk: int = 1000) -> tuple[int, int]:
    """``observe`` for a batch run: known fingerprints looked up a chunk at a time; (failing, new)."""
    failing = new = 0
    seen: set[str] = set()  # a rule may give the same failure twice (one finding)
    it = iter(failures)
    while part := list(islice(it, chunk)):
        by_fp = {fp: f for f in part if (fp := f.fingerprint(rule.code)) not in seen}
        seen |= by_fp.keys()
        failing += len(part)
        known = {k.fingerprint: k for k in session.scalars(select(DqFinding).where(
            DqFinding.fingerprint.in_(list(by_fp))))}
        for fp, failure in by_fp.items():
            if fp in known:
                observe(session, rule, failure, run_id, now, known[fp])
            else:
                new += observe(session, rule, failure, run_id, now, None)
        session.flush()
    return failing, new


def _move(f: DqFinding, to: str, by: str, now: datetime, note: str | None = None) -> None:
    f.history = [*f.history, {"at": now.isoformat(), "by": by, "from": f.status, "to": to, "note": note}]
    f.status = to


def get(session: Session, finding_id: int) -> DqFinding:
    f = session.get(DqFinding, finding_id)
    if f is None:
        raise NotFound(f"问题数据 {finding_id} 不存在", code="dq_finding_not_found", detail={"id": finding_id})
    return f


def expect(f: DqFinding, *statuses: str) -> None:
    if f.status not in statuses:
        allowed = "、".join(STATUSES[s] for s in statuses)
        raise Conflict(f"问题数据 {f.id} 当前为“{STATUSES[f.status]}”，只有“{allowed}”的才能办理此操作",
                       code="dq_finding_wrong_status", detail={"id": f.id, "status": f.status})


def _audit(session: Session, actor: Actor, action: str, f: DqFinding, **detail: Any) -> None:
    audit.record(session, actor, action, target_type="dq_finding", target_id=f.id,
                 detail={"rule": f.rule_code, "object": f.object_key, "status": f.status, **detail})


def assign(session: Session, actor: Actor, finding_id: int, owner: str, owner_kind: str, due: date | None,
           default_days: int) -> DqFinding:
    f = get(session, finding_id)
    expect(f, "open", "assigned", "fixing")
    owner = owner.strip()
    if not owner:
        raise InvalidInput("请填写责任部门、网点或受委托银行", code="dq_owner_required", detail={"field": "owner"})
    if owner_kind not in OWNER_KINDS:
        raise InvalidInput(f"责任方类型只能是：{'、'.join(f'{k}（{v}）' for k, v in OWNER_KINDS.items())}",
                           code="dq_owner_kind_invalid", detail={"field": "owner_kind"})
    now = utcnow()
    f.owner, f.owner_kind = owner[:100], owner_kind
    f.due_date = due or (now + timedelta(days=default_days)).date()
    _move(f, "assigned", actor.name, now, f"分派给{OWNER_KINDS[owner_kind]}{owner}，{f.due_date} 前整改")
    _audit(session, actor, "dq.finding.assign", f, owner=owner, owner_kind=owner_kind, due=f.due_date.isoformat())
    return f


def start_fixing(session: Session, actor: Actor, finding_id: int) -> DqFinding:
    f = get(session, finding_id)
    expect(f, "assigned")
    _move(f, "fixing", actor.name, utcnow())
    _audit(session, actor, "dq.finding.fix", f)
    return f


def submit(session: Session, actor: Actor, f: DqFinding, note: str | None) -> DqFinding:
    expect(f, "open", "assigned", "fixing")
    _move(f, "submitted", actor.name, utcnow(), note)
    _audit(session, actor, "dq.finding.submit", f, note=note)
    return f


def settle_recheck(session: Session, actor: Actor, f: DqFinding, failure: Failure | None) -> DqFinding:
    """A submitted finding re-checked: passing closes it as verified, failing sends it back to its owner."""
    expect(f, "submitted")
    now = utcnow()
    if failure is None:
        _move(f, "verified", actor.name, now, "复核通过")
        f.resolved_at, f.resolved_by = now, actor.name
    else:
        f.message = failure.message
        _move(f, "assigned" if f.owner else "open", actor.name, now, f"复核未通过：{failure.message}")
    _audit(session, actor, "dq.finding.verify", f, passed=failure is None)
    return f


def propose_waiver(session: Session, actor: Actor, finding_id: int, reason: str) -> DqFinding:
    f = get(session, finding_id)
    expect(f, "open", "assigned", "fixing", "submitted")
    reason = reason.strip()
    if len(reason) < 2:
        raise InvalidInput("请填写豁免理由", code="dq_waiver_reason_required", detail={"field": "reason"})
    f.waive_reason = reason[:500]
    _move(f, "waiver_proposed", actor.name, utcnow(), reason)
    _audit(session, actor, "dq.finding.waiver", f, reason=reason)
    return f


def waive(session: Session, actor: Actor, finding_id: int) -> DqFinding:
    """Grant a proposed waiver: never by the person who proposed it."""
    f = get(session, finding_id)
    expect(f, "waiver_proposed")
    proposer = f.history[-1]["by"] if f.history else None
    if proposer == actor.name:
        raise Conflict("豁免须由申请人以外的人员批准", code="dq_waiver_same_person", detail={"id": f.id})
    now = utcnow()
    _move(f, "waived", actor.name, now, f.waive_reason)
    f.resolved_at, f.resolved_by = now, actor.name
    _audit(session, actor, "dq.finding.waive", f, reason=f.waive_reason, proposed_by=proposer)
    return f


def query(*, rule: str | None = None, dimension: str | None = None, severity: str | None = None,
          status: str | None = None, owner: str | None = None, branch: str | None = None,
          serial: str | None = None, live: bool = False, after_id: int | None = None,
          limit: int = 100) -> Select[DqFinding]:
    """Findings matching the filters, newest first, keyset-paged by id (``after_id``: the last id of the page)."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"状态只能是：{'、'.join(STATUSES)}", code="dq_status_invalid", detail={"field": "status"})
    q = select(DqFinding)
    for column, value in ((DqFinding.rule_code, rule), (DqFinding.dimension, dimension),
                          (DqFinding.severity, severity), (DqFinding.status, status), (DqFinding.owner, owner),
                          (DqFinding.branch, branch), (DqFinding.serial, serial)):
        if value is not None:
            q = q.where(column == value)
    if live:
        q = q.where(DqFinding.status.in_(LIVE))
    if after_id is not None:
        q = q.where(DqFinding.id < after_id)
    return q.order_by(DqFinding.id.desc()).limit(limit)


def as_dict(f: DqFinding) -> dict[str, Any]:
    return {"id": f.id, "rule_code": f.rule_code, "rule_version": f.rule_version, "dimension": f.dimension,
            "severity": f.severity, "object_type": f.object_type, "object_key": f.object_key, "serial": f.serial,
            "key_values": f.key_values, "message": f.message, "branch": f.branch, "status": f.status,
            "status_name": STATUSES[f.status], "owner": f.owner, "owner_kind": f.owner_kind,
            "due_date": f.due_date, "first_seen": f.first_seen, "last_seen": f.last_seen,
            "seen_count": f.seen_count, "resolved_at": f.resolved_at, "resolved_by": f.resolved_by,
            "waive_reason": f.waive_reason, "history": f.history}


PII_KEYS = {"applicant_id_number": mask_id_number, "applicant_mobile": mask_mobile}


def masked(d: dict[str, Any], pii: bool) -> dict[str, Any]:
    """``as_dict`` with 证件号码 and 手机号 masked unless the reader may see them."""
    if pii:
        return d
    kv = {k: (PII_KEYS[k](v) if k in PII_KEYS and isinstance(v, str) else v) for k, v in d["key_values"].items()}
    return {**d, "key_values": kv}
