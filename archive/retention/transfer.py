"""Transfer packages (移交 / 接收): export filed items as a BagIt-style package of DA/T 48 EEPs, receive one.

Layout (one top-level folder named after the 移交批次号, as a directory or a zip)::

    <package_no>/bagit.txt, bag-info.txt            BagIt 1.0 declaration and package metadata
    <package_no>/manifest-sha256.txt, manifest-sm3.txt   digest of every payload file
    <package_no>/tagmanifest-sha256.txt             digest of the four tag files above
    <package_no>/data/eep/<档号>.eep                one signed EEP per item
    <package_no>/data/items.json                    目录文件: each item's metadata, EEP and content digests
    <package_no>/data/register.json, register.pdf   移交登记表 (件数, 字节数, digests of items.json …)

The bag digest (SHA-256/SM3 of tagmanifest-sha256.txt) covers everything transitively and is the same for
the directory and the zip form; a zip's own digest is recorded too. The YJ checks (archive/checks/yj.py)
run on the written package before it is released, and on every received package. A hostile container
(not a zip, paths leaving the package, declared sizes over the limit) is refused before any check runs;
everything else becomes check results and a receipt with status accepted or returned (退回).
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import BaseModel, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from archive import audit
from archive.audit import Actor
from archive.catalogue.models import ArchiveItem, Case, TransferPackage, TransferReceipt
from archive.catalogue.types import utcnow
from archive.checks import yj
from archive.checks.base import CheckItem, Outcome, Result, Stage, blocking_failures, items_of, run_items
from archive.checks.reports import save_report
from archive.context import Context
from archive.eep_record import eep_record
from archive.errors import Conflict, InvalidInput, NotFound, TooLarge
from archive.retention.bagit import (
    BAG_INFO,
    CHUNK,
    EEP_DIR,
    ITEMS,
    REGISTER,
    REGISTER_PDF,
    TAG_MANIFEST,
    Bag,
    BagReadError,
    Payload,
    Sink,
    ZipSink,
    open_bag,
    parse_tag_lines,
    payload_oxum,
    write_tags,
)
from archive.retention.register import FORMAT, PACKAGE_NO_LENGTH, register_pdf, register_problems
from signing.fixity import Digests, digest_bytes, digest_stream
from storage.base import content_key

MAX_SELECTION = 100_000
MAX_REGISTER_BYTES = 1024 * 1024
FILED = ("filed",)  # item statuses that can be transferred (not destroyed)


# --- selection --------------------------------------------------------------------------------------


class Selection(BaseModel):
    """Which filed items go into the package: a 档号 list, or filters (at least one of them)."""

    archival_codes: list[str] | None = Field(None, min_length=1, max_length=MAX_SELECTION,
                                             description="档号列表；与筛选条件二选一")
    category: str | None = Field(None, min_length=2, max_length=2, description="业务类别，如 TQ")
    year: int | None = Field(None, ge=1900, le=2999, description="年度")
    retention_code: str | None = Field(None, pattern=r"^(Y|D30|D10)$", description="保管期限代码 Y/D30/D10")

    @model_validator(mode="after")
    def _something(self) -> Selection:
        filters = (self.category, self.year, self.retention_code)
        if self.archival_codes is None and all(f is None for f in filters):
            raise ValueError("请给出档号列表，或至少一个筛选条件（类别、年度、保管期限）")
        if self.archival_codes is not None and any(f is not None for f in filters):
            raise ValueError("档号列表与筛选条件不能同时使用")
        return self


def select_items(session: Session, selection: Selection,
                 branches: frozenset[str] | None = None) -> list[ArchiveItem]:
    """The selected items, only of ``branches`` when given (the caller's); another branch's 档号 is refused
    as unknown (existence must not leak)."""
    q = select(ArchiveItem).options(joinedload(ArchiveItem.case)).order_by(ArchiveItem.archival_code)
    if branches is not None:
        q = q.where(ArchiveItem.case_id.in_(select(Case.id).where(Case.branch.in_(sorted(branches)))))
    if selection.archival_codes is not None:
        codes = list(dict.fromkeys(c.strip() for c in selection.archival_codes))
        items = list(session.scalars(q.where(ArchiveItem.archival_code.in_(codes))).unique())
        found = {i.archival_code for i in items}
        missing = [c for c in codes if c not in found]
        if missing:
            raise NotFound(f"以下档号不存在：{'、'.join(missing[:10])}" + ("等" if len(missing) > 10 else ""),
                           code="item_not_found", detail={"missing": missing[:100]})
        gone = [i.archival_code for i in items if i.status not in FILED]
        if gone:
            raise Conflict(f"以下档案已不在库（已销毁等），不能移交：{'、'.join(gone[:10])}",
                           code="item_not_transferable", detail={"archival_codes": gone[:100]})
        return items
    q = q.where(ArchiveItem.status.in_(FILED))
    if selection.category is not None:
        q = q.where(ArchiveItem.category == selection.category)
    if selection.year is not None:
        q = q.where(ArchiveItem.year == selection.year)
    if selection.retention_code is not None:
        q = q.where(ArchiveItem.retention_code == selection.retention_code)
    items = list(session.scalars(q.limit(MAX_SELECTION + 1)).unique())
    if not items:
        raise NotFound("没有符合条件的已归档档案", code="selection_empty",
                       detail=selection.model_dump(exclude_none=True))
    if len(items) > MAX_SELECTION:
        raise InvalidInput(f"一次最多移交 {MAX_SELECTION} 件，请缩小范围", code="selection_too_large")
    return items


# --- writing ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Built:
    package_no: str
    register: dict[str, Any]
    item_count: int
    payload_bytes: int  # 字节数: the EEPs
    bag: Digests  # of tagmanifest-sha256.txt


Progress = Callable[[int, int], None]


def write_package(ctx: Context, items: Sequence[ArchiveItem], sink: Sink, *, package_no: str, receiver: str,
                  created_by: str, created: datetime, progress: Progress | None = None) -> Built:
    """Write one EEP per item, the 目录文件, the register (JSON and PDF) and the BagIt tag files."""
    from signing.eep import EepFile, build_eep

    payload = Payload(sink)
    entries: list[dict[str, Any]] = []
    for n, item in enumerate(items, 1):
        if not item.rendition_key:
            raise Conflict(f"档案 {item.archival_code} 没有归档 PDF，不能移交", code="rendition_not_found",
                           detail={"archival_code": item.archival_code})
        with ctx.store.get(item.rendition_key) as f:
            content = f.read()
        name = f"{item.archival_code}.pdf"
        eep = build_eep(eep_record(ctx, item), [EepFile(name, content, title="归档 PDF/A")], ctx.signer,
                        creator_unit=ctx.settings.fonds_name, created=created)
        rel = f"{EEP_DIR}{item.archival_code}.eep"
        d = payload.add(rel, eep)
        bt = ctx.schedule.types.get(item.case.business_type)
        entries.append({
            "archival_code": item.archival_code, "title": f"{item.case.applicant_name or item.case.unit_name or ''}"
            f"{bt.name if bt else ''}", "year": item.year, "retention_code": item.retention_code,  # in the 档号
            "effective_retention": item.effective_retention,  # in force after re-appraisal: the EEP's 保管期限
            "category": item.category, "number": item.number, "file": rel, "size": d.size, "sha256": d.sha256,
            "sm3": d.sm3, "content": [{"name": name, "size": len(content), "sha256": item.rendition_sha256,
                                       "sm3": item.rendition_sm3}]})
        del content, eep
        if progress:
            progress(n, len(items))
    items_json = _json({"package_no": package_no, "archival_code_rule": ctx.code_rule.template, "items": entries})
    listed = payload.add(ITEMS, items_json)
    years = [e["year"] for e in entries]
    register = {
        "title": "电子档案移交登记表", "package_no": package_no, "sender": ctx.settings.fonds_name,
        "sender_fonds_code": ctx.settings.fonds_code, "receiver": receiver, "transfer_method": "在线",
        "format": FORMAT, "item_count": len(entries), "payload_bytes": sum(e["size"] for e in entries),
        "content_bytes": sum(c["size"] for e in entries for c in e["content"]),
        "years": [min(years), max(years)] if years else None,
        "retention_counts": dict(sorted(Counter(e["retention_code"] for e in entries).items())),
        "category_counts": dict(sorted(Counter(e["category"] for e in entries).items())),
        "digests": {"of": ITEMS, "sha256": listed.sha256, "sm3": listed.sm3},
        "created_at": created.astimezone(ctx.zone).isoformat(timespec="seconds"), "created_by": created_by,
    }
    payload.add(REGISTER, _json(register))
    payload.add(REGISTER_PDF, register_pdf(ctx, register))
    bag = write_tags(sink, payload.files, _bag_info(ctx, register, payload.files))
    return Built(package_no, register, len(entries), register["payload_bytes"], bag)


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=1).encode()


def _bag_info(ctx: Context, register: dict[str, Any], files: dict[str, Digests]) -> dict[str, str]:
    return {
        "Source-Organization": ctx.settings.fonds_name,
        "Internal-Sender-Identifier": ctx.settings.fonds_code,
        "External-Identifier": register["package_no"],
        "Bagging-Date": register["created_at"][:10],
        "Payload-Oxum": payload_oxum(files),
        "Bag-Software-Agent": "hpf-archive",
        "Transfer-Receiver": register["receiver"],
        "Item-Count": str(register["item_count"]),
    }


def new_package_no(ctx: Context, when: datetime) -> str:
    return f"{ctx.settings.fonds_code}-YJ-{when.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(2).upper()}"


# --- export -------------------------------------------------------------------------------------------


def export(ctx: Context, session: Session, actor: Actor, selection: Selection, *, receiver: str | None = None,
           progress: Progress | None = None, branches: frozenset[str] | None = None) -> TransferPackage:
    """Build the zip, run the YJ checks on it, keep it in the object store if they pass, record and audit.

    A package whose checks fail is recorded with status ``failed`` and not released (no zip is kept).
    """
    packed = pack(ctx, session, actor, selection, receiver=receiver, progress=progress, branches=branches)
    return record_export(session, actor, selection, packed)


@dataclass(frozen=True)
class Packed:
    """A package written, checked and (if it passed) stored, not yet recorded in the catalogue."""

    package_no: str
    receiver: str
    created: datetime
    built: Built
    zipped: Digests
    results: list[tuple[CheckItem, Result]]
    key: str | None  # the zip in the object store; None when the checks failed


def pack(ctx: Context, session: Session, actor: Actor, selection: Selection, *, receiver: str | None = None,
         progress: Progress | None = None, branches: frozenset[str] | None = None) -> Packed:
    """The long part of :func:`export`; it only reads the catalogue, so a background job runs it in a read-only
    session (on SQLite a write transaction would lock out the job's progress writes for the whole export)."""
    items = select_items(session, selection, branches)
    created = utcnow().replace(microsecond=0)
    package_no = new_package_no(ctx, created)
    receiver = " ".join((receiver or "").split())[:200] or ctx.settings.transfer_receiver  # no line breaks
    tmp = _tmp_dir(ctx)
    path = tmp / f"{package_no}.zip"
    try:
        with zipfile.ZipFile(path, "w", allowZip64=True) as z:
            built = write_package(ctx, items, ZipSink(z, f"{package_no}/", created), package_no=package_no,
                                  receiver=receiver, created_by=actor.name, created=created, progress=progress)
        with path.open("rb") as f:
            zipped = digest_stream(f, CHUNK)
        with open_bag(path, ctx.settings) as bag:
            results = run_checks(ctx, bag, side="export", actor=actor, received=zipped, sender_digest=None)
        key = None
        if _passed(results):
            key = content_key("packages", zipped.sha256)
            with path.open("rb") as f:
                ctx.store.put(key, f, size=zipped.size, sha256=zipped.sha256, sm3=zipped.sm3,
                              media_type="application/zip")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Packed(package_no, receiver, created, built, zipped, results, key)


def record_export(session: Session, actor: Actor, selection: Selection, packed: Packed) -> TransferPackage:
    """Record a packed package (released, or failed when its checks failed), its check report, and audit it."""
    built, zipped, results, passed = packed.built, packed.zipped, packed.results, _passed(packed.results)
    package_no = packed.package_no
    row = TransferPackage(
        package_no=package_no, sender=built.register["sender"], receiver=packed.receiver,
        selection=selection.model_dump(exclude_none=True), item_count=built.item_count,
        payload_bytes=built.payload_bytes, bag_sha256=built.bag.sha256, bag_sm3=built.bag.sm3, zip_key=packed.key,
        zip_size=zipped.size, zip_sha256=zipped.sha256, zip_sm3=zipped.sm3, register=built.register,
        status="released" if passed else "failed", check_results=results_json(results), created_by=actor.name,
        created_at=packed.created)
    session.add(row)
    session.flush()
    row.report_id = _save_report(session, actor, f"transfer:{package_no}", results, package_id=row.id)
    audit.record(session, actor, "transfer.export", target_type="transfer_package", target_id=package_no,
                 outcome="success" if passed else "failure", detail={
                     "items": built.item_count, "payload_bytes": built.payload_bytes, "zip_sha256": zipped.sha256,
                     "bag_sha256": built.bag.sha256, "receiver": packed.receiver, "failed": failed_codes(results)})
    return row


def _tmp_dir(ctx: Context) -> Path:
    base = ctx.settings.data_dir / "tmp"
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="transfer-", dir=base))


# --- checks -------------------------------------------------------------------------------------------


def run_checks(ctx: Context, bag: Bag, *, side: str, actor: Actor, received: Digests | None,
               sender_digest: str | None, carrier: str = "online") -> list[tuple[CheckItem, Result]]:
    from signing.certificates import load_trust_roots

    subject = yj.TransferSubject(bag=bag, side=side, actor=actor.name, trust_roots=load_trust_roots(
        ctx.settings.pki_path), received=received, sender_digest=sender_digest, settings=ctx.settings,
        carrier=carrier)
    return run_items(items_of(Stage.TRANSFER), subject)


def _passed(results: list[tuple[CheckItem, Result]]) -> bool:
    return not blocking_failures(results)


def failed_codes(results: list[tuple[CheckItem, Result]]) -> list[str]:
    return sorted({i.code for i, r in results if r.outcome in (Outcome.FAILED, Outcome.ERROR)})


def results_json(results: list[tuple[CheckItem, Result]]) -> list[dict[str, Any]]:
    return [{"code": i.code, "name": i.name, "dimension": i.dimension.value, "object": i.object.value,
             "blocking": i.blocking, "outcome": r.outcome.value, "detail": r.detail, "target": r.target}
            for i, r in results]


def _save_report(session: Session, actor: Actor, subject: str, results: list[tuple[CheckItem, Result]],
                 **context: Any) -> int | None:
    """The shared check report (archive/checks/reports.py); our own rows keep the results either way."""
    try:
        return int(save_report(session, actor, Stage.TRANSFER, subject, results, **context).id)
    except NotImplementedError:
        return None


# --- receive ------------------------------------------------------------------------------------------


def receive(ctx: Context, session: Session, actor: Actor, path: Path, *, source: str,
            sender_sha256: str | None = None, carrier: str = "online") -> TransferReceipt:
    """Verify a received package (zip or directory) and record the receipt (接收登记); nothing is filed.

    Raises TransferRefused for a container that cannot be opened safely (see ``archive.retention.refusals.answered``).
    """
    if sender_sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sender_sha256.strip()):
        raise InvalidInput("移交方提供的 SHA-256 摘要应为 64 位十六进制", code="invalid_sender_digest")
    sender_sha256 = sender_sha256.strip().lower() if sender_sha256 else None
    is_zip = path.is_file()
    if is_zip:
        with path.open("rb") as f:
            received = digest_stream(f, CHUNK)
    with open_bag(path, ctx.settings) as bag:
        if not is_zip:
            received = bag.digests(TAG_MANIFEST) if TAG_MANIFEST in bag.files else digest_bytes(b"")
        results = run_checks(ctx, bag, side="import", actor=actor, received=received, sender_digest=sender_sha256,
                             carrier=carrier)
        register = _json_or_none(bag, REGISTER)
        eeps = [n for n in bag.files if n.startswith(EEP_DIR)]
        payload = sum(bag.files[n] for n in eeps)
        info = _bag_info_or_empty(bag)
    passed = _passed(results)
    # a register of the wrong shape fails YJ-3-1 (returned) and is not kept: the zip is the evidence
    reg = register if isinstance(register, dict) and not register_problems(register) else None
    row = TransferReceipt(
        package_no=_str(reg, "package_no", PACKAGE_NO_LENGTH)
        or info.get("External-Identifier", "")[:PACKAGE_NO_LENGTH] or None,
        sender=_str(reg, "sender") or info.get("Source-Organization", "")[:200] or None,
        receiver=_str(reg, "receiver"), source=source[-255:], size=received.size, sha256=received.sha256,
        sm3=received.sm3, sender_sha256=sender_sha256, stored_key=None, item_count=len(eeps), payload_bytes=payload,
        register=reg, status="accepted" if passed else "returned", check_results=results_json(results),
        received_by=actor.name, received_at=utcnow())
    session.add(row)
    session.flush()  # before the zip is stored: a row that cannot be written leaves no orphan object
    if is_zip:  # keep what was received, as evidence of the 接收
        row.stored_key = content_key("packages", received.sha256)
        with path.open("rb") as f:
            ctx.store.put(row.stored_key, f, size=received.size, sha256=received.sha256, sm3=received.sm3,
                          media_type="application/zip")
    row.report_id = _save_report(session, actor, f"receipt:{row.id}", results, receipt_id=row.id)
    audit.record(session, actor, "transfer.receive", target_type="transfer_receipt", target_id=row.id,
                 outcome="success" if passed else "failure", detail={
                     "package_no": row.package_no, "sha256": received.sha256, "items": len(eeps),
                     "status": row.status, "failed": failed_codes(results), "source": row.source})
    return row


def _str(d: dict[str, Any] | None, key: str, length: int = 200) -> str | None:
    v = d.get(key) if d else None
    return str(v)[:length] if v is not None else None


def _json_or_none(bag: Bag, rel: str) -> Any:
    if rel not in bag.files or bag.files[rel] > MAX_REGISTER_BYTES:  # a register is a few KB; keep no giant
        return None
    try:
        return json.loads(bag.read(rel))
    except (BagReadError, ValueError):
        return None


def _bag_info_or_empty(bag: Bag) -> dict[str, str]:
    try:
        return parse_tag_lines(bag.read(BAG_INFO).decode("utf-8")) if BAG_INFO in bag.files else {}
    except (BagReadError, UnicodeDecodeError):
        return {}


# --- lookups --------------------------------------------------------------------------------------


def get_package(session: Session, package_id: int) -> TransferPackage:
    row = session.get(TransferPackage, package_id)
    if row is None:
        raise NotFound(f"移交信息包 {package_id} 不存在", code="transfer_not_found", detail={"id": package_id})
    return row


def get_receipt(session: Session, receipt_id: int) -> TransferReceipt:
    row = session.get(TransferReceipt, receipt_id)
    if row is None:
        raise NotFound(f"接收记录 {receipt_id} 不存在", code="receipt_not_found", detail={"id": receipt_id})
    return row


def download(ctx: Context, session: Session, actor: Actor, package_id: int) -> tuple[TransferPackage, Iterator[bytes]]:
    """A released package and its zip's bytes (streamed), the download audited."""
    row = get_package(session, package_id)
    chunks = package_stream(ctx, row)
    audit.record(session, actor, "transfer.download", target_type="transfer_package", target_id=row.package_no,
                 detail={"zip_sha256": row.zip_sha256})
    return row, chunks


def save_upload(source: BinaryIO, path: Path, limit_mb: int) -> None:
    """Copy an uploaded package to ``path`` in chunks (never whole in memory), refusing it past ``limit_mb``."""
    limit, size = limit_mb * 1024 * 1024, 0
    with path.open("wb") as out:
        while chunk := source.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"上传的信息包超过 {limit_mb} MB 上限，已拒收", code="transfer_too_large",
                               detail={"limit_mb": limit_mb})
            out.write(chunk)
    if size == 0:
        raise InvalidInput("上传的文件是空的，不是移交信息包", code="transfer_not_zip")


def receipt_verdict(row: TransferReceipt) -> tuple[str, list[str]]:
    """What a receipt means in one sentence (接收 or 退回 and why), and the codes of every failed YJ item."""
    failed = sorted({r["code"] for r in row.check_results if r["outcome"] in ("failed", "error")})
    blocking = sorted({r["code"] for r in row.check_results if r["outcome"] in ("failed", "error") and r["blocking"]})
    message = ("信息包通过移交与接收检测，已登记接收" if row.status == "accepted" else
               f"信息包未通过移交与接收检测（{'、'.join(blocking)}），应退回移交单位")
    return message, failed


def package_stream(ctx: Context, row: TransferPackage) -> Iterator[bytes]:
    if row.zip_key is None:
        raise Conflict("该信息包未通过移交检测，没有可下载的文件", code="transfer_not_released",
                       detail={"package_no": row.package_no, "status": row.status})
    key = row.zip_key
    ctx.store.stat(key)  # a missing package is an error before the first byte, not in the middle

    def chunks() -> Iterator[bytes]:  # opens the stream only when read, so it is always closed
        with ctx.store.get(key) as stream:
            while chunk := stream.read(CHUNK):
                yield chunk

    return chunks()
