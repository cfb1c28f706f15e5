"""Retention arithmetic: when a 保管期限 counted from its trigger ends."""

from __future__ import annotations

from datetime import date, timedelta

from archive.classification import RetentionCode


def counting_start(trigger_date: date, counting: str) -> date:
    """``next_year``: 1 January after the trigger (文书档案); ``next_day``: the day after (会计档案)."""
    if counting == "next_year":
        return date(trigger_date.year + 1, 1, 1)
    if counting == "next_day":
        return trigger_date + timedelta(days=1)
    raise ValueError(f"unknown counting rule {counting!r}")


def expiry_date(code: RetentionCode | str, trigger_date: date | None, counting: str) -> date | None:
    """The first day the item may be appraised; None for 永久 and for items still waiting for their trigger."""
    years = RetentionCode(code).years
    if years is None or trigger_date is None:
        return None
    start = counting_start(trigger_date, counting)
    try:
        return start.replace(year=start.year + years)
    except ValueError:  # 29 February
        return start.replace(year=start.year + years, day=28)
