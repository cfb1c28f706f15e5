"""Lending (利用 / 借阅): requests, four-eyes approval, time-limited grants, views under a grant, paper loans."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
import typer
from click.testing import Result
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from archive.catalogue.models import ArchiveItem, AuditEvent, LendingRequest, PaperLoan
from archive.catalogue.types import utcnow
from archive.context import Context
from archive.retention.lending import items_with_open_lending
from tests.factories import file_cases
from tests.helpers import PASSWORD, add_client, add_user, login

SERIALS = ("YW2026010500001", "YW2026010500002")


@pytest.fixture
def codes(ctx: Context, client: TestClient) -> list[str]:
    """Two items filed at branch BR01 through the real pipeline."""
    return file_cases(client, add_client(ctx, "core", ["cases.write", "data.read", "pii.read"]), SERIALS)


@pytest.fixture
def people(ctx: Context, client: TestClient) -> dict[str, dict[str, str]]:
    """A clerk at another branch, one at BR01, two archivists, the archive head and an auditor, logged in."""
    add_user(ctx, "clerk2", ["clerk"], branch="BR02")
    add_user(ctx, "clerk1", ["clerk"], branch="BR01")
    add_user(ctx, "arch1", ["archivist"])
    add_user(ctx, "arch2", ["archivist"])
    add_user(ctx, "head", ["archive_head"])
    add_user(ctx, "aud", ["auditor"])
    return {u: login(client, u) for u in ("clerk2", "clerk1", "arch1", "arch2", "head", "aud")}


def ask(client: TestClient, headers: dict[str, str], codes: list[str], **over: Any) -> Any:
    body = {"archival_codes": codes, "purpose": "review", "purpose_text": "复核提取业务", "mode": "online", "days": 7,
            **over}
    return client.post("/api/v1/lending/requests", json=body, headers=headers)


def granted(client: TestClient, people: dict[str, dict[str, str]], who: str, codes: list[str],
            approver: str = "head", **over: Any) -> int:
    r = ask(client, people[who], codes, **over)
    assert r.status_code == 201, r.text
    rid: int = r.json()["id"]
    r = client.post(f"/api/v1/lending/requests/{rid}/approve", json={"reason": "同意"}, headers=people[approver])
    assert r.status_code == 200 and r.json()["status"] == "active", r.text
    return rid


def events(ctx: Context, action: str) -> list[AuditEvent]:
    with ctx.catalogue.sessions() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)))


def item_url(code: str, tail: str = "") -> str:
    return f"/api/v1/items/{quote(code)}{tail}"


def refused(r: Any, status: int, code: str) -> None:
    """A clear 4xx: the status, the stable code, and a Chinese message."""
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert any("\u4e00" <= ch <= "\u9fff" for ch in r.json()["message"]), r.json()["message"]


def today(ctx: Context) -> date:
    """The archive's today (its time zone, not the machine's)."""
    return datetime.now(ctx.zone).date()


def set_expiry(ctx: Context, rid: int, at: datetime) -> None:
    with ctx.catalogue.session() as s:
        r = s.get(LendingRequest, rid)
        assert r is not None
        r.expires_at = at


# --- requests, approval, views ---------------------------------------------------------------------

def test_grant_lets_a_clerk_of_another_branch_read_the_item_and_each_view_is_logged_with_the_grant(
        ctx: Context, client: TestClient, codes: list[str], people: dict[str, dict[str, str]]) -> None:
    """Given a clerk at BR02 who cannot see BR01's item, when the archive head approves their request for fewer
    days, then the clerk reads the item's data and (watermarked) page images, each access event carries the grant's
    id, the archivist lists exactly those views, and the rendition (not granted in online mode) stays refused."""
    clerk = people["clerk2"]
    assert client.get(item_url(codes[0]), headers=clerk).status_code == 404  # branch rules alone
    r = ask(client, clerk, [codes[0]], days=10, department="稽核科")
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    assert r.json()["status"] == "pending" and r.json()["archival_codes"] == [codes[0]]
    r = client.post(f"/api/v1/lending/requests/{rid}/approve", json={"days": 3, "reason": "同意，缩短为三天"},
                    headers=people["head"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "active" and body["days_granted"] == 3 and body["decided_by"] == "head"
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(days=3) - timedelta(minutes=1) < expires - utcnow() <= timedelta(days=3)

    data = client.get(item_url(codes[0]), headers={**clerk, "X-Purpose": quote("复核")})
    assert data.status_code == 200, data.text
    doc = data.json()["documents"][0]["id"]
    page = client.get(f"/api/v1/documents/{doc}/pages/1?w=200", headers=clerk)
    assert page.status_code == 200 and page.headers["cache-control"] == "private, no-store"  # watermarked
    refused(client.get(item_url(codes[0], "/rendition.pdf"), headers=clerk), 403, "permission_denied")
    refused(client.get(f"/api/v1/documents/{doc}/original", headers=clerk), 403, "permission_denied")
    assert client.get(item_url(codes[1]), headers=clerk).status_code == 404  # only the granted item

    reads = [e for e in events(ctx, "access.read") if e.actor == "clerk2"]
    assert [(e.target_id, e.detail["what"], e.detail.get("grant")) for e in reads] == [
        (codes[0], "data", rid), (codes[0], "page", rid)]
    assert reads[1].detail["watermark"] is True
    views = client.get(f"/api/v1/lending/requests/{rid}/views", headers=people["arch1"])
    assert views.status_code == 200
    assert [(v["what"], v["detail"]["grant"]) for v in views.json()] == [("data", rid), ("page", rid)]
    assert client.get(f"/api/v1/lending/requests/{rid}/views", headers=people["aud"]).status_code == 200
    refused(client.get(f"/api/v1/lending/requests/{rid}/views", headers=people["clerk1"]), 403, "permission_denied")
    approved = events(ctx, "lending.approve")
    assert len(approved) == 1 and approved[0].actor == "head" and approved[0].detail["days"] == 3
    assert events(ctx, "lending.request")[0].detail["archival_codes"] == [codes[0]]


def test_download_grant_lets_its_holder_fetch_the_rendition(ctx: Context, client: TestClient, codes: list[str],
                                                             people: dict[str, dict[str, str]]) -> None:
    """Given a clerk of the item's own branch (no file.read), when a download request is approved, then the signed
    PDF is served and registered under the grant; before, it was 403."""
    clerk = people["clerk1"]
    refused(client.get(item_url(codes[0], "/rendition.pdf"), headers=clerk), 403, "permission_denied")
    rid = granted(client, people, "clerk1", [codes[0]], mode="download", approver="arch1")
    pdf = client.get(item_url(codes[0], "/rendition.pdf"), headers=clerk)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    last = events(ctx, "access.read")[-1]
    assert (last.actor, last.detail["what"], last.detail["grant"]) == ("clerk1", "rendition", rid)
    doc = client.get(item_url(codes[0]), headers=clerk).json()["documents"][0]["id"]
    original = client.get(f"/api/v1/documents/{doc}/original", headers=clerk)  # download also opens originals
    assert original.status_code == 200 and original.content
    last = events(ctx, "access.read")[-1]
    assert (last.detail["what"], last.detail["grant"], last.detail["document"]) == ("original", rid, doc)
    # reading by role (own branch, item.read) under a grant still names the grant
    assert client.get(item_url(codes[0]), headers=clerk).status_code == 200
    assert events(ctx, "access.read")[-1].detail["grant"] == rid


def test_view_after_expiry_is_403_saying_the_grant_ended(ctx: Context, client: TestClient, codes: list[str],
                                                         people: dict[str, dict[str, str]]) -> None:
    """Given an approved grant whose period has run out, when its holder reads, then 403 grant_expired naming the
    request, nothing is registered, the request shows as expired and no longer blocks destruction."""
    rid = granted(client, people, "clerk2", [codes[0]])
    with ctx.catalogue.sessions() as s:
        item_id = s.scalar(select(ArchiveItem.id).where(ArchiveItem.archival_code == codes[0]))
        assert items_with_open_lending(s, [item_id]) == {item_id}
    set_expiry(ctx, rid, utcnow() - timedelta(minutes=1))
    before = len(events(ctx, "access.read"))
    r = client.get(item_url(codes[0]), headers=people["clerk2"])
    refused(r, 403, "grant_expired")
    assert f"申请 {rid}" in r.json()["message"] and "到期" in r.json()["message"]
    assert len(events(ctx, "access.read")) == before
    assert client.get(f"/api/v1/lending/requests/{rid}", headers=people["clerk2"]).json()["status"] == "expired"
    with ctx.catalogue.sessions() as s:
        assert items_with_open_lending(s, [item_id]) == set()
    refused(client.post(f"/api/v1/lending/requests/{rid}/revoke", json={"reason": "x"}, headers=people["arch1"]),
            409, "grant_not_active")


def test_revoked_grant_ends_at_once_and_is_audited(ctx: Context, client: TestClient, codes: list[str],
                                                   people: dict[str, dict[str, str]]) -> None:
    """Given a clerk of another branch reading an item under a grant, when an archivist revokes it (a blank reason is
    refused first), then the grant is revoked by that archivist and the clerk's next read is 403 grant_revoked
    quoting the reason; both attempts are audited."""
    rid = granted(client, people, "clerk2", [codes[0]])
    assert client.get(item_url(codes[0]), headers=people["clerk2"]).status_code == 200
    refused(client.post(f"/api/v1/lending/requests/{rid}/revoke", json={"reason": " "}, headers=people["arch1"]),
            422, "reason_required")
    r = client.post(f"/api/v1/lending/requests/{rid}/revoke", json={"reason": "复核已完成"}, headers=people["arch1"])
    assert r.status_code == 200 and r.json()["status"] == "revoked" and r.json()["revoked_by"] == "arch1"
    r = client.get(item_url(codes[0]), headers=people["clerk2"])
    refused(r, 403, "grant_revoked")
    assert "复核已完成" in r.json()["message"]
    revokes = events(ctx, "lending.revoke")
    assert [e.outcome for e in revokes] == ["refused", "success"]
    assert revokes[-1].detail["reason"] == "复核已完成"


def test_requester_may_not_approve_their_own_request(ctx: Context, client: TestClient, codes: list[str],
                                                     people: dict[str, dict[str, str]]) -> None:
    """Given an archivist's own request, when they approve it, then 403 self_approval, an audited refusal, the
    request still pending and absent from their queue; another archivist may approve it."""
    r = ask(client, people["arch1"], [codes[0]], mode="download")
    rid = r.json()["id"]
    refused(client.post(f"/api/v1/lending/requests/{rid}/approve", json={}, headers=people["arch1"]),
            403, "self_approval")
    refused(client.post(f"/api/v1/lending/requests/{rid}/reject", json={"reason": "x"}, headers=people["arch1"]),
            403, "self_approval")
    assert [x["id"] for x in client.get("/api/v1/lending/requests/pending", headers=people["arch1"]).json()] == []
    assert [x["id"] for x in client.get("/api/v1/lending/requests/pending", headers=people["arch2"]).json()] == [rid]
    assert client.get(f"/api/v1/lending/requests/{rid}", headers=people["arch1"]).json()["status"] == "pending"
    attempt = events(ctx, "lending.approve")
    assert len(attempt) == 1 and attempt[0].outcome == "refused" and attempt[0].actor == "arch1"
    assert attempt[0].detail["code"] == "self_approval" and attempt[0].target_id == str(rid)
    r = client.post(f"/api/v1/lending/requests/{rid}/approve", json={}, headers=people["arch2"])
    assert r.status_code == 200 and r.json()["days_granted"] == 7
    refused(client.post(f"/api/v1/lending/requests/{rid}/approve", json={}, headers=people["head"]),
            409, "request_not_pending")


def test_approving_without_the_role_is_refused_and_audited(ctx: Context, client: TestClient, codes: list[str],
                                                           people: dict[str, dict[str, str]]) -> None:
    """Given a pending request, when a clerk or an auditor tries to approve it, an auditor to request, or a clerk to
    list pending requests, then 403 each, the refusals are audited and the request stays pending; another clerk
    cannot even see it (404)."""
    rid = ask(client, people["clerk2"], [codes[0]]).json()["id"]
    for who in ("clerk1", "aud"):
        refused(client.post(f"/api/v1/lending/requests/{rid}/approve", json={}, headers=people[who]),
                403, "permission_denied")
    refused(ask(client, people["aud"], [codes[0]]), 403, "permission_denied")  # auditors do not request
    refused(client.get("/api/v1/lending/requests/pending", headers=people["clerk1"]), 403, "permission_denied")
    assert [(e.actor, e.outcome) for e in events(ctx, "lending.approve")] == [("clerk1", "refused"),
                                                                             ("aud", "refused")]
    assert events(ctx, "lending.request")[-1].outcome == "refused"
    assert client.get(f"/api/v1/lending/requests/{rid}", headers=people["clerk2"]).json()["status"] == "pending"
    # another clerk cannot even see it
    refused(client.get(f"/api/v1/lending/requests/{rid}", headers=people["clerk1"]), 404,
            "lending_request_not_found")


def test_period_must_be_positive_and_within_the_maximum(ctx: Context, client: TestClient, codes: list[str],
                                                        people: dict[str, dict[str, str]],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a maximum of 10 days, when a request asks 0, -3 or 11 days, then 422 invalid_period or period_too_long
    (naming 10); when an approver grants more than the maximum, more than asked or 0 days, then 422 each; only the
    valid request is recorded and every refusal is audited."""
    monkeypatch.setattr(ctx.settings, "lending_max_days", 10)
    clerk = people["clerk2"]
    refused(ask(client, clerk, [codes[0]], days=0), 422, "invalid_period")
    refused(ask(client, clerk, [codes[0]], days=-3), 422, "invalid_period")
    r = ask(client, clerk, [codes[0]], days=11)
    refused(r, 422, "period_too_long")
    assert "10" in r.json()["message"]
    rid = ask(client, clerk, [codes[0]], days=10).json()["id"]
    refused(client.post(f"/api/v1/lending/requests/{rid}/approve", json={"days": 12}, headers=people["head"]),
            422, "period_too_long")
    monkeypatch.setattr(ctx.settings, "lending_max_days", 30)
    refused(client.post(f"/api/v1/lending/requests/{rid}/approve", json={"days": 12}, headers=people["head"]),
            422, "period_not_shortened")
    refused(client.post(f"/api/v1/lending/requests/{rid}/approve", json={"days": 0}, headers=people["head"]),
            422, "invalid_period")
    with ctx.catalogue.sessions() as s:
        assert s.scalar(select(func.count()).select_from(LendingRequest)) == 1
    assert [e.outcome for e in events(ctx, "lending.request")] == ["refused", "refused", "refused", "success"]
    assert [e.outcome for e in events(ctx, "lending.approve")] == ["refused"] * 3


def test_unknown_and_destroyed_items_cannot_be_requested(ctx: Context, client: TestClient, codes: list[str],
                                                         people: dict[str, dict[str, str]]) -> None:
    """Given an unknown 档号, an empty list and a destroyed item, when each is requested, then 404 item_not_found
    naming it, 422 no_items and 409 item_destroyed (销毁); approving an earlier request for the destroyed item and
    lending it on paper are 409 too; only the earlier request exists and the refusals are audited with their
    codes."""
    r = ask(client, people["clerk2"], [codes[0], "J001-YW·2026-D30-TQ-999999"])
    refused(r, 404, "item_not_found")
    assert r.json()["detail"]["unknown"] == ["J001-YW·2026-D30-TQ-999999"] and "999999" in r.json()["message"]
    refused(ask(client, people["clerk2"], []), 422, "no_items")
    pending = ask(client, people["clerk2"], [codes[1]]).json()["id"]
    with ctx.catalogue.session() as s:
        item = s.scalar(select(ArchiveItem).where(ArchiveItem.archival_code == codes[1]))
        assert item is not None
        item.status = "destroyed"
    r = ask(client, people["clerk2"], [codes[1]])
    refused(r, 409, "item_destroyed")
    assert codes[1] in r.json()["message"] and "销毁" in r.json()["message"]
    refused(client.post(f"/api/v1/lending/requests/{pending}/approve", json={}, headers=people["head"]),
            409, "item_destroyed")
    refused(client.post("/api/v1/lending/loans", json={"borrower": "王五", "archival_codes": [codes[1]],
                                                         "due_date": (today(ctx) + timedelta(days=5)).isoformat()},
                        headers=people["arch1"]), 409, "item_destroyed")
    with ctx.catalogue.sessions() as s:
        assert s.scalar(select(func.count()).select_from(LendingRequest)) == 1
    assert [e.detail["code"] for e in events(ctx, "lending.request") if e.outcome == "refused"] == [
        "item_not_found", "no_items", "item_destroyed"]


def test_external_request_records_its_legal_basis(ctx: Context, client: TestClient, codes: list[str],
                                                  people: dict[str, dict[str, str]]) -> None:
    """Given a court's request taken by an archivist, then the legal document reference is required and kept;
    purposes and modes are accepted as codes or Chinese labels, anything else is a clear 422."""
    arch = people["arch1"]
    refused(ask(client, arch, [codes[0]], purpose="司法协查", authority="法院"), 422, "legal_basis_required")
    r = ask(client, arch, [codes[0]], purpose="司法协查", mode="打印", authority="court", external_unit="某区人民法院",
            legal_basis="（2026）某0105执123号协助查询通知书")
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["purpose"], body["mode"], body["authority"]) == ("judicial", "print", "court")
    assert body["legal_basis"] == "（2026）某0105执123号协助查询通知书" and body["external_unit"] == "某区人民法院"
    assert events(ctx, "lending.request")[-1].detail["legal_basis"] == body["legal_basis"]
    refused(ask(client, arch, [codes[0]], purpose="好奇"), 422, "invalid_purpose")
    refused(ask(client, arch, [codes[0]], mode="fax"), 422, "invalid_mode")
    refused(ask(client, arch, [codes[0]], authority="税务", legal_basis="x"), 422, "invalid_authority")
    refused(ask(client, arch, [codes[0]], purpose="other", purpose_text=""), 422, "purpose_text_required")
    mine = client.get("/api/v1/lending/requests", headers=arch).json()
    assert [x["id"] for x in mine] == [body["id"]]


def test_reject_needs_a_reason_and_ends_the_request(ctx: Context, client: TestClient, codes: list[str],
                                                    people: dict[str, dict[str, str]]) -> None:
    """Given a pending request, when it is rejected without a reason, then 422 reason_required; when rejected with
    one, then it ends rejected with that reason, it can no longer be approved (409 request_not_pending), the item
    stays out of reach, and both attempts are audited."""
    rid = ask(client, people["clerk2"], [codes[0]]).json()["id"]
    refused(client.post(f"/api/v1/lending/requests/{rid}/reject", json={"reason": ""}, headers=people["head"]),
            422, "reason_required")
    r = client.post(f"/api/v1/lending/requests/{rid}/reject", json={"reason": "目的不明确"}, headers=people["head"])
    assert r.status_code == 200 and r.json()["status"] == "rejected" and r.json()["decision_reason"] == "目的不明确"
    refused(client.post(f"/api/v1/lending/requests/{rid}/approve", json={}, headers=people["arch1"]),
            409, "request_not_pending")
    assert client.get(item_url(codes[0]), headers=people["clerk2"]).status_code == 404
    assert [e.outcome for e in events(ctx, "lending.reject")] == ["refused", "success"]


# --- paper loans ---------------------------------------------------------------------------------

def test_paper_loan_out_remind_return_and_not_twice(ctx: Context, client: TestClient, codes: list[str],
                                                    people: dict[str, dict[str, str]]) -> None:
    """Given originals lent out, when the due date passes, then the loan is on the overdue list; a reminder is
    recorded; the return is recorded with the condition; a second return is 409 and audited."""
    arch = people["arch1"]
    due = (today(ctx) + timedelta(days=5)).isoformat()
    r = client.post("/api/v1/lending/loans", json={"borrower": "王五", "borrower_unit": "稽核科",
                                                   "archival_codes": codes, "due_date": due}, headers=arch)
    assert r.status_code == 201, r.text
    loan = r.json()["id"]
    assert r.json()["status"] == "out" and r.json()["archival_codes"] == codes
    refused(client.post("/api/v1/lending/loans", json={"borrower": "赵六", "archival_codes": [codes[1]],
                                                         "due_date": due}, headers=arch), 409, "item_already_lent")
    assert client.get("/api/v1/lending/loans/overdue", headers=arch).json() == []
    with ctx.catalogue.sessions() as s:
        ids = set(s.scalars(select(ArchiveItem.id)))
        assert items_with_open_lending(s, ids) == ids
    with ctx.catalogue.session() as s:
        row = s.get(PaperLoan, loan)
        assert row is not None
        row.due_date = today(ctx) - timedelta(days=4)
    overdue = client.get("/api/v1/lending/loans/overdue", headers=arch).json()
    assert [(x["id"], x["overdue_days"]) for x in overdue] == [(loan, 4)]
    r = client.post(f"/api/v1/lending/loans/{loan}/remind", json={"note": "电话催还"}, headers=arch)
    assert r.status_code == 200 and r.json()["reminders"][0]["note"] == "电话催还"
    assert r.json()["reminders"][0]["overdue_days"] == 4
    refused(client.post(f"/api/v1/lending/loans/{loan}/return", json={"condition_note": " "}, headers=arch),
            422, "condition_note_required")
    r = client.post(f"/api/v1/lending/loans/{loan}/return", json={"condition_note": "完好"}, headers=people["arch2"])
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["returned_to"], r.json()["condition_note"]) == ("returned", "arch2", "完好")
    r = client.post(f"/api/v1/lending/loans/{loan}/return", json={"condition_note": "完好"}, headers=arch)
    refused(r, 409, "loan_already_returned")
    refused(client.post(f"/api/v1/lending/loans/{loan}/remind", json={}, headers=arch), 409, "loan_already_returned")
    assert client.get("/api/v1/lending/loans/overdue", headers=arch).json() == []
    with ctx.catalogue.sessions() as s:
        assert items_with_open_lending(s, ids) == set()
    assert [e.outcome for e in events(ctx, "lending.loan.return")] == ["refused", "success", "refused"]
    assert events(ctx, "lending.loan.out")[0].detail["archival_codes"] == codes
    assert [e.outcome for e in events(ctx, "lending.loan.remind")] == ["success", "refused"]
    assert [x["id"] for x in client.get("/api/v1/lending/loans?status=returned", headers=arch).json()] == [loan]


def test_bad_paper_loans_are_refused(ctx: Context, client: TestClient, codes: list[str],
                                     people: dict[str, dict[str, str]]) -> None:
    """Given a paper loan asked by a clerk, due today, due past the maximum, with no borrower, for an unknown item,
    or under an online grant, when each is sent, then each is refused with its own code; under a paper grant it is
    lent, returning an unknown loan is 404, and one loan exists with every attempt audited."""
    arch = people["arch1"]

    def lend(headers: dict[str, str], **over: Any) -> Any:
        body = {"borrower": "王五", "archival_codes": [codes[0]],
                "due_date": (today(ctx) + timedelta(days=5)).isoformat(), **over}
        return client.post("/api/v1/lending/loans", json=body, headers=headers)

    refused(lend(people["clerk1"]), 403, "permission_denied")
    refused(lend(arch, due_date=today(ctx).isoformat()), 422, "invalid_due_date")
    refused(lend(arch, due_date=(today(ctx) + timedelta(days=31)).isoformat()), 422, "period_too_long")
    refused(lend(arch, borrower=""), 422, "borrower_required")
    refused(lend(arch, archival_codes=["J001-nope"]), 404, "item_not_found")
    online = granted(client, people, "clerk2", [codes[0]])
    refused(lend(arch, request_id=online), 409, "loan_request_mismatch")  # an online grant is no paper loan
    paper = granted(client, people, "clerk2", [codes[0]], mode="paper")
    assert lend(arch, request_id=paper).status_code == 201
    refused(client.post("/api/v1/lending/loans/999/return", json={"condition_note": "完好"}, headers=arch),
            404, "loan_not_found")
    with ctx.catalogue.sessions() as s:
        assert s.scalar(select(func.count()).select_from(PaperLoan)) == 1
    assert [e.outcome for e in events(ctx, "lending.loan.out")] == ["refused"] * 6 + ["success"]


def test_open_lending_counts_only_active_grants_and_loans_out(ctx: Context, client: TestClient, codes: list[str],
                                                              people: dict[str, dict[str, str]]) -> None:
    """Given one item with a pending request and another with an active grant, when open lending is counted, then
    only the granted item counts: pending or rejected requests do not block destruction, an active grant does."""
    ask(client, people["clerk2"], [codes[1]])
    granted(client, people, "clerk2", [codes[0]])
    with ctx.catalogue.sessions() as s:
        ids = {c: i for c, i in s.execute(select(ArchiveItem.archival_code, ArchiveItem.id))}
        assert items_with_open_lending(s, ids.values()) == {ids[codes[0]]}
        assert items_with_open_lending(s, []) == set()


# --- CLI -----------------------------------------------------------------------------------------

def test_cli_covers_every_step(ctx: Context, codes: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Given the same catalogue, when each step runs as a command acting as a user account, then it behaves as the
    API does: own requests are not approvable, a second return exits 2 with the code."""
    from archive.cli import app

    monkeypatch.setenv("ARCHIVE_DATA_DIR", str(ctx.settings.data_dir))
    monkeypatch.setenv("ARCHIVE_DATABASE_URL", ctx.settings.catalogue_url)
    from archive.settings import get_settings

    get_settings.cache_clear()
    add_user(ctx, "clerk2", ["clerk"], branch="BR02")
    add_user(ctx, "arch1", ["archivist"])
    add_user(ctx, "arch2", ["archivist"])
    runner = CliRunner()

    def run(app: typer.Typer, args: list[str], password: str = PASSWORD) -> Result:
        return runner.invoke(app, args, input=f"{password}\n")

    r = run(app, ["lending", "mine", "--as", "arch1"], password="wrong-password")
    assert r.exit_code == 2 and "Traceback" not in r.output  # the person must prove who they are
    r = run(app, ["lending", "request", "--as", "arch1", "-i", codes[0], "--purpose", "review", "--mode", "online",
                  "--days", "5"])
    assert r.exit_code == 0 and "已提交利用申请" in r.output, r.output
    r = run(app, ["lending", "approve", "1", "--as", "arch1"])
    assert r.exit_code == 2 and "self_approval" in r.output and "Traceback" not in r.output
    r = run(app, ["lending", "pending", "--as", "arch2"])
    assert r.exit_code == 0 and "arch1" in r.output and "待审批" in r.output
    r = run(app, ["lending", "approve", "1", "--as", "arch2", "--days", "2"])
    assert r.exit_code == 0 and "2 天" in r.output, r.output
    assert run(app, ["lending", "mine", "--as", "arch1"]).exit_code == 0
    r = run(app, ["lending", "show", "1", "--as", "arch1"])
    assert r.exit_code == 0 and "审批人：arch2" in r.output, r.output
    r = run(app, ["lending", "show", "1", "--as", "clerk2"])
    assert r.exit_code == 2 and "lending_request_not_found" in r.output
    assert run(app, ["lending", "views", "1", "--as", "arch2"]).exit_code == 0
    r = run(app, ["lending", "request", "--as", "clerk2", "-i", codes[1], "--purpose", "review", "--mode", "online",
                  "--days", "99"])
    assert r.exit_code == 2 and "period_too_long" in r.output
    assert run(app, ["lending", "revoke", "1", "--as", "arch2", "--reason", "已完成"]).exit_code == 0
    due = (today(ctx) + timedelta(days=3)).isoformat()
    r = run(app, ["lending", "lend", "--as", "arch1", "--borrower", "王五", "-i", codes[1], "--due", due])
    assert r.exit_code == 0 and "借阅单 1" in r.output, r.output
    assert run(app, ["lending", "overdue", "--as", "arch1"]).exit_code == 0
    assert run(app, ["lending", "loans", "--as", "arch1"]).exit_code == 0
    assert run(app, ["lending", "remind", "1", "--as", "arch1", "--note", "电话"]).exit_code == 0
    assert run(app, ["lending", "return", "1", "--as", "arch2", "--condition", "完好"]).exit_code == 0
    r = run(app, ["lending", "return", "1", "--as", "arch2", "--condition", "完好"])
    assert r.exit_code == 2 and "loan_already_returned" in r.output
    r = run(app, ["lending", "reject", "1", "--as", "clerk2", "--reason", "x"])
    assert r.exit_code == 2 and "permission_denied" in r.output
    with ctx.catalogue.sessions() as s:
        actions = [(e.action, e.actor, e.outcome) for e in s.scalars(
            select(AuditEvent).where(AuditEvent.action.like("lending.%")).order_by(AuditEvent.seq))]
    assert actions == [("lending.request", "arch1", "success"), ("lending.approve", "arch1", "refused"),
                       ("lending.approve", "arch2", "success"), ("lending.request", "clerk2", "refused"),
                       ("lending.revoke", "arch2", "success"), ("lending.loan.out", "arch1", "success"),
                       ("lending.loan.remind", "arch1", "success"), ("lending.loan.return", "arch2", "success"),
                       ("lending.loan.return", "arch2", "refused"), ("lending.reject", "clerk2", "refused")]


def test_an_approver_decides_and_lends_only_items_of_their_branches(ctx: Context, client: TestClient,
                                                                      codes: list[str],
                                                                      people: dict[str, dict[str, str]]) -> None:
    """Given a request for BR01 items, when an archive head limited to BR02 lists, approves, rejects or lends
    them out, then the request is not in their queue and each step is refused (403, audited) with nothing
    changed; an archivist of BR01 sees it and the unlimited head may approve it."""
    add_user(ctx, "head2", ["archive_head"], branch="BR02")
    add_user(ctx, "arch01", ["archivist"], branch="BR01")
    head2, arch01 = login(client, "head2"), login(client, "arch01")
    r = ask(client, people["clerk2"], codes)
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    assert client.get("/api/v1/lending/requests/pending", headers=head2).json() == []
    assert [x["id"] for x in client.get("/api/v1/lending/requests/pending", headers=arch01).json()] == [rid]
    r = client.post(f"/api/v1/lending/requests/{rid}/approve", json={"reason": "同意"}, headers=head2)
    refused(r, 403, "item_outside_branch")
    assert codes[0] in r.json()["message"] and "网点" in r.json()["message"]
    refused(client.post(f"/api/v1/lending/requests/{rid}/reject", json={"reason": "不同意"}, headers=head2),
            403, "item_outside_branch")
    due = (date.today() + timedelta(days=7)).isoformat()
    refused(client.post("/api/v1/lending/loans", json={"borrower": "李四", "archival_codes": codes[:1],
                                                       "due_date": due}, headers=head2), 403, "item_outside_branch")
    for action in ("lending.approve", "lending.reject", "lending.loan.out"):
        [event] = events(ctx, action)
        assert (event.actor, event.outcome, event.detail["code"]) == ("head2", "refused", "item_outside_branch")
    with ctx.catalogue.sessions() as s:
        assert s.scalar(select(LendingRequest.status).where(LendingRequest.id == rid)) == "pending"
        assert s.scalar(select(func.count()).select_from(PaperLoan)) == 0
    r = client.post(f"/api/v1/lending/requests/{rid}/approve", json={"reason": "同意"}, headers=people["head"])
    assert r.status_code == 200 and r.json()["status"] == "active", r.text
