"""Refused attempts leave an audit event even though the change they asked for is rolled back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.orm import Session

from archive import audit
from archive.audit import Actor
from archive.authorization import record_refusal, require
from archive.errors import ERRORS, AnyError, ArchiveError
from archive.permissions import Permission, Principal


def actor_of(principal: Principal) -> Actor:
    return Actor.of(principal)


@contextmanager
def audited(session: Session, principal: Principal, action: str, *, target_type: str,
            target_id: str | int | None = None, detail: dict[str, Any] | None = None,
            permission: Permission | None = None) -> Iterator[None]:
    """Run a step (first checking ``permission`` with :func:`archive.authorization.require`); if it is refused,
    roll the caller's transaction back, commit a ``refused`` event under ``action``, re-raise.

    The event is written in a transaction of its own once the caller's is rolled back (on SQLite the caller's
    holds the write lock): the request fails, and only the record of the attempt remains.
    """
    try:
        if permission is not None:
            require(session, principal, permission, action=action, target_type=target_type, target_id=target_id,
                    detail=detail)
        yield
    except ERRORS as exc:
        if not (isinstance(exc, ArchiveError) and exc.recorded):  # a check inside the step has recorded it
            record_refusal(session, principal, action, exc, target_type=target_type, target_id=target_id,
                           detail=detail)
        raise


@contextmanager
def answered(session: Session, actor: Actor, action: str, source: str) -> Iterator[list[AnyError]]:
    """Like :func:`audited`, for steps whose caller answers a refusal instead of raising it (transfers): the step
    runs in a savepoint; a refusal rolls the step back, leaves a ``refused`` audit event in the caller's own
    transaction and is handed back in the yielded list, so the caller commits the event and answers the error."""
    refused: list[AnyError] = []
    try:
        with session.begin_nested():
            yield refused
    except ERRORS as exc:
        audit.record(session, actor, action, target_type="transfer", target_id=None, outcome="refused",
                     detail={"code": exc.code, "message": exc.message, "source": source[-255:]})
        refused.append(exc)
