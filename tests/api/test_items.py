"""Image and data APIs for business systems: items, batch lookup, page images, files, 利用登记."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from archive import identity, images
from archive.access import ACTION, RateLimited, RateLimiter, purpose_of
from archive.api.app import create_app
from archive.api.files import parse_range
from archive.audit import Actor
from archive.catalogue.models import ApiClient, AuditEvent, Document
from archive.catalogue.types import utcnow
from archive.context import Context
from archive.errors import InvalidRange
from signing.certificates import load_trust_roots
from signing.eep import eep_files, parse_eep, verify_eep
from tests.factories import close_case, complete_case
from tests.helpers import add_client, add_user, login

SERIAL = "YW2026010500001"
CODE = "J001-YW·2026-D30-TQ-000001"
URL_CODE = quote(CODE)
PURPOSE = "提取审核"


@pytest.fixture
def client(ctx: Context) -> Iterator[TestClient]:
    images.memory_cache.clear()
    with TestClient(create_app(context=ctx)) as c:
        yield c


@pytest.fixture
def core(ctx: Context) -> dict[str, str]:
    return add_client(ctx, "core", ["cases.write", "data.read", "pii.read"])


@pytest.fixture
def filed(client: TestClient, core: dict[str, str]) -> dict[str, int]:
    """A filed 提取 case: JPEG form, PNG id, 2-page TIFF, 2-page PDF; returns document ids by material."""
    complete_case(client, core)
    body = close_case(client, core, SERIAL)
    assert body["item"]["archival_code"] == CODE
    return {d["material_type"]: d["id"] for d in body["documents"]}


def access_events(ctx: Context) -> list[AuditEvent]:
    with ctx.catalogue.sessions() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == ACTION).order_by(AuditEvent.seq)))


def purpose(text: str = PURPOSE) -> dict[str, str]:
    return {"X-Purpose": quote(text)}


# --- data ----------------------------------------------------------------------------------------

def test_item_by_code_and_case_by_serial_carry_item_documents_and_events(
        ctx: Context, client: TestClient, filed: dict[str, int]) -> None:
    """Given a filed case, when a business system reads it by 档号 and by serial with a purpose,
    then both carry the item (档号, retention, status, signature) and events, and each read is registered once."""
    reader = add_client(ctx, "portal", ["data.read"])
    r = client.get(f"/api/v1/items/{URL_CODE}", headers={**reader, **purpose()})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["serial"] == SERIAL and len(body["documents"]) == 4
    assert body["item"]["archival_code"] == CODE and body["item"]["retention_code"] == "D30"
    assert body["item"]["status"] == "filed" and body["item"]["signature"]["level"] == "B-B"
    assert body["applicant_id_number"] != "11010519491231002X"  # masked without pii.read
    actions = [e["action"] for e in body["events"]]
    assert "case.open" in actions or any(a.startswith("case.") for a in actions)
    assert "item.file" in actions and actions[-1] == ACTION
    assert all("detail" not in e for e in body["events"])  # no personal data in the history
    events = access_events(ctx)
    assert len(events) == 1
    assert events[0].actor == "portal" and events[0].actor_type == "client"
    assert events[0].target_type == "item" and events[0].target_id == CODE
    assert events[0].detail["purpose"] == PURPOSE and events[0].detail["what"] == "data"

    r = client.get(f"/api/v1/cases/{SERIAL}", headers=reader)
    assert r.status_code == 200 and r.json()["item"]["archival_code"] == CODE and r.json()["events"]
    assert len(access_events(ctx)) == 2 and access_events(ctx)[1].detail["purpose"] is None


def test_batch_lookup_returns_found_cases_and_names_the_rest(ctx: Context, client: TestClient,
                                                            core: dict[str, str], filed: dict[str, int]) -> None:
    """Given one filed and one open case, when looked up with an unknown and a repeated serial,
    then both come back in order, the unknown is named, and only the filed item is registered."""
    assert client.post("/api/v1/cases", json={**_case_body("YW2026010500002")}, headers=core).status_code == 201
    r = client.post("/api/v1/cases/lookup", headers={**core, **purpose()},
                    json={"serials": [SERIAL, "NOPE", "YW2026010500002", SERIAL]})
    assert r.status_code == 200, r.text
    assert [c["serial"] for c in r.json()["found"]] == [SERIAL, "YW2026010500002"]
    assert r.json()["not_found"] == ["NOPE"]
    assert r.json()["found"][1]["item"] is None
    assert [e.target_id for e in access_events(ctx)] == [CODE]

    r = client.post("/api/v1/cases/lookup", headers=core, json={"serials": [f"S{i}" for i in range(101)]})
    assert r.status_code == 422 and r.json()["code"] == "invalid_request"
    r = client.post("/api/v1/cases/lookup", headers=core, json={"serials": []})
    assert r.status_code == 422
    assert client.get("/api/v1/items/J001-NOPE", headers=core).json()["code"] == "item_not_found"


# --- images --------------------------------------------------------------------------------------

def test_page_image_is_rendered_once_then_read_from_the_cache(ctx: Context, client: TestClient,
                                                              filed: dict[str, int]) -> None:
    """Given a filed case, when a page image is asked for twice, then the first is rendered (miss) and stored
    under thumbnails/, the second is a cache hit with the same ETag, and If-None-Match gives 304."""
    viewer = add_client(ctx, "viewer", ["images.read"])
    doc = filed["application_form"]
    url = f"/api/v1/documents/{doc}/pages/1?w=1000"
    first = client.get(url, headers=viewer)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "image/jpeg" and first.headers["x-cache"] == "miss"
    assert "max-age" in first.headers["cache-control"]
    assert Image.open(io.BytesIO(first.content)).width == 1000
    images.memory_cache.clear()  # the object store is the cache of record
    second = client.get(url, headers=viewer)
    assert second.headers["x-cache"] == "hit" and second.content == first.content
    assert second.headers["etag"] == first.headers["etag"]
    with ctx.catalogue.sessions() as s:
        sha = s.get(Document, doc).sha256  # type: ignore[union-attr]
    assert ctx.store.exists(f"thumbnails/{sha}/1-1000.jpeg")
    third = client.get(url, headers={**viewer, "If-None-Match": first.headers["etag"]})
    assert third.status_code == 304 and not third.content

    strip = client.get(f"/api/v1/documents/{filed['house_contract']}/pages/2?w=200&format=webp", headers=viewer)
    assert strip.status_code == 200 and strip.headers["content-type"] == "image/webp"
    assert Image.open(io.BytesIO(strip.content)).width == 200
    tiff = client.get(f"/api/v1/documents/{filed['marriage_proof']}/pages/2?w=300&format=png", headers=viewer)
    assert tiff.status_code == 200 and Image.open(io.BytesIO(tiff.content)).format == "PNG"
    events = access_events(ctx)
    assert len(events) == 5 and {e.detail["what"] for e in events} == {"page"}  # 304 is a read too
    assert events[-1].detail["page"] == 2 and events[-1].detail["width"] == 300


def test_bad_image_requests_are_clear_4xx_and_register_nothing(ctx: Context, client: TestClient,
                                                               filed: dict[str, int]) -> None:
    """Given a 1-page JPEG, when asked for page 0 or 2, width 5000, format gif or an unknown document,
    then each is a clear 4xx with a stable code and no access event."""
    viewer = add_client(ctx, "viewer", ["images.read"])
    doc = filed["application_form"]
    cases = [(f"/api/v1/documents/{doc}/pages/2", 404, "page_not_found"),
             (f"/api/v1/documents/{doc}/pages/0", 404, "page_not_found"),
             (f"/api/v1/documents/{doc}/pages/1?w=5000", 422, "width_too_large"),
             (f"/api/v1/documents/{doc}/pages/1?w=2", 422, "width_too_small"),
             (f"/api/v1/documents/{doc}/pages/1?format=gif", 422, "unsupported_image_format"),
             ("/api/v1/documents/999999/pages/1", 404, "document_not_found")]
    for url, status, code in cases:
        r = client.get(url, headers=viewer)
        assert (r.status_code, r.json()["code"]) == (status, code), url
        assert r.json()["message"]  # a Chinese sentence for the person
    assert access_events(ctx) == []


def test_watermark_is_drawn_per_client_and_never_cached(ctx: Context, client: TestClient, filed: dict[str, int],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a client configured for watermarks, when it reads a page, then it gets a different, uncacheable
    image than a client without, and the access event says so."""
    monkeypatch.setattr(ctx.settings, "watermark_clients", ["branch-portal"])
    plain, marked = add_client(ctx, "viewer", ["images.read"]), add_client(ctx, "branch-portal", ["images.read"])
    url = f"/api/v1/documents/{filed['id_proof']}/pages/1?w=400"
    a, b = client.get(url, headers=plain), client.get(url, headers=marked)
    assert a.status_code == b.status_code == 200
    assert a.content != b.content and b.headers["cache-control"] == "private, no-store"
    assert access_events(ctx)[-1].detail["watermark"] is True


# --- files ---------------------------------------------------------------------------------------

def test_original_and_rendition_downloads_support_single_ranges(ctx: Context, client: TestClient,
                                                                filed: dict[str, int]) -> None:
    """Given a filed case, when the original and the rendition are fetched whole and by ranges,
    then the bytes match the store, and malformed or unsatisfiable ranges are 416 with their codes."""
    files = add_client(ctx, "dms", ["files.read"])
    with ctx.catalogue.sessions() as s:
        doc = s.get(Document, filed["application_form"])
        assert doc is not None
        original = ctx.store.get(doc.original_key).read()
    url = f"/api/v1/documents/{filed['application_form']}/original"
    whole = client.get(url, headers=files)
    assert whole.status_code == 200 and whole.content == original
    assert whole.headers["accept-ranges"] == "bytes" and whole.headers["etag"] == f'"{doc.sha256}"'
    for header, expected in [("bytes=0-9", original[:10]), ("bytes=10-", original[10:]),
                             ("bytes=-5", original[-5:]), (f"bytes=5-{len(original) + 100}", original[5:])]:
        r = client.get(url, headers={**files, "Range": header})
        assert r.status_code == 206 and r.content == expected, header
        assert r.headers["content-range"].endswith(f"/{len(original)}")
    for header, code in [("bytes=abc", "invalid_range"), ("bytes=9-3", "invalid_range"),
                         ("bytes=0-1,5-9", "invalid_range"), ("items=0-1", "invalid_range"),
                         (f"bytes={len(original)}-", "range_not_satisfiable")]:
        r = client.get(url, headers={**files, "Range": header})
        assert r.status_code == 416 and r.json()["code"] == code, header
        assert r.headers["content-range"] == f"bytes */{len(original)}"

    pdf = client.get(f"/api/v1/items/{URL_CODE}/rendition.pdf", headers=files)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    tail = client.get(f"/api/v1/items/{URL_CODE}/rendition.pdf", headers={**files, "Range": "bytes=-100"})
    assert tail.status_code == 206 and tail.content == pdf.content[-100:]
    assert [e.detail["what"] for e in access_events(ctx)] == ["original"] * 5 + ["rendition"] * 2


def test_verification_report_and_signed_package_of_an_item(ctx: Context, client: TestClient,
                                                           core: dict[str, str], filed: dict[str, int]) -> None:
    """Given a filed item, when its verification report and EEP package are fetched,
    then the report passes every check (the missing time stamp of a B-B item is "absent", not "passed")
    and the package verifies and holds the rendition."""
    files = add_client(ctx, "dms", ["files.read", "data.read"])
    r = client.get(f"/api/v1/items/{URL_CODE}/verification", headers=files)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["ok"] is True and report["archival_code"] == CODE
    assert {c["name"] for c in report["checks"]} >= {"fixity", "readable", "signature_present", "pdfa"}
    stamp = next(c for c in report["checks"] if c["name"] == "timestamp")
    assert report["level"] == "B-B" and stamp["status"] == "absent" and stamp["passed"] is False
    r = client.get(f"/api/v1/items/{URL_CODE}/package.eep", headers=files)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    assert verify_eep(r.content, load_trust_roots(ctx.settings.pki_path)).ok
    rendition = client.get(f"/api/v1/items/{URL_CODE}/rendition.pdf", headers=files).content
    assert list(eep_files(parse_eep(r.content)).values()) == [rendition]
    assert [e.detail["what"] for e in access_events(ctx)] == ["verification", "package", "rendition"]


# --- access: scopes, branches, keys, rate limits ---------------------------------------------------

def _endpoints(filed: dict[str, int]) -> list[tuple[str, str, str, str, dict[str, Any] | None]]:
    """(scope, method, url, what, json body) for every endpoint that reads an archive item."""
    doc = filed["application_form"]
    return [("data.read", "GET", f"/api/v1/cases/{SERIAL}", "data", None),
            ("data.read", "GET", f"/api/v1/items/{URL_CODE}", "data", None),
            ("data.read", "POST", "/api/v1/cases/lookup", "data", {"serials": [SERIAL]}),
            ("data.read", "GET", f"/api/v1/items/{URL_CODE}/verification", "verification", None),
            ("images.read", "GET", f"/api/v1/documents/{doc}/pages/1?w=200", "page", None),
            ("files.read", "GET", f"/api/v1/documents/{doc}/original", "original", None),
            ("files.read", "GET", f"/api/v1/items/{URL_CODE}/rendition.pdf", "rendition", None),
            ("files.read", "GET", f"/api/v1/items/{URL_CODE}/package.eep", "package", None)]


def test_every_endpoint_needs_its_scope_and_registers_exactly_one_access(ctx: Context, client: TestClient,
                                                                        filed: dict[str, int]) -> None:
    """Given clients with and without each scope and one limited to another branch, when each endpoint is called,
    then without the scope it is 403, outside the branch 404, both without an event; with it 200 and one event."""
    all_scopes = ["data.read", "images.read", "files.read", "cases.write"]
    other = add_client(ctx, "other-branch", all_scopes, branches=["BR99"])
    for scope, method, url, what, body in _endpoints(filed):
        without = add_client(ctx, f"no-{what}-{len(url)}", [s for s in all_scopes if s != scope])
        with_ = add_client(ctx, f"yes-{what}-{len(url)}", [scope], branches=["BR01"])
        before = len(access_events(ctx))
        r = client.request(method, url, json=body, headers=without)
        assert r.status_code == 403 and r.json()["code"] == "permission_denied", (url, r.text)
        r = client.request(method, url, json=body, headers=other)
        if method == "POST":
            assert r.status_code == 200 and r.json()["found"] == [], url
        else:
            assert r.status_code == 404, (url, r.text)
        assert len(access_events(ctx)) == before, url
        r = client.request(method, url, json=body, headers={**with_, **purpose("复核")})
        assert r.status_code == 200, (url, r.text)
        events = access_events(ctx)
        assert len(events) == before + 1, url
        event = events[-1]
        assert (event.actor, event.target_id, event.detail["what"], event.detail["purpose"]) == (
            f"yes-{what}-{len(url)}", CODE, what, "复核"), url


def test_expired_revoked_and_unknown_keys_are_refused(ctx: Context, client: TestClient) -> None:
    """Given an expired, a revoked and a made-up key, when they call, then each is 401 with its own code."""
    expired, revoked = add_client(ctx, "old", ["data.read"]), add_client(ctx, "gone", ["data.read"])
    with ctx.catalogue.session() as s:
        s.scalar(select(ApiClient).where(ApiClient.name == "old")).expires_at = (  # type: ignore[union-attr]
            utcnow() - timedelta(seconds=1))
        identity.revoke_client(s, Actor.system("test"), "gone")
    for headers, code in [(expired, "expired_api_key"), (revoked, "revoked_api_key"),
                          ({"X-API-Key": "ak_nope_nope"}, "invalid_api_key")]:
        r = client.get(f"/api/v1/items/{URL_CODE}", headers=headers)
        assert r.status_code == 401 and r.json()["code"] == code
    assert client.get(f"/api/v1/items/{URL_CODE}").status_code == 401


def test_a_client_over_its_rate_gets_429_with_retry_after(ctx: Context, client: TestClient,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Given ARCHIVE_API_RATE=1 and ARCHIVE_API_BURST=2, when a client calls three times at once,
    then the third is 429 with Retry-After, while another client is not affected."""
    monkeypatch.setattr(ctx.settings, "api_rate", 1.0)
    monkeypatch.setattr(ctx.settings, "api_burst", 2.0)
    a, b = add_client(ctx, "busy", ["data.read"]), add_client(ctx, "calm", ["data.read"])
    codes = [client.get("/api/v1/items/J001-NOPE", headers=a).status_code for _ in range(3)]
    assert codes == [404, 404, 429]
    r = client.get("/api/v1/items/J001-NOPE", headers=a)
    assert r.status_code == 429 and r.json()["code"] == "rate_limited" and int(r.headers["retry-after"]) >= 1
    assert client.get("/api/v1/items/J001-NOPE", headers=b).status_code == 404


def test_access_register_is_for_archivists_and_auditors(ctx: Context, client: TestClient,
                                                        filed: dict[str, int]) -> None:
    """Given reads of an item, when the register is listed, then archivists and auditors see who, what and why;
    a clerk and a business system are refused."""
    reader = add_client(ctx, "portal", ["data.read"])
    client.get(f"/api/v1/items/{URL_CODE}", headers={**reader, **purpose()})
    for name, role in [("arch", "archivist"), ("aud", "auditor"), ("clk", "clerk")]:
        add_user(ctx, name, [role])
    for name, status in [("arch", 200), ("aud", 200), ("clk", 403)]:
        r = client.get("/api/v1/access-events", params={"archival_code": CODE}, headers=login(client, name))
        assert r.status_code == status, r.text
        if status == 200:
            assert r.json()["total"] == 1
            event = r.json()["events"][0]
            assert (event["actor"], event["what"], event["purpose"]) == ("portal", "data", PURPOSE)
    assert client.get("/api/v1/access-events", headers=reader).status_code == 403


# --- units ---------------------------------------------------------------------------------------

def test_range_header_forms() -> None:
    """Given a 100-byte file, when the three single-range forms are parsed, then they give inclusive spans."""
    assert parse_range(None, 100) is None
    assert parse_range("bytes=0-0", 100) == (0, 0)
    assert parse_range("bytes=90-", 100) == (90, 99)
    assert parse_range("bytes=-10", 100) == (90, 99)
    assert parse_range("bytes=-500", 100) == (0, 99)
    for bad in ("bytes=", "bytes=-", "bytes=1-2-3", "bytes=-0", "bytes=100-"):
        with pytest.raises(InvalidRange):
            parse_range(bad, 100)


def test_token_bucket_refills_over_time() -> None:
    """Given 2 tokens a second and a burst of 2, when empty, then half a second later one call passes."""
    limiter = RateLimiter(2, 2)
    limiter.take("k", now=0.0)
    limiter.take("k", now=0.0)
    with pytest.raises(RateLimited) as info:
        limiter.take("k", now=0.0)
    assert info.value.retry_after == 1
    limiter.take("k", now=0.5)


def test_purpose_header_accepts_url_encoded_and_raw_utf8() -> None:
    """Given a purpose URL-encoded or as raw UTF-8 (seen as Latin-1), then both read back as Chinese."""
    assert purpose_of(quote("贷款审批")) == "贷款审批"
    assert purpose_of("贷款审批".encode().decode("latin-1")) == "贷款审批"
    assert purpose_of("  ") is None


def _case_body(serial: str) -> dict[str, Any]:
    from tests.factories import case_body

    return case_body(serial=serial)
