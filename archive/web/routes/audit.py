"""安全审计员 (the audit log, its chain, and the access register)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/ui/audit", include_in_schema=False)
