"""Typed errors of the storage package: a stable English ``code``, a Chinese ``message`` for people, a ``detail``
and a ``kind`` (invalid, out_of_range, not_found, conflict, unavailable, config, failed) that the application maps
to its own answer (an HTTP status, a CLI exit). The package knows nothing of HTTP or of the application.
"""

from __future__ import annotations

from typing import Any


class StorageError(Exception):
    """Base of every error the object stores raise on purpose."""

    kind: str = "invalid"
    code: str = "storage_error"

    def __init__(self, message: str, *, code: str | None = None, detail: Any = None, kind: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if kind is not None:
            self.kind = kind
        self.detail = detail

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "detail": self.detail}


class StorageInvalid(StorageError):
    kind = "invalid"
    code = "invalid_input"


class StorageNotFound(StorageError):
    kind = "not_found"
    code = "not_found"


class StorageConflict(StorageError):
    kind = "conflict"
    code = "conflict"


class StorageUnavailable(StorageError):
    kind = "unavailable"
    code = "unavailable"


class StorageConfigError(StorageError):
    """A setting given to a store is wrong (bucket name, lock mode, replica path …)."""

    kind = "config"
    code = "config_error"
