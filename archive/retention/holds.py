"""Holds (冻结): legal or audit holds on items, cases or a query's result."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session


def held_item_ids(session: Session, item_ids: Iterable[int]) -> set[int]:
    """The ids among ``item_ids`` under at least one active hold (used by appraisal, destruction, schedules)."""
    raise NotImplementedError  # owner: holds work (issue 8)
