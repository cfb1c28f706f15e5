"""The center's signer from plain arguments (signing/keys.py): a PKCS#11 token (SoftHSM2), encrypted key files, and
the checks made at load: chain to a trusted root, key matches certificate."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from signing.certificates import (
    DevPki,
    ensure_dev_pki,
    issue_certificate,
    load_certificates,
    load_private_key,
    load_trust_roots,
)
from signing.errors import CertificateProblem
from signing.keys import (
    HsmSigner,
    SignerInfo,
    check_chain,
    key_file_encrypted,
    load_file_signer,
    open_pkcs11_signer,
    verify_signer,
)
from signing.pades import sign_pdf
from signing.tsa import LocalTsa, http_timestamper
from signing.validate import verify_pdf
from tests.hsm import MODULE, SoftHsm
from tests.signing.support import leaf_from_dev_ca


def _open(hsm: SoftHsm, token: str = "archive", **kw: object) -> HsmSigner:
    args: dict[str, object] = {"key_label": "signer", "pin": hsm.pin_file.read_text().strip(), "token_label": token,
                               **kw}
    return open_pkcs11_signer(hsm.module, **args)  # type: ignore[arg-type]


def test_a_pdf_signed_through_pkcs11_verifies(softhsm: SoftHsm, rendition: bytes, tsa: LocalTsa,
                                              pki: DevPki) -> None:
    """Given the center's key in a SoftHSM2 token, When a rendition is signed with a time stamp through PKCS#11,
    Then the checks at load pass and signing/validate.py verifies the PAdES B-T signature against the root."""
    signer = _open(softhsm)
    try:
        info = verify_signer(signer, load_trust_roots(softhsm.pki_dir), SignerInfo("pkcs11"))
        assert info.warnings == []
        signed = sign_pdf(rendition, signer, timestamper=http_timestamper(tsa.url))
    finally:
        signer.close()
    report = verify_pdf(signed, [*load_trust_roots(softhsm.pki_dir), *load_trust_roots(pki.directory)])
    assert report.ok, report.failures
    assert report.level == "B-T" and "档案签章" in (report.signer or "")


@pytest.mark.parametrize(("change", "code", "says"), [
    ({"module": Path("/nonexistent/libpkcs11.so")}, "pkcs11_module_missing", "ARCHIVE_PKCS11_MODULE"),
    ({"pin": "000000"}, "pkcs11_pin_incorrect", "PIN 不正确"),
    ({"pin": ""}, "pkcs11_pin_missing", "ARCHIVE_PKCS11_PIN_FILE"),
    ({"key_label": "nope"}, "pkcs11_key_missing", "nope"),
    ({"cert_label": "nope"}, "pkcs11_cert_missing", "nope"),
    ({"token_label": "nope"}, "pkcs11_token_missing", "ARCHIVE_PKCS11_TOKEN_LABEL"),
])
def test_pkcs11_problems_are_clear_chinese_errors_with_codes(softhsm: SoftHsm, change: dict[str, object],
                                                             code: str, says: str) -> None:
    """Given a wrong module, PIN, key label, certificate label or token label, When the signer is opened, Then a
    CertificateProblem with a stable code and a Chinese message naming what to correct."""
    args: dict[str, object] = {"key_label": "signer", "pin": "123456", "token_label": "archive", **change}
    module = args.pop("module", softhsm.module)
    with pytest.raises(CertificateProblem) as err:
        open_pkcs11_signer(module, **args)  # type: ignore[arg-type]
    assert err.value.code == code and says in err.value.message


def test_a_token_key_that_does_not_match_its_certificate_is_refused_at_load(softhsm: SoftHsm) -> None:
    """Given a token whose key labelled 'signer' is not the certificate's key, When the signer is checked, Then
    signer_key_mismatch (found by a probe signature, before any filing)."""
    signer = _open(softhsm, "mismatch")
    try:
        with pytest.raises(CertificateProblem) as err:
            verify_signer(signer, load_trust_roots(softhsm.pki_dir), SignerInfo("pkcs11"))
    finally:
        signer.close()
    assert err.value.code == "signer_key_mismatch" and "不匹配" in err.value.message


def test_the_module_path_is_the_real_softhsm(softhsm: SoftHsm) -> None:
    assert softhsm.module == MODULE


# --- file signer ----------------------------------------------------------------------------------------------------


def _encrypted_copy(pki: DevPki, tmp_path: Path, passphrase: bytes) -> Path:
    key = load_private_key(pki.signer_key)
    path = tmp_path / "signer.key.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.BestAvailableEncryption(passphrase)))
    return path


def test_an_encrypted_pkcs8_key_loads_with_its_passphrase_only(pki: DevPki, tmp_path: Path) -> None:
    """Given the signing key as encrypted PKCS#8, When loaded with the right, a wrong or no passphrase, Then it
    signs, or signer_key_passphrase names the key file."""
    key = _encrypted_copy(pki, tmp_path, b"s3cret")
    assert key_file_encrypted(key) and not key_file_encrypted(pki.signer_key)
    signer = load_file_signer(pki.signer_cert, key, chain=[pki.ca_cert], passphrase=b"s3cret")
    assert signer.certificate.subject == load_certificates(pki.signer_cert)[0].subject
    for wrong in (b"nope", None):
        with pytest.raises(CertificateProblem) as err:
            load_file_signer(pki.signer_cert, key, passphrase=wrong)
        assert err.value.code == "signer_key_passphrase" and str(key) in err.value.message


def test_a_missing_certificate_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(CertificateProblem) as err:
        load_file_signer(tmp_path / "none.pem", tmp_path / "none.key")
    assert err.value.code == "signer_file_missing" and "none.pem" in err.value.message


def test_dev_pki_with_a_passphrase_encrypts_the_signing_key(pki: DevPki, tmp_path: Path) -> None:
    """Given a development PKI made without a passphrase, When ensure_dev_pki runs with one, Then the signing key
    and the PKCS#12 are encrypted in place (same certificate) and load with the passphrase."""
    import shutil

    shutil.copytree(pki.directory, tmp_path / "pki")
    before = (tmp_path / "pki" / "signer.pem").read_bytes()
    again = ensure_dev_pki(tmp_path / "pki", passphrase=b"pw")
    assert key_file_encrypted(again.signer_key) and key_file_encrypted(again.signer_p12)
    assert again.signer_cert.read_bytes() == before
    assert load_file_signer(again.signer_p12, passphrase=b"pw").certificate.serial_number == \
        load_certificates(again.signer_cert)[0].serial_number
    fresh = ensure_dev_pki(tmp_path / "fresh", passphrase=b"pw")
    assert key_file_encrypted(fresh.signer_key) and not key_file_encrypted(fresh.ca_key)


# --- chain ----------------------------------------------------------------------------------------------------------


def _ca(name: str, issuer: tuple[x509.Certificate, rsa.RSAPrivateKey] | None = None
        ) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(65537, 2048)
    now = dt.datetime.now(dt.UTC)
    usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
    cert = issue_certificate(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)]), key.public_key(),
                             issuer[0] if issuer else None, issuer[1] if issuer else key,
                             not_before=now - dt.timedelta(days=1), not_after=now + dt.timedelta(days=30), ca=True,
                             key_usage=usage)
    return cert, key


def test_the_chain_must_reach_a_trusted_root_through_the_given_intermediates(pki: DevPki) -> None:
    """Given a root, an intermediate and a leaf it issued, When the chain is checked, Then it passes with the
    intermediate given and trusted root; without the intermediate, or with the root only in the chain bundle,
    signer_chain_untrusted says what is missing."""
    root = _ca("测试根")
    inter = _ca("测试中级", root)
    leaf, _key = leaf_from_dev_ca(DevPki(pki.directory))  # issued by the dev CA: untrusted for this root
    assert [c.subject for c in check_chain(inter[0], [], [root[0]])] == [inter[0].subject, root[0].subject]
    with pytest.raises(CertificateProblem) as err:
        check_chain(leaf, [inter[0], root[0]], [root[0]])
    assert err.value.code == "signer_chain_untrusted"
    with pytest.raises(CertificateProblem) as err:
        check_chain(inter[0], [root[0]], load_trust_roots(pki.directory))
    assert err.value.code == "signer_chain_untrusted" and "trust/" in err.value.message and "测试根" in \
        err.value.message
    leaf2 = issue_certificate(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "叶")]),
                              rsa.generate_private_key(65537, 2048).public_key(), inter[0], inter[1],
                              not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=1),
                              not_after=dt.datetime.now(dt.UTC) + dt.timedelta(days=3))
    assert len(check_chain(leaf2, [inter[0]], [root[0]])) == 3
    with pytest.raises(CertificateProblem) as err:
        check_chain(leaf2, [], [root[0]])
    assert err.value.code == "signer_chain_untrusted" and "测试中级" in err.value.message


def test_a_transfer_package_signed_through_pkcs11_verifies(softhsm: SoftHsm, signed_bt: bytes) -> None:
    """Given the key in a token, When a DA/T 48 package (移交) is signed with it (a synchronous raw signature), Then
    the package's signature and certificate verify."""
    from signing.eep import EepFile, build_eep, verify_eep
    from signing.fixity import digest_bytes
    from tests.signing.test_eep import PDF_NAME, _record

    signer = _open(softhsm)
    try:
        package = build_eep(_record(), [EepFile(PDF_NAME, signed_bt, title="归档 PDF")], signer)
    finally:
        signer.close()
    report = verify_eep(package, load_trust_roots(softhsm.pki_dir), {PDF_NAME: digest_bytes(signed_bt)})
    assert report.ok, report.failures


def test_the_token_may_be_chosen_by_slot(softhsm: SoftHsm) -> None:
    """Given ARCHIVE_PKCS11_SLOT instead of a token label, When the signer is opened, Then that slot's token is used;
    a slot without a token is pkcs11_token_missing."""
    import pkcs11

    slots = {s.get_token().label: s.slot_id for s in pkcs11.lib(str(softhsm.module)).get_slots(token_present=True)}
    signer = _open(softhsm, None, slot=slots["archive"])  # type: ignore[arg-type]
    signer.close()
    with pytest.raises(CertificateProblem) as err:
        _open(softhsm, None, slot=max(slots.values()) + 1000)  # type: ignore[arg-type]
    assert err.value.code == "pkcs11_token_missing"


def test_threads_share_one_token_session(softhsm: SoftHsm) -> None:
    """Given one PKCS#11 signer shared by the API's threads, When eight threads sign at once, Then every signature
    verifies. (SoftHSM2 copes without HsmSigner's lock too; the lock is for tokens that refuse a second operation
    on a busy session, CKR_OPERATION_ACTIVE.)"""
    from concurrent.futures import ThreadPoolExecutor

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signer = _open(softhsm)
    try:
        messages = [f"message {i}".encode() * 50 for i in range(32)]
        with ThreadPoolExecutor(8) as pool:
            signatures = list(pool.map(lambda m: signer.sign_raw(m, "sha256"), messages))
        pub = signer.certificate.public_key()
        for m, sig in zip(messages, signatures, strict=True):
            pub.verify(sig, m, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr,call-arg]
    finally:
        signer.close()


def test_a_pem_certificate_without_its_key_is_named(pki: DevPki) -> None:
    with pytest.raises(CertificateProblem) as err:
        load_file_signer(pki.signer_cert)
    assert err.value.code == "signer_file_missing" and "ARCHIVE_SIGNER_KEY" in err.value.message
