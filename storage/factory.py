"""Build the configured object store from the settings object (ARCHIVE_STORAGE and friends)."""

from __future__ import annotations

from archive.errors import ConfigError
from archive.settings import Settings
from storage.base import ObjectStore
from storage.filesystem import FilesystemStore
from storage.replicated import ReplicatedStore
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
    endpoint, secure = settings.s3_endpoint, settings.s3_secure
    for scheme, tls in (("https://", True), ("http://", False)):
        if endpoint.startswith(scheme):
            endpoint, secure = endpoint.removeprefix(scheme).rstrip("/"), tls
    return S3Store(endpoint, settings.s3_access_key, settings.s3_secret_key, settings.s3_bucket,
                   secure=secure, region=settings.s3_region, retention_mode=settings.s3_retention_mode,
                   ca_file=settings.s3_ca_file)
