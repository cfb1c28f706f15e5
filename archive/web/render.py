"""Pages from Jinja2 templates: one environment, the filters people need (local time, masks), security headers."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from archive.identifiers import mask_id_number, mask_mobile, mask_name
from archive.localtime import local_time
from archive.permissions import PERMISSION_NAMES, ROLE_NAMES, Permission
from archive.web.assets import asset_url

TEMPLATES = Path(__file__).parent / "templates"

# No inline script or style anywhere: htmx is told not to inject its indicator style and not to eval.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY", "Cache-Control": "no-store",  # pages carry personal data: never cached
}

# The header's navigation: (label, path, any of these permissions). A person sees the entries her roles allow; the
# first one is where she lands after login when she has no 工作台 (archivists, auditors, administrators).
NAV: tuple[tuple[str, str, frozenset[Permission]], ...] = (
    ("工作台", "/ui/", frozenset({Permission.CASE_WRITE})),
    ("受理", "/ui/cases/new", frozenset({Permission.CASE_WRITE})),
    ("扫描室", "/ui/scans", frozenset({Permission.CASE_WRITE})),
    ("统计", "/ui/dashboard", frozenset({Permission.RETENTION_MANAGE, Permission.DESTRUCTION_APPROVE,
                                        Permission.CHECK_READ, Permission.ITEM_READ})),
    ("检索", "/ui/search", frozenset({Permission.ITEM_READ})),
    ("鉴定销毁", "/ui/appraisal", frozenset({Permission.RETENTION_MANAGE, Permission.DESTRUCTION_APPROVE})),
    ("冻结", "/ui/holds", frozenset({Permission.HOLD_MANAGE})),
    ("保管期限", "/ui/schedules", frozenset({Permission.RETENTION_MANAGE})),
    ("利用", "/ui/lending", frozenset({Permission.LENDING_REQUEST, Permission.LENDING_APPROVE})),
    ("移交", "/ui/transfers", frozenset({Permission.TRANSFER_MANAGE})),
    ("存量导入", "/ui/imports", frozenset({Permission.IMPORTS_MANAGE})),
    ("四性检测", "/ui/checks", frozenset({Permission.CHECK_READ})),
    ("数据质量", "/ui/dq", frozenset({Permission.DQ_READ})),
    ("审计", "/ui/audit", frozenset({Permission.AUDIT_READ})),
    ("用户与系统", "/ui/admin", frozenset({Permission.USER_READ, Permission.USER_MANAGE, Permission.CLIENT_MANAGE,
                                          Permission.ROLE_ASSIGN})),
)


def nav_for(principal: Any) -> list[tuple[str, str]]:
    """The navigation entries ``principal`` may open, in order."""
    if principal is None:
        return []
    return [(label, path) for label, path, perms in NAV if perms & principal.permissions]


def nav_current(path: str, entry: str) -> bool:
    """Whether the page at ``path`` belongs to the navigation entry ``entry`` (its section)."""
    if entry == "/ui/":
        return path == "/ui/" or (path.startswith("/ui/cases/") and path != "/ui/cases/new")
    return path == entry or path.startswith(entry.rstrip("/") + "/")


env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                  undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
env.globals.update(nav_for=nav_for, nav_current=nav_current)
env.globals.update(asset=asset_url, ROLE_NAMES=ROLE_NAMES, PERMISSION_NAMES=PERMISSION_NAMES, Permission=Permission)
env.filters.update(mask_id=mask_id_number, mask_mobile=mask_mobile, mask_name=mask_name)


def _short_time(at: datetime | None, zone: Any) -> str:
    """``12-03 13:45`` in the center's zone, for lists; pages of one thing show :func:`local_time`."""
    return "" if at is None else f"{at.astimezone(zone):%m-%d %H:%M}"


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def render(request: Request, template: str, status: int = 200, headers: dict[str, str] | None = None,
           **values: Any) -> HTMLResponse:
    """Render ``template`` with the person, the CSRF token and the helpers every page uses."""
    ctx = request.app.state.context
    zone = ctx.zone
    values.setdefault("user", getattr(request.state, "principal", None))
    values.setdefault("csrf", getattr(request.state, "csrf", ""))
    html = env.get_template(template).render(
        request=request, htmx=is_htmx(request), fonds_name=ctx.settings.fonds_name,
        today=f"{datetime.now(zone):%Y年%m月%d日}",
        localtime=lambda at: local_time(at, zone), shorttime=lambda at: _short_time(at, zone), **values)
    return HTMLResponse(html, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})
