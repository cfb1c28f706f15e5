"""The application's wiring: build the object store, search index, time-stamp client and virus scanner from the
settings. storage/, signing/ and search/ take plain arguments and know nothing of the settings; this is the one
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
