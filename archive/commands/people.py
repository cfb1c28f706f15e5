"""Who runs a command: a named person, password checked, as the API would.

Four-eyes approval means nothing if anyone at a shell could act as anyone: every retention and lending command
takes ``--user`` (``--as`` is kept as an alias) and asks for the password unless ``--password`` is given.
"""

from __future__ import annotations

from typing import Annotated

import typer

from archive import identity, logins
from archive.context import Context
from archive.permissions import Principal

User = Annotated[str, typer.Option("--user", "-u", "--as", help="以此账号操作（将提示输入密码）")]
Password = Annotated[str, typer.Option(prompt="密码", hide_input=True, help="账号密码（默认交互输入）")]


def person(ctx: Context, username: str, password: str) -> Principal:
    """Check the password and resolve the person (the session token is discarded); both outcomes are audited and
    wrong passwords count towards the account's lock (archive/logins.py), as at the API."""
    token, _, _ = logins.login(ctx, username, password, address=None, via="cli", hours=1)
    with ctx.catalogue.session() as s:
        principal = identity.principal_from_token(s, token)
        identity.logout(s, token)
    return principal
