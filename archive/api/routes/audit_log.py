"""The audit log, for the auditor (安全审计员) only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from archive import audit
from archive.api.deps import UnitOfWork, require
from archive.api.params import MAX_INT
from archive.catalogue.models import AuditEvent
from archive.permissions import Permission, Principal

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


class EventOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    actor_type: str
    action: str
    target_type: str | None
    target_id: str | None
    outcome: str
    detail: dict[str, Any]
    hash: str


class VerifyOut(BaseModel):
    ok: bool
    checked: int
    broken_at: int | None
    reason: str | None


@router.get("/events", response_model=list[EventOut], summary="审计事件（按序号分页）")
def events(after: int = Query(0, ge=0, le=MAX_INT, description="只返回序号大于此值的事件"),
           limit: int = Query(100, ge=1, le=1000), action: str | None = Query(None, max_length=64),
           session: Session = UnitOfWork, _: Principal = Depends(require(Permission.AUDIT_READ))) -> list[EventOut]:
    q = select(AuditEvent).where(AuditEvent.seq > after).order_by(AuditEvent.seq).limit(limit)
    if action:
        q = q.where(AuditEvent.action == action)
    return [EventOut.model_validate(e, from_attributes=True) for e in session.scalars(q)]


@router.get("/verify", response_model=VerifyOut, summary="核验审计日志哈希链")
def verify(session: Session = UnitOfWork, _: Principal = Depends(require(Permission.AUDIT_READ))) -> VerifyOut:
    r = audit.verify(session)
    return VerifyOut(ok=r.ok, checked=r.checked, broken_at=r.broken_at, reason=r.reason)
