"""HTML assertions for UI tests: a client that logs in through the form and keeps the CSRF token of its pages."""

from __future__ import annotations

import re
from typing import Any

import httpx
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient

from archive.web.session import COOKIE, csrf_token
from tests.helpers import PASSWORD


def soup(response: httpx.Response) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


def text(response: httpx.Response) -> str:
    """The visible text of a page, whitespace collapsed."""
    return re.sub(r"\s+", " ", soup(response).get_text(" ")).strip()


def login_form_token(client: TestClient, path: str = "/ui/login") -> str:
    page = soup(client.get(path))
    field = page.find("input", attrs={"name": "csrf_token"})
    assert field is not None, "the login form carries a CSRF token"
    return str(field["value"])


class UiClient:
    """A person in a browser: cookies kept, the session's CSRF token sent with every change (as app.js does)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.csrf = ""

    def login(self, username: str, password: str = PASSWORD) -> httpx.Response:
        token = login_form_token(self.client)
        r = self.client.post("/ui/login", data={"username": username, "password": password, "csrf_token": token,
                                                "next": "/ui/"}, follow_redirects=False)
        assert r.status_code == 303, r.text
        self.refresh_csrf()
        return r

    def refresh_csrf(self) -> None:
        """What a page's ``<meta name="csrf-token">`` holds (read from the cookie here, so that logging in does
        not visit a page the person may not see)."""
        self.csrf = csrf_token(self.client.cookies[COOKIE])

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.get(path, **kw)

    def post(self, path: str, htmx: bool = True, **kw: Any) -> httpx.Response:
        """A change as the page makes it: with the CSRF header, as an htmx request unless ``htmx=False``."""
        headers = {"X-CSRF-Token": self.csrf, **({"HX-Request": "true"} if htmx else {}), **kw.pop("headers", {})}
        return self.client.post(path, headers=headers, **kw)
