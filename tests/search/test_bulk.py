"""A rebuild's documents read and projected in producer processes (archive/indexing/bulk.py): the same documents,
in the same order, as the one-process read; the same search answers after the rebuild; a producer's failure
fails the rebuild without switching the index."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import update

from archive import indexing
from archive.catalogue.models import ArchiveItem
from archive.context import Context
from archive.indexing import bulk
from archive.indexing.documents import iter_documents
from search.base import SearchQuery, Visibility
from search.embedded import to_fields
from search.errors import SearchError
from tests.factories import add_case, file_case_row
from tests.search.support import remove_case

EVERYTHING = Visibility.everything()
NAMES = ("欧阳娜娜", "张三", "李四", "王五", "赵六")


def _catalogue(ctx: Context, n: int = 23) -> None:
    """Open and filed cases over several ranges, with a gap in the ids (a removed case) and a destroyed item."""
    for k in range(1, n + 1):
        add_case(ctx, f"YW{k:06d}", name=NAMES[k % len(NAMES)], business_type="TQ01" if k % 2 else "GJ01",
                 branch=f"BR0{k % 3 + 1}", accepted=datetime(2020 + k % 5, 1 + k % 12, 1 + k % 28, 3, tzinfo=UTC))
    for k in range(2, n + 1, 3):
        file_case_row(ctx, f"YW{k:06d}", number=k)
    if n >= 7:
        remove_case(ctx, "YW000007")
    with ctx.catalogue.session() as s:
        s.execute(update(ArchiveItem).where(ArchiveItem.archival_code.is_not(None),
                                            ArchiveItem.number == 5).values(status=indexing.DESTROYED))


def test_producers_hand_over_the_one_process_read_in_order(ctx: Context) -> None:
    """Given cases over several id ranges with a gap and a destroyed item, When two producer processes read ranges
    of three ids in turn, Then this process receives exactly the one-process read (destroyed excluded) in the
    backend's field form, in id order."""
    _catalogue(ctx)
    expected = [to_fields(d) for d in iter_documents(ctx.catalogue, ctx.schedule, ctx.zone)
                if d.status != indexing.DESTROYED]
    got = list(bulk.documents(ctx.catalogue, ctx.schedule, ctx.zone, exclude_status=indexing.DESTROYED,
                              prepare=to_fields, processes=2, range_ids=3, min_parallel=0))
    assert len(expected) == 21  # 23 cases, one removed, one destroyed
    assert [f["serial"] for f in got] == [f["serial"] for f in expected]
    assert got == expected


def _answers(ctx: Context) -> list[Any]:
    queries = [SearchQuery(page_size=100), SearchQuery(text="娜娜", page_size=100),
               SearchQuery(text="提取", sort="relevance", page_size=5),
               SearchQuery(sort="accepted_at", page_size=4, facets=("branch", "kind", "year")),
               SearchQuery(filters={"kind": ["item"]}, sort="-closed_at", page_size=100)]
    out = []
    for q in queries:
        r = ctx.index.search(q, EVERYTHING)
        out.append((r.total, [h.serial for h in r.hits], r.hits, r.facets, r.next_cursor))
    return out


def test_a_parallel_rebuild_answers_every_search_as_the_worker_built_index(ctx: Context,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Given an index built case by case by the outbox worker, When it is rebuilt with a producer process,
    Then every search (text, relevance, sorts, facets, cursors) answers the same."""
    _catalogue(ctx)
    indexing.IndexWorker(ctx).drain()
    before = _answers(ctx)
    monkeypatch.setattr(bulk, "MIN_PARALLEL", 0)
    monkeypatch.setattr(bulk, "default_processes", lambda: 1)
    spawned: list[int] = []
    real = bulk._parallel

    def counting(*args: Any, **kwargs: Any) -> Any:
        spawned.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(bulk, "_parallel", counting)
    assert indexing.rebuild(ctx) == 21
    assert spawned == ([1] if bulk._shareable(ctx.catalogue.url) else [])
    assert _answers(ctx) == before


def test_a_producer_that_fails_fails_the_rebuild_and_keeps_the_live_index(ctx: Context,
                                                                            tmp_path: Any) -> None:
    """Given a producer whose catalogue has no tables, When the rebuild reads from it, Then it fails with
    index_rebuild_failed naming the cause, and the live index still answers."""
    _catalogue(ctx, 4)
    indexing.IndexWorker(ctx).drain()
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    docs = bulk._parallel(empty, ctx.schedule, ctx.zone, indexing.DESTROYED, to_fields, 1, 0, 10, 5)
    with pytest.raises(SearchError) as failed:
        ctx.index.rebuild(docs)
    assert failed.value.code == "index_rebuild_failed"
    assert "no such table" in failed.value.message and "未切换到新索引" in failed.value.message
    assert ctx.index.count() == 4


def test_an_in_memory_catalogue_is_read_in_this_process() -> None:
    """A child cannot open an in-memory SQLite database: those are read here; files and servers are shared."""
    assert not bulk._shareable("sqlite://")
    assert not bulk._shareable("sqlite:///:memory:")
    assert bulk._shareable("sqlite:////var/lib/archive/catalogue.db")
    assert bulk._shareable("postgresql+psycopg://archive@db/archive")
