"""The case page: checklist, uploads with per-file results, page images, corrections, and who may do what."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select

from archive.catalogue.models import AuditEvent, Document
from archive.context import Context
from tests import samples
from tests.factories import add_case, file_case
from tests.helpers import add_client
from tests.web.html import UiClient, soup, text
from tests.web.test_open_case import assert_csp_clean

SERIAL = "YW2026030200001"
REQUIRED = ["申请表（申请审批表）", "身份证明"]  # the first two of TQ01's four required materials


@pytest.fixture
def case(ctx: Context) -> str:
    """An open 提取 (TQ01) case of BR01 without documents; applicant 张三."""
    add_case(ctx, SERIAL, business_type="TQ01", id_number="110105196501150019")
    return SERIAL


def send(person: UiClient, material: str, *files: tuple[str, bytes], serial: str = SERIAL) -> httpx.Response:
    """Files dropped on a row of the checklist (an htmx request answered with the checklist fragment)."""
    return person.post(f"/ui/cases/{serial}/documents", data={"material_type": material},
                       files=[("files", (name, data, "application/octet-stream")) for name, data in files])


def count(ctx: Context, model: Any, *where: Any) -> int:
    with ctx.catalogue.reading() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


@dataclass(frozen=True)
class Event:
    actor: str
    target_id: str | None
    detail: dict[str, Any]


def events(ctx: Context, action: str, outcome: str = "success") -> list[Event]:
    with ctx.catalogue.reading() as s:
        return [Event(e.actor, e.target_id, e.detail) for e in s.scalars(
            select(AuditEvent).where(AuditEvent.action == action, AuditEvent.outcome == outcome)
            .order_by(AuditEvent.seq))]


def active(ctx: Context) -> list[tuple[int, str, int]]:
    """(id, material type, pages) of the case's active documents."""
    with ctx.catalogue.reading() as s:
        return [(d.id, d.material_type, d.page_count) for d in s.scalars(select(Document).order_by(Document.id))
                if d.is_active]


def status_line(r: httpx.Response) -> str:
    tag = soup(r).find(id="checklist-status")
    assert tag is not None
    return str(tag.get_text(strip=True))


def row(r: httpx.Response, material: str) -> Any:
    found = soup(r).find(id=f"m-{material}")
    assert found is not None, material
    return found


# --- the page ------------------------------------------------------------------------------------

def test_the_page_shows_the_case_and_its_checklist(ui: Callable[..., UiClient], case: str) -> None:
    r = ui("clerk01").get(f"/ui/cases/{case}")
    assert r.status_code == 200
    page = soup(r)
    assert_csp_clean(page)
    shown = text(r)
    assert case in shown and "购买自住住房提取" in shown and "张三" in shown and "110105196501150019" in shown
    assert "BR01" in shown and "clerk01" in shown and "+08:00" in shown  # accepted time, local with its offset
    assert status_line(r) == "缺 4 项必备材料"
    rows = page.select("li.material")
    assert [r_.h3.get_text() for r_ in rows][:2] == REQUIRED and len(rows) == 8  # 4 required, 4 optional
    assert "必备" in rows[0].get_text() and "缺" in rows[0].get_text() and "可选" in rows[-1].get_text()
    form = rows[0].find("form")
    assert form["hx-post"] == f"/ui/cases/{case}/documents" and form["hx-encoding"] == "multipart/form-data"
    picker = form.find("input", attrs={"name": "files", "multiple": True})
    assert picker.has_attr("data-autosubmit") and "application/pdf" in picker["accept"]
    assert form.find("input", attrs={"capture": "environment"}) is not None
    assert "dropzone" in rows[0]["class"]
    actions = {a.get_text(strip=True): a for a in page.select(".page-head .actions a")}
    assert actions["办结归档"]["href"] == f"/ui/cases/{case}/close"
    assert actions["打印扫描封面"]["target"] == "_blank"


def test_without_pii_read_the_applicant_is_masked_and_nothing_can_be_changed(ui: Callable[..., UiClient],
                                                                            case: str) -> None:
    r = ui("head01", ["archive_head"], None).get(f"/ui/cases/{case}")
    assert r.status_code == 200
    shown = text(r)
    assert "张*" in shown and "张三" not in shown
    assert "110105********0019" in shown and "110105196501150019" not in r.text
    page = soup(r)
    assert page.find("input", attrs={"type": "file"}) is None and page.find("form", attrs={"hx-post": True}) is None
    assert "办结归档" not in shown and "没有修改材料的权限" in shown


# --- uploads ---------------------------------------------------------------------------------------

def test_an_upload_answers_each_file_in_its_row_and_updates_the_checklist(ctx: Context, ui: Callable[..., UiClient],
                                                                         case: str) -> None:
    clerk = ui("clerk01")
    r = send(clerk, "application_form", ("表一.jpg", samples.jpeg(text="one")), ("表二.jpg", samples.jpeg(text="two")),
             ("低分辨率.jpg", samples.jpeg(dpi=150, size=(1240, 1754))))
    assert r.status_code == 200  # some accepted: each refusal is explained in its row
    assert "<html" not in r.text and soup(r).find(id="checklist") is not None  # the fragment htmx swaps in
    results = row(r, "application_form").select(".upload-results li.result")
    accepted = [li for li in results if "ok" in li["class"]]
    refused = [li for li in results if "bad" in li["class"]]
    assert len(accepted) == 2 and len(refused) == 1
    for li in accepted:
        assert li.img["src"].endswith("/pages/1?w=200") and "已接收" in li.get_text() and "共 1 页" in li.get_text()
    reason = refused[0].get_text(" ", strip=True)
    assert "低分辨率.jpg" in reason and "150 dpi" in reason and "200 dpi" in reason and "重新扫描" in reason
    assert refused[0].find("small", class_="code").get_text() == "scan_resolution_too_low"
    assert status_line(r) == "缺 3 项必备材料"
    assert "已收 2 份" in row(r, "application_form").get_text()
    assert len(row(r, "application_form").select("ul.docs li.doc img")) == 2  # thumbnails of the documents
    assert len(events(ctx, "document.attach")) == 2 and len(active(ctx)) == 2


def test_three_rows_one_refused_hostile_file(ctx: Context, ui: Callable[..., UiClient], case: str) -> None:
    clerk = ui("clerk01")
    assert send(clerk, "application_form", ("申请表.jpg", samples.jpeg())).status_code == 200
    assert send(clerk, "id_proof", ("身份证.png", samples.png())).status_code == 200
    r = send(clerk, "marriage_proof", ("婚姻.pdf", samples.javascript_pdf()))
    assert r.status_code == 422  # the whole upload refused
    li = row(r, "marriage_proof").select_one("li.result.bad")
    assert "婚姻.pdf" in li.get_text() and li.find("small", class_="code").get_text() == "pdf_has_javascript"
    r = send(clerk, "marriage_proof", ("launch.pdf", samples.pdf_with_action("launch")))
    assert r.status_code == 422
    assert row(r, "marriage_proof").select_one("li.result.bad small.code").get_text() == "pdf_has_launch_action"
    assert status_line(r) == "缺 2 项必备材料"
    assert [m for _, m, _ in active(ctx)] == ["application_form", "id_proof"]
    assert len(list(ctx.store.list_keys("originals/"))) == 2  # nothing of the refused files is kept


def test_the_same_file_twice_is_kept_once(ctx: Context, ui: Callable[..., UiClient], case: str) -> None:
    clerk = ui("clerk01")
    data = samples.jpeg()
    assert send(clerk, "application_form", ("a.jpg", data)).status_code == 200
    r = send(clerk, "application_form", ("a-again.jpg", data))
    assert r.status_code == 200
    assert "已存在" in row(r, "application_form").select_one(".upload-results").get_text()
    assert len(active(ctx)) == 1 and len(events(ctx, "document.attach")) == 1
    r = send(clerk, "id_proof", ("same-as-form.jpg", data))  # the same bytes as another material: kept, flagged
    notice = row(r, "id_proof").select_one(".upload-results .alert.warn")
    assert notice is not None and "内容完全相同" in notice.get_text() and "duplicate_content" in notice.get_text()


def test_an_upload_without_a_chosen_file_is_refused_in_its_row(ctx: Context, ui: Callable[..., UiClient],
                                                                 case: str) -> None:
    """A browser sends an empty file part (filename="") when 上传 is pressed before a file is chosen."""
    body = (b"--b\r\nContent-Disposition: form-data; name=\"material_type\"\r\n\r\nid_proof\r\n"
            b"--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"\"\r\n"
            b"Content-Type: application/octet-stream\r\n\r\n\r\n--b--\r\n")
    r = ui("clerk01").post(f"/ui/cases/{case}/documents", content=body,
                           headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert r.status_code == 422 and "no_files" in row(r, "id_proof").get_text() and active(ctx) == []


def test_an_upload_without_the_csrf_token_stores_nothing(ctx: Context, ui: Callable[..., UiClient],
                                                          case: str) -> None:
    clerk = ui("clerk01")
    r = clerk.client.post(f"/ui/cases/{case}/documents", data={"material_type": "id_proof"},
                          files=[("files", ("id.png", samples.png(), "image/png"))], headers={"HX-Request": "true"})
    assert r.status_code == 403 and r.headers["HX-Retarget"] == "#flash" and "csrf_failed" in text(r)
    assert active(ctx) == [] and list(ctx.store.list_keys("originals/")) == []


def test_a_plain_form_upload_answers_the_whole_page(ctx: Context, ui: Callable[..., UiClient], case: str) -> None:
    clerk = ui("clerk01")
    r = clerk.client.post(f"/ui/cases/{case}/documents", data={"material_type": "id_proof", "csrf_token": clerk.csrf},
                          files=[("files", ("id.png", samples.png(), "image/png"))])
    assert r.status_code == 200 and "<html" in r.text and "已收 1 份" in row(r, "id_proof").get_text()


# --- page images -------------------------------------------------------------------------------------

def test_thumbnail_and_viewer_of_an_open_case(ctx: Context, ui: Callable[..., UiClient], case: str) -> None:
    clerk = ui("clerk01")
    send(clerk, "marriage_proof", ("婚姻.tif", samples.tiff(3)))
    (doc_id, _, pages), = active(ctx)
    r = clerk.get(f"/ui/documents/{doc_id}/pages/1?w=200")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(r.content)).width == 200
    view = clerk.get(f"/ui/documents/{doc_id}/view?page=2")
    assert view.status_code == 200
    page = soup(view)
    assert page.select_one(".viewer img")["src"] == f"/ui/documents/{doc_id}/pages/2?w=1000"
    prev, nxt = page.find("a", rel="prev"), page.find("a", rel="next")
    assert prev["href"] == "?page=1" and nxt["href"] == "?page=3"
    assert prev.has_attr("data-key-nav") and nxt.has_attr("data-key-nav")
    assert page.find("a", href=f"/ui/cases/{case}#d-{doc_id}") is not None
    last = soup(clerk.get(f"/ui/documents/{doc_id}/view?page={pages}"))
    assert last.find("a", rel="next") is None
    assert clerk.get(f"/ui/documents/{doc_id}/pages/9?w=200").status_code == 404  # page_not_found


def test_a_filed_case_is_read_only_and_its_page_reads_are_registered(ctx: Context, client: TestClient,
                                                                    ui: Callable[..., UiClient]) -> None:
    core = add_client(ctx, "core", ["cases.write", "data.read", "pii.read"])
    code = file_case(client, core, "YW2026030300001")
    clerk = ui("clerk01")
    r = clerk.get("/ui/cases/YW2026030300001")
    assert r.status_code == 200 and "已归档" in text(r) and code in text(r)
    page = soup(r)
    assert page.find("a", href=f"/ui/items/{code.replace('·', '%C2%B7')}") is not None
    assert page.find("input", attrs={"type": "file"}) is None and "办结归档" not in text(r)
    assert page.select("li.doc img")  # documents with thumbnails, read only
    reads = [e.detail for e in events(ctx, "access.read")]
    assert reads[-1]["what"] == "data" and reads[-1]["via"] == "ui"
    doc_id = active(ctx)[0][0]
    img = clerk.get(f"/ui/documents/{doc_id}/pages/1?w=200")
    assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg"
    last = events(ctx, "access.read")[-1]
    assert last.actor == "clerk01" and last.target_id == code
    assert (last.detail["what"], last.detail["document"], last.detail["page"]) == ("page", doc_id, 1)
    r = send(clerk, "other", ("late.jpg", samples.jpeg()), serial="YW2026030300001")
    assert r.status_code == 409 and "case_not_open" in text(r)  # the domain refuses; the page says so


# --- corrections ---------------------------------------------------------------------------------------

def test_retype_a_document(ctx: Context, ui: Callable[..., UiClient], case: str) -> None:
    clerk = ui("clerk01")
    send(clerk, "application_form", ("身份证.png", samples.png()))
    (doc_id, _, _), = active(ctx)
    r = clerk.post(f"/ui/cases/{case}/documents/{doc_id}/type", data={"material_type": "id_proof"})
    assert r.status_code == 200
    assert soup(r).find(id="checklist-note").get_text() == "“身份证.png”的材料类型已更正为身份证明"
    assert active(ctx)[0][1] == "id_proof" and status_line(r) == "缺 3 项必备材料"
    assert events(ctx, "document.retype")[0].detail == {"document_id": doc_id, "from": "application_form",
                                                        "to": "id_proof"}
    r = clerk.post(f"/ui/cases/{case}/documents/{doc_id}/type", data={"material_type": "loan_contract"})
    assert r.status_code == 422
    assert "material_not_for_business_type" in soup(r).find(id=f"d-{doc_id}").get_text()
    assert active(ctx)[0][1] == "id_proof"


def test_split_a_scanned_document(ctx: Context, ui: Callable[..., UiClient], case: str) -> None:
    clerk = ui("clerk01")
    send(clerk, "application_form", ("扫描.pdf", samples.pdf(4)))
    (doc_id, _, _), = active(ctx)
    page = soup(clerk.get(f"/ui/cases/{case}"))
    assert len(page.find(id=f"d-{doc_id}").select("fieldset.split-row")) == 4
    bad = clerk.post(f"/ui/cases/{case}/documents/{doc_id}/split",
                     data={"first_page": ["1", "2", ""], "last_page": ["2", "4", ""],
                           "material_type": ["application_form", "id_proof", "application_form"]})
    assert bad.status_code == 422
    assert "split_ranges_overlap" in soup(bad).find(id=f"d-{doc_id}").get_text() and len(active(ctx)) == 1
    words = clerk.post(f"/ui/cases/{case}/documents/{doc_id}/split",
                       data={"first_page": ["1", "三"], "last_page": ["2", "4"],
                             "material_type": ["application_form", "id_proof"]})
    assert words.status_code == 422 and "split_range_invalid" in soup(words).find(id=f"d-{doc_id}").get_text()
    kept = soup(words).find(id=f"d-{doc_id}")  # what was typed stays, to correct the one wrong number
    assert kept.find("details").has_attr("open") and kept.find(id=f"s-{doc_id}-1-a")["value"] == "三"
    assert kept.find(id=f"s-{doc_id}-1-m").find("option", selected=True)["value"] == "id_proof"
    r = clerk.post(f"/ui/cases/{case}/documents/{doc_id}/split",
                   data={"first_page": ["1", "3", "", ""], "last_page": ["2", "4", "", ""],
                         "material_type": ["application_form", "id_proof", "application_form", "application_form"]})
    assert r.status_code == 200 and "已拆分为 2 份材料" in soup(r).find(id="checklist-note").get_text()
    assert [(m, p) for _, m, p in active(ctx)] == [("application_form", 2), ("id_proof", 2)]
    assert status_line(r) == "缺 2 项必备材料"
    assert events(ctx, "document.split")[0].detail["document_id"] == doc_id


def test_remove_needs_a_reason(ctx: Context, ui: Callable[..., UiClient], case: str) -> None:
    clerk = ui("clerk01")
    send(clerk, "id_proof", ("身份证.png", samples.png()))
    (doc_id, _, _), = active(ctx)
    r = clerk.post(f"/ui/cases/{case}/documents/{doc_id}/remove", data={"reason": "  "})
    assert r.status_code == 422
    assert "removal_reason_required" in soup(r).find(id=f"d-{doc_id}").get_text() and len(active(ctx)) == 1
    r = clerk.post(f"/ui/cases/{case}/documents/{doc_id}/remove", data={"reason": "误传了其他业务的材料"})
    assert r.status_code == 200 and active(ctx) == [] and "缺" in row(r, "id_proof").get_text()
    assert events(ctx, "document.remove")[0].detail == {"document_id": doc_id, "reason": "误传了其他业务的材料"}
    again = clerk.post(f"/ui/cases/{case}/documents/{doc_id}/remove", data={"reason": "再撤一次"})
    assert again.status_code == 404 and again.headers["HX-Retarget"] == "#flash"  # document_not_found


def test_replace_a_document(ctx: Context, ui: Callable[..., UiClient], case: str) -> None:
    clerk = ui("clerk01")
    send(clerk, "id_proof", ("模糊.png", samples.png()))
    (old, _, _), = active(ctx)
    low = clerk.post(f"/ui/cases/{case}/documents/{old}/replace",
                     files={"file": ("还是模糊.jpg", samples.jpeg(dpi=150, size=(1240, 1754)), "image/jpeg")})
    assert low.status_code == 422 and "scan_resolution_too_low" in soup(low).find(id=f"d-{old}").get_text()
    r = clerk.post(f"/ui/cases/{case}/documents/{old}/replace",
                   files={"file": ("清晰.jpg", samples.jpeg(), "image/jpeg")})
    assert r.status_code == 200
    (new, material, _), = active(ctx)
    assert new != old and material == "id_proof" and "清晰.jpg" in row(r, "id_proof").get_text()
    assert events(ctx, "document.replace")[0].detail["replaces"] == old


def test_printed_sheets_are_pdfs(ui: Callable[..., UiClient], case: str) -> None:
    clerk = ui("clerk01")
    for path in ("cover-sheet.pdf", "separator-sheets.pdf", "separator-sheets.pdf?material_type=other"):
        r = clerk.get(f"/ui/cases/{case}/{path}")
        assert r.status_code == 200 and r.headers["content-type"] == "application/pdf" and r.content[:5] == b"%PDF-"
    r = clerk.get(f"/ui/cases/{case}/separator-sheets.pdf?material_type=loan_contract")
    assert r.status_code == 422 and "material_not_for_business_type" in text(r)


# --- who may ---------------------------------------------------------------------------------------------

def _changes(case: str, doc_id: int) -> list[tuple[str, dict[str, Any]]]:
    png = {"files": [("files", ("x.png", samples.png(), "image/png"))]}
    return [(f"/ui/cases/{case}/documents", {"data": {"material_type": "id_proof"}, **png}),
            (f"/ui/cases/{case}/documents/{doc_id}/type", {"data": {"material_type": "id_proof"}}),
            (f"/ui/cases/{case}/documents/{doc_id}/split",
             {"data": {"first_page": ["1", "2"], "last_page": ["1", "2"], "material_type": ["other", "other"]}}),
            (f"/ui/cases/{case}/documents/{doc_id}/remove", {"data": {"reason": "不要了"}}),
            (f"/ui/cases/{case}/documents/{doc_id}/replace",
             {"files": {"file": ("y.png", samples.png(), "image/png")}})]


def test_without_case_write_every_change_is_403_and_audited(ctx: Context, ui: Callable[..., UiClient],
                                                            case: str) -> None:
    send(ui("clerk01"), "application_form", ("扫描.pdf", samples.pdf(2)))
    (doc_id, _, _), = active(ctx)
    head = ui("head01", ["archive_head"], None)
    for path, body in _changes(case, doc_id):
        r = head.post(path, **body)
        assert r.status_code == 403 and "permission_denied" in text(r), path
        assert "张三" not in r.text
    denied = [e.target_id for e in events(ctx, "permission.denied", "refused")]
    assert len(denied) == 5 and all(t.startswith("POST /ui/cases/{serial}/documents") for t in denied)
    assert active(ctx) == [(doc_id, "application_form", 2)]


def test_an_auditor_sees_no_case(ctx: Context, ui: Callable[..., UiClient], case: str) -> None:
    auditor = ui("audit01", ["auditor"], None)
    for path in (f"/ui/cases/{case}", f"/ui/cases/{case}/cover-sheet.pdf"):
        r = auditor.get(path)
        assert r.status_code == 403 and case not in r.text.replace(path, "") and "张" not in r.text
    assert len(events(ctx, "permission.denied", "refused")) == 2


def test_another_branch_reads_as_an_unknown_serial(ctx: Context, ui: Callable[..., UiClient], case: str) -> None:
    send(ui("clerk01"), "id_proof", ("身份证.png", samples.png()))
    (doc_id, _, _), = active(ctx)
    other = ui("clerk02", ["clerk"], "BR02")
    same_id = {"X-Request-ID": "req-same"}  # the error page shows the request id; the rest must be identical
    mine = other.get(f"/ui/cases/{case}", headers=same_id)
    unknown = other.get("/ui/cases/YW2099010100009", headers=same_id)
    assert mine.status_code == unknown.status_code == 404
    assert mine.text == unknown.text.replace("YW2099010100009", case)  # the very same page: nothing leaks
    assert "张" not in mine.text and "提取" not in mine.text and "case_not_found" in text(mine)
    for path in (f"/ui/documents/{doc_id}/pages/1?w=200", f"/ui/documents/{doc_id}/view?page=1",
                 f"/ui/cases/{case}/cover-sheet.pdf"):
        r = other.get(path)
        assert r.status_code == 404 and "身份证" not in r.text, path
    for path, body in _changes(case, doc_id):
        r = other.post(path, **body)
        assert r.status_code == 404 and "case_not_found" in text(r), path
    assert len(active(ctx)) == 1 and len(events(ctx, "document.attach")) == 1
