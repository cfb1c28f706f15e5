"""Bounded integer parameters shared by the routers.

Every integer a client sends in a path or query has a maximum in the OpenAPI schema, so a number past 64 bits
is a 422 with the field named, never an ``OverflowError`` from the database driver (500).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import Field

MAX_INT = 2**63 - 1
"""The largest integer the catalogue can compare (SQLite INTEGER, PostgreSQL bigint): offsets, sequence numbers."""

MAX_ID = 2**31 - 1
"""The largest row id: ids are ``integer`` columns on PostgreSQL (SQLite's are 64-bit, but the bound is one)."""

MAX_YEAR = 9999

Id = Annotated[int, Path(ge=1, le=MAX_ID, description="编号（正整数）")]
"""A catalogue row id in the path: 1 … 2³¹−1."""

Page = Annotated[int, Path(ge=0, le=MAX_INT, description="页码，从 1 开始")]
"""A page number in the path; 0 and pages past the end are answered 404 (page_not_found) by the handler."""

Offset = Annotated[int, Query(ge=0, le=MAX_INT, description="跳过的条数（分页）")]
"""Paging offset; use as ``offset: Offset = 0``."""

YearValue = Annotated[int, Field(ge=1, le=MAX_YEAR)]
"""A calendar year, e.g. as the items of a repeatable query parameter."""

Year = Annotated[int | None, Query(ge=1, le=MAX_YEAR, description="年度")]
"""An optional year in the query; use as ``year: Year = None``."""
