"""Holds, appraisal and destruction (冻结、鉴定、销毁).

Every command acts as a named person (``--user``, password asked for): four-eyes approval means nothing if the
operator of the command line could approve under any name, and the audit log must say who did it.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from archive.commands.common import cli_context
from archive.commands.console import friendly, out
from archive.commands.people import Password, User, person
from archive.errors import InvalidInput
from archive.retention.appraisal import DecisionIn, QueueFilter, decide, queue, title_of
from archive.retention.holds import HoldIn, HoldQuery, hold_codes, lift_hold, list_holds, set_hold

if TYPE_CHECKING:
    from archive.context import Context

hold_app = typer.Typer(help="冻结：法律或审计冻结的设置与解除。", no_args_is_help=True)
appraisal_app = typer.Typer(help="鉴定：到期档案的鉴定队列与处理意见。", no_args_is_help=True)
destruction_app = typer.Typer(help="销毁：销毁清册、双人审批与执行。", no_args_is_help=True)

# Mounted by archive/cli.py: command group name -> Typer app.
apps: dict[str, typer.Typer] = {"hold": hold_app, "appraisal": appraisal_app, "destruction": destruction_app}

# archive.retention.destruction load the PDF and signing stacks: they are imported inside the commands
# that use them, so that `archive --help` starts fast (tests/test_cli.py checks it).

def _ctx() -> Context:
    return cli_context()


def _codes(codes: list[str] | None, file: Path | None) -> list[str]:
    out = list(codes or [])
    if file is not None:
        out += [line.strip() for line in file.read_text("utf-8").splitlines() if line.strip()]
    return out




# --- holds ---------------------------------------------------------------------------------------

@hold_app.command("set")
@friendly
def hold_set(user: User, password: Password,
             reason: Annotated[str, typer.Option(help="冻结原因")],
             authority: Annotated[str, typer.Option(help="决定机关")],
             document_no: Annotated[str | None, typer.Option("--document-no", help="文号")] = None,
             code: Annotated[list[str] | None, typer.Option("--code", help="档号（可重复）")] = None,
             serial: Annotated[list[str] | None, typer.Option("--serial", help="业务流水号（可重复）")] = None,
             codes_file: Annotated[Path | None, typer.Option("--codes-file", help="档号清单文件，每行一个")] = None,
             business_type: Annotated[str | None, typer.Option(help="按查询冻结：业务类型")] = None,
             category: Annotated[str | None, typer.Option(help="按查询冻结：类别")] = None,
             year: Annotated[int | None, typer.Option(help="按查询冻结：年度")] = None,
             branch: Annotated[str | None, typer.Option(help="按查询冻结：网点")] = None,
             filed_from: Annotated[str | None, typer.Option(help="按查询冻结：归档日期起 YYYY-MM-DD")] = None,
             filed_to: Annotated[str | None, typer.Option(help="按查询冻结：归档日期止 YYYY-MM-DD")] = None) -> None:
    """冻结：按档号、业务流水号，或按目录查询当前匹配的档案。"""
    query = {k: v for k, v in {"business_type": business_type, "category": category, "year": year, "branch": branch,
                               "filed_from": _date(filed_from), "filed_to": _date(filed_to)}.items() if v is not None}
    codes = _codes(code, codes_file)
    data = HoldIn(reason=reason, authority=authority, document_no=document_no, archival_codes=codes or None,
                  serials=serial or None, query=HoldQuery(**query) if query else None)
    ctx = _ctx()
    principal = person(ctx, user, password)
    with ctx.catalogue.session() as s:
        hold = set_hold(ctx, s, principal, data)
        listed = hold_codes(s, hold.id, limit=20)
    out.print(f"已设置冻结 {hold.id}：{hold.item_count} 件（{hold.authority} {hold.document_no or ''}）")
    for c in listed:
        out.print(f"  {c}")


@hold_app.command("lift")
@friendly
def hold_lift(hold_id: int, user: User, password: Password,
              reason: Annotated[str, typer.Option(help="解除理由")]) -> None:
    """解除冻结（须说明理由）；仍被其他冻结覆盖的对象保留存储的法律保全。"""
    ctx = _ctx()
    principal = person(ctx, user, password)
    with ctx.catalogue.session() as s:
        hold = lift_hold(ctx, s, principal, hold_id, reason)
    out.print(f"已解除冻结 {hold.id}（{hold.item_count} 件）")


@hold_app.command("list")
@friendly
def hold_list(status: Annotated[str | None, typer.Option(help="active 或 lifted")] = None) -> None:
    """冻结记录，最新的在前。"""
    ctx = _ctx()
    table = Table("编号", "状态", "件数", "机关", "文号", "原因", "设置人", "设置时间")
    with ctx.catalogue.session() as s:
        for h in list_holds(s, status, limit=1000):
            table.add_row(str(h.id), {"active": "冻结中", "lifted": "已解除"}.get(h.status, h.status),
                          str(h.item_count), h.authority, h.document_no or "", h.reason, h.created_by,
                          f"{h.created_at.astimezone(ctx.zone):%Y-%m-%d %H:%M}")
    out.print(table)


# --- appraisal -----------------------------------------------------------------------------------

@appraisal_app.command("queue")
@friendly
def appraisal_queue(user: User, password: Password,
                    category: Annotated[str | None, typer.Option(help="类别")] = None,
                    business_type: Annotated[str | None, typer.Option(help="业务类型")] = None,
                    year: Annotated[int | None, typer.Option(help="年度")] = None,
                    limit: Annotated[int, typer.Option(help="显示条数")] = 100) -> None:
    """保管期限已满、等待鉴定的档案。"""
    ctx = _ctx()
    principal = person(ctx, user, password)
    table = Table("档号", "题名", "年度", "保管期限", "到期日")
    with ctx.catalogue.session() as s:
        total, page = queue(ctx, s, principal, QueueFilter(category=category, business_type=business_type,
                                                           year=year), limit)
        for item in page:
            table.add_row(item.archival_code, title_of(ctx, item.case), str(item.year), item.retention_code,
                          f"{item.expiry_date}")
    out.print(table)
    out.print(f"待鉴定共 {total} 件")


@appraisal_app.command("decide")
@friendly
def appraisal_decide(user: User, password: Password,
                     decision: Annotated[str, typer.Option(help="keep 继续保存 或 destroy 拟销毁")],
                     reason: Annotated[str, typer.Option(help="鉴定意见")],
                     code: Annotated[list[str] | None, typer.Option("--code", help="档号（可重复）")] = None,
                     codes_file: Annotated[Path | None, typer.Option("--codes-file", help="档号清单文件")] = None,
                     retention: Annotated[str | None, typer.Option(help="继续保存时的新保管期限 Y/D30/D10")] = None
                     ) -> None:
    """对所列档案登记鉴定意见：继续保存或拟销毁（全部成功或全部不做），显示进度。"""
    codes = _codes(code, codes_file)
    if decision not in ("keep", "destroy"):
        raise InvalidInput("鉴定意见只能是 keep（继续保存）或 destroy（拟销毁）", code="invalid_decision")
    if not codes:
        raise InvalidInput("请用 --code 或 --codes-file 给出档号", code="archival_codes_required")
    data = DecisionIn(archival_codes=codes, decision=decision, reason=reason,
                      retention_code=retention)
    ctx = _ctx()
    principal = person(ctx, user, password)
    with _progress() as bar, ctx.catalogue.session() as s:
        task = bar.add_task("鉴定", total=len(codes))
        report = decide(ctx, s, principal, data, progress=lambda n: bar.update(task, completed=n))
    out.print(f"已记录 {report.decided} 件的鉴定意见（{'继续保存' if decision == 'keep' else '拟销毁'}）")


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())


# --- destruction ---------------------------------------------------------------------------------

@destruction_app.command("build")
@friendly
def destruction_build(user: User, password: Password,
                      title: Annotated[str | None, typer.Option(help="清册标题")] = None,
                      code: Annotated[list[str] | None, typer.Option("--code", help="只列入这些档号")] = None,
                      codes_file: Annotated[Path | None, typer.Option("--codes-file", help="档号清单文件")] = None
                      ) -> None:
    """用拟销毁的鉴定意见编制销毁清册。"""
    from archive.retention.destruction import ListIn, build_list

    codes = _codes(code, codes_file)
    ctx = _ctx()
    principal = person(ctx, user, password)
    with ctx.catalogue.session() as s:
        r = build_list(ctx, s, principal, ListIn(title=title, archival_codes=codes or None))
        dl = r.list
    out.print(f"已编制销毁清册 {dl.number}（编号 {dl.id}）：{dl.item_count} 件，{dl.page_count} 页；待两人审批")
    for sk in r.skipped:
        out.print(f"  未列入 {sk['archival_code']}：{sk['message']}")


@destruction_app.command("show")
@friendly
def destruction_show(list_id: int) -> None:
    """一份销毁清册：条目、审批和执行结果。"""
    from archive.retention.destruction import approvals_of, entries_of, get_list

    ctx = _ctx()
    with ctx.catalogue.session() as s:
        dl = get_list(s, list_id)
        table = Table("序号", "档号", "题名", "年度", "件数", "页数", "保管期限", "销毁原因", "状态")
        for e in entries_of(s, list_id, limit=100_000):
            refusal = (e.refusal or {}).get("message")
            state = {"pending": "待销毁", "destroyed": "已销毁"}.get(e.status) or f"拒绝：{refusal}"
            table.add_row(str(e.sequence), e.archival_code, e.title, str(e.year), str(e.pieces), str(e.pages),
                          e.retention_code, e.reason, state)
        approvals = [f"{a.approver}（{a.approved_at.astimezone(ctx.zone):%Y-%m-%d %H:%M}）"
                     for a in approvals_of(s, list_id)]
    out.print(f"{dl.title} {dl.number}　状态：{dl.status}　审批：{'、'.join(approvals) or '无'}")
    out.print(table)


@destruction_app.command("list")
@friendly
def destruction_list(status: Annotated[str | None, typer.Option(help="pending、approved 或 executed")] = None) -> None:
    """销毁清册，最新的在前。"""
    from archive.retention.destruction import check_status, list_lists

    check_status(status)
    ctx = _ctx()
    table = Table("编号", "清册编号", "状态", "件数", "页数", "编制人", "编制时间")
    with ctx.catalogue.session() as s:
        for dl in list_lists(s, status, limit=1000):
            table.add_row(str(dl.id), dl.number, dl.status, str(dl.item_count), str(dl.page_count), dl.created_by,
                          f"{dl.created_at.astimezone(ctx.zone):%Y-%m-%d %H:%M}")
    out.print(table)


@destruction_app.command("approve")
@friendly
def destruction_approve(list_id: int, user: User, password: Password,
                        opinion: Annotated[str | None, typer.Option(help="审批意见")] = None) -> None:
    """以本人身份审批清册；第二位不同的审批人通过后清册生效，并签章生成 PDF。"""
    from archive.retention.destruction import ApprovalIn, approve

    ctx = _ctx()
    principal = person(ctx, user, password)
    with ctx.catalogue.session() as s:
        dl = approve(ctx, s, principal, list_id, ApprovalIn(opinion=opinion))
    if dl.status == "approved":
        out.print(f"销毁清册 {dl.number} 已经两人批准，签章清册已存档（SHA-256 {dl.pdf_sha256}）")
    else:
        out.print(f"已记录审批；销毁清册 {dl.number} 还需另一名审批人批准")


@destruction_app.command("reject")
@friendly
def destruction_reject(list_id: int, user: User, password: Password,
                       reason: Annotated[str, typer.Option(help="驳回理由")]) -> None:
    """驳回待审批的清册；其中的档案回到鉴定队列。"""
    from archive.retention.destruction import RejectionIn, reject

    ctx = _ctx()
    principal = person(ctx, user, password)
    with ctx.catalogue.session() as s:
        dl = reject(s, principal, list_id, RejectionIn(reason=reason))
        out.print(f"销毁清册 {dl.number} 已驳回；其中 {dl.item_count} 件档案回到鉴定队列")


@destruction_app.command("execute")
@friendly
def destruction_execute(list_id: int, user: User, password: Password) -> None:
    """执行已批准清册中档案的销毁，显示进度；未能销毁的逐条列出原因。"""
    from archive.retention.destruction import execute

    ctx = _ctx()
    principal = person(ctx, user, password)
    with _progress() as bar:
        task = bar.add_task("销毁", total=None)
        report = execute(ctx, principal, list_id, progress=lambda n, total: bar.update(task, completed=n, total=total))
    out.print(f"销毁清册 {report.number}：已销毁 {len(report.destroyed)} 件，拒绝 {len(report.refused)} 件")
    for r in report.refused:
        out.print(f"  拒绝 {r['archival_code']}：{r['message']}（{r['code']}）")
    if report.refused:
        raise typer.Exit(1)


@destruction_app.command("pdf")
@friendly
def destruction_pdf(list_id: int, output: Annotated[Path, typer.Option("--output", "-o", help="保存到此文件")]) -> None:
    """保存已批准并签章的销毁清册 PDF。"""
    from archive.retention.destruction import list_pdf

    ctx = _ctx()
    with ctx.catalogue.session() as s:
        dl, data = list_pdf(ctx, s, list_id)
    output.write_bytes(data)
    out.print(json.dumps({"number": dl.number, "sha256": dl.pdf_sha256, "file": str(output)}, ensure_ascii=False))


def _date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"日期 {value!r} 格式不对，应为 YYYY-MM-DD", code="invalid_date") from None
