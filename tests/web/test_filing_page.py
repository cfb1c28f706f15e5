"""办结归档 page: the trail offered, filing through the form, refusals in plain words, the 归档件 page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from archive.catalogue.models import ArchiveItem, AuditEvent, Case, CheckReport
from archive.context import Context
from tests import samples
from tests.factories import SERIAL, case_body, complete_case, upload
from tests.helpers import add_client
from tests.web.html import UiClient, soup, text

CODE = "J001-YW·2026-D30-TQ-000001"
PAGE = f"/ui/cases/{SERIAL}/close"


@pytest.fixture
def core(ctx: Context) -> dict[str, str]:
    return add_client(ctx, "core", ["cases.write", "data.read", "pii.read"])


def form(**over: Any) -> dict[str, Any]:
    """The form as the page sends it: two steps, approved, closed on 2026-01-05 16:00 (center time)."""
    body: dict[str, Any] = {"action": ["受理", "办结", ""], "person": ["clerk01", "clerk01", ""],
                            "at": ["2026-01-05T09:30", "2026-01-05T16:00", ""], "opinion": ["", "同意", ""],
                            "outcome": "approved", "closed_at": "2026-01-05T16:00"}
    body.update(over)
    return body


def items(ctx: Context) -> int:
    with ctx.catalogue.reading() as s:
        return s.scalar(select(func.count()).select_from(ArchiveItem)) or 0


def events(ctx: Context, action: str) -> list[Any]:
    """(actor, outcome, target_id, detail) of each ``action`` event, in order."""
    with ctx.catalogue.reading() as s:
        return list(s.execute(select(AuditEvent.actor, AuditEvent.outcome, AuditEvent.target_id, AuditEvent.detail)
                              .where(AuditEvent.action == action).order_by(AuditEvent.seq)))


def test_close_page_offers_the_trail_and_says_the_materials_are_complete(
        ctx: Context, client: TestClient, core: dict[str, str], ui: Callable[..., UiClient]) -> None:
    """Given a complete case without a trail, Then the page offers 受理 by its clerk at its acceptance (center time)
    and 办结 by the person now, the three outcomes, no override field, and says the materials are complete; Given
    a trail the business system sent, Then its steps are offered instead."""
    complete_case(client, core)
    r = ui("clerk01").get(PAGE)
    assert r.status_code == 200, r.text
    page = soup(r)
    assert page.find(id="trail-0-action").find("option", selected=True)["value"] == "受理"
    assert page.find(id="trail-0-person")["value"] == "clerk01"
    assert page.find(id="trail-0-at")["value"] == "2026-01-05T09:30"
    assert page.find(id="trail-1-action").find("option", selected=True)["value"] == "办结"
    assert [o["value"] for o in page.find(id="outcome").find_all("option")] == ["approved", "rejected", "withdrawn"]
    assert page.find(id="override_reason") is None and "必备材料齐全" in text(r)
    assert page.find("label", attrs={"for": "closed_at"}) is not None
    with ctx.catalogue.session() as s:
        s.execute(update(Case).values(trail=[{"action": "审批", "person": "chief01", "at": "2026-01-05T15:00:00+08:00",
                                              "opinion": "同意"}]))
    page = soup(ui("clerk01").get(PAGE))
    assert page.find(id="trail-0-action").find("option", selected=True)["value"] == "审批"
    assert page.find(id="trail-0-person")["value"] == "chief01"
    assert page.find(id="trail-0-opinion")["value"] == "同意"


def test_filing_a_complete_case_shows_its_code_and_the_item_page_verifies_it(
        ctx: Context, client: TestClient, core: dict[str, str], ui: Callable[..., UiClient]) -> None:
    """Given a complete case, When the clerk files it through the form, Then the answer shows the 档号, 定期30年,
    业务办结, PAdES B-B and shortened digests, with a link to the item page; item.file is on record as hers. The item
    page shows the facts, the documents and a passed verification, registered as an access; the name is masked for
    a person without pii.read. A second submit is
    refused with case_not_open and a link to the 档号: one item only."""
    complete_case(client, core)
    clerk = ui("clerk01")
    r = clerk.post(PAGE, data=form())
    assert r.status_code == 200, r.text
    shown = text(r)
    assert CODE in shown and "定期30年" in shown and "业务办结" in shown and "PAdES B-B" in shown
    with ctx.catalogue.reading() as s:
        item = s.scalar(select(ArchiveItem))
        assert item is not None and item.rendition_sha256 and item.rendition_sha256[:16] in shown
        assert s.scalar(select(Case.status)) == "filed"
    link = soup(r).find("a", href=f"/ui/items/{quote(CODE)}")
    assert link is not None
    assert [e.actor for e in events(ctx, "item.file")] == ["clerk01"]

    page = clerk.get(link["href"])
    assert page.status_code == 200, page.text
    assert "完好" in text(page) and "申请表" in text(page) and "PAdES B-B" in text(page)  # the filing's 四性检测
    assert "张三" in text(page)  # clerks hold pii.read
    assert [e.detail["what"] for e in events(ctx, "access.read")] == ["data"]  # no re-verification on a view
    head = ui("head01", ["archive_head"], None).get(link["href"])  # no pii.read: masked
    assert head.status_code == 200 and "张*" in text(head) and "张三" not in text(head)

    again = clerk.post(PAGE, data=form())
    assert again.status_code == 409 and "case_not_open" in text(again) and "已办结归档" in text(again)
    assert soup(again).find("a", href=f"/ui/items/{quote(CODE)}") is not None
    assert items(ctx) == 1
    assert clerk.get(PAGE).status_code == 200 and CODE in text(clerk.get(PAGE))  # the page of a filed case


def test_incomplete_case_lists_the_missing_materials_and_is_not_filed(
        ctx: Context, client: TestClient, core: dict[str, str], ui: Callable[..., UiClient]) -> None:
    """Given a case with only its application form, Then the page lists the three missing materials with links back
    to the case; When filed anyway, Then 409 materials_missing lists them again and nothing is filed."""
    assert client.post("/api/v1/cases", json=case_body(), headers=core).status_code == 201
    upload(client, core, SERIAL, ("a.jpg", samples.jpeg(), "application_form"))
    clerk = ui("clerk01")
    page = soup(clerk.get(PAGE))
    links = [a["href"] for a in page.select("ul.missing a")]
    assert links == [f"/ui/cases/{SERIAL}#material-{m}" for m in ("id_proof", "marriage_proof", "house_contract")]
    r = clerk.post(PAGE, data=form())
    assert r.status_code == 409 and "materials_missing" in text(r) and "身份证明" in text(r)
    assert f"/ui/cases/{SERIAL}#material-id_proof" in [a["href"] for a in soup(r).select("section.refusal a")]
    assert items(ctx) == 0


def test_archivist_files_an_incomplete_case_with_a_reason(
        ctx: Context, client: TestClient, core: dict[str, str], ui: Callable[..., UiClient]) -> None:
    """Given an incomplete case, Then an archivist (filing.override) is offered the reason field, and with a reason
    the case files; the item.file event keeps the reason."""
    assert client.post("/api/v1/cases", json=case_body(), headers=core).status_code == 201
    upload(client, core, SERIAL, ("a.jpg", samples.jpeg(), "application_form"))
    archivist = ui("arch01", ["archivist"], None)
    assert soup(archivist.get(PAGE)).find("label", attrs={"for": "override_reason"}) is not None
    r = archivist.post(PAGE, data=form(override_reason="原件由法院调取"))
    assert r.status_code == 200 and CODE in text(r)
    assert events(ctx, "item.file")[0].detail["override_reason"] == "原件由法院调取"


def test_a_refused_filing_names_the_failed_checks_in_plain_words(
        ctx: Context, client: TestClient, core: dict[str, str], ui: Callable[..., UiClient]) -> None:
    """Given an applicant name with a control character, When filed, Then 409 filing_checks_failed: GD-1-6 with its
    detail and a 请… hint, the check report's number; the case stays open and nothing is filed. (Intake refuses the
    character since data quality's source rules: the case gets it the way legacy rows do, after intake.)"""
    complete_case(client, core, applicant={"name": "张三", "id_number": "11010519491231002X"})
    with ctx.catalogue.session() as s:
        s.execute(update(Case).values(applicant_name="张\x01三"))
    r = ui("clerk01").post(PAGE, data=form())
    assert r.status_code == 409 and "filing_checks_failed" in text(r)
    rows = soup(r).select("section.refusal tbody tr")
    assert rows and "GD-1-6" in rows[0].get_text() and "U+0001" in rows[0].get_text()
    assert "请删除" in rows[0].get_text()
    with ctx.catalogue.reading() as s:
        assert s.scalar(select(Case.status)) == "open"
    assert events(ctx, "item.file")[0].outcome == "refused"
    with ctx.catalogue.reading() as s:
        report = s.scalar(select(CheckReport.id).where(CheckReport.subject == SERIAL))
    assert report is not None and f"检测报告编号 {report}" in text(r)
    assert items(ctx) == 0


@pytest.mark.parametrize(("over", "message"), [
    ({"action": ["", ""], "person": ["", ""], "at": ["", ""], "opinion": ["", ""]}, "至少填写一个环节"),
    ({"at": ["2026-13-45T99:00", "2026-01-05T16:00", ""]}, "请选择日期和时间"),
    ({"outcome": "maybe"}, "办结结果"),
    ({"action": ["受理", "盖章", ""]}, "只能是"),
])
def test_malformed_forms_are_refused_in_chinese_and_file_nothing(
        ctx: Context, client: TestClient, core: dict[str, str], ui: Callable[..., UiClient], over: dict[str, Any],
        message: str) -> None:
    """Given a form with no step, an impossible time, an unknown outcome or action, Then 422 invalid_request with
    the field named in Chinese, the field marked invalid, and nothing filed."""
    complete_case(client, core)
    r = ui("clerk01").post(PAGE, data=form(**over))
    assert r.status_code == 422 and "invalid_request" in text(r) and message in text(r)
    assert soup(r).find(attrs={"aria-invalid": "true"}) is not None or "至少填写一个环节" in text(r)
    assert items(ctx) == 0


def test_permissions_of_the_filing_page(ctx: Context, client: TestClient, core: dict[str, str],
                                        ui: Callable[..., UiClient]) -> None:
    """Given a complete case of BR01, Then an auditor gets 403 (audited) and a clerk of BR02 gets 404 on the page,
    the form and the item page, with no case data in the HTML; a missing CSRF token is 403; nothing is filed."""
    complete_case(client, core)
    auditor, other = ui("audit01", ["auditor"], None), ui("clerk02", ["clerk"], "BR02")
    for person, status in ((auditor, 403), (other, 404)):
        for r in (person.get(PAGE), person.post(PAGE, data=form(), htmx=False)):
            assert r.status_code == status, r.text
            assert "张" not in r.text and "申请表" not in r.text and "<form class=\"card filing-form\"" not in r.text
    assert [e.target_id for e in events(ctx, "permission.denied")] == [f"GET {PAGE.replace(SERIAL, '{serial}')}",
                                                                     f"POST {PAGE.replace(SERIAL, '{serial}')}"]
    clerk = ui("clerk01")
    r = clerk.client.post(PAGE, data=form())  # no CSRF header nor field
    assert r.status_code == 403 and "csrf_failed" in text(r)
    assert items(ctx) == 0
    assert clerk.post(PAGE, data=form()).status_code == 200
    assert other.get(f"/ui/items/{quote(CODE)}").status_code == 404
    assert auditor.get(f"/ui/items/{quote(CODE)}").status_code == 403


def test_rendition_download_records_the_access(ctx: Context, client: TestClient, core: dict[str, str],
                                               ui: Callable[..., UiClient]) -> None:
    """Given a filed case, Then a clerk (no 下载档案文件) is refused the PDF with 403 and offered no link; an
    archivist downloads it (a PDF) and the read is registered as what=rendition."""
    complete_case(client, core)
    clerk = ui("clerk01")
    assert clerk.post(PAGE, data=form()).status_code == 200
    url = f"/ui/items/{quote(CODE)}/rendition.pdf"
    assert soup(clerk.get(f"/ui/items/{quote(CODE)}")).find("form", action=url) is None
    assert clerk.get(url, params={"purpose": "复核"}).status_code == 403
    archivist = ui("arch01", ["archivist"], None)
    assert soup(archivist.get(f"/ui/items/{quote(CODE)}")).find("form", action=url) is not None
    r = archivist.get(url, params={"purpose": "业务复核"})
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    assert [(e.detail["what"], e.detail["purpose"]) for e in events(ctx, "access.read") if e.actor == "arch01"] == [
        ("data", "档案查阅"), ("rendition", "业务复核")]


def test_filing_pages_carry_no_inline_script_style_or_handlers(
        ctx: Context, client: TestClient, core: dict[str, str], ui: Callable[..., UiClient]) -> None:
    """Given the close page, its answer and the item page, Then none has an inline script, a style= or an on…=
    attribute, every visible field has its label, and the busy indicator is wired to the form."""
    complete_case(client, core)
    clerk = ui("clerk01")
    before = clerk.get(PAGE)
    filed = clerk.post(PAGE, data=form())
    for r in (before, filed, clerk.get(f"/ui/items/{quote(CODE)}")):
        page = soup(r)
        assert all(tag.get("src") for tag in page.find_all("script"))
        assert not page.find_all(style=True)
        assert not [t for t in page.find_all(True) if any(a.startswith("on") for a in t.attrs)]
        for field in page.find_all(["input", "select", "textarea"]):
            if field.get("type") not in ("hidden", "search") and field.get("id"):
                assert page.find("label", attrs={"for": field["id"]}) is not None, field["id"]
    form_tag = soup(before).select_one("form.filing-form")
    assert form_tag["hx-indicator"] == "#filing-busy" and form_tag["hx-disabled-elt"] == "find button[type=submit]"
    assert soup(before).select_one("#filing-busy .when-busy") is not None
