"""Figures and reports (问题可见、成果可视): the problem-data rate per rule, dimension, branch and owner, fix rate,
mean time to fix and trend (月通报); open key findings by owner and age (周调度); and the XLSX exports."""

from __future__ import annotations

import io
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from archive.catalogue.models import ArchiveItem, Case, Document, DqFinding
from archive.catalogue.types import utcnow
from archive.dq import findings
from archive.dq.registry import DIMENSIONS, SEVERITIES
from archive.dq.rules import REGISTRY
from archive.pdfs import cell, cjk_font, grid_table, landscape_pdf, mm, style

if TYPE_CHECKING:
    from openpyxl import Workbook

KEY = ("block", "error")  # key findings (重点问题) of the weekly dispatch


def stats(session: Session, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    population = {"case": session.scalar(select(func.count()).select_from(Case)) or 0,
                  "document": session.scalar(select(func.count()).select_from(Document)) or 0,
                  "item": session.scalar(select(func.count()).select_from(ArchiveItem)) or 0}
    rows = session.execute(select(DqFinding.rule_code, DqFinding.dimension, DqFinding.branch, DqFinding.owner,
                                  DqFinding.status, DqFinding.object_type, func.count())
                           .group_by(DqFinding.rule_code, DqFinding.dimension, DqFinding.branch, DqFinding.owner,
                                     DqFinding.status, DqFinding.object_type)).all()
    live = set(findings.LIVE)
    by_rule: Counter[str] = Counter()
    by_dimension: Counter[str] = Counter()
    by_branch: Counter[str] = Counter()
    by_owner: Counter[str] = Counter()
    by_status: Counter[str] = Counter()
    for rule, dim, branch, owner, status, _obj, n in rows:
        by_status[status] += n
        if status in live:
            by_rule[rule] += n
            by_dimension[dim] += n
            by_branch[branch or "（未知）"] += n
            by_owner[owner or "（未分派）"] += n
    rules = []
    for code, n in sorted(by_rule.items()):
        r = REGISTRY.get(code)
        base = population.get(r.object if r else "case") or 0
        rules.append({"rule": code, "name": r.name if r else code, "open": n,
                      "rate": round(n / base, 6) if base else None})
    closed = by_status["verified"]
    handled = closed + sum(by_status[s] for s in live)
    fixed = session.execute(select(DqFinding.first_seen, DqFinding.resolved_at)
                            .where(DqFinding.status == "verified")).all()
    hours = [(b - a).total_seconds() / 3600 for a, b in fixed if a and b]
    trend: dict[str, dict[str, int]] = defaultdict(lambda: {"found": 0, "fixed": 0})
    for (first,) in session.execute(select(DqFinding.first_seen).where(DqFinding.first_seen >= _months_ago(now, 6))):
        trend[first.strftime("%Y-%m")]["found"] += 1
    for _, b in fixed:
        if b and b >= _months_ago(now, 6):
            trend[b.strftime("%Y-%m")]["fixed"] += 1
    cases_with_open = session.scalar(select(func.count(func.distinct(DqFinding.serial)))
                                     .where(DqFinding.status.in_(findings.LIVE))) or 0
    return {"at": now, "population": population, "open": sum(by_rule.values()),
            "problem_case_rate": round(cases_with_open / population["case"], 6) if population["case"] else None,
            "by_status": dict(by_status), "by_rule": rules,
            "by_dimension": {DIMENSIONS.get(k, k): v for k, v in by_dimension.items()},
            "by_branch": dict(by_branch), "by_owner": dict(by_owner),
            "fix_rate": round(closed / handled, 4) if handled else None,
            "mean_hours_to_fix": round(sum(hours) / len(hours), 1) if hours else None,
            "trend": [{"month": m, **v} for m, v in sorted(trend.items())]}


def _months_ago(now: datetime, months: int) -> datetime:
    y, m = divmod(now.year * 12 + now.month - 1 - months, 12)
    return now.replace(year=y, month=m + 1, day=1, hour=0, minute=0, second=0, microsecond=0)


def weekly(session: Session, now: datetime | None = None) -> list[dict[str, Any]]:
    """周调度: open key findings (block, error) by owner, oldest first, with their age in days."""
    now = now or utcnow()
    q = (select(DqFinding).where(DqFinding.status.in_(findings.LIVE), DqFinding.severity.in_(KEY))
         .order_by(DqFinding.owner, DqFinding.first_seen).limit(50_000))
    return [{**findings.as_dict(f), "age_days": (now - f.first_seen).days,
             "overdue": bool(f.due_date and f.due_date < now.date())} for f in session.scalars(q)]


HEAD = ("编号", "规则", "规则名称", "维度", "级别", "对象", "业务流水号", "网点", "问题说明", "状态", "责任方",
        "整改期限", "首次发现", "最近发现", "整改提示")


def findings_xlsx(rows: list[DqFinding], title: str) -> bytes:
    """A department's list (问题数据清单) for those without access to the system; no personal numbers in it."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "问题数据"
    ws.append(_row([title]))
    ws.append(list(HEAD))
    for f in rows:
        r = REGISTRY.get(f.rule_code)
        ws.append(_row([f.id, f.rule_code, r.name if r else "", DIMENSIONS.get(f.dimension, f.dimension),
                   SEVERITIES.get(f.severity, f.severity), f.object_key, f.serial or "", f.branch or "", f.message,
                   findings.STATUSES[f.status], f.owner or "", f.due_date.isoformat() if f.due_date else "",
                   _local(f.first_seen), _local(f.last_seen), r.hint if r else ""]))
    return _save(wb)


def stats_xlsx(data: dict[str, Any]) -> bytes:
    """月通报 as XLSX: one sheet per breakdown."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "概况"
    for label, key in (("未关闭问题数", "open"), ("问题业务占比", "problem_case_rate"), ("整改率", "fix_rate"),
                       ("平均整改时长（小时）", "mean_hours_to_fix")):
        ws.append([label, data[key]])
    rules = wb.create_sheet("按规则")
    rules.append(["规则", "规则名称", "未关闭问题数", "问题数据率"])
    for r in data["by_rule"]:
        rules.append([r["rule"], r["name"], r["open"], r["rate"]])
    for title, key in (("按维度", "by_dimension"), ("按网点", "by_branch"), ("按责任方", "by_owner")):
        sheet = wb.create_sheet(title)
        sheet.append([title[1:], "未关闭问题数"])
        for k, v in sorted(data[key].items()):
            sheet.append(_row([k, v]))
    trend = wb.create_sheet("趋势")
    trend.append(["月份", "新发现", "已整改"])
    for t in data["trend"]:
        trend.append([t["month"], t["found"], t["fixed"]])
    return _save(wb)


def _row(values: list[Any]) -> list[Any]:
    """Values a worksheet can hold: control characters (from a business system's data) shown as U+FFFD."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    return [ILLEGAL_CHARACTERS_RE.sub("\ufffd", v) if isinstance(v, str) else v for v in values]


def _local(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else ""


def _save(wb: Workbook) -> bytes:
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.2f}%"


def monthly_pdf(data: dict[str, Any], *, fonds_name: str, font_path: Path | None, month: str) -> bytes:
    """月通报 as PDF: the overall figures, then per rule, dimension, branch and owner, and the trend."""
    from reportlab.platypus import Paragraph, Spacer

    font = cjk_font(font_path)
    body, head, info = (style("body", font, 8, 10, wordWrap="CJK"), style("head", font, 15, 20, alignment=1),
                        style("info", font, 9, 13))
    hours = data["mean_hours_to_fix"]
    summary = (f"未关闭问题 {data['open']} 条；问题业务占比 {_pct(data['problem_case_rate'])}；整改率 "
               f"{_pct(data['fix_rate'])}；平均整改时长 {'—' if hours is None else hours} 小时。")
    story: list[Any] = [Paragraph(escape(f"{fonds_name}数据质量月通报（{month}）"), head), Spacer(1, 4 * mm),
                        Paragraph(escape(summary), info), Spacer(1, 3 * mm)]
    rows: list[list[Any]] = [[cell(h, body) for h in ("规则", "名称", "未关闭问题数", "问题数据率")]]
    rows += [[cell(r["rule"], body), cell(r["name"], body), cell(r["open"], body), cell(_pct(r["rate"]), body)]
             for r in data["by_rule"]]
    story += [grid_table(rows, [30 * mm, 120 * mm, 35 * mm, 35 * mm]), Spacer(1, 4 * mm)]
    for title, key in (("按维度", "by_dimension"), ("按网点", "by_branch"), ("按责任方", "by_owner")):
        part = [[cell(title[1:], body), cell("未关闭问题数", body)]]
        part += [[cell(k, body), cell(v, body)] for k, v in sorted(data[key].items())]
        story += [Paragraph(escape(title), info), grid_table(part, [80 * mm, 40 * mm]), Spacer(1, 3 * mm)]
    trend = [[cell(h, body) for h in ("月份", "新发现", "已整改")]]
    trend += [[cell(t["month"], body), cell(t["found"], body), cell(t["fixed"], body)] for t in data["trend"]]
    story += [Paragraph("趋势", info), grid_table(trend, [40 * mm, 40 * mm, 40 * mm])]
    return landscape_pdf(story, margin=12 * mm, title=f"数据质量月通报 {month}", author=fonds_name)


def weekly_pdf(rows: list[dict[str, Any]], *, fonds_name: str, font_path: Path | None, day: str) -> bytes:
    """周调度 as PDF: open key findings by owner, oldest first, overdue marked."""
    from reportlab.platypus import Paragraph, Spacer

    font = cjk_font(font_path)
    body, head = style("body", font, 8, 10, wordWrap="CJK"), style("head", font, 15, 20, alignment=1)
    table = [[cell(h, body) for h in ("责任方", "编号", "规则", "对象", "问题", "状态", "已发现（天）", "整改期限")]]
    for r in rows:
        due = f"{r['due_date']}{'（已超期）' if r['overdue'] else ''}" if r["due_date"] else ""
        table.append([cell(r["owner"] or "（未分派）", body), cell(r["id"], body), cell(r["rule_code"], body),
                      cell(r["object_key"], body), cell(r["message"], body), cell(r["status_name"], body),
                      cell(r["age_days"], body), cell(due, body)])
    title = f"{fonds_name}数据质量周调度（{day}）：未关闭的重点问题 {len(rows)} 条"
    widths = [30 * mm, 14 * mm, 22 * mm, 40 * mm, 85 * mm, 22 * mm, 22 * mm, 30 * mm]
    story: list[Any] = [Paragraph(escape(title), head), Spacer(1, 4 * mm), grid_table(table, widths)]
    return landscape_pdf(story, margin=10 * mm, title=f"数据质量周调度 {day}", author=fonds_name)
