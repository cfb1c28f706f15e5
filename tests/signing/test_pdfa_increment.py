"""Signing checks only what its incremental update adds to a rendition already validated
(signing.pdfa.increment_problems); every signed rendition still passes the full PDF/A-2b check, and what the
update could break - an appearance with an unembedded font, another change to the document - is still caught."""

from __future__ import annotations

import io

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from pyhanko.pdf_utils.generic import DictionaryObject, NameObject, TextStringObject, pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.stamp import TextStampStyle

from signing.certificates import DevPki, KeySigner, load_certificates, make_signer
from signing.errors import RenditionFailed
from signing.pades import Seal, _PdfA2Signer, sign_pdf
from signing.pdfa import increment_problems, pdfa_problems
from signing.rendition import SourceDocument, build_rendition
from signing.tsa import LocalTsa, http_timestamper
from tests.signing.support import jpeg, jpeg_documents, leaf_from_dev_ca, metadata, png, tiff


def _no_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on, increment_problems must not fall back to checking the whole file."""
    import signing.pdfa

    def fell_back(data: bytes) -> list[str]:
        raise AssertionError("increment_problems checked the whole file")

    monkeypatch.setattr(signing.pdfa, "pdfa_problems", fell_back)


def _renditions() -> list[bytes]:
    mixed = [SourceDocument("申请表", "image/png", data=png("RGBA")),
             SourceDocument("流水", "image/tiff", data=tiff(2)),
             SourceDocument("收据", "image/jpeg", data=jpeg(seed=7))]
    return [build_rendition(jpeg_documents(3), metadata()), build_rendition(mixed, metadata(title="混合材料")),
            build_rendition(jpeg_documents(1), metadata(party_masking="none"))]


def test_every_signed_rendition_passes_the_full_check(signer: KeySigner, tsa: LocalTsa, pki: DevPki,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Given renditions of several kinds signed B-B, B-T, with a visible seal and with an ECDSA key, all checked
    by the increment only (pdfa_checked), Then each signed file passes the full PDF/A-2b check as well."""
    cert, key = leaf_from_dev_ca(pki, key=ec.generate_private_key(ec.SECP256R1()))
    ecdsa = make_signer(cert, key, load_certificates(pki.ca_cert))  # type: ignore[arg-type]
    stamper = http_timestamper(tsa.url)
    for rendition in _renditions():
        for kwargs in ({}, {"timestamper": stamper}, {"seal": Seal(png("RGBA", (200, 200)))},
                       {"seal": Seal(jpeg(), page=0)}):
            for who in (signer, ecdsa):
                signed = sign_pdf(rendition, who, pdfa_checked=True, **kwargs)  # type: ignore[arg-type]
                assert pdfa_problems(signed) == [], kwargs
                with monkeypatch.context() as m:
                    _no_fallback(m)
                    assert increment_problems(rendition, signed) == []


def _text_stamped(rendition: bytes, signer: KeySigner) -> bytes:
    """Signed with pyHanko's text stamp: its appearance uses Courier, a font that is not embedded."""
    meta = signers.PdfSignatureMetadata(field_name="Sig", subfilter=fields.SigSeedSubFilter.PADES)
    pdf_signer = _PdfA2Signer(meta, signer, stamp_style=TextStampStyle(stamp_text="%(signer)s"),
                              new_field_spec=fields.SigFieldSpec("Sig", on_page=0, box=(300, 50, 500, 120)))
    out = io.BytesIO()
    pdf_signer.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(rendition), strict=False), output=out)
    return out.getvalue()


def test_an_appearance_with_an_unembedded_font_fails_the_increment_check(signer: KeySigner,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a signature whose appearance draws text in a font that is not embedded, Then the increment check
    finds the font rule on the appearance alone, as the full check does."""
    rendition = build_rendition(jpeg_documents(1), metadata())
    signed = _text_stamped(rendition, signer)
    full = pdfa_problems(signed)
    _no_fallback(monkeypatch)
    increment = increment_problems(rendition, signed)
    assert full and increment
    assert any("font" in p.lower() for p in increment), increment


def test_an_update_that_changes_more_than_a_signature_gets_the_full_check(signed_bt: bytes,
                                                                          rendition: bytes) -> None:
    """Given a further update that adds an open action to the catalogue (not something a signature does), Then
    the increment check falls back to the full check, which finds it."""
    writer = IncrementalPdfFileWriter(io.BytesIO(signed_bt), strict=False)
    writer.root[NameObject("/OpenAction")] = writer.add_object(DictionaryObject(
        {NameObject("/S"): pdf_name("/JavaScript"), NameObject("/JS"): TextStringObject("app.alert(1)")}))
    writer.update_root()
    out = io.BytesIO()
    writer.write(out)
    changed = out.getvalue()
    assert increment_problems(rendition, changed) == pdfa_problems(changed) != []


def test_a_changed_unsigned_part_gets_the_full_check(rendition: bytes, signer: KeySigner) -> None:
    """Given a signed file that does not start with the rendition's bytes, Then the whole file is checked."""
    signed = sign_pdf(rendition, signer)
    other = build_rendition(jpeg_documents(2), metadata())
    assert increment_problems(other, signed) == pdfa_problems(signed) == []


def test_sign_pdf_refuses_a_non_conforming_increment(signer: KeySigner, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given the signer's update breaks PDF/A (simulated: the increment check reports a rule), Then sign_pdf with
    pdfa_checked raises rendition_not_pdfa naming it."""
    import signing.pades as pades

    monkeypatch.setattr(pades, "increment_problems", lambda before, after: ["ISO_19005_2:6.2.11.4.1-1 at font"])
    with pytest.raises(RenditionFailed) as err:
        sign_pdf(build_rendition(jpeg_documents(1), metadata()), signer, pdfa_checked=True)
    assert err.value.code == "rendition_not_pdfa" and err.value.detail["rules"] == ["ISO_19005_2:6.2.11.4.1-1 at font"]


def test_sign_and_digest_refuses_a_non_conforming_increment_too(signer: KeySigner,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The check that runs beside the digests still refuses: rendition_not_pdfa, nothing returned."""
    import signing.pades as pades

    monkeypatch.setattr(pades, "increment_problems", lambda before, after: ["ISO_19005_2:6.2.11.4.1-1 at font"])
    with pytest.raises(RenditionFailed) as err:
        pades.sign_and_digest(build_rendition(jpeg_documents(1), metadata()), signer, pdfa_checked=True)
    assert err.value.detail["rules"] == ["ISO_19005_2:6.2.11.4.1-1 at font"]


def test_sign_and_digest_checks_on_a_helper_while_this_thread_hashes(rendition: bytes, signer: KeySigner,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The signed file's digests are its own (SHA-256 and SM3 of the returned bytes), computed on the calling
    thread while the increment's PDF/A check runs on another: the two overlap (hashlib lets the GIL go, the
    check holds it), so the check must be the one that moves."""
    import threading

    import signing.pades as pades
    from signing.fixity import digest_bytes

    threads: dict[str, threading.Thread] = {}
    check, digest = pades.increment_problems, pades.digest_bytes

    def checking(before: bytes, after: bytes) -> list[str]:
        threads["check"] = threading.current_thread()
        return check(before, after)

    def digesting(data: bytes) -> object:
        threads["digest"] = threading.current_thread()
        return digest(data)

    monkeypatch.setattr(pades, "increment_problems", checking)
    monkeypatch.setattr(pades, "digest_bytes", digesting)
    signed, digests = pades.sign_and_digest(rendition, signer, level="B-B", pdfa_checked=True)
    assert digests == digest_bytes(signed)
    assert threads["digest"] is threading.current_thread()
    assert threads["check"] is not threading.current_thread()
    assert pdfa_problems(signed) == []
