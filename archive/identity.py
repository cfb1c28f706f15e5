"""People and business systems: accounts, passwords, login tokens and API keys.

Passwords are hashed with argon2id. Login tokens and API-key secrets are random 256-bit values, so
they are stored as SHA-256 digests (a slow hash adds nothing for high-entropy secrets).

An API key, once checked, is remembered in this process for :data:`KEY_CACHE_SECONDS` (the page-image hot path
then costs no catalogue round trip to authenticate): a revocation in this process forgets every remembered key
when its transaction commits, so it takes effect at once here; another process stops accepting the key within
:data:`KEY_CACHE_SECONDS`. A key's expiry is checked on every request against the remembered expiry time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from archive import audit
from archive.audit import Actor
from archive.catalogue.models import ApiClient, Role, User, UserSession
from archive.catalogue.types import utcnow
from archive.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from archive.memo import Recent
from archive.permissions import (
    ROLE_NAMES,
    SCOPES,
    SEPARATED_ROLES,
    Principal,
    permissions_of_roles,
    permissions_of_scopes,
)

_hasher = PasswordHasher()
MIN_PASSWORD = 8


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def check_roles(roles: list[str]) -> list[str]:
    unknown = [r for r in roles if r not in ROLE_NAMES]
    if unknown:
        raise InvalidInput(f"未知角色 {'、'.join(unknown)}；可用角色：{'、'.join(ROLE_NAMES)}",
                           code="unknown_role", detail={"field": "roles", "unknown": unknown})
    separated = sorted(set(roles) & SEPARATED_ROLES)
    if len(separated) > 1:
        names = "、".join(ROLE_NAMES[r] for r in separated)
        raise InvalidInput(f"三员分立：{names} 不能由同一账号兼任", code="separation_of_duties",
                           detail={"field": "roles", "roles": separated})
    return sorted(set(roles))


def add_user(session: Session, actor: Actor, username: str, password: str, display_name: str,
             roles: list[str], branch: str | None = None) -> User:
    username = username.strip()
    if not username or len(username) > 64 or not username.isprintable() or " " in username:
        raise InvalidInput("用户名不能为空、不能含空格，且不超过64个字符", code="invalid_username",
                           detail={"field": "username"})
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"密码至少 {MIN_PASSWORD} 位", code="weak_password", detail={"field": "password"})
    roles = check_roles(roles)
    if session.scalar(select(User).where(User.username == username)):
        raise Conflict(f"用户名 {username} 已存在", code="user_exists", detail={"field": "username"})
    user = User(username=username, display_name=display_name or username, password_hash=_hasher.hash(password),
                branch=branch, roles=[session.get(Role, r) for r in roles])
    session.add(user)
    session.flush()
    audit.record(session, actor, "user.create", target_type="user", target_id=username,
                 detail={"roles": roles, "branch": branch})
    return user


def set_roles(session: Session, actor: Actor, username: str, roles: list[str]) -> User:
    user = get_user(session, username)
    roles = check_roles(roles)
    before = user.role_codes
    user.roles = [session.get(Role, r) for r in roles]  # type: ignore[misc]  # check_roles: all exist
    audit.record(session, actor, "user.roles", target_type="user", target_id=username,
                 detail={"before": before, "after": roles})
    return user


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"用户 {username} 不存在", code="user_not_found")
    return user


def login(session: Session, username: str, password: str, hours: int) -> tuple[str, datetime, User]:
    """Check a password and issue a login token. The caller audits the outcome."""
    user = session.scalar(select(User).where(User.username == username))
    ok = False
    if user is not None and user.active:
        try:
            ok = _hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            ok = False
    else:
        _hasher.hash(password)  # same cost either way: no user enumeration by timing
    if not ok or user is None:
        raise Unauthenticated("用户名或密码不正确", code="bad_credentials")
    token = "st_" + secrets.token_urlsafe(32)
    expires = utcnow() + timedelta(hours=hours)
    session.add(UserSession(token_hash=_sha256(token), user_id=user.id, expires_at=expires))
    return token, expires, user


RENEW_AFTER = timedelta(minutes=5)


def renew(session: Session, token: str, hours: int) -> None:
    """Idle timeout for the web UI: each use moves the session's end to ``hours`` from now (written at most every
    :data:`RENEW_AFTER`, so a busy page does not write on every request)."""
    found = session.get(UserSession, _sha256(token))
    if found is None:
        return
    wanted = utcnow() + timedelta(hours=hours)
    if wanted - found.expires_at >= RENEW_AFTER:
        found.expires_at = wanted


def logout(session: Session, token: str) -> None:
    found = session.get(UserSession, _sha256(token))
    if found is not None:
        session.delete(found)


def add_client(session: Session, actor: Actor, name: str, scopes: list[str],
               branches: list[str] | None = None, expires_at: datetime | None = None) -> tuple[ApiClient, str]:
    """Create a business-system client; returns it with its key, shown this once only."""
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise InvalidInput(f"未知或缺少权限范围 {'、'.join(unknown)}；可用范围：{'、'.join(SCOPES)}",
                           code="unknown_scope", detail={"field": "scopes", "unknown": unknown})
    if session.scalar(select(ApiClient).where(ApiClient.name == name)):
        raise Conflict(f"接入系统 {name} 已存在", code="client_exists", detail={"field": "name"})
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    client = ApiClient(name=name, key_id=key_id, key_hash=_sha256(secret), scopes=sorted(set(scopes)),
                       branches=sorted(set(branches)) if branches else None, expires_at=expires_at)
    session.add(client)
    session.flush()
    audit.record(session, actor, "client.create", target_type="client", target_id=name,
                 detail={"scopes": client.scopes, "branches": client.branches})
    return client, f"ak_{key_id}_{secret}"


KEY_CACHE_SECONDS = 5.0
key_cache: Recent[str, tuple[Principal, datetime | None]] = Recent(KEY_CACHE_SECONDS)  # SHA-256 of the key → caller


def revoke_client(session: Session, actor: Actor, name: str) -> ApiClient:
    client = session.scalar(select(ApiClient).where(ApiClient.name == name))
    if client is None:
        raise NotFound(f"接入系统 {name} 不存在", code="client_not_found")
    if not client.active:  # a second click: the first revocation stands, nothing more to record
        when = f"{client.revoked_at:%Y-%m-%d %H:%M}" if client.revoked_at else "此前"
        raise Conflict(f"接入系统 {name} 的密钥已于 {when} 吊销，无需重复吊销", code="client_already_revoked",
                       detail={"name": name})
    client.active, client.revoked_at = False, utcnow()
    audit.record(session, actor, "client.revoke", target_type="client", target_id=name)
    key_cache.clear_on_commit(session)
    return client


def remembered(token: str) -> Principal | None:
    """The caller of an API key checked within :data:`KEY_CACHE_SECONDS` in this process, else None."""
    return _remembered_key(_sha256(token), utcnow()) if token.startswith("ak_") else None


def _remembered_key(digest: str, now: datetime) -> Principal | None:
    hit = key_cache.get(digest)
    if hit is None or (hit[1] is not None and hit[1] <= now):  # expired since: looked up again, and refused
        return None
    return hit[0]


def principal_from_token(session: Session, token: str) -> Principal:
    """Resolve a login token (``st_…``) or an API key (``ak_<id>_<secret>``) to the caller."""
    now = utcnow()
    if token.startswith("ak_"):
        digest = _sha256(token)
        known = _remembered_key(digest, now)
        if known is not None:
            return known
        parts = token.split("_", 2)
        client = session.scalar(select(ApiClient).where(ApiClient.key_id == parts[1])) if len(parts) == 3 else None
        if client is None or not hmac.compare_digest(client.key_hash, _sha256(parts[2])):
            raise Unauthenticated("接入密钥无效，请核对密钥或联系系统管理员重新签发", code="invalid_api_key")
        if not client.active:
            raise Unauthenticated("接入密钥已被吊销，请联系系统管理员重新签发", code="revoked_api_key")
        if client.expires_at is not None and client.expires_at <= now:
            raise Unauthenticated("接入密钥已过期，请联系系统管理员续期", code="expired_api_key")
        principal = Principal("client", client.id, client.name, permissions_of_scopes(client.scopes),
                              branches=frozenset(client.branches) if client.branches else None,
                              scopes=tuple(client.scopes))
        key_cache.put(digest, (principal, client.expires_at))
        return principal
    found = session.get(UserSession, _sha256(token))
    if found is None or found.expires_at <= now:
        raise Unauthenticated("登录已失效，请重新登录", code="session_expired")
    user = session.get(User, found.user_id)
    if user is None or not user.active:
        raise Unauthenticated("账号已停用，请联系系统管理员", code="user_disabled")
    roles = tuple(user.role_codes)
    return Principal("user", user.id, user.username, permissions_of_roles(roles), roles=roles,
                     branches=frozenset({user.branch}) if user.branch else None)
