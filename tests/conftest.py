"""Shared fixtures. Catalogue tests run on SQLite and on PostgreSQL.

PostgreSQL: ARCHIVE_TEST_PG_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres).
Each test gets its own database cloned from a migrated template, so tests see real commits and
real concurrency. Without a server the PostgreSQL runs skip, unless ARCHIVE_TEST_REQUIRE_PG=1
(set by CI), which turns the skip into a failure.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from archive.api.app import create_app
from archive.catalogue.db import Catalogue
from archive.context import Context
from archive.settings import Settings, get_settings, load_settings
from tests.hsm import softhsm  # noqa: F401  # the SoftHSM2 token fixture, for tests of the PKCS#11 signer

PG_ADMIN_URL = os.environ.get("ARCHIVE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REQUIRE_PG = os.environ.get("ARCHIVE_TEST_REQUIRE_PG") == "1"
_counter = itertools.count()


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A developer's ARCHIVE_* variables must not leak into tests."""
    for name in list(os.environ):
        if name.startswith("ARCHIVE_") and not name.startswith("ARCHIVE_TEST_"):
            monkeypatch.delenv(name)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def _fresh_image_cache() -> None:
    """Rendered page images are cached per process, keyed by content: a test must not see another's renderings
    (it would skip writing its own into its object store)."""
    from archive import images

    images.memory_cache.clear()


@pytest.fixture(autouse=True)
def _fresh_memos() -> None:
    """API keys, grants and filed documents are remembered per process for seconds (archive/memo.py), keyed by ids
    that every test's catalogue reuses: a test must not see another's."""
    from archive import identity, reading
    from archive.retention import lending

    identity.key_cache.clear()
    lending.grant_cache.clear()
    reading.filed_documents.clear()


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2's production cost is ~0.2 s a hash here; tests create hundreds of users."""
    from argon2 import PasswordHasher

    from archive import identity

    monkeypatch.setattr(identity, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def _pg_admin():  # type: ignore[no-untyped-def]
    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})


def _pg_url(dbname: str) -> str:
    return make_url(PG_ADMIN_URL).set(database=dbname).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated template database, cloned for each test."""
    try:
        admin = _pg_admin()
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required (ARCHIVE_TEST_REQUIRE_PG=1) but not reachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
    name = f"archive_tpl_{os.getpid()}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    cat = Catalogue(_pg_url(name))
    cat.upgrade()
    cat.dispose()
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tpl") / "catalogue.db"
    cat = Catalogue(f"sqlite:///{path}")
    cat.upgrade()
    cat.dispose()  # the last connection to close checkpoints the WAL into the file
    assert not path.with_name(path.name + "-wal").exists()
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, migrated, empty catalogue on each database."""
    if request.param == "sqlite":
        target = tmp_path / "data" / "catalogue.db"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        yield f"sqlite:///{target}"
        return
    template = request.getfixturevalue("pg_template")
    name = f"archive_t_{os.getpid()}_{next(_counter)}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield _pg_url(name)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return load_settings(data_dir=tmp_path / "data", database_url=db_url)


@pytest.fixture(scope="session")
def pki_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Development CA, signing and TSA certificates, made once (key generation is slow)."""
    from signing.certificates import ensure_dev_pki

    path = tmp_path_factory.mktemp("pki")
    ensure_dev_pki(path)
    return path


@pytest.fixture
def ctx(settings: Settings, pki_template: Path) -> Iterator[Context]:
    from archive.commands.common import ensure_fonds

    shutil.copytree(pki_template, settings.pki_path)
    context = Context.build(settings)
    ensure_fonds(context)
    yield context
    context.close()


@pytest.fixture
def client(ctx: Context) -> Iterator[TestClient]:
    """The API over ``ctx``, lifespan included."""
    with TestClient(create_app(context=ctx)) as c:
        yield c
