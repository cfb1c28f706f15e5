"""安全审计员 (the audit log, its chain, and the access register 利用登记).

The log can hold millions of events: it is paged by ``seq`` (keyset, newest first), filtered by the indexed
``action`` and ``target_id`` and by time through a ``seq`` range (audit.seq_at); the chain's verification walks the
whole log, so it runs as a background job and the page shows its last result, never on a page view.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from archive import access, audit, jobs
from archive.api.deps import UnitOfWork, context
from archive.api.params import MAX_INT
from archive.audit_actions import ACTIONS
from archive.catalogue.models import AuditEvent
from archive.context import Context
from archive.errors import InvalidInput
from archive.permissions import Permission, Principal
from archive.web.deps import require
from archive.web.render import SECURITY_HEADERS, render
from archive.web.routes.jobs import STATUS_NAMES

router = APIRouter(prefix="/ui/audit", include_in_schema=False)
PAGE_SIZE = 50
DETAIL_SHOWN = 300  # characters of an event's detail in the list
VERIFY_KEY = "audit.verify"
Auditor = Depends(require(Permission.AUDIT_READ))
OUTCOME_NAMES = {"success": "成功", "failure": "失败", "refused": "拒绝", "denied": "拒绝"}
WHAT_NAMES = {"data": "查看数据", "page": "查看影像", "original": "下载原件", "rendition": "下载归档件",
              "verification": "验证签章", "package": "导出信息包"}


def _day(ctx: Context, value: str, field: str) -> datetime | None:
    """Midnight (the center's zone) of ``YYYY-MM-DD``, or None when empty."""
    if not value.strip():
        return None
    try:
        return datetime.combine(date.fromisoformat(value.strip()), time(0), ctx.zone)
    except ValueError:
        raise InvalidInput(f"日期 {value.strip()[:20]} 格式不对，应为 YYYY-MM-DD", code="invalid_date",
                           detail={"field": field}) from None


def _detail(detail: dict[str, Any]) -> str:
    shown = json.dumps(detail, ensure_ascii=False, separators=(", ", ": "), default=str) if detail else ""
    return shown if len(shown) <= DETAIL_SHOWN else shown[:DETAIL_SHOWN] + "…"


@router.get("")
def log(request: Request, actor: Annotated[str, Query(max_length=100)] = "",
        action: Annotated[str, Query(max_length=64)] = "", target: Annotated[str, Query(max_length=64)] = "",
        since: Annotated[str, Query(max_length=20)] = "", until: Annotated[str, Query(max_length=20)] = "",
        before: Annotated[int | None, Query(ge=1, le=MAX_INT)] = None, ctx: Context = Depends(context),
        db: Session = UnitOfWork, principal: Principal = Auditor) -> Response:
    """审计日志, newest first; ``before`` = the last seq of the previous page."""
    actor, action, target = actor.strip(), action.strip(), target.strip()
    if action and action not in ACTIONS:
        raise InvalidInput(f"审计事件类型 {action} 不存在", code="invalid_input", detail={"field": "action"})
    start, end = _day(ctx, since, "since"), _day(ctx, until, "until")
    q = select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(PAGE_SIZE + 1)
    if before is not None:
        q = q.where(AuditEvent.seq < before)
    if start is not None:
        q = q.where(AuditEvent.seq >= audit.seq_at(db, start))
    if end is not None:  # the whole day named
        q = q.where(AuditEvent.seq < audit.seq_at(db, end + timedelta(days=1)))
    if action:
        q = q.where(AuditEvent.action == action)
    if target:
        q = q.where(AuditEvent.target_id == target)
    if actor:
        q = q.where(AuditEvent.actor == actor)
    rows = list(db.scalars(q))
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    keep = {k: v for k, v in (("actor", actor), ("action", action), ("target", target), ("since", since.strip()),
                               ("until", until.strip())) if v}
    return render(request, "audit_log.html", events=rows, more=more, before=before, keep=keep,
                  next_before=rows[-1].seq if more else None, actions=ACTIONS, outcomes=OUTCOME_NAMES,
                  detail=_detail, actor=actor, action=action, target=target, since=since.strip(),
                  until=until.strip(), job=jobs.latest(db, VERIFY_KEY), status_names=STATUS_NAMES, tab="log")


@router.post("/verify")
def verify(request: Request, ctx: Context = Depends(context), db: Session = UnitOfWork,
           principal: Principal = Auditor) -> Response:
    """Start the chain's verification as a job (a second click answers the running one) and go back to the log."""
    db.rollback()  # nothing to keep; ends the request's transaction (on SQLite: frees the write lock) for the job's

    def work(progress: jobs.Progress) -> jobs.Outcome:
        with ctx.catalogue.reading() as s:
            r = audit.verify(s, progress=progress)
        summary = (f"审计日志完整：已核验 {r.checked} 条事件，哈希链无断点" if r.ok
                   else f"审计日志哈希链断开：{r.reason}（已核验 {r.checked} 条）")
        return jobs.Outcome({"ok": r.ok, "checked": r.checked, "broken_at": r.broken_at, "summary": summary})

    jobs.start(ctx, principal, kind="audit.verify", key=VERIFY_KEY, title="核验审计日志哈希链",
               permission=Permission.AUDIT_READ, work=work)
    return RedirectResponse("/ui/audit", status_code=303, headers=SECURITY_HEADERS)


@router.get("/access")
def access_register(request: Request, actor: Annotated[str, Query(max_length=100)] = "",
                    target: Annotated[str, Query(max_length=64)] = "", since: Annotated[str, Query(max_length=20)] = "",
                    page: Annotated[int, Query(ge=1, le=10_000)] = 1, ctx: Context = Depends(context),
                    db: Session = UnitOfWork, principal: Principal = Auditor) -> Response:
    """利用登记: who read which item or case, what and why (the access events of the log)."""
    actor, target = actor.strip(), target.strip()
    total, rows = access.list_access(db, target=target or None, actor=actor or None,
                                     since=_day(ctx, since, "since"), limit=PAGE_SIZE,
                                     offset=(page - 1) * PAGE_SIZE)
    keep = urlencode({k: v for k, v in (("actor", actor), ("target", target), ("since", since.strip())) if v})
    keep = keep + "&" if keep else ""
    return render(request, "audit_access.html", rows=rows, total=total, page=page,
                  pages=max(1, -(-total // PAGE_SIZE)), keep=keep, actor=actor, target=target,
                  since=since.strip(), whats=WHAT_NAMES, tab="access")
