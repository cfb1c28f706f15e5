"""Login, logout, session cookie, idle timeout, CSRF and the security headers of every page."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from archive.catalogue.models import AuditEvent, UserSession
from archive.catalogue.types import utcnow
from archive.context import Context
from archive.web import session
from tests.helpers import PASSWORD, add_user
from tests.web.html import UiClient, login_form_token, soup, text


def _browser(client: TestClient) -> TestClient:
    return TestClient(client.app, base_url="http://testserver")


def test_login_sets_a_strict_httponly_cookie_and_lands_on_next(ctx: Context, client: TestClient) -> None:
    add_user(ctx, "clerk01", ["clerk"], "BR01")
    b = _browser(client)
    token = login_form_token(b)
    r = b.post("/ui/login", data={"username": "clerk01", "password": PASSWORD, "csrf_token": token,
                                  "next": "/ui/scans"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/scans"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(session.COOKIE))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    page = b.get("/ui/")
    assert page.status_code == 200 and "工作台" in text(page) and "clerk01" in text(page)
    meta = soup(page).find("meta", attrs={"name": "csrf-token"})
    assert meta is not None and meta["content"] == session.csrf_token(b.cookies[session.COOKIE])
    with ctx.catalogue.reading() as s:
        assert s.scalar(select(AuditEvent).where(AuditEvent.action == "auth.login")).detail["via"] == "ui"


def test_wrong_password_is_refused_in_chinese_and_locks_after_repeats(ctx: Context, client: TestClient) -> None:
    add_user(ctx, "clerk01", ["clerk"], "BR01")
    b = _browser(client)
    for _ in range(ctx.settings.login_max_failures - 1):
        r = b.post("/ui/login", data={"username": "clerk01", "password": "wrong-one", "csrf_token":
                                      login_form_token(b)})
        assert r.status_code == 401 and "用户名或密码不正确" in text(r) and "bad_credentials" in text(r)
        assert session.COOKIE not in b.cookies
    r = b.post("/ui/login", data={"username": "clerk01", "password": "wrong-one", "csrf_token": login_form_token(b)})
    assert r.status_code == 429 and "account_locked" in text(r)
    r = b.post("/ui/login", data={"username": "clerk01", "password": PASSWORD, "csrf_token": login_form_token(b)})
    assert r.status_code == 429 and "account_locked" in text(r) and int(r.headers["retry-after"]) > 0
    assert session.COOKIE not in b.cookies


def test_login_form_needs_its_token(ctx: Context, client: TestClient) -> None:
    add_user(ctx, "clerk01", ["clerk"], "BR01")
    b = _browser(client)
    b.get("/ui/login")
    r = b.post("/ui/login", data={"username": "clerk01", "password": PASSWORD, "csrf_token": "forged"})
    assert r.status_code == 403 and "csrf_failed" in text(r) and session.COOKIE not in b.cookies


def test_an_empty_login_form_is_refused_in_chinese(ctx: Context, client: TestClient) -> None:
    add_user(ctx, "clerk01", ["clerk"], "BR01")
    b = _browser(client)
    r = b.post("/ui/login", data={"username": "  ", "password": "", "csrf_token": login_form_token(b)})
    assert r.status_code == 422 and "请输入用户名和密码" in text(r) and "missing_credentials" in text(r)
    assert session.COOKIE not in b.cookies


def test_next_never_leaves_the_ui(ctx: Context, client: TestClient) -> None:
    add_user(ctx, "clerk01", ["clerk"], "BR01")
    for target in ("https://evil.example/", "//evil.example/ui/", "/api/v1/cases", "/ui\\..\\x"):
        b = _browser(client)
        r = b.post("/ui/login", data={"username": "clerk01", "password": PASSWORD,
                                      "csrf_token": login_form_token(b), "next": target}, follow_redirects=False)
        assert r.headers["location"] == "/ui/", target


def test_without_a_session_pages_lead_to_login_and_back(client: TestClient) -> None:
    b = _browser(client)
    r = b.get("/ui/?view=filed", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/login?next=%2Fui%2F%3Fview%3Dfiled"
    login = b.get(r.headers["location"])
    assert soup(login).find("input", attrs={"name": "next"})["value"] == "/ui/?view=filed"
    r = b.get("/ui/", headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/ui/cases/X1?a=b"},
              follow_redirects=False)
    assert r.headers["HX-Redirect"] == "/ui/login?next=%2Fui%2Fcases%2FX1%3Fa%3Db"


def test_expired_session_returns_to_login_then_to_the_page(ctx: Context, ui: Callable[..., UiClient]) -> None:
    clerk = ui("clerk01")
    with ctx.catalogue.session() as s:
        for row in s.scalars(select(UserSession)):
            row.expires_at = utcnow() - timedelta(seconds=1)
    r = clerk.get("/ui/?view=filed", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/login?next=%2Fui%2F%3Fview%3Dfiled"
    assert session.COOKIE not in clerk.client.cookies  # the dead cookie is dropped
    token = login_form_token(clerk.client, r.headers["location"])
    back = clerk.client.post("/ui/login", data={"username": "clerk01", "password": PASSWORD, "csrf_token": token,
                                                "next": "/ui/?view=filed"}, follow_redirects=False)
    assert back.headers["location"] == "/ui/?view=filed"


def test_each_use_moves_the_idle_timeout(ctx: Context, ui: Callable[..., UiClient]) -> None:
    clerk = ui("clerk01")
    with ctx.catalogue.session() as s:
        for row in s.scalars(select(UserSession)):
            row.expires_at = utcnow() + timedelta(minutes=10)  # nearly idle out
    assert clerk.get("/ui/").status_code == 200
    with ctx.catalogue.reading() as s:
        ends = s.scalar(select(UserSession.expires_at))
    assert ends is not None
    left = ends.replace(tzinfo=ends.tzinfo or utcnow().tzinfo) - utcnow()
    assert left > timedelta(hours=ctx.settings.session_hours) - timedelta(minutes=1)


def test_changes_without_the_csrf_token_are_refused(ctx: Context, ui: Callable[..., UiClient]) -> None:
    clerk = ui("clerk01")
    r = clerk.client.post("/ui/logout", data={"csrf_token": "forged"}, follow_redirects=False)
    assert r.status_code == 403 and "csrf_failed" in text(r) and "请刷新页面" in text(r)
    r = clerk.client.post("/ui/logout", headers={"HX-Request": "true"}, follow_redirects=False)
    assert r.status_code == 403 and r.headers["HX-Retarget"] == "#flash"
    assert clerk.get("/ui/").status_code == 200  # still logged in


def test_logout_ends_the_session_and_is_audited(ctx: Context, ui: Callable[..., UiClient]) -> None:
    clerk = ui("clerk01")
    r = clerk.client.post("/ui/logout", data={"csrf_token": clerk.csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/login"
    with ctx.catalogue.reading() as s:
        assert s.scalar(select(UserSession)) is None
        assert s.scalar(select(AuditEvent).where(AuditEvent.action == "auth.logout")).actor == "clerk01"
    assert clerk.get("/ui/", follow_redirects=False).status_code == 303


def test_pages_forbid_inline_script_and_framing(ui: Callable[..., UiClient]) -> None:
    r = ui("clerk01").get("/ui/")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert r.headers["cache-control"] == "no-store" and r.headers["x-content-type-options"] == "nosniff"
    page = soup(r)
    assert all(tag.get("src") for tag in page.find_all("script"))
    assert not page.find_all(style=True)


def test_a_person_without_the_permission_gets_403_and_it_is_audited(ctx: Context,
                                                                    ui: Callable[..., UiClient]) -> None:
    auditor = ui("audit01", ["auditor"], None)
    r = auditor.get("/ui/cases/new")
    assert r.status_code == 403 and "permission_denied" in text(r) and "<form" not in r.text.split("</header>")[-1]
    with ctx.catalogue.reading() as s:
        ev = s.execute(select(AuditEvent.outcome, AuditEvent.target_id)
                       .where(AuditEvent.action == "permission.denied")).one()
    assert tuple(ev) == ("refused", "GET /ui/cases/new")


def test_unknown_ui_path_is_a_chinese_page(ui: Callable[..., UiClient]) -> None:
    r = ui("clerk01").get("/ui/nowhere")
    assert r.status_code == 404 and "text/html" in r.headers["content-type"] and "not_found" in text(r)


def test_the_server_address_leads_to_the_ui(client: TestClient) -> None:
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/ui/"
