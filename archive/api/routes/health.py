"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from archive.api.deps import context
from archive.checks import alerts
from archive.context import Context
from archive.errors import ERRORS
from archive.indexing import status as index_status

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="进程存活")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _catalogue(ctx: Context) -> dict[str, Any]:
    ctx.catalogue.check_schema()
    return {"backend": ctx.catalogue.engine.dialect.name}


@router.get("/readyz", summary="依赖就绪：目录数据库、对象存储、检索索引；另报存储检测未确认告警",
            responses={503: {"description": "某个依赖不可用"}})
def readyz(ctx: Context = Depends(context)) -> JSONResponse:
    parts: dict[str, dict[str, Any]] = {
        "catalogue": _probe(lambda: _catalogue(ctx)),
        "object_store": _probe(lambda: ctx.store.health()),
        "index": _probe(lambda: index_status(ctx)),  # backend, ok, backlog, failed
        "storage_alerts": _probe(lambda: _alerts(ctx)),  # open findings of the storage sweeps (四性检测 BC)
    }
    # Filing needs neither the index (the outbox holds its work) nor a clean sweep: those degrade, not un-ready.
    ready = all(p["ok"] for name, p in parts.items() if name not in ("index", "storage_alerts"))
    return JSONResponse({"ready": ready, **parts}, status_code=200 if ready else 503)


def _alerts(ctx: Context) -> dict[str, Any]:
    with ctx.catalogue.session() as s:
        found = alerts.counts(s)
    return {"ok": found["open"] == 0, **found}


def _probe(fn: Any) -> dict[str, Any]:
    try:
        info = dict(fn() or {})
        info.setdefault("ok", True)
        return info
    except ERRORS as exc:
        return {"ok": False, "code": exc.code, "detail": exc.message}
    except Exception as exc:  # a readiness probe reports, it never raises
        return {"ok": False, "code": "unavailable", "detail": type(exc).__name__}
