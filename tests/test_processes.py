"""Several API processes on one PostgreSQL catalogue (issue 16): real ``archive serve`` / ``archive worker``
processes, each built from the environment as an operator starts it.

What they must share, or do once: login throttling, API rate limits, the refusal of a destroyed item (whatever a
process has cached), scan resumption; ``--workers N`` runs N processes and no index worker inside them. The
headline test files through two API processes onto the Ceph RADOS Gateway with an ``archive worker`` beside them.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, text, update

from archive import audit, indexing, reading
from archive.capture import scans
from archive.catalogue.models import ArchiveItem, AuditEvent, Case, Document, ScanBatch, ScanPart
from archive.context import Context
from archive.settings import load_settings
from tests import samples
from tests.conftest import _pg_admin, _pg_url
from tests.live import Live, archive_env, free_port, run_cli, wait_healthy

pytestmark = pytest.mark.postgres
S3_ENDPOINT = os.environ.get("ARCHIVE_TEST_S3_ENDPOINT")
REQUIRE_S3 = os.environ.get("ARCHIVE_TEST_REQUIRE_S3") == "1"
PASSWORD = "test-pass-123"


def _catalogue(request: pytest.FixtureRequest, tmp: Path, pki: Path, **env: str) -> Iterator[tuple[Context, Live]]:
    """A fresh PostgreSQL catalogue (cloned from the migrated template), a data directory with the dev PKI, the
    context over it and a :class:`Live` whose processes see the same settings."""
    from archive.commands.common import ensure_fonds

    template = request.getfixturevalue("pg_template")
    name = f"archive_p_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    settings_env = {"ARCHIVE_DATA_DIR": str(tmp / "data"), "ARCHIVE_DATABASE_URL": _pg_url(name), **env}
    shutil.copytree(pki, tmp / "data" / "pki")
    settings = load_settings(**{k.removeprefix("ARCHIVE_").lower(): v for k, v in settings_env.items()})
    ctx = Context.build(settings)
    ensure_fonds(ctx)
    live = Live(archive_env(settings_env), tmp)
    try:
        yield ctx, live
    finally:
        live.stop_all()
        ctx.close()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
         pki_template: Path) -> Iterator[tuple[Context, Live, str, str]]:
    """Two ``archive serve`` processes (A, B: two hosts behind a load balancer) on one catalogue; a tight API rate
    (burst 6, nearly no refill) and 4 wrong passwords to a lock."""
    env = {"ARCHIVE_API_RATE": "0.01", "ARCHIVE_API_BURST": "6", "ARCHIVE_LOGIN_MAX_FAILURES": "4"}
    for ctx, live in _catalogue(request, tmp_path_factory.mktemp("pair"), pki_template, **env):
        a, b = live.serve("A"), live.serve("B")
        yield ctx, live, a.url, b.url


def _add_client(ctx: Context, name: str, scopes: list[str]) -> dict[str, str]:
    from archive.audit import Actor
    from archive.identity import add_client

    with ctx.catalogue.session() as s:
        _, key = add_client(s, Actor.system("test"), name, scopes)
    return {"X-API-Key": key}


def _file(url: str, headers: dict[str, str], serial: str, *, pages: int = 1) -> str:
    """Open a 汇缴 (GJ09, 30 years) case through the API at ``url``, upload its two required materials and close it;
    the 档号 of the item filed."""
    body = {"serial": serial, "business_type": "GJ09", "unit": {"name": "示例单位"}, "branch": "BR01",
            "clerk": "clerk01", "accepted_at": "2026-01-05T09:30:00+08:00"}
    with httpx.Client(base_url=url, headers=headers, timeout=120) as c:
        r = c.post("/api/v1/cases", json=body)
        assert r.status_code == 201, r.text
        files = [("files", (f"{m}.jpg", samples.jpeg(text=f"{serial} {m}"), "image/jpeg"))
                 for m in ("payroll_list", "bank_receipt")]
        r = c.post(f"/api/v1/cases/{serial}/documents", files=files,
                   data={"material_type": ["payroll_list", "bank_receipt"]})
        assert r.status_code == 201, r.text
        trail = [{"action": "受理", "person": "clerk01", "at": "2026-01-05T09:30:00+08:00"},
                 {"action": "办结", "person": "clerk01", "at": "2026-01-05T16:00:00+08:00"}]
        r = c.post(f"/api/v1/cases/{serial}/close", json={"outcome": "approved",
                                                           "closed_at": "2026-01-05T16:00:00+08:00", "trail": trail})
        assert r.status_code == 200, r.text
        return str(r.json()["item"]["archival_code"])


# --- what two processes share ---------------------------------------------------------------------

def test_login_throttling_counts_wrong_passwords_made_at_either_process(pair: tuple[Context, Live, str, str]) -> None:
    """Given a lock after 4 wrong passwords, when 2 are tried at A and 2 at B, then the name is locked at both: the
    right password is refused with 429 account_locked at A and at B."""
    ctx, _, a, b = pair
    from archive import identity
    from archive.audit import Actor

    with ctx.catalogue.session() as s:
        identity.add_user(s, Actor.system("test"), "clerk09", PASSWORD, "clerk09", ["clerk"], "BR01")
    for url in (a, b, a, b):
        r = httpx.post(f"{url}/api/v1/auth/login", json={"username": "clerk09", "password": "wrong-password"})
        assert r.status_code in (401, 429), r.text
    for url in (a, b):
        r = httpx.post(f"{url}/api/v1/auth/login", json={"username": "clerk09", "password": PASSWORD})
        assert r.status_code == 429 and r.json()["code"] == "account_locked", r.text


def test_api_rate_limit_counts_a_clients_requests_to_either_process(pair: tuple[Context, Live, str, str]) -> None:
    """Given a burst of 6 and almost no refill, when a business system sends 5 reads to A and 5 to B, then 6 are
    answered and 4 refused with 429 rate_limited (per process buckets would answer all 10)."""
    ctx, _, a, b = pair
    headers = _add_client(ctx, "rate-probe", ["data.read"])
    codes = []
    for url in (a, b) * 5:
        r = httpx.get(f"{url}/api/v1/items/J001-YW·2026-D30-GJ-000999", headers=headers)
        codes.append(r.status_code if r.status_code == 429 else "answered")
        if r.status_code == 429:
            assert r.json()["code"] == "rate_limited" and int(r.headers["Retry-After"]) >= 1
    assert codes.count("answered") == 6 and codes.count(429) == 4, codes


def test_an_item_destroyed_meanwhile_is_refused_by_a_process_that_cached_its_page(
        pair: tuple[Context, Live, str, str]) -> None:
    """Given a page image A rendered and keeps in memory, when the item is destroyed (its rows marked as a
    destruction through B marks them), then A answers 410 item_destroyed for that page, not the cached image."""
    ctx, _, a, b = pair
    writer = _add_client(ctx, "cache-writer", ["cases.write", "data.read"])
    reader = _add_client(ctx, "cache-reader", ["data.read", "images.read"])
    code = _file(b, writer, "YW2026010590001")
    with ctx.catalogue.session() as s:
        doc_id = s.scalar(select(Document.id).join(Case).where(Case.serial == "YW2026010590001").limit(1))
    first = httpx.get(f"{a}/api/v1/documents/{doc_id}/pages/1?w=200", headers=reader, timeout=60)
    assert first.status_code == 200 and first.headers["content-type"] == "image/jpeg"
    again = httpx.get(f"{a}/api/v1/documents/{doc_id}/pages/1?w=200", headers=reader, timeout=60)
    assert again.status_code == 200  # now from A's memory
    with ctx.catalogue.session() as s:  # what execute_entry commits in whichever process runs the list
        item = s.scalar(select(ArchiveItem).where(ArchiveItem.archival_code == code))
        assert item is not None
        item.status = item.case.status = "destroyed"
        s.execute(update(Document).where(Document.case_id == item.case_id).values(status="destroyed"))
    # A's memory of the filed document lasts seconds (archive/memo.py: other processes' changes are seen within
    # that lifetime, decision 0020); past it, A refuses the destroyed item
    time.sleep(reading.filed_documents.ttl + 0.5)  # one request after it: the caller's rate limit allows few
    gone = httpx.get(f"{a}/api/v1/documents/{doc_id}/pages/1?w=200", headers=reader, timeout=60)
    assert gone.status_code == 410 and gone.json()["code"] == "item_destroyed", gone.text


# --- scan resumption, once -----------------------------------------------------------------------

@pytest.fixture
def one(request: pytest.FixtureRequest, tmp_path: Path, pki_template: Path) -> Iterator[tuple[Context, Live]]:
    yield from _catalogue(request, tmp_path, pki_template)


def _queued_batch(ctx: Context) -> int:
    from fastapi.testclient import TestClient

    from archive.api.app import create_app
    from archive.capture.documents import Received
    from archive.permissions import Principal
    from signing.fixity import digest_bytes
    from tests.capture.test_scans import A, B, the_stack
    from tests.factories import case_body

    headers = _add_client(ctx, "core", ["cases.write", "data.read"])
    with TestClient(create_app(context=ctx)) as client:
        for serial in (A, B):
            assert client.post("/api/v1/cases", json=case_body(serial=serial), headers=headers).status_code == 201
    data = samples.stack_pdf(the_stack())
    d = digest_bytes(data)
    with ctx.catalogue.session() as s:  # received, not processed: what a crash leaves behind
        batch = scans.receive(ctx, s, Principal("client", 1, "core", frozenset()),
                              Received("stack.pdf", data, d.sha256, d.sm3))
        return batch.id


def test_a_batch_another_process_works_on_is_left_to_it(one: tuple[Context, Live]) -> None:
    """Given a queued batch whose claim another process holds, when this one processes it, then it leaves it
    untouched; once the claim is released, it processes it."""
    ctx, _ = one
    batch_id = _queued_batch(ctx)
    with scans._claimed(ctx, batch_id) as mine:  # its own connection: another session, as another process
        assert mine
        scans.process(ctx, batch_id)
        with ctx.catalogue.sessions() as s:
            batch = s.get(ScanBatch, batch_id)
            assert batch is not None and batch.status == "queued" and batch.pages_done == 0
    scans.process(ctx, batch_id)
    with ctx.catalogue.sessions() as s:
        batch = s.get(ScanBatch, batch_id)
        assert batch is not None and batch.status == "done"


def test_two_processes_resuming_at_once_process_a_batch_once(one: tuple[Context, Live]) -> None:
    """Given a batch a crash left queued, when two `archive scans resume` run at the same time (two API processes
    starting), then it is processed once: 4 parts, 2 documents, one scan.process audit event."""
    ctx, live = one
    batch_id = _queued_batch(ctx)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: run_cli(live.env, "scans", "resume"), range(2)))
    for r in results:
        assert r.returncode == 0, r.stdout + r.stderr
    with ctx.catalogue.sessions() as s:
        batch = s.get(ScanBatch, batch_id)
        assert batch is not None and batch.status == "done"
        assert s.scalar(select(func.count()).select_from(ScanPart)) == 4
        assert s.scalar(select(func.count()).select_from(Document)) == 2
        assert s.scalar(select(func.count()).where(AuditEvent.action == "scan.process")) == 1


# --- archive serve --workers N -------------------------------------------------------------------

def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def test_serve_with_two_workers_runs_two_api_processes_and_no_index_worker(one: tuple[Context, Live]) -> None:
    """Given `archive serve --workers 2` on PostgreSQL, then two API processes answer on one port with a fresh
    multiprocess metrics directory under the data directory; no index worker runs inside them (a filing's outbox row
    stays pending); a killed API process is started again; on stop the metrics directory is removed."""
    ctx, live = one
    server = live.serve("serve2", "--workers", "2")
    deadline = time.monotonic() + 60
    while len(workers := [c for c in _children(server.popen.pid) if _is_api(c)]) < 2 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert len(workers) == 2, server.output()[-2000:]
    metrics = Path(ctx.settings.data_dir).absolute() / "metrics" / f"serve-{server.popen.pid}"
    assert metrics.is_dir()
    assert all(f"PROMETHEUS_MULTIPROC_DIR={metrics}".encode() in Path(f"/proc/{w}/environ").read_bytes().split(b"\0")
               for w in workers)
    headers = _add_client(ctx, "counter", ["cases.write", "data.read"])
    _file(server.url, headers, "YW2026010590002")
    time.sleep(3)  # an embedded worker thread would have indexed it within a second
    with ctx.catalogue.sessions() as s:
        assert indexing.backlog(s).pending >= 1
    os.kill(workers[0], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = [c for c in _children(server.popen.pid) if _is_api(c)]
        if len(now) == 2 and workers[0] not in now:
            break
        time.sleep(0.3)
    assert len(now) == 2 and workers[0] not in now, server.output()[-2000:]
    wait_healthy(server)
    live.stop(server)
    assert not metrics.exists()


def _is_api(pid: int) -> bool:
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()  # not the resource tracker
    except FileNotFoundError:
        return False


def test_serve_refuses_several_workers_on_sqlite(tmp_path: Path, sqlite_template: Path) -> None:
    """Given a SQLite catalogue, when `archive serve --workers 2` starts, then it stops at once (exit code 2, a
    configuration error) and says to use PostgreSQL (workers_need_postgresql), without a traceback."""
    (tmp_path / "data").mkdir()
    shutil.copyfile(sqlite_template, tmp_path / "data" / "catalogue.db")
    r = run_cli(archive_env({"ARCHIVE_DATA_DIR": str(tmp_path / "data")}), "serve", "--workers", "2",
                "--port", str(free_port()))
    assert r.returncode == 2, r.stdout + r.stderr
    said = r.stdout + r.stderr
    assert "workers_need_postgresql" in said and "PostgreSQL" in said and "Traceback" not in said, said


# --- the headline: two API processes and a worker, on the Ceph RADOS Gateway ---------------------

@pytest.fixture
def on_ceph(request: pytest.FixtureRequest, tmp_path: Path, pki_template: Path) -> Iterator[tuple[Context, Live]]:
    if not S3_ENDPOINT:
        if REQUIRE_S3:
            pytest.fail("ARCHIVE_TEST_REQUIRE_S3=1 but ARCHIVE_TEST_S3_ENDPOINT is not set (scripts/s3-gateway start)")
        pytest.skip("no S3 gateway (ARCHIVE_TEST_S3_ENDPOINT); scripts/s3-gateway start prints it")
    env = {"ARCHIVE_STORAGE": "s3", "ARCHIVE_S3_ENDPOINT": S3_ENDPOINT, "ARCHIVE_S3_SECURE": "false",
           "ARCHIVE_S3_ACCESS_KEY": os.environ.get("ARCHIVE_TEST_S3_ACCESS_KEY", ""),
           "ARCHIVE_S3_SECRET_KEY": os.environ.get("ARCHIVE_TEST_S3_SECRET_KEY", ""),
           "ARCHIVE_S3_BUCKET": f"t-{uuid.uuid4().hex[:20]}"}
    for ctx, live in _catalogue(request, tmp_path, pki_template, **env):
        try:
            ctx.store.health()  # creates the bucket with object lock once, before two processes race to
        except Exception as exc:
            if REQUIRE_S3:
                raise
            pytest.skip(f"S3 gateway at {S3_ENDPOINT} not usable: {exc}")
        yield ctx, live


def test_filing_through_two_api_processes_and_a_worker_on_ceph(on_ceph: tuple[Context, Live]) -> None:
    """Given two API processes and `archive worker` on PostgreSQL and the Ceph gateway, when 8 cases are filed
    concurrently, half through each process, then every item verifies (through the other process), the outbox
    drains into the index (search finds them all), and the audit chain verifies."""
    ctx, live = on_ceph
    a, b = live.serve("A"), live.serve("B")
    live.worker()
    headers = _add_client(ctx, "counter", ["cases.write", "data.read"])
    serials = [f"YW20260105{9100 + i:05d}" for i in range(8)]
    with ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(lambda i: _file((a, b)[i % 2].url, headers, serials[i]), range(len(serials))))
    assert len(set(codes)) == 8
    for i, code in enumerate(codes):  # read back through the process that did not file it
        r = httpx.get(f"{(b, a)[i % 2].url}/api/v1/items/{code}/verification", headers=headers, timeout=60)
        assert r.status_code == 200 and r.json()["ok"], r.text
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with ctx.catalogue.sessions() as s:
            if indexing.backlog(s).pending == 0:
                break
        time.sleep(0.5)
    with ctx.catalogue.sessions() as s:
        assert indexing.backlog(s).pending == 0 and indexing.backlog(s).failed == 0
        assert s.scalar(select(func.count()).select_from(ArchiveItem)) == 8
        assert audit.verify(s).ok
    r = httpx.get(f"{a.url}/api/v1/search", params={"business_type": "GJ09", "page_size": 50}, headers=headers,
                  timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["total"] == 8, r.text


def test_four_classes_filed_at_once_through_two_api_processes_number_gap_free_with_an_unbroken_chain(
        one: tuple[Context, Live]) -> None:
    """Given `archive serve --workers 2` on PostgreSQL and 8 complete cases of four classes (全宗-年度-保管期限-类别),
    When four clients close them at the same time, one class each, Then every filing succeeds, each class has the
    件号 1 and 2 once, the audit chain verifies and holds each filing's item.file event once."""
    ctx, live = one
    server = live.serve("serve2", "--workers", "2")
    headers = _add_client(ctx, "counter", ["cases.write", "data.read"])
    classes = ["GJ09", "ZJ01", "ZJ02", "ZJ03"]
    trail = [{"action": "办结", "person": "clerk01", "at": "2026-01-05T16:00:00+08:00"}]
    with httpx.Client(base_url=server.url, headers=headers, timeout=120) as c:
        for n in range(8):
            serial, business_type = f"YW2026010580{n:03d}", classes[n % 4]
            r = c.post("/api/v1/cases", json={"serial": serial, "business_type": business_type,
                                              "unit": {"name": "示例单位"}, "branch": "BR01", "clerk": "clerk01",
                                              "accepted_at": "2026-01-05T09:30:00+08:00"})
            assert r.status_code == 201, r.text
            required = ctx.schedule.business_type(business_type).required
            r = c.post(f"/api/v1/cases/{serial}/documents", data={"material_type": required},
                       files=[("files", (f"{m}.jpg", samples.jpeg(text=f"{serial} {m}"), "image/jpeg"))
                              for m in required])
            assert r.status_code == 201, r.text

    def file_class(k: int) -> list[int]:
        with httpx.Client(base_url=server.url, headers=headers, timeout=300) as c:
            return [c.post(f"/api/v1/cases/YW2026010580{n:03d}/close",
                           json={"outcome": "approved", "closed_at": "2026-01-05T16:00:00+08:00", "trail": trail}
                           ).status_code for n in (k, k + 4)]

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(file_class, range(4))) == [[200, 200]] * 4
    with ctx.catalogue.sessions() as s:
        rows = s.execute(select(ArchiveItem.category, ArchiveItem.retention_code, ArchiveItem.number)).all()
        numbers: dict[tuple[str, str], list[int]] = {}
        for category, retention, number in rows:
            numbers.setdefault((category, retention), []).append(number)
        assert len(numbers) == 4 and all(sorted(v) == [1, 2] for v in numbers.values()), numbers
        assert audit.verify(s).ok
        filed = s.scalars(select(AuditEvent.target_id).where(AuditEvent.action == "item.file")).all()
        assert sorted(filed) == sorted(s.scalars(select(ArchiveItem.archival_code)).all())
