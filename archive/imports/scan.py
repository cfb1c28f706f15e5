"""Pre-scan (预扫描): walk a vendor delivery once and write its normalised manifest; nothing is changed.

The manifest is JSON Lines: a header (the profile as read, its digest, the delivery, the catalogue's digest), one
``item`` line per catalogue row (fields after the profile's fixes, its folder, its ordered pages with size and
SHA-256, and the structural findings: folder missing, page gap, duplicate 档号 …), ``finding`` lines for the
delivery as a whole (unreadable catalogue, folders without a row, links) and a closing ``summary`` line.

Memory: one entry per page folder (name, size of each page) and one per 档号; rows are streamed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from archive.imports.findings import Finding, blocking, finding
from archive.imports.profile import Profile
from archive.imports.readers import CatalogueUnreadable, read_catalogue

MANIFEST_VERSION = 1
_LAYOUT_FIELD = re.compile(r"\{([^{}]+)\}")


@dataclass
class ScanSummary:
    items: int = 0
    pages: int = 0
    bytes: int = 0
    failing: int = 0
    excluded: int = 0
    findings: Counter[str] = field(default_factory=Counter)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def walk(root: Path, extensions: tuple[str, ...], on_finding: Callable[[Finding], None]
         ) -> dict[str, list[tuple[str, int]]]:
    """Page folders under ``root`` (posix relative path → [(file name, size)] by name). Links are never followed:
    each is a finding."""
    folders: dict[str, list[tuple[str, int]]] = {}
    stack = [root]
    while stack:
        here = stack.pop()
        pages: list[tuple[str, int]] = []
        with os.scandir(here) as entries:
            for e in entries:
                rel = Path(e.path).relative_to(root).as_posix()
                if e.is_symlink():
                    on_finding(finding("link_in_delivery", f"{rel} 是符号链接，指向交付目录之外的内容不予读取；"
                                       "请服务商以实际文件交付"))
                elif e.is_dir(follow_symlinks=False):
                    stack.append(Path(e.path))
                elif e.is_file(follow_symlinks=False) and e.name.lower().endswith(extensions):
                    pages.append((e.name, e.stat(follow_symlinks=False).st_size))
        if pages:
            folders[Path(here).relative_to(root).as_posix()] = sorted(pages)
    return folders


def safe_folder(layout: str, fields: dict[str, str]) -> tuple[str | None, str | None]:
    """The row's folder (posix, relative) or why it has none: a missing field or a path leaving the delivery."""
    names = _LAYOUT_FIELD.findall(layout)
    absent = [n for n in names if not fields.get(n)]
    if absent:
        return None, f"目录行缺少文件夹规则 {layout} 所需的 {'、'.join(absent)}"
    rel = layout.format_map(fields)
    parts = PurePosixPath(rel.replace("\\", "/")).parts
    if rel.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", rel) or ".." in parts or not parts:
        return None, "outside"
    return "/".join(parts), None


def page_gaps(names: list[str]) -> list[int]:
    """Missing page numbers when the pages are numbered (0001.jpg, 0002.jpg …)."""
    numbers = [int(m.group()) for n in names if (m := re.fullmatch(r"\d+", n.rsplit(".", 1)[0]))]
    if len(numbers) != len(names) or not numbers:
        return []
    have = set(numbers)
    return [n for n in range(1, max(numbers) + 1) if n not in have]


def rows_with_fields(profile: Profile, header: list[str], rows: Iterator[dict[str, str]]
                     ) -> Iterator[dict[str, str]]:
    columns = {c: f for c in header if c and (f := profile.field_of(c))}
    for row in rows:
        fields = {f: row.get(c, "") for c, f in columns.items() if row.get(c, "")}
        code = fields.get("档号", "")
        yield fields | profile.fixes.get(code, {})


def column_findings(profile: Profile, header: list[str]) -> list[Finding]:
    out = [finding("column_unknown", f"目录列“{c}”无法识别，未导入；如需导入请在映射配置 columns 中指定字段")
           for c in header if c and profile.field_of(c) is None]
    out += [finding("column_missing", f"映射配置 columns 中的列“{c}”在目录中不存在；请核对列名")
            for c in profile.columns if c not in header]
    return out


def scan(profile: Profile, profile_sha256: str, delivery: Path, manifest: Path,
         progress: Callable[[int], None] | None = None) -> ScanSummary:
    """Write the manifest of ``delivery`` to ``manifest`` (replaced atomically when done)."""
    delivery = delivery.resolve()
    summary = ScanSummary()
    tmp = manifest.with_name(manifest.name + ".part")
    with tmp.open("w", encoding="utf-8") as out:
        def write(obj: dict[str, Any]) -> None:
            out.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")

        def delivery_finding(f: Finding) -> None:
            summary.findings[f["code"]] += 1
            write({"type": "finding", **f})

        catalogue = delivery / profile.catalogue.file
        write({"type": "header", "version": MANIFEST_VERSION, "vendor": profile.vendor,
               "delivery_name": profile.delivery, "delivery": str(delivery), "profile": profile.model_dump(),
               "profile_sha256": profile_sha256,
               "catalogue_sha256": file_sha256(catalogue) if catalogue.is_file() else None,
               "scanned_at": datetime.now(UTC).isoformat()})
        if not _inside(delivery, catalogue):
            delivery_finding(finding("path_outside_delivery", f"目录文件 {profile.catalogue.file} 不在交付目录中"))
        else:
            folders = walk(delivery, tuple(e.lower() for e in profile.pages), delivery_finding)
            used = _scan_rows(profile, delivery, catalogue, folders, write, delivery_finding, summary, progress)
            for rel in sorted(set(folders) - used):
                delivery_finding(finding("folder_without_row", f"影像文件夹 {rel} 在目录中没有对应的行；"
                                         "请补录目录或移出该文件夹", rel))
        write({"type": "summary", "items": summary.items, "pages": summary.pages, "bytes": summary.bytes,
               "failing": summary.failing, "excluded": summary.excluded, "findings": dict(summary.findings)})
    tmp.replace(manifest)
    return summary


def _inside(root: Path, path: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root) and not path.is_symlink()
    except OSError:
        return False


def _scan_rows(profile: Profile, delivery: Path, catalogue: Path, folders: dict[str, list[tuple[str, int]]],
               write: Callable[[dict[str, Any]], None], delivery_finding: Callable[[Finding], None],
               summary: ScanSummary, progress: Callable[[int], None] | None) -> set[str]:
    used: set[str] = set()
    try:
        header, rows = read_catalogue(catalogue, profile.catalogue)
        for f in column_findings(profile, header):
            delivery_finding(f)
        codes = Counter(r.get("档号", "") for r in rows_with_fields(profile, header, rows))
        header, rows = read_catalogue(catalogue, profile.catalogue)
        seen: set[str] = set()
        for n, fields in enumerate(rows_with_fields(profile, header, rows), 2):  # row 1 is the header
            item = _item(profile, delivery, folders, fields, n, codes, seen)
            if item["folder"]:
                used.add(item["folder"])
            summary.items += 1
            summary.pages += len(item["files"])
            summary.bytes += sum(f[1] for f in item["files"])
            summary.findings.update(f["code"] for f in item["findings"])
            summary.failing += blocking(item["findings"])
            summary.excluded += item["excluded"]
            write(item)
            if progress:
                progress(summary.items)
    except CatalogueUnreadable as exc:
        delivery_finding(exc.finding)
    return used


def _item(profile: Profile, delivery: Path, folders: dict[str, list[tuple[str, int]]], fields: dict[str, str],
          row: int, codes: Counter[str], seen: set[str]) -> dict[str, Any]:
    code = fields.get("档号", "")
    key = code if code and code not in seen else f"{code or '无档号'}#第{row}行"
    seen.add(code)
    findings: list[Finding] = []
    if not code:
        findings.append(finding("code_missing", f"第 {row} 行没有档号", key))
    elif codes[code] > 1:
        findings.append(finding("code_duplicate", f"档号 {code} 在目录中出现 {codes[code]} 次（第 {row} 行）；"
                                "请核对后在映射配置 fixes 中更正或 exclude 排除", key))
    folder, why = safe_folder(profile.layout, fields)
    files: list[list[Any]] = []
    if why == "outside":
        findings.append(finding("path_outside_delivery", f"第 {row} 行按规则 {profile.layout} 得出的文件夹指向交付目录"
                                "之外，未读取", key))
        folder = None
    elif why:
        findings.append(finding("folder_missing", why, key))
    elif folder not in folders:
        findings.append(finding("folder_missing", f"找不到影像文件夹 {folder}", key))
    else:
        pages = folders[folder]
        files = [[name, size, file_sha256(delivery / folder / name)] for name, size in pages]
        gaps = page_gaps([p[0] for p in pages])
        if gaps:
            findings.append(finding("page_missing", f"影像文件夹 {folder} 缺第 {'、'.join(map(str, gaps[:10]))} 页",
                                    key))
    return {"type": "item", "key": key, "row": row, "fields": fields, "folder": folder, "files": files,
            "findings": findings, "excluded": code in profile.exclude}


def read_manifest(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def manifest_header(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        header: dict[str, Any] = json.loads(f.readline())
    return header
