"""Retention trigger events (贷款结清、账户销户、单位注销)."""

from __future__ import annotations

import typer

event_app = typer.Typer(help="业务事件：贷款结清、账户销户、单位注销，启动保管期限计算。", no_args_is_help=True)

# Mounted by archive/cli.py: command group name -> Typer app.
apps: dict[str, typer.Typer] = {"event": event_app}
