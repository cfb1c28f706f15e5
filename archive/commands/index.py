"""``archive index …``: rebuild the search index from the catalogue, and show its state and backlog."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from archive.commands.common import cli_context
from archive.errors import ERRORS, AnyError
from archive.indexing import rebuild as rebuild_index
from archive.indexing import status as index_status

app = typer.Typer(help="检索索引：重建与状态。", no_args_is_help=True)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@app.callback()
def _index() -> None:
    """检索索引：重建与状态。"""


def _fail(exc: AnyError) -> typer.Exit:
    err.print(f"[bold red]错误[/] {exc.message}  [dim]({exc.code})[/]", highlight=False)
    return typer.Exit(2)


@app.command()
def rebuild() -> None:
    """从目录数据库重建检索索引，完成后无停顿地切换；期间的变更会在切换后重放。"""
    try:
        ctx = cli_context()
        with Progress(TextColumn("[bold]重建检索索引"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=out, transient=True) as progress:
            task = progress.add_task("rebuild", total=None)
            n = rebuild_index(ctx, progress=lambda k: progress.advance(task, k),
                              on_total=lambda total: progress.update(task, total=total))
        ctx.close()
    except ERRORS as exc:
        raise _fail(exc) from None
    out.print(f"检索索引已重建并切换（{ctx.settings.index}）：{n} 件")


@app.command()
def status() -> None:
    """显示检索索引的后端、文档数与待索引积压。退出码：0 正常；1 索引不可用；2 配置或目录数据库有误。"""
    try:
        ctx = cli_context()
        info = index_status(ctx)
        ctx.close()
    except ERRORS as exc:
        raise _fail(exc) from None
    table = Table(title="检索索引", show_header=False)
    table.add_column("项目")
    table.add_column("值", overflow="fold")
    labels = {"backend": "后端", "ok": "可用", "documents": "文档数", "backlog": "待索引（积压）",
              "failed": "多次失败待处理", "oldest_pending_at": "最早积压时间", "path": "目录", "generation": "当前代",
              "url": "地址", "alias": "别名", "indices": "索引", "cluster_status": "集群状态", "code": "错误代码",
              "detail": "说明"}
    for key, label in labels.items():
        if key in info:
            value = info[key]
            table.add_row(label, "是" if value is True else "否" if value is False else str(value))
    out.print(table)
    if not info.get("ok"):
        raise typer.Exit(1)
