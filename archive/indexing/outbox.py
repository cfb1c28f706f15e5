"""Outbox-driven indexing: catalogue changes reach the search index after they commit.

Filing and every later change call ``enqueue(session, serial)`` inside the catalogue transaction, so an
outbox row exists exactly when the change does. A worker (a thread of ``archive serve`` with the
embedded index, ``archive worker`` in production) takes pending rows in id order, builds each serial's
document from the catalogue as it is *now*, upserts it (or deletes it when the case is gone) and marks
the rows processed. Replaying a row is harmless, so a crash between indexing and marking only repeats
work. When the index is down the rows stay pending with ``last_error``, the worker backs off, and the
backlog drains when the index is back; filing never waits for the index. ``attempts`` counts refusals of
one document (a mapping error): after ``MAX_ATTEMPTS`` the row is reported as failed instead of pending.

One worker at a time: on PostgreSQL ``archive worker`` holds an advisory lock, so a second one waits as a
standby; the embedded index allows one writing process by itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.orm import Session

from archive.catalogue.models import OutboxMessage
from archive.catalogue.types import utcnow
from archive.context import Context
from archive.errors import ERRORS
from archive.indexing import bulk
from archive.indexing.documents import count_cases, load_documents
from search.errors import SearchUnavailable

log = logging.getLogger("archive.indexing")  # the name operators filter on, kept from before the split

TOPIC = "index"
BATCH_SIZE = 200
MAX_ATTEMPTS = 20  # refusals of one document; then the row is "failed": reported, skipped until a rebuild
MAX_BACKOFF_SECONDS = 60.0
ADVISORY_LOCK_KEY = 0x41524348_49445831  # "ARCHIDX1"
REPLAY_MARGIN = timedelta(minutes=1)  # clock skew between worker hosts, replayed after a rebuild
DESTROYED = "destroyed"  # an item's tombstone (销毁): stays in the catalogue, leaves the index


def enqueue(session: Session, serial: str) -> None:
    """Ask for ``serial`` to be (re)indexed once the current catalogue transaction commits."""
    session.add(OutboxMessage(topic=TOPIC, payload={"serial": serial}))


def enqueue_many(session: Session, serials: list[str]) -> None:
    """:func:`enqueue` for several serials in one executemany (an import's chunk)."""
    if serials:
        now = utcnow()
        session.execute(insert(OutboxMessage), [{"topic": TOPIC, "payload": {"serial": serial}, "created_at": now,
                                                 "attempts": 0} for serial in serials])


@dataclass(frozen=True)
class Backlog:
    pending: int
    failed: int
    oldest_pending_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {"backlog": self.pending, "failed": self.failed,
                "oldest_pending_at": self.oldest_pending_at.isoformat() if self.oldest_pending_at else None}


def backlog(session: Session) -> Backlog:
    waiting = (OutboxMessage.topic == TOPIC) & OutboxMessage.processed_at.is_(None)
    pending, oldest = session.execute(
        select(func.count(), func.min(OutboxMessage.created_at))
        .where(waiting & (OutboxMessage.attempts < MAX_ATTEMPTS))).one()
    failed = session.scalar(select(func.count()).where(waiting & (OutboxMessage.attempts >= MAX_ATTEMPTS)))
    return Backlog(int(pending or 0), int(failed or 0), oldest)


@dataclass(frozen=True)
class BatchReport:
    taken: int = 0
    indexed: int = 0
    deleted: int = 0
    refused: int = 0


class IndexWorker:
    """Drains the ``index`` topic of the outbox into ``ctx.index``."""

    def __init__(self, ctx: Context, batch_size: int = BATCH_SIZE) -> None:
        self.ctx = ctx
        self.batch_size = batch_size

    def run_once(self) -> BatchReport:
        """Process one batch; when the index is down, record ``attempts``/``last_error`` and raise."""
        cat = self.ctx.catalogue
        with cat.session() as s:
            rows = s.execute(
                select(OutboxMessage.id, OutboxMessage.payload)
                .where(OutboxMessage.topic == TOPIC, OutboxMessage.processed_at.is_(None),
                       OutboxMessage.attempts < MAX_ATTEMPTS)
                .order_by(OutboxMessage.id).limit(self.batch_size)).all()
        if not rows:
            return BatchReport()
        by_serial: dict[str, list[int]] = {}
        for row_id, payload in rows:
            by_serial.setdefault(str((payload or {}).get("serial", "")), []).append(row_id)
        with cat.session() as s:
            docs = load_documents(s, [k for k in by_serial if k], self.ctx.schedule, self.ctx.zone)
        present = [d for d in docs.values() if d is not None and d.status != DESTROYED]
        gone = [serial for serial, d in docs.items() if d is None or d.status == DESTROYED]
        try:
            refused = self.ctx.index.upsert(present) if present else {}
            if gone:
                self.ctx.index.delete(gone)
        except ERRORS as exc:  # the index as a whole: retried without limit, so the backlog drains later
            self._failed([r[0] for r in rows], f"{exc.code}: {exc.message}", count=False)
            raise
        failed_ids = {i for serial in refused for i in by_serial.get(serial, [])}
        done_ids = [r[0] for r in rows if r[0] not in failed_ids]
        with cat.session() as s:
            if done_ids:
                s.execute(update(OutboxMessage).where(OutboxMessage.id.in_(done_ids))
                          .values(processed_at=utcnow()))
        for serial, reason in refused.items():
            self._failed(by_serial.get(serial, []), reason)
        return BatchReport(len(rows), len(present) - len(refused), len(gone), len(refused))

    def _failed(self, ids: list[int], reason: str, count: bool = True) -> None:
        """Record why rows were not indexed; ``count`` (a document refused on its own) moves them towards failed."""
        if not ids:
            return
        values: dict[str, Any] = {"last_error": reason[:1000]}
        if count:
            values["attempts"] = OutboxMessage.attempts + 1
        with self.ctx.catalogue.session() as s:
            s.execute(update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(**values))

    def drain(self) -> int:
        """Run batches until nothing is pending (tests, ``archive worker --once``); returns rows taken."""
        total = 0
        while (report := self.run_once()).taken:
            total += report.taken
            if report.taken == report.refused:  # only refused rows left in this batch: stop, they are counted
                break
        return total

    def run(self, stop: threading.Event, idle_seconds: float = 1.0) -> None:
        """Loop until ``stop`` is set: poll, index, back off exponentially while the index is down."""
        failures = 0
        with self._single_worker(stop) as acquired:
            if not acquired:
                return
            while not stop.is_set():
                try:
                    report = self.run_once()
                except SearchUnavailable as exc:
                    failures += 1
                    delay = min(MAX_BACKOFF_SECONDS, 2.0 ** min(failures, 6))
                    log.warning("index unavailable (%s), retrying in %.0f s: %s", exc.code, delay, exc.message)
                    stop.wait(delay)
                    continue
                except Exception:  # never let the thread die; the rows stay pending
                    failures += 1
                    log.exception("indexing batch failed")
                    stop.wait(min(MAX_BACKOFF_SECONDS, 2.0 ** min(failures, 6)))
                    continue
                if failures:
                    log.info("index available again")
                failures = 0
                if report.taken < self.batch_size:
                    stop.wait(idle_seconds)

    def _single_worker(self, stop: threading.Event) -> Any:
        """Context manager: on PostgreSQL, wait for the advisory lock that makes this the only worker."""
        @contextmanager
        def held() -> Any:
            engine = self.ctx.catalogue.engine
            if engine.dialect.name != "postgresql":
                yield True
                return
            with engine.connect() as conn:
                announced = False
                while not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY}).scalar():
                    conn.rollback()
                    if not announced:
                        log.info("another index worker is active; waiting as a standby")
                        announced = True
                    if stop.wait(5.0):
                        yield False
                        return
                conn.commit()
                try:
                    yield True
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
                    conn.commit()

        return held()


class WorkerThread:
    """The worker as a daemon thread of ``archive serve`` (embedded set-up)."""

    def __init__(self, ctx: Context, idle_seconds: float = 1.0) -> None:
        self.stop_event = threading.Event()
        self.worker = IndexWorker(ctx)
        self.thread = threading.Thread(target=self.worker.run, args=(self.stop_event, idle_seconds),
                                       name="archive-index-worker", daemon=True)

    def start(self) -> WorkerThread:
        self.thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        self.thread.join(timeout)


def start_worker_thread(ctx: Context, idle_seconds: float = 1.0) -> WorkerThread:
    ctx.index  # noqa: B018 - build the index in this thread, before requests and the worker race for it
    return WorkerThread(ctx, idle_seconds).start()


def rebuild(ctx: Context, progress: Callable[[int], None] | None = None,
            on_total: Callable[[int], None] | None = None) -> int:
    """Rebuild the index from the catalogue and switch to it; changes indexed meanwhile are replayed."""
    started = utcnow() - REPLAY_MARGIN
    if on_total is not None:
        with ctx.catalogue.session() as s:
            on_total(count_cases(s))
    n = ctx.index.rebuild(bulk.documents(ctx.catalogue, ctx.schedule, ctx.zone, exclude_status=DESTROYED,
                                         prepare=ctx.index.bulk_prepare), progress)
    with ctx.catalogue.session() as s:
        # Rows the worker processed into the old index while this ran: do them again on the new one.
        s.execute(update(OutboxMessage)
                  .where(OutboxMessage.topic == TOPIC, OutboxMessage.processed_at >= started)
                  .values(processed_at=None))
        # Failed rows get a fresh start: the rebuild is what an operator runs after fixing the cause.
        s.execute(update(OutboxMessage)
                  .where(OutboxMessage.topic == TOPIC, OutboxMessage.processed_at.is_(None),
                         OutboxMessage.attempts >= MAX_ATTEMPTS)
                  .values(attempts=0))
    return n


def status(ctx: Context) -> dict[str, Any]:
    """Backend facts and the backlog; ``ok`` false (with code and detail) when the index is down."""
    with ctx.catalogue.session() as s:
        out: dict[str, Any] = {"backend": ctx.settings.index, **backlog(s).as_dict()}
    try:
        out.update(ctx.index.health())
        out["ok"] = True
    except ERRORS as exc:
        out.update(ok=False, code=exc.code, detail=exc.message)
    return out
