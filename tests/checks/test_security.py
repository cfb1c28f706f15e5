"""Virus checks (GD-4-1, GD-4-2) with ClamAV, using a signature database the tests make (no update server).

Without ClamAV installed these tests skip and say so; CI installs Debian's clamav and clamav-daemon.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from archive.catalogue.models import ArchiveItem, CheckReport, Document
from archive.checks.security import Clamd, Clamscan, EngineInfo, ScanFailed, _parse_version, database_age_days
from archive.context import Context
from archive.wiring import scanner_from_settings
from tests import samples
from tests.factories import CLOSE, TQ01_FILES, case_body, upload
from tests.helpers import add_client

CLAMSCAN, CLAMD = shutil.which("clamscan"), shutil.which("clamd") or (
    "/usr/sbin/clamd" if Path("/usr/sbin/clamd").exists() else None)
needs_clamscan = pytest.mark.skipif(CLAMSCAN is None, reason="ClamAV (clamscan) not installed: apt-get install clamav")
needs_clamd = pytest.mark.skipif(CLAMD is None, reason="clamd not installed: apt-get install clamav-daemon")


def eicar() -> bytes:
    """The EICAR test string, assembled here so this source file itself is not flagged."""
    return b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-" + b"TEST-FILE!$H+H*"


@pytest.fixture(scope="module")
def signature_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-signature database: EICAR anywhere in any file (ndb body signature, offset *)."""
    db = tmp_path_factory.mktemp("clamdb")
    (db / "archive-test.ndb").write_text(f"Archive.Test.EICAR:0:*:{eicar().hex()}\n")
    return db


@pytest.fixture(scope="module")
def clamd_socket(signature_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if CLAMD is None:
        pytest.skip("clamd not installed: apt-get install clamav-daemon")
    run = tmp_path_factory.mktemp("clamd")
    sock = run / "clamd.sock"
    conf = run / "clamd.conf"
    conf.write_text(f"LocalSocket {sock}\nDatabaseDirectory {signature_db}\nForeground yes\n"
                    f"LogFile {run / 'clamd.log'}\nTemporaryDirectory {run}\n")
    proc = subprocess.Popen([CLAMD, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(300):
            if sock.exists() or proc.poll() is not None:
                break
            time.sleep(0.1)
        if not sock.exists():
            log = (run / "clamd.log").read_text() if (run / "clamd.log").exists() else ""
            pytest.fail(f"clamd did not start: {proc.stderr.read().decode() if proc.stderr else ''} {log}")
        yield str(sock)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- the scanners --------------------------------------------------------------------------------------


@needs_clamscan
def test_clamscan_finds_eicar_and_names_its_database(signature_db: Path) -> None:
    """Given clamscan with a local signature database, when a clean JPEG and one carrying EICAR are scanned, then
    only the second is found, and the engine info names ClamAV and the 本地签名库."""
    scanner = Clamscan(Path(CLAMSCAN or ""), signature_db, 60)
    found = scanner.scan([("clean.jpg", samples.jpeg()), ("bad.jpg", samples.jpeg() + eicar())])
    assert [(f.name, f.signature.startswith("Archive.Test.EICAR")) for f in found] == [("bad.jpg", True)]
    info = scanner.info()
    assert info.kind == "clamscan" and info.engine.startswith("ClamAV ")
    assert info.database is not None and "本地签名库" in info.database


def test_clamscan_that_cannot_run_is_a_scan_failure(tmp_path: Path) -> None:
    """Given a clamscan path that does not exist, when a file is scanned, then ScanFailed is raised (never a clean
    result)."""
    with pytest.raises(ScanFailed):
        Clamscan(tmp_path / "no-such-clamscan", None, 5).scan([("a", b"x")])


@needs_clamd
def test_clamd_finds_eicar_over_its_socket(clamd_socket: str) -> None:
    """Given a running clamd, when a PDF and a text carrying EICAR are scanned over its socket, then only the text is
    found, and the engine info names ClamAV."""
    scanner = Clamd(clamd_socket, 30)
    found = scanner.scan([("a.pdf", samples.pdf(1)), ("b.txt", b"hello " + eicar() + b" world")])
    assert [f.name for f in found] == ["b.txt"] and "Archive.Test.EICAR" in found[0].signature
    assert scanner.info().engine.startswith("ClamAV ")


def test_clamd_not_running_is_a_scan_failure(tmp_path: Path) -> None:
    """Given a clamd socket nobody listens on, when a file is scanned, then ScanFailed says 无法连接 clamd."""
    with pytest.raises(ScanFailed, match="无法连接 clamd"):
        Clamd(str(tmp_path / "none.sock"), 2).scan([("a", b"x")])


def test_engine_and_database_version_are_parsed() -> None:
    """Given clamd's version line with and without database details, when it is parsed, then the engine, database
    version and date come out (or None), and the database age is counted in days from that date."""
    engine, db, when = _parse_version("ClamAV 1.4.6/27500/Sat Nov 28 09:00:00 2026\0")
    assert (engine, db, when) == ("ClamAV 1.4.6", "27500", datetime(2026, 11, 28, 9, tzinfo=UTC))
    assert _parse_version("ClamAV 1.4.6") == ("ClamAV 1.4.6", None, None)
    age = database_age_days(EngineInfo("clamd", engine, db, when), datetime(2026, 12, 8, 9, tzinfo=UTC))
    assert age == pytest.approx(10)


# --- at filing ---------------------------------------------------------------------------------------


def _case_with(client: TestClient, headers: dict[str, str], contract: bytes) -> None:
    assert client.post("/api/v1/cases", json=case_body(), headers=headers).status_code == 201
    makers = {"application_form": samples.jpeg(), "id_proof": samples.png(), "marriage_proof": samples.tiff(2),
              "house_contract": contract}
    r = upload(client, headers, "YW2026010500001", *[(n, makers[m], m) for n, m in TQ01_FILES])
    assert r.status_code == 201, r.text


@needs_clamd
def test_eicar_upload_is_detected_and_refuses_filing(ctx: Context, client: TestClient, clamd_socket: str) -> None:
    """Given a PDF carrying EICAR that got in while no scanner was configured (or before its signature was known),
    when the case is closed with a scanner in place, then GD-4-2 names 合同.pdf and the EICAR signature and the
    case is not filed."""
    core = add_client(ctx, "core", ["cases.write", "data.read", "pii.read"])
    _case_with(client, core, samples.pdf(2) + b"\n% " + eicar() + b"\n")
    ctx.settings.clamd_socket = clamd_socket
    ctx._scanner = scanner_from_settings(ctx.settings)  # the context builds its scanner once; rebuild it
    r = client.post("/api/v1/cases/YW2026010500001/close", json=CLOSE, headers=core)
    assert r.status_code == 409, r.text
    [failed] = [f for f in r.json()["detail"]["failed"] if f["code"] == "GD-4-2"]
    assert failed["target"] == "合同.pdf" and "Archive.Test.EICAR" in failed["detail"]
    with ctx.catalogue.sessions() as s:
        assert s.scalar(select(func.count()).select_from(ArchiveItem)) == 0


@needs_clamd
def test_clean_filing_records_engine_and_database(ctx: Context, client: TestClient, clamd_socket: str) -> None:
    """Given clamd configured and a clean case, when it is filed, then the report passes and GD-4-1 records the clamd
    engine while GD-4-2 says how many files (5 个文件) were scanned."""
    ctx.settings.clamd_socket = clamd_socket
    ctx._scanner = scanner_from_settings(ctx.settings)  # the context builds its scanner once; rebuild it
    core = add_client(ctx, "core", ["cases.write", "data.read", "pii.read"])
    _case_with(client, core, samples.pdf(2))
    r = client.post("/api/v1/cases/YW2026010500001/close", json=CLOSE, headers=core)
    assert r.status_code == 200, r.text
    with ctx.catalogue.sessions() as s:
        report = s.scalar(select(CheckReport))
        assert report is not None and report.outcome == "passed"
        rows = {r.code: r for r in report.results}
        assert rows["GD-4-1"].outcome == "passed" and rows["GD-4-1"].data is not None
        assert rows["GD-4-1"].data["engine"].startswith("ClamAV") and rows["GD-4-1"].data["kind"] == "clamd"
        assert rows["GD-4-2"].outcome == "passed" and "5 个文件" in rows["GD-4-2"].detail


def test_scanner_configured_but_down_refuses_filing(ctx: Context, client: TestClient, tmp_path: Path) -> None:
    """Given clamd configured but not running, when a case is closed, then 409: GD-4-2 is an error naming clamd (fail
    closed: a virus check that cannot run is not a pass)."""
    core = add_client(ctx, "core", ["cases.write", "data.read", "pii.read"])
    _case_with(client, core, samples.pdf(2))
    ctx.settings.clamd_socket = str(tmp_path / "down.sock")
    ctx._scanner = scanner_from_settings(ctx.settings)  # the context builds its scanner once; rebuild it
    r = client.post("/api/v1/cases/YW2026010500001/close", json=CLOSE, headers=core)
    assert r.status_code == 409, r.text
    failed = {f["code"]: f for f in r.json()["detail"]["failed"]}
    assert failed["GD-4-2"]["outcome"] == "error" and "clamd" in failed["GD-4-2"]["detail"]


# --- at capture --------------------------------------------------------------------------------------


@needs_clamd
def test_eicar_upload_is_refused_at_capture_and_not_stored(ctx: Context, client: TestClient,
                                                           clamd_socket: str) -> None:
    """Given a configured scanner, when a clerk uploads a clean scan and an infected PDF together, then the clean
    one is accepted, the infected one is refused by name (virus_found) and never reaches the object store."""
    ctx.settings.clamd_socket = clamd_socket
    ctx._scanner = scanner_from_settings(ctx.settings)  # the context builds its scanner once; rebuild it
    core = add_client(ctx, "core", ["cases.write", "data.read", "pii.read"])
    assert client.post("/api/v1/cases", json=case_body(), headers=core).status_code == 201
    infected = samples.pdf(2) + b"\n% " + eicar() + b"\n"
    r = upload(client, core, "YW2026010500001", ("申请表.jpg", samples.jpeg(), "application_form"),
               ("合同.pdf", infected, "house_contract"))
    assert r.status_code == 207, r.text
    bad = next(f for f in r.json()["results"] if f["filename"] == "合同.pdf")
    assert bad["accepted"] is False and bad["code"] == "virus_found" and "病毒" in bad["message"]
    assert hashlib.sha256(infected).hexdigest() not in {k.rsplit("/", 1)[-1] for k in ctx.store.list_keys("originals/")}


def test_capture_with_the_scanner_down_stores_nothing(ctx: Context, client: TestClient, tmp_path: Path) -> None:
    """Given clamd configured but not running, when a clerk uploads a scan, then 503 virus_scan_unavailable says the
    病毒检查 is unavailable, and neither an object nor a document row is kept."""
    ctx.settings.clamd_socket = str(tmp_path / "down.sock")
    ctx._scanner = scanner_from_settings(ctx.settings)  # the context builds its scanner once; rebuild it
    core = add_client(ctx, "core", ["cases.write", "data.read", "pii.read"])
    assert client.post("/api/v1/cases", json=case_body(), headers=core).status_code == 201
    r = upload(client, core, "YW2026010500001", ("申请表.jpg", samples.jpeg(), "application_form"))
    assert r.status_code == 503 and r.json()["code"] == "virus_scan_unavailable" and "病毒检查" in r.json()["message"]
    assert list(ctx.store.list_keys("originals/")) == []
    with ctx.catalogue.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Document)) == 0
