"""Access to archive items by business systems and people: 利用登记, rate limits, watermark policy.

Every read of an archive item (its data, a page image, the original, the rendition, the verification
report, the package) is registered as an audit event ``access.read`` in the hash-chained audit log,
inside the request's transaction (page images: group-committed by :class:`AccessWriter`, the answer sent only once
its event is committed): who (person or business system), which item (档号, or the
业务流水号 while the case is not filed yet), what was read, the purpose the caller gave in the
``X-Purpose`` header, and when. Archivists and auditors list them at ``GET /api/v1/access-events``.

Rate limits are a token bucket per API client. On PostgreSQL the bucket is a row of ``api_rate_bucket`` taken
with one atomic upsert, so every API process and host counts against the same limit (``archive serve --workers N``
behind one address, or several hosts behind a load balancer); on SQLite (one process) it lives in memory. The
rate and burst come from ``ARCHIVE_API_RATE`` (requests per second, default 300) and ``ARCHIVE_API_BURST``
(default twice the rate); ``ARCHIVE_WATERMARK_CLIENTS`` lists the clients (comma-separated names, or ``*``) whose page
images carry a watermark with the caller and the time.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import queue
import threading
import time
from concurrent.futures import Future, InvalidStateError
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from pydantic import BaseModel
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from archive import audit
from archive.audit import Actor
from archive.catalogue.models import AuditEvent, Case
from archive.errors import ArchiveError, InvalidInput, ServiceUnavailable
from archive.permissions import Principal
from archive.settings import Settings

ACTION = "access.read"
PURPOSE_HEADER = "X-Purpose"
MAX_PURPOSE = 200
WHAT = ("data", "page", "original", "rendition", "verification", "package")


# --- 利用登记 ------------------------------------------------------------------------------------

def purpose_of(raw: str | None) -> str | None:
    """The purpose as the caller wrote it: URL-encoded UTF-8 (``%E6%A0%B8…``) or raw UTF-8 bytes."""
    if raw is None or not raw.strip():
        return None
    text = raw
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):  # Starlette decodes headers as Latin-1
        text = raw.encode("latin-1").decode("utf-8")
    text = unquote(text).strip()
    if len(text) > MAX_PURPOSE:
        raise InvalidInput(f"利用目的（{PURPOSE_HEADER}）不能超过 {MAX_PURPOSE} 个字符", code="purpose_too_long",
                           detail={"header": PURPOSE_HEADER, "max": MAX_PURPOSE})
    return text


def record_access(session: Session, principal: Principal, case: Case, what: str, purpose: str | None,
                  **detail: Any) -> AuditEvent | None:
    """Register one read of the case's archive item; a case not filed yet is no archive item (None)."""
    item = case.item
    if item is None:
        return None
    body: dict[str, Any] = {"what": what, "purpose": purpose, "serial": case.serial, "branch": case.branch}
    body.update({k: v for k, v in detail.items() if v is not None})
    return audit.record(session, Actor.of(principal), ACTION,
                        target_type="item", target_id=item.archival_code, detail=body)


class EventOut(BaseModel):
    """One event of a case's history, without personal data (the detail is left out)."""

    seq: int
    at: datetime
    action: str
    actor: str
    actor_type: str
    outcome: str


def case_events(session: Session, case: Case, limit: int = 200, *, newest: bool = False) -> list[EventOut]:
    """The audit events about the case and its item, oldest first (access events included); ``newest``: the
    latest ``limit`` of them, newest first (a much-read item's page shows its recent history)."""
    targets = [case.serial] + ([case.item.archival_code] if case.item else [])
    rows = session.scalars(select(AuditEvent).where(AuditEvent.target_id.in_(targets))
                           .order_by(AuditEvent.seq.desc() if newest else AuditEvent.seq).limit(limit))
    return [EventOut(seq=e.seq, at=e.at, action=e.action, actor=e.actor, actor_type=e.actor_type,
                     outcome=e.outcome) for e in rows]


class AccessEventOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    actor_type: str
    target_type: str | None
    target_id: str | None
    what: str | None
    purpose: str | None
    serial: str | None
    detail: dict[str, Any]


def list_access(session: Session, *, target: str | None = None, actor: str | None = None,
                since: datetime | None = None, limit: int = 100, offset: int = 0) -> tuple[int, list[AccessEventOut]]:
    q = select(AuditEvent).where(AuditEvent.action == ACTION)
    if target:
        q = q.where(AuditEvent.target_id == target)
    if actor:
        q = q.where(AuditEvent.actor == actor)
    if since:
        q = q.where(AuditEvent.at >= since)
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    rows = session.scalars(q.order_by(AuditEvent.seq.desc()).limit(limit).offset(offset))
    return total, [AccessEventOut(seq=e.seq, at=e.at, actor=e.actor, actor_type=e.actor_type,
                                  target_type=e.target_type, target_id=e.target_id, what=e.detail.get("what"),
                                  purpose=e.detail.get("purpose"), serial=e.detail.get("serial"),
                                  detail=e.detail) for e in rows]


# --- rate limits ---------------------------------------------------------------------------------

class RateLimited(ArchiveError):
    kind = "rate_limited"
    code = "rate_limited"

    def __init__(self, retry_after: int, rate: float) -> None:
        super().__init__(f"请求过于频繁：每个接入系统每秒最多 {rate:g} 次请求，请 {retry_after} 秒后重试",
                         detail={"retry_after": retry_after, "rate_per_second": rate})
        self.retry_after = retry_after


class RateLimiter:
    """A token bucket per key: ``rate`` tokens a second, at most ``burst`` saved up (in this process)."""

    shared = False

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate, self.burst = rate, burst if burst is not None else 2 * rate
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> None:
        """Take one token or raise :class:`RateLimited` saying when the next one is there."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                raise RateLimited(max(1, math.ceil((1 - tokens) / self.rate)), self.rate)
            self._buckets[key] = (tokens - 1, now)


class SharedRateLimiter:
    """The token bucket of :class:`RateLimiter` kept in the catalogue (PostgreSQL): one upsert per request.

    Why not rate/N per process: a business system on one keep-alive connection lands on one process and would get
    only rate/N, and nobody knows N across hosts. The row lock serialises one client's requests for the length of
    one tiny, WAL-less (unlogged) update; different clients never wait on each other. Refill uses the database's
    clock, the one clock all hosts share.
    """

    shared = True

    def __init__(self, engine: Engine, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.engine = engine
        self.rate, self.burst = rate, burst if burst is not None else 2 * rate

    def take(self, key: str, now: float | None = None) -> None:
        """Take one token or raise :class:`RateLimited` (blocking: call it from a worker thread)."""
        with self.engine.begin() as conn:
            ok, tokens = conn.execute(_TAKE, {"key": key[:100], "rate": self.rate, "burst": self.burst}).one()
        if not ok:
            raise RateLimited(max(1, math.ceil((1 - tokens) / self.rate)), self.rate)


_REFILLED = "LEAST(:burst, b.tokens + GREATEST(0, EXCLUDED.at - b.at) * :rate)"
_TAKE = text(f"""
INSERT INTO api_rate_bucket AS b (key, tokens, at, ok)
VALUES (:key, :burst - 1, extract(epoch from clock_timestamp()), true)
ON CONFLICT (key) DO UPDATE SET
    tokens = CASE WHEN {_REFILLED} >= 1 THEN {_REFILLED} - 1 ELSE {_REFILLED} END,
    ok = {_REFILLED} >= 1,
    at = EXCLUDED.at
RETURNING ok, tokens
""")


def limiter_from_settings(settings: Settings, engine: Engine | None = None) -> RateLimiter | SharedRateLimiter:
    """Shared in the catalogue on PostgreSQL, else (SQLite: one process) in memory."""
    if engine is not None and engine.dialect.name == "postgresql":
        return SharedRateLimiter(engine, settings.api_rate, settings.api_burst)
    return RateLimiter(settings.api_rate, settings.api_burst)


def watermarked(principal: Principal, settings: Settings) -> bool:
    """Whether page images for this caller carry a watermark (``ARCHIVE_WATERMARK_CLIENTS``)."""
    names = set(settings.watermark_clients)
    return principal.kind == "client" and ("*" in names or principal.name in names)


# --- group commit of access events (the page-image hot path) --------------------------------------

class AccessWriter:
    """Writes access events for many concurrent requests in one transaction (group commit).

    A request hands its event over and waits until the batch holding it is committed, so a response
    is still never sent before its access event is stored (a process killed at any moment loses only
    events whose requests got no answer); but the audit chain's head is locked once per batch instead of
    once per request, which under load is the difference between a queue of requests waiting on one row
    lock and none. Events enter the chain in the order they were handed over. The queue is bounded: when
    :data:`MAX_QUEUE` events wait, a request is answered 503 at once rather than held. The request must
    have ended its own transaction first.
    """

    MAX_BATCH = 500
    MAX_QUEUE = 5000
    TIMEOUT = 30.0
    LINGER = 0.002  # seconds the writer waits after the first event for others to join its batch

    def __init__(self, catalogue: Any) -> None:
        self._catalogue = catalogue
        self._queue: queue.Queue[tuple[dict[str, Any], Future[None]]] = queue.Queue(self.MAX_QUEUE)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def write(self, principal: Principal, case: Case, what: str, purpose: str | None, **detail: Any) -> None:
        """Register the read and wait until it is committed (503 if it cannot be)."""
        self.wait(self.submit(principal, case, what, purpose, **detail))

    def submit(self, principal: Principal, case: Case, what: str, purpose: str | None,
               **detail: Any) -> Future[None] | None:
        """Hand the read over; the future is done once it is committed. None: the case is no archive item yet."""
        item = case.item
        if item is None:
            return None
        body: dict[str, Any] = {"what": what, "purpose": purpose, "serial": case.serial, "branch": case.branch}
        body.update({k: v for k, v in detail.items() if v is not None})
        done: Future[None] = Future()
        try:
            self._queue.put_nowait(({"actor": Actor.of(principal), "target_id": item.archival_code,
                                     "detail": body}, done))
        except queue.Full:
            raise ServiceUnavailable("利用登记繁忙，请稍后重试", code="access_register_busy",
                                     detail={"waiting": self.MAX_QUEUE}) from None
        self._ensure_thread()
        return done

    def wait(self, done: Future[None] | None) -> None:
        """Block until the submitted read is committed."""
        if done is None:
            return
        try:
            done.result(timeout=self.TIMEOUT)
        except Exception as exc:
            raise _unavailable() from exc

    async def registered(self, done: Future[None] | None) -> None:
        """:meth:`wait` on the event loop: no worker thread is held while the batch commits."""
        if done is None:
            return
        try:
            await asyncio.wait_for(asyncio.wrap_future(done), self.TIMEOUT)
        except Exception as exc:
            raise _unavailable() from exc

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="access-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                batch = [self._queue.get(timeout=60)]
            except queue.Empty:
                with self._lock:  # idle: end; the next write starts a new thread
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            time.sleep(self.LINGER)  # a bigger batch: the per-transaction cost is shared by more requests
            while len(batch) < self.MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                with self._catalogue.engine.begin() as conn:  # Core: no unit of work to keep
                    audit.record_many(conn, [(event["actor"], ACTION, "item", event["target_id"], event["detail"])
                                          for event, _ in batch])
            except Exception as exc:  # every waiting request answers 503; the writer goes on
                for _, done in batch:
                    _settle(done, exc)
                continue
            for _, done in batch:
                _settle(done, None)


def _settle(done: Future[None], exc: Exception | None) -> None:
    """Tell the request its event's outcome, unless it stopped waiting (a client gone: the event stands)."""
    with contextlib.suppress(InvalidStateError):
        if exc is None:
            done.set_result(None)
        else:
            done.set_exception(exc)


def _unavailable() -> ServiceUnavailable:
    return ServiceUnavailable("利用登记暂时无法写入，请稍后重试", code="access_register_unavailable")
