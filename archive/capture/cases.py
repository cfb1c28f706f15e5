"""Opening a case (受理): one business transaction, identified by its 业务流水号, idempotent on it."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from archive import audit, indexing
from archive.audit import Actor
from archive.catalogue.models import Case, Fonds
from archive.catalogue.types import utcnow
from archive.context import Context
from archive.dq import source as dq_source
from archive.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from archive.identifiers import validate_id_number, validate_mobile, validate_uscc
from archive.permissions import Principal

SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{5,63}")
NEEDS_APPLICANT = {"TQ", "DK"}


class Applicant(BaseModel):
    name: str = Field(min_length=1, max_length=100, examples=["张三"])
    id_number: str = Field(min_length=1, max_length=32, examples=["11010519491231002X"])
    mobile: str | None = Field(None, max_length=20, examples=["13800138000"])


class Unit(BaseModel):
    name: str = Field(min_length=1, max_length=200, examples=["示例科技有限公司"])
    uscc: str | None = Field(None, max_length=32, examples=["91350100M000100Y43"])
    account: str | None = Field(None, max_length=32, description="单位账号")


class CaseIn(BaseModel):
    serial: str = Field(max_length=64, description="业务流水号", examples=["YW20260105000123"])
    business_type: str = Field(max_length=16, description="业务类型代码（见 /api/v1/schedule）", examples=["TQ01"])
    applicant: Applicant | None = None
    unit: Unit | None = None
    personal_account: str | None = Field(None, max_length=32, description="个人账号")
    loan_contract_no: str | None = Field(None, max_length=64, description="贷款合同号（贷款业务必填）")
    branch: str | None = Field(None, max_length=32, description="办理网点；柜员登录时默认为其网点")
    clerk: str | None = Field(None, max_length=64, description="经办人；柜员登录时默认为本人")
    accepted_at: datetime | None = Field(None, description="受理时间（带时区）；默认为现在")


def open_case(ctx: Context, session: Session, principal: Principal, data: CaseIn) -> tuple[Case, bool]:
    """Create the case, or return the existing one when the same serial comes again with the same body."""
    values = _normalise(ctx, principal, data)
    existing = session.scalar(select(Case).where(Case.serial == values["serial"]))
    if existing is not None:
        ensure_visible(principal, existing)
        differing = [k for k, v in values.items() if k != "accepted_at" and getattr(existing, k) != v]
        if data.accepted_at is not None and existing.accepted_at != values["accepted_at"]:
            differing.append("accepted_at")
        if differing:
            raise Conflict(f"业务流水号 {existing.serial} 已受理，且与本次提交的内容不同：{'、'.join(differing)}",
                           code="serial_conflict", detail={"serial": existing.serial, "fields": differing})
        return existing, False
    fonds = session.scalar(select(Fonds).where(Fonds.code == ctx.settings.fonds_code))
    if fonds is None:
        raise NotFound(f"全宗 {ctx.settings.fonds_code} 未登记，请先运行 `archive init`", code="fonds_missing")
    dq_found = dq_source.check(ctx, session, "case", values)  # a block rule refuses here (源头管控)
    case = Case(fonds_id=fonds.id, status="open", **values)
    session.add(case)
    session.flush()
    dq_source.record(session, dq_found, object_type="case", object_key=case.serial, serial=case.serial,
                     branch=case.branch, key_values=values)
    audit.record(session, Actor.of(principal), "case.open", target_type="case",
                 target_id=case.serial, detail={"business_type": case.business_type, "branch": case.branch})
    indexing.enqueue(session, case.serial)
    return case, True


def _normalise(ctx: Context, principal: Principal, data: CaseIn) -> dict[str, Any]:
    if not SERIAL.fullmatch(data.serial):
        raise InvalidInput("业务流水号应为 6-64 位字母、数字、下划线或连字符，且以字母或数字开头",
                           code="invalid_serial", detail={"field": "serial"})
    bt = ctx.schedule.business_type(data.business_type)
    a, u = data.applicant, data.unit
    if bt.category in NEEDS_APPLICANT and a is None:
        raise InvalidInput(f"{bt.name}业务必须填写申请人（姓名和证件号码）", code="missing_applicant",
                           detail={"field": "applicant"})
    if a is None and u is None:
        raise InvalidInput("请填写申请人或单位", code="missing_party", detail={"field": "applicant"})
    if bt.category == "DK" and not data.loan_contract_no:
        raise InvalidInput("贷款业务必须填写贷款合同号（结清后据此起算保管期限）", code="missing_loan_contract_no",
                           detail={"field": "loan_contract_no"})
    branch = data.branch or (next(iter(principal.branches)) if principal.branches and
                             len(principal.branches) == 1 else None)
    if not branch:
        raise InvalidInput("请填写办理网点", code="missing_branch", detail={"field": "branch"})
    if not principal.sees_branch(branch):
        raise PermissionDenied(f"当前账号不能为网点 {branch} 受理业务", code="branch_not_allowed",
                               detail={"field": "branch"})
    clerk = data.clerk or (principal.name if principal.kind == "user" else None)
    if not clerk:
        raise InvalidInput("请填写经办人", code="missing_clerk", detail={"field": "clerk"})
    accepted = data.accepted_at or utcnow()
    if accepted.tzinfo is None:
        raise InvalidInput("受理时间须带时区，例如 2026-01-05T09:30:00+08:00", code="naive_datetime",
                           detail={"field": "accepted_at"})
    return {
        "serial": data.serial, "business_type": data.business_type, "category": bt.category,
        "applicant_name": a.name.strip() if a else None,
        "applicant_id_number": validate_id_number(a.id_number, "applicant.id_number") if a else None,
        "applicant_mobile": validate_mobile(a.mobile, "applicant.mobile") if a and a.mobile else None,
        "unit_name": u.name.strip() if u else None,
        "unit_uscc": validate_uscc(u.uscc, "unit.uscc") if u and u.uscc else None,
        "unit_account": u.account if u else None,
        "personal_account": data.personal_account, "loan_contract_no": data.loan_contract_no,
        "branch": branch, "clerk": clerk, "accepted_at": accepted,
    }


def get_case(session: Session, principal: Principal, serial: str) -> Case:
    """The case, or 404 also when it exists in a branch the caller may not see (existence must not leak)."""
    case = session.scalar(select(Case).where(Case.serial == serial))
    if case is None or not principal.sees_branch(case.branch):
        raise NotFound(f"业务流水号 {serial} 不存在", code="case_not_found", detail={"serial": serial})
    return case


def ensure_visible(principal: Principal, case: Case) -> None:
    if not principal.sees_branch(case.branch):
        raise NotFound(f"业务流水号 {case.serial} 不存在", code="case_not_found", detail={"serial": case.serial})


def ensure_open(case: Case) -> None:
    if case.status != "open":
        raise Conflict(f"业务 {case.serial} 已办结归档，材料不能再修改", code="case_not_open",
                       detail={"serial": case.serial, "status": case.status})
