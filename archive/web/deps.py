"""Request dependencies of the UI: the person behind the session cookie and the one permission check."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from archive import authorization
from archive.api.deps import UnitOfWork, context, route_of
from archive.context import Context
from archive.permissions import Permission, Principal
from archive.web import session


def person(request: Request, db: Session = UnitOfWork, ctx: Context = Depends(context)) -> Principal:
    """The logged-in person (401 → the login page, then back here)."""
    found = session.principal(request, db, ctx)
    request.state.principal = found
    return found


def require(*permissions: Permission) -> Callable[..., Principal]:
    """The person, holding one of ``permissions`` (a refusal is audited as for the API, target ``GET /ui/…``)."""

    def check(request: Request, db: Session = UnitOfWork, principal: Principal = Depends(person)) -> Principal:
        authorization.require(db, principal, *permissions, target_type="ui", target_id=route_of(request))
        return principal

    return check
