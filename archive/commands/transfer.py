"""Transfer packages (移交)."""

from __future__ import annotations

import typer

transfer_app = typer.Typer(help="移交：导出移交信息包，接收并校验。", no_args_is_help=True)

# Mounted by archive/cli.py: command group name -> Typer app.
apps: dict[str, typer.Typer] = {"transfer": transfer_app}
