"""CLI: `archive verify FILE` prints the report and exits 1 when anything failed; `archive tsa` serves the dev TSA."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archive.commands import signing as cli
from signing.certificates import DevPki, KeySigner
from signing.fixity import digest_bytes
from signing.tsa import LocalTsa

runner = CliRunner()


@pytest.fixture
def signed_file(tmp_path: Path, signed_bt: bytes) -> Path:
    path = tmp_path / "signed.pdf"
    path.write_bytes(signed_bt)
    return path


def test_verify_ok_exits_0_and_prints_each_check(signed_file: Path, pki: DevPki) -> None:
    """Given an intact signed file, When `verify` runs against the PKI directory,
    Then exit 0 and every check is shown."""
    result = runner.invoke(cli.app, ["verify", str(signed_file), "--pki-dir", str(pki.directory)])
    assert result.exit_code == 0, result.output
    for name in ("signature_intact", "certificate_trusted", "timestamp", "coverage", "pdfa", "fixity"):
        assert name in result.output
    assert "验证通过" in result.output


def test_verify_uses_the_settings_pki_directory(signed_file: Path, pki: DevPki,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Given ARCHIVE_PKI_DIR pointing at the PKI, When `verify FILE` runs without options, Then exit 0."""
    from archive.settings import get_settings

    monkeypatch.setenv("ARCHIVE_PKI_DIR", str(pki.directory))
    get_settings.cache_clear()
    assert runner.invoke(cli.app, ["verify", str(signed_file)]).exit_code == 0


def test_verify_tampered_exits_1_and_names_what_failed(signed_file: Path, pki: DevPki) -> None:
    """Given a signed file with one byte changed in the page data, When `verify` runs,
    Then exit 1 and the failed check is named."""
    data = bytearray(signed_file.read_bytes())
    data[len(data) // 3] ^= 0x01
    signed_file.write_bytes(bytes(data))
    result = runner.invoke(cli.app, ["verify", str(signed_file), "--pki-dir", str(pki.directory)])
    assert result.exit_code == 1
    assert "验证未通过" in result.output and "signature_intact" in result.output


def test_verify_json_with_catalogue_digests(signed_file: Path, pki: DevPki) -> None:
    """Given the catalogue's digests, When `verify --json` runs, Then the JSON report is ok with fixity passed;
    with a wrong SM3 it exits 1 with fixity failed."""
    d = digest_bytes(signed_file.read_bytes())
    args = ["verify", str(signed_file), "--trust", str(pki.ca_cert), "--json", "--sha256", d.sha256]
    result = runner.invoke(cli.app, [*args, "--sm3", d.sm3])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] and report["level"] == "B-T"
    assert next(c for c in report["checks"] if c["name"] == "fixity")["passed"]
    result = runner.invoke(cli.app, [*args, "--sm3", "0" * 64])
    assert result.exit_code == 1
    assert [c["name"] for c in json.loads(result.output)["checks"] if not c["passed"]] == ["fixity"]


def test_verify_without_trust_roots_is_a_usage_error(signed_file: Path, tmp_path: Path) -> None:
    """Given an empty PKI directory, When `verify` runs, Then exit 2 with a message to run `archive init`."""
    result = runner.invoke(cli.app, ["verify", str(signed_file), "--pki-dir", str(tmp_path / "empty")])
    assert result.exit_code == 2
    assert "archive init" in result.output


def test_tsa_command_creates_the_dev_pki_and_announces_its_url(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Given no PKI yet, When `tsa --port 0` runs (serving stubbed out),
    Then the dev PKI exists and the URL is printed."""
    served = []

    def serve_once(self: LocalTsa) -> None:
        served.append(self.url)
        self.stop()

    monkeypatch.setattr(LocalTsa, "serve_forever", serve_once)
    result = runner.invoke(cli.app, ["tsa", "--port", "0", "--pki-dir", str(tmp_path / "pki")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "pki" / "tsa.pem").exists()
    assert served and served[0].startswith("http://127.0.0.1:")
    assert "ARCHIVE_TSA_URL=" in result.output


def test_verify_bb_says_no_timestamp_rather_than_passed(tmp_path: Path, rendition: bytes, signer: KeySigner,
                                                        pki: DevPki) -> None:
    """Given a B-B signed file (no time stamp), When `verify` runs,
    Then the timestamp row says 无 (not 通过) and the verdict names PAdES B-B."""
    from signing.pades import sign_pdf

    path = tmp_path / "bb.pdf"
    path.write_bytes(sign_pdf(rendition, signer))
    result = runner.invoke(cli.app, ["verify", str(path), "--pki-dir", str(pki.directory)])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "timestamp" in line)
    assert "无" in row and "通过" not in row
    assert "验证通过（PAdES B-B" in result.output
