"""`archive import …`: historical archives (存量档案) from a vendor delivery — scan, dry-run report, approve, run,
status, sample and hand-over (archive/imports)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from archive.commands.common import cli_actor, cli_context
from archive.commands.console import err, friendly, out
from archive.errors import InvalidInput

import_app = typer.Typer(help="存量档案导入：预扫描、预检报告、批准、导入、抽检与交接。", no_args_is_help=True)

# Mounted by archive/cli.py: command group name -> Typer app.
apps: dict[str, typer.Typer] = {"import": import_app}


@import_app.command("scan")
def scan_cmd(
    profile: Annotated[Path, typer.Argument(help="映射配置（TOML）")],
    delivery: Annotated[Path, typer.Argument(help="服务商交付目录")],
    manifest: Annotated[Path | None, typer.Option(help="清单输出路径；默认 <交付目录名>.manifest.jsonl")] = None,
) -> None:
    """预扫描：读一遍交付目录，写出规范化清单（每件一行：著录项、按页序的文件、大小、SHA-256），不改动任何内容。"""
    from archive.imports.profile import load_profile
    from archive.imports.scan import scan

    @friendly
    def run() -> None:
        prof, digest = load_profile(profile)
        if not delivery.is_dir():
            raise InvalidInput(f"交付目录 {delivery} 不存在", code="import_delivery_invalid",
                               detail={"path": str(delivery)})
        target = manifest or Path(f"{delivery.resolve().name}.manifest.jsonl")
        summary = scan(prof, digest, delivery, target)
        out.print(f"清单 {target}：{summary.items} 件，{summary.pages} 页，{summary.bytes} 字节；"
                  f"结构性问题 {sum(summary.findings.values())} 项（{summary.failing} 件有错误）", highlight=False)

    run()


@import_app.command("report")
def report_cmd(manifest: Annotated[Path, typer.Argument(help="清单（archive import scan 的输出）")],
               workers: Annotated[int | None, typer.Option(help="并行进程数；默认 CPU 核数")] = None) -> None:
    """预检：按 DA/T 31 与本系统规则检查清单中的每件每页，出具预检报告（JSON 与 XLSX），待批准。"""
    from archive.imports.approval import make_report

    @friendly
    def run() -> None:
        ctx = cli_context()
        row = make_report(ctx, cli_actor(), manifest, workers=workers)
        c = row.counts
        out.print(f"预检报告 {row.id}：{c['items']} 件，可导入 {c['importable']}，未通过 {c['failing']}，"
                  f"排除 {c['excluded']}；报告 {row.report_path}（及 .xlsx）", highlight=False)

    run()


@import_app.command("approve")
def approve_cmd(report: Annotated[int, typer.Argument(help="预检报告编号")]) -> None:
    """批准预检报告：导入只按批准的报告进行，未通过的条目不导入。"""
    from archive.imports.approval import approve

    @friendly
    def run() -> None:
        ctx = cli_context()
        with ctx.catalogue.session() as s:
            row = approve(ctx, s, cli_actor(), report)
            out.print(f"预检报告 {row.id} 已批准（{row.approved_by}）", highlight=False)

    run()


@import_app.command("run")
def run_cmd(manifest: Annotated[Path, typer.Argument(help="清单")],
            report: Annotated[int, typer.Option(help="已批准的预检报告编号")],
            workers: Annotated[int | None, typer.Option(help="并行进程数；默认 CPU 核数")] = None) -> None:
    """导入：按批准的预检报告把清单中的条目归档（可中断，再次运行从中断处继续，已完成的不会重复）。"""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from archive.imports import job

    @friendly
    def run() -> None:
        ctx = cli_context()
        actor = cli_actor()
        job_id = job.start(ctx, actor, manifest, report)
        with Progress(TextColumn("导入任务 {task.fields[job]}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[rate]:.1f} 件/秒"), TimeRemainingColumn()) as bar:
            task = bar.add_task("import", total=None, job=job_id, rate=0.0)

            def progress(p: job.Progress) -> None:
                bar.update(task, completed=p.done, total=p.total, rate=p.rate)

            counts = job.run(ctx, actor, job_id, workers=workers, progress=progress)
        out.print(f"导入任务 {job_id} 结束：" + "，".join(f"{k} {v}" for k, v in sorted(counts.items())),
                  highlight=False)

    run()


@import_app.command("status")
def status_cmd(job_id: Annotated[int, typer.Argument(help="导入任务编号")],
               reconcile: Annotated[bool, typer.Option("--reconcile", help="输出核对报告（JSON）")] = False) -> None:
    """导入任务的进度（各状态件数、速率、剩余时间），或核对报告。"""
    from archive.imports import after, job

    @friendly
    def run() -> None:
        ctx = cli_context()
        data = after.reconcile(ctx, job_id) if reconcile else job.status(ctx, job_id)
        out.print_json(json.dumps(data, ensure_ascii=False))

    run()


@import_app.command("sample")
def sample_cmd(job_id: Annotated[int, typer.Argument(help="导入任务编号")],
               size: Annotated[int, typer.Option(help="抽检件数")] = 50,
               key: Annotated[str | None, typer.Option(help="登记结论的条目（原档号）")] = None,
               verdict: Annotated[str | None, typer.Option(help="pass 合格 / fail 不合格")] = None,
               note: Annotated[str | None, typer.Option(help="说明；不合格时必填")] = None) -> None:
    """抽检：抽取随机样本（每个任务一次），或登记某件的抽检结论。"""
    from archive.imports import after

    @friendly
    def run() -> None:
        ctx = cli_context()
        if key is not None:
            after.record_verdict(ctx, cli_actor(), job_id, key, verdict or "", note)
        else:
            after.draw_sample(ctx, cli_actor(), job_id, size)
        for r in after.sample_rows(ctx, job_id):
            out.print(f"{r['key']}  {r['archival_code']}  {r['verdict']}  {r['note'] or ''}", highlight=False)

    run()


@import_app.command("handover")
def handover_cmd(job_id: Annotated[int, typer.Argument(help="导入任务编号")],
                 output: Annotated[Path, typer.Option("--out", help="PDF 输出路径")] = Path("交接登记表.pdf")) -> None:
    """交接登记表（PDF）：批次、件页数、核对结论、抽检结论与签字栏。"""
    from archive.imports import after

    @friendly
    def run() -> None:
        ctx = cli_context()
        output.write_bytes(after.handover_pdf(ctx, job_id))
        out.print(f"交接登记表已写入 {output}", highlight=False)
        if not after.reconcile(ctx, job_id)["balanced"]:
            err.print("[bold yellow]注意[/] 核对有未说明的差异，请先查看 archive import status --reconcile")

    run()
