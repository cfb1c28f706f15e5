"""检索 (search) and saved searches."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/ui/search", include_in_schema=False)
