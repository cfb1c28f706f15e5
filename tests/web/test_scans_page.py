"""扫描室: upload a stack, its progress and parts, the unassigned queue with thumbnails, assigning by serial."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select, update

from archive import images
from archive.catalogue.models import AuditEvent, Document, ScanBatch, ScanPart
from archive.context import Context
from tests import samples
from tests.factories import case_body
from tests.helpers import add_client, login
from tests.web.html import UiClient, soup, text

A, B = "YW2026010500001", "YW2026010500002"
UNKNOWN = "YW2099123199999"


@pytest.fixture
def core(ctx: Context, client: TestClient) -> dict[str, str]:
    """Case A of BR01 and case B of BR02, both 购买自住住房提取 (TQ01)."""
    headers = add_client(ctx, "core", ["cases.write", "data.read"])
    assert client.post("/api/v1/cases", json=case_body(serial=A), headers=headers).status_code == 201
    r = client.post("/api/v1/cases", json=case_body(serial=B, branch="BR02", clerk="clerk02"), headers=headers)
    assert r.status_code == 201, r.text
    return headers


def the_stack(client: TestClient, core: dict[str, str]) -> bytes:
    """loose page | cover A | 1 page | separator A 身份证明 | 1 page | cover of an unknown serial | 1 page"""
    r = client.get(f"/api/v1/cases/{A}/separator-sheets.pdf", headers=core, params={"material_type": "id_proof"})
    [separator] = samples.pdf_pages(r.content)
    page = samples.page_image
    return samples.stack_pdf([page("loose"), samples.cover_image(A), page("a1"), separator, page("id1"),
                              samples.cover_image(UNKNOWN), page("x1")])


def upload(person: UiClient, data: bytes, name: str = "stack.pdf") -> Any:
    """As the page's form sends it: multipart, the CSRF token as a field."""
    return person.client.post("/ui/scans", files={"file": (name, data, "application/pdf")},
                              data={"csrf_token": person.csrf}, follow_redirects=False)


def scanned(person: UiClient, client: TestClient, core: dict[str, str]) -> int:
    r = upload(person, the_stack(client, core))
    assert r.status_code == 303, r.text
    return int(r.headers["location"].rsplit("/", 1)[1])


def waiting_ids(ctx: Context) -> list[int]:
    with ctx.catalogue.reading() as s:
        return list(s.scalars(select(ScanPart.id).where(ScanPart.status == "unassigned").order_by(ScanPart.id)))


def count(ctx: Context, model: Any) -> int:
    with ctx.catalogue.reading() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def actions(ctx: Context, action: str) -> list[tuple[str, str]]:
    with ctx.catalogue.reading() as s:
        return [tuple(r) for r in s.execute(select(AuditEvent.actor, AuditEvent.target_id)
                                            .where(AuditEvent.action == action).order_by(AuditEvent.seq))]


def test_upload_leads_to_the_batch_with_its_sheets_and_parts(ctx: Context, client: TestClient,
                                                             core: dict[str, str], ui: Callable[..., UiClient]) -> None:
    """Given the scan room, Then it offers a labelled file input in a drop zone; When a stack is uploaded, Then 303
    to its batch page: done, 7 of 7 pages, the cover and the separator found, A's two parts attached (other, 身份证明)
    and the loose and unknown pages waiting with their reasons in Chinese; the batch is listed in the scan room."""
    clerk = ui("clerk01")
    room = soup(clerk.get("/ui/scans"))
    zone = room.select_one("form.dropzone")
    assert zone is not None and zone.find("input", attrs={"type": "file", "id": "scan-file"}) is not None
    assert room.find("label", attrs={"for": "scan-file"}) is not None
    batch_id = scanned(clerk, client, core)
    r = clerk.get(f"/ui/scans/{batch_id}")
    assert r.status_code == 200
    page = soup(r)
    bar = page.find("progress")
    assert (bar["value"], bar["max"]) == ("7", "7") and "已完成" in text(r)
    assert not page.select_one(".batch").has_attr("hx-trigger")  # done: nothing to poll
    sheets = [[td.get_text(strip=True) for td in tr.find_all("td")] for tr in page.select("#sheets-h ~ table tbody tr")]
    assert sheets == [["2", "扫描封面", A, ""], ["4", "材料分隔页", A, "身份证明"], ["6", "扫描封面", UNKNOWN, ""]]
    parts = [" ".join(tr.get_text(" ", strip=True).split()) for tr in page.select("#parts-h ~ div tbody tr")]
    assert parts[0].startswith("1 1 待分配 第一张扫描封面之前的页")
    assert parts[1] == f"3 1 {A} 其他材料" and parts[2] == f"5 1 {A} 身份证明"
    assert parts[3].startswith(f"7 1 待分配 条码对应的业务不存在（条码 {UNKNOWN}")
    listed = soup(clerk.get("/ui/scans")).find("a", href=f"/ui/scans/{batch_id}")
    assert listed is not None
    assert actions(ctx, "scan.receive") == [("clerk01", str(batch_id))]


def test_progress_is_polled_while_the_batch_runs_and_a_failure_shows_its_code(
        ctx: Context, client: TestClient, core: dict[str, str], ui: Callable[..., UiClient]) -> None:
    """Given a batch still running, Then its fragment polls every second and shows no parts yet; done, it carries
    no trigger (polling stops); failed, it shows the error's Chinese message and code."""
    clerk = ui("clerk01")
    batch_id = scanned(clerk, client, core)
    with ctx.catalogue.session() as s:
        s.execute(update(ScanBatch).values(status="running", pages_done=3))
    running = soup(clerk.get(f"/ui/scans/{batch_id}/progress", headers={"HX-Request": "true"}))
    root = running.select_one(".batch")
    assert root["hx-trigger"] == "every 1s" and root["hx-get"] == f"/ui/scans/{batch_id}/progress"
    assert running.find("progress")["value"] == "3" and running.find(id="parts-h") is None
    with ctx.catalogue.session() as s:
        s.execute(update(ScanBatch).values(status="done", pages_done=7))
    assert not soup(clerk.get(f"/ui/scans/{batch_id}/progress")).select_one(".batch").has_attr("hx-trigger")
    with ctx.catalogue.session() as s:
        s.execute(update(ScanBatch).values(status="failed", error={
            "code": "scan_page_too_large", "message": "第 3 页图像过大", "detail": {"page": 3}}))
    r = clerk.get(f"/ui/scans/{batch_id}")
    assert "第 3 页图像过大" in text(r) and "scan_page_too_large" in text(r) and "处理失败" in text(r)


def test_unassigned_queue_shows_thumbnails_and_assigns_by_serial_and_material(
        ctx: Context, client: TestClient, core: dict[str, str], ui: Callable[..., UiClient]) -> None:
    """Given the two waiting parts, Then the queue shows each with a thumbnail of its page (a 200 px JPEG, cached
    in the store) and a form; the serial loads A's materials as options; When the loose page is put into A as
    身份证明, Then the row says 已归入 A · 身份证明 and document.attach and scan.assign are on record as the clerk's."""
    images.memory_cache.clear()  # process-wide: another test may have rendered the same stack
    clerk = ui("clerk01")
    batch_id = scanned(clerk, client, core)
    r = clerk.get("/ui/scans/unassigned")
    assert r.status_code == 200 and "待分配 2" in text(r)
    page = soup(r)
    loose, unknown = waiting_ids(ctx)
    imgs = [img["src"] for img in page.select(f"#part-{loose} img")]
    assert imgs == [f"/ui/scans/{batch_id}/pages/1?w=200"]
    assert page.find("label", attrs={"for": f"serial-{loose}"}) is not None
    assert page.find(id=f"serial-{unknown}")["value"] == UNKNOWN  # the barcode as read, for the clerk to correct
    image = clerk.get(imgs[0])
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(image.content)).width == 200
    with ctx.catalogue.reading() as s:
        sha = s.scalar(select(ScanBatch.sha256))
    assert list(ctx.store.list_keys(f"thumbnails/{sha}/")) == [f"thumbnails/{sha}/1-200.jpeg"]
    assert clerk.get(imgs[0]).content == image.content

    options = soup(clerk.get(f"/ui/scans/materials?part={loose}&serial={A}", headers={"HX-Request": "true"}))
    assert options.find("label", attrs={"for": f"material-{loose}"}) is not None
    offered = [(o["value"], o.get_text(strip=True)) for o in options.find_all("option")]
    assert ("id_proof", "身份证明（必备）") in offered and ("other", "其他材料") in offered
    r = clerk.post(f"/ui/scans/parts/{loose}/assign", data={"serial": A, "material_type": "id_proof"})
    assert r.status_code == 200, r.text
    assert f"已归入 {A} · 身份证明" in text(r) and soup(r).find("form") is None
    assert actions(ctx, "scan.assign") == [("clerk01", A)]
    assert ("clerk01", A) in actions(ctx, "document.attach")
    assert waiting_ids(ctx) == [unknown]


def test_bad_assignments_are_refused_beside_the_part(ctx: Context, client: TestClient, core: dict[str, str],
                                                     ui: Callable[..., UiClient]) -> None:
    """Given a waiting part, When the serial is empty, unknown, or of another branch, or the material is not A's,
    Then the materials lookup and the assignment answer 4xx with the Chinese message and code in the part's row,
    and the part still waits with nothing attached."""
    clerk = ui("clerk01")
    scanned(clerk, client, core)
    loose, _ = waiting_ids(ctx)
    for serial in (UNKNOWN, B):
        found = clerk.get(f"/ui/scans/materials?part={loose}&serial={serial}", headers={"HX-Request": "true"})
        assert found.status_code == 404 and f"业务流水号 {serial} 不存在" in text(found)
        assert "case_not_found" in text(found) and soup(found).find("select") is None
    cases = [({"serial": "", "material_type": "other"}, 422, "serial_missing"),
             ({"serial": UNKNOWN, "material_type": "other"}, 404, "case_not_found"),
             ({"serial": B, "material_type": "other"}, 404, "case_not_found"),
             ({"serial": A, "material_type": "lease_contract"}, 422, "material_not_for_business_type")]
    documents = count(ctx, Document)
    for data, status, code in cases:
        r = clerk.post(f"/ui/scans/parts/{loose}/assign", data=data)
        assert r.status_code == status and code in text(r), (data, r.text)
        row = soup(r).find(id=f"part-{loose}")
        assert row is not None and row.find("form") is not None and row.select_one("[role=alert]") is not None
    assert waiting_ids(ctx)[0] == loose and count(ctx, Document) == documents
    assert actions(ctx, "scan.assign") == []


def test_another_branch_sees_neither_the_batch_nor_its_waiting_parts(
        ctx: Context, client: TestClient, core: dict[str, str], ui: Callable[..., UiClient]) -> None:
    """Given clerk01's batch (BR01), Then clerk02 (BR02) finds no batch in her scan room, 404 on its page, progress,
    page images and parts, an empty queue, and the API answers her the same; no page image or serial leaks."""
    batch_id = scanned(ui("clerk01"), client, core)
    other = ui("clerk02", ["clerk"], "BR02")
    room = other.get("/ui/scans")
    assert room.status_code == 200 and soup(room).find("a", href=f"/ui/scans/{batch_id}") is None
    for path in (f"/ui/scans/{batch_id}", f"/ui/scans/{batch_id}/progress", f"/ui/scans/{batch_id}/pages/1?w=200"):
        r = other.get(path)
        assert r.status_code == 404 and "scan_batch_not_found" in text(r) and A not in r.text, path
    queue = other.get("/ui/scans/unassigned")
    assert "待分配 0" in text(queue) and "<img" not in queue.text and UNKNOWN not in queue.text
    loose, _ = waiting_ids(ctx)
    r = other.post(f"/ui/scans/parts/{loose}/assign", data={"serial": B, "material_type": "other"})
    assert r.status_code == 404 and "scan_part_not_found" in text(r) and r.headers["HX-Retarget"] == "#flash"
    api = login(client, "clerk02")
    assert client.get(f"/api/v1/scans/{batch_id}", headers=api).status_code == 404
    assert client.get("/api/v1/scans/unassigned", headers=api).json() == []
    assert waiting_ids(ctx)[0] == loose


@pytest.mark.parametrize(("data", "status", "code"), [
    (lambda: samples.pdf(3)[:200], 422, "scan_unreadable"),
    (samples.javascript_pdf, 422, None),
    (samples.jpeg, 422, "scan_format_unsupported"),
    (lambda: b"", 422, "file_empty"),
])
def test_a_damaged_or_hostile_stack_is_refused_on_the_scan_page(
        ctx: Context, client: TestClient, core: dict[str, str], ui: Callable[..., UiClient], data: Any,
        status: int, code: str | None) -> None:
    """Given a truncated PDF, a PDF with JavaScript, a JPEG or an empty file, Then the scan room answers 4xx with
    the domain's Chinese message and code beside the upload form, and no batch, stored stack or event is left."""
    r = upload(ui("clerk01"), data())
    assert r.status_code == status, r.text
    alert = soup(r).select_one(".upload-zone").find_previous_sibling("div", class_="alert")
    assert alert is not None and alert.find("small", class_="code") is not None
    if code:
        assert alert.find("small", class_="code").get_text() == code
    assert count(ctx, ScanBatch) == 0 and actions(ctx, "scan.receive") == []
    assert [p for p in (ctx.settings.objects_path / "originals").rglob("*") if p.is_file()] == []


def test_upload_without_a_file_is_refused_in_chinese(ctx: Context, ui: Callable[..., UiClient]) -> None:
    """Given the upload form sent without a file, Then 422 scan_file_missing asks to choose one."""
    clerk = ui("clerk01")
    r = clerk.client.post("/ui/scans", data={"csrf_token": clerk.csrf}, files={"other": ("x", b"x")})
    assert r.status_code == 422 and "scan_file_missing" in text(r) and "请选择" in text(r)


def test_permissions_and_csrf_of_the_scan_room(ctx: Context, client: TestClient, core: dict[str, str],
                                               ui: Callable[..., UiClient]) -> None:
    """Given an auditor, Then every scan room page and action is 403 (audited) without batch data; Given a clerk
    without the CSRF token, Then upload and assignment are 403 and nothing changes."""
    clerk = ui("clerk01")
    batch_id = scanned(clerk, client, core)
    loose, _ = waiting_ids(ctx)
    auditor = ui("audit01", ["auditor"], None)
    for r in (auditor.get("/ui/scans"), auditor.get("/ui/scans/unassigned"), auditor.get(f"/ui/scans/{batch_id}"),
              auditor.get(f"/ui/scans/{batch_id}/pages/1"), auditor.get(f"/ui/scans/materials?part=1&serial={A}"),
              upload(auditor, samples.pdf(1)),
              auditor.post(f"/ui/scans/parts/{loose}/assign", data={"serial": A, "material_type": "other"})):
        assert r.status_code == 403 and "permission_denied" in text(r) and A not in r.text and "<img" not in r.text
    assert len(actions(ctx, "permission.denied")) == 7
    r = clerk.client.post("/ui/scans", files={"file": ("s.pdf", samples.pdf(1), "application/pdf")})
    assert r.status_code == 403 and "csrf_failed" in text(r)
    r = clerk.client.post(f"/ui/scans/parts/{loose}/assign", data={"serial": A, "material_type": "other"},
                          headers={"HX-Request": "true"})
    assert r.status_code == 403 and "csrf_failed" in text(r)
    assert count(ctx, ScanBatch) == 1 and waiting_ids(ctx)[0] == loose and actions(ctx, "scan.assign") == []


def test_scan_pages_carry_no_inline_script_style_or_handlers(ctx: Context, client: TestClient, core: dict[str, str],
                                                             ui: Callable[..., UiClient]) -> None:
    """Given the scan room's pages and fragments, Then none has an inline script, a style= or an on…= attribute
    (the Content-Security-Policy would block them), and every input has its label."""
    clerk = ui("clerk01")
    batch_id = scanned(clerk, client, core)
    loose, _ = waiting_ids(ctx)
    for path in ("/ui/scans", f"/ui/scans/{batch_id}", f"/ui/scans/{batch_id}/progress", "/ui/scans/unassigned",
                 f"/ui/scans/materials?part={loose}&serial={A}"):
        page = soup(clerk.get(path))
        assert all(tag.get("src") for tag in page.find_all("script")), path
        assert not page.find_all(style=True), path
        assert not [t for t in page.find_all(True) if any(a.startswith("on") for a in t.attrs)], path
        for field in page.find_all(["input", "select", "textarea"]):
            if field.get("type") not in ("hidden", "search") and field.get("id"):
                assert page.find("label", attrs={"for": field["id"]}) is not None, (path, field["id"])
