"""One rule for an item's objects and their lock (archive/retention/periods.py, holds.item_objects)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from archive.catalogue.models import ArchiveItem, Document
from archive.context import Context
from archive.retention.holds import item_objects
from archive.retention.periods import PERMANENT_LOCK_YEARS, lock_end
from tests import samples
from tests.factories import close_body, complete_case, upload
from tests.retention.test_schedules import TQ01, archivist, core, variant  # noqa: F401  (fixtures)


def test_lock_end_is_the_expiry_else_the_earliest_end_it_could_have() -> None:
    """Given an item's expiry, period and closing day, when its lock end is computed, then it is the expiry;
    with no expiry yet it runs the period (永久: PERMANENT_LOCK_YEARS) from 1 January after the closing day."""
    assert lock_end(date(2055, 1, 1), 30, date(2024, 1, 5)) == datetime(2055, 1, 1, tzinfo=UTC)
    assert lock_end(None, 30, date(2024, 1, 5)) == datetime(2055, 1, 1, tzinfo=UTC)  # waiting for its trigger
    assert lock_end(None, None, date(2024, 1, 5)) == datetime(2025 + PERMANENT_LOCK_YEARS, 1, 1, tzinfo=UTC)


def _originals(ctx: Context, code: str) -> dict[str, str]:
    with ctx.catalogue.sessions() as s:
        item = s.scalar(select(ArchiveItem).where(ArchiveItem.archival_code == code))
        assert item is not None
        docs = s.scalars(select(Document).where(Document.case_id == item.case_id))
        return {d.original_key: d.status for d in docs}


def test_every_original_of_the_item_is_locked_whatever_its_status(ctx: Context, client: TestClient,
                                                                  core: dict[str, str],  # noqa: F811
                                                                  archivist: dict[str, str],  # noqa: F811
                                                                  tmp_path: Path) -> None:
    """Given a case with a document uploaded by mistake and removed before filing, when it is filed and a later
    schedule lengthens its period, then the rendition and every original the item references (the removed one
    too: it is still in the store, and is evidence) get the item's lock each time, and item_objects names
    exactly those objects."""
    serial = "YW2024010500001"
    complete_case(client, core, serial=serial, accepted_at="2024-01-05T09:00:00+08:00")
    r = upload(client, core, serial, ("误传.jpg", samples.jpeg(text="误传"), "other"))
    assert r.status_code == 201, r.text
    wrong = r.json()["results"][0]["document"]["id"]
    assert client.post(f"/api/v1/cases/{serial}/documents/{wrong}/remove", json={"reason": "误传"},
                       headers=core).status_code == 204
    r = client.post(f"/api/v1/cases/{serial}/close", json=close_body("2024-01-05"), headers=core)
    assert r.status_code == 200, r.text
    code = r.json()["item"]["archival_code"]
    originals = _originals(ctx, code)
    assert set(originals.values()) == {"removed", "active"}
    with ctx.catalogue.sessions() as s:
        item = s.scalar(select(ArchiveItem).where(ArchiveItem.archival_code == code))
        assert item is not None and item.rendition_key
        assert item_objects(s, [item.id])[item.id] == {item.rendition_key, *originals}
    keys = [item.rendition_key, *originals]
    assert {ctx.store.stat(k).retain_until for k in keys} == {datetime(2055, 1, 1, tzinfo=UTC)}

    ctx.schedule = variant(ctx, tmp_path, "2026.2-test", (TQ01, TQ01.replace("D30", "Y")))
    plan = client.post("/api/v1/schedule/reapply", json={}, headers=archivist).json()
    r = client.post("/api/v1/schedule/reapply", json={"apply": True, "reason": "永久保存",
                                                      "plan_digest": plan["plan_digest"]}, headers=archivist)
    assert r.status_code == 200, r.text
    assert {ctx.store.stat(k).retain_until for k in keys} == {datetime(2125, 1, 1, tzinfo=UTC)}
