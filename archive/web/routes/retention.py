"""冻结 (holds), 保管期限 (schedules) and items waiting for their trigger."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/ui", include_in_schema=False)
