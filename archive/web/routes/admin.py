"""系统管理员 and 安全保密管理员 (users, roles, branches, API clients, login locks, settings)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/ui/admin", include_in_schema=False)
