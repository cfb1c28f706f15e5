"""Backup and restore of what the archive cannot get back from elsewhere (docs/operations/backup.md).

A backup is a directory named by its UTC time holding: the catalogue (SQLite's online backup API, or
``pg_dump --format=custom``), the settings in force (secrets redacted), the certificate directory (encrypted with
AES-256-GCM under a scrypt key from ``ARCHIVE_BACKUP_PASSPHRASE_FILE``; without a passphrase only the certificates,
never a private key), the schedule versions as readable files, the object store's inventory (every key with its size
and SHA-256 as the store reports it), the keys the catalogue references, and ``manifest.json`` with the SHA-256 and
SM3 of every other file.

The objects themselves are not copied: the WORM store is replicated (storage/replicated.py), not backed up. The
inventory lets a restore prove that every object the restored catalogue references is still in the store.

Order matters for that proof: the catalogue is copied first and the inventory listed afterwards. Filing stores the
objects before it commits the rows naming them, so every key in the copy was in the store before the inventory began.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import shutil
import socket
import sqlite3
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import InstrumentedAttribute, Session

from archive import audit
from archive.audit import Actor
from archive.catalogue.db import safe_url
from archive.catalogue.models import (
    ArchiveItem,
    AuditEvent,
    DestructionList,
    Document,
    ScanBatch,
    TransferPackage,
    TransferReceipt,
)
from archive.context import Context
from archive.errors import ArchiveError, ConfigError, Conflict, NotFound
from archive.settings import Settings
from signing.fixity import digest_stream
from storage.base import ObjectNotFound, ObjectStore

FORMAT = 1
MANIFEST = "manifest.json"
CATALOGUE_FILES = {"sqlite": "catalogue.sqlite3", "postgresql": "catalogue.pgdump"}
SETTINGS_FILE = "settings.json"
PKI_ENCRYPTED = "pki.tar.enc"
PKI_PUBLIC = "pki-public.tar"
INVENTORY = "inventory.jsonl"
CATALOGUED = "catalogued-objects.txt"
SCHEDULES = "schedules"

MAGIC = b"HPF-ARCHIVE-BACKUP AES-256-GCM scrypt v1\n"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1  # ~0.1 s and 32 MB per derivation: cheap once, costly to guess
_SECRET_FIELD = re.compile(r"secret|password|passphrase(?!_file)|access_key|token", re.IGNORECASE)
_PRIVATE_SUFFIXES = {".p12", ".pfx", ".key"}

# Every catalogue column holding an object key, with the rows whose objects are gone on purpose (销毁) left out.
_OBJECT_COLUMNS: tuple[tuple[InstrumentedAttribute[Any], str], ...] = (
    (Document.original_key, "status <> 'destroyed'"),
    (ScanBatch.original_key, ""),
    (ArchiveItem.rendition_key, "status <> 'destroyed'"),
    (DestructionList.pdf_key, ""),
    (TransferPackage.zip_key, ""),
    (TransferReceipt.stored_key, ""),
)


class BackupError(ArchiveError):
    kind = "invalid"
    code = "backup_invalid"


# --- values ---------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Created:
    path: Path
    manifest: dict[str, Any]
    manifest_sha256: str


@dataclass
class Problem:
    subject: str  # a file of the backup, or an object key
    problem: str  # Chinese, for the operator


@dataclass
class Verified:
    path: Path
    manifest: dict[str, Any]
    files: int = 0
    catalogued: int = 0
    checked_live: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Restored:
    path: Path
    revision: str | None
    pki: str
    catalogued: int
    missing: list[Problem]


# --- passphrase and encryption --------------------------------------------------------------------------------------

def read_passphrase(settings: Settings) -> bytes | None:
    """The passphrase in ARCHIVE_BACKUP_PASSPHRASE_FILE (trailing newline removed), or None when unset."""
    path = settings.backup_passphrase_file
    if path is None:
        return None
    try:
        value = path.read_bytes().rstrip(b"\r\n")
    except OSError as exc:
        raise ConfigError(f"无法读取备份口令文件 {path}（ARCHIVE_BACKUP_PASSPHRASE_FILE）：{exc.strerror}",
                          code="backup_passphrase_unreadable", detail={"setting": "ARCHIVE_BACKUP_PASSPHRASE_FILE",
                                                                       "path": str(path)}) from None
    if len(value) < 8:
        raise ConfigError(f"备份口令文件 {path} 中的口令太短（至少 8 个字节）",
                          code="backup_passphrase_unreadable", detail={"setting": "ARCHIVE_BACKUP_PASSPHRASE_FILE",
                                                                       "path": str(path)})
    return value


def _key(passphrase: bytes, salt: bytes) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(passphrase)


def encrypt(data: bytes, passphrase: bytes) -> bytes:
    """MAGIC, 16-byte salt, 12-byte nonce, then AES-256-GCM of ``data`` (the header is authenticated too)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    header = MAGIC + salt + nonce
    return header + AESGCM(_key(passphrase, salt)).encrypt(nonce, data, header)


def decrypt(blob: bytes, passphrase: bytes, name: str) -> bytes:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 28 + 16:
        raise BackupError(f"{name} 不是本系统加密的证书备份", code="backup_invalid", detail={"file": name})
    salt = blob[len(MAGIC):len(MAGIC) + 16]
    nonce = blob[len(MAGIC) + 16:len(MAGIC) + 28]
    header = blob[:len(MAGIC) + 28]
    try:
        return AESGCM(_key(passphrase, salt)).decrypt(nonce, blob[len(header):], header)
    except InvalidTag:
        raise BackupError(f"备份口令不正确，无法解密 {name}；请核对 ARCHIVE_BACKUP_PASSPHRASE_FILE 中的口令"
                          "（须与创建备份时相同）", code="backup_passphrase_wrong", detail={"file": name}) from None


# --- pieces of a backup ---------------------------------------------------------------------------------------------

def _backend(url: str) -> str:
    return make_url(url).get_backend_name()


def _sqlite_file(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise ConfigError("内存中的 SQLite 目录数据库无法备份", code="backup_unsupported_catalogue",
                          detail={"database": safe_url(url)})
    return Path(database)


def redacted_settings(settings: Settings) -> dict[str, Any]:
    """The settings in force, secrets replaced by ``***`` (empty ones left empty: their absence is information)."""
    values = settings.model_dump(mode="json")
    for name, value in values.items():
        if _SECRET_FIELD.search(name) and value:
            values[name] = "***"
    if values.get("database_url"):
        values["database_url"] = safe_url(values["database_url"])
    values["catalogue_url"] = safe_url(settings.catalogue_url)
    return values


def _is_private(path: Path) -> bool:
    if path.suffix.lower() in _PRIVATE_SUFFIXES:
        return True
    with path.open("rb") as f:
        return b"PRIVATE KEY" in f.read(1 << 16)


EXTERNAL = "external/"  # tar members for signer files configured outside the certificate directory


def external_files(settings: Settings) -> dict[str, Path]:
    """The signer's certificate, key and chain when configured outside ``pki_dir`` (ARCHIVE_SIGNER_CERT, …)."""
    pki_dir = settings.pki_path.absolute()
    files = {"signer-cert": settings.signer_cert, "signer-key": settings.signer_key,
             "signer-chain": settings.signer_chain}
    return {role: path for role, path in files.items()
            if path is not None and not path.absolute().is_relative_to(pki_dir)}


def _pki_tar(pki_dir: Path, external: dict[str, Path], include_private: bool) -> tuple[bytes, list[str]]:
    """A tar of the certificate directory and the external signer files; without ``include_private``, private keys
    are left out (and named)."""
    buffer, omitted = io.BytesIO(), []
    files = [(p, p.relative_to(pki_dir).as_posix()) for p in sorted(pki_dir.rglob("*")) if p.is_file()] \
        if pki_dir.is_dir() else []
    files += [(path, EXTERNAL + role) for role, path in external.items()]
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, arcname in files:
            if not path.is_file():
                raise ConfigError(f"签章文件 {path} 不存在，无法备份；请检查 ARCHIVE_SIGNER_CERT / "
                                  "ARCHIVE_SIGNER_KEY / ARCHIVE_SIGNER_CHAIN", code="backup_signer_file_missing",
                                  detail={"path": str(path)})
            if not include_private and _is_private(path):
                omitted.append(str(path) if arcname.startswith(EXTERNAL) else arcname)
                continue
            tar.add(path, arcname=arcname, recursive=False)
    return buffer.getvalue(), omitted


def _object_sql() -> list[str]:
    return [f"SELECT {col.key} FROM {col.class_.__tablename__} WHERE {col.key} IS NOT NULL"
            + (f" AND {extra}" if extra else "") for col, extra in _OBJECT_COLUMNS]


Query = Callable[[str], list[tuple[Any, ...]]]


def _snapshot_facts(query: Query) -> tuple[str | None, set[str], list[tuple[Any, ...]]]:
    """Revision, referenced object keys and schedule versions, read from one consistent view of the catalogue."""
    rows = query("SELECT version_num FROM alembic_version")
    keys = {str(key) for sql in _object_sql() for (key,) in query(sql)}
    versions = query("SELECT ref, label, digest, source, text, first_seen, first_seen_by FROM schedule_version "
                     "ORDER BY id")
    return (str(rows[0][0]) if rows else None), keys, versions


def _copy_sqlite(url: str, target: Path) -> tuple[str | None, set[str], list[tuple[Any, ...]]]:
    source = _sqlite_file(url)
    if not source.exists():
        raise ConfigError(f"目录数据库文件 {source} 不存在，没有可备份的内容", code="catalogue_not_migrated",
                          detail={"database": str(source)})
    src = sqlite3.connect(str(source))
    dst = sqlite3.connect(str(target))
    try:
        src.backup(dst)  # the online backup API: a consistent copy while the archive keeps writing
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file: no -wal or -shm beside it
        cursor = dst.cursor()
        return _snapshot_facts(lambda sql: cursor.execute(sql).fetchall())
    finally:
        dst.close()
        src.close()


def pg_command(url: str, tool: str, *args: str) -> tuple[list[str], dict[str, str]]:
    """``tool`` with the connection parameters of ``url``; the password goes into PGPASSWORD, never on the
    command line (where ps would show it)."""
    u = make_url(url)
    command = [tool]
    if u.host:
        command += ["--host", u.host]
    if u.port:
        command += ["--port", str(u.port)]
    if u.username:
        command += ["--username", u.username]
    command += ["--no-password", *args, "--dbname", u.database or "postgres"]
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    for param, var in (("sslmode", "PGSSLMODE"), ("sslrootcert", "PGSSLROOTCERT"), ("sslcert", "PGSSLCERT"),
                       ("sslkey", "PGSSLKEY")):
        value = u.query.get(param)
        if isinstance(value, str):
            env[var] = value
    return command, env


def run_tool(command: list[str], env: dict[str, str] | None = None) -> str:
    """Run pg_dump / pg_restore; its failure as a BackupError quoting the tool's own words."""
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise ConfigError(f"找不到 {command[0]}：请安装与数据库服务器同版本的 PostgreSQL 客户端工具"
                          "（Debian：apt-get install postgresql-client）", code="backup_tool_missing",
                          detail={"tool": command[0]}) from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        reason = lines[-1] if lines else f"退出码 {done.returncode}"
        raise BackupError(f"{command[0]} 执行失败：{reason}", code="backup_tool_failed", kind="failed",
                          detail={"tool": command[0], "stderr": lines[-20:]})
    return done.stdout


def _dump_postgres(ctx: Context, target: Path) -> tuple[str | None, set[str], list[tuple[Any, ...]]]:
    # pg_dump runs in a snapshot exported by this transaction, so the dump and the keys read here agree exactly.
    with ctx.catalogue.engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
        snapshot = str(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())
        command, env = pg_command(ctx.settings.catalogue_url, "pg_dump", "--format=custom",
                                  f"--snapshot={snapshot}", f"--file={target}")
        run_tool(command, env)
        return _snapshot_facts(lambda sql: _rows(conn, sql))


def _rows(conn: Connection, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.exec_driver_sql(sql).all()]


def _safe_name(ref: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", ref).strip("._") or "schedule"


def _write_schedules(directory: Path, versions: list[tuple[Any, ...]]) -> None:
    directory.mkdir()
    index = []
    for ref, label, digest, source, text, first_seen, by in versions:
        name = f"{_safe_name(str(ref))}.toml"
        (directory / name).write_text(str(text), encoding="utf-8")
        index.append({"ref": ref, "label": label, "digest": digest, "source": source, "file": name,
                      "first_seen": str(first_seen), "first_seen_by": by})
    (directory / "versions.json").write_text(json.dumps(index, ensure_ascii=False, indent=2), encoding="utf-8")


def _write_inventory(store: ObjectStore, target: Path) -> tuple[int, int]:
    count = total = 0
    with target.open("w", encoding="utf-8") as f:
        for key in store.list_keys(""):
            try:
                info = store.stat(key)
            except ObjectNotFound:
                continue  # removed between list and stat (gc of an orphan): not part of this inventory
            f.write(json.dumps({"key": key, "size": info.size, "sha256": info.sha256}) + "\n")
            count, total = count + 1, total + info.size
    return count, total


def _digest_files(root: Path) -> dict[str, dict[str, Any]]:
    files = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel == MANIFEST:
            continue
        with path.open("rb") as f:
            d = digest_stream(f)
        files[rel] = {"size": d.size, "sha256": d.sha256, "sm3": d.sm3}
    return files


def program_version() -> str:
    try:
        return metadata.version("hpf-archive")
    except metadata.PackageNotFoundError:
        return "unknown"


# --- create ---------------------------------------------------------------------------------------------------------

def create(ctx: Context, actor: Actor, to: Path | None = None, passphrase: bytes | None = None,
           now: datetime | None = None) -> Created:
    """Write a backup under ``to`` (default ARCHIVE_BACKUP_DIR); audited as backup.create with its outcome."""
    target = to or ctx.settings.backup_path
    try:
        try:
            created = _create(ctx, actor, target, passphrase, now or datetime.now(UTC))
        except (OSError, sqlite3.Error) as exc:
            raise BackupError(f"无法在 {target} 写入备份：{getattr(exc, 'strerror', None) or exc}",
                              code="backup_write_failed", kind="failed", detail={"to": str(target)}) from exc
    except Exception as exc:
        code = getattr(exc, "code", type(exc).__name__)
        try:
            with ctx.catalogue.session() as s:
                audit.record(s, actor, "backup.create", target_type="backup", outcome="failure",
                             detail={"code": code, "to": str(target)})
        except Exception:  # the catalogue itself may be what failed: the original error is the one to report
            pass
        raise
    with ctx.catalogue.session() as s:
        m = created.manifest
        audit.record(s, actor, "backup.create", target_type="backup", target_id=m["name"], detail={
            "path": str(created.path), "manifest_sha256": created.manifest_sha256,
            "revision": m["catalogue"]["revision"], "objects": m["inventory"]["objects"],
            "catalogued_objects": m["catalogued_objects"]["count"], "pki": m["pki"]["mode"]})
    return created


def _create(ctx: Context, actor: Actor, to: Path, passphrase: bytes | None, now: datetime) -> Created:
    settings = ctx.settings
    backend = _backend(settings.catalogue_url)
    to.mkdir(parents=True, exist_ok=True)
    name = f"backup-{now:%Y%m%dT%H%M%SZ}"
    for n in range(2, 100):
        if not (to / name).exists():
            break
        name = f"backup-{now:%Y%m%dT%H%M%SZ}-{n}"
    work = to / f".{name}.partial"  # renamed when complete: a half-written backup never looks like one
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(mode=0o700)  # the catalogue copy holds personal data (证件号码): the operator's eyes only
    try:
        catalogue_file = CATALOGUE_FILES[backend]
        if backend == "sqlite":
            revision, keys, versions = _copy_sqlite(settings.catalogue_url, work / catalogue_file)
        else:
            revision, keys, versions = _dump_postgres(ctx, work / catalogue_file)
        (work / CATALOGUED).write_text("".join(f"{k}\n" for k in sorted(keys)), encoding="utf-8")
        _write_schedules(work / SCHEDULES, versions)
        (work / SETTINGS_FILE).write_text(json.dumps(redacted_settings(settings), ensure_ascii=False, indent=2),
                                          encoding="utf-8")
        pki = _backup_pki(settings, work, passphrase)
        objects, total = _write_inventory(ctx.store, work / INVENTORY)  # after the catalogue: see the module doc
        manifest = {
            "format": FORMAT, "name": name, "created_at": now.isoformat(), "by": actor.name,
            "host": socket.gethostname(), "program_version": program_version(),
            "catalogue": {"backend": backend, "file": catalogue_file, "revision": revision,
                          "database": safe_url(settings.catalogue_url)},
            "catalogued_objects": {"file": CATALOGUED, "count": len(keys)},
            "inventory": {"file": INVENTORY, "store": settings.storage, "objects": objects, "bytes": total,
                          "note": "对象本身不在备份中：归档存储为一次写入（WORM）并有副本，备份只记录其清单"},
            "schedules": {"dir": SCHEDULES, "versions": len(versions)},
            "settings": {"file": SETTINGS_FILE, "note": "口令与密钥已替换为 ***"},
            "pki": pki,
            "files": _digest_files(work),
        }
        data = json.dumps(manifest, ensure_ascii=False, indent=2).encode("utf-8")
        (work / MANIFEST).write_bytes(data)
        work.rename(to / name)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return Created(to / name, manifest, digest_stream(io.BytesIO(data)).sha256)


def _backup_pki(settings: Settings, work: Path, passphrase: bytes | None) -> dict[str, Any]:
    pki_dir, external = settings.pki_path, external_files(settings)
    common: dict[str, Any] = {"external": {role: str(path) for role, path in external.items()}}
    if settings.signer == "pkcs11":  # the key never leaves the token: it is the HSM's own backup that keeps it
        common["hsm"] = "签章私钥在 HSM（PKCS#11）中，不在本备份内；请按 HSM 厂商的密钥备份流程另行备份"
    if not external and (not pki_dir.is_dir() or not any(p.is_file() for p in pki_dir.rglob("*"))):
        return {"mode": "absent", "note": f"证书目录 {pki_dir} 不存在或为空", **common}
    if passphrase is not None:
        data, _ = _pki_tar(pki_dir, external, include_private=True)
        (work / PKI_ENCRYPTED).write_bytes(encrypt(data, passphrase))
        return {"mode": "encrypted", "file": PKI_ENCRYPTED, "cipher": "AES-256-GCM",
                "kdf": f"scrypt(n={SCRYPT_N}, r={SCRYPT_R}, p={SCRYPT_P})", **common}
    data, omitted = _pki_tar(pki_dir, external, include_private=False)
    (work / PKI_PUBLIC).write_bytes(data)
    return {"mode": "public_only", "file": PKI_PUBLIC, "omitted_private_keys": omitted,
            "note": "未设置 ARCHIVE_BACKUP_PASSPHRASE_FILE：私钥未备份（不以明文保存私钥），须另行保管", **common}


# --- verify ---------------------------------------------------------------------------------------------------------

def load_manifest(path: Path) -> dict[str, Any]:
    file = path / MANIFEST
    if not path.is_dir():
        raise NotFound(f"备份目录 {path} 不存在", code="backup_not_found", detail={"path": str(path)})
    if not file.is_file():
        raise NotFound(f"{path} 中没有 {MANIFEST}：不是备份目录，或备份未完成", code="backup_not_found",
                       detail={"path": str(path)})
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BackupError(f"{file} 无法解析：{exc}", code="backup_manifest_invalid",
                          detail={"file": MANIFEST}) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT \
            or not isinstance(manifest.get("files"), dict):
        raise BackupError(f"{file} 不是本程序能读取的备份清单（格式版本 {FORMAT}）", code="backup_manifest_invalid",
                          detail={"file": MANIFEST})
    return manifest


def _inside(root: Path, rel: str) -> Path | None:
    p = PurePosixPath(rel)
    if p.is_absolute() or ".." in p.parts or not rel:
        return None
    return root / p


def recorded_manifest_digest(session: Session, name: str) -> str | None:
    """The manifest digest the audit log recorded for backup ``name`` (at create, or at a restore from it)."""
    detail = session.scalar(select(AuditEvent.detail).where(AuditEvent.action.in_(("backup.create", "backup.restore")),
                                                            AuditEvent.target_id == name)
                            .order_by(AuditEvent.seq.desc()).limit(1))
    value = (detail or {}).get("manifest_sha256")
    return str(value) if value else None


def manifest_digest(path: Path) -> str:
    with (path / MANIFEST).open("rb") as f:
        return digest_stream(f).sha256


def verify(path: Path, store: ObjectStore | None = None, recorded_digest: str | None = None) -> Verified:
    """Check a backup: every file against the manifest, the catalogue copy opens, every catalogued object is in the
    inventory and (with ``store``) in the store now with the digest the inventory recorded. ``recorded_digest``: the
    manifest's SHA-256 as the audit log holds it; the manifest itself is then checked too."""
    manifest = load_manifest(path)
    report = Verified(path, manifest)
    if recorded_digest is not None and manifest_digest(path) != recorded_digest:
        report.problems.append(Problem(MANIFEST, "备份清单与审计日志记录的摘要不符：清单本身被改动过"))
    good: set[str] = set()
    for rel, want in sorted(manifest["files"].items()):
        file = _inside(path, rel)
        if file is None:
            report.problems.append(Problem(rel, "清单中的文件名不合法"))
            continue
        if not file.is_file():
            report.problems.append(Problem(rel, "文件缺失"))
            continue
        with file.open("rb") as f:
            d = digest_stream(f)
        report.files += 1
        if (d.size, d.sha256, d.sm3) != (want.get("size"), want.get("sha256"), want.get("sm3")):
            report.problems.append(Problem(rel, "内容与备份清单不符（大小或 SHA-256/SM3 摘要不一致），"
                                                "文件已被改动或损坏"))
            continue
        good.add(rel)
    for extra in sorted(set(_digest_names(path)) - set(manifest["files"]) - {MANIFEST}):
        report.problems.append(Problem(extra, "备份清单中没有此文件（备份后被加入）"))
    catalogue = manifest.get("catalogue", {})
    if catalogue.get("file") in good:
        problem = _check_catalogue(path / catalogue["file"], catalogue)
        if problem:
            report.problems.append(Problem(catalogue["file"], problem))
    elif catalogue.get("file") not in manifest["files"]:
        report.problems.append(Problem(str(catalogue.get("file")), "备份中没有目录数据库"))
    if CATALOGUED in good and INVENTORY in good:
        keys = _read_keys(path / CATALOGUED)
        inventory = _read_inventory(path / INVENTORY)
        report.catalogued = len(keys)
        for key in keys:
            if key not in inventory:
                report.problems.append(Problem(key, "目录数据库登记的对象不在备份时的存储清单中"))
            elif store is not None:
                report.checked_live += 1
                problem = _check_live(store, key, inventory[key])
                if problem:
                    report.problems.append(Problem(key, problem))
    return report


def _digest_names(root: Path) -> Iterator[str]:
    for p in root.rglob("*"):
        if p.is_file():
            yield p.relative_to(root).as_posix()


def _check_catalogue(file: Path, catalogue: dict[str, Any]) -> str | None:
    if catalogue.get("backend") == "sqlite":
        try:
            conn = sqlite3.connect(f"file:{file}?mode=ro", uri=True)
            try:
                result = conn.execute("PRAGMA integrity_check").fetchall()
                revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            return f"目录数据库副本无法打开：{exc}"
        if result != [("ok",)]:
            return "目录数据库副本未通过完整性检查（integrity_check）：" + "；".join(str(r[0]) for r in result[:5])
        found = revision[0] if revision else None
        if found != catalogue.get("revision"):
            return f"目录数据库副本的版本 {found} 与备份清单记录的 {catalogue.get('revision')} 不符"
        return None
    try:
        listing = run_tool(["pg_restore", "--list", str(file)])
    except BackupError as exc:
        return f"目录数据库转储无法读取（pg_restore --list）：{exc.message}"
    if "TABLE DATA" not in listing:
        return "目录数据库转储中没有任何表数据"
    return None


def _read_keys(file: Path) -> list[str]:
    return [line for line in file.read_text(encoding="utf-8").splitlines() if line]


def _read_inventory(file: Path) -> dict[str, dict[str, Any]]:
    inventory = {}
    with file.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                inventory[row["key"]] = row
    return inventory


def _check_live(store: ObjectStore, key: str, recorded: dict[str, Any]) -> str | None:
    try:
        info = store.stat(key)
    except ObjectNotFound:
        return "对象在存储中缺失"
    if info.sha256 != recorded.get("sha256") or info.size != recorded.get("size"):
        return "存储中的对象与备份时的清单不符（大小或 SHA-256 不同）"
    return None


# --- restore --------------------------------------------------------------------------------------------------------

def catalogue_in_use(ctx: Context) -> bool:
    """The configured catalogue holds tables already (a restore would overwrite it)."""
    url = ctx.settings.catalogue_url
    if _backend(url) == "sqlite":
        file = _sqlite_file(url)
        if not file.exists() or file.stat().st_size == 0:
            return False
    ctx.catalogue.ping()
    return bool(inspect(ctx.catalogue.engine).get_table_names())


def restore(ctx: Context, actor: Actor, path: Path, passphrase: bytes | None, overwrite: bool = False,
            pki_only: bool = False) -> Restored:
    """Restore the catalogue and the certificates of a verified backup; report catalogued objects the store lacks.
    ``pki_only``: the certificates alone (after a point-in-time recovery of the catalogue, say).

    Everything that can refuse (a damaged backup, a wrong passphrase, a catalogue in use) refuses before anything
    is written. Audited in the restored catalogue, whose chain thus continues.
    """
    checked = verify(path)
    if not checked.ok:
        first = checked.problems[0]
        raise BackupError(f"备份 {path} 未通过校验（{len(checked.problems)} 项问题，第一项：{first.subject} "
                          f"{first.problem}），未恢复任何内容；请运行 `archive backup verify` 查看",
                          code="backup_invalid", detail=[vars(p) for p in checked.problems[:50]])
    manifest = checked.manifest
    catalogue = manifest["catalogue"]
    backend = _backend(ctx.settings.catalogue_url)
    if catalogue["backend"] != backend and not pki_only:
        raise Conflict(f"备份的目录数据库是 {catalogue['backend']}，当前配置的是 {backend}（ARCHIVE_DATABASE_URL），"
                       "不能直接恢复", code="backup_wrong_backend",
                       detail={"backup": catalogue["backend"], "configured": backend})
    if not pki_only:
        _check_revision(ctx, catalogue.get("revision"), str(manifest.get("program_version")))
    pki = manifest.get("pki", {})
    tar = _pki_payload(path, pki, passphrase)
    pki_dir = ctx.settings.pki_path
    targets = _targets(ctx.settings, pki.get("external", {}))
    if pki_only:
        ctx.catalogue.check_schema()  # the audit event goes into the catalogue in place
    if not overwrite:
        if not pki_only and catalogue_in_use(ctx):
            raise Conflict(f"目录数据库 {safe_url(ctx.settings.catalogue_url)} 中已有数据；恢复会覆盖它。"
                           "确认要覆盖时请加 --yes", code="backup_target_not_empty",
                           detail={"database": safe_url(ctx.settings.catalogue_url)})
        clashes = _pki_clashes(tar, targets) if tar else []
        if clashes:
            raise Conflict(f"证书目录 {pki_dir} 中已有不同的 {clashes[0]} 等 {len(clashes)} 个文件；恢复会覆盖它们。"
                           "确认要覆盖时请加 --yes", code="backup_target_not_empty",
                           detail={"pki_dir": str(pki_dir), "files": clashes})
    if not pki_only:
        _restore_catalogue(ctx, backend, path / catalogue["file"])
    if tar:
        _extract_pki(tar, targets)
    try:
        ctx.catalogue.check_schema()
    except ConfigError as exc:
        if exc.code != "catalogue_outdated":
            raise
        raise ConfigError(f"目录数据库已恢复，但它来自旧版本程序：{exc.message}；迁移后再运行 "
                          f"`archive backup verify {path}` 核对存储中的对象", code=exc.code,
                          detail=exc.detail) from None
    with ctx.catalogue.reading() as s:
        keys = sorted({str(k) for sql in _object_sql() for (k,) in _rows(s.connection(), sql)})
    missing = []
    for key in keys:
        try:
            ctx.store.stat(key)
        except ObjectNotFound:
            missing.append(Problem(key, "对象在存储中缺失"))
    revision = ctx.catalogue.current_revision()
    with ctx.catalogue.session() as s:  # a restore that leaves objects missing did not give back a whole archive
        audit.record(s, actor, "backup.restore", target_type="backup", target_id=manifest["name"],
                     outcome="failure" if missing else "success", detail={
                         "path": str(path), "created_at": manifest["created_at"], "revision": revision,
                         "manifest_sha256": manifest_digest(path), "pki_only": pki_only,
                         "pki": pki.get("mode"), "catalogued_objects": len(keys), "missing_objects": len(missing),
                         "missing": [p.subject for p in missing[:100]]})
    return Restored(path, revision, str(pki.get("mode")), len(keys), missing)


def known_revisions(url: str) -> set[str]:
    """Every catalogue revision this program's migrations know."""
    from alembic.script import ScriptDirectory

    from archive.catalogue.db import alembic_config

    return {rev.revision for rev in ScriptDirectory.from_config(alembic_config(url)).walk_revisions()}


def _check_revision(ctx: Context, revision: str | None, version: str) -> None:
    """A backup from a newer program cannot be restored by this one (it would not know the schema)."""
    if revision not in known_revisions(ctx.settings.catalogue_url):
        raise ConfigError(f"备份的目录数据库版本 {revision} 比本程序新（或未知），未恢复任何内容；请用创建备份的"
                          f"程序版本 {version} 或更新的版本恢复", code="catalogue_newer_than_code",
                          detail={"revision": revision, "program_version": version})


def _restore_catalogue(ctx: Context, backend: str, file: Path) -> None:
    ctx.catalogue.dispose()
    if backend == "sqlite":
        _restore_sqlite(file, _sqlite_file(ctx.settings.catalogue_url))
    else:
        ctx.catalogue.ping()
        command, env = pg_command(ctx.settings.catalogue_url, "pg_restore", "--clean", "--if-exists", "--no-owner",
                                  "--no-privileges", "--single-transaction", "--exit-on-error")
        run_tool([*command, str(file)], env)
    ctx.catalogue.dispose()  # connections opened before the restore may hold the old schema's state


def _pki_payload(path: Path, pki: dict[str, Any], passphrase: bytes | None) -> bytes | None:
    if pki.get("mode") == "encrypted":
        if passphrase is None:
            raise ConfigError("备份中的证书与私钥已加密，请用 ARCHIVE_BACKUP_PASSPHRASE_FILE 指定创建备份时的口令文件",
                              code="backup_passphrase_missing",
                              detail={"setting": "ARCHIVE_BACKUP_PASSPHRASE_FILE"})
        return decrypt((path / pki["file"]).read_bytes(), passphrase, pki["file"])
    if pki.get("mode") == "public_only":
        return (path / pki["file"]).read_bytes()
    return None


def _members(tar_bytes: bytes) -> Iterator[tuple[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r") as tar:
        for member in tar.getmembers():
            if not member.isfile() or _inside(Path("."), member.name) is None:
                raise BackupError(f"证书备份中有不合法的条目 {member.name}", code="backup_invalid",
                                  detail={"member": member.name})
            f = tar.extractfile(member)
            assert f is not None
            yield member.name, f.read()


@dataclass(frozen=True)
class _Targets:
    pki_dir: Path
    external: dict[str, Path]  # role -> where it goes: the path configured now, else the one it was backed up from

    def of(self, name: str) -> Path:
        if name.startswith(EXTERNAL):
            role = name.removeprefix(EXTERNAL)
            if role not in self.external:
                raise BackupError(f"证书备份中有未知的条目 {name}", code="backup_invalid", detail={"member": name})
            return self.external[role]
        return self.pki_dir / name


def _targets(settings: Settings, recorded: dict[str, str]) -> _Targets:
    configured = external_files(settings)
    return _Targets(settings.pki_path, {role: configured.get(role) or Path(path) for role, path in recorded.items()})


def _pki_clashes(tar_bytes: bytes, targets: _Targets) -> list[str]:
    clashes = []
    for name, data in _members(tar_bytes):
        existing = targets.of(name)
        if existing.exists() and existing.read_bytes() != data:
            clashes.append(str(existing) if name.startswith(EXTERNAL) else name)
    return clashes


def _extract_pki(tar_bytes: bytes, targets: _Targets) -> None:
    targets.pki_dir.mkdir(parents=True, exist_ok=True)
    for name, data in _members(tar_bytes):
        target = targets.of(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".restoring")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # keys never readable by others
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if b"PRIVATE KEY" not in data and target.suffix.lower() not in _PRIVATE_SUFFIXES:
            os.chmod(tmp, 0o644)
        os.replace(tmp, target)


def _restore_sqlite(copy: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".restoring")
    shutil.copyfile(copy, tmp)
    for suffix in ("-wal", "-shm", "-journal"):  # the old file's journal must not be replayed onto the new one
        target.with_name(target.name + suffix).unlink(missing_ok=True)
    os.replace(tmp, target)
