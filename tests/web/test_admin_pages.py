"""The administrator's and the security officer's pages: users and their roles (三员分立 enforced and explained),
login locks, API clients (key shown once; revoke), and the settings in force with the readiness report."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select

from archive.catalogue.models import ApiClient, AuditEvent, LoginLock, User
from archive.catalogue.types import utcnow
from archive.context import Context
from tests.web.html import UiClient, soup, text


class Seen:
    def __init__(self, user: User) -> None:
        self.branch, self.display_name, self.role_codes = user.branch, user.display_name, user.role_codes


def _user(ctx: Context, name: str) -> Seen | None:
    with ctx.catalogue.reading() as s:
        user = s.scalar(select(User).where(User.username == name))
        return None if user is None else Seen(user)


def test_the_admin_creates_a_user_without_roles(ctx: Context, ui: Callable[..., UiClient]) -> None:
    admin = ui("admin01", ["admin"], None)
    page = admin.get("/ui/admin")
    assert page.status_code == 200 and "三员分立" in text(page) and "同一账号只能担任其中一种" in text(page)
    assert soup(page).find("form", attrs={"hx-post": "/ui/admin/users"}) is not None
    assert soup(page).find("input", attrs={"name": "roles"}) is None  # roles are the security officer's
    r = admin.post("/ui/admin/users", data={"username": "clerk09", "display_name": "王小明", "password": "s3cret-pass",
                                            "branch": "BR02"})
    assert r.status_code == 204 and r.headers["HX-Redirect"] == "/ui/admin?created=clerk09"
    user = _user(ctx, "clerk09")
    assert user is not None and user.branch == "BR02" and user.display_name == "王小明"
    assert "已创建用户 clerk09" in text(admin.get("/ui/admin?created=clerk09"))
    again = admin.post("/ui/admin/users", data={"username": "clerk09", "password": "s3cret-pass"})
    assert again.status_code == 409 and "用户名 clerk09 已存在" in text(again)
    weak = admin.post("/ui/admin/users", data={"username": "clerk10", "password": "short"})
    assert weak.status_code == 422 and "密码至少 8 位" in text(weak) and _user(ctx, "clerk10") is None
    empty = admin.post("/ui/admin/users", data={"username": " ", "password": "s3cret-pass"})
    assert empty.status_code == 422 and "用户名不能为空" in text(empty)
    sneaky = admin.post("/ui/admin/users", data={"username": "boss", "password": "s3cret-pass", "roles": ["admin"]})
    assert sneaky.status_code == 403 and _user(ctx, "boss") is None
    assert admin.post("/ui/admin/users", data={"username": "x" * 65, "password": "s3cret-pass"}).status_code == 422


def test_the_security_officer_assigns_roles_but_never_two_officers(ctx: Context, ui: Callable[..., UiClient]) -> None:
    ui("clerk09", ["clerk"], "BR01")
    sec = ui("sec01", ["security_officer"], None)
    page = sec.get("/ui/admin/users/clerk09")
    assert page.status_code == 200 and soup(page).find("form", attrs={"hx-post": "/ui/admin/users/clerk09/roles"})
    assert soup(sec.get("/ui/admin")).find("form", attrs={"hx-post": "/ui/admin/users"}) is None  # not an admin
    r = sec.post("/ui/admin/users/clerk09/roles", data={"roles": ["clerk", "archivist"]})
    assert r.status_code == 204 and r.headers["HX-Redirect"] == "/ui/admin/users/clerk09?saved=1"
    assert _user(ctx, "clerk09").role_codes == ["archivist", "clerk"]  # type: ignore[union-attr]
    two = sec.post("/ui/admin/users/clerk09/roles", data={"roles": ["admin", "auditor"]})
    assert two.status_code == 422 and "三员分立" in text(two) and "不能由同一账号兼任" in text(two)
    assert two.headers["HX-Retarget"] == "#flash"
    assert _user(ctx, "clerk09").role_codes == ["archivist", "clerk"]  # type: ignore[union-attr]
    unknown = sec.post("/ui/admin/users/clerk09/roles", data={"roles": ["god"]})
    assert unknown.status_code == 422 and "未知角色 god" in text(unknown)
    assert sec.post("/ui/admin/users/nobody/roles", data={"roles": ["clerk"]}).status_code == 404
    admin = ui("admin01", ["admin"], None)
    assert admin.post("/ui/admin/users/clerk09/roles", data={"roles": ["clerk"]}).status_code == 403
    assert admin.post("/ui/admin/users", data={"username": "y1", "password": "s3cret-pass"}).status_code == 204
    assert sec.post("/ui/admin/users", data={"username": "y2", "password": "s3cret-pass"}).status_code == 403


def test_the_admin_unlocks_a_locked_user(ctx: Context, ui: Callable[..., UiClient]) -> None:
    ui("clerk09", ["clerk"], "BR01")
    with ctx.catalogue.session() as s:
        s.add(LoginLock(username="clerk09", failures=5, locked_until=utcnow() + timedelta(minutes=15)))
    admin = ui("admin01", ["admin"], None)
    assert "锁定至" in text(admin.get("/ui/admin"))
    page = admin.get("/ui/admin/users/clerk09")
    assert soup(page).find("form", attrs={"hx-post": "/ui/admin/users/clerk09/unlock"}) is not None
    r = admin.post("/ui/admin/users/clerk09/unlock")
    assert r.status_code == 204 and "未锁定" in text(admin.get("/ui/admin/users/clerk09"))
    again = admin.post("/ui/admin/users/clerk09/unlock")
    assert again.status_code == 409 and "没有被锁定" in text(again)
    assert admin.post("/ui/admin/users/nobody/unlock").status_code == 404
    with ctx.catalogue.reading() as s:
        assert s.scalar(select(AuditEvent.actor).where(AuditEvent.action == "auth.account.unlocked")) == "admin01"


def test_a_client_key_is_shown_once_and_revoked(ctx: Context, ui: Callable[..., UiClient]) -> None:
    admin = ui("admin01", ["admin"], None)
    r = admin.post("/ui/admin/clients", data={"name": "core-system", "scopes": ["data.read", "cases.write"],
                                              "branches": "BR01, BR02"})
    assert r.status_code == 200 and "只显示这一次" in text(r)
    key = str(soup(r).find("input", id="new-key")["value"])
    assert key.startswith("ak_")
    listed = admin.get("/ui/admin/clients")
    assert "core-system" in text(listed) and key not in listed.text and key.split("_", 2)[2] not in listed.text
    assert admin.client.get("/api/v1/cases/YW000000", headers={"X-API-Key": key}).status_code == 404  # the key works
    dup = admin.post("/ui/admin/clients", data={"name": "core-system", "scopes": ["data.read"]})
    assert dup.status_code == 409 and "已存在" in text(dup)
    none = admin.post("/ui/admin/clients", data={"name": "x2"})
    assert none.status_code == 422 and "权限范围" in text(none)
    assert admin.post("/ui/admin/clients", data={"name": " ", "scopes": ["data.read"]}).status_code == 422
    r = admin.post("/ui/admin/clients/core-system/revoke")
    assert r.status_code == 204 and "已吊销" in text(admin.get("/ui/admin/clients"))
    again = admin.post("/ui/admin/clients/core-system/revoke")
    assert again.status_code == 409 and "无需重复吊销" in text(again)
    assert admin.post("/ui/admin/clients/nothing/revoke").status_code == 404
    assert admin.client.get("/api/v1/cases/YW000000", headers={"X-API-Key": key}).status_code == 401
    with ctx.catalogue.reading() as s:
        assert s.scalar(select(ApiClient.active).where(ApiClient.name == "core-system")) is False
        assert len(s.scalars(select(AuditEvent).where(AuditEvent.action == "client.revoke")).all()) == 1
    sec = ui("sec01", ["security_officer"], None)
    assert sec.get("/ui/admin/clients").status_code == 403
    assert sec.post("/ui/admin/clients", data={"name": "x", "scopes": ["data.read"]}).status_code == 403


def test_settings_show_no_secret_and_the_readiness(ctx: Context, ui: Callable[..., UiClient]) -> None:
    from archive.web.routes.admin import shown_settings
    shown = dict((n, v) for n, v, _ in shown_settings(ctx.settings.model_copy(update={
        "s3_secret_key": "TOPSECRET", "es_password": "pw123456", "database_url": "postgresql://u:dbpass@h/db"})))
    assert shown["ARCHIVE_S3_SECRET_KEY"] == "••••••（已设置）" and shown["ARCHIVE_ES_PASSWORD"] == "••••••（已设置）"
    assert "dbpass" not in shown["ARCHIVE_DATABASE_URL"] and "u:••••••@h" in shown["ARCHIVE_DATABASE_URL"]
    admin = ui("admin01", ["admin"], None)
    r = admin.get("/ui/admin/settings")
    assert r.status_code == 200 and "ARCHIVE_FONDS_CODE" in text(r) and "目录数据库" in text(r)
    assert "运行状态" in text(r) and soup(r).find("form") is not None  # only the logout form
    assert len(soup(r).select("main form")) == 0


def test_people_without_user_read_get_403_audited(ctx: Context, ui: Callable[..., UiClient]) -> None:
    auditor = ui("audit01", ["auditor"], None)
    for path in ("/ui/admin", "/ui/admin/settings", "/ui/admin/users/audit01", "/ui/admin/clients"):
        assert auditor.get(path).status_code == 403
    assert auditor.post("/ui/admin/users", data={"username": "z", "password": "s3cret-pass"}).status_code == 403
    with ctx.catalogue.reading() as s:
        denied = set(s.scalars(select(AuditEvent.target_id).where(AuditEvent.action == "permission.denied",
                                                                  AuditEvent.actor == "audit01")))
    assert {"GET /ui/admin", "POST /ui/admin/users"} <= denied
