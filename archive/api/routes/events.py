"""Business events that start retention clocks, items waiting for them, and schedule changes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from archive import authorization
from archive.api.deps import UnitOfWork, actor_of, caller, context, require
from archive.api.params import Offset
from archive.context import Context
from archive.permissions import PERMISSION_NAMES, Permission, Principal
from archive.retention import schedules, triggers

router = APIRouter(tags=["retention"])


class StartedItem(BaseModel):
    archival_code: str
    serial: str
    retention_code: str
    trigger_date: date
    expiry_date: date | None
    store: str


class EventOut(BaseModel):
    id: int
    event_id: str
    event_type: str
    event_name: str
    event_date: date
    key_kind: str
    key: str
    outcome: str = Field(description="applied 已起算；nothing_waiting 无等待该事件的档案（事件已登记）")
    started: list[StartedItem]
    already_started: int
    received_at: datetime


@router.post("/api/v1/events", response_model=EventOut, status_code=201,
             summary="报送业务事件（贷款结清、账户销户、单位注销），启动保管期限计算",
             responses={200: {"description": "同一事件编号、相同内容再次报送：返回首次的结果"},
                        404: {"description": "贷款、账户或单位不存在：事件已登记但未生效（code unknown_loan 等）"},
                        409: {"description": "同一事件编号、不同内容（event_id_conflict）"}})
def report_event(req: triggers.EventIn = Body(), ctx: Context = Depends(context), session: Session = UnitOfWork,
                 principal: Principal = Depends(caller)) -> Any:
    authorization.require(session, principal, Permission.EVENT_REPORT, Permission.RETENTION_MANAGE,
                          target_type="retention_event", target_id=req.event_id,
                          message=f"当前账号没有「{PERMISSION_NAMES[Permission.EVENT_REPORT]}」权限，"
                                  "业务系统须持有 events.write 范围的接入密钥")
    status, body = triggers.report(ctx, session, actor_of(principal), req, principal.branches)
    return JSONResponse(body, status_code=status)  # a refused event is recorded too: no exception, so it commits


class PendingItem(BaseModel):
    archival_code: str
    serial: str
    business_type: str
    retention_code: str
    trigger: str
    trigger_name: str | None
    waiting_for: dict[str, str | None]
    filed_at: datetime


class PendingOut(BaseModel):
    total: int = Field(description="等待起算事件的档案总数")
    by_trigger: dict[str, int]
    filtered_total: int
    items: list[PendingItem]
    limit: int
    offset: int


@router.get("/api/v1/retention/pending", response_model=PendingOut,
            summary="待起算档案：尚未发生起算事件（如贷款未结清），没有到期日，不会进入到期鉴定")
def pending(trigger: str | None = Query(None, max_length=20, description="LOAN_SETTLED、ACCOUNT_CLOSED …"),
            limit: int = Query(50, ge=1, le=500), offset: Offset = 0,
            ctx: Context = Depends(context), session: Session = UnitOfWork,
            principal: Principal = Depends(require(Permission.RETENTION_MANAGE))) -> Any:
    return triggers.pending(ctx, session, trigger, limit, offset, principal.branches,
                            principal.can(Permission.PII_READ))


class VersionOut(BaseModel):
    ref: str
    label: str
    digest: str
    source: str
    first_seen: datetime
    first_seen_by: str
    current: bool


@router.get("/api/v1/schedule/versions", response_model=list[VersionOut],
            summary="分类方案的各个版本（首次使用时登记）")
def versions(ctx: Context = Depends(context), session: Session = UnitOfWork,
             principal: Principal = Depends(require(Permission.RETENTION_MANAGE))) -> list[VersionOut]:
    current = schedules.ensure_version(session, ctx.schedule, actor_of(principal))
    return [VersionOut(ref=v.ref, label=v.label, digest=v.digest, source=v.source, first_seen=v.first_seen,
                       first_seen_by=v.first_seen_by, current=v.id == current.id)
            for v in schedules.list_versions(session)]


class ReapplyIn(BaseModel):
    apply: bool = Field(False, description="false：只预览变化；true：执行（须说明理由）")
    reason: str | None = Field(None, max_length=500, examples=["按新版保管期限表调整"])
    business_types: list[str] | None = Field(None, max_length=200, description="只处理这些业务类型；默认全部")
    plan_digest: str | None = Field(None, max_length=64, description="预览返回的 plan_digest：执行时若变化已不同则拒绝")


class ReapplyOut(BaseModel):
    applied: bool
    version: str
    plan_digest: str
    counts: dict[str, int]
    items: list[dict[str, Any]]
    listed: int
    total_listed: int


@router.post("/api/v1/schedule/reapply", response_model=ReapplyOut,
             summary="对已归档档案重新适用现行分类方案：先预览每件的保管期限与到期日变化，再说明理由执行")
def reapply(req: ReapplyIn, ctx: Context = Depends(context), session: Session = UnitOfWork,
            principal: Principal = Depends(require(Permission.RETENTION_MANAGE))) -> ReapplyOut:
    if req.apply:
        result = schedules.apply(ctx, session, actor_of(principal), req.reason or "", req.business_types,
                                 req.plan_digest)
    else:
        result = schedules.plan(ctx, session, req.business_types)
    return ReapplyOut(applied=req.apply, **result.summary())
