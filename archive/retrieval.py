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
