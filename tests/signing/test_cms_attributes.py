"""The signing-certificate-v2 attribute built once per signer (signing.cms_attributes), the same bytes as pyHanko's."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest
from asn1crypto import cms
from cryptography import x509
from pyhanko.sign.signers import SimpleSigner
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes

from signing import cms_attributes
from signing.certificates import DevPki, KeySigner, load_pki_signer
from signing.pades import sign_pdf
from signing.validate import verify_pdf


def _attrs(signer: SimpleSigner, digest: bytes, **kw: object) -> cms.CMSAttributes:
    return asyncio.run(signer.signed_attrs(digest, "sha256", attr_settings=PdfCMSSignedAttributes(), use_pades=True,
                                           **kw))


def _plain(signer: KeySigner) -> SimpleSigner:
    return SimpleSigner(signing_cert=signer.signing_cert, signing_key=signer.signing_key,
                        cert_registry=signer.cert_registry)


def test_the_signed_attributes_are_byte_for_byte_pyhankos(signer: KeySigner) -> None:
    digest = hashlib.sha256(b"rendition").digest()
    ours = _attrs(signer, digest).dump()
    assert ours == _attrs(_plain(signer), digest).dump()
    assert _attrs(signer, digest).dump() == ours  # and again, from the attribute built before
    types = [a["type"].native for a in cms.CMSAttributes.load(ours)]
    assert sorted(types) == ["content_type", "message_digest", "signing_certificate_v2"]


def test_the_certificate_id_is_built_once_for_many_signatures(rendition: bytes, pki: DevPki,
                                                              roots: list[x509.Certificate],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    built = []
    plain = cms_attributes.as_signing_certificate_v2

    def counted(cert: Any) -> Any:
        built.append(cert)
        return plain(cert)

    monkeypatch.setattr(cms_attributes, "as_signing_certificate_v2", counted)
    signer = load_pki_signer(pki.directory)
    for _ in range(3):
        report = verify_pdf(sign_pdf(rendition, signer, level="B-B"), roots)
        assert report.ok, report.failures
    assert len(built) == 1


def test_a_signer_whose_certificate_changes_never_carries_the_old_id(pki: DevPki) -> None:
    """pyHanko's PKCS#11 signer may load its certificate late: the id follows the certificate the signer has now."""

    class Swapping(KeySigner):
        current: Any = None

        @property
        def signing_cert(self) -> Any:
            return self.current

    base = load_pki_signer(pki.directory)
    signer = Swapping(base.certificate, base._key)
    signer.current = base.signing_cert
    digest = hashlib.sha256(b"x").digest()
    before = _attrs(signer, digest).dump()
    signer.current = next(iter(base.cert_registry))  # any other certificate: the root
    after = _attrs(signer, digest).dump()
    assert after != before
    assert after == _attrs(_plain(signer), digest).dump()
