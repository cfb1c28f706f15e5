"""Holds, appraisal and destruction (冻结、鉴定、销毁)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
