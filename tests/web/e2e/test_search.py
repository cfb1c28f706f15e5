"""检索 → 归档件 → 重新核验 in the browser, keyboard paging in the viewer, and another branch's archivist who sees
neither the hit nor the item (404)."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import quote

from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from archive import indexing
from archive.context import Context
from tests.factories import close_case, complete_case
from tests.helpers import add_client, add_user
from tests.web.e2e.conftest import shot

CODE = "J001-YW·2026-D30-TQ-000001"


def _filed(ctx: Context, client: TestClient) -> None:
    core = add_client(ctx, "core", ["cases.write", "data.read", "pii.read"])
    complete_case(client, core)
    close_case(client, core)
    indexing.IndexWorker(ctx).drain()


def test_search_item_and_verification(ctx: Context, client: TestClient, live: str,
                                      page_for: Callable[..., Page]) -> None:
    _filed(ctx, client)
    add_user(ctx, "arch01", ["archivist"], None)
    page = page_for("arch01")
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{live}/ui/search")
    page.get_by_label("检索词").fill("张三")
    page.get_by_role("button", name="检索", exact=True).click()
    page.wait_for_selector("table.results")
    assert page.locator("table.results tbody tr").count() == 1
    shot(page, "search-results")
    page.get_by_role("link", name=CODE).click()
    page.wait_for_url(f"**/ui/items/{quote(CODE)}")
    expect(page.locator("img.viewer-page")).to_have_attribute("src", re.compile(r"/pages/1\?w=\d+$"))
    first = page.locator("img.viewer-page").get_attribute("src")
    assert first is not None and "w=0" not in first  # asked at the viewer's width
    shot(page, "item-page")
    page.keyboard.press("ArrowRight")  # next page of the signed PDF, without reloading the page
    expect(page.locator("img.viewer-page")).to_have_attribute("src", re.compile(r"/pages/2\?w=\d+$"))
    page.keyboard.press("r")
    assert "rot-90" in (page.locator("img.viewer-page").get_attribute("class") or "")
    page.get_by_role("button", name="重新核验").click()
    page.wait_for_selector("text=刚刚核验通过")
    page.locator("#verification").scroll_into_view_if_needed()
    shot(page, "item-verification")
    assert errors == []


def test_other_branch_archivist_sees_neither_hit_nor_item(ctx: Context, client: TestClient, live: str,
                                                          page_for: Callable[..., Page]) -> None:
    _filed(ctx, client)
    add_user(ctx, "arch02", ["archivist"], "BR02")
    page = page_for("arch02")
    page.goto(f"{live}/ui/search?q={quote('张三')}")
    assert page.get_by_text("没有找到符合条件的档案").is_visible()
    page.goto(f"{live}/ui/search?q={quote(CODE)}")
    assert page.get_by_text("没有找到符合条件的档案").is_visible()
    r = page.goto(f"{live}/ui/items/{quote(CODE)}")
    assert r is not None and r.status == 404
    assert page.get_by_text("不存在").first.is_visible()
