"""People's logins, throttled, for the API and the CLI alike.

A user name is locked for ``login_lock_minutes`` after ``login_max_failures`` consecutive wrong passwords (429
``account_locked``); a client address is refused (429 ``login_throttled``) once ``login_max_failures_per_address``
logins from it failed within the same window. While refused, no password is checked. The state lives in the
catalogue (``login_lock``, ``login_failure``), so every API process and the CLI share it.

Locks are kept per name as typed, known or not: an unknown name is answered exactly like a known one.
Every attempt leaves one audit event, ``auth.login`` or ``auth.login.failed`` (detail: client address and the
refusal's code, never the password); a lock adds ``auth.account.locked``, an administrator's unlock
``auth.account.unlocked``.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from archive import audit, identity, metrics
from archive.audit import Actor
from archive.catalogue.models import LoginFailure, LoginLock, User
from archive.catalogue.types import utcnow
from archive.context import Context
from archive.errors import ArchiveError, Unauthenticated

THROTTLE = Actor("system", "login-throttle")
NAME_LEN = 100  # longer names cannot exist (64 at most); they share the lock of their first 100 characters


class LoginRefused(ArchiveError):
    """Too many failed logins: for this user name (account_locked) or from this address (login_throttled)."""

    kind = "rate_limited"
    code = "login_refused"

    def __init__(self, message: str, *, code: str, until: datetime, now: datetime) -> None:
        self.retry_after = max(1, math.ceil((until - now).total_seconds()))
        super().__init__(message, code=code, detail={"retry_after": self.retry_after, "until": until.isoformat()})


def login(ctx: Context, username: str, password: str, *, address: str | None, via: str,
          hours: int) -> tuple[str, datetime, User]:
    """Check the password unless the name or address is refused; issue a token; count and audit failures.

    ``address`` is the client's address (None: not throttled per address, as for the CLI).
    """
    now = utcnow()
    where = {k: v for k, v in (("via", via), ("address", address)) if v is not None}
    with ctx.catalogue.session() as s:
        failure: ArchiveError | None = _refusal(s, ctx, username, address, now)
        if failure is None:
            try:
                token, expires, user = identity.login(s, username, password, hours)
            except Unauthenticated as exc:
                failure = exc
            else:
                lock = s.get(LoginLock, username[:NAME_LEN])
                if lock is not None and (lock.failures or lock.locked_until is not None):
                    lock.failures, lock.locked_until, lock.updated_at = 0, None, now
                audit.record(s, Actor("user", user.username), "auth.login", target_type="user",
                             target_id=user.username, detail=where)
                return token, expires, user
        audit.record(s, Actor("user", username), "auth.login.failed", target_type="user", target_id=username,
                     outcome="failure", detail={**where, "code": failure.code})
        if isinstance(failure, Unauthenticated):  # a wrong password (not a refusal): it counts
            failure = _count_failure(s, ctx, username, address, now) or failure
    metrics.login_failed(failure.code)
    raise failure


def _window(ctx: Context) -> timedelta:
    return timedelta(minutes=ctx.settings.login_lock_minutes)


def _refusal(s: Session, ctx: Context, username: str, address: str | None, now: datetime) -> LoginRefused | None:
    limit = ctx.settings.login_max_failures_per_address
    if address is not None:
        recent = s.scalars(select(LoginFailure.at).where(LoginFailure.address == address[:64],
                                                         LoginFailure.at > now - _window(ctx))
                           .order_by(LoginFailure.at.desc()).limit(limit)).all()
        if len(recent) >= limit:  # open again once the limit-th newest failure leaves the window
            until = recent[-1] + _window(ctx)
            return LoginRefused(f"该地址登录失败次数过多，请约 {_minutes(until, now)} 分钟后重试",
                                code="login_throttled", until=until, now=now)
    lock = s.get(LoginLock, username[:NAME_LEN])
    if lock is not None and lock.locked_until is not None and lock.locked_until > now:
        return _locked(ctx, lock.locked_until, now)
    return None


def _count_failure(s: Session, ctx: Context, username: str, address: str | None,
                   now: datetime) -> LoginRefused | None:
    """Count one wrong password; lock the name at the limit. Runs after the failure's audit event, whose
    chain-head row lock makes concurrent failures (of any process) count one after the other."""
    if address is not None:
        s.execute(delete(LoginFailure).where(LoginFailure.at <= now - _window(ctx)))  # aged out of every window
        s.add(LoginFailure(address=address[:64], username=username[:NAME_LEN], at=now))
    lock = s.get(LoginLock, username[:NAME_LEN], with_for_update=True, populate_existing=True)
    if lock is None:
        lock = LoginLock(username=username[:NAME_LEN], failures=0)
        s.add(lock)
    if lock.locked_until is not None and lock.locked_until <= now:  # a lock served: count afresh
        lock.failures, lock.locked_until = 0, None
    if lock.locked_until is not None:  # locked meanwhile by a concurrent attempt: once is enough
        return _locked(ctx, lock.locked_until, now)
    lock.failures, lock.updated_at = lock.failures + 1, now
    if lock.failures < ctx.settings.login_max_failures:
        return None
    lock.locked_until = now + _window(ctx)
    metrics.account_locked()
    audit.record(s, THROTTLE, "auth.account.locked", target_type="user", target_id=username,
                 detail={"failures": lock.failures, "until": lock.locked_until.isoformat(),
                         **({"address": address} if address is not None else {})})
    return _locked(ctx, lock.locked_until, now)


def _locked(ctx: Context, until: datetime, now: datetime) -> LoginRefused:
    return LoginRefused(f"登录失败次数过多，账号已暂时锁定，请于 {until.astimezone(ctx.zone):%Y-%m-%d %H:%M} 后"
                        f"（约 {_minutes(until, now)} 分钟）重试；如需提前解锁请联系系统管理员",
                        code="account_locked", until=until, now=now)


def _minutes(until: datetime, now: datetime) -> int:
    return max(1, math.ceil((until - now).total_seconds() / 60))


def unlock(s: Session, actor: Actor, username: str) -> bool:
    """Lift a user's lock and clear the count of failures (系统管理员); False when there was nothing to lift."""
    identity.get_user(s, username)  # 404 user_not_found
    lock = s.get(LoginLock, username[:NAME_LEN], with_for_update=True)
    if lock is None or (lock.failures == 0 and lock.locked_until is None):
        return False
    detail: dict[str, Any] = {"failures": lock.failures,
                              "locked_until": lock.locked_until.isoformat() if lock.locked_until else None}
    lock.failures, lock.locked_until, lock.updated_at = 0, None, utcnow()
    audit.record(s, actor, "auth.account.unlocked", target_type="user", target_id=username, detail=detail)
    return True


def locks(s: Session, usernames: list[str] | None = None) -> dict[str, datetime]:
    """Names locked now, with the end of their lock."""
    q = select(LoginLock).where(LoginLock.locked_until > utcnow())
    if usernames is not None:
        q = q.where(LoginLock.username.in_(usernames))
    return {lock.username: lock.locked_until for lock in s.scalars(q) if lock.locked_until is not None}
