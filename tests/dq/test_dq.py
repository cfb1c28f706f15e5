"""Data quality (issue 19): rules, source checks, batch runs, findings and their lifecycle, corrections,
reconciliation and figures."""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

import pypdfium2 as pdfium
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from archive import jobs
from archive.audit import Actor
from archive.catalogue.models import ArchiveItem, AuditEvent, Case, DqFinding, DqRun
from archive.context import Context
from archive.dq import registry, runs
from archive.dq.registry import Failure, Rule, Scope
from archive.dq.rules import all_rules
from archive.identifiers import id_number_check_char
from tests.factories import add_case, case_body, file_case_row, stored_item
from tests.helpers import add_user, login

ACTOR = Actor.system("test-dq")
GOOD_ID = "11010519491231002X"
BAD_ID = GOOD_ID[:17] + ("1" if id_number_check_char(GOOD_ID[:17]) != "1" else "2")


@pytest.fixture
def people(ctx: Context, client: TestClient) -> dict[str, dict[str, str]]:
    for name, role in (("arch01", "archivist"), ("arch02", "archivist"), ("audit01", "auditor"),
                       ("dept01", "dq_department"), ("clerk01", "clerk")):
        add_user(ctx, name, [role], "BR01" if role == "clerk" else None)
    return {n: login(client, n) for n in ("arch01", "arch02", "audit01", "dept01", "clerk01")}


def findings_of(ctx: Context, rule: str) -> list[DqFinding]:
    with ctx.catalogue.session() as s:
        rows = list(s.scalars(select(DqFinding).where(DqFinding.rule_code == rule).order_by(DqFinding.id)))
        s.expunge_all()
    return rows


def set_case(ctx: Context, serial: str, **values: object) -> None:
    with ctx.catalogue.session() as s:
        case = s.scalar(select(Case).where(Case.serial == serial))
        assert case is not None
        for k, v in values.items():
            setattr(case, k, v)


# --- the registry -------------------------------------------------------------------------------------------


def test_rules_are_registered_with_all_their_attributes_and_listed(client: TestClient,
                                                                    people: dict[str, dict[str, str]]) -> None:
    """Given the registry, when listed by the API, then there are at least 30 rules covering all five dimensions,
    each with code, name, dimension, object, severity, where, version, owner and a Chinese hint; an auditor may
    read them, a clerk may not; an unknown code is 404 dq_rule_not_found."""
    rules = all_rules()
    assert len(rules) >= 30
    assert {r.dimension for r in rules} == set(registry.DIMENSIONS)
    assert {"block", "error", "warn"} <= {r.severity for r in rules}
    r = client.get("/api/v1/dq/rules", headers=people["audit01"])
    assert r.status_code == 200
    listed = {x["code"]: x for x in r.json()}
    assert set(listed) == {x.code for x in rules}
    one = listed["DQ-CA-001"]
    assert one["dimension_name"] == "准确性" and one["severity"] == "block" and one["where"] == "both"
    assert one["version"] == 1 and one["owner_name"] == "业务部门" and "证件号码" in one["hint"]
    assert client.get("/api/v1/dq/rules", headers=people["clerk01"]).status_code == 403
    missing = client.get("/api/v1/dq/rules/DQ-XX-999", headers=people["audit01"])
    assert missing.status_code == 404 and missing.json()["code"] == "dq_rule_not_found"


# --- at the source ------------------------------------------------------------------------------------------


def test_block_rules_refuse_at_intake_with_the_rule_code_and_hint(ctx: Context, client: TestClient,
                                                                  people: dict[str, dict[str, str]]) -> None:
    """Given a clerk opening a case, when the applicant's name carries digits or the 受理时间 lies in the future,
    then 422 dq_rule_refused names the rule (DQ-CA-004 / DQ-CA-010) and its hint, and no case is stored."""
    body = case_body(serial="YW2026DQ00001")
    body["applicant"]["name"] = "张三3"
    r = client.post("/api/v1/cases", json=body, headers=people["clerk01"])
    assert r.status_code == 422 and r.json()["code"] == "dq_rule_refused"
    assert r.json()["detail"]["rule"] == "DQ-CA-004" and "DQ-CA-004" in r.json()["message"]
    assert "姓名" in r.json()["detail"]["hint"]
    future = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    r = client.post("/api/v1/cases", json=case_body(serial="YW2026DQ00002", accepted_at=future),
                    headers=people["clerk01"])
    assert r.status_code == 422 and r.json()["detail"]["rule"] == "DQ-CA-010"
    with ctx.catalogue.session() as s:
        assert s.scalar(select(Case).where(Case.serial.in_(["YW2026DQ00001", "YW2026DQ00002"]))) is None


def test_warn_rules_let_intake_go_on_and_open_a_finding(ctx: Context, client: TestClient,
                                                        people: dict[str, dict[str, str]]) -> None:
    """Given a person already known under another name, when a case is opened with the same 证件号码 and a new
    name, then the case is accepted (201) and a DQ-CA-005 finding is open on it; a later batch run finds the
    same finding again instead of a second one."""
    assert client.post("/api/v1/cases", json=case_body(serial="YW2026DQ00010"), headers=people["clerk01"]) \
        .status_code == 201
    body = case_body(serial="YW2026DQ00011")
    body["applicant"]["name"] = "张山"
    assert client.post("/api/v1/cases", json=body, headers=people["clerk01"]).status_code == 201
    found = findings_of(ctx, "DQ-CA-005")
    assert [(f.object_key, f.status) for f in found] == [("YW2026DQ00011", "open")]
    assert "张三" in found[0].message
    runs.run(ctx, ACTOR, ["DQ-CA-005"])
    again = findings_of(ctx, "DQ-CA-005")
    assert {f.object_key for f in again} == {"YW2026DQ00010", "YW2026DQ00011"}
    assert next(f for f in again if f.object_key == "YW2026DQ00011").seen_count == 2


# --- batch runs ---------------------------------------------------------------------------------------------


def seed_problems(ctx: Context) -> None:
    add_case(ctx, "YW2025BAD0001", business_type="TQ03", id_number=BAD_ID)
    add_case(ctx, "YW2025LOAN001", business_type="DK01", id_number=GOOD_ID)  # a 贷款 case without 贷款合同号
    add_case(ctx, "YW2025OK00001", business_type="TQ03", id_number=GOOD_ID, accepted=datetime.now(UTC))


def test_batch_run_records_findings_versions_and_counts_and_deduplicates(ctx: Context) -> None:
    """Given cases with a wrong check digit and a loan without its contract number, when all batch rules run twice,
    then each problem is one finding (seen twice, first_seen kept), the run records every rule's version, and the
    second run counts the same failures with no new finding; the clean case has none."""
    seed_problems(ctx)
    first = runs.run(ctx, ACTOR)
    assert first.status == "done" and first.finished_at is not None
    assert first.rules["DQ-CA-001"] == 1 and set(first.done_rules) == set(first.rules)
    assert first.counts["DQ-CA-001"] == {"failing": 1, "new": 1}
    assert first.rule_errors == []
    ca001 = findings_of(ctx, "DQ-CA-001")
    assert [f.object_key for f in ca001] == ["YW2025BAD0001"] and "校验位" in ca001[0].message
    assert [f.object_key for f in findings_of(ctx, "DQ-CA-011")] == ["YW2025LOAN001"]
    second = runs.run(ctx, ACTOR)
    assert second.counts["DQ-CA-001"] == {"failing": 1, "new": 0}
    again = findings_of(ctx, "DQ-CA-001")
    assert len(again) == 1 and again[0].seen_count == 2 and again[0].first_seen == ca001[0].first_seen
    assert again[0].last_run_id == second.id
    with ctx.catalogue.session() as s:
        assert s.scalar(select(DqFinding).where(DqFinding.serial == "YW2025OK00001")) is None
        actions = [e.action for e in s.scalars(select(AuditEvent).where(AuditEvent.action.like("dq.run.%")))]
    assert actions.count("dq.run.start") == 2 and actions.count("dq.run.finish") == 2


def test_run_limited_to_rules_and_since(ctx: Context) -> None:
    """Given problems in old cases, when a run is limited to DQ-CA-001 and to cases changed since tomorrow, then it
    records only that rule and finds nothing; an unknown rule code is refused with dq_rule_not_found."""
    seed_problems(ctx)
    run = runs.run(ctx, ACTOR, ["DQ-CA-001"], since=datetime.now(UTC) + timedelta(days=1))
    assert list(run.rules) == ["DQ-CA-001"] and run.counts["DQ-CA-001"]["failing"] == 0
    from archive.errors import NotFound

    with pytest.raises(NotFound) as exc:
        runs.run(ctx, ACTOR, ["DQ-NO-000"])
    assert exc.value.code == "dq_rule_not_found"


def test_a_rule_that_raises_is_a_rule_error_not_a_crash(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a registered rule that raises, when a run includes it, then the run finishes, the other rules'
    findings are made, and the broken rule is listed among the run's rule errors in Chinese, with no finding."""

    def broken(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
        raise ZeroDivisionError("boom")

    monkeypatch.setitem(registry.REGISTRY, "DQ-ZZ-999", Rule("DQ-ZZ-999", "坏规则", "accuracy", "case", "error",
                                                             "batch", 1, "it", "无", batch=broken))
    seed_problems(ctx)
    run = runs.run(ctx, ACTOR, ["DQ-ZZ-999", "DQ-CA-001"])
    assert run.status == "done"
    assert run.rule_errors == [{"rule": "DQ-ZZ-999", "message": runs.RULE_FAILED}]
    assert "boom" not in runs.RULE_FAILED and findings_of(ctx, "DQ-ZZ-999") == []
    assert len(findings_of(ctx, "DQ-CA-001")) == 1


def test_an_interrupted_run_resumes_with_the_rules_left(ctx: Context) -> None:
    """Given a run whose first rule is done and which stopped, when executed again, then only the rules not yet done
    run and the run finishes; a finished run cannot be executed again (dq_run_finished)."""
    seed_problems(ctx)
    run_id = runs.start(ctx, ACTOR, ["DQ-CA-001", "DQ-CA-011"])
    with ctx.catalogue.session() as s:
        run = s.get_one(DqRun, run_id)
        run.done_rules, run.counts = ["DQ-CA-001"], {"DQ-CA-001": {"failing": 7, "new": 0}}
    seen: list[str] = []
    done = runs.execute(ctx, ACTOR, run_id, lambda d, t, code: seen.append(code))
    assert [c for c in seen if c] == ["DQ-CA-011"]
    assert done.counts["DQ-CA-001"]["failing"] == 7 and done.counts["DQ-CA-011"]["failing"] == 1
    from archive.errors import Conflict

    with pytest.raises(Conflict):
        runs.execute(ctx, ACTOR, run_id)


def test_runs_through_the_api_as_a_job(ctx: Context, client: TestClient, people: dict[str, dict[str, str]]) -> None:
    """Given an archivist, when POST /dq/runs starts a run, then a job runs it and GET /dq/runs/{id} shows it done
    with its counts; an auditor may not start one."""
    seed_problems(ctx)
    r = client.post("/api/v1/dq/runs", json={"rules": ["DQ-CA-001"]}, headers=people["arch01"])
    assert r.status_code == 202, r.text
    assert jobs.wait(ctx, r.json()["job_id"]).status == "done"
    run = client.get(f"/api/v1/dq/runs/{r.json()['run_id']}", headers=people["audit01"]).json()
    assert run["status"] == "done" and run["counts"]["DQ-CA-001"]["failing"] == 1
    assert client.post("/api/v1/dq/runs", json={}, headers=people["audit01"]).status_code == 403


# --- findings, corrections, re-check ------------------------------------------------------------------------


def one_finding(ctx: Context, rule: str = "DQ-CA-001") -> int:
    runs.run(ctx, ACTOR, [rule])
    return findings_of(ctx, rule)[0].id


def test_correction_still_rejected_is_refused_and_a_good_one_is_verified(
        ctx: Context, client: TestClient, people: dict[str, dict[str, str]]) -> None:
    """Given a wrong 证件号码 finding assigned to a department, when the department corrects it to another wrong
    number, then 422 dq_correction_still_failing with the rule's message and the case is unchanged; when it
    corrects to the right number, then the correction is kept with before/after (masked in the audit log), the
    finding is submitted, and the archivist's re-check closes it as verified."""
    seed_problems(ctx)
    fid = one_finding(ctx)
    r = client.post(f"/api/v1/dq/findings/{fid}/assign", json={"owner": "归集科", "owner_kind": "department"},
                    headers=people["arch01"])
    assert r.status_code == 200 and r.json()["status"] == "assigned" and r.json()["due_date"]
    bad = client.post(f"/api/v1/dq/findings/{fid}/corrections", headers=people["dept01"],
                      json={"field": "applicant_id_number", "value": BAD_ID[:16] + "00", "reason": "核对身份证"})
    assert bad.status_code == 422 and bad.json()["code"] == "dq_correction_still_failing"
    assert "校验位" in bad.json()["message"] or "证件号码" in bad.json()["message"]
    with ctx.catalogue.session() as s:
        assert s.scalar(select(Case.applicant_id_number).where(Case.serial == "YW2025BAD0001")) == BAD_ID
    good = client.post(f"/api/v1/dq/findings/{fid}/corrections", headers=people["dept01"],
                       json={"field": "applicant_id_number", "value": GOOD_ID.lower(), "reason": "核对身份证原件"})
    assert good.status_code == 201, good.text
    assert good.json()["finding"]["status"] == "submitted"
    with ctx.catalogue.session() as s:
        assert s.scalar(select(Case.applicant_id_number).where(Case.serial == "YW2025BAD0001")) == GOOD_ID
        event = s.scalar(select(AuditEvent).where(AuditEvent.action == "dq.correction"))
        assert event is not None and event.actor == "dept01"
        assert event.detail["before"] == BAD_ID[:6] + "********" + BAD_ID[-4:] and GOOD_ID not in str(event.detail)
    verified = client.post(f"/api/v1/dq/findings/{fid}/verify", headers=people["arch02"])
    assert verified.status_code == 200 and verified.json()["status"] == "verified"
    assert [h["to"] for h in verified.json()["history"]] == ["assigned", "submitted", "verified"]


def test_a_submitted_finding_that_still_fails_goes_back_with_the_new_result(
        ctx: Context, client: TestClient, people: dict[str, dict[str, str]]) -> None:
    """Given a finding assigned and submitted as fixed without the data changing, when re-checked, then it goes back
    to assigned with the rule's message in its history; a verify of a finding not submitted is 409."""
    seed_problems(ctx)
    fid = one_finding(ctx, "DQ-CA-011")
    client.post(f"/api/v1/dq/findings/{fid}/assign", json={"owner": "贷款科"}, headers=people["arch01"])
    assert client.post(f"/api/v1/dq/findings/{fid}/submit", json={"note": "已在业务系统补录"},
                       headers=people["dept01"]).json()["status"] == "submitted"
    back = client.post(f"/api/v1/dq/findings/{fid}/verify", headers=people["arch01"]).json()
    assert back["status"] == "assigned" and "复核未通过" in back["history"][-1]["note"]
    again = client.post(f"/api/v1/dq/findings/{fid}/verify", headers=people["arch01"])
    assert again.status_code == 409 and again.json()["code"] == "dq_finding_wrong_status"


def test_a_waiver_needs_someone_else(ctx: Context, client: TestClient, people: dict[str, dict[str, str]]) -> None:
    """Given a finding, when an archivist proposes a waiver, then granting it as the same person is 409
    dq_waiver_same_person, and another archivist grants it (waived, with the reason)."""
    seed_problems(ctx)
    fid = one_finding(ctx)
    assert client.post(f"/api/v1/dq/findings/{fid}/waiver", json={"reason": "历史数据，原件遗失"},
                       headers=people["arch01"]).json()["status"] == "waiver_proposed"
    same = client.post(f"/api/v1/dq/findings/{fid}/waive", headers=people["arch01"])
    assert same.status_code == 409 and same.json()["code"] == "dq_waiver_same_person"
    ok = client.post(f"/api/v1/dq/findings/{fid}/waive", headers=people["arch02"]).json()
    assert ok["status"] == "waived" and ok["waive_reason"] == "历史数据，原件遗失" and ok["resolved_by"] == "arch02"


def test_correcting_a_filed_case_leaves_the_signed_rendition_alone(ctx: Context) -> None:
    """Given a filed item whose 申请人姓名 has a trailing space, when it is corrected, then the case's trail (the EEP's
    process metadata) records 著录更正 with the finding, and the item's rendition key and digests are unchanged."""
    from archive.dq import corrections
    from archive.eep_record import eep_record

    stored = stored_item(ctx)
    set_case(ctx, stored.serial, applicant_name="张三 ")
    fid = one_finding(ctx, "DQ-CA-004")
    with ctx.catalogue.session() as s:
        before = s.scalar(select(ArchiveItem).where(ArchiveItem.archival_code == stored.archival_code))
        assert before is not None
        digests = (before.rendition_key, before.rendition_sha256, before.rendition_sm3, before.signature)
        corrections.correct(ctx, s, Actor("user", "dept01"), fid, "applicant_name", "张三", "核对身份证")
    with ctx.catalogue.session() as s:
        item = s.scalar(select(ArchiveItem).where(ArchiveItem.archival_code == stored.archival_code))
        assert item is not None
        assert (item.rendition_key, item.rendition_sha256, item.rendition_sm3, item.signature) == digests
        assert item.case.trail is not None and item.case.trail[-1]["action"] == "著录更正"
        assert f"问题数据 {fid}" in item.case.trail[-1]["opinion"]
        assert "著录更正" in [a.action for a in eep_record(ctx, item).actions]
    assert ctx.store.stat(stored.rendition_key).sha256 == digests[1]


def test_findings_list_filters_pages_and_masks_personal_numbers(
        ctx: Context, client: TestClient, people: dict[str, dict[str, str]]) -> None:
    """Given findings of two rules, when listed with filters and keyset pages, then only matching ones come back,
    newest first; an auditor (no pii.read) sees the 证件号码 masked, an archivist in full; a bad status is 422."""
    seed_problems(ctx)
    runs.run(ctx, ACTOR, ["DQ-CA-001", "DQ-CA-011"])
    r = client.get("/api/v1/dq/findings", params={"rule": "DQ-CA-001"}, headers=people["audit01"])
    assert [f["rule_code"] for f in r.json()] == ["DQ-CA-001"]
    assert r.json()[0]["key_values"]["applicant_id_number"] == BAD_ID[:6] + "********" + BAD_ID[-4:]
    full = client.get("/api/v1/dq/findings", params={"rule": "DQ-CA-001"}, headers=people["arch01"]).json()
    assert full[0]["key_values"]["applicant_id_number"] == BAD_ID
    page1 = client.get("/api/v1/dq/findings", params={"limit": 1}, headers=people["arch01"]).json()
    page2 = client.get("/api/v1/dq/findings", params={"limit": 1, "after_id": page1[0]["id"]},
                       headers=people["arch01"]).json()
    assert page1[0]["id"] > page2[0]["id"]
    bad = client.get("/api/v1/dq/findings", params={"status": "nonsense"}, headers=people["arch01"])
    assert bad.status_code == 422 and bad.json()["code"] == "dq_status_invalid"
    assert client.get("/api/v1/dq/findings/999999", headers=people["arch01"]).status_code == 404


# --- reconciliation, figures and exports -------------------------------------------------------------------------


def test_reconciliation_reports_gaps_as_findings_and_the_filing_rate(
        ctx: Context, client: TestClient, people: dict[str, dict[str, str]]) -> None:
    """Given two cases filed on 2025-03-02 (one of another type than reported) and a reported case the archive has
    not filed, when the business system's list is reconciled, then closed-but-not-filed, filed-but-unknown and a
    type mismatch are counted and opened as findings, and 归档率 is filed among reported; a duplicate serial is 422."""
    add_case(ctx, "YW2025REC0001", business_type="TQ03")
    add_case(ctx, "YW2025REC0002", business_type="TQ03")
    add_case(ctx, "YW2025REC0003", business_type="TQ03")
    file_case_row(ctx, "YW2025REC0001", 1)
    file_case_row(ctx, "YW2025REC0002", 2)
    body = {"day": "2025-03-02", "cases": [{"serial": "YW2025REC0001", "business_type": "TQ03"},
                                           {"serial": "YW2025REC0003", "business_type": "TQ01"},
                                           {"serial": "YW2025UNKNOWN", "business_type": "TQ03"}]}
    r = client.post("/api/v1/dq/reconciliations", json=body, headers=people["arch01"])
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["counts"] == {"closed_not_filed": 2, "filed_unknown": 1, "type_mismatch": 1}
    assert out["reported"] == 3 and out["filed"] == 1 and out["filing_rate"] == pytest.approx(1 / 3, abs=1e-3)
    assert {f.object_key for f in findings_of(ctx, "DQ-RC-001")} == {"YW2025REC0003", "YW2025UNKNOWN"}
    assert [f.object_key for f in findings_of(ctx, "DQ-RC-002")] == ["YW2025REC0002"]
    assert [f.object_key for f in findings_of(ctx, "DQ-RC-003")] == ["YW2025REC0003"]
    dup = {"day": "2025-03-02", "cases": [{"serial": "YW2025REC0001", "business_type": "TQ03"}] * 2}
    d = client.post("/api/v1/dq/reconciliations", json=dup, headers=people["arch01"])
    assert d.status_code == 422 and d.json()["code"] == "dq_reconciliation_duplicates"
    for day in ("0001-01-01", "1990-12-31"):  # before any business; 0001-01-01 once overflowed into a 500
        early = client.post("/api/v1/dq/reconciliations", headers=people["arch01"],
                            json={"day": day, "cases": [{"serial": "YW2025REC0001", "business_type": "TQ03"}]})
        assert early.status_code == 422 and early.json()["code"] == "dq_reconciliation_too_early", early.text
        assert "1991" in early.json()["message"]


def test_stats_and_xlsx_exports(ctx: Context, client: TestClient, people: dict[str, dict[str, str]]) -> None:
    """Given findings, one assigned and one fixed, when the figures are asked for, then open counts per rule come
    with the problem-data rate, the fix rate and the mean time to fix; the department list and the monthly bulletin
    download as XLSX holding those rows, and each export is audited."""
    seed_problems(ctx)
    runs.run(ctx, ACTOR, ["DQ-CA-001", "DQ-CA-011"])
    ca001, ca011 = findings_of(ctx, "DQ-CA-001")[0].id, findings_of(ctx, "DQ-CA-011")[0].id
    client.post(f"/api/v1/dq/findings/{ca011}/assign", json={"owner": "贷款科"}, headers=people["arch01"])
    client.post(f"/api/v1/dq/findings/{ca001}/corrections", headers=people["arch01"],
                json={"field": "applicant_id_number", "value": GOOD_ID, "reason": "核对证件"})
    client.post(f"/api/v1/dq/findings/{ca001}/verify", headers=people["arch02"])
    stats = client.get("/api/v1/dq/stats", headers=people["audit01"]).json()
    assert stats["open"] == 1 and stats["by_status"] == {"verified": 1, "assigned": 1}
    assert stats["by_rule"] == [{"rule": "DQ-CA-011", "name": "贷款业务有贷款合同号", "open": 1,
                                 "rate": pytest.approx(1 / 3, abs=1e-4)}]
    assert stats["fix_rate"] == 0.5 and stats["mean_hours_to_fix"] is not None and stats["by_owner"] == {"贷款科": 1}
    x = client.get("/api/v1/dq/findings.xlsx", params={"owner": "贷款科"}, headers=people["arch01"])
    assert x.status_code == 200
    rows = list(load_workbook(io.BytesIO(x.content)).active.iter_rows(values_only=True))  # type: ignore[union-attr]
    assert rows[1][0] == "编号" and [r[1] for r in rows[2:]] == ["DQ-CA-011"] and rows[2][10] == "贷款科"
    m = client.get("/api/v1/dq/reports/monthly.xlsx", headers=people["audit01"])
    wb = load_workbook(io.BytesIO(m.content))
    assert [r for r in wb["按规则"].iter_rows(values_only=True)][1][:3] == ("DQ-CA-011", "贷款业务有贷款合同号", 1)
    w = client.get("/api/v1/dq/reports/weekly.xlsx", headers=people["arch01"])
    assert w.status_code == 200
    for path, expected in (("monthly.pdf", "DQ-CA-011"), ("weekly.pdf", "贷款科")):
        pdf = client.get(f"/api/v1/dq/reports/{path}", headers=people["audit01"])
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        doc = pdfium.PdfDocument(pdf.content)
        assert expected in "".join(doc[i].get_textpage().get_text_range() for i in range(len(doc)))
    with ctx.catalogue.session() as s:
        assert len(list(s.scalars(select(AuditEvent).where(AuditEvent.action == "dq.export")))) == 5


def test_item_rules_find_their_problems(ctx: Context) -> None:
    """Given filed items with a pending loan trigger for decades, a missing expiry and a 档号 that disagrees with
    its fields, when the item rules run, then each is a finding on the item's 档号."""
    old = stored_item(ctx, category="DK", business_type="DK01", trigger="LOAN_SETTLED", year=1990)
    no_expiry = stored_item(ctx, trigger_date=date(2024, 1, 1), expiry=None)
    wrong = stored_item(ctx)
    with ctx.catalogue.session() as s:
        item = s.scalar(select(ArchiveItem).where(ArchiveItem.archival_code == old.archival_code))
        assert item is not None
        item.filed_at = datetime(1990, 1, 3, tzinfo=UTC)
        w = s.scalar(select(ArchiveItem).where(ArchiveItem.archival_code == wrong.archival_code))
        assert w is not None
        w.number += 1000
    runs.run(ctx, ACTOR, ["DQ-IT-001", "DQ-IT-008", "DQ-IT-009"])
    assert [f.object_key for f in findings_of(ctx, "DQ-IT-008")] == [old.archival_code]
    assert [f.object_key for f in findings_of(ctx, "DQ-IT-009")] == [no_expiry.archival_code]
    assert [f.object_key for f in findings_of(ctx, "DQ-IT-001")] == [wrong.archival_code]
    assert "件号" in findings_of(ctx, "DQ-IT-001")[0].message


# --- batch corrections --------------------------------------------------------------------------------------------


def test_batch_plan_needs_a_second_person_backs_up_and_rolls_back(
        ctx: Context, client: TestClient, people: dict[str, dict[str, str]]) -> None:
    """Given two cases, when an archivist proposes a plan correcting their names, then applying before approval is
    409, approving it herself is 409 dq_plan_same_person; once a second archivist approves and she applies it, the
    old values are in the plan's backup, the names are changed with one correction record each and an audited
    apply; rolling back restores them; an unknown serial in a plan is 404."""
    add_case(ctx, "YW2025PLAN001", name="王五 ", id_number=GOOD_ID)
    add_case(ctx, "YW2025PLAN002", name="赵六1", id_number=GOOD_ID)
    body = {"title": "历史数据姓名清理", "reason": "核对证件后统一更正",
            "changes": [{"serial": "YW2025PLAN001", "field": "applicant_name", "value": "王五"},
                        {"serial": "YW2025PLAN002", "field": "applicant_name", "value": "赵六"}]}
    r = client.post("/api/v1/dq/plans", json=body, headers=people["arch01"])
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    early = client.post(f"/api/v1/dq/plans/{pid}/apply", headers=people["arch01"])
    assert early.status_code == 409 and early.json()["code"] == "dq_plan_wrong_status"
    own = client.post(f"/api/v1/dq/plans/{pid}/approve", headers=people["arch01"])
    assert own.status_code == 409 and own.json()["code"] == "dq_plan_same_person"
    assert client.post(f"/api/v1/dq/plans/{pid}/approve", headers=people["arch02"]).json()["status"] == "approved"
    assert client.post(f"/api/v1/dq/plans/{pid}/apply", headers=people["arch01"]).json()["status"] == "applied"
    with ctx.catalogue.session() as s:
        names = dict(s.execute(select(Case.serial, Case.applicant_name).where(Case.serial.like("YW2025PLAN%"))).all())
        from archive.catalogue.models import DqCorrection, DqPlan

        plan = s.get_one(DqPlan, pid)
        assert [b["before"] for b in plan.backup or []] == ["王五 ", "赵六1"]
        assert len(list(s.scalars(select(DqCorrection).where(DqCorrection.plan_id == pid)))) == 2
        assert s.scalar(select(AuditEvent).where(AuditEvent.action == "dq.plan.apply")) is not None
    assert names == {"YW2025PLAN001": "王五", "YW2025PLAN002": "赵六"}
    back = client.post(f"/api/v1/dq/plans/{pid}/rollback", headers=people["arch01"])
    assert back.status_code == 200 and back.json()["status"] == "rolled_back"
    with ctx.catalogue.session() as s:
        names = dict(s.execute(select(Case.serial, Case.applicant_name).where(Case.serial.like("YW2025PLAN%"))).all())
    assert names == {"YW2025PLAN001": "王五 ", "YW2025PLAN002": "赵六1"}
    missing = {**body, "changes": [{"serial": "YW2025NOPE001", "field": "applicant_name", "value": "甲"}]}
    assert client.post("/api/v1/dq/plans", json=missing, headers=people["arch01"]).status_code == 404


# --- the command line -------------------------------------------------------------------------------------------


def test_cli_lists_rules_runs_resumably_and_exports(ctx: Context, monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: object) -> None:
    """Given the catalogue of ``ctx``, when `archive dq rules`, `archive dq run --rules DQ-CA-001` and `archive dq
    export` are run, then the rules are listed, the run reports the failing case and ends with a summary, and the
    export writes an XLSX holding the finding; an unknown rule is a clear refusal (its code, exit code 2)."""
    from pathlib import Path

    from typer.testing import CliRunner

    from archive.cli import app
    from archive.commands import console
    from archive.settings import get_settings

    monkeypatch.setattr(console.out, "width", 200)  # its width was fixed when it was made (COLUMNS then)
    monkeypatch.setenv("ARCHIVE_DATA_DIR", str(ctx.settings.data_dir))
    monkeypatch.setenv("ARCHIVE_DATABASE_URL", ctx.settings.database_url or "")
    get_settings.cache_clear()
    seed_problems(ctx)
    runner = CliRunner()
    listed = runner.invoke(app, ["dq", "rules"])
    assert listed.exit_code == 0 and "DQ-CA-001" in listed.output and "证件号码校验位" in listed.output
    ran = runner.invoke(app, ["dq", "run", "--rules", "DQ-CA-001", "--rules", "DQ-CA-011"])
    assert ran.exit_code == 0, ran.output
    assert "不通过 2" in ran.output and "新问题 2" in ran.output
    out = Path(str(tmp_path)) / "list.xlsx"
    exported = runner.invoke(app, ["dq", "export", str(out)])
    assert exported.exit_code == 0 and out.exists()
    sheet = load_workbook(out).active
    assert sheet is not None and {r[1] for r in sheet.iter_rows(min_row=3, values_only=True)} == {"DQ-CA-001",
                                                                                                  "DQ-CA-011"}
    bad = runner.invoke(app, ["dq", "run", "--rules", "DQ-NO-000"])
    assert bad.exit_code == 2 and "DQ-NO-000" in bad.output and "dq_rule_not_found" in bad.output
    get_settings.cache_clear()
