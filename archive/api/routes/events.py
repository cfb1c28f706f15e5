"""Business events that start retention clocks, and schedule changes."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
