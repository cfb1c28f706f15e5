"""What a file is, from its content: never from its name or the Content-Type header."""

from __future__ import annotations

import zipfile
from typing import BinaryIO

from archive.errors import InvalidInput

JPEG, PNG, TIFF, PDF, OFD = "image/jpeg", "image/png", "image/tiff", "application/pdf", "application/ofd"
ACCEPTED = (JPEG, PNG, TIFF, PDF, OFD)
NAMES = {JPEG: "JPEG", PNG: "PNG", TIFF: "TIFF", PDF: "PDF", OFD: "OFD"}
OFD_MAX_UNPACKED = 1024**3  # a zip bomb dressed as OFD


def sniff(head: bytes, stream: BinaryIO | None = None, filename: str = "") -> str:
    """The media type of a file from its first bytes (and, for a zip, its entries)."""
    if not head:
        raise InvalidInput(f"文件“{filename}”是空文件（0 字节），请重新扫描或选择正确的文件", code="file_empty",
                           detail={"filename": filename})
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return TIFF
    if b"%PDF-" in head[:1024]:
        return PDF
    if head.startswith(b"PK\x03\x04") and stream is not None and _is_ofd(stream, filename):
        return OFD
    raise InvalidInput(
        f"文件“{filename}”的格式不受支持；请提交 JPEG、PNG、TIFF、PDF 或 OFD 文件（按内容识别，与扩展名无关）",
        code="unsupported_format", detail={"filename": filename, "accepted": [NAMES[m] for m in ACCEPTED]})


def _is_ofd(stream: BinaryIO, filename: str) -> bool:
    stream.seek(0)
    try:
        with zipfile.ZipFile(stream) as z:
            names = z.namelist()
            unpacked = sum(i.file_size for i in z.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        raise InvalidInput(f"文件“{filename}”是损坏的压缩包，不是有效的 OFD 文件", code="ofd_corrupt",
                           detail={"filename": filename}) from None
    finally:
        stream.seek(0)
    if "OFD.xml" not in names:
        return False
    if unpacked > OFD_MAX_UNPACKED:
        raise InvalidInput(f"OFD 文件“{filename}”解压后过大，可能是恶意文件", code="ofd_too_large",
                           detail={"filename": filename})
    return True
