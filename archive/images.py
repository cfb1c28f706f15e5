"""Page images of documents for business systems: rendering, the rendition cache, watermarks.

A page image is rendered from the original as received (PDF pages with pdfium, JPEG/PNG/TIFF with
Pillow) at a requested width and encoded as JPEG, PNG or WebP. Rendered images are kept in the object
store under ``thumbnails/<document sha256>/<page>-<width>.<format>``: the key is derived from the
original's digest, so it never goes stale, and the store records the image's own SHA-256, which is the
ETag. A small in-process LRU in front of the store makes a warm request cost a dictionary look-up.
Watermarked images (user and time) are drawn on top of the cached image per request and never cached.

Pages of a batch-scanned stack (for the clerk who assigns what waits, 待分配) are cached the same way under the
stack's digest; they are rendered from the stored stack copied to a temporary file, a page at a time, so a
stack of hundreds of megabytes costs only the page.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from archive.capture.scans import stored_stack
from archive.capture.sniff import JPEG, OFD, PDF, PNG, TIFF
from archive.catalogue.models import Document, ScanBatch
from archive.context import Context
from archive.errors import InvalidInput, NotFound
from storage.base import ObjectExists, ObjectNotFound

if TYPE_CHECKING:
    from PIL import Image, ImageFont

MIN_WIDTH = 16
MAX_WIDTH = 4000
DEFAULT_WIDTH = 1000
THUMBNAIL_WIDTH = 200
FORMATS: dict[str, str] = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
MEMORY_CACHE_BYTES = 64 * 1024 * 1024
_JPEG_QUALITY = 82
_WEBP_QUALITY = 80


@dataclass(frozen=True)
class PageImage:
    data: bytes
    sha256: str
    media_type: str
    cached: bool  # served from the rendition cache (memory or object store)

    @property
    def etag(self) -> str:
        return f'"{self.sha256}"'


class UnsupportedForRendering(InvalidInput):
    kind = "unsupported"
    code = "page_render_unsupported"


def cache_key(document_sha256: str, page: int, width: int, fmt: str) -> str:
    return f"thumbnails/{document_sha256}/{page}-{width}.{fmt}"


def check_request(doc: Document, page: int, width: int, fmt: str) -> None:
    """Bad input is refused before anything is read: format, width, page."""
    if fmt not in FORMATS:
        raise InvalidInput(f"不支持的图像格式 {fmt!r}；可用格式：{'、'.join(FORMATS)}", code="unsupported_image_format",
                           detail={"format": fmt, "allowed": list(FORMATS)})
    check_width(width)
    if doc.media_type == OFD:
        raise UnsupportedForRendering(f"材料“{doc.filename}”是 OFD 版式文件，不能生成页面图像；请下载原件查看",
                                      detail={"document": doc.id, "media_type": doc.media_type})
    if page < 1 or page > doc.page_count:
        raise NotFound(f"材料“{doc.filename}”共 {doc.page_count} 页，没有第 {page} 页", code="page_not_found",
                       detail={"document": doc.id, "page": page, "pages": doc.page_count})


def check_width(width: int) -> None:
    if width > MAX_WIDTH:
        raise InvalidInput(f"图像宽度 {width} 超过上限 {MAX_WIDTH} 像素", code="width_too_large",
                           detail={"w": width, "max": MAX_WIDTH})
    if width < MIN_WIDTH:
        raise InvalidInput(f"图像宽度 {width} 太小，至少 {MIN_WIDTH} 像素", code="width_too_small",
                           detail={"w": width, "min": MIN_WIDTH})


class _Lru:
    """Bytes-bounded LRU of rendered images (key → (sha256, bytes)), shared by the threads of a process. An entry
    counts its key, digest and bookkeeping (:data:`ENTRY_OVERHEAD`) besides its image, so many small thumbnails
    cannot hold more memory than the budget says."""

    ENTRY_OVERHEAD = 400  # bytes: the OrderedDict link, the tuple, the key and digest objects (measured ~350)

    def __init__(self, budget: int) -> None:
        self._budget, self._used = budget, 0
        self._items: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[str, bytes] | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
            return hit

    def put(self, key: str, sha256: str, data: bytes) -> None:
        if len(data) > self._budget // 4:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = (sha256, data)
            self._used += self._size(key, sha256, data)
            while self._used > self._budget:
                old_key, (old_sha, old) = self._items.popitem(last=False)
                self._used -= self._size(old_key, old_sha, old)

    @classmethod
    def _size(cls, key: str, sha256: str, data: bytes) -> int:
        return len(data) + len(key) + len(sha256) + cls.ENTRY_OVERHEAD

    @property
    def used(self) -> int:
        """Bytes counted against the budget (images, keys, digests and bookkeeping)."""
        return self._used

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._used = 0

    def drop_prefix(self, prefix: str) -> int:
        with self._lock:
            gone = [k for k in self._items if k.startswith(prefix)]
            for k in gone:
                sha, data = self._items.pop(k)
                self._used -= self._size(k, sha, data)
            return len(gone)


memory_cache = _Lru(MEMORY_CACHE_BYTES)


def evict(document_sha256: str) -> int:
    """Forget a destroyed document's rendered pages in this process (the caller deletes the stored copies)."""
    return memory_cache.drop_prefix(f"thumbnails/{document_sha256}/")


def page_image(ctx: Context, doc: Document, page: int, width: int, fmt: str) -> PageImage:
    """The page at the width and format: from the cache, else rendered from the original and cached."""
    check_request(doc, page, width, fmt)
    return _cached(ctx, cache_key(doc.sha256, page, width, fmt), fmt, lambda: render_page(
        ctx.store.read_bytes(doc.original_key), doc.media_type, page, width))


def remembered(doc: Document, page: int, width: int, fmt: str) -> PageImage | None:
    """The page from this process's memory cache, or None (nothing is read or rendered)."""
    hit = memory_cache.get(cache_key(doc.sha256, page, width, fmt))
    return None if hit is None else PageImage(hit[1], hit[0], FORMATS[fmt], cached=True)


_rendition_pages: OrderedDict[str, int] = OrderedDict()  # rendition SHA-256 → page count (a few thousand)


def rendition_pages(ctx: Context, key: str, sha256: str) -> int:
    """How many pages the signed rendition has: counted once per rendition (its digest never changes)."""
    import pypdfium2 as pdfium

    if sha256 not in _rendition_pages:
        _rendition_pages[sha256] = len(pdfium.PdfDocument(ctx.store.read_bytes(key)))
        while len(_rendition_pages) > 4096:
            _rendition_pages.popitem(last=False)
    return _rendition_pages[sha256]


def rendition_page_image(ctx: Context, key: str, sha256: str, page: int, width: int) -> PageImage:
    """Page ``page`` of an item's signed PDF/A (归档 PDF) as a JPEG, cached like a document's pages (under the
    rendition's SHA-256)."""
    check_width(width)
    pages = rendition_pages(ctx, key, sha256)
    if page < 1 or page > pages:
        raise NotFound(f"归档 PDF 共 {pages} 页，没有第 {page} 页", code="page_not_found",
                       detail={"page": page, "pages": pages})
    return _cached(ctx, cache_key(sha256, page, width, "jpeg"), "jpeg",
                   lambda: _render_pdf(ctx.store.read_bytes(key), page, width))


def stack_page_image(ctx: Context, batch: ScanBatch, page: int, width: int) -> PageImage:
    """Page ``page`` (1-based) of a batch's stored stack as a JPEG ``width`` pixels wide, cached like a
    document's pages (under the stack's SHA-256)."""
    check_width(width)
    if page < 1 or page > batch.pages_total:
        raise NotFound(f"扫描批次 {batch.id} 共 {batch.pages_total} 页，没有第 {page} 页", code="page_not_found",
                       detail={"batch": batch.id, "page": page, "pages": batch.pages_total})

    def render() -> Image.Image:
        with stored_stack(ctx, batch.original_key, batch.media_type) as stack:
            return _fit(stack.render(page), width)

    return _cached(ctx, cache_key(batch.sha256, page, width, "jpeg"), "jpeg", render)


def _cached(ctx: Context, key: str, fmt: str, render: Callable[[], Image.Image]) -> PageImage:
    """The image under ``key``: from memory, else from the object store, else rendered now and kept in both."""
    media_type = FORMATS[fmt]
    hit = memory_cache.get(key)
    if hit is not None:
        return PageImage(hit[1], hit[0], media_type, cached=True)
    try:
        info = ctx.store.stat(key)
        data = ctx.store.read_bytes(key)
        memory_cache.put(key, info.sha256, data)
        return PageImage(data, info.sha256, media_type, cached=True)
    except ObjectNotFound:
        pass
    data = encode(render(), fmt)
    sha = hashlib.sha256(data).hexdigest()
    try:
        ctx.store.put(key, io.BytesIO(data), size=len(data), sha256=sha, media_type=media_type)
    except ObjectExists:  # a concurrent request rendered it first, with other bytes: serve the stored one
        info = ctx.store.stat(key)
        data = ctx.store.read_bytes(key)
        sha = info.sha256
    memory_cache.put(key, sha, data)
    return PageImage(data, sha, media_type, cached=False)


def render_page(original: bytes, media_type: str, page: int, width: int) -> Image.Image:
    """Page ``page`` (1-based) of an original, scaled to ``width`` pixels wide, as RGB or L."""
    from PIL import Image, ImageOps

    if media_type == PDF:
        return _render_pdf(original, page, width)
    if media_type in (JPEG, PNG, TIFF):
        with Image.open(io.BytesIO(original)) as im:
            if media_type == TIFF:
                im.seek(page - 1)
            elif media_type == JPEG:
                im.draft("RGB", (width, max(1, width * im.height // max(1, im.width))))  # DCT scaling
            frame = ImageOps.exif_transpose(im) if media_type == JPEG else im
            return _fit(frame, width)
    raise UnsupportedForRendering(f"不支持为 {media_type} 文件生成页面图像", detail={"media_type": media_type})


def _render_pdf(original: bytes, page: int, width: int) -> Image.Image:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(original)
    try:
        p = pdf[page - 1]
        try:
            scale = width / p.get_width()
            bitmap = p.render(scale=scale, may_draw_forms=True)
            image = bitmap.to_pil()
            bitmap.close()
        finally:
            p.close()
    finally:
        pdf.close()
    return _fit(image, width)


def _fit(image: Image.Image, width: int) -> Image.Image:
    from PIL import Image

    if image.mode not in ("RGB", "L"):
        image = image.convert("RGBA").convert("RGB") if "A" in image.mode or image.mode == "P" else image.convert(
            "RGB")
    if image.width != width:
        height = max(1, round(image.height * width / image.width))
        image = image.resize((width, height), Image.Resampling.LANCZOS if width < image.width
                             else Image.Resampling.BICUBIC)
    return image


def encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "jpeg":
        image.save(out, "JPEG", quality=_JPEG_QUALITY, optimize=False)
    elif fmt == "png":
        image.save(out, "PNG", compress_level=6)
    else:
        image.save(out, "WEBP", quality=_WEBP_QUALITY, method=2)
    return out.getvalue()


def watermark(image: PageImage, fmt: str, text: str) -> PageImage:
    """The image with ``text`` (who, when) tiled across it in translucent grey; never cached."""
    from PIL import Image, ImageDraw

    with Image.open(io.BytesIO(image.data)) as im:
        base = im.convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    font = _font(max(12, base.width // 40))
    step_x, step_y = max(120, base.width // 2), max(60, base.height // 6)
    for y in range(step_y // 2, base.height, step_y):
        for x in range(-step_x // 2 if (y // step_y) % 2 else 0, base.width, step_x):
            draw.text((x, y), text, fill=(128, 128, 128, 96), font=font)
    merged = Image.alpha_composite(base, layer).convert("RGB")
    data = encode(merged, fmt)
    return PageImage(data, hashlib.sha256(data).hexdigest(), image.media_type, cached=False)


def watermark_text(who: str, at: datetime) -> str:
    return f"{who} {at:%Y-%m-%d %H:%M}"


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    from PIL import ImageFont

    for name in ("wqy-zenhei.ttc", "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", "DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size)
