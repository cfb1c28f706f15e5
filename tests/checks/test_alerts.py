"""Alerts of the storage checks: one row per finding, visible in the API, acknowledged with an audit trail."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from archive.audit import Actor
from archive.catalogue.models import AuditEvent, StorageAlert
from archive.checks.sweep import SweepOptions, run_sweep
from archive.context import Context
from tests.checks.storage_support import add_item, flip_byte, fs_path, put
from tests.helpers import add_user, login

ACTOR = Actor.system("test-sweep")


@pytest.fixture
def people(ctx: Context, client: TestClient) -> dict[str, dict[str, str]]:
    for name, role in (("arch01", "archivist"), ("audit01", "auditor"), ("clerk01", "clerk")):
        add_user(ctx, name, [role])
    return {name: login(client, name) for name in ("arch01", "audit01", "clerk01")}


def damaged_store(ctx: Context) -> tuple[str, str]:
    """One damaged original (critical) and one uncatalogued object (warning)."""
    item = add_item(ctx, 1, originals=1)
    flip_byte(fs_path(ctx.store, item.original_keys[0]))
    stray, _ = put(ctx.store, "originals", b"stray")
    return item.original_keys[0], stray


def test_the_same_finding_again_moves_last_seen_instead_of_adding_a_row(ctx: Context) -> None:
    """Given a store with a damaged original and a stray object, when two sweeps find the same two problems, then
    each stays one alert whose occurrences and last_seen move on (first_seen kept, sweep_id the latest) and
    alert.raise is audited once, for the first sweep only."""
    damaged, stray = damaged_store(ctx)
    first = run_sweep(ctx, ACTOR, SweepOptions(signature_every=1))
    with ctx.catalogue.sessions() as s:
        before = {(a.code, a.target): (a.first_seen, a.last_seen) for a in s.scalars(select(StorageAlert))}
    second = run_sweep(ctx, ACTOR, SweepOptions(signature_every=1))
    with ctx.catalogue.sessions() as s:
        after = list(s.scalars(select(StorageAlert)))
        raised = list(s.scalars(select(AuditEvent).where(AuditEvent.action == "alert.raise")))
    assert {(a.code, a.target) for a in after} == set(before) == {("BC-1-1", damaged), ("BC-2-3", stray)}
    for a in after:
        assert a.occurrences == 2 and a.sweep_id == second.id != first.id
        assert a.first_seen == before[(a.code, a.target)][0] and a.last_seen > before[(a.code, a.target)][1]
    assert len(raised) == 1 and raised[0].detail["count"] == 2  # new alerts are audited once, not again


def test_alerts_are_listed_for_check_readers_only(ctx: Context, client: TestClient,
                                                  people: dict[str, dict[str, str]]) -> None:
    """Given a sweep that found a critical and a warning problem, when an auditor lists alerts, then both are listed
    with severity, code and a Chinese message and filters narrow them; when a clerk or nobody asks, then 403/401;
    an unknown severity is a 422 invalid_severity saying 告警级别."""
    damaged, stray = damaged_store(ctx)
    run_sweep(ctx, ACTOR)
    r = client.get("/api/v1/alerts", headers=people["audit01"])
    assert r.status_code == 200, r.text
    by_target = {a["target"]: a for a in r.json()}
    assert by_target[damaged]["severity"] == "critical" and by_target[damaged]["code"] == "BC-1-1"
    assert by_target[stray]["severity"] == "warning" and "目录条目" in by_target[stray]["message"]
    critical = client.get("/api/v1/alerts", params={"severity": "critical", "code": "BC-1-1"},
                          headers=people["audit01"]).json()
    assert [a["target"] for a in critical] == [damaged]
    denied = client.get("/api/v1/alerts", headers=people["clerk01"])
    assert denied.status_code == 403 and denied.json()["code"] == "permission_denied"
    assert client.get("/api/v1/alerts").status_code == 401
    bad = client.get("/api/v1/alerts", params={"severity": "urgent"}, headers=people["audit01"])
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_severity" and "告警级别" in bad.json()["message"]


def test_acknowledging_an_alert_is_audited_and_refusals_change_nothing(ctx: Context, client: TestClient,
                                                                       people: dict[str, dict[str, str]]) -> None:
    """Given open alerts from a sweep, when the auditor tries to acknowledge one, then 403; when an archivist does,
    then the note and who are kept, it leaves the open list and the summary, and a second acknowledgement, an
    unknown id or an over-long note are refused; every attempt is audited, and the next sweep seeing the same
    damage does not reopen it."""
    damaged, _ = damaged_store(ctx)
    run_sweep(ctx, ACTOR)
    summary = client.get("/api/v1/alerts/summary", headers=people["audit01"]).json()
    assert summary["open"] == 2 and summary["open_by_severity"] == {"critical": 1, "warning": 1}
    assert summary["last_sweep"]["status"] == "done" and summary["last_sweep"]["findings"] == 2
    alert = next(a for a in client.get("/api/v1/alerts", headers=people["arch01"]).json() if a["target"] == damaged)

    refused = client.post(f"/api/v1/alerts/{alert['id']}/acknowledge", json={"note": "看过了"},
                          headers=people["audit01"])  # the auditor reads, never acts
    assert refused.status_code == 403
    ok = client.post(f"/api/v1/alerts/{alert['id']}/acknowledge", json={"note": "已从备份恢复"},
                     headers=people["arch01"])
    assert ok.status_code == 200, ok.text
    assert ok.json()["acknowledged_by"] == "arch01" and ok.json()["acknowledge_note"] == "已从备份恢复"
    twice = client.post(f"/api/v1/alerts/{alert['id']}/acknowledge", headers=people["arch01"])
    assert twice.status_code == 409 and twice.json()["code"] == "alert_already_acknowledged"
    missing = client.post("/api/v1/alerts/999/acknowledge", headers=people["arch01"])
    assert missing.status_code == 404 and missing.json()["code"] == "alert_not_found"
    too_long = client.post(f"/api/v1/alerts/{alert['id']}/acknowledge", json={"note": "长" * 501},
                           headers=people["arch01"])
    assert too_long.status_code == 422

    with ctx.catalogue.sessions() as s:
        acks = list(s.scalars(select(AuditEvent).where(AuditEvent.action == "alert.acknowledge")))
        row = s.get(StorageAlert, alert["id"])
        assert row is not None and row.acknowledge_note == "已从备份恢复"
    assert [(e.actor, e.outcome) for e in acks] == [("arch01", "success"), ("arch01", "refused"), ("arch01", "refused")]
    assert client.get("/api/v1/alerts/summary", headers=people["audit01"]).json()["open"] == 1
    listed = client.get("/api/v1/alerts", headers=people["audit01"]).json()
    assert damaged not in {a["target"] for a in listed}
    everything = client.get("/api/v1/alerts", params={"include_acknowledged": True}, headers=people["audit01"]).json()
    assert damaged in {a["target"] for a in everything}

    run_sweep(ctx, ACTOR)  # still damaged: seen again, still acknowledged, not a new open alert
    assert client.get("/api/v1/alerts/summary", headers=people["audit01"]).json()["open"] == 1


def test_sweeps_are_visible_in_the_api(ctx: Context, client: TestClient, people: dict[str, dict[str, str]]) -> None:
    """Given one finished sweep, when an auditor lists sweeps and reads one, then its status, object count and report
    are shown; an unknown sweep is sweep_not_found and a clerk gets 403."""
    add_item(ctx, 1)
    done = run_sweep(ctx, ACTOR)
    listed = client.get("/api/v1/sweeps", headers=people["audit01"])
    assert listed.status_code == 200 and [s["id"] for s in listed.json()] == [done.id]
    one = client.get(f"/api/v1/sweeps/{done.id}", headers=people["audit01"]).json()
    assert one["status"] == "done" and one["object_count"] == 2 and one["report_id"] == done.report_id
    assert client.get("/api/v1/sweeps/99", headers=people["audit01"]).json()["code"] == "sweep_not_found"
    assert client.get("/api/v1/sweeps", headers=people["clerk01"]).status_code == 403


def test_readyz_reports_open_storage_alerts_without_going_unready(ctx: Context, client: TestClient) -> None:
    """Given a clean store, when /readyz is asked, then it reports no open storage alerts; when a sweep then finds
    damage, then /readyz reports the open alerts by severity and still answers ready (counter work does not depend
    on a clean sweep)."""
    clean = client.get("/readyz").json()
    assert clean["storage_alerts"]["ok"] is True and clean["storage_alerts"]["open"] == 0
    damaged_store(ctx)
    run_sweep(ctx, ACTOR)
    r = client.get("/readyz")
    part = r.json()["storage_alerts"]
    assert r.status_code == 200 and r.json()["ready"] is True
    assert part["ok"] is False and part["open"] == 2 and part["open_by_severity"]["critical"] == 1
