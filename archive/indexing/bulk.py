"""The documents of a rebuild, read and projected beside the process that indexes them.

A rebuild's Python work per case (catalogue rows, the projection, the backend's field form) took as long as
tantivy's own indexing, and both ran on one core: the indexing thread waited for Python. Here producer processes
(each with its own catalogue connection) read disjoint ranges of the primary key — ``after < id <= upto``
ranges of ``RANGE_IDS`` ids, range k by producer k mod P — project them, apply the backend's ``bulk_prepare``
(its field form, e.g. tantivy's dict) and hand each range over whole; this process takes the ranges back in
order, so the index receives exactly the documents, in exactly the order, of the one-process read.

Small catalogues, in-memory SQLite (a child cannot see it) and ``processes=0`` — for now the default, see
``default_processes`` — read in this process.
"""

from __future__ import annotations

import gc
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import tzinfo
from typing import Any, BinaryIO

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from archive.catalogue.db import Catalogue
from archive.catalogue.models import Case
from archive.classification import Schedule
from archive.indexing.documents import BULK_BATCH, iter_documents, read_batch
from search.base import SearchDocument
from search.errors import SearchError

RANGE_IDS = BULK_BATCH  # ids per range handed over (sparse ids make smaller ranges, never larger)
MIN_PARALLEL = 20_000  # fewer cases than this: a producer's start-up (~1 s of imports) is not worth it

Prepare = Callable[[SearchDocument], Any]


def default_processes() -> int:
    """Producers for a rebuild that does not say: none for now (read in this process).

    Measured on the 2-core machine (issue 17, 200 k cases), one or two producers were slower than the one-process
    read: at a load of 13–15, 1,530 and 1,818 against 1,948 items/s; at a load of 5, 3,458 against 4,969 with
    one producer; they cost a fifth more CPU (pickling, unpickling). On the idle machine (load 1) they were faster:
    9,409 (one) and 9,984 (two) against 7,881 items/s. Off by default: a rebuild beside other work must not be
    slower; a caller on an idle machine asks for them with ``bulk.documents(..., processes=N)``.
    """
    return 0


def documents(catalogue: Catalogue, schedule: Schedule, zone: tzinfo, *, exclude_status: str,
              prepare: Prepare | None = None, processes: int | None = None, range_ids: int = RANGE_IDS,
              min_parallel: int | None = None) -> Iterator[Any]:
    """Every case's document in id order except those with ``exclude_status``, each passed through ``prepare``
    when given (in the producers: the point is to take that work off this process)."""
    with catalogue.session() as s:
        first, last, n = s.execute(select(func.min(Case.id), func.max(Case.id), func.count()).select_from(Case)).one()
    processes = default_processes() if processes is None else processes
    if processes < 1 or n < (MIN_PARALLEL if min_parallel is None else min_parallel) \
            or not _shareable(catalogue.url):
        for d in iter_documents(catalogue, schedule, zone):
            if d.status != exclude_status:
                yield prepare(d) if prepare is not None else d
        return
    yield from _parallel(catalogue.url, schedule, zone, exclude_status, prepare, processes, first - 1, last,
                         range_ids)


def _shareable(url: str) -> bool:
    """Another process can open the same catalogue (not an in-memory SQLite database)."""
    u = make_url(url)
    return not (u.get_backend_name() == "sqlite" and (not u.database or u.database == ":memory:"
                                                      or "mode=memory" in str(u)))


# The producer is started with ``python -c``, not multiprocessing: spawn re-runs the parent's __main__ script, which
# need not be guarded (a bench, a test runner), and fork would copy a process that may run threads (archive serve).
_BOOT = ("import pickle, sys; sys.path[:0] = pickle.load(sys.stdin.buffer); "
         "from archive.indexing.bulk import serve_producer; serve_producer()")


def _parallel(url: str, schedule: Schedule, zone: tzinfo, exclude_status: str, prepare: Prepare | None,
              processes: int, before_first: int, last: int, range_ids: int = RANGE_IDS) -> Iterator[Any]:
    ranges = -(-(last - before_first) // range_ids)
    processes = min(processes, ranges)
    producers: list[subprocess.Popen[bytes]] = []
    try:
        for k in range(processes):
            p = subprocess.Popen([sys.executable, "-c", _BOOT], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            producers.append(p)
            assert p.stdin is not None
            pickle.dump(sys.path, p.stdin)
            pickle.dump((url, schedule, zone, exclude_status, prepare, before_first, range_ids, ranges, k, processes),
                        p.stdin)
            p.stdin.close()
        for k in range(ranges):
            got = _take(producers[k % processes])
            if isinstance(got, str):
                raise SearchError(f"重建索引时读取业务目录失败，未切换到新索引：{got}", code="index_rebuild_failed",
                                  kind="failed", detail={"reader": k % processes})
            yield from got
    finally:
        for p in producers:
            if p.poll() is None:
                p.kill()
            p.wait()
            if p.stdout is not None:
                p.stdout.close()


def _take(producer: subprocess.Popen[bytes]) -> list[Any] | str:
    """The producer's next range (the pipe bounds how far it reads ahead), or why it will never come."""
    assert producer.stdout is not None
    try:
        got: list[Any] | str = pickle.load(producer.stdout)
    except EOFError:
        return f"读取进程意外退出（退出码 {producer.wait()}）"
    return got


def serve_producer() -> None:
    """A producer's main: its arguments from stdin, its ranges to stdout."""
    args = pickle.load(sys.stdin.buffer)
    produce(*args, out=sys.stdout.buffer)


def produce(url: str, schedule: Schedule, zone: tzinfo, exclude_status: str, prepare: Prepare | None,
            before_first: int, range_ids: int, ranges: int, offset: int, step: int, *, out: BinaryIO) -> None:
    """Ranges ``offset, offset + step, …`` of the primary key, each written whole (an empty list too, so the
    consumer stays in step); on an error, its text instead, and stop."""
    gc.disable()  # short-lived, acyclic batches: the collector only re-walked them (7 % of a rebuild)
    catalogue = Catalogue(url)
    try:
        for k in range(offset, ranges, step):
            after = before_first + k * range_ids
            docs = read_batch(catalogue, schedule, zone, after, after + range_ids, None)
            pickle.dump([prepare(d) if prepare is not None else d for d in docs if d.status != exclude_status],
                        out, protocol=pickle.HIGHEST_PROTOCOL)
            out.flush()
    except BrokenPipeError:
        pass  # the consumer stopped (its rebuild failed or was abandoned)
    except Exception as exc:  # handed to the consumer, which raises it as the rebuild's error
        pickle.dump(f"{type(exc).__name__}: {exc}", out)
        out.flush()
    finally:
        catalogue.dispose()
