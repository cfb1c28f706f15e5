"""Engine and sessions for the catalogue, and the start-up check of its schema version."""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from archive.errors import ArchiveError, ConfigError, ServiceUnavailable

if TYPE_CHECKING:
    from alembic.config import Config

# alembic is imported where it is used: every `archive` command imports this module, few need migrations.

MIGRATIONS = Path(__file__).parent / "migrations"


DEFAULT_BUSY_TIMEOUT = 30.0  # seconds; ARCHIVE_DB_BUSY_TIMEOUT_SECONDS
_PG_BUSY = {"55P03", "40001", "40P01"}  # lock_not_available (lock_timeout), serialization_failure, deadlock_detected
_SQLITE_BUSY = {5, 6}  # SQLITE_BUSY (busy timeout ran out), SQLITE_LOCKED
READ_ONLY = "archive_read_only"  # execution option of Catalogue.reading()'s connections
VERSION_TABLE = "alembic_version"  # Alembic's default, which migrations/env.py keeps


def make_engine(url: str, busy_timeout: float = DEFAULT_BUSY_TIMEOUT, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL and write-locking transactions so writers queue, not fail.

    A statement waits at most ``busy_timeout`` seconds for a lock another transaction holds (SQLite's busy
    timeout, PostgreSQL's lock_timeout); then it fails with an error :func:`is_busy` recognises.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            "ARCHIVE_DATABASE_URL 格式不正确，应形如 postgresql+psycopg://用户@主机:5432/库名 或 sqlite:///路径",
            code="invalid_database_url", detail={"setting": "ARCHIVE_DATABASE_URL"},
        ) from None
    backend, _, driver = parsed.drivername.partition("+")  # not get_driver_name(): it loads the dialect
    if backend not in ("sqlite", "postgresql") or (backend == "postgresql" and driver != "psycopg"):
        raise ConfigError(
            f"ARCHIVE_DATABASE_URL 的数据库类型 {parsed.drivername}:// 不受支持；"
            "PostgreSQL 请写作 postgresql+psycopg://用户@主机:5432/库名，SQLite 请写作 sqlite:///路径",
            code="unsupported_database_url", detail={"setting": "ARCHIVE_DATABASE_URL", "scheme": parsed.drivername},
        )
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": busy_timeout}, **kwargs)
        _sqlite_pragmas(engine, busy_timeout)
        return engine
    # No pool_pre_ping: its extra round trip costs ~15% of a short filing transaction. A connection
    # broken by a server restart fails one transaction, after which SQLAlchemy invalidates the pool.
    kwargs.setdefault("pool_recycle", 600)
    if parsed.get_backend_name() == "postgresql":
        kwargs["connect_args"] = {"connect_timeout": 5, "options": f"-c lock_timeout={round(busy_timeout * 1000)}",
                                  **kwargs.get("connect_args", {})}
    return create_engine(url, **kwargs)


def is_busy(exc: BaseException) -> bool:
    """A lock another transaction held did not come free in time (or a deadlock or serialisation conflict):
    the same request may well succeed when retried."""
    orig = getattr(exc, "orig", exc)
    if getattr(orig, "sqlstate", None) in _PG_BUSY:
        return True
    code = getattr(orig, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _SQLITE_BUSY
    return type(orig).__name__ == "OperationalError" and "database is locked" in str(orig)


def _sqlite_pragmas(engine: Engine, busy_timeout: float) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={round(busy_timeout * 1000)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front, so read-then-write transactions (档号 allocation,
        # the audit chain) serialise instead of failing with SQLITE_BUSY on lock upgrade. Readers
        # (Catalogue.reading) begin deferred: in WAL they neither wait for writers nor block them.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")


def safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid URL>"


class Catalogue:
    """The catalogue database: engine, session factory and schema check."""

    def __init__(self, url: str, busy_timeout: float = DEFAULT_BUSY_TIMEOUT, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, busy_timeout, **engine_kwargs)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._readers = sessionmaker(self.engine.execution_options(**{READ_ONLY: True}), autoflush=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on any error."""
        with self.sessions() as s, s.begin():
            yield s

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only session for long work between short writes (filing renders and signs in one): it never
        flushes and is always rolled back, and on SQLite it takes no write lock (a deferred transaction)."""
        with self._readers() as s:
            try:
                yield s
            finally:
                s.rollback()

    def ping(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except OperationalError as exc:
            raise unreachable(self.url, exc) from None

    def _missing_sqlite_file(self) -> bool:
        """A SQLite catalogue whose file does not exist (connecting would create an empty one)."""
        url = make_url(self.url)
        return url.get_backend_name() == "sqlite" and bool(url.database) and url.database != ":memory:" \
            and not Path(str(url.database)).exists()

    def current_revision(self) -> str | None:
        """The revision in Alembic's version table (None: not migrated), read with one query, without Alembic."""
        if self._missing_sqlite_file():
            return None
        try:
            with self.engine.connect() as conn:
                if not sa_inspect(conn).has_table(VERSION_TABLE):
                    return None
                rows = list(conn.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").scalars())
                if len(rows) > 1:  # several heads: Alembic's own answer (it names the problem)
                    from alembic.runtime.migration import MigrationContext

                    return MigrationContext.configure(conn).get_current_revision()
                return str(rows[0]) if rows else None
        except OperationalError as exc:
            raise unreachable(self.url, exc) from None

    def check_schema(self) -> None:
        """Stop start-up on an un-migrated or newer-than-code database, saying what to run. Every start and every
        /readyz asks: the code's head is read from the migration files' text once per process (Alembic loading
        every migration module took a second of `archive serve`'s start-up)."""
        current = self.current_revision()
        head, known = migration_heads()
        if current == head:
            return
        if current is None:
            raise ConfigError("目录数据库尚未初始化，请先运行 `archive db upgrade`（或 `archive init`）",
                              code="catalogue_not_migrated", detail={"database": safe_url(self.url)})
        if current not in known:
            raise ConfigError(
                f"目录数据库版本 {current} 比本程序新，请升级程序后再启动（不要降级数据库）",
                code="catalogue_newer_than_code", detail={"database": safe_url(self.url), "revision": current})
        raise ConfigError(f"目录数据库版本 {current} 落后于程序 {head}，请运行 `archive db upgrade`",
                          code="catalogue_outdated", detail={"database": safe_url(self.url), "revision": current})

    def upgrade(self, revision: str = "head") -> None:
        from alembic import command

        self.ping()
        cfg = alembic_config(self.url)
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)

    def dispose(self) -> None:
        self.engine.dispose()


@functools.cache
def migration_heads(versions: Path = MIGRATIONS / "versions") -> tuple[str, frozenset[str]]:
    """The head revision of the migrations in ``versions`` and every revision there, from each file's
    ``revision = "…"`` and ``down_revision = …`` (parsed, not imported: what Alembic's ScriptDirectory finds, which
    tests/catalogue/test_schema_check.py checks)."""
    down: dict[str, tuple[str, ...]] = {}
    for path in sorted(versions.glob("*.py")):
        values: dict[str, object] = {}
        for node in ast.parse(path.read_text(encoding="utf-8"), str(path)).body:
            if not isinstance(node, ast.Assign | ast.AnnAssign) or node.value is None:
                continue
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                values[target.id] = ast.literal_eval(node.value)
        revision, parent = values.get("revision"), values.get("down_revision")
        if not isinstance(revision, str):
            raise RuntimeError(f"migration {path.name} names no revision")
        down[revision] = (parent,) if isinstance(parent, str) else tuple(str(p) for p in parent or ())  # type: ignore[attr-defined]
    parents = {p for ps in down.values() for p in ps}
    heads = sorted(set(down) - parents)
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads: {heads}")
    return heads[0], frozenset(down)


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def unreachable(url: str, exc: Exception) -> ArchiveError:
    """The server is down or refuses us (ServiceUnavailable), or answers that the database does not exist."""
    reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
    if "does not exist" in reason and "database" in reason:
        parsed = make_url(url)
        name, host = parsed.database or "", parsed.host or "localhost"
        user = f" -U {parsed.username}" if parsed.username else ""
        return ConfigError(
            f"数据库服务器 {host} 可以连接，但目录数据库 {name} 不存在：请先创建它"
            f"（例如 createdb -h {host}{user} {name}，或 SQL：CREATE DATABASE {name}），再运行 `archive init`",
            code="catalogue_database_missing",
            detail={"setting": "ARCHIVE_DATABASE_URL", "database": name, "reason": reason},
        )
    return ServiceUnavailable(
        f"无法连接目录数据库 {safe_url(url)}，请检查 ARCHIVE_DATABASE_URL 和数据库服务是否运行",
        code="catalogue_unreachable", detail={"setting": "ARCHIVE_DATABASE_URL", "reason": reason},
    )
