"""Fixtures made in code: scans as Pillow images at 200 dpi, PDFs made with pikepdf, certificates."""

from __future__ import annotations

import datetime as dt
import io
import struct
import zlib
from collections.abc import Sequence

import pikepdf
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image, ImageDraw

from signing.certificates import DevPki, KeySigner, issue_certificate, load_certificates, load_private_key
from signing.rendition import RenditionMetadata, SourceDocument

DPI = (200, 200)
A4_200DPI = (1654, 2339)


def scan(size: tuple[int, int] = (413, 585), mode: str = "RGB", seed: int = 0) -> Image.Image:
    """A page-like image: ruled lines and a little noise (default: A5-ish at 200 dpi, kept small for speed)."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    for y in range(20 + seed, size[1] - 20, 24):
        draw.line([(20, y), (size[0] - 20, y)], fill=(40, 40, 40), width=2)
    draw.rectangle([30, 30, size[0] // 3, 90], outline=(200, 0, 0), width=4)
    noise = Image.effect_noise(size, 10).convert("RGB")
    return Image.blend(image, noise, 0.1).convert(mode)


def jpeg(size: tuple[int, int] = (413, 585), quality: int = 80, seed: int = 0) -> bytes:
    buf = io.BytesIO()
    scan(size, seed=seed).save(buf, "JPEG", quality=quality, dpi=DPI)
    return buf.getvalue()


def png(mode: str = "RGB", size: tuple[int, int] = (300, 420)) -> bytes:
    buf = io.BytesIO()
    image = scan(size).convert(mode)
    if mode == "RGBA":
        image.putalpha(Image.new("L", size, 180))
    image.save(buf, "PNG", dpi=DPI)
    return buf.getvalue()


def tiff(pages: int = 3, size: tuple[int, int] = (300, 420)) -> bytes:
    frames = [scan(size, seed=i).convert("L" if i % 2 else "RGB") for i in range(pages)]
    buf = io.BytesIO()
    frames[0].save(buf, "TIFF", save_all=True, append_images=frames[1:], compression="tiff_lzw", dpi=DPI)
    return buf.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width × height pixels (a decompression bomb's calling card)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _chunk(b"IEND", b""))


def simple_pdf(pages: int = 1, *, javascript: bool = False, attachment: bool = False,
               unembedded_font: bool = False) -> pikepdf.Pdf:
    pdf = pikepdf.new()
    for i in range(pages):
        pdf.add_blank_page(page_size=(595, 842))
        page = pdf.pages[-1]
        content = b"0 0 1 rg 72 72 200 100 re f"
        if unembedded_font:
            page.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=pikepdf.Dictionary(
                Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica)))
            content += b" BT /F1 12 Tf 72 300 Td (page %d) Tj ET" % i
        page.Contents = pdf.make_stream(content)
    if javascript:
        pdf.Root.OpenAction = pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.alert(1)"))
    if attachment:
        pdf.attachments["note.txt"] = pikepdf.AttachedFileSpec(pdf, b"hidden", mime_type="text/plain")
    return pdf


def pdf_bytes(pdf: pikepdf.Pdf, **save: object) -> bytes:
    buf = io.BytesIO()
    pdf.save(buf, **save)  # type: ignore[arg-type]
    return buf.getvalue()


def metadata(**overrides: object) -> RenditionMetadata:
    values: dict[str, object] = dict(
        archival_code="J001-YW·2024-D30-GJ-000001", business_serial="LS2024030100017",
        business_type="住房公积金提取", retention="D30", title="张三 提取住房公积金（购房）",
        dates=[dt.date(2024, 3, 1)], parties=["张三", "110101199003071234"])
    values.update(overrides)
    return RenditionMetadata(**values)  # type: ignore[arg-type]


def jpeg_documents(count: int = 3) -> list[SourceDocument]:
    return [SourceDocument(f"材料{i + 1}", "image/jpeg", data=jpeg(seed=i), material_type="申请表")
            for i in range(count)]


def leaf_from_dev_ca(pki: DevPki, *, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | None = None,
                     days: Sequence[int] = (-1, 365), key_usage: x509.KeyUsage | None = None,
                     eku: Sequence[x509.ObjectIdentifier] = ()) -> tuple[x509.Certificate, object]:
    """A certificate issued by the development CA with a chosen validity (days from now) and usage."""
    ca_cert = load_certificates(pki.ca_cert)[0]
    ca_key = load_private_key(pki.ca_key)
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "住房公积金管理中心"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "测试证书")])
    usage = key_usage or x509.KeyUsage(True, True, False, False, False, False, False, False, False)
    cert = issue_certificate(name, key.public_key(), ca_cert, ca_key, not_before=now + dt.timedelta(days=days[0]),
                             not_after=now + dt.timedelta(days=days[1]), key_usage=usage, extended_key_usage=eku)
    return cert, key


def unchecked_signer(cert: x509.Certificate, key: object, pki: DevPki) -> KeySigner:
    """A signer built without the certificate checks, to see that sign_pdf checks again."""
    return KeySigner(cert, key, load_certificates(pki.ca_cert))  # type: ignore[arg-type]


SERVER_AUTH_ONLY = [ExtendedKeyUsageOID.SERVER_AUTH]
KEY_ENCIPHERMENT_ONLY = x509.KeyUsage(False, False, True, False, False, False, False, False, False)
