"""Typed errors: each carries a stable English code for machines, a Chinese message for people and a ``kind``.

The kind says what went wrong in words the domain knows (invalid, not_found, forbidden, busy …), never an HTTP
status: the API turns kinds into statuses and headers in one place (archive/api/errors.py); the CLI prints the
message and code. storage/, signing/ and search/ have their own error bases (they import nothing from archive/)
with the same ``code``, ``message``, ``detail`` and ``kind``. Catch :data:`ERRORS` wherever one of theirs may
arrive too (docs/decisions/0015-package-boundaries.md).
"""

from __future__ import annotations

from typing import Any

from search.errors import SearchError
from signing.errors import SigningError
from storage.errors import StorageError

KINDS = frozenset({
    "bad_request", "not_allowed",  # answered by the API itself: an unreadable body, a wrong method
    "invalid",  # the request or file is wrong; also the default
    "unsupported",  # a format the operation cannot handle (a page image of an OFD)
    "too_large",  # over a size limit
    "out_of_range",  # a byte range outside the file
    "not_found", "gone",  # gone: removed on purpose (destroyed items), the record remains
    "conflict",  # the state of the thing does not allow it (already filed, held, …)
    "unauthenticated", "forbidden",
    "rate_limited",  # too many requests or failed logins; carries retry_after
    "unavailable", "busy",  # busy: a lock did not come free in time; carries retry_after
    "config", "failed",  # the system's own fault: a setting, or an operation that broke
})
"""Every kind an error of archive/, storage/, signing/ or search/ may have."""
SYSTEM_KINDS = frozenset({"unavailable", "busy", "config", "failed"})
"""The system's fault, not the request's: such an error ends a batch instead of refusing one of its entries."""


class ArchiveError(Exception):
    """Base of every error a clerk, archivist or business system may see."""

    kind: str = "invalid"
    code: str = "archive_error"
    recorded: bool = False  # its refused audit event is already written (archive.authorization.require)

    def __init__(self, message: str, *, code: str | None = None, detail: Any = None,
                 kind: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if kind is not None:
            self.kind = kind
        self.detail = detail

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "detail": self.detail}


class InvalidInput(ArchiveError):
    kind = "invalid"
    code = "invalid_input"


class TooLarge(InvalidInput):
    """Over a size limit (an upload, a package)."""

    kind = "too_large"
    code = "too_large"


class InvalidRange(ArchiveError):
    """A ``Range`` that is malformed or starts beyond the end of a file of ``size`` bytes."""

    kind = "out_of_range"
    code = "invalid_range"

    def __init__(self, message: str, size: int, *, code: str | None = None) -> None:
        super().__init__(message, code=code, detail={"size": size})
        self.size = size


class NotFound(ArchiveError):
    kind = "not_found"
    code = "not_found"


class Gone(ArchiveError):
    """Removed on purpose (an item destroyed by the destruction workflow); its record remains."""

    kind = "gone"
    code = "gone"


class Conflict(ArchiveError):
    kind = "conflict"
    code = "conflict"


class Unauthenticated(ArchiveError):
    kind = "unauthenticated"
    code = "unauthenticated"


class PermissionDenied(ArchiveError):
    kind = "forbidden"
    code = "permission_denied"


class ConfigError(ArchiveError):
    """A setting or data file is wrong; start-up stops with the file/setting, field and reason."""

    kind = "config"
    code = "config_error"


class ServiceUnavailable(ArchiveError):
    kind = "unavailable"
    code = "unavailable"


class Busy(ServiceUnavailable):
    """Try again shortly (a lock another request holds did not come free in time); answered with Retry-After."""

    kind = "busy"
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
