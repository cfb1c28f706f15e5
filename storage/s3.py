"""The MinIO/S3 store: a bucket with object lock, COMPLIANCE (or GOVERNANCE) retention, legal hold.

Every new object is verified against its declared size and digests *before* it becomes visible:
a single PUT is sent only after the whole body has been read and checked; a multipart upload is
completed only after the last part has been checked, and aborted otherwise. The SHA-256 is also sent
as ``x-amz-checksum-sha256`` (object-lock PUTs need a checksum header; minio-py adds Content-MD5
only over HTTPS) so a real MinIO checks it again; multipart parts carry Content-MD5.

Retention and legal hold are read back from ``stat_object`` headers (moto has no GetObjectRetention)
and re-applied when the server did not keep them (moto ignores lock headers on multipart uploads).
Shortening retention and deleting retained or held objects are refused by :class:`BackendStore`
before the server is asked, because moto would allow them.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal

import certifi
import urllib3
from minio import Minio
from minio.datatypes import Part
from minio.error import InvalidResponseError, S3Error, ServerError
from minio.helpers import check_bucket_name, genheaders
from minio.retention import COMPLIANCE, GOVERNANCE, Retention

from storage.base import (
    BackendStore,
    IntegrityFailure,
    ObjectInfo,
    ObjectLocked,
    StoreUnavailable,
    Upload,
    not_found,
    range_not_satisfiable,
)
from storage.errors import StorageConfigError

MIN_PART_SIZE = 5 * 1024 * 1024
_NOT_FOUND = {"NoSuchKey", "NoSuchObject", "NoSuchVersion", "ResourceNotFound"}
_AUTH = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken"}


class S3Store(BackendStore):
    backend = "s3"

    def __init__(self, endpoint: str, access_key: str, secret_key: str, bucket: str, *,
                 secure: bool = True, region: str = "us-east-1",
                 retention_mode: Literal["COMPLIANCE", "GOVERNANCE"] = "COMPLIANCE",
                 ca_file: Path | str | None = None, part_size: int = 16 * 1024 * 1024,
                 connect_timeout: float = 3.0, read_timeout: float = 60.0, retries: int = 3,
                 backoff: float = 0.2) -> None:
        if retention_mode not in (COMPLIANCE, GOVERNANCE):
            raise StorageConfigError(f"对象锁定模式 {retention_mode!r} 不支持，应为 COMPLIANCE 或 GOVERNANCE",
                              code="invalid_setting")
        if part_size < MIN_PART_SIZE:
            raise StorageConfigError(f"分片大小至少 {MIN_PART_SIZE} 字节（S3 的下限）", code="invalid_setting")
        self.endpoint, self.bucket, self.secure = endpoint, bucket, secure
        self.retention_mode, self.part_size = retention_mode, part_size
        http = urllib3.PoolManager(
            maxsize=10,
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            cert_reqs="CERT_REQUIRED",
            ca_certs=str(ca_file) if ca_file else os.environ.get("SSL_CERT_FILE") or certifi.where(),
            retries=urllib3.Retry(total=retries, backoff_factor=backoff, backoff_max=2.0,
                                  status_forcelist=(500, 502, 503, 504)),
        )
        try:
            self._client = Minio(endpoint, access_key=access_key or None, secret_key=secret_key or None,
                                 secure=secure, region=region, http_client=http)
            check_bucket_name(bucket, strict=True)
        except ValueError as exc:
            raise StorageConfigError(
                f"对象存储配置有误（ARCHIVE_S3_ENDPOINT={endpoint!r}，ARCHIVE_S3_BUCKET={bucket!r}）：{exc}",
                code="invalid_setting") from exc
        self._bucket_ready = False

    @property
    def location(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.endpoint}/{self.bucket}"

    # --- errors ---
    @contextmanager
    def _errors(self, key: str | None = None) -> Iterator[None]:
        try:
            yield
        except S3Error as exc:
            if key is not None and exc.code in _NOT_FOUND:
                raise not_found(key) from None
            if exc.code == "NoSuchBucket":
                self._bucket_ready = False
            if exc.code in _AUTH:
                raise StoreUnavailable(
                    f"对象存储 {self.location} 拒绝访问（{exc.code}）；"
                    "请检查 ARCHIVE_S3_ACCESS_KEY 与 ARCHIVE_S3_SECRET_KEY",
                    detail={"endpoint": self.endpoint, "code": exc.code}) from exc
            raise StoreUnavailable(f"对象存储 {self.location} 返回错误 {exc.code}：{exc.message}",
                                   detail={"endpoint": self.endpoint, "code": exc.code}) from exc
        except (ServerError, InvalidResponseError) as exc:
            raise StoreUnavailable(f"对象存储 {self.location} 暂时无法处理请求：{exc}；请稍后重试",
                                   detail={"endpoint": self.endpoint}) from exc
        except urllib3.exceptions.HTTPError as exc:
            reason = getattr(exc, "reason", None) or exc
            if isinstance(reason, urllib3.exceptions.SSLError):
                raise StoreUnavailable(
                    f"与对象存储 {self.location} 的 TLS 握手失败（{reason}）；请检查服务器证书，"
                    "以及 ARCHIVE_S3_CA_FILE（自签发证书的 CA）与 ARCHIVE_S3_SECURE 设置",
                    detail={"endpoint": self.endpoint, "reason": str(reason)}) from exc
            raise StoreUnavailable(
                f"对象存储 {self.location} 无法连接（{type(reason).__name__}）；请确认 MinIO 服务已启动、"
                "网络可达，且 ARCHIVE_S3_ENDPOINT / ARCHIVE_S3_SECURE 配置正确",
                detail={"endpoint": self.endpoint, "reason": str(reason)}) from exc

    def _ready(self) -> None:
        if self._bucket_ready:
            return
        with self._errors():
            if not self._client.bucket_exists(self.bucket):
                try:
                    self._client.make_bucket(self.bucket, object_lock=True)
                except S3Error as exc:
                    if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise
            try:
                self._client.get_object_lock_config(self.bucket)
            except S3Error as exc:
                if exc.code != "ObjectLockConfigurationNotFoundError":
                    raise
                raise StorageConfigError(
                    f"存储桶 {self.bucket} 未启用对象锁定（object lock），不能存放归档对象；"
                    "请换一个桶名让系统新建，或由管理员新建启用对象锁定的桶",
                    code="bucket_without_object_lock", detail={"bucket": self.bucket}) from exc
        self._bucket_ready = True

    # --- mechanics ---
    def _stat(self, key: str) -> ObjectInfo:
        with self._errors(key):
            st = self._client.stat_object(self.bucket, key)
        meta = st.metadata or {}
        sha256 = meta.get("x-amz-meta-sha256")
        if not sha256:
            raise IntegrityFailure(f"对象 {key} 缺少 SHA-256 元数据，不是经本系统写入的归档对象",
                                   detail={"key": key})
        until = meta.get("x-amz-object-lock-retain-until-date")
        return ObjectInfo(key=key, size=int(st.size or 0), sha256=sha256, sm3=meta.get("x-amz-meta-sm3") or None,
                          retain_until=_parse_time(until) if until else None,
                          legal_hold=str(meta.get("x-amz-object-lock-legal-hold", "")).upper() == "ON",
                          media_type=st.content_type or "application/octet-stream")

    def _write_new(self, upload: Upload, info: ObjectInfo) -> ObjectInfo | None:
        user: dict[str, str | list[str] | tuple[str]] = {"sha256": info.sha256}
        if info.sm3:
            user["sm3"] = info.sm3
        retention = Retention(self.retention_mode, info.retain_until) if info.retain_until else None
        with self._errors(info.key):
            if info.size <= self.part_size:
                body = b"".join(upload.chunks())  # verified before anything is sent
                checksum = base64.b64encode(bytes.fromhex(info.sha256)).decode()
                self._client.put_object(
                    self.bucket, info.key, io.BytesIO(body), len(body), content_type=info.media_type,
                    metadata=user | {"x-amz-sdk-checksum-algorithm": "SHA256", "x-amz-checksum-sha256": checksum},
                    retention=retention, legal_hold=info.legal_hold, part_size=self.part_size)
            else:
                headers = genheaders(user, None, None, retention, info.legal_hold)
                headers["Content-Type"] = info.media_type
                self._multipart(upload, info.key, headers)
        stored = self._stat(info.key)
        if _short_of(stored, info):  # moto drops lock headers on multipart uploads
            if info.retain_until and (stored.retain_until is None or stored.retain_until < info.retain_until):
                self._write_retention(stored, info.retain_until)
            if info.legal_hold and not stored.legal_hold:
                self._write_legal_hold(stored, True)
            stored = self._stat(info.key)
        if _short_of(stored, info):
            raise StoreUnavailable(f"对象存储未能保存对象 {info.key} 的保管期限或法律保全；请检查桶的对象锁定配置",
                                   detail={"key": info.key, "stored": stored.to_dict()})
        return stored

    def _multipart(self, upload: Upload, key: str, headers: dict[str, Any]) -> None:
        upload_id: str | None = self._client._create_multipart_upload(self.bucket, key, headers)
        try:
            parts: list[Part] = []
            buf = bytearray()
            for chunk in upload.chunks():  # the last chunk arrives only if size and digests are right
                buf += chunk
                while len(buf) >= self.part_size:
                    parts.append(self._upload_part(key, str(upload_id), len(parts) + 1, bytes(buf[:self.part_size])))
                    del buf[:self.part_size]
            if buf:
                parts.append(self._upload_part(key, str(upload_id), len(parts) + 1, bytes(buf)))
            self._client._complete_multipart_upload(self.bucket, key, str(upload_id), parts)
            upload_id = None
        finally:
            if upload_id is not None:
                with suppress(Exception):
                    self._client._abort_multipart_upload(self.bucket, key, upload_id)

    def _upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> Part:
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        etag = self._client._upload_part(self.bucket, key, data, {"Content-MD5": md5}, upload_id, number)
        return Part(number, etag)

    def _open(self, key: str, offset: int, length: int | None) -> BinaryIO:
        with self._errors(key):
            try:
                response = self._client.get_object(self.bucket, key, offset=offset, length=length or 0)
            except S3Error as exc:
                if exc.code == "InvalidRange":
                    raise range_not_satisfiable(key, offset) from None
                raise
        return _ResponseStream(response, self)  # type: ignore[return-value]  # duck-typed BinaryIO

    def _list(self, prefix: str) -> Iterator[str]:
        with self._errors():
            for obj in self._client.list_objects(self.bucket, prefix=prefix or None, recursive=True):
                if obj.object_name and not obj.is_dir:
                    yield obj.object_name

    def _write_retention(self, info: ObjectInfo, until: datetime) -> None:
        with self._errors(info.key):
            current = (self._client.stat_object(self.bucket, info.key).metadata or {}).get("x-amz-object-lock-mode")
            mode = COMPLIANCE if current == COMPLIANCE else self.retention_mode  # never downgrade
            self._client.set_object_retention(self.bucket, info.key, Retention(mode, until))

    def _write_legal_hold(self, info: ObjectInfo, hold: bool) -> None:
        with self._errors(info.key):
            if hold:
                self._client.enable_object_legal_hold(self.bucket, info.key)
            else:
                self._client.disable_object_legal_hold(self.bucket, info.key)

    def _remove(self, key: str) -> None:
        """Remove every version: a delete without a version id only hides a locked object."""
        with self._errors(key):
            versions = [o.version_id for o in self._client.list_objects(
                self.bucket, prefix=key, recursive=True, include_version=True) if o.object_name == key]
            for version in versions or [None]:
                try:
                    self._client.remove_object(self.bucket, key, version_id=version)
                except S3Error as exc:
                    if exc.code == "AccessDenied":
                        raise ObjectLocked(f"对象存储拒绝删除对象 {key}：服务器端的对象锁定仍然有效",
                                           detail={"key": key, "version_id": version}) from exc
                    raise

    def health(self) -> dict[str, Any]:
        try:
            self._ready()
        except (StoreUnavailable, StorageConfigError) as exc:
            return {"ok": False, "backend": self.backend, "detail": exc.message}
        return {"ok": True, "backend": self.backend,
                "detail": f"{self.location}（对象锁定已启用，模式 {self.retention_mode}）"}


class _ResponseStream(io.RawIOBase):
    """An object's body; transport errors become :class:`StoreUnavailable`; close releases it."""

    def __init__(self, response: Any, store: S3Store) -> None:
        self._response, self._store = response, store

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        with self._store._errors():
            data: bytes = self._response.read(None if n is None or n < 0 else n)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._response.close()
            self._response.release_conn()
        super().close()


def _short_of(stored: ObjectInfo, wanted: ObjectInfo) -> bool:
    """True when the server keeps less retention or hold than was asked for."""
    until = wanted.retain_until
    return bool(until and (stored.retain_until is None or stored.retain_until < until)) or (
        wanted.legal_hold and not stored.legal_hold)


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
