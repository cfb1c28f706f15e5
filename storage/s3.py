"""The MinIO/S3 store: a bucket with object lock, COMPLIANCE (or GOVERNANCE) retention, legal hold.

Every new object is verified against its declared size and digests *before* it becomes visible:
a single PUT is sent only after the whole body has been read and checked; a multipart upload (minio's
public ``put_object`` with a part size, fed from the verifying stream) is completed only after the last
part has been checked, and aborted otherwise. The SHA-256 is also sent as ``x-amz-checksum-sha256``
(object-lock PUTs need a checksum header; minio-py adds Content-MD5 only over HTTPS) so the server
checks it again; over plain HTTP every part's payload SHA-256 is signed and checked by the server.

Retention and legal hold are read back from ``stat_object`` headers (Ceph RGW answers retain-until with
nanoseconds, which minio's ``get_object_retention`` cannot parse) and re-applied when the server did not
keep them. Shortening retention and deleting retained or held objects are refused by :class:`BackendStore`
before the server is asked.

Two limits of real servers (feasibility.md §11, measured on Ceph RGW):

- **Lock dates are capped** at ``max_retain_until`` (default 2106-01-01): RGW stores retain-until in 32 bits,
  so 2107-01-01 reads back as 1970-11-24. A later request is capped (and logged); the archive extends
  capped locks before they run out (``archive storage extend-locks``).
- **Reads name the version that was written.** An object-lock bucket is versioned and a plain PUT to a
  locked key succeeds, adding a newer version. Content keys are written once, so the store pins every
  read, stat, retention and hold to the key's *oldest* live version (cached per key, bounded);
  :meth:`S3Store.version_problems` reports the extra versions and delete markers for ``storage verify``.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal

import certifi
import urllib3
from minio import Minio
from minio.error import InvalidResponseError, S3Error, ServerError
from minio.helpers import check_bucket_name
from minio.retention import COMPLIANCE, GOVERNANCE, Retention

from storage.base import (
    DEFAULT_MEDIA_TYPE,
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
# Ceph RGW keeps retain-until in 32 bits (wraps after 2106-02-07); a margin below that.
DEFAULT_MAX_RETAIN_UNTIL = datetime(2106, 1, 1, tzinfo=UTC)
VERSION_CACHE = 100_000  # keys whose written version id is remembered (≈ 150 bytes each)
log = logging.getLogger(__name__)
_NOT_FOUND = {"NoSuchKey", "NoSuchObject", "NoSuchVersion", "ResourceNotFound"}
_AUTH = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken"}


class S3Store(BackendStore):
    backend = "s3"

    def __init__(self, endpoint: str, access_key: str, secret_key: str, bucket: str, *,
                 secure: bool = True, region: str = "us-east-1",
                 retention_mode: Literal["COMPLIANCE", "GOVERNANCE"] = "COMPLIANCE",
                 ca_file: Path | str | None = None, part_size: int = 16 * 1024 * 1024,
                 connect_timeout: float = 3.0, read_timeout: float = 60.0, retries: int = 3,
                 backoff: float = 0.2, max_retain_until: datetime | None = DEFAULT_MAX_RETAIN_UNTIL) -> None:
        if max_retain_until is not None and (max_retain_until.tzinfo is None
                                             or max_retain_until <= datetime.now(UTC)):
            raise StorageConfigError(
                f"对象锁定日期上限 {max_retain_until} 必须带时区且在未来（ARCHIVE_S3_MAX_RETAIN_UNTIL）",
                code="invalid_setting", detail={"max_retain_until": str(max_retain_until)})
        self.max_retain_until = max_retain_until.astimezone(UTC) if max_retain_until else None
        self._versions: OrderedDict[str, str | None] = OrderedDict()
        self._versions_guard = threading.Lock()
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

    # --- the lock-date cap ---
    def retain_limit(self) -> datetime | None:
        return self.max_retain_until

    def _cap(self, key: str, until: datetime | None) -> datetime | None:
        if until is None or until.tzinfo is None or self.max_retain_until is None or until <= self.max_retain_until:
            return until  # naive dates are refused by the shared checks
        log.warning("s3: retain-until of %s capped at %s (requested %s; the server keeps no later date); "
                    "archive storage extend-locks extends it before it runs out",
                    key, self.max_retain_until.isoformat(), until.isoformat())
        return self.max_retain_until

    def put(self, key: str, data: BinaryIO, *, size: int, sha256: str, sm3: str | None = None,
            retain_until: datetime | None = None, legal_hold: bool = False,
            media_type: str = DEFAULT_MEDIA_TYPE, sm3_computed: bool = False) -> ObjectInfo:
        return super().put(key, data, size=size, sha256=sha256, sm3=sm3, retain_until=self._cap(key, retain_until),
                           legal_hold=legal_hold, media_type=media_type, sm3_computed=sm3_computed)

    def set_retention(self, key: str, until: datetime) -> ObjectInfo:
        return super().set_retention(key, self._cap(key, until) or until)

    # --- the written version ---
    def _listed_versions(self, key: str) -> list[Any]:
        """Every version and delete marker of exactly ``key``, newest first (the S3 listing order)."""
        with self._errors(key):
            return [o for o in self._client.list_objects(self.bucket, prefix=key, recursive=True,
                                                         include_version=True) if o.object_name == key]

    def _version(self, key: str) -> str | None:
        """The version id of the key's oldest live version: the one this store wrote (content keys are
        written once; a later PUT to the same key only adds a newer version)."""
        with self._versions_guard:
            if key in self._versions:
                self._versions.move_to_end(key)
                return self._versions[key]
        live = [(o.last_modified, -i, o.version_id) for i, o in enumerate(self._listed_versions(key))
                if not o.is_delete_marker]
        if not live:
            raise not_found(key)
        version = min(live, key=lambda v: (v[0] is None, v[0] or datetime.min.replace(tzinfo=UTC), v[1]))[2]
        self._remember(key, version)
        return version

    def _remember(self, key: str, version: str | None) -> None:
        with self._versions_guard:
            self._versions[key] = version
            self._versions.move_to_end(key)
            while len(self._versions) > VERSION_CACHE:
                self._versions.popitem(last=False)

    def _forget(self, key: str) -> None:
        with self._versions_guard:
            self._versions.pop(key, None)

    @contextmanager
    def _pinned(self, key: str) -> Iterator[str | None]:
        """The written version of ``key``; a cached id that vanished (the object was removed elsewhere) is
        forgotten, so the next call looks again."""
        version = self._version(key)
        try:
            yield version
        except S3Error as exc:
            if exc.code in _NOT_FOUND:
                self._forget(key)
            raise

    def version_problems(self, key: str) -> list[tuple[str, str]]:
        listed = self._listed_versions(key)
        live = [o for o in listed if not o.is_delete_marker]
        markers = len(listed) - len(live)
        problems = []
        if len(live) > 1:
            problems.append(("extra_versions",
                             f"对象键下另有 {len(live) - 1} 个后写入的版本（有人绕过本系统向已锁定的键写入）；"
                             "本系统仍读取最早写入的版本，请核查写入来源"))
        if markers:
            problems.append(("delete_marker",
                             f"对象键上有 {markers} 个删除标记（delete marker），不带版本号的读取看不到原对象；"
                             "原版本仍受锁定保护，请核查删除来源"))
        return problems

    # --- mechanics ---
    def _stat(self, key: str) -> ObjectInfo:
        with self._errors(key), self._pinned(key) as version:
            st = self._client.stat_object(self.bucket, key, version_id=version)
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
                result = self._client.put_object(
                    self.bucket, info.key, io.BytesIO(body), len(body), content_type=info.media_type,
                    metadata=user | {"x-amz-sdk-checksum-algorithm": "SHA256", "x-amz-checksum-sha256": checksum},
                    retention=retention, legal_hold=info.legal_hold, part_size=self.part_size)
            else:
                # Parts go up as the verifying stream yields them, one at a time; the stream raises before it
                # hands out the last bytes when size or digests are wrong, and put_object then aborts the upload.
                result = self._client.put_object(
                    self.bucket, info.key, _ChunkReader(upload.chunks()), info.size,  # type: ignore[arg-type]
                    content_type=info.media_type, metadata=user, retention=retention,
                    legal_hold=info.legal_hold, part_size=self.part_size, num_parallel_uploads=1)
        self._remember(info.key, result.version_id)
        stored = self._stat(info.key)
        if _short_of(stored, info):  # a server that dropped lock headers (some do on multipart uploads)
            with suppress(StoreUnavailable):
                if info.retain_until and (stored.retain_until is None or stored.retain_until < info.retain_until):
                    self._write_retention(stored, info.retain_until)
                if info.legal_hold and not stored.legal_hold:
                    self._write_legal_hold(stored, True)
            stored = self._stat(info.key)
        if _short_of(stored, info):
            removed = self._discard_unlocked(stored, result.version_id)
            raise StoreUnavailable(
                f"对象存储未能保存对象 {info.key} 的保管期限或法律保全（要求至 {_day(info.retain_until)}，"
                f"服务器保存为 {_day(stored.retain_until)}）"
                + ("，已删除刚写入的版本" if removed else "")
                + "；请检查桶的对象锁定配置与 ARCHIVE_S3_MAX_RETAIN_UNTIL",
                detail={"key": info.key, "stored": stored.to_dict(), "removed": removed})
        return stored

    def _discard_unlocked(self, stored: ObjectInfo, version: str | None) -> bool:
        """Remove a just-written version whose lock did not take (none, or wrapped into the past), so no
        uncatalogued object is left that only looks locked; a version still locked stays for gc."""
        if stored.retained():
            return False
        try:
            with self._errors(stored.key):
                if stored.legal_hold:
                    self._client.disable_object_legal_hold(self.bucket, stored.key, version_id=version)
                self._client.remove_object(self.bucket, stored.key, version_id=version)
        except (StoreUnavailable, S3Error):
            return False
        finally:
            self._forget(stored.key)
        return True

    def _open(self, key: str, offset: int, length: int | None) -> BinaryIO:
        with self._errors(key), self._pinned(key) as version:
            try:
                response = self._client.get_object(self.bucket, key, offset=offset, length=length or 0,
                                                   version_id=version)
            except S3Error as exc:
                if exc.code == "InvalidRange":
                    raise range_not_satisfiable(key, offset) from None
                raise
        return _ResponseStream(response, self)  # type: ignore[return-value]  # duck-typed BinaryIO

    def _list(self, prefix: str) -> Iterator[str]:
        """Keys with a live version, ascending (a key whose newest entry is a delete marker is still listed:
        its written version is still there, and verify reports the marker)."""
        with self._errors():
            last = None
            for obj in self._client.list_objects(self.bucket, prefix=prefix or None, recursive=True,
                                                 include_version=True):
                name = obj.object_name
                if name and name != last and not obj.is_dir and not obj.is_delete_marker:
                    yield name
                    last = name

    def _write_retention(self, info: ObjectInfo, until: datetime) -> None:
        with self._errors(info.key), self._pinned(info.key) as version:
            meta = self._client.stat_object(self.bucket, info.key, version_id=version).metadata or {}
            mode = COMPLIANCE if meta.get("x-amz-object-lock-mode") == COMPLIANCE else self.retention_mode
            self._client.set_object_retention(self.bucket, info.key, Retention(mode, until),  # never downgrade
                                              version_id=version)

    def _write_legal_hold(self, info: ObjectInfo, hold: bool) -> None:
        with self._errors(info.key), self._pinned(info.key) as version:
            if hold:
                self._client.enable_object_legal_hold(self.bucket, info.key, version_id=version)
            else:
                self._client.disable_object_legal_hold(self.bucket, info.key, version_id=version)

    def _remove(self, key: str) -> None:
        """Remove every version and delete marker: a delete without a version id only hides a locked object."""
        versions = [o.version_id for o in self._listed_versions(key)]
        self._forget(key)
        with self._errors(key):
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
        cap = f"，锁定日期上限 {self.max_retain_until:%Y-%m-%d}" if self.max_retain_until else ""
        return {"ok": True, "backend": self.backend,
                "detail": f"{self.location}（对象锁定已启用，模式 {self.retention_mode}{cap}）"}


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


class _ChunkReader(io.RawIOBase):
    """``read(n)`` over an iterator of chunks (minio reads each part with repeated reads)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks, self._buf = chunks, bytearray()

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        while n is None or n < 0 or len(self._buf) < n:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buf += chunk  # a bytearray grows in place; deleting from its front is cheap
        if n is None or n < 0:
            n = len(self._buf)
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data


_FRACTION = re.compile(r"\.(\d+)")


def _parse_time(value: str) -> datetime:
    """An S3 timestamp: ``Z`` or an offset; any number of fraction digits (Ceph RGW sends nanoseconds)."""
    value = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], value.strip(), count=1)
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _day(until: datetime | None) -> str:
    return f"{until:%Y-%m-%d}" if until else "无"
