"""A catalogue lock that does not come free in time is 503 catalogue_busy with Retry-After, never 500."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from archive.catalogue.models import Case
from archive.context import Context
from archive.settings import Settings, load_settings
from tests.factories import case_body
from tests.helpers import add_client


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """The catalogue waits a short time for locks, so a held lock answers quickly."""
    return load_settings(data_dir=tmp_path / "data", database_url=db_url, db_busy_timeout_seconds=0.3)


@contextmanager
def lock_held_elsewhere(db_url: str) -> Iterator[None]:
    """Another connection holds what a new case needs: SQLite's write lock (BEGIN IMMEDIATE), or on PostgreSQL
    an exclusive lock on the case table."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        conn = sqlite3.connect(str(url.database), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    engine = create_engine(db_url)
    try:
        with engine.connect() as pg:
            pg.execute(text('LOCK TABLE "case" IN ACCESS EXCLUSIVE MODE'))
            yield
            pg.rollback()
    finally:
        engine.dispose()


def test_sqlite_runs_in_wal_with_the_configured_busy_timeout(ctx: Context) -> None:
    """Given the embedded SQLite catalogue, When a connection is opened, Then it is in WAL mode and waits the
    configured ARCHIVE_DB_BUSY_TIMEOUT_SECONDS for locks (PostgreSQL: lock_timeout)."""
    with ctx.catalogue.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 300
        else:
            assert conn.exec_driver_sql("SHOW lock_timeout").scalar() == "300ms"


def test_held_lock_answers_503_with_retry_after_and_the_server_goes_on(ctx: Context, client: TestClient,
                                                                       db_url: str) -> None:
    """Given another connection holds the lock a new case needs longer than the busy timeout,
    When a business system opens a case,
    Then it gets 503 catalogue_busy with Retry-After and a Chinese message (not 500), nothing is written,
    and once the lock is free the same request succeeds."""
    core = add_client(ctx, "core", ["cases.write", "data.read"])
    with lock_held_elsewhere(db_url):
        r = client.post("/api/v1/cases", json=case_body(), headers=core)
    assert r.status_code == 503, r.text
    assert r.json()["code"] == "catalogue_busy" and "系统繁忙" in r.json()["message"]
    assert int(r.headers["Retry-After"]) > 0
    assert "locked" not in r.text and "OperationalError" not in r.text
    with ctx.catalogue.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 0
    assert client.post("/api/v1/cases", json=case_body(), headers=core).status_code == 201
