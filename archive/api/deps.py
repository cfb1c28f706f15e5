"""Request dependencies: the unit of work, the caller, the permission check (archive.authorization.require as a
dependency), the per-process SQLite turn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial

import anyio
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from archive import authorization
from archive.audit import Actor
from archive.context import Context
from archive.errors import Unauthenticated
from archive.identity import principal_from_token, remembered
from archive.permissions import Permission, Principal

_bearer = HTTPBearer(auto_error=False, description="登录令牌（st_…）或接入密钥（ak_…）")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="业务系统接入密钥（ak_…）")


def context_of(request: Request) -> Context:
    ctx: Context = request.app.state.context
    return ctx


async def context(request: Request) -> Context:
    """The application's context, as a dependency: ``async`` because it only reads an attribute, so FastAPI needs no
    worker thread for it (a sync dependency costs each request a trip to the thread pool and back)."""
    return context_of(request)


async def db(ctx: Context = Depends(context)) -> AsyncIterator[Session]:
    """One transaction per request: committed when the handler returns, rolled back if it raises.

    Always depend on it with ``scope="function"``, so the commit happens before the response is sent:
    a client must never see 201 for a change that then failed to commit.

    Begun on the event loop (a session connects at its first statement, not before), ended on a worker thread (the
    commit or rollback talks to the database): one trip to the thread pool a request instead of two.
    """
    unit = ctx.catalogue.session()
    session = unit.__enter__()
    try:
        yield session
    except BaseException as exc:
        with anyio.CancelScope(shield=True):  # a request cancelled (client gone) still rolls back and closes
            await run_in_threadpool(unit.__exit__, type(exc), exc, exc.__traceback__)
        raise
    await run_in_threadpool(unit.__exit__, None, None, None)


UnitOfWork = Depends(db, scope="function")  # commit before the response is sent


async def caller(
    request: Request,
    session: Session = UnitOfWork,
    bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
    api_key: str | None = Depends(_api_key),
) -> Principal:
    """The caller: an API key checked moments ago (archive.identity.remembered) without a trip to the thread pool,
    anything else looked up in the request's unit of work on a worker thread."""
    token = api_key or (bearer.credentials if bearer else None)
    if not token:
        raise Unauthenticated("请先登录，或在请求头中提供接入密钥（X-API-Key）", code="unauthenticated")
    principal = remembered(token)
    if principal is None:
        principal = await run_in_threadpool(principal_from_token, session, token)
    request.state.principal = principal  # the access log names the caller (archive/api/observe.py)
    return principal


async def quick_caller(
    request: Request,
    bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
    api_key: str | None = Depends(_api_key),
) -> Principal:
    """The caller as :func:`caller` finds it, without a unit of work: an API key checked moments ago
    (archive.identity.remembered) costs no thread and no catalogue round trip; any other token is looked up in a
    read-only transaction. For hot read-only routes (page images) whose refusals audit in their own transaction."""
    token = api_key or (bearer.credentials if bearer else None)
    if not token:
        raise Unauthenticated("请先登录，或在请求头中提供接入密钥（X-API-Key）", code="unauthenticated")
    principal = remembered(token)
    if principal is None:
        principal = await run_in_threadpool(_look_up, context_of(request), token)
    request.state.principal = principal
    return principal


def _look_up(ctx: Context, token: str) -> Principal:
    with ctx.catalogue.reading() as session:
        return principal_from_token(session, token)


def require_alone(ctx: Context, principal: Principal, permission: Permission, route: str) -> None:
    """:func:`archive.authorization.require` for a caller from :func:`quick_caller`: a refusal is audited in a
    transaction of its own (blocking: call it from a worker thread)."""
    with ctx.catalogue.session() as session:
        authorization.require(session, principal, permission, target_type="api", target_id=route)


def route_of(request: Request) -> str:
    """The operation a request asks for, as an audit target: ``GET /api/v1/items/{archival_code}``."""
    return f"{request.method} {getattr(request.scope.get('route'), 'path', request.url.path)}"


def require(*permissions: Permission, message: str | None = None) -> Callable[..., Awaitable[Principal]]:
    """Dependency factory: the caller holding one of ``permissions``, checked by
    :func:`archive.authorization.require` (401 without a caller; a refusal is audited, then 403)."""

    async def check(request: Request, session: Session = UnitOfWork,
                    principal: Principal = Depends(caller)) -> Principal:
        if not any(principal.can(p) for p in permissions):  # the refusal is audited: on a worker thread
            await run_in_threadpool(partial(authorization.require, session, principal, *permissions,
                                            target_type="api", target_id=route_of(request), message=message))
        return principal

    return check


async def sqlite_turn(request: Request) -> AsyncIterator[None]:
    """On SQLite every transaction takes the write lock (BEGIN IMMEDIATE), and waiters sleep in SQLite's busy
    handler (up to 100 ms a nap), which starves some requests for seconds under load; hot-path requests of
    this process queue on an asyncio lock instead (waiting holds no worker thread). PostgreSQL needs none."""
    lock: asyncio.Lock | None = request.app.state.sqlite_turn
    if lock is None:
        yield
        return
    async with lock:
        yield


def actor_of(principal: Principal) -> Actor:
    return Actor.of(principal)
