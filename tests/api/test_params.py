"""Numbers in paths and queries are bounded: past what the catalogue holds is a 422 with a code, never a 500."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.exc import DataError

from archive.api.app import create_app
from archive.api.params import MAX_ID, MAX_INT
from archive.catalogue.models import AuditEvent
from archive.context import Context
from tests.helpers import add_user, login

TOO_BIG = [  # the samples of issue 12, item 7, and their neighbours
    "/api/v1/cases?offset=9223372036854775808",
    "/api/v1/documents/99105475513454460928/original",
    "/api/v1/documents/99105475513454460928/pages/1",
    "/api/v1/documents/1/pages/99105475513454460928",
    "/api/v1/lending/requests/2095270914238222381875200",
    "/api/v1/lending/loans/9223372036854775808",
    "/api/v1/scans/99999999999999999999999",
    "/api/v1/scans/2147483648",  # past PostgreSQL's integer: ids stop there on both databases
    "/api/v1/holds/9223372036854775808",
    "/api/v1/destruction-lists/1?offset=9223372036854775808",
    "/api/v1/transfers/9223372036854775808",
    "/api/v1/checks/reports/9223372036854775808",
    "/api/v1/sweeps/9223372036854775808",
    "/api/v1/audit/events?after=9223372036854775808",
    "/api/v1/access-events?offset=18446744073709551616",
    "/api/v1/appraisal/queue?year=99999999999999999999",
    "/api/v1/search?year=99999999999999999999&q=x",
    "/api/v1/search?year_from=99999999999999999999&q=x",
]


@pytest.fixture
def staff(ctx: Context, client: TestClient) -> dict[str, str]:
    """A person who may use each endpoint above, so that only the number can be wrong."""
    add_user(ctx, "staff", ["clerk", "archivist", "auditor"])
    return login(client, "staff")


def _audit_count(ctx: Context) -> int:
    with ctx.catalogue.sessions() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent)) or 0


@pytest.mark.parametrize("url", TOO_BIG)
def test_a_number_past_64_bits_is_422_naming_the_field(ctx: Context, client: TestClient, staff: dict[str, str],
                                                       url: str) -> None:
    """Given a valid caller, When a path or query number is ≥ 2⁶³, Then 422 invalid_request names the field,
    in Chinese, the server stays up and nothing is recorded as changed."""
    before = _audit_count(ctx)
    r = client.get(url, headers=staff)  # the client fixture re-raises server errors: a 500 fails here
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "invalid_request" and body["message"].startswith("请求内容有误")
    assert re.search(r"不能大于 \d+", body["message"]), body["message"]  # in Chinese, with the bound
    assert "Input should" not in body["message"] and body["detail"][0]["type"] == "less_than_equal"
    assert "OverflowError" not in r.text and "SQLite" not in r.text
    assert client.get("/healthz").json() == {"status": "ok"}
    assert _audit_count(ctx) == before


@pytest.mark.parametrize("url", [f"/api/v1/scans/{MAX_ID}", f"/api/v1/lending/requests/{MAX_ID}",
                                 f"/api/v1/documents/{MAX_ID}/original", f"/api/v1/documents/{MAX_ID}/pages/{MAX_INT}",
                                 f"/api/v1/cases?offset={MAX_INT}", f"/api/v1/audit/events?after={MAX_INT}"])
def test_the_largest_number_is_simply_not_found(client: TestClient, staff: dict[str, str], url: str) -> None:
    """Given the largest id the catalogue can hold (PostgreSQL integer) and the largest offset (bigint),
    When they are asked for, Then 404 or an empty page, on SQLite and PostgreSQL alike."""
    r = client.get(url, headers=staff)
    if "?" in url:
        assert r.status_code == 200 and r.json() == [], r.text
    else:
        assert r.status_code == 404 and r.json()["code"].endswith("not_found"), r.text


@pytest.mark.parametrize("exc", [OverflowError("Python int too large to convert to SQLite INTEGER"),
                                 DataError("SELECT ...", {}, Exception("integer out of range"))])
def test_a_value_the_database_cannot_hold_is_422_not_500(ctx: Context, exc: Exception) -> None:
    """Given a handler whose query the database cannot bind (a number no schema bound caught), When it is called,
    Then 422 value_out_of_range with a Chinese message, and the library text stays in the log."""
    app = create_app(context=ctx)

    @app.get("/overflow")
    def overflow() -> None:
        raise exc

    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/overflow")
    assert r.status_code == 422
    assert r.json() == {"code": "value_out_of_range", "message": r.json()["message"], "detail": None,
                        "request_id": r.headers["X-Request-ID"]}
    assert "超出" in r.json()["message"] and "SQLite" not in r.text and "integer" not in r.text


def _integers_without_maximum(schema: dict[str, Any]) -> bool:
    if schema.get("type") == "integer" and "maximum" not in schema and "exclusiveMaximum" not in schema:
        return True
    nested = [*schema.get("anyOf", []), *schema.get("oneOf", []), *schema.get("allOf", [])]
    if "items" in schema:
        nested.append(schema["items"])
    return any(_integers_without_maximum(s) for s in nested)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_every_integer_path_and_query_parameter_has_a_maximum(client: TestClient) -> None:
    """Given the OpenAPI schema, Then every integer parameter in a path or query (or in a list of them) has a
    maximum, so the bound is enforced (422) before the database sees the number."""
    spec = client.get("/openapi.json").json()
    unbounded = [f"{method.upper()} {path} {p['name']}"
                 for path, item in spec["paths"].items() for method, op in item.items()
                 for p in op.get("parameters", []) if p["in"] in ("path", "query")
                 and _integers_without_maximum(p["schema"])]
    assert not unbounded
    ids = [p["schema"] for item in spec["paths"].values() for op in item.values()
           for p in op.get("parameters", []) if p["in"] == "path" and p["name"].endswith("_id")]
    assert len(ids) > 20 and all(s["maximum"] == MAX_ID and s["minimum"] == 1 for s in ids)


@pytest.mark.parametrize(("url", "total"), [("/api/v1/search?accepted_from=2263-01-01", 0),
                                            ("/api/v1/search?accepted_from=0477-03-15", None),
                                            ("/api/v1/search?expiry_to=9999-12-31&expiry_from=0653-08-09", None),
                                            ("/api/v1/search?closed_to=0001-01-02", 0)])
def test_search_dates_beyond_the_index_are_no_bound(ctx: Context, client: TestClient, staff: dict[str, str],
                                                     url: str, total: int | None) -> None:
    """Given the embedded index holds dates from 1678 to 2262 only (found by schema fuzzing: 500), When a range
    starts or ends outside them, Then the search answers as if that side were open (200)."""
    r = client.get(url, headers=staff)
    assert r.status_code == 200, r.text
    assert total is None or r.json()["total"] == total


@pytest.mark.parametrize("url", ["/api/v1/search?amount_max=100000000000000000000",
                                 "/api/v1/search?amount_min=-100000000000000000000"])
def test_search_amounts_are_bounded(client: TestClient, staff: dict[str, str], url: str) -> None:
    """Given an amount no business has (past 64-bit cents), When searched for, Then 422 naming the field."""
    r = client.get(url, headers=staff)
    assert r.status_code == 422 and r.json()["code"] == "invalid_request" and "amount_" in r.json()["message"]


@pytest.mark.parametrize(("content_type", "data"), [
    ("application/json", b"\xc4\x9c\xff\xfe\x0c)"),
    ("multipart/form-data; boundary=ef92", b"--ef92\r\n-3--ef92--\r\n"),
])
def test_an_unreadable_body_is_400_in_chinese(ctx: Context, client: TestClient, staff: dict[str, str],
                                              content_type: str, data: bytes) -> None:
    """Given a body that is not JSON, or multipart with a broken part (found by schema fuzzing: the library's
    English reason reached the caller), When posted, Then 400 malformed_request with a Chinese message."""
    before = _audit_count(ctx)
    url = "/api/v1/holds" if content_type == "application/json" else "/api/v1/scans"
    r = client.post(url, content=data, headers={**staff, "Content-Type": content_type})
    assert r.status_code in (400, 422), r.text
    body = r.json()
    if r.status_code == 400:
        assert body["code"] == "malformed_request" and body["message"].startswith("请求格式有误")
    assert "There was an error" not in r.text and "Invalid multipart" not in r.text
    assert _audit_count(ctx) == before


@pytest.mark.parametrize("request_id", [2**31, 10**30, 0])
def test_a_loan_naming_an_impossible_request_is_422(ctx: Context, client: TestClient, staff: dict[str, str],
                                                    request_id: int) -> None:
    """Given a paper loan whose request_id no catalogue row can have, When it is recorded, Then 422 names the
    field (not a database error), and nothing is lent or audited."""
    before = _audit_count(ctx)
    r = client.post("/api/v1/lending/loans", headers=staff, json={
        "borrower": "张三", "archival_codes": ["J001-YW·2026-D30-TQ-000001"], "due_date": "2026-12-20",
        "request_id": request_id})
    assert r.status_code == 422 and r.json()["code"] == "invalid_request" and "request_id" in r.json()["message"]
    assert _audit_count(ctx) == before
