"""Two copies of every object: a primary and a secondary store (filesystem + S3, or two of a kind).

Policy over backend (as ESSArch does): each copy lives in an ordinary store that enforces its own
locks; this class decides where writes go and where reads come from.

- put writes the primary, then copies the primary's bytes to the secondary (which verifies them
  against the same digests); success is reported only when both hold the object. A failure after
  the primary write leaves a primary copy that no catalogue row points at yet; retrying the put
  completes the secondary (puts are idempotent).
- a full get reads the primary, checks its SHA-256 while spooling it, and falls back to the
  secondary when the primary copy is missing, unreadable or fails its digest. Ranged gets fall
  back on missing or unreadable copies only (a range cannot be checked against the whole digest).
- retention, legal hold and delete are checked against both copies before either is changed.
"""

from __future__ import annotations

import hashlib
import heapq
import tempfile
from collections.abc import Iterator
from datetime import datetime
from typing import Any, BinaryIO

from storage.base import (
    CHUNK,
    DEFAULT_MEDIA_TYPE,
    IntegrityFailure,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    StorageInvalid,
    StoreUnavailable,
    check_key,
    check_range,
    ensure_deletable,
    ensure_not_shortened,
    normalise_until,
    not_found,
)

_FALLBACK = (ObjectNotFound, StoreUnavailable, IntegrityFailure)
SPOOL_IN_MEMORY = 8 * 1024 * 1024


class ReplicatedStore(ObjectStore):
    backend = "replicated"

    def __init__(self, primary: ObjectStore, secondary: ObjectStore) -> None:
        self.primary, self.secondary = primary, secondary

    @property
    def copies(self) -> tuple[tuple[str, ObjectStore], tuple[str, ObjectStore]]:
        return (("primary", self.primary), ("secondary", self.secondary))

    def put(self, key: str, data: BinaryIO, *, size: int, sha256: str, sm3: str | None = None,
            retain_until: datetime | None = None, legal_hold: bool = False,
            media_type: str = DEFAULT_MEDIA_TYPE, sm3_computed: bool = False) -> ObjectInfo:
        info = self.primary.put(key, data, size=size, sha256=sha256, sm3=sm3, retain_until=retain_until,
                                legal_hold=legal_hold, media_type=media_type, sm3_computed=sm3_computed)
        self.copy_to_secondary(info)
        return info

    def copy_to_secondary(self, info: ObjectInfo) -> ObjectInfo:
        """Make the secondary hold ``info``'s object with at least its retention and hold."""
        return copy_object(self.primary, self.secondary, info)

    def get(self, key: str, *, offset: int = 0, length: int | None = None) -> BinaryIO:
        key = check_key(key)
        check_range(key, offset, length)
        errors: list[Exception] = []
        for _, store in self.copies:
            try:
                if offset or length is not None:
                    return store.get(key, offset=offset, length=length)
                return _verified_copy(store, key)
            except _FALLBACK as exc:
                errors.append(exc)
        raise _worst(errors)

    def stat(self, key: str) -> ObjectInfo:
        errors: list[Exception] = []
        for _, store in self.copies:
            try:
                return store.stat(key)
            except _FALLBACK as exc:
                errors.append(exc)
        raise _worst(errors)

    def exists(self, key: str) -> bool:
        """True when either copy exists; an error only when neither answers yes and one failed."""
        errors: list[Exception] = []
        for _, store in self.copies:
            try:
                if store.exists(key):
                    return True
            except (StoreUnavailable, IntegrityFailure) as exc:
                errors.append(exc)
        if errors:
            raise _worst(errors)
        return False

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        last = None
        for key in heapq.merge(self.primary.list_keys(prefix), self.secondary.list_keys(prefix)):
            if key != last:
                yield key
            last = key

    def _both(self, key: str) -> list[tuple[ObjectStore, ObjectInfo]]:
        """The copies that exist (at least one), after both stores have been asked."""
        key = check_key(key)
        found = []
        for _, store in self.copies:
            try:
                found.append((store, store.stat(key)))
            except ObjectNotFound:
                continue
        if not found:
            raise not_found(key)
        return found

    def set_retention(self, key: str, until: datetime) -> ObjectInfo:
        new = normalise_until(until)
        if new is None:
            raise StorageInvalid("请给出保管期限截止时间", code="invalid_retention")
        copies = self._both(key)
        for _, info in copies:
            ensure_not_shortened(info, new)
        results = [store.set_retention(key, new) for store, _ in copies]
        return results[0]

    def set_legal_hold(self, key: str, hold: bool) -> ObjectInfo:
        results = [store.set_legal_hold(key, hold) for store, _ in self._both(key)]
        return results[0]

    def delete(self, key: str) -> None:
        copies = self._both(key)
        for _, info in copies:
            ensure_deletable(info)
        for store, _ in copies:
            store.delete(key)

    def retain_limit(self) -> datetime | None:
        limits = [limit for _, store in self.copies if (limit := store.retain_limit()) is not None]
        return min(limits) if limits else None

    def health(self) -> dict[str, Any]:
        primary, secondary = self.primary.health(), self.secondary.health()
        return {"ok": primary["ok"] and secondary["ok"], "backend": self.backend,
                "detail": f"主副本：{primary['detail']}；备副本：{secondary['detail']}",
                "primary": primary, "secondary": secondary}


def copy_object(source: ObjectStore, target: ObjectStore, info: ObjectInfo) -> ObjectInfo:
    """Put ``source``'s copy of ``info.key`` into ``target`` with ``info``'s retention and hold."""
    until = info.retain_until if info.retained() else None
    with source.get(info.key) as stream:
        return target.put(info.key, stream, size=info.size, sha256=info.sha256, sm3=info.sm3,
                          retain_until=until, legal_hold=info.legal_hold, media_type=info.media_type)


def _verified_copy(store: ObjectStore, key: str) -> BinaryIO:
    """The whole object, spooled and checked against its recorded SHA-256 and size."""
    info = store.stat(key)
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - returned to the caller
    try:
        sha, size = hashlib.sha256(), 0
        with store.get(key) as stream:
            while chunk := stream.read(CHUNK):
                sha.update(chunk)
                size += len(chunk)
                spool.write(chunk)
        if size != info.size or sha.hexdigest() != info.sha256:
            raise IntegrityFailure(f"对象 {key} 的 {store.backend} 副本已损坏（摘要或大小与登记不符）",
                                   detail={"key": key, "backend": store.backend, "expected": info.sha256,
                                           "actual": sha.hexdigest(), "size": size})
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool  # type: ignore[return-value]  # a SpooledTemporaryFile is a BinaryIO


def _worst(errors: list[Exception]) -> Exception:
    """The error to report when no copy served: damage before outage before absence."""
    for kind in (IntegrityFailure, StoreUnavailable):
        for exc in errors:
            if isinstance(exc, kind):
                return exc
    return errors[0]
