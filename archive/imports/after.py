"""After an import: the reconciliation (核对) of manifest against archive, the random sample for manual
inspection (抽检) with a verdict per item, and the 交接登记表 (PDF) for the vendor hand-over."""

from __future__ import annotations

import io
import random
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from archive import audit
from archive.audit import Actor
from archive.catalogue.models import ArchiveItem, Document, ImportItem, ImportJob, ImportSample
from archive.catalogue.types import utcnow
from archive.context import Context
from archive.errors import Conflict, InvalidInput, NotFound
from archive.imports.scan import read_manifest


def _job(s: Session, job_id: int) -> ImportJob:
    job = s.get(ImportJob, job_id)
    if job is None:
        raise NotFound(f"导入任务 {job_id} 不存在", code="import_job_not_found", detail={"job": job_id})
    return job


def reconcile(ctx: Context, job_id: int) -> dict[str, Any]:
    """Rows, items, pages and bytes of the manifest against what the archive holds; every difference explained
    (excluded or failed rows with their reasons; imported items whose page count differs)."""
    with ctx.catalogue.reading() as r:
        job = _job(r, job_id)
        manifest = {"rows": 0, "pages": 0, "bytes": 0}
        for line in read_manifest(Path(job.manifest_path)):
            if line["type"] == "item":
                manifest["rows"] += 1
                manifest["pages"] += len(line["files"])
                manifest["bytes"] += sum(f[1] for f in line["files"])
        imported = r.execute(
            select(func.count(ArchiveItem.id.distinct()), func.count(Document.id),
                   func.coalesce(func.sum(Document.size), 0))
            .select_from(ImportItem).join(ArchiveItem, ArchiveItem.id == ImportItem.item_id)
            .join(Document, Document.case_id == ArchiveItem.case_id)
            .where(ImportItem.job_id == job_id)).one()
        states: Counter[str] = Counter()
        differences: list[dict[str, Any]] = []
        for row in r.scalars(select(ImportItem).where(ImportItem.job_id == job_id).order_by(ImportItem.row)):
            states[row.state] += 1
            if row.state in ("failed", "excluded"):
                differences.append({"key": row.key, "row": row.row, "state": row.state, "reason": row.reason,
                                    "pages": row.pages, "bytes": row.bytes})
        left_out = {"rows": len(differences), "pages": sum(d["pages"] for d in differences),
                    "bytes": sum(d["bytes"] for d in differences)}
        archive = {"rows": int(imported[0]), "pages": int(imported[1]), "bytes": int(imported[2])}
        unexplained = {k: manifest[k] - archive[k] - left_out[k] for k in manifest}
        return {"job": job_id, "vendor": job.vendor, "delivery": job.delivery_name, "manifest": manifest,
                "archive": archive, "left_out": left_out, "unexplained": unexplained,
                "balanced": not any(unexplained.values()), "states": dict(states), "differences": differences}


def draw_sample(ctx: Context, actor: Actor, job_id: int, size: int, seed: int | None = None) -> list[ImportSample]:
    """A random sample of the imported items for 抽检 (drawn once per job; drawing again answers the same)."""
    if size < 1:
        raise InvalidInput("抽检数量至少为 1", code="import_sample_invalid", detail={"size": size})
    with ctx.catalogue.session() as s:
        _job(s, job_id)
        existing = list(s.scalars(select(ImportSample).where(ImportSample.job_id == job_id).order_by(ImportSample.id)))
        if existing:
            return existing
        ids = list(s.scalars(select(ImportItem.id).where(ImportItem.job_id == job_id,
                                                         ImportItem.state.in_(("catalogued", "indexed")))))
        chosen = sorted(random.Random(seed).sample(ids, min(size, len(ids))))
        rows = [ImportSample(job_id=job_id, import_item_id=i) for i in chosen]
        s.add_all(rows)
        s.flush()
        audit.record(s, actor, "import.sample", target_type="import_job", target_id=job_id,
                     detail={"size": len(rows), "of": len(ids), "seed": seed})
        return rows


def record_verdict(ctx: Context, actor: Actor, job_id: int, key: str, verdict: str, note: str | None) -> ImportSample:
    if verdict not in ("pass", "fail"):
        raise InvalidInput("抽检结论只能是 pass（合格）或 fail（不合格）", code="import_sample_invalid",
                           detail={"verdict": verdict})
    if verdict == "fail" and not note:
        raise InvalidInput("不合格须写明原因", code="import_sample_invalid", detail={"field": "note"})
    with ctx.catalogue.session() as s:
        row = s.scalar(select(ImportSample).join(ImportItem, ImportItem.id == ImportSample.import_item_id)
                       .where(ImportSample.job_id == job_id, ImportItem.key == key))
        if row is None:
            raise NotFound(f"{key} 不在导入任务 {job_id} 的抽检样本中", code="import_sample_not_found",
                           detail={"job": job_id, "key": key})
        if row.verdict != "pending":
            raise Conflict(f"{key} 的抽检结论已登记", code="import_sample_recorded", detail={"key": key})
        row.verdict, row.note, row.checked_by, row.checked_at = verdict, note, actor.name, utcnow()
        audit.record(s, actor, "import.sample.verdict", target_type="import_job", target_id=job_id,
                     detail={"key": key, "verdict": verdict, "note": note})
        s.flush()
        s.expunge(row)
        return row


def sample_rows(ctx: Context, job_id: int) -> list[dict[str, Any]]:
    with ctx.catalogue.reading() as r:
        rows = r.execute(select(ImportItem.key, ImportItem.archival_code, ImportSample.verdict, ImportSample.note,
                                ImportSample.checked_by).join(ImportItem, ImportItem.id == ImportSample.import_item_id)
                         .where(ImportSample.job_id == job_id).order_by(ImportSample.id)).all()
    return [{"key": k, "archival_code": c, "verdict": v, "note": n, "checked_by": b} for k, c, v, n, b in rows]


def handover_pdf(ctx: Context, job_id: int) -> bytes:
    """交接登记表 of the vendor delivery: batch, counts, reconciliation, sample verdicts, signature lines."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm

    from archive.pdfs import a4_canvas, cjk_font

    rec = reconcile(ctx, job_id)
    samples = sample_rows(ctx, job_id)
    verdicts = Counter(s["verdict"] for s in samples)
    font = cjk_font(ctx.settings.cjk_font)
    buf = io.BytesIO()
    width, height = A4
    c = a4_canvas(buf, title=f"存量档案数字化成果交接登记表 {rec['delivery']}", author=ctx.settings.fonds_name,
                  invariant=True)
    y = height - 25 * mm
    c.setFont(font, 16)
    c.drawCentredString(width / 2, y, "存量档案数字化成果交接登记表")
    y -= 14 * mm
    rows = [("立档单位", ctx.settings.fonds_name), ("数字化服务商", rec["vendor"]), ("交付批次", rec["delivery"]),
            ("导入任务", str(job_id)),
            ("目录条目 / 页数 / 字节", _triple(rec["manifest"])), ("已入库 件 / 页 / 字节", _triple(rec["archive"])),
            ("未入库 件 / 页", f"{rec['left_out']['rows']} / {rec['left_out']['pages']}（明细见核对报告）"),
            ("核对结论", "账实相符" if rec["balanced"] else f"有未说明差异：{rec['unexplained']}"),
            ("抽检", f"样本 {len(samples)} 件：合格 {verdicts['pass']}，不合格 {verdicts['fail']}，"
                     f"未检 {verdicts['pending']}")]
    for label, value in rows:
        c.setFont(font, 10.5)
        c.drawString(20 * mm, y, label)
        c.drawString(70 * mm, y, value[:60])
        y -= 8 * mm
    y -= 6 * mm
    c.setFont(font, 10.5)
    for d in rec["differences"][:20]:
        c.drawString(20 * mm, y, f"{d['key']}（第 {d['row']} 行）：{(d['reason'] or '')[:50]}")
        y -= 6 * mm
        if y < 40 * mm:
            break
    y = min(y, 45 * mm) - 5 * mm
    c.drawString(20 * mm, y, "移交方（服务商）签字：                 接收方（档案部门）签字：")
    c.drawString(20 * mm, y - 8 * mm, "日期：                                 日期：")
    c.showPage()
    c.save()
    return buf.getvalue()


def _triple(counts: dict[str, int]) -> str:
    return f"{counts['rows']} / {counts['pages']} / {counts['bytes']}"
