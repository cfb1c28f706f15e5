"""`archive serve` start-up (issue 17: ready, /healthz answering, within 3 s): the signer is checked in the background
once the socket listens, and /readyz, the administrator's page and filing stay truthful meanwhile."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from archive.api.app import create_app
from archive.commands.common import ensure_fonds
from archive.commands.first_use import report_signer_at_start
from archive.context import Context
from archive.errors import ServiceUnavailable
from archive.settings import load_settings
from archive.signer_status import CHECKING, BackgroundCheck, checking
from tests.live import Live, archive_env, free_port, run_cli, wait_healthy


@pytest.fixture
def make_ctx(tmp_path: Path, sqlite_template: Path, pki_template: Path) -> Iterator[Callable[..., Context]]:
    made: list[Context] = []

    def make(**overrides: Any) -> Context:
        data = tmp_path / f"data{len(made)}"
        data.mkdir()
        shutil.copyfile(sqlite_template, data / "catalogue.db")
        shutil.copytree(pki_template, data / "pki")
        ctx = Context.build(load_settings(data_dir=data, **overrides))
        ensure_fonds(ctx)
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        ctx.close()


def _gated(gate: threading.Event) -> Callable[[Context], None]:
    """report_signer_at_start once ``gate`` opens: the check is held 'under way' for as long as the test needs."""

    def report(ctx: Context) -> None:
        assert gate.wait(30)
        report_signer_at_start(ctx)

    return report


def test_an_unusable_signer_checked_in_the_background_is_checking_then_reported_and_still_stops_filing(
        make_ctx: Callable[..., Context], capsys: pytest.CaptureFixture[str]) -> None:
    """Given production without a signer and serve's background check made (not yet finished), When /readyz is
    asked, Then 503 signer_checking (not ready, not 'ok'); a filing meanwhile is refused signer_missing; once the
    check has run, /readyz says signer_missing and the check printed that filing will be refused."""
    ctx = make_ctx(environment="production")
    gate = threading.Event()
    check = BackgroundCheck(ctx, _gated(gate))
    with TestClient(create_app(context=ctx)) as c:
        body = c.get("/readyz").json()
        assert body["ready"] is False and body["code"] == "signer_checking", body
        assert body["signer"] == {"ok": False, "code": "signer_checking", "detail": CHECKING}
        thread = check.start()
        assert checking(ctx) and c.get("/readyz").json()["code"] == "signer_checking"
        with pytest.raises(ServiceUnavailable) as refused:  # what filing does first: it needs the signer
            ctx.signer  # noqa: B018
        assert refused.value.code == "signer_missing"
        gate.set()
        thread.join(30)
        assert not checking(ctx)
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["code"] == "signer_missing", r.text
    printed = capsys.readouterr().err
    assert "归档将被拒绝" in printed and "signer_missing" in printed


def test_a_good_signer_checked_in_the_background_makes_the_service_ready_when_done(
        make_ctx: Callable[..., Context], capsys: pytest.CaptureFixture[str]) -> None:
    """Given the development PKI and serve's background check under way, When /readyz is asked, Then 503
    signer_checking; once done, 200 ready with the certificate, which the check printed."""
    ctx = make_ctx()
    gate = threading.Event()
    check = BackgroundCheck(ctx, _gated(gate))
    with TestClient(create_app(context=ctx)) as c:
        thread = check.start()
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["code"] == "signer_checking"
        gate.set()
        thread.join(30)
        r = c.get("/readyz")
        assert r.status_code == 200 and r.json()["signer"]["backend"] == "dev", r.text
    assert "开发用证书" in capsys.readouterr().out


def test_a_check_that_crashes_still_finishes_and_readiness_then_reports_the_signer(
        make_ctx: Callable[..., Context]) -> None:
    """Given a background check whose report raises an unexpected error, When it has run, Then it is no longer
    'checking' (readiness does not stay stuck), and /readyz reports the signer itself."""
    ctx = make_ctx()

    def crash(_: Context) -> None:
        raise RuntimeError("boom")

    BackgroundCheck(ctx, crash).start().join(30)
    assert not checking(ctx)
    with TestClient(create_app(context=ctx)) as c:
        assert c.get("/readyz").status_code == 200


def test_serve_answers_healthz_then_reports_an_unusable_signer_and_readyz_says_why(tmp_path: Path) -> None:
    """Given a production `archive serve` without a signer, When it starts, Then /healthz answers, /readyz says
    signer_checking or (once checked) signer_missing, never ready, and its output says filing will be refused; the
    embedded indexer starts after it listens (the index part of /readyz answers)."""
    data = tmp_path / "data"
    assert run_cli(archive_env({"ARCHIVE_DATA_DIR": str(data)}), "init").returncode == 0
    live = Live(archive_env({"ARCHIVE_DATA_DIR": str(data), "ARCHIVE_ENVIRONMENT": "production"}), tmp_path)
    port = free_port()
    proc = live.start("serve", "serve", "--port", str(port), port=port)
    try:
        wait_healthy(proc)
        seen = set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            body = httpx.get(f"{proc.url}/readyz", timeout=30).json()
            assert body["ready"] is False and body["code"] in ("signer_checking", "signer_missing"), body
            seen.add(body["code"])
            if body["code"] == "signer_missing" and "归档将被拒绝" in proc.output():
                break
            time.sleep(0.2)
        assert "signer_missing" in seen and "归档将被拒绝" in proc.output(), proc.output()[-3000:]
        assert body["index"]["backend"] == "embedded"
    finally:
        live.stop_all()


# the signing, PDF, image, barcode, spreadsheet and search libraries load where they are used, not with the app
HEAVY = ["pyhanko", "pyhanko_certvalidator", "pikepdf", "PIL", "pypdfium2", "zxingcpp", "img2pdf", "barcode", "segno",
         "reportlab", "openpyxl", "requests", "aiohttp", "lxml", "fontTools", "jsonschema", "tantivy", "cryptography",
         "asn1crypto", "alembic", "signing.certificates", "signing.pades", "signing.rendition", "signing.validate"]


def test_the_app_factory_imports_none_of_the_heavy_libraries(tmp_path: Path) -> None:
    """Given a fresh interpreter, When the API app factory is imported and the app built on a migrated catalogue (what
    `archive serve` does before it listens), Then none of the signing, PDF, image, barcode, spreadsheet, search or
    migration libraries has been imported."""
    import json
    import subprocess
    import sys

    assert run_cli(archive_env({"ARCHIVE_DATA_DIR": str(tmp_path / "data")}), "init").returncode == 0
    script = ("import json, sys\n"
              "from archive.api.app import create_app\n"
              "create_app()\n"
              f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                          env=archive_env({"ARCHIVE_DATA_DIR": str(tmp_path / "data")}))
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_page_sizes_are_reportlabs() -> None:
    """Given archive.pdfs' own millimetre and A4 (so that page layout modules import reportlab only to draw), Then
    they are reportlab's, to the last bit."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm

    from archive import pdfs

    assert pdfs.mm == mm and pdfs.A4 == A4
