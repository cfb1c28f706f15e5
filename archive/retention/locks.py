"""Extending object locks before they run out (`archive storage extend-locks`).

Filing locks an item's objects until its expiry, or for 永久 items and items waiting for their trigger for
PERMANENT_LOCK_YEARS (periods.lock_end); the signed 销毁清册 is locked for 100 years. A store may keep no lock
date that late: Ceph RGW stores retain-until in 32 bits, so S3Store caps locks at ARCHIVE_S3_MAX_RETAIN_UNTIL
(2106-01-01). Such a lock must be renewed before it ends, and any lock can fall short of what the catalogue now
wants (a cap raised after moving to a server that keeps later dates). This walks the catalogue and extends every
object whose lock ends within ``within_years`` to what its item wants, capped at the store's limit; it reports
locks that cannot be extended (already at the limit) and end within that window, which need a store that keeps
later dates. Locks are only ever extended.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from archive import audit
from archive.audit import Actor
from archive.catalogue.models import ArchiveItem, DestructionList
from archive.context import Context
from archive.retention.destruction import PDF_LOCK_YEARS
from archive.retention.holds import item_objects
from archive.retention.schedules import lock_until
from storage.base import ObjectNotFound

PAGE = 500  # items read per catalogue transaction; the store is asked outside it


@dataclass
class LockReport:
    objects: int = 0
    extended: list[tuple[str, datetime]] = field(default_factory=list)
    at_limit: list[tuple[str, datetime]] = field(default_factory=list)  # capped, ending within the window
    missing: list[str] = field(default_factory=list)
    limit: datetime | None = None


def wanted_locks(ctx: Context) -> Iterator[tuple[str, datetime]]:
    """(key, lock end the catalogue wants) for every object of every live item and every signed destruction list;
    a key shared by items gets the latest. Read page by page, each page in its own short transaction."""
    after = 0
    while True:
        with ctx.catalogue.session() as s:
            items = list(s.scalars(select(ArchiveItem).options(joinedload(ArchiveItem.case))
                                   .where(ArchiveItem.id > after, ArchiveItem.status != "destroyed")
                                   .order_by(ArchiveItem.id).limit(PAGE)))
            if not items:
                break
            objects = item_objects(s, [i.id for i in items])
            page: dict[str, datetime] = {}
            for item in items:
                until = lock_until(item, ctx.zone)
                for key in objects.get(item.id, ()):
                    page[key] = max(until, page.get(key, until))
            after = items[-1].id
        yield from sorted(page.items())
    with ctx.catalogue.session() as s:
        lists = s.execute(select(DestructionList.pdf_key, DestructionList.approved_at)
                          .where(DestructionList.pdf_key.is_not(None))).all()
    for pdf_key, approved in lists:
        if pdf_key and approved:
            yield pdf_key, datetime(approved.year + PDF_LOCK_YEARS, 1, 1, tzinfo=UTC)


def extend_locks(ctx: Context, actor: Actor, *, within_years: int = 10, dry_run: bool = False,
                 now: datetime | None = None) -> LockReport:
    """Extend every lock ending within ``within_years`` that is shorter than its item wants (capped by the store)."""
    now = now or datetime.now(UTC)
    horizon = now.replace(year=now.year + within_years) if not (now.month == 2 and now.day == 29) else \
        now.replace(year=now.year + within_years, day=28)
    store = ctx.store
    report = LockReport(limit=store.retain_limit())
    for key, wanted in wanted_locks(ctx):
        report.objects += 1
        try:
            current = store.stat(key).retain_until
        except ObjectNotFound:
            report.missing.append(key)  # the sweep (BC-2-2) reports it; nothing to lock
            continue
        target = store.capped(wanted)
        if target <= now or (current is not None and current > horizon):
            continue
        if current is None or current < target:
            if not dry_run:
                store.set_retention(key, target)
            report.extended.append((key, target))
            current = target
        if wanted > target and current <= horizon:
            report.at_limit.append((key, current))
    if not dry_run and (report.extended or report.at_limit):
        with ctx.catalogue.session() as s:
            audit.record(s, actor, "storage.extend", detail={
                "objects": report.objects, "extended": len(report.extended), "at_limit": len(report.at_limit),
                "within_years": within_years, "limit": report.limit.isoformat() if report.limit else None,
                "keys": [k for k, _ in report.extended[:100]]})
    return report
