"""`archive backup create|verify|restore`: the restore drill on SQLite and PostgreSQL, and every refusal."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from archive import backup
from archive.audit import Actor
from archive.catalogue.models import ArchiveItem, AuditEvent
from archive.cli import app
from archive.context import Context
from archive.settings import Settings, get_settings, load_settings
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
    assert path.stat().st_mode & 0o077 == 0  # the catalogue copy holds personal data
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


def test_a_manifest_rewritten_to_match_a_tampered_file_is_caught_by_the_audit_log(cli: Context) -> None:
    """The manifest's own digest is in the audit log: rewriting manifest and file together does not go unnoticed."""
    path = create_backup()
    assert "无法核对" not in run("backup", "verify", str(path))[1]
    settings_file = path / "settings.json"
    settings_file.write_text(settings_file.read_text().replace("J001", "J002"))
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"]["settings.json"] = backup._digest_files(path)["settings.json"]
    (path / "manifest.json").write_text(json.dumps(manifest))
    code, output = run("backup", "verify", str(path))
    assert code == 1 and "manifest.json" in output and "审计日志" in output, output


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
        contents = [tar.extractfile(n) for n in names]
        assert all(f is not None and b"PRIVATE KEY" not in f.read() for f in contents)


def test_signer_files_outside_the_pki_dir_are_backed_up_encrypted_and_restored_where_configured(
        cli: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ARCHIVE_SIGNER_CERT / ARCHIVE_SIGNER_KEY outside ARCHIVE_PKI_DIR (production) are part of the backup too."""
    outside = tmp_path / "etc-archive"
    outside.mkdir()
    cert, key = outside / "center.pem", outside / "center.key"
    shutil.copyfile(cli.settings.pki_path / "signer.pem", cert)
    shutil.copyfile(cli.settings.pki_path / "signer.key.pem", key)
    monkeypatch.setenv("ARCHIVE_SIGNER_CERT", str(cert))
    monkeypatch.setenv("ARCHIVE_SIGNER_KEY", str(key))
    original = key.read_bytes()
    path = create_backup()
    pki = json.loads((path / "manifest.json").read_text())["pki"]
    assert pki["external"] == {"signer-cert": str(cert), "signer-key": str(key)}
    assert original not in (path / "pki.tar.enc").read_bytes()
    key.unlink()
    cert.write_text("replaced")
    code, output = run("backup", "restore", str(path), "--pki-only")
    assert code == 2 and str(cert) in output  # a different file where the certificate goes: --yes needed
    code, output = run("backup", "restore", str(path), "--pki-only", "--yes")
    assert code == 0, output
    assert key.read_bytes() == original and key.stat().st_mode & 0o077 == 0
    assert cert.read_bytes() == (cli.settings.pki_path / "signer.pem").read_bytes()
    monkeypatch.delenv("ARCHIVE_BACKUP_PASSPHRASE_FILE")
    key.unlink()
    code, output = run("backup", "create")
    assert code == 2 and "backup_signer_file_missing" in output and str(key) in output


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


def test_pki_only_restores_the_certificates_and_leaves_the_catalogue(cli: Context) -> None:
    path = create_backup()
    item = stored_item(cli)  # filed after the backup: a catalogue restore would lose it, --pki-only keeps it
    (cli.settings.pki_path / "signer.key.pem").write_text("damaged")
    code, output = run("backup", "restore", str(path), "--pki-only")
    assert code == 2 and "backup_target_not_empty" in output and "signer.key.pem" in output
    code, output = run("backup", "restore", str(path), "--pki-only", "--yes")
    assert code == 0 and "未改动目录数据库" in output, output
    assert b"PRIVATE KEY" in (cli.settings.pki_path / "signer.key.pem").read_bytes()
    with cli.catalogue.sessions() as s:
        assert s.scalar(select(ArchiveItem.id).where(ArchiveItem.archival_code == item.archival_code)) is not None
    assert run("audit", "verify")[0] == 0


def test_restore_onto_a_catalogue_in_use_needs_yes(cli: Context) -> None:
    path = create_backup()
    stored_item(cli)  # filed after the backup: restoring would lose it
    code, output = run("backup", "restore", str(path))
    assert code == 2 and "backup_target_not_empty" in output and "--yes" in output
    code, output = run("backup", "restore", str(path), "--yes")
    assert code == 0, output
    assert run("audit", "verify")[0] == 0


def test_a_backup_from_a_newer_program_is_refused_before_anything_changes(
        cli: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    path = create_backup()
    revision = json.loads((path / "manifest.json").read_text())["catalogue"]["revision"]
    monkeypatch.setattr(backup, "known_revisions", lambda _url: {"0001"})  # an older program than the backup's
    destroy_catalogue(cli)
    code, output = run("backup", "restore", str(path))
    assert code == 2 and "catalogue_newer_than_code" in output and revision in output, output
    assert not backup.catalogue_in_use(cli)


def test_not_a_backup_is_a_clear_error(cli: Context, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    code, output = run("backup", "create", "--to", str(tmp_path / "a-file"))
    assert code == 2 and "backup_write_failed" in output
    with cli.catalogue.sessions() as s:
        failed = s.scalars(select(AuditEvent).where(AuditEvent.action == "backup.create")).one()
    assert failed.outcome == "failure" and failed.detail["code"] == "backup_write_failed"
    code, output = run("backup", "verify", str(tmp_path))
    assert code == 2 and "backup_not_found" in output
    code, output = run("backup", "restore", str(tmp_path / "nowhere"))
    assert code == 2 and "backup_not_found" in output


def s3_settings() -> dict[str, object]:
    """The real S3 gateway (scripts/s3-gateway) when ARCHIVE_TEST_S3_ENDPOINT names it, else moto; a fresh bucket."""
    endpoint = os.environ.get("ARCHIVE_TEST_S3_ENDPOINT")
    if endpoint:
        access, secret = os.environ["ARCHIVE_TEST_S3_ACCESS_KEY"], os.environ["ARCHIVE_TEST_S3_SECRET_KEY"]
    else:
        from tests.storage.support import moto_endpoint

        endpoint, access, secret = moto_endpoint(), "testing", "testing-secret"
    return {"storage": "s3", "s3_endpoint": endpoint, "s3_access_key": access, "s3_secret_key": secret,
            "s3_bucket": f"t-{uuid.uuid4().hex[:20]}", "s3_secure": False}


def test_inventory_of_an_s3_store_and_redacted_settings(settings: Settings, pki_template: Path) -> None:
    """Given an S3 store, the inventory lists every object with its size and SHA-256 as S3 reports it; the settings
    file carries no secret; an object deleted from S3 later is reported missing by verify."""
    s3 = s3_settings()
    s3_settings_ = load_settings(data_dir=settings.data_dir, database_url=settings.catalogue_url, **s3)
    shutil.copytree(pki_template, s3_settings_.pki_path)
    ctx = Context.build(s3_settings_)
    try:
        from archive.commands.common import ensure_fonds

        ensure_fonds(ctx)
        item = stored_item(ctx)
        created = backup.create(ctx, Actor.system("test"), passphrase=b"a long passphrase")
        inventory = [json.loads(line) for line in (created.path / "inventory.jsonl").read_text().splitlines()]
        by_key = {row["key"]: row for row in inventory}
        assert set(item.original_keys) | {item.rendition_key} <= set(by_key)
        assert all(len(row["sha256"]) == 64 and row["size"] > 0 for row in inventory)
        assert created.manifest["inventory"]["objects"] == len(inventory)
        saved = (created.path / "settings.json").read_text()
        assert str(s3["s3_secret_key"]) not in saved and str(s3["s3_access_key"]) not in saved
        assert json.loads(saved)["s3_secret_key"] == "***" and json.loads(saved)["storage"] == "s3"
        assert backup.verify(created.path, ctx.store).ok
        ctx.store.delete(item.rendition_key)
        problems = backup.verify(created.path, ctx.store).problems
        assert [(p.subject, p.problem) for p in problems] == [(item.rendition_key, "对象在存储中缺失")]
        with ctx.catalogue.sessions() as s:
            event = s.scalars(select(AuditEvent).where(AuditEvent.action == "backup.create")).one()
        assert event.detail["manifest_sha256"] == created.manifest_sha256 and event.outcome == "success"
    finally:
        ctx.close()


def test_postgres_password_goes_to_the_environment_never_the_command_line() -> None:
    command, env = backup.pg_command("postgresql+psycopg://arch:s3cr%40t@db.example:5433/archive?sslmode=require",
                                     "pg_dump", "--format=custom")
    assert "s3cr@t" not in " ".join(command) and env["PGPASSWORD"] == "s3cr@t" and env["PGSSLMODE"] == "require"
    assert command[:7] == ["pg_dump", "--host", "db.example", "--port", "5433", "--username", "arch"]
    assert command[-2:] == ["--dbname", "archive"]
    redacted = backup.redacted_settings(load_settings(database_url="postgresql+psycopg://arch:pw@h/archive",
                                                      es_password="espw"))
    assert "pw@" not in redacted["database_url"] and redacted["es_password"] == "***"
