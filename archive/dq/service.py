"""What the API, the console and the CLI share: runs as background jobs, and audited exports."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from archive import audit, jobs
from archive.audit import Actor
from archive.catalogue.models import DqRun
from archive.context import Context
from archive.dq import findings, reports, runs
from archive.errors import NotFound
from archive.permissions import Permission, Principal

EXPORT_MAX = 100_000


def start_run_job(ctx: Context, session: Session, principal: Principal, codes: list[str] | None,
                  since: datetime | None) -> tuple[int, int]:
    """Record a run in ``session`` and commit it, then execute it as a background job (each rule commits in a
    transaction of its own); (run id, job id)."""
    actor = Actor.of(principal)
    run_id = runs.create(session, actor, codes, since).id
    session.commit()

    def work(progress: jobs.Progress) -> jobs.Outcome:
        run = runs.execute(ctx, actor, run_id, lambda done, total, _code: progress(done, total))
        return jobs.Outcome({"run": run.id, "rules": len(run.rules), "rule_errors": len(run.rule_errors)},
                            link=f"/api/v1/dq/runs/{run.id}")

    job_id, _ = jobs.start(ctx, principal, kind="dq.run", key=f"dq.run:{run_id}", title=f"数据质量检核 {run_id}",
                           permission=Permission.DQ_READ, work=work)
    return run_id, job_id


def get_run(session: Session, run_id: int) -> DqRun:
    run = session.get(DqRun, run_id)
    if run is None:
        raise NotFound(f"检核批次 {run_id} 不存在", code="dq_run_not_found", detail={"id": run_id})
    return run


def export_findings(session: Session, actor: Actor, owner: str | None, live: bool) -> bytes:
    rows = list(session.scalars(findings.query(owner=owner, live=live, limit=EXPORT_MAX)))
    audit.record(session, actor, "dq.export", target_type="dq_findings", target_id=owner or "all",
                 detail={"rows": len(rows), "live": live})
    return reports.findings_xlsx(rows, f"问题数据清单（{owner or '全部责任方'}）")


def weekly_xlsx(session: Session, actor: Actor) -> bytes:
    rows = reports.weekly(session)
    audit.record(session, actor, "dq.export", target_type="dq_report", target_id="weekly", detail={"rows": len(rows)})
    ids = [r["id"] for r in rows]
    return reports.findings_xlsx([findings.get(session, i) for i in ids],
                                 "周调度：未关闭的重点问题（按责任方、发现时间）")


def monthly_xlsx(session: Session, actor: Actor) -> bytes:
    audit.record(session, actor, "dq.export", target_type="dq_report", target_id="monthly")
    return reports.stats_xlsx(reports.stats(session))


def monthly_pdf(ctx: Context, session: Session, actor: Actor) -> bytes:
    audit.record(session, actor, "dq.export", target_type="dq_report", target_id="monthly.pdf")
    month = datetime.now(ctx.zone).strftime("%Y年%m月")
    return reports.monthly_pdf(reports.stats(session), fonds_name=ctx.settings.fonds_name,
                               font_path=ctx.settings.cjk_font, month=month)


def weekly_pdf(ctx: Context, session: Session, actor: Actor) -> bytes:
    rows = reports.weekly(session)
    audit.record(session, actor, "dq.export", target_type="dq_report", target_id="weekly.pdf",
                 detail={"rows": len(rows)})
    day = datetime.now(ctx.zone).strftime("%Y年%m月%d日")
    return reports.weekly_pdf(rows, fonds_name=ctx.settings.fonds_name, font_path=ctx.settings.cjk_font, day=day)
