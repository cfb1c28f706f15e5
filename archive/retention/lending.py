"""Lending (利用 / 借阅): access requests, time-limited grants, paper loans."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session


def items_with_open_lending(session: Session, item_ids: Iterable[int]) -> set[int]:
    """The ids among ``item_ids`` with an active access grant or a paper loan not yet returned (blocks destruction)."""
    raise NotImplementedError  # owner: lending work (issue 8)
