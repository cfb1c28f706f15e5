"""Catalogue schema: migrations match the models; start-up refuses a database it cannot trust."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from archive.catalogue.db import Catalogue, alembic_config
from archive.catalogue.models import Base
from archive.context import Context
from archive.errors import ConfigError, ServiceUnavailable
from archive.permissions import ROLE_NAMES
from tests.factories import add_case, file_case_row


def test_migrations_produce_exactly_the_models(db_url: str) -> None:
    """Given a migrated database, when compared with the models, then there is no difference."""
    cat = Catalogue(db_url)
    with cat.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    cat.dispose()
    assert diff == []


def test_migrated_database_passes_the_start_up_check(db_url: str) -> None:
    """Given a freshly migrated catalogue, when the start-up schema check runs, then it passes and every role the
    code knows is a row, so users can be given it."""
    cat = Catalogue(db_url)
    cat.check_schema()
    with cat.session() as s:
        roles = {r for (r,) in s.execute(text("SELECT code FROM role"))}
    cat.dispose()
    assert roles == set(ROLE_NAMES)  # every role the code knows is a row, so users can be given it


def test_unmigrated_database_stops_start_up_saying_which_command_to_run(tmp_path: Path) -> None:
    """Given an empty database, when the start-up schema check runs, then ConfigError catalogue_not_migrated tells to
    run `archive db upgrade`."""
    cat = Catalogue(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(ConfigError) as e:
        cat.check_schema()
    assert e.value.code == "catalogue_not_migrated" and "archive db upgrade" in e.value.message


def test_database_newer_than_code_stops_start_up(db_url: str) -> None:
    """Given a catalogue stamped with a revision this code does not know, when the start-up schema check runs, then
    ConfigError catalogue_newer_than_code says to upgrade the program (升级程序)."""
    cat = Catalogue(db_url)
    with cat.session() as s:
        s.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    with pytest.raises(ConfigError) as e:
        cat.check_schema()
    cat.dispose()
    assert e.value.code == "catalogue_newer_than_code" and "升级程序" in e.value.message


def test_unreachable_database_names_the_setting_and_hides_the_password() -> None:
    """Given a PostgreSQL URL nobody listens on, when the schema check runs, then catalogue_unreachable names
    ARCHIVE_DATABASE_URL without the password."""
    cat = Catalogue("postgresql+psycopg://archive:secret@127.0.0.1:1/archive")
    with pytest.raises(ServiceUnavailable) as e:
        cat.check_schema()
    assert e.value.code == "catalogue_unreachable"
    assert "ARCHIVE_DATABASE_URL" in e.value.message and "secret" not in e.value.message


def test_malformed_database_url_is_a_config_error() -> None:
    """Given a database URL that is not a URL, when a catalogue is made from it, then ConfigError
    invalid_database_url."""
    with pytest.raises(ConfigError) as e:
        Catalogue("not a url")
    assert e.value.code == "invalid_database_url"


def test_upgrade_is_idempotent(db_url: str) -> None:
    """Given a migrated catalogue, when it is upgraded again, then nothing fails and the schema check still passes."""
    cat = Catalogue(db_url)
    cat.upgrade()
    cat.check_schema()
    cat.dispose()


def test_upgrade_marks_cases_of_destroyed_items_destroyed(ctx: Context) -> None:
    """Given a catalogue from before revision 0010, where destruction marked only the item (the case still
    said filed), When it is upgraded, Then the case says destroyed too and other filed cases stay filed."""
    add_case(ctx, "YW2025030100001")
    add_case(ctx, "YW2025030100002")
    file_case_row(ctx, "YW2025030100001", 1)
    file_case_row(ctx, "YW2025030100002", 2)
    with ctx.catalogue.engine.begin() as conn:
        cfg = alembic_config(ctx.catalogue.url)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0009")
        conn.execute(text("UPDATE archive_item SET status = 'destroyed' WHERE number = 1"))
    ctx.catalogue.upgrade()
    with ctx.catalogue.session() as s:
        statuses = dict(s.execute(text('SELECT serial, status FROM "case" ORDER BY serial')).all())
    assert statuses == {"YW2025030100001": "destroyed", "YW2025030100002": "filed"}
