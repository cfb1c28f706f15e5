"""Virus scanning (病毒检测) with ClamAV: clamd over its socket, or clamscan as a subprocess.

The security items (GD-4-1 杀毒软件, GD-4-2 病毒感染) use the scanner of :func:`archive.wiring.scanner_from_settings`;
with neither ARCHIVE_CLAMD_SOCKET nor ARCHIVE_CLAMSCAN set there is no scanner and those items say so. A scan that
cannot run raises :class:`ScanFailed` (the check becomes an ``error`` result: fail closed).
"""

from __future__ import annotations

import hashlib
import re
import socket
import struct
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

CHUNK = 1 << 20


class ScanFailed(Exception):
    """The scanner could not scan (not running, timed out, crashed)."""


@dataclass(frozen=True)
class EngineInfo:
    """What the environment item (GD-4-1) records: engine and signature database version."""

    kind: str  # clamd | clamscan
    engine: str  # e.g. "ClamAV 1.4.6"
    database: str | None  # e.g. "27500" (daily.cvd version) or a description of a local database
    database_date: datetime | None = None


@dataclass(frozen=True)
class Finding:
    name: str  # the scanned file's name
    signature: str  # what ClamAV found, e.g. "Win.Test.EICAR_HDB-1"


class Scanner(Protocol):
    def info(self) -> EngineInfo: ...

    def scan(self, files: Sequence[tuple[str, bytes]]) -> list[Finding]: ...


def _parse_version(text: str) -> tuple[str, str | None, datetime | None]:
    """``ClamAV 1.4.6/27500/Sat Nov 28 09:00:00 2026`` → engine, database version, database date."""
    engine, _, rest = text.strip().strip("\0").partition("/")
    if not rest:
        return engine, None, None
    version, _, when = rest.partition("/")
    try:
        date = datetime.strptime(when.strip(), "%a %b %d %H:%M:%S %Y").replace(tzinfo=UTC) if when else None
    except ValueError:
        date = None
    return engine, version or None, date


class Clamd:
    """clamd's own protocol (z-commands, INSTREAM) over a Unix socket or ``tcp://host:port``."""

    def __init__(self, address: str, timeout: float) -> None:
        self.address, self.timeout = address, timeout

    def _connect(self) -> socket.socket:
        try:
            if self.address.startswith("tcp://"):
                host, _, port = self.address[6:].rpartition(":")
                return socket.create_connection((host, int(port)), timeout=self.timeout)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            sock.connect(self.address)
            return sock
        except (OSError, ValueError) as exc:
            raise ScanFailed(f"无法连接 clamd（{self.address}）：{exc}") from exc

    def _command(self, command: bytes, payload: bytes | None = None) -> str:
        with self._connect() as sock:
            try:
                sock.sendall(b"z" + command + b"\0")
                if payload is not None:
                    for i in range(0, len(payload), CHUNK):
                        part = payload[i:i + CHUNK]
                        sock.sendall(struct.pack("!L", len(part)) + part)
                    sock.sendall(struct.pack("!L", 0))
                reply = b""
                while not reply.endswith(b"\0"):
                    data = sock.recv(4096)
                    if not data:
                        break
                    reply += data
            except OSError as exc:
                raise ScanFailed(f"clamd（{self.address}）通信失败：{exc}") from exc
        return reply.decode("utf-8", "replace").strip("\0").strip()

    def info(self) -> EngineInfo:
        engine, database, date = _parse_version(self._command(b"VERSION"))
        return EngineInfo("clamd", engine, database, date)

    def scan(self, files: Sequence[tuple[str, bytes]]) -> list[Finding]:
        found = []
        for name, data in files:
            reply = self._command(b"INSTREAM", data)
            if reply.endswith("FOUND"):
                found.append(Finding(name, reply.removeprefix("stream:").removesuffix("FOUND").strip()))
            elif not reply.endswith("OK"):
                raise ScanFailed(f"clamd 扫描“{name}”出错：{reply}")
        return found


class Clamscan:
    """The clamscan command: one run per item (it loads its database each time: fine for small ones)."""

    _LINE = re.compile(r"^(?P<path>.+): (?P<sig>\S+) FOUND$")

    def __init__(self, binary: Path, database: Path | None, timeout: float) -> None:
        self.binary, self.database, self.timeout = binary, database, timeout

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        db = ["-d", str(self.database)] if self.database else []
        try:
            return subprocess.run([str(self.binary), *db, *args], capture_output=True, text=True,
                                  timeout=self.timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ScanFailed(f"clamscan（{self.binary}）无法运行：{exc}") from exc

    def info(self) -> EngineInfo:
        engine, database, date = _parse_version(self._run("--version").stdout)
        if database is None and self.database is not None:
            database = _describe_database(self.database)
        return EngineInfo("clamscan", engine, database, date)

    def scan(self, files: Sequence[tuple[str, bytes]]) -> list[Finding]:
        with tempfile.TemporaryDirectory(prefix="archive-scan-") as tmp:
            paths = {}
            for i, (name, data) in enumerate(files):
                path = Path(tmp) / f"{i:04d}"
                path.write_bytes(data)
                paths[str(path)] = name
            done = self._run("--no-summary", "--infected", "--stdout", *paths)
            if done.returncode not in (0, 1):
                said = (done.stderr or done.stdout).strip()[:300]
                raise ScanFailed(f"clamscan 出错（退出码 {done.returncode}）：{said}")
            found = []
            for line in done.stdout.splitlines():
                m = self._LINE.match(line.strip())
                if m and m["path"] in paths:
                    found.append(Finding(paths[m["path"]], m["sig"]))
            if done.returncode == 1 and not found:
                raise ScanFailed(f"clamscan 报告发现病毒但输出无法解析：{done.stdout.strip()[:300]}")
        return found


def _describe_database(path: Path) -> str:
    """A local (self-made) signature database has no version: name it by content digest and date."""
    files = sorted(p for p in ([path] if path.is_file() else path.iterdir()) if p.is_file())
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()[:16]
    newest = max((p.stat().st_mtime for p in files), default=0)
    when = datetime.fromtimestamp(newest, UTC).strftime("%Y-%m-%d")
    return f"本地签名库 {path.name}（{len(files)} 个文件，sha256 {digest}，{when}）"


def database_age_days(info: EngineInfo, now: datetime | None = None) -> float | None:
    if info.database_date is None:
        return None
    return ((now or datetime.now(UTC)) - info.database_date).total_seconds() / 86400

