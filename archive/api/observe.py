"""Request ids, the access log and request metrics (one ASGI middleware), and ``GET /metrics``.

Every HTTP request gets a request id: the caller's ``X-Request-ID`` when it is sane, else a new one. It is set in
a context variable before anything else runs (so log lines, error bodies and the UI's error page carry it) and
returned in the ``X-Request-ID`` response header. When the response is done, one access line is logged
(logger ``archive.access``): method, route template, status, duration_ms and the caller (``user:name`` or
``client:name``). The path and its query string are never logged: a search by 证件号码 carries it in the query,
and item paths carry 档号.

``/metrics`` answers only clients inside ``ARCHIVE_METRICS_ALLOW`` (CIDRs, default loopback): anyone else gets
403 metrics_forbidden. Behind the reverse proxy, the address is the one uvicorn took from X-Forwarded-For (it
trusts the proxy on 127.0.0.1 only), so a scrape from outside through the proxy is refused too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from archive import logs, metrics
from archive.catalogue.models import StorageSweep
from archive.context import Context
from archive.indexing import backlog

access_log = logging.getLogger("archive.access")


class ObserveMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        incoming = next((v for k, v in scope.get("headers", []) if k == b"x-request-id"), None)
        rid = logs.sane_request_id(incoming.decode("latin-1") if incoming is not None else None)
        # Not reset afterwards: the 500 handler runs outside this middleware (ServerErrorMiddleware) and quotes it;
        # each request runs in its own task, so the value does not leak into another request.
        logs.request_id.set(rid)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", rid.encode("ascii"))]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - start
            route = route_template(scope)
            metrics.observe_request(scope["method"], route, status, seconds)
            access_log.info("%s %s %s", scope["method"], route, status, extra={
                "kind": "access", "method": scope["method"], "route": route, "status": status,
                "duration_ms": round(seconds * 1000, 1), "user": caller_of(scope)})


def route_template(scope: Scope) -> str:
    """The matched route's template (``/api/v1/items/{archival_code}``), never the raw path."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else metrics.UNMATCHED


def caller_of(scope: Scope) -> str | None:
    """``user:name`` or ``client:name`` once a dependency identified the caller (archive/api/deps.py)."""
    state: dict[str, Any] = scope.get("state") or {}
    principal = state.get("principal")
    if principal is None:
        return None
    return f"{getattr(principal, 'kind', '?')}:{getattr(principal, 'name', '?')}"


# --- figures from the catalogue, computed at scrape ----------------------------------------------------------

class CatalogueCollector(Collector):
    """Index outbox backlog and lag, and the latest storage sweep's progress: a few indexed queries a scrape."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        try:
            with self.ctx.catalogue.reading() as r:
                b = backlog(r)
                sweep = r.execute(select(StorageSweep.status, StorageSweep.object_count, StorageSweep.byte_count,
                                         StorageSweep.findings, StorageSweep.checkpoint_at)
                                  .order_by(StorageSweep.id.desc()).limit(1)).first()
        except Exception as exc:  # a scrape must answer even when the catalogue does not
            access_log.warning("metrics: catalogue figures unavailable: %s", type(exc).__name__)
            yield GaugeMetricFamily("archive_catalogue_up", "1 when the catalogue figures could be read.", value=0)
            return
        yield GaugeMetricFamily("archive_catalogue_up", "1 when the catalogue figures could be read.", value=1)
        yield GaugeMetricFamily("archive_index_outbox_pending", "Catalogue changes waiting to reach the search "
                                "index.", value=b.pending)
        yield GaugeMetricFamily("archive_index_outbox_failed", "Outbox rows the index refused too often "
                                "(reported, skipped until a rebuild).", value=b.failed)
        lag = 0.0
        if b.oldest_pending_at is not None:
            oldest = b.oldest_pending_at
            oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
            lag = max(0.0, (datetime.now(UTC) - oldest).total_seconds())
        yield GaugeMetricFamily("archive_index_lag_seconds", "Age of the oldest catalogue change not yet in the "
                                "search index (0: none waiting).", value=lag)
        running = sweep is not None and sweep.status == "running"
        yield GaugeMetricFamily("archive_sweep_running", "1 while the latest storage sweep is running.",
                                value=1 if running else 0)
        if sweep is not None:
            yield GaugeMetricFamily("archive_sweep_objects_checked", "Objects the latest storage sweep has "
                                    "checked so far.", value=sweep.object_count)
            yield GaugeMetricFamily("archive_sweep_bytes_read", "Bytes the latest storage sweep has read so far.",
                                    value=sweep.byte_count)
            yield GaugeMetricFamily("archive_sweep_findings", "Failures the latest storage sweep has found so far.",
                                    value=sweep.findings)
            at = sweep.checkpoint_at if sweep.checkpoint_at.tzinfo else sweep.checkpoint_at.replace(tzinfo=UTC)
            yield GaugeMetricFamily("archive_sweep_last_checkpoint_timestamp_seconds", "When the latest storage "
                                    "sweep last checkpointed (Unix time).", value=at.timestamp())


router = APIRouter(include_in_schema=False)


@router.get("/metrics")
def prometheus_metrics(request: Request) -> Response:
    settings = request.app.state.context.settings
    metrics.require_scraper(request.client.host if request.client else None, settings.metrics_allow)
    return Response(metrics.render(CatalogueCollector(request.app.state.context)), media_type=metrics.CONTENT_TYPE)


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.add_middleware(ObserveMiddleware)
