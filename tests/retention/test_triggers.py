"""Trigger events (贷款结清、账户销户、单位注销) start retention clocks; items without them stay pending."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from archive.catalogue.models import ArchiveItem, AuditEvent, Document, OutboxMessage, TriggerEvent
from archive.classification import load_schedule
from archive.cli import app
from archive.context import Context
from tests import samples
from tests.factories import ID, case_body, close_body, close_case, upload
from tests.helpers import add_client, add_user, login

USCC = "91350100M000100Y43"
LOAN = "DK2024001"


def file_loan(client: TestClient, headers: dict[str, str], serial: str, loan: str = LOAN,
              day: str = "2024-01-05", branch: str = "BR01") -> dict[str, Any]:
    """A filed DK03 loan item: it waits for 贷款结清 (trigger_date and expiry empty)."""
    r = client.post("/api/v1/cases", json=case_body(serial=serial, business_type="DK03", loan_contract_no=loan,
                                                    accepted_at=f"{day}T09:00:00+08:00", branch=branch),
                    headers=headers)
    assert r.status_code == 201, r.text
    assert upload(client, headers, serial, ("结清.jpg", samples.jpeg(text=serial), "settlement_proof"),
                  ("身份证.png", samples.png(), "id_proof")).status_code == 201
    return close_case(client, headers, serial, close_body(day))["item"]


def file_unit(client: TestClient, headers: dict[str, str], serial: str, day: str = "2024-01-05") -> dict[str, Any]:
    """A filed GJ02 单位缴存登记 item: it waits for 单位注销."""
    body = case_body(serial=serial, business_type="GJ02", accepted_at=f"{day}T09:00:00+08:00",
                     unit={"name": "示例科技有限公司", "uscc": USCC})
    body.pop("applicant")
    assert client.post("/api/v1/cases", json=body, headers=headers).status_code == 201
    assert upload(client, headers, serial, ("申请.jpg", samples.jpeg(text=serial), "application_form"),
                  ("执照.png", samples.png(), "unit_license"),
                  ("经办人.png", samples.png(), "agent_id_proof")).status_code == 201
    return close_case(client, headers, serial, close_body(day))["item"]


def event(event_id: str = "EVT-0001", **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"event_id": event_id, "event_type": "loan_settled", "event_date": "2026-03-01",
                            "loan_contract_no": LOAN}
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


def item_row(ctx: Context, code: str) -> ArchiveItem:
    with ctx.catalogue.sessions() as s:
        item = s.scalar(select(ArchiveItem).where(ArchiveItem.archival_code == code))
        assert item is not None
        s.expunge(item)
        return item


def count(ctx: Context, model: Any, *where: Any) -> int:
    with ctx.catalogue.sessions() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


@pytest.fixture
def core(ctx: Context) -> dict[str, str]:
    return add_client(ctx, "core", ["cases.write", "data.read", "pii.read"])


@pytest.fixture
def loans(ctx: Context) -> dict[str, str]:
    """The loan system, allowed to report events only."""
    return add_client(ctx, "loans", ["events.write"])


@pytest.fixture
def archivist(ctx: Context, client: TestClient) -> dict[str, str]:
    add_user(ctx, "arch", ["archivist"])
    return login(client, "arch")


def test_settlement_starts_the_clock_on_the_waiting_loan_items(ctx: Context, client: TestClient,
                                                                core: dict[str, str], loans: dict[str, str],
                                                                archivist: dict[str, str]) -> None:
    """Given two items of loan DK2024001 and one of another loan, all pending, when 贷款结清 is reported,
    then the two get trigger date, expiry (1 Jan after + 30 years), longer object locks and index rows."""
    a = file_loan(client, core, "YW2024010500001")
    b = file_loan(client, core, "YW2024010500002")
    other = file_loan(client, core, "YW2024010500003", loan="DK2024999")
    pending = client.get("/api/v1/retention/pending", headers=archivist).json()
    assert pending["total"] == 3 and pending["by_trigger"] == {"LOAN_SETTLED": 3}
    assert {i["archival_code"] for i in pending["items"]} == {a["archival_code"], b["archival_code"],
                                                              other["archival_code"]}
    assert pending["items"][0]["waiting_for"] == {"loan_contract_no": LOAN}
    with ctx.catalogue.sessions() as s:
        before = ctx.store.stat(s.scalar(select(ArchiveItem.rendition_key).where(
            ArchiveItem.archival_code == a["archival_code"])) or "").retain_until
    assert before is not None and before.date() == date(2055, 1, 1)  # filed 2024: the earliest possible end
    outbox = count(ctx, OutboxMessage)

    r = client.post("/api/v1/events", json=event(), headers=loans)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["outcome"] == "applied" and body["event_name"] == "贷款结清" and body["already_started"] == 0
    assert sorted(i["archival_code"] for i in body["started"]) == sorted([a["archival_code"], b["archival_code"]])
    assert all(i["expiry_date"] == "2057-01-01" for i in body["started"])
    for code in (a["archival_code"], b["archival_code"]):
        item = item_row(ctx, code)
        assert item.trigger_date == date(2026, 3, 1) and item.expiry_date == date(2057, 1, 1)
        assert ctx.store.stat(item.rendition_key or "").retain_until == datetime(2057, 1, 1, tzinfo=UTC)
        with ctx.catalogue.sessions() as s:
            keys = list(s.scalars(select(Document.original_key).where(Document.case_id == item.case_id)))
        assert all(ctx.store.stat(k).retain_until == datetime(2057, 1, 1, tzinfo=UTC) for k in keys)
    untouched = item_row(ctx, other["archival_code"])
    assert untouched.trigger_date is None and untouched.expiry_date is None
    assert count(ctx, OutboxMessage) == outbox + 2
    with ctx.catalogue.sessions() as s:
        audit_event = s.scalar(select(AuditEvent).where(AuditEvent.action == "retention.event"))
    assert audit_event is not None and audit_event.actor == "loans" and audit_event.outcome == "success"
    assert sorted(audit_event.detail["items"]) == sorted([a["archival_code"], b["archival_code"]])

    pending = client.get("/api/v1/retention/pending", headers=archivist).json()
    assert pending["total"] == 1 and pending["items"][0]["archival_code"] == other["archival_code"]
    # a second settlement report (another id) for the same loan starts nothing again
    again = client.post("/api/v1/events", json=event("EVT-0002", event_date="2026-04-01"), headers=loans).json()
    assert again["outcome"] == "nothing_waiting" and again["already_started"] == 2 and again["started"] == []
    assert item_row(ctx, a["archival_code"]).trigger_date == date(2026, 3, 1)


def test_same_event_id_replays_the_first_answer_and_a_different_body_is_refused(
        ctx: Context, client: TestClient, core: dict[str, str], loans: dict[str, str]) -> None:
    """Given a loan settlement reported once, when the same event id comes again with the same content (the type in
    Chinese), then 200 and the first answer; with a different date, then 409 event_id_conflict (内容与本次不同);
    neither writes an event or an audit row, and another business system may use the same id for its own event."""
    a = file_loan(client, core, "YW2024010500001")
    first = client.post("/api/v1/events", json=event(), headers=loans)
    assert first.status_code == 201
    audits = count(ctx, AuditEvent)
    replay = client.post("/api/v1/events", json=event(event_type="贷款结清"), headers=loans)  # same event, Chinese name
    assert replay.status_code == 200 and replay.json() == first.json()
    changed = client.post("/api/v1/events", json=event(event_date="2026-02-01"), headers=loans)
    assert changed.status_code == 409 and changed.json()["code"] == "event_id_conflict"
    assert "内容与本次不同" in changed.json()["message"]
    assert count(ctx, AuditEvent) == audits and count(ctx, TriggerEvent) == 1
    assert item_row(ctx, a["archival_code"]).trigger_date == date(2026, 3, 1)
    # another business system may use the same id for its own event
    other = add_client(ctx, "cards", ["events.write"])
    assert client.post("/api/v1/events", json=event(event_date="2026-02-01"), headers=other).status_code == 201


def test_unknown_loan_is_refused_404_and_recorded(ctx: Context, client: TestClient, core: dict[str, str],
                                                  loans: dict[str, str]) -> None:
    """Given a settlement for a loan contract no item waits for, when it is reported, then 404 unknown_loan naming
    the 借款合同号 and saying it did not take effect (未生效), recorded once as unknown_key and audited as
    refused; the same report again gives the same answer without a second row, and no item's clock starts."""
    a = file_loan(client, core, "YW2024010500001")
    r = client.post("/api/v1/events", json=event(loan_contract_no="DK-NOPE-1"), headers=loans)
    assert r.status_code == 404 and r.json()["code"] == "unknown_loan"
    assert "借款合同号 DK-NOPE-1" in r.json()["message"] and "未生效" in r.json()["message"]
    with ctx.catalogue.sessions() as s:
        row = s.scalar(select(TriggerEvent))
        refused = s.scalar(select(AuditEvent).where(AuditEvent.action == "retention.event"))
    assert row is not None and row.outcome == "unknown_key" and row.status == 404 and row.key_value == "DK-NOPE-1"
    assert refused is not None and refused.outcome == "refused" and refused.detail["key"] == "DK-NOPE-1"
    again = client.post("/api/v1/events", json=event(loan_contract_no="DK-NOPE-1"), headers=loans)
    same = {k: v for k, v in again.json().items() if k != "request_id"}  # each request has its own id
    assert again.status_code == 404 and same == {k: v for k, v in r.json().items() if k != "request_id"}
    assert count(ctx, TriggerEvent) == 1
    assert item_row(ctx, a["archival_code"]).trigger_date is None


def _future() -> str:
    return (datetime.now(UTC) + timedelta(days=2)).date().isoformat()


BAD = [
    ("unknown type", lambda: event(event_type="loan_paid"), 422, "unknown_event_type", "未知的事件类型"),
    ("missing key", lambda: event(loan_contract_no=None), 422, "missing_event_key", "借款合同号"),
    ("key of another type", lambda: event(uscc=USCC), 422, "unexpected_event_key", "不使用统一社会信用代码"),
    ("future date", lambda: event(event_date=_future()), 422, "event_date_in_future", "晚于今天"),
    ("typo date", lambda: event(event_date="0202-03-01"), 422, "event_date_too_early", "1991"),
    ("not a date", lambda: event(event_date="2026-13-45"), 422, "invalid_request", "event_date"),
    ("unknown field", lambda: event(amount=100), 422, "invalid_request", "请求内容有误"),
    ("bad event id", lambda: event("含 空格"), 422, "invalid_event_id", "事件编号"),
    ("bad uscc", lambda: event(event_type="unit_deregistered", loan_contract_no=None, uscc="91350100M000100Y44"),
     422, "invalid_uscc", "统一社会信用代码"),
    ("two keys", lambda: event(event_type="account_closed", loan_contract_no=None, personal_account="123",
                               id_number=ID), 422, "ambiguous_event_key", "其中一项"),
]


@pytest.mark.parametrize(("case", "make", "status", "code", "words"), BAD, ids=[b[0] for b in BAD])
def test_bad_events_are_refused_and_change_nothing(ctx: Context, client: TestClient, core: dict[str, str],
                                                   loans: dict[str, str], case: str, make: Any, status: int,
                                                   code: str, words: str) -> None:
    """Given a waiting loan item, when a malformed event is reported, then its status and code with a Chinese
    message, and no event row, no audit event and no started clock."""
    a = file_loan(client, core, "YW2024010500001")
    audits = count(ctx, AuditEvent)
    r = client.post("/api/v1/events", json=make(), headers=loans)
    assert r.status_code == status, r.text
    assert r.json()["code"].startswith(code) and words in r.json()["message"]
    assert count(ctx, TriggerEvent) == 0 and count(ctx, AuditEvent) == audits
    assert item_row(ctx, a["archival_code"]).trigger_date is None


def test_malformed_body_and_callers_without_the_right(ctx: Context, client: TestClient, core: dict[str, str],
                                                      loans: dict[str, str]) -> None:
    """Given a waiting loan item, when the body is not JSON or is a list, then 422 invalid_request (请求内容有误);
    when a system without events.write, a clerk or nobody reports, then 403 (报送业务事件) or 401; the loan system
    may not list pending items; nothing is written and the clock does not start."""
    a = file_loan(client, core, "YW2024010500001")
    add_user(ctx, "clerk", ["clerk"])
    clerk = login(client, "clerk")
    done = AuditEvent.outcome == "success"
    audits = count(ctx, AuditEvent, done)
    r = client.post("/api/v1/events", content=b"{not json", headers={**loans, "Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_request" and "请求内容有误" in r.json()["message"]
    r = client.post("/api/v1/events", json=[event()], headers=loans)
    assert r.status_code == 422 and r.json()["code"] == "invalid_request"
    r = client.post("/api/v1/events", json=event(), headers=core)  # cases.write, no events.write
    assert r.status_code == 403 and r.json()["code"] == "permission_denied" and "报送业务事件" in r.json()["message"]
    r = client.post("/api/v1/events", json=event(), headers=clerk)
    assert r.status_code == 403
    r = client.post("/api/v1/events", json=event())
    assert r.status_code == 401 and r.json()["code"] == "unauthenticated"
    assert client.get("/api/v1/retention/pending", headers=loans).status_code == 403
    assert count(ctx, TriggerEvent) == 0 and count(ctx, AuditEvent, done) == audits
    with ctx.catalogue.sessions() as s:  # each refusal for want of a permission is on record, nothing else changed
        refused = s.execute(select(AuditEvent.actor, AuditEvent.action).where(AuditEvent.outcome == "refused")
                            .order_by(AuditEvent.seq)).all()
    assert [tuple(r) for r in refused][-3:] == [("core", "permission.denied"), ("clerk", "permission.denied"),
                                               ("loans", "permission.denied")]
    assert item_row(ctx, a["archival_code"]).trigger_date is None


def test_archivist_reports_unit_deregistration(ctx: Context, client: TestClient, core: dict[str, str],
                                               archivist: dict[str, str]) -> None:
    """Given a GJ02 unit item waiting for 单位注销, when an archivist reports a person's account closing, then
    nothing starts and the 证件号码 is masked in the answer and the log; when the unit's deregistration is
    reported (USCC in lower case), then its item's clock starts from that date; an unknown unit is 404
    unknown_unit."""
    unit = file_unit(client, core, "YW2024010500010")
    pending = client.get("/api/v1/retention/pending?trigger=ACCOUNT_CLOSED", headers=archivist).json()
    assert pending["filtered_total"] == 1 and pending["items"][0]["waiting_for"] == {"uscc": USCC}
    # a person's account closing does not start the unit's files, even for a known person
    file_loan(client, core, "YW2024010500011")
    r = client.post("/api/v1/events", json=event("P-1", event_type="account_closed", loan_contract_no=None,
                                                 id_number=ID), headers=archivist)
    assert r.status_code == 201 and r.json()["outcome"] == "nothing_waiting"
    assert r.json()["key"] == "110105********002X"  # 证件号码 masked in answers and the audit log
    r = client.post("/api/v1/events", json=event("U-1", event_type="unit_deregistered", loan_contract_no=None,
                                                 uscc=USCC.lower(), event_date="2025-06-30"), headers=archivist)
    assert r.status_code == 201, r.text
    assert [i["archival_code"] for i in r.json()["started"]] == [unit["archival_code"]]
    item = item_row(ctx, unit["archival_code"])
    assert item.trigger_date == date(2025, 6, 30) and item.expiry_date == date(2056, 1, 1)
    with ctx.catalogue.sessions() as s:
        logged = [e.detail["key"] for e in s.scalars(select(AuditEvent).where(AuditEvent.action == "retention.event"))]
    assert ID not in logged and "110105********002X" in logged
    r = client.post("/api/v1/events", json=event("U-2", event_type="unit_deregistered", loan_contract_no=None,
                                                 uscc="91110000600037341L"), headers=archivist)
    assert r.status_code == 404 and r.json()["code"] == "unknown_unit"


def test_counting_follows_the_schedule_the_item_was_filed_under(ctx: Context, client: TestClient,
                                                                core: dict[str, str], loans: dict[str, str],
                                                                tmp_path: Path) -> None:
    """Given an item filed under a schedule counting 贷款结清 from the next day, and the schedule in force
    since changed back, then the settlement is counted by the item's own schedule version."""
    text = ctx.schedule.source_text.replace('version = "2026.1-default"', 'version = "2026.2-nextday"')
    assert "2026.2-nextday" in text
    text = text.replace('[triggers.LOAN_SETTLED]\nname = "贷款结清"\ncounting = "next_year"',
                        '[triggers.LOAN_SETTLED]\nname = "贷款结清"\ncounting = "next_day"')
    path = tmp_path / "nextday.toml"
    path.write_text(text, encoding="utf-8")
    default = ctx.schedule
    ctx.schedule = load_schedule(path)
    a = file_loan(client, core, "YW2024010500001")
    ctx.schedule = default
    b = file_loan(client, core, "YW2024010500002")
    assert item_row(ctx, a["archival_code"]).schedule_version == "2026.2-nextday"
    started = {i["archival_code"]: i["expiry_date"]
               for i in client.post("/api/v1/events", json=event(), headers=loans).json()["started"]}
    assert started == {a["archival_code"]: "2056-03-02", b["archival_code"]: "2057-01-01"}


def test_branch_limited_system_sees_only_its_branches(ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given a loan item of BR02, when a loan system limited to BR01 reports its settlement, then 404 unknown_loan
    and the item keeps waiting."""
    a = file_loan(client, core, "YW2024010500001", branch="BR02")
    br01 = add_client(ctx, "br01-loans", ["events.write"], branches=["BR01"])
    r = client.post("/api/v1/events", json=event(), headers=br01)
    assert r.status_code == 404 and r.json()["code"] == "unknown_loan"
    assert item_row(ctx, a["archival_code"]).trigger_date is None


def test_cli_reports_events_and_lists_pending(ctx: Context, client: TestClient, core: dict[str, str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a waiting loan item, when `archive event pending` runs, then it lists it; `event report` starts its
    clock (起算 1 件, expiry 2057-01-01); an unknown loan or a missing key exits 2 with its code and no traceback,
    and pending then lists 0 items."""
    monkeypatch.setenv("ARCHIVE_DATABASE_URL", ctx.settings.catalogue_url)
    monkeypatch.setenv("ARCHIVE_DATA_DIR", str(ctx.settings.data_dir))
    a = file_loan(client, core, "YW2024010500001")
    runner = CliRunner()
    r = runner.invoke(app, ["event", "pending"])
    assert r.exit_code == 0 and "LOAN_SETTLED 1 件" in r.output and a["archival_code"] in r.output
    args = ["event", "report", "--type", "loan_settled", "--date", "2026-03-01", "--id", "CLI-1"]
    r = runner.invoke(app, [*args, "--loan-contract-no", LOAN])
    assert r.exit_code == 0, r.output
    assert "起算 1 件" in r.output and a["archival_code"] in r.output and "2057-01-01" in r.output
    assert item_row(ctx, a["archival_code"]).expiry_date == date(2057, 1, 1)
    r = runner.invoke(app, [*args[:-1], "CLI-2", "--loan-contract-no", "DK-NOPE"])
    assert r.exit_code == 2 and "unknown_loan" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, [*args[:-1], "CLI-3"])
    assert r.exit_code == 2 and "missing_event_key" in r.output
    r = runner.invoke(app, ["event", "pending"])
    assert r.exit_code == 0 and "待起算档案共 0 件" in r.output


def test_the_same_event_reported_twice_at_once_starts_the_clock_once(ctx: Context, client: TestClient,
                                                                     core: dict[str, str]) -> None:
    """Given a business system retrying an event while the first request is still running, then one
    request records and applies it and the others replay its answer; the audit chain stays whole."""
    import threading

    from archive import audit
    from archive.audit import Actor
    from archive.retention import triggers

    a = file_loan(client, core, "YW2024010500001")
    barrier = threading.Barrier(4)
    answers: list[tuple[int, dict[str, Any]]] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            with ctx.catalogue.session() as s:
                answers.append(triggers.report(ctx, s, Actor("client", "loans"), triggers.EventIn(**event())))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    pool = [threading.Thread(target=worker) for _ in range(4)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors, errors
    assert sorted(status for status, _ in answers) == [200, 200, 200, 201]
    assert len({body["id"] for _, body in answers}) == 1 and all(body == answers[0][1] for _, body in answers)
    assert count(ctx, TriggerEvent) == 1
    assert count(ctx, AuditEvent, AuditEvent.action == "retention.event") == 1
    assert item_row(ctx, a["archival_code"]).expiry_date == date(2057, 1, 1)
    with ctx.catalogue.sessions() as s:
        assert audit.verify(s).ok
