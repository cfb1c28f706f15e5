"""Check reports (检测报告): persisted results of one run of check items on one subject."""

from __future__ import annotations

import io
from collections import Counter
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from archive import audit
from archive.audit import Actor
from archive.catalogue.models import CheckReport, CheckResult
from archive.catalogue.types import utcnow
from archive.checks.base import (
    DIMENSION_NAMES,
    OUTCOME_NAMES,
    REGISTRY,
    CheckItem,
    Dimension,
    Outcome,
    Result,
    Stage,
    code_key,
)
from archive.errors import Conflict, InvalidInput, NotFound
from archive.localtime import local_time

_BAD = (Outcome.FAILED, Outcome.ERROR)


def save_report(session: Session, actor: Actor, stage: Stage, subject: str,
                results: list[tuple[CheckItem, Result]], **context: Any) -> Any:
    """Store a report (and its audit event) in the caller's transaction; returns the row (``id``, ``passed``).

    ``context`` is kept as JSON on the report; an ``item_id`` in it links the report to that archive item.
    """
    item_id = context.pop("item_id", None)
    report = CheckReport(stage=Stage(stage).value, subject=str(subject)[:128], item_id=item_id,
                         created_at=utcnow(), operator=actor.name, operator_type=actor.kind,
                         outcome="", passed=True, counts={}, context=_jsonable(context) or None)
    for pos, (item, r) in enumerate(results, start=1):
        report.results.append(CheckResult(
            position=pos, code=item.code, name=item.name, dimension=item.dimension.value,
            object=item.object.value, target=None if r.target is None else str(r.target)[:255],
            outcome=Outcome(r.outcome).value, detail=r.detail, blocking=item.blocking, basis=item.basis[:100],
            data=_jsonable(r.data) or None))
    summarise(report)
    session.add(report)
    session.flush()
    audit.record(session, actor, "check.report", target_type="check_report", target_id=report.id,
                 outcome="success" if report.passed else "failure", detail={
                     "stage": report.stage, "subject": report.subject, "outcome": report.outcome,
                     "counts": report.counts, "failed": failed_codes(report)})
    return report


def summarise(report: CheckReport) -> None:
    """(Re)compute a report's counts and overall outcome from its result rows."""
    counts = Counter(r.outcome for r in report.results)
    blocking_bad = any(r.blocking and r.outcome in _BAD for r in report.results)
    warning = any(not r.blocking and r.outcome in _BAD for r in report.results)
    report.counts = {o.value: counts.get(o.value, 0) for o in Outcome} | {"total": len(report.results)}
    report.passed = not blocking_bad
    report.outcome = "failed" if blocking_bad else "warning" if warning else "passed"


def failed_codes(report: CheckReport) -> list[str]:
    return sorted({r.code for r in report.results if r.outcome in _BAD})


def _jsonable(value: Any) -> Any:
    """Context and result data go into JSON columns: keep plain values, stringify the rest."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


# --- reading, manual items, statistics -------------------------------------------------------------


def get_report(session: Session, report_id: int) -> CheckReport:
    report = session.get(CheckReport, report_id)
    if report is None:
        raise NotFound(f"检测报告 {report_id} 不存在", code="check_report_not_found", detail={"id": report_id})
    return report


def reports_of_item(session: Session, item_id: int) -> list[CheckReport]:
    return list(session.scalars(select(CheckReport).where(CheckReport.item_id == item_id)
                                .order_by(CheckReport.id)))


def report_dict(report: CheckReport) -> dict[str, Any]:
    return {
        "id": report.id, "stage": report.stage, "stage_name": STAGE_NAMES.get(report.stage, report.stage),
        "subject": report.subject, "item_id": report.item_id, "created_at": report.created_at.isoformat(),
        "operator": report.operator, "operator_type": report.operator_type, "outcome": report.outcome,
        "outcome_name": REPORT_OUTCOME_NAMES.get(report.outcome, report.outcome), "passed": report.passed,
        "counts": report.counts, "context": report.context or {},
        "results": [{
            "code": r.code, "name": r.name, "dimension": r.dimension,
            "dimension_name": DIMENSION_NAMES.get(Dimension(r.dimension), r.dimension) if r.dimension in _DIMS
            else r.dimension,
            "object": r.object, "object_name": OBJECT_NAMES.get(r.object, r.object), "target": r.target,
            "outcome": r.outcome, "outcome_name": OUTCOME_NAMES.get(Outcome(r.outcome), r.outcome),
            "blocking": r.blocking, "basis": r.basis, "detail": r.detail, "data": r.data,
            "recorded_by": r.recorded_by, "recorded_at": r.recorded_at.isoformat() if r.recorded_at else None,
        } for r in report.results],
    }


STAGE_NAMES = {"gd": "归档环节", "yj": "移交与接收环节", "bc": "长期保存环节"}
REPORT_OUTCOME_NAMES = {"passed": "通过", "warning": "通过（有警告）", "failed": "不通过"}
OBJECT_NAMES = {"metadata": "元数据", "content": "电子文件内容", "package": "信息包", "carrier": "载体",
                "environment": "系统环境", "process": "过程"}
_DIMS = {d.value for d in Dimension}
MANUAL_OUTCOMES = (Outcome.PASSED, Outcome.FAILED, Outcome.NOT_APPLICABLE)


def load_items() -> None:
    """Import the modules that register check items (the registry fills on import); a missing one is a bug."""
    from archive.checks import bc, gd, yj  # noqa: F401


def record_manual(session: Session, actor: Actor, report_id: int, code: str, outcome: Outcome, detail: str,
                  target: str | None = None) -> CheckReport:
    """A person records the result of a manual item (载体外观 …) on a report; audited, recorded once."""
    load_items()
    report = get_report(session, report_id)
    item = REGISTRY.get(code)
    if item is None or not item.manual or item.stage.value != report.stage:
        manual = sorted(i.code for i in REGISTRY.values() if i.manual and i.stage.value == report.stage)
        raise InvalidInput(f"{code} 不是本环节需人工检测的项目；可登记的项目：{'、'.join(manual) or '无'}",
                           code="not_a_manual_item", detail={"code": code, "manual_items": manual})
    if outcome not in MANUAL_OUTCOMES:
        raise InvalidInput("人工检测结果只能是 passed（通过）、failed（不通过）或 not_applicable（不适用）",
                           code="invalid_manual_outcome", detail={"outcome": str(outcome)})
    if not detail.strip() or _has_control(detail):
        raise InvalidInput("请填写检测说明（不含控制字符）", code="invalid_manual_detail")
    row = next((r for r in report.results if r.code == code and (target is None or r.target == target)), None)
    if row is not None and row.recorded_by is not None:
        raise Conflict(f"检测项 {code} 已由 {row.recorded_by} 于 {row.recorded_at:%Y-%m-%d %H:%M} 登记，不能重复登记",
                       code="manual_item_recorded", detail={"code": code})
    before = None
    if row is None:
        row = CheckResult(position=len(report.results) + 1, code=code, name=item.name,
                          dimension=item.dimension.value, object=item.object.value, target=target,
                          outcome="", detail="", blocking=item.blocking, basis=item.basis[:100], data=None)
        report.results.append(row)
    else:
        before = row.outcome
    row.outcome, row.detail = outcome.value, detail.strip()
    row.recorded_by, row.recorded_at = actor.name, utcnow()
    summarise(report)
    session.flush()
    audit.record(session, actor, "check.manual", target_type="check_report", target_id=report.id,
                 outcome="success", detail={"code": code, "target": target, "outcome": outcome.value,
                                            "before": before, "report_outcome": report.outcome})
    return report


def _has_control(text_: str) -> bool:
    return any((ord(c) < 32 and c not in "\n\t") or ord(c) == 127 for c in text_)


PERIODS = ("day", "month", "year")
_FORMATS = {"day": ("%Y-%m-%d", "YYYY-MM-DD"), "month": ("%Y-%m", "YYYY-MM"), "year": ("%Y", "YYYY")}


def stats(session: Session, zone: ZoneInfo, *, stage: Stage | None = None, period: str = "month",
          since: datetime | None = None, until: datetime | None = None) -> list[dict[str, Any]]:
    """Pass rates per check item and period (local time of the center): passed / (passed + failed + error)."""
    if period not in PERIODS:
        raise InvalidInput("统计周期只能是 day、month 或 year", code="invalid_period", detail={"period": period})
    dialect = session.get_bind().dialect.name
    py_fmt, pg_fmt = _FORMATS[period]
    if dialect == "postgresql":
        bucket = func.to_char(func.timezone(zone.key, CheckReport.created_at), pg_fmt)
    else:  # SQLite keeps naive UTC text: shift by the zone's current offset (China has no DST)
        offset = (datetime.now(zone).utcoffset() or timedelta()).total_seconds()
        bucket = func.strftime(py_fmt, CheckReport.created_at, f"{int(offset):+d} seconds")
    counts = {o: func.sum(case((CheckResult.outcome == o.value, 1), else_=0)) for o in Outcome}
    q = (select(CheckResult.code, func.min(CheckResult.name), CheckReport.stage, bucket.label("period"),
                func.count(), *counts.values())
         .join(CheckReport, CheckReport.id == CheckResult.report_id)
         .group_by(CheckResult.code, CheckReport.stage, bucket))
    if stage is not None:
        q = q.where(CheckReport.stage == Stage(stage).value)
    if since is not None:
        q = q.where(CheckReport.created_at >= since)
    if until is not None:
        q = q.where(CheckReport.created_at < until)
    out = []
    for code, name, stage_, bucket_value, total, *per in session.execute(q):
        n = dict(zip([o.value for o in Outcome], (int(v or 0) for v in per), strict=True))
        judged = n["passed"] + n["failed"] + n["error"]
        out.append({"code": code, "name": name, "stage": stage_, "period": bucket_value, "total": int(total),
                    **n, "pass_rate": round(n["passed"] / judged, 4) if judged else None})
    return sorted(out, key=lambda r: (r["period"], code_key(r["code"])))


# --- PDF --------------------------------------------------------------------------------------------


def report_pdf(report: CheckReport, *, fonds_name: str, zone: tzinfo, font_path: Path | None = None) -> bytes:
    """The report as a printable A4 PDF (检测报告): header, totals, and every item with its detail."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    from archive.capture.cover_sheet import cjk_font

    font = cjk_font(font_path)
    data = report_dict(report)
    body = ParagraphStyle("body", fontName=font, fontSize=8, leading=10, wordWrap="CJK")
    head = ParagraphStyle("head", fontName=font, fontSize=15, leading=20, alignment=1)
    info = ParagraphStyle("info", fontName=font, fontSize=9, leading=13)
    c = data["counts"]
    story: list[Any] = [
        Paragraph(f"{escape(fonds_name)} 电子档案四性检测报告（{data['stage_name']}）", head), Spacer(1, 4 * mm),
        Paragraph(f"报告编号：{data['id']}　检测对象：{escape(data['subject'])}　检测时间："
                  f"{local_time(report.created_at, zone)}　检测人：{escape(data['operator'])}", info),
        Paragraph(f"检测结论：{data['outcome_name']}　共 {c.get('total', 0)} 项：通过 {c.get('passed', 0)}，"
                  f"不通过 {c.get('failed', 0)}，不适用 {c.get('not_applicable', 0)}，人工待检 {c.get('manual', 0)}，"
                  f"检测出错 {c.get('error', 0)}　检测依据：DA/T 70-2018", info),
        Spacer(1, 3 * mm),
    ]
    rows = [[Paragraph(h, body) for h in ("编号", "检测项目", "性质", "对象", "目标", "结果", "阻断", "说明")]]
    for r in data["results"]:
        extra = f"（{r['recorded_by']} 于 {local_time(r['recorded_at'], zone)} 人工登记）" if r["recorded_by"] else ""
        rows.append([Paragraph(escape(str(v)), body) for v in (
            r["code"], r["name"], r["dimension_name"], r["object_name"], r["target"] or "",
            r["outcome_name"], "是" if r["blocking"] else "否", r["detail"] + extra)])
    widths = [18 * mm, 45 * mm, 14 * mm, 18 * mm, 35 * mm, 16 * mm, 10 * mm, 111 * mm]
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.4, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP"),
                               ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8"))]))
    story.append(table)
    buf = io.BytesIO()
    SimpleDocTemplate(buf, pagesize=landscape(A4), leftMargin=10 * mm, rightMargin=10 * mm, topMargin=10 * mm,
                      bottomMargin=10 * mm, title=f"四性检测报告 {data['id']}", author=fonds_name).build(story)
    return buf.getvalue()
