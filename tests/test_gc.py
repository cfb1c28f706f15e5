"""Orphan objects (stored, never catalogued) are reclaimed in two passes; catalogued ones never."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from archive.audit import Actor
from archive.catalogue.models import AuditEvent
from archive.cli import app
from archive.context import Context
from archive.gc import collect
from signing.fixity import digest_bytes
from storage.base import content_key

ACTOR = Actor.system("test")


def put(ctx: Context, data: bytes, prefix: str = "originals") -> str:
    d = digest_bytes(data)
    key = content_key(prefix, d.sha256)
    ctx.store.put(key, io.BytesIO(data), size=d.size, sha256=d.sha256)
    return key


def test_orphan_is_marked_then_removed_after_the_grace_period(ctx: Context) -> None:
    """Given an object whose catalogue commit never happened, then run 1 marks it and run 2 removes it."""
    key = put(ctx, b"crashed before the catalogue commit")
    first = collect(ctx, ACTOR, timedelta(0))
    assert first.marked == [key] and first.removed == [] and ctx.store.exists(key)
    second = collect(ctx, ACTOR, timedelta(0))
    assert second.removed == [key] and not ctx.store.exists(key)
    with ctx.catalogue.sessions() as s:
        assert s.scalar(select(AuditEvent).where(AuditEvent.action == "storage.gc")) is not None


def test_young_orphans_and_catalogued_objects_stay(ctx: Context) -> None:
    """Given a filed case and an orphan upload younger than the grace period, when two passes run, then nothing is
    removed; with no grace period, then the orphan goes and every catalogued object stays."""
    from fastapi.testclient import TestClient

    from archive.api.app import create_app
    from tests.factories import file_case  # a real filed case
    from tests.helpers import add_client

    with TestClient(create_app(context=ctx)) as client:
        headers = add_client(ctx, "core", ["cases.write", "data.read"])
        file_case(client, headers)
    before = set(ctx.store.list_keys(""))
    young = put(ctx, b"an upload still in flight")
    collect(ctx, ACTOR, timedelta(hours=1))
    report = collect(ctx, ACTOR, timedelta(hours=1))
    assert report.removed == [] and ctx.store.exists(young)
    collect(ctx, ACTOR, timedelta(0))
    assert set(ctx.store.list_keys("")) == before  # every catalogued object is still there


def test_locked_orphan_is_reported_not_removed(ctx: Context) -> None:
    """Given an orphan rendition under object lock, when two passes run with no grace period, then it is reported as
    locked and kept."""
    from datetime import UTC, datetime

    data = b"orphan rendition under object lock"
    d = digest_bytes(data)
    key = content_key("renditions", d.sha256)
    ctx.store.put(key, io.BytesIO(data), size=d.size, sha256=d.sha256, retain_until=datetime(2099, 1, 1, tzinfo=UTC))
    collect(ctx, ACTOR, timedelta(0))
    report = collect(ctx, ACTOR, timedelta(0))
    assert report.locked == [key] and ctx.store.exists(key)


def test_cli_dry_run_changes_nothing(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given an orphan object, when `archive storage gc --dry-run` runs, then it reports 孤立对象 1 个 and keeps it;
    two real passes then remove it and name its key."""
    monkeypatch.setenv("ARCHIVE_DATABASE_URL", ctx.settings.catalogue_url)
    monkeypatch.setenv("ARCHIVE_DATA_DIR", str(ctx.settings.data_dir))
    key = put(ctx, b"orphan")
    r = CliRunner().invoke(app, ["storage", "gc", "--grace-minutes", "0", "--dry-run"])
    assert r.exit_code == 0 and "孤立对象 1 个" in r.output
    r = CliRunner().invoke(app, ["storage", "gc", "--grace-minutes", "0"])
    r = CliRunner().invoke(app, ["storage", "gc", "--grace-minutes", "0"])
    assert r.exit_code == 0 and key in r.output and not ctx.store.exists(key)
