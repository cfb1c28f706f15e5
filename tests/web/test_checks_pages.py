"""四性检测 pages: reports filtered by outcome, stage and 档号 (a branch sees its own), a report and its PDF, the
alerts inbox with acknowledgement (refused twice, audited), the last storage sweep and its findings."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select

from archive.audit import Actor
from archive.catalogue.models import ArchiveItem, AuditEvent, StorageAlert
from archive.checks import reports
from archive.checks.base import REGISTRY, Outcome, Result, Stage
from archive.checks.sweep import SweepOptions, run_sweep
from archive.context import Context
from tests.checks.test_alerts import damaged_store
from tests.factories import stored_item
from tests.web.html import UiClient, soup, text


def _report(ctx: Context, code: str, outcome: Outcome) -> int:
    with ctx.catalogue.session() as s:
        item = s.scalar(select(ArchiveItem).where(ArchiveItem.archival_code == code))
        assert item is not None
        return int(reports.save_report(s, Actor("user", "arch01"), Stage.FILING, code,
                                       [(REGISTRY["GD-1-2"], Result(Outcome.PASSED, "元数据齐全")),
                                        (REGISTRY["GD-1-7"], Result(outcome, "摘要核对"))], item_id=item.id).id)


@pytest.fixture
def two(ctx: Context) -> dict[str, int]:
    """A passed report on a BR01 item and a failed one on a BR02 item."""
    a, b = stored_item(ctx, branch="BR01"), stored_item(ctx, branch="BR02")
    return {"a": _report(ctx, a.archival_code, Outcome.PASSED), "b": _report(ctx, b.archival_code, Outcome.FAILED),
            "code_a": a.archival_code, "code_b": b.archival_code}  # type: ignore[dict-item]


def test_reports_are_listed_and_filtered(ui: Callable[..., UiClient], two: dict[str, int]) -> None:
    auditor = ui("audit01", ["auditor"], None)
    page = auditor.get("/ui/checks")
    assert page.status_code == 200 and f"/ui/checks/reports/{two['a']}" in page.text
    assert f"/ui/checks/reports/{two['b']}" in page.text
    failed = auditor.get("/ui/checks?outcome=failed")
    assert f"/ui/checks/reports/{two['b']}" in failed.text and f"/ui/checks/reports/{two['a']}\"" not in failed.text
    by_item = auditor.get("/ui/checks", params={"item": two["code_a"]})
    assert f"reports/{two['a']}\"" in by_item.text and f"reports/{two['b']}\"" not in by_item.text
    storage = auditor.get("/ui/checks?stage=bc")
    assert storage.status_code == 200 and "没有符合条件" in text(storage)


def test_an_unknown_item_or_bad_filter_is_a_clear_refusal(ui: Callable[..., UiClient], two: dict[str, int]) -> None:
    auditor = ui("audit01", ["auditor"], None)
    r = auditor.get("/ui/checks", params={"item": "J001-NOPE"})
    assert r.status_code == 404 and "档号 J001-NOPE 不存在" in text(r) and "item_not_found" in r.text
    assert soup(r).find("input", attrs={"name": "item"})["value"] == "J001-NOPE"  # the filter stays
    for bad in ("/ui/checks?outcome=nope", "/ui/checks?before=abc", "/ui/checks/reports/0", "/ui/checks/reports/x"):
        r = auditor.get(bad)
        assert r.status_code == 422 and "Traceback" not in r.text and "<html" in r.text
    r = auditor.get("/ui/checks/reports/99999")
    assert r.status_code == 404 and "检测报告 99999 不存在" in text(r)


def test_a_branch_sees_its_own_reports_only(ui: Callable[..., UiClient], two: dict[str, int]) -> None:
    head = ui("head01", ["archive_head"], "BR01")
    listed = head.get("/ui/checks").text
    assert f"reports/{two['a']}\"" in listed and f"reports/{two['b']}\"" not in listed
    assert head.get(f"/ui/checks/reports/{two['a']}").status_code == 200
    other = head.get(f"/ui/checks/reports/{two['b']}")
    assert other.status_code == 404 and f"检测报告 {two['b']} 不存在" in text(other)  # like one that does not exist
    assert head.get(f"/ui/checks/reports/{two['b']}/pdf").status_code == 404
    assert head.get("/ui/checks", params={"item": two["code_b"]}).status_code == 404


def test_a_report_page_and_its_pdf(ui: Callable[..., UiClient], two: dict[str, int]) -> None:
    auditor = ui("audit01", ["auditor"], None)
    r = auditor.get(f"/ui/checks/reports/{two['b']}")
    assert r.status_code == 200 and "不通过" in text(r) and "GD-1-7" in text(r) and "摘要核对" in text(r)
    pdf = auditor.get(f"/ui/checks/reports/{two['b']}/pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF") and pdf.headers["cache-control"] == "no-store"


def test_people_without_check_read_get_403_audited(ctx: Context, ui: Callable[..., UiClient]) -> None:
    clerk = ui("clerk01", ["clerk"])
    for path in ("/ui/checks", "/ui/checks/alerts", "/ui/checks/sweeps", "/ui/checks/reports/1"):
        r = clerk.get(path)
        assert r.status_code == 403 and "permission_denied" in r.text
    with ctx.catalogue.reading() as s:
        denied = s.scalars(select(AuditEvent.target_id).where(AuditEvent.action == "permission.denied",
                                                              AuditEvent.actor == "clerk01")).all()
    assert "GET /ui/checks/alerts" in denied


def test_alerts_inbox_and_acknowledge(ctx: Context, ui: Callable[..., UiClient]) -> None:
    damaged, stray = damaged_store(ctx)
    run_sweep(ctx, Actor.system("test-sweep"), SweepOptions(signature_every=1))
    with ctx.catalogue.reading() as s:
        alert = s.scalar(select(StorageAlert).where(StorageAlert.target == damaged))
        assert alert is not None
        alert_id = alert.id
    auditor = ui("audit01", ["auditor"], None)
    page = auditor.get("/ui/checks/alerts")
    assert page.status_code == 200 and damaged in page.text and stray in page.text and "严重" in text(page)
    assert soup(page).find("form", class_="ack") is None  # an auditor reads, she does not acknowledge
    r = auditor.post(f"/ui/checks/alerts/{alert_id}/acknowledge", data={"note": "x"})
    assert r.status_code == 403

    arch = ui("arch01", ["archivist"], None)
    ack = f"/ui/checks/alerts/{alert_id}/acknowledge"
    assert soup(arch.get("/ui/checks/alerts")).find("form", attrs={"hx-post": ack})
    too_long = arch.post(f"/ui/checks/alerts/{alert_id}/acknowledge", data={"note": "长" * 501})
    assert too_long.status_code == 422 and "处理说明不能超过 500 字" in text(too_long)
    r = arch.post(f"/ui/checks/alerts/{alert_id}/acknowledge", data={"note": "已从备份恢复"})
    assert r.status_code == 200 and "已确认" in text(r) and "已从备份恢复" in text(r)
    again = arch.post(f"/ui/checks/alerts/{alert_id}/acknowledge", data={"note": "再次"})
    assert again.status_code == 409 and "无需重复确认" in text(again) and again.headers["HX-Retarget"] == "#flash"
    assert arch.post("/ui/checks/alerts/99999/acknowledge").status_code == 404
    with ctx.catalogue.reading() as s:
        row = s.get(StorageAlert, alert_id)
        assert row is not None and row.acknowledge_note == "已从备份恢复" and row.acknowledged_by == "arch01"
        outcomes = [e.outcome for e in s.scalars(select(AuditEvent).where(AuditEvent.action == "alert.acknowledge"))]
    assert outcomes.count("success") == 1 and outcomes.count("refused") >= 2
    assert damaged not in auditor.get("/ui/checks/alerts").text  # acknowledged: out of the inbox
    assert damaged in auditor.get("/ui/checks/alerts?show=all").text
    assert stray not in auditor.get("/ui/checks/alerts?severity=critical").text


def test_the_last_sweep_and_its_findings(ctx: Context, ui: Callable[..., UiClient]) -> None:
    auditor = ui("audit01", ["auditor"], None)
    assert "尚未进行过存储检测" in text(auditor.get("/ui/checks/sweeps"))
    damaged, _ = damaged_store(ctx)
    sweep = run_sweep(ctx, Actor.system("test-sweep"), SweepOptions(signature_every=1))
    r = auditor.get("/ui/checks/sweeps")
    assert r.status_code == 200 and f"第 {sweep.id} 次存储检测" in text(r) and damaged in r.text and "完成" in text(r)
    assert soup(r).find("section", id="sweep").get("hx-get") is None  # finished: no polling
    part = auditor.get(f"/ui/checks/sweeps/progress?sweep={sweep.id}", headers={"HX-Request": "true"})
    assert part.status_code == 200 and "<html" not in part.text
    assert auditor.get("/ui/checks/sweeps?sweep=9999").status_code == 404
