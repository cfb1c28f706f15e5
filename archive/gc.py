"""Reclaiming orphan objects: stored, but never catalogued (a crash between the two steps of a write).

Objects carry no creation time, so collection takes two passes: a run records each orphan it sees,
and a later run removes those still orphaned after the grace period. An object a filing is storing
right now is thus never taken. Locked objects (an orphan rendition keeps its object lock) stay and
are reported. Only objects the catalogue never referenced are removed: archived content leaves
only through the destruction workflow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import CompoundSelect, delete, select, true, union
from sqlalchemy.orm import Session

from archive import audit
from archive.audit import Actor
from archive.catalogue.models import ArchiveItem, Document, OrphanObject, RenditionVersion, ScanBatch
from archive.catalogue.types import utcnow
from archive.context import Context
from storage.base import ObjectLocked

PREFIXES = ("originals/", "renditions/")


@dataclass
class GcReport:
    seen: int = 0
    marked: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    locked: list[str] = field(default_factory=list)


def referenced(session: Session) -> set[str]:
    q: CompoundSelect[Any] = union(select(Document.original_key), select(ScanBatch.original_key),
              select(ArchiveItem.rendition_key).where(ArchiveItem.rendition_key.is_not(None)),
              select(RenditionVersion.object_key))  # earlier versions of renewed renditions (archive.ltv)
    return {key for key in session.scalars(q) if key is not None}


def collect(ctx: Context, actor: Actor, grace: timedelta, dry_run: bool = False) -> GcReport:
    report = GcReport()
    with ctx.catalogue.session() as s:
        keep = referenced(s)
        orphans = {k for p in PREFIXES for k in ctx.store.list_keys(p) if k not in keep}
        report.seen = len(orphans)
        known = {o.key: o for o in s.scalars(select(OrphanObject))}
        if not dry_run:  # marks of objects that were catalogued (or removed) since
            s.execute(delete(OrphanObject).where(OrphanObject.key.not_in(orphans) if orphans else true()))
        cutoff = utcnow() - grace
        for key in sorted(orphans):
            mark = known.get(key)
            if mark is None:
                report.marked.append(key)
                if not dry_run:
                    s.add(OrphanObject(key=key))
            elif mark.first_seen <= cutoff and not dry_run:
                try:
                    ctx.store.delete(key)
                except ObjectLocked:
                    report.locked.append(key)
                    continue
                s.delete(mark)
                report.removed.append(key)
        if report.removed or report.marked:
            audit.record(s, actor, "storage.gc", outcome="success", detail={
                "removed": report.removed[:100], "marked": len(report.marked), "locked": len(report.locked)})
    return report
