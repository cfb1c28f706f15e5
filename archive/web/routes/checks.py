"""四性检测 (reports, alerts, storage sweeps)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/ui/checks", include_in_schema=False)
