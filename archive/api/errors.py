"""One place where errors become HTTP responses: ``{code, message, detail}``, never a traceback."""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException

from archive.catalogue.db import is_busy
from archive.errors import ArchiveError, catalogue_busy

log = logging.getLogger("archive.api")

_HTTP_MESSAGES = {
    404: ("not_found", "请求的接口或资源不存在"),
    405: ("method_not_allowed", "该接口不支持此请求方法"),
    413: ("payload_too_large", "请求内容过大"),
}


def body(code: str, message: str, detail: object = None) -> dict[str, object]:
    return {"code": code, "message": message, "detail": detail}


def install(app: FastAPI) -> None:
    @app.exception_handler(ArchiveError)
    async def _archive_error(_: Request, exc: ArchiveError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        retry_after = getattr(exc, "retry_after", None)  # 429 and 503 errors that know when to come back
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        return JSONResponse(exc.to_dict(), status_code=exc.status, headers=headers or None)

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        """A lock wait that ran out (SQLite busy timeout, PostgreSQL lock_timeout, deadlock, serialisation
        conflict) is 503 with Retry-After: the transaction was rolled back and may simply be retried."""
        if not is_busy(exc):
            return _internal(request)
        log.warning("catalogue busy on %s %s: %s", request.method, request.url.path, exc.orig)
        return await _archive_error(request, catalogue_busy())

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "reason": e["msg"]}
            for e in exc.errors()
        ]
        text = "；".join(f"{p['field'] or '请求体'}：{p['reason']}" for p in problems[:5])
        return JSONResponse(body("invalid_request", f"请求内容有误：{text}", problems), status_code=422)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        code, message = _HTTP_MESSAGES.get(exc.status_code, ("http_error", str(exc.detail)))
        return JSONResponse(body(code, message), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _internal(request)


def _internal(request: Request) -> JSONResponse:
    """500 with a reference to quote; the traceback of the exception being handled goes to the log."""
    ref = uuid.uuid4().hex[:12]
    log.exception("unhandled error %s on %s %s", ref, request.method, request.url.path)
    return JSONResponse(body("internal_error", f"系统内部错误，请稍后重试；如仍失败请将编号 {ref} 告知系统管理员",
                             {"reference": ref}), status_code=500)
