"""BagIt containers (RFC 8493) for transfer packages: tag files and manifests written, bags read back safely.

Reading is bounded: a hostile container (not a zip, paths leaving the package, symbolic links, declared sizes
over the limit, tag files far larger than the package's EEPs explain) is refused with :class:`TransferRefused`
before anything is parsed. The package's own files (items.json, register.json) are named here because their
size bounds are checked on opening; what they contain is archive/retention/transfer.py's and register.py's.
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Protocol, cast

from archive.errors import ArchiveError, NotFound
from signing.fixity import Digests, Hasher, digest_bytes

BAGIT = "bagit.txt"
BAG_INFO = "bag-info.txt"
MANIFESTS = {"sha256": "manifest-sha256.txt", "sm3": "manifest-sm3.txt"}
TAG_MANIFEST = "tagmanifest-sha256.txt"
ITEMS = "data/items.json"
REGISTER = "data/register.json"
REGISTER_PDF = "data/register.pdf"
EEP_DIR = "data/eep/"
BAGIT_TEXT = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
JSON_BASE_BYTES = 64 * 1024  # a tag/JSON file may have this much, plus JSON_PER_EEP_BYTES per EEP in the bag
JSON_PER_EEP_BYTES = 8 * 1024  # an items.json entry we write is under 1 KB
JSON_MAX_BYTES = 64 * 1024 * 1024  # and never more (json.loads of tiny objects takes ~50 times the bytes in RAM)
CHUNK = 1024 * 1024
_SAFE_PART = re.compile(r"[^/\\\x00-\x1f:*?\"<>|]+")


class TransferRefused(ArchiveError):
    """The package cannot even be opened safely: nothing is checked, nothing is recorded but the audit."""

    kind = "invalid"
    code = "transfer_refused"


# --- writing ------------------------------------------------------------------------------------------


class Sink(Protocol):
    def add(self, rel: str, data: bytes) -> None: ...


class ZipSink:
    def __init__(self, archive: zipfile.ZipFile, prefix: str, when: datetime) -> None:
        self.archive, self.prefix = archive, prefix
        self.stamp = when.timetuple()[:6]

    def add(self, rel: str, data: bytes) -> None:
        info = zipfile.ZipInfo(self.prefix + rel, date_time=self.stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        self.archive.writestr(info, data, compresslevel=1)


@dataclass
class Payload:
    """What has gone into data/ so far: digests per file, in order."""

    sink: Sink
    files: dict[str, Digests] = field(default_factory=dict)

    def add(self, rel: str, data: bytes) -> Digests:
        h = Hasher()
        h.update(data)
        self.files[rel] = h.digests()
        self.sink.add(rel, data)
        return self.files[rel]


def write_tags(sink: Sink, files: dict[str, Digests], bag_info: dict[str, str]) -> Digests:
    """Write bagit.txt, bag-info.txt, the payload manifests and the tag manifest; returns the bag digest
    (of tagmanifest-sha256.txt, which covers everything transitively)."""
    tags = {
        BAGIT: BAGIT_TEXT.encode(),
        BAG_INFO: "".join(f"{k}: {v}\n" for k, v in bag_info.items()).encode(),
        **{MANIFESTS[alg]: "".join(f"{getattr(d, alg)}  {rel}\n" for rel, d in files.items()).encode()
           for alg in MANIFESTS},
    }
    for rel, data in tags.items():
        sink.add(rel, data)
    tag_manifest = "".join(f"{digest_bytes(data).sha256}  {rel}\n" for rel, data in tags.items()).encode()
    sink.add(TAG_MANIFEST, tag_manifest)
    return digest_bytes(tag_manifest)


def payload_oxum(files: dict[str, Digests]) -> str:
    return f"{sum(d.size for d in files.values())}.{len(files)}"


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


def check_name(name: str) -> None:
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
            check_name(info.filename)
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


def extract_zip(source: Path, target: Path) -> Path:
    """Unpack a package zip we made (CLI ``--dir``); returns the bag's root folder."""
    with zipfile.ZipFile(source) as z:
        for info in z.infolist():
            check_name(info.filename)
        z.extractall(target)
        tops = {PurePosixPath(n).parts[0] for n in z.namelist()}
    return target / tops.pop() if len(tops) == 1 else target


def parse_tag_lines(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        k, sep, v = line.partition(":")
        if sep and k.strip():
            out[k.strip()] = v.strip()
    return out
