"""系统管理员 and 安全保密管理员 (users, roles, branches, API clients, login locks, settings).

三员分立: the administrator creates accounts and clients and lifts login locks; the security officer assigns roles;
nobody holds two of 系统管理员, 安全保密管理员 and 安全审计员 (archive.identity.check_roles refuses it). Everything
goes through archive.identity and archive.logins as the API does. A client's key is shown once, on the answer to
its creation; only its hash is stored.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from archive import authorization, identity, logins
from archive.api.deps import UnitOfWork, actor_of, context
from archive.api.routes.health import LABELS, readiness
from archive.catalogue.models import ApiClient, User
from archive.context import Context
from archive.errors import Conflict, InvalidInput
from archive.permissions import (
    PERMISSION_NAMES,
    ROLE_NAMES,
    SCOPES,
    SEPARATED_ROLES,
    Permission,
    Principal,
    permissions_of_scopes,
)
from archive.settings import Settings
from archive.web.deps import require
from archive.web.render import SECURITY_HEADERS, render

router = APIRouter(prefix="/ui/admin", include_in_schema=False)
PAGE_SIZE = 50
Username = Annotated[str, Path(max_length=100)]
Reader = Depends(require(Permission.USER_READ))
SECRET_NAME = re.compile(r"password|secret|key|token", re.IGNORECASE)
URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")
READY_LABELS = {**LABELS, "index": "检索索引", "storage_alerts": "存储检测告警"}


def _done(location: str) -> Response:
    """After an htmx form: the browser goes to ``location`` (the page shows the change)."""
    return Response(status_code=204, headers={**SECURITY_HEADERS, "HX-Redirect": location})


def _tabs(principal: Principal) -> list[tuple[str, str]]:
    tabs = [("用户与角色", "/ui/admin")]
    if principal.can(Permission.CLIENT_MANAGE):
        tabs.append(("接入系统", "/ui/admin/clients"))
    return [*tabs, ("设置与运行状态", "/ui/admin/settings")]


def _values(principal: Principal, tab: str) -> dict[str, Any]:
    return dict(tabs=_tabs(principal), tab=tab, role_names=ROLE_NAMES, separated=sorted(SEPARATED_ROLES),
                can_manage=principal.can(Permission.USER_MANAGE), can_assign=principal.can(Permission.ROLE_ASSIGN))


@router.get("")
def users(request: Request, page: Annotated[int, Query(ge=1, le=10_000)] = 1, db: Session = UnitOfWork,
          principal: Principal = Reader) -> Response:
    """Accounts with their roles, branch and login lock."""
    total = db.scalar(select(func.count()).select_from(User)) or 0
    rows = list(db.scalars(select(User).order_by(User.username).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)))
    locked = logins.locks(db, [u.username for u in rows])
    return render(request, "admin_users.html", users=rows, locked=locked, total=total, page=page,
                  pages=max(1, -(-total // PAGE_SIZE)), created=request.query_params.get("created", "")[:64],
                  **_values(principal, "/ui/admin"))


@router.post("/users")
def create_user(request: Request, username: Annotated[str, Form(max_length=64)] = "",
                display_name: Annotated[str, Form(max_length=100)] = "",
                password: Annotated[str, Form(max_length=256)] = "", branch: Annotated[str, Form(max_length=32)] = "",
                roles: Annotated[list[str] | None, Form()] = None, db: Session = UnitOfWork,
                principal: Principal = Depends(require(Permission.USER_MANAGE))) -> Response:
    """新建用户 (系统管理员). Roles only with 分配角色 (the security officer's), as in the API."""
    wanted = list(roles or [])
    if wanted:
        authorization.require(db, principal, Permission.ROLE_ASSIGN, action="user.create", target_type="user",
                              target_id=username.strip())
    user = identity.add_user(db, actor_of(principal), username, password, display_name.strip(), wanted,
                             branch.strip() or None)
    return _done(f"/ui/admin?created={user.username}")


@router.get("/users/{username}")
def user_page(username: Username, request: Request, db: Session = UnitOfWork,
              principal: Principal = Reader) -> Response:
    user = identity.get_user(db, username)
    return render(request, "admin_user.html", person=user, locked_until=logins.locks(db, [username]).get(username),
                  saved=request.query_params.get("saved") == "1", **_values(principal, "/ui/admin"))


@router.post("/users/{username}/roles")
def set_roles(username: Username, roles: Annotated[list[str] | None, Form()] = None, db: Session = UnitOfWork,
              principal: Principal = Depends(require(Permission.ROLE_ASSIGN))) -> Response:
    """分配角色 (安全保密管理员): two of the three officer roles are refused with why (separation_of_duties)."""
    identity.set_roles(db, actor_of(principal), username, list(roles or []))
    return _done(f"/ui/admin/users/{username}?saved=1")


@router.post("/users/{username}/unlock")
def unlock(username: Username, db: Session = UnitOfWork,
           principal: Principal = Depends(require(Permission.USER_MANAGE))) -> Response:
    """解除登录锁定 (系统管理员); a user with no lock is a 409 saying so."""
    if not logins.unlock(db, actor_of(principal), username):
        raise Conflict(f"用户 {username} 没有被锁定，无需解除", code="user_not_locked",
                           detail={"username": username})
    return _done(f"/ui/admin/users/{username}")


@router.get("/clients")
def clients(request: Request, db: Session = UnitOfWork,
            principal: Principal = Depends(require(Permission.CLIENT_MANAGE))) -> Response:
    rows = list(db.scalars(select(ApiClient).order_by(ApiClient.active.desc(), ApiClient.name).limit(500)))
    return render(request, "admin_clients.html", clients=rows, scopes=SCOPES, scope_names=_scope_names(),
                  **_values(principal, "/ui/admin/clients"))


def _scope_names() -> dict[str, str]:
    return {s: "、".join(PERMISSION_NAMES[p] for p in sorted(permissions_of_scopes([s]))) for s in SCOPES}


@router.post("/clients")
def create_client(request: Request, name: Annotated[str, Form(max_length=100)] = "",
                  scopes: Annotated[list[str] | None, Form()] = None,
                  branches: Annotated[str, Form(max_length=500)] = "", db: Session = UnitOfWork,
                  principal: Principal = Depends(require(Permission.CLIENT_MANAGE))) -> Response:
    """登记业务系统: the answer shows its key this once (only its hash is kept)."""
    wanted = name.strip()
    if not wanted:
        raise InvalidInput("请填写接入系统名称", code="invalid_input", detail={"field": "name"})
    listed = [b for b in re.split(r"[\s,，、]+", branches) if b] or None
    client, key = identity.add_client(db, actor_of(principal), wanted, list(scopes or []), listed)
    return render(request, "partials/admin_client_key.html", client=client, key=key, scope_names=_scope_names())


@router.post("/clients/{name}/revoke")
def revoke_client(name: Username, db: Session = UnitOfWork,
                  principal: Principal = Depends(require(Permission.CLIENT_MANAGE))) -> Response:
    identity.revoke_client(db, actor_of(principal), name)
    return _done("/ui/admin/clients")


def shown_settings(settings: Settings) -> list[tuple[str, str, str]]:
    """(name, value, description) of every setting in force; secrets (passwords, keys) and the password of a URL
    are never shown, only whether they are set."""
    out = []
    for name, field in type(settings).model_fields.items():
        value = getattr(settings, name)
        if SECRET_NAME.search(name) and not name.endswith("_file"):
            shown = "••••••（已设置）" if value else "（未设置）"
        elif value is None or value == "":
            shown = "（未设置）"
        elif isinstance(value, (list, tuple)):
            shown = "、".join(str(v) for v in value) or "（空）"
        else:
            shown = URL_PASSWORD.sub(r"\1••••••@", str(value))
        out.append((f"ARCHIVE_{name.upper()}", shown, field.description or ""))
    return out


@router.get("/settings")
def settings_page(request: Request, ctx: Context = Depends(context), db: Session = UnitOfWork,
                  principal: Principal = Reader) -> Response:
    """The settings in force (read-only) and the readiness report of /readyz."""
    db.rollback()  # the probes open their own sessions (on SQLite: the request's would hold the write lock)
    ready = readiness(request, ctx)
    parts = [(READY_LABELS.get(k, k), v) for k, v in ready.items() if isinstance(v, dict)]
    return render(request, "admin_settings.html", settings=shown_settings(ctx.settings), ready=ready, parts=parts,
                  **_values(principal, "/ui/admin/settings"))
