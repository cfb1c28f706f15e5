"""`archive init` for first use: the first administrator, the signer (file, development PKI, PKCS#11) and the TSA,
checked and summarised; production never makes a development PKI."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from archive.catalogue.models import AuditEvent, User
from archive.cli import app
from archive.context import Context
from archive.settings import get_settings, load_settings
from signing.certificates import DevPki
from signing.keys import key_file_encrypted
from tests.hsm import SoftHsm

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ARCHIVE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "admin-password"
    path.write_text("first-admin-pass-1\n")
    return path


def _admins(data_dir: Path) -> list[str]:
    ctx = Context.build(load_settings(data_dir=data_dir))
    try:
        with ctx.catalogue.sessions() as s:
            users = s.scalars(select(User)).all()
            created = s.scalars(select(AuditEvent).where(AuditEvent.action == "user.create")).all()
            assert len(created) == len(users)
            return [u.username for u in users if "admin" in u.role_codes]
    finally:
        ctx.close()


def test_init_creates_the_first_admin_once(data_dir: Path, password_file: Path) -> None:
    """Given an empty data directory, When `archive init --admin root --admin-password-file F` runs twice (the second
    time with another name), Then one administrator exists, the second run says so and changes nothing, and both
    print the signer summary."""
    first = runner.invoke(app, ["init", "--admin", "root", "--admin-password-file", str(password_file)])
    assert first.exit_code == 0, first.output
    assert "已创建首个系统管理员 root" in first.output and "签章证书：" in first.output
    assert "开发用证书" in first.output
    second = runner.invoke(app, ["init", "--admin", "other", "--admin-password-file", str(password_file)])
    assert second.exit_code == 0, second.output
    assert "已有系统管理员（root）" in second.output and "未做任何修改" in second.output
    assert _admins(data_dir) == ["root"]
    login = Context.build(load_settings(data_dir=data_dir))
    try:
        from archive import identity

        with login.catalogue.session() as s:
            assert identity.login(s, "root", "first-admin-pass-1", 1)[2].username == "root"
    finally:
        login.close()


@pytest.mark.parametrize(("args", "says"), [
    (["--admin", "root"], "--admin-password-file"),
    (["--admin-password-file", "PW"], "--admin"),
    (["--admin", "root", "--admin-password-file", "/nonexistent/pw"], "无法读取管理员密码文件"),
])
def test_init_admin_needs_both_options_and_a_readable_file(data_dir: Path, password_file: Path, args: list[str],
                                                           says: str) -> None:
    r = runner.invoke(app, ["init", *[str(password_file) if a == "PW" else a for a in args]])
    assert r.exit_code == 2 and says in r.output and "Traceback" not in r.output


def test_init_refuses_a_weak_admin_password(data_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("short\n")
    r = runner.invoke(app, ["init", "--admin", "root", "--admin-password-file", str(tmp_path / "pw")])
    assert r.exit_code == 2 and "weak_password" in r.output


def test_init_in_production_makes_no_dev_pki_and_fails_without_a_signer(data_dir: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Given ARCHIVE_ENVIRONMENT=production and no signer configured, When `archive init` runs, Then no development
    PKI is written, and it exits 2 with signer_missing naming ARCHIVE_SIGNER_CERT (the catalogue is migrated)."""
    monkeypatch.setenv("ARCHIVE_ENVIRONMENT", "production")
    r = runner.invoke(app, ["init"])
    assert r.exit_code == 2, r.output
    assert "signer_missing" in r.output and "ARCHIVE_SIGNER_CERT" in r.output and "生产环境" in r.output
    assert not (data_dir / "pki").exists() and (data_dir / "catalogue.db").exists()


def test_init_in_production_with_a_key_file(data_dir: Path, pki_template: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Given production with the center's certificate and key files and its root under <pki_dir>/trust/, When
    `archive init` runs, Then it succeeds, summarises the certificate, warns about the unencrypted key and the missing
    TSA, and writes no development PKI."""
    trust = data_dir / "pki" / "trust"
    trust.mkdir(parents=True)
    (trust / "root.pem").write_bytes((pki_template / "ca.pem").read_bytes())
    monkeypatch.setenv("ARCHIVE_ENVIRONMENT", "production")
    monkeypatch.setenv("ARCHIVE_SIGNER_CERT", str(pki_template / "signer.pem"))
    monkeypatch.setenv("ARCHIVE_SIGNER_KEY", str(pki_template / "signer.key.pem"))
    r = runner.invoke(app, ["init"])
    assert r.exit_code == 0, r.output
    assert "证书文件" in r.output and "档案签章" in r.output and "没有加密" in r.output and "PAdES B-B" in r.output
    assert not (data_dir / "pki" / "ca.key.pem").exists() and not (data_dir / "pki" / "signer.pem").exists()
    monkeypatch.setenv("ARCHIVE_SIGNER_REQUIRE_ENCRYPTED_KEY", "true")
    get_settings.cache_clear()
    r = runner.invoke(app, ["init"])
    assert r.exit_code == 2 and "signer_key_unencrypted" in r.output


def test_init_with_a_passphrase_encrypts_the_dev_signing_key(data_dir: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pass").write_text("dev pass\n")
    monkeypatch.setenv("ARCHIVE_SIGNER_KEY_PASSPHRASE_FILE", str(tmp_path / "pass"))
    r = runner.invoke(app, ["init"])
    assert r.exit_code == 0, r.output
    assert "私钥文件：已加密" in r.output
    assert key_file_encrypted(DevPki(data_dir / "pki").signer_key)


def test_init_fails_when_a_required_tsa_does_not_answer(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("ARCHIVE_TSA_URL", f"http://127.0.0.1:{port}/")
    r = runner.invoke(app, ["init"])
    assert r.exit_code == 2 and "tsa_unreachable" in r.output and "ARCHIVE_TSA_REQUIRED" in r.output
    monkeypatch.setenv("ARCHIVE_TSA_REQUIRED", "false")
    get_settings.cache_clear()
    r = runner.invoke(app, ["init"])
    assert r.exit_code == 0 and "B-B" in r.output


def test_init_with_a_pkcs11_token(data_dir: Path, softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch,
                                  tmp_path: Path) -> None:
    """Given production with ARCHIVE_SIGNER=pkcs11 on a SoftHSM2 token (root under <pki_dir>/trust/), When `archive
    init` runs, Then the token's certificate is summarised; with a wrong PIN it exits 2 pkcs11_pin_incorrect."""
    trust = data_dir / "pki" / "trust"
    trust.mkdir(parents=True)
    (trust / "root.pem").write_bytes((softhsm.pki_dir / "ca.pem").read_bytes())
    for name, value in softhsm.settings(environment="production").items():
        monkeypatch.setenv(f"ARCHIVE_{name.upper()}", str(value))
    r = runner.invoke(app, ["init"])
    assert r.exit_code == 0, r.output
    assert "PKCS#11 密码设备" in r.output and "档案签章" in r.output
    monkeypatch.setenv("ARCHIVE_PKCS11_PIN_FILE", str(softhsm.wrong_pin_file))
    get_settings.cache_clear()
    r = runner.invoke(app, ["init"])
    assert r.exit_code == 2 and "pkcs11_pin_incorrect" in r.output and "Traceback" not in r.output


def test_serve_reports_an_unusable_signer_at_start(data_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Given production without a signer, When `archive serve` starts, Then it says at once (before the first filing)
    that filing will be refused and why; with the development PKI it prints the certificate instead."""
    from archive.commands.first_use import report_signer_at_start

    assert runner.invoke(app, ["init"]).exit_code == 0
    ctx = Context.build(load_settings(data_dir=data_dir))
    try:
        report_signer_at_start(ctx)
    finally:
        ctx.close()
    assert "开发用证书" in capsys.readouterr().out
    ctx = Context.build(load_settings(data_dir=data_dir, environment="production"))
    try:
        report_signer_at_start(ctx)
    finally:
        ctx.close()
    printed = capsys.readouterr().err
    assert "归档将被拒绝" in printed and "signer_missing" in printed
