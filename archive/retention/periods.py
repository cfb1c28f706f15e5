"""Retention arithmetic: which business events start a 保管期限, and when it ends counted from its trigger."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from archive.classification import RetentionCode, Trigger


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


PERMANENT_LOCK_YEARS = 100  # object lock of 永久 items (and of items waiting for their trigger); extended later


def lock_end(expiry: date | None, years: int | None, counted_from: date) -> datetime:
    """Object-lock end of an item's objects: its expiry, else the earliest end it could have.

    With no expiry yet (永久, or still waiting for its trigger) the lock runs ``years`` (永久: PERMANENT_LOCK_YEARS)
    from 1 January after ``counted_from`` (the day it closed; for an appraisal, the day of the decision), so later
    events only ever extend it.
    """
    if expiry is None:
        expiry = date(counted_from.year + 1 + (years if years is not None else PERMANENT_LOCK_YEARS), 1, 1)
    return datetime(expiry.year, expiry.month, expiry.day, tzinfo=UTC)


def case_keys(case: Any, trigger: Trigger) -> list[tuple[str, str, str]]:
    """(event type, key kind, value) of the events that would start ``trigger`` for a case (or a row with its
    key columns)."""
    if trigger is Trigger.LOAN_SETTLED:
        return [("loan_settled", "loan_contract_no", case.loan_contract_no)] if case.loan_contract_no else []
    if trigger is Trigger.ACCOUNT_CLOSED:
        if case.unit_uscc:
            return [("unit_deregistered", "uscc", case.unit_uscc)]
        return [("account_closed", k, v) for k, v in (("personal_account", case.personal_account),
                                                        ("id_number", case.applicant_id_number)) if v]
    return []
