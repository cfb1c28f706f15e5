"""Retrieval: ``GET /api/v1/search``; the parameters become a query, archive.retrieval answers it."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from sqlalchemy.orm import Session

from archive import retrieval
from archive.api.deps import UnitOfWork, context, require
from archive.api.params import MAX_INT, MAX_YEAR, YearValue
from archive.context import Context
from archive.errors import InvalidInput
from archive.permissions import Permission, Principal
from search.base import (
    DEFAULT_PAGE_SIZE,
    DEFAULT_SORT,
    FACET_FIELDS,
    MAX_PAGE_SIZE,
    Range,
    SearchDocument,
    SearchQuery,
)

router = APIRouter(prefix="/api/v1/search", tags=["search"])

KEY_PARAMS = ("serial", "archival_code", "id_number", "uscc", "loan_contract_no")
FILTER_PARAMS = ("category", "business_type", "retention_code", "status", "branch", "year", "kind")
OTHER_PARAMS = ("q", "accepted_from", "accepted_to", "closed_from", "closed_to", "expiry_from", "expiry_to",
                "year_from", "year_to", "amount_min", "amount_max", "facet", "sort", "page_size", "cursor")
KNOWN_PARAMS = frozenset((*KEY_PARAMS, *FILTER_PARAMS, *OTHER_PARAMS))
MAX_AMOUNT = 10**13  # 元: in cents still far inside the index's 64-bit integers


class Hit(BaseModel):
    serial: str
    archival_code: str | None
    kind: str
    category: str
    business_type: str
    business_type_name: str
    retention_code: str | None
    status: str
    branch: str
    year: int
    applicant_name: str | None
    applicant_id_number: str | None
    unit_name: str | None
    unit_uscc: str | None
    loan_contract_no: str | None
    accepted_at: datetime
    closed_at: datetime | None
    expiry_date: date | None
    amount: Decimal | None


class Bucket(BaseModel):
    value: str
    count: int


class SearchOut(BaseModel):
    total: int
    hits: list[Hit]
    facets: dict[str, list[Bucket]]
    next_cursor: str | None
    source: str  # index | catalogue (exact keys are answered by the catalogue, current before indexing)


def present(doc: SearchDocument, principal: Principal) -> Hit:
    return Hit.model_validate(retrieval.shown(doc, principal))


@router.get("", response_model=SearchOut,
            summary="检索业务与档案（全文、精确键、筛选、范围、分面；按网点与角色过滤，个人信息按角色脱敏）",
            responses={422: {"description": "检索条件有误"}, 503: {"description": "检索服务不可用"}})
def search(
    request: Request,
    q: str | None = Query(None, description="全文：空格分隔的词须全部命中；\"…\" 成组；-词 排除"),
    serial: str | None = Query(None, description="业务流水号（精确）"),
    archival_code: str | None = Query(None, description="档号（精确）"),
    id_number: str | None = Query(None, description="证件号码（精确）"),
    uscc: str | None = Query(None, description="统一社会信用代码（精确）"),
    loan_contract_no: str | None = Query(None, description="借款合同号（精确）"),
    category: list[str] = Query([], description="类别，可重复"),
    business_type: list[str] = Query([], description="业务类型代码，可重复"),
    retention_code: list[str] = Query([], description="保管期限代码 Y/D30/D10，可重复"),
    status: list[str] = Query([], description="状态，可重复"),
    branch: list[str] = Query([], description="办理网点，可重复"),
    year: list[YearValue] = Query([], description="年度，可重复"),
    kind: list[str] = Query([], description="case 未归档业务 / item 已归档"),
    accepted_from: date | None = Query(None, description="受理日期起（含）"),
    accepted_to: date | None = Query(None, description="受理日期止（含）"),
    closed_from: date | None = Query(None, description="办结日期起（含）"),
    closed_to: date | None = Query(None, description="办结日期止（含）"),
    expiry_from: date | None = Query(None, description="保管期满日期起（含）"),
    expiry_to: date | None = Query(None, description="保管期满日期止（含）"),
    year_from: int | None = Query(None, ge=1, le=MAX_YEAR, description="年度起（含）"),
    year_to: int | None = Query(None, ge=1, le=MAX_YEAR, description="年度止（含）"),
    amount_min: Decimal | None = Query(None, ge=-MAX_AMOUNT, le=MAX_AMOUNT, description="金额下限（元，含）"),
    amount_max: Decimal | None = Query(None, ge=-MAX_AMOUNT, le=MAX_AMOUNT, description="金额上限（元，含）"),
    facet: list[str] = Query([], description=f"分面统计字段，可重复：{', '.join(FACET_FIELDS)}"),
    sort: str = Query(DEFAULT_SORT, description="accepted_at / closed_at / expiry_date / relevance，前加 - 为降序"),
    page_size: int = Query(DEFAULT_PAGE_SIZE, le=MAX_INT, description=f"每页条数，最多 {MAX_PAGE_SIZE}"),
    cursor: str | None = Query(None, description="上一页返回的 next_cursor"),
    ctx: Context = Depends(context),
    session: Session = UnitOfWork,
    principal: Principal = Depends(require(Permission.CASE_READ, Permission.ITEM_READ)),  # 403 before 422
) -> SearchOut:
    unknown = sorted(set(request.query_params) - KNOWN_PARAMS)
    if unknown:
        raise InvalidInput(f"未知的检索条件 {'、'.join(unknown)}", code="unknown_filter_field",
                           detail={"fields": unknown, "allowed": sorted(KNOWN_PARAMS)})
    zone = ctx.zone
    keys = {k: v for k, v in (("serial", serial), ("archival_code", archival_code), ("id_number", id_number),
                              ("uscc", uscc), ("loan_contract_no", loan_contract_no)) if v is not None}
    filters = {k: v for k, v in (("category", category), ("business_type", business_type),
                                 ("retention_code", retention_code), ("status", status), ("branch", branch),
                                 ("year", year), ("kind", kind)) if v}
    ranges = {
        "accepted_at": Range(retrieval.day_start(accepted_from, zone), retrieval.day_start(accepted_to, zone, 1)),
        "closed_at": Range(retrieval.day_start(closed_from, zone), retrieval.day_start(closed_to, zone, 1)),
        "expiry_date": Range(expiry_from, expiry_to + timedelta(days=1) if expiry_to and expiry_to < date.max
                             else None),
        "year": Range(year_from, year_to + 1 if year_to is not None else None),
        "amount": Range(amount_min, amount_max + Decimal("0.01") if amount_max is not None else None),
    }
    query = SearchQuery(text=q, keys=keys, filters=filters, ranges=ranges, facets=facet, sort=sort,
                        page_size=page_size, cursor=cursor)
    found = retrieval.search(ctx, session, principal, query)
    result = found.result
    return SearchOut(
        total=result.total, hits=[present(h, principal) for h in result.hits],
        facets={k: [Bucket(value=b.value, count=b.count) for b in v] for k, v in result.facets.items()},
        next_cursor=result.next_cursor, source=found.source,
    )
