"""What every command shares: the context it works in, the actor it acts as, the fonds it files into."""

from __future__ import annotations

import getpass

from archive import audit
from archive.audit import Actor
from archive.catalogue.models import Fonds
from archive.context import Context
from archive.settings import get_settings


def cli_context(check: bool = True) -> Context:
    """The application's context from the settings; ``check``: refuse a catalogue not migrated to this version."""
    ctx = Context.build(get_settings())
    if check:
        ctx.catalogue.check_schema()
    return ctx


def cli_actor() -> Actor:
    """The operator of the command line, for commands that do not act as a named person."""
    return Actor("system", f"cli:{getpass.getuser()}")


def ensure_fonds(ctx: Context) -> None:
    """The configured 全宗 exists in the catalogue (created, and audited, on first use)."""
    with ctx.catalogue.session() as s:
        if s.query(Fonds).filter_by(code=ctx.settings.fonds_code).first() is None:
            s.add(Fonds(code=ctx.settings.fonds_code, name=ctx.settings.fonds_name))
            audit.record(s, cli_actor(), "fonds.create", target_type="fonds", target_id=ctx.settings.fonds_code)
