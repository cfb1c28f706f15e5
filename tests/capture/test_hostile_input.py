"""Hostile and malformed uploads (issue 12): refused at the counter with a code and a Chinese message, nothing
stored, the server still up; and what the counter accepts, filing accepts."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from archive.capture.sniff import OFD
from archive.checks import gd
from archive.context import Context
from signing.errors import RenditionFailed
from signing.rendition import SourceDocument, build_rendition
from tests import samples
from tests.capture.test_cases import events
from tests.factories import case_body, upload
from tests.signing.support import metadata

SERIAL = "YW2026010500001"
HAN = re.compile(r"[\u4e00-\u9fff]")
LIBRARY_TEXT = re.compile(r"object at 0x|BytesIO|Traceback|Error:|qpdf|unable to|trailer", re.IGNORECASE)


@pytest.fixture
def core(ctx: Context, client: TestClient) -> dict[str, str]:
    from tests.helpers import add_client

    headers = add_client(ctx, "core", ["cases.write", "data.read", "pii.read"])
    assert client.post("/api/v1/cases", json=case_body(), headers=headers).status_code == 201
    return headers


def raw_upload(client: TestClient, headers: dict[str, str], name: str, data: bytes) -> Any:
    """A multipart body written by hand, so the file name reaches the server byte for byte (HTTP clients
    percent-escape control characters in names)."""
    boundary = "hostile-boundary-7f3a"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="material_type"\r\n\r\napplication_form\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return client.post(f"/api/v1/cases/{SERIAL}/documents", content=body,
                       headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"})


def refused(ctx: Context, client: TestClient, headers: dict[str, str], name: str, data: bytes) -> dict[str, Any]:
    """Upload one file; assert it is refused with nothing stored and the server up; return its result."""
    r = raw_upload(client, headers, name, data)
    assert r.status_code == 422, r.text
    result: dict[str, Any] = r.json()["detail"]["results"][0]
    assert not result["accepted"] and HAN.search(result["message"]), result
    assert not LIBRARY_TEXT.search(result["message"]), result["message"]
    assert list(ctx.store.list_keys("originals/")) == []
    assert events(ctx, "document.attach") == 0
    assert client.get("/healthz").status_code == 200
    return result


HOSTILE: list[tuple[str, Callable[[], bytes], str]] = [
    ("launch.pdf", lambda: samples.pdf_with_action("launch"), "pdf_has_launch_action"),
    ("submit.pdf", lambda: samples.pdf_with_action("submit"), "pdf_has_submit_form"),
    ("gotor.pdf", lambda: samples.pdf_with_action("gotor"), "pdf_has_external_link"),
    ("file-link.pdf", lambda: samples.pdf_with_action("file-uri"), "pdf_has_external_link"),
    ("xfa.pdf", lambda: samples.pdf_with_action("xfa"), "pdf_has_xfa"),
    ("richmedia.pdf", lambda: samples.pdf_with_action("richmedia"), "pdf_has_richmedia"),
    ("model.pdf", lambda: samples.pdf_with_action("3d"), "pdf_has_3d"),
    ("page-action.pdf", samples.pdf_with_page_action, "rendition_not_pdfa"),
    ("broken-xref.pdf", samples.broken_xref_pdf, "pdf_damaged"),
    ("page.pdf", samples.html_polyglot_pdf, "file_polyglot"),
    ("photo.jpg", samples.jpeg_with_zip, "file_polyglot"),
    ("scan.png", samples.png_with_trailer, "file_polyglot"),
    ("cut.jpg", samples.jpeg_without_eoi, "image_truncated"),
    ("cut.png", samples.png_without_iend, "image_truncated"),
    ("many.pdf", lambda: samples.pdf_with_many_pages(20_000), "document_too_many_pages"),
    ("many.tif", lambda: samples.tiff_pages(5_000), "document_too_many_pages"),
    ("many.png", lambda: samples.apng(3_000), "document_too_many_pages"),
    ("many.ofd", lambda: samples.ofd(600), "document_too_many_pages"),
    ("dotdot.ofd", lambda: samples.ofd(extra={"Doc_0/../../../etc/cron.d/x": "<a/>"}), "ofd_unsafe_entry"),
    ("absolute.ofd", lambda: samples.ofd(extra={"/etc/passwd": "x"}), "ofd_unsafe_entry"),
    ("symlink.ofd", samples.ofd_with_symlink, "ofd_unsafe_entry"),
    ("xxe.ofd", lambda: samples.ofd(ofd_xml=samples.XXE), "ofd_xml_unsafe"),
    ("laughs.ofd", lambda: samples.ofd(ofd_xml=samples.LAUGHS), "ofd_xml_unsafe"),
    ("encrypted.ofd", samples.ofd_encrypted, "ofd_encrypted"),
    ("corrupt.pdf", lambda: b"%PDF-1.7\nthis is not a pdf", "pdf_unreadable"),
]


@pytest.mark.parametrize(("name", "make", "code"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_file_is_refused_with_its_own_code(ctx: Context, client: TestClient, core: dict[str, str],
                                                  name: str, make: Callable[[], bytes], code: str) -> None:
    """Given an open case, When a hostile or malformed file is uploaded,
    Then 422 with the file's own code and a Chinese message naming the file (no library text), nothing is
    stored or audited, and the server keeps serving."""
    result = refused(ctx, client, core, name, make())
    assert result["code"] == code
    assert name in result["message"]


def test_a_plain_web_link_is_not_active_content(ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given a PDF whose only action is an ordinary /URI link, When uploaded, Then it is accepted."""
    r = upload(client, core, SERIAL, ("link.pdf", samples.pdf_with_action("uri"), "application_form"))
    assert r.status_code == 201, r.text


def test_every_family_found_is_named(ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given a PDF with a Launch action and JavaScript, When uploaded, Then the first family is the code and
    the detail lists both."""
    import io

    import pikepdf

    doc = pikepdf.open(io.BytesIO(samples.pdf_with_action("launch")))
    doc.pages[0].obj.AA = pikepdf.Dictionary(C=pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("1")))
    buf = io.BytesIO()
    doc.save(buf)
    r = upload(client, core, SERIAL, ("both.pdf", buf.getvalue(), "application_form"))
    assert r.status_code == 422
    assert r.json()["detail"]["results"][0]["code"] == "pdf_has_javascript"
    assert "Launch" in r.json()["detail"]["results"][0]["message"]


def test_page_cap_follows_the_setting(ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given ARCHIVE_MAX_PAGES=3, When a 4-page PDF and a 3-page TIFF are uploaded,
    Then the PDF is refused naming both numbers and the TIFF is accepted."""
    ctx.settings.max_pages = 3
    r = upload(client, core, SERIAL, ("four.pdf", samples.pdf(4), "application_form"),
               ("three.tif", samples.tiff(3), "id_proof"))
    assert r.status_code == 207, r.text
    bad, good = r.json()["results"]
    assert bad["code"] == "document_too_many_pages" and "4 页" in bad["message"] and "3 页" in bad["message"]
    assert good["accepted"] and good["document"]["page_count"] == 3


def test_what_fails_the_rendition_is_refused_at_upload_by_the_same_check() -> None:
    """Given a PDF whose page action breaks PDF/A, When filing builds the rendition, Then it fails with the code
    the counter refuses it with (rendition_not_pdfa): the counter runs filing's own conversion."""
    with pytest.raises(RenditionFailed) as err:
        build_rendition([SourceDocument("页面动作", "application/pdf", data=samples.pdf_with_page_action())],
                        metadata())
    assert err.value.code == "rendition_not_pdfa"


def test_an_encrypted_ofd_fails_gd_3_4_with_the_upload_check() -> None:
    """Given an OFD with an encrypted entry, When GD-3-4's readability check runs, Then it fails with the
    message the counter gives (the same defensive container check)."""
    problem = gd._unreadable(samples.ofd_encrypted(), OFD, "回执.ofd")
    assert problem is not None and "加密" in problem and "回执.ofd" in problem
    assert gd._unreadable(samples.ofd(), OFD, "回执.ofd") is None


@pytest.mark.parametrize("name", ["申请表\x00.jpg", "发票\u202egpj.exe", "申请\n表.jpg", "a\x1b[31m.jpg",
                                  "b\u2066.jpg"], ids=["nul", "rtl-override", "newline", "escape", "bidi-isolate"])
def test_file_names_with_control_characters_are_refused(ctx: Context, client: TestClient, core: dict[str, str],
                                                        name: str) -> None:
    """Given a file name with a NUL, a right-to-left override or another control character, When uploaded,
    Then 422 file_name_invalid on every database (no 500 from PostgreSQL), and the answer echoes no control
    character."""
    result = refused(ctx, client, core, name, samples.jpeg())
    assert result["code"] == "file_name_invalid"
    assert not any(ord(c) < 32 or 0x202A <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069
                   for c in result["filename"] + result["message"])


def test_an_ordinary_name_is_kept_and_served_back(ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given a name with a path and decomposed Unicode, When uploaded, Then the last segment is stored in NFC."""
    r = upload(client, core, SERIAL, ("C:\\扫描\\Cafe\u0301 申请表.jpg", samples.jpeg(), "application_form"))
    assert r.status_code == 201, r.text
    assert r.json()["results"][0]["document"]["filename"] == "Caf\u00e9 申请表.jpg"


def test_corrupt_pdf_message_has_no_library_text(ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given bytes that start like a PDF but are not one, When uploaded, Then the message names the file in
    Chinese; qpdf's text (without Python reprs) is only in the log."""
    data = b"%PDF-1.4\n" + b"garbage " * 100
    result = refused(ctx, client, core, "合同.pdf", data)
    assert result["code"] == "pdf_unreadable" and "合同.pdf" in result["message"]


def test_a_scan_stack_with_active_content_is_refused(ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given a batch-scan PDF with a Launch action, or a scan file name with a right-to-left override,
    When uploaded to /scans, Then 422 with the same codes as a single upload and nothing stored."""
    r = client.post("/api/v1/scans", headers=core,
                    files={"file": ("stack.pdf", samples.pdf_with_action("launch"), "application/pdf")})
    assert r.status_code == 422 and r.json()["code"] == "pdf_has_launch_action", r.text
    r = client.post("/api/v1/scans", headers=core,
                    files={"file": ("stack\u202efdp.exe", samples.pdf(2), "application/pdf")})
    assert r.status_code == 422 and r.json()["code"] == "file_name_invalid", r.text
    assert list(ctx.store.list_keys("originals/")) == []


def test_a_scan_part_over_the_page_cap_waits_for_a_clerk(ctx: Context, client: TestClient,
                                                        core: dict[str, str]) -> None:
    """Given ARCHIVE_MAX_PAGES=1 and a stack whose part for the case has 2 pages, When processed,
    Then that part stays unassigned with reason document_too_many_pages and the batch still finishes."""
    ctx.settings.max_pages = 1
    stack = [samples.cover_image(SERIAL), samples.page_image("a1"), samples.page_image("a2")]
    r = client.post("/api/v1/scans", headers=core,
                    files={"file": ("stack.pdf", samples.stack_pdf(stack), "application/pdf")})
    assert r.status_code == 202, r.text
    batch = client.get(f"/api/v1/scans/{r.json()['id']}", headers=core).json()
    assert batch["status"] == "done"
    assert [(p["status"], p["reason"]) for p in batch["parts"]] == [("unassigned", "document_too_many_pages")]


def test_ordinary_jpeg_variants_pass_the_structure_check() -> None:
    """Given a camera's multi-picture JPEG (MPO), a progressive JPEG and a JPEG padded with NULs,
    When their structure is checked, Then none is taken for a polyglot or a truncated file."""
    import io

    from archive.capture.inspect import check_structure

    first, second = samples.page_image("a").convert("RGB"), samples.page_image("b").convert("RGB")
    mpo, progressive = io.BytesIO(), io.BytesIO()
    first.save(mpo, "MPO", save_all=True, append_images=[second])
    first.save(progressive, "JPEG", progressive=True)
    check_structure(mpo.getvalue(), "MPO", "mpo.jpg")
    check_structure(progressive.getvalue(), "JPEG", "progressive.jpg")
    check_structure(samples.jpeg() + b"\0" * 16, "JPEG", "padded.jpg")
