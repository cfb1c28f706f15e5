"""/docs works on an intranet: Swagger UI is served by the application, nothing is loaded from a CDN."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from archive.api.docs import ASSETS, SWAGGER_UI_VERSION

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # no catalogue work here


@sqlite_only
def test_docs_page_references_no_external_host(client: TestClient) -> None:
    """Given the running app, When /docs is loaded, Then every script, style and icon is the app's own
    (no http(s):// URL at all), and the page points at the app's OpenAPI schema."""
    r = client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert not re.findall(r"https?://", r.text), "the page must not reach another host"
    assets = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert set(assets) == {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css",
                           "/docs/assets/favicon-32x32.png"}
    assert "url: '/openapi.json'" in r.text and '"validatorUrl": null' in r.text


@sqlite_only
@pytest.mark.parametrize(("name", "media_type"), [("swagger-ui-bundle.js", "text/javascript"),
                                                  ("swagger-ui.css", "text/css"),
                                                  ("favicon-32x32.png", "image/png")])
def test_docs_assets_are_served_with_their_type(client: TestClient, name: str, media_type: str) -> None:
    """Given the vendored Swagger UI, When an asset is requested, Then 200 with the right content type and bytes."""
    r = client.get(f"/docs/assets/{name}")
    assert r.status_code == 200
    assert r.headers["content-type"].split(";")[0] == media_type
    assert r.content == (ASSETS / name).read_bytes()


def test_vendored_swagger_ui_carries_its_licence_and_version() -> None:
    """Given the vendored files, Then the Apache-2.0 licence, the notice and the version are next to them."""
    assert "Apache License" in (ASSETS / "LICENSE").read_text()
    assert "SmartBear" in (ASSETS / "NOTICE").read_text()
    assert f"swagger-ui-dist` {SWAGGER_UI_VERSION}" in (ASSETS / "README.md").read_text()


@sqlite_only
def test_redoc_from_a_cdn_is_not_offered_and_unknown_assets_are_404(client: TestClient) -> None:
    """Given the app, When /redoc (a CDN page) or a missing asset is asked for, Then 404 with the usual error body."""
    assert client.get("/redoc").json()["code"] == "not_found"
    r = client.get("/docs/assets/../../settings.py")
    assert r.status_code == 404
    assert client.get("/docs/assets/nothing.js").status_code == 404
