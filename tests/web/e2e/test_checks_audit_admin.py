"""四性检测, the auditor and the administrators in Chromium: the auditor reads the reports, the alerts, the log and
the access register but has no button that changes anything (a POST to an archivist's or administrator's page is
403); the administrator registers a client and sees its key once; the security officer assigns a role."""

from __future__ import annotations

import threading
from collections.abc import Callable

from playwright.sync_api import Page, expect
from sqlalchemy import select

from archive import audit
from archive.audit import Actor
from archive.catalogue.models import ArchiveItem, User
from archive.checks import reports
from archive.checks.base import REGISTRY, Outcome, Result, Stage
from archive.checks.sweep import SweepOptions, run_sweep
from archive.context import Context
from tests.checks.test_alerts import damaged_store
from tests.factories import stored_item
from tests.helpers import add_user
from tests.web.e2e.conftest import shot


def _seed(ctx: Context) -> None:
    code = stored_item(ctx, 500, branch="BR01").archival_code
    with ctx.catalogue.session() as s:
        item = s.scalar(select(ArchiveItem).where(ArchiveItem.archival_code == code))
        assert item is not None
        reports.save_report(s, Actor("user", "arch01"), Stage.FILING, code,
                            [(REGISTRY["GD-1-2"], Result(Outcome.PASSED, "元数据齐全")),
                             (REGISTRY["GD-1-7"], Result(Outcome.FAILED, "归档件摘要与登记不符"))], item_id=item.id)
        audit.record(s, Actor("user", "clerk01"), "access.read", target_type="item", target_id=code,
                     detail={"what": "page", "purpose": "核对提取材料", "serial": "YW2026010500001"})

    failed: list[BaseException] = []

    def damage_and_sweep() -> None:
        try:
            damaged_store(ctx)
            run_sweep(ctx, Actor.system("sweep"), SweepOptions(signature_every=1))
        except BaseException as exc:  # shown by the assertion below
            failed.append(exc)

    # in a thread of its own: Playwright keeps an event loop running in this one, and signing calls asyncio.run
    sweep = threading.Thread(target=damage_and_sweep)
    sweep.start()
    sweep.join(60)
    assert not failed, failed
    for name, role in (("audit01", "auditor"), ("admin01", "admin"), ("sec01", "security_officer"),
                       ("clerk09", "clerk")):
        add_user(ctx, name, [role], "BR01" if role == "clerk" else None)


def _no_changing_buttons(page: Page) -> None:
    """Only the logout form and GET filters; the chain's verification (a read) is the one POST allowed."""
    actions = page.eval_on_selector_all("main form[method=post], main [hx-post]",
                                        "els => els.map(e => e.getAttribute('action') || e.getAttribute('hx-post'))")
    assert set(actions) <= {"/ui/audit/verify"}, actions


def test_auditor_reads_admin_issues_a_key_officer_assigns(ctx: Context, live: str,
                                                          page_for: Callable[..., Page]) -> None:
    _seed(ctx)
    page = page_for("audit01")
    page.goto(f"{live}/ui/checks")
    expect(page.locator("table.list tbody tr")).to_have_count(2)  # the filing report and the sweep's report
    page.select_option("#f-stage", "gd")
    page.get_by_role("button", name="筛选").click()
    expect(page.locator("table.list tbody tr")).to_have_count(1)
    shot(page, "checks-reports")
    _no_changing_buttons(page)
    page.goto(f"{live}/ui/checks/alerts")
    expect(page.get_by_text("严重").first).to_be_visible()
    shot(page, "checks-alerts")
    _no_changing_buttons(page)
    page.goto(f"{live}/ui/audit")
    expect(page.locator("table.audit-events tbody tr").first).to_be_visible()
    page.get_by_role("button", name="核验哈希链").click()
    expect(page.locator("main")).to_contain_text("审计日志完整", timeout=20_000)
    shot(page, "audit-log")
    _no_changing_buttons(page)
    page.goto(f"{live}/ui/audit/access")
    expect(page.get_by_text("核对提取材料")).to_be_visible()
    shot(page, "access-register")
    _no_changing_buttons(page)
    for path in ("/ui/checks/alerts/1/acknowledge", "/ui/admin/users", "/ui/admin/clients",
                 "/ui/admin/users/clerk09/roles"):
        status = page.evaluate("""async (path) => (await fetch(path, {method: 'POST', headers: {
            'X-CSRF-Token': document.querySelector('meta[name=csrf-token]').content}})).status""", path)
        assert status == 403, (path, status)

    admin = page_for("admin01")
    admin.goto(f"{live}/ui/admin/clients")
    admin.get_by_label("名称").fill("core-system")
    admin.get_by_label("data.read").check()
    admin.get_by_label("cases.write").check()
    admin.get_by_role("button", name="登记并签发密钥").click()
    key_field = admin.locator("#new-key")
    expect(key_field).to_be_visible()
    key = key_field.input_value()
    assert key.startswith("ak_")
    shot(admin, "admin-clients")
    admin.get_by_role("link", name="我已保存，返回列表").click()
    expect(admin.get_by_text("core-system")).to_be_visible()
    assert key not in admin.content()  # never again
    admin.goto(f"{live}/ui/admin/settings")
    expect(admin.get_by_text("ARCHIVE_S3_SECRET_KEY")).to_be_visible()
    shot(admin, "admin-settings")

    officer = page_for("sec01")
    officer.goto(f"{live}/ui/admin")
    shot(officer, "admin-users")
    officer.get_by_role("link", name="clerk09").click()
    officer.get_by_label("安全审计员").check()
    officer.get_by_label("系统管理员").check()
    officer.get_by_role("button", name="保存角色").click()
    expect(officer.locator("#flash")).to_contain_text("不能由同一账号兼任")
    officer.get_by_label("系统管理员").uncheck()
    officer.get_by_label("安全审计员").uncheck()
    officer.get_by_label("档案管理员").check()
    officer.get_by_role("button", name="保存角色").click()
    expect(officer.get_by_text("角色已保存")).to_be_visible()
    with ctx.catalogue.reading() as s:
        user = s.scalar(select(User).where(User.username == "clerk09"))
        assert user is not None and user.role_codes == ["archivist", "clerk"]
