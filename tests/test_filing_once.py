"""Filing does each thing once (issue 17): a bounded number of SQL statements, digests computed once and equal to
hashlib's, the objects it locks without asking the catalogue again, one chain-head update for its events. Speed
itself is measured by bench/bench_capture.py, never asserted here."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select, update

from archive import audit
from archive.audit import Actor
from archive.catalogue.models import ArchiveItem, AuditEvent, Case, CheckResult, Document
from archive.context import Context
from archive.retention.holds import case_objects, item_objects
from signing.fixity import _new_sm3
from tests import samples
from tests.factories import CLOSE, case_body, complete_case, upload
from tests.helpers import add_client

# Statements of one filing over the API once the schedule version is recorded, BEGINs included (SQLite: 34 today,
# PostgreSQL 31; 56 before the report rows went in one statement, the report's and item's events in one chain-head
# update and the locked objects came from the rows already loaded). A new query per document or per check item
# would cross it.
MAX_STATEMENTS = 36


@pytest.fixture
def core(ctx: Context) -> dict[str, str]:
    return add_client(ctx, "core", ["cases.write", "data.read", "pii.read"])


@contextmanager
def statements(ctx: Context) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(ctx.catalogue.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(ctx.catalogue.engine, "before_cursor_execute", count)


def test_a_filing_takes_a_bounded_number_of_sql_statements(ctx: Context, client: TestClient,
                                                           core: dict[str, str]) -> None:
    """Given a second complete case (the first filing recorded the schedule version), when it is filed, then the
    request runs at most MAX_STATEMENTS SQL statements: the ~50 GD result rows in one, the report and item events
    under one chain-head lock, no query for the objects to lock, none per document or per check item."""
    for serial in ("YW2026010500001", "YW2026010500002"):
        complete_case(client, core, serial=serial)
    assert client.post("/api/v1/cases/YW2026010500001/close", json=CLOSE, headers=core).status_code == 200
    with statements(ctx) as seen:
        r = client.post("/api/v1/cases/YW2026010500002/close", json=CLOSE, headers=core)
    assert r.status_code == 200, r.text
    assert len(seen) <= MAX_STATEMENTS, "\n".join(seen)
    assert sum(s.startswith("INSERT INTO check_result") for s in seen) == 1
    assert sum(s.startswith("SELECT audit_chain_head") for s in seen) == 1
    assert not any("JOIN document" in s for s in seen)  # holds.item_objects' query: the case's rows are loaded


def _sm3(data: bytes) -> str:
    h = _new_sm3()
    h.update(data)
    return h.hexdigest()


def test_recorded_digests_equal_hashlibs_and_the_chain_holds(ctx: Context, client: TestClient,
                                                            core: dict[str, str]) -> None:
    """Given a filed case, then the rendition's recorded SHA-256 and SM3 (computed once and shared by the store,
    GD-1-1 and GD-1-14) equal hashlib's over the stored bytes, as do the originals' the catalogue keeps; the audit
    chain, with the report's and the item's events appended together, verifies."""
    complete_case(client, core)
    assert client.post("/api/v1/cases/YW2026010500001/close", json=CLOSE, headers=core).status_code == 200
    with ctx.catalogue.sessions() as s:
        item = s.scalar(select(ArchiveItem))
        assert item is not None and item.rendition_key
        rendition = ctx.store.read_bytes(item.rendition_key)
        assert (item.rendition_sha256, item.rendition_sm3) == (hashlib.sha256(rendition).hexdigest(), _sm3(rendition))
        info = ctx.store.stat(item.rendition_key)
        assert (info.sha256, info.sm3, info.size) == (item.rendition_sha256, item.rendition_sm3, len(rendition))
        for doc in s.scalars(select(Document)):
            data = ctx.store.read_bytes(doc.original_key)
            assert (doc.sha256, doc.sm3) == (hashlib.sha256(data).hexdigest(), _sm3(data))
        events = s.scalars(select(AuditEvent).where(AuditEvent.action.in_(["check.report", "item.file"]))
                           .order_by(AuditEvent.seq)).all()
        assert [(e.action, e.outcome) for e in events] == [("check.report", "success"), ("item.file", "success")]
        assert events[1].seq == events[0].seq + 1 and events[1].prev_hash == events[0].hash
        assert events[1].detail["check_report"] == int(events[0].target_id or 0)
        assert audit.verify(s).ok


def test_the_objects_filing_locks_are_the_items_objects(ctx: Context, client: TestClient,
                                                        core: dict[str, str]) -> None:
    """Given a case with a replaced and a removed document, when it is filed, then the objects it locked without a
    query (holds.case_objects) are exactly holds.item_objects of the filed item, the replaced and removed originals
    included, and every one of them is locked."""
    complete_case(client, core)
    first = client.get("/api/v1/cases/YW2026010500001", headers=core).json()["documents"][0]
    r = client.put(f"/api/v1/cases/YW2026010500001/documents/{first['id']}", headers=core,
                   files={"file": ("a2.jpg", samples.jpeg(text="v2"), "image/jpeg")})
    assert r.status_code == 200, r.text
    r = upload(client, core, "YW2026010500001", ("extra.jpg", samples.jpeg(text="extra"), "other"))
    assert r.status_code == 201, r.text
    extra = r.json()["results"][0]["document"]["id"]
    r = client.post(f"/api/v1/cases/YW2026010500001/documents/{extra}/remove", json={"reason": "多传了一份"},
                    headers=core)
    assert r.status_code == 204, r.text
    assert client.post("/api/v1/cases/YW2026010500001/close", json=CLOSE, headers=core).status_code == 200
    with ctx.catalogue.sessions() as s:
        item = s.scalar(select(ArchiveItem))
        case = s.scalar(select(Case))
        assert item is not None and case is not None
        statuses = {d.status for d in case.documents}
        assert {"replaced", "removed"} <= statuses, statuses
        objects = item_objects(s, [item.id])[item.id]
        assert case_objects(case, item.rendition_key) == objects
    assert len(objects) == 7  # the rendition, four active originals, the replaced and the removed one
    assert all(ctx.store.stat(key).retained() for key in objects)


def test_the_write_transaction_finds_the_originals_locked_and_locks_the_rendition(
        ctx: Context, client: TestClient, core: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a complete case, when it is filed, then every original is locked before the filing's write transaction
    begins (beside the rendition's put, so a large case does not hold SQLite's write lock for its originals'
    fsyncs), and inside the transaction only the rendition still needs its lock; afterwards all are locked."""
    import archive.filing

    complete_case(client, core)
    in_commit: list[bool] = [False]
    seen: list[dict[str, bool]] = []
    plain_commit, plain_extend = archive.filing._commit, ctx.store.extend_retentions

    def commit(*args: Any, **kwargs: Any) -> Any:
        in_commit[0] = True
        try:
            return plain_commit(*args, **kwargs)
        finally:
            in_commit[0] = False

    def extend(keys: Any, until: Any) -> None:
        if in_commit[0]:  # which of the objects the transaction locks were still unlocked when it came to them
            seen.append({k: not ctx.store.stat(k).retained() for k in keys})
        plain_extend(keys, until)

    monkeypatch.setattr(archive.filing, "_commit", commit)
    monkeypatch.setattr(ctx.store, "extend_retentions", extend)
    assert client.post("/api/v1/cases/YW2026010500001/close", json=CLOSE, headers=core).status_code == 200
    with ctx.catalogue.sessions() as s:
        item = s.scalar(select(ArchiveItem))
        assert item is not None
        objects = item_objects(s, [item.id])[item.id]
    assert len(seen) == 1 and set(seen[0]) == objects
    assert [k for k, unlocked in seen[0].items() if unlocked] == [item.rendition_key]
    assert all(ctx.store.stat(key).retained() for key in objects)


def test_a_head_moved_by_record_many_is_read_again_by_record(ctx: Context) -> None:
    """Given one session that appends an event with record, then two with record_many (a plain UPDATE of the
    chain head), then one more with record: the last is chained after record_many's (the ORM head it loaded first
    is read again, not reused stale) and the chain verifies."""
    actor = Actor.system("test")
    with ctx.catalogue.session() as s:
        audit.record(s, actor, "item.file", target_type="item", target_id="A", detail={})
        audit.record_many(s, [audit.Event(actor, "check.report", "check_report", "1", {}, "failure"),
                              (actor, "item.file", "item", "B", {})])
        last = audit.record(s, actor, "item.file", target_type="item", target_id="C", detail={})
    with ctx.catalogue.sessions() as s:
        events = s.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
        assert [e.target_id for e in events][-4:] == ["A", "1", "B", "C"]
        assert [e.outcome for e in events][-3:-1] == ["failure", "success"]
        assert last.seq == events[-1].seq and audit.verify(s).ok


def _decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Media types the rendition build decodes frame by frame, and names GD-3-4 opens, while a test runs."""
    import signing.rendition
    from archive.checks import gd

    seen: list[str] = []
    frames, readable = signing.rendition._frames, gd.check_readable

    def counted_frames(image: Any, doc: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(doc.media_type)
        return frames(image, doc, *args, **kwargs)

    def counted_readable(data: bytes, kind: str, name: str) -> None:
        seen.append(f"GD-3-4:{kind}")
        readable(data, kind, name)

    monkeypatch.setattr(signing.rendition, "_frames", counted_frames)
    monkeypatch.setattr(gd, "check_readable", counted_readable)
    return seen


def test_a_jpeg_decoded_at_intake_is_not_decoded_again_at_filing(ctx: Context, client: TestClient,
                                                                 core: dict[str, str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a complete case whose JPEG passed check_source and GD-3-4 at intake (Document.detail ``decoded``),
    when it is filed, then its bytes, verified by SHA-256 and SM3 first, go into the rendition without being
    decoded again, and GD-3-4 passes saying so; the PNG and TIFF are still decoded (they are converted)."""
    complete_case(client, core)
    with ctx.catalogue.sessions() as s:
        assert all((d.detail or {}).get("decoded") for d in s.scalars(select(Document)))
    seen = _decodes(monkeypatch)
    r = client.post("/api/v1/cases/YW2026010500001/close", json=CLOSE, headers=core)
    assert r.status_code == 200, r.text
    assert "image/jpeg" not in seen and "GD-3-4:image/jpeg" not in seen
    assert {"image/png", "image/tiff"} <= set(seen)
    with ctx.catalogue.sessions() as s:
        row = s.scalar(select(CheckResult).where(CheckResult.code == "GD-3-4"))
        assert row is not None and row.outcome == "passed"
        assert row.data == {"decoded_at_intake": ["申请表.jpg"]}


@pytest.mark.parametrize(("name", "data", "media_type", "decodes"), [
    ("申请表.jpg", samples.jpeg(text="once"), "image/jpeg", 1),  # inspect's; check_source passes it through
    ("流水.png", samples.png(), "image/png", 3),  # inspect's, and check_source's conversion (its frames, img2pdf)
])
def test_an_upload_decodes_an_image_once_for_its_checks(ctx: Context, client: TestClient, core: dict[str, str],
                                                        monkeypatch: pytest.MonkeyPatch, name: str, data: bytes,
                                                        media_type: str, decodes: int) -> None:
    """Given an open case, When a scan is uploaded, Then its pixels are decoded by the upload's inspection and not
    again by GD-3-4 (check_readable) or, for a JPEG that goes into the rendition as it is, by check_source; the
    document is still marked decoded for filing."""
    from PIL import ImageFile

    assert client.post("/api/v1/cases", json=case_body(), headers=core).status_code == 201
    loads: list[str] = []
    plain = ImageFile.ImageFile.load

    def load(self: ImageFile.ImageFile) -> Any:
        if self.tile:  # pixels still to decode: a decode, not a repeated call
            loads.append(str(self.format))
        return plain(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    r = upload(client, core, "YW2026010500001", (name, data, "application_form"))
    assert r.status_code == 201, r.text
    assert len(loads) == decodes, loads
    with ctx.catalogue.sessions() as s:
        doc = s.scalar(select(Document))
        assert doc is not None and doc.media_type == media_type and (doc.detail or {}).get("decoded")


@pytest.mark.parametrize("change", ["no_mark", "other_digest"])
def test_a_jpeg_not_known_decoded_is_decoded_at_filing(ctx: Context, client: TestClient, core: dict[str, str],
                                                       monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    """Given a JPEG without the intake mark (a document from before it), or whose recorded SM3 is not its bytes',
    when the case is filed, then the rendition build decodes it as before; the changed digest also refuses the
    filing (GD-1-1), as it always did."""
    complete_case(client, core)
    with ctx.catalogue.session() as s:
        values = {"detail": {}} if change == "no_mark" else {"sm3": "0" * 64}
        s.execute(update(Document).where(Document.media_type == "image/jpeg").values(**values))
    seen = _decodes(monkeypatch)
    r = client.post("/api/v1/cases/YW2026010500001/close", json=CLOSE, headers=core)
    assert "image/jpeg" in seen
    if change == "no_mark":
        assert r.status_code == 200, r.text
    else:
        assert r.status_code == 409 and "GD-1-1" in {f["code"] for f in r.json()["detail"]["failed"]}, r.text
