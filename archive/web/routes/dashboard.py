"""首页/统计 (the dashboard): the figures of archive.dashboard, each block shown to people whose permissions cover
it, charts drawn here as SVG (no script, no inline style: CSS classes under the dashboard's marker in app.css), and
every figure a link to the list behind it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from archive import dashboard
from archive.api.deps import UnitOfWork, context
from archive.context import Context
from archive.dashboard import Figures
from archive.permissions import Permission, Principal
from archive.web.deps import require
from archive.web.render import SECURITY_HEADERS, render

router = APIRouter(prefix="/ui/dashboard", include_in_schema=False)
P = Permission
# Who sees which block: a block shows what its list page would show the person (NAV opens the page to any of them).
BLOCKS: dict[str, frozenset[Permission]] = {
    "filings": frozenset({P.ITEM_READ}),  # filings per day, 归档及时率
    "checks": frozenset({P.CHECK_READ}),  # 四性检测 pass rate, alerts, index backlog, storage and replicas
    "unassigned": frozenset({P.CASE_READ}),  # scanned pages waiting for a clerk
    "lending": frozenset({P.LENDING_APPROVE}),  # paper loans overdue
    "expiring": frozenset({P.RETENTION_MANAGE, P.DESTRUCTION_APPROVE}),  # items whose 保管期限 ends soon
}
# the SVGs' coordinate systems (they scale with their card: viewBox), about the card's width at 1366 px so the
# axis labels stay at the page's text size: the filings chart spans the page, the pass rate half of it
WIDE, WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 1280, 620, 220, 40, 16, 10, 24


def filed_link(first: date, last: date, category: str = "") -> str:
    """The search page (检索) for the items filed in these days: it filters by 办结 date, not by the filing's, and
    an item files at its 办结 (or within ARCHIVE_FILING_DUE_DAYS of it), so this is the closest list."""
    params = {"status": "filed", "category": category, "closed_from": first.isoformat(),
              "closed_to": last.isoformat()}
    return "/ui/search?" + urlencode({k: v for k, v in params.items() if v})


def checks_link(**params: str) -> str:
    """The 四性检测 reports page with these filters (outcome, stage; it has no date filter)."""
    return "/ui/checks?" + urlencode({k: v for k, v in params.items() if v})


@dataclass(frozen=True)
class Bar:
    """One rectangle of a chart, with the link and the tooltip (SVG <title>) of what it counts."""

    x: float
    y: float
    width: float
    height: float
    css: str
    href: str
    title: str


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    ticks: list[tuple[float, str]]  # (y, label) of the value axis
    days: list[tuple[float, str]]  # (x, label) of the day axis (every 5th day)
    width: int
    line: str = ""  # polyline points (pass rate)


def _nice_max(value: int) -> int:
    """The value axis' top: 1, 2, 5 × 10^n at least ``value``."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step >= value:
                return max(m * step, 1)
        step *= 10


def _day_axis(days: list[date], slot: float) -> list[tuple[float, str]]:
    """Every 5th day's label, ending today."""
    return [(LEFT + i * slot + slot / 2, f"{d.month}-{d.day}") for i, d in enumerate(days)
            if (len(days) - 1 - i) % 5 == 0]


def filings_chart(figures: Figures, category_names: dict[str, str], category_class: dict[str, str]) -> Chart:
    """Stacked bars: each day's filings by category; each part links to that day's items of the category."""
    top = _nice_max(max((d.total for d in figures.days), default=0))
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDE - LEFT - RIGHT) / len(figures.days)
    bars = []
    for i, d in enumerate(figures.days):
        y = float(TOP + plot_h)
        for cat in figures.categories:
            n = d.filed.get(cat, 0)
            if not n:
                continue
            h = plot_h * n / top
            y -= h
            bars.append(Bar(round(LEFT + i * slot + slot * 0.15, 1), round(y, 1), round(slot * 0.7, 1), round(h, 1),
                            category_class.get(cat, "c-other"),
                            filed_link(d.day, d.day, cat),
                            f"{d.day:%m-%d} {category_names.get(cat, cat)}：{n} 件"))
    ticks = [(round(TOP + plot_h * (1 - f), 1), f"{top * f:g}") for f in (0, 0.5, 1)]
    return Chart(bars, ticks, _day_axis([d.day for d in figures.days], slot), WIDE)


def checks_chart(figures: Figures) -> Chart:
    """The pass rate of each day's 归档环节 checks as a line; each day with reports a dot linking to them."""
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / len(figures.days)
    dots, points = [], []
    for i, d in enumerate(figures.days):
        if not d.checks:
            continue
        x, y = LEFT + i * slot + slot / 2, TOP + plot_h * (1 - d.passed / d.checks)
        points.append(f"{x:.1f},{y:.1f}")
        dots.append(Bar(round(x, 1), round(y, 1), 4, 0, "bad" if d.passed < d.checks else "ok",
                        checks_link(stage="gd", outcome="" if d.passed == d.checks else "failed"),
                        f"{d.day:%m-%d} 归档检测 {d.checks} 次，通过 {d.passed} 次（{100 * d.passed // d.checks}%）"))
    ticks = [(round(TOP + plot_h * (1 - f), 1), f"{int(f * 100)}%") for f in (0, 0.5, 1)]
    return Chart(dots, ticks, _day_axis([d.day for d in figures.days], slot), WIDTH,
                 " ".join(points))


def size_text(n: int | None) -> str:
    if n is None:
        return "—"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "—"


@router.get("")
def index(request: Request, refresh: Annotated[int, Query(ge=0, le=1)] = 0, db: Session = UnitOfWork,
          ctx: Context = Depends(context),
          principal: Principal = Depends(require(P.RETENTION_MANAGE, P.DESTRUCTION_APPROVE, P.CHECK_READ,
                                                 P.ITEM_READ))) -> Response:
    cache: dashboard.Cache = getattr(request.app.state, "dashboard_cache", None) or dashboard.Cache()
    request.app.state.dashboard_cache = cache
    figures = cache.figures(ctx, db, principal, refresh=bool(refresh))
    if refresh:  # back to the plain address, so a reload does not ask again
        return RedirectResponse("/ui/dashboard", status_code=303, headers=SECURITY_HEADERS)
    shown = {name for name, perms in BLOCKS.items() if perms & principal.permissions}
    names = {code: c.name for code, c in ctx.schedule.categories.items()}
    classes = {code: f"c{i % 8}" for i, code in enumerate(ctx.schedule.categories)}
    first, last = figures.days[0].day, figures.days[-1].day
    return render(request, "dashboard.html", f=figures, shown=shown, names=names, classes=classes, first=first,
                  last=last, filings=filings_chart(figures, names, classes), checks=checks_chart(figures),
                  age=dashboard.age_text(figures.computed_at, ctx.zone, ctx.now()), filed_link=filed_link,
                  checks_link=checks_link, size_text=size_text, percent=percent, H=HEIGHT, LEFT=LEFT,
                  can_assign=principal.can(P.CASE_WRITE))
