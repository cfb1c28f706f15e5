"""工作台 and the barcode landing: today's cases of this clerk and branch, paged on the server; nothing of another
branch."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from archive.catalogue.models import Case, ScanBatch, ScanPart
from archive.context import Context
from archive.web.routes.home import PAGE_SIZE
from tests.factories import add_case, file_case_row
from tests.web.html import UiClient, soup, text

NOW = datetime.now(UTC)


@pytest.fixture(autouse=True)
def _clock_held_at_now(ctx: Context) -> None:
    """The pages' clock stays at NOW (taken when this module was collected, maybe long before the test runs): a run
    that crosses midnight in the center's zone (16:00 UTC for Beijing) still reads the day the rows were made on."""
    ctx.clock = lambda: NOW


def _serials(page_text: str, prefix: str = "YW") -> set[str]:
    return {w for w in page_text.split() if w.startswith(prefix)}


def test_home_lists_todays_cases_by_state(ctx: Context, ui: Callable[..., UiClient]) -> None:
    add_case(ctx, "YWTODAY0001", accepted=NOW)
    add_case(ctx, "YWTODAY0002", accepted=NOW)
    add_case(ctx, "YWOLD000001", accepted=NOW - timedelta(days=3))
    add_case(ctx, "YWFILED0001", accepted=NOW)
    file_case_row(ctx, "YWFILED0001")
    with ctx.catalogue.session() as s:
        s.execute(update(Case).where(Case.serial == "YWFILED0001").values(closed_at=NOW))
    clerk = ui("clerk01")
    page = clerk.get("/ui/")
    assert _serials(text(page)) == {"YWTODAY0001", "YWTODAY0002"}
    tabs = {a.get_text(" ", strip=True) for a in soup(page).select("nav.tabs a")}
    assert "办理中 2" in tabs and "已归档 1" in tabs and "归档检测未通过 0" in tabs and "未办结（含往日） 3" in tabs
    pending = clerk.get("/ui/?view=pending")
    assert _serials(text(pending)) == {"YWTODAY0001", "YWTODAY0002", "YWOLD000001"}
    filed = clerk.get("/ui/?view=filed")
    assert _serials(text(filed)) >= {"YWFILED0001"} and "YWTODAY0001" not in text(filed)


def test_home_pages_on_the_server(ctx: Context, ui: Callable[..., UiClient]) -> None:
    for i in range(PAGE_SIZE + 3):
        add_case(ctx, f"YWPAGE{i:05d}", accepted=NOW - timedelta(milliseconds=i), enqueue=False)
    clerk = ui("clerk01")
    first, second = clerk.get("/ui/"), clerk.get("/ui/?page=2")
    assert len(soup(first).select("table.list tbody tr")) == PAGE_SIZE
    assert len(soup(second).select("table.list tbody tr")) == 3
    nxt = soup(first).find("a", rel="next")
    assert "第 1 / 2 页" in text(first) and nxt is not None and nxt["href"] == "?view=open&scope=mine&page=2"
    assert clerk.get("/ui/?page=0").status_code == 422  # a bad page number is refused, not a server error


def test_another_branch_sees_nothing(ctx: Context, ui: Callable[..., UiClient]) -> None:
    add_case(ctx, "YWBR0100001", accepted=NOW, name="李四")
    other = ui("clerk02", ["clerk"], "BR02")
    home = other.get("/ui/?scope=branch")
    assert "YWBR0100001" not in home.text and "李四" not in home.text
    go = other.get("/ui/go?serial=YWBR0100001", follow_redirects=False)
    unknown = other.get("/ui/go?serial=YWNOSUCH0001", follow_redirects=False)
    assert go.status_code == unknown.status_code == 404
    assert text(go).replace("YWBR0100001", "X") == text(unknown).replace("YWNOSUCH0001", "X")


def test_the_barcode_gun_lands_on_the_case(ctx: Context, ui: Callable[..., UiClient]) -> None:
    add_case(ctx, "YWGUN000001", accepted=NOW)
    clerk = ui("clerk01")
    r = clerk.get("/ui/go?serial=%20YWGUN000001%20", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/cases/YWGUN000001"
    unknown = clerk.get("/ui/go?serial=YWNEW0000001")
    assert unknown.status_code == 404 and soup(unknown).find("a", href="/ui/cases/new?serial=YWNEW0000001")
    bad = clerk.get("/ui/go?serial=%3Cscript%3E")
    assert bad.status_code == 404 and "invalid_serial" in text(bad) and "<script>" not in bad.text


def test_names_are_masked_for_a_role_without_pii(ctx: Context, ui: Callable[..., UiClient]) -> None:
    add_case(ctx, "YWMASK00001", accepted=NOW, name="王小明")
    head = ui("head01", ["archive_head"], "BR01")
    page = head.get("/ui/?scope=branch")
    assert "YWMASK00001" in page.text and "王小明" not in page.text and "王*明" in page.text
    clerk = ui("clerk01")
    assert "王小明" in clerk.get("/ui/?scope=branch").text


def test_unassigned_pages_are_counted_for_the_own_branch_only(ctx: Context, ui: Callable[..., UiClient]) -> None:
    with ctx.catalogue.session() as s:
        for branch, parts in (("BR01", 2), ("BR02", 5)):
            batch = ScanBatch(filename="stack.pdf", original_key="scans/x", sha256="0" * 64,
                              media_type="application/pdf", status="done", created_by="someone", branch=branch,
                              covers=[])
            s.add(batch)
            s.flush()
            s.add_all(ScanPart(batch_id=batch.id, first_page=3 * i + 1, last_page=3 * i + 3, status="unassigned",
                               reason="unknown_serial") for i in range(parts))
    big = soup(ui("clerk01").get("/ui/")).select_one("strong.big")
    assert big is not None and big.get_text() == "6"  # 2 parts of 3 pages in BR01; BR02's 15 pages are not hers
    other = soup(ui("clerk02", ["clerk"], "BR02").get("/ui/")).select_one("strong.big")
    assert other is not None and other.get_text() == "15"


def test_todays_cases_are_of_the_clocks_day_in_the_centers_zone(ctx: Context, ui: Callable[..., UiClient]) -> None:
    """A case accepted at 23:59 Beijing time is yesterday's once the clock passes midnight there, although both
    instants fall on the same UTC date."""
    late = datetime(2026, 6, 14, 15, 59, tzinfo=UTC)  # 23:59 in Beijing
    add_case(ctx, "YWLATE00001", accepted=late)
    clerk = ui("clerk01")
    ctx.clock = lambda: late + timedelta(seconds=30)
    assert _serials(text(clerk.get("/ui/"))) == {"YWLATE00001"}
    ctx.clock = lambda: late + timedelta(minutes=2)  # 00:01 on the 15th
    assert _serials(text(clerk.get("/ui/"))) == set()
    assert _serials(text(clerk.get("/ui/?view=pending"))) == {"YWLATE00001"}
