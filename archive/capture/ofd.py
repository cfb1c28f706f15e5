"""OFD containers (GB/T 33190), opened defensively: the one check used at upload and by 四性检测 GD-3-4.

An OFD is a zip of XML parts and resources. Before anything is accepted: the entries are counted and
their declared sizes bounded (a zip bomb), their names must be plain relative paths (no ``..``, no
absolute or drive paths, no backslashes or control characters) and no entry may be a symbolic link or
encrypted; every entry's CRC is checked by reading it (each read stops at the declared size); and every
XML part is parsed without a DTD, entities or network access (no XXE, no entity expansion).
"""

from __future__ import annotations

import functools
import io
import logging
import re
import stat
import zipfile
from typing import TYPE_CHECKING

from archive.capture.sniff import OFD_MAX_UNPACKED
from archive.errors import InvalidInput

if TYPE_CHECKING:
    from lxml import etree

log = logging.getLogger(__name__)

MAX_UNPACKED = OFD_MAX_UNPACKED  # declared total of all entries
MAX_ENTRIES = 10_000
MAX_XML_BYTES = 32 * 1024**2  # one XML part
_PAGE = re.compile(r"(^|/)Pages/Page_\d+/Content\.xml$")
_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


@functools.cache
def _parser() -> etree.XMLParser:
    from lxml import etree

    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_comments=True)


def check_ofd(data: bytes, filename: str, *, max_pages: int | None = None) -> int:
    """Check one OFD container; returns its page count. Raises InvalidInput naming the problem."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = z.infolist()
            _check_entries(infos, filename)
            pages = sum(1 for i in infos if _PAGE.search(i.filename))
            if max_pages is not None and pages > max_pages:
                raise InvalidInput(f"文件“{filename}”共 {pages} 页，超过单个文件 {max_pages} 页的上限；"
                                   "请分成多个文件提交", code="document_too_many_pages",
                                   detail={"filename": filename, "pages": pages, "max_pages": max_pages})
            for info in infos:
                _check_content(z, info, filename)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError,
            RuntimeError) as exc:
        log.info("corrupt OFD %r: %s", filename, exc)
        raise _bad("ofd_corrupt", f"文件“{filename}”是损坏的压缩包，不是有效的 OFD 文件；请从原系统重新导出",
                   filename) from None
    return max(pages, 1)


def _check_entries(infos: list[zipfile.ZipInfo], filename: str) -> None:
    if len(infos) > MAX_ENTRIES:
        raise _bad("ofd_too_large", f"OFD 文件“{filename}”含 {len(infos)} 个条目（上限 {MAX_ENTRIES}），"
                   "可能是恶意文件", filename, entries=len(infos))
    if sum(i.file_size for i in infos) > MAX_UNPACKED:
        raise _bad("ofd_too_large", f"OFD 文件“{filename}”解压后过大，可能是恶意文件", filename)
    names = set()
    for info in infos:
        name = info.filename
        if unsafe_entry_name(name) or stat.S_ISLNK(info.external_attr >> 16):
            raise _bad("ofd_unsafe_entry", f"OFD 文件“{filename}”含有不安全的条目（绝对路径、“..”上级目录、"
                       "符号链接或控制字符），可能是恶意文件，未接收；请从原系统重新导出", filename,
                       entry=name.encode("unicode_escape").decode("ascii")[:200])
        if info.flag_bits & 0x1:
            raise _bad("ofd_encrypted", f"OFD 文件“{filename}”含有加密的条目，档案须无需密码即可打开；"
                       "请提供未加密的 OFD 文件", filename, entry=name[:200])
        names.add(name)
    if "OFD.xml" not in names:
        raise _bad("ofd_corrupt", f"文件“{filename}”缺少 OFD.xml，不是有效的 OFD 文件；请从原系统重新导出",
                   filename)


def unsafe_entry_name(name: str) -> bool:
    """An entry name that is not a plain relative path inside the container."""
    return (not name or name.startswith("/") or "\\" in name or re.match(r"[A-Za-z]:", name) is not None
            or any(part == ".." for part in name.split("/"))
            or any(ord(c) < 32 or ord(c) == 127 for c in name))


def _check_content(z: zipfile.ZipFile, info: zipfile.ZipInfo, filename: str) -> None:
    """Read the entry to its end (the CRC is checked there); parse XML parts safely."""
    is_xml = info.filename.lower().endswith(".xml")
    if is_xml and info.file_size > MAX_XML_BYTES:
        raise _bad("ofd_too_large", f"OFD 文件“{filename}”中的 {info.filename} 过大，可能是恶意文件", filename)
    buf = io.BytesIO() if is_xml else None
    with z.open(info) as entry:
        while chunk := entry.read(1024 * 1024):
            if buf is not None:
                buf.write(chunk)
    if buf is not None:
        _check_xml(buf.getvalue(), info.filename, filename)


def _check_xml(raw: bytes, entry: str, filename: str) -> None:
    from lxml import etree

    unsafe = _bad("ofd_xml_unsafe", f"OFD 文件“{filename}”中的 {entry} 含有 DTD 或实体声明（可能读取服务器文件或"
                  "耗尽内存），未接收；请从原系统重新导出", filename, entry=entry)
    if _DTD.search(raw):
        raise unsafe
    try:
        root = etree.fromstring(raw, _parser())
    except etree.XMLSyntaxError as exc:
        log.info("malformed XML %s in OFD %r: %s", entry, filename, exc)
        raise _bad("ofd_corrupt", f"OFD 文件“{filename}”中的 {entry} 不是格式正确的 XML；请从原系统重新导出",
                   filename, entry=entry) from None
    if root.getroottree().docinfo.doctype:
        raise unsafe


def _bad(code: str, message: str, filename: str, **detail: object) -> InvalidInput:
    return InvalidInput(message, code=code, detail={"filename": filename, **detail})
