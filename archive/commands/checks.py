"""Four-properties checks (四性检测)."""

from __future__ import annotations

import typer

check_app = typer.Typer(help="四性检测：归档、移交、长期保存环节的检测与报告。", no_args_is_help=True)

# Mounted by archive/cli.py: command group name -> Typer app.
apps: dict[str, typer.Typer] = {"check": check_app}
