"""Check reports (检测报告): persisted results of one run of check items on one subject."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, insert, select
from sqlalchemy.orm import Session

from archive import audit, metrics
from archive.audit import Actor
from archive.catalogue.models import CheckReport, CheckResult
from archive.catalogue.types import utcnow
from archive.checks.base import (
    DIMENSION_NAMES,
    OUTCOME_NAMES,
    CheckItem,
    Dimension,
    Outcome,
    Result,
    Stage,
    code_key,
)
from archive.errors import InvalidInput, NotFound
from archive.localtime import local_time
from archive.pdfs import cell, cjk_font, grid_table, landscape_pdf, mm, style

_BAD = (Outcome.FAILED, Outcome.ERROR)


def save_report(session: Session, actor: Actor, stage: Stage, subject: str,
                results: list[tuple[CheckItem, Result]], **context: Any) -> Any:
    """Store a report (and its audit event) in the caller's transaction; returns the row (``id``, ``passed``).

    ``context`` is kept as JSON on the report; an ``item_id`` in it links the report to that archive item.
    """
    report, event = add_report(session, actor, stage, subject, results, **context)
    audit.record_many(session, [event])
    return report


def add_report(session: Session, actor: Actor, stage: Stage, subject: str,
               results: list[tuple[CheckItem, Result]], **context: Any) -> tuple[Any, audit.Event]:
    """:func:`save_report` without appending its audit event, which is returned: a caller with events of its own
    appends them together in one :func:`archive.audit.record_many` (filing: the report's, then the item's)."""
    return add_reports(session, actor, stage, [(subject, results, context)])[0]


def add_reports(session: Session, actor: Actor, stage: Stage,
                reports: list[tuple[str, list[tuple[CheckItem, Result]], dict[str, Any]]]
                ) -> list[tuple[Any, audit.Event]]:
    """:func:`add_report` for several subjects at once (an import's chunk): the reports in one flush and all their
    result rows in one executemany; each report with its audit event, in the order given."""
    made: list[tuple[CheckReport, list[dict[str, Any]]]] = []
    for subject, results, given in reports:
        context = dict(given)
        item_id = context.pop("item_id", None)
        rows: list[dict[str, Any]] = [
            {"position": pos, "code": item.code, "name": item.name, "dimension": item.dimension.value,
             "object": item.object.value, "target": None if r.target is None else str(r.target)[:255],
             "outcome": Outcome(r.outcome).value, "detail": r.detail, "blocking": item.blocking,
             "basis": item.basis[:100], "data": _jsonable(r.data) or None, "recorded_by": None, "recorded_at": None}
            for pos, (item, r) in enumerate(results, start=1)]
        report = CheckReport(stage=Stage(stage).value, subject=str(subject)[:128], item_id=item_id,
                             created_at=utcnow(), operator=actor.name, operator_type=actor.kind,
                             context=_jsonable(context) or None,
                             **_summary([(row["outcome"], row["blocking"]) for row in rows]))
        session.add(report)
        made.append((report, rows))
    session.flush()
    every = [row | {"report_id": report.id} for report, rows in made for row in rows]
    if every:  # one executemany, not one ORM object per row (a filing has ~50): issue 17. render_nulls: rows with
        # and without a target are one statement, not one per run of rows alike (the ORM leaves None keys out)
        session.execute(insert(CheckResult).execution_options(render_nulls=True), every)
    out = []
    for report, rows in made:
        session.expire(report, ["results"])  # loaded from the rows just written if a caller reads them
        bad = [row["code"] for row in rows if row["outcome"] in _BAD]
        metrics.check_failures(report.stage, bad)
        out.append((report, audit.Event(actor, "check.report", "check_report", str(report.id), {
            "stage": report.stage, "subject": report.subject, "outcome": report.outcome, "counts": report.counts,
            "failed": sorted(set(bad))}, "success" if report.passed else "failure")))
    return out


def summarise(report: CheckReport) -> None:
    """(Re)compute a report's counts and overall outcome from its result rows."""
    summary = _summary([(r.outcome, r.blocking) for r in report.results])
    report.counts, report.passed, report.outcome = summary["counts"], summary["passed"], summary["outcome"]


def _summary(results: list[tuple[str, bool]]) -> dict[str, Any]:
    """Counts per outcome, and the overall outcome, of (outcome, blocking) pairs."""
    counts = Counter(outcome for outcome, _ in results)
    blocking_bad = any(blocking and outcome in _BAD for outcome, blocking in results)
    warning = any(not blocking and outcome in _BAD for outcome, blocking in results)
    return {"counts": {o.value: counts.get(o.value, 0) for o in Outcome} | {"total": len(results)},
            "passed": not blocking_bad, "outcome": "failed" if blocking_bad else "warning" if warning else "passed"}


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
    from reportlab.platypus import Paragraph, Spacer

    font = cjk_font(font_path)
    data = report_dict(report)
    body = style("body", font, 8, 10, wordWrap="CJK")
    head = style("head", font, 15, 20, alignment=1)
    info = style("info", font, 9, 13)
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
        rows.append([cell(v, body) for v in (
            r["code"], r["name"], r["dimension_name"], r["object_name"], r["target"] or "",
            r["outcome_name"], "是" if r["blocking"] else "否", r["detail"] + extra)])
    widths = [18 * mm, 45 * mm, 14 * mm, 18 * mm, 35 * mm, 16 * mm, 10 * mm, 111 * mm]
    story.append(grid_table(rows, widths))
    return landscape_pdf(story, margin=10 * mm, title=f"四性检测报告 {data['id']}", author=fonds_name)
