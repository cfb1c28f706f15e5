"""Four-properties checks (四性检测)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Column, Table

from archive.checks.alerts import SEVERITY_NAMES, acknowledge, query
from archive.checks.base import Outcome, Stage
from archive.commands.common import cli_actor, cli_context
from archive.commands.console import friendly, out

check_app = typer.Typer(help="四性检测：归档、移交、长期保存环节的检测与报告。", no_args_is_help=True)

# Mounted by archive/cli.py: command group name -> Typer app.
apps: dict[str, typer.Typer] = {"check": check_app}

OUTCOME_STYLE = {"passed": "green", "failed": "red", "error": "red", "warning": "yellow", "manual": "yellow",
                 "not_applicable": "dim"}

# archive.checks.reports, gd, manual, sweep load the PDF and signing stacks: they are imported inside the commands
# that use them, so that `archive --help` starts fast (tests/test_cli.py checks it).


def _print_report(data: dict[str, Any]) -> None:

    c = data["counts"]
    style = OUTCOME_STYLE.get(data["outcome"], "")
    out.print(f"检测报告 {data['id']}（{data['stage_name']}）对象 {data['subject']}  {data['created_at']}  "
              f"检测人 {data['operator']}  结论 [{style}]{data['outcome_name']}[/]  "
              f"通过 {c.get('passed', 0)} / 不通过 {c.get('failed', 0)} / 不适用 {c.get('not_applicable', 0)} / "
              f"人工待检 {c.get('manual', 0)} / 出错 {c.get('error', 0)}", highlight=False)
    table = Table("检测项目", "性质", "目标", "结果", "说明")
    table.columns.insert(0, Column("编号", no_wrap=True))
    for r in data["results"]:
        table.add_row(r["code"], r["name"], r["dimension_name"], r["target"] or "",
                      f"[{OUTCOME_STYLE.get(r['outcome'], '')}]{r['outcome_name']}[/]"
                      + ("" if r["blocking"] else "（警告）"), r["detail"])
    out.print(table)


@check_app.command("report")
@friendly
def report(report_id: int,
           pdf: Annotated[Path | None, typer.Option(help="把报告以 PDF 写入此文件。")] = None,
           as_json: Annotated[bool, typer.Option("--json", help="以 JSON 输出报告。")] = False) -> None:
    """显示检测报告，或写出为 PDF。"""
    from archive.checks import reports

    ctx = cli_context()
    try:
        with ctx.catalogue.session() as s:
            row = reports.get_report(s, report_id)
            data = reports.report_dict(row)
            if pdf is not None:
                pdf.write_bytes(reports.report_pdf(row, fonds_name=ctx.settings.fonds_name,
                                                   font_path=ctx.settings.cjk_font, zone=ctx.zone))
                out.print(f"已写出检测报告 PDF：{pdf}")
                return
    finally:
        ctx.close()
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        _print_report(data)


@check_app.command("item")
@friendly
def item(archival_code: str,
         skip_signature: Annotated[bool, typer.Option(help="不重新验证电子签名（只核验摘要）。")]
         = False) -> None:
    """按档号对已归档的档案重新做归档环节检测（GD）并保存报告；未通过时退出码 1。"""
    from archive.checks import gd, reports

    ctx = cli_context()
    try:
        with ctx.catalogue.session() as s:
            row = gd.recheck_item(ctx, s, cli_actor(), archival_code, verify_signatures=not skip_signature)
            data = reports.report_dict(row)
    finally:
        ctx.close()
    _print_report(data)
    if not data["passed"]:
        raise typer.Exit(1)


@check_app.command("manual")
@friendly
def manual(report_id: int, code: str,
           outcome: Annotated[str, typer.Argument(help="passed 通过、failed 不通过 或 not_applicable 不适用")],
           detail: str, target: Annotated[str | None, typer.Option(help="载体编号或其他检测对象。")] = None
           ) -> None:
    """在报告上登记人工检测项的结果（载体外观、读取速度、光盘合格性）。"""
    from archive.checks import manual, reports

    if outcome not in {"passed", "failed", "not_applicable"}:
        raise typer.BadParameter("outcome 只能是 passed、failed 或 not_applicable")
    ctx = cli_context()
    try:
        with ctx.catalogue.session() as s:
            data = reports.report_dict(manual.record_manual(s, cli_actor(), report_id, code, Outcome(outcome),
                                                             detail, target))
    finally:
        ctx.close()
    _print_report(data)


@check_app.command("stats")
@friendly
def stats(stage: Annotated[str | None, typer.Option(help="环节：gd 归档、yj 移交 或 bc 长期保存")] = None,
          period: Annotated[str, typer.Option(help="统计周期：day 日、month 月 或 year 年")] = "month") -> None:
    """各检测项按周期的检测通过率。"""
    from archive.checks import reports

    ctx = cli_context()
    try:
        with ctx.catalogue.session() as s:
            rows = reports.stats(s, ctx.zone, stage=Stage(stage) if stage else None, period=period)
    finally:
        ctx.close()
    table = Table("周期", Column("编号", no_wrap=True), "检测项目", "次数", "通过", "不通过", "不适用", "人工待检",
                  "出错", "通过率")
    for r in rows:
        rate = "" if r["pass_rate"] is None else f"{r['pass_rate']:.1%}"
        table.add_row(r["period"], r["code"], r["name"], str(r["total"]), str(r["passed"]), str(r["failed"]),
                      str(r["not_applicable"]), str(r["manual"]), str(r["error"]), rate)
    out.print(table)


# --- storage sweeps and alerts (archive/checks/sweep.py, alerts.py; appended by the storage-sweep work) ---
alerts_app = typer.Typer(help="长期保存环节检测的告警：查看与确认。", no_args_is_help=True)
check_app.add_typer(alerts_app, name="alerts")


@check_app.command("sweep")
@friendly
def sweep_command(
    store: Annotated[str, typer.Option("--store", help="检测哪个副本：primary、secondary 或 all")] = "all",
    tier: Annotated[str, typer.Option("--tier", help="检测哪类对象：originals、renditions 或 all")] = "all",
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="本次最多检测的对象数，之后暂停")] = None,
    rate: Annotated[float | None, typer.Option("--rate", min=0, help="读取限速 MB/s（0 不限速）")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="同一范围有未完成的检测时从其断点继续，否则开始新的检测")
                      ] = False,
    sweep_id: Annotated[int | None, typer.Option("--sweep", help="与 --resume 同用：继续指定编号的检测")] = None,
    signature_every: Annotated[int | None, typer.Option(
        "--signature-every", min=1, help="每次检测核验 1/N 的归档版式文件签名（1 为全部）")] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="计算摘要的线程数")] = None,
) -> None:
    """长期保存环节检测（BC 项）：可断点续检、可限速地检查存储中的对象。

    发现问题时（每个问题都是一条告警）退出码 1，便于调度程序发觉。
    """
    from archive.checks.sweep import SweepOptions, run_sweep

    if sweep_id is not None and not resume:
        raise typer.BadParameter("--sweep 须与 --resume 同用")
    which: bool | int = sweep_id if sweep_id is not None else resume
    # the ignore below: pydantic validates
    options = SweepOptions(scope=store, tier=tier, limit=limit, rate_mb=rate, workers=workers,  # type: ignore[arg-type]
                           signature_every=signature_every)

    def progress(s: Any) -> None:
        out.print(f"检测 {s.id}：已检测 {s.object_count} 个对象、{s.byte_count / 1e6:.1f} MB，发现 {s.findings} 项",
                  highlight=False)

    ctx = cli_context()
    began = time.monotonic()
    try:
        sweep = run_sweep(ctx, cli_actor(), options, resume=which, on_progress=progress)
    finally:
        ctx.close()
    seconds = max(time.monotonic() - began, 1e-9)
    state = {"done": "完成", "paused": "已暂停（用 --resume 继续）"}.get(sweep.status, sweep.status)
    out.print(f"存储检测 {sweep.id} {state}：共 {sweep.object_count} 个对象、{sweep.byte_count / 1e6:.1f} MB"
              f"（约 {sweep.byte_count / 1e6 / seconds:.0f} MB/s），发现问题 {sweep.findings} 项"
              + (f"，检测报告 {sweep.report_id}" if sweep.report_id else ""), highlight=False)
    if sweep.findings:
        raise typer.Exit(1)


@alerts_app.command("list")
@friendly
def alerts_list(
    all_: Annotated[bool, typer.Option("--all", help="包括已确认的告警")] = False,
    severity: Annotated[str | None, typer.Option("--severity", help="critical 或 warning")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100,
) -> None:
    """列出长期保存环节检测产生的告警（默认只列未确认的，--all 列全部）。"""
    ctx = cli_context()
    try:
        with ctx.catalogue.sessions() as s:
            rows = query(s, include_acknowledged=all_, severity=severity, limit=limit)
    finally:
        ctx.close()
    table = Table("编号", "级别", "检测项", "对象", "说明", "首次发现", "最近发现", "确认人")
    for a in rows:
        table.add_row(str(a.id), SEVERITY_NAMES.get(a.severity, a.severity), a.code, a.target, a.message,
                      f"{a.first_seen:%Y-%m-%d %H:%M}", f"{a.last_seen:%Y-%m-%d %H:%M}", a.acknowledged_by or "")
    out.print(table)


@alerts_app.command("ack")
@friendly
def alerts_ack(alert_id: int, note: Annotated[str | None, typer.Option("--note", help="处理说明")] = None) -> None:
    """确认一条告警（记入审计日志）。"""
    ctx = cli_context()
    try:
        with ctx.catalogue.session() as s:
            alert = acknowledge(s, cli_actor(), alert_id, note)
            out.print(f"告警 {alert.id}（{alert.code} {alert.target}）已确认", highlight=False)
    finally:
        ctx.close()
