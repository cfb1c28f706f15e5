"""The one permission check, used by the API, the CLI and the web UI alike.

:func:`require` passes when the caller holds one of the permissions; otherwise it leaves a ``refused`` audit
event and raises :class:`~archive.errors.PermissionDenied` (403 at the API, exit 2 at the CLI). A refusal is
on record even though the request fails: the caller's transaction is rolled back first (on SQLite it holds the
write lock) and the event is committed in a transaction of its own.

A check inside a step that is itself audited (:func:`archive.retention.refusals.audited`) records the refusal
under the step's action; everywhere else the action is :data:`DENIED`, with the operation (an API route, a
command) as the target.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from archive import audit
from archive.audit import Actor
from archive.errors import AnyError, PermissionDenied
from archive.permissions import PERMISSION_NAMES, Permission, Principal

DENIED = "permission.denied"


def denied(*permissions: Permission, message: str | None = None) -> PermissionDenied:
    """The refusal for a caller holding none of ``permissions``, naming them in Chinese."""
    names = "」或「".join(PERMISSION_NAMES[p] for p in permissions)
    return PermissionDenied(message or f"当前账号没有「{names}」权限，如需使用请联系安全保密管理员",
                            code="permission_denied", detail={"permission": permissions[0].value})


def require(session: Session, principal: Principal, *permissions: Permission, action: str = DENIED,
            target_type: str | None = None, target_id: str | int | None = None,
            detail: dict[str, Any] | None = None, message: str | None = None) -> None:
    """Pass if ``principal`` holds any of ``permissions``; else audit the refusal and raise PermissionDenied.

    ``action`` and the target name what was attempted (a step's own action, or :data:`DENIED` with the route or
    command); ``message`` replaces the standard Chinese text where a clerk needs a more specific one.
    """
    if any(principal.can(p) for p in permissions):
        return
    exc = denied(*permissions, message=message)
    record_refusal(session, principal, action, exc, target_type=target_type, target_id=target_id,
                   detail={**(detail or {}), "permissions": [p.value for p in permissions]})
    exc.recorded = True  # an enclosing audited step does not record it twice
    raise exc


def record_refusal(session: Session, principal: Principal, action: str, exc: AnyError, *,
                   target_type: str | None = None, target_id: str | int | None = None,
                   detail: dict[str, Any] | None = None) -> None:
    """Roll the caller's transaction back and commit a ``refused`` event for ``exc`` in a transaction of its own."""
    session.rollback()  # also releases SQLite's write lock for the event's own transaction
    with Session(bind=session.get_bind()) as own, own.begin():
        audit.record(own, Actor(principal.kind, principal.name), action, target_type=target_type,
                     target_id=target_id, outcome="refused",
                     detail={**(detail or {}), "code": exc.code, "message": exc.message, "problem": exc.detail})
