"""The API shell: health, readiness, OpenAPI, the error format, login, masking in lists."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from archive.api.app import create_app
from archive.catalogue.models import AuditEvent, LendingRequest, PaperLoan, UserSession
from archive.catalogue.types import utcnow
from archive.context import Context
from archive.demo import CASES, EXPIRED, load_demo
from tests.helpers import PASSWORD, add_client, add_user, login


@pytest.fixture
def client(ctx: Context) -> Iterator[TestClient]:
    with TestClient(create_app(context=ctx), raise_server_exceptions=False) as c:
        yield c


def test_health_and_readiness(client: TestClient) -> None:
    """Given a running API on a migrated catalogue, when /healthz and /readyz are asked, then ok, and ready with the
    catalogue, object store and index each reported."""
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ready"] and body["catalogue"]["ok"] and body["object_store"]["ok"]
    assert {"catalogue", "object_store", "index"} <= set(body)


def test_readiness_fails_when_catalogue_is_not_migrated(ctx: Context, client: TestClient) -> None:
    """Given a catalogue stamped with a revision this code does not know, when /readyz is asked, then 503 with
    catalogue_newer_than_code."""
    with ctx.catalogue.session() as s:
        s.execute(text("UPDATE alembic_version SET version_num = 'zzzz'"))
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["catalogue"] == {"ok": False, "code": "catalogue_newer_than_code",
                                     "detail": r.json()["catalogue"]["detail"]}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_readiness_fails_without_a_signing_certificate_and_names_what_to_configure(ctx: Context,
                                                                                  client: TestClient) -> None:
    """Given a PKI directory without the signing certificate, When /readyz is asked, Then 503 signer_missing with
    a Chinese message naming ARCHIVE_PKI_DIR; And once the certificate is back, ready again without a restart."""
    import shutil

    moved = ctx.settings.pki_path.with_name("pki-away")
    shutil.move(ctx.settings.pki_path, moved)
    r = client.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["ready"] is False and body["code"] == "signer_missing" and body["signer"]["ok"] is False
    assert "ARCHIVE_PKI_DIR" in body["message"] and "archive init" in body["message"]
    assert body["catalogue"]["ok"] and body["object_store"]["ok"]
    shutil.move(moved, ctx.settings.pki_path)
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["signer"]["ok"] is True


def test_readiness_fails_once_the_loaded_certificate_has_expired(ctx: Context, client: TestClient) -> None:
    """Given a signer loaded while its certificate was valid, When the certificate has since expired and /readyz is
    asked, Then 503 certificate_expired naming ARCHIVE_PKI_DIR (the process does not reload it by itself)."""
    from datetime import UTC, datetime

    from signing.certificates import DevPki, make_signer
    from tests.signing.support import leaf_from_dev_ca

    cert, key = leaf_from_dev_ca(DevPki(ctx.settings.pki_path), days=(-30, -1))
    ctx._signer = make_signer(cert, key, at=datetime.now(UTC) - timedelta(days=10))  # type: ignore[arg-type]
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["code"] == "certificate_expired"
    assert "过期" in r.json()["message"] and "ARCHIVE_PKI_DIR" in r.json()["message"]


def test_readiness_needs_a_reachable_tsa_only_when_it_is_required(ctx: Context) -> None:
    """Given ARCHIVE_TSA_URL where nothing listens, When /readyz is asked with ARCHIVE_TSA_REQUIRED=true, Then 503
    tsa_unreachable naming ARCHIVE_TSA_URL; with ARCHIVE_TSA_REQUIRED=false ready, the TSA reported as not ok."""
    url = f"http://127.0.0.1:{_free_port()}/"
    for required, status in ((True, 503), (False, 200)):
        ctx.settings = ctx.settings.model_copy(update={"tsa_url": url, "tsa_required": required})
        with TestClient(create_app(context=ctx), raise_server_exceptions=False) as c:
            r = c.get("/readyz")
        assert r.status_code == status, r.text
        assert r.json()["tsa"]["ok"] is False and r.json()["tsa"]["code"] == "tsa_unreachable"
        if required:
            assert r.json()["code"] == "tsa_unreachable" and "ARCHIVE_TSA_URL" in r.json()["message"]


def test_readiness_with_a_reachable_tsa_probes_it_once_per_interval(ctx: Context,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a running TSA, When /readyz is asked twice in a row, Then ready both times and the TSA probed once."""
    import signing.tsa
    from signing.certificates import DevPki

    probes: list[str] = []
    real = signing.tsa.probe_tsa
    monkeypatch.setattr(signing.tsa, "probe_tsa", lambda url: (probes.append(url), real(url))[1])
    with signing.tsa.LocalTsa(DevPki(ctx.settings.pki_path)) as tsa:
        ctx.settings = ctx.settings.model_copy(update={"tsa_url": tsa.url, "tsa_required": True})
        with TestClient(create_app(context=ctx), raise_server_exceptions=False) as c:
            answers = [c.get("/readyz") for _ in range(2)]
    assert [r.status_code for r in answers] == [200, 200], answers[0].text
    assert answers[0].json()["tsa"] == {"ok": True, "configured": True, "required": True}
    assert probes == [tsa.url]


def test_openapi_documents_the_endpoints(client: TestClient) -> None:
    """Given the API, when its OpenAPI schema and /docs are fetched, then the main endpoints are documented and the
    docs page is served."""
    spec = client.get("/openapi.json").json()
    assert {"/healthz", "/readyz", "/api/v1/auth/login", "/api/v1/audit/verify", "/api/v1/cases"} <= set(spec["paths"])
    assert client.get("/docs").status_code == 200


def test_errors_are_json_with_code_message_detail(client: TestClient) -> None:
    """Given an unknown path, a malformed body and no credentials, then each answer is {code, message, detail}, with
    the request's id."""
    r = client.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    r = client.post("/api/v1/auth/login", json={"username": ""})
    assert r.status_code == 422 and r.json()["code"] == "invalid_request"
    assert "password" in r.json()["message"] and "username" in r.json()["message"]
    r = client.post("/api/v1/auth/login", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_request"
    r = client.get("/api/v1/cases")
    assert r.status_code == 401 and set(r.json()) == {"code", "message", "detail", "request_id"}


def test_unexpected_error_is_500_without_traceback(ctx: Context) -> None:
    """Given a route that raises an unexpected exception, when it is called, then 500 internal_error with neither the
    exception's text nor a traceback in the answer."""
    app = create_app(context=ctx)

    @app.get("/boom")
    def boom() -> None:
        raise ZeroDivisionError("secret internals")

    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/boom")
    assert r.status_code == 500 and r.json()["code"] == "internal_error"
    assert "secret internals" not in r.text and "Traceback" not in r.text


def test_login_is_audited_both_ways_and_wrong_password_is_401(ctx: Context, client: TestClient) -> None:
    """Given a clerk, when someone logs in with a wrong password or as an unknown user, then 401 bad_credentials;
    with the right one, then /me shows the clerk's roles (柜员) and branch; all three attempts are audited in
    order."""
    add_user(ctx, "clerk01", ["clerk"], "BR01")
    r = client.post("/api/v1/auth/login", json={"username": "clerk01", "password": "wrong-password"})
    assert r.status_code == 401 and r.json()["code"] == "bad_credentials"
    r = client.post("/api/v1/auth/login", json={"username": "nobody", "password": PASSWORD})
    assert r.status_code == 401 and r.json()["code"] == "bad_credentials"
    headers = login(client, "clerk01")
    me = client.get("/api/v1/auth/me", headers=headers).json()
    assert me["roles"] == ["clerk"] and me["role_names"] == ["柜员"] and me["branches"] == ["BR01"]
    with ctx.catalogue.sessions() as s:
        logins = s.scalars(select(AuditEvent).where(AuditEvent.action.startswith("auth.login"))
                           .order_by(AuditEvent.seq))
        outcomes = [(e.action, e.actor, e.outcome) for e in logins]
    assert outcomes == [("auth.login.failed", "clerk01", "failure"), ("auth.login.failed", "nobody", "failure"),
                        ("auth.login", "clerk01", "success")]


def test_expired_or_logged_out_token_is_refused(ctx: Context, client: TestClient) -> None:
    """Given a logged-in clerk, when they log out, then the token is session_expired; given a session past its
    expiry, when it is used, then 401 asking to log in again (重新登录)."""
    add_user(ctx, "clerk01", ["clerk"])
    headers = login(client, "clerk01")
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    assert client.get("/api/v1/auth/me", headers=headers).json()["code"] == "session_expired"
    headers = login(client, "clerk01")
    with ctx.catalogue.session() as s:
        for row in s.scalars(select(UserSession)):
            row.expires_at = utcnow() - timedelta(seconds=1)
    r = client.get("/api/v1/auth/me", headers=headers)
    assert r.status_code == 401 and "重新登录" in r.json()["message"]


def test_api_key_authenticates_a_business_system(ctx: Context, client: TestClient) -> None:
    """Given a business system's API key, when it is sent as X-API-Key or as a bearer token, then it authenticates as
    a client with its permissions; an altered key is invalid_api_key and a made-up one 401."""
    headers = add_client(ctx, "core", ["data.read"])
    me = client.get("/api/v1/auth/me", headers=headers).json()
    assert me["kind"] == "client" and "case.read" in me["permissions"]
    bearer = {"Authorization": f"Bearer {headers['X-API-Key']}"}
    assert client.get("/api/v1/auth/me", headers=bearer).status_code == 200
    bad = {"X-API-Key": headers["X-API-Key"][:-2] + "xx"}
    assert client.get("/api/v1/auth/me", headers=bad).json()["code"] == "invalid_api_key"
    assert client.get("/api/v1/auth/me", headers={"X-API-Key": "ak_nonsense"}).status_code == 401


def test_case_list_masks_personal_data_unless_the_role_may_see_it(ctx: Context, client: TestClient) -> None:
    """Given demo cases, when a client without pii.read lists them, then 证件号码 and 手机号 are masked."""
    load_demo(ctx)
    masked = client.get("/api/v1/cases", headers=add_client(ctx, "portal", ["data.read"])).json()
    full = client.get("/api/v1/cases", headers=add_client(ctx, "core", ["data.read", "pii.read"])).json()
    assert len(masked) == len(full) == len(CASES) + len(EXPIRED)
    for m, f in zip(masked, full, strict=True):
        assert m["serial"] == f["serial"]
        assert m["applicant_id_number"] == f["applicant_id_number"][:6] + "********" + f["applicant_id_number"][-4:]
        assert "****" in m["applicant_mobile"] and "*" not in f["applicant_mobile"]


def test_case_list_is_limited_to_the_callers_branches(ctx: Context, client: TestClient) -> None:
    """Given demo cases in several branches, when a clerk of BR01 or a system limited to BR02 lists cases, then each
    sees only its own branch."""
    load_demo(ctx)
    add_user(ctx, "c1", ["clerk"], "BR01")
    rows = client.get("/api/v1/cases", headers=login(client, "c1")).json()
    assert rows and {r["branch"] for r in rows} == {"BR01"}
    limited = client.get("/api/v1/cases", headers=add_client(ctx, "br2", ["data.read"], ["BR02"])).json()
    assert {r["branch"] for r in limited} == {"BR02"}


def test_identifier_check_for_the_counter(ctx: Context, client: TestClient) -> None:
    """Given the counter's identifier check, when a valid 证件号码 with a lower-case x is checked, then valid and
    masked; one with a wrong check digit is 422 invalid_id_number saying 校验位."""
    headers = add_client(ctx, "counter", ["data.read"])
    ok = client.post("/api/v1/identifiers/check", json={"kind": "id_number", "value": "11010519491231002x"},
                     headers=headers)
    assert ok.json() == {"kind": "id_number", "valid": True, "masked": "110105********002X"}
    bad = client.post("/api/v1/identifiers/check", json={"kind": "id_number", "value": "110105194912310021"},
                      headers=headers)
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_id_number" and "校验位" in bad.json()["message"]


def test_archival_code_parse_endpoint(ctx: Context, client: TestClient) -> None:
    """Given a valid 档号, when it is parsed, then its parts (件号 123); a code with an unknown category is 422
    naming the 类别 part, and a truncated one 422 invalid_archival_code."""
    headers = add_client(ctx, "core", ["data.read"])
    r = client.post("/api/v1/archival-codes/parse", json={"archival_code": "J001-YW·2024-D30-TQ-000123"},
                    headers=headers)
    assert r.status_code == 200 and r.json()["number"] == 123
    r = client.post("/api/v1/archival-codes/parse", json={"archival_code": "J001-YW·2024-D30-XX-000123"},
                    headers=headers)
    assert r.status_code == 422 and r.json()["detail"]["part"] == "类别"
    r = client.post("/api/v1/archival-codes/parse", json={"archival_code": "J001-YW·2024"}, headers=headers)
    assert r.status_code == 422 and r.json()["code"] == "invalid_archival_code"


def test_schedule_endpoint_lists_business_types_with_materials(ctx: Context, client: TestClient) -> None:
    """Given the packaged schedule, when it is read through the API, then DK01 shows its trigger 贷款结清, its period
    定期30年 and the 借款合同 it requires, and the schedule says it is the default."""
    body = client.get("/api/v1/schedule", headers=add_client(ctx, "core", ["data.read"])).json()
    dk01 = next(t for t in body["business_types"] if t["code"] == "DK01")
    assert dk01["trigger_name"] == "贷款结清" and dk01["retention_label"] == "定期30年"
    assert {"code": "loan_contract", "name": "借款合同"} in dk01["required"]
    assert body["is_default"] is True


def test_commit_happens_before_the_response(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given the catalogue refuses the commit, then the client gets an error, never a success."""
    from sqlalchemy.orm import SessionTransaction

    headers_app = create_app(context=ctx)
    with TestClient(headers_app, raise_server_exceptions=False) as c:
        add_user(ctx, "sec", ["security_officer"])
        add_user(ctx, "target", [])
        headers = login(c, "sec")

        def refuse(self: SessionTransaction, *args: object) -> None:
            raise RuntimeError("disk full")

        monkeypatch.setattr(SessionTransaction, "commit", refuse)
        r = c.put("/api/v1/users/target/roles", json={"roles": ["clerk"]}, headers=headers)
        monkeypatch.undo()
        assert r.status_code == 500
        with ctx.catalogue.sessions() as s:
            assert s.scalar(select(AuditEvent).where(AuditEvent.action == "user.roles")) is None


def test_demo_data_gives_the_lending_pages_something_to_show(ctx: Context) -> None:
    """Given the demo data, then a 利用 request of clerk01 waits for someone else's approval and one paper loan is
    overdue, so the console's 利用 pages show their inbox and 催还 on a first visit."""
    load_demo(ctx)
    with ctx.catalogue.reading() as s:
        requests = s.execute(select(LendingRequest.requester, LendingRequest.status)).all()
        loans = s.execute(select(PaperLoan.status, PaperLoan.due_date)).all()
    assert [tuple(r) for r in requests] == [("clerk01", "pending")]
    assert len(loans) == 1 and loans[0].status == "out" and loans[0].due_date < date.today()
