"""Development PKI and loading the center's signer: validity and key usage are checked."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID

from signing.certificates import (
    DevPki,
    check_signing_certificate,
    ensure_dev_pki,
    load_certificates,
    load_pki_signer,
    load_signer,
    load_trust_roots,
    make_signer,
)
from signing.errors import CertificateProblem
from tests.signing.support import KEY_ENCIPHERMENT_ONLY, SERVER_AUTH_ONLY, leaf_from_dev_ca


def test_dev_pki_has_ca_signer_and_tsa_with_the_right_usages(pki: DevPki) -> None:
    """Given a fresh data directory, When ensure_dev_pki runs, Then the CA can sign certificates, the signer is
    for digitalSignature+nonRepudiation in the center's name, and the TSA has critical EKU timeStamping."""
    ca = load_certificates(pki.ca_cert)[0]
    signer = load_certificates(pki.signer_cert)[0]
    tsa = load_certificates(pki.tsa_cert)[0]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    ku = signer.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.content_commitment
    assert "住房公积金管理中心" in signer.subject.rfc4514_string()
    eku = tsa.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    for cert in (signer, tsa):
        cert.verify_directly_issued_by(ca)


def test_dev_pki_keys_are_private_and_a_pkcs12_is_written(pki: DevPki) -> None:
    """Given the dev PKI, When its files are inspected, Then keys and the PKCS#12 are mode 0600 and the PKCS#12
    holds the signer's certificate, key and the CA."""
    for path in (pki.ca_key, pki.signer_key, pki.tsa_key, pki.signer_p12):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    p12 = pkcs12.load_pkcs12(pki.signer_p12.read_bytes(), None)
    assert p12.cert is not None and p12.cert.certificate == load_certificates(pki.signer_cert)[0]
    assert [c.certificate for c in p12.additional_certs] == load_certificates(pki.ca_cert)


def test_ensure_dev_pki_is_idempotent(tmp_path: Path) -> None:
    """Given an existing dev PKI, When ensure_dev_pki runs again, Then no file changes;
    When only the TSA certificate is deleted, Then just that one is re-issued by the same CA."""
    pki = ensure_dev_pki(tmp_path / "pki")
    before = {p.name: p.read_bytes() for p in pki.directory.iterdir()}
    ensure_dev_pki(tmp_path / "pki")
    assert {p.name: p.read_bytes() for p in pki.directory.iterdir()} == before
    pki.tsa_cert.unlink()
    ensure_dev_pki(tmp_path / "pki")
    after = {p.name: p.read_bytes() for p in pki.directory.iterdir()}
    assert after["ca.pem"] == before["ca.pem"] and after["signer.pem"] == before["signer.pem"]
    assert after["tsa.pem"] != before["tsa.pem"]


def test_a_centers_own_pki_is_never_touched(tmp_path: Path, pki: DevPki) -> None:
    """Given a PKI directory with ca.pem but no CA key (a real CA), When ensure_dev_pki runs,
    Then nothing is created."""
    own = tmp_path / "own"
    own.mkdir()
    (own / "ca.pem").write_bytes(pki.ca_cert.read_bytes())
    ensure_dev_pki(own)
    assert [p.name for p in own.iterdir()] == ["ca.pem"]


def test_signer_loads_from_pkcs12_or_pem_pair(pki: DevPki) -> None:
    """Given the dev PKI, When the signer is loaded from the PKCS#12 or the PEM pair,
    Then both give the same certificate and carry the CA for embedding."""
    from_p12 = load_signer(pki.signer_p12)
    from_pem = load_signer(pki.signer_cert, pki.signer_key, chain=[pki.ca_cert])
    from_dir = load_pki_signer(pki.directory)
    assert from_p12.signing_cert.dump() == from_pem.signing_cert.dump() == from_dir.signing_cert.dump()
    assert len(list(from_p12.cert_registry)) == len(list(from_pem.cert_registry)) == 1


def test_expired_certificate_is_refused(pki: DevPki) -> None:
    """Given a certificate that expired yesterday, When a signer is made from it,
    Then CertificateProblem certificate_expired with a message saying when it expired."""
    cert, key = leaf_from_dev_ca(pki, days=(-30, -1))
    with pytest.raises(CertificateProblem) as err:
        make_signer(cert, key)  # type: ignore[arg-type]
    assert err.value.code == "certificate_expired"
    assert "过期" in err.value.message
    assert err.value.detail["not_after"] == cert.not_valid_after_utc.isoformat()


def test_not_yet_valid_certificate_is_refused(pki: DevPki) -> None:
    """Given a certificate valid from tomorrow, When checked, Then certificate_not_yet_valid."""
    cert, _ = leaf_from_dev_ca(pki, days=(1, 30))
    with pytest.raises(CertificateProblem) as err:
        check_signing_certificate(cert)
    assert err.value.code == "certificate_not_yet_valid"


@pytest.mark.parametrize(("usage", "eku", "why"), [
    (KEY_ENCIPHERMENT_ONLY, (), "KeyUsage"),
    (None, SERVER_AUTH_ONLY, "ExtendedKeyUsage"),
    (None, [ExtendedKeyUsageOID.TIME_STAMPING], "ExtendedKeyUsage"),
], ids=["key-encipherment-only", "server-auth-only", "time-stamping-only"])
def test_wrong_usage_certificate_is_refused(pki: DevPki, usage, eku, why: str) -> None:  # type: ignore[no-untyped-def]
    """Given a certificate for encryption, TLS servers or time stamping only, When a signer is made from it,
    Then certificate_wrong_usage naming the extension at fault."""
    cert, key = leaf_from_dev_ca(pki, key_usage=usage, eku=eku)
    with pytest.raises(CertificateProblem) as err:
        make_signer(cert, key)  # type: ignore[arg-type]
    assert err.value.code == "certificate_wrong_usage"
    assert why in err.value.message


def test_ca_certificate_cannot_sign_documents(pki: DevPki) -> None:
    """Given the CA's own certificate and key, When loaded as a signer, Then certificate_wrong_usage."""
    with pytest.raises(CertificateProblem) as err:
        load_signer(pki.ca_cert, pki.ca_key)
    assert err.value.code == "certificate_wrong_usage"


def test_key_not_matching_the_certificate_is_refused(pki: DevPki) -> None:
    """Given the signer's certificate with the TSA's key, When loaded, Then certificate_key_mismatch."""
    with pytest.raises(CertificateProblem) as err:
        load_signer(pki.signer_cert, pki.tsa_key)
    assert err.value.code == "certificate_key_mismatch"


def test_missing_or_unreadable_files_are_clear_errors(tmp_path: Path) -> None:
    """Given an empty PKI directory or a garbage file, When loading, Then signer_missing / trust_roots_missing /
    certificate_unreadable."""
    with pytest.raises(CertificateProblem) as err:
        load_pki_signer(tmp_path)
    assert err.value.code == "signer_missing"
    with pytest.raises(CertificateProblem) as err:
        load_trust_roots(tmp_path)
    assert err.value.code == "trust_roots_missing"
    (tmp_path / "bad.p12").write_bytes(b"nonsense")
    with pytest.raises(CertificateProblem) as err:
        load_signer(tmp_path / "bad.p12")
    assert err.value.code == "certificate_unreadable"


def test_checks_use_the_given_time(pki: DevPki) -> None:
    """Given the dev signer, When checked at a time after its expiry, Then certificate_expired."""
    cert = load_certificates(pki.signer_cert)[0]
    with pytest.raises(CertificateProblem):
        check_signing_certificate(cert, cert.not_valid_after_utc + dt.timedelta(seconds=1))
