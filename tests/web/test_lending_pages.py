"""利用 pages: the request form, the approvals inbox (never one's own), grants (view inside, expiry, revoke), and
paper loans with the overdue ones highlighted and 催还; permissions twice, bad input on purpose."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from archive.catalogue.models import AuditEvent, LendingRequest, PaperLoan
from archive.catalogue.types import utcnow
from archive.context import Context
from archive.retention import lending
from tests.factories import stored_item
from tests.web.html import UiClient, soup, text

Ui = Callable[..., UiClient]


@pytest.fixture
def codes(ctx: Context) -> list[str]:
    """Two filed items of branch BR01."""
    return [stored_item(ctx, branch="BR01").archival_code for _ in range(2)]


def ask(person: UiClient, codes: list[str], **over: str) -> object:
    form = {"archival_codes": "\n".join(codes), "purpose": "review", "purpose_text": "复核提取业务", "mode": "print",
            "days": "7", "department": "稽核科", **over}
    return person.post("/ui/lending/requests", htmx=False, data=form, follow_redirects=False)


def requests(ctx: Context) -> list[LendingRequest]:
    with ctx.catalogue.reading() as s:
        rows = list(s.scalars(select(LendingRequest).order_by(LendingRequest.id)))
        s.expunge_all()
        return rows


def events(ctx: Context, action: str, outcome: str = "success") -> list[AuditEvent]:
    with ctx.catalogue.reading() as s:
        rows = list(s.scalars(select(AuditEvent).where(AuditEvent.action == action, AuditEvent.outcome == outcome)
                              .order_by(AuditEvent.seq)))
        s.expunge_all()
        return rows


def chinese(r: object, status: int, code: str) -> None:
    """A clear refusal: the status, the stable code and a Chinese message on the page."""
    assert r.status_code == status, (r.status_code, text(r)[:400])  # type: ignore[attr-defined]
    alert = soup(r).select_one(".alert.error")  # type: ignore[arg-type]
    assert alert is not None and code in alert.get_text(), text(r)[:400]  # type: ignore[arg-type]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in alert.get_text())


def test_request_approve_and_read_inside_the_grant_until_it_expires(ctx: Context, ui: Ui, codes: list[str]) -> None:
    clerk, head = ui("clerk01", ["clerk"], "BR01"), ui("head01", ["archive_head"], None)
    pdf = f"/ui/items/{quote(codes[0])}/rendition.pdf?purpose={quote('业务复核')}"  # the purpose goes on record
    assert clerk.get(pdf).status_code == 403  # a clerk may not download the PDF by role
    r = ask(clerk, codes[:1])
    assert r.status_code == 303 and r.headers["location"] == "/ui/lending?done=requested"  # type: ignore[attr-defined]
    page = clerk.get("/ui/lending?done=requested")
    assert "利用申请已提交" in text(page) and "待审批" in text(page) and codes[0] in text(page)
    rid = requests(ctx)[0].id

    inbox = head.get("/ui/lending/approvals")
    assert inbox.status_code == 200 and soup(inbox).find("tr", id=f"req-{rid}") is not None
    r = head.post(f"/ui/lending/requests/{rid}/approve", htmx=False, data={"days": "3", "reason": "同意"},
                  follow_redirects=False)
    assert r.status_code == 303
    assert soup(head.get("/ui/lending/approvals")).find("tr", id=f"req-{rid}") is None
    assert requests(ctx)[0].days_granted == 3 and [e.actor for e in events(ctx, "lending.approve")] == ["head01"]
    grants = head.get("/ui/lending/grants")
    assert f"#{rid}" in text(grants) and "clerk01" in text(grants)

    mine = soup(clerk.get("/ui/lending"))
    assert mine.find("a", href=pdf) is not None and "已批准（有效）" in mine.get_text()
    r = clerk.get(pdf)
    assert r.status_code == 200 and r.content.startswith(b"rendition")

    with ctx.catalogue.session() as s:  # time moves: the grant's end is now in the past
        row = s.get(LendingRequest, rid)
        assert row is not None
        row.expires_at = utcnow() - timedelta(minutes=1)
    lending.grant_cache.clear()  # the grant changed behind the app's back (the app's own changes clear it)
    r = clerk.get(pdf)
    assert r.status_code == 403 and "grant_expired" in text(r) and "已于" in text(r) and "到期" in text(r)
    assert "已到期" in text(clerk.get("/ui/lending"))
    assert f"#{rid}" not in text(head.get("/ui/lending/grants"))


def test_no_one_approves_their_own_request(ctx: Context, ui: Ui, codes: list[str]) -> None:
    arch = ui("arch01", ["archivist"], None)
    assert ask(arch, codes[:1]).status_code == 303  # type: ignore[attr-defined]
    rid = requests(ctx)[0].id
    assert soup(arch.get("/ui/lending/approvals")).find("tr", id=f"req-{rid}") is None
    r = arch.post(f"/ui/lending/requests/{rid}/approve", htmx=False, data={"reason": "同意"})
    chinese(r, 403, "self_approval")
    assert requests(ctx)[0].status == "pending"
    assert [e.detail["code"] for e in events(ctx, "lending.approve", "refused")] == ["self_approval"]


def test_reject_and_revoke_need_a_reason_and_a_second_click_changes_nothing(ctx: Context, ui: Ui,
                                                                            codes: list[str]) -> None:
    clerk, arch = ui("clerk01", ["clerk"], "BR01"), ui("arch01", ["archivist"], None)
    ask(clerk, codes[:1])
    ask(clerk, codes[1:])
    first, second = (r.id for r in requests(ctx))
    chinese(arch.post(f"/ui/lending/requests/{first}/reject", htmx=False, data={"reason": "  "}), 422,
            "reason_required")
    chinese(arch.post(f"/ui/lending/requests/{first}/reject", htmx=False, data={"reason": "长" * 501}), 422,
            "reason_too_long")
    assert arch.post(f"/ui/lending/requests/{first}/reject", htmx=False, data={"reason": "目的不符"},
                     follow_redirects=False).status_code == 303
    chinese(arch.post(f"/ui/lending/requests/{first}/reject", htmx=False, data={"reason": "再点一次"}), 409,
            "request_not_pending")
    chinese(arch.post(f"/ui/lending/requests/{first}/approve", htmx=False, data={}), 409, "request_not_pending")
    assert "已驳回" in text(clerk.get("/ui/lending")) and "目的不符" in text(clerk.get("/ui/lending"))

    chinese(arch.post(f"/ui/lending/requests/{second}/approve", htmx=False, data={"days": "30"}), 422,
            "period_not_shortened")
    chinese(arch.post(f"/ui/lending/requests/{second}/approve", htmx=False, data={"days": "三天"}), 422,
            "invalid_request")
    assert arch.post(f"/ui/lending/requests/{second}/approve", htmx=False, data={},
                     follow_redirects=False).status_code == 303
    chinese(arch.post(f"/ui/lending/requests/{second}/revoke", htmx=False, data={"reason": ""}), 422,
            "reason_required")
    assert arch.post(f"/ui/lending/requests/{second}/revoke", htmx=False, data={"reason": "提前结束"},
                     follow_redirects=False).status_code == 303
    chinese(arch.post(f"/ui/lending/requests/{second}/revoke", htmx=False, data={"reason": "提前结束"}), 409,
            "grant_not_active")
    r = clerk.get(f"/ui/items/{quote(codes[1])}/rendition.pdf?purpose={quote('业务复核')}")
    assert r.status_code == 403 and "grant_revoked" in text(r)
    assert [r.status for r in requests(ctx)] == ["rejected", "revoked"]
    detail = arch.get(f"/ui/lending/requests/{second}")
    assert detail.status_code == 200 and "提前结束" in text(detail) and "已撤销" in text(detail)
    chinese(arch.post("/ui/lending/requests/999999/approve", htmx=False, data={}), 404, "lending_request_not_found")
    assert arch.post("/ui/lending/requests/abc/approve", htmx=False, data={}).status_code == 422
    assert arch.get("/ui/lending/requests/0").status_code == 422


@pytest.mark.parametrize(("over", "status", "code"), [
    ({"archival_codes": "J001-YW·2026-D30-TQ-999999"}, 404, "item_not_found"),
    ({"archival_codes": " \n "}, 422, "no_items"),
    ({"days": "999"}, 422, "period_too_long"),
    ({"days": "0"}, 422, "invalid_period"),
    ({"days": "七"}, 422, "invalid_request"),
    ({"purpose": "other", "purpose_text": ""}, 422, "purpose_text_required"),
    ({"mode": "fax"}, 422, "invalid_mode"),
    ({"authority": "court", "legal_basis": ""}, 422, "legal_basis_required"),
    ({"department": "科" * 101}, 422, "invalid_request"),
])
def test_a_bad_request_is_refused_in_chinese_and_nothing_is_stored(ctx: Context, ui: Ui, codes: list[str],
                                                                    over: dict[str, str], status: int,
                                                                    code: str) -> None:
    clerk = ui("clerk01", ["clerk"], "BR01")
    r = ask(clerk, codes[:1], **over)
    chinese(r, status, code)
    assert requests(ctx) == []
    assert soup(r).find("textarea", attrs={"name": "archival_codes"}) is not None  # the form, kept for correction
    assert events(ctx, "lending.request", "refused")[-1].detail["code"] == code


def test_who_may_open_what(ctx: Context, ui: Ui) -> None:
    clerk, head, auditor = ui("clerk01", ["clerk"], "BR01"), ui("head01", ["archive_head"], None), ui(
        "aud01", ["auditor"], None)
    assert clerk.get("/ui/lending").status_code == 200
    for path in ("/ui/lending/approvals", "/ui/lending/grants", "/ui/lending/loans"):
        r = clerk.get(path)
        assert r.status_code == 403 and "permission_denied" in text(r), path
        assert head.get(path).status_code == 200, path
    assert auditor.get("/ui/lending").status_code == 403
    r = clerk.post("/ui/lending/requests/1/approve", htmx=False, data={})
    assert r.status_code == 403
    denied = [e.target_id for e in events(ctx, "permission.denied", "refused")]
    assert "GET /ui/lending/approvals" in denied and "POST /ui/lending/requests/{request_id}/approve" in denied
    r = head.get("/ui/lending", follow_redirects=False)  # the head decides, she does not ask
    assert r.status_code == 303 and r.headers["location"] == "/ui/lending/approvals"
    nav = [a.get_text() for a in soup(clerk.get("/ui/lending")).select(".subnav a")]
    assert nav == ["我的申请"]


def _loans(ctx: Context) -> list[PaperLoan]:
    with ctx.catalogue.reading() as s:
        rows = list(s.scalars(select(PaperLoan).order_by(PaperLoan.id)))
        s.expunge_all()
        return rows


def test_paper_loans_overdue_first_with_reminders_and_return(ctx: Context, ui: Ui, codes: list[str]) -> None:
    arch, head = ui("arch01", ["archivist"], None), ui("head01", ["archive_head"], None)
    today = datetime.now(ctx.zone).date()
    form = {"borrower": "李四", "borrower_unit": "稽核科", "archival_codes": codes[0],
            "due_date": (today + timedelta(days=5)).isoformat()}
    assert arch.post("/ui/lending/loans", htmx=False, data=form, follow_redirects=False).status_code == 303
    chinese(arch.post("/ui/lending/loans", htmx=False, data=form), 409, "item_already_lent")
    chinese(arch.post("/ui/lending/loans", htmx=False, data={**form, "archival_codes": codes[1], "borrower": ""}),
            422, "borrower_required")
    chinese(arch.post("/ui/lending/loans", htmx=False, data={**form, "archival_codes": codes[1],
                                                             "due_date": "2026-13-40"}), 422, "invalid_request")
    chinese(arch.post("/ui/lending/loans", htmx=False, data={**form, "archival_codes": codes[1],
                                                             "due_date": today.isoformat()}), 422, "invalid_due_date")
    assert arch.post("/ui/lending/loans", htmx=False, data={**form, "archival_codes": codes[1]},
                     follow_redirects=False).status_code == 303
    first, second = _loans(ctx)
    with ctx.catalogue.session() as s:  # the first loan's due date passed 4 days ago
        loan = s.get(PaperLoan, first.id)
        assert loan is not None
        loan.due_date = today - timedelta(days=4)

    page = soup(arch.get("/ui/lending/loans"))
    overdue = page.select(".overdue-card tr.overdue")
    assert [tr["id"] for tr in overdue] == [f"loan-{first.id}"] and "逾期 4 天" in overdue[0].get_text()
    assert page.select_one(f"#loan-{second.id}:not(.overdue)") is not None and "李四" in page.get_text()
    assert "李四" not in text(head.get("/ui/lending/loans"))  # no 查看个人信息: the borrower's name is masked

    assert arch.post(f"/ui/lending/loans/{first.id}/remind", htmx=False, data={"note": "电话催还"},
                     follow_redirects=False).status_code == 303
    chinese(arch.post(f"/ui/lending/loans/{first.id}/remind", htmx=False, data={"note": "长" * 501}), 422,
            "note_too_long")
    assert "已催还 1 次" in text(arch.get("/ui/lending/loans"))
    chinese(arch.post(f"/ui/lending/loans/{first.id}/return", htmx=False, data={"condition_note": ""}), 422,
            "condition_note_required")
    assert arch.post(f"/ui/lending/loans/{first.id}/return", htmx=False, data={"condition_note": "完好"},
                     follow_redirects=False).status_code == 303
    chinese(arch.post(f"/ui/lending/loans/{first.id}/return", htmx=False, data={"condition_note": "完好"}), 409,
            "loan_already_returned")
    chinese(arch.post(f"/ui/lending/loans/{first.id}/remind", htmx=False, data={}), 409, "loan_already_returned")
    chinese(arch.post("/ui/lending/loans/99999/remind", htmx=False, data={}), 404, "loan_not_found")
    assert [x.status for x in _loans(ctx)] == ["returned", "out"]
    page = arch.get("/ui/lending/loans?status=returned")
    assert f"loan-{first.id}" in page.text and f"loan-{second.id}" not in page.text
    assert arch.get("/ui/lending/loans?status=lost").status_code == 422
    assert len(events(ctx, "lending.loan.remind")) == 1
    with ctx.catalogue.reading() as s:
        assert s.scalar(select(func.count()).select_from(PaperLoan)) == 2
    assert isinstance(today, date)


def test_an_approver_of_another_branch_neither_sees_nor_decides(ctx: Context, ui: Ui, codes: list[str]) -> None:
    clerk, head = ui("clerk01", ["clerk"], "BR01"), ui("head01", ["archive_head"], None)
    other = ui("arch02", ["archivist"], "BR02")
    ask(clerk, codes[:1])
    ask(clerk, codes[1:])
    first, second = (r.id for r in requests(ctx))
    assert soup(other.get("/ui/lending/approvals")).find("tr", id=f"req-{first}") is None
    chinese(other.post(f"/ui/lending/requests/{first}/approve", htmx=False, data={}), 403, "item_outside_branch")
    assert requests(ctx)[0].status == "pending"
    head.post(f"/ui/lending/requests/{second}/approve", htmx=False, data={})
    assert f"#{second}" in text(head.get("/ui/lending/grants"))
    assert f"#{second}" not in text(other.get("/ui/lending/grants"))
