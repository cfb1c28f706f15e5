"""Liveness and readiness."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from archive.api.deps import context
from archive.checks import alerts
from archive.context import Context
from archive.errors import ERRORS, ServiceUnavailable
from archive.indexing import status as index_status
from archive.settings import Settings
from archive.signer_status import readiness as signer_readiness

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)

TSA_PROBE_SECONDS = 10.0  # a TSA probe's answer is reused this long, so /readyz stays cheap
LABELS = {"catalogue": "目录数据库", "object_store": "对象存储", "signer": "签章证书", "tsa": "时间戳服务"}


@router.get("/healthz", summary="进程存活")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _catalogue(ctx: Context) -> dict[str, Any]:
    ctx.catalogue.check_schema()
    return {"backend": ctx.catalogue.engine.dialect.name}


@router.get("/readyz", summary="依赖就绪：目录数据库、对象存储、签章证书、时间戳服务（必需时）、检索索引；"
                               "另报存储检测未确认告警",
            responses={503: {"description": "某个依赖不可用或未配置；code 与 message 说明要配置什么"
                                            "（如 signer_missing、tsa_unreachable）"}})
def readyz(request: Request, ctx: Context = Depends(context)) -> JSONResponse:
    body = readiness(request, ctx)
    return JSONResponse(body, status_code=200 if body["ready"] else 503)


def readiness(request: Request, ctx: Context) -> dict[str, Any]:
    """The readiness report of /readyz (also shown on the administrator's settings page): ``ready`` and a part per
    dependency, each ``ok`` or with a ``code`` and a Chinese ``detail``."""
    parts: dict[str, dict[str, Any]] = {
        "catalogue": _probe(lambda: _catalogue(ctx)),
        "object_store": _probe(lambda: ctx.store.health()),
        "signer": _probe(lambda: _signer(ctx)),  # filing signs every rendition
        "tsa": _tsa(request, ctx.settings),
        "index": _probe(lambda: index_status(ctx)),  # backend, ok, backlog, failed
        "storage_alerts": _probe(lambda: _alerts(ctx)),  # open findings of the storage sweeps (四性检测 BC)
    }
    # Filing needs neither the index (the outbox holds its work) nor a clean sweep: those degrade, not un-ready.
    # Nor a TSA that is not required: signatures are then made without a time stamp (PAdES B-B).
    optional = {"index", "storage_alerts"} | (set() if ctx.settings.tsa_required else {"tsa"})
    failing = [(name, p) for name, p in parts.items() if name not in optional and not p["ok"]]
    body: dict[str, Any] = {"ready": not failing, **parts}
    if failing:
        body["code"] = failing[0][1]["code"]
        body["message"] = "系统未就绪：" + "；".join(
            f"{LABELS[name]}：{p['detail']}" if p["code"] != "unavailable" else f"{LABELS[name]}不可用"
            for name, p in failing)
    return body


def _signer(ctx: Context) -> dict[str, Any]:
    """The signer loads and passed its checks at load (chain, key matches certificate, encrypted key when required),
    and its certificate (loaded at start, maybe long ago) is still valid for signing; warnings (expiring within 30
    days, an unencrypted key file in production) do not make the system un-ready. While `archive serve` checks the
    signer in the background after it starts listening: not ready, ``signer_checking``."""
    return signer_readiness(ctx)


def _tsa(request: Request, settings: Settings) -> dict[str, Any]:
    """Is the configured TSA reachable? Probed at most once per TSA_PROBE_SECONDS per app."""
    url = settings.tsa_url
    if not url:
        return {"ok": True, "configured": False}
    state = request.app.state
    cached: tuple[str, float, dict[str, Any]] | None = getattr(state, "tsa_probe", None)
    now = time.monotonic()
    if cached is None or cached[0] != url or now - cached[1] >= TSA_PROBE_SECONDS:
        cached = state.tsa_probe = (url, now, _probe(lambda: _reach_tsa(url)))
    return {**cached[2], "configured": True, "required": settings.tsa_required}


def _reach_tsa(url: str) -> None:
    from signing.tsa import probe_tsa  # pyHanko: loaded when a TSA is configured and probed, not at start-up

    try:
        probe_tsa(url)
    except ERRORS as exc:
        raise ServiceUnavailable(f"{exc.message}：请检查网络与时间戳服务，或更正 ARCHIVE_TSA_URL"
                                 "（ARCHIVE_TSA_REQUIRED=true 时没有时间戳不能签章）", code=exc.code) from exc


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
        log.warning("readiness probe failed", exc_info=True)
        return {"ok": False, "code": "unavailable", "detail": type(exc).__name__}
