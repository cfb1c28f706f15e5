"""Reference data and checks the counter uses: the schedule, 档号 rule, identifier validation."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from archive import identifiers
from archive.api.deps import caller, context, require
from archive.context import Context
from archive.errors import InvalidInput
from archive.permissions import Permission, Principal

router = APIRouter(prefix="/api/v1", tags=["reference"])


class MaterialOut(BaseModel):
    code: str
    name: str


class BusinessTypeOut(BaseModel):
    code: str
    name: str
    category: str
    category_name: str
    retention: str
    retention_label: str
    trigger: str
    trigger_name: str
    required: list[MaterialOut]
    optional: list[MaterialOut]


class ScheduleOut(BaseModel):
    version: str
    is_default: bool
    basis: str
    categories: dict[str, str]
    business_types: list[BusinessTypeOut]


@router.get("/schedule", response_model=ScheduleOut, summary="分类方案与保管期限表")
def schedule(ctx: Context = Depends(context), _: Principal = Depends(caller)) -> ScheduleOut:
    s = ctx.schedule

    def mats(codes: tuple[str, ...]) -> list[MaterialOut]:
        return [MaterialOut(code=c, name=s.materials[c]) for c in codes]

    types = [
        BusinessTypeOut(code=code, name=t.name, category=t.category, category_name=s.categories[t.category].name,
                        retention=t.retention.value, retention_label=t.retention.label, trigger=t.trigger.value,
                        trigger_name=s.triggers[t.trigger].name, required=mats(t.required), optional=mats(t.optional))
        for code, t in s.types.items()
    ]
    return ScheduleOut(version=s.version, is_default=s.is_default, basis=s.basis,
                       categories={k: v.name for k, v in s.categories.items()}, business_types=types)


class CodeIn(BaseModel):
    archival_code: str = Field(min_length=1, max_length=64, examples=["J001-YW·2024-D30-TQ-000123"])


class CodeOut(BaseModel):
    archival_code: str
    fonds: str
    year: int
    retention: str
    category: str
    number: int


@router.post("/archival-codes/parse", response_model=CodeOut, summary="按档号规则解析并校验档号")
def parse_code(req: CodeIn, ctx: Context = Depends(context),
               _: Principal = Depends(require(Permission.ITEM_READ))) -> CodeOut:
    p = ctx.code_rule.parse(req.archival_code)
    if p.category not in ctx.schedule.categories:
        raise InvalidInput(f"档号中的类别 {p.category} 不在分类方案中", code="invalid_archival_code",
                           detail={"field": "archival_code", "part": "类别"})
    return CodeOut(archival_code=ctx.code_rule.format(p), fonds=p.fonds, year=p.year, retention=p.retention,
                   category=p.category, number=p.number)


class IdentifierIn(BaseModel):
    kind: Literal["id_number", "uscc", "mobile"]
    value: str = Field(min_length=1, max_length=32)


class IdentifierOut(BaseModel):
    kind: str
    valid: bool
    masked: str


_VALIDATORS = {"id_number": (identifiers.validate_id_number, identifiers.mask_id_number),
               "uscc": (identifiers.validate_uscc, lambda v: v),
               "mobile": (identifiers.validate_mobile, identifiers.mask_mobile)}


@router.post("/identifiers/check", response_model=IdentifierOut, summary="校验证件号码、统一社会信用代码或手机号",
             responses={422: {"description": "号码无效，message 说明原因"}})
def check_identifier(req: IdentifierIn, _: Principal = Depends(caller)) -> IdentifierOut:
    validate, mask = _VALIDATORS[req.kind]
    value = validate(req.value, req.kind)
    return IdentifierOut(kind=req.kind, valid=True, masked=mask(value) or "")
