"""GET /api/v1/search: branch and role visibility, masking, catalogue-answered keys, bad input, an index
that is down, and the index part of /readyz."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from archive import indexing
from archive.api.app import create_app
from archive.catalogue.models import AuditEvent
from archive.context import Context
from search.elasticsearch import ElasticsearchIndex
from tests.factories import add_case, file_case_row
from tests.helpers import add_client, add_user, login
from tests.search.support import ID_ZHANG_SAN

ID_LI_SI = "110105199002020046"


@pytest.fixture
def client(ctx: Context) -> Iterator[TestClient]:
    """Three cases in two branches, indexed: 张三 (BR01, filed), 张三丰 (BR02, open), 李四 (BR01, open)."""
    add_case(ctx, "YW000001", name="张三", business_type="TQ03", branch="BR01", id_number=ID_ZHANG_SAN,
             accepted=datetime(2025, 3, 1, 1, tzinfo=UTC))
    file_case_row(ctx, "YW000001")
    add_case(ctx, "YW000002", name="张三丰", business_type="TQ09", branch="BR02", id_number="110105195504040057",
             accepted=datetime(2025, 3, 31, 15, 30, tzinfo=UTC))  # 23:30 on 31 March, Beijing time
    add_case(ctx, "YW000003", name="李四", business_type="TQ07", branch="BR01", id_number=ID_LI_SI,
             accepted=datetime(2025, 3, 31, 16, 10, tzinfo=UTC))  # 00:10 on 1 April, Beijing time
    indexing.IndexWorker(ctx).drain()
    add_user(ctx, "clerk01", ["clerk"], "BR01")
    add_user(ctx, "archivist", ["archivist"])
    add_user(ctx, "auditor", ["auditor"])
    with TestClient(create_app(context=ctx), raise_server_exceptions=False) as c:
        yield c


def test_clerk_sees_only_own_branch_with_full_personal_data(client: TestClient) -> None:
    """Given a BR01 clerk, When searching 张三, Then only the BR01 case comes back, name and ID unmasked."""
    r = client.get("/api/v1/search", params={"q": "张三", "facet": "branch"}, headers=login(client, "clerk01"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert [h["serial"] for h in body["hits"]] == ["YW000001"]
    assert body["hits"][0]["applicant_id_number"] == ID_ZHANG_SAN and body["hits"][0]["applicant_name"] == "张三"
    assert body["facets"] == {"branch": [{"value": "BR01", "count": 1}]}
    assert body["source"] == "index" and body["total"] == 1


def test_business_system_without_pii_scope_gets_masked_personal_data(ctx: Context, client: TestClient) -> None:
    """Given a client with data.read only, When searching, Then every branch is visible but names and IDs masked."""
    key = add_client(ctx, "core", ["data.read"])
    r = client.get("/api/v1/search", params={"q": "张三"}, headers=key)
    assert r.status_code == 200, r.text
    hits = r.json()["hits"]
    assert [h["serial"] for h in hits] == ["YW000002", "YW000001"]
    assert [h["applicant_name"] for h in hits] == ["张*丰", "张*"]
    assert hits[1]["applicant_id_number"] == "110105********0019"


def test_exact_key_is_answered_by_the_catalogue_before_indexing(ctx: Context, client: TestClient) -> None:
    """Given a case opened a moment ago and not yet indexed, When looking it up by ID number, Then the catalogue
    answers with it; another branch's clerk does not see it."""
    add_case(ctx, "YW000004", name="王五", branch="BR01", id_number="110105198801010011")
    r = client.get("/api/v1/search", params={"id_number": "110105198801010011"}, headers=login(client, "archivist"))
    assert r.status_code == 200, r.text
    assert r.json()["source"] == "catalogue" and [h["serial"] for h in r.json()["hits"]] == ["YW000004"]
    add_user(ctx, "clerk02", ["clerk"], "BR02")
    r = client.get("/api/v1/search", params={"serial": "YW000004"}, headers=login(client, "clerk02"))
    assert r.status_code == 200 and r.json()["hits"] == []


def test_catalogue_lookup_applies_the_other_filters(client: TestClient) -> None:
    """Given 张三's filed case, When looking up his ID number with kind=item, Then it comes back with its 档号;
    with kind=case, Then nothing."""
    headers = login(client, "archivist")
    r = client.get("/api/v1/search", params={"id_number": ID_ZHANG_SAN, "kind": "item"}, headers=headers)
    assert [h["serial"] for h in r.json()["hits"]] == ["YW000001"] and r.json()["hits"][0]["archival_code"]
    r = client.get("/api/v1/search", params={"id_number": ID_ZHANG_SAN, "kind": "case"}, headers=headers)
    assert r.json()["hits"] == [] and r.json()["total"] == 0


def test_date_bounds_are_beijing_calendar_days(client: TestClient) -> None:
    """Given cases at 23:30 on 31 March and 00:10 on 1 April Beijing time, When filtering accepted_to=03-31,
    Then only the first; accepted_from=04-01 gives only the second."""
    headers = login(client, "archivist")
    r = client.get("/api/v1/search", params={"accepted_from": "2025-03-31", "accepted_to": "2025-03-31"},
                   headers=headers)
    assert [h["serial"] for h in r.json()["hits"]] == ["YW000002"]
    r = client.get("/api/v1/search", params={"accepted_from": "2025-04-01"}, headers=headers)
    assert [h["serial"] for h in r.json()["hits"]] == ["YW000003"]


def test_paging_with_the_cursor_returns_each_hit_once(client: TestClient) -> None:
    """Given three visible cases, When paging one at a time, Then three pages, newest first, then no cursor."""
    headers, seen, cursor = login(client, "archivist"), [], None
    for _ in range(4):
        params = {"page_size": 1} | ({"cursor": cursor} if cursor else {})
        body = client.get("/api/v1/search", params=params, headers=headers).json()
        seen += [h["serial"] for h in body["hits"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == ["YW000003", "YW000002", "YW000001"]


@pytest.mark.parametrize(("params", "code"), [
    ({"q": '"张三'}, "invalid_query"),
    ({"page_size": 101}, "page_size_too_large"),
    ({"colour": "red"}, "unknown_filter_field"),
    ({"facet": "applicant_name"}, "unknown_facet_field"),
    ({"cursor": "garbage"}, "invalid_cursor"),
    ({"sort": "name"}, "invalid_sort"),
    ({"accepted_from": "2025-04-02", "accepted_to": "2025-04-01"}, "invalid_range"),
    ({"accepted_from": "yesterday"}, "invalid_request"),
])
def test_bad_input_is_a_422_with_a_clear_message(client: TestClient, params: dict[str, object], code: str) -> None:
    """Given a bad search parameter, When searching, Then 422 with the stable code and a Chinese message."""
    r = client.get("/api/v1/search", params=params, headers=login(client, "archivist"))
    assert r.status_code == 422, r.text
    assert r.json()["code"] == code and r.json()["message"]


def test_roles_without_business_read_are_refused(client: TestClient) -> None:
    """Given the auditor (三员: no business data), When searching, Then 403 naming the missing permission."""
    r = client.get("/api/v1/search", params={"q": "张三"}, headers=login(client, "auditor"))
    assert r.status_code == 403 and r.json()["code"] == "permission_denied"


def test_index_down_is_a_503_while_keys_and_filing_still_work(ctx: Context, client: TestClient) -> None:
    """Given Elasticsearch down, When searching text, Then 503 index_unavailable; an exact key still answers from
    the catalogue, a new case is still accepted, and /readyz stays ready while reporting the index and backlog."""
    headers = login(client, "archivist")
    ctx._index = ElasticsearchIndex("http://127.0.0.1:9", retries=0, timeout=1)
    r = client.get("/api/v1/search", params={"q": "张三"}, headers=headers)
    assert r.status_code == 503 and r.json()["code"] == "index_unavailable"
    assert "Elasticsearch" in r.json()["message"]
    add_case(ctx, "YW000009", name="赵六", id_number="110105197001010018")
    r = client.get("/api/v1/search", params={"serial": "YW000009"}, headers=headers)
    assert r.status_code == 200 and [h["serial"] for h in r.json()["hits"]] == ["YW000009"]
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    index = ready.json()["index"]
    assert index["ok"] is False and index["code"] == "index_unavailable" and index["backlog"] == 1
    assert index["backend"] == "embedded"  # the configured backend; the test swapped in an unreachable one


def test_readyz_reports_the_embedded_index_and_its_backlog(ctx: Context, client: TestClient) -> None:
    """Given an indexed catalogue and one change not yet indexed, When asking /readyz, Then the index part says
    embedded, ok, its document count and a backlog of one."""
    add_case(ctx, "YW000005")
    body = client.get("/readyz").json()
    assert body["index"]["ok"] is True and body["index"]["backend"] == "embedded"
    assert body["index"]["backlog"] == 1 and body["index"]["documents"] == 3 and body["index"]["failed"] == 0


def test_looking_a_person_up_by_id_number_is_audited_masked(ctx: Context, client: TestClient) -> None:
    """Given searches by 证件号码, by a phone number typed as text and by category, then the first two leave a
    search.person audit event with the numbers masked and the hit count, and the plain search leaves none."""
    headers = login(client, "archivist")
    assert client.get("/api/v1/search", params={"id_number": ID_ZHANG_SAN}, headers=headers).status_code == 200
    assert client.get("/api/v1/search", params={"q": "13800138000"}, headers=headers).status_code == 200
    assert client.get("/api/v1/search", params={"category": "TQ"}, headers=headers).status_code == 200
    with ctx.catalogue.sessions() as s:
        events = list(s.scalars(select(AuditEvent).where(AuditEvent.action == "search.person")
                                .order_by(AuditEvent.seq)))
    assert [e.actor for e in events] == ["archivist", "archivist"]
    assert events[0].detail["id_number"] == ID_ZHANG_SAN[:6] + "********" + ID_ZHANG_SAN[-4:]
    assert events[0].detail["hits"] == 1 and ID_ZHANG_SAN not in str(events[0].detail)
    assert events[1].detail["q"] == "138****8000"
