"""Batch-scan separation (分隔): find cover sheets and material separator sheets in a scanned stack.

Pages are rendered one at a time (bounded memory). Only the formats we print are read, Code128 and
QR; the top strip, where the sheets' Code128 is, is tried before the whole page, and the QR still
reads when the sheet went through the scanner askew. A barcode counts only when its text has the
shape of a 业务流水号 (a cover sheet) or of ``SEP:<业务流水号>:<material type>`` (a material separator
sheet, 材料分隔页), so the barcodes on receipts and invoices do not split the stack.
"""

from __future__ import annotations

import io
import logging
import re
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archive.capture.cases import SERIAL
from archive.capture.sniff import PDF, TIFF
from archive.errors import InvalidInput

if TYPE_CHECKING:
    import pypdfium2 as pdfium
    from PIL import Image

log = logging.getLogger(__name__)

FORMATS = ("Code128", "QRCode")  # zxingcpp.BarcodeFormat members the sheets carry
TOP_STRIP = 0.25
SEPARATOR = re.compile(rf"SEP:({SERIAL.pattern}):([A-Za-z][A-Za-z0-9_]{{0,39}})")


def separator_text(serial: str, material_type: str) -> str:
    """What a material separator sheet's barcodes carry; ':' never occurs in a 业务流水号."""
    return f"SEP:{serial}:{material_type}"


@dataclass(frozen=True)
class Mark:
    """A sheet that starts a part: a cover (material_type None) or a material separator."""

    serial: str
    material_type: str | None = None


def read_mark(page: Image.Image) -> Mark | None:
    """The cover sheet or separator sheet on ``page``, or None for an ordinary page."""
    import zxingcpp
    from PIL import Image

    width, height = page.size
    # The whole-page pass runs on most pages (those without a sheet), so at half scale: the QR's
    # 1 mm modules still span ~4 px, and it is the QR that reads on a sheet fed in askew or turned.
    whole = page.resize((max(1, width // 2), max(1, height // 2)), Image.Resampling.BOX)
    for region in (page.crop((0, 0, width, int(height * TOP_STRIP))), whole):
        # Any: zxing-cpp takes a tuple of formats, though its stubs ask for BarcodeFormats (whose | is deprecated)
        formats: Any = tuple(getattr(zxingcpp.BarcodeFormat, f) for f in FORMATS)
        texts = [b.text for b in zxingcpp.read_barcodes(region, formats=formats)]
        marks = [Mark(m[1], m[2]) for t in texts if (m := SEPARATOR.fullmatch(t))]
        marks += [Mark(t) for t in texts if SERIAL.fullmatch(t)]
        if marks:
            return max(set(marks), key=marks.count)  # Code128 and QR agree on a real sheet
    return None


def read_serial(page: Image.Image) -> str | None:
    """The 业务流水号 of a cover sheet, or None for any other page."""
    mark = read_mark(page)
    return mark.serial if mark is not None and mark.material_type is None else None


class Stack:
    """A scanned stack (multi-page PDF or TIFF) in a file, opened for page-by-page rendering.

    Read from a file, not from memory, so a stack of hundreds of megabytes costs only its pages.
    """

    def __init__(self, path: Path, media_type: str, raster_dpi: int, max_pixels: int) -> None:
        import pypdfium2 as pdfium
        from PIL import Image

        self.media_type, self.raster_dpi, self.max_pixels = media_type, raster_dpi, max_pixels
        self._path = path
        try:
            if media_type == PDF:
                self._pdf = pdfium.PdfDocument(str(path))
                self.pages = len(self._pdf)
            elif media_type == TIFF:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                    self._tiff = Image.open(path)
                    self.pages = getattr(self._tiff, "n_frames", 1)
            else:
                raise InvalidInput("批量扫描只接受多页 PDF 或 TIFF 文件", code="scan_format_unsupported")
        except (pdfium.PdfiumError, OSError, Image.DecompressionBombError) as exc:
            log.info("unreadable scan stack %s: %s", path, exc)
            raise InvalidInput("扫描文件无法读取（文件损坏或被截断），请重新扫描后上传", code="scan_unreadable",
                               detail={"reason": str(exc)[:200]}) from None

    def render(self, number: int) -> Image.Image:
        """Page ``number`` (1-based) as a greyscale image at the raster resolution."""
        from PIL import ImageSequence

        if self.media_type == PDF:
            page = self._pdf[number - 1]
            try:
                fast = _scanned_jpeg(page, self.raster_dpi, self.max_pixels)
                if fast is not None:
                    return fast
                scale = self.raster_dpi / 72
                if page.get_width() * page.get_height() * scale * scale > self.max_pixels:
                    raise InvalidInput(f"第 {number} 页尺寸异常，无法处理", code="scan_page_too_large",
                                       detail={"page": number})
                return page.render(scale=scale, grayscale=True).to_pil()
            finally:
                page.close()
        frame = ImageSequence.Iterator(self._tiff)[number - 1]
        if frame.width * frame.height > self.max_pixels:
            raise InvalidInput(f"第 {number} 页图像过大", code="scan_page_too_large", detail={"page": number})
        image = frame.convert("L")
        dpi = frame.info.get("dpi", (self.raster_dpi,))[0] or self.raster_dpi
        if dpi > self.raster_dpi * 1.2:
            factor = self.raster_dpi / dpi
            image = image.resize((max(1, int(image.width * factor)), max(1, int(image.height * factor))))
        return image

    def extract(self, first: int, last: int) -> bytes:
        """Pages first..last (1-based, inclusive) as a PDF; PDF pages are copied, not re-encoded."""
        import img2pdf
        import pikepdf
        from PIL import ImageSequence

        if self.media_type == PDF:
            with pikepdf.open(self._path) as src, pikepdf.new() as out:
                out.pages.extend(src.pages[first - 1:last])
                buf = io.BytesIO()
                out.save(buf, deterministic_id=True)  # the same part twice is the same object
                return buf.getvalue()

        frames = []
        for number in range(first, last + 1):
            frame = ImageSequence.Iterator(self._tiff)[number - 1]
            buf = io.BytesIO()
            dpi = frame.info.get("dpi")
            frame.save(buf, "PNG", **({"dpi": tuple(round(d) for d in dpi)} if dpi else {}))
            frames.append(buf.getvalue())
        return img2pdf.convert(frames)

    def close(self) -> None:
        if self.media_type == PDF:
            self._pdf.close()
        else:
            self._tiff.close()


def _scanned_jpeg(page: pdfium.PdfPage, raster_dpi: int, max_pixels: int) -> Image.Image | None:
    """A scanner's page is one upright JPEG filling the page: decode it directly, with DCT scaling,
    instead of rendering (~8 ms against ~70 ms). Anything else returns None and is rendered."""
    import pypdfium2.raw as pdfium_c
    from PIL import Image

    if page.get_rotation() != 0:
        return None
    images = list(page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=1))
    if len(images) != 1 or images[0].get_filters() != ["DCTDecode"]:
        return None
    m = images[0].get_matrix()
    width, height = page.get_size()
    if m.b or m.c or abs(m.a - width) > 2 or abs(m.d - height) > 2 or abs(m.e) > 2 or abs(m.f) > 2:
        return None
    buf = io.BytesIO()
    images[0].extract(buf)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(buf.getvalue()))
            if image.format != "JPEG" or image.width * image.height > max_pixels:
                return None
            target = (round(width / 72 * raster_dpi), round(height / 72 * raster_dpi))
            image.draft("L", target)  # DCT scaling: decodes at 1/2, 1/4 … when the scan is finer
            return image.convert("L")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


@contextmanager
def open_stack(data: bytes | Path, media_type: str, raster_dpi: int, max_pixels: int) -> Iterator[Stack]:
    """A stack from a file, or from bytes spooled to a temporary file first."""
    with ExitStack() as cleanup:
        if isinstance(data, bytes):
            tmp = cleanup.enter_context(tempfile.NamedTemporaryFile(suffix=".scan"))
            tmp.write(data)
            tmp.flush()
            data = Path(tmp.name)
        stack = Stack(data, media_type, raster_dpi, max_pixels)
        cleanup.callback(stack.close)
        yield stack


@dataclass(frozen=True)
class Part:
    first_page: int
    last_page: int
    serial: str | None  # None: pages before the first sheet
    material_type: str | None = None  # from the separator in front; None: the batch's material type
    problem: str | None = None  # why it must wait for a clerk although it has a serial


def split(pages: int, marks: Sequence[tuple[int, Mark]]) -> list[Part]:
    """Runs of pages between sheets; the cover and separator pages themselves are not part of any run.

    A separator types the pages behind it, up to the next sheet. A separator whose serial is not that
    of the cover in front of it is reported (``separator_serial_mismatch``), never trusted.
    """
    parts: list[Part] = []
    starts = sorted(marks, key=lambda m: m[0])
    first_sheet = starts[0][0] if starts else pages + 1
    if first_sheet > 1:
        parts.append(Part(1, first_sheet - 1, None))
    cover: str | None = None
    for i, (page, mark) in enumerate(starts):
        end = starts[i + 1][0] - 1 if i + 1 < len(starts) else pages
        if mark.material_type is None:
            cover = mark.serial
        problem = ("separator_serial_mismatch"
                   if mark.material_type is not None and cover is not None and mark.serial != cover else None)
        if end > page:
            parts.append(Part(page + 1, end, mark.serial, mark.material_type, problem))
    return parts
