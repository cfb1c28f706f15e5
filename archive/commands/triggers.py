"""Retention trigger events (贷款结清、账户销户、单位注销)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from pydantic import ValidationError

from archive.commands.common import cli_actor, cli_context
from archive.commands.console import err, friendly, out
from archive.errors import InvalidInput
from archive.retention import triggers

event_app = typer.Typer(help="业务事件：贷款结清、账户销户、单位注销，启动保管期限计算。", no_args_is_help=True)

# Mounted by archive/cli.py: command group name -> Typer app.
apps: dict[str, typer.Typer] = {"event": event_app}



@event_app.command("report")
@friendly
def report(
    event_type: Annotated[str, typer.Option("--type", help="loan_settled 贷款结清、account_closed 账户销户、"
                                            "unit_deregistered 单位注销")],
    event_date: Annotated[datetime, typer.Option("--date", formats=["%Y-%m-%d"], help="事件日期 YYYY-MM-DD")],
    event_id: Annotated[str, typer.Option("--id", help="事件编号（同一编号重报返回首次结果）")],
    loan_contract_no: Annotated[str | None, typer.Option(help="借款合同号（贷款结清）")] = None,
    personal_account: Annotated[str | None, typer.Option(help="个人账号（账户销户）")] = None,
    id_number: Annotated[str | None, typer.Option(help="证件号码（账户销户）")] = None,
    uscc: Annotated[str | None, typer.Option(help="统一社会信用代码（单位注销）")] = None,
) -> None:
    """登记业务事件，开始计算等待该事件的档案的保管期限（被拒绝时退出码 2）。"""
    try:
        data = triggers.EventIn(event_id=event_id, event_type=event_type, event_date=event_date.date(),
                                loan_contract_no=loan_contract_no, personal_account=personal_account,
                                id_number=id_number, uscc=uscc)
    except ValidationError as exc:
        e = exc.errors()[0]
        field = ".".join(str(p) for p in e["loc"])
        raise InvalidInput(f"参数有误：{field}：{e['msg']}", code="invalid_request") from None
    ctx = cli_context()
    with ctx.catalogue.session() as s:
        status, body = triggers.report(ctx, s, cli_actor(), data)
    if status >= 400:
        err.print(f"[bold red]未生效[/] {body['message']}  [dim]({body['code']})[/]", highlight=False)
        raise typer.Exit(2)
    replay = "（重复报送，返回首次结果）" if status == 200 else ""
    out.print(f"{body['event_name']}事件 {body['event_id']}（{body['key']}，{body['event_date']}）已登记{replay}："
              f"起算 {len(body['started'])} 件，此前已起算 {body['already_started']} 件")
    for item in body["started"]:
        out.print(f"  {item['archival_code']}  到期日 {item['expiry_date'] or '永久'}  {item['store']}")


@event_app.command("pending")
@friendly
def pending(trigger: Annotated[str | None, typer.Option(help="起算事件代码，例如 LOAN_SETTLED、ACCOUNT_CLOSED")] = None,
            limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
            offset: Annotated[int, typer.Option(min=0)] = 0) -> None:
    """列出仍在等待起算事件（尚无到期日）的档案。"""
    ctx = cli_context()
    with ctx.catalogue.sessions() as s:
        page = triggers.pending(ctx, s, trigger, limit, offset)
    counts = "，".join(f"{k} {v} 件" for k, v in sorted(page["by_trigger"].items())) or "无"
    out.print(f"待起算档案共 {page['total']} 件：{counts}")
    for i in page["items"]:  # one line per item: 档号 must never be cut by the terminal width
        key = "，".join(f"{k}={v}" for k, v in i["waiting_for"].items() if v)
        out.print(f"  {i['archival_code']}  {i['serial']}  {i['business_type']}  {i['retention_code']}  "
                  f"等待{i['trigger_name'] or i['trigger']}：{key}", highlight=False)

