"""Several API processes: ``archive serve --workers N``, and what they share.

N > 1 runs uvicorn's supervisor with N worker processes on one listening socket (uvicorn builds the app in each
with :func:`archive.api.app.create_app`, from the same ``ARCHIVE_*`` environment, and starts a worker again when
one dies). What must not happen N times or differ per process:

- the outbox (search index) worker: not started inside the API processes when N > 1; production runs
  ``archive worker`` beside them (on PostgreSQL one at a time, by an advisory lock);
- scan resumption: started once, by the supervisor; each batch is also claimed by a PostgreSQL advisory lock
  (archive/capture/scans.py), so API processes of other hosts starting at the same time never run one twice;
- metrics: ``PROMETHEUS_MULTIPROC_DIR`` is set to a fresh directory under the data directory (unless the operator
  set one), so /metrics adds up the processes;
- API rate limits and login throttling live in the catalogue (archive/access.py, archive/logins.py); the page-image
  cache of each process is keyed by content digests and every read checks the item in the catalogue first
  (archive/reading.py), so an item destroyed through another process is refused, never served from a cache.

N > 1 needs PostgreSQL: SQLite serialises every writer of every process on one file lock, and the per-process
queue that keeps SQLite's hot path orderly (archive.api.deps.sqlite_turn) does not reach across processes.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from archive.context import Context
from archive.errors import ConfigError

if TYPE_CHECKING:
    from fastapi import FastAPI

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
APP_FACTORY = "archive.processes:worker_app"


def check_workers(ctx: Context, workers: int) -> None:
    """Refuse several API processes on a SQLite catalogue, saying what to do."""
    if workers > 1 and ctx.catalogue.engine.dialect.name != "postgresql":
        raise ConfigError("多个 API 进程（--workers 大于 1）需要 PostgreSQL 目录数据库（ARCHIVE_DATABASE_URL）；"
                          "SQLite 目录数据库只支持一个 API 进程，请去掉 --workers 或改用 PostgreSQL",
                          code="workers_need_postgresql",
                          detail={"workers": workers, "database": ctx.catalogue.engine.dialect.name})


def metrics_dir(data_dir: Path) -> tuple[Path, bool]:
    """The multiprocess metrics directory, set in the environment the workers inherit: the operator's, or a fresh
    one under the data directory (whether it is ours to remove at exit)."""
    if os.environ.get(MULTIPROC_ENV):
        path = Path(os.environ[MULTIPROC_ENV])
        path.mkdir(parents=True, exist_ok=True)
        return path, False
    path = data_dir.absolute() / "metrics" / f"serve-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)  # a pid reused after a crash: the dead run's files would add up
    path.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(path)
    return path, True


def run_workers(ctx: Context, host: str, port: int, workers: int) -> None:
    """Run ``workers`` API processes on host:port until stopped (uvicorn's supervisor restarts a dead one)."""
    import uvicorn

    path, ours = metrics_dir(ctx.settings.data_dir)
    try:
        # each spawned process configures its own logging (worker_app); uvicorn's access log is replaced by ours
        uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, workers=workers, log_config=None,
                    access_log=False, log_level=ctx.settings.log_level.lower())
    finally:
        if ours:
            shutil.rmtree(path, ignore_errors=True)


def worker_app() -> FastAPI:
    """The app factory of each API process: spawned processes do not inherit the parent's logging."""
    from archive import logs
    from archive.api.app import create_app
    from archive.settings import get_settings

    logs.configure_from(get_settings())
    return create_app()
