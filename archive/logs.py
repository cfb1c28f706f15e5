"""Logging: one JSON object a line (``ARCHIVE_LOG_FORMAT=json``) or text, with the request id of the request
being served attached to every record.

The request id lives in a context variable set by the request middleware (archive/api/observe.py); it follows
the request into threadpool handlers (Starlette copies the context) and so reaches every log call made on its
behalf. Messages pass through :func:`mask`, which hides what looks like a 证件号码, mobile number or bank card
number: the access line never carries a query string, but a library message might quote one.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from archive.settings import Settings

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("archive_request_id", default=None)

REQUEST_ID_HEADER = "X-Request-ID"
MAX_REQUEST_ID = 64
_SANE_ID = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_REQUEST_ID}}}")

# 18-digit 居民身份证号 (last may be X), 11-digit mobile numbers, 16-19 digit bank card numbers; not inside longer
# runs of digits or letters (so hashes and 档号 stay readable).
_PERSONAL = re.compile(r"(?<![0-9A-Za-z])(?:\d{17}[\dXx]|1[3-9]\d{9}|\d{16,19})(?![0-9A-Za-z])")

# Attributes every LogRecord has; anything else a caller passed as ``extra=`` goes into the JSON line.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName",
                                                                               "color_message"}  # uvicorn's ANSI copy


def new_request_id() -> str:
    return secrets.token_hex(8)


def sane_request_id(incoming: str | None) -> str:
    """The caller's ``X-Request-ID`` when it is short and plain ([A-Za-z0-9._-], at most 64), else a new one:
    a hostile value must not reach the logs (line breaks, markup) or grow them."""
    if incoming and _SANE_ID.fullmatch(incoming):
        return incoming
    return new_request_id()


def mask(text: str) -> str:
    """Hide personal numbers (证件号码, 手机号, 银行卡号) in a log message."""
    return _PERSONAL.sub(lambda m: m.group(0)[:3] + "*" * (len(m.group(0)) - 5) + m.group(0)[-2:], text)


class RequestIdFilter(logging.Filter):
    """Attach the current request id (or None) to every record, for either format."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts (UTC, ISO 8601), level, logger, request_id, msg, any ``extra=`` fields, and
    the exception's traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "request_id": getattr(record, "request_id", None) or request_id.get(),
            "msg": mask(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line:
                line[key] = mask(value) if isinstance(value, str) else value
        if record.exc_info:
            line["exc"] = mask(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return mask(super().format(record))


def configure_from(settings: Settings) -> logging.Handler:
    """ARCHIVE_LOG_FORMAT / ARCHIVE_LOG_LEVEL, for a long-running process (``archive serve`` and each of its
    worker processes, which do not inherit the parent's logging when spawned; ``archive worker``)."""
    return configure(settings.log_format_in_use(sys.stderr.isatty()), settings.log_level)


def configure(fmt: str, level: str, stream: Any = None) -> logging.Handler:
    """Route the root logger (and uvicorn's, whose own access log is replaced by ours) through one handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers, logger.propagate = [], True
    for name in ("httpx", "httpcore"):  # one INFO line per outgoing call, with its full URL and query: not ours
        logging.getLogger(name).setLevel(max(root.level, logging.WARNING))
    access = logging.getLogger("uvicorn.access")
    access.handlers, access.propagate, access.disabled = [], False, True
    return handler
