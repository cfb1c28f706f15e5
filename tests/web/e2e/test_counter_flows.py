"""The counter's day in Chromium: a serial scanned with the barcode gun, three materials with one refused, the
cover sheet printed, the case filed and its 档号 shown; a batch-scanned stack split by its cover and separator
sheets; the unassigned queue worked with the gun; a dropped connection during upload retried without duplicates;
another branch's clerk sees none of it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from archive.catalogue.models import Document
from archive.context import Context
from tests import samples
from tests.factories import case_body
from tests.helpers import add_client, add_user
from tests.web.e2e.conftest import TABLET, shot

A, B = "YW2026120300001", "YW2026120300002"


@pytest.fixture
def core(ctx: Context, client: TestClient) -> Iterator[dict[str, str]]:
    """The business system opened case A (BR01) and B (BR02); clerk01 works at BR01, clerk02 at BR02."""
    headers = add_client(ctx, "core", ["cases.write", "data.read"])
    for serial, branch, clerk in ((A, "BR01", "clerk01"), (B, "BR02", "clerk02")):
        r = client.post("/api/v1/cases", json=case_body(serial=serial, branch=branch, clerk=clerk), headers=headers)
        assert r.status_code == 201, r.text
    add_user(ctx, "clerk01", ["clerk"], "BR01")
    add_user(ctx, "clerk02", ["clerk"], "BR02")
    yield headers


def _gun(page: Page, serial: str) -> None:
    """A keyboard-wedge barcode gun: the characters a few ms apart, then Enter, outside any field."""
    page.locator("main").click(position={"x": 5, "y": 5})
    page.keyboard.type(serial, delay=5)
    page.keyboard.press("Enter")


def _documents(ctx: Context) -> int:
    with ctx.catalogue.reading() as s:
        return s.scalar(select(func.count()).select_from(Document)) or 0


def test_scan_upload_print_and_file(ctx: Context, core: dict[str, str], page_for: Callable[..., Page],
                                    tmp_path: Path) -> None:
    page = page_for("clerk01")
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    _gun(page, A)
    page.wait_for_url(f"**/ui/cases/{A}")

    files = {"form.jpg": samples.jpeg(text="申请表"), "low.jpg": samples.jpeg(dpi=150, size=(1240, 1754)),
             "id.png": samples.png(), "marriage.tif": samples.tiff(2), "contract.pdf": samples.pdf(2)}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    page.set_input_files("#f-application_form", [str(tmp_path / "form.jpg"), str(tmp_path / "low.jpg")])
    page.wait_for_selector("#m-application_form .upload-results")
    refusal = page.locator("#m-application_form li.result.bad").inner_text()
    assert "150 dpi" in refusal and "重新扫描" in refusal
    for material, name in (("id_proof", "id.png"), ("marriage_proof", "marriage.tif"),
                           ("house_contract", "contract.pdf")):
        page.set_input_files(f"#f-{material}", str(tmp_path / name))
        page.wait_for_selector(f"#m-{material} li.result.ok")
    assert "齐全" in page.locator("#checklist-status").inner_text()
    shot(page, "case-complete")

    with page.expect_popup() as popup:
        page.get_by_role("link", name="打印扫描封面").click()
    cover = popup.value
    cover.wait_for_load_state()
    assert cover.url.endswith(f"/ui/cases/{A}/cover-sheet.pdf")
    cover.close()

    page.get_by_role("link", name="办结归档").click()
    page.wait_for_url(f"**/ui/cases/{A}/close")
    page.get_by_role("button", name="办结并归档").click()
    result = page.locator(".filing-result")
    result.wait_for(timeout=60_000)
    code = result.locator("strong.mono").inner_text()
    assert code.startswith("J") and "D30" in code and "TQ" in code
    assert "PAdES" in result.inner_text()
    shot(page, "filed")
    assert errors == []


def test_batch_scan_with_separators_then_the_unassigned_queue(ctx: Context, client: TestClient,
                                                              core: dict[str, str], page_for: Callable[..., Page],
                                                              tmp_path: Path) -> None:
    r = client.get(f"/api/v1/cases/{A}/separator-sheets.pdf", headers=core, params={"material_type": "id_proof"})
    [separator] = samples.pdf_pages(r.content)
    stack = samples.stack_pdf([samples.page_image("loose"), samples.cover_image(A), samples.page_image("a1"),
                               separator, samples.page_image("id1")])
    (tmp_path / "stack.pdf").write_bytes(stack)
    page = page_for("clerk01")
    page.goto(page.url + "scans")
    page.set_input_files("#scan-file", str(tmp_path / "stack.pdf"))
    page.wait_for_url("**/ui/scans/*")
    page.get_by_text("已完成").first.wait_for(timeout=60_000)
    parts = page.locator("#batch-1").inner_text() if page.locator("#batch-1").count() else page.inner_text("main")
    assert A in parts and "身份证明" in parts and "待分配" in parts
    shot(page, "scan-batch")

    page.goto(page.url.split("/ui/")[0] + "/ui/scans/unassigned")
    card = page.locator("article.part").first
    assert card.locator("img").first.is_visible()
    field = card.locator("input[name=serial]")
    field.fill(A)
    field.press("Enter")
    material = card.locator("select[name=material_type]")
    material.wait_for()
    material.select_option("application_form")
    shot(page, "unassigned")
    card.get_by_role("button", name="归入").click()
    page.get_by_text(f"已归入 {A}").wait_for()

    other = page_for("clerk02")  # BR02 sees neither A nor BR01's stack
    other.goto(other.url + f"go?serial={A}")
    assert "未找到业务" in other.inner_text("main") and "张三" not in other.content()
    other.goto(other.url.split("/ui/")[0] + "/ui/scans/unassigned")
    assert other.locator("article.part").count() == 0


def test_a_dropped_connection_is_reported_and_the_retry_stores_once(ctx: Context, core: dict[str, str],
                                                                     page_for: Callable[..., Page],
                                                                     tmp_path: Path) -> None:
    page = page_for("clerk01", TABLET)
    page.goto(page.url + f"cases/{A}")
    (tmp_path / "id.png").write_bytes(samples.png())
    before = _documents(ctx)
    page.context.set_offline(True)
    page.set_input_files("#f-id_proof", str(tmp_path / "id.png"))
    # waits for the text (inner_text would read the flash at once, before the failed request is reported)
    expect(page.locator("#flash")).to_contain_text("网络连接中断", timeout=10_000)
    page.context.set_offline(False)
    for _ in range(2):  # the clerk retries, then (unsure) once more: the same file is stored once
        with page.expect_response(f"**/ui/cases/{A}/documents"):
            page.set_input_files("#f-id_proof", str(tmp_path / "id.png"))
        page.wait_for_selector("#m-id_proof .upload-results")
    assert _documents(ctx) == before + 1
    assert "已存在" in page.locator("#m-id_proof").inner_text()
