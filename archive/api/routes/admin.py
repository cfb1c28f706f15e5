"""Accounts (系统管理员), roles (安全保密管理员) and business-system clients."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from archive import authorization, identity, logins
from archive.api.deps import UnitOfWork, actor_of, require
from archive.catalogue.models import User
from archive.permissions import Permission, Principal

router = APIRouter(prefix="/api/v1", tags=["administration"])


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=64, examples=["clerk02"])
    display_name: str = Field("", max_length=100, examples=["王小明"])
    password: str = Field(min_length=8, max_length=256)
    roles: list[str] = Field(default_factory=list, examples=[["clerk"]])
    branch: str | None = Field(None, max_length=32, examples=["BR01"])


class UserOut(BaseModel):
    username: str
    display_name: str
    roles: list[str]
    branch: str | None
    active: bool
    locked_until: datetime | None = Field(None, description="登录失败过多而锁定时，锁定到何时")


class RolesIn(BaseModel):
    roles: list[str] = Field(examples=[["archivist"]])


class ClientIn(BaseModel):
    name: str = Field(min_length=1, max_length=100, examples=["core-system"])
    scopes: list[str] = Field(min_length=1, examples=[["data.read", "images.read"]])
    branches: list[str] | None = Field(None, examples=[["BR01"]])
    expires_at: datetime | None = None


class ClientOut(BaseModel):
    name: str
    scopes: list[str]
    branches: list[str] | None
    active: bool
    key: str | None = Field(None, description="只在创建时返回一次，请妥善保存")


def _user_out(u: User, locked_until: datetime | None = None) -> UserOut:
    return UserOut(username=u.username, display_name=u.display_name, roles=u.role_codes, branch=u.branch,
                   active=u.active, locked_until=locked_until)


@router.post("/users", response_model=UserOut, status_code=201, summary="新建用户（系统管理员）")
def create_user(req: UserIn, session: Session = UnitOfWork,
                p: Principal = Depends(require(Permission.USER_MANAGE))) -> UserOut:
    if req.roles:  # 三员分立: the administrator creates accounts, only the security officer grants roles
        authorization.require(session, p, Permission.ROLE_ASSIGN, action="user.create", target_type="user",
                              target_id=req.username)
    return _user_out(identity.add_user(session, actor_of(p), req.username, req.password, req.display_name,
                                       req.roles, req.branch))


@router.get("/users", response_model=list[UserOut], summary="用户列表")
def list_users(session: Session = UnitOfWork, _: Principal = Depends(require(Permission.USER_READ))) -> list[UserOut]:
    locked = logins.locks(session)
    return [_user_out(u, locked.get(u.username)) for u in session.scalars(select(User).order_by(User.username))]


@router.put("/users/{username}/roles", response_model=UserOut, summary="分配角色（安全保密管理员）")
def set_roles(username: str, req: RolesIn, session: Session = UnitOfWork,
              p: Principal = Depends(require(Permission.ROLE_ASSIGN))) -> UserOut:
    return _user_out(identity.set_roles(session, actor_of(p), username, req.roles))


@router.post("/users/{username}/unlock", response_model=UserOut, summary="解除登录锁定（系统管理员）",
             responses={404: {"description": "用户不存在（user_not_found）"}})
def unlock_user(username: str, session: Session = UnitOfWork,
                p: Principal = Depends(require(Permission.USER_MANAGE))) -> UserOut:
    logins.unlock(session, actor_of(p), username)
    return _user_out(identity.get_user(session, username))


@router.post("/clients", response_model=ClientOut, status_code=201, summary="登记业务系统并签发接入密钥")
def create_client(req: ClientIn, session: Session = UnitOfWork,
                  p: Principal = Depends(require(Permission.CLIENT_MANAGE))) -> ClientOut:
    client, key = identity.add_client(session, actor_of(p), req.name, req.scopes, req.branches, req.expires_at)
    return ClientOut(name=client.name, scopes=client.scopes, branches=client.branches, active=True, key=key)


@router.post("/clients/{name}/revoke", response_model=ClientOut, summary="吊销接入密钥")
def revoke_client(name: str, session: Session = UnitOfWork,
                  p: Principal = Depends(require(Permission.CLIENT_MANAGE))) -> ClientOut:
    c = identity.revoke_client(session, actor_of(p), name)
    return ClientOut(name=c.name, scopes=c.scopes, branches=c.branches, active=c.active)
