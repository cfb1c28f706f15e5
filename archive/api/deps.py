"""Request dependencies: the unit of work, the caller, and the one permission check."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from archive.audit import Actor
from archive.context import Context
from archive.errors import PermissionDenied, Unauthenticated
from archive.identity import principal_from_token
from archive.permissions import PERMISSION_NAMES, Permission, Principal

_bearer = HTTPBearer(auto_error=False, description="登录令牌（st_…）或接入密钥（ak_…）")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="业务系统接入密钥（ak_…）")


def context(request: Request) -> Context:
    ctx: Context = request.app.state.context
    return ctx


def db(ctx: Context = Depends(context)) -> Iterator[Session]:
    """One transaction per request: committed when the handler returns, rolled back if it raises.

    Always depend on it with ``scope="function"``, so the commit happens before the response is sent:
    a client must never see 201 for a change that then failed to commit.
    """
    with ctx.catalogue.session() as session:
        yield session


UnitOfWork = Depends(db, scope="function")  # commit before the response is sent


def caller(
    session: Session = UnitOfWork,
    bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
    api_key: str | None = Depends(_api_key),
) -> Principal:
    token = api_key or (bearer.credentials if bearer else None)
    if not token:
        raise Unauthenticated("请先登录，或在请求头中提供接入密钥（X-API-Key）", code="unauthenticated")
    return principal_from_token(session, token)


def require(permission: Permission) -> Callable[..., Principal]:
    """Dependency factory: the caller, or 401/403 with a message saying which permission is missing."""

    def check(principal: Principal = Depends(caller)) -> Principal:
        if not principal.can(permission):
            raise PermissionDenied(
                f"当前账号没有「{PERMISSION_NAMES[permission]}」权限，如需使用请联系安全保密管理员",
                code="permission_denied", detail={"permission": permission.value},
            )
        return principal

    return check


def actor_of(principal: Principal) -> Actor:
    return Actor.of(principal)
