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

import io
import json
import os
import re
import secrets
import shutil
import stat
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Protocol, cast

from pydantic import BaseModel, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from archive import audit
from archive.audit import Actor
from archive.catalogue.models import ArchiveItem, Case, TransferPackage, TransferReceipt
from archive.catalogue.types import utcnow
from archive.checks.base import CheckItem, Result
from archive.context import Context
from archive.eep_record import eep_record
from archive.errors import ArchiveError, Conflict, InvalidInput, NotFound
from archive.localtime import local_time
from signing.fixity import Digests, Hasher, digest_bytes, digest_stream

BAGIT = "bagit.txt"
BAG_INFO = "bag-info.txt"
MANIFESTS = {"sha256": "manifest-sha256.txt", "sm3": "manifest-sm3.txt"}
TAG_MANIFEST = "tagmanifest-sha256.txt"
ITEMS = "data/items.json"
REGISTER = "data/register.json"
REGISTER_PDF = "data/register.pdf"
EEP_DIR = "data/eep/"
BAGIT_TEXT = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
FORMAT = "DA/T 48-2009 EEP"
MAX_SELECTION = 100_000
MAX_REGISTER_BYTES = 1024 * 1024
JSON_BASE_BYTES = 64 * 1024  # a tag/JSON file may have this much, plus JSON_PER_EEP_BYTES per EEP in the bag
JSON_PER_EEP_BYTES = 8 * 1024  # an items.json entry we write is under 1 KB
JSON_MAX_BYTES = 64 * 1024 * 1024  # and never more (json.loads of tiny objects takes ~50 times the bytes in RAM)
PACKAGE_NO_LENGTH = 64  # TransferPackage/TransferReceipt.package_no
CHUNK = 1024 * 1024
_SAFE_PART = re.compile(r"[^/\\\x00-\x1f:*?\"<>|]+")
FILED = ("filed",)  # item statuses that can be transferred (not destroyed)


class TransferRefused(ArchiveError):
    """The package cannot even be opened safely: nothing is checked, nothing is recorded but the audit."""

    kind = "invalid"
    code = "transfer_refused"


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


class _Sink(Protocol):
    def add(self, rel: str, data: bytes) -> None: ...


class _ZipSink:
    def __init__(self, archive: zipfile.ZipFile, prefix: str, when: datetime) -> None:
        self.archive, self.prefix = archive, prefix
        self.stamp = when.timetuple()[:6]

    def add(self, rel: str, data: bytes) -> None:
        info = zipfile.ZipInfo(self.prefix + rel, date_time=self.stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        self.archive.writestr(info, data, compresslevel=1)


@dataclass
class _Payload:
    """What has gone into data/ so far: digests per file, in order."""

    sink: _Sink
    files: dict[str, Digests] = field(default_factory=dict)

    def add(self, rel: str, data: bytes) -> Digests:
        h = Hasher()
        h.update(data)
        self.files[rel] = h.digests()
        self.sink.add(rel, data)
        return self.files[rel]


@dataclass(frozen=True)
class Built:
    package_no: str
    register: dict[str, Any]
    item_count: int
    payload_bytes: int  # 字节数: the EEPs
    bag: Digests  # of tagmanifest-sha256.txt


Progress = Callable[[int, int], None]


def write_package(ctx: Context, items: Sequence[ArchiveItem], sink: _Sink, *, package_no: str, receiver: str,
                  created_by: str, created: datetime, progress: Progress | None = None) -> Built:
    """Write one EEP per item, the 目录文件, the register (JSON and PDF) and the BagIt tag files."""
    from signing.eep import EepFile, build_eep

    payload = _Payload(sink)
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
    tags = {
        BAGIT: BAGIT_TEXT.encode(),
        BAG_INFO: _bag_info(ctx, register, payload.files).encode(),
        **{MANIFESTS[alg]: "".join(f"{getattr(d, alg)}  {rel}\n" for rel, d in payload.files.items()).encode()
           for alg in MANIFESTS},
    }
    for rel, data in tags.items():
        sink.add(rel, data)
    tag_manifest = "".join(f"{digest_bytes(data).sha256}  {rel}\n" for rel, data in tags.items()).encode()
    sink.add(TAG_MANIFEST, tag_manifest)
    return Built(package_no, register, len(entries), register["payload_bytes"], digest_bytes(tag_manifest))


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=1).encode()


def _bag_info(ctx: Context, register: dict[str, Any], files: dict[str, Digests]) -> str:
    lines = {
        "Source-Organization": ctx.settings.fonds_name,
        "Internal-Sender-Identifier": ctx.settings.fonds_code,
        "External-Identifier": register["package_no"],
        "Bagging-Date": register["created_at"][:10],
        "Payload-Oxum": f"{sum(d.size for d in files.values())}.{len(files)}",
        "Bag-Software-Agent": "hpf-archive",
        "Transfer-Receiver": register["receiver"],
        "Item-Count": str(register["item_count"]),
    }
    return "".join(f"{k}: {v}\n" for k, v in lines.items())


def new_package_no(ctx: Context, when: datetime) -> str:
    return f"{ctx.settings.fonds_code}-YJ-{when.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(2).upper()}"


# --- export -------------------------------------------------------------------------------------------


def export(ctx: Context, session: Session, actor: Actor, selection: Selection, *, receiver: str | None = None,
           progress: Progress | None = None, branches: frozenset[str] | None = None) -> TransferPackage:
    """Build the zip, run the YJ checks on it, keep it in the object store if they pass, record and audit.

    A package whose checks fail is recorded with status ``failed`` and not released (no zip is kept).
    """
    from storage.base import content_key

    items = select_items(session, selection, branches)
    created = utcnow().replace(microsecond=0)
    package_no = new_package_no(ctx, created)
    receiver = " ".join((receiver or "").split())[:200] or ctx.settings.transfer_receiver  # no line breaks
    tmp = _tmp_dir(ctx)
    path = tmp / f"{package_no}.zip"
    try:
        with zipfile.ZipFile(path, "w", allowZip64=True) as z:
            built = write_package(ctx, items, _ZipSink(z, f"{package_no}/", created), package_no=package_no,
                                  receiver=receiver, created_by=actor.name, created=created, progress=progress)
        with path.open("rb") as f:
            zipped = digest_stream(f, CHUNK)
        with open_bag(path, ctx.settings) as bag:
            results = run_checks(ctx, bag, side="export", actor=actor, received=zipped, sender_digest=None)
        passed = _passed(results)
        key = None
        if passed:
            key = content_key("packages", zipped.sha256)
            with path.open("rb") as f:
                ctx.store.put(key, f, size=zipped.size, sha256=zipped.sha256, sm3=zipped.sm3,
                              media_type="application/zip")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    row = TransferPackage(
        package_no=package_no, sender=ctx.settings.fonds_name, receiver=receiver,
        selection=selection.model_dump(exclude_none=True), item_count=built.item_count,
        payload_bytes=built.payload_bytes, bag_sha256=built.bag.sha256, bag_sm3=built.bag.sm3, zip_key=key,
        zip_size=zipped.size, zip_sha256=zipped.sha256, zip_sm3=zipped.sm3, register=built.register,
        status="released" if passed else "failed", check_results=results_json(results), created_by=actor.name,
        created_at=created)
    session.add(row)
    session.flush()
    row.report_id = _save_report(session, actor, f"transfer:{package_no}", results, package_id=row.id)
    audit.record(session, actor, "transfer.export", target_type="transfer_package", target_id=package_no,
                 outcome="success" if passed else "failure", detail={
                     "items": built.item_count, "payload_bytes": built.payload_bytes, "zip_sha256": zipped.sha256,
                     "bag_sha256": built.bag.sha256, "receiver": receiver, "failed": failed_codes(results)})
    return row


def extract_zip(source: Path, target: Path) -> Path:
    """Unpack a package zip we made (CLI ``--dir``); returns the bag's root folder."""
    with zipfile.ZipFile(source) as z:
        for info in z.infolist():
            _check_name(info.filename)
        z.extractall(target)
        tops = {PurePosixPath(n).parts[0] for n in z.namelist()}
    return target / tops.pop() if len(tops) == 1 else target


def _tmp_dir(ctx: Context) -> Path:
    base = ctx.settings.data_dir / "tmp"
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="transfer-", dir=base))


# --- reading: a bag in a directory or a zip ---------------------------------------------------------


class BagReadError(Exception):
    """A file of the bag could not be read back (corrupt zip member, vanished file)."""


class Bag:
    """Read access to a package's files by their path inside the bag (``data/eep/…``)."""

    def __init__(self, files: dict[str, int], opener: Callable[[str], BinaryIO], encrypted: Sequence[str] = (),
                 close: Callable[[], None] | None = None, kind: str = "directory") -> None:
        self.files = files  # path → size
        self._open = opener
        self.encrypted = list(encrypted)  # zip members flagged as encrypted
        self._close = close
        self.kind = kind

    def open(self, rel: str) -> BinaryIO:
        if rel not in self.files:
            raise BagReadError(f"信息包中没有文件 {rel}")
        try:
            return self._open(rel)
        except (OSError, zipfile.BadZipFile, NotImplementedError, RuntimeError) as exc:
            raise BagReadError(f"文件 {rel} 无法读取：{exc}") from exc

    def read(self, rel: str) -> bytes:
        with self.open(rel) as f:
            try:
                return f.read()
            except Exception as exc:  # CRC mismatch (BadZipFile), zlib.error, EOF of a damaged member
                raise BagReadError(f"文件 {rel} 已损坏，无法读取：{exc}") from exc

    def digests(self, rel: str) -> Digests:
        h = Hasher()
        with self.open(rel) as f:
            try:
                while chunk := f.read(CHUNK):
                    h.update(chunk)
            except Exception as exc:  # CRC mismatch (BadZipFile), zlib.error, EOF of a damaged member
                raise BagReadError(f"文件 {rel} 已损坏，无法读取：{exc}") from exc
        return h.digests()

    def close(self) -> None:
        if self._close:
            self._close()

    def __enter__(self) -> Bag:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _check_name(name: str) -> None:
    parts = name.rstrip("/").split("/")
    if (not name or name.startswith(("/", "\\")) or "\\" in name or re.match(r"^[A-Za-z]:", name)
            or any(p in ("", ".", "..") or not _SAFE_PART.fullmatch(p) for p in parts)):
        raise TransferRefused(f"信息包中的路径“{name[:200]}”不安全（含 ..、绝对路径或非法字符），已拒收",
                              code="transfer_unsafe_path", detail={"path": name[:200]})


def open_bag(path: Path, settings: Any) -> Bag:
    """Open a package (zip file or directory) for checking; refuses hostile or unreadable containers."""
    limit = settings.transfer_max_package_mb * 1024 * 1024
    if path.is_dir():
        return _open_dir(path, settings.transfer_max_entries, limit)
    if not path.is_file():
        raise NotFound(f"找不到信息包 {path}", code="transfer_not_found", detail={"path": str(path)})
    if not zipfile.is_zipfile(path):
        raise TransferRefused("上传的文件不是 zip 格式的移交信息包，已拒收", code="transfer_not_zip")
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise TransferRefused(f"zip 文件已损坏，无法打开：{exc}", code="transfer_not_zip") from exc
    try:
        infos = z.infolist()
        if len(infos) > settings.transfer_max_entries:
            raise TransferRefused(f"信息包含 {len(infos)} 个文件，超过上限 {settings.transfer_max_entries}，已拒收",
                                  code="transfer_too_many_files")
        declared = 0
        members: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            _check_name(info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise TransferRefused(f"信息包中的“{info.filename}”是符号链接，已拒收", code="transfer_unsafe_path",
                                      detail={"path": info.filename})
            declared += info.file_size
            if declared > limit:
                raise TransferRefused(f"信息包解压后的大小超过上限 {settings.transfer_max_package_mb} MB"
                                      "（可能是压缩炸弹），已拒收", code="transfer_too_large",
                                      detail={"limit_mb": settings.transfer_max_package_mb})
            if not info.is_dir():
                if info.filename in members:
                    raise TransferRefused(f"信息包中文件“{info.filename}”出现了两次，已拒收",
                                          code="transfer_duplicate_entry", detail={"path": info.filename})
                members[info.filename] = info
        prefix = _root_prefix(list(members))
        files = {n[len(prefix):]: i.file_size for n, i in members.items() if n.startswith(prefix)}
        encrypted = [n[len(prefix):] for n, i in members.items() if i.flag_bits & 0x1]
        _check_tag_sizes(files)
    except BaseException:
        z.close()
        raise
    return Bag(files, lambda rel: cast(BinaryIO, z.open(prefix + rel)), encrypted, z.close, kind="zip")


def _open_dir(root: Path, max_entries: int, limit: int) -> Bag:
    if not (root / BAGIT).is_file():
        subdirs = [p for p in root.iterdir() if p.is_dir()]
        if len(subdirs) == 1 and (subdirs[0] / BAGIT).is_file():
            root = subdirs[0]
        else:
            raise TransferRefused("目录中没有 bagit.txt，不是移交信息包", code="transfer_not_bag")
    files: dict[str, int] = {}
    total = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                raise TransferRefused(f"信息包中的“{rel}”是符号链接，已拒收", code="transfer_unsafe_path",
                                      detail={"path": rel})
            files[rel] = p.stat().st_size
            total += files[rel]
            if len(files) > max_entries or total > limit:
                raise TransferRefused("信息包文件过多或过大，已拒收", code="transfer_too_large")
    _check_tag_sizes(files)
    return Bag(files, lambda rel: (root / rel).open("rb"))


def tag_file_limit(files: dict[str, int]) -> int:
    """Largest tag or JSON file (items.json, register.json, manifests …) parsed for a bag of these files."""
    eeps = sum(1 for n in files if n.startswith(EEP_DIR))
    return min(JSON_MAX_BYTES, JSON_BASE_BYTES + JSON_PER_EEP_BYTES * eeps)


def _check_tag_sizes(files: dict[str, int]) -> None:
    """Refuse a tag/JSON file far larger than the package's EEPs can explain: parsing it would exhaust memory."""
    limit = tag_file_limit(files)
    for rel in (BAGIT, BAG_INFO, *MANIFESTS.values(), TAG_MANIFEST, ITEMS, REGISTER):
        if files.get(rel, 0) > limit:
            raise TransferRefused(f"信息包中的 {rel} 有 {files[rel]} 字节，超过本包允许的 {limit} 字节"
                                  f"（{JSON_BASE_BYTES // 1024} KB 加每个封装包 {JSON_PER_EEP_BYTES // 1024} KB），"
                                  "已拒收", code="transfer_tag_file_too_large",
                                  detail={"path": rel, "size": files[rel], "limit": limit})


def _root_prefix(names: list[str]) -> str:
    if BAGIT in names:
        return ""
    tops = {n.split("/", 1)[0] for n in names}
    if len(tops) == 1 and f"{next(iter(tops))}/{BAGIT}" in names:
        return next(iter(tops)) + "/"
    raise TransferRefused("zip 中没有 bagit.txt，不是移交信息包（应为 BagIt 结构，顶层一个目录）",
                          code="transfer_not_bag")


# --- checks -------------------------------------------------------------------------------------------


def run_checks(ctx: Context, bag: Bag, *, side: str, actor: Actor, received: Digests | None,
               sender_digest: str | None, carrier: str = "online") -> list[tuple[CheckItem, Result]]:
    from archive.checks import yj
    from archive.checks.base import Stage, items_of, run_items
    from signing.certificates import load_trust_roots

    subject = yj.TransferSubject(bag=bag, side=side, actor=actor.name, trust_roots=load_trust_roots(
        ctx.settings.pki_path), received=received, sender_digest=sender_digest, settings=ctx.settings,
        carrier=carrier)
    return run_items(items_of(Stage.TRANSFER), subject)


def _passed(results: list[tuple[CheckItem, Result]]) -> bool:
    from archive.checks.base import blocking_failures

    return not blocking_failures(results)


def failed_codes(results: list[tuple[CheckItem, Result]]) -> list[str]:
    from archive.checks.base import Outcome

    return sorted({i.code for i, r in results if r.outcome in (Outcome.FAILED, Outcome.ERROR)})


def results_json(results: list[tuple[CheckItem, Result]]) -> list[dict[str, Any]]:
    return [{"code": i.code, "name": i.name, "dimension": i.dimension.value, "object": i.object.value,
             "blocking": i.blocking, "outcome": r.outcome.value, "detail": r.detail, "target": r.target}
            for i, r in results]


def _save_report(session: Session, actor: Actor, subject: str, results: list[tuple[CheckItem, Result]],
                 **context: Any) -> int | None:
    """The shared check report (archive/checks/reports.py); our own rows keep the results either way."""
    from archive.checks.base import Stage
    from archive.checks.reports import save_report

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
    from storage.base import content_key

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


def register_problems(register: dict[str, Any]) -> list[str]:
    """What is of the wrong type in a 移交登记表 (register.json); missing fields are YJ-2-10's finding."""
    def count(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0

    def text(v: Any) -> bool:
        return isinstance(v, str)

    rules: dict[str, tuple[Callable[[Any], bool], str]] = {
        **{k: (text, "应为文字") for k in ("title", "sender", "sender_fonds_code", "receiver", "transfer_method",
                                          "format", "created_at", "created_by")},
        "package_no": (lambda v: text(v) and 0 < len(v) <= PACKAGE_NO_LENGTH,
                       f"应为不超过 {PACKAGE_NO_LENGTH} 个字符的文字"),
        **{k: (count, "应为非负整数") for k in ("item_count", "payload_bytes", "content_bytes")},
        "years": (lambda v: v is None or (isinstance(v, list) and len(v) == 2 and all(count(y) for y in v)),
                  "应为 [起始年度, 终止年度]"),
        **{k: (lambda v: isinstance(v, dict) and all(count(n) for n in v.values()), "应为 {代码: 件数}")
           for k in ("retention_counts", "category_counts")},
        "digests": (lambda v: isinstance(v, dict) and all(text(d) for d in v.values()), "应为 {算法: 摘要}"),
    }
    return [f"{k} {why}" for k, (ok, why) in rules.items() if k in register and not ok(register[k])]


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


def parse_tag_lines(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        k, sep, v = line.partition(":")
        if sep and k.strip():
            out[k.strip()] = v.strip()
    return out


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


# --- the register as PDF ---


def receipt_pdf(ctx: Context, row: TransferReceipt) -> bytes:
    """移交与接收登记表: the sender's register as received, the receipt, and every YJ result."""
    register = row.register or {"package_no": row.package_no or "", "sender": row.sender or "",
                                "item_count": row.item_count, "payload_bytes": row.payload_bytes}
    receipt = {"received_at": row.received_at.astimezone(ctx.zone).isoformat(timespec="seconds"),
               "received_by": row.received_by, "sha256": row.sha256,
               "status_name": "通过检测，予以接收" if row.status == "accepted" else "未通过检测，退回移交单位"}
    return register_pdf(ctx, register, row.check_results, receipt)



def register_pdf(ctx: Context, register: dict[str, Any], results: list[dict[str, Any]] | None = None,
                 receipt: dict[str, Any] | None = None) -> bytes:
    """移交登记表 (export) or 移交与接收登记表 (with the receiver's check results) as a one-page-per-part PDF."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen.canvas import Canvas

    from archive.capture.cover_sheet import cjk_font

    font = cjk_font(ctx.settings.cjk_font)
    buf = io.BytesIO()
    width, height = A4
    c = Canvas(buf, pagesize=A4, pageCompression=1, invariant=1)
    title = "电子档案移交与接收登记表" if receipt is not None else "电子档案移交登记表"
    c.setTitle(f"{title} {register.get('package_no', '')}")
    c.setAuthor(str(register.get("sender", "")))
    y = height - 25 * mm

    def line(label: str, value: object, size: float = 10.5) -> None:
        nonlocal y
        if y < 20 * mm:
            c.showPage()
            y = height - 20 * mm
        c.setFont(font, size)
        c.drawString(20 * mm, y, label)
        c.drawString(62 * mm, y, str(value)[:90])
        y -= 7 * mm

    c.setFont(font, 16)
    c.drawCentredString(width / 2, y, title)
    y -= 12 * mm
    years = register.get("years")  # a stored register may predate validation: fall back on odd shapes
    years = years if isinstance(years, list) and len(years) == 2 else ["", ""]
    retention = register.get("retention_counts")
    retention = retention if isinstance(retention, dict) else {}
    labels = {"Y": "永久", "D30": "定期30年", "D10": "定期10年"}
    digests = register.get("digests")
    digests = digests if isinstance(digests, dict) else {}
    for label, value in [
        ("移交批次号", register.get("package_no", "")), ("移交单位", register.get("sender", "")),
        ("接收单位", register.get("receiver", "")), ("移交方式", register.get("transfer_method", "在线")),
        ("封装格式", register.get("format", FORMAT)), ("件数", register.get("item_count", "")),
        ("字节数", register.get("payload_bytes", "")), ("内容字节数", register.get("content_bytes", "")),
        ("年度范围", f"{years[0]}—{years[1]}"),
        ("保管期限", "，".join(f"{labels.get(k, k)} {v} 件" for k, v in retention.items())),
        ("目录文件 SHA-256", str(digests.get("sha256", ""))[:64]), ("目录文件 SM3", str(digests.get("sm3", ""))[:64]),
        ("制表时间", local_time(register.get("created_at"), ctx.zone)), ("制表人", register.get("created_by", "")),
    ]:
        line(label, value)
    if receipt is not None:
        y -= 4 * mm
        for label, value in [("接收时间", local_time(receipt.get("received_at"), ctx.zone)),
                             ("接收人", receipt.get("received_by", "")),
                             ("接收结论", receipt.get("status_name", "")),
                             ("接收包 SHA-256", receipt.get("sha256", ""))]:
            line(label, value)
    if results is not None:
        y -= 4 * mm
        from archive.checks.base import DIMENSION_NAMES, OUTCOME_NAMES, Dimension, Outcome

        for label, value in _summary(results):  # the 登记表's rows: 真实性…安全性, 病毒检测, 载体外观检测
            line(label, value)
        y -= 4 * mm
        line("检测项", "结果与说明", 11)
        for r in results:
            dim = DIMENSION_NAMES.get(Dimension(r["dimension"]), r["dimension"])
            outcome = OUTCOME_NAMES.get(Outcome(r["outcome"]), r["outcome"])
            line(f"{r['code']} {dim}", f"{r['name']}：{outcome}" + (f"（{r['target']}）" if r.get("target") else ""),
                 9)
            if r["outcome"] in ("failed", "error", "manual") and r.get("detail"):
                line("", str(r["detail"])[:80], 8)
    y -= 10 * mm
    line("移交人（签字）：", "                    接收人（签字）：")
    line("日期：", "                    日期：")
    c.showPage()
    c.save()
    return buf.getvalue()


def _summary(results: list[dict[str, Any]]) -> list[tuple[str, str]]:
    from archive.checks.base import DIMENSION_NAMES, OUTCOME_NAMES, Dimension, Outcome

    rows = []
    for dim in Dimension:
        bad = sorted({r["code"] for r in results
                      if r["dimension"] == dim.value and r["outcome"] in ("failed", "error")})
        rows.append((f"{DIMENSION_NAMES[dim]}检测", f"不通过（{'、'.join(bad)}）" if bad else "通过"))
    for label, code in (("病毒检测", "YJ-4-2"), ("载体外观检测", "YJ-4-4")):
        outcomes = {r["outcome"] for r in results if r["code"] == code}
        worst = next((o for o in ("error", "failed", "manual", "passed", "not_applicable") if o in outcomes), None)
        rows.append((label, OUTCOME_NAMES[Outcome(worst)] if worst else "未检测"))
    return rows
