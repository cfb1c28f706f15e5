"""Indexing: the projection of a case into a search document (documents.py) and the outbox that carries catalogue
changes to the search index (outbox.py). Callers use ``from archive import indexing`` and the names below."""

from archive.indexing.outbox import (
    ADVISORY_LOCK_KEY,
    BATCH_SIZE,
    DESTROYED,
    MAX_ATTEMPTS,
    MAX_BACKOFF_SECONDS,
    TOPIC,
    Backlog,
    BatchReport,
    IndexWorker,
    WorkerThread,
    backlog,
    enqueue,
    rebuild,
    start_worker_thread,
    status,
)

__all__ = [
    "ADVISORY_LOCK_KEY",
    "BATCH_SIZE",
    "DESTROYED",
    "MAX_ATTEMPTS",
    "MAX_BACKOFF_SECONDS",
    "TOPIC",
    "Backlog",
    "BatchReport",
    "IndexWorker",
    "WorkerThread",
    "backlog",
    "enqueue",
    "rebuild",
    "start_worker_thread",
    "status",
]
