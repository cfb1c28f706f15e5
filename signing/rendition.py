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
import logging
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import img2pdf
import pikepdf
import pikepdf.pdfa as pdfa
from pikepdf.models import PdfMetadata
from PIL import Image, ImageSequence, UnidentifiedImageError

import signing.pdfa_schemas  # noqa: F401  (pikepdf's PDF/A check asks the compiled schemas first)
from signing.errors import RenditionFailed, UnsupportedDocument

log = logging.getLogger(__name__)

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
    # These exact bytes were decoded before, at least as fully as this build would (at intake, the upload's
    # inspection decodes every frame; the caller has verified their digests since): a JPEG that goes into the PDF
    # byte for byte is not decoded again.
    decoded: bool = False

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


# Active content: each family is refused with its own code and a message naming what was found.
ACTIVE_CONTENT = {
    "pdf_has_javascript": ("JavaScript 脚本", "请另存为不含脚本的 PDF 或打印为 PDF 后再提交"),
    "pdf_has_launch_action": ("启动外部程序的动作（Launch）", "请打印为 PDF 后再提交"),
    "pdf_has_submit_form": ("向外部地址提交表单的动作（SubmitForm）", "请打印为 PDF 后再提交"),
    "pdf_has_external_link": ("指向外部文件的链接或数据导入动作（GoToR、GoToE、ImportData 或非网页链接）",
                              "请打印为 PDF 后再提交"),
    "pdf_has_xfa": ("XFA 动态表单", "请在表单软件中填写后打印为 PDF 再提交"),
    "pdf_has_richmedia": ("多媒体内容（RichMedia、音视频）", "请打印为 PDF 后再提交"),
    "pdf_has_3d": ("三维模型（3D）", "请打印为 PDF 后再提交"),
    "pdf_has_embedded_files": ("内嵌附件", "请把附件作为单独的文件提交"),
}
_ACTIONS = {"/Launch": "pdf_has_launch_action", "/SubmitForm": "pdf_has_submit_form",
            "/GoToR": "pdf_has_external_link", "/GoToE": "pdf_has_external_link",
            "/ImportData": "pdf_has_external_link", "/JavaScript": "pdf_has_javascript",
            "/Rendition": "pdf_has_richmedia", "/Movie": "pdf_has_richmedia", "/Sound": "pdf_has_richmedia",
            "/GoTo3DView": "pdf_has_3d"}
_SUBTYPES = {"/RichMedia": "pdf_has_richmedia", "/Movie": "pdf_has_richmedia", "/Sound": "pdf_has_richmedia",
             "/Screen": "pdf_has_richmedia", "/3D": "pdf_has_3d", "/FileAttachment": "pdf_has_embedded_files"}

_WEB_LINK = re.compile(r"\s*(https?|mailto):", re.IGNORECASE)


def _families(d: pikepdf.Dictionary) -> Iterator[str]:
    if "/JS" in d:
        yield "pdf_has_javascript"
    if "/EF" in d or d.get("/Type") == pikepdf.Name.EmbeddedFile:
        yield "pdf_has_embedded_files"
    if "/XFA" in d:
        yield "pdf_has_xfa"
    if "/3DD" in d or d.get("/Type") == pikepdf.Name("/3D"):
        yield "pdf_has_3d"
    for key, table in (("/S", _ACTIONS), ("/Subtype", _SUBTYPES)):
        value = d.get(key)
        if isinstance(value, pikepdf.Name) and str(value) in table:
            yield table[str(value)]
    if d.get("/S") == pikepdf.Name.URI and not _WEB_LINK.match(str(d.get("/URI", ""))):
        yield "pdf_has_external_link"  # file:, smb:, javascript: … dressed as a link


def active_content(pdf: pikepdf.Pdf) -> list[str]:
    """The active-content families (codes of ACTIVE_CONTENT) found anywhere in the document."""
    found: set[str] = set()
    names = pdf.Root.get("/Names")
    if isinstance(names, pikepdf.Dictionary):
        found |= {code for key, code in (("/JavaScript", "pdf_has_javascript"),
                                         ("/EmbeddedFiles", "pdf_has_embedded_files")) if key in names}
    for obj in [pdf.trailer, *pdf.objects]:
        for d in _walk(obj):
            found.update(_families(d))
    return [code for code in ACTIVE_CONTENT if code in found]


def open_source_pdf(data: bytes, doc: SourceDocument, *, max_pages: int | None = None) -> pikepdf.Pdf:
    """Open an original PDF, refusing what filing cannot take: content before the header, encrypted or
    damaged (repaired by qpdf) files, more than ``max_pages`` pages, and active content of every family."""
    header = data.find(b"%PDF-", 0, 1024)
    if header > 0 and data[:header].strip(b" \t\r\n\x00"):
        raise _refuse("file_polyglot", f"PDF 文件“{doc.title}”在文件头之前夹带了其他内容（{header} 字节，"
                      "可能是伪装成 PDF 的网页或脚本），不能归档；请从原系统重新导出 PDF", doc, offset=header)
    try:
        pdf = pikepdf.open(io.BytesIO(data))
    except pikepdf.PasswordError as exc:
        raise _refuse("pdf_encrypted", f"PDF 文件“{doc.title}”已加密（有打开密码），请提供未加密的原件",
                      doc) from exc
    except pikepdf.PdfError as exc:
        log.info("unreadable PDF %r: %s", doc.title, exc)
        raise _refuse("pdf_unreadable", f"PDF 文件“{doc.title}”已损坏或不是 PDF，无法打开；"
                      "请从原系统重新导出或重新扫描后提交", doc, reason=_reason(exc)) from None
    try:
        if pdf.is_encrypted:
            raise _refuse("pdf_encrypted", f"PDF 文件“{doc.title}”已加密（有权限密码），请提供未加密的原件", doc)
        pages = len(pdf.pages)
        if max_pages is not None and pages > max_pages:
            raise too_many_pages(doc.title, pages, max_pages)
        found = active_content(pdf)  # resolves every object: qpdf's repairs show up below
        if found:
            what, fix = ACTIVE_CONTENT[found[0]]
            others = "、".join(ACTIVE_CONTENT[c][0] for c in found[1:])
            raise _refuse(found[0], f"PDF 文件“{doc.title}”含有{what}{f'（另有{others}）' if others else ''}，"
                          f"不能归档；{fix}", doc, found=found)
        if repairs := pdf.get_warnings():
            log.info("damaged PDF %r repaired by qpdf: %s", doc.title, repairs[:5])
            raise _refuse("pdf_damaged", f"PDF 文件“{doc.title}”结构已损坏（交叉引用表等需要修复才能打开），"
                          "不同软件打开可能显示不同内容，不能归档；请从原系统重新导出或打印为 PDF 后再提交",
                          doc, repairs=[_reason(r) for r in repairs[:5]])
    except UnsupportedDocument:
        pdf.close()
        raise
    return pdf


def too_many_pages(title: str, pages: int, max_pages: int) -> UnsupportedDocument:
    return UnsupportedDocument(f"文件“{title}”共 {pages} 页，超过单个文件 {max_pages} 页的上限；"
                               "请分成多个文件提交", code="document_too_many_pages",
                               detail={"title": title, "pages": pages, "max_pages": max_pages})


def _reason(exc: object) -> str:
    """Library text for the detail and the log (never for a message): without Python reprs."""
    return re.sub(r"<[^<>]* at 0x[0-9a-f]+>", "<data>", str(exc))[:300]


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
    log.info("undecodable image %r: %s", doc.title, exc)
    return _refuse("image_undecodable", f"图像“{doc.title}”无法解码（文件损坏、被截断或格式不符），"
                   "请重新扫描或重新导出后提交", doc, reason=_reason(exc))


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


def _image_pdf(data: bytes, doc: SourceDocument, max_pixels: int, max_pages: int | None = None) -> bytes:
    """One PDF page per image frame; RGB or grey JPEGs pass through byte for byte."""
    image = _open_image(data, doc, max_pixels)
    kind = image.format
    if kind not in _KINDS[doc.media_type]:
        raise _undecodable(doc, ValueError(f"content is {kind}, declared {doc.media_type}"))
    count = frame_count(image)  # from the header / frame index: nothing decoded yet
    if max_pages is not None and count > max_pages:
        raise too_many_pages(doc.title, count, max_pages)
    if kind == "JPEG" and doc.decoded and image.mode in ("L", "RGB"):
        if image.width * image.height > max_pixels:
            raise _too_big(doc, max_pixels, image.size)
        return _img2pdf([data], doc)  # decoded at intake, the same bytes: pass-through without decoding again
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


def frame_count(image: Image.Image) -> int:
    """Frames (pages) of an opened image, without decoding them; a broken frame index counts as one."""
    try:
        return int(getattr(image, "n_frames", 1))
    except (OSError, SyntaxError, ValueError, EOFError):
        return 1  # decoding the frames reports the damage


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
        nums.append(first)  # pikepdf converts the int
        nums.append(pikepdf.Dictionary(S=pikepdf.Name.D, P=pikepdf.String(f"{i}-")))
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


def _source_pdf(data: bytes, doc: SourceDocument, max_pixels: int, stack: ExitStack,
                max_pages: int | None = None) -> pikepdf.Pdf:
    """One original as PDF pages, the way the rendition takes it (shared by filing and check_source)."""
    if doc.media_type == "application/pdf":
        src = stack.enter_context(open_source_pdf(data, doc, max_pages=max_pages))
        if "/AcroForm" in src.Root:
            _flatten_form(src)
        return src
    if doc.media_type in _KINDS:
        return stack.enter_context(pikepdf.open(io.BytesIO(_image_pdf(data, doc, max_pixels, max_pages))))
    raise _refuse("media_type_unsupported",
                  f"文件“{doc.title}”的格式 {doc.media_type} 不能转为归档 PDF（支持 JPEG、PNG、TIFF、PDF）",
                  doc, media_type=doc.media_type)


def check_source(doc: SourceDocument, *, max_pixels: int = DEFAULT_MAX_PIXELS, max_pages: int | None = None
                 ) -> int:
    """Convert one original exactly as filing will (the same ``_source_pdf``) and validate the result against
    PDF/A-2b, so what the counter accepts, filing accepts. Returns its page count in the rendition."""
    with ExitStack() as stack:
        src = _source_pdf(doc.read(), doc, max_pixels, stack, max_pages)
        out = stack.enter_context(pikepdf.new())
        out.pages.extend(src.pages)
        try:
            pdfa.save(out, io.BytesIO(), PDFA_FLAVOUR)
        except pdfa.PdfaError as exc:
            rules = [str(f) for f in exc.report.findings]
            log.info("original %r does not convert to PDF/A: %s", doc.title, rules[:5])
            raise RenditionFailed(f"文件“{doc.title}”无法转换为符合 PDF/A-2b 的归档文件（{len(rules)} 项规则未通过），"
                                  "归档时会失败，未接收；请用原软件打印为 PDF 或重新扫描后提交",
                                  detail={"title": doc.title, "stage": "source", "rules": rules}) from None
        return len(out.pages)


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
        return metadata_values(pdf.open_metadata())


def metadata_values(xmp: PdfMetadata) -> dict[str, str]:
    """:func:`read_rendition_metadata` of an XMP packet already open (pikepdf's ``Pdf.open_metadata()``)."""
    values = {}
    for item in xmp.get("dc:subject") or ():
        key, sep, value = str(item).partition(":")
        if sep:
            values[key] = value
    values["题名"] = str(xmp.get("dc:title", ""))
    values["pdfaid"] = f"{xmp.get('pdfaid:part', '')}{xmp.get('pdfaid:conformance', '')}".lower()
    return values
