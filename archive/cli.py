"""The ``archive`` command (typer): the top-level commands, and the assembly of the groups in archive/commands/.

Heavy modules (signing, storage clients, PDF, image and search libraries, the API) are imported inside the
commands that use them, so that ``archive --help`` and every other command start in well under a second
(tests/test_cli.py checks it). Shared helpers are in archive/commands/common.py and console.py.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from archive.commands.console import err, friendly, out
from archive.commands.lazy import LazyRootGroup

if TYPE_CHECKING:
    from collections.abc import Callable

    from archive.context import Context
    from archive.indexing.outbox import WorkerThread

HELP_WIDTH = 120  # help read through a pipe, a pager or a file is not cut at 80 columns

app = typer.Typer(cls=LazyRootGroup, help="住房公积金电子业务档案系统。", no_args_is_help=True, add_completion=False,
                  context_settings={"max_content_width": HELP_WIDTH})
db_app = typer.Typer(help="目录数据库：迁移与版本。", no_args_is_help=True)
user_app = typer.Typer(help="用户账号。", no_args_is_help=True)
client_app = typer.Typer(help="接入系统（调用 API 的业务系统）。", no_args_is_help=True)
audit_app = typer.Typer(help="审计日志。", no_args_is_help=True)
schedule_app = typer.Typer(help="分类方案。", no_args_is_help=True)
scans_app = typer.Typer(help="批量扫描。", no_args_is_help=True)
for sub, name in ((db_app, "db"), (user_app, "user"), (client_app, "client"), (audit_app, "audit"),
                  (schedule_app, "schedule"), (scans_app, "scans")):
    app.add_typer(sub, name=name)


def _record_schedule(ctx: Context) -> None:
    """Items filed from now on cite the schedule in force, so record its version before any filing."""
    from archive.commands.common import cli_actor
    from archive.retention import schedules

    version = schedules.record_current(ctx, cli_actor())
    out.print(f"分类方案版本：{version.label}")


@app.command()
@friendly
def init(demo: Annotated[bool, typer.Option(help="同时加载演示用户、演示接入系统和演示业务。")] = False,
         admin: Annotated[str | None, typer.Option(help="首次使用：创建这个系统管理员（已有时不做修改）。")] = None,
         admin_password_file: Annotated[Path | None, typer.Option(help="首个系统管理员的密码文件（第一行）。")] = None
         ) -> None:
    """创建数据目录和目录数据库并迁移到最新版本；开发环境生成开发用证书（生产环境不生成）；可创建首个系统管理员；
    检查签章证书与时间戳服务并汇总，签章不可用时退出码 2；加 --demo 时加载演示数据。"""
    from archive.commands import first_use
    from archive.commands.common import cli_context, ensure_fonds

    ctx = cli_context(check=False)
    ctx.settings.data_dir.mkdir(parents=True, exist_ok=True)
    ctx.catalogue.upgrade()
    ensure_fonds(ctx)
    _record_schedule(ctx)
    out.print(f"目录数据库已就绪：{ctx.catalogue.engine.url.render_as_string(hide_password=True)}")
    try:
        first_use.prepare_signer(ctx)
        first_use.ensure_admin(ctx, admin, admin_password_file)
        first_use.check_signing(ctx)
        if demo:
            from archive.demo import load_demo

            out.print(load_demo(ctx))
    finally:
        ctx.close()  # ends the PKCS#11 session (and its login) and the catalogue's connections


@app.command()
@friendly
def demo() -> None:
    """向已初始化的目录数据库加载演示数据：用户、接入系统、带扫描件的业务（大部分已归档）和一个批量扫描批次。"""
    from archive.commands.common import cli_context, ensure_fonds
    from archive.demo import load_demo

    ctx = cli_context()
    ensure_fonds(ctx)
    out.print(load_demo(ctx))


@db_app.command("upgrade")
@friendly
def db_upgrade() -> None:
    """把目录数据库迁移到本程序的版本。"""
    from archive.commands.common import cli_context

    ctx = cli_context(check=False)
    before = ctx.catalogue.current_revision()
    ctx.catalogue.upgrade()
    _record_schedule(ctx)
    out.print(f"目录数据库已迁移：{before or '（空）'} → {ctx.catalogue.current_revision()}")


@db_app.command("status")
@friendly
def db_status() -> None:
    """显示目录数据库的版本，以及是否与本程序一致。"""
    from archive.commands.common import cli_context

    ctx = cli_context(check=False)
    out.print(f"当前版本：{ctx.catalogue.current_revision() or '（未初始化）'}")
    ctx.catalogue.check_schema()
    out.print("与程序一致")


@app.command()
@friendly
def serve(host: Annotated[str | None, typer.Option(help="监听地址，默认 ARCHIVE_HOST。")] = None,
          port: Annotated[int | None, typer.Option(help="监听端口，默认 ARCHIVE_PORT。")] = None,
          workers: Annotated[int, typer.Option(min=1, max=64, help="API 进程数；大于 1 时需要 PostgreSQL，"
                                               "检索索引由另行运行的 archive worker 更新。")] = 1) -> None:
    """运行网页与 API 服务（目录数据库未迁移时立即停止并提示）。"""
    from archive.commands.common import cli_context
    from archive.processes import check_workers, run_workers

    ctx = cli_context()
    check_workers(ctx, workers)
    _configure_logging(ctx)
    _record_schedule(ctx)
    h, p = host or ctx.settings.host, port or ctx.settings.port
    out.print(f"网页（柜面、扫描室）：http://{h}:{p}/ui/")
    out.print(f"API: http://{h}:{p}/docs")
    # The signer's check, scan resumption and the embedded indexer start once the socket listens (archive/serving.py):
    # /healthz answers meanwhile, /readyz says signer_checking until the signer has been checked.
    from archive.commands.first_use import report_signer_at_start
    from archive.signer_status import BackgroundCheck

    signer_check = BackgroundCheck(ctx, report_signer_at_start)

    def resume_scans() -> None:
        from archive.capture.scans import resume_all

        threading.Thread(target=resume_all, args=(ctx,), name="scan-resume", daemon=True).start()

    if workers > 1:
        out.print(f"{workers} 个 API 进程；检索索引由 archive worker 更新")
        signer_check.start()
        resume_scans()
        run_workers(ctx, h, p, workers)
        return
    from archive import serving
    from archive.api.app import create_app

    application = create_app(context=ctx)
    after_listen: list[Callable[[], object]] = [signer_check.start, resume_scans]
    indexer: list[WorkerThread] = []
    starting = threading.Thread(target=lambda: indexer.extend(w for w in [_start_indexer(ctx)] if w),
                                name="index-start", daemon=True)
    if ctx.settings.index == "embedded":  # production runs `archive worker` instead
        after_listen.append(starting.start)
    try:
        serving.run(application, h, p, ctx.settings.log_level.lower(), after_listen)
    finally:
        if starting.ident is not None:
            starting.join()
        for worker in indexer:
            worker.stop()


def _start_indexer(ctx: Context) -> WorkerThread | None:
    """The embedded index worker (its index opened in this thread); an index that cannot open is logged and
    /readyz reports it (filing does not need the index: the outbox keeps its work)."""
    import logging

    from archive import indexing

    try:
        return indexing.start_worker_thread(ctx)
    except Exception:
        logging.getLogger("archive.indexing").exception("the embedded index worker did not start")
        return None


def _configure_logging(ctx: Context) -> None:
    """ARCHIVE_LOG_FORMAT / ARCHIVE_LOG_LEVEL for the long-running commands (serve, worker)."""
    from archive import logs

    logs.configure_from(ctx.settings)


@app.command()
@friendly
def worker(once: Annotated[bool, typer.Option("--once", help="索引完当前待办后退出。")] = False) -> None:
    """把目录数据库的变更（outbox）写入检索索引（生产环境在 API 旁运行一个）。"""
    from archive import indexing
    from archive.commands.common import cli_context

    ctx = cli_context()
    if once:
        out.print(f"已索引 {indexing.IndexWorker(ctx).drain()} 条待办")
        return
    _configure_logging(ctx)
    stop = threading.Event()
    out.print(f"索引进程已启动（{ctx.settings.index}），按 Ctrl-C 停止")
    try:
        indexing.IndexWorker(ctx).run(stop)
    except KeyboardInterrupt:
        stop.set()


@user_app.command("add")
@friendly
def user_add(username: str,
             role: Annotated[list[str], typer.Option("--role", "-r", help="角色，可重复：clerk 柜员， "
                                                     "archivist 档案管理员， archive_head 档案部门负责人， "
                                                     "auditor 安全审计员， admin 系统管理员， "
                                                     "security_officer 安全保密管理员， "
                                                     "dq_department 业务部门数据整改员")],
             name: Annotated[str, typer.Option(help="姓名（显示名）。")] = "",
             branch: Annotated[str | None, typer.Option(help="所在网点。")] = None,
             password: Annotated[str | None, typer.Option(help="密码；不给则交互输入。")] = None) -> None:
    """创建用户并授予角色。"""
    from archive import identity
    from archive.commands.common import cli_actor, cli_context

    pw = password or typer.prompt("密码", hide_input=True, confirmation_prompt=True)
    ctx = cli_context()
    with ctx.catalogue.session() as s:
        user = identity.add_user(s, cli_actor(), username, pw, name, role, branch)
        out.print(f"已创建用户 {user.username}，角色：{', '.join(user.role_codes)}")


@user_app.command("unlock")
@friendly
def user_unlock(username: str) -> None:
    """解除用户的登录锁定（因多次密码错误而锁定），并清零失败次数。"""
    from archive import logins
    from archive.commands.common import cli_actor, cli_context

    ctx = cli_context()
    with ctx.catalogue.session() as s:
        lifted = logins.unlock(s, cli_actor(), username)
    out.print(f"已解除用户 {username} 的登录锁定" if lifted else f"用户 {username} 未被锁定，无需解锁")


@client_app.command("add")
@friendly
def client_add(name: str,
               scope: Annotated[list[str], typer.Option("--scope", "-s", help="权限范围：data.read、images.read、"
                                                        "files.read、cases.write、pii.read；可重复。")],
               branch: Annotated[list[str] | None, typer.Option("--branch", help="只能访问这些网点；可重复。")] = None
               ) -> None:
    """登记接入系统并显示其接入密钥（只显示这一次）。"""
    from archive import identity
    from archive.commands.common import cli_actor, cli_context

    ctx = cli_context()
    with ctx.catalogue.session() as s:
        client, key = identity.add_client(s, cli_actor(), name, scope, branch or None)
        out.print(f"已登记接入系统 {client.name}，范围：{', '.join(client.scopes)}")
        out.print(f"接入密钥（只显示这一次）：[bold]{key}[/]")


@client_app.command("revoke")
@friendly
def client_revoke(name: str) -> None:
    """吊销接入系统的密钥。"""
    from archive import identity
    from archive.commands.common import cli_actor, cli_context

    ctx = cli_context()
    with ctx.catalogue.session() as s:
        identity.revoke_client(s, cli_actor(), name)
    out.print(f"已吊销 {name} 的接入密钥")


@audit_app.command("verify")
@friendly
def audit_verify() -> None:
    """逐条核验审计日志的哈希链，指出第一个断点（被破坏时退出码 1）。"""
    from archive import audit
    from archive.commands.common import cli_context

    ctx = cli_context()
    with ctx.catalogue.sessions() as s:
        report = audit.verify(s)
    if report.ok:
        out.print(f"审计日志完整：已核验 {report.checked} 条事件")
        return
    err.print(f"[bold red]审计日志被破坏[/]：第一个断点为事件 {report.broken_at}。{report.reason}", highlight=False)
    raise typer.Exit(1)


@scans_app.command("resume")
@friendly
def scans_resume() -> None:
    """续处理因崩溃或重启而中断的批量扫描（`archive serve` 启动时也会做）。"""
    from archive.capture.scans import resume_all
    from archive.commands.common import cli_context

    out.print(f"已续处理 {resume_all(cli_context())} 个扫描批次")


@schedule_app.command("check")
@friendly
def schedule_check(file: Annotated[Path | None, typer.Argument(help="分类方案文件；默认 ARCHIVE_SCHEDULE "
                                                               "或内置方案。")] = None) -> None:
    """加载分类方案并列出其业务类型。"""
    from archive.classification import load_schedule
    from archive.settings import get_settings

    s = load_schedule(file or get_settings().schedule)
    table = Table(title=f"分类方案 {s.version}" + ("（默认值，须与 JGJ/T 495 核对）" if s.is_default else ""))
    for col in ("代码", "业务类型", "类别", "保管期限", "起算事件", "必备材料"):
        table.add_column(col)
    for code, t in s.types.items():
        table.add_row(code, t.name, s.categories[t.category].name, t.retention.label, s.triggers[t.trigger].name,
                      "、".join(s.materials[m] for m in t.required))
    out.print(table)


@schedule_app.command("versions")
@friendly
def schedule_versions() -> None:
    """登记现行分类方案（如为新版本），并列出目录数据库用过的每个方案版本。"""
    from archive.commands.common import cli_actor, cli_context
    from archive.retention import schedules

    ctx = cli_context()
    current = schedules.record_current(ctx, cli_actor())
    with ctx.catalogue.sessions() as s:
        rows = schedules.list_versions(s)
    out.print("分类方案版本（版本  摘要  来源  首次使用  登记人）：")
    for v in rows:  # one line each: refs and digests must never be cut by the terminal width
        mark = "  [bold]← 现行[/]" if v.id == current.id else ""
        out.print(f"  {v.ref}  {v.digest[:16]}  {v.source}  {v.first_seen:%Y-%m-%d %H:%M}  {v.first_seen_by}{mark}",
                  highlight=False)


@schedule_app.command("reapply")
@friendly
def schedule_reapply(
    apply: Annotated[bool, typer.Option("--apply/--dry-run", help="--dry-run（默认）只列出变更；"
                                        "--apply 执行变更（须给 --reason）。")] = False,
    reason: Annotated[str | None, typer.Option(help="重新适用现行方案的理由（记入审计日志）。")] = None,
    business_type: Annotated[list[str] | None, typer.Option("--type", help="只处理这些业务类型；"
                                                            "可重复。")] = None,
    plan_digest: Annotated[str | None, typer.Option(help="预览给出的 plan_digest："
                                                    "方案自预览后有变化则拒绝执行。")] = None,
    limit: Annotated[int, typer.Option(min=0, help="列出的变更条数。")] = 200,
) -> None:
    """对按旧版分类方案归档的档案重新适用现行方案（先预览）。"""
    from archive.commands.common import cli_actor, cli_context
    from archive.retention import schedules

    ctx = cli_context()
    with ctx.catalogue.session() as s:
        if apply:
            result = schedules.apply(ctx, s, cli_actor(), reason or "", business_type or None, plan_digest)
        else:
            result = schedules.plan(ctx, s, business_type or None)
    summary = result.summary(limit)
    out.print(f"重新适用分类方案 {summary['version']}" + ("（已执行）" if apply else "（预览，未修改）") + "：")
    for c in summary["items"]:
        note = schedules.REFUSED.get(c["refused"] or "", c["store_note"] or "")
        old_end = c["old_expiry"] or ("永久" if c["old_code"] == "Y" else "待起算")
        new_end = c["new_expiry"] or ("永久" if c["new_code"] == "Y" else "待起算")
        out.print(f"  {c['archival_code']}  {c['business_type']}  {c['kind']}  保管期限 {c['old_code']} → "
                  f"{c['new_code']}  起算 {c['old_trigger']} → {c['new_trigger']}  到期日 {old_end} → {new_end}  "
                  f"{note}", highlight=False)
    counts = "，".join(f"{k} {v}" for k, v in sorted(summary["counts"].items()))
    out.print(f"合计：{counts}；plan_digest {summary['plan_digest']}")


def main() -> None:
    if not sys.stdout.isatty() and "COLUMNS" not in os.environ:
        # through a pipe or a pager rich assumes 80 columns and cuts the help; read when typer loads rich
        os.environ.setdefault("TERMINAL_WIDTH", str(HELP_WIDTH))
    app()
