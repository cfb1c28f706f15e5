"""移交 (transfer packages: export, download, receive)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/ui/transfers", include_in_schema=False)
