"""Attaching documents (材料) to an open case: each original checked, then stored unchanged.

Order of a write: the object first (content-addressed, so a retry stores nothing twice), then the
catalogue row with its audit event. A crash in between leaves an unreferenced object for
`archive storage gc`, never a row without its object.
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, BinaryIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from archive import audit, indexing, metrics
from archive.audit import Actor
from archive.capture.cases import ensure_open
from archive.capture.inspect import check_readable, inspect
from archive.capture.separation import open_stack
from archive.capture.sniff import OFD, PDF, TIFF, sniff
from archive.catalogue.models import Case, Document
from archive.checks.security import ScanFailed
from archive.context import Context
from archive.dq import source as dq_source
from archive.errors import ERRORS, SYSTEM_KINDS, InvalidInput, NotFound, ServiceUnavailable, TooLarge
from archive.permissions import Principal
from signing.fixity import CHUNK, Hasher, digest_bytes
from storage.base import content_key

MAX_FILENAME = 255
MAX_FILES = 50  # files in one upload
DECODED = "decoded"  # Document.detail: its bytes were decoded (GD-3-4) and passed check_source at intake
MIN_REASON, MAX_REASON = 2, 500  # of a removal, as the API's RemoveIn
_JOINERS = {"\u200c", "\u200d"}  # zero-width (non-)joiners: part of ordinary emoji and Indic text


def _invisible(c: str) -> bool:
    """Control characters (NUL, newlines …), bidirectional overrides and other format characters, line
    separators and lone surrogates: nothing a clerk types, and what spoofs a name (``发票\u202efdp.exe``)."""
    kind = unicodedata.category(c)
    return kind in ("Cc", "Cs", "Zl", "Zp") or (kind == "Cf" and c not in _JOINERS)


def display_name(raw: str | None) -> str:
    """A file name safe to show back: its last path segment without invisible characters."""
    name = unicodedata.normalize("NFC", raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(c for c in name if not _invisible(c)).strip()[:MAX_FILENAME] or "未命名文件"


def clean_filename(raw: str | None) -> str:
    """The stored name of an upload: NFC, last path segment, at most 255 characters. A name carrying control
    or direction-override characters is refused (file_name_invalid), the same on every database."""
    name = unicodedata.normalize("NFC", raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    bad = sorted({c for c in name if _invisible(c)})
    if bad:
        shown = display_name(raw)
        codes = "、".join(f"U+{ord(c):04X}" for c in bad[:5])
        raise InvalidInput(f"文件名“{shown}”含有不可见的控制字符或文字方向控制符（{codes}），可能被用来伪装文件类型；"
                           "请把文件重命名后重新上传", code="file_name_invalid",
                           detail={"filename": shown, "characters": [f"U+{ord(c):04X}" for c in bad]})
    return name.strip()[:MAX_FILENAME] or "未命名文件"


def all_refused(refusals: list[tuple[str, str]], detail: Any) -> InvalidInput:
    """Every file of an upload was refused: the first reason in the message, each file's in ``detail``; too large
    when every file was over the size limit."""
    kind = "too_large" if all(code == "file_too_large" for code, _ in refusals) else "invalid"
    return InvalidInput(f"材料均未接收：{refusals[0][1]}", code="documents_refused", detail=detail, kind=kind)


@dataclass
class Received:
    """One uploaded file, read to the end once: its bytes (bounded by the size limit) and their digests, computed
    from ``data`` in this process (the store records the SM3 without computing it again)."""

    filename: str
    data: bytes
    sha256: str
    sm3: str

    @classmethod
    def read(cls, filename: str, stream: BinaryIO, max_bytes: int) -> Received:
        name = clean_filename(filename)
        hasher, buf = Hasher(), io.BytesIO()
        while chunk := stream.read(CHUNK):
            if hasher.size + len(chunk) > max_bytes:
                raise TooLarge(f"文件“{name}”超过大小上限 {max_bytes // 1024**2} MB，请压缩或分成多个文件提交",
                               code="file_too_large", detail={"filename": name, "max_bytes": max_bytes})
            hasher.update(chunk)
            buf.write(chunk)
        d = hasher.digests()
        return cls(name, buf.getvalue(), d.sha256, d.sm3)


def check_material(ctx: Context, case: Case, material_type: str) -> None:
    bt = ctx.schedule.business_type(case.business_type)
    ctx.schedule.material_name(material_type)
    if material_type not in bt.required + bt.optional:
        allowed = "、".join(f"{m}（{ctx.schedule.materials[m]}）" for m in bt.required + bt.optional)
        raise InvalidInput(f"材料类型 {material_type} 不属于{bt.name}业务；可用材料：{allowed}",
                           code="material_not_for_business_type",
                           detail={"field": "material_type", "value": material_type})


def attach(ctx: Context, session: Session, principal: Principal, case: Case, received: Received,
           material_type: str, *, replaces: Document | None = None,
           origin: dict[str, Any] | None = None) -> tuple[Document, bool]:
    """Check, store and catalogue one original. Returns (document, created); an identical re-upload is not new.

    ``origin`` says where a file made by the system came from (scan batch pages, a split document's
    pages); it goes into the document's ``detail`` and into the audit event.
    """
    from signing.rendition import SourceDocument, check_source

    ensure_open(case)
    check_material(ctx, case, material_type)
    media_type = sniff(received.data[:2048], io.BytesIO(received.data), received.filename)
    s = ctx.settings
    found = inspect(received.data, media_type, received.filename, max_pixels=s.max_pixels, min_dpi=s.min_dpi,
                    dpi_policy=s.dpi_policy, max_pages=s.max_pages)
    if media_type != OFD:  # what filing will do with this original, done now: refused here, not at close
        # An image is decoded once, by inspect: check_source takes a JPEG's word for it (a pass-through JPEG is not
        # decoded again) and GD-3-4 (check_readable, which decodes it again) has its answer (issue 17)
        found.page_count = check_source(SourceDocument(received.filename, media_type, data=received.data,
                                                       decoded=found.decoded), max_pixels=s.max_pixels,
                                        max_pages=s.max_pages)
        if not found.decoded:
            check_readable(received.data, media_type, received.filename)  # 四性检测 GD-3-4, as at filing
    # (an OFD's GD-3-4 check is check_ofd, which inspect has just run)
    check_viruses(ctx, received)
    if replaces is None:
        same = session.scalar(select(Document).where(
            Document.case_id == case.id, Document.sha256 == received.sha256,
            Document.material_type == material_type, Document.is_active))
        if same is not None:
            return same, False
    dq_values = {"dpi": found.dpi, "page_count": found.page_count, "material_type": material_type}
    dq_found = dq_source.check(ctx, session, "document", dq_values)  # a block rule refuses before storing
    key = content_key("originals", received.sha256)
    ctx.store.put(key, io.BytesIO(received.data), size=len(received.data), sha256=received.sha256,
                  sm3=received.sm3, sm3_computed=True)
    metrics.uploaded("document", len(received.data))
    if replaces is not None:
        sequence = replaces.sequence
    else:
        sequence = (session.scalar(select(func.max(Document.sequence)).where(Document.case_id == case.id)) or 0) + 1
    doc = Document(case_id=case.id, sequence=sequence, material_type=material_type, filename=received.filename,
                   original_key=key, sha256=received.sha256, sm3=received.sm3, size=len(received.data),
                   media_type=media_type, page_count=found.page_count, created_by=principal.name,
                   detail={**found.detail(), **({DECODED: True} if media_type != OFD else {}), **(origin or {})})
    session.add(doc)
    session.flush()
    dq_source.record(session, dq_found, object_type="document", object_key=str(doc.id), serial=case.serial,
                     branch=case.branch, key_values={**dq_values, "sequence": sequence})
    detail = {"document_id": doc.id, "material_type": material_type, "sha256": doc.sha256, "size": doc.size,
              **(origin or {})}
    if replaces is not None:
        replaces.status = "replaced"
        detail["replaces"] = replaces.id
    audit.record(session, Actor.of(principal),
                 "document.replace" if replaces is not None else "document.attach",
                 target_type="case", target_id=case.serial, detail=detail)
    indexing.enqueue(session, case.serial)
    return doc, True


def check_file_count(count: int) -> None:
    if count > MAX_FILES:
        raise InvalidInput(f"一次最多上传 {MAX_FILES} 个文件", code="too_many_files")


@dataclass(frozen=True)
class Upload:
    """One file of an upload as it arrives: its name as sent, its stream, the material it is for."""

    filename: str | None
    stream: BinaryIO
    material_type: str


@dataclass(frozen=True)
class FileOutcome:
    """What became of one uploaded file: its document (``created`` False when the same bytes were already there
    as that material) and any notice, or the refusal's code and message."""

    filename: str
    material_type: str
    document: Document | None = None
    created: bool = False
    notices: tuple[Notice, ...] = ()
    code: str | None = None
    message: str | None = None

    @property
    def accepted(self) -> bool:
        return self.document is not None


def attach_many(ctx: Context, session: Session, principal: Principal, case: Case,
                uploads: Sequence[Upload]) -> list[FileOutcome]:
    """Attach each file on its own: a refused file (its reason in its outcome) does not undo the others. A fault of
    the system (storage, virus scanner, catalogue) or a case that is no longer open ends the whole upload."""
    check_file_count(len(uploads))
    limit = ctx.settings.max_upload_mb * 1024 * 1024
    outcomes: list[FileOutcome] = []
    for upload in uploads:
        name = display_name(upload.filename)  # never echo control characters back
        try:
            received = Received.read(upload.filename or "", upload.stream, limit)
            with session.begin_nested():  # one refused file does not undo the others
                doc, created = attach(ctx, session, principal, case, received, upload.material_type)
            notice = duplicate_notice(ctx, session, doc)
            outcomes.append(FileOutcome(received.filename, upload.material_type, doc, created,
                                        (notice,) if notice else ()))
        except ERRORS as exc:
            if exc.kind in SYSTEM_KINDS or exc.code == "case_not_open":
                raise
            outcomes.append(FileOutcome(name, upload.material_type, code=exc.code, message=exc.message))
    return outcomes


def refusals(outcomes: Sequence[FileOutcome]) -> list[tuple[str, str]]:
    """(code, message) of each refused file."""
    return [(o.code or "", o.message or "") for o in outcomes if not o.accepted]


def check_viruses(ctx: Context, received: Received) -> None:
    """Scan with the configured ClamAV before anything is stored (四性检测 GD-4-2 scans again at filing, with the
    signatures of that day). No scanner configured: nothing to do here."""
    scanner = ctx.scanner
    if scanner is None:
        return
    try:
        findings = scanner.scan([(received.filename, received.data)])
    except ScanFailed as exc:  # fail closed: an unscanned file is not accepted
        raise ServiceUnavailable("病毒检查暂时无法进行，文件未保存；请稍后重试，或联系系统管理员检查杀毒服务",
                                 code="virus_scan_unavailable", detail={"reason": str(exc)}) from exc
    if findings:
        names = "、".join(sorted({f.signature for f in findings}))
        raise InvalidInput(f"文件“{received.filename}”检出病毒（{names}），未保存；"
                           "请勿再使用该文件，并告知安全保密管理员", code="virus_found",
                           detail={"filename": received.filename, "signatures": names})


def find_document(session: Session, case: Case, document_id: int) -> Document:
    doc = session.get(Document, document_id)
    if doc is None or doc.case_id != case.id or not doc.is_active:
        raise NotFound(f"业务 {case.serial} 中没有编号为 {document_id} 的有效材料", code="document_not_found",
                       detail={"document_id": document_id})
    return doc


def remove(session: Session, principal: Principal, case: Case, doc: Document, reason: str) -> None:
    """Take a document off an open case. The original object stays: originals are never deleted here."""
    ensure_open(case)
    if not MIN_REASON <= len(reason) <= MAX_REASON:
        raise InvalidInput(f"请说明撤下这份材料的理由（{MIN_REASON}-{MAX_REASON} 个字），理由记入审计日志",
                           code="removal_reason_required", detail={"field": "reason"})
    doc.status = "removed"
    audit.record(session, Actor.of(principal), "document.remove", target_type="case",
                 target_id=case.serial, detail={"document_id": doc.id, "reason": reason})
    indexing.enqueue(session, case.serial)


def same_content(session: Session, doc: Document) -> list[Document]:
    """The case's other active documents with the same bytes (same SHA-256)."""
    return list(session.scalars(select(Document).where(
        Document.case_id == doc.case_id, Document.sha256 == doc.sha256, Document.is_active,
        Document.id != doc.id).order_by(Document.sequence)))


@dataclass(frozen=True)
class Notice:
    """A warning about an accepted change: stable code, message for the clerk."""

    code: str
    message: str
    detail: dict[str, Any]


def duplicate_notice(ctx: Context, session: Session, doc: Document) -> Notice | None:
    """The same bytes are already in this case (usually as another material): accepted, but worth a look."""
    others = same_content(session, doc)
    if not others:
        return None
    names = "、".join(f"{ctx.schedule.materials.get(o.material_type, o.material_type)}（材料编号 {o.id}）"
                     for o in others)
    return Notice("duplicate_content",
                  f"“{doc.filename}”与本业务已有的{names}内容完全相同，已接收；请核对材料类型是否选对，"
                  "如是误传请撤下其中一份", {"document_id": doc.id, "same_as": [o.id for o in others]})


def retype(ctx: Context, session: Session, principal: Principal, case: Case, doc: Document,
           material_type: str) -> Document:
    """Say which material a document is (a batch scan arrives as ``other``). The original is untouched."""
    ensure_open(case)
    check_material(ctx, case, material_type)
    if doc.material_type == material_type:
        return doc
    before, doc.material_type = doc.material_type, material_type
    audit.record(session, Actor.of(principal), "document.retype", target_type="case",
                 target_id=case.serial, detail={"document_id": doc.id, "from": before, "to": material_type})
    indexing.enqueue(session, case.serial)
    return doc


@dataclass(frozen=True)
class PageRange:
    first_page: int
    last_page: int
    material_type: str


def split(ctx: Context, session: Session, principal: Principal, case: Case, doc: Document,
          ranges: Sequence[PageRange]) -> list[Document]:
    """Make one document per page range of a scanned PDF or TIFF, each typed as its material.

    Each range is a new stored object derived from the original (PDF pages copied unchanged, TIFF frames
    losslessly wrapped in PDF) whose ``detail.derived_from`` names the original and its pages. The original
    document keeps its object and row, with status ``split``.
    """
    ensure_open(case)
    if doc.media_type not in (PDF, TIFF):
        raise InvalidInput(f"材料“{doc.filename}”不是多页 PDF 或 TIFF 扫描件，不能拆分；如只需更改材料类型，请直接修改",
                           code="split_unsupported_format", detail={"document_id": doc.id})
    check_ranges(doc, ranges)
    ranges = sorted(ranges, key=lambda r: r.first_page)  # parts follow the pages
    for r in ranges:
        check_material(ctx, case, r.material_type)
    stem = doc.filename.rsplit(".", 1)[0][:MAX_FILENAME - 30]  # room for "-p<first>-<last>.pdf"
    made: list[Document] = []
    s = ctx.settings
    with open_stack(ctx.store.get(doc.original_key).read(), doc.media_type, s.scan_raster_dpi, s.max_pixels) as stack:
        for r in ranges:
            data = stack.extract(r.first_page, r.last_page)
            d = digest_bytes(data)
            origin = {"derived_from": {"document_id": doc.id, "sha256": doc.sha256,
                                       "pages": [r.first_page, r.last_page]}}
            part, _ = attach(ctx, session, principal, case,
                             Received(f"{stem}-p{r.first_page}-{r.last_page}.pdf", data, d.sha256, d.sm3),
                             r.material_type, origin=origin)
            made.append(part)
    doc.status = "split"
    doc.detail = {**(doc.detail or {}), "split_into": [m.id for m in made]}
    audit.record(session, Actor.of(principal), "document.split", target_type="case",
                 target_id=case.serial, detail={
                     "document_id": doc.id, "method": "derived_objects", "original_kept": doc.original_key,
                     "parts": [{"document_id": m.id, "material_type": r.material_type,
                                "pages": [r.first_page, r.last_page], "sha256": m.sha256}
                               for m, r in zip(made, ranges, strict=True)]})
    indexing.enqueue(session, case.serial)
    return made


def check_ranges(doc: Document, ranges: Sequence[PageRange]) -> None:
    """At least two ranges, each within the document, none overlapping, every page in one."""
    pages = doc.page_count
    if len(ranges) < 2:
        raise InvalidInput("拆分至少要分成两段页码；如只需更改材料类型，请直接修改材料类型", code="split_too_few_parts",
                           detail={"field": "parts"})
    for i, r in enumerate(ranges, 1):
        if not 1 <= r.first_page <= r.last_page <= pages:
            raise InvalidInput(f"第 {i} 段页码 {r.first_page}-{r.last_page} 无效：起始页不能大于结束页，"
                               f"且页码须在 1-{pages} 之间（材料“{doc.filename}”共 {pages} 页）",
                               code="split_range_invalid", detail={"field": f"parts.{i - 1}", "pages": pages})
    ordered = sorted(enumerate(ranges, 1), key=lambda pair: pair[1].first_page)
    for (i, a), (j, b) in pairwise(ordered):
        if b.first_page <= a.last_page:
            raise InvalidInput(f"第 {i} 段（{a.first_page}-{a.last_page} 页）与第 {j} 段（{b.first_page}-"
                               f"{b.last_page} 页）页码重叠；每一页只能属于一段",
                               code="split_ranges_overlap", detail={"field": "parts", "parts": [i - 1, j - 1]})
    covered = {p for r in ranges for p in range(r.first_page, r.last_page + 1)}
    left = [p for p in range(1, pages + 1) if p not in covered]
    if left:
        shown = "、".join(str(p) for p in left[:10]) + (" 等" if len(left) > 10 else "")
        raise InvalidInput(f"第 {shown} 页没有分到任何一段；每一页都要指定材料类型（共 {pages} 页）",
                           code="split_ranges_incomplete", detail={"field": "parts", "pages_left": left[:100]})


@dataclass(frozen=True)
class ChecklistEntry:
    material_type: str
    name: str
    required: bool
    documents: list[int]
    duplicates: list[tuple[int, int]] = field(default_factory=list)  # (document, document with the same bytes)

    @property
    def present(self) -> bool:
        return bool(self.documents)


def checklist(ctx: Context, case: Case) -> list[ChecklistEntry]:
    """Required and optional materials of the business type, with the active documents of each and any of
    them whose bytes are also in another active document of the case."""
    bt = ctx.schedule.business_type(case.business_type)
    active = case.active_documents
    by_type: dict[str, list[int]] = {}
    for d in active:
        by_type.setdefault(d.material_type, []).append(d.id)
    twins: dict[str, list[tuple[int, int]]] = {}
    for d in active:
        twins.setdefault(d.material_type, []).extend(
            (d.id, o.id) for o in active if o.id != d.id and o.sha256 == d.sha256)
    return [ChecklistEntry(m, ctx.schedule.materials[m], m in bt.required, by_type.get(m, []), twins.get(m, []))
            for m in (*bt.required, *bt.optional)]


def missing_materials(ctx: Context, case: Case) -> list[ChecklistEntry]:
    return [e for e in checklist(ctx, case) if e.required and not e.present]


def filing_order(ctx: Context, case: Case) -> list[Document]:
    """The active documents as the rendition lists them: in checklist order (required materials, then
    optional ones, as the schedule lists them), by sequence within a material; any material the business
    type no longer lists comes last."""
    bt = ctx.schedule.business_type(case.business_type)
    rank = {m: i for i, m in enumerate((*bt.required, *bt.optional))}
    active = case.active_documents
    return sorted(active, key=lambda d: (rank.get(d.material_type, len(rank)), d.sequence))
