"""Fixtures of the UI tests: a browser-like client (cookies kept) logged in through the login form."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from archive.context import Context
from tests.helpers import add_user
from tests.web.html import UiClient


@pytest.fixture
def ui(ctx: Context, client: TestClient) -> Callable[..., UiClient]:
    """``ui("clerk01", ["clerk"], "BR01")``: a logged-in person (created if needed)."""
    made: set[str] = set()

    def login(username: str, roles: list[str] | None = None, branch: str | None = "BR01") -> UiClient:
        if username not in made:
            add_user(ctx, username, roles or ["clerk"], branch)
            made.add(username)
        person = UiClient(TestClient(client.app, base_url="http://testserver"))
        person.login(username)
        return person

    return login
