"""Who runs a command: a named person, password checked, as the API would.

Four-eyes approval means nothing if anyone at a shell could act as anyone: every retention and lending command
takes ``--user`` (``--as`` is kept as an alias) and asks for the password unless ``--password`` is given.
"""

from __future__ import annotations

from typing import Annotated

import typer

from archive import audit
from archive.audit import Actor
from archive.context import Context
from archive.errors import Unauthenticated
from archive.permissions import Principal

User = Annotated[str, typer.Option("--user", "-u", "--as", help="以此账号操作（将提示输入密码）")]
Password = Annotated[str, typer.Option(prompt="密码", hide_input=True, help="账号密码（默认交互输入）")]


def person(ctx: Context, username: str, password: str) -> Principal:
    """Check the password and resolve the person (the session token is discarded); both outcomes are audited."""
    from archive import identity

    try:
        with ctx.catalogue.session() as s:
            token, _, user = identity.login(s, username, password, 1)
            principal = identity.principal_from_token(s, token)
            identity.logout(s, token)
            audit.record(s, Actor("user", user.username), "auth.login", target_type="user", target_id=user.username,
                         detail={"via": "cli"})
            return principal
    except Unauthenticated:
        with ctx.catalogue.session() as s:
            audit.record(s, Actor("user", username), "auth.login", target_type="user", target_id=username,
                         outcome="failure", detail={"via": "cli"})
        raise
