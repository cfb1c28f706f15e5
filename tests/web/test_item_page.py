"""归档件 page: the viewer (rendition and originals), the last verification and 重新核验, downloads asking the 利用
purpose, events, holds and grants; branch visibility (404), permissions (403, audited), bad input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from archive.catalogue.models import AuditEvent, Document
from archive.context import Context
from tests.factories import SERIAL, close_case, complete_case
from tests.helpers import add_client
from tests.web.html import UiClient, soup, text

CODE = "J001-YW·2026-D30-TQ-000001"
URL = f"/ui/items/{quote(CODE)}"


@pytest.fixture
def filed(ctx: Context, client: TestClient) -> None:
    core = add_client(ctx, "core", ["cases.write", "data.read", "pii.read"])
    complete_case(client, core)
    close_case(client, core)


def reads(ctx: Context, actor: str) -> list[tuple[str, Any]]:
    with ctx.catalogue.reading() as s:
        rows = s.execute(select(AuditEvent.detail).where(AuditEvent.action == "access.read",
                                                         AuditEvent.actor == actor).order_by(AuditEvent.seq))
        return [(d["what"], d.get("purpose")) for (d,) in rows]


def denied(ctx: Context) -> list[str]:
    with ctx.catalogue.reading() as s:
        return list(s.scalars(select(AuditEvent.actor).where(AuditEvent.action == "permission.denied")))


def doc_ids(ctx: Context) -> list[int]:
    with ctx.catalogue.reading() as s:
        return list(s.scalars(select(Document.id).order_by(Document.sequence)))


def test_item_page_shows_viewer_metadata_and_last_check_without_reverifying(
        ctx: Context, filed: None, ui: Callable[..., UiClient]) -> None:
    """Given a filed item, Then an archivist sees the viewer on the signed PDF with its thumbnails, the metadata in
    GB/T 18894 terms, the filing's 四性检测 as the verification line, events; the view registers what=data only."""
    archivist = ui("arch01", ["archivist"], None)
    r = archivist.get(URL)
    assert r.status_code == 200, r.text
    page = soup(r)
    shown = text(r)
    for words in ("档号", "全宗号", "保管期限", "件号", "题名", "责任者", "归档时间", "完好", "四性检测", "重新核验"):
        assert words in shown, words
    img = page.select_one("img.viewer-page")
    assert img is not None and img["src"] == f"{URL}/pages/1?w=1000"
    assert page.select("ol.thumb-strip img")
    assert page.select_one("[data-viewer=rotate]") is not None and page.select_one("a[rel=next][data-key-nav]")
    assert reads(ctx, "arch01") == [("data", "档案查阅")]
    image = archivist.get(img["src"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert archivist.get(f"{URL}/pages/99").status_code == 404
    first = doc_ids(ctx)[0]
    viewer = archivist.get(f"{URL}?doc={first}&page=1", headers={"HX-Request": "true", "HX-Target": "viewer"})
    assert viewer.status_code == 200 and soup(viewer).select_one("section#viewer") is not None
    assert "著录信息" not in viewer.text
    assert soup(viewer).select_one("img.viewer-page")["src"] == f"/ui/documents/{first}/pages/1?w=1000"
    assert [w for w, _ in reads(ctx, "arch01")].count("data") == 1  # paging the viewer is no new data read


def test_reverify_runs_the_check_and_registers_it(ctx: Context, filed: None, ui: Callable[..., UiClient]) -> None:
    """When an archivist clicks 重新核验, Then the panel says intact with the details, the read is registered as
    what=verification, and the page then shows it as the last verification."""
    archivist = ui("arch01", ["archivist"], None)
    r = archivist.post(f"{URL}/verify")
    assert r.status_code == 200, r.text
    assert "完好" in text(r) and "签名完整性" in text(r) and soup(r).select_one("section#verification")
    assert reads(ctx, "arch01") == [("verification", "档案核验")]
    assert "上次核验" in text(archivist.get(URL))
    assert archivist.client.post(f"{URL}/verify").status_code == 403  # no CSRF token
    assert reads(ctx, "arch01")[-1][0] == "data"


def test_downloads_ask_the_purpose_and_register_it(ctx: Context, filed: None, ui: Callable[..., UiClient]) -> None:
    """Given an archivist, Then the rendition and an original download only with a purpose (422 otherwise, nothing
    registered), each registered with it; a clerk without 下载档案文件 gets 403."""
    archivist = ui("arch01", ["archivist"], None)
    page = soup(archivist.get(URL))
    assert page.select_one("form#purpose-form input[name=purpose][required]") is not None
    first = doc_ids(ctx)[0]
    missing = archivist.get(f"{URL}/rendition.pdf")
    assert missing.status_code == 422 and "请填写利用目的" in text(missing) and "purpose_required" in text(missing)
    long = archivist.get(f"{URL}/rendition.pdf", params={"purpose": "长" * 201})
    assert long.status_code == 422 and "purpose_too_long" in text(long)
    pdf = archivist.get(f"{URL}/rendition.pdf", params={"purpose": "司法协查"})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    orig = archivist.get(f"{URL}/documents/{first}/original", params={"purpose": "业务复核"})
    assert orig.status_code == 200 and orig.content
    assert archivist.get(f"{URL}/documents/999999/original", params={"purpose": "x"}).status_code == 404
    assert archivist.get(f"{URL}/documents/abc/original", params={"purpose": "x"}).status_code == 422
    assert reads(ctx, "arch01") == [("data", "档案查阅"), ("rendition", "司法协查"), ("original", "业务复核")]
    clerk = ui("clerk01", ["clerk"], "BR01")
    assert soup(clerk.get(URL)).select_one("form#purpose-form") is None
    assert clerk.get(f"{URL}/rendition.pdf", params={"purpose": "复核"}).status_code == 403
    assert "clerk01" in denied(ctx)


def test_other_branch_is_404_and_no_permission_is_403(ctx: Context, filed: None,
                                                      ui: Callable[..., UiClient]) -> None:
    """Given an archivist of another branch, Then the item, its page images and 重新核验 are 404 like an unknown
    档号; an auditor (no item.read) gets 403 and a permission.denied event; nothing is registered."""
    other = ui("arch02", ["archivist"], "BR02")
    for r in (other.get(URL), other.get(f"{URL}/pages/1"), other.post(f"{URL}/verify")):
        assert r.status_code == 404 and "不存在" in text(r)
    unknown = other.get("/ui/items/J001-NOPE")
    assert unknown.status_code == 404 and "item_not_found" in text(unknown)
    auditor = ui("aud01", ["auditor"], None)
    assert auditor.get(URL).status_code == 403
    assert "aud01" in denied(ctx)
    assert reads(ctx, "arch02") == [] and reads(ctx, "aud01") == []


def test_bad_viewer_input_is_a_clear_4xx(ctx: Context, filed: None, ui: Callable[..., UiClient]) -> None:
    archivist = ui("arch01", ["archivist"], None)
    assert archivist.get(f"{URL}?doc=abc").status_code == 422
    r = archivist.get(f"{URL}?doc=999999")
    assert r.status_code == 404 and "document_not_found" in text(r)
    assert archivist.get(f"{URL}?page=0").status_code == 422
    assert archivist.get(f"{URL}/pages/1?w=99999").status_code == 422
    assert archivist.get(f"{URL}?page=500").status_code == 200  # past the end: the last page


def test_item_page_carries_no_inline_script_or_style(filed: None, ui: Callable[..., UiClient]) -> None:
    page = soup(ui("arch01", ["archivist"], None).get(URL))
    assert all(tag.get("src") for tag in page.find_all("script")) and not page.find_all(style=True)
    assert not [t for t in page.find_all(True) if any(a.startswith("on") for a in t.attrs)]
    for field in page.find_all(["input", "select", "textarea"]):
        if field.get("type") not in ("hidden", "search") and field.get("id"):
            assert page.find("label", attrs={"for": field["id"]}) is not None, field["id"]


def test_serial_is_the_case(filed: None, ui: Callable[..., UiClient]) -> None:
    assert soup(ui("arch01", ["archivist"], None).get(URL)).find("a", href=f"/ui/cases/{SERIAL}") is not None
