"""Reading a case's documents: who may (role and branch, or a lending grant on its item), and a page image as a
person or a business system reads it, with its watermark and its 利用登记.

The API (GET /api/v1/documents/{id}/pages/{n}) and the web UI (thumbnails, the page viewer) read pages here, so
both answer the same refusals and register the same access events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from archive import access, authorization, images
from archive.catalogue.models import ArchiveItem, Case, Document
from archive.context import Context
from archive.errors import Gone, NotFound
from archive.permissions import Permission, Principal
from archive.retention import lending


def not_destroyed(item: ArchiveItem | None) -> None:
    if item is not None and item.status == "destroyed":
        raise Gone(f"档案 {item.archival_code} 已按销毁清册销毁，原件与归档 PDF 不再保存；目录记录仍可查询",
                   code="item_destroyed", detail={"archival_code": item.archival_code})


def _load(session: Session, document_id: int) -> Document | None:
    return session.scalar(select(Document).where(Document.id == document_id)
                          .options(joinedload(Document.case).joinedload(Case.item)))


def _visible(doc: Document | None, principal: Principal, document_id: int) -> Document:
    """The document, 404 also when its case is in a branch the caller may not see; 410 once destroyed."""
    if doc is None or not principal.sees_branch(doc.case.branch):
        raise NotFound(f"材料 {document_id} 不存在", code="document_not_found", detail={"document": document_id})
    not_destroyed(doc.case.item)
    return doc


def find_document(session: Session, principal: Principal, document_id: int) -> Document:
    """The document, 404 also when its case is in a branch the caller may not see."""
    return _visible(_load(session, document_id), principal, document_id)


def granted_document(session: Session, principal: Principal, document_id: int, what: str, permission: Permission,
                     ctx: Context) -> tuple[Document, int | None]:
    """The document, and the id of the lending grant on its item the caller reads it under, if any."""
    doc = _load(session, document_id)  # once: every thumbnail of a case page comes through here
    if doc is None or doc.case.item is None:
        authorization.require(session, principal, permission, target_type="document", target_id=document_id,
                              detail={"what": what})
        return _visible(doc, principal, document_id), None
    try:
        grant = lending.authorize_read(session, principal, doc.case.item, what, permission, ctx.zone)
    except NotFound:
        raise NotFound(f"材料 {document_id} 不存在", code="document_not_found",
                       detail={"document": document_id}) from None
    not_destroyed(doc.case.item)
    return doc, grant


@dataclass(frozen=True)
class PageRead:
    image: images.PageImage
    watermarked: bool  # drawn for this caller and time: never cached by the browser


def read_page(ctx: Context, session: Session, principal: Principal, document_id: int, page: int, width: int,
              fmt: str, purpose: str | None) -> PageRead:
    """Page ``page`` of the document at ``width`` pixels, watermarked for clients so configured and for reads
    under a grant; the read of a filed case's page is registered (access.read, what=page) before it is answered.

    Ends the session's transaction: access events of page reads are group-committed (archive.access.AccessWriter).
    """
    doc, grant = granted_document(session, principal, document_id, "page", Permission.IMAGE_READ, ctx)
    images.check_request(doc, page, width, fmt)
    marked = access.watermarked(principal, ctx.settings) or grant is not None  # 利用 under a grant: user + time
    image = images.page_image(ctx, doc, page, width, fmt)
    if marked:
        now = datetime.now(UTC)
        image = images.watermark(image, fmt, images.watermark_text(principal.name, now.astimezone(ctx.zone)))
    session.commit()  # end the request's own transaction before the access event is group-committed
    ctx.access_writer.write(principal, doc.case, "page", purpose, document=doc.id, page=page, width=width,
                           watermark=marked or None, grant=grant)
    return PageRead(image, marked)
