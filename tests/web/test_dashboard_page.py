"""首页/统计: each figure shown to the people whose permissions cover it, right on both databases, linking to the list
behind it; charts as SVG without inline style; figures cached with their age shown; another branch's items
not counted."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from archive import dashboard
from archive.catalogue.models import (
    ArchiveItem,
    AuditEvent,
    Case,
    CheckReport,
    PaperLoan,
    ScanBatch,
    ScanPart,
    StorageAlert,
    StorageSweep,
)
from archive.context import Context
from archive.permissions import Principal
from storage.filesystem import FilesystemStore
from storage.replicated import ReplicatedStore
from tests.factories import add_case, file_case_row
from tests.web.html import UiClient, soup
from tests.web.html import text as page_text

NOW = datetime.now(UTC)
PAGE = "/ui/dashboard"
# the figures' element ids, by who sees them
FILINGS = {"fig-timeliness", "fig-filings"}
CHECKS = {"fig-alerts", "fig-outbox", "fig-checks", "fig-storage", "fig-replicas"}
ALL = FILINGS | CHECKS | {"fig-unassigned", "fig-overdue", "fig-expiring", "fig-expiry"}


@pytest.fixture(autouse=True)
def _clock_held_at_now(ctx: Context) -> None:
    """The pages' clock stays at NOW (taken when this module was collected, maybe long before the test runs): a run
    that crosses midnight in the center's zone (16:00 UTC for Beijing) still reads the day the rows were made on."""
    ctx.clock = lambda: NOW


def _file(ctx: Context, serial: str, number: int, filed: datetime, closed: datetime, branch: str = "BR01",
          expiry: date | None = None, business_type: str = "TQ01") -> None:
    add_case(ctx, serial, branch=branch, business_type=business_type)
    file_case_row(ctx, serial, number)
    with ctx.catalogue.session() as s:
        case_id = s.scalar(select(Case.id).where(Case.serial == serial))
        s.execute(update(Case).where(Case.id == case_id).values(closed_at=closed))
        s.execute(update(ArchiveItem).where(ArchiveItem.case_id == case_id)
                  .values(filed_at=filed, **({"expiry_date": expiry} if expiry else {})))


def seed(ctx: Context) -> None:
    """Three items filed today and yesterday (one late), one expiring in 10 days, one of another branch; GD reports
    (one failed), an open replica alert, an overdue paper loan, 3 unassigned pages, a finished sweep."""
    today = ctx.today()
    _file(ctx, "YWDASH00001", 1, NOW, NOW - timedelta(days=1), expiry=today + timedelta(days=10))
    _file(ctx, "YWDASH00002", 2, NOW - timedelta(days=1), NOW - timedelta(days=11))  # 10 days late
    _file(ctx, "YWDASH00003", 3, NOW, NOW - timedelta(hours=2), branch="BR02")
    with ctx.catalogue.session() as s:
        for passed in (True, True, False):
            s.add(CheckReport(stage="gd", subject="YWDASH00001", operator="system", operator_type="system",
                              outcome="passed" if passed else "failed", passed=passed, counts={}, created_at=NOW))
        s.add(StorageAlert(code="BC-4-1", target="renditions/ab", severity="critical", message="备副本缺失",
                           detail={}))
        s.add(PaperLoan(borrower="王五", lent_by="arch01", due_date=today - timedelta(days=3), status="out",
                        reminders=[]))
        s.add(PaperLoan(borrower="赵六", lent_by="arch01", due_date=today + timedelta(days=3), status="out",
                        reminders=[]))
        batch = ScanBatch(filename="s.pdf", original_key="scans/x", sha256="0" * 64, media_type="application/pdf",
                          status="done", created_by="clerk01", branch="BR01", covers=[])
        s.add(batch)
        s.flush()
        s.add(ScanPart(batch_id=batch.id, first_page=1, last_page=3, status="unassigned", reason="unknown_serial"))
        s.add(StorageSweep(scope="primary", tier="all", status="done", object_count=42, byte_count=3 * 2**20,
                           findings=0, options={}, tally={}, started_by="system", finished_at=NOW))


def ids(page: object) -> set[str]:
    return {str(e["id"]) for e in soup(page).select("[id^=fig-]")}  # type: ignore[arg-type]


def href(page: object, fig: str) -> str:
    el = soup(page).find(id=fig)  # type: ignore[arg-type]
    assert el is not None, fig
    link = el if el.name == "a" else el.find("a")
    assert link is not None, fig
    return str(link["href"])


def test_an_archivist_sees_every_figure_with_its_list(ctx: Context, ui: Callable[..., UiClient]) -> None:
    seed(ctx)
    page = ui("arch01", ["archivist"], None).get(PAGE)
    assert page.status_code == 200 and ids(page) == ALL
    body = page_text(page)
    # 归档及时率: 2 of 3 items filed within 3 days of 办结 (all branches)
    assert "66.7%" in body and "3 件中 2 件在办结后 3 天内归档" in body
    tiles = {t["id"]: t.get_text(" ", strip=True) for t in soup(page).select(".tile")}
    assert tiles["fig-unassigned"].startswith("扫描件待分配 3")
    assert tiles["fig-alerts"].startswith("未确认的存储告警 1")
    assert tiles["fig-overdue"].startswith("纸质借阅逾期未还 1")
    assert tiles["fig-expiring"].startswith("90 天内到期待鉴定 1")
    assert tiles["fig-outbox"].startswith("检索索引待处理 6")  # add_case and file_case_row each enqueue
    assert "66.6%（3 次）" in body or "66.7%（3 次）" in body  # GD pass rate
    assert "42" in soup(page).find(id="fig-storage").get_text() and "3.0 MB" in body  # type: ignore[union-attr]
    assert "两副本" not in body and "未配置副本存储" in body  # a filesystem store: one copy
    # every figure links to the list behind it
    first = (ctx.today() - timedelta(days=29)).isoformat()
    today = ctx.today().isoformat()
    month = f"/ui/search?status=filed&closed_from={first}&closed_to={today}"  # the search page filters by 办结
    assert href(page, "fig-timeliness") == month
    assert href(page, "fig-alerts") == "/ui/checks/alerts"
    assert href(page, "fig-overdue") == "/ui/lending/loans?overdue=1"
    assert href(page, "fig-expiring") == "/ui/appraisal"
    assert href(page, "fig-checks") == "/ui/checks?stage=gd"
    assert soup(page).find("a", string=re.compile("未通过的 1 次检测"))["href"] == "/ui/checks?stage=gd&outcome=failed"  # type: ignore[index]
    assert href(page, "fig-filings") == month and href(page, "fig-storage") == "/ui/checks/sweeps"
    legend = [a["href"] for a in soup(page).select(".legend a")]
    assert legend == [f"/ui/search?status=filed&category=TQ&closed_from={first}&closed_to={today}"]


def test_the_charts_are_svg_with_links_and_no_inline_style(ctx: Context, ui: Callable[..., UiClient]) -> None:
    seed(ctx)
    page = ui("arch01", ["archivist"], None).get(PAGE)
    bars = soup(page).select("#fig-filings svg a rect")
    today = ctx.today().isoformat()
    # today: 2 items (one per branch), yesterday 1: two bars of category TQ
    assert len(bars) == 2 and {b.find("title").get_text() for b in bars} >= {f"{today[5:]} 提取：2 件"}
    links = {b.parent["href"] for b in bars}
    assert f"/ui/search?status=filed&category=TQ&closed_from={today}&closed_to={today}" in links
    heights = sorted(float(b["height"]) for b in bars)
    assert heights[1] == pytest.approx(2 * heights[0], rel=0.02)  # bars scale with the counts
    dots = soup(page).select("#fig-checks svg a circle")
    assert len(dots) == 1 and "bad" in dots[0]["class"] and "通过 2 次（66%）" in dots[0].get_text()
    assert dots[0].parent["href"] == "/ui/checks?stage=gd&outcome=failed"  # a day with failures: those reports
    assert "style=" not in page.text and "<script>" not in page.text


def test_an_auditor_sees_the_checks_only(ctx: Context, ui: Callable[..., UiClient]) -> None:
    seed(ctx)
    page = ui("audit01", ["auditor"], None).get(PAGE)
    assert page.status_code == 200 and ids(page) == CHECKS
    assert "归档及时率" not in page.text and "逾期" not in page.text and "YWDASH" not in page.text


def test_the_archive_head_sees_lending_and_expiry_but_assigns_no_scans(ctx: Context,
                                                                       ui: Callable[..., UiClient]) -> None:
    seed(ctx)
    page = ui("head01", ["archive_head"], None).get(PAGE)
    assert ids(page) == ALL
    tile = soup(page).find(id="fig-unassigned")
    assert tile is not None and tile.name == "div" and "由柜员在扫描室归入" in tile.get_text()  # no link she can't use


def test_a_clerk_sees_filings_and_unassigned_pages(ctx: Context, ui: Callable[..., UiClient]) -> None:
    seed(ctx)
    page = ui("clerk01", ["clerk"], "BR01").get(PAGE)
    assert ids(page) == FILINGS | {"fig-unassigned"}
    assert href(page, "fig-unassigned") == "/ui/scans/unassigned"


def test_who_may_not_gets_403_and_an_audit_event(ctx: Context, ui: Callable[..., UiClient]) -> None:
    seed(ctx)
    for name, role in (("admin01", "admin"), ("sec01", "security_officer")):
        r = ui(name, [role], None).get(PAGE)
        assert r.status_code == 403 and "permission_denied" in page_text(r) and "fig-" not in r.text
    with ctx.catalogue.session() as s:
        denied = s.scalars(select(AuditEvent).where(AuditEvent.action == "permission.denied")).all()
        assert [(e.actor, e.target_id) for e in denied] == [("admin01", "GET /ui/dashboard"),
                                                            ("sec01", "GET /ui/dashboard")]


def test_another_branch_is_not_counted(ctx: Context, ui: Callable[..., UiClient]) -> None:
    seed(ctx)
    page = ui("clerk02", ["clerk"], "BR02").get(PAGE)
    body = page_text(page)
    assert "1 件中 1 件在办结后 3 天内归档" in body  # BR02's one item only
    assert soup(page).find(id="fig-unassigned").get_text(" ", strip=True).startswith("扫描件待分配 0")  # type: ignore[union-attr]


def test_figures_are_cached_with_their_age_and_refreshed_on_request(ctx: Context, ui: Callable[..., UiClient],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    arch = ui("arch01", ["archivist"], None)
    first = arch.get(PAGE)
    shown = page_text(first)
    assert "0 件中 0 件" in shown and "数据更新于" in shown and "不到 1 分钟前" in shown
    assert soup(first).find("a", string="刷新")["href"] == "/ui/dashboard?refresh=1"  # type: ignore[index]
    seed(ctx)
    assert "0 件中 0 件" in page_text(arch.get(PAGE))  # within ARCHIVE_DASHBOARD_CACHE_SECONDS: the same figures
    # a refresh clicked again at once reuses them (no recomputation on every click) …
    again = arch.get(f"{PAGE}?refresh=1", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == PAGE
    assert "0 件中 0 件" in page_text(arch.get(PAGE))
    # … after REFRESH_MIN_SECONDS it computes them again
    monkeypatch.setattr(dashboard, "REFRESH_MIN_SECONDS", 0)
    assert "3 件中 2 件" in page_text(arch.get(f"{PAGE}?refresh=1"))


def test_the_age_reads_in_minutes(ctx: Context) -> None:
    at = datetime(2026, 12, 3, 4, 5, tzinfo=UTC)
    assert dashboard.age_text(at, ctx.zone, at + timedelta(minutes=7, seconds=30)) == "数据更新于 12:05（7 分钟前）"
    assert dashboard.age_text(at, ctx.zone, at + timedelta(seconds=20)) == "数据更新于 12:05（不到 1 分钟前）"


@pytest.mark.parametrize("query", ["refresh=abc", "refresh=2", "refresh=" + "9" * 300])
def test_bad_input_is_a_clear_422(ctx: Context, ui: Callable[..., UiClient], query: str) -> None:
    r = ui("arch01", ["archivist"], None).get(f"{PAGE}?{query}")
    assert r.status_code == 422 and "请求内容有误" in page_text(r) and "Traceback" not in r.text


def test_nothing_filed_reads_plainly(ctx: Context, ui: Callable[..., UiClient]) -> None:
    page = ui("arch01", ["archivist"], None).get(PAGE)
    body = page_text(page)
    assert page.status_code == 200 and "近 30 天没有归档" in body and "近 30 天没有归档检测" in body
    assert "—" in soup(page).find(id="fig-timeliness").get_text()  # type: ignore[union-attr]


def test_a_replicated_store_shows_both_copies_and_their_alerts(ctx: Context, ui: Callable[..., UiClient],
                                                                tmp_path: Path) -> None:
    ctx._store = ReplicatedStore(FilesystemStore(tmp_path / "a"), FilesystemStore(tmp_path / "b"))
    seed(ctx)
    with ctx.catalogue.session() as s:  # a later sweep of both copies read each object twice
        s.add(StorageSweep(scope="all", tier="all", status="done", object_count=20, byte_count=4 * 2**20,
                           findings=1, options={}, tally={}, started_by="system", finished_at=NOW))
    page = ui("audit01", ["auditor"], None).get(PAGE)
    rows = [r.get_text(" ", strip=True) for r in soup(page).select("#fig-storage tbody tr")]
    assert len(rows) == 2 and rows[0].startswith("主副本") and rows[1].startswith("备副本")
    assert all(" 10 2.0 MB " in f" {r} " and "1 项问题" in r for r in rows), rows
    assert href(page, "fig-replicas") == "/ui/checks/alerts"
    assert "1 个对象的两副本不一致或缺失" in page_text(page)


def test_a_days_filings_are_an_index_range(ctx: Context) -> None:
    """The per-day count reads ix_archive_item_filed_at, not the table (SQLite's plan; PostgreSQL chooses by its
    statistics)."""
    with ctx.catalogue.session() as s:
        if s.get_bind().dialect.name != "sqlite":
            pytest.skip("the query plan is checked on SQLite")
        everyone = Principal("user", 1, "arch01", frozenset())
        q = dashboard.filings_query(s, everyone, 3, [NOW - timedelta(days=2), NOW - timedelta(days=1), NOW])
        sql = str(q.compile(s.get_bind(), compile_kwargs={"literal_binds": True}))
        plan = " ".join(str(r[-1]) for r in s.execute(text("EXPLAIN QUERY PLAN " + sql)))
    assert "ix_archive_item_filed_at" in plan, plan


def test_days_are_the_centers_local_days(ctx: Context) -> None:
    """Filed at 23:30 and at 00:30 Beijing time: two different days, although both are the same UTC date."""
    noon = datetime(2026, 6, 15, 4, 0, tzinfo=UTC)  # 12:00 in Beijing
    _file(ctx, "YWTZ0000001", 1, datetime(2026, 6, 14, 15, 30, tzinfo=UTC), datetime(2026, 6, 14, 1, tzinfo=UTC))
    _file(ctx, "YWTZ0000002", 2, datetime(2026, 6, 14, 16, 30, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC))
    with ctx.catalogue.session() as s:
        figures = dashboard.compute(ctx, s, Principal("user", 1, "arch01", frozenset()), noon)
    by_day = {d.day: (d.total, d.on_time) for d in figures.days if d.total}
    assert by_day == {date(2026, 6, 14): (1, 1), date(2026, 6, 15): (1, 0)}  # the second was filed 13 days late
    assert figures.days[-1].day == date(2026, 6, 15) and len(figures.days) == dashboard.DAYS
