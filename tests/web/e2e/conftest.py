"""End-to-end UI tests: Debian's Chromium driven by Playwright against the app served on loopback.

Playwright's own browser download cannot work on a center's intranet (or here): the tests launch the system's
``chromium`` with ``executable_path``. Without it they skip, unless ARCHIVE_TEST_REQUIRE_BROWSER=1 (CI), which
turns the skip into a failure. They run on SQLite only: the catalogue is not what they test.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from archive.api.app import create_app
from archive.context import Context
from tests.helpers import PASSWORD

REQUIRE_BROWSER = os.environ.get("ARCHIVE_TEST_REQUIRE_BROWSER") == "1"
CHROMIUM = os.environ.get("ARCHIVE_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[3]
# Every run writes its screenshots to build/screenshots (not tracked); ARCHIVE_TEST_UPDATE_SCREENSHOTS=1 writes
# them to docs/screenshots, the ones the README shows.
SHOTS = ROOT / ("docs" if os.environ.get("ARCHIVE_TEST_UPDATE_SCREENSHOTS") == "1" else "build") / "screenshots"
COUNTER = {"width": 1366, "height": 768}
TABLET = {"width": 768, "height": 1024}


@pytest.fixture(params=["sqlite"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """SQLite only (see the module docstring): overrides the catalogue's two-database parametrisation."""
    target = tmp_path / "data" / "catalogue.db"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
    yield f"sqlite:///{target}"


@pytest.fixture(scope="module")  # not session: Playwright's sync API keeps an event loop running in the main thread
def browser() -> Iterator[object]:  # while it is open, and tests after it that call asyncio.run (signing) would fail
    if not Path(CHROMIUM).exists():
        if REQUIRE_BROWSER:
            pytest.fail(f"Chromium is required (ARCHIVE_TEST_REQUIRE_BROWSER=1) but not found at {CHROMIUM}")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live(ctx: Context) -> Iterator[str]:
    """The app over ``ctx`` on a loopback port, in a thread of this process; its base URL."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(context=ctx), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def page_for(browser: object, live: str) -> Iterator[object]:
    """``page_for("clerk01")``: a fresh browser context logged in through the login form at 1366×768."""
    contexts: list[object] = []

    def open_as(username: str, viewport: dict[str, int] = COUNTER) -> object:
        c = browser.new_context(viewport=viewport, locale="zh-CN", timezone_id="Asia/Shanghai")  # type: ignore[attr-defined]
        contexts.append(c)
        page = c.new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{live}/ui/login")
        page.get_by_label("用户名").fill(username)
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_role("button", name="登录").click()
        # each role has its own first page
        page.wait_for_url(lambda url: url.startswith(f"{live}/ui/") and "/ui/login" not in url)
        return page

    yield open_as
    for c in contexts:
        c.close()  # type: ignore[attr-defined]


def shot(page: object, name: str) -> Path:
    """Write a screenshot of the page to <SHOTS>/<name>.png (see SHOTS)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)  # type: ignore[attr-defined]
    return path
