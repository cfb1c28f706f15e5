"""Typed errors: each carries a stable English code for machines and a Chinese message for people.

The API maps them to HTTP responses in one place (archive/api/errors.py); the CLI prints them.
storage/, signing/ and search/ have their own error bases (they import nothing from archive/); each carries the same
``code``, ``message`` and ``detail`` plus a ``kind`` that :data:`KIND_STATUS` turns into an HTTP status. Catch
:data:`ERRORS` wherever one of theirs may arrive too (docs/decisions/0015-package-boundaries.md).
"""

from __future__ import annotations

from typing import Any

from search.errors import SearchError
from signing.errors import SigningError
from storage.errors import StorageError


class ArchiveError(Exception):
    """Base of every error a clerk, archivist or business system may see."""

    status: int = 400
    code: str = "archive_error"

    def __init__(self, message: str, *, code: str | None = None, detail: Any = None,
                 status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.detail = detail

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "detail": self.detail}


class InvalidInput(ArchiveError):
    status = 422
    code = "invalid_input"


class NotFound(ArchiveError):
    status = 404
    code = "not_found"


class Conflict(ArchiveError):
    status = 409
    code = "conflict"


class Unauthenticated(ArchiveError):
    status = 401
    code = "unauthenticated"


class PermissionDenied(ArchiveError):
    status = 403
    code = "permission_denied"


class ConfigError(ArchiveError):
    """A setting or data file is wrong; start-up stops with the file/setting, field and reason."""

    status = 500
    code = "config_error"


class ServiceUnavailable(ArchiveError):
    status = 503
    code = "unavailable"


class Busy(ServiceUnavailable):
    """Try again shortly (a lock another request holds did not come free in time); answered with Retry-After."""

    code = "busy"

    def __init__(self, message: str, *, code: str | None = None, detail: dict[str, Any] | None = None,
                 retry_after: int = 5) -> None:
        super().__init__(message, code=code, detail={**(detail or {}), "retry_after": retry_after})
        self.retry_after = retry_after


def catalogue_busy() -> Busy:
    return Busy("系统繁忙：目录数据库正被其他操作占用，本次操作未执行，请稍后重试", code="catalogue_busy")


PackageError = StorageError | SigningError | SearchError
AnyError = ArchiveError | PackageError
ERRORS = (ArchiveError, StorageError, SigningError, SearchError)
"""Every error a person may see: ``except ERRORS as exc`` then read ``exc.code``, ``exc.message``, ``exc.detail``."""

KIND_STATUS: dict[str, int] = {
    "invalid": 422,
    "out_of_range": 416,
    "not_found": 404,
    "conflict": 409,
    "unavailable": 503,
    "config": 500,
    "failed": 500,
}


def status_of(exc: AnyError) -> int:
    """The HTTP status of an error: its own for an ArchiveError, by ``kind`` for a storage/signing/search one."""
    if isinstance(exc, ArchiveError):
        return exc.status
    return KIND_STATUS.get(exc.kind, 500)
