"""FastAPI application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from archive import __version__, web
from archive.api import docs, errors, observe
from archive.api.routes import (
    admin,
    alerts,
    audit_log,
    auth,
    cases,
    checks,
    dq,
    events,
    health,
    imports,
    items,
    lending,
    reference,
    retention,
    scans,
    search,
    transfer,
)
from archive.context import Context
from archive.settings import Settings, get_settings

DESCRIPTION = """住房公积金电子业务档案系统 API（JGJ/T 495-2022）。

People log in at `/api/v1/auth/login` and send `Authorization: Bearer <token>`; business systems send
their key as `X-API-Key: ak_…`. Every error is JSON `{code, message, detail, request_id}`: `code` is a stable English
identifier for programs, `message` is Chinese text for the person at the counter, `request_id` the id of the request
(also in the `X-Request-ID` response header; a caller may send its own, `[A-Za-z0-9._-]`, at most 64 characters).
"""


def create_app(settings: Settings | None = None, context: Context | None = None) -> FastAPI:
    ctx = context or Context.build(settings or get_settings())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if context is None:
            ctx.close()

    app = FastAPI(title="住房公积金电子业务档案系统", version=__version__, description=DESCRIPTION,
                  lifespan=lifespan, docs_url=None, redoc_url=None)  # docs.install: no CDN
    app.state.context = ctx
    # hot-path requests of this process queue here on SQLite (archive.api.deps.sqlite_turn); PostgreSQL needs none
    app.state.sqlite_turn = asyncio.Lock() if ctx.catalogue.engine.dialect.name == "sqlite" else None
    errors.install(app)
    docs.install(app)
    for module in (health, auth, admin, audit_log, reference, cases, items, scans, search,
                   events, retention, lending, transfer, checks, alerts, dq, imports):
        app.include_router(module.router)
    web.install(app)  # the people's pages under /ui; after errors.install: it wraps those handlers
    observe.install(app)  # request ids, access log, request metrics, /metrics
    return app
