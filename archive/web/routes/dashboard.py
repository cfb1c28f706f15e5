"""首页/统计 (the dashboard)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/ui/dashboard", include_in_schema=False)
