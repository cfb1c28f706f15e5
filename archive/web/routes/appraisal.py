"""鉴定与销毁 (the appraisal queue and 销毁清册)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/ui/appraisal", include_in_schema=False)
