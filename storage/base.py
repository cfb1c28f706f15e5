"""The object store interface, its typed errors, and the rules every backend shares.

Objects are immutable byte strings under content-derived keys (``originals/ab/cd/<sha256>``), so
putting the same bytes twice is one object. Retention ("keep until") can only be extended and a
legal hold blocks deletion; :class:`BackendStore` enforces both itself, whatever the backend would
allow, because a permissive backend (moto, a misconfigured bucket) must not weaken the archive.
"""

from __future__ import annotations

import hashlib
import io
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

from signing.fixity import Hasher
from storage.errors import StorageConflict, StorageError, StorageInvalid, StorageNotFound, StorageUnavailable

CHUNK = 1024 * 1024
PIPELINE_CHUNK = 256 * 1024  # an upload is hashed and written in steps this big, overlapping
DEFAULT_MEDIA_TYPE = "application/octet-stream"
PREFIXES = ("originals", "renditions", "packages", "thumbnails", "manifests")

_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_KEY = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")
_PREFIX = re.compile(rf"(?:{_SEGMENT}/)*(?:[A-Za-z0-9][A-Za-z0-9._-]*)?")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_CONTENT_KEY = re.compile(r"[a-z]+/([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})")
MAX_KEY_LENGTH = 512


# --- errors -------------------------------------------------------------------------------------

class ObjectNotFound(StorageNotFound):
    code = "object_not_found"


class ObjectLocked(StorageConflict):
    """Retention or a legal hold forbids the operation (delete, shortening retention)."""

    code = "object_locked"


class ObjectExists(StorageConflict):
    """A different object already lives under the key; objects are never overwritten."""

    code = "object_exists"


class StoreUnavailable(StorageUnavailable):
    code = "store_unavailable"


class IntegrityFailure(StorageError):
    """The bytes do not match their declared size or digest."""

    kind = "invalid"
    code = "integrity_failure"


class InvalidKey(StorageInvalid):
    code = "invalid_object_key"


def not_found(key: str) -> ObjectNotFound:
    return ObjectNotFound(f"对象 {key} 不存在；请核对对象键，或确认该文件已归档入库", detail={"key": key})


# --- values -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    sha256: str
    sm3: str | None = None  # recorded only when it was verified on write
    retain_until: datetime | None = None  # UTC, whole seconds
    legal_hold: bool = False
    media_type: str = DEFAULT_MEDIA_TYPE

    def retained(self, now: datetime | None = None) -> bool:
        return self.retain_until is not None and self.retain_until > (now or datetime.now(UTC))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["retain_until"] = self.retain_until.isoformat() if self.retain_until else None
        return d


def content_key(prefix: str, sha256: str) -> str:
    """The key of a content object: ``originals/ab/cd/abcd…`` (two fan-out levels)."""
    if prefix not in PREFIXES:
        raise InvalidKey(f"对象类别 {prefix!r} 不存在；可用类别：{'、'.join(PREFIXES)}",
                         detail={"prefix": prefix})
    sha256 = check_digest(sha256, "sha256")
    return f"{prefix}/{sha256[:2]}/{sha256[2:4]}/{sha256}"


# --- argument checks shared by every store ------------------------------------------------------

def check_key(key: str) -> str:
    """Refuse keys that could escape the store (``..``, absolute paths, backslashes, empty parts)."""
    if not isinstance(key, str) or len(key) > MAX_KEY_LENGTH or not _KEY.fullmatch(key):
        raise InvalidKey(
            f"对象键 {key!r} 不合法：只能由字母、数字和 . _ - 组成、以 / 分隔的路径段，"
            "不能以 / 开头，不能含 .. 或空段", detail={"key": key})
    return key


def check_prefix(prefix: str) -> str:
    if prefix and (len(prefix) > MAX_KEY_LENGTH or not _PREFIX.fullmatch(prefix)):
        raise InvalidKey(f"对象键前缀 {prefix!r} 不合法：不能以 / 开头，不能含 .. 或空段",
                         detail={"prefix": prefix})
    return prefix


def check_digest(value: str, name: str) -> str:
    value = value.lower() if isinstance(value, str) else value
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise StorageInvalid(f"{name.upper()} 摘要 {value!r} 格式不对：应为 64 位十六进制字符串",
                           code="invalid_digest", detail={name: value})
    return value


def check_content_key(key: str, sha256: str) -> None:
    """A content-derived key must carry the digest of the bytes put under it."""
    m = _CONTENT_KEY.fullmatch(key)
    if m and (m.group(3) != sha256 or m.group(1) + m.group(2) != sha256[:4]):
        raise InvalidKey(f"对象键 {key} 与内容摘要 {sha256} 不一致；请用 content_key() 由摘要生成对象键",
                         detail={"key": key, "sha256": sha256})


def normalise_until(until: datetime | None) -> datetime | None:
    """UTC, rounded up to a whole second (S3 keeps milliseconds at most); must lie in the future."""
    if until is None:
        return None
    if until.tzinfo is None or until.utcoffset() is None:
        raise StorageInvalid("保管期限截止时间必须带时区（例如 UTC）", code="invalid_retention",
                           detail={"retain_until": str(until)})
    until = until.astimezone(UTC)
    if until.microsecond:
        until = until.replace(microsecond=0) + timedelta(seconds=1)
    if until <= datetime.now(UTC):
        raise StorageInvalid(f"保管期限截止时间 {until:%Y-%m-%d %H:%M:%S} 已经过去；已到期的对象不需要设置保管期限",
                           code="invalid_retention", detail={"retain_until": until.isoformat()})
    return until


def check_range(key: str, offset: int, length: int | None) -> None:
    if offset < 0 or (length is not None and length < 1):
        raise StorageInvalid(f"读取对象 {key} 的范围不合法：起点不能为负，长度至少为 1",
                           code="invalid_range", detail={"key": key, "offset": offset, "length": length})


def range_not_satisfiable(key: str, offset: int, size: int | None = None) -> StorageInvalid:
    return StorageInvalid(f"读取起点 {offset} 超出对象 {key} 的大小" + (f"（{size} 字节）" if size is not None else ""),
                          code="range_not_satisfiable", kind="out_of_range",
                          detail={"key": key, "offset": offset, "size": size})


def ensure_deletable(info: ObjectInfo) -> None:
    if info.legal_hold:
        raise ObjectLocked(f"对象 {info.key} 处于法律保全（legal hold）状态，不能删除；请先由档案管理员解除保全",
                           detail={"key": info.key, "legal_hold": True})
    if info.retained():
        until = info.retain_until
        assert until is not None
        raise ObjectLocked(f"对象仍在保管期内（至 {until:%Y-%m-%d}），不能删除",
                           detail={"key": info.key, "retain_until": until.isoformat()})


def ensure_not_shortened(info: ObjectInfo, until: datetime) -> None:
    if info.retain_until is not None and until < info.retain_until:
        raise ObjectLocked(
            f"对象 {info.key} 的保管期限只能延长、不能缩短：当前至 {info.retain_until:%Y-%m-%d}，"
            f"请求改为 {until:%Y-%m-%d}",
            detail={"key": info.key, "retain_until": info.retain_until.isoformat(),
                    "requested": until.isoformat()})


# --- verified upload ----------------------------------------------------------------------------

class Upload:
    """A stream that must hold exactly ``size`` bytes with the given digests.

    :meth:`chunks` checks size and digests before it hands out the last chunk, so a backend that
    publishes only after the last chunk never publishes bad bytes. SM3 is computed (and checked)
    only when the caller declares it and has not computed it from these very bytes itself
    (``sm3_computed``); SHA-256, the content address, is always checked.
    """

    def __init__(self, key: str, stream: BinaryIO, size: int, sha256: str, sm3: str | None,
                 sm3_computed: bool = False) -> None:
        self.key, self._stream, self.size, self.sha256, self.sm3 = key, stream, size, sha256, sm3
        self._check_sm3 = bool(sm3) and not sm3_computed

    def chunks(self, chunk_size: int = PIPELINE_CHUNK) -> Iterator[bytes]:
        """The bytes in order; each chunk is hashed on a helper thread while the caller writes it (hashlib
        and file writes release the GIL), except the last, which is verified before it is handed out."""
        both = Hasher() if self._check_sm3 else None
        sha = hashlib.sha256()
        update = both.update if both is not None else sha.update
        remaining = self.size
        if remaining == 0:
            self._finish(0, sha.hexdigest(), both)
        pool = ThreadPoolExecutor(max_workers=1) if remaining > chunk_size else None
        hashing: Future[None] | None = None
        try:
            while remaining > 0:
                try:
                    data = self._stream.read(min(chunk_size, remaining))
                except OSError as exc:
                    raise IntegrityFailure(
                        f"对象 {self.key} 的上传在第 {self.size - remaining} 字节处中断（{exc}）；请重新上传",
                        code="upload_interrupted", detail={"key": self.key, "received": self.size - remaining},
                    ) from exc
                if not data:
                    raise self._size_error(self.size - remaining)
                if hashing is not None:
                    hashing.result()  # chunks are hashed in order
                    hashing = None
                remaining -= len(data)
                if remaining <= 0 or pool is None:
                    update(data)
                    if remaining <= 0:
                        self._finish(-remaining, sha.hexdigest(), both)
                else:
                    hashing = pool.submit(update, data)
                yield data
        finally:
            if pool is not None:
                pool.shutdown(wait=True)

    def _finish(self, over: int, sha_hex: str, both: Hasher | None) -> None:
        if over or self._stream.read(1):
            raise self._size_error(None)
        digests = both.digests() if both is not None else None
        actual = digests.sha256 if digests else sha_hex
        if actual != self.sha256:
            raise IntegrityFailure(
                f"对象 {self.key} 的 SHA-256 摘要与声明不符，文件可能在传输中损坏；请重新上传",
                detail={"key": self.key, "algorithm": "sha256", "expected": self.sha256, "actual": actual})
        if digests is not None and digests.sm3 != self.sm3:
            raise IntegrityFailure(
                f"对象 {self.key} 的 SM3 摘要与声明不符，文件可能在传输中损坏；请重新上传",
                detail={"key": self.key, "algorithm": "sm3", "expected": self.sm3, "actual": digests.sm3})

    def _size_error(self, got: int | None) -> IntegrityFailure:
        said = "少于" if got is not None else "多于"
        return IntegrityFailure(
            f"对象 {self.key} 的实际大小{said}声明的 {self.size} 字节"
            + (f"（只收到 {got} 字节）" if got is not None else "") + "；请重新上传完整文件",
            detail={"key": self.key, "expected_size": self.size, "actual_size": got})


# --- the interface ------------------------------------------------------------------------------

class ObjectStore(ABC):
    """Where archive objects (originals, renditions, packages) live."""

    backend: str = "abstract"

    @abstractmethod
    def put(self, key: str, data: BinaryIO, *, size: int, sha256: str, sm3: str | None = None,
            retain_until: datetime | None = None, legal_hold: bool = False,
            media_type: str = DEFAULT_MEDIA_TYPE, sm3_computed: bool = False) -> ObjectInfo:
        """Store exactly ``size`` bytes with these digests; idempotent for the same bytes.

        ``sm3_computed``: the caller computed ``sm3`` from exactly these bytes (signing.fixity.digest_bytes on a
        ``bytes`` object that never left the process), so it is recorded without computing it again; the size
        and SHA-256, the content address, are checked all the same.

        Putting bytes that already exist returns the stored object, extending (never shortening)
        its retention and setting (never clearing) its legal hold.
        """

    @abstractmethod
    def get(self, key: str, *, offset: int = 0, length: int | None = None) -> BinaryIO:
        """A readable stream of the object (or of ``length`` bytes from ``offset``); close it."""

    def read_bytes(self, key: str) -> bytes:
        """The whole object, its stream closed (an unclosed stream warns when collected, in any thread)."""
        with self.get(key) as stream:
            return stream.read()

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo: ...

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except ObjectNotFound:
            return False
        return True

    @abstractmethod
    def list_keys(self, prefix: str = "") -> Iterator[str]:
        """Keys starting with ``prefix``, in ascending order."""

    @abstractmethod
    def set_retention(self, key: str, until: datetime) -> ObjectInfo:
        """Extend retention to ``until``; shortening raises :class:`ObjectLocked`."""

    def extend_retentions(self, keys: Sequence[str], until: datetime) -> None:
        """Retain each object at least until ``until``; one already retained longer keeps its own date (no
        error). Durable when it returns. Backends may batch the durable writes (FilesystemStore does)."""
        for key in keys:
            if (self.stat(key).retain_until or until) <= until:
                self.set_retention(key, until)

    @abstractmethod
    def set_legal_hold(self, key: str, hold: bool) -> ObjectInfo: ...

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; :class:`ObjectLocked` while retained or held."""

    @abstractmethod
    def health(self) -> dict[str, Any]:
        """``{"ok": bool, "backend": str, "detail": str}`` for /readyz."""

    def retain_limit(self) -> datetime | None:
        """The latest retain-until this store keeps (None: no limit); later requests are capped to it, and
        the archive extends such locks before they run out (``archive storage extend-locks``)."""
        return None

    def capped(self, until: datetime) -> datetime:
        """``until``, or the store's limit when it is later."""
        limit = self.retain_limit()
        return limit if limit is not None and until > limit else until

    def version_problems(self, key: str) -> list[tuple[str, str]]:
        """(code, explanation) of anything beside the one written version of ``key``: versions written over
        it, delete markers hiding it. Stores without versions have none."""
        return []


class BackendStore(ObjectStore):
    """One storage backend: argument checks and lock rules here, mechanics in the subclass."""

    # --- mechanics a backend provides ---
    @abstractmethod
    def _stat(self, key: str) -> ObjectInfo: ...

    @abstractmethod
    def _write_new(self, upload: Upload, info: ObjectInfo) -> ObjectInfo | None:
        """Write and publish a new object; None when a concurrent writer published it first."""

    @abstractmethod
    def _open(self, key: str, offset: int, length: int | None) -> BinaryIO: ...

    @abstractmethod
    def _list(self, prefix: str) -> Iterator[str]: ...

    @abstractmethod
    def _write_retention(self, info: ObjectInfo, until: datetime) -> None: ...

    @abstractmethod
    def _write_legal_hold(self, info: ObjectInfo, hold: bool) -> None: ...

    @abstractmethod
    def _remove(self, key: str) -> None: ...

    def _ready(self) -> None:
        """Prepare the backend on first use (create the bucket, …)."""

    def _locked(self) -> AbstractContextManager[object]:
        """Serialise read-check-write sequences on metadata."""
        return nullcontext()

    # --- the interface ---
    def put(self, key: str, data: BinaryIO, *, size: int, sha256: str, sm3: str | None = None,
            retain_until: datetime | None = None, legal_hold: bool = False,
            media_type: str = DEFAULT_MEDIA_TYPE, sm3_computed: bool = False) -> ObjectInfo:
        key = check_key(key)
        sha256 = check_digest(sha256, "sha256")
        sm3 = check_digest(sm3, "sm3") if sm3 is not None else None
        check_content_key(key, sha256)
        if not isinstance(size, int) or size < 0:
            raise StorageInvalid(f"对象 {key} 的大小 {size!r} 不合法", code="invalid_size", detail={"size": size})
        until = normalise_until(retain_until)
        self._ready()
        info = self._stat_or_none(key)
        if info is None:
            new = ObjectInfo(key, size, sha256, sm3, until, bool(legal_hold), media_type or DEFAULT_MEDIA_TYPE)
            written = self._write_new(Upload(key, data, size, sha256, sm3, sm3_computed), new)
            if written is not None:
                return written
            info = self._stat(key)
        return self._merge(info, size, sha256, sm3, until, legal_hold)

    def _merge(self, info: ObjectInfo, size: int, sha256: str, sm3: str | None, until: datetime | None,
               legal_hold: bool) -> ObjectInfo:
        if info.sha256 != sha256:
            raise ObjectExists(f"对象键 {info.key} 下已存放另一份内容，归档对象不能被覆盖",
                               detail={"key": info.key, "stored_sha256": info.sha256, "sha256": sha256})
        if info.size != size or (sm3 and info.sm3 and sm3 != info.sm3):
            raise IntegrityFailure(f"对象 {info.key} 已存在，但声明的大小或 SM3 摘要与已存内容不符；请核对文件",
                                   detail={"key": info.key, "stored_size": info.size, "size": size})
        if until is not None and (info.retain_until is None or until > info.retain_until):
            info = self.set_retention(info.key, until)
        if legal_hold and not info.legal_hold:
            info = self.set_legal_hold(info.key, True)
        return info

    def _stat_or_none(self, key: str) -> ObjectInfo | None:
        try:
            return self._stat(key)
        except ObjectNotFound:
            return None

    def get(self, key: str, *, offset: int = 0, length: int | None = None) -> BinaryIO:
        key = check_key(key)
        check_range(key, offset, length)
        self._ready()
        return self._open(key, offset, length)

    def stat(self, key: str) -> ObjectInfo:
        key = check_key(key)
        self._ready()
        return self._stat(key)

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        prefix = check_prefix(prefix)
        self._ready()
        return self._list(prefix)

    def set_retention(self, key: str, until: datetime) -> ObjectInfo:
        key = check_key(key)
        new = normalise_until(until)
        if new is None:
            raise StorageInvalid("请给出保管期限截止时间", code="invalid_retention")
        self._ready()
        with self._locked():
            info = self._stat(key)
            ensure_not_shortened(info, new)
            if info.retain_until == new:
                return info
            self._write_retention(info, new)
        return self._stat(key)

    def set_legal_hold(self, key: str, hold: bool) -> ObjectInfo:
        key = check_key(key)
        self._ready()
        with self._locked():
            info = self._stat(key)
            if info.legal_hold == hold:
                return info
            self._write_legal_hold(info, hold)
        return self._stat(key)

    def delete(self, key: str) -> None:
        key = check_key(key)
        self._ready()
        with self._locked():
            ensure_deletable(self._stat(key))
            self._remove(key)


# --- small stream helpers -----------------------------------------------------------------------

class Window(io.RawIOBase):
    """At most ``length`` bytes of an open stream (``None``: to its end); closes it when closed."""

    def __init__(self, stream: Any, length: int | None) -> None:
        self._stream, self._left = stream, length

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            n = self._left if self._left is not None else -1
        elif self._left is not None:
            n = min(n, self._left)
        if n == 0:
            return b""
        data: bytes = self._stream.read(n)
        if self._left is not None:
            self._left -= len(data)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
        super().close()
