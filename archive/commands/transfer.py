"""Transfer packages (移交): export, download, receive and verify, registers as PDF."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.table import Table
from sqlalchemy import select

from archive import audit
from archive.catalogue.models import TransferPackage, TransferReceipt
from archive.checks.base import OUTCOME_NAMES, Outcome
from archive.commands.common import cli_actor, cli_context
from archive.commands.console import err, friendly
from archive.commands.console import out as console
from archive.errors import InvalidInput
from archive.retention import refusals
from archive.retention.bagit import extract_zip

transfer_app = typer.Typer(help="移交：导出移交信息包，接收并校验。", no_args_is_help=True)

# Mounted by archive/cli.py: command group name -> Typer app.
apps: dict[str, typer.Typer] = {"transfer": transfer_app}

# archive.retention.transfer and register load the PDF and signing stacks: they are imported inside the commands
# that use them, so that `archive --help` starts fast (tests/test_cli.py checks it).


def _results_table(title: str, results: list[dict[str, object]]) -> Table:
    table = Table(title=title)
    for col in ("检测项", "名称", "结果", "说明"):
        table.add_column(col)
    for r in results:
        table.add_row(str(r["code"]), str(r["name"]), OUTCOME_NAMES[Outcome(str(r["outcome"]))],
                      (f"[{r['target']}] " if r.get("target") else "") + str(r["detail"])[:120])
    return table


@transfer_app.command("export")
def export(
    codes: Annotated[list[str] | None, typer.Argument(help="档号；不给则按筛选条件")] = None,
    category: Annotated[str | None, typer.Option(help="业务类别，如 TQ")] = None,
    year: Annotated[int | None, typer.Option(help="年度")] = None,
    retention: Annotated[str | None, typer.Option(help="保管期限代码 Y/D30/D10")] = None,
    receiver: Annotated[str | None, typer.Option(help="接收单位")] = None,
    out: Annotated[Path | None, typer.Option(help="另存一份到此路径（zip 文件，或配合 --dir 的目录）")] = None,
    as_dir: Annotated[bool, typer.Option("--dir", help="以目录形式另存（BagIt 目录）")] = False,
) -> None:
    """把已归档的档案导出为移交信息包（EEP + 目录文件 + 移交登记表），做移交环节检测（YJ）并保存。"""
    from archive.retention import transfer

    @friendly
    def run() -> None:
        try:
            selection = transfer.Selection(archival_codes=codes or None, category=category, year=year,
                                           retention_code=retention)
        except ValidationError as exc:
            raise InvalidInput("；".join(e["msg"].removeprefix("Value error, ") for e in exc.errors()),
                               code="invalid_selection") from None
        ctx = cli_context()
        actor = cli_actor()
        with ctx.catalogue.session() as s, typer.progressbar(length=1, label="生成封装包") as bar:
            def progress(done: int, total: int) -> None:
                bar.length = total
                bar.update(1)

            with refusals.answered(s, actor, "transfer.export", source="cli") as refused:
                row = transfer.export(ctx, s, actor, selection, receiver=receiver, progress=progress)
            if not refused and row.status == "released" and out is not None:
                _save(ctx, row, out, as_dir)
        if refused:
            raise refused[0]
        console.print(_results_table(f"移交检测 {row.package_no}", row.check_results))
        if row.status != "released":
            err.print(f"[bold red]移交检测未通过[/]，信息包 {row.package_no} 未发布")
            raise typer.Exit(1)
        console.print(f"信息包 {row.package_no}（id {row.id}）：{row.item_count} 件，{row.payload_bytes} 字节；"
                      f"zip SHA-256 {row.zip_sha256}" + (f"；已另存到 {out}" if out is not None else ""))

    run()


def _save(ctx: object, row: object, out: Path, as_dir: bool) -> None:
    from archive.retention import transfer

    chunks = transfer.package_stream(ctx, row)  # type: ignore[arg-type]  # typed object to defer imports
    if not as_dir:
        with out.open("wb") as f:
            for chunk in chunks:
                f.write(chunk)
        return
    out.mkdir(parents=True, exist_ok=True)
    zipped = out / ".package.zip"
    with zipped.open("wb") as f:
        for chunk in chunks:
            f.write(chunk)
    try:
        root = extract_zip(zipped, out)
        if root != out:  # move the bag's folder contents up so ``out`` is the bag
            for child in root.iterdir():
                shutil.move(str(child), out / child.name)
            root.rmdir()
    finally:
        zipped.unlink(missing_ok=True)


@transfer_app.command("list")
def list_packages(limit: Annotated[int, typer.Option(help="条数")] = 20) -> None:
    """移交信息包和接收记录，最新的在前。"""
    @friendly
    def run() -> None:
        ctx = cli_context()
        with ctx.catalogue.sessions() as s:
            table = Table(title="移交信息包")
            for col in ("id", "批次号", "接收单位", "件数", "字节数", "状态", "时间"):
                table.add_column(col)
            for p in s.scalars(select(TransferPackage).order_by(TransferPackage.id.desc()).limit(limit)):
                table.add_row(str(p.id), p.package_no, p.receiver, str(p.item_count), str(p.payload_bytes), p.status,
                              p.created_at.isoformat(timespec="seconds"))
            console.print(table)
            table = Table(title="接收记录")
            for col in ("id", "批次号", "移交单位", "件数", "状态", "时间"):
                table.add_column(col)
            for r in s.scalars(select(TransferReceipt).order_by(TransferReceipt.id.desc()).limit(limit)):
                table.add_row(str(r.id), r.package_no or "", r.sender or "", str(r.item_count), r.status,
                              r.received_at.isoformat(timespec="seconds"))
            console.print(table)

    run()


@transfer_app.command("download")
def download(package_id: Annotated[int, typer.Argument(help="信息包 id")],
             out: Annotated[Path, typer.Option(help="保存路径（zip 文件，或配合 --dir 的目录）")],
             as_dir: Annotated[bool, typer.Option("--dir", help="以目录形式保存")] = False) -> None:
    """把已放行的移交信息包另存为 zip 文件或 BagIt 目录。"""
    from archive.retention import transfer

    @friendly
    def run() -> None:
        ctx = cli_context()
        with ctx.catalogue.session() as s:
            row = transfer.get_package(s, package_id)
            _save(ctx, row, out, as_dir)
            audit.record(s, cli_actor(), "transfer.download", target_type="transfer_package",
                         target_id=row.package_no, detail={"zip_sha256": row.zip_sha256, "to": str(out)})
        console.print(f"已保存 {row.package_no} 到 {out}")

    run()


@transfer_app.command("receive")
def receive(
    path: Annotated[Path, typer.Argument(help="信息包 zip 文件或 BagIt 目录")],
    sender_sha256: Annotated[str | None, typer.Option(help="移交方提供的信息包 SHA-256")] = None,
    offline: Annotated[bool, typer.Option(help="来自离线载体（载体检测项需人工登记）")] = False,
) -> None:
    """校验接收的信息包（BagIt 清单、EEP 签名与摘要、移交环节检测）并登记接收。"""
    from archive.retention import transfer

    @friendly
    def run() -> None:
        ctx = cli_context()
        actor = cli_actor()
        with ctx.catalogue.session() as s, \
                refusals.answered(s, actor, "transfer.receive", source=str(path)) as refused:
            row = transfer.receive(ctx, s, actor, path, source=str(path), sender_sha256=sender_sha256,
                                   carrier="offline" if offline else "online")
        if refused:
            raise refused[0]
        console.print(_results_table(f"移交与接收检测（接收记录 {row.id}）", row.check_results))
        if row.status != "accepted":
            err.print(f"[bold red]未通过检测[/]：接收记录 {row.id} 已登记为退回（returned）")
            raise typer.Exit(1)
        console.print(f"已接收 {row.package_no}：{row.item_count} 件，接收记录 {row.id}")

    run()


@transfer_app.command("register")
def register(
    out: Annotated[Path, typer.Option(help="PDF 保存路径")],
    package_id: Annotated[int | None, typer.Option("--package", help="移交信息包 id：移交登记表")] = None,
    receipt_id: Annotated[int | None, typer.Option("--receipt", help="接收记录 id：移交与接收登记表")] = None,
) -> None:
    """把信息包的移交登记表，或接收记录的移交与接收登记表，写出为 PDF。"""
    from archive.retention import transfer
    from archive.retention.register import receipt_pdf, register_pdf

    @friendly
    def run() -> None:
        if (package_id is None) == (receipt_id is None):
            raise InvalidInput("请给出 --package 或 --receipt 之一", code="invalid_selection")
        ctx = cli_context()
        with ctx.catalogue.sessions() as s:
            if package_id is not None:
                row = transfer.get_package(s, package_id)
                pdf = register_pdf(ctx, row.register, row.check_results)
            else:
                pdf = receipt_pdf(ctx, transfer.get_receipt(s, receipt_id or 0))
        out.write_bytes(pdf)
        console.print(f"已写入 {out}")

    run()
