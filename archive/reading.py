"""Reading a case's documents: who may (role and branch, or a lending grant on its item), and a page image as a
person or a business system reads it, with its watermark and its 利用登记.

The API (GET /api/v1/documents/{id}/pages/{n}) and the web UI (thumbnails, the page viewer) read pages here, so
both answer the same refusals and register the same access events.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from archive import access, authorization, images
from archive.catalogue.models import ArchiveItem, Case, Document
from archive.context import Context
from archive.errors import Gone, NotFound
from archive.memo import Recent
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


def _plainly_readable(ctx: Context, principal: Principal, document_id: int) -> tuple[Document, int | None] | None:
    """The document and grant when the caller may plainly read its pages (by a running grant, or by permission and
    branch, not destroyed); None for every other case, which :func:`granted_document` then answers."""
    with ctx.catalogue.reading() as rs:
        doc = _load(rs, document_id)
        if doc is None:
            return None
        item = doc.case.item
        grant = lending.granted_id(rs, principal, item.id, "page") if item is not None else None
        if item is not None and item.status == lending.DESTROYED:
            return None
        if grant is None and not (principal.can(Permission.IMAGE_READ) and principal.sees_branch(doc.case.branch)):
            return None
        rs.expunge_all()  # kept loaded for the access writer once this read-only transaction ends
        if item is not None:
            filed_documents.put(document_id, doc)
        return doc, grant


FILED_DOCUMENT_SECONDS = 5.0
# A filed document as a page read last found it (case and item loaded, detached): a filed document changes only
# when destroyed, and destruction forgets it (archive.retention.destruction), at once in this process.
filed_documents: Recent[int, Document] = Recent(FILED_DOCUMENT_SECONDS)


def quick_page_read(ctx: Context, principal: Principal, document_id: int, page: int, width: int, fmt: str,
                    purpose: str | None) -> tuple[PageRead, Future[None] | None] | None:
    """:func:`start_page_read` from memory alone, without blocking (on the event loop): a filed document read
    moments ago, read by permission and branch, its page in the memory cache, no watermark. None when anything is
    not in memory or the answer is not a plain yes; :func:`start_page_read` then decides in a worker thread."""
    doc = filed_documents.get(document_id)
    if doc is None or doc.case.item is None or access.watermarked(principal, ctx.settings):
        return None
    if principal.kind == "user":
        known, grant = lending.remembered_grant(principal, doc.case.item.id, "page")
        if not known or grant is not None:  # under a grant: watermarked
            return None
    if not (principal.can(Permission.IMAGE_READ) and principal.sees_branch(doc.case.branch)):
        return None
    images.check_request(doc, page, width, fmt)
    image = images.remembered(doc, page, width, fmt)
    if image is None:
        return None
    registered = ctx.access_writer.submit(principal, doc.case, "page", purpose, document=doc.id, page=page,
                                          width=width)
    return PageRead(image, False), registered


def _decided(ctx: Context, session: Session | None, principal: Principal, document_id: int
             ) -> tuple[Document, int | None]:
    """:func:`granted_document` for a page, in ``session`` or (None) in a transaction of its own."""
    if session is not None:
        return granted_document(session, principal, document_id, "page", Permission.IMAGE_READ, ctx)
    with ctx.catalogue.session() as own:
        return granted_document(own, principal, document_id, "page", Permission.IMAGE_READ, ctx)


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
    read, registered = start_page_read(ctx, session, principal, document_id, page, width, fmt, purpose)
    ctx.access_writer.wait(registered)
    return read


def start_page_read(ctx: Context, session: Session | None, principal: Principal, document_id: int, page: int,
                    width: int, fmt: str, purpose: str | None) -> tuple[PageRead, Future[None] | None]:
    """:func:`read_page` up to handing its access event to the writer: the caller answers only once the returned
    future is done (``AccessWriter.registered`` awaits it on the event loop). ``session``: the request's unit of
    work, ended here; None: a refusal is decided and audited in a transaction of its own.

    A read that passes is decided in a read-only transaction (on SQLite it takes no write lock, so concurrent page
    reads neither queue nor wait on each other); any other answer comes from :func:`granted_document`.
    """
    doc, grant = _plainly_readable(ctx, principal, document_id) or _decided(ctx, session, principal, document_id)
    images.check_request(doc, page, width, fmt)
    marked = access.watermarked(principal, ctx.settings) or grant is not None  # 利用 under a grant: user + time
    image = images.page_image(ctx, doc, page, width, fmt)
    if marked:
        now = datetime.now(UTC)
        image = images.watermark(image, fmt, images.watermark_text(principal.name, now.astimezone(ctx.zone)))
    if session is not None:
        session.commit()  # end the request's own transaction before the access event is group-committed
    registered = ctx.access_writer.submit(principal, doc.case, "page", purpose, document=doc.id, page=page,
                                          width=width, watermark=marked or None, grant=grant)
    return PageRead(image, marked), registered
