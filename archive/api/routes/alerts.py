"""Storage-check findings and alerts."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
