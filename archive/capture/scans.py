"""Batch scans (批量扫描): a stack is stored as received, then split at its cover sheets into parts,
and at material separator sheets (材料分隔页) into parts of one material type each.

A batch belongs to the branch of the person who uploaded it: its pages (the unassigned ones above all) are
personal data of that branch's customers, so a clerk sees her branch's batches only; another branch's batch
or part is answered exactly like one that does not exist (404).

Processing is a resumable job. Each page's outcome is committed as it goes (``pages_done`` and the
sheets found), so a crash resumes at the next page; parts are keyed by (batch, first page) and
their PDFs are built deterministically, so a re-run attaches nothing twice.
"""

from __future__ import annotations

import io
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, func, select, text, true
from sqlalchemy.orm import Session

from archive import audit, metrics
from archive.audit import Actor
from archive.capture import documents
from archive.capture.cases import get_case
from archive.capture.documents import Received
from archive.capture.separation import Mark, Stack, open_stack, read_mark, split
from archive.capture.sniff import PDF, TIFF, sniff
from archive.catalogue.models import Case, ScanBatch, ScanPart
from archive.catalogue.types import utcnow
from archive.context import Context
from archive.errors import ERRORS, SYSTEM_KINDS, Conflict, InvalidInput, NotFound
from archive.permissions import Principal
from signing.fixity import CHUNK, digest_bytes
from storage.base import content_key

log = logging.getLogger(__name__)


def receive(ctx: Context, session: Session, principal: Principal, received: Received,
            material_type: str = "other") -> ScanBatch:
    """Store the stack unchanged and queue it; the caller commits, then runs :func:`process`."""
    from signing.rendition import SourceDocument, open_source_pdf

    media_type = sniff(received.data[:2048], io.BytesIO(received.data), received.filename)
    if media_type not in (PDF, TIFF):
        raise InvalidInput("批量扫描只接受多页 PDF 或 TIFF 文件", code="scan_format_unsupported",
                           detail={"filename": received.filename})
    ctx.schedule.material_name(material_type)
    with open_stack(received.data, media_type, ctx.settings.scan_raster_dpi, ctx.settings.max_pixels) as stack:
        pages = stack.pages
    if pages > ctx.settings.scan_page_cap:
        raise InvalidInput(f"扫描文件共 {pages} 页，超过单批上限 {ctx.settings.scan_page_cap} 页，请分批扫描",
                           code="scan_too_many_pages", detail={"pages": pages, "cap": ctx.settings.scan_page_cap})
    if media_type == PDF:  # the rules of a single upload: polyglot, damage, every family of active content
        open_source_pdf(received.data, SourceDocument(received.filename, PDF)).close()
    key = content_key("originals", received.sha256)
    ctx.store.put(key, io.BytesIO(received.data), size=len(received.data), sha256=received.sha256,
                  sm3=received.sm3, sm3_computed=True)
    metrics.uploaded("scan", len(received.data))
    batch = ScanBatch(filename=received.filename, original_key=key, sha256=received.sha256, media_type=media_type,
                      pages_total=pages, material_type=material_type, covers=[], branch=branch_of(principal),
                      created_by=f"{principal.kind}:{principal.name}")
    session.add(batch)
    session.flush()
    audit.record(session, Actor.of(principal), "scan.receive", target_type="scan_batch",
                 target_id=batch.id, detail={"pages": pages, "sha256": received.sha256})
    return batch


def branch_of(principal: Principal) -> str | None:
    """The branch a person's batch belongs to: her one branch; None for someone who sees every branch. A caller
    of several branches (an API client) gets the first of them, so that it still sees its own batch."""
    return None if principal.branches is None else min(principal.branches, default=None)


def visible(principal: Principal) -> ColumnElement[bool]:
    """The batches ``principal`` may see: all for someone who sees every branch, else those of her branches
    (a batch without a branch may hold any branch's pages: only the former see it)."""
    return true() if principal.branches is None else ScanBatch.branch.in_(sorted(principal.branches))


def get_batch(session: Session, principal: Principal, batch_id: int) -> ScanBatch:
    batch = session.scalar(select(ScanBatch).where(ScanBatch.id == batch_id, visible(principal)))
    if batch is None:
        raise NotFound(f"扫描批次 {batch_id} 不存在", code="scan_batch_not_found", detail={"batch": batch_id})
    return batch


def recent_batches(session: Session, principal: Principal, limit: int, offset: int = 0
                   ) -> tuple[int, list[ScanBatch]]:
    """How many batches the person may see, and one page of them, newest first."""
    total = session.scalar(select(func.count()).select_from(ScanBatch).where(visible(principal))) or 0
    rows = session.scalars(select(ScanBatch).where(visible(principal))
                           .order_by(ScanBatch.created_at.desc(), ScanBatch.id.desc()).limit(limit).offset(offset))
    return total, list(rows)


def get_part(session: Session, principal: Principal, part_id: int) -> ScanPart:
    row = session.scalar(select(ScanPart).join(ScanPart.batch).where(ScanPart.id == part_id, visible(principal)))
    if row is None:
        raise NotFound(f"待分配扫描页 {part_id} 不存在", code="scan_part_not_found", detail={"part": part_id})
    return row


def unassigned(session: Session, principal: Principal, limit: int, offset: int = 0) -> tuple[int, list[ScanPart]]:
    """How many parts wait for a clerk (待分配) in the batches the person may see, and one page of them, oldest
    first."""
    where = (ScanPart.status == "unassigned", visible(principal))
    total = session.scalar(select(func.count()).select_from(ScanPart).join(ScanPart.batch).where(*where)) or 0
    rows = session.scalars(select(ScanPart).join(ScanPart.batch).where(*where).order_by(ScanPart.id)
                           .limit(limit).offset(offset))
    return total, list(rows)


def unassigned_pages(session: Session, principal: Principal) -> int:
    """How many scanned pages wait for a clerk (待分配) in the batches the person may see."""
    pages = func.coalesce(func.sum(ScanPart.last_page - ScanPart.first_page + 1), 0)
    return session.scalar(select(pages).join(ScanPart.batch)
                          .where(ScanPart.status == "unassigned", visible(principal))) or 0


SCAN_LOCK = 0x5343414E  # "SCAN": first key of the per-batch advisory lock (the batch id is the second)


@contextmanager
def _claimed(ctx: Context, batch_id: int) -> Iterator[bool]:
    """Whether this process may work on the batch now: on PostgreSQL a session advisory lock per batch, held while
    it works, so an upload's processing and the resumption by every starting API process (``--workers N``, other
    hosts) never run one batch twice at once; a crash releases it with the connection. SQLite runs one process."""
    engine = ctx.catalogue.engine
    if engine.dialect.name != "postgresql":
        yield True
        return
    with engine.connect() as conn:
        mine = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k, :id)"), {"k": SCAN_LOCK, "id": batch_id})
                    .scalar())
        conn.commit()
        if not mine:
            yield False
            return
        try:
            yield True
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k, :id)"), {"k": SCAN_LOCK, "id": batch_id})
            conn.commit()


def process(ctx: Context, batch_id: int) -> None:
    """Read every remaining page, then split and attach. Safe to run again after a crash; a batch another process
    is working on is left to it."""
    with _claimed(ctx, batch_id) as mine:
        if not mine:
            log.info("scan batch %s is being processed by another process", batch_id)
            return
        _process(ctx, batch_id)


def _process(ctx: Context, batch_id: int) -> None:
    with ctx.catalogue.session() as s:
        batch = s.get(ScanBatch, batch_id)
        if batch is None or batch.status == "done":
            return
        batch.status = "running"
        key, media_type, start = batch.original_key, batch.media_type, batch.pages_done
        covers = list(batch.covers or [])
    try:
        with stored_stack(ctx, key, media_type) as stack:
            for number in range(start + 1, stack.pages + 1):
                mark = read_mark(stack.render(number))
                with ctx.catalogue.session() as s:
                    batch = s.get(ScanBatch, batch_id)
                    assert batch is not None
                    if mark:
                        covers.append(sheet_entry(number, mark))
                        batch.covers = list(covers)
                    batch.pages_done = number
            _attach_parts(ctx, batch_id, stack, covers)
    except ERRORS as exc:
        with ctx.catalogue.session() as s:
            batch = s.get(ScanBatch, batch_id)
            assert batch is not None
            batch.status, batch.error, batch.finished_at = "failed", exc.to_dict(), utcnow()
            audit.record(s, Actor.system("scanner"), "scan.process", target_type="scan_batch", target_id=batch_id,
                         outcome="failure", detail={"code": exc.code})


def sheet_entry(page: int, mark: Mark) -> list[Any]:
    """How a sheet is kept in ``ScanBatch.covers``: [page, serial] for a cover, [page, serial, material type]
    for a separator."""
    return [page, mark.serial] if mark.material_type is None else [page, mark.serial, mark.material_type]


def sheet_marks(covers: list[list[Any]]) -> list[tuple[int, Mark]]:
    return [(int(c[0]), Mark(str(c[1]), str(c[2]) if len(c) > 2 else None)) for c in covers]


def _attach_parts(ctx: Context, batch_id: int, stack: Any, covers: list[list[Any]]) -> None:
    for part in split(stack.pages, sheet_marks(covers)):
        with ctx.catalogue.session() as s:
            batch = s.get(ScanBatch, batch_id)
            assert batch is not None
            row = s.scalar(select(ScanPart).where(ScanPart.batch_id == batch_id,
                                                  ScanPart.first_page == part.first_page))
            if row is None:
                row = ScanPart(batch_id=batch_id, first_page=part.first_page, last_page=part.last_page,
                               serial=part.serial)
                s.add(row)
                s.flush()
            if row.status == "attached":
                continue
            if part.problem:
                row.reason = part.problem
                continue
            case = s.scalar(select(Case).where(Case.serial == part.serial)) if part.serial else None
            if case is None or case.status != "open":
                row.reason = ("before_first_cover" if part.serial is None else
                              "unknown_serial" if case is None else "case_not_open")
                continue
            try:
                with s.begin_nested():  # a refused part waits for a clerk; the rest of the stack goes on
                    _attach(ctx, s, row, case, stack, part.material_type or batch.material_type,
                            Actor.system("scanner"))
            except ERRORS as exc:  # e.g. a part over the page cap: it waits for a clerk
                if exc.kind in SYSTEM_KINDS:
                    raise
                log.info("scan batch %s part %s-%s refused: %s", batch_id, part.first_page, part.last_page, exc.code)
                row.reason = exc.code[:32]
    with ctx.catalogue.session() as s:
        batch = s.get(ScanBatch, batch_id)
        assert batch is not None
        batch.status, batch.finished_at = "done", utcnow()
        parts = batch.parts
        audit.record(s, Actor.system("scanner"), "scan.process", target_type="scan_batch", target_id=batch_id,
                     detail={"parts": len(parts), "unassigned": sum(p.status == "unassigned" for p in parts)})


def _attach(ctx: Context, s: Session, row: ScanPart, case: Case, stack: Any, material_type: str,
            actor: Actor) -> None:
    data = stack.extract(row.first_page, row.last_page)
    d = digest_bytes(data)
    name = f"scan-{row.batch_id}-p{row.first_page}-{row.last_page}.pdf"
    principal = Principal(actor.kind, 0, actor.name, frozenset())
    doc, _ = documents.attach(ctx, s, principal, case, Received(name, data, d.sha256, d.sm3), material_type,
                              origin={"scan_batch": row.batch_id, "pages": [row.first_page, row.last_page]})
    row.document_id, row.status, row.serial, row.reason = doc.id, "attached", case.serial, None


def assign(ctx: Context, session: Session, principal: Principal, part_id: int, serial: str,
           material_type: str) -> ScanPart:
    """A clerk attaches an unassigned part of a batch she may see to a case she may see (404 for either outside
    her branches, as if it did not exist)."""
    row = get_part(session, principal, part_id)
    if row.status != "unassigned":
        raise Conflict(f"扫描页 {part_id} 已经分配", code="scan_part_assigned")
    case = get_case(session, principal, serial)
    batch = row.batch
    with stored_stack(ctx, batch.original_key, batch.media_type) as stack:
        _attach(ctx, session, row, case, stack, material_type, Actor.of(principal))
    audit.record(session, Actor.of(principal), "scan.assign", target_type="case",
                 target_id=case.serial, detail={"part": part_id, "document_id": row.document_id})
    return row


@contextmanager
def stored_stack(ctx: Context, key: str, media_type: str) -> Iterator[Stack]:
    """The stored stack, copied chunk by chunk to a temporary file (bounded memory) and opened."""
    with tempfile.NamedTemporaryFile(suffix=".scan") as tmp:
        source = ctx.store.get(key)
        try:
            shutil.copyfileobj(source, tmp, CHUNK)
        finally:
            source.close()
        tmp.flush()
        with open_stack(Path(tmp.name), media_type, ctx.settings.scan_raster_dpi, ctx.settings.max_pixels) as stack:
            yield stack


def resume_all(ctx: Context) -> int:
    """Run every batch that a crash or restart left queued or running."""
    with ctx.catalogue.sessions() as s:
        ids = list(s.scalars(select(ScanBatch.id).where(ScanBatch.status.in_(["queued", "running"]))))
    for batch_id in ids:
        process(ctx, batch_id)
    return len(ids)
