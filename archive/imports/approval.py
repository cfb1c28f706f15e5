"""Dry-run reports kept and approved: the report is written beside the manifest (JSON, and XLSX for people),
registered in the catalogue with its digest, and approved by an archivist before anything is imported."""

from __future__ import annotations

import hashlib
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
    names = {"items": "条目", "pages": "页数", "bytes": "字节数", "importable": "可导入", "failing": "未通过",
             "excluded": "已排除"}
    for k, v in report["counts"].items():
        summary.append([names.get(k, k), v])
    summary.append([])
    summary.append(["问题代码", "含义", "级别", "数量"])
    for code, n in report["by_code"].items():
        severity, meaning = CODES.get(code, ("error", code))
        summary.append([code, meaning, SEVERITY[severity], n])
    sheet = book.create_sheet("问题清单")
    sheet.append(["档号/行", "目录行号", "级别", "问题代码", "说明"])
    for f in report["delivery_findings"]:
        sheet.append([f.get("key") or "（整批）", "", SEVERITY[f["severity"]], f["code"], f["message"]])
    for entry in report["failing"] + report["warnings"]:
        for f in entry["findings"]:
            sheet.append([entry["key"], entry["row"], SEVERITY[f["severity"]], f["code"], f["message"]])
    book.save(path)
