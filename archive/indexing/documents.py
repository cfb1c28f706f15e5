"""Search documents built from the catalogue (the projection of a case), the caller's visibility built from a
Principal, and exact-key lookups answered by the catalogue itself."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import tzinfo
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, selectinload

from archive.catalogue.db import Catalogue
from archive.catalogue.models import ArchiveItem, Case
from archive.classification import Schedule
from archive.permissions import Permission, Principal
from search.base import (
    CHINA,
    SearchDocument,
    SearchQuery,
    SearchResult,
    Visibility,
    finish,
    matches,
)

MAX_LOOKUP_ROWS = 1000


def visibility_of(principal: Principal) -> Visibility:
    """What ``principal`` may see in the index: its branches, and unfiled cases only with CASE_READ."""
    kinds: set[str] = set()
    if principal.can(Permission.CASE_READ):
        kinds |= {"case", "item"}
    if principal.can(Permission.ITEM_READ):
        kinds.add("item")
    return Visibility(principal.branches, frozenset(kinds))


def from_case(case: Case, schedule: Schedule, zone: tzinfo = CHINA) -> SearchDocument:
    """The search document of a case and, once filed, its archive item (年度 of an open case: local year)."""
    bt = schedule.types.get(case.business_type)
    bt_name = bt.name if bt else case.business_type
    category = schedule.categories.get(case.category)
    item = case.item
    materials = [schedule.materials.get(d.material_type, d.material_type)
                 for d in case.active_documents]
    words = [case.applicant_name, case.unit_name, bt_name, category.name if category else None, *materials]
    return SearchDocument(
        id=case.id, serial=case.serial, kind="item" if item else "case", category=case.category,
        business_type=case.business_type, business_type_name=bt_name,
        status=item.status if item else case.status, branch=case.branch, accepted_at=case.accepted_at,
        year=item.year if item else case.accepted_at.astimezone(zone).year,
        archival_code=item.archival_code if item else None, retention_code=item.effective_retention if item else None,
        applicant_name=case.applicant_name, applicant_id_number=case.applicant_id_number,
        unit_name=case.unit_name, unit_uscc=case.unit_uscc, loan_contract_no=case.loan_contract_no,
        closed_at=case.closed_at, expiry_date=item.expiry_date if item else None,
        amount=None,  # the catalogue has no amount column yet; the index and query model are ready for one
        text=" ".join(dict.fromkeys(w for w in words if w)),
    )


def _with_relations() -> Select[Any]:
    return select(Case).options(selectinload(Case.documents), selectinload(Case.item))


def load_documents(session: Session, serials: Iterable[str], schedule: Schedule,
                   zone: tzinfo = CHINA) -> dict[str, SearchDocument | None]:
    """Current documents for ``serials``; None for a serial no longer in the catalogue (→ delete)."""
    wanted = list(dict.fromkeys(serials))
    found = {c.serial: from_case(c, schedule, zone)
             for c in session.scalars(_with_relations().where(Case.serial.in_(wanted)))}
    return {s: found.get(s) for s in wanted}


def iter_documents(catalogue: Catalogue, schedule: Schedule, zone: tzinfo = CHINA,
                   batch: int = 1000) -> Iterator[SearchDocument]:
    """Every case in the catalogue in id order, one short transaction per batch (SQLite readers lock)."""
    last = 0
    while True:
        with catalogue.session() as s:
            cases = list(s.scalars(_with_relations().where(Case.id > last).order_by(Case.id).limit(batch)))
            docs = [from_case(c, schedule, zone) for c in cases]
        if not docs:
            return
        yield from docs
        last = docs[-1].id


def count_cases(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Case)) or 0


def lookup(session: Session, schedule: Schedule, query: SearchQuery, visibility: Visibility,
           zone: tzinfo = CHINA) -> SearchResult:
    """Answer a query of exact keys (plus filters) from the catalogue: current even before indexing.

    Keys and branch visibility narrow the SQL; the remaining filters apply to the few rows found.
    """
    q = _with_relations()
    for key, value in query.keys.items():
        if key == "archival_code":
            # IN over the unique 档号 rather than EXISTS: SQLite would probe the EXISTS for every case
            q = q.where(Case.id.in_(select(ArchiveItem.case_id).where(ArchiveItem.archival_code == value)))
        else:
            column = {"serial": Case.serial, "id_number": Case.applicant_id_number, "uscc": Case.unit_uscc,
                      "loan_contract_no": Case.loan_contract_no}[key]
            q = q.where(column == value)
    if visibility.branches is not None:
        q = q.where(Case.branch.in_(visibility.branches))
    docs = [from_case(c, schedule, zone) for c in session.scalars(q.limit(MAX_LOOKUP_ROWS))]
    docs = [d for d in docs if matches(d, query, visibility)]
    field = query.sort_field
    docs.sort(key=lambda d: d.sort_key(field), reverse=query.descending)
    total = len(docs)
    if query.after_key is not None:
        after = query.after_key
        docs = [d for d in docs if (d.sort_key(field) < after if query.descending else d.sort_key(field) > after)]
    return finish(query, total, docs[: query.page_size + 1], {})
