"""Login for people (柜员、档案管理员 …); business systems use their API key instead."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from archive import audit, identity, logins
from archive.api.deps import UnitOfWork, _bearer, caller, context
from archive.audit import Actor
from archive.context import Context
from archive.permissions import ROLE_NAMES, Principal

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64, examples=["clerk01"])
    password: str = Field(min_length=1, max_length=256, examples=["demo-pass-1"])


class LoginResponse(BaseModel):
    token: str
    expires_at: datetime
    username: str
    roles: list[str]


class Me(BaseModel):
    kind: str
    name: str
    roles: list[str]
    role_names: list[str]
    permissions: list[str]
    branches: list[str] | None


@router.post("/login", response_model=LoginResponse, summary="登录，取得令牌",
             responses={401: {"description": "用户名或密码不正确（bad_credentials）"},
                        429: {"description": "连续登录失败过多，账号暂时锁定（account_locked），或该地址失败过多"
                                             "（login_throttled）；响应头 Retry-After 给出等待秒数"}})
def login(req: LoginRequest, request: Request, ctx: Context = Depends(context)) -> LoginResponse:
    address = request.client.host if request.client else "unknown"
    token, expires, user = logins.login(ctx, req.username, req.password, address=address, via="api",
                                        hours=ctx.settings.session_hours)
    return LoginResponse(token=token, expires_at=expires, username=user.username, roles=user.role_codes)


@router.post("/logout", status_code=204, summary="注销令牌")
def logout(principal: Principal = Depends(caller), session: Session = UnitOfWork,
           bearer: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
    if bearer is not None and principal.kind == "user":
        identity.logout(session, bearer.credentials)
        audit.record(session, Actor.of(principal), "auth.logout", target_type="user",
                     target_id=principal.name)


@router.get("/me", response_model=Me, summary="当前调用者及其权限")
def me(principal: Principal = Depends(caller)) -> Me:
    return Me(kind=principal.kind, name=principal.name, roles=list(principal.roles),
              role_names=[ROLE_NAMES[r] for r in principal.roles], permissions=sorted(principal.permissions),
              branches=sorted(principal.branches) if principal.branches is not None else None)
