"""Sample files built in code, named by purpose: nothing binary lives in the repository."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import pikepdf
from PIL import Image, ImageDraw

A4_200DPI = (1654, 2339)


def page_image(text: str = "申请表", size: tuple[int, int] = A4_200DPI) -> Image.Image:
    img = Image.new("L", size, 255)
    draw = ImageDraw.Draw(img)
    for y in range(200, size[1] - 200, 60):
        draw.line((150, y, size[0] - 150, y), fill=80, width=3)
    draw.rectangle((150, 100, 600, 160), fill=0)
    draw.text((160, 110), text.encode("ascii", "replace").decode(), fill=255)
    return img


def jpeg(dpi: int = 200, size: tuple[int, int] = A4_200DPI, quality: int = 75, text: str = "page") -> bytes:
    buf = io.BytesIO()
    page_image(text, size).convert("RGB").save(buf, "JPEG", dpi=(dpi, dpi), quality=quality)
    return buf.getvalue()


def png(dpi: int = 200, size: tuple[int, int] = A4_200DPI) -> bytes:
    buf = io.BytesIO()
    page_image("png", size).save(buf, "PNG", dpi=(dpi, dpi))
    return buf.getvalue()


def tiff(pages: int = 3, dpi: int = 200) -> bytes:
    frames = [page_image(f"p{i}") for i in range(pages)]
    buf = io.BytesIO()
    frames[0].save(buf, "TIFF", save_all=True, append_images=frames[1:], dpi=(dpi, dpi), compression="tiff_deflate")
    return buf.getvalue()


def pdf(pages: int = 2) -> bytes:
    doc = pikepdf.new()
    for _ in range(pages):
        doc.add_blank_page(page_size=(595, 842))
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def encrypted_pdf() -> bytes:
    doc = pikepdf.open(io.BytesIO(pdf(1)))
    buf = io.BytesIO()
    doc.save(buf, encryption=pikepdf.Encryption(owner="o", user="u"))
    return buf.getvalue()


def javascript_pdf() -> bytes:
    doc = pikepdf.open(io.BytesIO(pdf(1)))
    js = doc.make_indirect(pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.alert('x')")))
    doc.Root.OpenAction = js
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def embedded_file_pdf() -> bytes:
    doc = pikepdf.open(io.BytesIO(pdf(1)))
    doc.attachments["payload.exe"] = pikepdf.AttachedFileSpec(doc, b"MZ\x90\x00", mime_type="application/octet-stream")
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A tiny file that claims 30000×30000 pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width // 8 + 2) * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def ofd() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("OFD.xml", '<?xml version="1.0"?><ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016"/>')
        z.writestr("Doc_0/Pages/Page_0/Content.xml", "<ofd:Page/>")
        z.writestr("Doc_0/Pages/Page_1/Content.xml", "<ofd:Page/>")
    return buf.getvalue()


def cover_image(serial: str, rotate: float = 0, dpi: int = 200) -> Image.Image:
    """A printed-and-scanned cover sheet: rendered at ``dpi``, optionally askew."""
    import pypdfium2 as pdfium

    from archive.capture.cover_sheet import ChecklistLine, render

    pdf_bytes = render(serial, "购买自住住房提取", "张*", "BR01", [ChecklistLine("申请表", True, False)], "中心")
    doc = pdfium.PdfDocument(pdf_bytes)
    image = doc[0].render(scale=dpi / 72, grayscale=True).to_pil()
    doc.close()
    return image.rotate(rotate, expand=True, fillcolor=255) if rotate else image


def stack_pdf(pages: list[Image.Image], dpi: int = 200) -> bytes:
    """A scanner's multi-page PDF: one JPEG per page."""
    import img2pdf

    frames = []
    for page in pages:
        buf = io.BytesIO()
        page.convert("L").save(buf, "JPEG", quality=70, dpi=(dpi, dpi))
        frames.append(buf.getvalue())
    return img2pdf.convert(frames)


def stack_tiff(pages: list[Image.Image], dpi: int = 200) -> bytes:
    frames = [p.convert("L") for p in pages]
    buf = io.BytesIO()
    frames[0].save(buf, "TIFF", save_all=True, append_images=frames[1:], dpi=(dpi, dpi), compression="tiff_deflate")
    return buf.getvalue()


def pdf_pages(pdf_bytes: bytes, dpi: int = 200) -> list[Image.Image]:
    """Each page of a generated PDF (cover sheet, separator sheets) as printed and scanned at ``dpi``."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(pdf_bytes)
    images = [doc[i].render(scale=dpi / 72, grayscale=True).to_pil() for i in range(len(doc))]
    doc.close()
    return images
