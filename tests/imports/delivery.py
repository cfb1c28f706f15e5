"""A small generated vendor delivery (catalogue + page-image folders) for the import tests and the benchmark."""

from __future__ import annotations

import csv
import io
import zlib
from collections.abc import Iterable
from pathlib import Path

from PIL import Image, ImageDraw

PROFILE = """
vendor = "某数字化服务公司"
delivery = "2015年提取档案第1批"
layout = "{年度}/{档号}"
archival_code = "keep"
retention = "catalogue"

[catalogue]
file = "目录.csv"
encoding = "gb18030"

[business_type]
field = "类别"
map = {"提取" = "TQ01", "贷款" = "DK01"}
"""

ID_OK = "110105196501150016"


def code(n: int, year: int = 2015) -> str:
    return f"J001-YW·{year}-D30-TQ-{n:06d}"


def page(text: str, dpi: int = 200, size: tuple[int, int] = (170, 240)) -> bytes:
    """A small page image with some ink on it (distinct per ``text``) at ``dpi``."""
    im = Image.new("L", size, 255)
    d = ImageDraw.Draw(im)
    h = zlib.crc32(text.encode())
    for i in range(12):
        y = 10 + i * 18
        d.rectangle([10, y, 10 + (h >> i) % 140, y + 8], fill=0)
    d.text((10, size[1] - 20), text[-12:], fill=0)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=60, dpi=(dpi, dpi))
    return buf.getvalue()


def make_delivery(root: Path, rows: Iterable[dict[str, str]], pages: int = 3, encoding: str = "gb18030") -> Path:
    """Write the catalogue and, for every row, its folder ``年度/档号`` with ``pages`` numbered JPEGs."""
    root.mkdir(parents=True, exist_ok=True)
    rows = list(rows)
    header = ["DH", "TM", "ND", "类别", "BGQX", "YS", "RQ", "XM", "ZJHM"]
    with (root / "目录.csv").open("w", encoding=encoding, newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for r in rows:
            w.writerow([r.get(h, "") for h in header])
    for r in rows:
        folder = root / r["ND"] / r["DH"]
        folder.mkdir(parents=True, exist_ok=True)
        for p in range(1, pages + 1):
            (folder / f"{p:04d}.jpg").write_bytes(page(f"{r['DH']}-{p}"))
    return root


def row(n: int, **over: str) -> dict[str, str]:
    return {"DH": code(n), "TM": f"张三{n}提取住房公积金", "ND": "2015", "类别": "提取", "BGQX": "定期30年",
            "YS": "3", "RQ": "2015-03-0" + str(1 + n % 8), "XM": f"张三{n}", "ZJHM": ID_OK} | over
