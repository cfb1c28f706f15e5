"""永久 items, destruction lists and lock renewal on the real S3 gateway (object lock), where no lock date after
2106 can be kept: filing caps the locks, `archive storage extend-locks` renews them. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from archive.catalogue.models import ArchiveItem, AuditEvent, DestructionList
from archive.cli import app
from archive.context import Context
from archive.settings import Settings, get_settings, load_settings
from storage.s3 import S3Store
from tests import samples
from tests.factories import CLOSE, case_body, upload
from tests.helpers import add_client
from tests.retention.test_destruction import approved_list
from tests.retention.test_holds import add_people, keys_of, make_item
from tests.storage.support import new_bucket, require_gateway

CAP = datetime(2106, 1, 1, tzinfo=UTC)
NEAR = datetime(datetime.now(UTC).year + 3, 1, 1, tzinfo=UTC)  # a store that keeps locks for 3 years at most


def _s3(**over: Any) -> dict[str, Any]:
    gw = require_gateway()
    return {"storage": "s3", "s3_endpoint": gw.endpoint, "s3_secure": False, "s3_access_key": gw.access_key,
            "s3_secret_key": gw.secret_key, **over}


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """The application on the gateway, a fresh bucket per test."""
    return load_settings(data_dir=tmp_path / "data", database_url=db_url, **_s3(s3_bucket=new_bucket()))


def _file_permanent(ctx: Context, client: TestClient, serial: str = "YW2026010500001") -> str:
    """File a ZJ03 case (retention 永久) through the API; its 档号."""
    core = add_client(ctx, f"core{serial[-3:]}", ["cases.write", "data.read", "pii.read"])
    assert client.post("/api/v1/cases", json=case_body(serial=serial, business_type="ZJ03"),
                       headers=core).status_code == 201
    files = [(f"{m}.jpg", samples.jpeg(text=f"{serial} {m}"), m) for m in ctx.schedule.business_type("ZJ03").required]
    assert upload(client, core, serial, *files).status_code == 201
    r = client.post(f"/api/v1/cases/{serial}/close", json=CLOSE, headers=core)
    assert r.status_code == 200, r.text
    code: str = r.json()["item"]["archival_code"]
    return code


def test_a_permanent_item_files_on_the_gateway_with_capped_locks(ctx: Context, client: TestClient) -> None:
    """Given the S3 store on the gateway, When a 永久 case is filed (its lock would end in 2127),
    Then filing succeeds, every object of the item is locked until 2106-01-01 on the server, and reads back."""
    assert isinstance(ctx.store, S3Store)
    code = _file_permanent(ctx, client)
    assert "-Y-" in code
    keys = keys_of(ctx, code)
    assert len(keys) >= 2
    for key in keys:
        assert ctx.store.stat(key).retain_until == CAP
        meta = ctx.store._client.stat_object(ctx.store.bucket, key).metadata
        assert meta["x-amz-object-lock-retain-until-date"].startswith("2106-01-01")
        assert meta["x-amz-object-lock-mode"] == "COMPLIANCE"
        assert ctx.store.version_problems(key) == []
    with ctx.catalogue.session() as s:
        item = s.scalars(select(ArchiveItem)).one()
        assert ctx.store.read_bytes(str(item.rendition_key))[:5] == b"%PDF-"


def test_an_approved_destruction_list_is_locked_at_the_cap_and_executes(ctx: Context, client: TestClient) -> None:
    """Given an expired, unlocked item on the gateway, When its 销毁清册 is approved by two people,
    Then the signed list is stored locked until 2106-01-01 (not 100 years on, which the server would wrap),
    and executing it removes the item's objects, every version."""
    people = add_people(ctx, client)
    code = make_item(ctx)
    keys = keys_of(ctx, code)
    list_id = approved_list(client, people, code)
    with ctx.catalogue.session() as s:
        pdf_key = s.scalars(select(DestructionList.pdf_key).where(DestructionList.id == list_id)).one()
    assert pdf_key is not None and ctx.store.stat(pdf_key).retain_until == CAP
    r = client.post(f"/api/v1/destruction-lists/{list_id}/execute", headers=people["arch"])
    assert r.status_code == 200 and r.json()["destroyed"] == [code], r.text
    store = ctx.store
    assert isinstance(store, S3Store)
    for key in keys:
        assert not store.exists(key)
        assert list(store._client.list_objects(store.bucket, prefix=key, include_version=True)) == []


def test_extend_locks_renews_capped_locks_and_reports_those_at_the_limit(
        ctx: Context, client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a 永久 item filed on a store capped 3 years ahead, When `archive storage extend-locks` runs with that
    cap, Then it exits 1 naming the objects whose locks cannot be extended; When the cap is raised to 2106,
    Then every object is extended to 2106-01-01, it exits 0, the extension is audited, and a second run changes
    nothing (but asked about the next 100 years, says the 2106 locks are at the server's limit)."""
    ctx._store = S3Store(ctx.store.endpoint, ctx.settings.s3_access_key, ctx.settings.s3_secret_key,  # type: ignore[attr-defined]
                         ctx.settings.s3_bucket, secure=False, max_retain_until=NEAR)
    code = _file_permanent(ctx, client)
    keys = keys_of(ctx, code)
    assert {ctx.store.stat(k).retain_until for k in keys} == {NEAR}
    env = {"ARCHIVE_DATA_DIR": str(ctx.settings.data_dir), "ARCHIVE_DATABASE_URL": ctx.settings.database_url,
           **{f"ARCHIVE_{k.upper()}": str(v).lower() if isinstance(v, bool) else str(v)
              for k, v in _s3(s3_bucket=ctx.settings.s3_bucket).items()}}
    runner = CliRunner()

    def run(cap: str, *args: str) -> Any:
        for name, value in {**env, "ARCHIVE_S3_MAX_RETAIN_UNTIL": cap}.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        return runner.invoke(app, ["storage", "extend-locks", *args])

    r = run(f"{NEAR:%Y-%m-%d}")
    assert r.exit_code == 1, r.output
    assert "lock_at_store_limit" in r.output and keys[0] in r.output and "已延长 0 个" in r.output
    r = run("2106-01-01", "--dry-run")
    assert r.exit_code == 0 and f"将延长 {len(keys)} 个" in r.output, r.output
    assert {ctx.store.stat(k).retain_until for k in keys} == {NEAR}
    r = run("2106-01-01")
    assert r.exit_code == 0, r.output
    assert f"已延长 {len(keys)} 个" in r.output and "2106-01-01" in r.output
    assert {ctx.store.stat(k).retain_until for k in keys} == {CAP}
    with ctx.catalogue.session() as s:
        events = list(s.scalars(select(AuditEvent).where(AuditEvent.action == "storage.extend")
                                .order_by(AuditEvent.seq)))
    assert [(e.detail["extended"], e.detail["at_limit"]) for e in events] == [(0, len(keys)), (len(keys), 0)]
    r = run("2106-01-01")
    assert r.exit_code == 0 and "已延长 0 个" in r.output, r.output
    r = run("2106-01-01", "--within-years", "100")  # the capped locks end within 100 years: said, exit 1
    assert r.exit_code == 1 and "lock_at_store_limit" in r.output and "已延长 0 个" in r.output, r.output
