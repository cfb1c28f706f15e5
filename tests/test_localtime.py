"""Times people read (PDF reports, lists, registers) are local to the center with the zone shown."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pypdfium2 as pdfium

from archive.context import Context
from archive.localtime import local_time
from archive.retention import register as transfer_register

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_local_time_shows_the_zone() -> None:
    """Given a UTC time, an ISO string, a naive time and junk, When formatted for people,
    Then the first two are local with their offset, the naive one carries no invented zone, junk is kept."""
    at = datetime(2026, 12, 3, 5, 45, 10, tzinfo=UTC)
    assert local_time(at, SHANGHAI) == "2026-12-03 13:45:10（UTC+08:00）"
    assert local_time("2026-12-03T05:45:10+00:00", SHANGHAI) == "2026-12-03 13:45:10（UTC+08:00）"
    assert local_time(at, ZoneInfo("America/St_Johns")) == "2026-12-03 02:15:10（UTC-03:30）"
    assert local_time(datetime(2026, 12, 3, 5, 45, 10), SHANGHAI) == "2026-12-03 05:45:10"
    assert local_time("not a time", SHANGHAI) == "not a time" and local_time(None, SHANGHAI) == ""


def test_transfer_register_pdf_prints_local_time(ctx: Context) -> None:
    """Given a register made at 05:45 UTC and received at 06:00 UTC, When its 移交与接收登记表 is rendered,
    Then both times read in Beijing time with the zone shown."""
    register = {"package_no": "J001-YJ-1", "created_at": "2026-12-03T05:45:10+00:00", "created_by": "arch"}
    receipt = {"received_at": "2026-12-03T06:00:00+00:00", "received_by": "head"}
    pdf = transfer_register.register_pdf(ctx, register, [], receipt)
    text = "".join(p.get_textpage().get_text_range() for p in pdfium.PdfDocument(pdf))
    assert "2026-12-03 13:45:10（UTC+08:00）" in text and "2026-12-03 14:00:00（UTC+08:00）" in text
