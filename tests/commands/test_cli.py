"""The `archive` command: init, db upgrade, serve's start-up checks, users and clients."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archive.cli import app
from archive.context import Context
from archive.settings import load_settings

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ARCHIVE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_init_with_demo_is_repeatable_and_leaves_a_verified_audit_chain(data_dir: Path) -> None:
    """Given an empty directory, when `archive init --demo` runs twice, then the second run changes nothing."""
    first = runner.invoke(app, ["init", "--demo"])
    assert first.exit_code == 0, first.output
    assert "demo-pass-1" in first.output and "ak_" in first.output
    assert (data_dir / "catalogue.db").exists()
    second = runner.invoke(app, ["init", "--demo"])
    assert second.exit_code == 0 and "已存在" in second.output
    # the key is shown only once: the re-run says how to get a new one, and that command works
    new_key = second.output[second.output.index("archive client add"):].split("（")[0].split()[3:]
    assert not re.search(r"ak_[0-9a-f]{12}_", second.output) and new_key[0] == "demo-core-system-2"
    added = runner.invoke(app, ["client", "add", *new_key])
    assert added.exit_code == 0 and "ak_" in added.output, added.output
    verify = runner.invoke(app, ["audit", "verify"])
    assert verify.exit_code == 0 and "审计日志完整" in verify.output
    ctx = Context.build(load_settings(data_dir=data_dir))
    with ctx.catalogue.sessions() as s:
        from archive.catalogue.models import ArchiveItem, Case

        assert s.query(Case).count() == 12
        assert {c.category for c in s.query(Case)} == {"GJ", "TQ", "DK", "ZJ"}
        codes = [i.archival_code for i in s.query(ArchiveItem)]
        assert all(i.rendition_key and ctx.store.exists(i.rendition_key) for i in s.query(ArchiveItem))
        from archive.retention.appraisal import queue_query  # the 2014 reconciliations are due for 鉴定

        due = s.scalars(queue_query(ctx.today())).all()
    ctx.close()
    assert len(codes) == 9 and len(set(codes)) == 9
    assert sorted(i.archival_code.split("-")[1] for i in due) == ["YW·2014", "YW·2014"]
    for code in codes:
        ctx.code_rule.parse(code)


def test_serve_refuses_an_unmigrated_catalogue(data_dir: Path) -> None:
    """Given an empty data directory, When `archive serve` runs, Then it stops saying what to run,
    and leaves no empty catalogue.db behind (which `db status` would then report as 未初始化)."""
    r = runner.invoke(app, ["serve"])
    assert r.exit_code == 2
    assert "archive db upgrade" in r.output and "catalogue_not_migrated" in r.output
    assert "Traceback" not in r.output
    assert not (data_dir / "catalogue.db").exists()


@pytest.mark.parametrize("url", ["postgres://archive@127.0.0.1/archive", "mysql://archive@127.0.0.1/archive",
                                 "postgresql://archive@127.0.0.1/archive"])
def test_unsupported_database_url_is_a_message_not_a_traceback(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given ARCHIVE_DATABASE_URL with a scheme the archive does not run on, When a command starts,
    Then one line names the setting and the accepted forms (no traceback)."""
    monkeypatch.setenv("ARCHIVE_DATABASE_URL", url)
    r = runner.invoke(app, ["db", "status"])
    assert r.exit_code == 2 and "unsupported_database_url" in r.output, r.output
    assert "ARCHIVE_DATABASE_URL" in r.output and "postgresql+psycopg://" in r.output and "sqlite:///" in r.output
    assert "Traceback" not in r.output


def test_missing_postgresql_database_says_create_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a PostgreSQL server that answers but has no database of that name, When `archive db upgrade` runs,
    Then the message says the database does not exist and how to create it, distinct from a server that is down."""
    from sqlalchemy.engine import make_url

    from tests.conftest import PG_ADMIN_URL, _pg_admin

    try:
        _pg_admin().connect().close()
    except Exception:
        pytest.skip("PostgreSQL not reachable")
    url = make_url(PG_ADMIN_URL).set(database="archive_no_such_db").render_as_string(hide_password=False)
    monkeypatch.setenv("ARCHIVE_DATABASE_URL", url)
    r = runner.invoke(app, ["db", "upgrade"])
    assert r.exit_code == 2 and "catalogue_database_missing" in r.output, r.output
    assert "archive_no_such_db 不存在" in r.output and "CREATE DATABASE archive_no_such_db" in r.output
    assert "catalogue_unreachable" not in r.output and "Traceback" not in r.output


def test_db_upgrade_then_status(data_dir: Path) -> None:
    """Given an empty data directory, when `archive db upgrade` then `archive db status` run, then both succeed and
    status says the catalogue matches the program (与程序一致)."""
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    r = runner.invoke(app, ["db", "status"])
    assert r.exit_code == 0 and "与程序一致" in r.output


def test_unreachable_database_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a database URL nobody listens on, when `archive db upgrade` runs, then it exits 2 naming
    ARCHIVE_DATABASE_URL, with no traceback."""
    monkeypatch.setenv("ARCHIVE_DATABASE_URL", "postgresql+psycopg://archive:pw@127.0.0.1:1/archive")
    r = runner.invoke(app, ["db", "upgrade"])
    assert r.exit_code == 2 and "ARCHIVE_DATABASE_URL" in r.output and "Traceback" not in r.output


def test_broken_schedule_file_stops_start_up_naming_file_and_field(data_dir: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Given ARCHIVE_SCHEDULE pointing at a file without triggers, when `serve`, `db upgrade` or `schedule check`
    runs, then each exits 2 naming the file and the missing field."""
    bad = tmp_path / "center.toml"
    bad.write_text('schema = 1\nversion = "x"\n', encoding="utf-8")
    monkeypatch.setenv("ARCHIVE_SCHEDULE", str(bad))
    for args in (["serve"], ["db", "upgrade"], ["schedule", "check"]):
        r = runner.invoke(app, args)
        assert r.exit_code == 2 and str(bad) in r.output and "triggers" in r.output, args


def test_bad_code_template_setting_stops_start_up(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given an archival code template without the required parts, when `archive db upgrade` runs, then it exits 2
    naming ARCHIVE_ARCHIVAL_CODE_TEMPLATE."""
    monkeypatch.setenv("ARCHIVE_ARCHIVAL_CODE_TEMPLATE", "{全宗号}-{件号}")
    r = runner.invoke(app, ["db", "upgrade"])
    assert r.exit_code == 2 and "ARCHIVE_ARCHIVAL_CODE_TEMPLATE" in r.output


def test_user_and_client_commands(data_dir: Path) -> None:
    """Given an initialised archive, when a clerk is added, then it is named in the output; an admin who is also
    auditor exits 2 separation_of_duties and a short password exits 2 weak_password; a client gets an ak_ key and
    can be revoked, while revoking an unknown one exits 2."""
    assert runner.invoke(app, ["init"]).exit_code == 0
    r = runner.invoke(app, ["user", "add", "clerk09", "--role", "clerk", "--branch", "BR09", "--password",
                            "long-enough-1"])
    assert r.exit_code == 0 and "clerk09" in r.output
    r = runner.invoke(app, ["user", "add", "x", "--role", "admin", "--role", "auditor", "--password", "long-enough-1"])
    assert r.exit_code == 2 and "separation_of_duties" in r.output
    r = runner.invoke(app, ["user", "add", "y", "--role", "clerk", "--password", "short"])
    assert r.exit_code == 2 and "weak_password" in r.output
    r = runner.invoke(app, ["client", "add", "core", "--scope", "data.read", "--scope", "images.read"])
    assert r.exit_code == 0 and "ak_" in r.output
    assert runner.invoke(app, ["client", "revoke", "core"]).exit_code == 0
    assert runner.invoke(app, ["client", "revoke", "nobody"]).exit_code == 2


def test_schedule_check_prints_the_packaged_schedule(data_dir: Path) -> None:
    """Given no schedule configured, when `archive schedule check` runs, then it prints the packaged schedule
    (贷款结清 among its triggers) and says it is the default (默认值)."""
    r = runner.invoke(app, ["schedule", "check"])
    assert r.exit_code == 0 and "贷款结清" in r.output and "默认值" in r.output


def test_help_does_not_import_the_heavy_stacks() -> None:
    """Given a fresh interpreter, When the CLI module is imported and `archive --help` runs, Then none of the
    signing, PDF, image, storage-client, search, catalogue or settings libraries has been imported (they load in
    the commands; the command groups load when run, archive/commands/lazy.py)."""
    import json
    import subprocess
    import sys

    heavy = ["pyhanko", "pikepdf", "reportlab", "tantivy", "elasticsearch", "minio", "PIL", "zxingcpp",
             "pypdfium2", "img2pdf", "fastapi", "uvicorn", "alembic", "signing.certificates", "storage.s3",
             # the catalogue and settings stacks too (issue 17: `archive --help` ≤ 1 s): the groups load lazily
             "sqlalchemy", "pydantic", "pydantic_settings", "archive.catalogue.models", "archive.commands.storage"]
    script = ("import json, sys\n"
              "from typer.testing import CliRunner\n"
              "from archive.cli import app\n"
              "r = CliRunner().invoke(app, ['--help'])\n"
              "assert r.exit_code == 0, r.output\n"
              f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_user_add_help_names_every_role_and_is_not_cut_at_80_columns() -> None:
    """Given `archive user add --help` read through a pipe (no terminal, no COLUMNS), When it prints,
    Then every role, archive_head included, is named, and lines are not cut at 80 columns."""
    import os
    import subprocess
    import sys

    from archive.permissions import ROLE_NAMES

    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TERMINAL_WIDTH")}
    done = subprocess.run([sys.executable, "-c", "from archive.cli import main; main()", "user", "add", "--help"],
                          capture_output=True, text=True, env=env, check=True)
    assert all(role in done.stdout for role in ROLE_NAMES), done.stdout
    assert max(len(line) for line in done.stdout.splitlines()) > 80 and "…" not in done.stdout


def test_a_table_read_through_a_pipe_is_not_cut_at_80_columns(tmp_path: Path) -> None:
    """Given `archive dq rules` written to a pipe (a file, a pager; no terminal, no COLUMNS), When it prints its
    table, Then every cell is whole: rich would otherwise assume 80 columns and cut each name to "…"."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TERMINAL_WIDTH") and not
           (k.startswith("ARCHIVE_") and not k.startswith("ARCHIVE_TEST_"))}
    env["ARCHIVE_DATA_DIR"] = str(tmp_path / "data")
    done = subprocess.run([sys.executable, "-c", "from archive.cli import main; main()", "dq", "rules"],
                          capture_output=True, text=True, env=env, check=True)
    assert "证件号码校验位" in done.stdout and "…" not in done.stdout, done.stdout


def test_every_command_and_option_is_explained_in_chinese() -> None:
    """Given every command and option of `archive`, When its help is read, Then it is in Chinese
    (English only for the names of commands, options and values)."""
    import re

    import click
    import typer

    def walk(command: click.Command, path: str) -> list[tuple[str, click.Command]]:
        found = [(path, command)]
        for name, sub in getattr(command, "commands", {}).items():
            found += walk(sub, f"{path} {name}")
        return found

    english = []
    for path, command in walk(typer.main.get_command(app), "archive"):
        helps = [("", command.help)] + [(p.name, getattr(p, "help", None)) for p in command.params]
        english += [f"{path} {name}: {text}" for name, text in helps
                    if name != "help" and text and not re.search(r"[\u4e00-\u9fff]", text)]
    assert english == []


def test_every_lazy_command_loads_and_lists_its_own_help_line() -> None:
    """Given the table of lazily loaded commands, When each is loaded, Then it is a real command (groups have
    subcommands) and the help line `archive --help` shows from the table is the command's own."""
    from archive.commands.lazy import LAZY, load

    for name, spec in LAZY.items():
        command = load(name)
        assert (command.help or "").strip().splitlines()[0] == spec.help, name
        if spec.command is None:
            assert command.commands, name  # a group with its subcommands


def test_root_help_lists_lazy_groups_and_a_lazy_group_runs() -> None:
    """Given `archive --help`, Then the lazily loaded groups are listed with their help; When one of them is
    asked for its own help or run, Then its module loads and it answers."""
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0 and "存量档案导入" in r.output and "四性检测" in r.output and "dq" in r.output
    r = runner.invoke(app, ["storage", "--help"])
    assert r.exit_code == 0 and "verify" in r.output
    r = runner.invoke(app, ["dq", "rules"])
    assert r.exit_code == 0 and "DQ-" in r.output
    r = runner.invoke(app, ["no-such-group"])
    assert r.exit_code != 0
