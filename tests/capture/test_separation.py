"""Material separator sheets (材料分隔页): a stack scanned with them files with no manual step."""

from __future__ import annotations

import io
from typing import Any

import pikepdf
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from archive.capture.separation import Mark, read_mark, split
from archive.catalogue.models import ArchiveItem
from archive.context import Context
from tests import samples
from tests.factories import CLOSE, case_body, upload
from tests.helpers import add_client

A, B = "YW2026010700001", "YW2026010700002"


@pytest.fixture
def core(ctx: Context, client: TestClient) -> dict[str, str]:
    headers = add_client(ctx, "core", ["cases.write", "data.read"])
    for serial in (A, B):
        r = client.post("/api/v1/cases", json=case_body(serial=serial, business_type="TQ07"), headers=headers)
        assert r.status_code == 201, r.text
    return headers


def sheets(client: TestClient, headers: dict[str, str], serial: str, *materials: str) -> list[Any]:
    r = client.get(f"/api/v1/cases/{serial}/separator-sheets.pdf", headers=headers,
                   params={"material_type": list(materials)} if materials else None)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    return samples.pdf_pages(r.content)


def cover(client: TestClient, headers: dict[str, str], serial: str) -> Any:
    r = client.get(f"/api/v1/cases/{serial}/cover-sheet.pdf", headers=headers)
    return samples.pdf_pages(r.content)[0]


def scan(client: TestClient, headers: dict[str, str], pages: list[Any]) -> dict[str, Any]:
    r = client.post("/api/v1/scans", headers=headers,
                    files={"file": ("stack.pdf", samples.stack_pdf(pages), "application/pdf")})
    assert r.status_code == 202, r.text
    return client.get(f"/api/v1/scans/{r.json()['id']}", headers=headers).json()  # type: ignore[no-any-return]


def test_stack_with_separators_files_with_no_manual_step(ctx: Context, client: TestClient,
                                                         core: dict[str, str]) -> None:
    """Given a 租房提取 case, its printed cover and separator sheets (required ones plus the optional lease
    contract) laid in front of the pages in an order that is not the checklist's, when the stack is scanned
    and the case closed, then it files without any override, and the rendition holds every material in
    checklist order with none of the sheets."""
    page = samples.page_image
    printed = sheets(client, core, A)
    assert len(printed) == 2  # one per required material: 申请表, 身份证明
    form_sheet, id_sheet = printed
    [lease_sheet] = sheets(client, core, A, "lease_contract")
    stack = [cover(client, core, A), id_sheet, page("id-front"), lease_sheet, page("lease1"), page("lease2"),
             form_sheet, page("form1"), page("form2"), page("form3")]
    batch = scan(client, core, stack)
    assert batch["status"] == "done" and batch["covers"] == [[1, A]]
    assert batch["separators"] == [[2, A, "id_proof"], [4, A, "lease_contract"], [7, A, "application_form"]]
    assert [(p["first_page"], p["last_page"], p["status"]) for p in batch["parts"]] == [
        (3, 3, "attached"), (5, 6, "attached"), (8, 10, "attached")]
    checklist = client.get(f"/api/v1/cases/{A}/checklist", headers=core).json()
    assert checklist["complete"] is True

    r = client.post(f"/api/v1/cases/{A}/close", json=CLOSE, headers=core)
    assert r.status_code == 200, r.text
    with ctx.catalogue.sessions() as s:
        item = s.scalar(select(ArchiveItem))
        assert item is not None and item.rendition_key
        rendition = ctx.store.get(item.rendition_key).read()
    with pikepdf.open(io.BytesIO(rendition)) as pdf, pdf.open_outline() as outline:
        titles = [str(i.title) for i in outline.root]
        pages = len(pdf.pages)
    assert pages == 6  # 3 + 1 + 2 scanned pages; cover and separator sheets are not filed
    assert [t.split("（")[0] for t in titles] == ["1. 申请表", "2. 身份证明", "3. 租赁合同或租金发票"], titles


def test_separator_of_another_case_is_reported_not_trusted(ctx: Context, client: TestClient,
                                                           core: dict[str, str]) -> None:
    """Given B's separator slipped behind A's cover, then the pages behind it wait for a clerk
    (separator_serial_mismatch) and the rest of A's stack is still typed by its own separators."""
    [a_form] = sheets(client, core, A, "application_form")
    [b_id] = sheets(client, core, B, "id_proof")
    page = samples.page_image
    batch = scan(client, core, [cover(client, core, A), a_form, page("form"), b_id, page("stray")])
    assert [(p["first_page"], p["serial"], p["status"], p["reason"]) for p in batch["parts"]] == [
        (3, A, "attached", None), (5, B, "unassigned", "separator_serial_mismatch")]
    docs = client.get(f"/api/v1/cases/{A}", headers=core).json()["documents"]
    assert [d["material_type"] for d in docs] == ["application_form"]
    assert client.get(f"/api/v1/cases/{B}", headers=core).json()["documents"] == []
    waiting = client.get("/api/v1/scans/unassigned", headers=core).json()
    assert [(p["first_page"], p["reason"]) for p in waiting] == [(5, "separator_serial_mismatch")]


def test_separator_types_pages_only_up_to_the_next_sheet() -> None:
    """Given cover A | 2 pages | separator A id_proof | 1 page | cover B | 1 page, then the pages before the
    first separator keep the batch's material type, and B's page is not typed by A's separator."""
    marks = [(1, Mark(A)), (4, Mark(A, "id_proof")), (6, Mark(B))]
    assert [(p.first_page, p.last_page, p.serial, p.material_type, p.problem) for p in split(7, marks)] == [
        (2, 3, A, None, None), (5, 5, A, "id_proof", None), (7, 7, B, None, None)]


def test_a_separator_is_not_read_as_a_cover_and_receipts_are_ignored(ctx: Context, client: TestClient,
                                                                     core: dict[str, str]) -> None:
    """Given a separator sheet fed askew and an ordinary page, then the separator reads as a separator with its
    serial and material, and the ordinary page as nothing."""
    [sheet] = sheets(client, core, A, "id_proof")
    assert read_mark(sheet.rotate(7, expand=True, fillcolor=255)) == Mark(A, "id_proof")
    assert read_mark(cover(client, core, A)) == Mark(A)
    assert read_mark(samples.page_image("plain")) is None


@pytest.mark.parametrize(("serial", "params", "status", "code"), [
    (A, {"material_type": "house_contract"}, 422, "material_not_for_business_type"),
    (A, {"material_type": "no_such_material"}, 422, "unknown_material_type"),
    ("YW2099123199999", None, 404, "case_not_found"),
])
def test_bad_separator_sheet_requests(ctx: Context, client: TestClient, core: dict[str, str], serial: str,
                                      params: dict[str, str] | None, status: int, code: str) -> None:
    """Given an unknown case or bad parameters, when separator sheets are asked, then the status and code of that
    case with a message."""
    r = client.get(f"/api/v1/cases/{serial}/separator-sheets.pdf", headers=core, params=params)
    assert r.status_code == status and r.json()["code"] == code, r.text
    assert r.json()["message"]


def test_no_separator_sheets_for_a_filed_case(ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given a filed case, then its separator sheets are refused (409): its materials can no longer change."""
    r = upload(client, core, A, ("a.jpg", samples.jpeg(text="form"), "application_form"),
               ("b.png", samples.png(), "id_proof"))
    assert r.status_code == 201, r.text
    assert client.post(f"/api/v1/cases/{A}/close", json=CLOSE, headers=core).status_code == 200
    r = client.get(f"/api/v1/cases/{A}/separator-sheets.pdf", headers=core)
    assert r.status_code == 409 and r.json()["code"] == "case_not_open"


def test_a_refused_part_waits_and_the_rest_of_the_stack_goes_on(ctx: Context, client: TestClient,
                                                                core: dict[str, str]) -> None:
    """Given a separator for a material 租房提取 does not have (a sheet printed for another business type),
    then its pages wait for a clerk with that reason, and the part behind the next separator is attached."""
    from archive.capture.cover_sheet import SeparatorLine, render_separators

    foreign = samples.pdf_pages(render_separators(A, "购买自住住房提取", None,
                                                  [SeparatorLine("house_contract", "购房合同", True)], "中心"))[0]
    [form_sheet] = sheets(client, core, A, "application_form")
    page = samples.page_image
    batch = scan(client, core, [cover(client, core, A), foreign, page("contract"), form_sheet, page("form")])
    assert batch["status"] == "done"
    assert [(p["first_page"], p["status"], p["reason"]) for p in batch["parts"]] == [
        (3, "unassigned", "material_not_for_business_type"), (5, "attached", None)]
    assert [d["material_type"] for d in client.get(f"/api/v1/cases/{A}", headers=core).json()["documents"]] == [
        "application_form"]
