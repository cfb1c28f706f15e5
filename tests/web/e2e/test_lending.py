"""利用 in Chromium: a clerk asks to read an item, the archive head approves it, the clerk reads the PDF inside the
grant, and after the grant's end the same URL is refused in Chinese; paper loans with an overdue one and 催还."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import quote

from playwright.sync_api import Page
from sqlalchemy import select

from archive.catalogue.models import LendingRequest, PaperLoan
from archive.catalogue.types import utcnow
from archive.context import Context
from archive.retention import lending
from tests import samples
from tests.factories import stored_item
from tests.helpers import add_user
from tests.web.e2e.conftest import shot


def test_request_approval_view_inside_the_grant_and_expiry(ctx: Context, live: str,
                                                          page_for: Callable[..., Page]) -> None:
    code = stored_item(ctx, rendition=samples.pdf(1)).archival_code
    add_user(ctx, "clerk01", ["clerk"], "BR01")
    add_user(ctx, "archhead", ["archive_head"])
    pdf = f"{live}/ui/items/{quote(code)}/rendition.pdf?purpose={quote('业务复核')}"

    clerk = page_for("clerk01")
    assert clerk.request.get(pdf).status == 403  # no 下载档案文件 by role
    clerk.goto(f"{live}/ui/lending")
    clerk.get_by_label("档号").fill(code)
    clerk.get_by_label("利用目的").select_option("review")
    clerk.get_by_label("目的说明").fill("复核提取业务")
    clerk.get_by_label("利用方式").select_option("print")
    clerk.get_by_label("利用期限（天）").fill("5")
    clerk.get_by_role("button", name="提交申请").click()
    clerk.wait_for_url("**/ui/lending?done=requested")
    assert "待审批" in clerk.locator("table.list").inner_text()
    shot(clerk, "lending-requests")

    head = page_for("archhead")
    head.goto(f"{live}/ui/lending")
    head.wait_for_url("**/ui/lending/approvals")
    row = head.locator("table.lending-inbox tbody tr").first
    assert code in row.inner_text() and "clerk01" in row.inner_text()
    row.get_by_label("批准天数").fill("3")
    row.get_by_label("审批意见").fill("同意，三天")
    shot(head, "lending-approvals")
    row.get_by_role("button", name="批准").click()
    head.wait_for_url("**/ui/lending/approvals?done=approved*")
    assert "没有待审批的利用申请" in head.inner_text("main")
    head.goto(f"{live}/ui/lending/grants")
    assert "clerk01" in head.locator("table.list").inner_text()

    clerk.reload()
    assert "已批准（有效）" in clerk.locator("table.list").inner_text()
    link = clerk.get_by_role("link", name=f"查阅 {code[-6:]}")
    assert link.get_attribute("href") == pdf.removeprefix(live)
    inside = clerk.request.get(pdf)  # the viewer's PDF, with the page's own session
    assert inside.status == 200 and inside.body().startswith(b"%PDF")

    with ctx.catalogue.session() as s:  # time moves on: the grant ended a minute ago
        grant = s.scalars(select(LendingRequest)).one()
        grant.expires_at = utcnow() - timedelta(minutes=1)
    lending.grant_cache.clear()  # the grant changed behind the app's back (the app's own changes clear it)
    refused = clerk.goto(pdf)
    assert refused is not None and refused.status == 403
    message = clerk.inner_text("main")
    assert "到期" in message and "重新提交利用申请" in message and "grant_expired" in message
    clerk.goto(f"{live}/ui/lending")
    assert "已到期" in clerk.locator("table.list").inner_text()


def test_paper_loans_overdue_and_reminder(ctx: Context, live: str, page_for: Callable[..., Page]) -> None:
    codes = [stored_item(ctx).archival_code for _ in range(3)]
    add_user(ctx, "arch01", ["archivist"])
    page = page_for("arch01")
    page.goto(f"{live}/ui/lending/loans")
    today = datetime.now(ctx.zone).date()
    for n, (borrower, code) in enumerate((("李四", codes[0]), ("王五", codes[1]), ("赵六", codes[2]))):
        page.locator("#b-name").fill(borrower)
        page.get_by_label("借阅人单位/部门").fill("稽核科")
        page.locator("#b-codes").fill(code)
        page.get_by_label("应还日期").fill((today + timedelta(days=5 + n)).isoformat())
        page.get_by_role("button", name="登记借出").click()
        page.wait_for_url("**/ui/lending/loans?done=lent")
    with ctx.catalogue.session() as s:  # the first two loans are overdue
        for loan, days in zip(s.scalars(select(PaperLoan).order_by(PaperLoan.id)), (9, 2), strict=False):
            loan.due_date = today - timedelta(days=days)
    page.reload()
    overdue = page.locator(".overdue-card tbody tr")
    assert overdue.count() == 2 and "逾期 9 天" in overdue.first.inner_text()
    shot(page, "loans-overdue")
    overdue.first.get_by_label("催还说明").fill("电话催还")
    overdue.first.get_by_role("button", name="催还").click()
    page.wait_for_url("**/ui/lending/loans?done=reminded")
    assert "已催还 1 次" in page.locator(".overdue-card tbody tr").first.inner_text()
