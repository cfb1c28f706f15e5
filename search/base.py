"""The retrieval interface every index backend implements, and the query model they share.

A query is free text (search/analysis.py), exact keys, filters, half-open ranges, facets, a sort and a
cursor. The caller's visibility (branches, and whether unfiled cases or only filed items) is applied
inside the index, so a backend never returns what the caller may not see.

Sorting is by one field; each document carries a unique integer sort key per sortable field
(``seconds << 32 | id``), so ties cannot reorder pages and a cursor is just the last key seen.
Relevance sorting pages by offset, up to ``MAX_RELEVANCE_DEPTH`` hits.
"""

from __future__ import annotations

import base64
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from search.analysis import TextQuery, parse_text
from search.errors import SearchInvalid

CHINA = timezone(timedelta(hours=8), "CST")  # business dates are Beijing dates; China has no DST

# exact keys → document field
KEY_FIELDS: dict[str, str] = {
    "serial": "serial",
    "archival_code": "archival_code",
    "id_number": "applicant_id_number",
    "uscc": "unit_uscc",
    "loan_contract_no": "loan_contract_no",
}
FILTER_FIELDS = ("category", "business_type", "retention_code", "status", "branch", "year", "kind")
FACET_FIELDS = FILTER_FIELDS
RANGE_FIELDS: dict[str, str] = {  # field → kind of bound
    "accepted_at": "datetime", "closed_at": "datetime", "expiry_date": "date", "year": "int", "amount": "amount",
}
SORT_FIELDS = ("accepted_at", "closed_at", "expiry_date")
RELEVANCE = "relevance"
DEFAULT_SORT = "-accepted_at"
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_FILTER_VALUES = 50
FACET_SIZE = 100
MAX_RELEVANCE_DEPTH = 10_000
KINDS = ("case", "item")  # case: accepted, not yet filed; item: filed (has an 档号)
ALL_KINDS = frozenset(KINDS)


@dataclass
class SearchDocument:
    """What the index holds for one case (业务) and, once filed, its archive item (件)."""

    id: int  # catalogue case id: unique, used to break sort ties
    serial: str  # 业务流水号
    kind: str  # case | item
    category: str
    business_type: str
    business_type_name: str
    status: str
    branch: str
    accepted_at: datetime
    year: int
    archival_code: str | None = None  # 档号
    retention_code: str | None = None
    applicant_name: str | None = None
    applicant_id_number: str | None = None  # stored exact; masked by the API, never in the index
    unit_name: str | None = None
    unit_uscc: str | None = None
    loan_contract_no: str | None = None
    closed_at: datetime | None = None
    expiry_date: date | None = None
    amount: Decimal | None = None  # yuan, two decimals
    text: str = ""  # free text to analyse; not stored, so hits carry ""

    def __post_init__(self) -> None:
        # Both backends keep whole seconds; truncate here so range boundaries agree.
        self.accepted_at = _utc_seconds(self.accepted_at)
        if self.closed_at is not None:
            self.closed_at = _utc_seconds(self.closed_at)

    def sort_key(self, sort_field: str) -> int:
        """Unique, order-preserving integer for ``sort_field``: whole seconds << 32 | id (missing → 0)."""
        value = getattr(self, sort_field)
        seconds = 0 if value is None else max(0, int(_as_utc(value).timestamp()))
        return (seconds << 32) | (self.id & 0xFFFFFFFF)

    def stored(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "text"}


def _as_utc(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def _utc_seconds(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("SearchDocument datetimes must be timezone-aware")
    return value.astimezone(UTC).replace(microsecond=0)


def amount_cents(value: Decimal | int | float | str) -> int:
    return int((Decimal(str(value)) * 100).to_integral_value())


DATE_FIELDS = ("accepted_at", "closed_at", "expiry_date")


def flatten(doc: SearchDocument, fields: tuple[str, ...], when: Callable[[date | datetime], Any],
            tokens: str) -> dict[str, Any]:
    """The stored form of a document, shared by the backends: ``fields`` as they are, dates through ``when``
    (each backend's own date type), amount in cents, precomputed sort keys, the analysed text as ``tokens``."""
    out: dict[str, Any] = {"id": doc.id, "year": doc.year, "tokens": tokens}
    out |= {name: value for name in fields if (value := getattr(doc, name)) is not None}
    out |= {name: when(value) for name in DATE_FIELDS if (value := getattr(doc, name)) is not None}
    if doc.amount is not None:
        out["amount_cents"] = amount_cents(doc.amount)
    out |= {f"sort_{name}": doc.sort_key(name) for name in SORT_FIELDS}
    return out


@dataclass(frozen=True)
class Range:
    """Half-open range ``gte <= value < lt``; either bound may be missing."""

    gte: Any = None
    lt: Any = None


@dataclass(frozen=True)
class Visibility:
    """What a caller may see: branches (None: every branch) and kinds (unfiled cases, filed items).

    The application builds it from its own notion of a caller (archive.indexing.documents.visibility_of).
    """

    branches: frozenset[str] | None
    kinds: frozenset[str]

    @classmethod
    def everything(cls) -> Visibility:
        return cls(None, frozenset(KINDS))

    @property
    def nothing(self) -> bool:
        return not self.kinds or (self.branches is not None and not self.branches)


@dataclass
class SearchQuery:
    """A validated query; constructing one with bad input raises SearchInvalid with a stable code."""

    text: str | None = None
    keys: Mapping[str, str] = field(default_factory=dict)
    filters: Mapping[str, Sequence[str | int]] = field(default_factory=dict)
    ranges: Mapping[str, Range] = field(default_factory=dict)
    facets: Sequence[str] = ()
    sort: str = DEFAULT_SORT
    page_size: int = DEFAULT_PAGE_SIZE
    cursor: str | None = None

    def __post_init__(self) -> None:
        self.text = (self.text or "").strip() or None
        self.parsed: TextQuery | None = parse_text(self.text) if self.text else None
        self.keys = self._check_keys(self.keys)
        self.filters = self._check_filters(self.filters)
        self.ranges = self._check_ranges(self.ranges)
        unknown = [f for f in self.facets if f not in FACET_FIELDS]
        if unknown:
            raise SearchInvalid(f"不能按 {'、'.join(unknown)} 统计分面，可用字段：{'、'.join(FACET_FIELDS)}",
                               code="unknown_facet_field", detail={"fields": unknown, "allowed": list(FACET_FIELDS)})
        self.facets = tuple(dict.fromkeys(self.facets))
        if not isinstance(self.page_size, int) or self.page_size < 1:
            raise SearchInvalid("每页条数至少为 1", code="invalid_page_size", detail={"field": "page_size"})
        if self.page_size > MAX_PAGE_SIZE:
            raise SearchInvalid(f"每页条数最多 {MAX_PAGE_SIZE} 条，请减小 page_size 并用 cursor 翻页",
                               code="page_size_too_large", detail={"field": "page_size", "max": MAX_PAGE_SIZE})
        if self.sort.lstrip("-") not in (*SORT_FIELDS, RELEVANCE):
            allowed = "、".join((*SORT_FIELDS, RELEVANCE))
            raise SearchInvalid(f"不能按 {self.sort} 排序，可用：{allowed}（前加 - 为降序）", code="invalid_sort",
                               detail={"field": "sort", "value": self.sort})
        if self.sort.lstrip("-") == RELEVANCE:
            self.sort = RELEVANCE if self.parsed and self.parsed.must else DEFAULT_SORT
        self.position = decode_cursor(self.cursor, self.sort) if self.cursor else None

    @staticmethod
    def _check_keys(keys: Mapping[str, str]) -> dict[str, str]:
        unknown = [k for k in keys if k not in KEY_FIELDS]
        if unknown:
            raise SearchInvalid(f"未知的检索键 {'、'.join(unknown)}，可用：{'、'.join(KEY_FIELDS)}",
                               code="unknown_filter_field", detail={"fields": unknown, "allowed": list(KEY_FIELDS)})
        out = {}
        for k, v in keys.items():
            v = (v or "").strip()
            if not v or len(v) > 64:
                raise SearchInvalid(f"检索键 {k} 的值应为 1–64 个字符", code="invalid_key", detail={"field": k})
            out[k] = v.upper() if k in ("id_number", "uscc") else v
        return out

    @staticmethod
    def _check_filters(filters: Mapping[str, Sequence[str | int]]) -> dict[str, tuple[str | int, ...]]:
        unknown = [f for f in filters if f not in FILTER_FIELDS]
        if unknown:
            raise SearchInvalid(f"未知的筛选字段 {'、'.join(unknown)}，可用：{'、'.join(FILTER_FIELDS)}",
                               code="unknown_filter_field",
                               detail={"fields": unknown, "allowed": list(FILTER_FIELDS)})
        out: dict[str, tuple[str | int, ...]] = {}
        for name, values in filters.items():
            values = [values] if isinstance(values, str | int) else list(values)
            if not values:
                continue
            if len(values) > MAX_FILTER_VALUES:
                raise SearchInvalid(f"筛选字段 {name} 最多 {MAX_FILTER_VALUES} 个值", code="too_many_values",
                                   detail={"field": name})
            if name == "year":
                try:
                    out[name] = tuple(sorted({int(v) for v in values}))
                except ValueError:
                    raise SearchInvalid("年度应为四位数字", code="invalid_filter_value",
                                       detail={"field": name}) from None
            else:
                out[name] = tuple(dict.fromkeys(str(v).strip() for v in values))
            if name == "kind" and not set(out[name]) <= set(KINDS):
                raise SearchInvalid("kind 只能是 case（未归档业务）或 item（已归档）", code="invalid_filter_value",
                                   detail={"field": name})
        return out

    @staticmethod
    def _check_ranges(ranges: Mapping[str, Range]) -> dict[str, Range]:
        unknown = [r for r in ranges if r not in RANGE_FIELDS]
        if unknown:
            raise SearchInvalid(f"不能按 {'、'.join(unknown)} 限定范围，可用：{'、'.join(RANGE_FIELDS)}",
                               code="unknown_filter_field", detail={"fields": unknown, "allowed": list(RANGE_FIELDS)})
        out = {}
        for name, r in ranges.items():
            if r.gte is None and r.lt is None:
                continue
            kind = RANGE_FIELDS[name]
            ok = {"datetime": lambda v: isinstance(v, datetime) and v.tzinfo is not None,
                  "date": lambda v: isinstance(v, date) and not isinstance(v, datetime),
                  "int": lambda v: isinstance(v, int),
                  "amount": lambda v: isinstance(v, Decimal | int)}[kind]
            if not all(v is None or ok(v) for v in (r.gte, r.lt)):
                raise SearchInvalid(f"范围 {name} 的边界类型不正确", code="invalid_range", detail={"field": name})
            if r.gte is not None and r.lt is not None and not r.gte < r.lt:
                raise SearchInvalid(f"范围 {name} 的起点应早于（小于）终点", code="invalid_range",
                                   detail={"field": name})
            out[name] = r
        return out

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-") or self.sort == RELEVANCE

    @property
    def sort_field(self) -> str:
        return self.sort.lstrip("-")

    @property
    def offset(self) -> int:
        return self.position if self.sort == RELEVANCE and self.position else 0

    @property
    def after_key(self) -> int | None:
        return self.position if self.sort != RELEVANCE else None


@dataclass(frozen=True)
class FacetCount:
    value: str
    count: int


@dataclass
class SearchResult:
    total: int
    hits: list[SearchDocument]
    facets: dict[str, list[FacetCount]] = field(default_factory=dict)
    next_cursor: str | None = None


def encode_cursor(sort: str, position: int) -> str:
    raw = json.dumps({"s": sort, "p": position}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        position = data["p"]
        ok = data["s"] == sort and isinstance(position, int) and position >= 0
    except (ValueError, TypeError, KeyError):
        ok = False
    if not ok:
        raise SearchInvalid("翻页游标无效或与排序方式不符，请从第一页重新查询", code="invalid_cursor",
                           detail={"field": "cursor"})
    if sort == RELEVANCE and position >= MAX_RELEVANCE_DEPTH:
        raise SearchInvalid(f"按相关度排序最多翻到第 {MAX_RELEVANCE_DEPTH} 条，请增加检索条件",
                           code="page_too_deep", detail={"field": "cursor"})
    return int(position)


def finish(query: SearchQuery, total: int, page: list[SearchDocument],
           facets: Mapping[str, Iterable[tuple[Any, int]]]) -> SearchResult:
    """Common tail of every backend: trim the extra hit into a cursor, normalise facet buckets."""
    next_cursor = None
    if len(page) > query.page_size:
        page = page[: query.page_size]
        if query.sort == RELEVANCE:
            next_cursor = encode_cursor(RELEVANCE, query.offset + query.page_size)
        else:
            next_cursor = encode_cursor(query.sort, page[-1].sort_key(query.sort_field))
    out = {}
    for name in query.facets:
        buckets = [FacetCount(str(int(k)) if isinstance(k, float) else str(k), int(n))
                   for k, n in facets.get(name, ()) if n > 0]
        out[name] = sorted(buckets, key=lambda b: (-b.count, b.value))
    return SearchResult(total, page, out, next_cursor)


def matches(doc: SearchDocument, query: SearchQuery, visibility: Visibility) -> bool:
    """Reference predicate for keys, filters, ranges and visibility (not text), used on small sets."""
    if visibility.nothing or doc.kind not in visibility.kinds:
        return False
    if visibility.branches is not None and doc.branch not in visibility.branches:
        return False
    for key, value in query.keys.items():
        if getattr(doc, KEY_FIELDS[key]) != value:
            return False
    for name, values in query.filters.items():
        if getattr(doc, name) not in values:
            return False
    for name, r in query.ranges.items():
        got = getattr(doc, name)
        if got is None:
            return False
        lo, hi = r.gte, r.lt
        if name == "amount":
            got = amount_cents(got)
            lo, hi = (None if lo is None else amount_cents(lo)), (None if hi is None else amount_cents(hi))
        if (lo is not None and got < lo) or (hi is not None and got >= hi):
            return False
    return True


class SearchIndex(ABC):
    """A retrieval index of SearchDocuments keyed by serial (业务流水号)."""

    backend: str = "?"
    # The backend's field form of a document, made where a rebuild reads the catalogue (a producer process):
    # ``rebuild`` then also accepts what it returns (a dict) in place of the document. A module-level function.
    bulk_prepare: Callable[[SearchDocument], dict[str, Any]] | None = None

    @abstractmethod
    def upsert(self, docs: Iterable[SearchDocument]) -> dict[str, str]:
        """Add or replace documents by serial; returns {serial: reason} for documents refused one by one.

        Raises SearchUnavailable(code="index_unavailable") when the index cannot be reached at all.
        """

    @abstractmethod
    def delete(self, serials: Iterable[str]) -> None:
        """Remove documents by serial; a serial not in the index is not an error."""

    @abstractmethod
    def search(self, query: SearchQuery, visibility: Visibility) -> SearchResult:
        """Hits, total, facets and next cursor, with the caller's visibility applied inside the index."""

    @abstractmethod
    def rebuild(self, docs: Iterable[SearchDocument | dict[str, Any]],
                progress: Callable[[int], None] | None = None) -> int:
        """Build a new index from ``docs`` (documents, or their ``bulk_prepare`` form) and switch to it at once;
        searches never see a half-built index."""

    @abstractmethod
    def count(self) -> int:
        """Documents in the index."""

    @abstractmethod
    def health(self) -> dict[str, Any]:
        """Backend facts for /readyz and ``archive index status``; raises SearchUnavailable when down."""

    def refresh(self) -> None:  # noqa: B027 - optional hook
        """Make every write so far visible to searches (tests; both backends already do on write)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files, locks and connections."""


def china_day_start(day: date) -> datetime:
    """Midnight of a Beijing calendar day, for date-bounded ranges on datetimes."""
    return datetime(day.year, day.month, day.day, tzinfo=CHINA)
