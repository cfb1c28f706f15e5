"""Helpers shared by the benchmark scripts (imported as ``_common``: bench/ is the script's directory)."""

from __future__ import annotations

import io
import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

# this checkout's code, not whatever the shared venv's editable install points at (benches import _common first)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PG_ADMIN_URL = os.environ.get("ARCHIVE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def scan_jpeg(seed: int) -> bytes:
    """An A4 page at 200 dpi with scanner-like grain, about 300 KB."""
    base = Image.effect_noise((1654, 2339), 24 + seed % 3).point(lambda v: 200 + v // 5)
    buf = io.BytesIO()
    base.save(buf, "JPEG", quality=72, dpi=(200, 200))
    return buf.getvalue()


def with_comment(jpeg: bytes, text: str) -> bytes:
    """The same JPEG with a comment segment (COM) after SOI: distinct bytes, the same image. Bytes after EOI would
    be refused at upload as a possible polyglot."""
    body = text.encode()
    return jpeg[:2] + b"\xff\xfe" + (len(body) + 2).to_bytes(2, "big") + body + jpeg[2:]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    """The p-th percentile of durations in seconds, in milliseconds."""
    return sorted(values)[min(len(values) - 1, round(p / 100 * (len(values) - 1)))] * 1000


@contextmanager
def databases(pg_admin_url: str, tag: str) -> Iterator[list[tuple[str, str]]]:
    """(name, URL) of an empty SQLite catalogue and, when the server answers, a fresh PostgreSQL database that
    is dropped afterwards."""
    targets = [("sqlite", f"sqlite:///{tempfile.mkdtemp()}/bench.db")]
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    pg_name = f"archive_bench_{tag}_{os.getpid()}"
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{pg_name}"'))
        targets.append(("postgresql", make_url(pg_admin_url).set(database=pg_name).render_as_string(False)))
    except Exception as exc:
        print(f"postgresql skipped: {exc}")
    try:
        yield targets
    finally:
        if len(targets) > 1:
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
        admin.dispose()
