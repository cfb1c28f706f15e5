"""Retrieval (检索) for every front end — the API now, the web UI next: who may search, where a query is answered,
what is put on record, what a hit shows.

- Exact keys alone (流水号, 档号, 证件号码, 统一社会信用代码, 借款合同号) are answered by the catalogue, current before
  indexing; everything else by the search index.
- A search by 证件号码, or with a long number (证件号码, 手机号, 银行卡号) typed as text, is audited
  (``search.person``) with the numbers masked.
- Hits show personal data masked unless the caller's role may see it; the index itself holds it unmasked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy.orm import Session

from archive import audit, authorization
from archive.audit import Actor
from archive.context import Context
from archive.identifiers import mask_id_number, mask_name
from archive.indexing.documents import lookup, visibility_of
from archive.permissions import Permission, Principal
from search.base import SearchDocument, SearchQuery, SearchResult

LONG_NUMBER = re.compile(r"\d{10,}[\dXx]?")  # 证件号码, 手机号, 银行卡号 typed into the text box
ID_NUMBER = re.compile(r"\d{17}[\dXx]")  # 居民身份证号码
ARCHIVAL_CODE = re.compile(r"[A-Za-z0-9]+-[A-Za-z0-9·.\-]*\d")  # 档号: 全宗号-…-件号, e.g. J001-YW·2026-D30-TQ-000001
SERIAL_KEY = re.compile(r"(?=.*[A-Za-z])(?=.*\d)[A-Za-z0-9][A-Za-z0-9_-]{5,63}")  # 业务流水号: letters and digits


@dataclass(frozen=True)
class Found:
    result: SearchResult
    source: str  # index | catalogue


def search(ctx: Context, session: Session, principal: Principal, query: SearchQuery) -> Found:
    """Check the caller may search, answer from the catalogue (exact keys only) or the index, audit person look-ups."""
    authorization.require(session, principal, Permission.CASE_READ, Permission.ITEM_READ, target_type="search")
    visibility = visibility_of(principal)
    if query.keys and not query.text and not query.ranges and not query.facets:
        found = Found(lookup(session, ctx.schedule, query, visibility, ctx.zone), "catalogue")
    else:
        found = Found(ctx.index.search(query, visibility), "index")
    id_number, text = query.keys.get("id_number"), query.text
    if id_number or (text and LONG_NUMBER.search(text)):
        # who looked a person up by 证件号码 (or a phone / card number typed as text): on record, masked
        audit.record(session, Actor(principal.kind, principal.name), "search.person", target_type="search", detail={
            "id_number": mask_id_number(id_number), "q": LONG_NUMBER.sub(_mask_number, text) if text else None,
            "hits": found.result.total, "source": found.source})
    return found


def day_start(day: date | None, zone: tzinfo, plus: int = 0) -> datetime | None:
    """Midnight of ``day`` (plus ``plus`` days) in the center's zone: a date range's bound on a datetime field."""
    if day is None or (plus and day == date.max):  # "up to 9999-12-31 inclusive" has no end
        return None
    return datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(days=plus)


def read_box(box: str) -> tuple[dict[str, str], str | None]:
    """What one search box holds: an exact key (证件号码, 档号, 业务流水号) or free text, as (keys, text).

    A long number that is no 证件号码 (手机号, 银行卡号) stays text, so it is audited as such by :func:`search`.
    """
    value = box.strip()
    if ID_NUMBER.fullmatch(value):
        return {"id_number": value.upper()}, None
    if " " not in value and ("·" in value or (ARCHIVAL_CODE.fullmatch(value) and value.count("-") >= 2)):
        return {"archival_code": value}, None
    if SERIAL_KEY.fullmatch(value):
        return {"serial": value}, None
    return {}, value or None


def shown(doc: SearchDocument, principal: Principal) -> dict[str, Any]:
    """A hit's stored fields, personal data masked unless the caller's role may see it."""
    data = doc.stored()
    if not principal.can(Permission.PII_READ):
        data["applicant_name"] = mask_name(doc.applicant_name)
        data["applicant_id_number"] = mask_id_number(doc.applicant_id_number)
    return data


def _mask_number(m: re.Match[str]) -> str:
    digits = m.group(0)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
