"""The CMS signed attributes of a signature, with the one that never changes for a signer built once.

The signing-certificate-v2 attribute (RFC 5035 ESSCertIDv2: the signing certificate's SHA-256, issuer and serial)
depends on the certificate alone. pyHanko builds it for every signature as a newly constructed asn1crypto value,
and asn1crypto serialises a constructed value again each time something wraps or copies it: about 8 ms of a 14 ms
signature here (issue 17). Built once and parsed back from its DER, it is serialised once and its bytes reused.
Every other attribute (content type, message digest, and whatever pyHanko's settings add) is pyHanko's own.
"""

from __future__ import annotations

from typing import Any

from asn1crypto import cms, tsp
from pyhanko.sign.attributes import SigningCertificateV2Provider
from pyhanko.sign.general import as_signing_certificate_v2
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes, format_signed_attributes


class _KnownCertificateId(SigningCertificateV2Provider):
    """pyHanko's provider of the attribute, answering with the value built once."""

    def __init__(self, signing_cert: Any) -> None:
        super().__init__(signing_cert)
        self.value = tsp.SigningCertificateV2.load(as_signing_certificate_v2(signing_cert).dump())

    async def build_attr_value(self, dry_run: bool = False) -> tsp.SigningCertificateV2:
        return self.value


class CertificateIdOnce:
    """Mixin for a pyHanko signer (before it in the bases): its ``signed_attrs`` with the signing-certificate-v2
    attribute built once per signing certificate."""

    _certificate_id: _KnownCertificateId | None = None

    async def signed_attrs(self, data_digest: bytes, digest_algorithm: str,
                           attr_settings: PdfCMSSignedAttributes | None = None, content_type: str = "data",
                           use_pades: bool = False, timestamper: Any = None, dry_run: bool = False,
                           is_pdf_sig: bool = True) -> cms.CMSAttributes:
        providers = self._signed_attr_providers(  # type: ignore[attr-defined]  # pyHanko's Signer
            data_digest=data_digest, digest_algorithm=digest_algorithm,
            attr_settings=attr_settings or PdfCMSSignedAttributes(), timestamper=timestamper, use_cades=use_pades,
            is_pdf_sig=is_pdf_sig)
        return await format_signed_attributes(
            data_digest, attr_provs=[self._known(p) for p in providers], content_type=content_type, dry_run=dry_run)

    def _known(self, provider: Any) -> Any:
        if type(provider) is not SigningCertificateV2Provider:
            return provider
        known = self._certificate_id
        if known is None or known.signing_cert.dump() != provider.signing_cert.dump():
            known = self._certificate_id = _KnownCertificateId(provider.signing_cert)
        return known
