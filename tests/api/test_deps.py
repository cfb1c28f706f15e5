"""Request dependencies: what a request costs in trips to the thread pool, and the unit of work's ends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from archive.catalogue.models import AuditEvent, Case
from archive.context import Context
from tests.helpers import add_client

NEW_CASE = {"serial": "YW2026010500009", "business_type": "GJ09", "unit": {"name": "示例单位"}, "branch": "BR01",
            "clerk": "张三"}


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    trips: list[str] = []
    plain = anyio.to_thread.run_sync

    async def run_sync(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        trips.append(getattr(func, "__qualname__", repr(func)))
        return await plain(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", run_sync)
    return trips


def test_a_known_api_key_costs_the_route_and_the_commit_only(ctx: Context, client: TestClient,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a business system whose key was checked moments ago, When it reads a case, Then the request goes to the
    thread pool three times: the route, FastAPI's validation of a sync route's answer, the unit of work's commit.
    The context, the session's start, the caller and the permission check run on the event loop (each was a trip
    of its own, seven in all: about 0.2 ms each, issue 17)."""
    core = add_client(ctx, "core", ["cases.write", "data.read"])
    assert client.post("/api/v1/cases", json=NEW_CASE, headers=core).status_code == 201  # the key is remembered
    trips = _counting(monkeypatch)
    r = client.get(f"/api/v1/cases/{NEW_CASE['serial']}", headers=core)
    assert r.status_code == 200, r.text
    assert len(trips) == 3, "\n".join(trips)
    assert "read_case" in trips[0] and "validate" in trips[1] and "__exit__" in trips[2]


def test_the_unit_of_work_commits_what_the_route_wrote_and_refusals_stay_audited(ctx: Context,
                                                                                 client: TestClient) -> None:
    """The session begun on the event loop still commits what the route wrote; a caller without the permission is
    refused (403) by the check on the event loop, and the refusal is audited on a worker thread."""
    core = add_client(ctx, "core", ["cases.write", "data.read"])
    assert client.post("/api/v1/cases", json=NEW_CASE, headers=core).status_code == 201
    with ctx.catalogue.reading() as r:
        assert r.scalar(select(func.count()).select_from(Case).where(Case.serial == NEW_CASE["serial"])) == 1
    reader = add_client(ctx, "reader", ["data.read"])
    refused = client.post("/api/v1/cases", json={**NEW_CASE, "serial": "YW2026010500010"}, headers=reader)
    assert refused.status_code == 403, refused.text
    with ctx.catalogue.reading() as r:
        assert r.scalar(select(func.count()).select_from(Case).where(Case.serial == "YW2026010500010")) == 0
        assert r.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.actor == "reader", AuditEvent.outcome == "refused")) == 1
    unknown = client.get("/api/v1/cases/YW2026010500009", headers={"X-API-Key": "ak_nope_nope"})
    assert unknown.status_code == 401 and unknown.json()["code"] == "invalid_api_key"


def test_a_cancelled_request_still_rolls_its_unit_of_work_back(ctx: Context) -> None:
    """Given a request whose client went away (its task cancelled) while it held a transaction, Then the unit of
    work is still rolled back and closed: on SQLite an open write transaction would hold the database's write lock
    until the session happened to be collected."""
    from sqlalchemy import text

    from archive.api import deps

    async def scenario() -> bool:
        unit = deps.db(ctx)
        session = await unit.__anext__()
        session.execute(text("SELECT 1"))
        assert session.in_transaction()
        cancelled = anyio.get_cancelled_exc_class()
        with anyio.CancelScope() as scope:
            scope.cancel()
            with pytest.raises(cancelled):
                await unit.athrow(cancelled())
        return session.in_transaction()

    assert anyio.run(scenario) is False
