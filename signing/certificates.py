"""Certificates and keys: a development PKI for `archive init`, and loading the center's signer.

The development PKI is three RSA-3072 key pairs under ``<pki_dir>``: a root CA, a document-signing
certificate for the center (digitalSignature + nonRepudiation) and a time-stamping certificate
(extendedKeyUsage timeStamping, critical). RSA, because pyhanko's local TSA signs with RSA only and
because an ECDSA P-256 signature makes pyhanko declare PDF 2.0, which PDF/A-2b forbids.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.sign.signers import SimpleSigner
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.util import get_pyca_cryptography_hash

from signing.cms_attributes import CertificateIdOnce
from signing.errors import CertificateProblem

CENTER_NAME = "住房公积金管理中心"
RENEW_BEFORE = dt.timedelta(days=30)

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

# Extended key usages that allow signing documents; a certificate with any other EKU only is refused.
DOCUMENT_SIGNING_EKUS = {
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    ExtendedKeyUsageOID.EMAIL_PROTECTION,
    x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36"),  # id-kp-documentSigning (RFC 9336)
    x509.ObjectIdentifier("1.2.840.113583.1.1.5"),  # Adobe Authentic Documents Trust
    x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.12"),  # Microsoft document signing
}


@dataclass(frozen=True)
class DevPki:
    """Paths of the development PKI's files."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key.pem"

    @property
    def signer_cert(self) -> Path:
        return self.directory / "signer.pem"

    @property
    def signer_key(self) -> Path:
        return self.directory / "signer.key.pem"

    @property
    def signer_p12(self) -> Path:
        return self.directory / "signer.p12"

    @property
    def tsa_cert(self) -> Path:
        return self.directory / "tsa.pem"

    @property
    def tsa_key(self) -> Path:
        return self.directory / "tsa.key.pem"


# --- creating the development PKI ------------------------------------------------------------------


def _name(common_name: str, unit: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
             x509.NameAttribute(NameOID.ORGANIZATION_NAME, CENTER_NAME)]
    if unit:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _key_usage(*, digital_signature: bool = False, non_repudiation: bool = False,
               cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=digital_signature, content_commitment=non_repudiation,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=cert_sign, crl_sign=cert_sign, encipher_only=False,
                         decipher_only=False)


def issue_certificate(subject: x509.Name, public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
                      issuer: x509.Certificate | None, issuer_key: PrivateKey, *,
                      not_before: dt.datetime, not_after: dt.datetime, ca: bool = False,
                      key_usage: x509.KeyUsage | None = None,
                      extended_key_usage: Sequence[x509.ObjectIdentifier] = (),
                      extensions: Sequence[x509.ExtensionType] = ()) -> x509.Certificate:
    """Issue one certificate (also used by tests to make expired or wrong-usage certificates).

    ``extensions`` are added non-critical (e.g. signing.revocation.revocation_extensions: CRL and OCSP pointers)."""
    issuer_name = issuer.subject if issuer is not None else subject
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
               .public_key(public_key).serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                              critical=False))
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    if extended_key_usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(extended_key_usage)), critical=True)
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=3072)


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    tmp.replace(path)


def _encryption(passphrase: bytes | None) -> serialization.KeySerializationEncryption:
    return serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()


def _write_key(path: Path, key: PrivateKey, passphrase: bytes | None = None) -> None:
    _write_private(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           _encryption(passphrase)))


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tmp.replace(path)


def _usable(cert_path: Path, key_path: Path, now: dt.datetime) -> bool:
    if not (cert_path.exists() and key_path.exists()):
        return False
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return cert.not_valid_after_utc - RENEW_BEFORE > now


def _issued_by(cert_path: Path, ca_cert: x509.Certificate) -> bool:
    try:
        x509.load_pem_x509_certificate(cert_path.read_bytes()).verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _names_service(cert_path: Path, service_url: str | None) -> bool:
    """Whether the certificate carries the revocation pointers of ``service_url`` (always true without one)."""
    if service_url is None:
        return True
    from signing.revocation import ocsp_url

    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return False
    return any(d.access_location.value == ocsp_url(service_url) for d in aia)


def dev_service_url(pki_dir: Path) -> str | None:
    """The URL of the revocation (CRL/OCSP) and TSA service the development PKI's certificates name, if any."""
    path = DevPki(Path(pki_dir)).directory / "service_url"
    return path.read_text(encoding="ascii").strip() or None if path.exists() else None


def ensure_dev_pki(pki_dir: Path, passphrase: bytes | None = None, service_url: str | None = None) -> DevPki:
    """Create the development CA, signing and TSA certificates unless they exist and are still valid.

    Idempotent: valid files are left alone; a missing leaf certificate, or one within 30 days of
    expiry, is (re-)issued by the development CA. Keys are written with mode 0600; with ``passphrase``
    the signing key (``signer.key.pem``, encrypted PKCS#8, and ``signer.p12``) is encrypted with it,
    and an existing unencrypted signing key is encrypted in place. The CA and TSA keys stay
    unencrypted (development only). A directory holding ``ca.pem`` without ``ca.key.pem`` is a
    center's own PKI and is not touched. With ``service_url`` (e.g. ``http://127.0.0.1:3161/``, where
    ``archive tsa`` listens) the leaf certificates name its ``crl`` and ``ocsp`` paths for revocation data, as a
    real CA's do (PAdES B-LT); leaves without them are re-issued. The URL is kept in ``<pki_dir>/service_url``.
    """
    pki = DevPki(Path(pki_dir))
    if pki.ca_cert.exists() and not pki.ca_key.exists():
        return pki
    pki.directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    start = now - dt.timedelta(hours=1)
    ca_key: PrivateKey | None
    if _usable(pki.ca_cert, pki.ca_key, now):
        ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
        ca_key = None  # loaded only when a leaf certificate must be issued
    else:
        ca_key = _new_key()
        ca_cert = issue_certificate(_name(f"{CENTER_NAME} 开发测试根证书"), ca_key.public_key(), None,
                                    ca_key, not_before=start, not_after=now + dt.timedelta(days=365 * 20),
                                    ca=True, key_usage=_key_usage(cert_sign=True))
        _write_key(pki.ca_key, ca_key)
        _write_cert(pki.ca_cert, ca_cert)

    service_url = service_url or dev_service_url(pki.directory)
    extensions = []
    if service_url is not None:
        from signing.revocation import revocation_extensions

        extensions = revocation_extensions(service_url)
        (pki.directory / "service_url").write_text(service_url + "\n", encoding="ascii")
    if not (_usable(pki.signer_cert, pki.signer_key, now) and _issued_by(pki.signer_cert, ca_cert)
            and _names_service(pki.signer_cert, service_url)):
        ca_key = ca_key or load_private_key(pki.ca_key)
        key = _new_key()
        cert = issue_certificate(_name(f"{CENTER_NAME} 档案签章", "档案管理"), key.public_key(), ca_cert,
                                 ca_key, not_before=start, not_after=now + dt.timedelta(days=365 * 3),
                                 key_usage=_key_usage(digital_signature=True, non_repudiation=True),
                                 extensions=extensions)
        _write_key(pki.signer_key, key, passphrase)
        _write_cert(pki.signer_cert, cert)
        pki.signer_p12.unlink(missing_ok=True)
    elif passphrase and b"ENCRYPTED" not in pki.signer_key.read_bytes():
        _write_key(pki.signer_key, load_private_key(pki.signer_key), passphrase)
        pki.signer_p12.unlink(missing_ok=True)
    if not pki.signer_p12.exists():
        p12 = pkcs12.serialize_key_and_certificates(
            b"signer", load_private_key(pki.signer_key, passphrase if passphrase else None),
            x509.load_pem_x509_certificate(pki.signer_cert.read_bytes()), [ca_cert],
            _encryption(passphrase))
        _write_private(pki.signer_p12, p12)

    if not (_usable(pki.tsa_cert, pki.tsa_key, now) and _issued_by(pki.tsa_cert, ca_cert)
            and _names_service(pki.tsa_cert, service_url)):
        ca_key = ca_key or load_private_key(pki.ca_key)
        key = _new_key()
        cert = issue_certificate(_name(f"{CENTER_NAME} 开发测试时间戳"), key.public_key(), ca_cert, ca_key,
                                 not_before=start, not_after=now + dt.timedelta(days=365 * 10),
                                 key_usage=_key_usage(digital_signature=True, non_repudiation=True),
                                 extended_key_usage=[ExtendedKeyUsageOID.TIME_STAMPING], extensions=extensions)
        _write_key(pki.tsa_key, key)
        _write_cert(pki.tsa_cert, cert)
    return pki


# --- loading ---------------------------------------------------------------------------------------


def _unreadable(path: Path, exc: Exception) -> CertificateProblem:
    return CertificateProblem(f"无法读取证书或密钥文件 {path}：{exc}", code="certificate_unreadable",
                              detail={"path": str(path)})


def load_private_key(path: Path, password: bytes | None = None) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password)
    except (OSError, ValueError, TypeError) as exc:
        raise _unreadable(path, exc) from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise CertificateProblem(f"不支持的密钥类型 {type(key).__name__}（只支持 RSA 与 ECDSA）",
                                 code="certificate_unreadable", detail={"path": str(path)})
    return key


def load_certificates(path: Path) -> list[x509.Certificate]:
    """All certificates of a PEM file (or one DER certificate)."""
    try:
        data = Path(path).read_bytes()
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except (OSError, ValueError) as exc:
        raise _unreadable(path, exc) from exc


def load_trust_roots(pki_dir: Path) -> list[x509.Certificate]:
    """Trust roots: ``ca.pem`` of the PKI directory plus every certificate under ``<pki_dir>/trust/``."""
    pki_dir = Path(pki_dir)
    files = [pki_dir / "ca.pem", *sorted((pki_dir / "trust").glob("*.pem")),
             *sorted((pki_dir / "trust").glob("*.crt"))]
    roots = [c for f in files if f.exists() for c in load_certificates(f)]
    if not roots:
        raise CertificateProblem(f"在 {pki_dir} 下没有找到信任的根证书（ca.pem 或 trust/*.pem），"
                                 "请先运行 archive init 或放入中心的根证书", code="trust_roots_missing",
                                 detail={"pki_dir": str(pki_dir)})
    return roots


def check_signing_certificate(cert: x509.Certificate, at: dt.datetime | None = None) -> None:
    """Refuse a certificate that is outside its validity period or not meant for signing documents."""
    at = at or dt.datetime.now(dt.UTC)
    subject = cert.subject.rfc4514_string()
    detail = {"subject": subject, "serial": format(cert.serial_number, "x"),
              "not_before": cert.not_valid_before_utc.isoformat(),
              "not_after": cert.not_valid_after_utc.isoformat()}
    if at > cert.not_valid_after_utc:
        raise CertificateProblem(
            f"签章证书已于 {cert.not_valid_after_utc:%Y-%m-%d} 过期（{subject}），请更换有效证书后再签章",
            code="certificate_expired", detail=detail)
    if at < cert.not_valid_before_utc:
        raise CertificateProblem(
            f"签章证书自 {cert.not_valid_before_utc:%Y-%m-%d} 起才生效（{subject}），请检查证书或系统时间",
            code="certificate_not_yet_valid", detail=detail)
    problems = _usage_problems(cert)
    if problems:
        raise CertificateProblem(f"该证书不能用于文件签章（{subject}）：{'；'.join(problems)}",
                                 code="certificate_wrong_usage", detail={**detail, "problems": problems})


def _usage_problems(cert: x509.Certificate) -> list[str]:
    problems = []
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        if not (ku.digital_signature or ku.content_commitment):
            problems.append("密钥用途（KeyUsage）不含数字签名（digitalSignature）或不可否认（nonRepudiation）")
    except x509.ExtensionNotFound:
        pass
    try:
        eku = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
        if not eku & DOCUMENT_SIGNING_EKUS:
            names = ", ".join(sorted(getattr(o, "_name", o.dotted_string) for o in eku))
            problems.append(f"扩展密钥用途（ExtendedKeyUsage）只允许 {names}")
    except x509.ExtensionNotFound:
        pass
    try:
        if cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            problems.append("这是 CA 证书，不能直接签署文件")
    except x509.ExtensionNotFound:
        pass
    return problems


def to_asn1_certificate(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def to_asn1_key(key: PrivateKey) -> asn1_keys.PrivateKeyInfo:
    return asn1_keys.PrivateKeyInfo.load(key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


class KeySigner(CertificateIdOnce, SimpleSigner):
    """pyhanko's SimpleSigner keeping the parsed private key (and the signing-certificate-v2 attribute:
    signing.cms_attributes).

    SimpleSigner parses the key again for every signature, and parsing (with its consistency check)
    an RSA-3072 key costs about 150 ms, more than everything else in signing a document.
    """

    def __init__(self, cert: x509.Certificate, key: PrivateKey, chain: Sequence[x509.Certificate] = ()
                 ) -> None:
        super().__init__(signing_cert=to_asn1_certificate(cert), signing_key=to_asn1_key(key),
                         cert_registry=SimpleCertificateStore.from_certs(
                             [to_asn1_certificate(c) for c in chain]))
        self._key = key
        self.certificate = cert  # the signing certificate, never None (pyhanko types signing_cert as optional)

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        mechanism = self.get_signature_mechanism_for_digest(digest_algorithm).signature_algo
        digest = get_pyca_cryptography_hash(digest_algorithm)
        if mechanism == "rsassa_pkcs1v15" and isinstance(self._key, rsa.RSAPrivateKey):
            return self._key.sign(data, PKCS1v15(), digest)
        if mechanism == "ecdsa" and isinstance(self._key, ec.EllipticCurvePrivateKey):
            return self._key.sign(data, ec.ECDSA(digest))
        return super().sign_raw(data, digest_algorithm)


def make_signer(cert: x509.Certificate, key: PrivateKey, chain: Sequence[x509.Certificate] = (), *,
                at: dt.datetime | None = None) -> KeySigner:
    """A pyhanko signer for a checked certificate, its key and the certificates above it."""
    check_signing_certificate(cert, at)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(serialization.Encoding.DER, spki) != \
            key.public_key().public_bytes(serialization.Encoding.DER, spki):
        raise CertificateProblem("私钥与签章证书不匹配，请检查证书和密钥文件",
                                 code="certificate_key_mismatch",
                                 detail={"subject": cert.subject.rfc4514_string()})
    return KeySigner(cert, key, chain)


def load_signer(cert_or_p12: Path, key: Path | None = None, *, password: bytes | None = None,
                chain: Sequence[Path] = (), at: dt.datetime | None = None) -> KeySigner:
    """Load the center's signer from a PKCS#12 file (``key`` None) or a PEM certificate + key pair.

    The certificate's validity period and key usage are checked (CertificateProblem). ``chain`` adds
    PEM files with intermediate/root certificates to embed; a PEM certificate file may also hold them
    after the signer's certificate.
    """
    cert_or_p12 = Path(cert_or_p12)
    extra = [c for p in chain for c in load_certificates(p)]
    if key is None:
        try:
            p12 = pkcs12.load_pkcs12(cert_or_p12.read_bytes(), password)
        except (OSError, ValueError) as exc:
            raise _unreadable(cert_or_p12, exc) from exc
        if p12.key is None or p12.cert is None:
            raise CertificateProblem(f"PKCS#12 文件 {cert_or_p12} 中缺少证书或私钥",
                                     code="certificate_unreadable", detail={"path": str(cert_or_p12)})
        p12_key = p12.key
        if not isinstance(p12_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise CertificateProblem("不支持的密钥类型（只支持 RSA 与 ECDSA）", code="certificate_unreadable",
                                     detail={"path": str(cert_or_p12)})
        others = [c.certificate for c in p12.additional_certs]
        return make_signer(p12.cert.certificate, p12_key, [*others, *extra], at=at)
    certs = load_certificates(cert_or_p12)
    return make_signer(certs[0], load_private_key(key, password), [*certs[1:], *extra], at=at)


def pki_signer_files(pki_dir: Path) -> tuple[Path, Path | None] | None:
    """The signer's files in a PKI directory: (``signer.p12``, None), (``signer.pem``, ``signer.key.pem``) or None."""
    pki = DevPki(Path(pki_dir))
    if pki.signer_p12.exists():
        return pki.signer_p12, None
    if pki.signer_cert.exists() and pki.signer_key.exists():
        return pki.signer_cert, pki.signer_key
    return None


def load_pki_signer(pki_dir: Path, passphrase: bytes | None = None) -> KeySigner:
    """The center's signer from the PKI directory: ``signer.p12`` or ``signer.pem`` + ``signer.key.pem``
    (encrypted with ``passphrase`` when it is given)."""
    pki = DevPki(Path(pki_dir))
    chain = [pki.ca_cert] if pki.ca_cert.exists() else []
    files = pki_signer_files(pki.directory)
    if files is not None:
        return load_signer(files[0], files[1], password=passphrase, chain=chain)
    raise CertificateProblem(f"在 {pki_dir} 下没有找到签章证书（signer.p12 或 signer.pem + signer.key.pem），"
                             "请先运行 archive init 或放入中心的签章证书", code="signer_missing",
                             detail={"pki_dir": str(pki_dir)})
