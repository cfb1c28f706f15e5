"""Destruction (销毁): the 销毁清册, four-eyes approval, execution, tombstones and the signed list."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pypdfium2 as pdfium
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from typer.testing import CliRunner

from archive.catalogue.models import (
    AppraisalDecision,
    ArchiveItem,
    Case,
    DestructionEntry,
    DestructionList,
    Document,
)
from archive.cli import app
from archive.context import Context
from archive.indexing import IndexWorker
from archive.localtime import local_time
from archive.permissions import Permission, Principal
from archive.retention import destruction
from search.base import SearchQuery, Visibility
from signing.certificates import load_trust_roots
from signing.validate import verify_pdf
from storage.filesystem import FilesystemStore
from storage.replicated import ReplicatedStore
from tests.factories import file_case
from tests.helpers import PASSWORD, add_client, add_user, login
from tests.retention.test_holds import HOLD, add_people, events, expire_locks, keys_of, make_item

LOCKED = datetime.now(UTC) + timedelta(days=3650)


@pytest.fixture
def people(ctx: Context, client: TestClient) -> dict[str, dict[str, str]]:
    return add_people(ctx, client)


def propose(client: TestClient, headers: dict[str, str], *codes: str) -> None:
    r = client.post("/api/v1/appraisal/decisions", json={"archival_codes": list(codes), "decision": "destroy",
                                                          "reason": "保管期满，经鉴定无继续保存价值"}, headers=headers)
    assert r.status_code == 201, r.text


def approved_list(client: TestClient, people: dict[str, Any], *codes: str) -> int:
    propose(client, people["arch"], *codes)
    r = client.post("/api/v1/destruction-lists", json={"archival_codes": list(codes)}, headers=people["arch"])
    assert r.status_code == 201, r.text
    list_id = r.json()["id"]
    for who in ("arch", "head"):
        r = client.post(f"/api/v1/destruction-lists/{list_id}/approvals", json={"opinion": "同意销毁"},
                        headers=people[who])
        assert r.status_code == 201, r.text
    return int(list_id)


def exists(ctx: Context, key: str) -> bool:
    return bool(ctx.store.exists(key))


def test_filed_item_is_destroyed_end_to_end(ctx: Context, client: TestClient, people: dict[str, Any]) -> None:
    """Given a filed, indexed item with a cached page image whose retention has run out, when it is appraised,
    listed, approved by two people and executed, then its originals, rendition and cached images are gone, the
    catalogue keeps a tombstone, the index no longer finds it, and the signed list PDF is downloadable."""
    core = {"X-API-Key": _core_key(ctx)}
    code = file_case(client, core)
    doc_id = client.get("/api/v1/cases/YW2026010500001", headers=core).json()["documents"][0]["id"]
    add_user(ctx, "viewer", ["clerk"])
    assert client.get(f"/api/v1/documents/{doc_id}/pages/1?w=200",
                      headers=login(client, "viewer")).status_code == 200
    IndexWorker(ctx).drain()
    with ctx.catalogue.session() as s:
        s.execute(update(ArchiveItem).values(expiry_date=date(2020, 1, 1)))
        doc_shas = list(s.scalars(select(Document.sha256)))
    thumbs = [k for sha in doc_shas for k in ctx.store.list_keys(f"thumbnails/{sha}/")]
    assert thumbs, "the page image was cached in the store"
    keys = keys_of(ctx, code)
    expire_locks(ctx, keys)
    assert client.get("/api/v1/appraisal/queue", headers=people["arch"]).json()["total"] == 1

    list_id = approved_list(client, people, code)
    detail = client.get(f"/api/v1/destruction-lists/{list_id}", headers=people["head"]).json()
    assert detail["status"] == "approved" and [a["approver"] for a in detail["approvals"]] == ["arch", "head"]
    [entry] = detail["entries"]
    assert entry["archival_code"] == code and entry["title"] == "张三购买自住住房提取" and entry["year"] == 2026
    assert entry["pieces"] == 1 and entry["pages"] == 6 and entry["retention_code"] == "D30"
    assert entry["reason"] == "保管期满，经鉴定无继续保存价值"

    r = client.post(f"/api/v1/destruction-lists/{list_id}/execute", headers=people["arch"])
    assert r.status_code == 200, r.text
    assert r.json()["destroyed"] == [code] and r.json()["refused"] == []
    assert not any(exists(ctx, k) for k in keys + thumbs)
    with ctx.catalogue.session() as s:
        item = s.scalars(select(ArchiveItem).where(ArchiveItem.archival_code == code)).one()
        case = s.scalars(select(Case)).one()
        tomb = s.scalars(select(DestructionEntry)).one()
        dl = s.scalars(select(DestructionList)).one()
        assert item.status == "destroyed" and case.applicant_id_number is None and case.applicant_mobile is None
        assert {d.status for d in s.scalars(select(Document))} == {"destroyed"}
        assert tomb.status == "destroyed" and tomb.destroyed_at is not None and tomb.list_id == dl.id
        assert dl.status == "executed" and dl.executed_at is not None
    assert [e.target_id for e in events(ctx, "item.destroy", "success")] == [code]

    IndexWorker(ctx).drain()
    hits = ctx.index.search(SearchQuery(keys={"serial": "YW2026010500001"}), Visibility.everything())
    assert hits.total == 0

    r = client.get(f"/api/v1/destruction-lists/{list_id}/pdf", headers=people["head"])
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    text = "".join(p.get_textpage().get_text_range() for p in pdfium.PdfDocument(r.content))
    assert f"编制时间：{local_time(dl.created_at, ctx.zone)}" in text and "（UTC+08:00）" in text  # zone shown
    report = verify_pdf(r.content, load_trust_roots(ctx.settings.pki_path), check_pdfa=False)
    assert report.ok, report.failures
    with ctx.catalogue.session() as s:
        pdf_key = s.scalars(select(DestructionList.pdf_key)).one()
    assert pdf_key is not None and ctx.store.stat(pdf_key).retain_until.year >= datetime.now(UTC).year + 99
    gone = client.get(f"/api/v1/documents/{doc_id}/pages/1?w=200", headers=login(client, "viewer"))
    assert gone.status_code == 410 and gone.json()["code"] == "item_destroyed" and "销毁" in gone.json()["message"]
    files = {"X-API-Key": add_client(ctx, "files", ["files.read", "data.read"])["X-API-Key"]}
    for url in (f"/api/v1/items/{code}/rendition.pdf", f"/api/v1/documents/{doc_id}/original"):
        r = client.get(url, headers=files)
        assert r.status_code == 410 and r.json()["code"] == "item_destroyed", url
    record = client.get(f"/api/v1/items/{code}", headers=files)  # the tombstone still answers
    assert record.status_code == 200 and record.json()["item"]["status"] == "destroyed"


def test_case_and_item_agree_on_destroyed(ctx: Context, client: TestClient, people: dict[str, Any]) -> None:
    """Given a filed item whose retention ran out, When its 销毁清册 is executed,
    Then GET /items/{档号} and GET /cases/{serial} both say destroyed, for the case and for its item,
    and listing cases by status finds it under destroyed, no longer under filed."""
    core = {"X-API-Key": _core_key(ctx)}
    code = file_case(client, core)
    with ctx.catalogue.session() as s:
        s.execute(update(ArchiveItem).values(expiry_date=date(2020, 1, 1)))
    expire_locks(ctx, keys_of(ctx, code))
    r = client.post(f"/api/v1/destruction-lists/{approved_list(client, people, code)}/execute", headers=people["arch"])
    assert r.json()["destroyed"] == [code], r.text
    by_code = client.get(f"/api/v1/items/{code}", headers=core).json()
    by_serial = client.get("/api/v1/cases/YW2026010500001", headers=core).json()
    for record in (by_code, by_serial):
        assert (record["status"], record["item"]["status"]) == ("destroyed", "destroyed")
    listed = {s: [c["serial"] for c in client.get(f"/api/v1/cases?status={s}", headers=people["arch"]).json()]
              for s in ("filed", "destroyed")}
    assert listed == {"filed": [], "destroyed": ["YW2026010500001"]}


def _core_key(ctx: Context) -> str:
    return add_client(ctx, "core", ["cases.write", "data.read", "pii.read", "images.read"])["X-API-Key"]


def test_execution_without_two_approvals_is_refused(ctx: Context, client: TestClient,
                                                    people: dict[str, Any]) -> None:
    """Given a list with none, then one approval, execution is refused each time, nothing deleted, audited."""
    a = make_item(ctx)
    propose(client, people["arch"], a)
    list_id = client.post("/api/v1/destruction-lists", json={}, headers=people["arch"]).json()["id"]
    r = client.post(f"/api/v1/destruction-lists/{list_id}/execute", headers=people["arch"])
    assert r.status_code == 409 and r.json()["code"] == "destruction_not_approved" and "两名" in r.json()["message"]
    client.post(f"/api/v1/destruction-lists/{list_id}/approvals", json={}, headers=people["head"])
    r = client.post(f"/api/v1/destruction-lists/{list_id}/execute", headers=people["arch"])
    assert r.status_code == 409 and r.json()["detail"]["approvals"] == ["head"]
    assert all(exists(ctx, k) for k in keys_of(ctx, a))
    assert len(events(ctx, "destruction.execute", "refused")) == 2
    r = client.get(f"/api/v1/destruction-lists/{list_id}/pdf", headers=people["head"])
    assert r.status_code == 409 and r.json()["code"] == "list_not_approved"


def test_the_same_person_approving_twice_is_refused(ctx: Context, client: TestClient,
                                                    people: dict[str, Any]) -> None:
    """Given a list approved once by the archive head, when the head approves again from a new session, then 409
    duplicate_approver (同一人), the list stays pending with one approval and the refusal is audited; a clerk gets
    403."""
    a = make_item(ctx)
    propose(client, people["arch"], a)
    list_id = client.post("/api/v1/destruction-lists", json={}, headers=people["arch"]).json()["id"]
    assert client.post(f"/api/v1/destruction-lists/{list_id}/approvals", json={},
                       headers=people["head"]).status_code == 201
    r = client.post(f"/api/v1/destruction-lists/{list_id}/approvals", json={}, headers=login(client, "head"))
    assert r.status_code == 409 and r.json()["code"] == "duplicate_approver" and "同一人" in r.json()["message"]
    body = client.get(f"/api/v1/destruction-lists/{list_id}", headers=people["head"]).json()
    assert body["status"] == "pending" and len(body["approvals"]) == 1
    [refused] = events(ctx, "destruction.approve", "refused")
    assert refused.actor == "head" and refused.detail["code"] == "duplicate_approver"
    r = client.post(f"/api/v1/destruction-lists/{list_id}/approvals", json={}, headers=people["clerk"])
    assert r.status_code == 403 and r.json()["code"] == "permission_denied"


def test_a_rejected_list_cannot_be_approved_or_executed_and_its_items_return_to_appraisal(
        ctx: Context, client: TestClient, people: dict[str, Any]) -> None:
    """Given a pending list with one approval, when the head rejects it with a reason, then it is 驳回 for good:
    approving or executing it is refused, the rejection is audited, and its item is back in the appraisal queue
    for a new decision; a clerk may not reject and a reason is required."""
    a = make_item(ctx)
    propose(client, people["arch"], a)
    list_id = client.post("/api/v1/destruction-lists", json={}, headers=people["arch"]).json()["id"]
    assert client.post(f"/api/v1/destruction-lists/{list_id}/approvals", json={},
                       headers=people["arch"]).status_code == 201
    assert client.get("/api/v1/appraisal/queue", headers=people["arch"]).json()["total"] == 0
    url = f"/api/v1/destruction-lists/{list_id}/rejection"
    assert client.post(url, json={"reason": "x"}, headers=people["head"]).status_code == 422
    r = client.post(url, json={"reason": "其中一件涉及未结诉讼"}, headers=people["clerk"])
    assert r.status_code == 403 and r.json()["code"] == "permission_denied"
    r = client.post(url, json={"reason": "其中一件涉及未结诉讼"}, headers=people["head"])
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["rejected_by"]) == ("rejected", "head")
    r = client.post(f"/api/v1/destruction-lists/{list_id}/approvals", json={}, headers=people["head"])
    assert r.status_code == 409 and r.json()["code"] == "list_not_pending" and "已驳回" in r.json()["message"]
    assert client.post(f"/api/v1/destruction-lists/{list_id}/execute", headers=people["arch"]).status_code == 409
    assert client.post(url, json={"reason": "再次驳回"}, headers=people["head"]).status_code == 409
    [rejected] = events(ctx, "destruction.reject", "success")
    assert rejected.actor == "head" and rejected.detail["reason"] == "其中一件涉及未结诉讼"
    queue = client.get("/api/v1/appraisal/queue", headers=people["arch"]).json()
    assert [i["archival_code"] for i in queue["items"]] == [a]
    with ctx.catalogue.session() as s:
        assert s.scalars(select(ArchiveItem.status).where(ArchiveItem.archival_code == a)).one() == "filed"


def test_item_held_after_approval_is_refused_at_execution(ctx: Context, client: TestClient,
                                                          people: dict[str, Any]) -> None:
    """Given an approved list of two, when one is put on hold, execution destroys the other and refuses the held
    one with its reason, leaving it intact."""
    a, b = make_item(ctx), make_item(ctx)
    list_id = approved_list(client, people, a, b)
    assert client.post("/api/v1/holds", json={**HOLD, "archival_codes": [b]},
                       headers=people["arch"]).status_code == 201
    r = client.post(f"/api/v1/destruction-lists/{list_id}/execute", headers=people["arch"])
    assert r.status_code == 200
    assert r.json()["destroyed"] == [a]
    assert r.json()["refused"] == [{"archival_code": b, "code": "item_on_hold",
                                    "message": "处于冻结中，不能销毁；须先由有权人员解除冻结"}]
    assert all(exists(ctx, k) for k in keys_of(ctx, b)) and not any(exists(ctx, k) for k in keys_of(ctx, a))
    [refused] = events(ctx, "item.destroy", "refused")
    assert refused.target_id == b and refused.detail["code"] == "item_on_hold"
    entries = client.get(f"/api/v1/destruction-lists/{list_id}", headers=people["arch"]).json()["entries"]
    assert [e["status"] for e in entries] == ["destroyed", "refused"]


def test_store_retention_refuses_and_keeps_the_item(ctx: Context, client: TestClient,
                                                    people: dict[str, Any]) -> None:
    """Given an approved list whose item's objects are still locked in the store, when it is executed, then the item
    is refused with store_locked (保管期限), every object is still there and the item stays filed."""
    a = make_item(ctx, retain_until=LOCKED)
    list_id = approved_list(client, people, a)
    r = client.post(f"/api/v1/destruction-lists/{list_id}/execute", headers=people["arch"])
    [refusal] = r.json()["refused"]
    assert refusal["code"] == "store_locked" and "保管期限" in refusal["message"]
    assert all(exists(ctx, k) for k in keys_of(ctx, a))
    with ctx.catalogue.session() as s:
        assert s.scalars(select(ArchiveItem.status)).one() == "filed"


def test_unsettled_loan_and_open_lending_are_refused(ctx: Context, client: TestClient,
                                                     people: dict[str, Any]) -> None:
    """Given two listed items, when one loses its loan settlement and the other is lent out on paper, both are
    refused at execution with their reasons."""
    loan, lent = make_item(ctx, category="DK", business_type="DK01", trigger="LOAN_SETTLED"), make_item(ctx)
    list_id = approved_list(client, people, loan, lent)
    with ctx.catalogue.session() as s:  # e.g. a trigger event reported in error was withdrawn
        s.execute(update(ArchiveItem).where(ArchiveItem.archival_code == loan).values(trigger_date=None))
    r = client.post("/api/v1/lending/loans", json={"borrower": "李四", "archival_codes": [lent],
                                                   "due_date": (date.today() + timedelta(days=7)).isoformat()},
                    headers=people["arch"])
    assert r.status_code == 201, r.text
    r = client.post(f"/api/v1/destruction-lists/{list_id}/execute", headers=people["arch"])
    assert r.json()["destroyed"] == []
    assert {x["archival_code"]: x["code"] for x in r.json()["refused"]} == {loan: "loan_not_settled",
                                                                           lent: "open_lending"}
    assert all(exists(ctx, k) for k in keys_of(ctx, loan) + keys_of(ctx, lent))


def test_shared_original_survives_and_replicas_are_deleted(ctx: Context, client: TestClient,
                                                           people: dict[str, Any], tmp_path: Any) -> None:
    """Given a replicated store and two items sharing one original, destroying one deletes both copies of its own
    objects but keeps the shared original the other item still needs."""
    ctx._store = ReplicatedStore(FilesystemStore(tmp_path / "primary"), FilesystemStore(tmp_path / "replica"))
    shared = b"one scan filed in two cases"
    a, b = make_item(ctx, shared=shared), make_item(ctx, shared=shared)
    list_id = approved_list(client, people, a)
    r = client.post(f"/api/v1/destruction-lists/{list_id}/execute", headers=people["arch"])
    assert r.json()["destroyed"] == [a]
    common = set(keys_of(ctx, a)) & set(keys_of(ctx, b))
    for _, store in ctx.store.copies:
        assert all(store.exists(k) for k in common)
        assert not any(store.exists(k) for k in set(keys_of(ctx, a)) - common)


def test_replica_still_locked_refuses(ctx: Context, client: TestClient, people: dict[str, Any],
                                      tmp_path: Any) -> None:
    """Given a replicated store where one object of an approved item is still locked on the secondary only, when the
    list is executed, then the item is refused with store_locked naming the secondary and nothing is deleted from
    the primary."""
    replica = FilesystemStore(tmp_path / "replica")
    ctx._store = ReplicatedStore(FilesystemStore(tmp_path / "primary"), replica)
    a = make_item(ctx)
    replica.set_retention(keys_of(ctx, a)[0], LOCKED)
    list_id = approved_list(client, people, a)
    [refusal] = client.post(f"/api/v1/destruction-lists/{list_id}/execute", headers=people["arch"]).json()["refused"]
    assert refusal["code"] == "store_locked" and "secondary" in refusal["message"]
    assert all(ctx.store.primary.exists(k) for k in keys_of(ctx, a))


def test_nothing_to_list_and_held_items_are_left_out(ctx: Context, client: TestClient,
                                                     people: dict[str, Any]) -> None:
    """Given no proposal, when a list is built, then 409 nothing_to_list; given two proposed items one of which is
    then held, when a list is built, then it holds the free one only, numbered XH-, and names the held one as
    skipped."""
    r = client.post("/api/v1/destruction-lists", json={}, headers=people["arch"])
    assert r.status_code == 409 and r.json()["code"] == "nothing_to_list"
    a, b = make_item(ctx), make_item(ctx)
    propose(client, people["arch"], a, b)
    client.post("/api/v1/holds", json={**HOLD, "archival_codes": [b]}, headers=people["arch"])
    r = client.post("/api/v1/destruction-lists", json={}, headers=people["arch"])
    assert r.status_code == 201
    assert [e["archival_code"] for e in r.json()["entries"]] == [a]
    assert r.json()["skipped"][0]["archival_code"] == b
    assert r.json()["number"].startswith("XH-")


@pytest.fixture
def cli_env(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARCHIVE_DATA_DIR", str(ctx.settings.data_dir))
    monkeypatch.setenv("ARCHIVE_DATABASE_URL", ctx.settings.database_url)
    from archive.settings import get_settings

    get_settings.cache_clear()


def test_cli_runs_every_step(ctx: Context, client: TestClient, people: dict[str, Any], cli_env: None) -> None:
    """Given an expired item, when each step runs from the command line as a named person with a password (queue,
    decide, build, approvals by two people, execute), then each prints its Chinese summary; executing before
    approval, approving twice, an unknown 档号 and a wrong password each exit 2 with their code."""
    a = make_item(ctx)
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(app, list(args), input=f"{PASSWORD}\n")

    r = run("appraisal", "queue", "--user", "arch")
    assert r.exit_code == 0 and "2020-01-01" in r.output and "待鉴定共 1 件" in r.output
    r = run("appraisal", "decide", "--user", "arch", "--decision", "destroy", "--reason", "期满", "--code", a)
    assert r.exit_code == 0 and "已记录 1 件" in r.output, r.output
    r = run("destruction", "build", "--user", "arch")
    assert r.exit_code == 0 and "XH-" in r.output, r.output
    list_id = "1"
    r = run("destruction", "execute", list_id, "--user", "arch")
    assert r.exit_code == 2 and "destruction_not_approved" in r.output
    assert run("destruction", "approve", list_id, "--user", "arch").exit_code == 0
    r = run("destruction", "approve", list_id, "--user", "arch")
    assert r.exit_code == 2 and "duplicate_approver" in r.output
    r = run("destruction", "approve", list_id, "--user", "head")
    assert r.exit_code == 0 and "已经两人批准" in r.output
    r = run("destruction", "execute", list_id, "--user", "arch")
    assert r.exit_code == 0 and "已销毁 1 件" in r.output, r.output
    r = run("hold", "set", "--user", "arch", "--reason", "x", "--authority", "法院", "--code", "J001-NOPE")
    assert r.exit_code == 2 and "unknown_archival_code" in r.output
    r = runner.invoke(app, ["destruction", "approve", list_id, "--user", "head"], input="wrong-password\n")
    assert r.exit_code == 2 and "bad_credentials" in r.output


def entry_statuses(client: TestClient, people: dict[str, Any], list_id: int) -> list[str]:
    entries = client.get(f"/api/v1/destruction-lists/{list_id}", headers=people["arch"]).json()["entries"]
    return [e["status"] for e in entries]


def test_a_refused_item_returns_to_appraisal_and_is_never_retried_by_its_list(
        ctx: Context, client: TestClient, people: dict[str, Any]) -> None:
    """Given an approved list whose item is refused at execution (its loan settlement was withdrawn), when the
    cause goes away and the list is executed again, then the item is not destroyed: its entry stays refused, its
    destroy decision is rejected and it is back in the appraisal queue for a new decision."""
    loan = make_item(ctx, category="DK", business_type="DK01", trigger="LOAN_SETTLED")
    list_id = approved_list(client, people, loan)
    with ctx.catalogue.session() as s:
        s.execute(update(ArchiveItem).where(ArchiveItem.archival_code == loan).values(trigger_date=None))
    r = client.post(f"/api/v1/destruction-lists/{list_id}/execute", headers=people["arch"])
    assert [x["code"] for x in r.json()["refused"]] == ["loan_not_settled"]
    queue = client.get("/api/v1/appraisal/queue", headers=people["arch"]).json()
    assert [i["archival_code"] for i in queue["items"]] == [loan]
    with ctx.catalogue.session() as s:
        assert s.scalars(select(AppraisalDecision.status)).one() == "rejected"
        s.execute(update(ArchiveItem).where(ArchiveItem.archival_code == loan).values(trigger_date=date(2009, 6, 1)))
    r = client.post(f"/api/v1/destruction-lists/{list_id}/execute", headers=people["arch"])
    assert r.status_code == 200 and r.json()["destroyed"] == [] and r.json()["refused"] == []
    assert entry_statuses(client, people, list_id) == ["refused"]
    assert all(exists(ctx, k) for k in keys_of(ctx, loan))
    with ctx.catalogue.session() as s:
        assert s.scalars(select(ArchiveItem.status)).one() == "filed"


def test_retention_changed_after_approval_is_refused_at_execution(ctx: Context, client: TestClient,
                                                                  people: dict[str, Any]) -> None:
    """Given an approved list of four, when after approval one item's expiry moves into the future, another's
    expiry becomes unknown and a third's period changes, then only the fourth is destroyed and the three are
    refused as retention_changed, intact and back in the appraisal queue where they are due."""
    a, later, unknown, period = make_item(ctx), make_item(ctx), make_item(ctx), make_item(ctx)
    list_id = approved_list(client, people, a, later, unknown, period)
    with ctx.catalogue.session() as s:
        for code, values in ((later, {"expiry_date": date.today() + timedelta(days=400)}),
                             (unknown, {"expiry_date": None}), (period, {"current_retention": "Y"})):
            s.execute(update(ArchiveItem).where(ArchiveItem.archival_code == code).values(**values))
    r = client.post(f"/api/v1/destruction-lists/{list_id}/execute", headers=people["arch"])
    assert r.status_code == 200, r.text
    assert r.json()["destroyed"] == [a]
    refused = {x["archival_code"]: x for x in r.json()["refused"]}
    assert set(refused) == {later, unknown, period}
    assert all(x["code"] == "retention_changed" and "不能销毁" in x["message"] for x in refused.values())
    assert "D30" in refused[period]["message"] and "Y" in refused[period]["message"]
    assert all(exists(ctx, k) for c in (later, unknown, period) for k in keys_of(ctx, c))
    assert {e.detail["code"] for e in events(ctx, "item.destroy", "refused")} == {"retention_changed"}
    queue = client.get("/api/v1/appraisal/queue", headers=people["arch"]).json()
    assert [i["archival_code"] for i in queue["items"]] == [period]  # the others are not due any more


def test_a_concurrent_run_never_overwrites_a_destroyed_entry(ctx: Context, client: TestClient,
                                                             people: dict[str, Any]) -> None:
    """Given an approved list of two, when a second run of the same list destroys the second item while the
    first run is between items, then the first run leaves that entry destroyed (no item_not_filed refusal)."""
    a, b = make_item(ctx), make_item(ctx)
    list_id = approved_list(client, people, a, b)
    arch = Principal("user", 0, "arch", frozenset({Permission.RETENTION_MANAGE}))
    inner: list[destruction.ExecutionReport] = []

    def second_runner(done: int, total: int) -> None:
        if done == 1 and not inner:
            inner.append(destruction.execute(ctx, arch, list_id))

    outer = destruction.execute(ctx, arch, list_id, progress=second_runner)
    assert outer.destroyed == [a] and outer.refused == []
    assert inner[0].destroyed == [b] and inner[0].refused == []
    assert entry_statuses(client, people, list_id) == ["destroyed", "destroyed"]
    assert events(ctx, "item.destroy", "refused") == []
    assert sorted(e.target_id or "" for e in events(ctx, "item.destroy", "success")) == sorted([a, b])
