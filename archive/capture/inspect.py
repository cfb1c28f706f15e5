"""Checks on one received file before it is stored: decodes, pixel limit, scan resolution, PDF safety.

Scan resolution (DA/T 31-2017: at least 200 dpi): the resolution recorded in the image, except the
meaningless defaults 72 and 96 that cameras and some tools write; then the pixels are measured against
an A4 page's short side (8.27 in), which is what a scanned business document is.
"""

from __future__ import annotations

import io
import re
import warnings
import zipfile
from dataclasses import dataclass, field

from PIL import Image, ImageSequence, UnidentifiedImageError

from archive.capture.sniff import JPEG, OFD, PDF, PNG, TIFF
from archive.errors import InvalidInput
from signing.rendition import SourceDocument, open_source_pdf

A4_SHORT_INCHES = 8.27
DEFAULT_DPI_TAGS = {72, 96}


@dataclass
class Inspection:
    media_type: str
    page_count: int
    dpi: list[int] = field(default_factory=list)  # per page, for images
    warnings: list[str] = field(default_factory=list)

    def detail(self) -> dict[str, object]:
        return {"dpi": self.dpi, "warnings": self.warnings}


def inspect(data: bytes, media_type: str, filename: str, *, max_pixels: int, min_dpi: int,
            dpi_policy: str) -> Inspection:
    if media_type == PDF:
        with open_source_pdf(data, SourceDocument(title=filename, media_type=PDF)) as pdf:
            if len(pdf.pages) == 0:
                raise _bad("pdf_no_pages", f"PDF 文件“{filename}”没有页面", filename)
            return Inspection(PDF, len(pdf.pages))
    if media_type == OFD:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            pages = sum(1 for n in z.namelist() if re.search(r"(^|/)Pages/Page_\d+/Content\.xml$", n))
        return Inspection(OFD, max(pages, 1))
    if media_type in (JPEG, PNG, TIFF):
        return _inspect_image(data, media_type, filename, max_pixels, min_dpi, dpi_policy)
    raise _bad("unsupported_format", f"文件“{filename}”的格式不受支持", filename)


def _inspect_image(data: bytes, media_type: str, filename: str, max_pixels: int, min_dpi: int,
                   dpi_policy: str) -> Inspection:
    result = Inspection(media_type, 0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit decides
            image = Image.open(io.BytesIO(data))
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
    except InvalidInput:
        raise
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise _too_big(filename, 1, int(found.group(1)) if found else None, max_pixels) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _bad("image_undecodable", f"图像“{filename}”无法完整解码（文件损坏或被截断），请重新扫描或重新导出",
                   filename, reason=str(exc)) from None
    return result


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
