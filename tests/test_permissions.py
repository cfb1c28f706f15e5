"""Roles and 三员分立: each protected endpoint is tried without and with its permission."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from archive import identity
from archive.api.app import create_app
from archive.audit import Actor
from archive.authorization import require
from archive.catalogue.models import ApiClient, AuditEvent, User
from archive.context import Context
from archive.errors import PermissionDenied
from archive.permissions import ROLE_PERMISSIONS, Permission, Principal
from tests.helpers import PASSWORD, add_client, add_user, login


@pytest.fixture
def client(ctx: Context) -> Iterator[TestClient]:
    for name, roles in [("clerk", ["clerk"]), ("archivist", ["archivist"]), ("auditor", ["auditor"]),
                        ("admin", ["admin"]), ("sec", ["security_officer"])]:
        add_user(ctx, name, roles)
    with TestClient(create_app(context=ctx)) as c:
        yield c


def _events(ctx: Context, outcome: str = "success") -> int:
    with ctx.catalogue.sessions() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.outcome == outcome)) or 0


def test_the_three_officers_hold_disjoint_powers() -> None:
    """Given the role table, when the three officers' permissions are compared (三员分立), then none holds another's
    power, the auditor only reads audit and check records, and none of them reads business records."""
    admin, sec, auditor = (ROLE_PERMISSIONS[r] for r in ("admin", "security_officer", "auditor"))
    assert Permission.AUDIT_READ not in admin | sec
    assert Permission.ROLE_ASSIGN not in admin | auditor
    assert auditor == {Permission.AUDIT_READ, Permission.CHECK_READ, Permission.DQ_READ}  # reads, changes nothing
    assert not (admin | sec | auditor) & {Permission.CASE_READ, Permission.ITEM_READ, Permission.PII_READ}


@pytest.mark.parametrize(("user", "allowed"), [("auditor", True), ("admin", False), ("sec", False),
                                               ("clerk", False), ("archivist", False)])
def test_only_the_auditor_reads_the_audit_log(client: TestClient, user: str, allowed: bool) -> None:
    """Given each role, when it reads the audit log or verifies it, then only the auditor gets 200 (and an intact
    chain); every other role gets 403 permission_denied naming 审计日志."""
    headers = login(client, user)
    for path in ("/api/v1/audit/events", "/api/v1/audit/verify"):
        r = client.get(path, headers=headers)
        assert r.status_code == (200 if allowed else 403), r.text
        if not allowed:
            assert r.json()["code"] == "permission_denied" and "审计日志" in r.json()["message"]
    if allowed:
        assert client.get("/api/v1/audit/verify", headers=headers).json()["ok"] is True


def test_admin_creates_accounts_without_roles_and_security_officer_grants_them(ctx: Context,
                                                                               client: TestClient) -> None:
    """Given the three officers, when the auditor creates an account or the admin creates one with roles, then 403
    and nothing changes; the admin creates it without roles, only the security officer grants them, each success
    is audited and the password is kept as an argon2 hash."""
    admin, sec, auditor = login(client, "admin"), login(client, "sec"), login(client, "auditor")
    body = {"username": "newclerk", "password": "long-enough-1", "display_name": "新柜员", "branch": "BR03"}
    before, refused = _events(ctx), _events(ctx, "refused")
    assert client.post("/api/v1/users", json=body, headers=auditor).status_code == 403
    assert client.post("/api/v1/users", json={**body, "roles": ["clerk"]}, headers=admin).status_code == 403
    assert _events(ctx) == before  # refusals change nothing but leave their record
    assert _events(ctx, "refused") == refused + 2
    r = client.post("/api/v1/users", json=body, headers=admin)
    assert r.status_code == 201 and r.json()["roles"] == []
    assert client.put("/api/v1/users/newclerk/roles", json={"roles": ["clerk"]}, headers=admin).status_code == 403
    assert _events(ctx, "refused") == refused + 3
    r = client.put("/api/v1/users/newclerk/roles", json={"roles": ["clerk"]}, headers=sec)
    assert r.status_code == 200 and r.json()["roles"] == ["clerk"]
    assert _events(ctx) == before + 2
    with ctx.catalogue.sessions() as s:
        stored = s.scalar(select(User).where(User.username == "newclerk"))
        assert stored is not None and stored.password_hash.startswith("$argon2")
        assert "long-enough-1" not in stored.password_hash


def test_one_person_cannot_hold_two_of_the_three_officer_roles(client: TestClient) -> None:
    """Given the security officer, when they give one person the admin and auditor roles, then 422
    separation_of_duties."""
    r = client.put("/api/v1/users/admin/roles", json={"roles": ["admin", "auditor"]}, headers=login(client, "sec"))
    assert r.status_code == 422 and r.json()["code"] == "separation_of_duties"


def test_unknown_role_and_duplicate_user_are_clear_errors(client: TestClient) -> None:
    """Given existing users, when an unknown role is granted, an existing user created again or roles given to an
    unknown user, then 422 unknown_role, 409 user_exists and 404."""
    sec, admin = login(client, "sec"), login(client, "admin")
    r = client.put("/api/v1/users/clerk/roles", json={"roles": ["superuser"]}, headers=sec)
    assert r.status_code == 422 and r.json()["code"] == "unknown_role"
    r = client.post("/api/v1/users", json={"username": "clerk", "password": "long-enough-1"}, headers=admin)
    assert r.status_code == 409 and r.json()["code"] == "user_exists"
    r = client.put("/api/v1/users/ghost/roles", json={"roles": ["clerk"]}, headers=sec)
    assert r.status_code == 404


def test_clients_are_issued_and_revoked_by_the_admin_with_hashed_keys(ctx: Context, client: TestClient) -> None:
    """Given the admin, when a clerk tries to issue a client key, then 403; the admin's key works and only its hash
    is stored, an unknown scope is 422 unknown_scope, and after revocation the key is 401 revoked_api_key."""
    admin = login(client, "admin")
    assert client.post("/api/v1/clients", json={"name": "core", "scopes": ["data.read"]},
                       headers=login(client, "clerk")).status_code == 403
    r = client.post("/api/v1/clients", json={"name": "core", "scopes": ["data.read"]}, headers=admin)
    assert r.status_code == 201
    key = r.json()["key"]
    with ctx.catalogue.sessions() as s:
        stored = s.scalar(select(ApiClient).where(ApiClient.name == "core"))
        assert stored is not None and key.split("_", 2)[2] not in stored.key_hash
    assert client.get("/api/v1/cases", headers={"X-API-Key": key}).status_code == 200
    r = client.post("/api/v1/clients", json={"name": "bad", "scopes": ["everything"]}, headers=admin)
    assert r.status_code == 422 and r.json()["code"] == "unknown_scope"
    assert client.post("/api/v1/clients/core/revoke", headers=admin).status_code == 200
    r = client.get("/api/v1/cases", headers={"X-API-Key": key})
    assert r.status_code == 401 and r.json()["code"] == "revoked_api_key"


def test_client_scope_limits_what_it_can_do(ctx: Context, client: TestClient) -> None:
    """Given a client with images.read only, when it lists cases, then 403 saying it may not 查看业务."""
    admin = login(client, "admin")
    key = client.post("/api/v1/clients", json={"name": "images-only", "scopes": ["images.read"]},
                      headers=admin).json()["key"]
    r = client.get("/api/v1/cases", headers={"X-API-Key": key})
    assert r.status_code == 403 and "查看业务" in r.json()["message"]


def _refusals(ctx: Context) -> list[AuditEvent]:
    with ctx.catalogue.sessions() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.outcome == "refused").order_by(AuditEvent.seq)))


def test_a_refusal_at_any_front_end_is_audited_by_the_one_check(ctx: Context, client: TestClient) -> None:
    """Given a clerk without 审计 rights and a portal without the images scope, When they ask for the audit log, a
    page image, the access register and a search they may not make, Then each is 403 as before and each refusal
    is on record (permission.denied, the route asked for, the permission missing), in a chain that still verifies."""
    clerk, portal = login(client, "clerk"), add_client(ctx, "portal", ["data.read"])
    admin = login(client, "admin")
    asks = [("/api/v1/audit/events", clerk), ("/api/v1/documents/1/pages/1", portal),
            ("/api/v1/access-events", clerk), ("/api/v1/search?serial=YW1", admin)]
    for path, headers in asks:
        r = client.get(path, headers=headers)
        assert r.status_code == 403 and r.json()["code"] == "permission_denied", r.text
    events = _refusals(ctx)
    assert [(e.actor, e.action, e.target_type, e.target_id) for e in events] == [
        ("clerk", "permission.denied", "api", "GET /api/v1/audit/events"),
        ("portal", "permission.denied", "api", "GET /api/v1/documents/{document_id}/pages/{page}"),
        ("clerk", "permission.denied", "api", "GET /api/v1/access-events"),
        ("admin", "permission.denied", "api", "GET /api/v1/search")]
    assert events[0].detail["permissions"] == ["audit.read"] and events[0].detail["code"] == "permission_denied"
    assert events[3].detail["permissions"] == ["case.read", "item.read"]
    assert client.get("/api/v1/audit/verify", headers=login(client, "auditor")).json()["ok"] is True


def test_the_check_records_a_refusal_though_the_callers_transaction_rolls_back(ctx: Context) -> None:
    """Given a session that has already changed something and a person lacking the permission (as the CLI and the
    web UI call it), When the domain check refuses, Then PermissionDenied names the permission in Chinese, the
    refusal is recorded under the step's action, and the caller's change is not kept."""
    principal = Principal("user", 1, "clerk", ROLE_PERMISSIONS["clerk"], ("clerk",))
    with pytest.raises(PermissionDenied) as refused, ctx.catalogue.session() as s:
        identity.add_user(s, Actor.system("test"), "ghost", PASSWORD, "ghost", [], None)
        require(s, principal, Permission.HOLD_MANAGE, action="hold.set", target_type="hold")
    assert refused.value.code == "permission_denied" and "冻结与解除冻结" in refused.value.message
    assert refused.value.kind == "forbidden" and refused.value.recorded
    [event] = _refusals(ctx)
    assert (event.actor, event.action, event.target_type) == ("clerk", "hold.set", "hold")
    with ctx.catalogue.sessions() as s:
        assert s.scalar(select(User).where(User.username == "ghost")) is None
