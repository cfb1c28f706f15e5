"""Transfer packages (移交)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
