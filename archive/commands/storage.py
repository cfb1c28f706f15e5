"""``archive storage …``: checks on the object store."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from archive.commands.common import cli_actor, cli_context
from archive.commands.console import friendly, out
from archive.errors import ERRORS
from archive.gc import collect
from archive.settings import get_settings
from archive.wiring import build_store
from storage.replicated import ReplicatedStore
from storage.verify import verify as verify_store

# The store clients (minio, …) are imported by archive/wiring.py when the settings choose them.

app = typer.Typer(help="对象存储：副本比对与完整性检查。", no_args_is_help=True)


@app.callback()
def _storage() -> None:
    """对象存储：副本比对与完整性检查。"""


@app.command()
def verify(
    prefix: str = typer.Option("", help="只检查以此前缀开头的对象键，例如 originals/"),
    quick: bool = typer.Option(False, "--quick", help="只比较登记的摘要，不重新读取内容"),
    repair: bool = typer.Option(False, "--repair", help="补齐缺失的副本，并把保管期限与法律保全对齐到较严的一方"),
) -> None:
    """比对每个对象的两个副本（副本存储），或按登记的摘要检查每个对象。

    退出码：0 全部一致完好；1 发现问题（已列出）；2 存储不可用或配置有误。
    """
    console = Console()
    try:
        store = build_store(get_settings())
        keys = list(store.list_keys(prefix))
        what = "副本比对" if isinstance(store, ReplicatedStore) else "完整性检查"
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=console, transient=True) as progress:
            task = progress.add_task(what, total=len(keys))
            findings = verify_store(store, keys=keys, deep=not quick, repair=repair,
                                    on_progress=lambda _key: progress.advance(task))
    except ERRORS as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from exc
    if not findings:
        console.print(f"[green]{what}完成：{len(keys)} 个对象，全部一致、完好。[/green]")
        return
    table = Table(title=f"{what}：{len(findings)} 项问题（共 {len(keys)} 个对象）")
    table.add_column("对象键", overflow="fold")
    for column in ("问题", "说明", "已修复"):
        table.add_column(column)
    for f in findings:
        table.add_row(f.key, f.problem, f.detail, "是" if f.repaired else "否")
    console.print(table)
    raise typer.Exit(1)


@app.command("gc")
@friendly
def storage_gc(grace_minutes: Annotated[int, typer.Option(min=0, help="只删除至少这么多分钟前"
                                                          "已发现的孤立对象。")] = 60,
               dry_run: Annotated[bool, typer.Option("--dry-run", help="只报告，不删除。")] = False) -> None:
    """回收目录数据库中没有记录的对象（写入中途崩溃遗留），分两轮：先标记，后删除。"""
    report = collect(cli_context(), cli_actor(), timedelta(minutes=grace_minutes), dry_run)
    out.print(f"孤立对象 {report.seen} 个：本次标记 {len(report.marked)} 个，删除 {len(report.removed)} 个，"
              f"因保留期锁定未删 {len(report.locked)} 个")
    for key in report.removed:
        out.print(f"  已删除 {key}")


@app.command("extend-locks")
@friendly
def extend_locks(within_years: Annotated[int, typer.Option(min=1, max=200, help="延长在这么多年内到期的锁定。")] = 10,
                 dry_run: Annotated[bool, typer.Option("--dry-run", help="只报告，不修改。")] = False) -> None:
    """在对象锁定到期前续期：把在 N 年内到期、且短于目录要求的锁定延长到应有日期（不超过存储能保存的最晚日期）。

    退出码：0 完成；1 有锁定已到存储上限且将在 N 年内到期（需要换用能保存更晚日期的存储）；2 出错。
    """
    from archive.retention.locks import extend_locks as run

    report = run(cli_context(), cli_actor(), within_years=within_years, dry_run=dry_run)
    verb = "将延长" if dry_run else "已延长"
    limit = f"；存储能保存的最晚锁定日期 {report.limit:%Y-%m-%d}" if report.limit else ""
    out.print(f"检查对象 {report.objects} 个：{verb} {len(report.extended)} 个的保管期限锁定{limit}")
    for key, until in report.extended[:50]:
        out.print(f"  {key} → {until:%Y-%m-%d}")
    if report.missing:
        out.print(f"[yellow]目录登记但存储中找不到的对象 {len(report.missing)} 个"
                  "（请运行 archive check sweep）[/yellow]")
    if report.at_limit:
        out.print(f"[red]{len(report.at_limit)} 个对象的锁定已到存储上限，且将在 {within_years} 年内到期，无法继续延长"
                  "（lock_at_store_limit）；请迁移到能保存更晚锁定日期的对象存储后调高 "
                  "ARCHIVE_S3_MAX_RETAIN_UNTIL 再运行[/red]")
        for key, until in report.at_limit[:20]:
            out.print(f"  {key}（至 {until:%Y-%m-%d}）")
        raise typer.Exit(1)
