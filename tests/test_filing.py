"""Filing (归档): a closed case becomes a signed PDF/A item with its 档号 and retention."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from archive import audit
from archive.catalogue.models import (
    ArchivalCodeSequence,
    ArchiveItem,
    AuditEvent,
    Case,
    CheckReport,
    Document,
    OutboxMessage,
)
from archive.context import Context
from archive.permissions import ROLE_PERMISSIONS, Principal
from signing.certificates import load_trust_roots
from signing.fixity import Digests
from signing.validate import verify_pdf
from tests import samples
from tests.factories import CLOSE, TRAIL, case_body, complete_case, upload
from tests.helpers import add_client, add_user, login


@pytest.fixture
def core(ctx: Context) -> dict[str, str]:
    return add_client(ctx, "core", ["cases.write", "data.read", "pii.read"])


def test_closing_a_complete_case_files_a_signed_item(ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given a 提取 case with all materials, when closed, then it has a 档号, expiry, and a verifiable rendition."""
    complete_case(client, core)
    r = client.post("/api/v1/cases/YW2026010500001/close", json=CLOSE, headers=core)
    assert r.status_code == 200, r.text
    body = r.json()
    item = body["item"]
    assert body["status"] == "filed" and body["outcome"] == "approved" and len(body["trail"]) == 3
    assert item["archival_code"] == "J001-YW·2026-D30-TQ-000001"
    assert item["trigger"] == "BUSINESS_CLOSED" and item["trigger_date"] == "2026-01-05"
    assert item["expiry_date"] == "2057-01-01"
    assert item["signature"]["level"] == "B-B" and item["signature"]["pdfa"] == "2b"
    with ctx.catalogue.sessions() as s:
        stored = s.scalar(select(ArchiveItem))
        assert stored is not None and stored.rendition_key
        rendition = ctx.store.read_bytes(stored.rendition_key)
        info = ctx.store.stat(stored.rendition_key)
        originals = [ctx.store.stat(d.original_key) for d in s.scalars(select(Document))]
        outbox = s.scalar(select(func.count()).select_from(OutboxMessage)) or 0
        filed = s.scalar(select(AuditEvent).where(AuditEvent.action == "item.file"))
    report = verify_pdf(rendition, load_trust_roots(ctx.settings.pki_path),
                        Digests(stored.rendition_sha256 or "", stored.rendition_sm3 or "", len(rendition)))
    assert report.ok, [c for c in report.failures]
    assert info.retain_until is not None and info.retain_until.date() == date(2057, 1, 1)
    assert all(o.retain_until is not None and o.retain_until.date() == date(2057, 1, 1) for o in originals)
    assert outbox >= 6  # open, four attachments, filing
    assert filed is not None and filed.target_id == item["archival_code"]


def test_filed_case_is_read_only(ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given a filed case, when a document is uploaded, a document removed or the case closed again, then 409 each
    (case_not_open): a filed case never changes."""
    complete_case(client, core)
    client.post("/api/v1/cases/YW2026010500001/close", json=CLOSE, headers=core)
    r = upload(client, core, "YW2026010500001", ("late.jpg", samples.jpeg(text="late"), "other"))
    assert r.status_code == 409 and r.json()["code"] == "case_not_open"
    doc_id = client.get("/api/v1/cases/YW2026010500001", headers=core).json()["documents"][0]["id"]
    r = client.post(f"/api/v1/cases/YW2026010500001/documents/{doc_id}/remove", json={"reason": "想撤"},
                    headers=core)
    assert r.status_code == 409
    r = client.post("/api/v1/cases/YW2026010500001/close", json=CLOSE, headers=core)
    assert r.status_code == 409 and r.json()["code"] == "case_not_open"


def test_incomplete_case_is_refused_naming_what_is_missing(ctx: Context, client: TestClient,
                                                           core: dict[str, str]) -> None:
    """Given a case with only its application form, when it is closed, then 409 materials_missing lists the missing
    materials (身份证明 …); a business system's override reason is 403 override_not_allowed; nothing is filed and
    both refusals are audited with their code."""
    client.post("/api/v1/cases", json=case_body(), headers=core)
    upload(client, core, "YW2026010500001", ("a.jpg", samples.jpeg(), "application_form"))
    r = client.post("/api/v1/cases/YW2026010500001/close", json=CLOSE, headers=core)
    assert r.status_code == 409 and r.json()["code"] == "materials_missing"
    assert r.json()["detail"]["missing"] == ["id_proof", "marriage_proof", "house_contract"]
    assert "身份证明" in r.json()["message"]
    r = client.post("/api/v1/cases/YW2026010500001/close", json={**CLOSE, "override_reason": "客户补交"},
                    headers=core)
    assert r.status_code == 403 and r.json()["code"] == "override_not_allowed"
    with ctx.catalogue.sessions() as s:
        assert s.scalar(select(func.count()).select_from(ArchiveItem)) == 0
        attempts = s.scalars(select(AuditEvent).where(AuditEvent.action == "item.file")).all()
    # both attempts are on record as refused, with the reason's code; nothing was filed
    assert [(e.outcome, e.detail["code"]) for e in attempts] == [("refused", "materials_missing"),
                                                                 ("refused", "override_not_allowed")]


def test_archivist_may_file_an_incomplete_case_with_a_reason(ctx: Context, client: TestClient,
                                                             core: dict[str, str]) -> None:
    """Given a case with only its application form, when an archivist closes it with an override reason, then it is
    filed and the item.file event keeps the reason and what was missing."""
    client.post("/api/v1/cases", json=case_body(), headers=core)
    upload(client, core, "YW2026010500001", ("a.jpg", samples.jpeg(), "application_form"))
    add_user(ctx, "arch", ["archivist"])
    r = client.post("/api/v1/cases/YW2026010500001/close", json={**CLOSE, "override_reason": "原件由法院调取"},
                    headers=login(client, "arch"))
    assert r.status_code == 200, r.text
    with ctx.catalogue.sessions() as s:
        event = s.scalar(select(AuditEvent).where(AuditEvent.action == "item.file"))
    assert event is not None and event.detail["override_reason"] == "原件由法院调取"
    assert event.detail["missing"] == ["id_proof", "marriage_proof", "house_contract"]


def test_loan_file_waits_for_settlement(ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given a loan case (DK03) closed, then its retention is pending: no expiry until 贷款结清."""
    client.post("/api/v1/cases", json=case_body(business_type="DK03", loan_contract_no="DK2026001"), headers=core)
    upload(client, core, "YW2026010500001", ("结清.jpg", samples.jpeg(), "settlement_proof"),
           ("身份证.png", samples.png(), "id_proof"))
    r = client.post("/api/v1/cases/YW2026010500001/close", json=CLOSE, headers=core)
    assert r.status_code == 200, r.text
    item = r.json()["item"]
    assert item["archival_code"] == "J001-YW·2026-D30-DK-000001"
    assert item["trigger"] == "LOAN_SETTLED" and item["trigger_date"] is None and item["expiry_date"] is None


def test_numbers_follow_each_other_without_gaps(ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given three complete cases, when they are filed one after the other, then their 件号 are 1, 2 and 3."""
    codes = []
    for n in range(1, 4):
        serial = f"YW202601050000{n}"
        complete_case(client, core, serial=serial)
        codes.append(client.post(f"/api/v1/cases/{serial}/close", json=CLOSE, headers=core).json()["item"]
                     ["archival_code"])
    assert codes == [f"J001-YW·2026-D30-TQ-00000{n}" for n in range(1, 4)]


@pytest.mark.parametrize("failing", ["read_bytes", "stat"])  # reading the originals; a check item's own look
def test_an_object_store_outage_while_filing_is_503_not_a_failed_check(
        ctx: Context, client: TestClient, core: dict[str, str], monkeypatch: pytest.MonkeyPatch, failing: str) -> None:
    """Given the object store refuses connections (an outage), when a case is filed, then the answer is 503
    store_unavailable (try again later), not 409 filing_checks_failed with a refusal report blaming the originals;
    once the store is back the case files."""
    from archive.catalogue.models import CheckReport
    from storage.base import StoreUnavailable

    complete_case(client, core)
    store = ctx.store

    def down(*_: Any, **__: Any) -> Any:
        raise StoreUnavailable("对象存储无法连接（NewConnectionError）")

    monkeypatch.setattr(store, failing, down)
    r = client.post("/api/v1/cases/YW2026010500001/close", json=CLOSE, headers=core)
    assert r.status_code == 503 and r.json()["code"] == "store_unavailable", r.text
    with ctx.catalogue.sessions() as s:
        assert s.scalar(select(func.count()).select_from(CheckReport)) == 0
    monkeypatch.undo()
    r = client.post("/api/v1/cases/YW2026010500001/close", json=CLOSE, headers=core)
    assert r.status_code == 200, r.text


def test_failed_signature_leaves_no_item_and_no_number(ctx: Context, client: TestClient, core: dict[str, str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Given signing fails mid-filing, then nothing is filed, and the next filing gets number 1."""
    complete_case(client, core)
    import archive.filing

    def broken(*_: Any, **__: Any) -> tuple[bytes, Any]:
        from archive.errors import ServiceUnavailable

        raise ServiceUnavailable("签章服务不可用", code="signer_unavailable")

    monkeypatch.setattr(archive.filing, "sign_and_digest", broken)
    r = client.post("/api/v1/cases/YW2026010500001/close", json=CLOSE, headers=core)
    assert r.status_code == 503 and r.json()["code"] == "signer_unavailable"
    assert client.get("/api/v1/cases/YW2026010500001", headers=core).json()["status"] == "open"
    monkeypatch.undo()
    r = client.post("/api/v1/cases/YW2026010500001/close", json=CLOSE, headers=core)
    assert r.json()["item"]["archival_code"].endswith("-000001")


def test_filing_without_a_signing_certificate_is_503_and_files_nothing(ctx: Context, client: TestClient,
                                                                       core: dict[str, str]) -> None:
    """Given a complete case and no signing certificate in ARCHIVE_PKI_DIR, When the case is closed, Then 503
    signer_missing naming what to configure, the case stays open, no item, number or object is made, and the
    refusal is audited."""
    import shutil

    complete_case(client, core)
    objects_before = sorted(ctx.store.list_keys(""))
    shutil.rmtree(ctx.settings.pki_path)
    r = client.post("/api/v1/cases/YW2026010500001/close", json=CLOSE, headers=core)
    assert r.status_code == 503, r.text
    assert r.json()["code"] == "signer_missing" and "ARCHIVE_PKI_DIR" in r.json()["message"]
    assert client.get("/api/v1/cases/YW2026010500001", headers=core).json()["status"] == "open"
    with ctx.catalogue.sessions() as s:
        assert s.scalar(select(func.count()).select_from(ArchiveItem)) == 0
        filed = [(e.outcome, e.detail.get("code")) for e in s.scalars(select(AuditEvent).where(
            AuditEvent.action == "item.file"))]
    assert filed == [("refused", "signer_missing")]
    assert sorted(ctx.store.list_keys("")) == objects_before


@pytest.mark.parametrize(("body", "code"), [
    ({**CLOSE, "trail": []}, "invalid_request"),
    ({**CLOSE, "outcome": "maybe"}, "invalid_request"),
    ({**CLOSE, "closed_at": "2026-01-05T16:00:00"}, "naive_datetime"),
    ({**CLOSE, "closed_at": "2025-01-01T00:00:00+08:00"}, "closed_before_accepted"),
    ({**CLOSE, "trail": [{"action": "喝茶", "person": "x", "at": "2026-01-05T16:00:00+08:00"}]}, "invalid_request"),
])
def test_bad_close_requests(ctx: Context, client: TestClient, core: dict[str, str], body: dict[str, Any],
                            code: str) -> None:
    """Given a complete case, when a malformed close request is sent, then 422 with its code."""
    complete_case(client, core)
    r = client.post("/api/v1/cases/YW2026010500001/close", json=body, headers=core)
    assert r.status_code == 422 and r.json()["code"] == code


def test_closing_needs_write_permission_and_writes_nothing_without_it(ctx: Context, client: TestClient,
                                                                      core: dict[str, str]) -> None:
    """Given a complete case, when a system with data.read only closes it, then 403; closing an unknown case is 404."""
    complete_case(client, core)
    reader = add_client(ctx, "reader", ["data.read"])
    r = client.post("/api/v1/cases/YW2026010500001/close", json=CLOSE, headers=reader)
    assert r.status_code == 403
    r = client.post("/api/v1/cases/NOSUCH00001/close", json=CLOSE, headers=core)
    assert r.status_code == 404


def test_back_filed_record_past_its_period_is_filed_unlocked_and_due_for_appraisal(
        ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given a 1995 withdrawal digitised now (定期30年 counted from 1996-01-01, so over since 2026-01-01),
    when it is closed, then it is filed (the store takes no lock already in the past) and awaits 鉴定."""
    from archive.retention.appraisal import queue_query

    trail = [{**step, "at": step["at"].replace("2026-01-05", "1995-03-06")} for step in TRAIL]
    complete_case(client, core, serial="YW1995030600001", accepted_at="1995-03-06T09:30:00+08:00")
    r = client.post("/api/v1/cases/YW1995030600001/close", headers=core,
                    json={**CLOSE, "closed_at": "1995-03-06T16:00:00+08:00", "trail": trail})
    assert r.status_code == 200, r.text
    assert r.json()["item"]["expiry_date"] == "2026-01-01"
    with ctx.catalogue.sessions() as s:
        item = s.scalars(select(ArchiveItem)).one()
        assert ctx.store.stat(item.rendition_key or "").retain_until is None
        assert [i.id for i in s.scalars(queue_query(ctx.today()))] == [item.id]


# --- filing outside write transactions (issue 12, items 4 and 10) --------------------------------------------

SYSTEM = Principal("user", 0, "test", frozenset().union(*ROLE_PERMISSIONS.values()))


def _during_rendering(monkeypatch: pytest.MonkeyPatch, first: Callable[[], None]) -> list[int]:
    """Run ``first`` while the first rendition is being built (later builds run plainly); returns the build count."""
    import archive.filing

    real, builds = archive.filing.build_rendition, []

    def build(*args: Any, **kwargs: Any) -> bytes:
        builds.append(1)
        if len(builds) == 1:
            first()
        return real(*args, **kwargs)

    monkeypatch.setattr(archive.filing, "build_rendition", build)
    return builds


def test_an_unrelated_write_goes_through_while_a_filing_renders(ctx: Context, client: TestClient,
                                                                core: dict[str, str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a filing busy rendering and signing, When another request writes the catalogue meanwhile (here it
    registers a business system, waiting at most 0.5 s for locks), Then that write succeeds at once - the filing
    holds no write lock (on SQLite: the whole database) while it renders - and the filing succeeds too."""
    from archive import identity
    from archive.audit import Actor
    from archive.catalogue.db import Catalogue

    complete_case(client, core)
    other = Catalogue(ctx.settings.catalogue_url, busy_timeout=0.5)
    failures: list[Exception] = []

    def write() -> None:
        try:
            with other.session() as s:
                identity.add_client(s, Actor.system("test"), "other-system", ["data.read"])
        except Exception as exc:  # reported by the assertion below
            failures.append(exc)

    _during_rendering(monkeypatch, write)
    try:
        r = client.post("/api/v1/cases/YW2026010500001/close", json=CLOSE, headers=core)
    finally:
        other.dispose()
    assert failures == []
    assert r.status_code == 200, r.text
    assert r.json()["item"]["archival_code"] == "J001-YW·2026-D30-TQ-000001"


def test_an_unrelated_write_goes_through_while_a_filing_signs(ctx: Context, client: TestClient,
                                                             core: dict[str, str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a filing busy signing its rendition, When another connection writes the catalogue meanwhile (waiting
    at most 0.5 s for locks), Then that write succeeds at once: signing, too, holds no write lock (on SQLite the
    whole database; decision 0014), and the filing succeeds with the 件号 it predicted."""
    import archive.filing
    from archive import identity
    from archive.audit import Actor
    from archive.catalogue.db import Catalogue

    complete_case(client, core)
    other = Catalogue(ctx.settings.catalogue_url, busy_timeout=0.5)
    failures: list[Exception] = []
    real = archive.filing.sign_and_digest

    def sign(*args: Any, **kwargs: Any) -> Any:
        try:
            with other.session() as s:
                identity.add_client(s, Actor.system("test"), "other-system", ["data.read"])
        except Exception as exc:  # reported by the assertion below
            failures.append(exc)
        return real(*args, **kwargs)

    monkeypatch.setattr(archive.filing, "sign_and_digest", sign)
    try:
        r = client.post("/api/v1/cases/YW2026010500001/close", json=CLOSE, headers=core)
    finally:
        other.dispose()
    assert failures == []
    assert r.status_code == 200, r.text
    assert r.json()["item"]["archival_code"] == "J001-YW·2026-D30-TQ-000001"


def test_the_filing_transaction_takes_the_audit_chain_head_last(ctx: Context, client: TestClient,
                                                                core: dict[str, str]) -> None:
    """Given a complete case, When it is filed, Then in the filing's write transaction the audit chain head (one row
    every audited write of every process waits for) is locked last, after the 件号 counter, the retention locks,
    the report's rows and the outbox row: after it only the events' inserts and the head's update run before the
    commit."""
    from sqlalchemy import event

    from archive.retention.schedules import record_current

    complete_case(client, core)
    record_current(ctx)  # the schedule's first filing records (and audits) its version: not this test's subject
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()).lower())

    def committed(conn: Any) -> None:
        statements.append("commit")

    event.listen(ctx.catalogue.engine, "before_cursor_execute", seen)
    event.listen(ctx.catalogue.engine, "commit", committed)
    try:
        r = client.post("/api/v1/cases/YW2026010500001/close", json=CLOSE, headers=core)
    finally:
        event.remove(ctx.catalogue.engine, "before_cursor_execute", seen)
        event.remove(ctx.catalogue.engine, "commit", committed)
    assert r.status_code == 200, r.text
    counter = next(i for i, q in enumerate(statements) if q.startswith("insert into archival_code_sequence"))
    head = next(i for i, q in enumerate(statements) if i > counter and "from audit_chain_head" in q)
    after = ["select audit_chain_head" if "from audit_chain_head" in q else q.split(" (")[0].split(" set ")[0]
             for q in statements[head + 1:]]
    tail = after[:after.index("commit")]
    assert tail and set(tail) <= {"insert into audit_event", "update audit_chain_head", "select audit_chain_head"}, \
        statements[counter:]
    assert any(q.startswith("insert into outbox") for q in statements[counter:head])
    assert any(q.startswith("insert into check_result") for q in statements[counter:head])


def test_number_taken_by_another_process_while_rendering_is_filed_with_the_next(
        ctx: Context, client: TestClient, core: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Given two filings of one class in different processes (no shared in-process lock), When the second files
    while the first renders with its predicted 件号 000001, Then the first notices at commit, builds again and is
    filed as 000002: both numbers used once, no gap; the unused first rendition is stored without a lock, so
    `archive storage gc` can reclaim it."""
    import contextlib
    import threading

    import archive.filing

    complete_case(client, core, serial="YW2026010500001")
    complete_case(client, core, serial="YW2026010500002")
    # one turn per "process", as without the PostgreSQL advisory lock (which would make the other wait for ours):
    # the 件号 check at commit is what still catches a number taken meanwhile
    monkeypatch.setattr(archive.filing, "_class_turn", lambda ctx, klass, serial: contextlib.nullcontext())

    def other_process_files() -> None:
        t = threading.Thread(target=archive.filing.close_case,
                             args=(ctx, SYSTEM, "YW2026010500002", archive.filing.CloseIn.model_validate(CLOSE)))
        t.start()
        t.join()

    builds = _during_rendering(monkeypatch, other_process_files)
    r = client.post("/api/v1/cases/YW2026010500001/close", json=CLOSE, headers=core)
    assert r.status_code == 200, r.text
    assert len(builds) == 3  # ours, the other process's, ours again
    assert r.json()["item"]["archival_code"] == "J001-YW·2026-D30-TQ-000002"
    with ctx.catalogue.sessions() as s:
        filed = {serial: code for serial, code in s.execute(select(Case.serial, ArchiveItem.archival_code).join(
            ArchiveItem))}
        assert filed == {"YW2026010500001": "J001-YW·2026-D30-TQ-000002",
                         "YW2026010500002": "J001-YW·2026-D30-TQ-000001"}
        assert s.scalar(select(ArchivalCodeSequence.last_number)) == 2
        kept = set(s.scalars(select(ArchiveItem.rendition_key)))
    stored = {k for k in ctx.store.list_keys("renditions/")}
    [orphan] = stored - kept
    assert ctx.store.stat(orphan).retain_until is None
    assert all(ctx.store.stat(k).retain_until is not None for k in kept)


def test_case_changed_while_rendering_is_built_again_from_the_change(
        ctx: Context, client: TestClient, core: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a filing busy rendering, When the case's record changes meanwhile (a corrected mobile number), Then
    the filing is not committed from the stale record: it is built again and the item carries the change."""
    from sqlalchemy import update

    complete_case(client, core)

    def correct_the_mobile() -> None:
        with ctx.catalogue.session() as s:
            s.execute(update(Case).values(applicant_mobile="13900139000"))

    builds = _during_rendering(monkeypatch, correct_the_mobile)
    r = client.post("/api/v1/cases/YW2026010500001/close", json=CLOSE, headers=core)
    assert r.status_code == 200, r.text
    assert len(builds) == 2 and r.json()["item"]["archival_code"].endswith("-000001")
    with ctx.catalogue.sessions() as s:
        report = s.scalar(select(CheckReport).where(CheckReport.item_id.is_not(None)))
        assert report is not None and report.passed


def test_filing_that_keeps_losing_its_number_answers_503_and_files_nothing(
        ctx: Context, client: TestClient, core: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Given every build's predicted 件号 is taken before it commits, When the case is closed, Then after a few
    builds it answers 503 filing_busy with Retry-After, no number is consumed and the case stays open."""
    import archive.filing

    complete_case(client, core)
    real = archive.filing.allocate

    def taken_first(*args: Any) -> Any:
        real(*args)  # another process's filing takes the predicted number just before this commit …
        return real(*args)  # … so this one would get the next

    monkeypatch.setattr(archive.filing, "allocate", taken_first)
    r = client.post("/api/v1/cases/YW2026010500001/close", json=CLOSE, headers=core)
    assert r.status_code == 503 and r.json()["code"] == "filing_busy", r.text
    assert int(r.headers["Retry-After"]) > 0 and "请稍后重试" in r.json()["message"]
    with ctx.catalogue.sessions() as s:
        assert s.scalar(select(func.count()).select_from(ArchiveItem)) == 0
        assert (s.scalar(select(func.max(ArchivalCodeSequence.last_number))) or 0) == 0
        assert s.scalar(select(Case.status)) == "open"


CONCURRENT_TYPES = {"TQ07": {}, "GJ05": {}, "ZJ03": {}, "DK03": {"loan_contract_no": "DK2026001"}}


def test_concurrent_filings_of_several_classes_all_succeed_with_gap_free_numbers(
        ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given 12 complete cases of four business classes, When 4 clients close them at the same time,
    Then every filing succeeds (none refused as rendition_not_pdfa because of another request's warning, none
    500 on a locked catalogue) and each class has the numbers 1-3 exactly once."""
    from concurrent.futures import ThreadPoolExecutor

    serials = {}
    for n in range(12):
        code = list(CONCURRENT_TYPES)[n % 4]
        serial = f"YW20260105{n:05d}"
        body = case_body(serial=serial, business_type=code, **CONCURRENT_TYPES[code])
        assert client.post("/api/v1/cases", json=body, headers=core).status_code == 201
        files = [(f"{m}.jpg", samples.jpeg(text=f"{serial} {m}"), m) for m in ctx.schedule.business_type(code).required]
        assert upload(client, core, serial, *files).status_code == 201
        serials[serial] = code

    def close(serial: str) -> tuple[str, int, str]:
        r = client.post(f"/api/v1/cases/{serial}/close", json=CLOSE, headers=core)
        return serial, r.status_code, r.text

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(close, serials))
    assert [(serial, status) for serial, status, _ in answers if status != 200] == [], answers
    with ctx.catalogue.sessions() as s:
        rows = s.execute(select(ArchiveItem.retention_code, ArchiveItem.category, ArchiveItem.number)).all()
    by_class: dict[tuple[str, str], list[int]] = {}
    for retention, category, number in rows:
        by_class.setdefault((retention, category), []).append(number)
    assert {k: sorted(v) for k, v in by_class.items()} == {
        ("D30", "TQ"): [1, 2, 3], ("D30", "GJ"): [1, 2, 3], ("Y", "ZJ"): [1, 2, 3], ("D30", "DK"): [1, 2, 3]}
    with ctx.catalogue.sessions() as s:  # the chain is unbroken and holds each filing's event once
        assert audit.verify(s).ok
        filed = s.scalars(select(AuditEvent.target_id).where(AuditEvent.action == "item.file")).all()
        codes = s.scalars(select(ArchiveItem.archival_code)).all()
    assert sorted(filed) == sorted(codes) and len(codes) == 12


def test_a_filing_answer_releases_its_connection(ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given a complete case, When it is filed through the API, Then the answer closes the connection
    (``Connection: close``): with serve --workers N the caller's next request goes to whichever process is free
    instead of staying with this one, where two clients filing at once would share one interpreter."""
    complete_case(client, core)
    r = client.post("/api/v1/cases/YW2026010500001/close", json=CLOSE, headers=core)
    assert r.status_code == 200, r.text
    assert r.headers["connection"] == "close"


def _same_class_cases(ctx: Context, client: TestClient, core: dict[str, str], count: int) -> list[str]:
    serials = []
    for n in range(count):
        serial = f"YW20260106{n:05d}"
        assert client.post("/api/v1/cases", json=case_body(serial=serial, business_type="GJ05"),
                           headers=core).status_code == 201
        required = ctx.schedule.business_type("GJ05").required
        files = [(f"{m}.jpg", samples.jpeg(text=f"{serial} {m}"), m) for m in required]
        assert upload(client, core, serial, *files).status_code == 201
        serials.append(serial)
    return serials


def _filed_numbers(ctx: Context) -> dict[str, int]:
    with ctx.catalogue.sessions() as s:
        return dict(s.execute(select(Case.serial, ArchiveItem.number).join(ArchiveItem)).all())


def test_concurrent_filings_of_one_class_take_each_number_once(ctx: Context, client: TestClient,
                                                               core: dict[str, str]) -> None:
    """Given 8 complete cases of one class, When 4 clients close them at the same time (each builds and signs
    outside the write transaction), Then all are filed with 件号 1-8, each exactly once, none skipped, and the
    class counter stands at 8."""
    from concurrent.futures import ThreadPoolExecutor

    serials = _same_class_cases(ctx, client, core, 8)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda serial: client.post(f"/api/v1/cases/{serial}/close", json=CLOSE,
                                                           headers=core), serials))
    assert [r.status_code for r in answers] == [200] * 8, [r.text for r in answers if r.status_code != 200]
    assert sorted(_filed_numbers(ctx).values()) == list(range(1, 9))
    with ctx.catalogue.sessions() as s:
        assert s.scalar(select(ArchivalCodeSequence.last_number)) == 8


def test_concurrent_filings_of_one_class_without_the_class_turn_never_share_or_skip_a_number(
        ctx: Context, client: TestClient, core: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Given 6 cases of one class and no class turn (as filings in processes that do not share a lock), When 3
    clients close them at the same time, Then every filing that succeeds holds its own 件号, the filed numbers are
    1..n with no gap, and every other answer is 503 filing_busy with its case still open (nothing consumed)."""
    import contextlib
    from concurrent.futures import ThreadPoolExecutor

    import archive.filing

    monkeypatch.setattr(archive.filing, "_class_turn", lambda ctx, klass, serial: contextlib.nullcontext())
    serials = _same_class_cases(ctx, client, core, 6)
    with ThreadPoolExecutor(3) as pool:
        answers = dict(zip(serials, pool.map(lambda serial: client.post(f"/api/v1/cases/{serial}/close",
                                                                          json=CLOSE, headers=core), serials),
                           strict=True))
    busy = {serial for serial, r in answers.items() if r.status_code == 503}
    assert all(answers[s].status_code == 200 for s in set(serials) - busy), {s: r.text for s, r in answers.items()}
    assert all(answers[s].json()["code"] == "filing_busy" for s in busy)
    numbers = _filed_numbers(ctx)
    assert set(numbers) == set(serials) - busy
    assert sorted(numbers.values()) == list(range(1, len(numbers) + 1))
    with ctx.catalogue.sessions() as s:
        assert s.scalar(select(ArchivalCodeSequence.last_number)) == len(numbers)
        assert set(s.scalars(select(Case.serial).where(Case.status == "open"))) == busy


def test_case_with_a_replaced_document_files(ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given a complete case whose first document was replaced while open (the replacement takes its 件内顺序号),
    When it is closed, Then it is filed: GD-2-6 counts the documents in the item, not the replaced one beside them."""
    complete_case(client, core)
    first = client.get("/api/v1/cases/YW2026010500001", headers=core).json()["documents"][0]
    r = client.put(f"/api/v1/cases/YW2026010500001/documents/{first['id']}", headers=core,
                   files={"file": ("a2.jpg", samples.jpeg(text="v2"), "image/jpeg")})
    assert r.status_code == 200, r.text
    r = client.post("/api/v1/cases/YW2026010500001/close", json=CLOSE, headers=core)
    assert r.status_code == 200, r.text
    assert r.json()["item"]["archival_code"] == "J001-YW·2026-D30-TQ-000001"


def test_the_version_row_of_a_fresh_signature_is_read_from_its_own_bytes(
        ctx: Context, client: TestClient, core: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a complete case filed B-B, then its rendition_version row (version 1, level B-B, no time stamp) is
    read from the signature just made, without pyHanko's full reader of the file (issue 17: ~35 ms a filing)."""
    import signing.ltv
    from archive.catalogue.models import RenditionVersion

    def full_reader(_: bytes) -> Any:
        raise AssertionError("the filing parsed its own signature with pyHanko's reader")

    monkeypatch.setattr(signing.ltv, "time_stamps", full_reader)
    monkeypatch.setattr(signing.ltv, "level_of", full_reader)
    complete_case(client, core)
    r = client.post("/api/v1/cases/YW2026010500001/close", json=CLOSE, headers=core)
    assert r.status_code == 200, r.text
    with ctx.catalogue.sessions() as s:
        [row] = s.scalars(select(RenditionVersion))
        item = s.scalar(select(ArchiveItem))
        assert item is not None
        assert (row.item_id, row.version, row.kind, row.level) == (item.id, 1, "signed", "B-B")
        assert (row.object_key, row.sha256) == (item.rendition_key, item.rendition_sha256)
        assert row.timestamp_expiry is None and row.algorithm is None


@pytest.mark.parametrize("pii", [True, False])
def test_the_filing_answer_is_what_it_committed_without_reading_the_case_back(
        ctx: Context, client: TestClient, core: dict[str, str], monkeypatch: pytest.MonkeyPatch, pii: bool) -> None:
    """Given a complete case with a replaced document, When it is closed by a caller with or without 个人信息 access,
    Then the answer - built from the rows the filing committed, with no read of the case after the commit (issue 17)
    - is what a fresh read of the case says (events aside), personal data masked alike; the replaced document is
    not among its documents."""
    from archive.api.routes import cases

    caller = core if pii else add_client(ctx, "clerk", ["cases.write", "data.read"])
    complete_case(client, core)
    first = client.get("/api/v1/cases/YW2026010500001", headers=core).json()["documents"][0]
    r = client.put(f"/api/v1/cases/YW2026010500001/documents/{first['id']}", headers=core,
                   files={"file": ("a2.jpg", samples.jpeg(text="v2"), "image/jpeg")})
    assert r.status_code == 200, r.text
    reads: list[str] = []
    plain = cases.get_case
    monkeypatch.setattr(cases, "get_case", lambda *a, **k: (reads.append("case"), plain(*a, **k))[1])
    r = client.post("/api/v1/cases/YW2026010500001/close", json=CLOSE, headers=caller)
    assert r.status_code == 200, r.text
    assert reads == []  # the answer is not read back
    monkeypatch.setattr(cases, "get_case", plain)
    answer, fresh = r.json(), client.get("/api/v1/cases/YW2026010500001", headers=caller).json()
    fresh.pop("events")
    assert answer == fresh
    assert first["id"] not in [d["id"] for d in answer["documents"]]
    assert answer["item"]["archival_code"] == "J001-YW·2026-D30-TQ-000001" and answer["status"] == "filed"
    assert (answer["applicant_id_number"] == case_body()["applicant"]["id_number"]) is pii
