"""Readers of a vendor's catalogue (目录): XLSX (openpyxl), XLS (xlrd), DBF (dbfread), XML and CSV (stdlib).

Each yields the header once and then the rows as ``{column: text}``, streaming (bounded memory). A catalogue that
cannot be read raises :class:`CatalogueUnreadable` carrying a finding for the dry-run report, never a library error.
"""

from __future__ import annotations

import csv
import datetime as dt
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from archive.imports.findings import Finding, finding
from archive.imports.profile import CatalogueSpec

Rows = Iterator[dict[str, str]]


class CatalogueUnreadable(Exception):
    def __init__(self, item: Finding) -> None:
        super().__init__(item["message"])
        self.finding = item


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip()


def format_of(path: Path, spec: CatalogueSpec) -> str:
    if spec.format != "auto":
        return spec.format
    return {".xlsx": "xlsx", ".xlsm": "xlsx", ".xls": "xls", ".dbf": "dbf", ".xml": "xml"}.get(
        path.suffix.lower(), "csv")


def read_catalogue(path: Path, spec: CatalogueSpec) -> tuple[list[str], Rows]:
    """The header (column names) and the rows of the catalogue at ``path``."""
    kind = format_of(path, spec)
    if not path.is_file():
        raise CatalogueUnreadable(finding("catalogue_unreadable", f"目录文件 {spec.file} 不存在"))
    reader = {"xlsx": _xlsx, "xls": _xls, "dbf": _dbf, "xml": _xml, "csv": _csv}[kind]
    try:
        header, rows = reader(path, spec)
    except CatalogueUnreadable:
        raise
    except UnicodeDecodeError:
        raise _encoding(spec) from None
    except Exception as exc:  # every library's own way of saying "not a valid file"
        raise CatalogueUnreadable(finding("catalogue_unreadable", f"目录文件 {spec.file} 不是有效的 {kind.upper()} "
                                          f"文件（{type(exc).__name__}），请向服务商索取完好的目录")) from None
    return header, _guarded(rows, spec, kind)


def _guarded(rows: Rows, spec: CatalogueSpec, kind: str) -> Rows:
    """Errors found while streaming (a bad byte on row 50,000) become findings too."""
    n = 0
    try:
        for row in rows:
            n += 1
            yield row
    except UnicodeDecodeError:
        raise _encoding(spec, n + 1) from None
    except CatalogueUnreadable:
        raise
    except Exception as exc:
        raise CatalogueUnreadable(finding("catalogue_unreadable", f"目录文件 {spec.file} 第 {n + 1} 行起无法读取"
                                          f"（{type(exc).__name__}），请向服务商索取完好的目录")) from None


def _encoding(spec: CatalogueSpec, row: int | None = None) -> CatalogueUnreadable:
    where = f"第 {row} 行" if row else ""
    return CatalogueUnreadable(finding("catalogue_encoding", f"目录文件 {spec.file} {where}不是 {spec.encoding} 编码；"
                                       "请在映射配置的 catalogue.encoding 中改为实际编码（如 utf-8 或 gb18030）"))


def _csv(path: Path, spec: CatalogueSpec) -> tuple[list[str], Rows]:
    handle = path.open(encoding="utf-8-sig" if spec.encoding.lower() in ("utf-8", "utf8") else spec.encoding,
                       newline="")
    reader = csv.reader(handle)
    header = [h.strip() for h in next(reader, [])]
    if not header:
        handle.close()
        raise CatalogueUnreadable(finding("catalogue_unreadable", f"目录文件 {spec.file} 是空的"))

    def rows() -> Rows:
        with handle:
            for values in reader:
                if any(v.strip() for v in values):
                    yield {h: _text(v) for h, v in zip(header, values, strict=False)}

    return header, rows()


def _xlsx(path: Path, spec: CatalogueSpec) -> tuple[list[str], Rows]:
    import openpyxl

    if not zipfile.is_zipfile(path):
        raise CatalogueUnreadable(finding("catalogue_unreadable", f"目录文件 {spec.file} 不是有效的 XLSX 文件"))
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    if spec.sheet is not None and spec.sheet not in book.sheetnames:
        book.close()
        raise CatalogueUnreadable(finding("catalogue_unreadable", f"目录文件中没有工作表“{spec.sheet}”；现有："
                                          f"{'、'.join(book.sheetnames)}"))
    sheet = book[spec.sheet] if spec.sheet else book.worksheets[0]
    it = sheet.iter_rows(values_only=True)
    header = [_text(h) for h in next(it, ())]

    def rows() -> Rows:
        try:
            for values in it:
                if any(v is not None and _text(v) for v in values):
                    yield {h: _text(v) for h, v in zip(header, values, strict=False) if h}
        finally:
            book.close()

    return header, rows()


def _xls(path: Path, spec: CatalogueSpec) -> tuple[list[str], Rows]:
    import xlrd

    book = xlrd.open_workbook(str(path), on_demand=True, encoding_override=spec.encoding)
    sheet = book.sheet_by_name(spec.sheet) if spec.sheet else book.sheet_by_index(0)
    header = [_text(v) for v in sheet.row_values(0)] if sheet.nrows else []

    def cell(c: Any) -> str:
        if c.ctype == xlrd.XL_CELL_DATE:
            return _text(xlrd.xldate_as_datetime(c.value, book.datemode))
        return _text(c.value)

    def rows() -> Rows:
        for r in range(1, sheet.nrows):
            values = [cell(c) for c in sheet.row(r)]
            if any(values):
                yield dict(zip(header, values, strict=False))

    return header, rows()


def _dbf(path: Path, spec: CatalogueSpec) -> tuple[list[str], Rows]:
    from dbfread import DBF

    table = DBF(str(path), encoding=spec.encoding, char_decode_errors="strict", load=False)
    header = list(table.field_names)

    def rows() -> Rows:
        for rec in table:
            yield {k: _text(v) for k, v in rec.items()}

    return header, rows()


def _xml(path: Path, spec: CatalogueSpec) -> tuple[list[str], Rows]:
    """Rows are the ``spec.record`` elements; columns their child elements (or attributes). The XML declaration's
    encoding wins; DOCTYPE/entities are refused (no entity expansion from a vendor's file)."""
    head = path.read_bytes()[:4096]
    if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
        raise CatalogueUnreadable(finding("catalogue_unreadable", f"目录文件 {spec.file} 含 DOCTYPE/实体声明，"
                                          "出于安全不予读取；请服务商提供不含 DTD 的 XML"))
    records = _xml_records(path, spec.record)
    first = next(records, None)
    if first is None:
        raise CatalogueUnreadable(finding("catalogue_unreadable", f"目录文件 {spec.file} 中没有 <{spec.record}> 记录；"
                                          "请在映射配置的 catalogue.record 中写明记录元素名"))
    header = list(first)

    def rows() -> Rows:
        yield first
        yield from records

    return header, rows()


def _xml_records(path: Path, tag: str) -> Rows:
    for _event, el in ElementTree.iterparse(path, events=("end",)):
        if el.tag == tag:
            row = {k: _text(v) for k, v in el.attrib.items()}
            row |= {child.tag: _text(child.text) for child in el}
            el.clear()
            yield row
