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
    from archive.cli import _context

    ctx = _context()
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
            item: Annotated[list[str], typer.Option("--item", "-i", help="档号; repeatable.")],
            purpose: Annotated[str, typer.Option(help="review 业务复核, audit 审计, judicial 司法协查, self 本人查询, "
                                                 "other 其他.")],
            mode: Annotated[str, typer.Option(help="online 在线查阅, download 下载, print 打印, paper 实体借出.")],
            days: Annotated[int, typer.Option(help="Period in days.")],
            text: Annotated[str | None, typer.Option("--text", help="Purpose in words (required for other).")] = None,
            department: Annotated[str | None, typer.Option(help="单位/部门.")] = None,
            authority: Annotated[str | None, typer.Option(help="External requester: court, police, discipline.")
                                 ] = None,
            unit: Annotated[str | None, typer.Option(help="Name of the external body.")] = None,
            legal_basis: Annotated[str | None, typer.Option(help="Reference of the legal document.")] = None) -> None:
    """Ask to use items (利用申请)."""
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
    """My requests, newest first."""
    with acting(user, password) as (s, p, _, zone):
        rows = [lending.request_out(r) for r in lending.my_requests(s, p)]
        out.print(_requests_table(f"{user} 的利用申请", rows, zone))


@lending_app.command("pending")
@friendly
def pending(user: User, password: Password) -> None:
    """Requests waiting for approval (not your own)."""
    with acting(user, password) as (s, p, _, zone):
        rows = [lending.request_out(r) for r in lending.pending_requests(s, p)]
        out.print(_requests_table("待审批的利用申请", rows, zone))


@lending_app.command("show")
@friendly
def show(request_id: int, user: User, password: Password) -> None:
    """One request: items, decision, legal basis, revocation."""
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
            days: Annotated[int | None, typer.Option(help="Fewer days than asked for.")] = None,
            reason: Annotated[str | None, typer.Option(help="审批意见.")] = None) -> None:
    """Approve a request (optionally for fewer days)."""
    with acting(user, password) as (s, p, settings, zone):
        with audited(s, p, "lending.approve", target_type="lending_request", target_id=request_id,
                              detail={"days": days}):
            r = lending.approve(s, p, request_id, settings.lending_max_days, days, reason)
        out.print(f"已批准利用申请 {r.id}：{r.days_granted} 天，至 {_local(r.expires_at, zone)} 到期")


@lending_app.command("reject")
@friendly
def reject(request_id: int, user: User, password: Password,
           reason: Annotated[str, typer.Option(help="Why (required).")]) -> None:
    """Reject a request, with a reason."""
    with acting(user, password) as (s, p, _, _zone):
        with audited(s, p, "lending.reject", target_type="lending_request", target_id=request_id):
            r = lending.reject(s, p, request_id, reason)
        out.print(f"已驳回利用申请 {r.id}")


@lending_app.command("revoke")
@friendly
def revoke(request_id: int, user: User, password: Password,
           reason: Annotated[str, typer.Option(help="Why (required).")]) -> None:
    """End an active grant early, with a reason."""
    with acting(user, password) as (s, p, _, _zone):
        with audited(s, p, "lending.revoke", target_type="lending_request", target_id=request_id):
            r = lending.revoke(s, p, request_id, reason)
        out.print(f"已撤销利用授权 {r.id}")


@lending_app.command("views")
@friendly
def views(request_id: int, user: User, password: Password) -> None:
    """Every read registered under a grant."""
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
         item: Annotated[list[str], typer.Option("--item", "-i", help="档号; repeatable.")],
         due: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="Due date YYYY-MM-DD.")],
         unit: Annotated[str | None, typer.Option(help="借阅人单位/部门.")] = None,
         request_id: Annotated[int | None, typer.Option("--request", help="The approved paper request.")] = None
         ) -> None:
    """Lend paper originals out (借出)."""
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
          status: Annotated[str | None, typer.Option(help="out or returned.")] = None) -> None:
    """Paper loans, newest first."""
    with acting(user, password) as (s, p, _, zone):
        today = _today(zone)
        rows = [lending.loan_out(x, today) for x in lending.list_loans(s, p, status)]
        out.print(_loans_table("借阅单", rows))


@lending_app.command("overdue")
@friendly
def overdue(user: User, password: Password) -> None:
    """Loans still out after their due date (催还清单)."""
    with acting(user, password) as (s, p, _, zone):
        today = _today(zone)
        rows = [lending.loan_out(x, today) for x in lending.overdue_loans(s, p, today)]
        out.print(_loans_table(f"逾期未还（{len(rows)} 单）", rows))


@lending_app.command("remind")
@friendly
def remind(loan_id: int, user: User, password: Password,
           note: Annotated[str | None, typer.Option(help="How, e.g. 电话催还.")] = None
           ) -> None:
    """Record a reminder (催还)."""
    with acting(user, password) as (s, p, _, zone):
        with audited(s, p, "lending.loan.remind", target_type="paper_loan", target_id=loan_id):
            loan = lending.remind(s, p, loan_id, _today(zone), zone, note)
        out.print(f"已登记催还：借阅单 {loan.id}（第 {len(loan.reminders)} 次）")


@lending_app.command("return")
@friendly
def return_(loan_id: int, user: User, password: Password,
            condition: Annotated[str, typer.Option(help="Condition found, e.g. 完好.")]) -> None:
    """Record the return (归还) with the condition found."""
    with acting(user, password) as (s, p, _, zone):
        with audited(s, p, "lending.loan.return", target_type="paper_loan", target_id=loan_id):
            loan = lending.return_loan(s, p, loan_id, condition, zone)
        out.print(f"借阅单 {loan.id} 已归还，状况：{loan.condition_note}")
