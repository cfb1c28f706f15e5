"""``archive ltv …``: long-term validation of the archive — which items need their archive time stamp renewed,
renewing them, and the chain of an item's rendition versions (archive/ltv.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from archive.commands.common import cli_actor, cli_context
from archive.errors import ERRORS, AnyError

app = typer.Typer(help="长期验证：归档时间戳续期（PAdES B-LTA）与版式文件版本。", no_args_is_help=True)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@app.callback()
def _ltv() -> None:
    """长期验证：归档时间戳续期（PAdES B-LTA）与版式文件版本。"""


def _fail(exc: AnyError) -> typer.Exit:
    err.print(f"[bold red]错误[/] {exc.message}  [dim]({exc.code})[/]", highlight=False)
    return typer.Exit(2)


@app.command()
def renew(limit: int | None = typer.Option(None, min=1, help="最多续期多少件（默认：全部到期的）。"),
          dry_run: bool = typer.Option(False, "--dry-run", help="只列出需要续期的档案，不续期。")) -> None:
    """为最新时间戳的证书将在 ARCHIVE_LTV_RENEW_DAYS 天内到期、或算法已不安全的档案加盖新的归档时间戳。
    退出码：0 全部成功；1 有档案续期失败（已产生告警，档案保持原样）；2 配置或目录有误。"""
    from archive import ltv
    from archive.catalogue.models import ArchiveItem

    try:
        ctx = cli_context()
        if dry_run:
            ltv.backfill(ctx)
            with ctx.catalogue.session() as s:
                ids = ltv.due(s, ctx.settings, limit=limit)
                codes = list(s.scalars(select(ArchiveItem.archival_code).where(ArchiveItem.id.in_(ids)))) \
                    if ids else []
            ctx.close()
            out.print(f"需要续期：{len(codes)} 件")
            for code in codes:
                out.print(f"  {code}")
            return
        started = datetime.now(UTC)
        summary = ltv.renew_due(ctx, cli_actor(), limit=limit)
        ctx.close()
    except ERRORS as exc:
        raise _fail(exc) from None
    seconds = (datetime.now(UTC) - started).total_seconds()
    out.print(f"归档时间戳续期：到期 {summary.due} 件，已续期 {len(summary.renewed)} 件，"
              f"跳过（销毁流程中）{len(summary.skipped)} 件，失败 {len(summary.failed)} 件；用时 {seconds:.1f} 秒")
    for code, message in summary.failed.items():
        err.print(f"[red]{code}[/]：{message}", highlight=False)
    if summary.failed:
        raise typer.Exit(1)


@app.command()
def status() -> None:
    """各 PAdES 级别的档案数，以及需要续期的档案数。"""
    from archive import ltv
    from archive.catalogue.models import RenditionVersion

    try:
        ctx = cli_context()
        with ctx.catalogue.session() as s:
            newest = (select(RenditionVersion.item_id, func.max(RenditionVersion.version).label("v"))
                      .group_by(RenditionVersion.item_id).subquery())
            levels = s.execute(select(RenditionVersion.level, func.count()).join(
                newest, (newest.c.item_id == RenditionVersion.item_id) & (newest.c.v == RenditionVersion.version))
                .group_by(RenditionVersion.level)).all()
            due = len(ltv.due(s, ctx.settings))
        ctx.close()
    except ERRORS as exc:
        raise _fail(exc) from None
    table = Table(title="长期验证")
    table.add_column("级别")
    table.add_column("件数", justify="right")
    for level, count in sorted(levels):
        table.add_row(f"PAdES {level}", str(count))
    out.print(table)
    out.print(f"需要续期（{ctx.settings.ltv_renew_days} 天内到期或算法不安全）：{due} 件")
