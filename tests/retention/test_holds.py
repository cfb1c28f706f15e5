"""Holds (冻结): set on items, cases or a query's result; store legal hold; audited lifting."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from archive.catalogue.models import ArchiveItem, AuditEvent, Document, Hold
from archive.catalogue.types import utcnow
from archive.context import Context
from archive.retention.holds import held_item_ids
from tests.factories import stored_item
from tests.helpers import add_user, login

PAST = date(2020, 1, 1)


def make_item(ctx: Context, *, serial: str | None = None, business_type: str = "TQ01", category: str = "TQ",
              expiry: date | None = PAST, trigger_date: date | None = date(2009, 6, 1), branch: str = "BR01",
              retain_until: datetime | None = None, year: int = 2009, documents: int = 2,
              shared: bytes | None = None, trigger: str = "BUSINESS_CLOSED") -> str:
    """A filed item whose retention has run out (by default), straight into the catalogue and store: its 档号."""
    originals = [f"original {serial} {year} {i}".encode() + os.urandom(8) for i in range(documents)]
    if shared is not None:
        originals.append(shared)
    return stored_item(ctx, serial=serial, year=year, category=category, business_type=business_type,
                       branch=branch, originals=originals, trigger=trigger, trigger_date=trigger_date,
                       expiry=expiry, retain_until=retain_until).archival_code


def keys_of(ctx: Context, code: str) -> list[str]:
    with ctx.catalogue.session() as s:
        item = s.scalar(select(ArchiveItem).where(ArchiveItem.archival_code == code))
        assert item is not None
        docs = s.scalars(select(Document.original_key).where(Document.case_id == item.case_id))
        return [str(item.rendition_key), *docs]


def item_id(ctx: Context, code: str) -> int:
    with ctx.catalogue.session() as s:
        found = s.scalar(select(ArchiveItem.id).where(ArchiveItem.archival_code == code))
        assert found is not None
        return found


def events(ctx: Context, action: str, outcome: str | None = None) -> list[AuditEvent]:
    with ctx.catalogue.session() as s:
        stmt = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
        if outcome:
            stmt = stmt.where(AuditEvent.outcome == outcome)
        return list(s.scalars(stmt))


def expire_locks(ctx: Context, keys: list[str]) -> None:
    """Let time pass for these objects: their retention ended yesterday (the store's own metadata)."""
    yesterday = utcnow().replace(microsecond=0) - timedelta(days=1)
    for store in [s for _, s in getattr(ctx.store, "copies", ())] or [ctx.store]:
        for key in keys:
            store._write_meta(replace(store.stat(key), retain_until=yesterday))


def add_people(ctx: Context, client: TestClient) -> dict[str, dict[str, str]]:
    """An archivist, the head of the archive (both may approve destruction) and a clerk, logged in."""
    add_user(ctx, "arch", ["archivist"])
    add_user(ctx, "head", ["archive_head"])
    add_user(ctx, "clerk", ["clerk"])
    return {name: login(client, name) for name in ("arch", "head", "clerk")}


@pytest.fixture
def people(ctx: Context, client: TestClient) -> dict[str, dict[str, str]]:
    return add_people(ctx, client)


HOLD = {"reason": "诉讼保全", "authority": "北京市朝阳区人民法院", "document_no": "（2026）京0105民初123号"}


def test_hold_on_items_sets_store_legal_hold_and_blocks(ctx: Context, client: TestClient,
                                                        people: dict[str, Any]) -> None:
    """Given two items, when one is held by 档号, then only its objects carry the legal hold and it is held."""
    a, b = make_item(ctx), make_item(ctx)
    r = client.post("/api/v1/holds", json={**HOLD, "archival_codes": [a]}, headers=people["arch"])
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "active" and body["item_count"] == 1 and body["archival_codes"] == [a]
    assert body["authority"] == HOLD["authority"] and body["document_no"] == HOLD["document_no"]
    assert all(ctx.store.stat(k).legal_hold for k in keys_of(ctx, a))
    assert not any(ctx.store.stat(k).legal_hold for k in keys_of(ctx, b))
    ia, ib = item_id(ctx, a), item_id(ctx, b)
    with ctx.catalogue.session() as s:
        assert held_item_ids(s, [ia, ib]) == {ia}
    [event] = events(ctx, "hold.set", "success")
    assert event.actor == "arch" and event.detail["archival_codes"] == [a] and event.detail["items"] == 1


def test_hold_on_cases_by_serial(ctx: Context, client: TestClient, people: dict[str, Any]) -> None:
    """Given a filed item, when the archive head holds its case by serial, then 201 with scope cases and the item's
    档号 listed."""
    code = make_item(ctx, serial="YW2009010199999")
    r = client.post("/api/v1/holds", json={**HOLD, "serials": ["YW2009010199999"]}, headers=people["head"])
    assert r.status_code == 201, r.text
    assert r.json()["scope"] == "cases" and r.json()["archival_codes"] == [code]


def test_hold_on_query_records_items_matched_at_the_time(ctx: Context, client: TestClient,
                                                         people: dict[str, Any]) -> None:
    """Given items of two branches, when held by query, then only the matching ones are held, and a later
    item matching the same query is not."""
    a = make_item(ctx, branch="BR07", year=2010)
    make_item(ctx, branch="BR08", year=2010)
    make_item(ctx, branch="BR07", year=2011)
    r = client.post("/api/v1/holds", json={**HOLD, "query": {"branch": "BR07", "year": 2010}},
                    headers=people["arch"])
    assert r.status_code == 201, r.text
    assert r.json()["archival_codes"] == [a] and r.json()["criteria"] == {"query": {"branch": "BR07", "year": 2010}}
    later = item_id(ctx, make_item(ctx, branch="BR07", year=2010))
    with ctx.catalogue.session() as s:
        assert held_item_ids(s, [later]) == set()


def test_empty_query_and_no_scope_are_refused(ctx: Context, client: TestClient, people: dict[str, Any]) -> None:
    """Given a hold request with an empty query, with no scope at all, or with a query that matches nothing, when it
    is sent, then 422 empty_hold_query, 422 hold_scope_required and 409 hold_matches_nothing, each refusal
    audited."""
    r = client.post("/api/v1/holds", json={**HOLD, "query": {}}, headers=people["arch"])
    assert r.status_code == 422 and r.json()["code"] == "empty_hold_query"
    r = client.post("/api/v1/holds", json=HOLD, headers=people["arch"])
    assert r.status_code == 422 and r.json()["code"] == "hold_scope_required"
    r = client.post("/api/v1/holds", json={**HOLD, "query": {"branch": "NOWHERE"}}, headers=people["arch"])
    assert r.status_code == 409 and r.json()["code"] == "hold_matches_nothing"
    assert len(events(ctx, "hold.set", "refused")) == 3


def test_unknown_archival_code_refuses_the_whole_hold(ctx: Context, client: TestClient,
                                                      people: dict[str, Any]) -> None:
    """Given one real and one unknown 档号, when held, then 404 naming the unknown one; nothing held; audited."""
    a = make_item(ctx)
    r = client.post("/api/v1/holds", json={**HOLD, "archival_codes": [a, "J001-YW·2009-D30-TQ-999999"]},
                    headers=people["arch"])
    assert r.status_code == 404
    assert r.json()["code"] == "unknown_archival_code" and "不存在" in r.json()["message"]
    assert r.json()["detail"]["unknown"] == ["J001-YW·2009-D30-TQ-999999"]
    with ctx.catalogue.session() as s:
        assert s.scalar(select(Hold)) is None
    assert not any(ctx.store.stat(k).legal_hold for k in keys_of(ctx, a))
    [refused] = events(ctx, "hold.set", "refused")
    assert refused.actor == "arch" and refused.detail["code"] == "unknown_archival_code"


def test_setting_a_hold_needs_the_role(ctx: Context, client: TestClient, people: dict[str, Any]) -> None:
    """Given a filed item, when a clerk tries to hold it, then 403 permission_denied, no object gets a legal hold and
    the refusal is audited under the clerk's name."""
    a = make_item(ctx)
    r = client.post("/api/v1/holds", json={**HOLD, "archival_codes": [a]}, headers=people["clerk"])
    assert r.status_code == 403 and r.json()["code"] == "permission_denied"
    assert not any(ctx.store.stat(k).legal_hold for k in keys_of(ctx, a))
    assert events(ctx, "hold.set", "refused")[0].actor == "clerk"


def test_lifting_without_the_role_is_refused_and_audited(ctx: Context, client: TestClient,
                                                         people: dict[str, Any]) -> None:
    """Given an active hold, when a clerk tries to lift it, then 403 saying 冻结与解除冻结 is needed, the hold stays
    active, its objects keep their legal hold and the refusal is audited against the hold."""
    a = make_item(ctx)
    hold_id = client.post("/api/v1/holds", json={**HOLD, "archival_codes": [a]}, headers=people["arch"]).json()["id"]
    r = client.post(f"/api/v1/holds/{hold_id}/lift", json={"reason": "结案"}, headers=people["clerk"])
    assert r.status_code == 403 and r.json()["code"] == "permission_denied" and "冻结与解除冻结" in r.json()["message"]
    assert client.get(f"/api/v1/holds/{hold_id}", headers=people["arch"]).json()["status"] == "active"
    assert all(ctx.store.stat(k).legal_hold for k in keys_of(ctx, a))
    [refused] = events(ctx, "hold.lift", "refused")
    assert refused.actor == "clerk" and refused.target_id == str(hold_id)


def test_lifting_needs_a_reason(ctx: Context, client: TestClient, people: dict[str, Any]) -> None:
    """Given an active hold, when an archivist lifts it with a blank reason, then 422 reason_required."""
    a = make_item(ctx)
    hold_id = client.post("/api/v1/holds", json={**HOLD, "archival_codes": [a]}, headers=people["arch"]).json()["id"]
    r = client.post(f"/api/v1/holds/{hold_id}/lift", json={"reason": "  "}, headers=people["arch"])
    assert r.status_code == 422 and r.json()["code"] == "reason_required"


def test_lifting_keeps_store_hold_where_another_hold_covers(ctx: Context, client: TestClient,
                                                            people: dict[str, Any]) -> None:
    """Given items a and b sharing one original, a held twice and b once, when holds are lifted one by one,
    then the store's legal hold goes only from objects no active hold covers any more."""
    shared = b"the same scanned page in two cases"
    a, b = make_item(ctx, shared=shared), make_item(ctx, shared=shared)
    first = client.post("/api/v1/holds", json={**HOLD, "archival_codes": [a]}, headers=people["arch"]).json()["id"]
    second = client.post("/api/v1/holds", json={**HOLD, "archival_codes": [a, b]},
                         headers=people["head"]).json()["id"]
    r = client.post(f"/api/v1/holds/{second}/lift", json={"reason": "审计结束"}, headers=people["arch"])
    assert r.status_code == 200 and r.json()["status"] == "lifted" and r.json()["lifted_by"] == "arch"
    shared_key = set(keys_of(ctx, a)) & set(keys_of(ctx, b))
    assert len(shared_key) == 1
    assert all(ctx.store.stat(k).legal_hold for k in keys_of(ctx, a))  # a still under the first hold
    only_b = set(keys_of(ctx, b)) - shared_key
    assert not any(ctx.store.stat(k).legal_hold for k in only_b)
    r = client.post(f"/api/v1/holds/{second}/lift", json={"reason": "再次"}, headers=people["arch"])
    assert r.status_code == 409 and r.json()["code"] == "hold_not_active"
    assert client.post(f"/api/v1/holds/{first}/lift", json={"reason": "判决生效"},
                       headers=people["arch"]).status_code == 200
    assert not any(ctx.store.stat(k).legal_hold for k in keys_of(ctx, a) + keys_of(ctx, b))
    lifts = events(ctx, "hold.lift", "success")
    assert [e.detail["reason"] for e in lifts] == ["审计结束", "判决生效"]
    ia, ib = item_id(ctx, a), item_id(ctx, b)
    with ctx.catalogue.session() as s:
        assert held_item_ids(s, [ia, ib]) == set()


def test_hold_list_and_unknown_hold(ctx: Context, client: TestClient, people: dict[str, Any]) -> None:
    """Given one active hold, when an archivist lists active holds, then it is listed with its item count; a clerk
    may not list (403) and lifting an unknown hold is 404 hold_not_found."""
    a = make_item(ctx)
    client.post("/api/v1/holds", json={**HOLD, "archival_codes": [a]}, headers=people["arch"])
    r = client.get("/api/v1/holds?status=active", headers=people["arch"])
    assert r.status_code == 200 and [h["item_count"] for h in r.json()] == [1]
    assert client.get("/api/v1/holds", headers=people["clerk"]).status_code == 403
    r = client.post("/api/v1/holds/999/lift", json={"reason": "x"}, headers=people["arch"])
    assert r.status_code == 404 and r.json()["code"] == "hold_not_found"


@pytest.mark.parametrize("bounds", [{"filed_to": "9999-12-31"}, {"filed_from": "0001-01-01"},
                                    {"filed_from": "1899-12-31", "filed_to": "2026-01-01"}])
def test_query_dates_out_of_range_are_a_clear_422(ctx: Context, client: TestClient, people: dict[str, Any],
                                                  bounds: dict[str, str]) -> None:
    """Given a query hold with a 归档日期 far outside any real date, it is refused as 422 (not a 500), audited,
    and no hold is set; the bounds themselves are accepted."""
    make_item(ctx)
    r = client.post("/api/v1/holds", json={**HOLD, "query": bounds}, headers=people["arch"])
    assert r.status_code == 422 and r.json()["code"] == "filed_date_out_of_range", r.text
    assert "归档日期" in r.json()["message"]
    assert [e.detail["code"] for e in events(ctx, "hold.set", "refused")] == ["filed_date_out_of_range"]
    assert client.get("/api/v1/holds", headers=people["arch"]).json() == []
    r = client.post("/api/v1/holds", json={**HOLD, "query": {"filed_from": "1900-01-01", "filed_to": "2199-12-31"}},
                    headers=people["arch"])
    assert r.status_code == 201, r.text
