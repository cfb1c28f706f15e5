"""./scripts/demo: a local TSA so demo filings are PAdES B-T, and ClamAV when installed (or a note why not)."""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archive import demo_services
from archive.cli import app
from archive.context import Context
from archive.demo_services import ClamavPlan, plan_clamav, start_services
from archive.settings import get_settings, load_settings

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-" + b"TEST-FILE!$H+H*"


def _which(*present: str):  # type: ignore[no-untyped-def]
    return lambda name: f"/usr/bin/{name}" if name in present else None


def test_without_clamav_the_demo_says_how_to_install_it(tmp_path: Path) -> None:
    """Given no ClamAV at all, When the demo plans virus checks, Then nothing is set and the note names the
    install command and the GD-4-1 warning."""
    plan = plan_clamav({}, tmp_path, which=_which(), sockets=[], database=tmp_path / "none")
    assert plan.env == {} and plan.clamd is None
    assert "未安装 ClamAV" in plan.note and "apt-get install clamav" in plan.note and "GD-4-1" in plan.note


def test_clamav_without_signatures_is_named_as_such(tmp_path: Path) -> None:
    """Given clamscan and clamd installed but an empty signature directory (freshclam never ran),
    When the demo plans virus checks, Then nothing is set and the note says the database is empty and freshclam."""
    (tmp_path / "db").mkdir()
    plan = plan_clamav({}, tmp_path, which=_which("clamscan", "clamd"), sockets=[], database=tmp_path / "db")
    assert plan.env == {} and plan.clamd is None
    assert "没有特征文件" in plan.note and "freshclam" in plan.note


def test_clamav_with_signatures_gets_a_private_clamd_or_clamscan(tmp_path: Path) -> None:
    """Given a signature database, When clamd is installed, Then a private clamd on the run directory is planned;
    When only clamscan is, Then ARCHIVE_CLAMSCAN is set; When the person set a scanner, Then it is left alone."""
    db = tmp_path / "db"
    db.mkdir()
    (db / "main.cvd").write_bytes(b"x")
    plan = plan_clamav({}, tmp_path / "run", which=_which("clamscan", "clamd"), sockets=[], database=db)
    assert plan.env == {"ARCHIVE_CLAMD_SOCKET": str(tmp_path / "run" / "clamd.sock")}
    assert plan.clamd == ("/usr/bin/clamd", db)
    plan = plan_clamav({}, tmp_path, which=_which("clamscan"), sockets=[], database=db)
    assert plan.env == {"ARCHIVE_CLAMSCAN": "/usr/bin/clamscan"} and plan.clamd is None
    assert plan_clamav({"ARCHIVE_CLAMSCAN": "x"}, tmp_path, which=_which("clamd"), database=db).env == {}


def test_demo_filings_are_long_term_and_the_tsa_stops_with_the_demo(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Given the demo's services started (TSA, CRL and OCSP on the port the development certificates name),
    When `archive init --demo` runs, Then every demo item is PAdES B-LTA (D30, Y) or B-LT (D10), fetching real
    revocation data; When the demo stops, Then the TSA no longer answers and ARCHIVE_TSA_URL is unset again."""
    from tests.signing.ltv_support import free_port

    monkeypatch.setenv("ARCHIVE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ARCHIVE_DEV_PKI_URL", f"http://127.0.0.1:{free_port()}/")
    monkeypatch.setattr(demo_services, "plan_clamav", lambda *a: ClamavPlan("病毒检测：本测试不用"))  # time stamps only
    get_settings.cache_clear()
    with ExitStack() as stack:
        start_services(get_settings(), stack)
        url = os.environ["ARCHIVE_TSA_URL"]
        get_settings.cache_clear()
        result = CliRunner().invoke(app, ["init", "--demo"])
        assert result.exit_code == 0, result.output
    ctx = Context.build(load_settings(data_dir=tmp_path / "data"))
    with ctx.catalogue.sessions() as s:
        from archive.catalogue.models import ArchiveItem

        levels = [i.signature["level"] for i in s.query(ArchiveItem)]
    assert len(levels) == 9 and set(levels) == {"B-LT", "B-LTA"}
    assert "ARCHIVE_TSA_URL" not in os.environ
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=2)


@pytest.mark.skipif(shutil.which("clamd") is None and not Path("/usr/sbin/clamd").exists(),
                    reason="clamd not installed: apt-get install clamav-daemon")
def test_private_clamd_scans_and_stops_with_the_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given clamd and a (one-signature) database, When the demo's services start, Then ARCHIVE_CLAMD_SOCKET points
    at a clamd that finds EICAR; When the demo stops, Then the socket no longer answers."""
    from archive.wiring import scanner_from_settings

    db = tmp_path / "db"
    db.mkdir()
    (db / "demo.ndb").write_text(f"Demo.Test.EICAR:0:*:{EICAR.hex()}\n")
    monkeypatch.setenv("ARCHIVE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ARCHIVE_TSA_URL", "http://127.0.0.1:9/")  # not started: this test is about ClamAV
    monkeypatch.setenv("ARCHIVE_CLAMAV_DATABASE", str(db))
    with ExitStack() as stack:
        start_services(load_settings(), stack)
        settings = load_settings()
        assert settings.clamd_socket == str(tmp_path / "data" / "run" / "clamd.sock")
        scanner = scanner_from_settings(settings)
        assert scanner is not None
        assert [f.signature for f in scanner.scan([("x", EICAR)])] == ["Demo.Test.EICAR.UNOFFICIAL"]
    assert not demo_services._answers(Path(settings.clamd_socket)) and "ARCHIVE_CLAMD_SOCKET" not in os.environ
