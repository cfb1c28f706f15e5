"""归档件 (an archive item by its 档号): a page viewer for the signed rendition and the originals, the metadata in
GB/T 18894 terms, the last verification with 重新核验, events, 四性检测 reports, holds, lending grants, downloads.

Everything is read through the API's own domain functions, so the same refusals apply (404 outside the branches,
a lending grant where role or branch would not do) and the same access events (利用登记) are written: the page
itself (what=data), each page image (what=page), 重新核验 (what=verification), each download with the purpose the
person gives. A view does not re-verify the signature (that reads and checks the whole PDF): it shows the last
verification and offers 重新核验. Included by the filing pages' router: filing is where people come from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from archive import access, images, items, reading
from archive.access import purpose_of, record_access
from archive.api.deps import UnitOfWork, context, context_of, sqlite_turn
from archive.api.files import file_response, rendition_response
from archive.api.params import Id
from archive.audit_actions import ACTIONS
from archive.catalogue.models import ArchiveItem, AuditEvent, Document, Hold, HoldItem, LendingItem, LendingRequest
from archive.checks import reports
from archive.classification import RetentionCode, Trigger
from archive.context import Context
from archive.errors import InvalidInput, NotFound
from archive.permissions import Permission, Principal
from archive.retention import lending
from archive.web.deps import person
from archive.web.render import render

router = APIRouter(prefix="/items")
PURPOSE = "档案查阅"  # what the access register says page views were for
VERIFY_PURPOSE = "档案核验"
VIEW_WIDTH = 1000  # the page image without script; app.js asks for the viewer's own width
THUMB_WIDTH = 120
MAX_THUMBS = 40  # of a long document, the first pages in the strip (the pager reaches the rest)
WIDTHS = (400, 600, 800, 1000, 1200, 1600, 2000)
EVENTS = 30
CHECK_NAMES = {"readable": "可读性", "signature_present": "电子签名", "pdfa": "PDF/A 格式",
               "fixity": "固定性（摘要比对）",
               "signature_intact": "签名完整性", "signature_valid": "签名有效性", "certificate_trusted": "证书链",
               "signing_time": "签章时间", "timestamp": "时间戳", "coverage": "签名覆盖范围",
               "contents_padding": "签名容器", "signature_container": "签名结构"}
WHAT_NAMES = {"data": "查阅著录信息", "page": "查看页面", "original": "下载原件", "rendition": "下载归档 PDF",
              "verification": "核验", "package": "下载封装包"}
PURPOSES = ("业务复核", "审计", "司法协查", "本人查询", "档案核验")  # offered; any other text may be typed
PurposeQ = Annotated[str, Query(max_length=1000)]


@dataclass(frozen=True)
class ItemFacts:
    """What a person reads about an item's retention and signature, in words."""

    retention: str  # 保管期限 in force, e.g. 定期30年
    filed_retention: str  # the one in the 档号, if different
    trigger: str  # 起算事件, e.g. 业务办结
    signature: str  # PAdES B-T（带时间戳）


def facts(ctx: Context, item: ArchiveItem) -> ItemFacts:
    trigger = ctx.schedule.triggers.get(Trigger(item.trigger)) if item.trigger in Trigger.__members__ else None
    level = str((item.signature or {}).get("level") or "")
    signature = {"B-T": "PAdES B-T（带可信时间戳）", "B-B": "PAdES B-B（无时间戳）"}.get(level, level or "无签章")
    return ItemFacts(RetentionCode(item.effective_retention).label, RetentionCode(item.retention_code).label,
                     trigger.name if trigger else item.trigger, signature)


@dataclass(frozen=True)
class Viewing:
    """What the viewer shows: the rendition (doc None) or one original, one page of it."""

    doc: Document | None
    page: int
    pages: int
    renderable: bool

    def src(self, code: str, page: int, width: int) -> str:
        if self.doc is None:
            return f"/ui/items/{code}/pages/{page}?w={width}"
        return f"/ui/documents/{self.doc.id}/pages/{page}?w={width}"


def _viewing(ctx: Context, item: ArchiveItem, docs: list[Document], doc_id: int | None, page: int) -> Viewing:
    doc = next((d for d in docs if d.id == doc_id), None) if doc_id else None
    if doc_id and doc is None:
        raise NotFound(f"该档案没有材料 {doc_id}", code="document_not_found", detail={"document": doc_id})
    if doc is not None:
        pages, renderable = max(doc.page_count or 1, 1), doc.media_type != "application/ofd"
    elif item.rendition_key and item.status != "destroyed":
        pages, renderable = images.rendition_pages(ctx, item.rendition_key, item.rendition_sha256 or ""), True
    else:
        pages, renderable = 0, False
    return Viewing(doc, min(max(page, 1), max(pages, 1)), pages, renderable)


def last_verification(db: Session, code: str) -> dict[str, Any] | None:
    """The latest 重新核验 of the item (an access event what=verification): when, by whom, intact or not."""
    rows = db.execute(select(AuditEvent.at, AuditEvent.actor, AuditEvent.detail)
                      .where(AuditEvent.target_id == code, AuditEvent.action == access.ACTION)
                      .order_by(AuditEvent.seq.desc()).limit(50))
    return next(({"at": at, "actor": actor, "ok": bool(d.get("ok"))} for at, actor, d in rows
                 if (d or {}).get("what") == "verification"), None)


def _grants(db: Session, item: ArchiveItem) -> list[LendingRequest]:
    return list(db.scalars(select(LendingRequest).join(LendingItem, LendingItem.request_id == LendingRequest.id)
                           .where(LendingItem.item_id == item.id).order_by(LendingRequest.id.desc()).limit(20)))


def _holds(db: Session, item: ArchiveItem) -> list[Hold]:
    return list(db.scalars(select(Hold).join(HoldItem, HoldItem.hold_id == Hold.id)
                           .where(HoldItem.item_id == item.id).order_by(Hold.id.desc()).limit(20)))


def _purpose(raw: str) -> str:
    """The 利用目的 a download asks for: required, at most 200 characters."""
    text = purpose_of(raw)
    if not text:
        raise InvalidInput("请填写利用目的（记入利用登记）后再下载", code="purpose_required",
                           detail={"field": "purpose"})
    return text


@router.get("/{archival_code}")
def item_page(archival_code: str, request: Request, doc: Annotated[int | None, Query(ge=1, le=2**31)] = None,
              page: Annotated[int, Query(ge=1, le=100_000)] = 1, ctx: Context = Depends(context),
              db: Session = UnitOfWork, principal: Principal = Depends(person)) -> Response:
    """The item's page (by role and branch, or under a lending grant); the view is registered (what=data)."""
    item, grant = items.granted_item(db, principal, archival_code, "data", Permission.ITEM_READ, ctx)
    case = item.case
    docs = case.active_documents if item.status != "destroyed" else []
    viewing = _viewing(ctx, item, docs, doc, page)
    checks = reports.reports_of_item(db, item.id)
    values: dict[str, Any] = dict(
        item=item, case=case, docs=docs, viewing=viewing, facts=facts(ctx, item), check_names=CHECK_NAMES,
        schedule=ctx.schedule, full_pii=principal.can(Permission.PII_READ), checks=checks[-5:][::-1],
        latest_check=checks[-1] if checks else None, verified=last_verification(db, archival_code),
        events=access.case_events(db, case, EVENTS, newest=True), holds=_holds(db, item),
        grants=_grants(db, item), grant=grant, lending_modes=lending.MODES, lending_states=lending.STATES,
        lending_state=lending.state, report_outcomes=reports.REPORT_OUTCOME_NAMES, stages=reports.STAGE_NAMES,
        what_names=WHAT_NAMES, action_names=ACTIONS, purposes=PURPOSES, view_width=VIEW_WIDTH, thumb_width=THUMB_WIDTH,
        max_thumbs=MAX_THUMBS, widths=WIDTHS, watermarked=access.watermarked(principal, ctx.settings) or bool(grant),
        can_images=principal.can(Permission.IMAGE_READ) or grant is not None,
        can_download=principal.can(Permission.FILE_READ) or bool(grant and lending.active_grant(
            db, principal, item.id, "rendition")),
        can_originals=principal.can(Permission.FILE_READ) or bool(grant and lending.active_grant(
            db, principal, item.id, "original")),
        can_verify=principal.can(Permission.ITEM_READ), report=None)
    if request.headers.get("HX-Target") == "viewer":  # paging in the viewer: its page images register each read
        return render(request, "partials/item_viewer.html", **values)
    record_access(db, principal, case, "data", PURPOSE, grant=grant)
    return render(request, "item.html", **values)


@router.post("/{archival_code}/verify")
def verify(archival_code: str, request: Request, ctx: Context = Depends(context), db: Session = UnitOfWork,
           principal: Principal = Depends(person)) -> Response:
    """重新核验: signature, chain, time stamp, PDF/A, digests, afresh (archive.items.verify, what=verification)."""
    item, report = items.verify(ctx, db, principal, archival_code, VERIFY_PURPOSE)
    db.flush()
    return render(request, "partials/item_verification.html", item=item, report=report, check_names=CHECK_NAMES,
                  latest_check=None, verified=last_verification(db, archival_code), can_verify=True)


@router.get("/{archival_code}/pages/{page}")
def rendition_page(archival_code: str, request: Request, page: Annotated[int, Path(ge=1, le=100_000)],
                   w: Annotated[int, Query(ge=16, le=2000)] = VIEW_WIDTH,
                   _turn: None = Depends(sqlite_turn, scope="function"), db: Session = UnitOfWork,
                   principal: Principal = Depends(person)) -> Response:
    """A page of the signed PDF/A as an image (watermarked where configured or under a grant; what=page)."""
    read = items.read_rendition_page(context_of(request), db, principal, archival_code, page, w, PURPOSE)
    cache = "private, no-store" if read.watermarked else "private, max-age=86400"
    return Response(read.image.data, media_type=read.image.media_type,
                    headers={"ETag": read.image.etag, "Cache-Control": cache, "X-Content-Type-Options": "nosniff"})


@router.get("/{archival_code}/rendition.pdf")
def rendition(archival_code: str, request: Request, purpose: PurposeQ = "", ctx: Context = Depends(context),
              db: Session = UnitOfWork, principal: Principal = Depends(person)) -> Response:
    """The signed PDF/A (with 下载档案文件, or under a lending grant), its read registered with the purpose."""
    return rendition_response(ctx, request, db, principal, archival_code, _purpose(purpose))


@router.get("/{archival_code}/documents/{document_id}/original")
def original(archival_code: str, document_id: Id, request: Request, purpose: PurposeQ = "",
             ctx: Context = Depends(context), db: Session = UnitOfWork,
             principal: Principal = Depends(person)) -> Response:
    """An original as received (with 下载档案文件, or under a download grant), registered with the purpose."""
    why = _purpose(purpose)
    doc, grant = reading.granted_document(db, principal, document_id, "original", Permission.FILE_READ, ctx)
    if doc.case.item is None or doc.case.item.archival_code != archival_code:
        raise NotFound(f"材料 {document_id} 不存在", code="document_not_found", detail={"document": document_id})
    response = file_response(ctx, request, doc.original_key, doc.size, doc.sha256, doc.media_type, doc.filename)
    record_access(db, principal, doc.case, "original", why, document=doc.id, range=request.headers.get("range"),
                  grant=grant)
    return response
