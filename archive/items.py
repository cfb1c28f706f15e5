"""Archive items (归档件) as a caller may reach them: by 档号 within the caller's branches, under a lending grant,
their rendition, and its verification. Shared by the API and the web UI, so both answer alike (404 outside the
branches, 410 for a destroyed item) and both register the same access events.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from archive import access, authorization, images
from archive.access import record_access
from archive.catalogue.models import ArchiveItem
from archive.context import Context
from archive.errors import NotFound
from archive.permissions import Permission, Principal
from archive.reading import PageRead, not_destroyed
from archive.retention import lending
from signing.fixity import Digests

if TYPE_CHECKING:
    from signing.validate import VerificationReport


def find_item(session: Session, principal: Principal, archival_code: str) -> ArchiveItem:
    """The item; 404 also when it belongs to a branch the caller may not see (existence must not leak)."""
    item = session.scalar(select(ArchiveItem).where(ArchiveItem.archival_code == archival_code))
    if item is None or not principal.sees_branch(item.case.branch):
        raise NotFound(f"档号 {archival_code} 不存在", code="item_not_found", detail={"archival_code": archival_code})
    return item


def granted_item(session: Session, principal: Principal, archival_code: str, what: str, permission: Permission,
                 ctx: Context) -> tuple[ArchiveItem, int | None]:
    """The item, and the id of the lending grant the caller reads it under (None: by role and branch)."""
    item = session.scalar(select(ArchiveItem).where(ArchiveItem.archival_code == archival_code))
    if item is None:  # without the permission: 403 before saying whether it exists
        authorization.require(session, principal, permission, target_type="item", target_id=archival_code,
                              detail={"what": what})
        raise NotFound(f"档号 {archival_code} 不存在", code="item_not_found", detail={"archival_code": archival_code})
    return item, lending.authorize_read(session, principal, item, what, permission, ctx.zone)


def rendition_key(item: ArchiveItem) -> str:
    """Where the item's signed PDF/A is stored; 410 for a destroyed item, 404 for one without a rendition."""
    not_destroyed(item)
    if not item.rendition_key:
        raise NotFound(f"档案 {item.archival_code} 没有归档 PDF", code="rendition_not_found",
                       detail={"archival_code": item.archival_code})
    return item.rendition_key


def verify(ctx: Context, session: Session, principal: Principal, archival_code: str,
           purpose: str | None) -> tuple[ArchiveItem, VerificationReport]:
    """Verify the item's rendition afresh (signature, chain, PDF/A, fixity against the catalogue's digests) and
    register the read (what=verification)."""
    from signing.certificates import load_trust_roots
    from signing.validate import verify_pdf

    item = find_item(session, principal, archival_code)
    with ctx.store.get(rendition_key(item)) as f:
        data = f.read()
    report = verify_pdf(data, load_trust_roots(ctx.settings.pki_path),
                        Digests(item.rendition_sha256 or "", item.rendition_sm3 or "", len(data)))
    record_access(session, principal, item.case, "verification", purpose, ok=report.ok)
    return item, report


def long_term(ctx: Context, session: Session, item: ArchiveItem, at: datetime | None = None) -> dict[str, Any]:
    """The offline long-term verification of the item's newest rendition at ``at`` (default now): per layer, the
    one-line summary, the time-stamp chain, and every version of the rendition (archive.ltv)."""
    from archive.ltv import versions
    from signing.certificates import load_trust_roots
    from signing.ltv_verify import verify_ltv

    with ctx.store.get(rendition_key(item)) as f:
        data = f.read()
    report = verify_ltv(data, load_trust_roots(ctx.settings.pki_path), at,
                        frozenset(ctx.settings.ltv_weak_algorithms))
    return {**report.to_dict(), "versions": [
        {"version": v.version, "kind": v.kind, "level": v.level, "sha256": v.sha256, "sm3": v.sm3,
         "created_at": v.created_at.isoformat(),
         "timestamp_expiry": v.timestamp_expiry.isoformat() if v.timestamp_expiry else None}
        for v in versions(session, item.id)]}


def read_rendition_page(ctx: Context, session: Session, principal: Principal, archival_code: str, page: int,
                        width: int, purpose: str | None) -> PageRead:
    """Page ``page`` of the item's signed PDF/A at ``width`` pixels, read by role and branch or under a grant,
    watermarked and registered (what=page) exactly as a document's page (:func:`read_page`)."""
    item, grant = granted_item(session, principal, archival_code, "page", Permission.IMAGE_READ, ctx)
    key = rendition_key(item)
    marked = access.watermarked(principal, ctx.settings) or grant is not None
    image = images.rendition_page_image(ctx, key, item.rendition_sha256 or "", page, width)
    if marked:
        now = datetime.now(UTC)
        image = images.watermark(image, "jpeg", images.watermark_text(principal.name, now.astimezone(ctx.zone)))
    case = item.case
    case.item  # noqa: B018 - loaded before the commit: the access writer reads it after
    session.commit()  # as read_page: the access event is group-committed
    ctx.access_writer.write(principal, case, "page", purpose, rendition=True, page=page, width=width,
                           watermark=marked or None, grant=grant)
    return PageRead(image, marked)
