"""PAdES B-LT / B-LTA with real (local) OCSP and CRL, archive time-stamp renewal, offline verification in the future."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.x509 import ocsp

from archive.ltv import own_signature_read
from signing.certificates import KeySigner, load_pki_signer, load_trust_roots
from signing.errors import CertificateProblem, TimestampUnavailable
from signing.ltv import fetching_context, level_of, renew, time_stamps
from signing.ltv_verify import verify_ltv
from signing.pades import sign_pdf
from signing.revocation import revoke
from signing.tsa import LocalTsa, http_timestamper
from tests.signing.ltv_support import YEAR, LtvPki, make_ltv_pki


@pytest.fixture(scope="module")
def ltv_pki(tmp_path_factory: pytest.TempPathFactory) -> LtvPki:
    return make_ltv_pki(tmp_path_factory.mktemp("ltv-pki"))


@pytest.fixture(scope="module")
def service(ltv_pki: LtvPki) -> Iterator[LocalTsa]:
    with ltv_pki.serve() as server:
        yield server


@pytest.fixture(scope="module")
def ltv_signer(ltv_pki: LtvPki) -> KeySigner:
    return load_pki_signer(ltv_pki.pki.directory)


@pytest.fixture(scope="module")
def ltv_roots(ltv_pki: LtvPki) -> list[x509.Certificate]:
    return load_trust_roots(ltv_pki.pki.directory)


def test_dev_pki_certificates_name_the_local_crl_and_ocsp(ltv_pki: LtvPki, service: LocalTsa) -> None:
    """Given a development PKI made with a service URL, When its certificates are read and the service is asked,
    Then they name its CRL and OCSP URLs and the service answers both, signed by the CA."""
    cert = x509.load_pem_x509_certificate(ltv_pki.pki.signer_cert.read_bytes())
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [d.access_location.value for d in aia] == [ltv_pki.url + "ocsp"]
    crl = x509.load_der_x509_crl(requests.get(ltv_pki.url + "crl", timeout=5).content)
    ca = x509.load_pem_x509_certificate(ltv_pki.pki.ca_cert.read_bytes())
    assert crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
    from cryptography.hazmat.primitives import hashes, serialization

    request = ocsp.OCSPRequestBuilder().add_certificate(cert, ca, hashes.SHA256()).build()
    answer = requests.post(ltv_pki.url + "ocsp", data=request.public_bytes(serialization.Encoding.DER),
                           headers={"Content-Type": "application/ocsp-request"}, timeout=5)
    response = ocsp.load_der_ocsp_response(answer.content)
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    bad = requests.post(ltv_pki.url + "ocsp", data=b"garbage", timeout=5)
    assert ocsp.load_der_ocsp_response(bad.content).response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_b_lt_embeds_chains_and_revocation_data_and_verifies_offline(
        rendition: bytes, ltv_signer: KeySigner, ltv_roots: list[x509.Certificate], service: LocalTsa) -> None:
    """Given the local OCSP/CRL service, When a rendition is signed at B-LT, Then the file carries the chains and
    OCSP answers for the signer and the TSA, and verifies offline with every layer passed."""
    signed = sign_pdf(rendition, ltv_signer, timestamper=http_timestamper(service.url), level="B-LT",
                      validation_context=fetching_context(ltv_roots))
    assert level_of(signed) == "B-LT"
    assert own_signature_read(signed) == ("B-LT", time_stamps(signed))  # the filing's shortcut falls back
    report = verify_ltv(signed, ltv_roots)
    assert report.ok, report.layers
    assert [layer.name for layer in report.layers] == ["signature_intact", "signer_trusted", "timestamp",
                                                       "validation_data", "archive_timestamps", "pdfa"]
    assert "OCSP" in next(x.detail for x in report.layers if x.name == "validation_data")
    assert report.summary.startswith("证据有效")


def test_b_b_file_has_no_validation_data(signed_bt: bytes, roots: list[x509.Certificate]) -> None:
    """Given a B-T file (no DSS), When verified for the long term, Then validation_data fails, saying it is no B-LT."""
    report = verify_ltv(signed_bt, roots)
    assert not report.ok
    layer = next(x for x in report.layers if x.name == "validation_data")
    assert not layer.passed and "B-LT" in layer.detail


def test_a_revoked_signing_certificate_is_refused_by_name(tmp_path: Path, rendition: bytes) -> None:
    """Given the signing certificate revoked at the CA, When signing at B-LT, Then signing refuses, naming it."""
    own = make_ltv_pki(tmp_path / "pki")
    signer = load_pki_signer(own.pki.directory)
    revoke(own.pki, x509.load_pem_x509_certificate(own.pki.signer_cert.read_bytes()))
    roots = load_trust_roots(own.pki.directory)
    with own.serve() as server, pytest.raises(CertificateProblem) as caught:
        sign_pdf(rendition, signer, timestamper=http_timestamper(server.url), level="B-LT",
                 validation_context=fetching_context(roots))
    assert caught.value.code == "certificate_revoked"
    assert "档案签章" in caught.value.message and "吊销" in caught.value.message


def test_an_unreachable_ocsp_responder_refuses_b_lt(tmp_path: Path, rendition: bytes, tsa: LocalTsa) -> None:
    """Given certificates naming an OCSP responder that is down, When signing at B-LT, Then signing is refused
    (revocation_unavailable) instead of producing a B-LT file without revocation data."""
    own = make_ltv_pki(tmp_path / "pki")  # nothing listens on its port
    signer = load_pki_signer(own.pki.directory)
    with pytest.raises(TimestampUnavailable) as caught:
        sign_pdf(rendition, signer, timestamper=http_timestamper(tsa.url), level="B-LT",
                 validation_context=fetching_context(load_trust_roots(own.pki.directory), timeout=2))
    assert caught.value.code == "revocation_unavailable"


def test_renewed_item_validates_after_its_certificates_expire_and_unrenewed_fails(
        tmp_path: Path, rendition: bytes) -> None:
    """Given an item signed at B-LTA with a TSA certificate that expires in 200 days, When its archive time stamp
    is renewed by a TSA with a new certificate and both copies are verified offline 5 years later (signer and first
    TSA certificates long expired), Then the renewed one is VALID and the unrenewed one fails, naming the expiry."""
    own = make_ltv_pki(tmp_path / "pki")
    own.new_tsa_certificate(200)
    signer = load_pki_signer(own.pki.directory)
    roots = load_trust_roots(own.pki.directory)
    with own.serve() as server:
        filed = sign_pdf(rendition, signer, timestamper=http_timestamper(server.url), level="B-LTA",
                         validation_context=fetching_context(roots))
    assert level_of(filed) == "B-LTA"
    assert [s.kind for s in time_stamps(filed)] == ["signature", "archive"]
    own.new_tsa_certificate(365 * 20)
    with own.serve() as server:
        renewed = renew(filed, http_timestamper(server.url), fetching_context(roots))
    assert renewed.startswith(filed)  # an incremental update: the filed revision is kept byte for byte
    from signing.validate import verify_pdf

    everyday = verify_pdf(renewed, roots)  # the everyday verifier accepts the LTA updates, not as modifications
    assert everyday.ok, everyday.failures
    assert everyday.level == "B-LTA"
    later = dt.datetime.now(dt.UTC) + 5 * YEAR
    signer_cert = x509.load_pem_x509_certificate(own.pki.signer_cert.read_bytes())
    assert signer_cert.not_valid_after_utc < later
    good = verify_ltv(renewed, roots, later)
    assert good.ok, good.layers
    assert good.holds_until is not None and good.holds_until > later
    assert len(good.chain) == 3
    bad = verify_ltv(filed, roots, later)
    assert not bad.ok
    failed = [x for x in bad.layers if not x.passed]
    assert [x.name for x in failed] == ["archive_timestamps"]
    assert "过期" in failed[0].detail and bad.summary.startswith("证据不成立")

    # the same through `archive verify FILE --at DATE` (offline: nothing listens on the service port now)
    import json

    from typer.testing import CliRunner

    from archive.cli import app

    (tmp_path / "renewed.pdf").write_bytes(renewed)
    (tmp_path / "filed.pdf").write_bytes(filed)
    args = ["verify", "--pki-dir", str(own.pki.directory), "--at", f"{later:%Y-%m-%d}", "--json"]
    ok = CliRunner().invoke(app, [*args, str(tmp_path / "renewed.pdf")])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["long_term"]["ok"] is True
    lapsed = CliRunner().invoke(app, [*args, str(tmp_path / "filed.pdf")])
    assert lapsed.exit_code == 1 and "证据不成立" in json.loads(lapsed.output)["long_term"]["summary"]


def test_renewal_with_the_tsa_down_leaves_the_file_as_it_was(
        rendition: bytes, ltv_signer: KeySigner, ltv_roots: list[x509.Certificate], service: LocalTsa,
        closed_port_url: str) -> None:
    """Given a B-LTA file, When renewal meets a TSA that does not answer, Then it raises tsa_unreachable."""
    signed = sign_pdf(rendition, ltv_signer, timestamper=http_timestamper(service.url), level="B-LTA",
                      validation_context=fetching_context(ltv_roots))
    with pytest.raises(TimestampUnavailable):
        renew(signed, http_timestamper(closed_port_url, timeout=2), fetching_context(ltv_roots))


def test_a_changed_byte_fails_the_signature_layer(
        rendition: bytes, ltv_signer: KeySigner, ltv_roots: list[x509.Certificate], service: LocalTsa) -> None:
    """Given a B-LTA file, When one byte of the signed content changes, Then signature_intact fails."""
    signed = bytearray(sign_pdf(rendition, ltv_signer, timestamper=http_timestamper(service.url), level="B-LTA",
                                validation_context=fetching_context(ltv_roots)))
    signed[rendition.index(b"stream") + 40] ^= 0x01  # inside the first image, well within the signed revision
    report = verify_ltv(bytes(signed), ltv_roots)
    assert not report.ok
    assert not next(x for x in report.layers if x.name == "signature_intact").passed
