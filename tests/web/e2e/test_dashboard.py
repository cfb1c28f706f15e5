"""The dashboard in Chromium: an archivist lands on it with every block, the auditor sees the checks' only; no CSP
violation or script error; the charts' parts are links."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from archive.context import Context
from tests.helpers import add_user
from tests.web.e2e.conftest import shot
from tests.web.test_dashboard_page import _file, seed


def a_month_of_filings(ctx: Context) -> None:
    """40 items of four categories filed over the last 30 days (some late), for a chart worth looking at."""
    rng, now = random.Random(15), datetime.now(UTC)
    for i in range(40):
        filed = now - timedelta(days=rng.randrange(1, 30), hours=rng.randrange(8))
        _file(ctx, f"YWMONTH{i:04d}", 100 + i, filed, filed - timedelta(days=rng.choice((0, 1, 2, 5))),
              business_type=rng.choice(("GJ01", "TQ01", "DK01", "ZJ01")))


def test_archivist_and_auditor_dashboards(ctx: Context, page_for: Callable[..., object]) -> None:
    seed(ctx)
    a_month_of_filings(ctx)
    add_user(ctx, "arch01", ["archivist"], None)
    add_user(ctx, "audit01", ["auditor"], None)
    page = page_for("arch01")
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)  # type: ignore[attr-defined]
    page.goto(page.url.split("/ui/")[0] + "/ui/dashboard")  # type: ignore[attr-defined]
    assert page.get_by_role("heading", name="统计").is_visible()  # type: ignore[attr-defined]
    assert page.locator("#fig-filings svg a rect").count() > 20  # type: ignore[attr-defined]
    assert page.locator("#fig-overdue").is_visible()  # type: ignore[attr-defined]
    # nothing wider than the window at 1366×768
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # type: ignore[attr-defined]
    assert errors == []
    shot(page, "dashboard-archivist")
    page.locator("#fig-filings").scroll_into_view_if_needed()  # type: ignore[attr-defined]
    shot(page, "dashboard-archivist-charts")

    auditor = page_for("audit01")
    auditor.goto(auditor.url.split("/ui/")[0] + "/ui/dashboard")  # type: ignore[attr-defined]
    assert auditor.locator("#fig-alerts").is_visible()  # type: ignore[attr-defined]
    assert auditor.locator("#fig-filings").count() == 0 and auditor.locator("#fig-overdue").count() == 0  # type: ignore[attr-defined]
    shot(auditor, "dashboard-auditor")
