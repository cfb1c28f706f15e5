"""archive.retrieval: the search service every front end calls (the API today, the web UI next) decides who may
search, where a query is answered and what is put on record, without any HTTP in between."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import event, select

from archive import retrieval
from archive.catalogue.models import AuditEvent
from archive.context import Context
from archive.errors import PermissionDenied
from archive.permissions import ROLE_PERMISSIONS, Principal
from search.base import SearchQuery
from tests.factories import add_case
from tests.search.support import ID_ZHANG_SAN

CLERK = Principal("user", 1, "clerk01", ROLE_PERMISSIONS["clerk"], ("clerk",), frozenset({"BR01"}))
ADMIN = Principal("user", 2, "admin", ROLE_PERMISSIONS["admin"], ("admin",))


def _events(ctx: Context, action: str) -> list[AuditEvent]:
    with ctx.catalogue.sessions() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)))


def test_a_person_search_is_answered_by_the_catalogue_and_audited_masked(ctx: Context) -> None:
    """Given a case not yet indexed, When a clerk looks its applicant up by 证件号码 through the service, Then the
    catalogue answers (current before indexing), the hit shows the number in full to a clerk (whose role may see
    it), and a search.person event keeps the number masked."""
    add_case(ctx, "YW000001", name="张三", business_type="TQ03", branch="BR01", id_number=ID_ZHANG_SAN,
             accepted=datetime(2025, 3, 1, 1, tzinfo=UTC))
    with ctx.catalogue.session() as s:
        found = retrieval.search(ctx, s, CLERK, SearchQuery(keys={"id_number": ID_ZHANG_SAN}))
        shown = [retrieval.shown(d, CLERK) for d in found.result.hits]
    assert found.source == "catalogue" and found.result.total == 1
    assert shown[0]["applicant_id_number"] == ID_ZHANG_SAN  # clerks hold pii.read
    [event] = _events(ctx, "search.person")
    assert event.actor == "clerk01" and event.detail["source"] == "catalogue" and event.detail["hits"] == 1
    assert ID_ZHANG_SAN not in str(event.detail)


def test_a_caller_without_read_rights_is_refused_and_the_refusal_recorded(ctx: Context) -> None:
    """Given the system administrator (三员: reads no business records), When they search through the service, Then
    PermissionDenied is raised before anything is looked up and the refusal is on record; no search.person event."""
    with pytest.raises(PermissionDenied) as refused, ctx.catalogue.session() as s:
        retrieval.search(ctx, s, ADMIN, SearchQuery(keys={"id_number": ID_ZHANG_SAN}))
    assert refused.value.code == "permission_denied"
    [event] = _events(ctx, "permission.denied")
    assert event.actor == "admin" and event.outcome == "refused" and event.target_type == "search"
    assert _events(ctx, "search.person") == []


def test_a_search_by_archival_code_finds_the_case_by_index_not_by_scanning(ctx: Context) -> None:
    """Given the catalogue, When one 档号 is looked up, Then the statement reaches the case through the unique 档号
    (an EXISTS made SQLite probe every case: 216 ms at 100,000 cases)."""
    if not ctx.settings.database_url.startswith("sqlite"):
        pytest.skip("the query plan checked is SQLite's")
    seen: list[tuple[str, object]] = []

    def spy(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "archival_code" in statement and statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    engine = ctx.catalogue.engine
    event.listen(engine, "before_cursor_execute", spy)
    try:
        with ctx.catalogue.session() as s:
            retrieval.search(ctx, s, ADMIN_READER, SearchQuery(keys={"archival_code": "J001-YW·2026-D30-TQ-000001"}))
    finally:
        event.remove(engine, "before_cursor_execute", spy)
    statement, parameters = seen[0]
    with engine.connect() as c:
        plan = " ".join(str(row[-1]) for row in c.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters))
    assert "SCAN case" not in plan and "archival_code" in plan


ADMIN_READER = Principal("user", 3, "arch01", ROLE_PERMISSIONS["archivist"], ("archivist",))
