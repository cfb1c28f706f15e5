"""Storage sweeps (长期保存环节检测): the BC check items over every stored object, resumable and rate-limited.

A sweep walks the union of the catalogue's object keys and the store's listing in ascending key order,
in batches of ``checkpoint_every`` keys. For each batch it reads and digests every copy of every
catalogued object on a thread pool (SHA-256 and SM3 come from OpenSSL through hashlib, which releases
the GIL on buffers over 2 KiB, so the threads hash on every core), runs the BC items on the batch,
then in one short transaction raises alerts for the findings and moves the sweep's cursor. A killed
or failed sweep resumes after its cursor; the whole-store items (inventory, audit chain) run when
the walk is complete, and the results go into a check report.

No transaction is open while objects are read: on SQLite every transaction holds the write lock.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any, Literal

from sqlalchemy import select

from archive import audit, leases, ltv
from archive.audit import Actor
from archive.catalogue.models import StorageSweep
from archive.catalogue.types import utcnow
from archive.checks import alerts, bc
from archive.checks.base import CheckItem, Outcome, Result, Stage, items_of, run_items
from archive.checks.reports import save_report
from archive.context import Context
from archive.errors import ERRORS, Conflict, InvalidInput, NotFound
from signing.fixity import CHUNK, Hasher
from storage.base import ObjectNotFound, ObjectStore
from storage.replicated import ReplicatedStore

Scope = Literal["primary", "secondary", "all"]
Tier = Literal["originals", "renditions", "all"]
TIERS: dict[str, tuple[str, ...]] = {"originals": ("originals",), "renditions": ("renditions",),
                                     "all": ("originals", "renditions")}
KEPT_FAILURES = 200  # failed results per item kept for the report; all of them are alerts
UNFINISHED = ("running", "paused", "failed")
LEASE = timedelta(minutes=10)  # a sweep run elsewhere with no checkpoint for this long is taken as dead


@dataclass(frozen=True)
class SweepOptions:
    scope: Scope = "all"
    tier: Tier = "all"
    limit: int | None = None  # objects this run; the sweep pauses after them (resume to go on)
    rate_mb: float | None = None  # MB/s read, None: the setting (0 = unlimited)
    workers: int | None = None  # hashing threads, None: the setting (0 = one per core)
    checkpoint_every: int | None = None
    signature_every: int | None = None  # validate signatures of 1/N renditions per sweep


Progress = Callable[[StorageSweep], None]


# --- copies, keys, reading ----------------------------------------------------------------------

def copies_of(store: ObjectStore, scope: str) -> list[tuple[str, ObjectStore]]:
    """The copies a sweep of ``scope`` reads: both halves of a replicated store, or the one store."""
    if scope not in ("primary", "secondary", "all"):
        raise InvalidInput(f"检测范围 {scope!r} 不存在；可选 primary（主副本）、secondary（备副本）、all（全部）",
                           code="invalid_sweep_scope", detail={"scope": scope})
    if isinstance(store, ReplicatedStore):
        return [c for c in store.copies if scope in ("all", c[0])]
    if scope == "secondary":
        raise InvalidInput("当前对象存储没有配置备副本（ARCHIVE_STORAGE=replicated），不能只检测备副本",
                           code="no_replica", detail={"scope": scope, "backend": store.backend})
    return [("store", store)]


def _keys(expected: list[str], copies: list[tuple[str, ObjectStore]], tiers: tuple[str, ...],
          cursor: str | None) -> Iterator[tuple[str, set[str]]]:
    """Every key after ``cursor``, ascending, with the copies whose listing holds it."""
    def listed(name: str, store: ObjectStore) -> Iterator[tuple[str, str | None]]:
        for tier in tiers:
            for key in store.list_keys(tier + "/"):
                if cursor is None or key > cursor:
                    yield key, name

    catalogued = ((k, None) for k in expected if cursor is None or k > cursor)
    merged = heapq.merge(catalogued, *(listed(n, s) for n, s in copies), key=lambda kv: kv[0])
    for key, group in groupby(merged, key=lambda kv: kv[0]):
        yield key, {name for _, name in group if name is not None}


class RateLimiter:
    """Spread reads to at most ``rate`` bytes a second across all hashing threads."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate or None
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def take(self, n: int) -> None:
        if self.rate is None:
            return
        with self._lock:
            now = time.monotonic()
            start = max(self._next, now)
            self._next = start + n / self.rate
        if start > now:
            time.sleep(start - now)


def probe(store: ObjectStore, key: str, limiter: RateLimiter) -> bc.Probe:
    """Read one copy of an object to its end and digest it."""
    try:
        h = Hasher()
        with store.get(key) as f:
            while chunk := f.read(CHUNK):
                limiter.take(len(chunk))
                h.update(chunk)
        return bc.Probe(h.digests())
    except ObjectNotFound:
        return bc.Probe(None, "missing")
    except ERRORS as exc:
        return bc.Probe(None, "unreadable", exc.message)
    except OSError as exc:
        return bc.Probe(None, "unreadable", exc.strerror or str(exc))


def signature_due(sweep_id: int, every: int) -> Callable[[str], bool]:
    """Whether a rendition's signature is validated in this sweep: each one once in ``every`` sweeps."""
    def due(key: str) -> bool:
        return every <= 1 or int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % every == sweep_id % every
    return due


# --- the sweep ----------------------------------------------------------------------------------

def run_sweep(ctx: Context, actor: Actor, options: SweepOptions | None = None, *, resume: bool | int = False,
              on_progress: Progress | None = None) -> StorageSweep:
    """Run a sweep and return its row.

    ``resume``: True goes on with the latest unfinished sweep of the same scope and tier (or starts one when
    there is none), an id goes on with that sweep (its scope and tier).
    """
    options = options or SweepOptions()
    if options.tier not in TIERS:
        raise InvalidInput(f"对象类别 {options.tier!r} 不存在；可选 originals（原件）、renditions（归档版式文件）、all",
                           code="invalid_sweep_tier", detail={"tier": options.tier})
    if options.limit is not None and options.limit < 1:
        raise InvalidInput("--limit 至少为 1", code="invalid_sweep_limit", detail={"limit": options.limit})
    if options.rate_mb is not None and options.rate_mb < 0:
        raise InvalidInput("--rate 不能为负（0 表示不限速）", code="invalid_sweep_rate",
                           detail={"rate": options.rate_mb})
    settings = ctx.settings
    sweep = _resume(ctx, actor, resume, options) if resume is not False else None
    sweep = sweep or _start(ctx, actor, options)
    copies = copies_of(ctx.store, sweep.scope)
    tiers = TIERS[sweep.tier]
    rate = settings.sweep_rate_mb if options.rate_mb is None else options.rate_mb
    limiter = RateLimiter(rate * 1_000_000 if rate else None)
    workers = options.workers or settings.sweep_workers or os.cpu_count() or 1
    batch_size = options.checkpoint_every or settings.sweep_checkpoint_every
    every = int(sweep.options.get("signature_every") or settings.sweep_signature_every)
    subject = bc.StorageSubject(ctx, copies, replicated=len(copies) > 1, tiers=tiers,
                                signature_due=signature_due(sweep.id, every))
    items = [i for i in items_of(Stage.STORAGE) if not getattr(i, "manual", False)]  # manual: a person records
    try:
        with ctx.catalogue.sessions() as s:
            subject.expected = bc.load_expected(s, tiers)
        keys = _keys(sorted(subject.expected), copies, tiers, sweep.cursor)
        taken = 0

        def next_batch() -> list[tuple[str, set[str]]]:
            nonlocal taken
            room = batch_size if options.limit is None else min(batch_size, options.limit - taken)
            batch = [kv for _, kv in zip(range(max(room, 0)), keys, strict=False)]
            taken += len(batch)
            return batch

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sweep") as pool:
            # The next batch is read while this one's items run and its checkpoint commits.
            pending = _read(pool, next_batch(), subject.expected, copies, limiter)
            while pending.batch:
                following = _read(pool, next_batch(), subject.expected, copies, limiter)
                subject.keys = [k for k, _ in pending.batch]
                subject.listed = dict(pending.batch)
                subject.probes = {task: f.result() for task, f in pending.futures.items()}
                read = sum(p.digests.size for p in subject.probes.values() if p.digests is not None)
                sweep = _checkpoint(ctx, actor, sweep.id, run_items(items, subject), cursor=subject.keys[-1],
                                    objects=len(pending.batch), read=read)
                if on_progress:
                    on_progress(sweep)
                pending = following
            if options.limit is not None and taken >= options.limit and _more(keys):
                return _pause(ctx, actor, sweep.id)
        subject.keys, subject.listed, subject.probes, subject.final = [], {}, {}, True
        subject.tally = sweep.tally
        sweep = _checkpoint(ctx, actor, sweep.id, run_items(items, subject), cursor=sweep.cursor, objects=0, read=0)
        sweep = _finish(ctx, actor, sweep.id)
        if "renditions" in tiers:
            ltv.sweep_step(ctx, actor)  # renew the archive time stamps that are due (never fails the sweep)
        return sweep
    except BaseException as exc:
        _fail(ctx, actor, sweep.id, exc)
        raise


@dataclass
class _Reading:
    batch: list[tuple[str, set[str]]]
    futures: dict[tuple[str, str], Future[bc.Probe]]  # (copy, key) -> its probe


def _read(pool: ThreadPoolExecutor, batch: list[tuple[str, set[str]]], expected: dict[str, bc.Expected],
          copies: list[tuple[str, ObjectStore]], limiter: RateLimiter) -> _Reading:
    """Start reading every copy of the batch's live catalogued objects on the pool."""
    futures = {}
    for key, _ in batch:
        e = expected.get(key)
        if e is not None and not e.destroyed:
            for name, store in copies:
                futures[(name, key)] = pool.submit(probe, store, key, limiter)
    return _Reading(batch, futures)


def _more(keys: Iterator[tuple[str, set[str]]]) -> bool:
    return next(keys, None) is not None


def _start(ctx: Context, actor: Actor, options: SweepOptions) -> StorageSweep:
    copies_of(ctx.store, options.scope)  # refuse a scope the store lacks before writing anything
    with ctx.catalogue.session() as s:
        sweep = StorageSweep(scope=options.scope, tier=options.tier, status="running", cursor=None, object_count=0,
                             byte_count=0, findings=0, tally={}, started_by=actor.name, options={
                                 "signature_every": options.signature_every or ctx.settings.sweep_signature_every,
                                 "rate_mb": options.rate_mb, "limit": options.limit, **_owner()})
        s.add(sweep)
        s.flush()
        audit.record(s, actor, "check.sweep.start", target_type="sweep", target_id=sweep.id,
                     detail={"scope": sweep.scope, "tier": sweep.tier, "backend": ctx.store.backend})
    return sweep


def _owner() -> dict[str, Any]:
    return leases.owner()


def _resume(ctx: Context, actor: Actor, which: bool | int, options: SweepOptions) -> StorageSweep | None:
    """The unfinished sweep to go on with: sweep ``which``, or (True) the latest of the same scope and tier.

    None when ``which`` is True and there is none: the caller starts a new sweep.
    """
    with ctx.catalogue.session() as s:
        q = select(StorageSweep).where(StorageSweep.status.in_(UNFINISHED))
        if which is True:
            q = q.where(StorageSweep.scope == options.scope, StorageSweep.tier == options.tier)
        else:
            q = q.where(StorageSweep.id == which)
        sweep = s.scalar(q.order_by(StorageSweep.id.desc()).limit(1).with_for_update())
        if sweep is None:
            if which is True:
                return None
            raise NotFound(f"没有可继续的存储检测（编号 {which}）：它不存在或已完成；请不带 --sweep 开始新的检测",
                           code="sweep_not_resumable", detail={"sweep": which})
        if sweep.status == "running" and _alive(sweep.options, sweep.checkpoint_at):
            raise Conflict(f"存储检测 {sweep.id} 仍在由进程 {sweep.options.get('pid')} 运行，不能同时继续",
                           code="sweep_running", detail={"sweep": sweep.id})
        sweep.status, sweep.error, sweep.options = "running", None, {**sweep.options, **_owner()}
        sweep.checkpoint_at = utcnow()  # renews the lease for the new owner
        audit.record(s, actor, "check.sweep.resume", target_type="sweep", target_id=sweep.id,
                     detail={"cursor": sweep.cursor, "objects": sweep.object_count})
    return sweep


def _alive(owner: dict[str, Any], checkpoint_at: datetime) -> bool:
    return leases.alive(owner, checkpoint_at, LEASE)


def _checkpoint(ctx: Context, actor: Actor, sweep_id: int, results: list[tuple[CheckItem, Result]], *,
                cursor: str | None, objects: int, read: int) -> StorageSweep:
    """Raise the batch's alerts and move the cursor past it, in one transaction."""
    with ctx.catalogue.session() as s:
        sweep = s.scalar(select(StorageSweep).where(StorageSweep.id == sweep_id).with_for_update())
        assert sweep is not None
        alerts.raise_alerts(s, actor, results, sweep_id)
        tally = dict(sweep.tally)
        for item, r in results:
            tally[item.code] = _count(tally.get(item.code), r)
        failures = sum(1 for _, r in results if r.outcome in (Outcome.FAILED, Outcome.ERROR))
        sweep.tally, sweep.cursor, sweep.checkpoint_at = tally, cursor, utcnow()
        sweep.object_count += objects
        sweep.byte_count += read
        sweep.findings += failures
    return sweep


def _count(t: dict[str, Any] | None, r: Result) -> dict[str, Any]:
    """Add one result to an item's running tally (kept on the sweep row, so a resumed sweep reports all)."""
    t = dict(t or {"checked": 0, "failed": 0, "failures": [], "note": None})
    if r.target is None:  # a summary: what the item looked at in this batch
        t["checked"] += int(r.data.get("checked", 0))
        for group, numbers in r.data.get("counts", {}).items():  # per-batch counts an item sums up
            counts = t.get("counts") or {}
            mine = counts.get(group) or {}
            t["counts"] = {**counts, group: {k: mine.get(k, 0) + n for k, n in numbers.items()}}  # no in-place edit
    if r.outcome in (Outcome.FAILED, Outcome.ERROR):
        t["failed"] += 1
        if len(t["failures"]) < KEPT_FAILURES:
            t["failures"] = [*t["failures"], {"outcome": r.outcome.value, "detail": r.detail, "target": r.target,
                                              "data": r.data}]
    elif r.target is None and r.detail:
        t["note"] = {"outcome": r.outcome.value, "detail": r.detail, "what": r.data.get("what")}
    return t


def report_results(items: list[CheckItem], tally: dict[str, Any]) -> list[tuple[CheckItem, Result]]:
    """The sweep's results as one report: each item's findings, or one line saying what passed."""
    out: list[tuple[CheckItem, Result]] = []
    for item in items:
        t = tally.get(item.code)
        if getattr(item, "manual", False):
            out.append((item, Result(Outcome.MANUAL, "人工待检：由检测人员通过接口登记结果")))
            continue
        if t is None:
            out.append((item, Result(Outcome.NOT_APPLICABLE, "本次检测的对象类别不涉及此项")))
            continue
        for f in t["failures"]:
            out.append((item, Result(Outcome(f["outcome"]), f["detail"], f["target"], f["data"])))
        if t["failed"] > len(t["failures"]):
            out.append((item, Result(Outcome.FAILED, f"另有 {t['failed'] - len(t['failures'])} 项不通过未列出，"
                                                     "见告警列表", data={"failed": t["failed"]})))
        if t["failed"]:
            continue
        note = t.get("note") or {}
        if note.get("outcome") == Outcome.NOT_APPLICABLE.value and not t["checked"]:
            out.append((item, Result(Outcome.NOT_APPLICABLE, note.get("detail", ""))))
        elif note.get("what"):
            out.append((item, Result(Outcome.PASSED, f"检测{note['what']} {t['checked']} 个，全部通过",
                                     data={"checked": t["checked"]})))
        else:
            out.append((item, Result(Outcome.PASSED, note.get("detail", "通过"), data={"checked": t["checked"]})))
    return out


def _finish(ctx: Context, actor: Actor, sweep_id: int) -> StorageSweep:
    def close(with_report: bool) -> StorageSweep:
        with ctx.catalogue.session() as s:
            sweep = s.scalar(select(StorageSweep).where(StorageSweep.id == sweep_id).with_for_update())
            assert sweep is not None
            if with_report:
                report = save_report(s, actor, Stage.STORAGE, f"storage:{sweep.scope}/{sweep.tier}",
                                     report_results(items_of(Stage.STORAGE), sweep.tally), sweep_id=sweep.id,
                                     backend=ctx.store.backend, objects=sweep.object_count, bytes=sweep.byte_count)
                sweep.report_id = report.id
            sweep.status, sweep.finished_at = "done", utcnow()
            audit.record(s, actor, "check.sweep.finish", target_type="sweep", target_id=sweep.id,
                         outcome="success" if not sweep.findings else "failure",
                         detail={"objects": sweep.object_count, "bytes": sweep.byte_count,
                                 "findings": sweep.findings, "report": sweep.report_id})
        return sweep

    try:
        return close(with_report=True)
    except NotImplementedError:  # reports not available yet: the sweep row and alerts still hold it all
        return close(with_report=False)


def _pause(ctx: Context, actor: Actor, sweep_id: int) -> StorageSweep:
    with ctx.catalogue.session() as s:
        sweep = s.get(StorageSweep, sweep_id)
        assert sweep is not None
        sweep.status = "paused"
        audit.record(s, actor, "check.sweep.pause", target_type="sweep", target_id=sweep.id,
                     detail={"cursor": sweep.cursor, "objects": sweep.object_count})
    return sweep


def _fail(ctx: Context, actor: Actor, sweep_id: int, exc: BaseException) -> None:
    """Mark the sweep failed (resumable from its last checkpoint); never hide the original error."""
    try:
        with ctx.catalogue.session() as s:
            sweep = s.get(StorageSweep, sweep_id)
            if sweep is not None and sweep.status == "running":
                sweep.status, sweep.error = "failed", f"{type(exc).__name__}: {exc}"[:2000]
                audit.record(s, actor, "check.sweep.fail", target_type="sweep", target_id=sweep_id,
                             outcome="failure", detail={"error": sweep.error, "cursor": sweep.cursor})
    except Exception:  # the database may be what failed; the row stays "running" and --resume still works
        pass


def sweep_dict(sweep: StorageSweep) -> dict[str, Any]:
    keys = ("id", "scope", "tier", "status", "cursor", "object_count", "byte_count", "findings", "report_id",
            "error", "started_by", "started_at", "checkpoint_at", "finished_at")
    return {k: getattr(sweep, k) for k in keys}

