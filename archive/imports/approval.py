"""Dry-run reports kept and approved: the report is written beside the manifest (JSON, and XLSX and PDF for people),
registered in the catalogue with its digest, and approved by an archivist before anything is imported."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from archive import audit
from archive.audit import Actor
from archive.catalogue.models import ImportReport
from archive.catalogue.types import utcnow
from archive.context import Context
from archive.errors import Conflict, InvalidInput, NotFound
from archive.imports.dryrun import build_report, write_report

SEVERITY = {"error": "错误", "warning": "警告"}
COUNT_NAMES = {"items": "条目", "pages": "页数", "bytes": "字节数", "importable": "可导入", "failing": "未通过",
               "excluded": "已排除"}
PDF_ROWS = 2000  # findings listed in the PDF; the XLSX lists them all


def make_report(ctx: Context, actor: Actor, manifest: Path, *, workers: int | None = None,
                progress: Any = None) -> ImportReport:
    """Run the dry run of ``manifest`` and register its report (status draft)."""
    if not manifest.is_file():
        raise InvalidInput(f"清单文件 {manifest} 不存在", code="import_manifest_invalid",
                           detail={"path": str(manifest)})
    try:
        report = build_report(manifest, ctx.schedule, ctx.code_rule, workers=workers, progress=progress)
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"清单文件 {manifest.name} 格式有误（{type(exc).__name__}）；"
                           "请用 archive import scan 重新生成",
                           code="import_manifest_invalid", detail={"path": str(manifest)}) from None
    path = manifest.with_name(manifest.stem + ".report.json")
    write_report(report, path)
    report_xlsx(report, path.with_suffix(".xlsx"))
    path.with_suffix(".pdf").write_bytes(report_pdf(report, ctx.settings.fonds_name, ctx.settings.cjk_font))
    with ctx.catalogue.session() as s:
        row = ImportReport(manifest_sha256=report["manifest_sha256"], manifest_path=str(manifest.resolve()),
                           report_path=str(path.resolve()),
                           report_sha256=hashlib.sha256(path.read_bytes()).hexdigest(), vendor=report["vendor"],
                           delivery_name=report["delivery_name"], counts=report["counts"], status="draft",
                           created_by=actor.name)
        s.add(row)
        s.flush()
        audit.record(s, actor, "import.report", target_type="import_report", target_id=row.id,
                     detail={"manifest_sha256": row.manifest_sha256, "counts": row.counts})
        s.expunge(row)
    return row


def approve(ctx: Context, s: Session, actor: Actor, report_id: int) -> ImportReport:
    """批准预检报告: the report file must be the one registered (unchanged since)."""
    row = s.get(ImportReport, report_id)
    if row is None:
        raise NotFound(f"预检报告 {report_id} 不存在", code="import_report_not_found", detail={"report": report_id})
    if row.status == "approved":
        raise Conflict(f"预检报告 {report_id} 已于先前批准", code="import_report_approved",
                       detail={"report": report_id})
    path = Path(row.report_path)
    if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != row.report_sha256:
        raise Conflict(f"预检报告文件 {path.name} 已不存在或被改动，不能批准；请重新出具预检报告",
                       code="import_report_changed", detail={"report": report_id})
    row.status, row.approved_by, row.approved_at = "approved", actor.name, utcnow()
    audit.record(s, actor, "import.approve", target_type="import_report", target_id=row.id,
                 detail={"counts": row.counts, "report_sha256": row.report_sha256})
    return row


def report_xlsx(report: dict[str, Any], path: Path) -> None:
    """The report as a workbook: 汇总 (counts and findings by code) and 问题清单 (one row per finding)."""
    import openpyxl

    from archive.imports.findings import CODES

    book = openpyxl.Workbook(write_only=True)
    summary = book.create_sheet("汇总")
    summary.append(["服务商", report["vendor"]])
    summary.append(["批次", report["delivery_name"]])
    summary.append(["清单 SHA-256", report["manifest_sha256"]])
    for k, v in report["counts"].items():
        summary.append([COUNT_NAMES.get(k, k), v])
    summary.append([])
    summary.append(["问题代码", "含义", "级别", "数量"])
    for code, n in report["by_code"].items():
        severity, meaning = CODES.get(code, ("error", code))
        summary.append([code, meaning, SEVERITY[severity], n])
    sheet = book.create_sheet("问题清单")
    sheet.append(["档号/行", "目录行号", "级别", "问题代码", "说明"])
    for r in _finding_rows(report):
        sheet.append(r)
    book.save(path)


def _finding_rows(report: dict[str, Any]) -> Iterator[list[Any]]:
    for f in report["delivery_findings"]:
        yield [f.get("key") or "（整批）", "", SEVERITY[f["severity"]], f["code"], f["message"]]
    for entry in report["failing"] + report["warnings"]:
        for f in entry["findings"]:
            yield [entry["key"], entry["row"], SEVERITY[f["severity"]], f["code"], f["message"]]


def report_pdf(report: dict[str, Any], fonds_name: str, font_path: Path | None) -> bytes:
    """The report as a PDF to read, sign and file with the approval: counts, findings by code, the failing rows
    (the first PDF_ROWS; the XLSX has them all)."""
    from itertools import islice

    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, Spacer

    from archive.imports.findings import CODES
    from archive.pdfs import cell, cjk_font, grid_table, landscape_pdf, style

    font = cjk_font(font_path)
    title, body = style("title", font, 15, 20, alignment=1), style("body", font, 8.5, 11, wordWrap="CJK")
    story: list[Any] = [
        Paragraph("存量档案导入预检报告", title), Spacer(1, 4 * mm),
        cell(f"立档单位：{fonds_name}　数字化服务商：{report['vendor']}　批次：{report['delivery_name']}", body),
        cell(f"清单 SHA-256：{report['manifest_sha256']}", body), Spacer(1, 3 * mm),
        grid_table([[COUNT_NAMES.get(k, k) for k in report["counts"]], [str(v) for v in report["counts"].values()]],
                   [40 * mm] * len(report["counts"]), font=font),
        Spacer(1, 4 * mm)]
    by_code = [["问题代码", "含义", "级别", "数量"]] + [
        [code, CODES.get(code, ("error", code))[1], SEVERITY[CODES.get(code, ("error", code))[0]], str(n)]
        for code, n in report["by_code"].items()]
    story += [grid_table(by_code, [50 * mm, 110 * mm, 20 * mm, 25 * mm], font=font), Spacer(1, 4 * mm)]
    rows = list(islice(_finding_rows(report), PDF_ROWS + 1))
    listed = [[cell(v, body) for v in r] for r in rows[:PDF_ROWS]]
    story.append(grid_table([["档号/行", "目录行号", "级别", "问题代码", "说明"], *listed],
                            [62 * mm, 18 * mm, 14 * mm, 40 * mm, 135 * mm], font=font))
    if len(rows) > PDF_ROWS:
        story.append(Paragraph(f"问题超过 {PDF_ROWS} 条，其余见同名 XLSX 报告。", body))
    if report.get("blocked"):
        story.append(Paragraph("目录无法读取：本批次没有可导入的条目。", body))
    story += [Spacer(1, 8 * mm), Paragraph("审核人（档案部门）签字：　　　　　　　　　日期：", body)]
    return landscape_pdf(story, margin=10 * mm, title=f"存量档案导入预检报告 {report['delivery_name']}",
                         author=fonds_name)


def recent_reports(ctx: Context, limit: int = 50) -> list[ImportReport]:
    """The newest dry-run reports (draft or approved), for the console page."""
    from sqlalchemy import select

    with ctx.catalogue.reading() as r:
        rows = list(r.scalars(select(ImportReport).order_by(ImportReport.id.desc()).limit(limit)))
        for row in rows:
            r.expunge(row)
    return rows


def report_file(ctx: Context, report_id: int, suffix: str) -> tuple[str, bytes]:
    """A registered report's PDF or XLSX (file name, bytes)."""
    with ctx.catalogue.reading() as r:
        row = r.get(ImportReport, report_id)
        if row is None:
            raise NotFound(f"预检报告 {report_id} 不存在", code="import_report_not_found",
                           detail={"report": report_id})
        path = Path(row.report_path).with_suffix(suffix)
    if not path.is_file():
        raise NotFound(f"预检报告 {report_id} 的 {suffix[1:].upper()} 文件已不在原位置（{path.name}）；"
                       "请重新出具预检报告", code="import_report_not_found", detail={"report": report_id})
    return path.name, path.read_bytes()
