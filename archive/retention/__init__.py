"""Retention (保管与处置): periods and triggers, holds, appraisal, destruction, lending, transfer."""

from archive.retention.periods import counting_start, expiry_date

__all__ = ["counting_start", "expiry_date"]
