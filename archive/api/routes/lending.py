"""Lending (利用、借阅)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
