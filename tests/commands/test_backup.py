"""`archive backup create|verify|restore`: the restore drill on SQLite and PostgreSQL, and every refusal."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from archive.catalogue.models import AuditEvent
from archive.cli import app
from archive.context import Context
from archive.settings import get_settings
from tests.factories import file_cases, stored_item
from tests.helpers import add_client

runner = CliRunner()
PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def cli(ctx: Context, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Context:
    """The CLI sees the same catalogue, store and certificates as ``ctx``, and a backup passphrase."""
    secret = tmp_path / "backup-passphrase"
    secret.write_text(PASSPHRASE + "\n")
    monkeypatch.setenv("ARCHIVE_DATA_DIR", str(ctx.settings.data_dir))
    monkeypatch.setenv("ARCHIVE_DATABASE_URL", ctx.settings.catalogue_url)
    monkeypatch.setenv("ARCHIVE_BACKUP_PASSPHRASE_FILE", str(secret))
    get_settings.cache_clear()
    return ctx


def run(*args: str) -> tuple[int, str]:
    get_settings.cache_clear()
    r = runner.invoke(app, list(args))
    return r.exit_code, r.output


def create_backup() -> Path:
    code, output = run("backup", "create")
    assert code == 0, output
    path = Path(output.split("备份已完成：", 1)[1].split()[0])
    assert path.is_dir() and path.parent == get_settings().backup_path
    return path


def destroy_catalogue(ctx: Context) -> None:
    """The catalogue is lost: the SQLite file deleted, or the PostgreSQL database dropped and created empty."""
    ctx.catalogue.dispose()
    url = make_url(ctx.settings.catalogue_url)
    if url.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{url.database}{suffix}").unlink(missing_ok=True)
        return
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{url.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()


def test_restore_drill(cli: Context, client: TestClient) -> None:
    """Given filed items, when the catalogue, certificates and index are lost and the backup restored, then the audit
    chain, the store, the sweep and the index rebuild all pass, every item's signature verifies, and the restore is
    the newest event of the audit chain."""
    core = add_client(cli, "core", ["cases.write", "data.read", "pii.read"])
    codes = file_cases(client, core, ["YW2026010500001", "YW2026010500002"])
    path = create_backup()
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["pki"]["mode"] == "encrypted" and manifest["catalogued_objects"]["count"] >= 6
    assert manifest["inventory"]["objects"] >= manifest["catalogued_objects"]["count"]
    assert list((path / "schedules").glob("*.toml")) and (path / "inventory.jsonl").exists()
    assert b"PRIVATE KEY" not in (path / "pki.tar.enc").read_bytes()
    assert "***" not in (path / "settings.json").read_text() or "secret" in (path / "settings.json").read_text()
    assert run("backup", "verify", str(path))[0] == 0

    destroy_catalogue(cli)
    shutil.rmtree(cli.settings.pki_path)
    shutil.rmtree(cli.settings.index_dir, ignore_errors=True)
    code, output = run("backup", "restore", str(path))
    assert code == 0, output
    assert "archive index rebuild" in output

    for command in (("audit", "verify"), ("storage", "verify"), ("check", "sweep"), ("index", "rebuild"),
                    ("backup", "verify", str(path))):
        code, output = run(*command)
        assert code == 0, (command, output)
    for archival_code in codes:  # GD re-check: digests, and the signature against the restored certificates
        code, output = run("check", "item", archival_code)
        assert code == 0, output
    assert (cli.settings.pki_path / "signer.key.pem").exists()
    assert (cli.settings.pki_path / "signer.key.pem").stat().st_mode & 0o077 == 0
    with cli.catalogue.sessions() as s:
        actions = list(s.scalars(select(AuditEvent.action).order_by(AuditEvent.seq.desc()).limit(6)))
    assert "backup.restore" in actions and "item.file" in s.scalars(select(AuditEvent.action)).all()


def test_tampered_backup_fails_verify_naming_the_file_and_is_not_restored(cli: Context) -> None:
    stored_item(cli)
    path = create_backup()
    schedule = path / "settings.json"
    schedule.write_text(schedule.read_text().replace("J001", "J002"))
    code, output = run("backup", "verify", str(path))
    assert code == 1 and schedule.name in output and "不符" in output
    code, output = run("backup", "restore", str(path), "--yes")
    assert code == 2 and "backup_invalid" in output and schedule.name in output
    (path / "extra.txt").write_text("x")
    assert "extra.txt" in run("backup", "verify", str(path))[1]


def test_wrong_or_missing_passphrase_is_refused_before_anything_changes(cli: Context, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = create_backup()
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase")
    monkeypatch.setenv("ARCHIVE_BACKUP_PASSPHRASE_FILE", str(wrong))
    code, output = run("backup", "restore", str(path), "--yes")
    assert code == 2 and "backup_passphrase_wrong" in output and "口令不正确" in output
    monkeypatch.delenv("ARCHIVE_BACKUP_PASSPHRASE_FILE")
    code, output = run("backup", "restore", str(path), "--yes")
    assert code == 2 and "backup_passphrase_missing" in output
    monkeypatch.setenv("ARCHIVE_BACKUP_PASSPHRASE_FILE", str(tmp_path / "absent"))
    code, output = run("backup", "create")
    assert code == 2 and "backup_passphrase_unreadable" in output


def test_without_a_passphrase_private_keys_are_left_out_and_the_manifest_says_so(
        cli: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARCHIVE_BACKUP_PASSPHRASE_FILE")
    code, output = run("backup", "create")
    assert code == 0 and "私钥未备份" in output
    path = Path(output.split("备份已完成：", 1)[1].split()[0])
    pki = json.loads((path / "manifest.json").read_text())["pki"]
    assert pki["mode"] == "public_only" and "signer.key.pem" in pki["omitted_private_keys"]
    assert not (path / "pki.tar.enc").exists()
    with tarfile.open(path / "pki-public.tar") as tar:
        names = tar.getnames()
        assert "ca.pem" in names and "signer.key.pem" not in names and "signer.p12" not in names
        assert all(b"PRIVATE KEY" not in (tar.extractfile(n) or open(__file__, "rb")).read() for n in names)


def test_missing_object_is_reported_by_verify_and_restore(cli: Context) -> None:
    item = stored_item(cli)
    path = create_backup()
    cli.store.delete(item.original_keys[0])  # lost from the store (no retention on this test object)
    code, output = run("backup", "verify", str(path))
    assert code == 1 and item.original_keys[0] in output and "缺失" in output
    destroy_catalogue(cli)
    code, output = run("backup", "restore", str(path))
    assert code == 1 and item.original_keys[0] in output, output
    assert run("audit", "verify")[0] == 0


def test_restore_onto_a_catalogue_in_use_needs_yes(cli: Context) -> None:
    path = create_backup()
    stored_item(cli)  # filed after the backup: restoring would lose it
    code, output = run("backup", "restore", str(path))
    assert code == 2 and "backup_target_not_empty" in output and "--yes" in output
    code, output = run("backup", "restore", str(path), "--yes")
    assert code == 0, output
    assert run("audit", "verify")[0] == 0


def test_not_a_backup_is_a_clear_error(cli: Context, tmp_path: Path) -> None:
    code, output = run("backup", "verify", str(tmp_path))
    assert code == 2 and "backup_not_found" in output
    code, output = run("backup", "restore", str(tmp_path / "nowhere"))
    assert code == 2 and "backup_not_found" in output
