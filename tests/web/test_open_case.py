"""受理 in the browser: the form, live checks of identifiers, refusals at their field, and who may open a case."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from bs4 import BeautifulSoup
from sqlalchemy import func, select

from archive.catalogue.models import AuditEvent, Case
from archive.context import Context
from tests.factories import ID
from tests.web.html import UiClient, soup, text

SERIAL = "YW2026030100001"
BAD_ID = "110105194912310021"  # the check digit should be X
USCC = "91350100M000100Y43"


def form(**over: str) -> dict[str, str]:
    """The fields a clerk fills in for a 提取 case."""
    values = {"serial": SERIAL, "business_type": "TQ01", "applicant_name": "张三", "applicant_id_number": ID,
              "applicant_mobile": "13800138000", "unit_name": "", "unit_uscc": "", "loan_contract_no": "",
              "branch": "BR01", "clerk": "clerk01"}
    values.update(over)
    return values


def submit(person: UiClient, **over: str) -> httpx.Response:
    """The form as the browser posts it (a plain form, its CSRF token as a field)."""
    return person.client.post("/ui/cases", data={**form(**over), "csrf_token": person.csrf}, follow_redirects=False)


def count(ctx: Context, model: Any, *where: Any) -> int:
    with ctx.catalogue.reading() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def events(ctx: Context, action: str, outcome: str = "success") -> int:
    return count(ctx, AuditEvent, AuditEvent.action == action, AuditEvent.outcome == outcome)


def field_message(page: BeautifulSoup, name: str) -> str:
    msg = page.find(id=f"msg-{name}")
    assert msg is not None, name
    return str(msg.get_text(" ", strip=True))


def assert_csp_clean(page: BeautifulSoup) -> None:
    """Nothing the Content-Security-Policy would block: no inline script, style or event handler."""
    assert all(tag.get("src") for tag in page.find_all("script"))
    assert not page.find_all(style=True)
    assert not [a for tag in page.find_all(True) for a in tag.attrs if a.lower().startswith("on")]


def test_the_form_is_prefilled_from_the_person_and_the_scanned_serial(ui: Callable[..., UiClient]) -> None:
    r = ui("clerk01").get(f"/ui/cases/new?serial={SERIAL}")
    assert r.status_code == 200
    page = soup(r)
    assert_csp_clean(page)
    assert page.find("input", id="serial")["value"] == SERIAL
    branch = page.find("input", id="branch")
    assert branch["value"] == "BR01" and branch.has_attr("readonly")  # the clerk's one branch
    assert page.find("input", id="clerk")["value"] == "clerk01"
    select_ = page.find("select", id="business_type")
    assert len(select_.find_all("optgroup")) == 4 and len(select_.find_all("option", value=True)) == 31 + 1
    assert page.find("input", attrs={"data-filter-for": "business_type"}) is not None
    for field in page.select("form input:not([type=hidden]), form select"):  # every field has its label
        if field.get("id") != "goto-serial":
            assert page.find("label", attrs={"for": field["id"]}) is not None, field["id"]
    live = page.find("input", id="applicant_id_number")
    assert live["hx-post"] == "/ui/validate/id-number" and "keyup" in live["hx-trigger"]


def test_a_person_of_every_branch_types_the_branch(ui: Callable[..., UiClient]) -> None:
    page = soup(ui("clerkall", ["clerk"], None).get("/ui/cases/new"))
    branch = page.find("input", id="branch")
    assert not branch.has_attr("readonly") and branch["value"] == ""


def test_opening_a_case_lands_on_its_page_and_is_audited(ctx: Context, ui: Callable[..., UiClient]) -> None:
    clerk = ui("clerk01")
    r = submit(clerk)
    assert r.status_code == 303 and r.headers["location"] == f"/ui/cases/{SERIAL}"
    assert events(ctx, "case.open") == 1
    page = clerk.get(r.headers["location"])
    assert page.status_code == 200 and SERIAL in text(page) and "购买自住住房提取" in text(page)
    again = submit(clerk)  # the same form twice (a double click): the same case, no second one
    assert again.status_code == 303 and events(ctx, "case.open") == 1


def test_a_wrong_check_digit_is_refused_at_the_id_field_keeping_the_values(ctx: Context,
                                                                          ui: Callable[..., UiClient]) -> None:
    r = submit(ui("clerk01"), applicant_id_number=BAD_ID)
    assert r.status_code == 422
    page = soup(r)
    assert "校验位不正确" in field_message(page, "applicant_id_number")
    assert "invalid_applicant.id_number" in field_message(page, "applicant_id_number")
    assert page.find("input", id="applicant_id_number")["aria-invalid"] == "true"
    assert page.find("input", id="applicant_name")["value"] == "张三"  # nothing typed is lost
    assert page.find("input", id="applicant_id_number")["value"] == BAD_ID
    assert page.find("option", value="TQ01").has_attr("selected")
    assert count(ctx, Case) == 0 and events(ctx, "case.open") == 0


def test_a_serial_taken_with_other_content_is_409_at_the_serial(ctx: Context, ui: Callable[..., UiClient]) -> None:
    clerk = ui("clerk01")
    assert submit(clerk).status_code == 303
    r = submit(clerk, business_type="TQ03")
    assert r.status_code == 409
    msg = field_message(soup(r), "serial")
    assert "已受理" in msg and "business_type" in msg and "serial_conflict" in msg
    with ctx.catalogue.reading() as s:
        assert s.scalar(select(Case.business_type)) == "TQ01"


def test_each_refusal_names_its_field(ctx: Context, ui: Callable[..., UiClient]) -> None:
    clerk = ui("clerk01")
    cases = [({"business_type": "DK01"}, "loan_contract_no", "missing_loan_contract_no", 422),
             ({"serial": "a b"}, "serial", "invalid_serial", 422),
             ({"business_type": ""}, "business_type", "unknown_business_type", 422),
             ({"applicant_mobile": "12345"}, "applicant_mobile", "invalid_applicant.mobile", 422),
             ({"unit_name": "示例公司", "unit_uscc": USCC[:-1] + "4"}, "unit_uscc", "invalid_unit.uscc", 422),
             ({"applicant_id_number": ""}, "applicant_id_number", "invalid_request", 422),  # a half-filled block
             ({"applicant_name": "", "applicant_id_number": "", "applicant_mobile": ""}, "applicant_name",
              "missing_applicant", 422)]
    for over, field, code, status in cases:
        r = submit(clerk, **over)
        assert r.status_code == status, (over, r.text)
        assert code in field_message(soup(r), field), over
    assert count(ctx, Case) == 0


def test_live_checks_answer_the_domain_message_at_the_field(ui: Callable[..., UiClient]) -> None:
    clerk = ui("clerk01")
    checks = [("id-number", "applicant_id_number", BAD_ID, ID, "校验位不正确"),
              ("uscc", "unit_uscc", USCC[:-1] + "4", USCC, "统一社会信用代码校验位不正确"),
              ("mobile", "applicant_mobile", "2380013800", "138-0013-8000", "手机号码应为以1开头的11位数字")]
    for kind, name, bad, good, message in checks:
        r = clerk.post(f"/ui/validate/{kind}", data={name: bad})
        assert r.status_code == 200
        msg = soup(r).find(id=f"msg-{name}")
        assert message in msg.get_text() and "bad" in msg["class"] and msg["data-invalid"] == "true"
        assert msg.find("small", class_="code").get_text() == f"invalid_{name.replace('_', '.', 1)}"
        ok = soup(clerk.post(f"/ui/validate/{kind}", data={name: good})).find(id=f"msg-{name}")
        assert "ok" in ok["class"] and ok["data-invalid"] == "false"
        empty = soup(clerk.post(f"/ui/validate/{kind}", data={name: "  "})).find(id=f"msg-{name}")
        assert empty.get_text(strip=True) == ""  # nothing typed yet: nothing to say
    assert clerk.post("/ui/validate/bank-card", data={"x": "1"}).status_code == 404


def test_without_case_write_the_form_and_its_checks_are_refused_and_audited(ctx: Context,
                                                                           ui: Callable[..., UiClient]) -> None:
    head = ui("head01", ["archive_head"], None)  # reads cases, opens none
    r = head.get("/ui/cases/new")
    assert r.status_code == 403 and "permission_denied" in text(r) and "<form action=\"/ui/cases\"" not in r.text
    assert submit(head).status_code == 403
    assert head.post("/ui/validate/id-number", data={"applicant_id_number": ID}).status_code == 403
    assert count(ctx, Case) == 0
    assert events(ctx, "permission.denied", "refused") == 3
    auditor = ui("audit01", ["auditor"], None)
    assert auditor.get("/ui/cases/new").status_code == 403
    assert events(ctx, "permission.denied", "refused") == 4


def test_without_the_csrf_token_nothing_is_opened(ctx: Context, ui: Callable[..., UiClient]) -> None:
    clerk = ui("clerk01")
    r = clerk.client.post("/ui/cases", data={**form(), "csrf_token": "forged"})
    assert r.status_code == 403 and "csrf_failed" in text(r)
    assert count(ctx, Case) == 0


def test_a_serial_of_another_branch_reads_as_unknown(ctx: Context, ui: Callable[..., UiClient]) -> None:
    assert submit(ui("clerk01")).status_code == 303
    other = ui("clerk02", ["clerk"], "BR02")
    r = submit(other, branch="BR02")
    assert r.status_code == 404 and "case_not_found" in field_message(soup(r), "serial")
    assert "张三" not in r.text.replace('value="张三"', "")  # only what this clerk typed herself
    assert count(ctx, Case) == 1


def test_an_unknown_live_check_is_404(ui: Callable[..., UiClient]) -> None:
    r = ui("clerk01").post("/ui/validate/passport", data={"x": "1"})
    assert r.status_code == 404 and "没有这种校验" in r.text
