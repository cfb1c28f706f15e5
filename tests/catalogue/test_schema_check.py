"""The start-up schema check without Alembic (issue 17: `archive serve` ready within 3 s): the code's head read from
the migration files' text, the catalogue's revision with one query; both as Alembic itself sees them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory

from archive.catalogue.db import Catalogue, alembic_config, migration_heads


def test_the_head_read_from_the_files_is_alembics(tmp_path: Path) -> None:
    """Given the packaged migrations, When their head and revisions are read from the files' text, Then they are the
    head and the revisions Alembic's ScriptDirectory finds by loading them."""
    script = ScriptDirectory.from_config(alembic_config(f"sqlite:///{tmp_path / 'x.db'}"))
    head, known = migration_heads()
    assert head == script.get_current_head()
    assert known == {rev.revision for rev in script.walk_revisions()}


def test_a_second_head_or_a_tuple_parent_is_read_too(tmp_path: Path) -> None:
    """Given migration files with a merge (a tuple down_revision), When read, Then the merge is the head; And with
    two heads, it refuses (Alembic would too) rather than picking one."""
    (tmp_path / "a.py").write_text('revision = "a"\ndown_revision = None\n')
    (tmp_path / "b.py").write_text('revision = "b"\ndown_revision = "a"\n')
    (tmp_path / "c.py").write_text('revision: str = "c"\ndown_revision = "a"\n')
    try:
        migration_heads(tmp_path)
    except RuntimeError as exc:
        assert "2 heads" in str(exc)
    else:
        raise AssertionError("two heads were accepted")
    (tmp_path / "d.py").write_text('revision = "d"\ndown_revision = ("b", "c")\n')
    assert migration_heads(tmp_path) == ("d", frozenset("abcd"))


def test_the_start_up_check_loads_neither_alembic_nor_a_migration(sqlite_template: Path, tmp_path: Path) -> None:
    """Given a migrated catalogue, When a fresh interpreter checks its schema (as `archive serve` and /readyz do),
    Then it passes, reads the revision Alembic wrote, and has imported no Alembic module."""
    script = ("import json, sys\n"
              "from archive.catalogue.db import Catalogue\n"
              f"cat = Catalogue({f'sqlite:///{sqlite_template}'!r})\n"
              "cat.check_schema()\n"
              "alembic = sorted(m for m in sys.modules if m.startswith('alembic'))\n"
              "print(json.dumps([cat.current_revision(), alembic]))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    revision, alembic = json.loads(done.stdout.strip().splitlines()[-1])
    assert alembic == [] and revision == migration_heads()[0]


def test_an_empty_database_has_no_revision(tmp_path: Path) -> None:
    """Given a SQLite file without Alembic's table, When its revision is read, Then None (not migrated)."""
    cat = Catalogue(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        cat.ping()
        assert cat.current_revision() is None
    finally:
        cat.dispose()
