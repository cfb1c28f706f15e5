"""Holds, appraisal and destruction (冻结、鉴定、销毁)."""

from __future__ import annotations

import typer

hold_app = typer.Typer(help="冻结：法律或审计冻结的设置与解除。", no_args_is_help=True)
appraisal_app = typer.Typer(help="鉴定：到期档案的鉴定队列与处理意见。", no_args_is_help=True)
destruction_app = typer.Typer(help="销毁：销毁清册、双人审批与执行。", no_args_is_help=True)

# Mounted by archive/cli.py: command group name -> Typer app.
apps: dict[str, typer.Typer] = {"hold": hold_app, "appraisal": appraisal_app, "destruction": destruction_app}
