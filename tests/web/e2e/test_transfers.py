"""移交 in Chromium: export a selection (a background job whose progress the page polls), download the package,
receive that package and read its YJ results."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page

from archive.context import Context
from tests import samples
from tests.factories import stored_item
from tests.helpers import add_user
from tests.web.e2e.conftest import shot


def test_export_download_and_receive(ctx: Context, live: str, page_for: Callable[..., Page], tmp_path: Path) -> None:
    codes = [stored_item(ctx, rendition=samples.pdf(n)).archival_code for n in (1, 2, 3)]
    add_user(ctx, "arch01", ["archivist"])
    page = page_for("arch01")
    page.goto(f"{live}/ui/transfers")
    page.get_by_label("档号").fill("\n".join(codes))
    page.get_by_label("接收单位").fill("市档案馆")
    page.get_by_role("button", name="生成信息包").click()
    page.wait_for_url("**/ui/transfers?done=started")
    job = page.locator("section.job")
    job.locator(".tag.ok").wait_for()  # the partial polls itself until the job is done
    assert "已处理 3 / 3" in job.inner_text() and "通过移交检测" in job.inner_text()
    page.reload()  # the outcome survives a reload
    assert "共 3 件" in page.locator("section.job").inner_text()
    shot(page, "transfer-export")

    page.get_by_role("link", name="查看结果").click()
    page.wait_for_url("**/ui/transfers/1")
    assert "全部通过" in page.inner_text("main")
    with page.expect_download() as download:
        page.get_by_role("link", name="下载信息包").click()
    target = tmp_path / "package.zip"
    download.value.save_as(target)
    assert target.stat().st_size > 0

    page.get_by_role("link", name="接收", exact=True).click()
    page.wait_for_url("**/ui/transfers/receipts")
    page.set_input_files("#r-file", str(target))
    page.get_by_role("button", name="上传并检测").click()
    page.wait_for_url("**/ui/transfers/receipts/1")
    main = page.inner_text("main")
    assert "信息包通过移交与接收检测，已登记接收" in main and "全部通过" in main
    shot(page, "transfer-receipt")
