"""Filing (归档): closing a case into a signed, stored, catalogued archive item with its 档号.

One catalogue transaction does it all, in this order: lock the case, check the materials, take the
档号 (row-locked), build and sign the PDF/A rendition, store it with object lock, set retention on the
originals, write the item, the audit event and the outbox row. The 档号 is taken first because the
rendition carries it; if anything after fails, the transaction (and so the number) rolls back, and the
stored rendition is an orphan for `archive storage gc`. Filings of one class queue on the number's row
lock for the length of a signature; that is the price of gap-free numbers.

The filing-stage 四性检测 (GD, archive/checks/gd.py) run inside: the catalogue record's items before the
rendition is built, the rest after signing and before storing; a blocking failure refuses the filing
(409 filing_checks_failed) with nothing stored, and a filed item's report is saved with it.
"""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from typing import Any, Literal, NoReturn

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from archive import audit, indexing
from archive.archival_code import allocate
from archive.audit import Actor
from archive.capture.cases import ensure_open, ensure_visible
from archive.capture.documents import filing_order, missing_materials
from archive.catalogue.models import ArchiveItem, Case
from archive.catalogue.types import utcnow
from archive.checks import gd
from archive.checks.base import CheckItem, Result, Stage, blocking_failures, code_key
from archive.checks.reports import save_report
from archive.checks.security import scanner_from_settings
from archive.classification import Trigger
from archive.context import Context
from archive.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from archive.permissions import Permission, Principal
from archive.retention import expiry_date
from archive.retention.schedules import ensure_version
from signing.fixity import digest_bytes
from signing.pades import sign_pdf
from signing.rendition import RenditionMetadata, SourceDocument, build_rendition
from signing.tsa import timestamper_from_settings
from storage.base import content_key

PERMANENT_LOCK_YEARS = 100  # object lock of 永久 items; extended before it runs out


class TrailStep(BaseModel):
    """One 业务行为 of the approval trail (GB/T 18894 process metadata)."""

    action: Literal["受理", "初审", "审核", "复核", "审批", "签章", "放款", "付款", "办结"]
    person: str = Field(min_length=1, max_length=64)
    at: datetime
    opinion: str | None = Field(None, max_length=500)


class CloseIn(BaseModel):
    outcome: Literal["approved", "rejected", "withdrawn"] = Field(description="办结结果：approved 办结, "
                                                                  "rejected 不予办理, withdrawn 撤回")
    closed_at: datetime | None = Field(None, description="办结时间（带时区）；默认为现在")
    trail: list[TrailStep] = Field(min_length=1, max_length=50)
    override_reason: str | None = Field(None, max_length=500, description="材料不全仍归档的理由（仅档案管理员）")


def close_case(ctx: Context, s: Session, principal: Principal, serial: str, data: CloseIn) -> ArchiveItem:
    """File the case inside the caller's transaction (commit it to make the filing final)."""
    closed_at = data.closed_at or utcnow()
    for when, field in [(closed_at, "closed_at"), *((s.at, f"trail.{i}.at") for i, s in enumerate(data.trail))]:
        if when.tzinfo is None:
            raise InvalidInput("时间须带时区，例如 2026-01-05T16:30:00+08:00", code="naive_datetime",
                               detail={"field": field})
    case = _lock_case(s, serial)
    ensure_visible(principal, case)
    ensure_open(case)
    if closed_at < case.accepted_at:
        raise InvalidInput("办结时间早于受理时间", code="closed_before_accepted", detail={"field": "closed_at"})
    missing = missing_materials(ctx, case)
    if missing and not data.override_reason:
        names = "、".join(e.name for e in missing)
        raise Conflict(f"材料不齐，不能归档：缺少{names}。请补齐材料，或由档案管理员说明理由后归档",
                       code="materials_missing", detail={"missing": [e.material_type for e in missing]})
    if missing and not principal.can(Permission.FILING_OVERRIDE):
        raise PermissionDenied("材料不全时只有档案管理员可以说明理由后归档", code="override_not_allowed")
    return _file(ctx, s, principal, case, data, closed_at, missing=[e.material_type for e in missing])


def _lock_case(s: Session, serial: str) -> Case:
    case = s.scalar(select(Case).where(Case.serial == serial).with_for_update())
    if case is None:
        raise NotFound(f"业务流水号 {serial} 不存在", code="case_not_found", detail={"serial": serial})
    return case


def _file(ctx: Context, s: Session, principal: Principal, case: Case, data: CloseIn, closed_at: datetime,
          missing: list[str]) -> ArchiveItem:
    schedule, settings = ctx.schedule, ctx.settings
    bt = schedule.business_type(case.business_type)
    local_closed = closed_at.astimezone(ctx.zone).date()
    trigger_date = _trigger_date(bt.trigger, local_closed)
    counting = schedule.triggers[bt.trigger].counting
    expiry = expiry_date(bt.retention, trigger_date, counting)
    version = ensure_version(s, schedule)  # the item records the schedule content it was filed under
    parts = allocate(s, ctx.code_rule, settings.fonds_code, local_closed.year, bt.retention.value, bt.category)
    code = ctx.code_rule.format(parts)

    docs = filing_order(ctx, case)  # the rendition lists the materials as the checklist does
    case.status, case.closed_at, case.outcome = "filed", closed_at, data.outcome
    case.trail = [step.model_dump(mode="json") for step in data.trail]
    # 四性检测 (GD): the catalogue record first, so a bad record is refused before anything is signed.
    subject = gd.FilingSubject(s, ctx, case, gd.load_originals(ctx, docs), code, parts, principal.kind,
                               missing=missing, scanner=scanner_from_settings(settings), rendition_pending=True)
    results = gd.run_gd(subject, phase="metadata")
    if blocking_failures(results):
        _refuse(results)
    if any(o.data is None for o in subject.originals):  # unreadable originals: report them, build nothing
        _refuse(results + gd.run_gd(subject, phase="content"))
    sources = [SourceDocument(title=f"{schedule.materials[o.doc.material_type]}（{o.doc.filename}）",
                              media_type=o.doc.media_type, data=o.data,
                              material_type=schedule.materials[o.doc.material_type])
               for o in subject.rendered]  # OFD is itself an archival 版式 format, kept as received
    parties = [p for p in (case.applicant_name, case.applicant_id_number, case.unit_name) if p]
    meta = RenditionMetadata(
        archival_code=code, business_serial=case.serial, business_type=bt.name, retention=bt.retention.label,
        title=f"{case.applicant_name or case.unit_name}{bt.name}", fonds_name=settings.fonds_name,
        dates=(case.accepted_at.astimezone(ctx.zone).date(), local_closed), parties=parties,
        extra={"年度": str(parts.year), "办理网点": case.branch, "经办人": case.clerk},
    )
    timestamper = timestamper_from_settings(settings)
    signed = sign_pdf(build_rendition(sources, meta, max_pixels=settings.max_pixels), ctx.signer,
                      timestamper=timestamper, tsa_required=settings.tsa_required)
    digests = digest_bytes(signed)
    lock_until = _lock_until(expiry, bt.retention.years, local_closed)
    key = content_key("renditions", digests.sha256)
    subject.rendition, subject.rendition_sha256, subject.rendition_sm3 = signed, digests.sha256, digests.sm3
    subject.rendition_key, subject.rendition_pending = key, False
    results += gd.run_gd(subject, phase="content")
    if blocking_failures(results):
        _refuse(results)  # before anything is stored: a refused filing leaves no object behind
    # Back-filed records (历史档案) may already be past their period: no lock then; appraisal decides.
    lock = lock_until if lock_until > datetime.now(UTC) else None
    ctx.store.put(key, io.BytesIO(signed), size=digests.size, sha256=digests.sha256, sm3=digests.sm3,
                  retain_until=lock)
    split_sources = [d for d in case.documents if d.status == "split"]  # the originals split documents came from
    for d in docs + split_sources:
        if lock is not None and (ctx.store.stat(d.original_key).retain_until or lock) <= lock:
            ctx.store.set_retention(d.original_key, lock)

    item = ArchiveItem(
        case_id=case.id, archival_code=code, fonds_code=parts.fonds, year=parts.year,
        retention_code=parts.retention, category=parts.category, number=parts.number, trigger=bt.trigger.value,
        trigger_date=trigger_date, expiry_date=expiry, schedule_version=version.ref, status="filed",
        rendition_key=key, rendition_sha256=digests.sha256, rendition_sm3=digests.sm3,
        signature={"level": "B-T" if timestamper else "B-B", "signer": _subject(ctx),
                   "signed_at": utcnow().isoformat(), "format": "PAdES", "pdfa": "2b"},
    )
    s.add(item)
    s.flush()
    report = save_report(s, Actor(principal.kind, principal.name), Stage.FILING, code, _ordered(results),
                         item_id=item.id, serial=case.serial)
    detail: dict[str, object] = {"serial": case.serial, "documents": len(docs), "rendition_sha256": digests.sha256,
                                 "check_report": report.id, "check_outcome": report.outcome}
    if missing:
        detail |= {"missing": missing, "override_reason": data.override_reason}
    audit.record(s, Actor(principal.kind, principal.name), "item.file", target_type="item", target_id=code,
                 detail=detail)
    indexing.enqueue(s, case.serial)
    return item


def _ordered(results: list[tuple[CheckItem, Result]]) -> list[tuple[CheckItem, Result]]:
    return sorted(results, key=lambda pair: code_key(pair[0].code))


class FilingChecksFailed(Conflict):
    """A blocking GD failure; carries the results so the refusal's report can be kept (see keep_refusal)."""

    def __init__(self, message: str, results: list[tuple[CheckItem, Result]], detail: dict[str, Any]) -> None:
        super().__init__(message, code="filing_checks_failed", detail=detail)
        self.results = results


def _refuse(results: list[tuple[CheckItem, Result]]) -> NoReturn:
    """A blocking GD failure: the transaction rolls back, so the 档号 is not consumed."""
    ordered = _ordered(results)
    failed = gd.refusal_summary(ordered)
    shown = "；".join(f"{f['code']} {f['name']}：{f['detail']}" for f in failed[:5])
    more = f" 等 {len(failed)} 项" if len(failed) > 5 else ""
    raise FilingChecksFailed(f"归档前四性检测未通过，未归档：{shown}{more}", ordered, {"failed": failed})


def keep_refusal(ctx: Context, principal: Principal, serial: str, exc: FilingChecksFailed) -> None:
    """Store the GD report of a refused filing in a transaction of its own (the filing's was rolled back), so
    archivists can see why a case did not file; the report id goes into the error's detail."""
    with ctx.catalogue.session() as own:
        report = save_report(own, Actor(principal.kind, principal.name), Stage.FILING, serial, exc.results,
                             serial=serial, refused=True)
        exc.detail["check_report"] = report.id


def _trigger_date(trigger: Trigger, closed: date) -> date | None:
    """When the retention clock starts, if it already can: loans and accounts wait for their event."""
    if trigger is Trigger.BUSINESS_CLOSED:
        return closed
    if trigger is Trigger.FISCAL_YEAR_END:
        return date(closed.year, 12, 31)
    return None


def _lock_until(expiry: date | None, years: int | None, closed: date) -> datetime:
    """Object-lock end: the expiry, else the earliest it could be (so later events only extend it)."""
    if expiry is None:
        expiry = date(closed.year + 1 + (years if years is not None else PERMANENT_LOCK_YEARS), 1, 1)
    return datetime(expiry.year, expiry.month, expiry.day, tzinfo=UTC)


def _subject(ctx: Context) -> str:
    cert = getattr(ctx.signer, "signing_cert", None)
    return cert.subject.human_friendly if cert is not None else ""
