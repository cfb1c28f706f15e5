"""首页/统计 (the console's dashboard): the figures archivists, the archive head and auditors start their day with.

Every figure is an index range or a small table, never a scan of the catalogue: filings per day over 30 days (one
range on ``archive_item.filed_at``, migration 0014, grouped by local day and category), 四性检测 per day (a range on
``check_report.created_at``), items expiring (a range on ``archive_item.expiry_date``), backlogs (counts on indexed
status columns), storage from the last sweep of each copy (the sweep measured it; nothing is listed here). Even
so the figures are computed at most every ``ARCHIVE_DASHBOARD_CACHE_SECONDS`` per process and per set of
branches, and the page shows their age.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, case, cast, func, select
from sqlalchemy.orm import Session

from archive.capture import scans
from archive.catalogue.models import (
    ArchiveItem,
    Case,
    CheckReport,
    ItemStatus,
    PaperLoan,
    PaperLoanStatus,
    StorageAlert,
    StorageSweep,
    SweepStatus,
)
from archive.checks import alerts
from archive.context import Context
from archive.indexing import Backlog, backlog
from archive.permissions import Principal

DAYS = 30  # filings and 四性检测 per day over this many days, today included
EXPIRY_WINDOWS = (30, 60, 90)  # items expiring within these many days (cumulative windows shown as 3 bars)
REFRESH_MIN_SECONDS = 10  # a refresh link clicked again within this many seconds reuses the figures
REPLICA_CHECK = "BC-4-1"  # 备份副本检测: its open alerts are the replicas' state
COPY_NAMES = {"primary": "主副本", "secondary": "备副本", "all": "全部副本"}


@dataclass(frozen=True)
class Day:
    """One day's filings (by category) and 归档及时率 inputs, and its 四性检测 (归档环节, stage gd) outcomes."""

    day: date
    filed: dict[str, int]  # category → items filed that day
    on_time: int  # of those, filed within ``filing_due_days`` of their case's 办结
    checks: int  # GD reports that day
    passed: int  # of those, passed (no blocking failure)

    @property
    def total(self) -> int:
        return sum(self.filed.values())


@dataclass(frozen=True)
class Copy:
    """One copy of the object store (主副本/备副本): its health now and what its last finished sweep measured."""

    name: str  # primary | secondary | all
    backend: str
    ok: bool
    detail: str
    sweep_at: datetime | None = None
    objects: int | None = None
    bytes: int | None = None
    findings: int | None = None

    @property
    def label(self) -> str:
        return COPY_NAMES.get(self.name, self.name)


@dataclass(frozen=True)
class Figures:
    """Everything the dashboard shows; the page picks the blocks a person's permissions cover."""

    computed_at: datetime
    days: list[Day]
    due_days: int
    unassigned_pages: int
    outbox: Backlog
    alerts: dict[str, Any]  # alerts.counts: open, open_by_severity, total
    replica_alerts: int  # open 备份副本检测 (BC-4-1) alerts
    overdue_loans: int
    copies: list[Copy]
    expiring: list[tuple[int, int]]  # (within days, items expiring from today to today + days)
    categories: list[str] = field(default_factory=list)  # categories with filings in the period, in code order

    @property
    def filed(self) -> int:
        return sum(d.total for d in self.days)

    @property
    def on_time(self) -> int:
        return sum(d.on_time for d in self.days)

    @property
    def by_category(self) -> dict[str, int]:
        return {c: sum(d.filed.get(c, 0) for d in self.days) for c in self.categories}

    @property
    def checks(self) -> int:
        return sum(d.checks for d in self.days)

    @property
    def passed(self) -> int:
        return sum(d.passed for d in self.days)


def _branch_filter(principal: Principal) -> list[ColumnElement[bool]]:
    return [] if principal.branches is None else [Case.branch.in_(sorted(principal.branches))]


def _within(db: Session, days: int) -> ColumnElement[bool]:
    """The item was filed within ``days`` days of its case's 办结 (closed_at): date arithmetic per dialect."""
    if db.get_bind().dialect.name == "sqlite":  # UTC text timestamps: julianday() gives fractional days
        return (func.julianday(ArchiveItem.filed_at) - func.julianday(Case.closed_at)) <= days
    return (ArchiveItem.filed_at - Case.closed_at) <= timedelta(days=days)


def _day_of(column: Any, bounds: list[datetime]) -> Any:
    """The index (0 … DAYS-1) of the local day ``column`` falls in, given the days' UTC starts and the end: a CASE
    over the bounds computed in Python, so the center's time zone is right on both databases."""
    return case(*[(column < end, i) for i, end in enumerate(bounds[1:])], else_=None)


def filings_query(db: Session, principal: Principal, due_days: int, bounds: list[datetime],
                  ) -> Select[Any, str, int, int]:
    """(day index, category, items filed, of them on time) for the items filed within ``bounds``: one range on
    filed_at (0014), grouped outside (a subquery: PostgreSQL would not match a GROUP BY's CASE with other
    parameters to the select's)."""
    rows = (select(_day_of(ArchiveItem.filed_at, bounds).label("day"), ArchiveItem.category.label("category"),
                   cast(case((_within(db, due_days), 1), else_=0), Integer).label("on_time"))
            .join(Case, Case.id == ArchiveItem.case_id)
            .where(ArchiveItem.filed_at >= bounds[0], ArchiveItem.filed_at < bounds[-1], *_branch_filter(principal))
            .subquery())
    return (select(rows.c.day, rows.c.category, func.count(), func.coalesce(func.sum(rows.c.on_time), 0))
            .group_by(rows.c.day, rows.c.category))


def _days(ctx: Context, db: Session, principal: Principal, today: date) -> list[Day]:
    """Filings by day and category, and 归档环节 checks by day: one grouped range query each."""
    days = [today - timedelta(days=back) for back in range(DAYS - 1, -1, -1)]
    bounds = [datetime.combine(d, dtime(0), ctx.zone).astimezone(UTC) for d in days]
    bounds.append(datetime.combine(today + timedelta(days=1), dtime(0), ctx.zone).astimezone(UTC))
    filed: list[dict[str, int]] = [{} for _ in days]
    on_time = [0] * DAYS
    for i, category, n, in_time in db.execute(filings_query(db, principal, ctx.settings.filing_due_days, bounds)):
        filed[i][str(category)] = int(n)
        on_time[i] += int(in_time)
    reports = (select(_day_of(CheckReport.created_at, bounds).label("day"),
                      cast(case((CheckReport.passed.is_(True), 1), else_=0), Integer).label("passed"))
               .where(CheckReport.stage == "gd", CheckReport.created_at >= bounds[0],
                      CheckReport.created_at < bounds[-1]).subquery())
    checks = {int(i): (int(n), int(ok)) for i, n, ok in db.execute(
        select(reports.c.day, func.count(), func.coalesce(func.sum(reports.c.passed), 0)).group_by(reports.c.day))}
    return [Day(d, filed[i], on_time[i], *checks.get(i, (0, 0))) for i, d in enumerate(days)]


def _expiring(db: Session, principal: Principal, today: date) -> list[tuple[int, int]]:
    """Items (still kept) whose 保管期限 ends within 30, 60 and 90 days: one range on expiry_date."""
    sums = [func.coalesce(func.sum(cast(case((ArchiveItem.expiry_date <= today + timedelta(days=w), 1), else_=0),
                                        Integer)), 0) for w in EXPIRY_WINDOWS]
    q = select(*sums).select_from(ArchiveItem).where(
        ArchiveItem.status == ItemStatus.FILED.value, ArchiveItem.expiry_date >= today,
        ArchiveItem.expiry_date <= today + timedelta(days=max(EXPIRY_WINDOWS)))
    if principal.branches is not None:
        q = q.join(Case, Case.id == ArchiveItem.case_id).where(*_branch_filter(principal))
    counts = db.execute(q).one()
    return [(w, int(n or 0)) for w, n in zip(EXPIRY_WINDOWS, counts, strict=True)]


def _copies(ctx: Context, db: Session) -> list[Copy]:
    """Each copy's health now (cheap: a directory probe or a bucket check) and its last finished sweep's figures
    (objects and bytes read: what that copy holds), so storage use costs no listing of the store."""
    health = ctx.store.health()
    parts = [("primary", health["primary"]), ("secondary", health["secondary"])] if "secondary" in health \
        else [("primary", health)]
    out = []
    for name, h in parts:
        sweep = db.scalar(select(StorageSweep).where(StorageSweep.status == SweepStatus.DONE.value,
                                                     StorageSweep.scope.in_((name, "all")))
                          .order_by(StorageSweep.id.desc()).limit(1))
        if sweep is None:
            out.append(Copy(name, str(h.get("backend", "")), bool(h.get("ok")), str(h.get("detail", ""))))
            continue
        share = 2 if sweep.scope == "all" and len(parts) == 2 else 1  # a sweep of both copies read each object twice
        out.append(Copy(name, str(h.get("backend", "")), bool(h.get("ok")), str(h.get("detail", "")),
                        sweep.finished_at or sweep.checkpoint_at, sweep.object_count // share,
                        sweep.byte_count // share, sweep.findings))
    return out


def compute(ctx: Context, db: Session, principal: Principal, now: datetime | None = None) -> Figures:
    """The dashboard's figures for the branches ``principal`` sees (no permission check: the page shows each block
    only to those whose permissions cover it)."""
    now = now or ctx.now()
    today = now.astimezone(ctx.zone).date()
    days = _days(ctx, db, principal, today)
    overdue = db.scalar(select(func.count()).select_from(PaperLoan)
                        .where(PaperLoan.status == PaperLoanStatus.OUT.value, PaperLoan.due_date < today)) or 0
    replica = db.scalar(select(func.count()).select_from(StorageAlert)
                        .where(StorageAlert.code == REPLICA_CHECK, StorageAlert.acknowledged_at.is_(None))) or 0
    categories = sorted({c for d in days for c in d.filed})
    return Figures(now, days, ctx.settings.filing_due_days, scans.unassigned_pages(db, principal), backlog(db),
                   alerts.counts(db), int(replica), int(overdue), _copies(ctx, db), _expiring(db, principal, today),
                   categories)


class Cache:
    """The figures per set of branches, computed at most every ``ARCHIVE_DASHBOARD_CACHE_SECONDS`` (a refresh: at
    most every REFRESH_MIN_SECONDS); one per process, held by the app."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[frozenset[str] | None, tuple[float, Figures]] = {}

    def figures(self, ctx: Context, db: Session, principal: Principal, refresh: bool = False) -> Figures:
        key = principal.branches
        seconds = ctx.settings.dashboard_cache_seconds
        with self._lock:  # one computation at a time: a burst of first requests computes once
            hit = self._entries.get(key)
            age = time.monotonic() - hit[0] if hit else None
            if hit is not None and age is not None and age < (REFRESH_MIN_SECONDS if refresh else seconds):
                return hit[1]
            found = compute(ctx, db, principal)
            self._entries[key] = (time.monotonic(), found)
            return found


def age_text(computed_at: datetime, zone: Any, now: datetime | None = None) -> str:
    """数据更新于 HH:MM（N 分钟前）."""
    minutes = int(((now or datetime.now(UTC)) - computed_at).total_seconds() // 60)
    ago = "不到 1 分钟前" if minutes < 1 else f"{minutes} 分钟前"
    return f"数据更新于 {computed_at.astimezone(zone):%H:%M}（{ago}）"
