"""Check reports: saved with their audit event, read as JSON and PDF, manual items, statistics, CLI."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import pikepdf
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from typer.testing import CliRunner

from archive.audit import Actor
from archive.catalogue.models import ArchiveItem, AuditEvent, CheckReport
from archive.checks import gd, reports
from archive.checks.base import REGISTRY, Outcome, Result, Stage
from archive.cli import app as cli_app
from archive.context import Context
from archive.settings import get_settings
from tests.factories import file_case
from tests.helpers import add_client, add_user, login


@pytest.fixture
def core(ctx: Context) -> dict[str, str]:
    return add_client(ctx, "core", ["cases.write", "data.read", "pii.read"])


@pytest.fixture
def archivist(ctx: Context, client: TestClient) -> dict[str, str]:
    add_user(ctx, "arch", ["archivist"])
    return login(client, "arch")


def test_save_report_stores_rows_counts_outcome_and_an_audit_event(ctx: Context) -> None:
    """Given results with a pass, a failed warning item and a not-applicable item, when the report is saved, then its
    rows, counts, context and outcome (passed with warning) are stored with a check.report audit event naming the
    failure; when a blocking item ends in an error, then the report fails."""
    results = [(REGISTRY["GD-1-2"], Result(Outcome.PASSED, "ok")),
               (REGISTRY["GD-2-5"], Result(Outcome.FAILED, "缺少受理步骤", "业务行为", {"actions": ["办结"]})),
               (REGISTRY["GD-4-5"], Result(Outcome.NOT_APPLICABLE, "在线归档"))]
    with ctx.catalogue.session() as s:
        row = reports.save_report(s, Actor("user", "arch"), Stage.FILING, "PKG-1", results, package="PKG-1",
                                  when=datetime(2026, 1, 1))
        report_id = row.id
        assert row.passed and row.outcome == "warning"  # GD-2-5 is a warning item
    with ctx.catalogue.sessions() as s:
        row = s.get(CheckReport, report_id)
        assert row is not None and row.item_id is None and row.operator == "arch"
        assert row.counts == {"passed": 1, "failed": 1, "not_applicable": 1, "manual": 0, "error": 0, "total": 3}
        assert row.context == {"package": "PKG-1", "when": "2026-01-01 00:00:00"}
        assert [(r.code, r.outcome, r.blocking, r.target) for r in row.results] == [
            ("GD-1-2", "passed", True, None), ("GD-2-5", "failed", False, "业务行为"),
            ("GD-4-5", "not_applicable", True, None)]
        event = s.scalar(select(AuditEvent).where(AuditEvent.action == "check.report"))
        assert event is not None and event.target_id == str(report_id) and event.detail["failed"] == ["GD-2-5"]
    with ctx.catalogue.session() as s:
        bad = reports.save_report(s, Actor.system(), Stage.FILING, "PKG-2",
                                  [(REGISTRY["GD-1-7"], Result(Outcome.ERROR, "boom"))])
        assert not bad.passed and bad.outcome == "failed"


def test_report_as_json_has_every_item(ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given a filed item's check report, when an auditor reads it, then every filing-stage item is there with
    Chinese names and outcomes, and the stage filter lists it; a branch clerk gets 403 and an unknown report
    check_report_not_found."""
    file_case(client, core)
    add_user(ctx, "aud", ["auditor"])
    add_user(ctx, "clerk", ["clerk"], branch="BR01")
    with ctx.catalogue.sessions() as s:
        report_id = s.scalar(select(CheckReport.id))
    r = client.get(f"/api/v1/checks/reports/{report_id}", headers=login(client, "aud"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["stage"] == "gd" and body["stage_name"] == "归档环节" and body["subject"].startswith("J001-YW")
    assert {x["code"] for x in body["results"]} == {i.code for i in REGISTRY.values() if i.stage == Stage.FILING}
    first = body["results"][0]
    assert (first["code"], first["name"], first["dimension_name"]) == ("GD-1-1", "固化信息有效性检测", "真实性")
    assert first["outcome_name"] == "通过" and first["detail"]
    assert client.get(f"/api/v1/checks/reports/{report_id}", headers=login(client, "clerk")).status_code == 403
    r = client.get("/api/v1/checks/reports/9999", headers=login(client, "aud"))
    assert r.status_code == 404 and r.json()["code"] == "check_report_not_found"
    listed = client.get("/api/v1/checks/reports?stage=gd", headers=login(client, "aud")).json()
    assert [x["id"] for x in listed] == [report_id]


def test_branch_limited_reader_sees_only_reports_on_items_of_its_branches(
        ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given a report on an item of BR01 and a storage-sweep report, when an archivist of BR02 asks, then neither
    exists for them (404, and no manual item can be recorded); when one of BR01 asks, then only the item's report;
    an archivist of every branch sees both."""
    file_case(client, core)  # branch BR01
    with ctx.catalogue.session() as s:
        sweep = reports.save_report(s, Actor.system(), Stage.STORAGE, "store", []).id
    with ctx.catalogue.sessions() as s:
        item_report = s.scalar(select(CheckReport.id).where(CheckReport.item_id.is_not(None)))
    add_user(ctx, "other", ["archivist"], branch="BR02")
    add_user(ctx, "mine", ["archivist"], branch="BR01")
    add_user(ctx, "all", ["archivist"])
    other, mine, every = login(client, "other"), login(client, "mine"), login(client, "all")
    for url in (f"/api/v1/checks/reports/{item_report}", f"/api/v1/checks/reports/{item_report}/pdf",
                f"/api/v1/checks/reports/{sweep}"):
        r = client.get(url, headers=other)
        assert r.status_code == 404 and r.json()["code"] == "check_report_not_found", url
    manual = {"code": "GD-4-5", "outcome": "passed", "detail": "光盘完好", "target": None}
    r = client.post(f"/api/v1/checks/reports/{item_report}/manual", json=manual, headers=other)
    assert r.status_code == 404 and r.json()["code"] == "check_report_not_found"
    assert client.get("/api/v1/checks/reports", headers=other).json() == []
    assert [x["id"] for x in client.get("/api/v1/checks/reports", headers=mine).json()] == [item_report]
    assert client.get(f"/api/v1/checks/reports/{sweep}", headers=mine).status_code == 404
    assert client.get(f"/api/v1/checks/reports/{item_report}", headers=mine).status_code == 200
    assert {x["id"] for x in client.get("/api/v1/checks/reports", headers=every).json()} == {item_report, sweep}
    assert client.get(f"/api/v1/checks/reports/{sweep}", headers=every).status_code == 200


def test_report_as_pdf(ctx: Context, client: TestClient, core: dict[str, str], archivist: dict[str, str]) -> None:
    """Given a filing's check report, When fetched as PDF, Then it is titled, embeds Chinese glyphs and prints
    its time in the center's zone with the zone shown (not UTC)."""
    import pypdfium2 as pdfium

    from archive.localtime import local_time

    file_case(client, core)
    with ctx.catalogue.sessions() as s:
        report_id, created = s.execute(select(CheckReport.id, CheckReport.created_at)).one()
    text = "".join(p.get_textpage().get_text_range() for p in pdfium.PdfDocument(
        client.get(f"/api/v1/checks/reports/{report_id}/pdf", headers=archivist).content))
    assert f"检测时间：{local_time(created, ctx.zone)}" in text and "（UTC+08:00）" in text and " UTC" not in text
    for url in (f"/api/v1/checks/reports/{report_id}?format=pdf", f"/api/v1/checks/reports/{report_id}/pdf"):
        r = client.get(url, headers=archivist)
        assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
        with pikepdf.open(io.BytesIO(r.content)) as pdf:
            assert len(pdf.pages) >= 1 and str(pdf.docinfo["/Title"]) == f"四性检测报告 {report_id}"
            fonts = {str(f.get("/BaseFont")) for p in pdf.pages for f in p.Resources.Font.values()}
            assert any("CJK" in f or "Zen" in f or "STSong" in f for f in fonts), fonts  # Chinese glyphs embedded


def test_person_records_a_manual_item(ctx: Context, client: TestClient, core: dict[str, str],
                                      archivist: dict[str, str]) -> None:
    """Given a filing report, when an archivist records the manual item GD-4-5 as failed, then the row carries who
    and why and the report fails; recording it again, a non-manual item, a control character or an unknown outcome
    is refused; an auditor may not record; one check.manual event is written and the item stays filed."""
    file_case(client, core)
    add_user(ctx, "aud", ["auditor"])
    with ctx.catalogue.sessions() as s:
        report_id = s.scalar(select(CheckReport.id))
    url = f"/api/v1/checks/reports/{report_id}/manual"
    body = {"code": "GD-4-5", "outcome": "failed", "detail": "光盘盘面有划痕", "target": None}
    assert client.post(url, json=body, headers=login(client, "aud")).status_code == 403
    r = client.post(url, json=body, headers=archivist)
    assert r.status_code == 200, r.text
    [row] = [x for x in r.json()["results"] if x["code"] == "GD-4-5"]
    assert (row["outcome"], row["recorded_by"], row["detail"]) == ("failed", "arch", "光盘盘面有划痕")
    assert r.json()["outcome"] == "failed" and r.json()["passed"] is False
    again = client.post(url, json={**body, "outcome": "passed"}, headers=archivist)
    assert again.status_code == 409 and again.json()["code"] == "manual_item_recorded"
    r = client.post(url, json={**body, "code": "GD-1-1"}, headers=archivist)
    assert r.status_code == 422 and r.json()["code"] == "not_a_manual_item" and "GD-4-5" in r.json()["message"]
    r = client.post(url, json={**body, "code": "GD-4-4", "detail": "ok\x00"}, headers=archivist)
    assert r.status_code == 422 and r.json()["code"] == "invalid_manual_detail"
    assert client.post(url, json={**body, "outcome": "maybe"}, headers=archivist).status_code == 422
    with ctx.catalogue.sessions() as s:
        events = list(s.scalars(select(AuditEvent).where(AuditEvent.action == "check.manual")))
        assert len(events) == 1 and events[0].detail["code"] == "GD-4-5" and events[0].actor == "arch"
        item = s.scalar(select(ArchiveItem))
        assert item is not None and item.status == "filed"  # a report never changes the archived item


def test_stats_give_pass_rates_per_item_and_period(ctx: Context, client: TestClient, core: dict[str, str],
                                                   archivist: dict[str, str]) -> None:
    """Given two filed items and a failed re-check of one, when stats are asked per month, then each item's totals
    and pass rate are given (not-applicable runs excluded from the rate); an unknown period or a naive time is a
    422 and a range before any run is empty."""
    code = file_case(client, core)
    file_case(client, core, "YW2026010500002")
    with ctx.catalogue.session() as s:
        s.execute(update(ArchiveItem).where(ArchiveItem.archival_code == code).values(number=9))
    r = client.post(f"/api/v1/checks/items/{quote(code)}", headers=archivist)
    assert r.status_code == 201 and r.json()["outcome"] == "failed"
    r = client.get("/api/v1/checks/stats?stage=gd&period=month", headers=archivist)
    assert r.status_code == 200, r.text
    rows = {x["code"]: x for x in r.json()}
    month = datetime.now(ctx.zone).strftime("%Y-%m")
    assert rows["GD-1-7"]["period"] == month
    assert (rows["GD-1-7"]["total"], rows["GD-1-7"]["passed"], rows["GD-1-7"]["failed"]) == (3, 2, 1)
    assert rows["GD-1-7"]["pass_rate"] == pytest.approx(0.6667)
    assert rows["GD-4-2"]["pass_rate"] is None and rows["GD-4-2"]["not_applicable"] == 3
    assert client.get("/api/v1/checks/stats?period=week", headers=archivist).status_code == 422
    r = client.get("/api/v1/checks/stats?since=2026-01-01T00:00:00", headers=archivist)
    assert r.status_code == 422 and r.json()["code"] == "naive_datetime"
    assert client.get("/api/v1/checks/stats?until=2000-01-01T00:00:00Z", headers=archivist).json() == []


def test_recheck_unknown_item_is_404(client: TestClient, archivist: dict[str, str]) -> None:
    """Given no item with that 档号, when a re-check is asked, then 404 item_not_found."""
    r = client.post(f"/api/v1/checks/items/{quote('J001-YW·2026-D30-TQ-000404')}", headers=archivist)
    assert r.status_code == 404 and r.json()["code"] == "item_not_found"


def test_cli_report_item_and_stats(ctx: Context, client: TestClient, core: dict[str, str], tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a filed item, when `archive check item` runs, then it prints each GD item and 通过（有警告） and stores
    a report by a cli: operator; `check report` prints JSON or writes the PDF, an unknown report exits 2 with its
    code, `check manual` and `check stats` work, and a re-check that fails exits 1."""
    code = file_case(client, core)
    monkeypatch.setenv("ARCHIVE_DATA_DIR", str(ctx.settings.data_dir))
    monkeypatch.setenv("ARCHIVE_DATABASE_URL", ctx.settings.catalogue_url)
    get_settings.cache_clear()
    runner = CliRunner()
    result = runner.invoke(cli_app, ["check", "item", code])
    assert result.exit_code == 0, result.output
    assert "GD-1-7" in result.output and "GD-4-7" in result.output and "通过（有警告）" in result.output
    with ctx.catalogue.sessions() as s:
        ids = list(s.scalars(select(CheckReport.id).order_by(CheckReport.id)))
        operator = s.scalar(select(CheckReport.operator).where(CheckReport.id == ids[-1]))
    assert len(ids) == 2 and operator is not None and operator.startswith("cli:")
    result = runner.invoke(cli_app, ["check", "report", str(ids[0]), "--json"])
    assert result.exit_code == 0 and '"GD-4-7"' in result.output
    out = tmp_path / "r.pdf"
    result = runner.invoke(cli_app, ["check", "report", str(ids[0]), "--pdf", str(out)])
    assert result.exit_code == 0 and out.read_bytes().startswith(b"%PDF")
    result = runner.invoke(cli_app, ["check", "report", "999"])
    assert result.exit_code == 2 and "check_report_not_found" in result.output
    result = runner.invoke(cli_app, ["check", "manual", str(ids[0]), "GD-4-6", "passed", "光盘检测合格"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli_app, ["check", "stats", "--stage", "gd"])
    assert result.exit_code == 0 and "GD-1-1" in result.output
    with ctx.catalogue.session() as s:
        s.execute(update(ArchiveItem).values(number=5))
    assert runner.invoke(cli_app, ["check", "item", code, "--skip-signature"]).exit_code == 1


def test_gd_item_definitions_are_listed(client: TestClient, archivist: dict[str, str]) -> None:
    """Given the GD scheme, when its items are listed, then GD-4-4 to GD-4-6 are the manual ones, all four dimensions
    are covered and each names DA/T 70-2018."""
    items = client.get("/api/v1/checks/items?stage=gd", headers=archivist).json()
    manual = [i["code"] for i in items if i["manual"]]
    assert manual == ["GD-4-4", "GD-4-5", "GD-4-6"]
    assert {i["dimension"] for i in items} == {"authenticity", "integrity", "usability", "security"}
    assert gd.SCHEME and all(i["basis"] == "DA/T 70-2018" for i in items)


def test_save_report_writes_its_result_rows_in_one_statement(ctx: Context) -> None:
    """Given a filing's ~50 GD results, When the report is saved, Then the rows go to the database in one INSERT
    (one executemany: issue 17), in order, and the caller can read them from the returned report at once."""
    from sqlalchemy import event

    results = [(item, Result(Outcome.PASSED, f"ok {n}")) for n, item in enumerate(REGISTRY.values()) if
               item.code.startswith("GD-")]
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO CHECK_RESULT"):
            statements.append(statement)

    engine = ctx.catalogue.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        with ctx.catalogue.session() as s:
            row = reports.save_report(s, Actor("user", "arch"), Stage.FILING, "PKG-2", results)
            assert [(r.position, r.code) for r in row.results] == [(n, i.code) for n, (i, _) in
                                                                   enumerate(results, start=1)]
            assert row.counts["total"] == len(results) > 30 and row.outcome == "passed"
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == 1
