"""Lending (利用 / 借阅): access requests, time-limited grants, paper loans.

A request (利用申请) names items by 档号 with a purpose, a mode and a period in days (at most
``ARCHIVE_LENDING_MAX_DAYS``); requests from outside bodies (法院/公安/纪检) carry the reference of their legal
document. An archivist or the archive head approves it — never the person who asked — possibly for fewer days,
or rejects it, each with a reason; an approver limited to some branches (网点) sees, decides and lends only items
of those branches. An approved request is a grant (利用授权) that ends by itself at its expiry
time or earlier when revoked. Reads under a grant go into the access register (archive/access.py) with the
grant's id, so the archivist can list a grant's views.

Whether a person holds a grant for an item is remembered in this process for :data:`GRANT_CACHE_SECONDS` (every page
of a document viewed under a grant asks): approving or revoking a grant forgets everything remembered when its
transaction commits, so the change takes effect at once in this process and within :data:`GRANT_CACHE_SECONDS` in
another; a grant's expiry is checked on every read against the remembered expiry time.

Paper loans (实体借阅) record originals lent out (借出), reminders (催还) and returns (归还) with the condition
found. Every change writes an audit event in its own transaction; a refused change writes a ``refused``
event (:func:`archive.retention.refusals.audited`), so attempts are on record too.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from archive import audit
from archive.access import ACTION as ACCESS_ACTION
from archive.access import AccessEventOut
from archive.authorization import require
from archive.catalogue.models import (
    ArchiveItem,
    AuditEvent,
    Case,
    LendingItem,
    LendingRequest,
    PaperLoan,
    PaperLoanItem,
)
from archive.catalogue.types import utcnow
from archive.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from archive.memo import Recent
from archive.permissions import Permission, Principal
from archive.retention.refusals import actor_of as _actor

PURPOSES = {"review": "业务复核", "audit": "审计", "judicial": "司法协查", "self": "本人查询", "other": "其他"}
MODES = {"online": "在线查阅", "download": "下载", "print": "打印", "paper": "实体借出"}
AUTHORITIES = {"court": "法院", "police": "公安", "discipline": "纪检"}
STATES = {"pending": "待审批", "active": "已批准（有效）", "expired": "已到期", "rejected": "已驳回",
          "revoked": "已撤销"}
# What a grant of each mode lets its holder read online (access.WHAT); a paper grant is for the 借出 desk only.
MODE_READS: dict[str, frozenset[str]] = {
    "online": frozenset({"data", "page"}),
    "print": frozenset({"data", "page", "rendition"}),
    "download": frozenset({"data", "page", "rendition", "original"}),
    "paper": frozenset(),
}
MAX_CODES = 200
DESTROYED = "destroyed"  # ArchiveItem.status of a destruction tombstone


# --- input ---------------------------------------------------------------------------------------

class RequestIn(BaseModel):
    archival_codes: list[str] = Field(max_length=MAX_CODES, description=f"档号，最多 {MAX_CODES} 个",
                                      examples=[["J001-YW·2026-D30-TQ-000001"]])
    purpose: str = Field(max_length=16, description="利用目的：review 业务复核、audit 审计、judicial 司法协查、"
                         "self 本人查询、other 其他（也可直接写中文）", examples=["review"])
    purpose_text: str | None = Field(None, max_length=500, description="目的说明；目的为「其他」时必填")
    mode: str = Field(max_length=16, description="利用方式：online 在线查阅、download 下载、print 打印、"
                      "paper 实体借出", examples=["online"])
    days: int = Field(description="利用期限（天）", examples=[7])
    department: str | None = Field(None, max_length=100, description="利用人单位/部门")
    authority: str | None = Field(None, max_length=16, description="外部来函单位类别：court 法院、police 公安、"
                                  "discipline 纪检；填写时必须给出 legal_basis")
    external_unit: str | None = Field(None, max_length=200, description="来函单位名称", examples=["某区人民法院"])
    legal_basis: str | None = Field(None, max_length=300, description="法律文书（协助查询通知书等）文号",
                                    examples=["（2026）某0105执123号"])


class LoanIn(BaseModel):
    borrower: str = Field(max_length=100, description="借阅人")
    borrower_unit: str | None = Field(None, max_length=200, description="借阅人单位/部门")
    archival_codes: list[str] = Field(max_length=MAX_CODES, description="档号")
    due_date: date = Field(description="应还日期")
    request_id: int | None = Field(None, ge=1, le=2**31 - 1, description="已批准的实体借出申请编号（可选）")


# --- output --------------------------------------------------------------------------------------

class RequestOut(BaseModel):
    id: int
    requester: str
    department: str | None
    purpose: str
    purpose_label: str
    purpose_text: str | None
    mode: str
    mode_label: str
    days_requested: int
    authority: str | None
    external_unit: str | None
    legal_basis: str | None
    archival_codes: list[str]
    status: str = Field(description="pending, active, expired, rejected, revoked")
    status_label: str
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None
    days_granted: int | None
    expires_at: datetime | None
    revoked_by: str | None
    revoked_at: datetime | None
    revoke_reason: str | None
    created_at: datetime


class LoanOut(BaseModel):
    id: int
    borrower: str
    borrower_unit: str | None
    request_id: int | None
    archival_codes: list[str]
    lent_by: str
    lent_at: datetime
    due_date: date
    status: str = Field(description="out, returned")
    overdue_days: int = Field(description="逾期天数；未逾期或已归还为 0")
    reminders: list[dict[str, Any]]
    returned_at: datetime | None
    returned_to: str | None
    condition_note: str | None


def state(r: LendingRequest, now: datetime | None = None) -> str:
    """The request's state now: an approved request is active until it expires."""
    if r.status != "approved":
        return r.status
    return "active" if r.expires_at is not None and r.expires_at > (now or utcnow()) else "expired"


def request_out(r: LendingRequest) -> RequestOut:
    s = state(r)
    return RequestOut(id=r.id, requester=r.requester, department=r.department, purpose=r.purpose,
                      purpose_label=PURPOSES.get(r.purpose, r.purpose), purpose_text=r.purpose_text, mode=r.mode,
                      mode_label=MODES.get(r.mode, r.mode), days_requested=r.days_requested, authority=r.authority,
                      external_unit=r.external_unit, legal_basis=r.legal_basis,
                      archival_codes=[i.archival_code for i in r.items], status=s, status_label=STATES[s],
                      decided_by=r.decided_by, decided_at=r.decided_at, decision_reason=r.decision_reason,
                      days_granted=r.days_granted, expires_at=r.expires_at, revoked_by=r.revoked_by,
                      revoked_at=r.revoked_at, revoke_reason=r.revoke_reason, created_at=r.created_at)


def loan_out(loan: PaperLoan, today: date) -> LoanOut:
    overdue = (today - loan.due_date).days if loan.status == "out" else 0
    return LoanOut(id=loan.id, borrower=loan.borrower, borrower_unit=loan.borrower_unit, request_id=loan.request_id,
                   archival_codes=[i.archival_code for i in loan.items], lent_by=loan.lent_by, lent_at=loan.lent_at,
                   due_date=loan.due_date, status=loan.status, overdue_days=max(0, overdue),
                   reminders=list(loan.reminders or []), returned_at=loan.returned_at, returned_to=loan.returned_to,
                   condition_note=loan.condition_note)


def _choice(value: str | None, options: dict[str, str], field: str, what: str) -> str:
    """A code or its Chinese label → the code."""
    v = (value or "").strip()
    if v in options:
        return v
    for code, label in options.items():
        if v == label:
            return code
    raise InvalidInput(f"{what}「{v}」无效；可选：{'、'.join(f'{c}（{lbl}）' for c, lbl in options.items())}",
                       code=f"invalid_{field}", detail={"field": field, "allowed": list(options)})


def _text(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


def check_days(days: int, max_days: int, field: str = "days") -> None:
    if days <= 0:
        raise InvalidInput(f"利用期限必须是正整数天数，收到 {days}", code="invalid_period",
                           detail={"field": field, "days": days})
    if days > max_days:
        raise InvalidInput(f"利用期限 {days} 天超过上限 {max_days} 天，请缩短期限或分次申请", code="period_too_long",
                           detail={"field": field, "days": days, "max": max_days})


def resolve_items(session: Session, codes: Iterable[str], *, lock: bool = False) -> list[ArchiveItem]:
    """The items with these 档号, in order; unknown (404) or destroyed (409) ones are refused by name."""
    wanted = list(dict.fromkeys(c.strip() for c in codes if c and c.strip()))
    if not wanted:
        raise InvalidInput("请至少给出一个档号", code="no_items", detail={"field": "archival_codes"})
    q = select(ArchiveItem).where(ArchiveItem.archival_code.in_(wanted)).order_by(ArchiveItem.id)
    found = {i.archival_code: i for i in session.scalars(q.with_for_update() if lock else q)}
    unknown = [c for c in wanted if c not in found]
    if unknown:
        raise NotFound(f"档号 {'、'.join(unknown)} 不存在，请核对档号", code="item_not_found",
                       detail={"unknown": unknown})
    destroyed = [c for c in wanted if found[c].status == DESTROYED]
    if destroyed:
        raise Conflict(f"档号 {'、'.join(destroyed)} 已销毁，不能利用或借出", code="item_destroyed",
                       detail={"destroyed": destroyed})
    return [found[c] for c in wanted]


# --- requests and grants -------------------------------------------------------------------------

def create_request(session: Session, principal: Principal, data: RequestIn, max_days: int) -> LendingRequest:
    """利用申请 by the caller; pending until an archivist decides."""
    require(session, principal, Permission.LENDING_REQUEST, action="lending.request", target_type="lending_request")
    purpose = _choice(data.purpose, PURPOSES, "purpose", "利用目的")
    mode = _choice(data.mode, MODES, "mode", "利用方式")
    text = _text(data.purpose_text)
    if purpose == "other" and not text:
        raise InvalidInput("利用目的为「其他」时须写明目的说明（purpose_text）", code="purpose_text_required",
                           detail={"field": "purpose_text"})
    check_days(data.days, max_days)
    authority = _choice(data.authority, AUTHORITIES, "authority", "来函单位类别") if _text(data.authority) else None
    legal_basis = _text(data.legal_basis)
    if authority and not legal_basis:
        raise InvalidInput(f"{AUTHORITIES[authority]}来函查阅须登记法律文书文号（legal_basis），如协助查询通知书",
                           code="legal_basis_required", detail={"field": "legal_basis"})
    items = resolve_items(session, data.archival_codes)
    r = LendingRequest(requester=principal.name, department=_text(data.department), purpose=purpose,
                       purpose_text=text, mode=mode, days_requested=data.days, authority=authority,
                       external_unit=_text(data.external_unit), legal_basis=legal_basis, status="pending")
    session.add(r)
    session.flush()
    for n, item in enumerate(items):
        session.add(LendingItem(request_id=r.id, item_id=item.id, archival_code=item.archival_code, position=n))
    session.flush()
    session.refresh(r)
    audit.record(session, _actor(principal), "lending.request", target_type="lending_request", target_id=r.id,
                 detail={"archival_codes": [i.archival_code for i in items], "purpose": purpose, "mode": mode,
                         "days": data.days, "authority": authority, "legal_basis": legal_basis})
    return r


def get_request(session: Session, request_id: int, *, lock: bool = False) -> LendingRequest:
    q = select(LendingRequest).where(LendingRequest.id == request_id)
    r = session.scalar(q.with_for_update() if lock else q)
    if r is None:
        raise NotFound(f"利用申请 {request_id} 不存在", code="lending_request_not_found",
                       detail={"request_id": request_id})
    return r


def visible_request(session: Session, principal: Principal, request_id: int) -> LendingRequest:
    """The requester sees their own requests; approvers and auditors see all (others: 404)."""
    r = get_request(session, request_id)
    if r.requester != principal.name and not (principal.can(Permission.LENDING_APPROVE)
                                              or principal.can(Permission.AUDIT_READ)):
        raise NotFound(f"利用申请 {request_id} 不存在", code="lending_request_not_found",
                       detail={"request_id": request_id})
    return r


def _pending(r: LendingRequest) -> None:
    if r.status != "pending":
        raise Conflict(f"利用申请 {r.id} {STATES[state(r)]}，不能再审批", code="request_not_pending",
                       detail={"request_id": r.id, "status": state(r)})


def _reason(reason: str | None, what: str) -> str:
    text = _text(reason)
    if not text:
        raise InvalidInput(f"{what}须写明理由（reason）", code="reason_required", detail={"field": "reason"})
    if len(text) > 500:
        raise InvalidInput("理由不能超过 500 个字符", code="reason_too_long", detail={"field": "reason"})
    return text


def _not_own(principal: Principal, r: LendingRequest) -> None:
    if r.requester == principal.name:
        raise PermissionDenied("不能审批本人提交的利用申请，请由其他档案管理员或档案部门负责人审批",
                               code="self_approval", detail={"request_id": r.id})


def _branch_scope(session: Session, principal: Principal, item_ids: list[int], what: str) -> None:
    """An approver limited to some branches (网点) decides and lends only items of those branches."""
    if principal.branches is None or not item_ids:
        return
    outside = list(session.scalars(
        select(ArchiveItem.archival_code).join(Case, Case.id == ArchiveItem.case_id)
        .where(ArchiveItem.id.in_(item_ids), Case.branch.not_in(sorted(principal.branches)))
        .order_by(ArchiveItem.archival_code)))
    if outside:
        raise PermissionDenied(f"档号 {'、'.join(outside[:10])} 不属于您负责的网点，您不能{what}；"
                               "请由负责该网点的档案管理员或档案部门负责人办理", code="item_outside_branch",
                               detail={"archival_codes": outside[:100]})


GRANT_CACHE_SECONDS = 5.0


# (requester, item id, what) → (the running grant's id or None, its expiry)
grant_cache: Recent[tuple[str, int, str], tuple[int | None, datetime | None]] = Recent(GRANT_CACHE_SECONDS)


def remembered_grant(principal: Principal, item_id: int, what: str) -> tuple[bool, int | None]:
    """(known, grant id) from :data:`grant_cache`: known is False when there is no current answer."""
    hit = grant_cache.get((principal.name, item_id, what))
    if hit is None or (hit[1] is not None and hit[1] <= utcnow()):
        return False, None
    return True, hit[0]


def granted_id(session: Session, principal: Principal, item_id: int, what: str) -> int | None:
    """The id of the caller's running grant to read ``what`` of the item (:func:`active_grant`), remembered."""
    if principal.kind != "user":
        return None
    known, grant_id = remembered_grant(principal, item_id, what)
    if known:
        return grant_id
    grant = active_grant(session, principal, item_id, what)
    grant_cache.put((principal.name, item_id, what), (grant.id, grant.expires_at) if grant else (None, None))
    return grant.id if grant else None


def approve(session: Session, principal: Principal, request_id: int, max_days: int, days: int | None = None,
            reason: str | None = None) -> LendingRequest:
    """Approve for the requested days or fewer; the grant runs from now."""
    require(session, principal, Permission.LENDING_APPROVE,
            action="lending.approve", target_type="lending_request", target_id=request_id)
    r = get_request(session, request_id, lock=True)
    _not_own(principal, r)
    _branch_scope(session, principal, [i.item_id for i in r.items], "审批此利用申请")
    _pending(r)
    granted = r.days_requested if days is None else days
    check_days(granted, max_days)
    if granted > r.days_requested:
        raise InvalidInput(f"审批只能缩短期限：申请 {r.days_requested} 天，不能批准 {granted} 天",
                           code="period_not_shortened", detail={"field": "days", "requested": r.days_requested})
    resolve_items(session, [i.archival_code for i in r.items])  # destroyed since it was asked for: refused
    text = _text(reason)
    if text and len(text) > 500:
        raise InvalidInput("理由不能超过 500 个字符", code="reason_too_long", detail={"field": "reason"})
    now = utcnow()
    r.status, r.decided_by, r.decided_at, r.decision_reason = "approved", principal.name, now, text
    r.days_granted, r.expires_at = granted, now + timedelta(days=granted)
    audit.record(session, _actor(principal), "lending.approve", target_type="lending_request", target_id=r.id,
                 detail={"requester": r.requester, "days": granted, "days_requested": r.days_requested,
                         "expires_at": r.expires_at.isoformat(), "reason": text,
                         "archival_codes": [i.archival_code for i in r.items]})
    grant_cache.clear_on_commit(session)
    return r


def reject(session: Session, principal: Principal, request_id: int, reason: str | None) -> LendingRequest:
    require(session, principal, Permission.LENDING_APPROVE,
            action="lending.reject", target_type="lending_request", target_id=request_id)
    r = get_request(session, request_id, lock=True)
    _not_own(principal, r)
    _branch_scope(session, principal, [i.item_id for i in r.items], "驳回此利用申请")
    _pending(r)
    text = _reason(reason, "驳回")
    r.status, r.decided_by, r.decided_at, r.decision_reason = "rejected", principal.name, utcnow(), text
    audit.record(session, _actor(principal), "lending.reject", target_type="lending_request", target_id=r.id,
                 detail={"requester": r.requester, "reason": text})
    return r


def revoke(session: Session, principal: Principal, request_id: int, reason: str | None) -> LendingRequest:
    """End an active grant before its time."""
    require(session, principal, Permission.LENDING_APPROVE,
            action="lending.revoke", target_type="lending_request", target_id=request_id)
    r = get_request(session, request_id, lock=True)
    if state(r) != "active":
        raise Conflict(f"利用申请 {r.id} {STATES[state(r)]}，只有有效的授权可以撤销", code="grant_not_active",
                       detail={"request_id": r.id, "status": state(r)})
    text = _reason(reason, "撤销授权")
    r.status, r.revoked_by, r.revoked_at, r.revoke_reason = "revoked", principal.name, utcnow(), text
    audit.record(session, _actor(principal), "lending.revoke", target_type="lending_request", target_id=r.id,
                 detail={"requester": r.requester, "reason": text,
                         "expires_at": r.expires_at.isoformat() if r.expires_at else None})
    grant_cache.clear_on_commit(session)
    return r


def my_requests(session: Session, principal: Principal, limit: int = 100, offset: int = 0) -> list[LendingRequest]:
    q = (select(LendingRequest).where(LendingRequest.requester == principal.name)
         .order_by(LendingRequest.id.desc()).limit(limit).offset(offset))
    return list(session.scalars(q))


def pending_requests(session: Session, principal: Principal, limit: int = 100,
                     offset: int = 0) -> list[LendingRequest]:
    """The queue an approver works on: oldest first; their own requests are left out (others must decide), and
    so are requests naming an item of a branch the approver is not responsible for."""
    require(session, principal, Permission.LENDING_APPROVE, target_type="lending_request")
    q = select(LendingRequest).where(LendingRequest.status == "pending", LendingRequest.requester != principal.name)
    if principal.branches is not None:
        q = q.where(~exists().where(LendingItem.request_id == LendingRequest.id,
                                    ArchiveItem.id == LendingItem.item_id, Case.id == ArchiveItem.case_id,
                                    Case.branch.not_in(sorted(principal.branches))))
    q = q.order_by(LendingRequest.id).limit(limit).offset(offset)
    return list(session.scalars(q))


def active_grants(session: Session, principal: Principal, limit: int = 100, offset: int = 0) -> list[LendingRequest]:
    """Grants running now (有效授权), those ending soonest first: what an approver may revoke. An approver limited
    to some branches sees the grants whose items are all of those branches, as in :func:`pending_requests`."""
    require(session, principal, Permission.LENDING_APPROVE, Permission.AUDIT_READ, target_type="lending_request")
    q = select(LendingRequest).where(LendingRequest.status == "approved", LendingRequest.expires_at > utcnow())
    if principal.branches is not None:
        q = q.where(~exists().where(LendingItem.request_id == LendingRequest.id,
                                    ArchiveItem.id == LendingItem.item_id, Case.id == ArchiveItem.case_id,
                                    Case.branch.not_in(sorted(principal.branches))))
    q = q.order_by(LendingRequest.expires_at, LendingRequest.id).limit(limit).offset(offset)
    return list(session.scalars(q))


def grant_views(session: Session, principal: Principal, request_id: int) -> list[AccessEventOut]:
    """Every read registered under this grant (利用登记), oldest first."""
    require(session, principal, Permission.LENDING_APPROVE, Permission.AUDIT_READ, target_type="lending_request",
            target_id=request_id)
    r = get_request(session, request_id)
    if r.decided_at is None or r.status == "rejected":
        return []
    q = (select(AuditEvent).where(AuditEvent.action == ACCESS_ACTION, AuditEvent.actor == r.requester,
                                  AuditEvent.target_id.in_([i.archival_code for i in r.items]),
                                  AuditEvent.at >= r.decided_at)
         .order_by(AuditEvent.seq))
    return [AccessEventOut(seq=e.seq, at=e.at, actor=e.actor, actor_type=e.actor_type, target_type=e.target_type,
                           target_id=e.target_id, what=e.detail.get("what"), purpose=e.detail.get("purpose"),
                           serial=e.detail.get("serial"), detail=e.detail)
            for e in session.scalars(q) if e.detail.get("grant") == r.id]


# --- reading under a grant -------------------------------------------------------------------------

def _covering(principal: Principal, item_id: int, what: str) -> Any:
    modes = [m for m, reads in MODE_READS.items() if what in reads]
    return (select(LendingRequest).join(LendingItem, LendingItem.request_id == LendingRequest.id)
            .where(LendingRequest.requester == principal.name, LendingItem.item_id == item_id,
                   LendingRequest.mode.in_(modes)))


def active_grant(session: Session, principal: Principal, item_id: int, what: str) -> LendingRequest | None:
    """The caller's approved, unexpired grant that lets them read ``what`` of the item."""
    if principal.kind != "user":
        return None
    q = _covering(principal, item_id, what).where(LendingRequest.status == "approved",
                                                  LendingRequest.expires_at > utcnow())
    return session.scalars(q.order_by(LendingRequest.expires_at.desc()).limit(1)).first()


def authorize_read(session: Session, principal: Principal, item: ArchiveItem, what: str, permission: Permission,
                   zone: ZoneInfo) -> int | None:
    """May the caller read ``what`` of this item? The grant id it reads under, None if by role; else 403/404.

    A grant lets its holder read even where role or branch alone would not. Without one, the role and branch
    rules apply; a grant that has ended is named in the 403, so the person knows to ask again.
    """
    grant_id = granted_id(session, principal, item.id, what)
    if grant_id is not None:
        return grant_id
    if principal.can(permission) and principal.sees_branch(item.case.branch):
        return None
    ended = None
    if principal.kind == "user":
        q = _covering(principal, item.id, what).where(LendingRequest.status.in_(["approved", "revoked"]))
        ended = session.scalars(q.order_by(LendingRequest.decided_at.desc()).limit(1)).first()
    if ended is not None and ended.status == "revoked" and ended.revoked_at is not None:
        raise PermissionDenied(
            f"您对档号 {item.archival_code} 的利用授权（申请 {ended.id}）已于 "
            f"{_local(ended.revoked_at, zone)} 被撤销（{ended.revoke_reason}）；如需继续利用请重新提交利用申请",
            code="grant_revoked", detail={"request_id": ended.id, "archival_code": item.archival_code})
    if ended is not None and ended.expires_at is not None:
        raise PermissionDenied(
            f"您对档号 {item.archival_code} 的利用授权（申请 {ended.id}）已于 {_local(ended.expires_at, zone)} "
            "到期；如需继续利用请重新提交利用申请", code="grant_expired",
            detail={"request_id": ended.id, "archival_code": item.archival_code,
                    "expired_at": ended.expires_at.isoformat()})
    require(session, principal, permission, target_type="item", target_id=item.archival_code, detail={"what": what})
    raise NotFound(f"档号 {item.archival_code} 不存在", code="item_not_found",
                   detail={"archival_code": item.archival_code})


def _local(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M")


# --- paper loans (实体借阅) -------------------------------------------------------------------------

def lend_out(session: Session, principal: Principal, data: LoanIn, today: date, max_days: int) -> PaperLoan:
    """借出: paper originals of the items leave the archive room until the due date."""
    require(session, principal, Permission.LENDING_APPROVE, action="lending.loan.out", target_type="paper_loan")
    borrower = _text(data.borrower)
    if not borrower:
        raise InvalidInput("请填写借阅人", code="borrower_required", detail={"field": "borrower"})
    days = (data.due_date - today).days
    if days <= 0:
        raise InvalidInput(f"应还日期 {data.due_date} 须晚于今天（{today}）", code="invalid_due_date",
                           detail={"field": "due_date"})
    if days > max_days:
        raise InvalidInput(f"借期 {days} 天超过上限 {max_days} 天，请提前应还日期", code="period_too_long",
                           detail={"field": "due_date", "days": days, "max": max_days})
    items = resolve_items(session, data.archival_codes, lock=True)
    _branch_scope(session, principal, [i.id for i in items], "借出这些档案")
    if data.request_id is not None:
        r = get_request(session, data.request_id)
        granted = {i.item_id for i in r.items}
        if r.mode != "paper" or state(r) != "active" or any(i.id not in granted for i in items):
            raise Conflict(f"利用申请 {r.id} 不是包含这些档号的有效实体借出授权", code="loan_request_mismatch",
                           detail={"request_id": r.id, "status": state(r), "mode": r.mode})
    out = session.execute(select(PaperLoanItem.archival_code, PaperLoan.id).join(PaperLoan)
                          .where(PaperLoan.status == "out", PaperLoanItem.item_id.in_([i.id for i in items]))).all()
    if out:
        raise Conflict("档号 " + "、".join(f"{c}（借阅单 {n}）" for c, n in out) + " 的实体档案已借出未还，"
                       "不能重复借出", code="item_already_lent", detail={"lent": {c: n for c, n in out}})
    loan = PaperLoan(borrower=borrower, borrower_unit=_text(data.borrower_unit), request_id=data.request_id,
                     lent_by=principal.name, due_date=data.due_date, status="out", reminders=[])
    session.add(loan)
    session.flush()
    for n, item in enumerate(items):
        session.add(PaperLoanItem(loan_id=loan.id, item_id=item.id, archival_code=item.archival_code, position=n))
    session.flush()
    session.refresh(loan)
    audit.record(session, _actor(principal), "lending.loan.out", target_type="paper_loan", target_id=loan.id,
                 detail={"borrower": borrower, "archival_codes": [i.archival_code for i in items],
                         "due_date": data.due_date.isoformat(), "request_id": data.request_id})
    return loan


def get_loan(session: Session, loan_id: int, *, lock: bool = False) -> PaperLoan:
    q = select(PaperLoan).where(PaperLoan.id == loan_id)
    loan = session.scalar(q.with_for_update() if lock else q)
    if loan is None:
        raise NotFound(f"借阅单 {loan_id} 不存在", code="loan_not_found", detail={"loan_id": loan_id})
    return loan


def _outstanding(loan: PaperLoan, zone: ZoneInfo) -> None:
    if loan.status != "out":
        when = _local(loan.returned_at, zone) if loan.returned_at else "此前"
        raise Conflict(f"借阅单 {loan.id} 已于 {when} 归还（接收人 {loan.returned_to}），不能重复办理",
                       code="loan_already_returned", detail={"loan_id": loan.id})


def remind(session: Session, principal: Principal, loan_id: int, today: date, zone: ZoneInfo,
           note: str | None = None) -> PaperLoan:
    """催还: record that the borrower was reminded."""
    require(session, principal, Permission.LENDING_APPROVE,
            action="lending.loan.remind", target_type="paper_loan", target_id=loan_id)
    loan = get_loan(session, loan_id, lock=True)
    _outstanding(loan, zone)
    text = _text(note)
    if text and len(text) > 500:
        raise InvalidInput("催还说明不能超过 500 个字符", code="note_too_long", detail={"field": "note"})
    entry = {"at": utcnow().isoformat(), "by": principal.name, "note": text,
             "overdue_days": max(0, (today - loan.due_date).days)}
    loan.reminders = [*(loan.reminders or []), entry]
    audit.record(session, _actor(principal), "lending.loan.remind", target_type="paper_loan", target_id=loan.id,
                 detail={"borrower": loan.borrower, "due_date": loan.due_date.isoformat(), **entry})
    return loan


def return_loan(session: Session, principal: Principal, loan_id: int, condition_note: str | None,
                zone: ZoneInfo) -> PaperLoan:
    """归还: the originals are back, with the condition found on checking them."""
    require(session, principal, Permission.LENDING_APPROVE,
            action="lending.loan.return", target_type="paper_loan", target_id=loan_id)
    loan = get_loan(session, loan_id, lock=True)
    _outstanding(loan, zone)
    note = _text(condition_note)
    if not note:
        raise InvalidInput("归还时须登记档案状况（condition_note），如「完好」或破损情况",
                           code="condition_note_required", detail={"field": "condition_note"})
    if len(note) > 500:
        raise InvalidInput("档案状况说明不能超过 500 个字符", code="note_too_long", detail={"field": "condition_note"})
    loan.status, loan.returned_at, loan.returned_to, loan.condition_note = "returned", utcnow(), principal.name, note
    audit.record(session, _actor(principal), "lending.loan.return", target_type="paper_loan", target_id=loan.id,
                 detail={"borrower": loan.borrower, "condition_note": note,
                         "archival_codes": [i.archival_code for i in loan.items]})
    return loan


def list_loans(session: Session, principal: Principal, status: str | None = None, limit: int = 100,
               offset: int = 0) -> list[PaperLoan]:
    require(session, principal, Permission.LENDING_APPROVE, target_type="paper_loan")
    q = select(PaperLoan).order_by(PaperLoan.id.desc()).limit(limit).offset(offset)
    if status:
        q = q.where(PaperLoan.status == status)
    return list(session.scalars(q))


def overdue_loans(session: Session, principal: Principal, today: date, limit: int | None = None) -> list[PaperLoan]:
    """催还 list: loans still out after their due date, most overdue first (the first ``limit`` when given)."""
    require(session, principal, Permission.LENDING_APPROVE, target_type="paper_loan")
    q = (select(PaperLoan).where(PaperLoan.status == "out", PaperLoan.due_date < today)
         .order_by(PaperLoan.due_date, PaperLoan.id).limit(limit))
    return list(session.scalars(q))


# --- destruction asks this ---------------------------------------------------------------------------

def items_with_open_lending(session: Session, item_ids: Iterable[int]) -> set[int]:
    """The ids among ``item_ids`` with an active access grant or a paper loan not yet returned (blocks destruction)."""
    wanted = set(item_ids)
    if not wanted:
        return set()
    # Open lending is small next to a destruction list, so read all of it once instead of a long IN list.
    grants = (select(LendingItem.item_id).join(LendingRequest, LendingItem.request_id == LendingRequest.id)
              .where(LendingRequest.status == "approved", LendingRequest.expires_at > utcnow()))
    loans = (select(PaperLoanItem.item_id).join(PaperLoan, PaperLoanItem.loan_id == PaperLoan.id)
             .where(PaperLoan.status == "out"))
    return wanted & (set(session.scalars(grants)) | set(session.scalars(loans)))
