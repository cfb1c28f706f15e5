"""Catalogued, stored items for the storage-check tests, written straight to the catalogue and the store.

Filing through the API (tests/test_filing.py) makes the same rows; doing it directly keeps a test with
dozens of items fast. Renditions are real signed PDFs, so signature validation has something to check;
the rows themselves come from ``tests.factories.stored_item``.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from sqlalchemy import text

from archive.context import Context
from signing.pades import sign_pdf
from storage.base import ObjectStore
from storage.filesystem import FilesystemStore
from tests import samples
from tests.factories import Stored, put_object, stored_item


@cache
def _unsigned_pdf() -> bytes:
    return samples.pdf(1)


def signed_pdf(ctx: Context) -> bytes:
    """A freshly signed PDF (each one differs: the signing time is inside)."""
    return sign_pdf(_unsigned_pdf(), ctx.signer, check_pdfa=False)


put = put_object


def add_item(ctx: Context, n: int, *, originals: int = 1, rendition: bytes | None = None,
             status: str = "filed") -> Stored:
    """Item number ``n``: a filed case with ``originals`` random originals and a signed rendition."""
    return stored_item(ctx, n, branch="本部", status=status,
                       originals=[os.urandom(2048 + 97 * i) + f"{n}".encode() for i in range(originals)],
                       rendition=rendition if rendition is not None else signed_pdf(ctx),
                       signature={"level": "B-B", "format": "PAdES"})


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
