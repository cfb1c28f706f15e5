"""Vendored assets: served by the app with hashed URLs and long caching, within the JavaScript budget, and no
template with inline script or style (the Content-Security-Policy would block it)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from fastapi.testclient import TestClient

from archive.web import assets
from archive.web.render import TEMPLATES

JS_BUDGET = 100 * 1024  # issue 14: total JavaScript under 100 KB compressed


def test_javascript_fits_the_budget() -> None:
    js = [a for a in assets.assets().values() if a.name.endswith(".js")]
    assert {a.name for a in js} >= {"htmx.min.js", "app.js"}
    total = sum(len(gzip.compress(a.data, 9)) for a in js)
    assert total < JS_BUDGET, f"{total} bytes of gzipped JavaScript"


def test_every_vendored_file_is_listed_with_its_licence() -> None:
    readme = (assets.STATIC / "README.md").read_text(encoding="utf-8")
    for name in assets.assets():
        if not name.startswith("LICENSE"):
            assert f"`{name}`" in readme, name
    assert (assets.STATIC / "LICENSE-htmx.txt").exists()


def test_assets_are_cached_for_a_year_under_their_hash(client: TestClient) -> None:
    url = assets.asset_url("htmx.min.js")
    assert re.fullmatch(r"/ui/static/[0-9a-f]{12}/htmx\.min\.js", url)
    r = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and "immutable" in r.headers["cache-control"]
    assert r.headers["content-encoding"] == "gzip" and r.content == (assets.STATIC / "htmx.min.js").read_bytes()
    stale = client.get(url.replace(url.split("/")[3], "0" * 12))
    assert stale.status_code == 404 and "asset_not_found" in stale.text


def test_no_template_has_inline_script_style_or_handlers() -> None:
    for path in Path(TEMPLATES).rglob("*.html"):
        html = path.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert not re.search(r"\sstyle\s*=", html), path
        assert not re.search(r"\son[a-z]+\s*=", html), path
        assert "hx-on" not in html and "javascript:" not in html, path
