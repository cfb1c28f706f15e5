"""Dry-run report (预检报告) of a manifest against DA/T 31 and the archive's rules; nothing is imported.

Per item: the scan's structural findings, the catalogue record (business type, 保管期限, date, 证件号码 check digit,
档号 against the template), page count against 页数, and every page image: opens, resolution, colour mode, blank
(flat grey levels) and duplicate pages (same dHash in one item). Images are checked in a process pool, items
streamed in chunks, so memory stays bounded. The report (JSON) lists counts and the failing rows; an import
proceeds only from a report someone approved.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archive.archival_code import CodeRule
from archive.classification import Schedule
from archive.imports.findings import Finding, blocking, finding
from archive.imports.profile import Profile
from archive.imports.records import resolve
from archive.imports.scan import read_manifest

if TYPE_CHECKING:
    from PIL import Image

CHUNK = 64
BLANK_STDDEV = 4.0  # grey-level spread below which a page is taken as blank
CALM_MODES = {"1", "L", "RGB", "P", "LA", "I;16"}


def dhash(image: Image.Image) -> str:
    """Difference hash (64 bits) of a page: equal for the same page scanned twice, robust to recompression."""
    from PIL import Image

    small = image.convert("L").resize((9, 8), Image.Resampling.BILINEAR)
    px = list(small.getdata())
    bits = sum(1 << i for i in range(64) if px[(i // 8) * 9 + i % 8] > px[(i // 8) * 9 + i % 8 + 1])
    return f"{bits:016x}"


def check_pages(delivery: str, item: dict[str, Any], min_dpi: int) -> list[Finding]:
    """The page images of one item (runs in a worker process)."""
    from PIL import Image, ImageStat

    out: list[Finding] = []
    key, folder = item["key"], item["folder"]
    hashes: dict[str, str] = {}
    for name, _size, _sha in item["files"]:
        path = Path(delivery, folder, name)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(path) as im:
                    im.verify()
                with Image.open(path) as im:
                    im.draft("L", (64, 64))  # JPEG: decode at 1/8 scale, enough for blank and duplicate tests
                    dpi = im.info.get("dpi")
                    mode = im.mode
                    grey = im.convert("L")
                    grey.thumbnail((64, 64))
                    spread = ImageStat.Stat(grey).stddev[0]
                    h = dhash(grey)
        except Exception:  # PIL raises many types for broken files
            out.append(finding("image_corrupt", f"{folder}/{name} 损坏或不是影像文件，无法打开；请服务商重新扫描", key))
            continue
        resolution = min(float(dpi[0]), float(dpi[1])) if dpi else 0.0
        if resolution < min_dpi:
            shown = f"{resolution:.0f} dpi" if dpi else "未记录分辨率"
            out.append(finding("low_resolution", f"{folder}/{name} 为 {shown}，低于 {min_dpi} dpi（DA/T 31）", key))
        if mode not in CALM_MODES:
            out.append(finding("colour_mode", f"{folder}/{name} 色彩模式为 {mode}，建议黑白、灰度或 RGB 彩色", key))
        if spread < BLANK_STDDEV:
            out.append(finding("blank_page", f"{folder}/{name} 疑似空白页；请核对原件是否为空白页", key))
        elif h in hashes:
            out.append(finding("duplicate_page", f"{folder}/{name} 与 {hashes[h]} 疑似重复", key))
        else:
            hashes[h] = name
    return out


def _pages_chunk(delivery: str, items: list[dict[str, Any]], min_dpi: int) -> list[list[Finding]]:
    return [check_pages(delivery, it, min_dpi) for it in items]


def item_findings(profile: Profile, schedule: Schedule, rule: CodeRule, item: dict[str, Any]) -> list[Finding]:
    """The catalogue-record findings of one item (cheap; runs in the parent)."""
    key, fields = item["key"], item["fields"]
    _record, out = resolve(profile, schedule, rule, key, fields)
    declared = fields.get("页数", "")
    if item["folder"] and declared:
        if not declared.isdigit():
            out.append(finding("page_count_mismatch", f"目录页数“{declared}”不是数字", key))
        elif int(declared) != len(item["files"]):
            out.append(finding("page_count_mismatch", f"目录页数 {declared}，影像 {len(item['files'])} 页", key))
    if item["folder"] and not item["files"]:
        out.append(finding("folder_empty", f"影像文件夹 {item['folder']} 中没有影像文件", key))
    return out


def _chunks(it: Iterator[dict[str, Any]], n: int) -> Iterator[list[dict[str, Any]]]:
    while chunk := list(islice(it, n)):
        yield chunk


def manifest_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def build_report(manifest: Path, schedule: Schedule, rule: CodeRule, *, workers: int | None = None,
                 progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """The dry-run report of ``manifest`` as a JSON-able dict."""
    lines = read_manifest(manifest)
    header = next(lines)
    profile = Profile.model_validate(header["profile"])
    counts: Counter[str] = Counter()
    by_code: Counter[str] = Counter()
    failing: list[dict[str, Any]] = []
    warned: list[dict[str, Any]] = []
    delivery_findings: list[Finding] = []
    items = _items(lines, delivery_findings)
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        futures: list[Any] = []
        pending: list[list[dict[str, Any]]] = []

        def settle(chunk: list[dict[str, Any]], page_findings: list[list[Finding]]) -> None:
            for item, pages in zip(chunk, page_findings, strict=True):
                found = item["findings"] + item_findings(profile, schedule, rule, item) + pages
                by_code.update(f["code"] for f in found)
                counts["items"] += 1
                counts["pages"] += len(item["files"])
                counts["bytes"] += sum(f[1] for f in item["files"])
                entry = {"key": item["key"], "row": item["row"], "findings": found}
                if item["excluded"]:
                    counts["excluded"] += 1
                elif blocking(found):
                    counts["failing"] += 1
                    failing.append(entry)
                else:
                    counts["importable"] += 1
                    if found:
                        warned.append(entry)
            if progress:
                progress(counts["items"])

        for chunk in _chunks(items, CHUNK):
            futures.append(pool.submit(_pages_chunk, header["delivery"], [i for i in chunk if i["files"]],
                                       profile.min_dpi))
            pending.append(chunk)
            if len(futures) >= 4 * (workers or os.cpu_count() or 1):
                _settle_first(futures, pending, settle)
        while futures:
            _settle_first(futures, pending, settle)
    by_code.update(f["code"] for f in delivery_findings)
    return {"manifest": str(manifest), "manifest_sha256": manifest_digest(manifest), "vendor": header["vendor"],
            "delivery_name": header["delivery_name"], "profile_sha256": header["profile_sha256"],
            "created_at": datetime.now(UTC).isoformat(),
            "counts": {k: counts[k] for k in ("items", "pages", "bytes", "importable", "failing", "excluded")},
            "by_code": dict(sorted(by_code.items())), "delivery_findings": delivery_findings,
            "failing": failing, "warnings": warned,
            "blocked": any(f["severity"] == "error" and f["code"] in ("catalogue_unreadable", "catalogue_encoding")
                           for f in delivery_findings)}


def _settle_first(futures: list[Any], pending: list[list[dict[str, Any]]],
                  settle: Callable[[list[dict[str, Any]], list[list[Finding]]], None]) -> None:
    chunk = pending.pop(0)
    results = iter(futures.pop(0).result())
    settle(chunk, [next(results) if i["files"] else [] for i in chunk])


def _items(lines: Iterator[dict[str, Any]], delivery_findings: list[Finding]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if line["type"] == "item":
            yield line
        elif line["type"] == "finding":
            delivery_findings.append(finding(line["code"], line["message"], line.get("key")))


def write_report(report: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")


def failing_keys(report: dict[str, Any]) -> set[str]:
    return {e["key"] for e in report["failing"]}
