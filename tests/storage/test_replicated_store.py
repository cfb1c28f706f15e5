"""Replicated store: both copies before success, reads fall back, locks checked on both copies."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from storage.base import IntegrityFailure, ObjectLocked, StoreUnavailable
from storage.filesystem import FilesystemStore
from storage.replicated import ReplicatedStore
from storage.s3 import S3Store
from tests.storage.support import FAR, FARTHER, blob, new_s3_store, put, read_all


@pytest.fixture
def pair(tmp_path: Path) -> ReplicatedStore:
    return ReplicatedStore(FilesystemStore(tmp_path / "primary"), FilesystemStore(tmp_path / "secondary"))


def _file(store: ReplicatedStore, side: str, key: str) -> Path:
    copy = getattr(store, side)
    assert isinstance(copy, FilesystemStore)
    return copy.path_of(key)


def corrupt(path: Path) -> None:
    """Flip one byte in place, as bit rot or tampering would (same size, different digest)."""
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_put_writes_both_copies_with_their_locks(pair: ReplicatedStore) -> None:
    """Given a replicated store, When an object is put with retention and a hold,
    Then both copies hold the bytes, the retention and the hold."""
    b = blob()
    put(pair, b, retain_until=FAR, legal_hold=True)
    for copy in (pair.primary, pair.secondary):
        assert read_all(copy, b.key) == b.data
        info = copy.stat(b.key)
        assert (info.retain_until, info.legal_hold) == (FAR, True)


def test_a_put_fails_when_the_secondary_is_down_and_a_retry_completes_it(tmp_path: Path) -> None:
    """Given an S3 secondary that is down, When an object is put, Then StoreUnavailable (no success
    without both copies); When the secondary is back, Then the same put completes the copy."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    healthy = new_s3_store()
    down = ReplicatedStore(FilesystemStore(tmp_path / "p"), S3Store(dead, "t", "t", healthy.bucket, secure=False))
    b = blob()
    with pytest.raises(StoreUnavailable):
        put(down, b, retain_until=FAR)
    back = ReplicatedStore(FilesystemStore(tmp_path / "p"), healthy)
    put(back, b, retain_until=FAR)
    assert read_all(healthy, b.key) == b.data and healthy.stat(b.key).retain_until == FAR


def test_a_read_falls_back_when_the_primary_copy_is_missing(pair: ReplicatedStore) -> None:
    """Given the primary file lost from disk, When the object is read, Then the secondary copy serves it."""
    b = blob()
    put(pair, b)
    _file(pair, "primary", b.key).unlink()
    assert read_all(pair, b.key) == b.data
    assert read_all(pair, b.key, offset=10, length=5) == b.data[10:15]
    assert pair.exists(b.key) and pair.stat(b.key).sha256 == b.sha256


def test_a_read_falls_back_when_the_primary_copy_fails_its_digest(pair: ReplicatedStore) -> None:
    """Given a primary copy with one flipped byte, When the object is read, Then the intact secondary
    copy is returned."""
    b = blob(200_000)
    put(pair, b)
    corrupt(_file(pair, "primary", b.key))
    assert read_all(pair, b.key) == b.data


def test_a_corrupted_secondary_does_not_disturb_reads(pair: ReplicatedStore) -> None:
    """Given a secondary copy corrupted on disk, When the object is read, Then the primary serves it."""
    b = blob()
    put(pair, b)
    corrupt(_file(pair, "secondary", b.key))
    assert read_all(pair, b.key) == b.data


def test_when_both_copies_are_damaged_the_read_says_so(pair: ReplicatedStore) -> None:
    """Given the primary missing and the secondary corrupted, When read, Then IntegrityFailure (not 404)."""
    b = blob()
    put(pair, b)
    _file(pair, "primary", b.key).unlink()
    corrupt(_file(pair, "secondary", b.key))
    with pytest.raises(IntegrityFailure):
        read_all(pair, b.key)


def test_the_filesystem_primary_falls_back_to_an_s3_secondary(tmp_path: Path) -> None:
    """Given filesystem + S3 copies and the filesystem copy lost, When read, Then S3 serves the bytes."""
    store = ReplicatedStore(FilesystemStore(tmp_path / "p"), new_s3_store())
    b = blob()
    put(store, b, retain_until=FAR)
    _file(store, "primary", b.key).unlink()
    assert read_all(store, b.key) == b.data


def test_delete_is_refused_when_either_copy_is_locked(pair: ReplicatedStore) -> None:
    """Given copies whose locks differ (only the secondary is held), When deleted,
    Then refused before either copy is touched."""
    b = blob()
    put(pair, b)
    pair.secondary.set_legal_hold(b.key, True)
    with pytest.raises(ObjectLocked):
        pair.delete(b.key)
    assert pair.primary.exists(b.key) and pair.secondary.exists(b.key)


def test_retention_is_extended_on_both_copies_and_shortening_is_refused(pair: ReplicatedStore) -> None:
    """Given a replicated object, When retention is extended, Then both copies carry it; When it is
    shortened, Then refused on both."""
    b = blob()
    put(pair, b, retain_until=FAR)
    pair.set_retention(b.key, FARTHER)
    assert pair.primary.stat(b.key).retain_until == pair.secondary.stat(b.key).retain_until == FARTHER
    with pytest.raises(ObjectLocked):
        pair.set_retention(b.key, FAR)


def test_health_reports_both_copies(tmp_path: Path) -> None:
    """Given a working primary and a secondary that is down, When health is asked, Then not ok,
    with each copy's state."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    store = ReplicatedStore(FilesystemStore(tmp_path / "p"), S3Store(dead, "t", "t", "archive", secure=False))
    health = store.health()
    assert health["ok"] is False and health["primary"]["ok"] is True and health["secondary"]["ok"] is False
