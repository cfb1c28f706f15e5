"""检索 (search) and saved searches (保存的检索).

One box (text, 档号, 业务流水号 or 证件号码, told apart by archive.retrieval.read_box), facets, date ranges, cursor
paging. The query goes through archive.retrieval.search exactly as the API's GET /api/v1/search does: the same
visibility (branches, roles), the same masking, the same ``search.person`` audit of a 证件号码 look-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Annotated
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from archive import retrieval, saved_searches
from archive.api.deps import UnitOfWork, context
from archive.api.errors import status_of
from archive.api.params import Id
from archive.catalogue.models import Case, Document
from archive.classification import RetentionCode, Schedule
from archive.context import Context
from archive.errors import ERRORS, SYSTEM_KINDS, AnyError, InvalidInput
from archive.permissions import Permission, Principal
from archive.web.deps import require
from archive.web.render import SECURITY_HEADERS, render
from search.base import Range, SearchQuery

router = APIRouter(prefix="/ui/search", include_in_schema=False)
Searcher = Depends(require(Permission.ITEM_READ))
PAGE_SIZE = 20
MAX_BOX = 200
FACETS = ("category", "business_type", "year", "retention_code", "status", "branch")  # in the order shown
FACET_NAMES = {"category": "类别", "business_type": "业务类型", "year": "年度", "retention_code": "保管期限",
               "status": "状态", "branch": "办理网点", "kind": "归档"}
STATUS_NAMES = {"open": "办理中", "filed": "已归档", "destroyed": "已销毁"}
DATE_FIELDS = {"accepted": ("accepted_at", "受理日期"), "closed": ("closed_at", "办结日期")}
PARAMS = ("q", *FACETS, *(f"{d}_{end}" for d in DATE_FIELDS for end in ("from", "to")), "cursor")
THUMB_WIDTH = 64


@dataclass
class SearchForm:
    """The search page's parameters as typed (kept to refill the form and to build links)."""

    q: str = ""
    filters: dict[str, list[str]] = field(default_factory=dict)
    dates: dict[str, str] = field(default_factory=dict)  # accepted_from … closed_to, YYYY-MM-DD
    cursor: str | None = None

    @classmethod
    def of(cls, pairs: list[tuple[str, str]]) -> SearchForm:
        """From the page's query string (unknown parameters are ignored, empty ones too)."""
        filters: dict[str, list[str]] = {}
        form = cls()
        for k, v in pairs:
            if k == "q":
                form.q = v
            elif k in FACETS and v:
                filters.setdefault(k, []).append(v)
            elif k.endswith(("_from", "_to")) and k in PARAMS and v.strip():
                form.dates[k] = v.strip()
            elif k == "cursor" and v:
                form.cursor = v
        form.filters = filters
        return form

    @property
    def empty(self) -> bool:
        return not (self.q.strip() or self.filters or self.dates)

    def pairs(self, cursor: str | None = None) -> list[tuple[str, str]]:
        out = [("q", self.q)] if self.q else []
        out += [(f, v) for f, vs in self.filters.items() for v in vs]
        out += list(self.dates.items())
        return out + ([("cursor", cursor)] if cursor else [])

    def link(self, *, toggle: tuple[str, str] | None = None, cursor: str | None = None) -> str:
        """This search's URL, with one facet value toggled on or off (back to the first page)."""
        pairs = self.pairs(cursor)
        if toggle is not None:
            pairs = [p for p in pairs if p != toggle] if toggle in pairs else [*pairs, toggle]
        return "/ui/search" + ("?" + urlencode(pairs) if pairs else "")


def _date(value: str | None, label: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{label}「{value[:20]}」不是有效日期，请按 2026-01-31 的格式填写", code="invalid_date",
                           detail={"field": label}) from None


def query_of(ctx: Context, form: SearchForm) -> tuple[SearchQuery, str]:
    """The form as the API's query (same ranges in the center's zone), and what the box was read as."""
    if len(form.q) > MAX_BOX:
        raise InvalidInput(f"检索词不能超过 {MAX_BOX} 个字符", code="search_input_too_long",
                           detail={"field": "q", "max": MAX_BOX})
    keys, text = retrieval.read_box(form.q)
    ranges = {}
    for name, (target, label) in DATE_FIELDS.items():
        start = _date(form.dates.get(f"{name}_from"), f"{label}起")
        end = _date(form.dates.get(f"{name}_to"), f"{label}止")
        if start and end and end < start:
            raise InvalidInput(f"{label}的起点晚于终点", code="invalid_range", detail={"field": name})
        ranges[target] = Range(retrieval.day_start(start, ctx.zone), retrieval.day_start(end, ctx.zone, 1))
    filters: dict[str, list[str | int]] = {f: list(v) for f, v in form.filters.items()}
    exact = bool(keys) and not filters and not any(r.gte or r.lt for r in ranges.values())
    # an exact key alone is answered by the catalogue (current before indexing), which has no facets
    query = SearchQuery(text=text, keys=keys, filters=filters, ranges=ranges,
                        facets=() if exact else FACETS, page_size=PAGE_SIZE, cursor=form.cursor)
    how = {"id_number": "按证件号码精确查找", "archival_code": "按档号精确查找", "serial": "按业务流水号精确查找"}
    return query, next((how[k] for k in keys), "全文检索" if text else "按条件筛选")


def value_name(schedule: Schedule, facet: str, value: str) -> str:
    """A facet value in words (业务类型 names, 保管期限 labels …)."""
    if facet == "business_type":
        return schedule.types[value].name if value in schedule.types else value
    if facet == "category":
        return schedule.categories[value].name if value in schedule.categories else value
    if facet == "retention_code":
        return RetentionCode(value).label if value in RetentionCode.__members__.values() else value
    if facet == "status":
        return STATUS_NAMES.get(value, value)
    return value


def first_documents(db: Session, serials: list[str]) -> dict[str, int]:
    """The first active document of each case (its first page is the hit's thumbnail): one query for the page."""
    if not serials:
        return {}
    rows = db.execute(select(Case.serial, Document.id).join(Document, Document.case_id == Case.id)
                      .where(Case.serial.in_(serials), Document.status == "active")
                      .order_by(Document.sequence.desc()))
    return {serial: doc_id for serial, doc_id in rows}  # the lowest sequence written last


def _page(request: Request, ctx: Context, db: Session, principal: Principal, form: SearchForm,
          error: AnyError | None = None, status: int = 200) -> Response:
    found = how = None
    if not form.empty and error is None:
        try:
            query, how = query_of(ctx, form)
            found = retrieval.search(ctx, db, principal, query)
        except ERRORS as exc:
            if exc.kind in SYSTEM_KINDS:
                raise
            error, status = exc, status_of(exc)
    hits = [retrieval.shown(h, principal) for h in found.result.hits] if found else []
    thumbs = first_documents(db, [h["serial"] for h in hits]) if principal.can(Permission.IMAGE_READ) else {}
    return render(request, "search.html", status=status, form=form, found=found, hits=hits, how=how, error=error,
                  thumbs=thumbs, thumb_width=THUMB_WIDTH, facets=FACETS, facet_names=FACET_NAMES,
                  value_name=lambda f, v: value_name(ctx.schedule, f, v), schedule=ctx.schedule,
                  saved=saved_searches.list_saved(db, principal), status_names=STATUS_NAMES,
                  retention_label=lambda c: value_name(ctx.schedule, "retention_code", c or ""),
                  date_fields=DATE_FIELDS)


@router.get("")
def search_page(request: Request, ctx: Context = Depends(context), db: Session = UnitOfWork,
                principal: Principal = Searcher) -> Response:
    return _page(request, ctx, db, principal, SearchForm.of(list(request.query_params.multi_items())))


@router.post("/saved")
def save(request: Request, name: Annotated[str, Form(max_length=1000)] = "",
         query: Annotated[str, Form(max_length=4000)] = "", ctx: Context = Depends(context),
         db: Session = UnitOfWork, principal: Principal = Searcher) -> Response:
    """Save the search the page shows (its query string) under a name; the same name again replaces it."""
    pairs = [(k, v) for k, v in parse_qsl(query) if k in PARAMS]
    try:
        with db.begin_nested():
            saved_searches.save(db, principal, name, pairs)
    except ERRORS as exc:
        if exc.kind in SYSTEM_KINDS:
            raise
        form = SearchForm.of(pairs)
        return _page(request, ctx, db, principal, form, error=exc, status=status_of(exc))
    return RedirectResponse("/ui/search?" + urlencode(pairs), status_code=303, headers=SECURITY_HEADERS)


@router.get("/saved/{saved_id}")
def open_saved(saved_id: Id, db: Session = UnitOfWork, principal: Principal = Searcher) -> Response:
    row = saved_searches.get_saved(db, principal, saved_id)
    return RedirectResponse("/ui/search?" + urlencode(saved_searches.params_of(row)), status_code=303,
                            headers=SECURITY_HEADERS)


@router.post("/saved/{saved_id}/delete")
def delete_saved(saved_id: Id, db: Session = UnitOfWork, principal: Principal = Searcher) -> Response:
    saved_searches.delete(db, principal, saved_id)
    return RedirectResponse("/ui/search", status_code=303, headers=SECURITY_HEADERS)


