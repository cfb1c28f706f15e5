"""Capture at acceptance: opening cases, attaching documents, checklist, cover sheet."""

from __future__ import annotations

from typing import Any

import pypdfium2 as pdfium
import pytest
import zxingcpp
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from archive.catalogue.models import AuditEvent, Document
from archive.context import Context
from tests import samples
from tests.factories import ID, case_body, upload
from tests.helpers import add_client, add_user, login


@pytest.fixture
def core(ctx: Context) -> dict[str, str]:
    """A business system allowed to open cases and read them, with personal data."""
    return add_client(ctx, "core", ["cases.write", "data.read", "pii.read"])


def events(ctx: Context, action: str) -> int:
    with ctx.catalogue.sessions() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)) or 0


def test_opening_a_case_is_idempotent_on_the_serial(ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given a case, when the same body comes again, then 200 and the same case; a different body is 409."""
    first = client.post("/api/v1/cases", json=case_body(), headers=core)
    assert first.status_code == 201, first.text
    assert first.json()["category"] == "TQ" and first.json()["applicant_id_number"] == ID
    again = client.post("/api/v1/cases", json=case_body(), headers=core)
    assert again.status_code == 200 and again.json()["serial"] == first.json()["serial"]
    other = client.post("/api/v1/cases", json=case_body(business_type="TQ03", branch="BR02"), headers=core)
    assert other.status_code == 409 and other.json()["code"] == "serial_conflict"
    assert set(other.json()["detail"]["fields"]) == {"business_type", "branch"}
    assert events(ctx, "case.open") == 1


@pytest.mark.parametrize(("over", "code", "field"), [
    ({"business_type": "XX99"}, "unknown_business_type", "business_type"),
    ({"applicant": {"name": "张三", "id_number": "110105194912310021"}}, "invalid_applicant.id_number",
     "applicant.id_number"),
    ({"applicant": None}, "missing_applicant", "applicant"),
    ({"business_type": "DK01"}, "missing_loan_contract_no", "loan_contract_no"),
    ({"serial": "a b"}, "invalid_serial", "serial"),
    ({"unit": {"name": "某公司", "uscc": "91350100M000100Y44"}}, "invalid_unit.uscc", "unit.uscc"),
    ({"accepted_at": "2026-01-05T09:30:00"}, "naive_datetime", "accepted_at"),
])
def test_bad_case_is_refused_naming_the_field(ctx: Context, client: TestClient, core: dict[str, str],
                                              over: dict[str, Any], code: str, field: str) -> None:
    """Given a case body with one bad field (unknown business type, invalid 证件号码, no applicant, a loan without
    contract number, a bad serial, an invalid USCC, a naive time), when it is sent, then 422 with that field's
    code and name, and no case.open event."""
    r = client.post("/api/v1/cases", json=case_body(**over), headers=core)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == code and r.json()["detail"]["field"] == field
    assert events(ctx, "case.open") == 0


def test_clerk_opens_cases_only_for_their_branch(ctx: Context, client: TestClient) -> None:
    """Given a clerk of BR01, when they open a case without branch and clerk, then both are taken from their account;
    when they open one for BR02, then 403 branch_not_allowed."""
    add_user(ctx, "clerk01", ["clerk"], "BR01")
    headers = login(client, "clerk01")
    body = case_body()
    del body["branch"], body["clerk"]
    r = client.post("/api/v1/cases", json=body, headers=headers)
    assert r.status_code == 201 and r.json()["branch"] == "BR01" and r.json()["clerk"] == "clerk01"
    r = client.post("/api/v1/cases", json=case_body(serial="YW2026010500002", branch="BR02"), headers=headers)
    assert r.status_code == 403 and r.json()["code"] == "branch_not_allowed"


def test_reading_without_permission_or_outside_branch(ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given an open case of BR01, when a system with images.read only reads it, then 403; when a system limited to
    BR02 reads it, then 404 case_not_found (its existence does not leak); a system without pii.read sees the name
    and 证件号码 masked."""
    client.post("/api/v1/cases", json=case_body(), headers=core)
    images_only = add_client(ctx, "viewer", ["images.read"])
    assert client.get("/api/v1/cases/YW2026010500001", headers=images_only).status_code == 403
    other_branch = add_client(ctx, "br2", ["data.read"], ["BR02"])
    r = client.get("/api/v1/cases/YW2026010500001", headers=other_branch)
    assert r.status_code == 404 and r.json()["code"] == "case_not_found"  # existence does not leak
    masked = client.get("/api/v1/cases/YW2026010500001", headers=add_client(ctx, "portal", ["data.read"])).json()
    assert masked["applicant_id_number"] == "110105********002X" and masked["applicant_name"] == "张*"


def test_good_files_of_every_format_are_stored_unchanged(ctx: Context, client: TestClient,
                                                         core: dict[str, str]) -> None:
    """Given an open case, when JPEG, PNG, 3-page TIFF, 4-page PDF and OFD files are uploaded, then each is accepted
    with its media type and page count, stored byte for byte as sent, and audited as document.attach."""
    client.post("/api/v1/cases", json=case_body(), headers=core)
    files = [("申请表.jpg", samples.jpeg(), "application_form"), ("身份证.png", samples.png(), "id_proof"),
             ("婚姻证明.tif", samples.tiff(3), "marriage_proof"), ("购房合同.pdf", samples.pdf(4), "house_contract"),
             ("回执.ofd", samples.ofd(), "business_voucher")]
    r = upload(client, core, "YW2026010500001", *files)
    assert r.status_code == 201, r.text
    results = r.json()["results"]
    assert [x["document"]["media_type"] for x in results] == ["image/jpeg", "image/png", "image/tiff",
                                                            "application/pdf", "application/ofd"]
    assert [x["document"]["page_count"] for x in results] == [1, 1, 3, 4, 2]
    for (_, data, _), result in zip(files, results, strict=True):
        with ctx.catalogue.sessions() as s:
            doc = s.get(Document, result["document"]["id"])
            assert doc is not None
            assert ctx.store.get(doc.original_key).read() == data  # the original, byte for byte
    assert events(ctx, "document.attach") == 5


def test_same_file_twice_is_one_document(ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given a file already attached, when the same bytes are uploaded again under another name, then 201 marked
    duplicate and the case still has one document."""
    client.post("/api/v1/cases", json=case_body(), headers=core)
    data = samples.jpeg()
    upload(client, core, "YW2026010500001", ("a.jpg", data, "application_form"))
    r = upload(client, core, "YW2026010500001", ("a-again.jpg", data, "application_form"))
    assert r.status_code == 201 and r.json()["results"][0]["duplicate"] is True
    assert len(client.get("/api/v1/cases/YW2026010500001", headers=core).json()["documents"]) == 1


@pytest.mark.parametrize(("name", "make", "code"), [
    ("empty.jpg", lambda: b"", "file_empty"),
    ("truncated.jpg", lambda: samples.jpeg()[:30000], "image_truncated"),
    ("encrypted.pdf", samples.encrypted_pdf, "pdf_encrypted"),
    ("script.pdf", samples.javascript_pdf, "pdf_has_javascript"),
    ("attachment.pdf", samples.embedded_file_pdf, "pdf_has_embedded_files"),
    ("bomb.png", samples.png_bomb, "image_too_many_pixels"),
    ("low-dpi.jpg", lambda: samples.jpeg(dpi=150, size=(1240, 1754)), "scan_resolution_too_low"),
    ("notes.jpg", lambda: "这不是图片".encode(), "unsupported_format"),
    ("fake.ofd", lambda: b"PK\x03\x04broken zip", "ofd_corrupt"),
])
def test_each_bad_file_is_refused_with_its_own_code(ctx: Context, client: TestClient, core: dict[str, str],
                                                    name: str, make: Any, code: str) -> None:
    """Given a hostile or broken file, then 422 with its code, nothing stored, and the server keeps serving."""
    client.post("/api/v1/cases", json=case_body(), headers=core)
    r = upload(client, core, "YW2026010500001", (name, make(), "application_form"))
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "documents_refused"
    result = r.json()["detail"]["results"][0]
    assert result["code"] == code and result["message"]
    assert list(ctx.store.list_keys("originals/")) == []
    assert client.get("/healthz").status_code == 200


def test_low_resolution_only_warns_when_configured(ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given the dpi policy set to warn, when a 150 dpi scan is uploaded, then it is accepted with a warning naming
    150 dpi."""
    ctx.settings.dpi_policy = "warn"
    client.post("/api/v1/cases", json=case_body(), headers=core)
    r = upload(client, core, "YW2026010500001", ("low.jpg", samples.jpeg(dpi=150, size=(1240, 1754)),
                                                 "application_form"))
    assert r.status_code == 201 and "150 dpi" in r.json()["results"][0]["document"]["warnings"][0]


def test_wrong_extension_is_judged_by_content(ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given an open case, when a PNG named scan.pdf is uploaded, then it is stored as image/png: the content
    decides, not the name."""
    client.post("/api/v1/cases", json=case_body(), headers=core)
    r = upload(client, core, "YW2026010500001", ("scan.pdf", samples.png(), "application_form"))
    assert r.status_code == 201 and r.json()["results"][0]["document"]["media_type"] == "image/png"


def test_mixed_batch_keeps_the_good_files(ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given an open case, when a good JPEG, an encrypted PDF and a material the business type does not take are
    uploaded together, then 207: the JPEG is kept, the others are refused with pdf_encrypted and
    material_not_for_business_type."""
    client.post("/api/v1/cases", json=case_body(), headers=core)
    r = upload(client, core, "YW2026010500001", ("ok.jpg", samples.jpeg(), "application_form"),
               ("bad.pdf", samples.encrypted_pdf(), "id_proof"), ("x.jpg", samples.jpeg(text="x"), "bank_statement"))
    assert r.status_code == 207
    assert [(x["accepted"], x["code"]) for x in r.json()["results"]] == [
        (True, None), (False, "pdf_encrypted"), (False, "material_not_for_business_type")]
    assert len(client.get("/api/v1/cases/YW2026010500001", headers=core).json()["documents"]) == 1


def test_upload_limits(ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given an upload limit of 1 MB, when a larger file is uploaded, then 413 file_too_large; a file without its
    material type is 422 and an upload to an unknown case is 404 case_not_found."""
    client.post("/api/v1/cases", json=case_body(), headers=core)
    ctx.settings.max_upload_mb = 1
    big = samples.jpeg(size=(2480, 3508), quality=98) + b"\0" * (1024 * 1024)
    r = upload(client, core, "YW2026010500001", ("big.jpg", big, "application_form"))
    assert r.status_code == 413 and r.json()["detail"]["results"][0]["code"] == "file_too_large"
    r = client.post("/api/v1/cases/YW2026010500001/documents", headers=core,
                    files=[("files", ("a.jpg", samples.jpeg(), "image/jpeg"))], data={"material_type": []})
    assert r.status_code == 422
    r = upload(client, core, "NOPE000001", ("a.jpg", samples.jpeg(), "application_form"))
    assert r.status_code == 404 and r.json()["code"] == "case_not_found"


def test_checklist_follows_the_documents(ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given a TQ01 case with no documents, when its checklist is read, then all four materials are missing; after
    the form and the 身份证明 are uploaded, then only the other two are, and the present line names its document."""
    client.post("/api/v1/cases", json=case_body(), headers=core)
    before = client.get("/api/v1/cases/YW2026010500001/checklist", headers=core).json()
    assert before["complete"] is False
    assert before["missing"] == ["application_form", "id_proof", "marriage_proof", "house_contract"]
    upload(client, core, "YW2026010500001", ("a.jpg", samples.jpeg(), "application_form"),
           ("b.png", samples.png(), "id_proof"))
    after = client.get("/api/v1/cases/YW2026010500001/checklist", headers=core).json()
    assert after["missing"] == ["marriage_proof", "house_contract"]
    line = next(m for m in after["materials"] if m["material_type"] == "id_proof")
    assert line["present"] and line["name"] == "身份证明" and len(line["documents"]) == 1


def test_remove_and_replace_while_open_are_audited(ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given a document on an open case, when it is replaced and the replacement removed with a reason, then each is
    audited, the case lists no document and both rows are kept as replaced and removed (nothing deleted); removing
    the replaced one again is 404."""
    client.post("/api/v1/cases", json=case_body(), headers=core)
    doc = upload(client, core, "YW2026010500001", ("a.jpg", samples.jpeg(), "application_form")).json()
    doc_id = doc["results"][0]["document"]["id"]
    r = client.put(f"/api/v1/cases/YW2026010500001/documents/{doc_id}", headers=core,
                   files={"file": ("a2.jpg", samples.jpeg(text="v2"), "image/jpeg")})
    assert r.status_code == 200 and r.json()["sequence"] == 1 and r.json()["id"] != doc_id
    new_id = r.json()["id"]
    r = client.post(f"/api/v1/cases/YW2026010500001/documents/{new_id}/remove", json={"reason": "误传"},
                    headers=core)
    assert r.status_code == 204
    assert client.get("/api/v1/cases/YW2026010500001", headers=core).json()["documents"] == []
    assert events(ctx, "document.replace") == 1 and events(ctx, "document.remove") == 1
    with ctx.catalogue.sessions() as s:
        statuses = sorted(d.status for d in s.scalars(select(Document)))
    assert statuses == ["removed", "replaced"]  # nothing deleted
    r = client.post(f"/api/v1/cases/YW2026010500001/documents/{doc_id}/remove", json={"reason": "再撤一次"},
                    headers=core)
    assert r.status_code == 404


def test_cover_sheet_carries_the_serial_as_code128_and_qr(ctx: Context, client: TestClient,
                                                          core: dict[str, str]) -> None:
    """Given an open case, when its cover sheet is fetched, then it is an A4 PDF whose Code 128 and QR codes both
    read back as the serial, naming the business type with the applicant masked and no 证件号码."""
    client.post("/api/v1/cases", json=case_body(), headers=core)
    r = client.get("/api/v1/cases/YW2026010500001/cover-sheet.pdf", headers=core)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    doc = pdfium.PdfDocument(r.content)
    page = doc[0]
    assert round(page.get_width()) == 595 and round(page.get_height()) == 842  # A4
    image = page.render(scale=200 / 72).to_pil()
    found = {(b.format, b.text) for b in zxingcpp.read_barcodes(image)}
    assert (zxingcpp.BarcodeFormat.Code128, "YW2026010500001") in found
    assert (zxingcpp.BarcodeFormat.QRCode, "YW2026010500001") in found
    text = page.get_textpage().get_text_range()
    doc.close()
    assert "购买自住住房提取" in text and "张*" in text and "11010519491231002X" not in text
