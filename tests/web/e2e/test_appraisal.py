"""鉴定与销毁 in Chromium: the archivist proposes two expired items for destruction, builds the 销毁清册, approves it;
the head of the archive approves it in her own login; the archivist executes it as a job whose progress the page
shows and opens the signed PDF. A second list is rejected (驳回) with an opinion. A hold is set by 档号, and the
schedule's reapply dry run is shown and applied."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

from playwright.sync_api import Page, expect

from archive.context import Context
from tests.helpers import add_user
from tests.retention.test_holds import expire_locks, keys_of, make_item
from tests.retention.test_schedules import TQ01, variant
from tests.web.e2e.conftest import shot


def test_appraisal_destruction_two_approvals_execution_and_pdf(ctx: Context, page_for: Callable[..., Page],
                                                               live: str) -> None:
    a, b = make_item(ctx, expiry=date(2019, 1, 1)), make_item(ctx, expiry=date(2019, 6, 1))
    for code in (a, b):
        expire_locks(ctx, keys_of(ctx, code))
    add_user(ctx, "arch", ["archivist"])
    add_user(ctx, "head", ["archive_head"])
    arch = page_for("arch")
    errors: list[str] = []
    arch.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    arch.goto(f"{live}/ui/appraisal")
    expect(arch.locator("#queue-total")).to_contain_text("共 2 件")
    arch.get_by_label(f"选择 {a}").check()
    arch.get_by_label(f"选择 {b}").check()
    arch.get_by_label("鉴定意见（理由）").fill("保管期满，经鉴定无继续保存价值")
    shot(arch, "appraisal-queue")
    arch.get_by_role("button", name="提交鉴定意见").click()
    expect(arch.locator(".alert.ok")).to_contain_text("已记录 2 件拟销毁")

    arch.get_by_role("link", name="去编制销毁清册").click()
    expect(arch.locator("#proposed")).to_have_text("2")
    arch.get_by_label("清册标题").fill("2026年第一批档案销毁清册")
    arch.get_by_role("button", name="编制清册").click()
    arch.wait_for_url("**/ui/appraisal/lists/*")
    list_url = arch.url
    expect(arch.locator("#list-status")).to_have_text("待审批")
    arch.get_by_label("审批意见").fill("经核对，同意销毁")
    arch.get_by_role("button", name="同意").click()
    expect(arch.get_by_text("您已审批过本清册")).to_be_visible()
    shot(arch, "destruction-list")

    head = page_for("head")
    head.goto(list_url)
    head.get_by_label("审批意见").fill("同意销毁")
    head.get_by_role("button", name="同意").click()
    expect(head.locator("#list-status")).to_have_text("已批准")
    expect(head.get_by_role("button", name="执行销毁")).to_have_count(0)  # she approves; the archivist executes

    arch.goto(list_url)
    arch.get_by_role("button", name="执行销毁").click()
    job = arch.locator("section.job")
    expect(job).to_contain_text("已完成", timeout=30_000)
    expect(job).to_contain_text("已销毁 2 件")
    arch.reload()  # the job and the result survive a reload
    expect(arch.locator("#list-status")).to_have_text("已执行")
    expect(arch.locator("table.entries")).to_contain_text("已销毁")
    shot(arch, "destruction-executed")
    pdf = arch.request.get(live + str(arch.locator("#pdf-link").get_attribute("href")))
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf" and pdf.body()[:4] == b"%PDF"

    # a second list, rejected with an opinion: its item goes back to the queue
    c = make_item(ctx, expiry=date(2019, 1, 1))
    arch.goto(f"{live}/ui/appraisal")
    arch.get_by_label(f"选择 {c}").check()
    arch.get_by_label("鉴定意见（理由）").fill("保管期满")
    arch.get_by_role("button", name="提交鉴定意见").click()
    arch.goto(f"{live}/ui/appraisal/lists")
    arch.get_by_role("button", name="编制清册").click()
    arch.wait_for_url("**/ui/appraisal/lists/*")
    head.goto(arch.url)
    head.get_by_label("驳回理由").fill("该件涉及未结诉讼，需重新鉴定")
    head.get_by_role("button", name="驳回").click()
    expect(head.locator("#list-status")).to_have_text("已驳回")
    expect(head.locator("main")).to_contain_text("该件涉及未结诉讼")
    arch.goto(f"{live}/ui/appraisal")
    expect(arch.locator("table.queue")).to_contain_text(c)
    assert errors == []


def test_holds_and_schedule_reapply(ctx: Context, page_for: Callable[..., Page], live: str, tmp_path: Path) -> None:
    a = make_item(ctx, expiry=date(2039, 1, 1))
    add_user(ctx, "arch", ["archivist"])
    arch = page_for("arch")
    arch.goto(f"{live}/ui/holds")
    arch.get_by_label("决定机关").fill("北京市朝阳区人民法院")
    arch.get_by_label("文号").fill("（2026）京0105民初123号")
    arch.get_by_label("冻结原因").fill("诉讼保全")
    arch.get_by_label("档号或业务流水号").fill(a)
    arch.get_by_role("button", name="设置冻结").click()
    expect(arch.locator("#hold-status")).to_have_text("冻结中")
    arch.goto(f"{live}/ui/holds")
    expect(arch.locator("main table")).to_contain_text("北京市朝阳区人民法院")
    shot(arch, "holds")

    ctx.schedule = variant(ctx, tmp_path, "2026.2-test", (TQ01, TQ01.replace("D30", "Y")))
    arch.goto(f"{live}/ui/schedules")
    arch.get_by_role("button", name="预览变化").click()
    expect(arch.locator("table.reapply")).to_contain_text(a)
    expect(arch.locator("table.reapply")).to_contain_text("永久")
    shot(arch, "schedule-reapply")
    arch.get_by_label("理由").fill("按2026年新版保管期限表调整")
    arch.get_by_role("button", name="按预览执行").click()
    arch.wait_for_url("**/ui/schedules")
    expect(arch.locator("section.job")).to_contain_text("已完成", timeout=30_000)
    expect(arch.locator("section.job")).to_contain_text("已重新适用 1 件")
