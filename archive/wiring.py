"""The application's wiring: build the object store, search index, signer, time-stamp client and virus scanner from
the settings. storage/, signing/ and search/ take plain arguments and know nothing of the settings; this is the one
place that reads them for those packages (docs/decisions/0015-package-boundaries.md). :class:`archive.context.Context`
builds each once, lazily.
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archive.checks.security import Clamd, Clamscan, Scanner
from archive.errors import ConfigError
from archive.settings import Settings
from storage.filesystem import FilesystemStore
from storage.replicated import ReplicatedStore

if TYPE_CHECKING:
    from pyhanko.sign.timestamps import TimeStamper

    from search.base import SearchIndex
    from signing.certificates import KeySigner
    from signing.keys import HsmSigner, SignerInfo
    from storage.base import ObjectStore
    from storage.s3 import S3Store


def build_store(settings: Settings) -> ObjectStore:
    """filesystem: ``objects_path``; s3: the ``s3_*`` settings; replicated: filesystem + replica."""
    if settings.storage == "filesystem":
        return FilesystemStore(settings.objects_path)
    if settings.storage == "s3":
        return build_s3_store(settings)
    if settings.replica == "s3":
        return ReplicatedStore(FilesystemStore(settings.objects_path), build_s3_store(settings))
    if settings.replica_path is None:
        raise ConfigError("ARCHIVE_STORAGE=replicated 且 ARCHIVE_REPLICA=filesystem 时必须设置 ARCHIVE_REPLICA_PATH"
                          "（最好在另一块磁盘或另一台机器的挂载上）", code="invalid_setting",
                          detail=["ARCHIVE_REPLICA_PATH"])
    if settings.replica_path.absolute() == settings.objects_path.absolute():
        raise ConfigError("ARCHIVE_REPLICA_PATH 不能与主存储目录相同", code="invalid_setting",
                          detail=["ARCHIVE_REPLICA_PATH"])
    return ReplicatedStore(FilesystemStore(settings.objects_path), FilesystemStore(settings.replica_path))


def build_s3_store(settings: Settings) -> S3Store:
    from storage.s3 import S3Store  # optional backend (minio), loaded only when the settings choose it

    endpoint, secure = settings.s3_endpoint, settings.s3_secure
    for scheme, tls in (("https://", True), ("http://", False)):
        if endpoint.startswith(scheme):
            endpoint, secure = endpoint.removeprefix(scheme).rstrip("/"), tls
    return S3Store(endpoint, settings.s3_access_key, settings.s3_secret_key, settings.s3_bucket,
                   secure=secure, region=settings.s3_region, retention_mode=settings.s3_retention_mode,
                   ca_file=settings.s3_ca_file, max_retain_until=_midnight_utc(settings.s3_max_retain_until))


def _midnight_utc(day: date | None) -> datetime | None:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) if day else None


def build_index(settings: Settings, **kwargs: Any) -> SearchIndex:
    """embedded: tantivy under ``index_dir``; elasticsearch: the ``es_*`` settings."""
    if settings.index == "embedded":
        from search.embedded import EmbeddedIndex  # the backends (tantivy, elasticsearch): the one chosen

        return EmbeddedIndex(settings.index_dir, **kwargs)
    from search.elasticsearch import ElasticsearchIndex

    return ElasticsearchIndex(
        settings.es_url, prefix=settings.es_index_prefix, username=settings.es_username,
        password=settings.es_password, ca_file=str(settings.es_ca_file) if settings.es_ca_file else None, **kwargs)


def timestamper_from_settings(settings: Settings, timeout: float | None = None) -> TimeStamper | None:
    """The configured TSA client, or None when no TSA URL is set (signatures are then PAdES B-B)."""
    from signing.tsa import DEFAULT_TIMEOUT, http_timestamper  # pyhanko: only when the context is asked for it

    if not settings.tsa_url:
        return None
    return http_timestamper(settings.tsa_url, DEFAULT_TIMEOUT if timeout is None else timeout)


def scanner_from_settings(settings: Settings) -> Scanner | None:
    """The configured ClamAV (clamd first, else clamscan), or None when neither is set."""
    if settings.clamd_socket:
        return Clamd(settings.clamd_socket, settings.clamav_timeout)
    if settings.clamscan:
        binary = shutil.which(str(settings.clamscan)) or str(settings.clamscan)
        return Clamscan(Path(binary), settings.clamav_database, settings.clamav_timeout)
    return None


# --- the center's signer ---------------------------------------------------------------------------------------------

DEV_PKI_FORBIDDEN = ("生产环境（ARCHIVE_ENVIRONMENT=production）没有配置签章证书：请设置 ARCHIVE_SIGNER_CERT"
                     "（及 ARCHIVE_SIGNER_KEY），或 ARCHIVE_SIGNER=pkcs11 使用密码设备；生产环境不使用开发证书")
SIGNER_MISSING = ("签章证书未配置：运行 archive init 生成开发证书，或设置 ARCHIVE_SIGNER_CERT，"
                  "或将中心的证书放入 ARCHIVE_PKI_DIR（当前：{}）")


def signer_setting(settings: Settings) -> str:
    """Which setting names the signer, for messages asking to replace it."""
    if settings.signer == "pkcs11":
        return f"ARCHIVE_SIGNER=pkcs11：令牌 {settings.pkcs11_token_label or settings.pkcs11_slot or ''}"
    if settings.signer_cert is not None:
        return f"ARCHIVE_SIGNER_CERT：{settings.signer_cert}"
    return f"证书目录 ARCHIVE_PKI_DIR：{settings.pki_path}"


def _secret_file(path: Path, setting: str) -> str:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"无法读取 {setting} 指定的文件 {path}：{exc}", code="invalid_setting",
                          detail=[setting]) from exc
    return lines[0] if lines else ""


def signer_passphrase(settings: Settings) -> bytes | None:
    """ARCHIVE_SIGNER_KEY_PASSPHRASE_FILE's first line, else ARCHIVE_SIGNER_KEY_PASSPHRASE, else None."""
    if settings.signer_key_passphrase_file is not None:
        value = _secret_file(settings.signer_key_passphrase_file, "ARCHIVE_SIGNER_KEY_PASSPHRASE_FILE")
    elif settings.signer_key_passphrase is not None:
        value = settings.signer_key_passphrase.get_secret_value()
    else:
        return None
    return value.encode("utf-8") or None


def build_signer(settings: Settings) -> tuple[KeySigner | HsmSigner, SignerInfo]:
    """The center's signer, checked (validity, key usage, chain to a root of ``<pki_dir>``, key matches certificate).

    ARCHIVE_SIGNER=pkcs11: the key in a token (ARCHIVE_PKCS11_*). file: ARCHIVE_SIGNER_CERT (+ _KEY, _CHAIN,
    passphrase); without it the development PKI in ``pki_dir``, which production refuses (``signer_missing``).
    """
    from signing.certificates import DevPki, load_trust_roots, pki_signer_files
    from signing.errors import CertificateProblem
    from signing.keys import SignerInfo, key_file_encrypted, load_file_signer, open_pkcs11_signer, verify_signer

    production = settings.environment == "production"
    chain = [settings.signer_chain] if settings.signer_chain is not None else []
    signer: KeySigner | HsmSigner
    if settings.signer == "pkcs11":
        missing = [name for name, value in (("ARCHIVE_PKCS11_MODULE", settings.pkcs11_module),
                                            ("ARCHIVE_PKCS11_KEY_LABEL", settings.pkcs11_key_label),
                                            ("ARCHIVE_PKCS11_PIN_FILE", settings.pkcs11_pin_file)) if not value]
        if missing:
            raise ConfigError(f"ARCHIVE_SIGNER=pkcs11 时必须设置 {'、'.join(missing)}", code="invalid_setting",
                              detail=missing)
        assert settings.pkcs11_module and settings.pkcs11_key_label and settings.pkcs11_pin_file
        pin = _secret_file(settings.pkcs11_pin_file, "ARCHIVE_PKCS11_PIN_FILE")
        signer = open_pkcs11_signer(settings.pkcs11_module, key_label=settings.pkcs11_key_label, pin=pin,
                                    token_label=settings.pkcs11_token_label, slot=settings.pkcs11_slot,
                                    cert_label=settings.pkcs11_cert_label, chain=chain)
        info = SignerInfo("pkcs11")
    else:
        passphrase = signer_passphrase(settings)
        if settings.signer_cert is not None:
            cert, key, backend = settings.signer_cert, settings.signer_key, "file"
        elif production:
            raise CertificateProblem(DEV_PKI_FORBIDDEN, code="signer_missing",
                                     detail={"setting": "ARCHIVE_SIGNER_CERT", "environment": "production"})
        else:
            files = pki_signer_files(settings.pki_path)
            if files is None:
                raise CertificateProblem(SIGNER_MISSING.format(settings.pki_path), code="signer_missing",
                                         detail={"setting": "ARCHIVE_SIGNER_CERT", "pki_dir": str(settings.pki_path)})
            (cert, key), backend = files, "dev"
            chain = [DevPki(settings.pki_path).ca_cert]
        signer = load_file_signer(cert, key, chain=chain, passphrase=passphrase)
        info = SignerInfo(backend, key_encrypted=key_file_encrypted(key or cert))
        if not info.key_encrypted:
            if settings.signer_require_encrypted_key:
                raise CertificateProblem(
                    f"签章私钥文件 {key or cert} 没有加密：请用口令加密（openssl pkcs8 -topk8 -v2 aes-256-cbc）并设置 "
                    "ARCHIVE_SIGNER_KEY_PASSPHRASE_FILE，或关闭 ARCHIVE_SIGNER_REQUIRE_ENCRYPTED_KEY",
                    code="signer_key_unencrypted", detail={"path": str(key or cert)})
            if production:
                info.warnings.append(f"签章私钥文件 {key or cert} 没有加密，"
                                     "建议加密并设置 ARCHIVE_SIGNER_KEY_PASSPHRASE_FILE")
    if production and DevPki(settings.pki_path).ca_key.exists():
        info.warnings.append(f"证书目录 {settings.pki_path} 中有开发用根证书私钥 ca.key.pem，生产环境应删除开发证书")
    try:
        verify_signer(signer, load_trust_roots(settings.pki_path), info)
    except BaseException:
        if hasattr(signer, "close"):
            signer.close()
        raise
    return signer, info

