"""The browser starts and the login page works in it: fails loudly when Debian moves Chromium's major version
past what Playwright can drive."""

from __future__ import annotations

from collections.abc import Callable

from archive.context import Context
from tests.helpers import add_user
from tests.web.e2e.conftest import shot


def test_login_lands_on_the_counter_home(ctx: Context, page_for: Callable[..., object]) -> None:
    add_user(ctx, "clerk01", ["clerk"], "BR01")
    page = page_for("clerk01")
    assert page.get_by_role("heading", name="工作台").is_visible()  # type: ignore[attr-defined]
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)  # type: ignore[attr-defined]
    page.reload()  # type: ignore[attr-defined]
    assert errors == []  # no CSP violation, no script error
    shot(page, "home")


def test_wrong_password_message_in_the_browser(ctx: Context, browser: object, live: str) -> None:
    add_user(ctx, "clerk01", ["clerk"], "BR01")
    c = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")  # type: ignore[attr-defined]
    page = c.new_page()
    page.goto(f"{live}/ui/login")
    page.get_by_label("用户名").fill("clerk01")
    page.get_by_label("密码").fill("not-the-password")
    page.get_by_role("button", name="登录").click()
    assert page.get_by_role("alert").inner_text().startswith("用户名或密码不正确")
    shot(page, "login-refused")
    c.close()
