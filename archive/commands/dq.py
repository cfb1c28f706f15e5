"""Data quality (数据质量): rules, batch runs (常态化检核), findings, exports and figures.

Scheduled runs: deploy/systemd/archive-dq.timer calls ``archive dq run --resume`` nightly (or cron the same).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from archive.commands.common import cli_actor, cli_context
from archive.commands.console import friendly, out
from archive.errors import InvalidInput

dq_app = typer.Typer(help="数据质量：规则、批量检核、问题数据、导出与统计。", no_args_is_help=True)

# Mounted by archive/cli.py: command group name -> Typer app.
apps: dict[str, typer.Typer] = {"dq": dq_app}


@dq_app.command("rules")
@friendly
def rules(as_json: Annotated[bool, typer.Option("--json", help="以 JSON 输出。")] = False) -> None:
    """列出数据质量规则：编号、名称、维度、对象、级别、运行环节、版本、责任部门、整改提示。"""
    from archive.dq.rules import all_rules

    described = [r.describe() for r in all_rules()]
    if as_json:
        typer.echo(json.dumps(described, ensure_ascii=False, indent=2))
        return
    table = Table(Column("编号", no_wrap=True), "名称", "维度", "对象", "级别", "环节", "版本", "责任部门", "整改提示")
    for r in described:
        table.add_row(r["code"], r["name"], r["dimension_name"], r["object_name"], r["severity_name"],
                      r["where_name"], str(r["version"]), r["owner_name"], r["hint"])
    out.print(table)
    out.print(f"共 {len(described)} 条规则")


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"--since {value} 不是有效的时间，例如 2026-01-05T00:00:00+08:00",
                           code="naive_datetime", detail={"field": "since"}) from None
    if parsed.tzinfo is None:
        raise InvalidInput("--since 须带时区，例如 2026-01-05T00:00:00+08:00", code="naive_datetime",
                           detail={"field": "since"})
    return parsed


@dq_app.command("run")
@friendly
def run(rules: Annotated[list[str] | None, typer.Option("--rules", help="规则编号（可多次给出）；默认全部批量规则。")]
        = None,
        since: Annotated[str | None, typer.Option(help="只检核此后有变动的业务（带时区的时间）。")] = None,
        resume: Annotated[bool, typer.Option(help="先续跑上次未完成的检核（如有）。")] = False,
        kind: Annotated[str | None, typer.Option(help="只运行 sql（一条查询）或 python（逐行检查）的规则。")] = None
        ) -> None:
    """批量检核：逐条规则检核目录数据，记录规则版本与计数，问题数据按指纹去重；中断后可用 --resume 续跑。"""
    from archive.dq import runs

    ctx = cli_context()
    actor = cli_actor()
    try:
        run_id = runs.unfinished(ctx) if resume else None
        if run_id is None:
            if kind not in (None, "sql", "python"):
                raise typer.BadParameter("kind 只能是 sql 或 python")
            run_id = runs.start(ctx, actor, rules or None, _since(since), kind)
        else:
            out.print(f"续跑检核批次 {run_id}")
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=out) as bar:
            task = bar.add_task(f"检核批次 {run_id}", total=None)

            def progress(done: int, total: int, code: str) -> None:
                bar.update(task, completed=done, total=total, description=f"检核批次 {run_id} {code}")

            result = runs.execute(ctx, actor, run_id, progress)
    finally:
        ctx.close()
    table = Table(Column("规则", no_wrap=True), "不通过", "新问题")
    for code, c in sorted(result.counts.items()):
        table.add_row(code, str(c["failing"]), str(c["new"]))
    out.print(table)
    for e in result.rule_errors:
        out.print(f"[red]规则 {e['rule']}：{e['message']}[/]", highlight=False)
    out.print(f"检核批次 {result.id} 完成：{len(result.rules)} 条规则，"
              f"不通过 {sum(c['failing'] for c in result.counts.values())}，"
              f"新问题 {sum(c['new'] for c in result.counts.values())}，规则出错 {len(result.rule_errors)}")


@dq_app.command("findings")
@friendly
def list_findings(rule: Annotated[str | None, typer.Option(help="规则编号")] = None,
                  status: Annotated[str | None, typer.Option(help="状态，例如 open、assigned、submitted")] = None,
                  owner: Annotated[str | None, typer.Option(help="责任方")] = None,
                  limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50) -> None:
    """列出问题数据（证件号码、手机号已遮蔽）。"""
    from archive.dq import findings

    ctx = cli_context()
    try:
        with ctx.catalogue.session() as s:
            rows = [findings.masked(findings.as_dict(f), False) for f in s.scalars(
                findings.query(rule=rule, status=status, owner=owner, limit=limit))]
    finally:
        ctx.close()
    table = Table("编号", "规则", "对象", "问题", "状态", "责任方", "最近发现")
    for f in rows:
        table.add_row(str(f["id"]), f["rule_code"], f["object_key"], f["message"], f["status_name"],
                      f["owner"] or "", f["last_seen"].isoformat(timespec="seconds"))
    out.print(table)


@dq_app.command("export")
@friendly
def export(out_file: Annotated[Path, typer.Argument(help="写出的 XLSX 文件")],
           owner: Annotated[str | None, typer.Option(help="只导出此责任方的问题数据")] = None,
           report: Annotated[str, typer.Option(help="findings 问题数据清单、weekly 周调度、monthly 月通报")]
           = "findings") -> None:
    """导出问题数据清单、周调度或月通报（XLSX；周调度和月通报的文件名以 .pdf 结尾时为 PDF），供没有系统账号的责任部门。
    导出记入审计日志。"""
    from archive.dq import service

    if report not in ("findings", "weekly", "monthly"):
        raise typer.BadParameter("report 只能是 findings、weekly 或 monthly")
    ctx = cli_context()
    try:
        with ctx.catalogue.session() as s:
            if report == "findings":
                data = service.export_findings(s, cli_actor(), owner, True)
            elif report == "weekly":
                pdf = out_file.suffix.lower() == ".pdf"
                data = service.weekly_pdf(ctx, s, cli_actor()) if pdf else service.weekly_xlsx(s, cli_actor())
            else:
                pdf = out_file.suffix.lower() == ".pdf"
                data = service.monthly_pdf(ctx, s, cli_actor()) if pdf else service.monthly_xlsx(s, cli_actor())
    finally:
        ctx.close()
    out_file.write_bytes(data)
    out.print(f"已写出 {out_file}")


@dq_app.command("stats")
@friendly
def stats() -> None:
    """数据质量统计：未关闭问题数、问题数据率、整改率、平均整改时长。"""
    from archive.dq import reports

    ctx = cli_context()
    try:
        with ctx.catalogue.session() as s:
            data = reports.stats(s)
    finally:
        ctx.close()
    out.print(f"未关闭问题 {data['open']}；问题业务占比 {data['problem_case_rate']}；整改率 {data['fix_rate']}；"
              f"平均整改时长 {data['mean_hours_to_fix']} 小时", highlight=False)
    table = Table("规则", "名称", "未关闭", "问题数据率")
    for r in data["by_rule"]:
        table.add_row(r["rule"], r["name"], str(r["open"]), str(r["rate"]))
    out.print(table)
