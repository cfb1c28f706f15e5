"""The audit log: append-only, hash-chained, verifiable; tampering is found at the exact event."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from archive import audit
from archive.audit import Actor
from archive.catalogue.models import AuditEvent
from archive.cli import app
from archive.context import Context

ACTOR = Actor("user", "clerk01")


def _write(ctx: Context, n: int) -> None:
    for i in range(n):
        with ctx.catalogue.session() as s:
            audit.record(s, ACTOR, "case.open", target_type="case", target_id=f"S{i}", detail={"i": i, "名": "值"})


def _disable_guard(ctx: Context) -> None:
    """Simulate someone with database access removing the append-only triggers."""
    with ctx.catalogue.session() as s:
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only"))
        else:
            s.execute(text("DROP TRIGGER audit_event_no_update"))
            s.execute(text("DROP TRIGGER audit_event_no_delete"))


def test_intact_chain_verifies(ctx: Context) -> None:
    """Given five events written after the fixture's fonds.create, when the chain is verified, then it is intact with
    six events checked."""
    _write(ctx, 5)
    with ctx.catalogue.sessions() as s:
        report = audit.verify(s)
    assert report.ok and report.checked == 6  # five plus fonds.create from the fixture


def test_event_written_in_a_rolled_back_transaction_disappears_with_it(ctx: Context) -> None:
    """Given a change that fails, then its audit event is not kept either, and the chain stays intact."""
    with pytest.raises(RuntimeError), ctx.catalogue.session() as s:
        audit.record(s, ACTOR, "case.open", target_id="X")
        raise RuntimeError("the change failed")
    _write(ctx, 1)
    with ctx.catalogue.sessions() as s:
        assert audit.verify(s).ok
        assert s.query(AuditEvent).filter_by(target_id="X").count() == 0


def test_database_refuses_to_update_or_delete_an_event(ctx: Context) -> None:
    """Given stored audit events, when one is updated or deleted in SQL, then the database refuses (append-only)."""
    _write(ctx, 2)
    for sql in ("UPDATE audit_event SET actor = 'someone' WHERE seq = 2", "DELETE FROM audit_event WHERE seq = 2"):
        with pytest.raises(DBAPIError, match="append-only"), ctx.catalogue.session() as s:
            s.execute(text(sql))


def test_edited_event_breaks_the_chain_at_exactly_that_event(ctx: Context) -> None:
    """Given 10 events and one edited in the database, when verified, then verify names that event."""
    _write(ctx, 9)
    _disable_guard(ctx)
    with ctx.catalogue.session() as s:
        s.execute(text("UPDATE audit_event SET outcome = 'failure' WHERE seq = 7"))
    with ctx.catalogue.sessions() as s:
        report = audit.verify(s)
    assert not report.ok and report.broken_at == 7 and report.checked == 6
    assert "被修改" in (report.reason or "")


def test_removed_event_and_truncated_tail_are_found(ctx: Context) -> None:
    """Given the append-only guard removed, when the last event is deleted, then verification breaks at it saying the
    tail (末尾) is gone; when one in the middle is deleted, then it breaks there saying an event is missing
    (缺失)."""
    _write(ctx, 6)
    _disable_guard(ctx)
    with ctx.catalogue.session() as s:
        s.execute(text("DELETE FROM audit_event WHERE seq = 7"))
    with ctx.catalogue.sessions() as s:
        report = audit.verify(s)
    assert not report.ok and report.broken_at == 7 and "末尾" in (report.reason or "")
    with ctx.catalogue.session() as s:
        s.execute(text("DELETE FROM audit_event WHERE seq = 3"))
    with ctx.catalogue.sessions() as s:
        report = audit.verify(s)
    assert report.broken_at == 3 and "缺失" in (report.reason or "")


def test_concurrent_writers_keep_one_unbroken_chain(ctx: Context) -> None:
    """Given 8 threads appending at once, then the chain has no fork and no gap."""
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            _write(ctx, 10)
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=worker) for _ in range(8)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors
    with ctx.catalogue.sessions() as s:
        report = audit.verify(s)
    assert report.ok and report.checked == 81


def test_cli_verify_exits_nonzero_and_names_the_broken_event(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given an intact log, when `archive audit verify` runs, then it exits 0 counting the events (4 条); after event
    2 is edited behind the guard, then it exits 1 naming 事件 2."""
    monkeypatch.setenv("ARCHIVE_DATABASE_URL", ctx.settings.catalogue_url)
    monkeypatch.setenv("ARCHIVE_DATA_DIR", str(ctx.settings.data_dir))
    _write(ctx, 3)
    ok = CliRunner().invoke(app, ["audit", "verify"])
    assert ok.exit_code == 0 and "4 条" in ok.output
    _disable_guard(ctx)
    with ctx.catalogue.session() as s:
        s.execute(text("UPDATE audit_event SET action = 'case.close' WHERE seq = 2"))
    broken = CliRunner().invoke(app, ["audit", "verify"])
    assert broken.exit_code == 1 and "事件 2" in broken.output
