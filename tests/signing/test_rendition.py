"""Archival rendition: PDF/A-2b from ordered originals; bad input refused with a typed error."""

from __future__ import annotations

import io

import pikepdf
import pikepdf.pdfa as pdfa
import pytest

from signing.errors import RenditionFailed, UnsupportedDocument
from signing.rendition import SourceDocument, build_rendition, mask_party, read_rendition_metadata
from tests.signing.support import (
    jpeg,
    jpeg_documents,
    metadata,
    pdf_bytes,
    png,
    png_header_only,
    scan,
    simple_pdf,
    tiff,
)


def _open(data: bytes) -> pikepdf.Pdf:
    return pikepdf.open(io.BytesIO(data))


def test_rendition_of_jpeg_scans_is_valid_pdfa_2b(rendition: bytes) -> None:
    """Given three 200-dpi JPEG scans, When the rendition is built,
    Then an independent re-validation of the written bytes passes PDF/A-2b and XMP declares part 2, B."""
    assert pdfa.validate_written(io.BytesIO(rendition), "2b").passed
    with _open(rendition) as pdf:
        assert len(pdf.pages) == 3
        meta = pdf.open_metadata()
        assert (meta["pdfaid:part"], meta["pdfaid:conformance"]) == ("2", "B")
        assert "/OutputIntents" in pdf.Root


def test_jpeg_bytes_pass_through_unchanged() -> None:
    """Given JPEG scans, When the rendition is built,
    Then each page's image stream is the original JPEG, byte for byte."""
    docs = jpeg_documents(2)
    with _open(build_rendition(docs, metadata())) as pdf:
        for page, doc in zip(pdf.pages, docs, strict=True):
            (image,) = page.get_images().values()
            assert image.Filter == pikepdf.Name.DCTDecode
            assert image.read_raw_bytes() == doc.data


def test_each_document_has_its_own_page_labels_and_bookmark() -> None:
    """Given a 1-page JPEG and a 3-page TIFF, When rendered,
    Then pages are labelled 1-1, 2-1, 2-2, 2-3 and each document has a bookmark to its first page."""
    docs = [SourceDocument("申请表", "image/jpeg", data=jpeg(), material_type="申请表"),
            SourceDocument("购房合同", "image/tiff", data=tiff(3), material_type="合同")]
    with _open(build_rendition(docs, metadata())) as pdf:
        assert [p.label for p in pdf.pages] == ["1-1", "2-1", "2-2", "2-3"]
        with pdf.open_outline() as outline:
            titles = [item.title for item in outline.root]
            targets = [pdf.pages.index(pikepdf.Page(item.destination[0])) for item in outline.root]
        assert titles == ["1. 申请表（申请表，1页）", "2. 购房合同（合同，3页）"]
        assert targets == [0, 1]


def test_xmp_carries_catalogue_metadata_with_parties_masked(rendition: bytes) -> None:
    """Given catalogue metadata with parties, When rendered with the default masking,
    Then XMP carries 档号, 业务流水号, type and retention, and parties only masked."""
    values = read_rendition_metadata(rendition)
    assert values["档号"] == "J001-YW·2024-D30-GJ-000001"
    assert values["业务流水号"] == "LS2024030100017"
    assert values["业务类型"] == "住房公积金提取"
    assert values["保管期限"] == "D30"
    assert values["pdfaid"] == "2b"
    with _open(rendition) as pdf:
        meta = pdf.open_metadata()
        assert meta["dc:identifier"] == "J001-YW·2024-D30-GJ-000001"
        assert set(meta["dc:contributor"]) == {"张*", "110***********1234"}
        assert "110101199003071234" not in str(meta)
        assert meta["dc:date"] == ["2024-03-01"]


def test_parties_can_be_omitted_or_kept() -> None:
    """Given masking "omit" or "none", When rendered, Then parties are absent or shown in full."""
    docs = jpeg_documents(1)
    with _open(build_rendition(docs, metadata(party_masking="omit"))) as pdf:
        assert "dc:contributor" not in pdf.open_metadata()
    with _open(build_rendition(docs, metadata(party_masking="none"))) as pdf:
        assert set(pdf.open_metadata()["dc:contributor"]) == {"张三", "110101199003071234"}


@pytest.mark.parametrize(("value", "masked"), [("张三", "张*"), ("欧阳娜娜", "欧**娜"), ("李", "李"),
                                               ("13800138000", "138****8000")])
def test_mask_party(value: str, masked: str) -> None:
    """Given a name or number, When masked, Then only the ends stay readable."""
    assert mask_party(value) == masked


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "L", "1", "I;16"])
def test_png_in_any_mode_is_converted(mode: str) -> None:
    """Given a PNG in mode RGB/RGBA/P/L/1/16-bit grey, When rendered, Then the result is one valid PDF/A-2b page."""
    out = build_rendition([SourceDocument("扫描件", "image/png", data=png(mode))], metadata())
    assert pdfa.validate_written(io.BytesIO(out), "2b").passed
    with _open(out) as pdf:
        assert len(pdf.pages) == 1


def test_multipage_tiff_becomes_one_page_per_frame_at_its_resolution() -> None:
    """Given a 3-page TIFF at 200 dpi (300×420 px), When rendered, Then there are 3 pages of 108×151.2 pt."""
    out = build_rendition([SourceDocument("多页扫描", "image/tiff", data=tiff(3))], metadata())
    with _open(out) as pdf:
        assert len(pdf.pages) == 3
        assert [round(float(v), 1) for v in pdf.pages[0].mediabox] == [0, 0, 108.0, 151.2]


def test_a_cameras_multi_picture_jpeg_gives_one_page() -> None:
    """Given an MPO (a camera JPEG with a second picture), When rendered as image/jpeg, Then one valid page."""
    buf = io.BytesIO()
    scan().save(buf, "MPO", save_all=True, append_images=[scan(seed=3)], dpi=(200, 200))
    out = build_rendition([SourceDocument("照片", "image/jpeg", data=buf.getvalue())], metadata())
    with _open(out) as pdf:
        assert len(pdf.pages) == 1


def test_pdf_originals_are_appended_after_images() -> None:
    """Given a JPEG then a 2-page PDF, When rendered, Then the PDF's pages follow the scan in order."""
    docs = [SourceDocument("扫描件", "image/jpeg", data=jpeg()),
            SourceDocument("电子表单", "application/pdf", data=pdf_bytes(simple_pdf(2)))]
    with _open(build_rendition(docs, metadata())) as pdf:
        assert len(pdf.pages) == 3
        assert [p.label for p in pdf.pages] == ["1-1", "2-1", "2-2"]


def test_a_signed_pdf_original_is_flattened_into_the_rendition(signer) -> None:  # type: ignore[no-untyped-def]
    """Given a PDF a business system signed (a form with a signature field), When rendered,
    Then the rendition is valid PDF/A-2b without the form or its widgets (the original keeps its signature)."""
    from signing.pades import sign_pdf

    signed_original = sign_pdf(pdf_bytes(simple_pdf(1)), signer, check_pdfa=False)
    out = build_rendition([SourceDocument("电子申请表", "application/pdf", data=signed_original)], metadata())
    assert pdfa.validate_written(io.BytesIO(out), "2b").passed
    with _open(out) as pdf:
        assert "/AcroForm" not in pdf.Root
        assert all(a.get("/Subtype") != pikepdf.Name.Widget for p in pdf.pages for a in p.obj.get("/Annots", []))


def test_a_pdf_with_an_unembedded_font_fails_with_the_rule_named() -> None:
    """Given a PDF using non-embedded Helvetica, When rendered,
    Then RenditionFailed (rendition_not_pdfa) names ISO 19005-2 rule 6.2.11.4.1 and nothing is returned."""
    doc = SourceDocument("外来 PDF", "application/pdf", data=pdf_bytes(simple_pdf(1, unembedded_font=True)))
    with pytest.raises(RenditionFailed) as err:
        build_rendition([doc], metadata())
    assert err.value.code == "rendition_not_pdfa"
    assert err.value.kind == "invalid"
    assert any("6.2.11.4.1" in rule for rule in err.value.detail["rules"])
    assert "PDF/A-2b" in err.value.message


@pytest.mark.parametrize(("make", "code"), [
    (lambda: pdf_bytes(simple_pdf(), encryption=pikepdf.Encryption(owner="o", user="u")), "pdf_encrypted"),
    (lambda: pdf_bytes(simple_pdf(), encryption=pikepdf.Encryption(owner="o", user="")), "pdf_encrypted"),
    (lambda: pdf_bytes(simple_pdf(javascript=True)), "pdf_has_javascript"),
    (lambda: pdf_bytes(simple_pdf(attachment=True)), "pdf_has_embedded_files"),
    (lambda: b"%PDF-1.7\nthis is not a pdf", "pdf_unreadable"),
], ids=["user-password", "owner-password-only", "javascript", "embedded-file", "garbage"])
def test_unsafe_or_unreadable_pdfs_are_refused(make, code: str) -> None:  # type: ignore[no-untyped-def]
    """Given an encrypted PDF, one with JavaScript or an embedded file, or garbage, When rendered,
    Then UnsupportedDocument with the matching code and a Chinese message naming the document."""
    with pytest.raises(UnsupportedDocument) as err:
        build_rendition([SourceDocument("来件", "application/pdf", data=make())], metadata())
    assert err.value.code == code
    assert err.value.kind == "invalid"
    assert "来件" in err.value.message
    assert err.value.detail["title"] == "来件"


def test_javascript_in_a_link_annotation_is_found() -> None:
    """Given JavaScript hidden in a link annotation's action (a direct object), When rendered, Then it is refused."""
    pdf = simple_pdf()
    action = pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("this.print()"))
    pdf.pages[0].Annots = pdf.make_indirect(pikepdf.Array([pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link, Rect=[0, 0, 10, 10], A=action))]))
    with pytest.raises(UnsupportedDocument) as err:
        build_rendition([SourceDocument("来件", "application/pdf", data=pdf_bytes(pdf))], metadata())
    assert err.value.code == "pdf_has_javascript"


@pytest.mark.parametrize(("data", "media_type"), [
    (b"\xff\xd8\xff\xe0 not really a jpeg", "image/jpeg"),
    (jpeg()[:2000], "image/jpeg"),
    (png()[:300], "image/png"),
    (png(), "image/jpeg"),
], ids=["garbage", "truncated-jpeg", "truncated-png", "png-declared-as-jpeg"])
def test_undecodable_images_are_refused(data: bytes, media_type: str) -> None:
    """Given image bytes that do not decode (or are not what they claim), When rendered, Then image_undecodable."""
    with pytest.raises(UnsupportedDocument) as err:
        build_rendition([SourceDocument("扫描件", media_type, data=data)], metadata())
    assert err.value.code == "image_undecodable"


def test_an_image_over_the_pixel_limit_is_refused_before_decoding() -> None:
    """Given a PNG whose header claims 100 000 × 100 000 pixels (no data), When rendered,
    Then image_too_many_pixels, decided from the header alone."""
    with pytest.raises(UnsupportedDocument) as err:
        build_rendition([SourceDocument("炸弹", "image/png", data=png_header_only(100_000, 100_000))], metadata())
    assert err.value.code == "image_too_many_pixels"
    assert "像素" in err.value.message


def test_the_pixel_limit_is_checked_from_the_header_below_pillows_own_limit() -> None:
    """Given a PNG header claiming 9 000 × 9 000 pixels and a limit of 50 Mpx, When rendered,
    Then image_too_many_pixels with the claimed size in the detail."""
    with pytest.raises(UnsupportedDocument) as err:
        build_rendition([SourceDocument("大图", "image/png", data=png_header_only(9_000, 9_000))], metadata(),
                        max_pixels=50_000_000)
    assert err.value.code == "image_too_many_pixels"
    assert err.value.detail["size"] == [9_000, 9_000]


def test_the_pixel_limit_is_configurable() -> None:
    """Given a 413×585 JPEG and a limit of 100 000 pixels, When rendered, Then image_too_many_pixels."""
    with pytest.raises(UnsupportedDocument) as err:
        build_rendition(jpeg_documents(1), metadata(), max_pixels=100_000)
    assert err.value.code == "image_too_many_pixels"


def test_unsupported_media_type_and_empty_list_are_refused() -> None:
    """Given a Word file or no documents, When rendered, Then media_type_unsupported / no_documents."""
    with pytest.raises(UnsupportedDocument) as err:
        build_rendition([SourceDocument("说明", "application/msword", data=b"x")], metadata())
    assert err.value.code == "media_type_unsupported"
    with pytest.raises(UnsupportedDocument) as err:
        build_rendition([], metadata())
    assert err.value.code == "no_documents"


def test_documents_can_be_read_from_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Given a JPEG on disk, When rendered from its path, Then the page holds the file's bytes."""
    path = tmp_path / "scan.jpg"
    path.write_bytes(jpeg())
    with _open(build_rendition([SourceDocument("扫描件", "image/jpeg", path=path)], metadata())) as pdf:
        (image,) = pdf.pages[0].get_images().values()
        assert image.read_raw_bytes() == path.read_bytes()
