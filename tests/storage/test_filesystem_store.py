"""Filesystem store: atomic, read-only writes; locks recorded beside the object; no escape from root."""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
from pathlib import Path

import pytest

from storage.base import IntegrityFailure, InvalidKey, ObjectLocked, StoreUnavailable
from storage.filesystem import FilesystemStore
from tests.storage.support import FAR, blob, put, read_all


@pytest.fixture
def fs(tmp_path: Path) -> FilesystemStore:
    return FilesystemStore(tmp_path / "objects")


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != ".lock")


def test_a_stored_object_is_read_only_with_its_locks_recorded_beside_it(fs: FilesystemStore) -> None:
    """Given an object put with retention and a hold, When the disk is inspected,
    Then the bytes are mode 0444 and a JSON sidecar records digests, retention and hold."""
    b = blob()
    put(fs, b, retain_until=FAR, legal_hold=True)
    data = fs.path_of(b.key)
    assert data.read_bytes() == b.data
    assert stat.S_IMODE(data.stat().st_mode) == 0o444
    record = json.loads(data.with_name(data.name + "~meta.json").read_text())
    assert record["sha256"] == b.sha256 and record["size"] == len(b.data)
    assert record["retain_until"] == FAR.isoformat() and record["legal_hold"] is True
    assert list((fs.root / ".tmp").iterdir()) == []


def test_the_store_enforces_retention_recorded_in_the_sidecar(fs: FilesystemStore) -> None:
    """Given a file the operating system would happily delete, When the store is asked to delete a
    retained object, Then it refuses and the file stays."""
    b = blob()
    put(fs, b, retain_until=FAR)
    with pytest.raises(ObjectLocked):
        fs.delete(b.key)
    assert fs.path_of(b.key).exists()


def test_a_write_that_fails_on_disk_leaves_no_file(fs: FilesystemStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a disk that fails at fsync (disk full), When an object is put,
    Then StoreUnavailable names the root and no data, metadata or temp file remains."""
    put(fs, blob(seed=9))  # the directories exist already
    before = _files(fs.root)

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    b = blob(seed=1)
    with pytest.raises(StoreUnavailable) as exc:
        put(fs, b)
    assert str(fs.root) in exc.value.message and exc.value.kind == "unavailable"
    monkeypatch.undo()
    assert _files(fs.root) == before
    assert not fs.exists(b.key)


def test_an_interrupted_upload_leaves_no_file(fs: FilesystemStore) -> None:
    """Given an upload stream that breaks half-way, When put, Then a typed error and nothing on disk."""
    b = blob(3 * 1024 * 1024)

    class Broken:
        def __init__(self) -> None:
            self.sent = 0

        def read(self, n: int = -1) -> bytes:
            if self.sent:
                raise ConnectionResetError("client went away")
            self.sent = n
            return b.data[:n]

    with pytest.raises(IntegrityFailure) as exc:
        fs.put(b.key, Broken(), size=len(b.data), sha256=b.sha256)  # type: ignore[arg-type]
    assert exc.value.code == "upload_interrupted"
    assert _files(fs.root) == []


def test_an_orphan_sidecar_from_a_crash_is_invisible_and_overwritten(fs: FilesystemStore) -> None:
    """Given metadata left by a crash before the bytes were published, When the key is used,
    Then the object does not exist, and a new put stores it normally."""
    b = blob()
    meta = fs.root / f"{b.key}~meta.json"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"size": 1, "sha256": "0" * 64, "retain_until": FAR.isoformat()}))
    assert not fs.exists(b.key)
    assert list(fs.list_keys()) == []
    assert put(fs, b).retain_until is None
    assert read_all(fs, b.key) == b.data


def test_a_symlink_out_of_the_root_is_refused(fs: FilesystemStore, tmp_path: Path) -> None:
    """Given a directory inside the store replaced by a symlink to elsewhere, When a key under it is
    written, Then InvalidKey and nothing is written outside the root."""
    outside = tmp_path / "outside"
    outside.mkdir()
    fs.root.mkdir(parents=True)
    (fs.root / "originals").symlink_to(outside)
    b = blob()
    with pytest.raises(InvalidKey):
        put(fs, b)
    assert list(outside.rglob("*")) == []


def test_a_truncated_file_is_reported_as_damaged(fs: FilesystemStore) -> None:
    """Given an object whose file was truncated behind the store's back, When stat is read,
    Then IntegrityFailure says the size does not match."""
    b = blob()
    put(fs, b)
    path = fs.path_of(b.key)
    path.chmod(0o644)
    path.write_bytes(b.data[:10])
    with pytest.raises(IntegrityFailure) as exc:
        fs.stat(b.key)
    assert "截断" in exc.value.message


def test_missing_metadata_is_reported_as_damaged(fs: FilesystemStore) -> None:
    """Given an object whose sidecar was deleted, When stat is read, Then IntegrityFailure, not 'not found'."""
    b = blob()
    put(fs, b)
    (fs.root / f"{b.key}~meta.json").unlink()
    with pytest.raises(IntegrityFailure):
        fs.stat(b.key)


def test_concurrent_puts_of_the_same_bytes_make_one_object(fs: FilesystemStore) -> None:
    """Given eight threads putting the same bytes, When they finish, Then one object, no errors, no temp files."""
    b = blob(1024 * 1024)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            put(fs, b, retain_until=FAR)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert list(fs.list_keys()) == [b.key]
    assert list((fs.root / ".tmp").iterdir()) == []
    assert fs.stat(b.key).retain_until == FAR


def test_health_reports_an_unusable_root(tmp_path: Path) -> None:
    """Given a root path that is a file, When health is asked, Then not ok, with the reason."""
    (tmp_path / "objects").write_text("not a directory")
    health = FilesystemStore(tmp_path / "objects").health()
    assert health["ok"] is False and health["backend"] == "filesystem" and "objects" in health["detail"]


def test_a_key_that_is_another_keys_directory_is_refused(fs: FilesystemStore) -> None:
    """Given an object under manifests/a/b, When manifests/a is put (or the reverse), Then InvalidKey
    rather than a disk error, and the existing object is untouched."""
    deep, shallow = blob(seed=1), blob(seed=2)
    fs.put("manifests/a/b", deep.stream(), size=len(deep.data), sha256=deep.sha256)
    with pytest.raises(InvalidKey):
        fs.put("manifests/a", shallow.stream(), size=len(shallow.data), sha256=shallow.sha256)
    with pytest.raises(InvalidKey):
        fs.put("manifests/a/b/c", shallow.stream(), size=len(shallow.data), sha256=shallow.sha256)
    assert list(fs.list_keys("manifests/")) == ["manifests/a/b"]
    assert not fs.exists("manifests/a")


def test_extending_retentions_in_one_batch(fs: FilesystemStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given three objects - unlocked, locked shorter, locked longer - When their retention is extended in one
    batch, Then the first two are retained until the new date and the third keeps its later one; each changed
    sidecar is fsynced once and each directory once (no fsync per object pair); nothing is left in .tmp."""
    from datetime import timedelta

    import storage.filesystem as filesystem

    until = FAR - timedelta(days=400)
    a, b, c = blob(seed=1), blob(seed=2), blob(seed=3)
    put(fs, a)
    put(fs, b, retain_until=until - timedelta(days=30))
    put(fs, c, retain_until=FAR)
    synced: list[str] = []
    for name in ("_fsync_file", "_fsync_dir"):
        real = getattr(filesystem, name)
        monkeypatch.setattr(filesystem, name, lambda p, real=real, name=name: (synced.append(name), real(p)))
    fs.extend_retentions([a.key, b.key, c.key], until)
    assert [fs.stat(k).retain_until for k in (a.key, b.key, c.key)] == [until, until, FAR]
    assert synced.count("_fsync_file") == 2
    assert synced.count("_fsync_dir") == len({fs.path_of(k).parent for k in (a.key, b.key)})
    assert list((fs.root / ".tmp").iterdir()) == []
    with pytest.raises(ObjectLocked):
        fs.delete(a.key)


_probing = threading.Lock()


def _store_lock_held(fs: FilesystemStore) -> bool:
    """Whether some open file holds the store's flock (flock locks belong to open files: this one is new). Probes
    take turns: fsyncs run on several threads at once, and one probe's brief flock is not the store's lock."""
    import fcntl

    with _probing:
        fd = os.open(fs.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # releases it if taken
        return False


def test_extending_retentions_fsyncs_outside_the_store_lock(fs: FilesystemStore,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Given two objects, When their retention is extended (as every filing does), Then no fsync runs while the
    store's lock is held - the lock every process takes to publish or change metadata - so filings in several
    processes do not wait for each other's fsyncs; and a put fsyncs the bytes' directory after the lock too."""
    import storage.filesystem as filesystem

    a, b = blob(seed=1), blob(seed=2)
    put(fs, a)
    put(fs, b)
    held: list[tuple[str, bool]] = []
    for name in ("_fsync_file", "_fsync_dir"):
        real = getattr(filesystem, name)
        monkeypatch.setattr(filesystem, name,
                            lambda p, real=real, name=name: (held.append((name, _store_lock_held(fs))), real(p)))
    fs.extend_retentions([a.key, b.key], FAR)
    assert [fs.stat(k).retain_until for k in (a.key, b.key)] == [FAR, FAR]
    assert held and not any(h for _, h in held), held
    held.clear()
    put(fs, blob(seed=3))
    assert held[-1] == ("_fsync_dir", False), held


def test_a_legal_hold_set_while_retentions_are_extended_is_kept(fs: FilesystemStore,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Given an object whose retention is being extended, When another process sets its legal hold after the new
    sidecar was written but before it is renamed (the sidecars are written outside the store's lock), Then both
    stay: the hold and the new retention (the sidecar is written again under the lock, never reverting the hold)."""
    import storage.filesystem as filesystem

    a = blob(seed=1)
    put(fs, a)
    other = FilesystemStore(fs.root)
    real = filesystem._fsync_file
    done: list[bool] = []

    def fsync_then_hold(path: str) -> None:
        real(path)
        if not done:
            done.append(True)
            other.set_legal_hold(a.key, True)

    monkeypatch.setattr(filesystem, "_fsync_file", fsync_then_hold)
    fs.extend_retentions([a.key], FAR)
    info = fs.stat(a.key)
    assert done and info.legal_hold is True and info.retain_until == FAR
    assert list((fs.root / ".tmp").iterdir()) == []


def test_extending_retentions_of_a_missing_object_changes_nothing(fs: FilesystemStore) -> None:
    """Given one stored object and one key that does not exist, When both are extended, Then not found and the
    stored object's retention is unchanged (every object is read before anything is written)."""
    from storage.base import ObjectNotFound

    a = blob(seed=1)
    put(fs, a)
    with pytest.raises(ObjectNotFound):
        fs.extend_retentions([a.key, blob(seed=9).key], FAR)
    assert fs.stat(a.key).retain_until is None
