"""One place where errors become HTTP responses: ``{code, message, detail}``, never a traceback.

Errors carry a ``kind``, not an HTTP status; :data:`KIND_STATUS` decides the status of every kind, and
:func:`headers_of` the headers some need (WWW-Authenticate, Retry-After, Content-Range).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError
from starlette.exceptions import HTTPException

from archive import logs
from archive.catalogue.db import is_busy
from archive.errors import ERRORS, AnyError, catalogue_busy

log = logging.getLogger("archive.api")

KIND_STATUS: dict[str, int] = {
    "bad_request": 400,
    "not_allowed": 405,
    "invalid": 422,
    "unsupported": 415,
    "too_large": 413,
    "out_of_range": 416,
    "not_found": 404,
    "gone": 410,
    "conflict": 409,
    "unauthenticated": 401,
    "forbidden": 403,
    "rate_limited": 429,
    "unavailable": 503,
    "busy": 503,
    "config": 500,
    "failed": 500,
}


def status_of(exc: AnyError) -> int:
    """The HTTP status of any error of archive/, storage/, signing/ or search/, by its kind."""
    return KIND_STATUS.get(exc.kind, 500)


def headers_of(exc: AnyError) -> dict[str, str]:
    """Bearer for 401; Retry-After for errors that know when to come back (rate limits, busy catalogue, locked
    logins); Content-Range with the file's size for a range outside it."""
    headers = {"WWW-Authenticate": "Bearer"} if exc.kind == "unauthenticated" else {}
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    size = exc.detail.get("size") if exc.kind == "out_of_range" and isinstance(exc.detail, dict) else None
    if isinstance(size, int):
        headers["Content-Range"] = f"bytes */{size}"
    return headers


def error_response(exc: AnyError) -> JSONResponse:
    """The answer to an error, also for a route that must answer it instead of raising (its transaction commits)."""
    return JSONResponse(with_request_id(exc.to_dict()), status_code=status_of(exc), headers=headers_of(exc) or None)


def with_request_id(answer: dict[str, object]) -> dict[str, object]:
    """Every error body names the request (``request_id``, as in the X-Request-ID header and the log lines), so
    a person or a program can quote it to the administrator."""
    rid = logs.request_id.get()
    return {**answer, "request_id": rid} if rid else answer

_HTTP_MESSAGES = {
    400: ("malformed_request", "请求格式有误，无法读取请求内容；请检查 JSON 或上传表单（multipart）的格式后重试"),
    404: ("not_found", "请求的接口或资源不存在"),
    405: ("method_not_allowed", "该接口不支持此请求方法"),
    413: ("payload_too_large", "请求内容过大"),
}


# pydantic's error types → what a clerk reads; the type itself stays in detail for programs.
_REASONS = {
    "missing": "必须填写", "extra_forbidden": "不是可用的字段", "json_invalid": "不是有效的 JSON",
    "int_parsing": "应为整数", "int_type": "应为整数", "int_from_float": "应为整数",
    "float_parsing": "应为数字", "float_type": "应为数字", "decimal_parsing": "应为数字", "decimal_type": "应为数字",
    "finite_number": "应为有限的数字", "bool_parsing": "应为 true 或 false", "bool_type": "应为 true 或 false",
    "less_than_equal": "不能大于 {le}", "greater_than_equal": "不能小于 {ge}",
    "less_than": "应小于 {lt}", "greater_than": "应大于 {gt}",
    "string_type": "应为文本", "string_too_short": "至少 {min_length} 个字符",
    "string_too_long": "最多 {max_length} 个字符",
    "string_pattern_mismatch": "格式不符合要求", "list_type": "应为列表", "too_short": "至少 {min_length} 项",
    "too_long": "最多 {max_length} 项", "dict_type": "应为对象", "model_type": "应为对象",
    "model_attributes_type": "应为对象", "literal_error": "只能是 {expected}", "enum": "只能是 {expected}",
    "date_parsing": "应为日期，如 2026-01-31", "date_from_datetime_parsing": "应为日期，如 2026-01-31",
    "date_type": "应为日期，如 2026-01-31", "datetime_parsing": "应为带时区的时间，如 2026-01-31T09:00:00+08:00",
    "datetime_from_date_parsing": "应为带时区的时间，如 2026-01-31T09:00:00+08:00",
    "datetime_type": "应为带时区的时间，如 2026-01-31T09:00:00+08:00",
    "decimal_max_digits": "位数过多", "decimal_max_places": "小数位数过多", "url_parsing": "应为网址",
}


def reason(error: Mapping[str, Any]) -> str:
    """A validation error in Chinese; an unknown type says only that the value is not valid."""
    template = _REASONS.get(error["type"], "取值无效")
    try:
        return template.format(**{k: str(v).replace(" or ", " 或 ") for k, v in error.get("ctx", {}).items()})
    except (KeyError, IndexError):
        return "取值无效"


def body(code: str, message: str, detail: object = None) -> dict[str, object]:
    return with_request_id({"code": code, "message": message, "detail": detail})


def install(app: FastAPI) -> None:
    async def _archive_error(_: Request, exc: AnyError) -> JSONResponse:
        return error_response(exc)

    for base in ERRORS:  # archive's own errors and those of storage/, signing/, search/
        app.add_exception_handler(base, _archive_error)  # type: ignore[arg-type]  # starlette types it for Exception

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
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "reason": reason(e), "type": e["type"]}
            for e in exc.errors()
        ]
        text = "；".join(f"{p['field'] or '请求体'}：{p['reason']}" for p in problems[:5])
        return JSONResponse(body("invalid_request", f"请求内容有误：{text}", problems), status_code=422)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        code, message = _HTTP_MESSAGES.get(exc.status_code, ("http_error", f"请求无法处理（HTTP {exc.status_code}）"))
        if exc.status_code not in (404, 405):  # the library's reason is for the log, not for the person
            log.info("HTTP %s on %s %s: %s", exc.status_code, request.method, request.url.path, exc.detail)
        return JSONResponse(body(code, message), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def _out_of_range(request: Request, exc: Exception) -> JSONResponse:
        """Safety net behind the bounded parameters: a value the database (or date arithmetic) cannot hold is
        the caller's mistake, not a server error. The library text goes to the log only."""
        log.warning("value out of range on %s %s: %s", request.method, request.url.path, type(exc).__name__,
                    exc_info=exc)
        return JSONResponse(body("value_out_of_range", "请求中的数值或日期超出系统可处理的范围，请核对后重新提交"),
                            status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _internal(request)


def _internal(request: Request) -> JSONResponse:
    """500 with a reference to quote; the traceback of the exception being handled goes to the log."""
    ref = uuid.uuid4().hex[:12]
    log.exception("unhandled error %s on %s %s", ref, request.method, request.url.path)
    rid = logs.request_id.get()  # this handler runs outside the request middleware: it adds the header itself
    return JSONResponse(body("internal_error", f"系统内部错误，请稍后重试；如仍失败请将编号 {ref} 告知系统管理员",
                             {"reference": ref}), status_code=500,
                        headers={logs.REQUEST_ID_HEADER: rid} if rid else None)
