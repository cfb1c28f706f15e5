"""archive.retrieval: the search service every front end calls (the API today, the web UI next) decides who may
search, where a query is answered and what is put on record, without any HTTP in between."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

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
