"""Cover sheet (扫描封面): the 业务流水号 as Code128 and QR, to lie on top of paper that will be scanned.

Bars are drawn as vectors from python-barcode's module pattern, so every module is exactly
``MODULE_MM`` wide however the sheet is printed; the QR code (segno) survives rotation.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from archive.capture.separation import separator_text
from archive.pdfs import A4, a4_canvas, cjk_font, mm

if TYPE_CHECKING:
    from reportlab.pdfgen.canvas import Canvas

MODULE_MM = 0.4  # narrowest bar; ≥ 0.4 mm reads reliably at 200 dpi
QUIET_MODULES = 10
BAR_HEIGHT_MM = 18
QR_MODULE_MM = 1.0
MARKER = "ARCHIVE-COVER"  # printed under the barcode so people know what the sheet is for


@dataclass(frozen=True)
class ChecklistLine:
    name: str
    required: bool
    present: bool


def code128_modules(serial: str) -> str:
    """The bar/space pattern ('1' = bar) of ``serial`` in Code128."""
    import barcode

    return barcode.get("code128", serial).build()[0]


def draw_code128(c: Canvas, text: str, center_x: float, y: float, max_width: float) -> None:
    """``text`` as vector Code128 bars centred on ``center_x`` with their foot at ``y``; modules are
    ``MODULE_MM`` wide, narrower only when that would not fit in ``max_width`` (the QR then reads better)."""
    pattern = code128_modules(text)
    module = min(MODULE_MM * mm, max_width / (len(pattern) + 2 * QUIET_MODULES))
    x0 = center_x - len(pattern) * module / 2
    c.setFillColorRGB(0, 0, 0)
    run_start = None
    for i, bit in enumerate(pattern + "0"):
        if bit == "1" and run_start is None:
            run_start = i
        elif bit == "0" and run_start is not None:
            c.rect(x0 + run_start * module, y, (i - run_start) * module, BAR_HEIGHT_MM * mm, stroke=0, fill=1)
            run_start = None


def draw_qr(c: Canvas, text: str, right: float, bottom: float) -> float:
    """``text`` as a QR code (error level H) whose quiet zone's lower right corner is at (right, bottom);
    returns the side of the symbol with its quiet zone."""
    import segno

    qr = segno.make(text, error="h")
    side = qr.symbol_size()[0] * QR_MODULE_MM * mm
    x, n = right - side, len(qr.matrix)
    for row, bits in enumerate(qr.matrix):
        for col, bit in enumerate(bits):
            if bit:
                c.rect(x + (col + 4) * QR_MODULE_MM * mm, bottom + (n - row + 3) * QR_MODULE_MM * mm,
                       QR_MODULE_MM * mm, QR_MODULE_MM * mm, stroke=0, fill=1)
    return side


def render(serial: str, business_type: str, applicant: str | None, branch: str,
           checklist: Sequence[ChecklistLine], center: str, font_path: Path | None = None) -> bytes:
    font = cjk_font(font_path)
    buf = io.BytesIO()
    width, height = A4
    c = a4_canvas(buf, title=f"扫描封面 {serial}", author=center)

    # Barcode in the top strip: the separator reads the top of each page first.
    y0 = height - 20 * mm - BAR_HEIGHT_MM * mm
    draw_code128(c, serial, width / 2, y0, width - 20 * mm)
    c.setFont("Helvetica", 12)
    c.drawCentredString(width / 2, y0 - 6 * mm, serial)

    c.setFont(font, 22)
    c.drawCentredString(width / 2, y0 - 20 * mm, "业务档案扫描封面")
    c.setFont(font, 12)
    lines = [f"业务流水号：{serial}", f"业务类型：{business_type}", f"办理网点：{branch}"]
    if applicant:
        lines.append(f"申请人：{applicant}")
    y = y0 - 34 * mm
    for text in lines:
        c.drawString(25 * mm, y, text)
        y -= 8 * mm

    draw_qr(c, serial, width - 25 * mm, y0 - 67 * mm)

    y -= 8 * mm
    c.setFont(font, 14)
    c.drawString(25 * mm, y, "材料清单（请按此顺序放在本页之后）")
    c.setFont(font, 11)
    y -= 9 * mm
    for line in checklist:
        mark = "【已附】" if line.present else "【待附】"
        kind = "必备" if line.required else "可选"
        c.drawString(28 * mm, y, f"{mark} {line.name}（{kind}）")
        y -= 7 * mm
        if y < 30 * mm:
            break
    c.setFont(font, 9)
    c.drawString(25 * mm, 15 * mm, f"{center} · 本页由系统生成，扫描时请放在该笔业务材料的最上面 · {MARKER}")
    c.showPage()
    c.save()
    return buf.getvalue()


SEPARATOR_MARKER = "ARCHIVE-SEPARATOR"


@dataclass(frozen=True)
class SeparatorLine:
    material_type: str
    name: str
    required: bool


def render_separators(serial: str, business_type: str, applicant: str | None, sheets: Sequence[SeparatorLine],
                      center: str, font_path: Path | None = None) -> bytes:
    """Material separator sheets (材料分隔页): one page per material, its barcodes carrying
    ``SEP:<serial>:<material type>`` (see archive.capture.separation), its name printed large."""
    from reportlab.pdfbase import pdfmetrics

    font = cjk_font(font_path)
    buf = io.BytesIO()
    width, height = A4
    c = a4_canvas(buf, title=f"材料分隔页 {serial}", author=center)
    for number, sheet in enumerate(sheets, 1):
        text = separator_text(serial, sheet.material_type)
        y0 = height - 20 * mm - BAR_HEIGHT_MM * mm  # the top strip, read first, as on the cover sheet
        draw_code128(c, text, width / 2, y0, width - 20 * mm)
        c.setFont("Helvetica", 10)
        c.drawCentredString(width / 2, y0 - 5 * mm, text)

        c.setFont(font, 20)
        c.drawCentredString(width / 2, y0 - 20 * mm, "材料分隔页")
        size = min(44.0, (width - 30 * mm) / max(pdfmetrics.stringWidth(sheet.name, font, 1), 1))
        c.setFont(font, size)
        c.drawCentredString(width / 2, y0 - 42 * mm, sheet.name)
        c.setFont(font, 14)
        kind = "必备材料" if sheet.required else "可选材料"
        c.drawCentredString(width / 2, y0 - 54 * mm, f"（{kind} · 第 {number} 张，共 {len(sheets)} 张）")

        c.setFont(font, 12)
        y = y0 - 72 * mm
        for line in [f"业务流水号：{serial}", f"业务类型：{business_type}",
                     *([f"申请人：{applicant}"] if applicant else []), f"材料类型代码：{sheet.material_type}"]:
            c.drawString(25 * mm, y, line)
            y -= 8 * mm
        draw_qr(c, text, width - 20 * mm, y0 - 110 * mm)

        c.setFont(font, 14)
        y = y0 - 125 * mm
        c.drawString(25 * mm, y, "使用方法")
        c.setFont(font, 10.5)
        for line in [f"1. 把本页放在“{sheet.name}”第一页的前面，随扫描封面和其他材料一起批量扫描。",
                     f"2. 系统读取本页条码，把其后各页归为“{sheet.name}”，直到下一张分隔页或封面。",
                     "3. 本页和扫描封面不会进入归档文件；扫描后本页可以留作下次使用。",
                     f"4. 本页只能用于业务 {serial}，不要放进其他业务的材料中。"]:
            y -= 8 * mm
            c.drawString(25 * mm, y, line)
        c.setFont(font, 9)
        c.drawString(25 * mm, 15 * mm, f"{center} · 本页由系统生成 · {SEPARATOR_MARKER}")
        c.showPage()
    c.save()
    return buf.getvalue()
