"""Sessions of people in the browser: a login token in an HttpOnly, SameSite=Strict cookie, and a CSRF token.

The cookie holds the same kind of login token the API issues (``st_…``, a ``user_session`` row); the API itself
never reads cookies, so a page cannot be made to call it with the person's rights. Each use of the UI moves the
session's end to ``ARCHIVE_SESSION_HOURS`` from now: the hours are an idle timeout.

The CSRF token is an HMAC of the login token, so it needs no storage and changes with every login; every
state-changing request carries it (a form field ``csrf_token`` or the ``X-CSRF-Token`` header that app.js adds to
htmx requests). Before login, the login form is protected the same way by a random cookie of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import quote, urlsplit

from fastapi import Request, Response
from sqlalchemy.orm import Session

from archive import identity
from archive.context import Context
from archive.errors import ArchiveError, Unauthenticated
from archive.permissions import Principal

COOKIE = "archive_session"
LOGIN_COOKIE = "archive_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class CsrfRefused(ArchiveError):
    kind = "forbidden"
    code = "csrf_failed"


def csrf_token(secret: str) -> str:
    return hmac.new(secret.encode(), b"archive-ui-csrf", hashlib.sha256).hexdigest()


def token_of(request: Request) -> str | None:
    token = request.cookies.get(COOKIE)
    return token if token and token.startswith("st_") else None


def principal(request: Request, session: Session, ctx: Context) -> Principal:
    """The person behind the session cookie; :class:`Unauthenticated` (→ the login page) without one."""
    token = token_of(request)
    if token is None:
        raise Unauthenticated("请先登录", code="login_required")
    found = identity.principal_from_token(session, token)
    identity.renew(session, token, ctx.settings.session_hours)
    request.state.csrf = csrf_token(token)
    return found


async def check_csrf(request: Request) -> None:
    """Refuse a state-changing request without the session's CSRF token (header or form field)."""
    if request.method in SAFE_METHODS:
        return
    token = token_of(request)
    if token is None:
        raise Unauthenticated("请先登录", code="login_required")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent, csrf_token(token)):
        raise CsrfRefused("页面已过期或来源不明，操作未执行；请刷新页面后重试", code="csrf_failed")


def start(response: Response, token: str, secure: bool) -> None:
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=secure, path="/ui")
    response.delete_cookie(LOGIN_COOKIE, path="/ui")


def end(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/ui")


def login_csrf(request: Request) -> str:
    """The login form's token: the value of its own cookie, made now if the browser has none."""
    return request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)


def keep_login_csrf(response: Response, value: str, secure: bool) -> None:
    response.set_cookie(LOGIN_COOKIE, value, httponly=True, samesite="strict", secure=secure, path="/ui")


def is_secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


def safe_next(target: str | None) -> str:
    """Where to go after login: a path of the UI only (never another site: no open redirect)."""
    if not target:
        return "/ui/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/ui/") or "\\" in target:
        return "/ui/"
    return parts.path + (f"?{parts.query}" if parts.query else "")


def login_url(back_to: str | None) -> str:
    nxt = safe_next(back_to)
    return "/ui/login" if nxt == "/ui/" else f"/ui/login?next={quote(nxt, safe='')}"
