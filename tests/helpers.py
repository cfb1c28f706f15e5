"""Small helpers the tests share."""

from __future__ import annotations

from fastapi.testclient import TestClient

from archive import identity
from archive.audit import Actor
from archive.context import Context

PASSWORD = "test-pass-123"


def add_user(ctx: Context, username: str, roles: list[str], branch: str | None = None) -> None:
    with ctx.catalogue.session() as s:
        identity.add_user(s, Actor.system("test"), username, PASSWORD, username, roles, branch)


def login(client: TestClient, username: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def add_client(ctx: Context, name: str, scopes: list[str], branches: list[str] | None = None) -> dict[str, str]:
    with ctx.catalogue.session() as s:
        _, key = identity.add_client(s, Actor.system("test"), name, scopes, branches)
    return {"X-API-Key": key}
