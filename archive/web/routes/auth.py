"""登录与退出: the login form (the login throttling of the API applies), logout."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from archive import audit, identity, logins
from archive.api.deps import UnitOfWork, context
from archive.api.errors import headers_of, status_of
from archive.audit import Actor
from archive.context import Context
from archive.errors import ERRORS
from archive.web import session
from archive.web.render import SECURITY_HEADERS, render

router = APIRouter(prefix="/ui", include_in_schema=False)


def _form(request: Request, status: int = 200, *, message: str | None = None, code: str | None = None,
          username: str = "", next_url: str | None = None, headers: dict[str, str] | None = None) -> Response:
    token = session.login_csrf(request)
    response = render(request, "login.html", status=status, headers=headers, message=message, code=code,
                      username=username, login_csrf=token,
                      next_url=session.safe_next(next_url or request.query_params.get("next")))
    session.keep_login_csrf(response, token, session.is_secure(request))
    return response


@router.get("/login")
def login_page(request: Request) -> Response:
    return _form(request)


@router.post("/login")
def login(request: Request, username: Annotated[str, Form(max_length=64)] = "",
          password: Annotated[str, Form(max_length=256)] = "", csrf_token: Annotated[str, Form(max_length=64)] = "",
          next: Annotated[str, Form(max_length=2000)] = "/ui/", ctx: Context = Depends(context)) -> Response:
    expected = request.cookies.get(session.LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, csrf_token):
        return _form(request, 403, message="登录页面已过期，请重新输入用户名和密码", code="csrf_failed",
                     username=username, next_url=next)
    if not username.strip() or not password:
        return _form(request, 422, message="请输入用户名和密码", code="missing_credentials", username=username,
                     next_url=next)
    address = request.client.host if request.client else "unknown"
    try:
        token, _, _ = logins.login(ctx, username.strip(), password, address=address, via="ui",
                                   hours=ctx.settings.session_hours)
    except ERRORS as exc:
        return _form(request, status_of(exc), message=exc.message, code=exc.code, username=username,
                     next_url=next, headers={k: v for k, v in headers_of(exc).items() if k == "Retry-After"})
    response = RedirectResponse(session.safe_next(next), status_code=303, headers=SECURITY_HEADERS)
    session.start(response, token, session.is_secure(request))
    return response


@router.post("/logout")
async def logout(request: Request, db: Session = UnitOfWork, ctx: Context = Depends(context)) -> Response:
    token = session.token_of(request)
    if token is not None:
        await session.check_csrf(request)
        try:
            who = identity.principal_from_token(db, token)
        except ERRORS:
            who = None
        identity.logout(db, token)
        if who is not None:
            audit.record(db, Actor.of(who), "auth.logout", target_type="user", target_id=who.name,
                         detail={"via": "ui"})
    response = RedirectResponse("/ui/login", status_code=303, headers=SECURITY_HEADERS)
    session.end(response)
    return response
