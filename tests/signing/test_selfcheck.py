"""The cheap check of a signature just made (signing.selfcheck): it passes what the signer made and fails every
change the full validation would catch on a fresh filing - covered bytes, the byte range, /Contents, the signer."""

from __future__ import annotations

import io
import re

import pytest
from asn1crypto import cms
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from signing.certificates import DevPki, KeySigner, load_certificates, make_signer
from signing.ltv import signature_time_stamps, time_stamps
from signing.pades import sign_pdf
from signing.selfcheck import check_own_signature, last_signature, only_signature
from signing.tsa import LocalTsa
from signing.validate import verify_pdf
from tests.signing.support import leaf_from_dev_ca


@pytest.fixture(scope="module")
def signed_bb(rendition: bytes, signer: KeySigner) -> bytes:
    return sign_pdf(rendition, signer)


def _contents_span(data: bytes) -> tuple[int, int]:
    """Where the last signature's /Contents hex digits are (between < and >)."""
    _start, len1, start2, _ = (int(v) for v in re.findall(rb"/ByteRange \[\s*(\d+) (\d+) (\d+) (\d+)", data)[-1])
    return len1 + 1, start2 - 1


def _signature_value_at(data: bytes) -> int:
    """Offset of the first hex digit of the signer's signature value inside /Contents."""
    lo, hi = _contents_span(data)
    info = cms.ContentInfo.load(bytes.fromhex(data[lo:hi].decode()), strict=False)["content"]["signer_infos"][0]
    return lo + data[lo:hi].lower().index(info["signature"].native.hex().encode())


def test_a_fresh_signature_passes_with_its_level(signed_bb: bytes, signed_bt: bytes, signer: KeySigner,
                                                 roots: list) -> None:
    """Given renditions just signed B-B and B-T, Then the cheap check passes and names the level, as the full
    validation does."""
    for data, level in ((signed_bb, "B-B"), (signed_bt, "B-T")):
        own = check_own_signature(data, signer.signing_cert)
        assert (own.problems, own.level) == ([], level)
        assert verify_pdf(data, roots).level == level


def test_a_changed_byte_inside_the_byte_range_fails_the_digest(signed_bb: bytes, signer: KeySigner) -> None:
    """Given one byte of a page image changed, Then the messageDigest no longer matches the byte range."""
    at = signed_bb.index(b"stream", signed_bb.index(b"/DCTDecode")) + 500
    tampered = bytearray(signed_bb)
    tampered[at] ^= 0x01
    problems = check_own_signature(bytes(tampered), signer.signing_cert).problems
    assert problems == ["签名中的摘要与签名覆盖的字节不一致（文件被改动）"]


def test_anything_appended_after_the_signature_fails_the_byte_range(signed_bb: bytes, signer: KeySigner) -> None:
    """Given an incremental update (here a comment and %%EOF) after the signed revision, Then the byte range no
    longer reaches the end of the file."""
    problems = check_own_signature(signed_bb + b"% appended\n%%EOF\n", signer.signing_cert).problems
    assert problems and "ByteRange" in problems[0]


def test_a_changed_signature_value_fails(signed_bb: bytes, signer: KeySigner) -> None:
    """Given one hex digit of the signature value changed (outside the byte range), Then it does not verify."""
    at = _signature_value_at(signed_bb) + 20
    tampered = bytearray(signed_bb)
    tampered[at:at + 1] = b"0" if tampered[at:at + 1] != b"0" else b"1"  # one case throughout: upper-case hex
    problems = check_own_signature(bytes(tampered), signer.signing_cert).problems
    assert problems == ["签名值无法用签章证书的公钥验证（签名被改动）"]


def test_a_signature_by_another_certificate_fails(rendition: bytes, pki: DevPki, signer: KeySigner) -> None:
    """Given a rendition signed by another (valid) certificate of the same CA, Then it is not the system's own."""
    cert, key = leaf_from_dev_ca(pki)
    other = make_signer(cert, key, load_certificates(pki.ca_cert))  # type: ignore[arg-type]
    problems = check_own_signature(sign_pdf(rendition, other), signer.signing_cert).problems
    assert problems == ["签名中没有嵌入本系统的签章证书"]


def test_a_changed_time_stamp_fails(signed_bt: bytes, signer: KeySigner) -> None:
    """Given the time-stamp token's TSA signature changed (the last bytes of the signer's DER in /Contents), Then
    the token no longer verifies; the signer's own signature still does."""
    lo, hi = _contents_span(signed_bt)
    der = cms.ContentInfo.load(bytes.fromhex(signed_bt[lo:hi].decode()), strict=False)
    token = der["content"]["signer_infos"][0]["unsigned_attrs"][0]["values"][0]
    tsa_value = token["content"]["signer_infos"][0]["signature"].native.hex().encode()
    at = lo + signed_bt[lo:hi].lower().index(tsa_value) + 10
    tampered = bytearray(signed_bt)
    tampered[at:at + 1] = b"0" if tampered[at:at + 1] != b"0" else b"1"
    problems = check_own_signature(bytes(tampered), signer.signing_cert).problems
    assert problems == ["时间戳的签名无法用时间戳服务的证书验证（时间戳被改动）"]


def test_a_file_without_a_signature_fails(rendition: bytes, signer: KeySigner) -> None:
    assert check_own_signature(rendition, signer.signing_cert).problems == ["文件没有电子签名"]
    assert check_own_signature(b"not a pdf", signer.signing_cert).problems


def test_an_ecdsa_signature_is_checked_too(rendition: bytes, pki: DevPki) -> None:
    """Given a rendition signed with an ECDSA key (P-256), Then the cheap check verifies it with that key, and a
    changed covered byte still fails it."""
    from cryptography.hazmat.primitives.asymmetric import ec

    cert, key = leaf_from_dev_ca(pki, key=ec.generate_private_key(ec.SECP256R1()))
    ecdsa = make_signer(cert, key, load_certificates(pki.ca_cert))  # type: ignore[arg-type]
    signed = sign_pdf(rendition, ecdsa)
    assert check_own_signature(signed, ecdsa.signing_cert).problems == []
    tampered = bytearray(signed)
    tampered[signed.index(b"stream", signed.index(b"/DCTDecode")) + 300] ^= 0x01
    assert check_own_signature(bytes(tampered), ecdsa.signing_cert).problems


def test_last_signature_reads_the_time_stamps_pyhankos_reader_reads(rendition: bytes, signed_bb: bytes,
                                                                      signed_bt: bytes) -> None:
    """Given renditions just signed B-B and B-T, When their signature is read from the bytes (the filing's
    rendition_version row), Then it names the same field and time stamps as pyHanko's full reader; an unsigned
    file has none, and a file that is no PDF is a ValueError."""
    for data, count in ((signed_bb, 0), (signed_bt, 1)):
        found = last_signature(data)
        assert found is not None
        field, signed_data = found
        assert signature_time_stamps(signed_data, field) == time_stamps(data)
        assert len(time_stamps(data)) == count
    assert last_signature(rendition) is None
    with pytest.raises(ValueError):
        last_signature(b"not a pdf")


def test_only_signature_reads_a_lone_signature_and_nothing_more(rendition: bytes, signed_bb: bytes, signed_bt: bytes,
                                                                 signer: KeySigner, tsa: LocalTsa) -> None:
    """Given files just signed once (B-B, B-T), Then only_signature reads the signature last_signature reads; given a
    file carrying more than one signature or a document time stamp as its only one, or none, Then it
    answers None (the filing then reads the file in full), and a file that is no PDF is a ValueError."""
    from pyhanko.sign import signers

    from signing.tsa import http_timestamper

    for data in (signed_bb, signed_bt):
        found, last = only_signature(data), last_signature(data)
        assert found is not None and last is not None
        assert found[0] == last[0] and found[1].dump() == last[1].dump()
    twice = sign_pdf(signed_bb, signer, field_name="Second")
    assert last_signature(twice) is not None and only_signature(twice) is None
    stamped = io.BytesIO()
    signers.PdfTimeStamper(http_timestamper(tsa.url)).timestamp_pdf(  # type: ignore[attr-defined]
        IncrementalPdfFileWriter(io.BytesIO(rendition), strict=False), "sha256", output=stamped)
    assert [s.kind for s in time_stamps(stamped.getvalue())] == ["archive"]  # pyHanko reads a document time stamp
    assert only_signature(stamped.getvalue()) is None
    assert only_signature(rendition) is None
    with pytest.raises(ValueError):
        only_signature(b"not a pdf")
