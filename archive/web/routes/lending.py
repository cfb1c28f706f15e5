"""利用 (lending requests, grants, paper loans)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/ui/lending", include_in_schema=False)
