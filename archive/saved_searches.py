"""保存的检索 (saved searches): a person's named search-page queries, private to their owner.

A saved search keeps the search page's parameters as pairs (the same names as the page's form), so opening it is
just the search page with those parameters; it is checked again then, like any query typed by hand.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from archive import audit
from archive.audit import Actor
from archive.catalogue.models import SavedSearch
from archive.errors import Conflict, InvalidInput, NotFound
from archive.permissions import Principal

MAX_NAME = 100
MAX_PER_OWNER = 50
MAX_PARAMS = 100


def list_saved(session: Session, principal: Principal) -> list[SavedSearch]:
    """The caller's saved searches, by name."""
    return list(session.scalars(select(SavedSearch).where(SavedSearch.owner == principal.name)
                                .order_by(SavedSearch.name).limit(MAX_PER_OWNER)))


def save(session: Session, principal: Principal, name: str, params: list[tuple[str, str]]) -> SavedSearch:
    """Save (or, under a name already used, replace) the caller's search ``params`` as ``name``."""
    name = (name or "").strip()
    if not name:
        raise InvalidInput("请为检索条件起个名称", code="saved_search_name_missing", detail={"field": "name"})
    if len(name) > MAX_NAME:
        raise InvalidInput(f"检索名称不能超过 {MAX_NAME} 个字符", code="saved_search_name_too_long",
                           detail={"field": "name", "max": MAX_NAME})
    kept = [[k, v] for k, v in params if k != "cursor" and v][:MAX_PARAMS]  # a cursor is one moment's page
    if not kept:
        raise InvalidInput("还没有检索条件可保存：请先输入检索词或选择筛选条件", code="saved_search_empty")
    row = session.scalar(select(SavedSearch).where(SavedSearch.owner == principal.name, SavedSearch.name == name))
    if row is None:
        count = session.scalar(select(func.count()).select_from(SavedSearch)
                               .where(SavedSearch.owner == principal.name)) or 0
        if count >= MAX_PER_OWNER:
            raise Conflict(f"最多保存 {MAX_PER_OWNER} 个检索，请先删除不再使用的", code="saved_search_too_many",
                           detail={"max": MAX_PER_OWNER})
        row = SavedSearch(owner=principal.name, name=name, query={"params": kept})
        session.add(row)
    else:
        row.query = {"params": kept}
    session.flush()
    audit.record(session, Actor.of(principal), "search.save", target_type="saved_search", target_id=row.id,
                 detail={"name": name})
    return row


def get_saved(session: Session, principal: Principal, saved_id: int) -> SavedSearch:
    """The caller's saved search; another person's reads as not existing."""
    row = session.get(SavedSearch, saved_id)
    if row is None or row.owner != principal.name:
        raise NotFound(f"保存的检索 {saved_id} 不存在", code="saved_search_not_found", detail={"id": saved_id})
    return row


def delete(session: Session, principal: Principal, saved_id: int) -> None:
    """Delete the caller's saved search (a preference, not an archive record)."""
    row = get_saved(session, principal, saved_id)
    session.delete(row)
    audit.record(session, Actor.of(principal), "search.saved.delete", target_type="saved_search",
                 target_id=saved_id, detail={"name": row.name})


def params_of(row: SavedSearch) -> list[tuple[str, str]]:
    return [(str(k), str(v)) for k, v in (row.query or {}).get("params", [])]
