"""Generated PDFs: the CJK font and the page, paragraph and table set-up shared by every document the system
prints (cover and separator sheets, check reports, destruction lists, transfer registers).

Each document is drawn by the module that owns its content (archive/capture/cover_sheet.py,
archive/checks/reports.py, archive/retention/destruction.py, archive/retention/register.py); times on them are
local times of the center (archive/localtime.py).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from xml.sax.saxutils import escape

if TYPE_CHECKING:
    from reportlab.lib import colors
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfgen.canvas import Canvas
    from reportlab.platypus import Flowable, Paragraph, Table

log = logging.getLogger(__name__)

SYSTEM_FONTS = (Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
                Path("/usr/share/fonts/truetype/arphic/uming.ttc"))
CID_FALLBACK = "STSong-Light"  # not embedded: shows in Acrobat and on printers, not in every viewer
HEADER_GREY = "#e8e8e8"
# reportlab.lib.units.mm and .pagesizes.A4, computed as reportlab does (the same floats), so that modules placing
# things on a page need not import reportlab until they draw (`archive serve` starts without it)
mm = 72.0 / 2.54 * 0.1
A4 = (210 * mm, 297 * mm)


@cache
def cjk_font(configured: Path | None = None) -> str:
    """Register and name the font for Chinese text: an embedded TrueType subset when one is found."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfbase.ttfonts import TTFont

    for path in ([configured] if configured else []) + [p for p in SYSTEM_FONTS if p.exists()]:
        try:
            pdfmetrics.registerFont(TTFont("ArchiveCJK", str(path), subfontIndex=0))
            return "ArchiveCJK"
        except Exception as exc:  # reportlab raises TTFError and plain errors for unusable files
            log.warning("cannot use %s for Chinese text: %s", path, exc)
    log.warning("no TrueType CJK font found; cover sheets use the non-embedded %s (set ARCHIVE_CJK_FONT)",
                CID_FALLBACK)
    pdfmetrics.registerFont(UnicodeCIDFont(CID_FALLBACK))
    return CID_FALLBACK


def a4_canvas(buf: BinaryIO, *, title: str, author: str, invariant: bool = False) -> Canvas:
    """A portrait A4 page drawn by hand (sheets, registers); ``invariant`` leaves out the creation date."""
    from reportlab.pdfgen.canvas import Canvas

    c = Canvas(buf, pagesize=A4, pageCompression=1, **({"invariant": 1} if invariant else {}))
    c.setTitle(title)
    c.setAuthor(author)
    return c


def style(name: str, font: str, size: float, leading: float, **options: Any) -> ParagraphStyle:
    """A paragraph style in the CJK font; ``wordWrap="CJK"`` breaks lines between Chinese characters."""
    from reportlab.lib.styles import ParagraphStyle

    return ParagraphStyle(name, fontName=font, fontSize=size, leading=leading, **options)


def cell(value: object, paragraph_style: ParagraphStyle) -> Paragraph:
    """Text from the catalogue as a table cell: escaped, it is never read as markup."""
    from reportlab.platypus import Paragraph

    return Paragraph(escape(str(value)), paragraph_style)


def grid_table(rows: Sequence[Sequence[Any]], widths: Sequence[float], *, grid: colors.Color | str = "grey",
               header: colors.Color | str = HEADER_GREY, font: str | None = None) -> Table:
    """A ruled table whose first row is a grey heading repeated on every page (colours as reportlab colours or
    their names)."""
    from reportlab.lib import colors
    from reportlab.platypus import Table, TableStyle

    commands: list[tuple[Any, ...]] = [("FONT", (0, 0), (-1, -1), font, 8)] if font else []
    commands += [("GRID", (0, 0), (-1, -1), 0.4, colors.toColor(grid)), ("VALIGN", (0, 0), (-1, -1), "TOP"),
                 ("BACKGROUND", (0, 0), (-1, 0), colors.toColor(header))]
    table = Table(rows, colWidths=list(widths), repeatRows=1)
    table.setStyle(TableStyle(commands))
    return table


def landscape_pdf(story: list[Flowable], *, margin: float, title: str, author: str) -> bytes:
    """Lay out ``story`` on landscape A4 pages (lists and reports with wide tables)."""
    from reportlab.lib.pagesizes import landscape
    from reportlab.platypus import SimpleDocTemplate

    buf = io.BytesIO()
    SimpleDocTemplate(buf, pagesize=landscape(A4), leftMargin=margin, rightMargin=margin, topMargin=margin,
                      bottomMargin=margin, title=title, author=author).build(story)
    return buf.getvalue()
