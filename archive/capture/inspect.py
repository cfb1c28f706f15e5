"""Checks on one received file before it is stored: page cap, structure, decodes, pixel limit, scan
resolution, PDF safety, OFD container safety.

Pages and frames are counted from the file's index (PDF page tree, TIFF IFD chain, APNG/MPO header)
before any is decoded, so a tiny file claiming thousands of pages is refused cheaply. JPEG and PNG must
end at their end marker (EOI / IEND): a file cut short is refused (a decoder would pad it), and so is
one carrying something after it (a ZIP or script appended: a polyglot).

Scan resolution (DA/T 31-2017: at least 200 dpi): the resolution recorded in the image, except the
meaningless defaults 72 and 96 that cameras and some tools write; then the pixels are measured against
an A4 page's short side (8.27 in), which is what a scanned business document is.
"""

from __future__ import annotations

import io
import logging
import re
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from archive.capture.ofd import check_ofd
from archive.capture.sniff import JPEG, OFD, PDF, PNG, TIFF
from archive.errors import InvalidInput

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

A4_SHORT_INCHES = 8.27
DEFAULT_DPI_TAGS = {72, 96}


@dataclass
class Inspection:
    media_type: str
    page_count: int
    dpi: list[int] = field(default_factory=list)  # per page, for images
    warnings: list[str] = field(default_factory=list)
    # Every frame was decoded in full (the raster images): what check_readable (GD-3-4) and check_source's decoding
    # of a JPEG would do again on the same bytes
    decoded: bool = False

    def detail(self) -> dict[str, object]:
        return {"dpi": self.dpi, "warnings": self.warnings}


def inspect(data: bytes, media_type: str, filename: str, *, max_pixels: int, min_dpi: int,
            dpi_policy: str, max_pages: int) -> Inspection:
    from signing.rendition import SourceDocument, open_source_pdf

    if media_type == PDF:
        with open_source_pdf(data, SourceDocument(title=filename, media_type=PDF), max_pages=max_pages) as pdf:
            if len(pdf.pages) == 0:
                raise _bad("pdf_no_pages", f"PDF 文件“{filename}”没有页面", filename)
            return Inspection(PDF, len(pdf.pages))
    if media_type == OFD:
        return Inspection(OFD, check_ofd(data, filename, max_pages=max_pages))
    if media_type in (JPEG, PNG, TIFF):
        return _inspect_image(data, media_type, filename, max_pixels, min_dpi, dpi_policy, max_pages)
    raise _bad("unsupported_format", f"文件“{filename}”的格式不受支持", filename)


def _inspect_image(data: bytes, media_type: str, filename: str, max_pixels: int, min_dpi: int,
                   dpi_policy: str, max_pages: int) -> Inspection:
    from PIL import Image, ImageSequence, UnidentifiedImageError

    from signing.rendition import frame_count, too_many_pages

    result = Inspection(media_type, 0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit decides
            image = Image.open(io.BytesIO(data))
            if (pages := frame_count(image)) > max_pages:
                raise too_many_pages(filename, pages, max_pages)
            check_structure(data, image.format or "", filename)
            for page, frame in enumerate(ImageSequence.Iterator(image), start=1):
                if frame.width * frame.height > max_pixels:
                    raise _too_big(filename, page, frame.width * frame.height, max_pixels)
                frame.load()  # decodes every byte: a truncated file fails here
                dpi = scan_dpi(frame)
                result.dpi.append(dpi)
                if dpi < min_dpi:
                    message = (f"“{filename}”第 {page} 页分辨率约为 {dpi} dpi，低于 {min_dpi} dpi；"
                               f"请以 {min_dpi} dpi 或以上重新扫描")
                    if dpi_policy == "refuse":
                        raise InvalidInput(message, code="scan_resolution_too_low",
                                           detail={"filename": filename, "page": page, "dpi": dpi,
                                                   "min_dpi": min_dpi})
                    result.warnings.append(message)
                result.page_count = page
        result.decoded = True
    except InvalidInput:
        raise
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise _too_big(filename, 1, int(found.group(1)) if found else None, max_pixels) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        log.info("undecodable image %r: %s", filename, exc)
        raise _bad("image_undecodable", f"图像“{filename}”无法完整解码（文件损坏或被截断），请重新扫描或重新导出",
                   filename) from None
    return result


def check_structure(data: bytes, kind: str, filename: str) -> None:
    """A JPEG or PNG ends at its end marker: nothing missing (truncated) and nothing after it (polyglot)."""
    if kind in ("JPEG", "MPO"):
        end = jpeg_end(data, 0)
        while kind == "MPO" and end is not None and data.startswith(b"\xff\xd8\xff", end):
            end = jpeg_end(data, end)  # a camera's multi-picture file: pictures follow one another
        what = "JPEG 结束标记（EOI）"
    elif kind == "PNG":
        end, what = png_end(data), "PNG 结束块（IEND）"
    else:
        return
    if end is None:
        raise _bad("image_truncated", f"图像“{filename}”不完整（缺少{what}，文件被截断或传输中断），"
                   "未接收；请重新扫描或重新导出后提交", filename)
    if data[end:].strip(b"\x00"):
        raise _bad("file_polyglot", f"图像“{filename}”在图像数据结束后还夹带了 {len(data) - end} 字节其他内容"
                   "（可能附加了压缩包或脚本），未接收；原件不能修改，请重新扫描或重新导出后提交", filename,
                   trailing_bytes=len(data) - end)


def jpeg_end(data: bytes, start: int) -> int | None:
    """Offset just after the EOI of the JPEG starting at ``start`` (None: no SOI, or no EOI before the end).
    Marker segments are skipped by their length; entropy-coded data by its 0xFF stuffing rule."""
    if not data.startswith(b"\xff\xd8", start):
        return None
    i, n = start + 2, len(data)
    while i + 1 < n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
        elif marker == 0xD9:
            return i + 2
        elif 0xD0 <= marker <= 0xD7 or marker == 0x01:  # no length
            i += 2
        else:
            if i + 4 > n:
                return None
            i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
            if marker == 0xDA:  # scan data runs to the next marker that is not stuffing or a restart
                while True:
                    j = data.find(b"\xff", i)
                    if j < 0 or j + 1 >= n:
                        return None
                    following = data[j + 1]
                    if following == 0x00 or 0xD0 <= following <= 0xD7:
                        i = j + 2
                    elif following == 0xFF:
                        i = j + 1
                    else:
                        i = j
                        break
    return None


def png_end(data: bytes) -> int | None:
    """Offset just after the IEND chunk (None: the chunks run past the end of the data)."""
    i, n = 8, len(data)
    while i + 12 <= n:
        length = int.from_bytes(data[i:i + 4], "big")
        kind = data[i + 4:i + 8]
        i += 12 + length
        if kind == b"IEND":
            return i if i <= n else None
    return None


def scan_dpi(frame: Image.Image) -> int:
    tagged = frame.info.get("dpi")
    if tagged:
        value = round(min(float(tagged[0]), float(tagged[1])))
        if value >= 10 and value not in DEFAULT_DPI_TAGS:
            return value
    return round(min(frame.size) / A4_SHORT_INCHES)


def _too_big(filename: str, page: int, pixels: int | None, max_pixels: int) -> InvalidInput:
    shown = f"{pixels:,} 像素，" if pixels else ""
    return InvalidInput(f"“{filename}”第 {page} 页图像过大（{shown}上限 {max_pixels:,} 像素），"
                        "可能是异常文件；请降低扫描分辨率后重新扫描", code="image_too_many_pixels",
                        detail={"filename": filename, "page": page, "pixels": pixels, "max_pixels": max_pixels})


def _bad(code: str, message: str, filename: str, **detail: object) -> InvalidInput:
    return InvalidInput(message, code=code, detail={"filename": filename, **detail})


def check_readable(data: bytes, media_type: str, filename: str) -> None:
    """GD-3-4 on one file, also run at upload so the counter refuses what filing would: it must open as its
    format (JPEGs decode at 1/8 scale: every byte is still read; OFD: the defensive container check)."""
    import pikepdf
    from PIL import Image, ImageSequence

    try:
        if media_type == PDF:
            with pikepdf.open(io.BytesIO(data)) as pdf:
                if len(pdf.pages) == 0:
                    raise InvalidInput(f"“{filename}”没有页面", code="pdf_no_pages", detail={"filename": filename})
        elif media_type in (JPEG, PNG, TIFF):
            with Image.open(io.BytesIO(data)) as img:
                if media_type == JPEG:
                    img.draft("L", (max(1, img.width // 8), max(1, img.height // 8)))
                for frame in ImageSequence.Iterator(img):
                    frame.load()
        elif media_type == OFD:
            check_ofd(data, filename)
        else:
            raise InvalidInput(f"“{filename}”的格式 {media_type} 未知", code="unsupported_format",
                               detail={"filename": filename})
    except InvalidInput:
        raise
    except Exception as exc:  # every decoder has its own errors
        log.info("GD-3-4: %r does not open: %s: %s", filename, type(exc).__name__, exc)
        raise InvalidInput(f"“{filename}”无法正常打开（文件损坏、被截断或格式不符）", code="file_unreadable",
                           detail={"filename": filename, "reason": f"{type(exc).__name__}: {str(exc)[:200]}"}
                           ) from None
