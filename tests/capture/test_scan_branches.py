"""Batch scans belong to the uploader's branch: another branch's batch, its waiting pages and its cases are
answered as if they did not exist (404), at the API as in the UI."""

from __future__ import annotations

from typing import Any

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import inspect, select

from archive.capture import scans
from archive.catalogue.db import alembic_config
from archive.catalogue.models import AuditEvent, ScanBatch, ScanPart
from archive.context import Context
from archive.permissions import Principal
from tests import samples
from tests.factories import case_body
from tests.helpers import add_client, add_user, login

A, B = "YW2026010500001", "YW2026010500002"


@pytest.fixture
def people(ctx: Context, client: TestClient) -> dict[str, dict[str, str]]:
    """clerk01 of BR01, clerk02 of BR02, and a business system that sees every branch; case A in BR01, B in BR02."""
    add_user(ctx, "clerk01", ["clerk"], "BR01")
    add_user(ctx, "clerk02", ["clerk"], "BR02")
    core = add_client(ctx, "core", ["cases.write", "data.read"])
    assert client.post("/api/v1/cases", json=case_body(serial=A), headers=core).status_code == 201
    r = client.post("/api/v1/cases", json=case_body(serial=B, branch="BR02", clerk="clerk02"), headers=core)
    assert r.status_code == 201, r.text
    return {"clerk01": login(client, "clerk01"), "clerk02": login(client, "clerk02"), "core": core}


def upload(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    """loose page | cover A | 1 page | cover of an unknown serial | 1 page"""
    page = samples.page_image
    stack = samples.stack_pdf([page("loose"), samples.cover_image(A), page("a1"),
                               samples.cover_image("YW2099123199999"), page("x1")])
    r = client.post("/api/v1/scans", headers=headers, files={"file": ("stack.pdf", stack, "application/pdf")})
    assert r.status_code == 202, r.text
    return r.json()  # type: ignore[no-any-return]


def test_a_batch_is_seen_by_its_branch_and_by_those_who_see_every_branch(
        ctx: Context, client: TestClient, people: dict[str, dict[str, str]]) -> None:
    """Given a stack uploaded by clerk01 (BR01), Then it carries BR01; clerk01 and the all-branch system see the
    batch and its two waiting parts; clerk02 (BR02) gets 404 scan_batch_not_found and an empty queue."""
    batch = upload(client, people["clerk01"])
    with ctx.catalogue.reading() as s:
        assert s.scalar(select(ScanBatch.branch)) == "BR01"
    for who in ("clerk01", "core"):
        assert client.get(f"/api/v1/scans/{batch['id']}", headers=people[who]).json()["status"] == "done"
        waiting = client.get("/api/v1/scans/unassigned", headers=people[who]).json()
        assert [p["reason"] for p in waiting] == ["before_first_cover", "unknown_serial"], who
    r = client.get(f"/api/v1/scans/{batch['id']}", headers=people["clerk02"])
    assert r.status_code == 404 and r.json()["code"] == "scan_batch_not_found"
    assert client.get("/api/v1/scans/999999", headers=people["clerk02"]).json()["code"] == "scan_batch_not_found"
    assert client.get("/api/v1/scans/unassigned", headers=people["clerk02"]).json() == []


def test_another_branchs_part_cannot_be_assigned_nor_a_part_put_into_another_branchs_case(
        ctx: Context, client: TestClient, people: dict[str, dict[str, str]]) -> None:
    """Given a waiting part of clerk01's stack, When clerk02 assigns it to her own case B, Then 404
    scan_part_not_found; When clerk01 assigns it to B (BR02), Then 404 case_not_found; the part still waits and
    no document was attached."""
    upload(client, people["clerk01"])
    part = client.get("/api/v1/scans/unassigned", headers=people["clerk01"]).json()[0]
    r = client.post(f"/api/v1/scans/parts/{part['id']}/assign", json={"serial": B}, headers=people["clerk02"])
    assert r.status_code == 404 and r.json()["code"] == "scan_part_not_found"
    r = client.post(f"/api/v1/scans/parts/{part['id']}/assign", json={"serial": B}, headers=people["clerk01"])
    assert r.status_code == 404 and r.json()["code"] == "case_not_found"
    with ctx.catalogue.reading() as s:
        row = s.get(ScanPart, part["id"])
        assert row is not None and row.status == "unassigned" and row.document_id is None
        assert s.scalar(select(AuditEvent).where(AuditEvent.action == "scan.assign")) is None
    assert client.get(f"/api/v1/cases/{B}", headers=people["core"]).json()["documents"] == []


def test_branch_of_the_uploader() -> None:
    """Given people of one branch, of several (an API client) and of all, Then their batches belong to that branch,
    the first of theirs, and to none."""
    def who(branches: frozenset[str] | None) -> Principal:
        return Principal("user", 1, "x", frozenset(), branches=branches)

    assert scans.branch_of(who(frozenset({"BR01"}))) == "BR01"
    assert scans.branch_of(who(frozenset({"BR02", "BR01"}))) == "BR01"
    assert scans.branch_of(who(None)) is None


def test_batches_from_before_the_branch_column_are_seen_only_by_all_branch_people(
        ctx: Context, client: TestClient, people: dict[str, dict[str, str]]) -> None:
    """Given a catalogue at revision 0011 holding a batch, When upgraded, Then the batch has no branch: the
    all-branch system still sees it, a branch clerk does not (its pages may be any branch's)."""
    batch = upload(client, people["core"])
    with ctx.catalogue.engine.begin() as conn:
        cfg = alembic_config(ctx.catalogue.url)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0011")
        assert "branch" not in {c["name"] for c in inspect(conn).get_columns("scan_batch")}
    ctx.catalogue.upgrade()
    with ctx.catalogue.reading() as s:
        assert s.scalar(select(ScanBatch.branch).where(ScanBatch.id == batch["id"])) is None
    assert client.get(f"/api/v1/scans/{batch['id']}", headers=people["core"]).status_code == 200
    assert client.get(f"/api/v1/scans/{batch['id']}", headers=people["clerk01"]).status_code == 404

