"""Search documents built from the catalogue (the projection of a case), the caller's visibility built from a
Principal, and exact-key lookups answered by the catalogue itself."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime, tzinfo
from typing import Any, NamedTuple

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, selectinload

from archive.catalogue.db import Catalogue
from archive.catalogue.models import ArchiveItem, Case, Document
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
    item = case.item
    return project(CaseRow(case.id, case.serial, case.category, case.business_type, case.status, case.branch,
                           case.accepted_at, case.closed_at, case.applicant_name, case.applicant_id_number,
                           case.unit_name, case.unit_uscc, case.loan_contract_no),
                   ItemRow(item.status, item.year, item.archival_code, item.effective_retention, item.expiry_date)
                   if item else None,
                   [d.material_type for d in case.active_documents], schedule, zone)


class CaseRow(NamedTuple):
    """The columns of a case the search document is made of (read by the ORM or, in bulk, as plain rows)."""

    id: int
    serial: str
    category: str
    business_type: str
    status: str
    branch: str
    accepted_at: datetime
    closed_at: datetime | None
    applicant_name: str | None
    applicant_id_number: str | None
    unit_name: str | None
    unit_uscc: str | None
    loan_contract_no: str | None


class ItemRow(NamedTuple):
    status: str
    year: int
    archival_code: str
    retention: str  # the 保管期限 in force (ArchiveItem.effective_retention)
    expiry_date: date | None


def project(case: CaseRow, item: ItemRow | None, material_types: Iterable[str], schedule: Schedule,
            zone: tzinfo = CHINA) -> SearchDocument:
    """The one projection of a case (its active documents' material types, its item) into a search document."""
    bt = schedule.types.get(case.business_type)
    bt_name = bt.name if bt else case.business_type
    category = schedule.categories.get(case.category)
    materials = [schedule.materials.get(m, m) for m in material_types]
    words = [case.applicant_name, case.unit_name, bt_name, category.name if category else None, *materials]
    return SearchDocument(
        id=case.id, serial=case.serial, kind="item" if item else "case", category=case.category,
        business_type=case.business_type, business_type_name=bt_name,
        status=item.status if item else case.status, branch=case.branch, accepted_at=case.accepted_at,
        year=item.year if item else case.accepted_at.astimezone(zone).year,
        archival_code=item.archival_code if item else None, retention_code=item.retention if item else None,
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


_CASE_COLUMNS = (Case.id, Case.serial, Case.category, Case.business_type, Case.status, Case.branch,
                 Case.accepted_at, Case.closed_at, Case.applicant_name, Case.applicant_id_number, Case.unit_name,
                 Case.unit_uscc, Case.loan_contract_no)
_ITEM_COLUMNS = (ArchiveItem.status, ArchiveItem.year, ArchiveItem.archival_code,
                 func.coalesce(ArchiveItem.current_retention, ArchiveItem.retention_code), ArchiveItem.expiry_date)
BULK_BATCH = 5000


def iter_documents(catalogue: Catalogue, schedule: Schedule, zone: tzinfo = CHINA,
                   batch: int = BULK_BATCH) -> Iterator[SearchDocument]:
    """Every case in the catalogue in id order, one short transaction per batch (SQLite readers lock).

    Bulk reads (a rebuild) take plain rows, not ORM objects: building and tracking a Case, its item and its
    documents cost three quarters of a rebuild's time. ``project`` is the same projection the worker uses.
    Batches follow the primary key (keyset: ``id > last``), never OFFSET.
    """
    last = 0
    while True:
        docs = read_batch(catalogue, schedule, zone, last, None, batch)
        if not docs:
            return
        yield from docs
        last = docs[-1].id


def read_batch(catalogue: Catalogue, schedule: Schedule, zone: tzinfo, after: int, upto: int | None,
               limit: int | None) -> list[SearchDocument]:
    """The documents of cases with ``after < id <= upto`` (no upper bound when None), at most ``limit``, in id
    order, read in one short transaction."""
    n_case = len(_CASE_COLUMNS)
    q = select(*_CASE_COLUMNS, *_ITEM_COLUMNS).outerjoin(ArchiveItem).where(Case.id > after).order_by(Case.id)
    if upto is not None:
        q = q.where(Case.id <= upto)
    if limit is not None:
        q = q.limit(limit)
    with catalogue.session() as s:
        rows = s.execute(q).all()
        if not rows:
            return []
        materials: dict[int, list[str]] = {}
        for case_id, material in s.execute(
                select(Document.case_id, Document.material_type)
                .where(Document.case_id > after, Document.case_id <= rows[-1][0], Document.is_active)
                .order_by(Document.case_id, Document.sequence)):
            materials.setdefault(case_id, []).append(material)
    return [project(CaseRow._make(row[:n_case]),
                    ItemRow._make(row[n_case:]) if row[n_case] is not None else None,
                    materials.get(row[0], ()), schedule, zone) for row in rows]


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
