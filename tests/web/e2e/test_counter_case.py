"""受理 and the case page in Chromium: the live check marks the field, the business-type filter narrows the list,
files chosen on a checklist row go up at once and each answers in that row."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from archive.context import Context
from tests import samples
from tests.factories import ID
from tests.helpers import add_user
from tests.web.e2e.conftest import TABLET, shot


def test_open_a_case_and_upload_on_its_page(ctx: Context, page_for: Callable[..., object], tmp_path: Path) -> None:
    add_user(ctx, "clerk01", ["clerk"], "BR01")
    page = page_for("clerk01")
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)  # type: ignore[attr-defined]
    page.goto(page.url + "cases/new?serial=YW2026040100001")  # type: ignore[attr-defined]
    field = page.locator("#applicant_id_number")  # type: ignore[attr-defined]
    field.fill("110105194912310021")
    field.press("Tab")
    page.wait_for_selector("#msg-applicant_id_number.bad")  # type: ignore[attr-defined]
    assert field.get_attribute("aria-invalid") == "true"
    assert "校验位不正确" in page.locator("#msg-applicant_id_number").inner_text()  # type: ignore[attr-defined]
    field.fill(ID)
    field.press("Tab")
    page.wait_for_selector("#msg-applicant_id_number.ok")  # type: ignore[attr-defined]
    assert field.get_attribute("aria-invalid") is None
    page.locator("#bt-filter").fill("购买自住住房提取")  # type: ignore[attr-defined]
    assert page.locator("#business_type").input_value() == "TQ01"  # type: ignore[attr-defined]
    page.locator("#applicant_name").fill("张三")  # type: ignore[attr-defined]
    shot(page, "case-new")
    page.get_by_role("button", name="受理").click()  # type: ignore[attr-defined]
    page.wait_for_url("**/ui/cases/YW2026040100001")  # type: ignore[attr-defined]

    good, low = tmp_path / "申请表.jpg", tmp_path / "低分辨率.jpg"
    good.write_bytes(samples.jpeg())
    low.write_bytes(samples.jpeg(dpi=150, size=(1240, 1754)))
    page.set_input_files("#f-application_form", [str(good), str(low)])  # type: ignore[attr-defined]
    page.wait_for_selector("#m-application_form .upload-results")  # type: ignore[attr-defined]
    row = page.locator("#m-application_form")  # type: ignore[attr-defined]
    assert row.locator("li.result.ok img").count() == 1 and "150 dpi" in row.locator("li.result.bad").inner_text()
    assert page.locator("#checklist-status").inner_text() == "缺 3 项必备材料"  # type: ignore[attr-defined]
    shot(page, "case-upload")
    page.set_viewport_size(TABLET)  # type: ignore[attr-defined]
    page.reload()  # type: ignore[attr-defined]
    assert page.locator("#m-application_form li.doc img").is_visible()  # type: ignore[attr-defined]
    shot(page, "case-tablet")
    assert errors == []  # no CSP violation, no script error
