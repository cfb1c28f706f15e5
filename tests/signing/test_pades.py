"""PAdES signing: B-B and B-T, invisible or with a seal, PDF/A-2b kept; bad certificates and TSAs refused."""

from __future__ import annotations

import io
import logging

import pikepdf
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from PIL import Image, ImageDraw

from signing.certificates import DevPki, KeySigner, load_certificates, make_signer
from signing.errors import CertificateProblem, RenditionFailed, SigningConfigError, SigningFailed, TimestampUnavailable
from signing.pades import Seal, sign_pdf
from signing.pdfa import pdfa_problems
from signing.tsa import LocalTsa, http_timestamper
from signing.validate import verify_pdf
from tests.signing.support import leaf_from_dev_ca, pdf_bytes, simple_pdf, unchecked_signer


def _seal_png() -> bytes:
    image = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse([8, 8, 292, 292], outline=(220, 0, 0, 255), width=14)
    draw.regular_polygon((150, 150, 50), 5, fill=(220, 0, 0, 255))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def _subfilter_and_rect(data: bytes) -> tuple[str, list[float]]:
    with pikepdf.open(io.BytesIO(data)) as pdf:
        (field,) = list(pdf.Root.AcroForm.Fields)
        return str(field.V.SubFilter), [float(v) for v in field.Rect]


def test_bb_signature_is_incremental_pades_and_keeps_pdfa(rendition: bytes, signer: KeySigner,
                                                          roots: list[x509.Certificate]) -> None:
    """Given a PDF/A-2b rendition and no TSA, When signed, Then the original bytes are kept as the first revision,
    the signature is ETSI.CAdES.detached (B-B), the file is still PDF/A-2b and verifies."""
    signed = sign_pdf(rendition, signer)
    assert signed.startswith(rendition)
    subfilter, rect = _subfilter_and_rect(signed)
    assert subfilter == "/ETSI.CAdES.detached"
    assert rect == [0, 0, 0, 0]  # invisible
    assert pdfa_problems(signed) == []
    report = verify_pdf(signed, roots)
    assert report.ok, report.failures
    assert report.level == "B-B"


def test_bt_signature_carries_a_trusted_rfc3161_time_stamp(rendition: bytes, signer: KeySigner, tsa: LocalTsa,
                                                            roots: list[x509.Certificate]) -> None:
    """Given the local TSA, When signed with it, Then the signature is B-T with a valid, trusted time stamp
    and the file is still PDF/A-2b."""
    signed = sign_pdf(rendition, signer, timestamper=http_timestamper(tsa.url))
    assert pdfa_problems(signed) == []
    report = verify_pdf(signed, roots, require_timestamp=True)
    assert report.ok, report.failures
    assert report.level == "B-T"
    assert {c.name for c in report.checks} >= {"timestamp", "signing_time"}


def test_visible_seal_has_an_appearance_and_keeps_pdfa(rendition: bytes, signer: KeySigner,
                                                       roots: list[x509.Certificate]) -> None:
    """Given a transparent PNG seal, When signed visibly, Then the widget has an appearance stream in the lower-right
    corner of the last page (42 mm, 36 pt from the edges), the file is PDF/A-2b and verifies."""
    signed = sign_pdf(rendition, signer, seal=Seal(_seal_png()))
    with pikepdf.open(io.BytesIO(signed)) as pdf:
        (field,) = list(pdf.Root.AcroForm.Fields)
        assert isinstance(field.AP.N, pikepdf.Stream)
        x1, y1, x2, y2 = (float(v) for v in field.Rect)
        width = float(pdf.pages[-1].mediabox[2])
        assert (x1, y1, x2, y2) == pytest.approx((max(0, width - 36 - 119), 36, width - 36, 36 + 119), abs=1)
        assert field.P.objgen == pdf.pages[-1].obj.objgen
    assert pdfa_problems(signed) == []
    assert verify_pdf(signed, roots).ok


def test_seal_can_be_placed_on_a_chosen_page_and_box(rendition: bytes, signer: KeySigner) -> None:
    """Given page 0 and a box, When signed with a seal, Then the widget is there."""
    signed = sign_pdf(rendition, signer, seal=Seal(_seal_png(), page=0, box=(50, 50, 150, 150)))
    with pikepdf.open(io.BytesIO(signed)) as pdf:
        (field,) = list(pdf.Root.AcroForm.Fields)
        assert [float(v) for v in field.Rect] == [50, 50, 150, 150]
        assert field.P.objgen == pdf.pages[0].obj.objgen


def test_undecodable_seal_image_is_a_configuration_error(rendition: bytes, signer: KeySigner) -> None:
    """Given seal bytes that are not an image, When signing visibly, Then SigningConfigError seal_image_invalid."""
    with pytest.raises(SigningConfigError) as err:
        sign_pdf(rendition, signer, seal=Seal(b"not an image"))
    assert err.value.code == "seal_image_invalid"


def test_ecdsa_signer_keeps_pdf_1_7_and_pdfa(rendition: bytes, pki: DevPki, roots: list[x509.Certificate]) -> None:
    """Given an ECDSA P-256 certificate (for which pyhanko would declare PDF 2.0), When signed,
    Then the catalogue still says PDF 1.x, the file is PDF/A-2b and the signature verifies."""
    cert, key = leaf_from_dev_ca(pki, key=ec.generate_private_key(ec.SECP256R1()))
    signer = make_signer(cert, key, load_certificates(pki.ca_cert))  # type: ignore[arg-type]
    signed = sign_pdf(rendition, signer)
    with pikepdf.open(io.BytesIO(signed)) as pdf:
        assert str(pdf.Root.get("/Version", "/1.7")).startswith("/1.")
    assert pdfa_problems(signed) == []
    assert verify_pdf(signed, roots).ok


def test_signing_a_non_pdfa_file_is_an_error_naming_the_rules(signer: KeySigner) -> None:
    """Given a plain PDF that is not PDF/A, When signed, Then RenditionFailed (stage "signed") with the failed rules."""
    with pytest.raises(RenditionFailed) as err:
        sign_pdf(pdf_bytes(simple_pdf()), signer)
    assert err.value.code == "rendition_not_pdfa"
    assert err.value.detail["stage"] == "signed"
    assert err.value.detail["rules"]


def test_expired_certificate_is_refused_at_signing_time(rendition: bytes, pki: DevPki) -> None:
    """Given a signer whose certificate has expired since it was loaded, When signing, Then certificate_expired."""
    cert, key = leaf_from_dev_ca(pki, days=(-30, -1))
    with pytest.raises(CertificateProblem) as err:
        sign_pdf(rendition, unchecked_signer(cert, key, pki))
    assert err.value.code == "certificate_expired"


def test_wrong_usage_certificate_is_refused_at_signing_time(rendition: bytes, pki: DevPki) -> None:
    """Given a signer with a time-stamping-only certificate, When signing, Then certificate_wrong_usage."""
    cert, key = leaf_from_dev_ca(pki, eku=[x509.ExtendedKeyUsageOID.TIME_STAMPING])
    with pytest.raises(CertificateProblem) as err:
        sign_pdf(rendition, unchecked_signer(cert, key, pki))
    assert err.value.code == "certificate_wrong_usage"


def test_unreachable_tsa_is_an_error_when_time_stamps_are_required(rendition: bytes, signer: KeySigner,
                                                                    closed_port_url: str) -> None:
    """Given a TSA URL where nothing listens and tsa_required, When signing, Then TimestampUnavailable (503,
    tsa_unreachable) naming the URL; nothing is signed."""
    with pytest.raises(TimestampUnavailable) as err:
        sign_pdf(rendition, signer, timestamper=http_timestamper(closed_port_url, timeout=2))
    assert err.value.code == "tsa_unreachable"
    assert err.value.kind == "unavailable"
    assert closed_port_url in err.value.message
    assert err.value.detail["tsa_url"] == closed_port_url


def test_unreachable_tsa_downgrades_to_bb_with_a_warning_when_allowed(
        rendition: bytes, signer: KeySigner, closed_port_url: str, roots: list[x509.Certificate],
        caplog: pytest.LogCaptureFixture) -> None:
    """Given an unreachable TSA and tsa_required=False, When signing, Then a B-B signature is made and a warning
    with code tsa_downgrade is logged."""
    with caplog.at_level(logging.WARNING, logger="signing.pades"):
        signed = sign_pdf(rendition, signer, timestamper=http_timestamper(closed_port_url, timeout=2),
                          tsa_required=False)
    report = verify_pdf(signed, roots)
    assert report.ok and report.level == "B-B"
    (record,) = [r for r in caplog.records if getattr(r, "code", None) == "tsa_downgrade"]
    assert record.levelno == logging.WARNING
    assert closed_port_url in record.getMessage()


def test_tsa_answering_garbage_is_a_tsa_error(rendition: bytes, signer: KeySigner) -> None:
    """Given an HTTP server that answers with a non-RFC 3161 body, When signing with it, Then TimestampUnavailable
    with code tsa_error."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"hi")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(TimestampUnavailable) as err:
            sign_pdf(rendition, signer, timestamper=http_timestamper(f"http://127.0.0.1:{server.server_port}/"))
        assert err.value.code == "tsa_error"
    finally:
        server.shutdown()
        server.server_close()


def test_input_that_is_not_a_pdf_is_a_signing_error(signer: KeySigner) -> None:
    """Given bytes that are not a PDF, When signed, Then SigningFailed (signing_failed) with the reason."""
    with pytest.raises(SigningFailed) as err:
        sign_pdf(b"not a pdf", signer)
    assert err.value.code == "signing_failed"
    assert err.value.detail["reason"]
