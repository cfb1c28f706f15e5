"""Outbox-driven indexing on both catalogue databases: enqueue in the transaction, the worker, an index
that is down, deletion, rebuild with replay, and the worker thread of `archive serve`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from archive import indexing
from archive.catalogue.models import Case, Document, OutboxMessage
from archive.context import Context
from search.base import SearchDocument, SearchIndex, SearchQuery, SearchResult, Visibility
from search.elasticsearch import ElasticsearchIndex
from search.errors import SearchUnavailable
from tests.factories import add_case, file_case_row
from tests.search.support import ID_ZHANG_SAN, remove_case

EVERYTHING = Visibility.everything()


def _find(ctx: Context, **query: Any) -> list[str]:
    return [h.serial for h in ctx.index.search(SearchQuery(page_size=100, **query), EVERYTHING).hits]


def _outbox(ctx: Context) -> list[OutboxMessage]:
    with ctx.catalogue.session() as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def _down(ctx: Context) -> None:
    """The index becomes unreachable (an Elasticsearch nobody listens to)."""
    ctx._index = ElasticsearchIndex("http://127.0.0.1:9", retries=0, timeout=1)


def test_enqueue_writes_its_row_only_when_the_transaction_commits(ctx: Context) -> None:
    """Given a filing transaction that fails after enqueue, Then no outbox row; a committed one leaves exactly one."""
    with pytest.raises(RuntimeError), ctx.catalogue.session() as s:
        indexing.enqueue(s, "YW-ROLLED-BACK")
        raise RuntimeError("filing failed")
    assert _outbox(ctx) == []
    add_case(ctx, "YW000001")
    rows = _outbox(ctx)
    assert [(r.topic, r.payload, r.processed_at) for r in rows] == [("index", {"serial": "YW000001"}, None)]


def test_worker_indexes_an_opened_case_then_its_filing(ctx: Context) -> None:
    """Given a case opened and then filed, When the worker drains, Then the index holds the filed item with its 档号
    and material names are searchable."""
    add_case(ctx, "YW000001", name="欧阳娜娜", business_type="TQ01")
    assert indexing.IndexWorker(ctx).drain() == 1
    assert _find(ctx, text="娜娜", filters={"kind": ["case"]}) == ["YW000001"]
    with ctx.catalogue.session() as s:
        case = s.scalar(select(Case).where(Case.serial == "YW000001"))
        assert case is not None
        s.add(Document(case_id=case.id, sequence=1, material_type="id_proof", filename="id.pdf",
                       original_key="originals/x", sha256="0" * 64, sm3="0" * 64, size=1, media_type="application/pdf",
                       created_by="clerk01"))
        indexing.enqueue(s, case.serial)
    code = file_case_row(ctx, "YW000001")
    assert indexing.IndexWorker(ctx).drain() == 2
    hits = ctx.index.search(SearchQuery(keys={"archival_code": code}), EVERYTHING).hits
    assert [(h.serial, h.kind, h.status, h.business_type_name) for h in hits] == [
        ("YW000001", "item", "filed", "购买自住住房提取")]
    assert _find(ctx, text="身份证明") == ["YW000001"]
    assert all(r.processed_at is not None for r in _outbox(ctx))
    assert ctx.index.count() == 1


def test_filing_succeeds_while_the_index_is_down_and_the_backlog_drains_later(ctx: Context) -> None:
    """Given the index down, When cases are opened and the worker tries, Then the catalogue has them, the rows
    stay pending with attempts and the reason; When the index is back, Then the backlog drains to zero."""
    _down(ctx)
    add_case(ctx, "YW000001")
    add_case(ctx, "YW000002", name="李四", id_number="110105199002020046")
    with pytest.raises(SearchUnavailable) as caught:
        indexing.IndexWorker(ctx).run_once()
    assert caught.value.code == "index_unavailable"
    rows = _outbox(ctx)
    assert [(r.attempts, r.processed_at) for r in rows] == [(0, None), (0, None)]  # outages never exhaust a row
    assert all("index_unavailable" in (r.last_error or "") for r in rows)
    with ctx.catalogue.session() as s:
        assert indexing.backlog(s).pending == 2
    status = indexing.status(ctx)
    assert status["ok"] is False and status["backlog"] == 2 and status["code"] == "index_unavailable"

    ctx._index = None  # the embedded index is back
    assert indexing.IndexWorker(ctx).drain() == 2
    with ctx.catalogue.session() as s:
        assert indexing.backlog(s).pending == 0
    assert sorted(_find(ctx)) == ["YW000001", "YW000002"]
    assert indexing.status(ctx)["ok"] is True


def test_replaying_rows_is_harmless_and_batches_cover_a_large_backlog(ctx: Context) -> None:
    """Given 25 cases each enqueued twice, When draining in batches of 10, Then 25 documents, all rows processed."""
    for n in range(25):
        add_case(ctx, f"YW{n:06d}", accepted=datetime(2025, 1, 1, tzinfo=UTC) + timedelta(hours=n))
        with ctx.catalogue.session() as s:
            indexing.enqueue(s, f"YW{n:06d}")
    worker = indexing.IndexWorker(ctx, batch_size=10)
    assert worker.run_once().taken == 10
    assert worker.drain() == 40
    assert ctx.index.count() == 25
    with ctx.catalogue.session() as s:
        assert s.scalar(select(func.count()).where(OutboxMessage.processed_at.is_(None))) == 0


def test_a_case_gone_from_the_catalogue_leaves_the_index(ctx: Context) -> None:
    """Given an indexed case, When it is removed from the catalogue (destruction) and the worker runs, Then it is
    no longer found."""
    add_case(ctx, "YW000001")
    add_case(ctx, "YW000002")
    indexing.IndexWorker(ctx).drain()
    remove_case(ctx, "YW000001")
    report = indexing.IndexWorker(ctx).run_once()
    assert (report.taken, report.deleted) == (1, 1)
    assert _find(ctx) == ["YW000002"]


class _Refusing(SearchIndex):
    """An index that refuses one serial, as Elasticsearch does for a document its mapping rejects."""

    backend = "refusing"

    def __init__(self, inner: SearchIndex, refused: str) -> None:
        self.inner, self.refused = inner, refused

    def upsert(self, docs: Iterable[SearchDocument]) -> dict[str, str]:
        docs = list(docs)
        failures = self.inner.upsert([d for d in docs if d.serial != self.refused])
        return failures | ({self.refused: "mapper_parsing_exception"} if any(
            d.serial == self.refused for d in docs) else {})

    def delete(self, serials: Iterable[str]) -> None:
        self.inner.delete(serials)

    def search(self, query: SearchQuery, visibility: Visibility) -> SearchResult:
        return self.inner.search(query, visibility)

    def rebuild(self, docs: Iterable[SearchDocument], progress: Callable[[int], None] | None = None) -> int:
        return self.inner.rebuild(docs, progress)

    def count(self) -> int:
        return self.inner.count()

    def health(self) -> dict[str, Any]:
        return self.inner.health()


def test_a_refused_document_is_retried_then_reported_as_failed_without_blocking_others(ctx: Context) -> None:
    """Given an index that refuses one document, When the worker drains, Then the others are indexed, the refused
    row keeps its reason and attempts, and after the limit it counts as failed, not pending."""
    ctx._index = _Refusing(ctx.index, "YW000002")
    add_case(ctx, "YW000001")
    add_case(ctx, "YW000002")
    add_case(ctx, "YW000003")
    report = indexing.IndexWorker(ctx).run_once()
    assert (report.taken, report.indexed, report.refused) == (3, 2, 1)
    assert sorted(_find(ctx)) == ["YW000001", "YW000003"]
    refused = [r for r in _outbox(ctx) if r.processed_at is None]
    assert [(r.payload["serial"], r.attempts, r.last_error) for r in refused] == [
        ("YW000002", 1, "mapper_parsing_exception")]
    with ctx.catalogue.session() as s:
        s.execute(update(OutboxMessage).where(OutboxMessage.processed_at.is_(None))
                  .values(attempts=indexing.MAX_ATTEMPTS))
        assert (indexing.backlog(s).pending, indexing.backlog(s).failed) == (0, 1)
    assert indexing.IndexWorker(ctx).run_once().taken == 0


def test_rebuild_reads_the_catalogue_and_replays_what_was_indexed_meanwhile(ctx: Context) -> None:
    """Given cases indexed through the outbox and an index emptied by accident, When rebuilding, Then every case
    is back, and rows processed during the rebuild are pending again for the new index."""
    for n in range(5):
        add_case(ctx, f"YW{n:06d}", id_number=ID_ZHANG_SAN)
    indexing.IndexWorker(ctx).drain()
    ctx.index.delete([f"YW{n:06d}" for n in range(5)])
    assert ctx.index.count() == 0
    totals: list[int] = []
    ticks: list[int] = []
    assert indexing.rebuild(ctx, progress=ticks.append, on_total=totals.append) == 5
    assert totals == [5] and sum(ticks) == 5
    assert ctx.index.count() == 5
    with ctx.catalogue.session() as s:
        assert indexing.backlog(s).pending == 5  # processed within the replay margin: done again, harmlessly
    indexing.IndexWorker(ctx).drain()
    assert ctx.index.count() == 5


def test_the_serve_thread_indexes_new_cases_within_seconds_and_stops_cleanly(ctx: Context) -> None:
    """Given the worker thread of `archive serve`, When a case is opened, Then it becomes searchable; stop() ends it."""
    thread = indexing.start_worker_thread(ctx, idle_seconds=0.05)
    try:
        add_case(ctx, "YW000001", name="孙悟空")
        deadline = time.monotonic() + 10
        while not _find(ctx, text="悟空") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _find(ctx, text="悟空") == ["YW000001"]
    finally:
        thread.stop()
    assert not thread.thread.is_alive()


def test_a_second_worker_on_postgresql_waits_as_a_standby(ctx: Context) -> None:
    """Given a worker holding the PostgreSQL advisory lock, When a second one starts, Then it indexes nothing and
    returns when stopped; on SQLite (one process) there is nothing to wait for."""
    if ctx.catalogue.engine.dialect.name != "postgresql":
        pytest.skip("the advisory lock is PostgreSQL's; SQLite runs one embedded process")
    import threading

    from sqlalchemy import text

    add_case(ctx, "YW000001")
    with ctx.catalogue.engine.connect() as holder:
        assert holder.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": indexing.ADVISORY_LOCK_KEY}).scalar()
        stop = threading.Event()
        standby = threading.Thread(target=indexing.IndexWorker(ctx).run, args=(stop, 0.05))
        standby.start()
        time.sleep(0.5)
        stop.set()
        standby.join(10)
        assert not standby.is_alive()
        holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": indexing.ADVISORY_LOCK_KEY})
    assert [r.processed_at for r in _outbox(ctx)] == [None]


def test_bulk_reading_projects_every_case_as_the_worker_does(ctx: Context) -> None:
    """Given open and filed cases with active and replaced documents and an item whose 保管期限 was changed,
    When a rebuild reads them in bulk (plain rows, batches smaller than the catalogue), Then each document equals
    the one the worker builds from ORM objects, in id order, none missing across batch boundaries."""
    from archive.catalogue.models import ArchiveItem
    from archive.indexing.documents import iter_documents, load_documents

    for n in range(1, 8):
        add_case(ctx, f"YW{n:06d}", name=f"欧阳{n}", business_type="TQ01" if n % 2 else "GJ01", enqueue=False)
    for n in (2, 3, 5):
        file_case_row(ctx, f"YW{n:06d}", number=n)
    with ctx.catalogue.session() as s:
        cases = {c.serial: c for c in s.scalars(select(Case))}
        for seq, (material, status) in enumerate((("id_proof", "active"), ("application_form", "replaced"),
                                                  ("loan_application", "active")), start=1):
            for serial in ("YW000003", "YW000004"):
                s.add(Document(case_id=cases[serial].id, sequence=seq, material_type=material, filename="x.pdf",
                               original_key=f"originals/{serial}/{seq}", sha256="0" * 64, sm3="0" * 64, size=1,
                               media_type="application/pdf", status=status, created_by="clerk01"))
        s.execute(update(ArchiveItem).where(ArchiveItem.case_id == cases["YW000005"].id)
                  .values(current_retention="Y"))
    bulk = list(iter_documents(ctx.catalogue, ctx.schedule, ctx.zone, batch=3))
    serials = [f"YW{n:06d}" for n in range(1, 8)]
    with ctx.catalogue.session() as s:
        orm = load_documents(s, serials, ctx.schedule, ctx.zone)
    assert [d.serial for d in bulk] == serials
    assert bulk == [orm[serial] for serial in serials]
    by_serial = {d.serial: d for d in bulk}
    assert by_serial["YW000005"].retention_code == "Y"
    words = by_serial["YW000003"].text.split()
    assert "身份证明" in words and "借款申请表" in words and "申请表（申请审批表）" not in words
    assert by_serial["YW000003"].kind == "item" and by_serial["YW000004"].kind == "case"
