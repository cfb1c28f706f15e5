"""Catalogued, stored items for the storage-check tests, written straight to the catalogue and the store.

Filing through the API (tests/test_filing.py) makes the same rows; doing it directly keeps a test with
dozens of items fast. Renditions are real signed PDFs, so signature validation has something to check.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from sqlalchemy import select, text

from archive.catalogue.models import ArchiveItem, Case, Document, Fonds
from archive.context import Context
from signing.fixity import Digests, digest_bytes
from signing.pades import sign_pdf
from storage.base import ObjectStore, content_key
from storage.filesystem import FilesystemStore
from tests import samples


@dataclass(frozen=True)
class Stored:
    serial: str
    archival_code: str
    rendition_key: str
    original_keys: list[str]


@cache
def _unsigned_pdf() -> bytes:
    return samples.pdf(1)


def signed_pdf(ctx: Context) -> bytes:
    """A freshly signed PDF (each one differs: the signing time is inside)."""
    return sign_pdf(_unsigned_pdf(), ctx.signer, check_pdfa=False)


def put(store: ObjectStore, prefix: str, data: bytes) -> tuple[str, Digests]:
    d = digest_bytes(data)
    key = content_key(prefix, d.sha256)
    store.put(key, io.BytesIO(data), size=d.size, sha256=d.sha256, sm3=d.sm3)
    return key, d


def add_item(ctx: Context, n: int, *, originals: int = 1, rendition: bytes | None = None,
             status: str = "filed") -> Stored:
    """Item number ``n``: a filed case with ``originals`` random originals and a signed rendition."""
    store = ctx.store
    serial = f"YW20260105{n:05d}"
    code = f"J001-YW·2026-D30-TQ-{n:06d}"
    pdf = rendition if rendition is not None else signed_pdf(ctx)
    rkey, rd = put(store, "renditions", pdf)
    with ctx.catalogue.session() as s:
        fonds = s.scalar(select(Fonds))
        assert fonds is not None
        now = datetime(2026, 1, 5, 8, tzinfo=UTC)
        case = Case(serial=serial, fonds_id=fonds.id, category="TQ", business_type="TQ01", status="filed",
                    branch="本部", clerk="clerk01", accepted_at=now, closed_at=now)
        s.add(case)
        s.flush()
        keys = []
        for i in range(originals):
            data = os.urandom(2048 + 97 * i) + serial.encode()
            okey, od = put(store, "originals", data)
            keys.append(okey)
            s.add(Document(case_id=case.id, sequence=i + 1, material_type="application_form", filename=f"{i}.bin",
                           original_key=okey, sha256=od.sha256, sm3=od.sm3, size=od.size,
                           media_type="application/pdf", created_by="clerk01"))
        s.add(ArchiveItem(case_id=case.id, archival_code=code, fonds_code="J001", year=2026, retention_code="D30",
                          category="TQ", number=n, trigger="BUSINESS_CLOSED", schedule_version="test", status=status,
                          rendition_key=rkey, rendition_sha256=rd.sha256, rendition_sm3=rd.sm3,
                          signature={"level": "B-B", "format": "PAdES"}))
    return Stored(serial, code, rkey, keys)


def fs_path(store: ObjectStore, key: str, copy: str = "primary") -> Path:
    """Where a filesystem store (or one half of a replicated one) keeps an object's bytes."""
    fs = getattr(store, copy, store)
    assert isinstance(fs, FilesystemStore)
    return fs.path_of(key)


def flip_byte(path: Path, offset: int | None = None) -> None:
    """Damage a stored file behind the store's back (it is read-only: chmod it first)."""
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    at = len(data) // 2 if offset is None else offset
    data[at] ^= 0x01
    path.write_bytes(bytes(data))
    path.chmod(0o444)


def remove_object(path: Path) -> None:
    """An object lost from the disk (with its sidecar), as a failed disk or an operator would leave it."""
    path.unlink()
    path.with_name(path.name + "~meta.json").unlink(missing_ok=True)


def tamper_audit_event(ctx: Context, seq: int) -> None:
    """Edit a stored audit event as the database owner, bypassing the append-only triggers."""
    with ctx.catalogue.session() as s:
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only"))
        else:
            s.execute(text("DROP TRIGGER audit_event_no_update"))
            s.execute(text("DROP TRIGGER audit_event_no_delete"))
    with ctx.catalogue.session() as s:
        s.execute(text("UPDATE audit_event SET outcome = 'failure' WHERE seq = :seq"), {"seq": seq})
