"""Page images on the hot path (issue 17): remembered keys, grants and documents are forgotten the moment they stop
holding, and the 利用登记 of every answered page read survives a process killed mid-load, in order."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from archive import audit, identity, reading
from archive.access import ACTION
from archive.audit import Actor
from archive.catalogue.models import AuditEvent
from archive.context import Context
from archive.settings import Settings
from tests.factories import file_case
from tests.helpers import add_client, add_user, login
from tests.live import Live, archive_env

SERIAL = "YW2026010500001"


def _filed(client: TestClient, ctx: Context) -> tuple[str, str]:
    """A filed case at BR01: the URL of its first document's first page, and its 档号."""
    core = add_client(ctx, "core", ["cases.write", "data.read"])
    code = file_case(client, core, SERIAL)
    doc = client.get(f"/api/v1/items/{quote(code)}", headers=core).json()["documents"][0]["id"]
    return f"/api/v1/documents/{doc}/pages/1?w=200", code


def _filed_page(client: TestClient, ctx: Context) -> str:
    return _filed(client, ctx)[0]


def _refused(r: httpx.Response, status: int, code: str) -> None:
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert any("\u4e00" <= ch <= "\u9fff" for ch in r.json()["message"])


def _page_reads(ctx: Context) -> list[AuditEvent]:
    with ctx.catalogue.sessions() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == ACTION,
                                                       AuditEvent.detail["what"].as_string() == "page")
                              .order_by(AuditEvent.seq)))


def test_a_revoked_key_is_refused_at_once_though_remembered(ctx: Context, client: TestClient) -> None:
    """Given a business system whose key was just checked (remembered, its page served from memory), when its key
    is revoked in this process, then its very next page read is 401 revoked_api_key and registers nothing."""
    url = _filed_page(client, ctx)
    viewer = add_client(ctx, "viewer", ["images.read"])
    assert [client.get(url, headers=viewer).status_code for _ in range(3)] == [200, 200, 200]
    assert identity.remembered(viewer["X-API-Key"]) is not None
    assert reading.filed_documents.get(int(url.split("/")[4])) is not None  # the next read is from memory
    before = len(_page_reads(ctx))
    with ctx.catalogue.session() as s:
        identity.revoke_client(s, Actor.system("test"), "viewer")
    _refused(client.get(url, headers=viewer), 401, "revoked_api_key")
    assert len(_page_reads(ctx)) == before


def test_a_key_expiring_while_remembered_is_refused(ctx: Context, client: TestClient,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a remembered key, when its expiry time (remembered with it) passes, then it is looked up again and
    refused 401 expired_api_key, without waiting for the memory to lapse."""
    from datetime import timedelta

    from archive.catalogue.models import ApiClient
    from archive.catalogue.types import utcnow

    url = _filed_page(client, ctx)
    viewer = add_client(ctx, "viewer", ["images.read"])
    with ctx.catalogue.session() as s:
        found = s.scalar(select(ApiClient).where(ApiClient.name == "viewer"))
        assert found is not None
        found.expires_at = utcnow() + timedelta(days=1)
    assert client.get(url, headers=viewer).status_code == 200
    later = utcnow() + timedelta(days=2)
    monkeypatch.setattr(identity, "utcnow", lambda: later)
    _refused(client.get(url, headers=viewer), 401, "expired_api_key")


def test_a_withdrawn_grant_is_refused_at_once_though_remembered(ctx: Context, client: TestClient) -> None:
    """Given a clerk of another branch reading a page under a grant (the grant remembered), when an archivist
    revokes the grant, then the clerk's very next page read is 403 grant_revoked; a new grant is honoured at once."""
    url, archival_code = _filed(client, ctx)
    for name, roles, branch in (("clerk2", ["clerk"], "BR02"), ("head", ["archive_head"], None)):
        add_user(ctx, name, roles, branch)
    clerk, head = login(client, "clerk2"), login(client, "head")
    refused = client.get(url, headers=clerk)
    assert refused.status_code == 404  # branch rules alone

    def grant() -> int:
        r = client.post("/api/v1/lending/requests", headers=clerk, json={
            "archival_codes": [archival_code], "purpose": "review", "purpose_text": "复核", "mode": "online",
            "days": 7})
        assert r.status_code == 201, r.text
        rid: int = r.json()["id"]
        r = client.post(f"/api/v1/lending/requests/{rid}/approve", json={"reason": "同意"}, headers=head)
        assert r.status_code == 200, r.text
        return rid

    rid = grant()
    assert [client.get(url, headers=clerk).status_code for _ in range(2)] == [200, 200]
    r = client.post(f"/api/v1/lending/requests/{rid}/revoke", json={"reason": "复核已完成"}, headers=head)
    assert r.status_code == 200, r.text
    _refused(client.get(url, headers=clerk), 403, "grant_revoked")
    second = grant()
    assert client.get(url, headers=clerk).status_code == 200
    assert [e.detail.get("grant") for e in _page_reads(ctx) if e.actor == "clerk2"] == [rid, rid, second]


def test_a_destroyed_document_is_forgotten_at_once(ctx: Context, client: TestClient) -> None:
    """Given a filed document remembered by the page path, when destruction forgets it (as
    archive.retention.destruction does), then the next read asks the catalogue again."""
    url = _filed_page(client, ctx)
    viewer = add_client(ctx, "viewer", ["images.read"])
    assert client.get(url, headers=viewer).status_code == 200
    doc = int(url.split("/")[4])
    assert reading.filed_documents.get(doc) is not None
    reading.filed_documents.forget(doc)
    assert reading.filed_documents.get(doc) is None
    assert client.get(url, headers=viewer).status_code == 200


@pytest.mark.timeout(300)
def test_every_answered_page_read_is_registered_after_a_kill_in_order(
        ctx: Context, client: TestClient, settings: Settings, tmp_path: Path) -> None:
    """Given `archive serve` answering page images to six clients, each sending a distinct purpose per request,
    when the process is killed (SIGKILL) mid-load, then every request answered 200 has its access event in the
    catalogue, each client's events are in the order it sent them, and the audit chain verifies."""
    url = _filed_page(client, ctx)
    viewer = add_client(ctx, "viewer", ["images.read"])
    env = {"ARCHIVE_DATA_DIR": str(settings.data_dir), "ARCHIVE_DATABASE_URL": settings.database_url,
           "ARCHIVE_API_RATE": "100000"}
    live = Live(archive_env(env), tmp_path)
    try:
        server = live.serve("api")
        answered: list[list[str]] = [[] for _ in range(6)]
        stop = threading.Event()

        def load(n: int) -> None:
            with httpx.Client(base_url=server.url, headers=viewer, timeout=30) as c:
                for i in range(100_000):
                    if stop.is_set():
                        return
                    why = f"crash-{n}-{i}"
                    try:
                        r = c.get(url, headers={"X-Purpose": why})
                    except httpx.HTTPError:
                        return  # killed
                    if r.status_code == 200:
                        answered[n].append(why)

        threads = [threading.Thread(target=load, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 120
        while sum(map(len, answered)) < 150 and time.monotonic() < deadline:
            time.sleep(0.05)
        live.stop(server, signal.SIGKILL)
        stop.set()
        for t in threads:
            t.join(60)
    finally:
        live.stop_all()
    assert sum(map(len, answered)) >= 150
    events = _page_reads(ctx)
    purposes = [e.detail["purpose"] for e in events if e.actor == "viewer"]
    seq = {p: i for i, p in enumerate(purposes)}
    for n, sent in enumerate(answered):
        missing = [p for p in sent if p not in seq]
        assert missing == [], f"client {n}: answered 200 but not registered: {missing[:5]}"
        assert [seq[p] for p in sent] == sorted(seq[p] for p in sent), f"client {n}: out of order"
    with ctx.catalogue.sessions() as s:
        report = audit.verify(s)
    assert report.ok, report
