"""The embedded filesystem store.

Layout under ``root``::

    <key>              the object's bytes, read-only (0444) once published
    <key>~meta.json    beside it: size, digests, media type, retention, legal hold (enforced here)
    .tmp/              files being written; never visible as objects
    .lock              flock that serialises publishing and metadata changes across processes

Keys cannot contain ``~`` or start a segment with ``.``, so these names never collide with a key.
A write goes to ``.tmp/``, is verified and fsynced, then published: metadata first, then the bytes,
each by rename followed by an fsync of the directory. A crash in between leaves at most an orphan
metadata file, which is invisible and overwritten by the next put of that key.

Durability order of a filing (archive/filing.py), each step durable before the next begins:
1. the rendition's bytes and sidecar (``put``: data and sidecar fsynced, sidecar renamed + directory fsynced,
   data renamed + directory fsynced) - before the catalogue can point at it; beside it, on another thread, the
   originals' retention locks (``extend_retentions``, one batch: every new sidecar written, then fsynced, then
   renamed under the store's lock, then each directory fsynced once), outside any database transaction;
2. the rendition's retention lock (``extend_retentions`` of every object the item references: the originals are
   found locked) - inside the filing's write transaction, before its commit, so a committed item never has an
   unlocked object;
3. the catalogue commit (SQLite in WAL, PostgreSQL): the item, its report, the audit event.
The store's lock (an flock every process takes to publish or change metadata) is held as briefly as the order
allows, so filings in several processes do not queue on each other's fsyncs: ``extend_retentions`` holds it for
stats and renames only (sidecars fsynced before, directories after); a put for its new directories, the sidecar's
rename and fsync (the sidecar is durable before the bytes appear) and the bytes' rename, whose directory is
fsynced after it. A crash after 1 leaves an unreferenced, unlocked rendition (``archive storage gc``) and locked
originals (they leave the store only through destruction anyway); after 2 a locked rendition (as before:
docs/decisions/0014). Nothing is fsynced twice, and fsyncs that do not depend on each
other (a put's data and sidecar; the new directories' parents; a batch's sidecars, then its directories) are
issued at the same time (``_fsync_all``), so the file system serves them with one journal commit.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from stat import S_ISLNK, S_ISREG
from typing import Any, BinaryIO, TypeVar

from storage.base import (
    BackendStore,
    IntegrityFailure,
    InvalidKey,
    ObjectInfo,
    StoreUnavailable,
    Upload,
    Window,
    check_key,
    normalise_until,
    not_found,
    range_not_satisfiable,
)

T = TypeVar("T", str, Path)
META = "~meta.json"
EARLY_FLUSH = 2 * 1024 * 1024  # bytes written between background writebacks of a large object


class FilesystemStore(BackendStore):
    backend = "filesystem"

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).absolute()
        self._tmp = self.root / ".tmp"

    def path_of(self, key: str) -> Path:
        """Where ``key``'s bytes live.

        Keys are already free of ``..`` and absolute parts, so the only way out of the root is a
        symlink planted inside it: every existing component of the key is checked not to be one.
        """
        current = str(self.root)
        for part in key.split("/"):
            current = f"{current}/{part}"
            try:
                mode = os.lstat(current).st_mode
            except (FileNotFoundError, NotADirectoryError):
                break
            if S_ISLNK(mode):
                raise InvalidKey(f"对象键 {key!r} 经符号链接指向存储目录之外，已拒绝", detail={"key": key})
        return self.root / key

    def _meta_of(self, key: str) -> Path:
        return _sidecar(self.path_of(key))

    @contextmanager
    def _os_errors(self) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise StoreUnavailable(
                f"文件存储 {self.root} 不可用：{exc.strerror or exc}；请检查磁盘空间、挂载和目录权限",
                detail={"root": str(self.root), "errno": exc.errno}) from exc

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._os_errors():
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # --- mechanics ---
    def _stat(self, key: str) -> ObjectInfo:
        data = self.path_of(key)  # checked once: its sidecar is beside it
        meta = _sidecar(data)
        with self._os_errors():
            try:
                st = os.stat(data)
            except (FileNotFoundError, NotADirectoryError):
                raise not_found(key) from None
            if not S_ISREG(st.st_mode):
                raise not_found(key)
            size = st.st_size
            try:
                record = json.loads(meta.read_text("utf-8"))
            except FileNotFoundError:
                raise IntegrityFailure(f"对象 {key} 缺少元数据文件（{meta.name}）；请用副本修复",
                                       detail={"key": key}) from None
        until = record.get("retain_until")
        info = ObjectInfo(key=key, size=record["size"], sha256=record["sha256"], sm3=record.get("sm3"),
                          retain_until=datetime.fromisoformat(until) if until else None,
                          legal_hold=bool(record.get("legal_hold")),
                          media_type=record.get("media_type") or "application/octet-stream")
        if info.size != size:
            raise IntegrityFailure(f"对象 {key} 的文件大小（{size} 字节）与登记的 {info.size} 字节不符，"
                                   "可能已被截断或篡改；请用副本修复",
                                   detail={"key": key, "expected_size": info.size, "actual_size": size})
        return info

    def _write_new(self, upload: Upload, info: ObjectInfo) -> ObjectInfo | None:
        data_path = self.path_of(info.key)
        temps: list[str] = []
        with self._os_errors():
            try:
                self._tmp.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=self._tmp, suffix=".part")
                temps.append(tmp)
                with os.fdopen(fd, "wb") as f:
                    _write_flushing(f, upload.chunks())
                    meta_tmp = self._meta_temp(info)  # written before the fsyncs, which then share
                    temps.append(meta_tmp)            # one journal commit on ext4/xfs
                _fsync_all([tmp, meta_tmp], _fsync_file)  # at once: one journal commit serves both
                os.chmod(tmp, 0o444)
                with self._locked():
                    if data_path.is_file():
                        return None
                    if data_path.exists():
                        raise _clash(info.key)
                    _make_dirs(data_path.parent)
                    self._publish_meta(meta_tmp, info.key)
                    os.rename(tmp, data_path)
                    temps.clear()
                _fsync_dir(data_path.parent)  # after the store's lock: other processes' publishing need not wait
                return info
            except (NotADirectoryError, FileExistsError) as exc:  # a key's directory is another key
                raise _clash(info.key) from exc
            finally:
                for leftover in temps:
                    with suppress(OSError):
                        os.unlink(leftover)

    def _meta_temp(self, info: ObjectInfo) -> str:
        """A temporary sidecar holding ``info`` (not yet fsynced)."""
        fd, tmp = tempfile.mkstemp(dir=self._tmp, suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(info.to_dict(), f, ensure_ascii=False)
        return tmp

    def _publish_meta(self, tmp: str, key: str) -> None:
        path = self._meta_of(key)
        os.rename(tmp, path)
        _fsync_dir(path.parent)

    def _write_meta(self, info: ObjectInfo) -> None:
        """Replace the sidecar atomically and durably."""
        self._tmp.mkdir(parents=True, exist_ok=True)
        tmp = self._meta_temp(info)
        try:
            _fsync_file(tmp)
            self._publish_meta(tmp, info.key)
        except BaseException:
            with suppress(OSError):
                os.unlink(tmp)
            raise

    def _open(self, key: str, offset: int, length: int | None) -> BinaryIO:
        path = self.path_of(key)
        with self._os_errors():
            try:
                f = open(path, "rb")  # noqa: SIM115 - the caller closes the stream
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                raise not_found(key) from None
            if offset == 0 and length is None:
                return f
            size = os.fstat(f.fileno()).st_size
            if offset >= size:
                f.close()
                raise range_not_satisfiable(key, offset, size)
            f.seek(offset)
        return Window(f, length)  # type: ignore[return-value]  # duck-typed BinaryIO

    def _list(self, prefix: str) -> Iterator[str]:
        head = prefix.rpartition("/")[0]
        start = self.path_of(head) if head else self.root
        with self._os_errors():
            yield from _walk(start, head, prefix)

    def extend_retentions(self, keys: Sequence[str], until: datetime) -> None:
        """One batch (see the module doc): every sidecar that needs a later date is written, then all are fsynced,
        renamed, and each directory fsynced once - rather than fsync, rename, fsync per object."""
        new = normalise_until(until)
        assert new is not None
        keys = [check_key(k) for k in keys]
        def needed(infos: Iterator[ObjectInfo]) -> list[ObjectInfo]:
            return [info for info in infos if info.retain_until is None or info.retain_until < new]

        def written(infos: list[ObjectInfo]) -> dict[str, tuple[ObjectInfo, str]]:
            temps = {}
            try:
                for info in infos:
                    temps[info.key] = (info, self._meta_temp(replace(info, retain_until=new)))
                _fsync_all([tmp for _, tmp in temps.values()], _fsync_file)
            except BaseException:
                _unlink_all(tmp for _, tmp in temps.values())
                raise
            return temps

        # The sidecars are written and fsynced before the store's lock (an flock every process of every filing
        # takes) and only renamed under it, after checking nothing changed them meanwhile; the directories are
        # fsynced after it. The lock is held for stats and renames, not for fsyncs.
        with self._os_errors():
            self._tmp.mkdir(parents=True, exist_ok=True)
            temps = written(needed(map(self._stat, keys)))
            if not temps:
                return
            try:
                with self._locked():
                    now = {info.key: info for info in map(self._stat, temps)}
                    stale = [key for key, (info, _) in temps.items() if now[key] != info]
                    _unlink_all(temps.pop(key)[1] for key in stale)
                    temps |= written(needed(now[key] for key in stale))  # changed meanwhile: redone, rarely
                    renamed = set()
                    for key, (_, tmp) in list(temps.items()):
                        sidecar = self._meta_of(key)
                        os.rename(tmp, sidecar)
                        renamed.add(sidecar.parent)
                        del temps[key]
            finally:
                _unlink_all(tmp for _, tmp in temps.values())
            _fsync_all(sorted(renamed), _fsync_dir)

    def _write_retention(self, info: ObjectInfo, until: datetime) -> None:
        with self._os_errors():
            self._write_meta(replace(info, retain_until=until))

    def _write_legal_hold(self, info: ObjectInfo, hold: bool) -> None:
        with self._os_errors():
            self._write_meta(replace(info, legal_hold=hold))

    def _remove(self, key: str) -> None:
        data = self.path_of(key)
        with self._os_errors():
            os.unlink(data)
            _fsync_dir(data.parent)
            with suppress(OSError):
                os.unlink(self._meta_of(key))

    def health(self) -> dict[str, Any]:
        try:
            with self._os_errors():
                self._tmp.mkdir(parents=True, exist_ok=True)
                if not os.access(self._tmp, os.W_OK):
                    raise PermissionError(13, "目录不可写")
                free = shutil.disk_usage(self.root).free
        except StoreUnavailable as exc:
            return {"ok": False, "backend": self.backend, "detail": exc.message}
        return {"ok": True, "backend": self.backend, "detail": f"{self.root}（可用空间 {free // 2**20} MiB）"}


def _write_flushing(f: BinaryIO, chunks: Iterator[bytes]) -> None:
    """Write the chunks, starting writeback of what is written every few MB on a helper thread, so the disk
    works while the rest is still being hashed and the final fsync has little left to do."""
    flusher: ThreadPoolExecutor | None = None
    flushing: Future[None] | None = None
    written = flushed = 0
    try:
        for chunk in chunks:
            f.write(chunk)
            written += len(chunk)
            if written - flushed >= EARLY_FLUSH and (flushing is None or flushing.done()):
                f.flush()
                flusher = flusher or ThreadPoolExecutor(max_workers=1)
                flushing, flushed = flusher.submit(os.fdatasync, f.fileno()), written
        f.flush()
    finally:
        if flusher is not None:
            flusher.shutdown(wait=True)


def _walk(directory: Path, rel: str, prefix: str) -> Iterator[str]:
    """Keys under ``directory`` starting with ``prefix``, in ascending key order."""
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return
    named = []
    for entry in entries:
        if entry.name.startswith(".") or "~" in entry.name:  # .tmp, .lock, sidecars
            continue
        key = f"{rel}/{entry.name}" if rel else entry.name
        is_dir = entry.is_dir(follow_symlinks=False)
        sort_key = key + "/" if is_dir else key
        if sort_key.startswith(prefix) or (is_dir and prefix.startswith(sort_key)):
            named.append((sort_key, key, is_dir, entry.path))
    for _, key, is_dir, path in sorted(named):
        if is_dir:
            yield from _walk(Path(path), key, prefix)
        else:
            yield key


def _clash(key: str) -> InvalidKey:
    return InvalidKey(f"对象键 {key} 与已有对象的路径冲突（一个键不能同时是另一个键的目录）", detail={"key": key})


def _unlink_all(paths: Iterable[str]) -> None:
    for path in paths:
        with suppress(OSError):
            os.unlink(path)


def _make_dirs(path: Path) -> None:
    """mkdir -p, fsyncing each new directory's parent so the new entries survive a crash (all parents at once,
    after the last mkdir: nothing inside the new directories is published before they return)."""
    made = []
    while not path.is_dir():
        made.append(path)
        path = path.parent
    for directory in reversed(made):
        directory.mkdir()
    _fsync_all([d.parent for d in made], _fsync_dir)


_syncer: ThreadPoolExecutor | None = None
_syncer_guard = threading.Lock()


def _sidecar(path: Path) -> Path:
    """The metadata file beside an object's bytes."""
    return path.with_name(path.name + META)


def _fsync_all(paths: Sequence[T], fsync: Callable[[T], None]) -> None:
    """fsync every path, at the same time: the file system serves concurrent fsyncs with one journal commit
    (ext4, xfs), so N of them take about as long as one. Returns when all are durable; the first error raises."""
    global _syncer
    if len(paths) <= 1:
        for path in paths:
            fsync(path)
        return
    with _syncer_guard:
        if _syncer is None:
            _syncer = ThreadPoolExecutor(max_workers=8, thread_name_prefix="fsync")
    for done in [_syncer.submit(fsync, p) for p in paths]:
        done.result()


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
