"""Four-properties check reports (四性检测)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
