"""Errors on UI pages: the same code and Chinese message the API gives, as a page or a fragment, never a trace.

The API's exception handlers stay the one place that turns an exception into ``{code, message}`` and a status;
for paths under ``/ui`` their answer is re-rendered as HTML. An expired session leads back to the login page and
from there to the page the person was on.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from archive.web import session
from archive.web.render import SECURITY_HEADERS, is_htmx, render

Handler = Callable[[Request, Any], Response | Awaitable[Response]]
_KEPT_HEADERS = ("Retry-After", "X-Request-Id")  # str.title() spelling


def install(app: FastAPI) -> None:
    """Wrap every exception handler the API installed, so UI paths answer in HTML."""
    for exc_class, handler in list(app.exception_handlers.items()):
        app.exception_handlers[exc_class] = _ui_first(handler)


def _ui_first(api_handler: Handler) -> Handler:
    async def handle(request: Request, exc: Exception) -> Response:
        answer = api_handler(request, exc)
        if inspect.isawaitable(answer):
            answer = await answer
        if not request.url.path.startswith("/ui") or request.url.path.startswith("/ui/static"):
            return answer
        return as_html(request, answer)

    return handle


def as_html(request: Request, answer: Response) -> Response:
    body = json.loads(bytes(answer.body))
    code, message = str(body.get("code", "error")), str(body.get("message", "请求无法处理"))
    rid = body.get("request_id")  # shown small: what to quote to the administrator
    status = answer.status_code
    if status == 401:
        return to_login(request, code)
    headers = {k: v for k, v in answer.headers.items() if k.title() in _KEPT_HEADERS}
    if is_htmx(request):  # into the page's message area, whatever the request's own target was
        headers.update({"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"})
        return render(request, "partials/error.html", status=status, headers=headers, code=code, message=message,
                      request_id=rid, problems=body.get("detail") if code == "invalid_request" else None)
    return render(request, "error.html", status=status, headers=headers, code=code, message=message, status_code=status,
                  request_id=rid, problems=None)


def to_login(request: Request, code: str) -> Response:
    """Back to login, and after it to where the person was (the page, not the fragment an htmx call asked for)."""
    if is_htmx(request):
        current = request.headers.get("HX-Current-URL")
        back = urlsplit(current) if current else None
        target = session.login_url(f"{back.path}?{back.query}" if back and back.query else back.path if back else None)
        response: Response = Response(status_code=204, headers={**SECURITY_HEADERS, "HX-Redirect": target})
    else:
        here = (request.url.path + (f"?{request.url.query}" if request.url.query else "")
                if request.method == "GET" else _referer_path(request))
        response = RedirectResponse(session.login_url(here), status_code=303, headers=SECURITY_HEADERS)
    if code in ("session_expired", "user_disabled"):
        session.end(response)
    return response


def _referer_path(request: Request) -> str | None:
    ref = request.headers.get("referer")
    if not ref:
        return None
    parts = urlsplit(ref)
    return parts.path + (f"?{parts.query}" if parts.query else "")
