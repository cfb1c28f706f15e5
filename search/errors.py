"""Typed errors of the search package: a stable English ``code``, a Chinese ``message`` for people, a ``detail``
and a ``kind`` (invalid, not_found, conflict, unavailable, config, failed) that the application maps to its own
answer (an HTTP status, a CLI exit). The package knows nothing of HTTP or of the application.
"""

from __future__ import annotations

from typing import Any


class SearchError(Exception):
    """Base of every error the search indexes raise on purpose."""

    kind: str = "invalid"
    code: str = "search_error"

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


class SearchInvalid(SearchError):
    kind = "invalid"
    code = "invalid_input"


class SearchUnavailable(SearchError):
    kind = "unavailable"
    code = "unavailable"
