"""The signer configured by settings (archive.wiring.build_signer) as /readyz and filing see it: a key file, the
development PKI (refused in production) or a PKCS#11 token (SoftHSM2)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient
from sqlalchemy import select

from archive.api.app import create_app
from archive.catalogue.models import ArchiveItem
from archive.commands.common import ensure_fonds
from archive.context import Context
from archive.settings import load_settings
from signing.certificates import DevPki, load_trust_roots
from signing.keys import HsmSigner
from signing.validate import verify_pdf
from tests.factories import CLOSE, complete_case
from tests.helpers import add_client
from tests.hsm import SoftHsm
from tests.signing.support import leaf_from_dev_ca


@pytest.fixture
def make_ctx(tmp_path: Path, sqlite_template: Path, pki_template: Path) -> Iterator[Callable[..., Context]]:
    """A context on a fresh SQLite catalogue with the development PKI's files copied, and the given settings."""
    made: list[Context] = []

    def make(**overrides: Any) -> Context:
        data = tmp_path / f"data{len(made)}"
        data.mkdir()
        shutil.copyfile(sqlite_template, data / "catalogue.db")
        shutil.copytree(pki_template, data / "pki")
        ctx = Context.build(load_settings(data_dir=data, **overrides))
        ensure_fonds(ctx)
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        ctx.close()


def _readyz(ctx: Context) -> dict[str, Any]:
    with TestClient(create_app(context=ctx)) as c:
        r = c.get("/readyz")
    body = r.json()
    assert (r.status_code == 200) == body["ready"]
    return body


def _not_ready(ctx: Context, code: str) -> dict[str, Any]:
    body = _readyz(ctx)
    assert body["ready"] is False and body["code"] == code, body
    assert body["signer"]["ok"] is False and body["message"].startswith("系统未就绪：签章证书：")
    return body


def test_production_without_a_signer_is_not_ready(make_ctx: Callable[..., Context]) -> None:
    """Given ARCHIVE_ENVIRONMENT=production and no ARCHIVE_SIGNER_CERT (a development PKI lies in the data directory),
    When /readyz is asked, Then 503 signer_missing naming ARCHIVE_SIGNER_CERT: production never signs with it."""
    body = _not_ready(make_ctx(environment="production"), "signer_missing")
    assert "ARCHIVE_SIGNER_CERT" in body["message"] and "生产环境" in body["message"]


def test_a_configured_key_file_is_ready_with_a_warning_when_unencrypted_in_production(
        make_ctx: Callable[..., Context]) -> None:
    """Given production with the center's PEM certificate and an unencrypted key, When /readyz is asked, Then ready,
    the signer part names the certificate and warns about the key; with ARCHIVE_SIGNER_REQUIRE_ENCRYPTED_KEY=true
    not ready (signer_key_unencrypted)."""
    probe = make_ctx()
    pki = DevPki(probe.settings.pki_path)
    files = {"signer_cert": pki.signer_cert, "signer_key": pki.signer_key, "environment": "production"}
    body = _readyz(make_ctx(**files))
    assert body["ready"] is True, body
    signer = body["signer"]
    assert signer["backend"] == "file" and signer["key_encrypted"] is False and "档案签章" in signer["subject"]
    assert any("没有加密" in w for w in signer["warnings"]) and any("ca.key.pem" in w for w in signer["warnings"])
    body = _not_ready(make_ctx(**files, signer_require_encrypted_key=True), "signer_key_unencrypted")
    assert "ARCHIVE_SIGNER_KEY_PASSPHRASE_FILE" in body["message"]


def test_an_encrypted_key_with_its_passphrase_file_is_ready_without_warning(
        make_ctx: Callable[..., Context], tmp_path: Path) -> None:
    probe = make_ctx()
    pki = DevPki(probe.settings.pki_path)
    from signing.certificates import load_private_key

    key = tmp_path / "enc.key.pem"
    key.write_bytes(load_private_key(pki.signer_key).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pass phrase")))
    (tmp_path / "pass").write_text("pass phrase\n")
    body = _readyz(make_ctx(signer_cert=pki.signer_cert, signer_key=key, signer_chain=pki.ca_cert,
                            signer_key_passphrase_file=tmp_path / "pass", signer_require_encrypted_key=True))
    assert body["ready"] is True and body["signer"]["key_encrypted"] is True and body["signer"]["warnings"] == []
    (tmp_path / "pass").write_text("wrong\n")
    _not_ready(make_ctx(signer_cert=pki.signer_cert, signer_key=key, signer_key_passphrase_file=tmp_path / "pass"),
               "signer_key_passphrase")


def _write_leaf(ctx: Context, tmp_path: Path, days: tuple[int, int]) -> tuple[Path, Path]:
    cert, key = leaf_from_dev_ca(DevPki(ctx.settings.pki_path), days=days)
    cert_path, key_path = tmp_path / f"leaf{days}.pem", tmp_path / f"leaf{days}.key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path


def test_an_expired_or_expiring_certificate(make_ctx: Callable[..., Context], tmp_path: Path) -> None:
    """Given ARCHIVE_SIGNER_CERT expired yesterday, Then not ready (certificate_expired, naming the setting); given one
    expiring in 10 days, Then ready with the warning 签章证书将于 … 过期."""
    probe = make_ctx()
    cert, key = _write_leaf(probe, tmp_path, (-30, -1))
    body = _not_ready(make_ctx(signer_cert=cert, signer_key=key), "certificate_expired")
    assert "过期" in body["message"] and "ARCHIVE_SIGNER_CERT" in body["message"]
    cert, key = _write_leaf(probe, tmp_path, (-30, 10))
    body = _readyz(make_ctx(signer_cert=cert, signer_key=key))
    assert body["ready"] is True and any(w.startswith("签章证书将于") for w in body["signer"]["warnings"])


def test_a_key_file_that_does_not_match_the_certificate(make_ctx: Callable[..., Context], tmp_path: Path) -> None:
    probe = make_ctx()
    cert, _ = _write_leaf(probe, tmp_path, (-1, 300))
    _not_ready(make_ctx(signer_cert=cert, signer_key=DevPki(probe.settings.pki_path).signer_key),
               "certificate_key_mismatch")


def test_a_certificate_from_an_untrusted_ca(make_ctx: Callable[..., Context], tmp_path: Path) -> None:
    """Given a certificate issued by another CA whose root is not under <pki_dir>, Then not ready
    (signer_chain_untrusted): filing would make signatures the archive's own verification rejects."""
    from signing.certificates import ensure_dev_pki

    other = ensure_dev_pki(tmp_path / "other")
    body = _not_ready(make_ctx(signer_cert=other.signer_cert, signer_key=other.signer_key, signer_chain=other.ca_cert),
                      "signer_chain_untrusted")
    assert "trust/" in body["message"]


# --- PKCS#11 ---------------------------------------------------------------------------------------------------------


def test_pkcs11_signer_is_ready(make_ctx: Callable[..., Context], softhsm: SoftHsm) -> None:
    body = _readyz(make_ctx(**softhsm.settings()))
    assert body["ready"] is True and body["signer"]["backend"] == "pkcs11" and body["signer"]["key_encrypted"] is None


def test_pkcs11_wrong_pin_is_not_ready_and_not_retried(make_ctx: Callable[..., Context], softhsm: SoftHsm,
                                                       tmp_path: Path) -> None:
    """Given a wrong PIN, Then not ready (pkcs11_pin_incorrect); And after the PIN file is corrected the process
    does not log in again by itself (a token locks after a few wrong PINs): it says to restart."""
    pin = tmp_path / "pin"
    pin.write_text("000000\n")
    ctx = make_ctx(**softhsm.settings(pkcs11_pin_file=pin))
    body = _not_ready(ctx, "pkcs11_pin_incorrect")
    assert "PIN 不正确" in body["message"] and "重启" in body["message"]
    pin.write_text(softhsm.pin_file.read_text())
    _not_ready(ctx, "pkcs11_pin_incorrect")


def test_pkcs11_key_that_does_not_match_is_not_ready(make_ctx: Callable[..., Context], softhsm: SoftHsm) -> None:
    _not_ready(make_ctx(**softhsm.settings("mismatch")), "signer_key_mismatch")


@pytest.mark.parametrize(("overrides", "code"), [
    ({"pkcs11_module": Path("/nonexistent/p11.so")}, "pkcs11_module_missing"),
    ({"pkcs11_key_label": "nope"}, "pkcs11_key_missing"),
    ({"pkcs11_module": None}, "invalid_setting"),
])
def test_pkcs11_misconfiguration_is_not_ready(make_ctx: Callable[..., Context], softhsm: SoftHsm,
                                              overrides: dict[str, Any], code: str) -> None:
    _not_ready(make_ctx(**softhsm.settings(**overrides)), code)


def test_filing_signs_through_pkcs11(make_ctx: Callable[..., Context], softhsm: SoftHsm) -> None:
    """Given the center's key in a SoftHSM2 token (production, ARCHIVE_SIGNER=pkcs11), When a complete case is closed
    through the API, Then it is filed and its rendition's signature verifies against the root."""
    ctx = make_ctx(**softhsm.settings(environment="production"))
    core = add_client(ctx, "core", ["cases.write", "data.read", "pii.read"])
    with TestClient(create_app(context=ctx)) as client:
        complete_case(client, core)
        r = client.post("/api/v1/cases/YW2026010500001/close", json=CLOSE, headers=core)
    assert r.status_code == 200, r.text
    assert isinstance(ctx.signer, HsmSigner)
    with ctx.catalogue.sessions() as s:
        item = s.scalar(select(ArchiveItem))
        assert item is not None and item.rendition_key
        rendition = ctx.store.read_bytes(item.rendition_key)
    report = verify_pdf(rendition, load_trust_roots(ctx.settings.pki_path))
    assert report.ok, report.failures
    assert "档案签章" in (report.signer or "")


def test_a_pkcs12_file_as_signer_cert(make_ctx: Callable[..., Context], tmp_path: Path) -> None:
    """Given ARCHIVE_SIGNER_CERT a PKCS#12 file (no ARCHIVE_SIGNER_KEY) encrypted with the configured passphrase,
    Then ready, the key counted as encrypted."""
    from cryptography.hazmat.primitives.serialization import pkcs12

    from signing.certificates import load_certificates, load_private_key

    probe = make_ctx()
    pki = DevPki(probe.settings.pki_path)
    p12 = tmp_path / "center.p12"
    p12.write_bytes(pkcs12.serialize_key_and_certificates(
        b"center", load_private_key(pki.signer_key), load_certificates(pki.signer_cert)[0],  # type: ignore[arg-type]
        load_certificates(pki.ca_cert), serialization.BestAvailableEncryption(b"p12 pass")))
    body = _readyz(make_ctx(signer_cert=p12, signer_key_passphrase="p12 pass", environment="production"))
    assert body["ready"] is True and body["signer"]["key_encrypted"] is True, body
