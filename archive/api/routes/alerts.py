"""Storage-check findings and alerts: the alert list, its counts, acknowledgement, and the sweeps behind them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from archive.api.deps import UnitOfWork, actor_of, context, require
from archive.api.params import Id, Offset
from archive.catalogue.models import StorageSweep
from archive.checks import alerts
from archive.context import Context
from archive.errors import NotFound
from archive.permissions import Permission, Principal

router = APIRouter(prefix="/api/v1", tags=["alerts"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "缺少权限（permission_denied）"},
    404: {"description": "告警或检测不存在（alert_not_found / sweep_not_found）"},
    409: {"description": "告警已确认（alert_already_acknowledged）；拒绝的确认记入审计日志"},
    422: {"description": "参数有误（invalid_severity …）"},
}


class AlertOut(BaseModel):
    id: int
    code: str = Field(description="检测项编号 BC-x-y")
    target: str = Field(description="对象键（@副本）、档号或审计事件")
    severity: str = Field(description="critical 严重 / warning 警告")
    message: str
    detail: dict[str, Any]
    occurrences: int = Field(description="被检测发现的次数")
    sweep_id: int | None = Field(description="最近一次发现它的存储检测")
    first_seen: datetime
    last_seen: datetime
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    acknowledge_note: str | None


class AckIn(BaseModel):
    note: str | None = Field(None, max_length=500, description="处理说明，例如已从备份恢复")


class SummaryOut(BaseModel):
    open: int = Field(description="未确认的告警数")
    open_by_severity: dict[str, int]
    total: int
    last_sweep: dict[str, Any] | None = Field(description="最近一次存储检测：编号、状态、时间、发现数")


class SweepOut(BaseModel):
    id: int
    scope: str
    tier: str
    status: str = Field(description="running 运行中 / paused 已暂停 / failed 中断 / done 完成")
    cursor: str | None
    object_count: int
    byte_count: int
    findings: int
    report_id: int | None
    error: str | None
    started_by: str
    started_at: datetime
    checkpoint_at: datetime
    finished_at: datetime | None


@router.get("/alerts", response_model=list[AlertOut], responses=_ERRORS,
            summary="存储检测告警（默认只列未确认的，最近发现的在前）")
def list_alerts(include_acknowledged: bool = Query(False, description="包括已确认的"),
                severity: str | None = Query(None, description="critical 或 warning"),
                code: str | None = Query(None, max_length=16, description="检测项编号，例如 BC-1-1"),
                limit: int = Query(100, ge=1, le=1000), offset: Offset = 0,
                session: Session = UnitOfWork,
                _: Principal = Depends(require(Permission.CHECK_READ))) -> list[AlertOut]:
    rows = alerts.query(session, include_acknowledged=include_acknowledged, severity=severity, code=code,
                        limit=limit, offset=offset)
    return [AlertOut.model_validate(a, from_attributes=True) for a in rows]


@router.get("/alerts/summary", response_model=SummaryOut, summary="告警计数与最近一次存储检测")
def summary(session: Session = UnitOfWork, _: Principal = Depends(require(Permission.CHECK_READ))) -> SummaryOut:
    last = session.scalar(select(StorageSweep).order_by(StorageSweep.id.desc()).limit(1))
    last_sweep = None if last is None else {
        "id": last.id, "status": last.status, "started_at": last.started_at, "finished_at": last.finished_at,
        "findings": last.findings, "objects": last.object_count}
    return SummaryOut(**alerts.counts(session), last_sweep=last_sweep)


@router.post("/alerts/{alert_id}/acknowledge", response_model=AlertOut, responses=_ERRORS,
             summary="确认告警（记入审计日志；同一问题再次发现时只更新最近发现时间）")
def acknowledge(alert_id: Id, body: AckIn | None = None, ctx: Context = Depends(context),
                session: Session = UnitOfWork,
                principal: Principal = Depends(require(Permission.CHECK_RUN))) -> AlertOut:
    alert = alerts.acknowledge_recorded(ctx, session, actor_of(principal), alert_id, body.note if body else None)
    return AlertOut.model_validate(alert, from_attributes=True)


@router.get("/sweeps", response_model=list[SweepOut], summary="存储检测（长期保存环节）记录，最新在前")
def sweeps(limit: int = Query(20, ge=1, le=500), offset: Offset = 0, session: Session = UnitOfWork,
           _: Principal = Depends(require(Permission.CHECK_READ))) -> list[SweepOut]:
    q = select(StorageSweep).order_by(StorageSweep.id.desc()).offset(offset).limit(limit)
    return [SweepOut.model_validate(s, from_attributes=True) for s in session.scalars(q)]


@router.get("/sweeps/{sweep_id}", response_model=SweepOut, responses=_ERRORS, summary="一次存储检测的进度与结果")
def sweep(sweep_id: Id, session: Session = UnitOfWork,
          _: Principal = Depends(require(Permission.CHECK_READ))) -> SweepOut:
    row = session.get(StorageSweep, sweep_id)
    if row is None:
        raise NotFound(f"存储检测 {sweep_id} 不存在", code="sweep_not_found", detail={"id": sweep_id})
    return SweepOut.model_validate(row, from_attributes=True)
