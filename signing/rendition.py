"""Archival rendition: one PDF/A-2b file from the ordered originals of one archival item (件).

JPEG scans go in byte for byte (img2pdf pass-through); PNG and TIFF (multi-page too) are converted
losslessly; PDFs are appended page by page. The catalogue metadata goes into XMP using only the
properties PDF/A-2 predefines (Dublin Core, xmp:Identifier, pdf:Keywords) as labelled values such as
``档号:J001-YW·2024-D30-GJ-000001``: a custom XMP namespace would need a PDF/A extension schema that
the validator used here (pikepdf.pdfa, an allowlist) cannot check. Each document gets its own page
labels (``1-1``, ``1-2``, ``2-1`` …) and a bookmark. The result is written and validated by
``pikepdf.pdfa.save``; a file that does not pass is a RenditionFailed naming the failed rules.
"""

from __future__ import annotations

import datetime as dt
import io
import warnings
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import img2pdf
import pikepdf
import pikepdf.pdfa as pdfa
from PIL import Image, ImageSequence, UnidentifiedImageError

from signing.errors import RenditionFailed, UnsupportedDocument

DEFAULT_MAX_PIXELS = 100_000_000  # A3 at 600 dpi is 70 Mpx
PDFA_FLAVOUR = "2b"
CREATOR_TOOL = "hpf-archive signing.rendition"

MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/tiff", "application/pdf"})  # accepted originals
_IMG2PDF_MODES = {"1", "L", "RGB"}


@dataclass(frozen=True)
class SourceDocument:
    """One original: its bytes (``data``) or a file (``path``)."""

    title: str
    media_type: str
    data: bytes | None = None
    path: Path | None = None
    material_type: str = ""  # 材料类型, e.g. 申请表, 身份证明

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        if self.path is not None:
            return Path(self.path).read_bytes()
        raise UnsupportedDocument(f"文件“{self.title}”没有内容", code="document_empty",
                                  detail={"title": self.title})


@dataclass(frozen=True)
class RenditionMetadata:
    """Catalogue metadata written into the rendition's XMP."""

    archival_code: str  # 档号
    business_serial: str  # 业务流水号
    business_type: str  # 业务类型
    retention: str  # 保管期限
    title: str  # 题名
    fonds_name: str = "住房公积金管理中心"  # 全宗名称 / 立档单位
    dates: Sequence[dt.date] = ()  # 业务办理日期 / 形成日期
    parties: Sequence[str] = ()  # 当事人 (names, ID numbers …)
    party_masking: Literal["mask", "none", "omit"] = "mask"
    extra: dict[str, str] = field(default_factory=dict)  # further labelled values, e.g. {"年度": "2024"}


# --- masking ---------------------------------------------------------------------------------------


def mask_party(value: str) -> str:
    """Mask a party for display: 张三 → 张*, 欧阳娜娜 → 欧**娜, 110101199003071234 → 110***********1234."""
    value = value.strip()
    if len(value) >= 7 and sum(c.isdigit() for c in value) >= len(value) // 2:
        return value[:3] + "*" * (len(value) - 7) + value[-4:]
    if len(value) <= 1:
        return value
    if len(value) == 2:
        return value[0] + "*"
    return value[0] + "*" * (len(value) - 2) + value[-1]


def _parties(meta: RenditionMetadata) -> list[str]:
    if meta.party_masking == "omit":
        return []
    if meta.party_masking == "mask":
        return [mask_party(p) for p in meta.parties]
    return [p.strip() for p in meta.parties]


# --- input guards ----------------------------------------------------------------------------------


def _refuse(code: str, message: str, doc: SourceDocument, **detail: object) -> UnsupportedDocument:
    return UnsupportedDocument(message, code=code, detail={"title": doc.title, **detail})


def _walk(obj: pikepdf.Object) -> Iterator[pikepdf.Dictionary]:
    """Every dictionary reachable inside one object, not following indirect references."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, pikepdf.Stream):
            item = item.stream_dict
        if isinstance(item, pikepdf.Dictionary):
            yield item
            children = list(item.values())
        elif isinstance(item, pikepdf.Array):
            children = list(item)
        else:
            continue
        for child in children:
            if isinstance(child, pikepdf.Dictionary | pikepdf.Array | pikepdf.Stream) and \
                    not child.is_indirect:
                stack.append(child)


def _active_content(pdf: pikepdf.Pdf) -> tuple[bool, bool]:
    """(has JavaScript, has embedded files) anywhere in the document."""
    names = pdf.Root.get("/Names")
    javascript = isinstance(names, pikepdf.Dictionary) and "/JavaScript" in names
    embedded = isinstance(names, pikepdf.Dictionary) and "/EmbeddedFiles" in names
    for obj in [pdf.trailer, *pdf.objects]:
        for d in _walk(obj):
            if "/JS" in d or d.get("/S") == pikepdf.Name.JavaScript:
                javascript = True
            if "/EF" in d or d.get("/Type") == pikepdf.Name.EmbeddedFile or \
                    d.get("/Subtype") == pikepdf.Name.FileAttachment:
                embedded = True
        if javascript and embedded:
            break
    return javascript, embedded


def open_source_pdf(data: bytes, doc: SourceDocument) -> pikepdf.Pdf:
    """Open an original PDF, refusing encrypted files and files with JavaScript or embedded files."""
    try:
        pdf = pikepdf.open(io.BytesIO(data))
    except pikepdf.PasswordError as exc:
        raise _refuse("pdf_encrypted", f"PDF 文件“{doc.title}”已加密（有打开密码），请提供未加密的原件",
                      doc) from exc
    except pikepdf.PdfError as exc:
        raise _refuse("pdf_unreadable", f"PDF 文件“{doc.title}”已损坏或不是 PDF：{exc}", doc) from exc
    if pdf.is_encrypted:
        pdf.close()
        raise _refuse("pdf_encrypted", f"PDF 文件“{doc.title}”已加密（有权限密码），请提供未加密的原件", doc)
    javascript, embedded = _active_content(pdf)
    if javascript:
        pdf.close()
        raise _refuse("pdf_has_javascript",
                      f"PDF 文件“{doc.title}”含有 JavaScript 脚本，不能归档；"
                      "请另存为不含脚本的 PDF 或打印为 PDF 后再提交", doc)
    if embedded:
        pdf.close()
        raise _refuse("pdf_has_embedded_files",
                      f"PDF 文件“{doc.title}”内嵌了附件，不能归档；请把附件作为单独的文件提交",
                      doc)
    return pdf


def _open_image(data: bytes, doc: SourceDocument, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise _too_big(doc, max_pixels) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise _undecodable(doc, exc) from exc
    return image


def _too_big(doc: SourceDocument, max_pixels: int, size: tuple[int, int] | None = None
             ) -> UnsupportedDocument:
    shown = f"{size[0]}×{size[1]} 像素，" if size else ""
    return _refuse("image_too_many_pixels",
                   f"图像“{doc.title}”过大（{shown}上限 {max_pixels:,} 像素），请降低扫描分辨率后重新扫描",
                   doc, max_pixels=max_pixels, size=list(size) if size else None)


def _undecodable(doc: SourceDocument, exc: BaseException) -> UnsupportedDocument:
    return _refuse("image_undecodable", f"图像“{doc.title}”无法解码（文件损坏或格式不符）：{exc}", doc,
                   reason=str(exc))


def _frames(image: Image.Image, doc: SourceDocument, max_pixels: int, *, full: bool
            ) -> Iterator[Image.Image]:
    """Each frame, checked against the pixel limit and decoded (JPEG at 1/8 scale: fast, still complete)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            for frame in ImageSequence.Iterator(image):
                if frame.width * frame.height > max_pixels:
                    raise _too_big(doc, max_pixels, frame.size)
                if not full and frame.format == "JPEG":
                    frame.draft(frame.mode, (max(1, frame.width // 8), max(1, frame.height // 8)))
                frame.load()
                yield frame
    except UnsupportedDocument:
        raise
    except Image.DecompressionBombError as exc:
        raise _too_big(doc, max_pixels, image.size) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _undecodable(doc, exc) from exc


def _normalised(frame: Image.Image) -> Image.Image:
    """A frame in a mode PDF/A with an sRGB output intent takes as is: 1, L or RGB (alpha on white)."""
    if frame.mode in _IMG2PDF_MODES:
        return frame
    if frame.mode in ("I;16", "I;16B", "I;16L", "I"):
        return frame.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if frame.mode == "P" and "transparency" in frame.info:
        frame = frame.convert("RGBA")
    if frame.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = frame.convert("RGBA")
        flat = Image.new("RGB", rgba.size, "white")
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return frame.convert("RGB")


_KINDS = {"image/jpeg": {"JPEG", "MPO"}, "image/png": {"PNG"}, "image/tiff": {"TIFF"}}


def _image_pdf(data: bytes, doc: SourceDocument, max_pixels: int) -> bytes:
    """One PDF page per image frame; RGB or grey JPEGs pass through byte for byte."""
    image = _open_image(data, doc, max_pixels)
    kind = image.format
    if kind not in _KINDS[doc.media_type]:
        raise _undecodable(doc, ValueError(f"内容是 {kind}，与声明的 {doc.media_type} 不符"))
    frames = list(_frames(image, doc, max_pixels, full=kind != "JPEG"))
    if kind == "JPEG" and frames[0].mode in ("L", "RGB"):
        return _img2pdf([data], doc)  # pass-through: the JPEG bytes go into the PDF unchanged
    if kind == "MPO":  # a camera's multi-picture JPEG: the first picture is the photo
        frames = frames[:1]
    elif kind in ("PNG", "TIFF") and all(f.mode in _IMG2PDF_MODES for f in frames) and \
            "transparency" not in image.info and not image.info.get("interlace"):
        try:
            return _img2pdf([data], doc)  # lossless: img2pdf re-uses PNG/TIFF data where it can
        except UnsupportedDocument:
            pass  # img2pdf refuses some variants; convert them below
    pages = []
    for frame in frames:
        buf = io.BytesIO()
        dpi = frame.info.get("dpi")
        _normalised(frame).save(buf, "PNG", **({"dpi": tuple(round(d) for d in dpi)} if dpi else {}))
        pages.append(buf.getvalue())
    return _img2pdf(pages, doc)


def _img2pdf(images: list[bytes], doc: SourceDocument) -> bytes:
    try:
        return img2pdf.convert(images, rotation=img2pdf.Rotation.ifvalid)
    except Exception as exc:  # img2pdf raises plain exceptions of many kinds
        raise _undecodable(doc, exc) from exc


# --- assembling ------------------------------------------------------------------------------------


def _labelled(meta: RenditionMetadata) -> list[tuple[str, str]]:
    pairs = [("档号", meta.archival_code), ("业务流水号", meta.business_serial),
             ("业务类型", meta.business_type), ("保管期限", meta.retention), ("全宗名称", meta.fonds_name)]
    pairs += [(k, v) for k, v in meta.extra.items()]
    return [(k, v) for k, v in pairs if v]


def _write_xmp(pdf: pikepdf.Pdf, meta: RenditionMetadata, docs: Sequence[SourceDocument]) -> None:
    labelled = _labelled(meta)
    parties = _parties(meta)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with pdf.open_metadata(set_pikepdf_as_editor=False) as xmp:
        xmp["dc:title"] = meta.title
        xmp["dc:identifier"] = meta.archival_code
        xmp["xmp:Identifier"] = {f"{k}:{v}" for k, v in labelled[:2]}
        xmp["dc:type"] = {meta.business_type} if meta.business_type else set()
        xmp["dc:subject"] = {f"{k}:{v}" for k, v in labelled}
        xmp["pdf:Keywords"] = "；".join(f"{k}:{v}" for k, v in labelled)
        xmp["dc:description"] = "；".join(
            [f"{k}:{v}" for k, v in labelled] + [f"文件:{i}.{d.title}" for i, d in enumerate(docs, 1)])
        xmp["dc:creator"] = [meta.fonds_name]
        if meta.dates:
            xmp["dc:date"] = [d.isoformat() for d in meta.dates]
        if parties:
            xmp["dc:contributor"] = set(parties)
        xmp["dc:language"] = {"zh-CN"}
        xmp["dc:format"] = "application/pdf"
        xmp["xmp:CreatorTool"] = CREATOR_TOOL
        xmp["xmp:CreateDate"] = now.isoformat()
        xmp["xmp:ModifyDate"] = now.isoformat()
        xmp["xmp:MetadataDate"] = now.isoformat()


def _write_navigation(pdf: pikepdf.Pdf, spans: list[tuple[SourceDocument, int, int]]) -> None:
    """Page labels ``<n>-1, <n>-2 …`` per document and one bookmark per document."""
    nums = pikepdf.Array()
    for i, (_doc, first, _count) in enumerate(spans, 1):
        nums.extend([first, pikepdf.Dictionary(S=pikepdf.Name.D, P=pikepdf.String(f"{i}-"))])
    pdf.Root.PageLabels = pikepdf.Dictionary(Nums=nums)
    with pdf.open_outline() as outline:
        for i, (doc, first, count) in enumerate(spans, 1):
            kind = f"{doc.material_type}，" if doc.material_type else ""
            outline.root.append(pikepdf.OutlineItem(f"{i}. {doc.title}（{kind}{count}页）", first))
    pdf.Root.PageMode = pikepdf.Name.UseOutlines


def _flatten_form(pdf: pikepdf.Pdf) -> None:
    """Burn form fields (and a business system's signature appearances) into the pages: the rendition
    is a copy for reading; the original, with its own signatures, is kept as it is."""
    pdf.flatten_annotations("print")
    for page in pdf.pages:
        annots = page.obj.get("/Annots")
        if annots is not None:
            kept = [a for a in annots if a.get("/Subtype") != pikepdf.Name.Widget]
            if kept:
                page.obj.Annots = pdf.make_indirect(pikepdf.Array(kept))
            else:
                del page.obj.Annots
    if "/AcroForm" in pdf.Root:
        del pdf.Root.AcroForm


def _source_pdf(data: bytes, doc: SourceDocument, max_pixels: int, stack: ExitStack) -> pikepdf.Pdf:
    if doc.media_type == "application/pdf":
        src = stack.enter_context(open_source_pdf(data, doc))
        if "/AcroForm" in src.Root:
            _flatten_form(src)
        return src
    if doc.media_type in _KINDS:
        return stack.enter_context(pikepdf.open(io.BytesIO(_image_pdf(data, doc, max_pixels))))
    raise _refuse("media_type_unsupported",
                  f"文件“{doc.title}”的格式 {doc.media_type} 不能转为归档 PDF（支持 JPEG、PNG、TIFF、PDF）",
                  doc, media_type=doc.media_type)


def build_rendition(documents: Sequence[SourceDocument], metadata: RenditionMetadata, *,
                    max_pixels: int = DEFAULT_MAX_PIXELS) -> bytes:
    """Build and validate the PDF/A-2b rendition of one item's originals, in the given order."""
    if not documents:
        raise UnsupportedDocument("没有可归档的文件", code="no_documents")
    with ExitStack() as stack:
        out = stack.enter_context(pikepdf.new())
        spans: list[tuple[SourceDocument, int, int]] = []
        for doc in documents:
            src = _source_pdf(doc.read(), doc, max_pixels, stack)
            first = len(out.pages)
            out.pages.extend(src.pages)
            spans.append((doc, first, len(out.pages) - first))
        _write_navigation(out, spans)
        _write_xmp(out, metadata, documents)
        buf = io.BytesIO()
        try:
            pdfa.save(out, buf, PDFA_FLAVOUR)
        except pdfa.PdfaError as exc:
            raise rendition_failed(exc.report.findings, "rendition") from exc
    return buf.getvalue()


def rendition_failed(findings: Sequence[object], stage: str) -> RenditionFailed:
    rules = [str(f) for f in findings]
    shown = "；".join(rules[:3]) + (f" 等 {len(rules)} 项" if len(rules) > 3 else "")
    what = "归档 PDF" if stage == "rendition" else "签章后的 PDF"
    return RenditionFailed(f"{what}不符合 PDF/A-2b：{shown}", detail={"stage": stage, "rules": rules})


def read_rendition_metadata(data: bytes) -> dict[str, str]:
    """The labelled catalogue values (档号, 业务流水号 …) and title of a rendition's XMP."""
    with pikepdf.open(io.BytesIO(data)) as pdf:
        xmp = pdf.open_metadata()
        values = {}
        for item in xmp.get("dc:subject") or ():
            key, sep, value = str(item).partition(":")
            if sep:
                values[key] = value
        values["题名"] = str(xmp.get("dc:title", ""))
        values["pdfaid"] = f"{xmp.get('pdfaid:part', '')}{xmp.get('pdfaid:conformance', '')}".lower()
    return values
