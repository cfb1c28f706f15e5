"""Four-properties check reports (四性检测): read as JSON or PDF, manual items, re-checks, statistics."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from archive.api.deps import UnitOfWork, actor_of, context, require
from archive.api.params import Id
from archive.capture.cases import ensure_visible
from archive.catalogue.models import ArchiveItem, Case, CheckReport
from archive.checks import gd, manual, reports
from archive.checks.base import REGISTRY, Outcome, Stage, code_key
from archive.context import Context
from archive.errors import InvalidInput, NotFound
from archive.permissions import Permission, Principal

router = APIRouter(prefix="/api/v1/checks", tags=["checks"])
P = Permission


class ManualIn(BaseModel):
    code: str = Field(max_length=16, description="人工检测项目编号，例如 GD-4-5（载体外观检测）", examples=["GD-4-5"])
    outcome: Literal["passed", "failed", "not_applicable"] = Field(description="通过、不通过或不适用")
    detail: str = Field(min_length=1, max_length=1000, description="检测说明", examples=["光盘盘面无划痕、无霉斑"])
    target: str | None = Field(None, max_length=255, description="检测目标，如载体编号")


@router.get("/items", summary="检测项目清单（编号、名称、性质、对象、阻断/警告、人工）")
def definitions(stage: Stage | None = None, _: Principal = Depends(require(P.CHECK_READ))) -> list[dict[str, Any]]:
    manual.load_items()
    items = sorted((i for i in REGISTRY.values() if stage is None or i.stage == stage), key=lambda i: code_key(i.code))
    return [{"code": i.code, "name": i.name, "stage": i.stage.value, "dimension": i.dimension.value,
             "object": i.object.value, "blocking": i.blocking, "manual": i.manual, "basis": i.basis} for i in items]


@router.get("/reports", summary="检测报告列表（按环节、检测对象、档号筛选）")
def list_reports(stage: Stage | None = None, subject: str | None = Query(None, max_length=128),
                 outcome: Literal["passed", "warning", "failed"] | None = None,
                 limit: int = Query(50, ge=1, le=500), session: Session = UnitOfWork,
                 principal: Principal = Depends(require(P.CHECK_READ))) -> list[dict[str, Any]]:
    q = select(CheckReport).order_by(CheckReport.id.desc()).limit(limit)
    if principal.branches is not None:  # only reports on items of the caller's branches; no sweeps, transfers
        q = q.where(CheckReport.item_id.in_(
            select(ArchiveItem.id).join(Case, ArchiveItem.case_id == Case.id)
            .where(Case.branch.in_(sorted(principal.branches)))))
    if stage is not None:
        q = q.where(CheckReport.stage == stage.value)
    if subject:
        q = q.where(CheckReport.subject == subject)
    if outcome:
        q = q.where(CheckReport.outcome == outcome)
    return [{k: v for k, v in reports.report_dict(r).items() if k != "results"} for r in session.scalars(q)]


@router.get("/reports/{report_id}", summary="检测报告：每个检测项的编号、名称、性质、结果与说明（format=pdf 取 PDF）")
def get_report(report_id: Id, format: Literal["json", "pdf"] = "json", ctx: Context = Depends(context),
               session: Session = UnitOfWork, principal: Principal = Depends(require(P.CHECK_READ))) -> Any:
    report = _visible_report(session, principal, report_id)
    if format == "pdf":
        return _pdf(ctx, report)
    return reports.report_dict(report)


@router.get("/reports/{report_id}/pdf", summary="检测报告 PDF", response_class=Response)
def get_report_pdf(report_id: Id, ctx: Context = Depends(context), session: Session = UnitOfWork,
                   principal: Principal = Depends(require(P.CHECK_READ))) -> Response:
    return _pdf(ctx, _visible_report(session, principal, report_id))


def _visible_report(session: Session, principal: Principal, report_id: int) -> CheckReport:
    """The report, or 404 also when it concerns another branch's item, or no item and the caller is
    branch-limited (existence must not leak)."""
    report = reports.get_report(session, report_id)
    if principal.branches is not None:
        item = session.get(ArchiveItem, report.item_id) if report.item_id is not None else None
        if item is None or not principal.sees_branch(item.case.branch):
            raise NotFound(f"检测报告 {report_id} 不存在", code="check_report_not_found", detail={"id": report_id})
    return report


def _pdf(ctx: Context, report: CheckReport) -> Response:
    pdf = reports.report_pdf(report, fonds_name=ctx.settings.fonds_name, font_path=ctx.settings.cjk_font,
                             zone=ctx.zone)
    name = quote(f"四性检测报告-{report.id}.pdf")
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f"inline; filename*=UTF-8''{name}"})


@router.post("/reports/{report_id}/manual", summary="登记人工检测项目结果（载体外观、读取速度、光盘合格性）")
def record_manual(report_id: Id, req: ManualIn, session: Session = UnitOfWork,
                  principal: Principal = Depends(require(P.CHECK_RUN))) -> dict[str, Any]:
    _visible_report(session, principal, report_id)
    report = manual.record_manual(session, actor_of(principal), report_id, req.code.strip(), Outcome(req.outcome),
                                   req.detail, req.target)
    return reports.report_dict(report)


@router.post("/items/{archival_code}", status_code=201, summary="对已归档件重新执行归档环节（GD）检测并保存报告")
def recheck(archival_code: str, ctx: Context = Depends(context), session: Session = UnitOfWork,
            principal: Principal = Depends(require(P.CHECK_RUN))) -> dict[str, Any]:
    item = session.scalar(select(ArchiveItem).where(ArchiveItem.archival_code == archival_code.strip()))
    if item is None:
        raise NotFound(f"档号 {archival_code} 不存在", code="item_not_found", detail={"archival_code": archival_code})
    ensure_visible(principal, item.case)
    return reports.report_dict(gd.recheck_item(ctx, session, actor_of(principal), archival_code))


@router.get("/items/{archival_code}/reports", summary="某归档件的全部检测报告")
def item_reports(archival_code: str, session: Session = UnitOfWork,
                 principal: Principal = Depends(require(P.CHECK_READ))) -> list[dict[str, Any]]:
    item = session.scalar(select(ArchiveItem).where(ArchiveItem.archival_code == archival_code.strip()))
    if item is None:
        raise NotFound(f"档号 {archival_code} 不存在", code="item_not_found", detail={"archival_code": archival_code})
    ensure_visible(principal, item.case)
    return [{k: v for k, v in reports.report_dict(r).items() if k != "results"}
            for r in reports.reports_of_item(session, item.id)]


@router.get("/stats", summary="检测通过率统计：按检测项目与周期（日、月、年，本地时间）")
def stats(stage: Stage | None = None, period: Literal["day", "month", "year"] = "month",
          since: datetime | None = None, until: datetime | None = None, ctx: Context = Depends(context),
          session: Session = UnitOfWork, _: Principal = Depends(require(P.CHECK_READ))) -> list[dict[str, Any]]:
    for name, when in (("since", since), ("until", until)):
        if when is not None and when.tzinfo is None:
            raise InvalidInput("时间须带时区，例如 2026-01-01T00:00:00+08:00", code="naive_datetime",
                               detail={"field": name})
    return reports.stats(session, ctx.zone, stage=stage, period=period, since=since, until=until)
