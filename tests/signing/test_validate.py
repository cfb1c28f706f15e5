"""Verification report: every property checked; any one-byte change fails and says what failed."""

from __future__ import annotations

import io
import random

import pytest
from asn1crypto import cms
from cryptography import x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from signing.certificates import DevPki, KeySigner, ensure_dev_pki, load_trust_roots
from signing.fixity import Digests, digest_bytes
from signing.pades import sign_pdf
from signing.validate import verify_pdf

ALL_CHECKS = {"fixity", "readable", "signature_present", "signature_intact", "signature_valid", "certificate_trusted",
              "signing_time", "timestamp", "coverage", "contents_padding", "signature_container", "pdfa"}


def _flip(data: bytes, offset: int, bit: int = 0x01) -> bytes:
    changed = bytearray(data)
    changed[offset] ^= bit
    return bytes(changed)


def _contents_span(data: bytes) -> tuple[int, int, int]:
    """(first hex digit, end of the DER's hex digits, closing '>') of the signature's /Contents."""
    start = data.rindex(b"/Contents <") + len(b"/Contents <")
    end = data.index(b">", start)
    return start, start + len(data[start:end].rstrip(b"0")), end


def _digit_at_or_after(data: bytes, offset: int) -> int:
    """The first hex digit 0-9 from offset: flipping its lowest bit keeps the hex string valid."""
    while data[offset:offset + 1] not in b"0123456789":
        offset += 1
    return offset


def _signature_value_offset(data: bytes, der_start: int) -> int:
    """Offset in the file of the hex digits of the signer's signature value."""
    _start, _der_end, closing = _contents_span(data)
    contents = bytes.fromhex(data[der_start:closing].decode())
    value = cms.ContentInfo.load(contents)["content"]["signer_infos"][0]["signature"].native
    return der_start + 2 * contents.index(value)


def test_intact_bt_file_passes_every_check(signed_bt: bytes, roots: list[x509.Certificate]) -> None:
    """Given a B-T signed rendition and its catalogue digests, When verified, Then all checks pass and the report
    gives level, signer, signing time and both digests."""
    expected = digest_bytes(signed_bt)
    report = verify_pdf(signed_bt, roots, expected, require_timestamp=True)
    assert report.ok, report.failures
    assert {c.name for c in report.checks} == ALL_CHECKS
    assert report.level == "B-T"
    assert report.signer == "住房公积金管理中心 档案签章"
    assert report.signing_time is not None
    assert report.digests == expected
    assert report.to_dict()["ok"] is True


@pytest.mark.parametrize(("where", "expected_failure"), [
    ("header", "readable"),
    ("image data", "signature_intact"),
    ("byte range", "signature_intact"),
    ("signature value", "signature_valid"),
    ("time-stamp token", "timestamp"),
    ("contents padding", "contents_padding"),
    ("last byte", "signature_intact"),
])
def test_one_flipped_byte_fails_and_names_the_failure(signed_bt: bytes, roots: list[x509.Certificate],
                                                      where: str, expected_failure: str) -> None:
    """Given a signed file with one byte changed in a chosen place, When verified without catalogue digests,
    Then the report fails and names the check that caught it."""
    der_start, der_end, closing = _contents_span(signed_bt)
    offset = {
        "header": 1,
        "image data": len(signed_bt) // 3,
        "byte range": signed_bt.rindex(b"/ByteRange [") + len(b"/ByteRange [") + 3,
        "signature value": _digit_at_or_after(signed_bt, _signature_value_offset(signed_bt, der_start) + 10),
        "time-stamp token": _digit_at_or_after(signed_bt, der_end - 40),  # the token ends the container
        "contents padding": closing - 10,
        "last byte": len(signed_bt) - 1,
    }[where]
    report = verify_pdf(_flip(signed_bt, offset), roots)
    assert not report.ok
    names = {c.name for c in report.failures}
    assert expected_failure in names, report.failures
    assert all(c.detail for c in report.failures)


def test_random_one_byte_changes_anywhere_all_fail(signed_bt: bytes, roots: list[x509.Certificate]) -> None:
    """Given 40 random single-bit changes spread over the file and its signature container (seeded), When verified
    without catalogue digests, Then every one fails."""
    rng = random.Random(20240301)
    der_start, _der_end, closing = _contents_span(signed_bt)
    offsets = rng.sample(range(len(signed_bt)), 16) + rng.sample(range(der_start, closing), 24)
    missed = [(o, bit) for o in offsets for bit in (0x01, 0x20)
              if verify_pdf(_flip(signed_bt, o, bit), roots, check_pdfa=False).ok]
    assert missed == []


def test_catalogue_digest_mismatch_fails_fixity(signed_bt: bytes, roots: list[x509.Certificate]) -> None:
    """Given catalogue digests of another file, When verified, Then only fixity fails, naming SHA-256 and SM3."""
    report = verify_pdf(signed_bt, roots, Digests("00" * 32, "00" * 32, len(signed_bt)))
    assert [c.name for c in report.failures] == ["fixity"]
    assert "SHA-256" in report.failures[0].detail and "SM3" in report.failures[0].detail


def test_appended_revision_fails_coverage(signed_bt: bytes, roots: list[x509.Certificate]) -> None:
    """Given a signed file with an incremental update appended after signing, When verified,
    Then coverage fails (the signature no longer covers the whole file)."""
    writer = IncrementalPdfFileWriter(io.BytesIO(signed_bt))
    writer.root["/Lang"] = generic.TextStringObject("zh-CN")
    writer.update_root()
    out = io.BytesIO()
    writer.write(out)
    report = verify_pdf(out.getvalue(), roots)
    assert "coverage" in {c.name for c in report.failures}


def test_untrusted_root_fails_certificate_trust(signed_bt: bytes, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Given a different development CA as the only trust root, When verified, Then certificate_trusted fails."""
    other = load_trust_roots(ensure_dev_pki(tmp_path / "other").directory)
    report = verify_pdf(signed_bt, other)
    assert "certificate_trusted" in {c.name for c in report.failures}


def test_unsigned_pdf_fails_signature_present(rendition: bytes, roots: list[x509.Certificate]) -> None:
    """Given the unsigned rendition, When verified, Then signature_present fails and PDF/A passes."""
    report = verify_pdf(rendition, roots)
    assert [c.name for c in report.failures] == ["signature_present"]
    assert next(c for c in report.checks if c.name == "pdfa").passed


def test_bb_signature_fails_only_when_a_time_stamp_is_required(rendition: bytes, signer: KeySigner,
                                                               roots: list[x509.Certificate]) -> None:
    """Given a B-B signature, When verified without and then with require_timestamp,
    Then only the second fails, on timestamp."""
    signed = sign_pdf(rendition, signer)
    assert verify_pdf(signed, roots).ok
    report = verify_pdf(signed, roots, require_timestamp=True)
    assert [c.name for c in report.failures] == ["timestamp"]


def test_bb_timestamp_is_reported_absent_not_passed(rendition: bytes, signer: KeySigner, signed_bt: bytes,
                                                     roots: list[x509.Certificate]) -> None:
    """Given a B-B and a B-T signature, When verified,
    Then the B-B report's timestamp check is "absent" (not passed, not a failure) and its level B-B,
    while the B-T report's timestamp check passed."""
    bb = verify_pdf(sign_pdf(rendition, signer), roots)
    stamp = next(c for c in bb.checks if c.name == "timestamp")
    assert (stamp.status, stamp.passed) == ("absent", False)
    assert stamp.detail == "无时间戳（PAdES B-B，仅证明签章时的完整性）"
    assert bb.ok and bb.level == "B-B" and stamp not in bb.failures
    assert next(c for c in bb.to_dict()["checks"] if c["name"] == "timestamp")["status"] == "absent"
    bt = verify_pdf(signed_bt, roots)
    assert bt.level == "B-T" and next(c for c in bt.checks if c.name == "timestamp").status == "passed"


def test_not_a_pdf_fails_readable(roots: list[x509.Certificate]) -> None:
    """Given bytes that are not a PDF, When verified, Then readable fails and fixity is still computed."""
    report = verify_pdf(b"hello", roots)
    assert not report.ok
    assert "readable" in {c.name for c in report.failures}
    assert report.digests is not None and report.digests.size == 5


def test_pki_fixture_is_the_dev_pki(pki: DevPki) -> None:
    """Given the session PKI, Then it has the files `archive init` creates."""
    assert pki.signer_p12.exists() and pki.tsa_cert.exists()
