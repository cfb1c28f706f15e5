"""Revocation data for the development PKI: a CRL and an OCSP responder, as a real CA publishes them.

Certificates issued by ``ensure_dev_pki(..., service_url=URL)`` name ``URL + "crl"`` as their CRL distribution
point and ``URL + "ocsp"`` as their OCSP responder (authorityInfoAccess); the local TSA server (``archive tsa``)
answers both, so signing at PAdES B-LT fetches real revocation data. Revoked serial numbers are kept in
``<pki_dir>/revoked.txt`` (one ``serial-hex revocation-time-iso`` per line). The CA signs the CRL and the OCSP
responses itself (RFC 6960 §2.6 allows the issuing CA as responder). Development only.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from signing.certificates import DevPki, PrivateKey, load_private_key

CRL_PATH = "crl"
OCSP_PATH = "ocsp"
#: How long a CRL or OCSP answer is fresh (nextUpdate - thisUpdate).
FRESHNESS = dt.timedelta(days=7)


def crl_url(service_url: str) -> str:
    return service_url.rstrip("/") + "/" + CRL_PATH


def ocsp_url(service_url: str) -> str:
    return service_url.rstrip("/") + "/" + OCSP_PATH


def revocation_extensions(service_url: str) -> list[x509.ExtensionType]:
    """The CRL distribution point and OCSP access extensions naming the local service."""
    return [
        x509.CRLDistributionPoints([x509.DistributionPoint(
            full_name=[x509.UniformResourceIdentifier(crl_url(service_url))], relative_name=None, reasons=None,
            crl_issuer=None)]),
        x509.AuthorityInformationAccess([x509.AccessDescription(
            x509.oid.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url(service_url)))]),
    ]


def _revoked_file(pki: DevPki) -> Path:
    return pki.directory / "revoked.txt"


def revoked_serials(pki: DevPki) -> dict[int, dt.datetime]:
    """Serial number → revocation time of every certificate the development CA revoked."""
    path = _revoked_file(pki)
    found: dict[int, dt.datetime] = {}
    if not path.exists():
        return found
    for line in path.read_text(encoding="ascii").splitlines():
        parts = line.split()
        if len(parts) == 2:
            found[int(parts[0], 16)] = dt.datetime.fromisoformat(parts[1])
    return found


def revoke(pki: DevPki, cert: x509.Certificate, at: dt.datetime | None = None) -> None:
    """Revoke ``cert`` at the development CA (its CRL and OCSP answers say so from now on)."""
    when = (at or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    with _revoked_file(pki).open("a", encoding="ascii") as f:
        f.write(f"{cert.serial_number:x} {when.isoformat()}\n")


class RevocationService:
    """Builds CRLs and OCSP responses for the development CA of ``pki``."""

    def __init__(self, pki: DevPki) -> None:
        self.pki = pki
        self._ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
        self._ca_key: PrivateKey = load_private_key(pki.ca_key)

    def crl(self) -> bytes:
        """A fresh DER CRL listing every revoked serial."""
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self._ca.subject)
                   .last_update(now - dt.timedelta(minutes=1)).next_update(now + FRESHNESS)
                   .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._ca_key.public_key()),
                                  critical=False))
        for serial, when in revoked_serials(self.pki).items():
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build())
        return builder.sign(self._ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def ocsp(self, request_der: bytes) -> bytes:
        """The DER OCSP response to a DER request (malformedRequest / unauthorized when it is not for this CA)."""
        try:
            request = ocsp.load_der_ocsp_request(request_der)
        except ValueError:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.MALFORMED_REQUEST).public_bytes(serialization.Encoding.DER)
        algorithm = request.hash_algorithm
        name_hash = _hash(algorithm, self._ca.subject.public_bytes())
        key_hash = _hash(algorithm, _public_key_bits(self._ca))
        if request.issuer_name_hash != name_hash or request.issuer_key_hash != key_hash:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(serialization.Encoding.DER)
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        revoked_at = revoked_serials(self.pki).get(request.serial_number)
        status = ocsp.OCSPCertStatus.GOOD if revoked_at is None else ocsp.OCSPCertStatus.REVOKED
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=name_hash, issuer_key_hash=key_hash, serial_number=request.serial_number,
            algorithm=algorithm, cert_status=status, this_update=now - dt.timedelta(minutes=1),
            next_update=now + FRESHNESS, revocation_time=revoked_at,
            revocation_reason=None if revoked_at is None else x509.ReasonFlags.unspecified,
        ).responder_id(ocsp.OCSPResponderEncoding.HASH, self._ca)
        for ext in request.extensions:
            if isinstance(ext.value, x509.OCSPNonce):
                builder = builder.add_extension(ext.value, critical=False)
        return builder.sign(self._ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _hash(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    digest = hashes.Hash(algorithm)
    digest.update(data)
    return digest.finalize()


def _public_key_bits(cert: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING's bits (what OCSP's issuerKeyHash is computed over)."""
    from asn1crypto import keys as asn1_keys

    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return bytes(asn1_keys.PublicKeyInfo.load(spki)["public_key"].contents[1:])
