"""Lending (利用、借阅).

Each command acts as a named person (``--user``/``--as``, password checked): whether they may request,
approve or lend is decided by that account's roles, exactly as in the API, and the audit log names that
account. A refused step is printed as its Chinese message and code (exit 2) and leaves a ``refused`` audit event.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.table import Table
from sqlalchemy.orm import Session

from archive.commands.common import cli_context
from archive.commands.console import friendly, out
from archive.commands.people import Password, User, person
from archive.errors import InvalidInput
from archive.permissions import Principal
from archive.retention import lending
from archive.retention.lending import LoanIn, LoanOut, RequestIn, RequestOut
from archive.retention.refusals import audited
from archive.settings import Settings

lending_app = typer.Typer(help="利用与借阅：申请、审批、查阅登记、实体借出与归还。", no_args_is_help=True)

# Mounted by archive/cli.py: command group name -> Typer app.
apps: dict[str, typer.Typer] = {"lending": lending_app}

M = TypeVar("M", bound=BaseModel)




@contextmanager
def acting(username: str, password: str) -> Iterator[tuple[Session, Principal, Settings, Any]]:
    """A unit of work as the person (password checked): (session, principal, settings, local time zone)."""
    ctx = cli_context()
    try:
        principal = person(ctx, username, password)
        with ctx.catalogue.session() as s:
            yield s, principal, ctx.settings, ctx.zone
    finally:
        ctx.close()


def _valid(model: type[M], **fields: Any) -> M:
    """The command's input as the API's model; a value it refuses is a Chinese message, not a traceback."""
    try:
        return model(**fields)
    except ValidationError as exc:
        problems = "；".join(f"{'.'.join(str(p) for p in e['loc'])}：{e['msg']}" for e in exc.errors()[:5])
        raise InvalidInput(f"输入有误：{problems}", code="invalid_request") from None




def _today(zone: Any) -> date:
    return datetime.now(zone).date()


def _local(at: datetime | None, zone: Any) -> str:
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M") if at else ""


def _requests_table(title: str, rows: list[RequestOut], zone: Any) -> Table:
    table = Table(title=title)
    for col in ("编号", "申请人", "目的", "方式", "天数", "档号", "状态", "到期"):
        table.add_column(col, overflow="fold")  # 档号 in full, wrapped if the terminal is narrow
    for r in rows:
        table.add_row(str(r.id), r.requester, r.purpose_label, r.mode_label, str(r.days_granted or r.days_requested),
                      "、".join(r.archival_codes), r.status_label, _local(r.expires_at, zone))
    return table


def _loans_table(title: str, rows: list[LoanOut]) -> Table:
    table = Table(title=title)
    for col in ("借阅单", "借阅人", "档号", "应还日期", "状态", "逾期天数", "催还次数"):
        table.add_column(col, overflow="fold")
    for x in rows:
        table.add_row(str(x.id), x.borrower, "、".join(x.archival_codes), x.due_date.isoformat(),
                      "未还" if x.status == "out" else "已还", str(x.overdue_days), str(len(x.reminders)))
    return table


# --- requests ------------------------------------------------------------------------------------

@lending_app.command("request")
@friendly
def request(user: User, password: Password,
            item: Annotated[list[str], typer.Option("--item", "-i", help="档号；可重复。")],
            purpose: Annotated[str, typer.Option(help="利用目的：review 业务复核、audit 审计、"
                                                 "judicial 司法协查、self 本人查询、other 其他。")],
            mode: Annotated[str, typer.Option(help="利用方式：online 在线查阅、download 下载、"
                                              "print 打印、paper 实体借出。")],
            days: Annotated[int, typer.Option(help="期限（天）。")],
            text: Annotated[str | None, typer.Option("--text", help="利用目的说明（目的为 other 时必填）。")] = None,
            department: Annotated[str | None, typer.Option(help="单位/部门。")] = None,
            authority: Annotated[str | None, typer.Option(help="外部申请机关：court 法院、police 公安、"
                                                                    "discipline 纪检监察。")] = None,
            unit: Annotated[str | None, typer.Option(help="外部申请单位名称。")] = None,
            legal_basis: Annotated[str | None, typer.Option(help="法律文书编号。")] = None) -> None:
    """提交利用申请。"""
    data = _valid(RequestIn, archival_codes=item, purpose=purpose, purpose_text=text, mode=mode, days=days,
                  department=department, authority=authority, external_unit=unit, legal_basis=legal_basis)
    with acting(user, password) as (s, p, settings, _):
        with audited(s, p, "lending.request", target_type="lending_request",
                              detail={"archival_codes": item[:20], "mode": mode, "days": days}):
            r = lending.create_request(s, p, data, settings.lending_max_days)
        out.print(f"已提交利用申请 {r.id}，待审批")


@lending_app.command("mine")
@friendly
def mine(user: User, password: Password) -> None:
    """我的利用申请，最新的在前。"""
    with acting(user, password) as (s, p, _, zone):
        rows = [lending.request_out(r) for r in lending.my_requests(s, p)]
        out.print(_requests_table(f"{user} 的利用申请", rows, zone))


@lending_app.command("pending")
@friendly
def pending(user: User, password: Password) -> None:
    """待审批的利用申请（不含本人的）。"""
    with acting(user, password) as (s, p, _, zone):
        rows = [lending.request_out(r) for r in lending.pending_requests(s, p)]
        out.print(_requests_table("待审批的利用申请", rows, zone))


@lending_app.command("show")
@friendly
def show(request_id: int, user: User, password: Password) -> None:
    """一笔利用申请：档案、审批结果、法律依据、撤销情况。"""
    with acting(user, password) as (s, p, _, zone):
        r = lending.request_out(lending.visible_request(s, p, request_id))
        out.print(_requests_table(f"利用申请 {r.id}", [r], zone))
        for label, value in (("目的说明", r.purpose_text), ("来函单位", r.external_unit), ("法律文书", r.legal_basis),
                             ("审批人", r.decided_by), ("审批意见", r.decision_reason),
                             ("撤销", f"{r.revoked_by}：{r.revoke_reason}" if r.revoked_by else None)):
            if value:
                out.print(f"{label}：{value}", highlight=False)


@lending_app.command("approve")
@friendly
def approve(request_id: int, user: User, password: Password,
            days: Annotated[int | None, typer.Option(help="批准的天数（可少于申请的天数）。")] = None,
            reason: Annotated[str | None, typer.Option(help="审批意见.")] = None) -> None:
    """批准利用申请（可缩短期限）。"""
    with acting(user, password) as (s, p, settings, zone):
        with audited(s, p, "lending.approve", target_type="lending_request", target_id=request_id,
                              detail={"days": days}):
            r = lending.approve(s, p, request_id, settings.lending_max_days, days, reason)
        out.print(f"已批准利用申请 {r.id}：{r.days_granted} 天，至 {_local(r.expires_at, zone)} 到期")


@lending_app.command("reject")
@friendly
def reject(request_id: int, user: User, password: Password,
           reason: Annotated[str, typer.Option(help="理由（必填）。")]) -> None:
    """驳回利用申请，须说明理由。"""
    with acting(user, password) as (s, p, _, _zone):
        with audited(s, p, "lending.reject", target_type="lending_request", target_id=request_id):
            r = lending.reject(s, p, request_id, reason)
        out.print(f"已驳回利用申请 {r.id}")


@lending_app.command("revoke")
@friendly
def revoke(request_id: int, user: User, password: Password,
           reason: Annotated[str, typer.Option(help="理由（必填）。")]) -> None:
    """提前终止生效中的利用授权，须说明理由。"""
    with acting(user, password) as (s, p, _, _zone):
        with audited(s, p, "lending.revoke", target_type="lending_request", target_id=request_id):
            r = lending.revoke(s, p, request_id, reason)
        out.print(f"已撤销利用授权 {r.id}")


@lending_app.command("views")
@friendly
def views(request_id: int, user: User, password: Password) -> None:
    """某项授权下登记的每一次查阅。"""
    with acting(user, password) as (s, p, _, zone):
        events = lending.grant_views(s, p, request_id)
        table = Table(title=f"利用授权 {request_id} 的查阅记录（{len(events)} 次）")
        for col in ("时间", "利用人", "档号", "内容", "目的"):
            table.add_column(col)
        for e in events:
            table.add_row(_local(e.at, zone), e.actor, e.target_id or "", e.what or "", e.purpose or "")
        out.print(table)


# --- paper loans ---------------------------------------------------------------------------------

@lending_app.command("lend")
@friendly
def lend(user: User, password: Password, borrower: Annotated[str, typer.Option(help="借阅人.")],
         item: Annotated[list[str], typer.Option("--item", "-i", help="档号；可重复。")],
         due: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="应还日期 YYYY-MM-DD。")],
         unit: Annotated[str | None, typer.Option(help="借阅人单位/部门.")] = None,
         request_id: Annotated[int | None, typer.Option("--request", help="已批准的实体借出申请编号。")] = None
         ) -> None:
    """实体档案借出。"""
    data = _valid(LoanIn, borrower=borrower, borrower_unit=unit, archival_codes=item, due_date=due.date(),
                  request_id=request_id)
    with acting(user, password) as (s, p, settings, zone):
        with audited(s, p, "lending.loan.out", target_type="paper_loan",
                              detail={"archival_codes": item[:20], "borrower": borrower,
                                      "due_date": data.due_date.isoformat()}):
            loan = lending.lend_out(s, p, data, _today(zone), settings.lending_max_days)
        out.print(f"已登记借出，借阅单 {loan.id}，应还日期 {loan.due_date}")


@lending_app.command("loans")
@friendly
def loans(user: User, password: Password,
          status: Annotated[str | None, typer.Option(help="out 借出中 或 returned 已归还。")] = None) -> None:
    """实体借出记录，最新的在前。"""
    with acting(user, password) as (s, p, _, zone):
        today = _today(zone)
        rows = [lending.loan_out(x, today) for x in lending.list_loans(s, p, status)]
        out.print(_loans_table("借阅单", rows))


@lending_app.command("overdue")
@friendly
def overdue(user: User, password: Password) -> None:
    """逾期未还的借出（催还清单）。"""
    with acting(user, password) as (s, p, _, zone):
        today = _today(zone)
        rows = [lending.loan_out(x, today) for x in lending.overdue_loans(s, p, today)]
        out.print(_loans_table(f"逾期未还（{len(rows)} 单）", rows))


@lending_app.command("remind")
@friendly
def remind(loan_id: int, user: User, password: Password,
           note: Annotated[str | None, typer.Option(help="How, e.g. 电话催还.")] = None
           ) -> None:
    """登记一次催还。"""
    with acting(user, password) as (s, p, _, zone):
        with audited(s, p, "lending.loan.remind", target_type="paper_loan", target_id=loan_id):
            loan = lending.remind(s, p, loan_id, _today(zone), zone, note)
        out.print(f"已登记催还：借阅单 {loan.id}（第 {len(loan.reminders)} 次）")


@lending_app.command("return")
@friendly
def return_(loan_id: int, user: User, password: Password,
            condition: Annotated[str, typer.Option(help="归还时的状况，例如 完好。")]) -> None:
    """登记归还及归还时的状况。"""
    with acting(user, password) as (s, p, _, zone):
        with audited(s, p, "lending.loan.return", target_type="paper_loan", target_id=loan_id):
            loan = lending.return_loan(s, p, loan_id, condition, zone)
        out.print(f"借阅单 {loan.id} 已归还，状况：{loan.condition_note}")
