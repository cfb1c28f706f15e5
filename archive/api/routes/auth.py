"""Login for people (柜员、档案管理员 …); business systems use their API key instead."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from archive import audit, identity
from archive.api.deps import UnitOfWork, _bearer, caller, context
from archive.audit import Actor
from archive.context import Context
from archive.errors import Unauthenticated
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
             responses={401: {"description": "用户名或密码不正确"}})
def login(req: LoginRequest, ctx: Context = Depends(context)) -> LoginResponse:
    try:
        with ctx.catalogue.session() as s:
            token, expires, user = identity.login(s, req.username, req.password, ctx.settings.session_hours)
            audit.record(s, Actor("user", user.username), "auth.login", target_type="user", target_id=user.username)
            return LoginResponse(token=token, expires_at=expires, username=user.username, roles=user.role_codes)
    except Unauthenticated:
        with ctx.catalogue.session() as s:
            audit.record(s, Actor("user", req.username), "auth.login", target_type="user",
                         target_id=req.username, outcome="failure")
        raise


@router.post("/logout", status_code=204, summary="注销令牌")
def logout(principal: Principal = Depends(caller), session: Session = UnitOfWork,
           bearer: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
    if bearer is not None and principal.kind == "user":
        identity.logout(session, bearer.credentials)
        audit.record(session, Actor("user", principal.name), "auth.logout", target_type="user",
                     target_id=principal.name)


@router.get("/me", response_model=Me, summary="当前调用者及其权限")
def me(principal: Principal = Depends(caller)) -> Me:
    return Me(kind=principal.kind, name=principal.name, roles=list(principal.roles),
              role_names=[ROLE_NAMES[r] for r in principal.roles], permissions=sorted(principal.permissions),
              branches=sorted(principal.branches) if principal.branches is not None else None)
