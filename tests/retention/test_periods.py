"""Retention arithmetic: expiry from code, trigger date and counting rule."""

from __future__ import annotations

from datetime import date

from archive.retention import expiry_date


def test_document_rule_counts_from_first_january_after_trigger() -> None:
    """Given D30 closed on 2024-06-15, when counted 'next_year', then it expires on 2055-01-01."""
    assert expiry_date("D30", date(2024, 6, 15), "next_year") == date(2055, 1, 1)
    assert expiry_date("D10", date(2024, 12, 31), "next_year") == date(2035, 1, 1)


def test_accounting_rule_counts_from_day_after_fiscal_year_end() -> None:
    """Given a D10 record whose fiscal year ended 2024-12-31 and next-day counting, when its expiry is computed, then
    it is 2035-01-01."""
    assert expiry_date("D10", date(2024, 12, 31), "next_day") == date(2035, 1, 1)


def test_permanent_and_untriggered_items_never_expire() -> None:
    """Given 永久, or a loan file whose loan is not yet settled, then there is no expiry date."""
    assert expiry_date("Y", date(2024, 1, 1), "next_year") is None
    assert expiry_date("D30", None, "next_year") is None


def test_leap_day_trigger_with_next_day_counting() -> None:
    """Given a D10 record triggered 2024-02-28 in a leap year and next-day counting, when its expiry is computed,
    then it is 2034-02-28."""
    assert expiry_date("D10", date(2024, 2, 28), "next_day") == date(2034, 2, 28)
