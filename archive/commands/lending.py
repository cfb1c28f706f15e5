"""Lending (利用、借阅)."""

from __future__ import annotations

import typer

lending_app = typer.Typer(help="利用与借阅：申请、审批、查阅登记、实体借出与归还。", no_args_is_help=True)

# Mounted by archive/cli.py: command group name -> Typer app.
apps: dict[str, typer.Typer] = {"lending": lending_app}
