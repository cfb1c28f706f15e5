"""Appraisal (鉴定): the queue of expired items and keep-or-destroy decisions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from archive.catalogue.models import AppraisalDecision, ArchiveItem
from archive.context import Context
from tests.retention.test_holds import HOLD, add_people, events, keys_of, make_item

FUTURE = date.today() + timedelta(days=400)


@pytest.fixture
def people(ctx: Context, client: TestClient) -> dict[str, dict[str, str]]:
    return add_people(ctx, client)


def queue_codes(client: TestClient, headers: dict[str, str], **params: Any) -> list[str]:
    r = client.get("/api/v1/appraisal/queue", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return [i["archival_code"] for i in r.json()["items"]]


def test_queue_holds_only_expired_unheld_undecided_filed_items(ctx: Context, client: TestClient,
                                                                people: dict[str, Any]) -> None:
    """Given expired, not yet expired, pending-trigger, permanent, held and destroyed items, the queue lists
    only the expired ones that are free, oldest expiry first."""
    older = make_item(ctx, expiry=date(2019, 1, 1))
    expired = make_item(ctx, expiry=date(2020, 1, 1))
    make_item(ctx, expiry=FUTURE)
    make_item(ctx, expiry=None, trigger_date=None, category="DK", business_type="DK01", trigger="LOAN_SETTLED")
    held = make_item(ctx, expiry=date(2020, 1, 1))
    gone = make_item(ctx, expiry=date(2020, 1, 1))
    with ctx.catalogue.session() as s:
        s.scalars(select(ArchiveItem).where(ArchiveItem.archival_code == gone)).one().status = "destroyed"
    assert client.post("/api/v1/holds", json={**HOLD, "archival_codes": [held]},
                       headers=people["arch"]).status_code == 201
    r = client.get("/api/v1/appraisal/queue", headers=people["arch"])
    assert r.json()["total"] == 2 and queue_codes(client, people["arch"]) == [older, expired]
    first = r.json()["items"][0]
    assert first["title"] and first["expiry_date"] == "2019-01-01" and first["trigger"] == "BUSINESS_CLOSED"
    assert queue_codes(client, people["arch"], expired_before="2019-06-01") == [older]
    assert client.get("/api/v1/appraisal/queue", headers=people["clerk"]).status_code == 403


def test_destroy_proposal_leaves_the_queue_and_is_audited(ctx: Context, client: TestClient,
                                                          people: dict[str, Any]) -> None:
    """Given two expired items, when an archivist proposes to destroy them with a reason, then two proposed decisions
    by that archivist are recorded, the items leave the queue and each decision is audited with its reason;
    proposing one of them again is 409 already_decided."""
    a, b = make_item(ctx), make_item(ctx)
    r = client.post("/api/v1/appraisal/decisions", json={"archival_codes": [a, b], "decision": "destroy",
                                                          "reason": "保管期满，无继续保存价值"}, headers=people["arch"])
    assert r.status_code == 201, r.text
    assert r.json()["decided"] == 2 and r.json()["archival_codes"] == [a, b]
    assert queue_codes(client, people["arch"]) == []
    with ctx.catalogue.session() as s:
        decisions = list(s.scalars(select(AppraisalDecision).order_by(AppraisalDecision.id)))
        assert [(d.decision, d.status, d.decided_by) for d in decisions] == [("destroy", "proposed", "arch")] * 2
    decided = events(ctx, "appraisal.decide", "success")
    assert [e.target_id for e in decided] == [a, b] and decided[0].detail["reason"] == "保管期满，无继续保存价值"
    r = client.post("/api/v1/appraisal/decisions", json={"archival_codes": [a], "decision": "destroy",
                                                          "reason": "再提"}, headers=people["arch"])
    assert r.status_code == 409 and r.json()["code"] == "already_decided"


def test_keep_sets_new_period_and_extends_store_retention(ctx: Context, client: TestClient,
                                                          people: dict[str, Any]) -> None:
    """Given an item expired in 2020 (trigger 2009-06-01), when kept for D30 counted from the same trigger,
    then the expiry moves to 2040-01-01 and every object's store retention reaches it."""
    a = make_item(ctx, trigger_date=date(2009, 6, 1), expiry=date(2020, 1, 1))
    r = client.post("/api/v1/appraisal/decisions", json={"archival_codes": [a], "decision": "keep",
                                                          "retention_code": "D30", "reason": "涉及未结诉讼，延长保存"},
                    headers=people["arch"])
    assert r.status_code == 201, r.text
    assert r.json()["new_expiry"] == {a: "2040-01-01"}
    with ctx.catalogue.session() as s:
        item = s.scalars(select(ArchiveItem).where(ArchiveItem.archival_code == a)).one()
        assert item.expiry_date == date(2040, 1, 1) and item.retention_code == "D30"
        d = s.scalars(select(AppraisalDecision)).one()
        assert (d.decision, d.status, d.retention_code, d.previous_expiry) == ("keep", "applied", "D30",
                                                                              date(2020, 1, 1))
    until = datetime(2040, 1, 1, tzinfo=UTC)
    assert all(ctx.store.stat(k).retain_until == until for k in keys_of(ctx, a))
    assert queue_codes(client, people["arch"]) == []


def test_keep_as_permanent_never_expires(ctx: Context, client: TestClient, people: dict[str, Any]) -> None:
    """Given an expired item, when it is kept as permanent (Y), then it has no expiry, every object's store retention
    reaches past 2100, and the item shows Y in force while its 档号 keeps D30."""
    a = make_item(ctx)
    r = client.post("/api/v1/appraisal/decisions", json={"archival_codes": [a], "decision": "keep",
                                                          "retention_code": "Y", "reason": "具有永久保存价值"},
                    headers=people["arch"])
    assert r.status_code == 201 and r.json()["new_expiry"] == {a: None}
    assert all(ctx.store.stat(k).retain_until is not None and ctx.store.stat(k).retain_until.year > 2100
               for k in keys_of(ctx, a))
    with ctx.catalogue.session() as s:  # the 档号 keeps the period of filing; the item shows the one in force
        item = s.scalars(select(ArchiveItem).where(ArchiveItem.archival_code == a)).one()
        assert (item.retention_code, item.effective_retention) == ("D30", "Y")


def test_keep_with_a_period_already_over_is_refused(ctx: Context, client: TestClient,
                                                    people: dict[str, Any]) -> None:
    """Given an item whose trigger was 2009-06-01, when it is kept for D10 (over since 2020-01-01), then 422
    keep_period_too_short names the date; when kept without a period, then 422 invalid_retention_code; no decision
    is recorded."""
    a = make_item(ctx, trigger_date=date(2009, 6, 1))
    r = client.post("/api/v1/appraisal/decisions", json={"archival_codes": [a], "decision": "keep",
                                                          "retention_code": "D10", "reason": "再保存"},
                    headers=people["arch"])
    assert r.status_code == 422 and r.json()["code"] == "keep_period_too_short" and "2020-01-01" in r.json()["message"]
    r = client.post("/api/v1/appraisal/decisions", json={"archival_codes": [a], "decision": "keep",
                                                          "reason": "再保存"}, headers=people["arch"])
    assert r.status_code == 422 and r.json()["code"] == "invalid_retention_code"
    with ctx.catalogue.session() as s:
        assert s.scalar(select(AppraisalDecision)) is None


def test_appraisal_of_an_item_not_yet_expired_is_refused_and_audited(ctx: Context, client: TestClient,
                                                                     people: dict[str, Any]) -> None:
    """Given one expired and one not-yet-expired item in one request, nothing is recorded and the refusal is."""
    ok, early = make_item(ctx), make_item(ctx, expiry=FUTURE)
    r = client.post("/api/v1/appraisal/decisions", json={"archival_codes": [ok, early], "decision": "destroy",
                                                          "reason": "期满"}, headers=people["arch"])
    assert r.status_code == 409
    body = r.json()
    assert body["code"] == "not_expired" and "尚未到期" in body["message"] and early in body["message"]
    assert body["detail"]["problems"] == [{"archival_code": early, "code": "not_expired",
                                           "message": f"保管期限尚未到期（到期日 {FUTURE:%Y-%m-%d}）"}]
    with ctx.catalogue.session() as s:
        assert s.scalar(select(AppraisalDecision)) is None
    [refused] = events(ctx, "appraisal.decide", "refused")
    assert refused.actor == "arch" and refused.detail["code"] == "not_expired"


def test_items_waiting_for_their_trigger_and_held_items_are_refused(ctx: Context, client: TestClient,
                                                                    people: dict[str, Any]) -> None:
    """Given an item still waiting for 贷款结清, a held item and an unknown 档号, when each is proposed for
    destruction, then 409 retention_pending, 409 item_on_hold (saying 冻结) and 404 unknown_archival_code, each
    refusal audited."""
    loan = make_item(ctx, expiry=None, trigger_date=None, category="DK", business_type="DK01",
                     trigger="LOAN_SETTLED")
    held = make_item(ctx)
    client.post("/api/v1/holds", json={**HOLD, "archival_codes": [held]}, headers=people["arch"])
    r = client.post("/api/v1/appraisal/decisions", json={"archival_codes": [loan], "decision": "destroy",
                                                          "reason": "期满"}, headers=people["arch"])
    assert r.status_code == 409 and r.json()["code"] == "retention_pending"
    r = client.post("/api/v1/appraisal/decisions", json={"archival_codes": [held], "decision": "destroy",
                                                          "reason": "期满"}, headers=people["arch"])
    assert r.status_code == 409 and r.json()["code"] == "item_on_hold" and "冻结" in r.json()["message"]
    r = client.post("/api/v1/appraisal/decisions", json={"archival_codes": ["J001-YW·2000-D30-TQ-999999"],
                                                          "decision": "destroy", "reason": "期满"},
                    headers=people["arch"])
    assert r.status_code == 404 and r.json()["code"] == "unknown_archival_code"
    assert len(events(ctx, "appraisal.decide", "refused")) == 3


def test_deciding_needs_retention_manage(ctx: Context, client: TestClient, people: dict[str, Any]) -> None:
    """Given an expired item, when the archive head (who approves but does not appraise) proposes to destroy it, then
    403 permission_denied and the refusal is audited under their name."""
    a = make_item(ctx)
    r = client.post("/api/v1/appraisal/decisions", json={"archival_codes": [a], "decision": "destroy",
                                                          "reason": "期满"}, headers=people["head"])
    assert r.status_code == 403 and r.json()["code"] == "permission_denied"
    assert events(ctx, "appraisal.decide", "refused")[0].actor == "head"
