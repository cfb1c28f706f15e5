"""The center's signer from plain arguments: a key file (PEM / PKCS#12) or a key in an HSM (PKCS#11), and the checks
made when it is loaded (chain to a trusted root, validity, key usage, key matches certificate, key encrypted at rest).

archive/wiring.py maps the ARCHIVE_SIGNER* / ARCHIVE_PKCS11_* settings to these functions; this module knows
nothing of the settings. Every problem is a CertificateProblem with a stable code and a Chinese message, raised when
the signer is loaded (at start), never at the first filing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from pyhanko.sign.pkcs11 import PKCS11Signer

from signing.certificates import (
    RENEW_BEFORE,
    KeySigner,
    check_signing_certificate,
    load_certificates,
    load_signer,
    to_asn1_certificate,
)
from signing.cms_attributes import CertificateIdOnce
from signing.errors import CertificateProblem

KEY_PROBE = b"archive signer key check"


@dataclass
class SignerInfo:
    """What loading found: where the key lives, and warnings that do not stop signing."""

    backend: str  # file, pkcs11, dev
    key_encrypted: bool | None = None  # None: not a file (an HSM keeps its key)
    warnings: list[str] = field(default_factory=list)


# --- the file signer ---------------------------------------------------------------------------------


def key_file_encrypted(path: Path) -> bool:
    """Is the private key in ``path`` (PEM, or PKCS#12 when it is not PEM) protected by a passphrase?"""
    data = Path(path).read_bytes()
    if b"-----BEGIN" in data:
        return b"ENCRYPTED" in data  # PKCS#8 "ENCRYPTED PRIVATE KEY" or legacy "Proc-Type: 4,ENCRYPTED"
    try:
        pkcs12.load_pkcs12(data, None)
    except ValueError:
        return True
    return False


def load_file_signer(cert: Path, key: Path | None = None, *, chain: Sequence[Path] = (),
                     passphrase: bytes | None = None, at: dt.datetime | None = None) -> KeySigner:
    """The signer of a PEM certificate + PEM key (encrypted PKCS#8 supported), or of a PKCS#12 file (``key`` None).

    A passphrase given for a key that has none is ignored (the warning about the unencrypted key says enough); a
    missing or wrong passphrase is ``signer_key_passphrase``.
    """
    key_file = Path(key) if key is not None else Path(cert)
    for path in (Path(cert), key_file, *map(Path, chain)):
        if not path.is_file():
            raise CertificateProblem(f"签章证书或密钥文件不存在：{path}", code="signer_file_missing",
                                     detail={"path": str(path)})
    if key is None and b"-----BEGIN" in Path(cert).read_bytes()[:4096]:
        raise CertificateProblem(f"{cert} 是 PEM 证书，不含私钥：请同时设置私钥文件（ARCHIVE_SIGNER_KEY），"
                                 "或改用 PKCS#12 文件", code="signer_file_missing", detail={"path": str(cert)})
    encrypted = key_file_encrypted(key_file)
    if encrypted and not passphrase:
        raise CertificateProblem(f"签章私钥 {key_file} 已加密，但没有配置口令（ARCHIVE_SIGNER_KEY_PASSPHRASE_FILE）",
                                 code="signer_key_passphrase", detail={"path": str(key_file)})
    try:
        return load_signer(Path(cert), Path(key) if key is not None else None,
                           password=passphrase if encrypted else None, chain=[Path(p) for p in chain], at=at)
    except CertificateProblem as exc:
        if encrypted and exc.code == "certificate_unreadable" and str(key_file) in exc.message:
            raise CertificateProblem(f"签章私钥 {key_file} 的口令不正确", code="signer_key_passphrase",
                                     detail={"path": str(key_file)}) from exc
        raise


# --- the PKCS#11 signer ------------------------------------------------------------------------------


class _LockedKey:
    """A key handle whose operations are serialised: one PKCS#11 session must not run two C_Sign at once."""

    def __init__(self, handle: Any, lock: threading.Lock) -> None:
        self._handle, self._lock = handle, lock

    def sign(self, data: bytes, **kwargs: Any) -> bytes:
        with self._lock:
            return bytes(self._handle.sign(data, **kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


class HsmSigner(CertificateIdOnce, PKCS11Signer):
    """pyHanko's PKCS#11 signer, loaded eagerly (so a missing key or certificate is found at start) and safe to share
    between the threads of the API (and the signing-certificate-v2 attribute built once: signing.cms_attributes)."""

    def __init__(self, session: Any, *, key_label: str, cert_label: str | None,
                 chain: Sequence[x509.Certificate] = ()) -> None:
        super().__init__(session, key_label=key_label, cert_label=cert_label or key_label,
                         ca_chain=[to_asn1_certificate(c) for c in chain])
        self.session = session
        self._lock = threading.Lock()
        self._load_objects()  # pulls the certificate and the key handle now: errors at start
        self._key_handle = _LockedKey(self._key_handle, self._lock)  # type: ignore[assignment]
        assert self._signing_cert is not None  # _load_objects pulled it or raised
        self.certificate = x509.load_der_x509_certificate(self._signing_cert.dump())

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        """A synchronous raw signature, as KeySigner offers it (signing/eep.py signs the DA/T 48 package with it)."""
        spec = self._select_pkcs11_signing_params(digest_algorithm, sign_kwargs=self.sign_kwargs(data))
        if spec.pre_sign_transform is not None:
            data = spec.pre_sign_transform(data)
        signature: bytes = self._key_handle.sign(data, **spec.sign_kwargs)  # type: ignore[union-attr]
        if spec.post_sign_transform is not None:
            signature = spec.post_sign_transform(signature)
        return bytes(signature)

    def sign_probe(self) -> bytes:
        """A raw signature over KEY_PROBE, to prove the token's key belongs to the certificate."""
        from pkcs11 import Mechanism

        pub = self.certificate.public_key()
        with self._lock:
            handle = self._key_handle._handle  # type: ignore[union-attr]
            if isinstance(pub, rsa.RSAPublicKey):
                return bytes(handle.sign(KEY_PROBE, mechanism=Mechanism.SHA256_RSA_PKCS))
            return bytes(handle.sign(KEY_PROBE, mechanism=Mechanism.ECDSA_SHA256))

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a dead session must not hide the real error
            self.session.close()


def _hsm_problem(code: str, message: str, **detail: Any) -> CertificateProblem:
    return CertificateProblem(message, code=code, detail=detail or None)


def open_pkcs11_signer(module: Path, *, key_label: str, pin: str | None, token_label: str | None = None,
                       slot: int | None = None, cert_label: str | None = None,
                       chain: Sequence[Path] = ()) -> HsmSigner:
    """Log in to the token and load the key and certificate labelled ``key_label`` / ``cert_label``.

    Codes: pkcs11_module_missing, pkcs11_token_missing, pkcs11_pin_incorrect, pkcs11_pin_locked, pkcs11_key_missing,
    pkcs11_cert_missing, pkcs11_error; then the certificate checks of :func:`verify_signer`.
    """
    import pkcs11
    from pkcs11 import exceptions as p11e

    if not Path(module).is_file():
        raise _hsm_problem("pkcs11_module_missing", f"找不到 PKCS#11 模块 {module}（ARCHIVE_PKCS11_MODULE），"
                           "请安装密码设备的驱动或更正路径", module=str(module))
    try:
        lib = pkcs11.lib(str(module))
    except (RuntimeError, OSError, p11e.PKCS11Error) as exc:
        raise _hsm_problem("pkcs11_module_missing", f"无法加载 PKCS#11 模块 {module}：{exc}",
                           module=str(module)) from exc
    try:
        slots = lib.get_slots(token_present=True)
        if slot is not None:
            chosen = [s for s in slots if s.slot_id == slot] or (slots[slot:slot + 1] if slot < len(slots) else [])
            tokens = [s.get_token() for s in chosen]
        else:
            tokens = [s.get_token() for s in slots]
        if token_label is not None:
            tokens = [t for t in tokens if t.label == token_label]
    except p11e.PKCS11Error as exc:
        raise _hsm_problem("pkcs11_error", f"PKCS#11 设备出错：{type(exc).__name__} {exc}") from exc
    where = f"标签 {token_label}" if token_label is not None else f"槽位 {slot}" if slot is not None else "任一槽位"
    if not tokens:
        raise _hsm_problem("pkcs11_token_missing", f"PKCS#11 模块 {module} 中没有找到令牌（{where}），"
                           "请检查 ARCHIVE_PKCS11_TOKEN_LABEL / ARCHIVE_PKCS11_SLOT", token=token_label, slot=slot)
    if len(tokens) > 1:
        raise _hsm_problem("pkcs11_token_missing", f"PKCS#11 模块 {module} 中有 {len(tokens)} 个令牌，"
                           "请用 ARCHIVE_PKCS11_TOKEN_LABEL 或 ARCHIVE_PKCS11_SLOT 指定一个",
                           tokens=[t.label for t in tokens])
    token = tokens[0]
    if not pin:
        raise _hsm_problem("pkcs11_pin_missing", "没有配置 PKCS#11 令牌的 PIN（ARCHIVE_PKCS11_PIN_FILE）",
                           token=token.label)
    try:
        try:
            session = token.open(user_pin=pin)
        except p11e.UserAlreadyLoggedIn:
            # PKCS#11 login is per process: another session of this process has logged in with the PIN already
            session = token.open()
    except p11e.PinIncorrect as exc:
        raise _hsm_problem("pkcs11_pin_incorrect", f"PKCS#11 令牌 {token.label} 的 PIN 不正确；为免令牌被锁定，"
                           "改正 ARCHIVE_PKCS11_PIN_FILE 后需重启服务才会再次尝试", token=token.label) from exc
    except p11e.PinLocked as exc:
        raise _hsm_problem("pkcs11_pin_locked", f"PKCS#11 令牌 {token.label} 的 PIN 已被锁定，请由安全管理员解锁",
                           token=token.label) from exc
    except p11e.PKCS11Error as exc:
        raise _hsm_problem("pkcs11_error", f"无法登录 PKCS#11 令牌 {token.label}：{type(exc).__name__} {exc}",
                           token=token.label) from exc
    try:
        if not list(session.get_objects({pkcs11.Attribute.CLASS: pkcs11.ObjectClass.PRIVATE_KEY,
                                         pkcs11.Attribute.LABEL: key_label})):
            raise _hsm_problem("pkcs11_key_missing", f"PKCS#11 令牌 {token.label} 中没有标签为 {key_label} 的私钥"
                               "（ARCHIVE_PKCS11_KEY_LABEL）", token=token.label, key_label=key_label)
        label = cert_label or key_label
        if not list(session.get_objects({pkcs11.Attribute.CLASS: pkcs11.ObjectClass.CERTIFICATE,
                                         pkcs11.Attribute.LABEL: label})):
            raise _hsm_problem("pkcs11_cert_missing", f"PKCS#11 令牌 {token.label} 中没有标签为 {label} 的证书"
                               "（ARCHIVE_PKCS11_CERT_LABEL，默认与私钥标签相同）", token=token.label, cert_label=label)
        extra = [c for p in chain for c in load_certificates(Path(p))]
        return HsmSigner(session, key_label=key_label, cert_label=label, chain=extra)
    except CertificateProblem:
        session.close()
        raise
    except (p11e.PKCS11Error, Exception) as exc:
        session.close()
        raise _hsm_problem("pkcs11_error", f"读取 PKCS#11 令牌 {token.label} 中的密钥或证书出错："
                           f"{type(exc).__name__} {exc}", token=token.label) from exc


# --- the checks made at start ------------------------------------------------------------------------


def _fingerprint(cert: x509.Certificate) -> bytes:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def check_chain(cert: x509.Certificate, chain: Sequence[x509.Certificate], roots: Sequence[x509.Certificate],
                at: dt.datetime | None = None) -> list[x509.Certificate]:
    """The path from ``cert`` through ``chain`` to one of ``roots`` (signatures and validity), or
    ``signer_chain_untrusted`` / ``certificate_expired`` naming where it breaks."""
    at = at or dt.datetime.now(dt.UTC)
    trusted = {_fingerprint(r) for r in roots}
    subject = cert.subject.rfc4514_string()
    path, current = [cert], cert
    for _ in range(10):
        if _fingerprint(current) in trusted:
            return path
        root = next((r for r in roots if _issued_by(current, r)), None)
        if root is not None:
            return [*path, root]
        issuer = next((c for c in chain if c not in path and _issued_by(current, c)), None)
        if issuer is None:
            self_signed = [c.subject.rfc4514_string() for c in chain if c.issuer == c.subject]
            hint = (f"；证书链中的根证书 {'、'.join(self_signed)} 不在信任列表中，请把它复制到证书目录的 trust/ 下"
                    if self_signed else
                    "；请在 ARCHIVE_SIGNER_CHAIN 中提供中间证书，并把根证书放入证书目录的 trust/ 下")
            raise CertificateProblem(
                f"签章证书（{subject}）不能追溯到受信任的根证书：找不到 {current.issuer.rfc4514_string()} 的证书{hint}",
                code="signer_chain_untrusted", detail={"subject": subject, "missing": current.issuer.rfc4514_string()})
        if not issuer.not_valid_before_utc <= at <= issuer.not_valid_after_utc:
            raise CertificateProblem(
                f"签章证书链中的 {issuer.subject.rfc4514_string()} 有效期为 {issuer.not_valid_before_utc:%Y-%m-%d}"
                f" 至 {issuer.not_valid_after_utc:%Y-%m-%d}，当前不在有效期内", code="certificate_expired",
                detail={"subject": issuer.subject.rfc4514_string()})
        path.append(issuer)
        current = issuer
    raise CertificateProblem(f"签章证书（{subject}）的证书链过长", code="signer_chain_untrusted",
                             detail={"subject": subject})


def _signer_chain(signer: KeySigner | HsmSigner) -> list[x509.Certificate]:
    return [x509.load_der_x509_certificate(c.dump()) for c in (signer.cert_registry or ())]


def check_key_matches(signer: KeySigner | HsmSigner) -> None:
    """The signer's key makes signatures its certificate verifies (``signer_key_mismatch``)."""
    if isinstance(signer, KeySigner):
        return  # make_signer compared the public keys already
    pub = signer.certificate.public_key()
    try:
        sig = signer.sign_probe()
        if isinstance(pub, rsa.RSAPublicKey):
            pub.verify(sig, KEY_PROBE, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(pub, ec.EllipticCurvePublicKey):
            from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

            half = len(sig) // 2
            der = encode_dss_signature(int.from_bytes(sig[:half], "big"), int.from_bytes(sig[half:], "big"))
            pub.verify(der, KEY_PROBE, ec.ECDSA(hashes.SHA256()))
        else:
            raise InvalidSignature
    except InvalidSignature as exc:
        raise CertificateProblem("PKCS#11 令牌中的私钥与签章证书不匹配，请检查 ARCHIVE_PKCS11_KEY_LABEL 与证书",
                                 code="signer_key_mismatch",
                                 detail={"subject": signer.certificate.subject.rfc4514_string()}) from exc


def verify_signer(signer: KeySigner | HsmSigner, roots: Sequence[x509.Certificate], info: SignerInfo, *,
                  at: dt.datetime | None = None, check_key: bool = True) -> SignerInfo:
    """Everything checked at start and by /readyz: validity and key usage, the chain to a trusted root, the key
    matching the certificate (``check_key``: once, at load; it costs an HSM signature); a certificate expiring
    within 30 days is a warning in ``info``."""
    at = at or dt.datetime.now(dt.UTC)
    cert = signer.certificate
    check_signing_certificate(cert, at)
    check_chain(cert, _signer_chain(signer), roots, at)
    if check_key:
        check_key_matches(signer)
    info.warnings = [w for w in info.warnings if not w.startswith("签章证书将于")]
    if cert.not_valid_after_utc - RENEW_BEFORE <= at:
        info.warnings.append(f"签章证书将于 {cert.not_valid_after_utc:%Y-%m-%d} 过期，请尽快更换")
    return info


CenterSigner = KeySigner | HsmSigner
"""The center's signer, however its key is kept."""
