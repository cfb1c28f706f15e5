"""Background jobs of the web console: progress, one running job per key, failures in words, interruption."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from archive import jobs
from archive.catalogue.models import AuditEvent, Job
from archive.context import Context
from archive.errors import Conflict, NotFound
from archive.permissions import Permission, Principal, permissions_of_roles


def person(name: str, role: str) -> Principal:
    return Principal(kind="user", id=1, name=name, permissions=permissions_of_roles([role]), roles=(role,))


ARCHIVIST = person("arch01", "archivist")


def test_a_job_reports_progress_and_its_outcome_and_is_audited(ctx: Context) -> None:
    seen: list[int] = []

    def work(progress: jobs.Progress) -> jobs.Outcome:
        for n in range(1, 4):
            progress(n, 3)
            seen.append(n)
        return jobs.Outcome({"summary": "已销毁 3 件"}, "/ui/destruction/1")

    job_id, started = jobs.start(ctx, ARCHIVIST, kind="destruction.execute", key="destruction.execute:1",
                                 title="执行销毁清册 XH-1", permission=Permission.RETENTION_MANAGE, work=work, total=3)
    job = jobs.wait(ctx, job_id)
    assert started and seen == [1, 2, 3]
    assert (job.status, job.done, job.total, job.link) == ("done", 3, 3, "/ui/destruction/1")
    assert job.result == {"summary": "已销毁 3 件"} and job.finished_at is not None
    with ctx.catalogue.reading() as s:
        events = s.execute(select(AuditEvent.action, AuditEvent.outcome, AuditEvent.actor)
                           .where(AuditEvent.target_type == "job").order_by(AuditEvent.seq)).all()
    assert [tuple(e) for e in events] == [("job.start", "success", "arch01"), ("job.finish", "success", "arch01")]


def test_starting_the_same_action_while_it_runs_answers_the_running_job(ctx: Context) -> None:
    release = threading.Event()

    def work(progress: jobs.Progress) -> jobs.Outcome:
        release.wait(10)
        return jobs.Outcome()

    first, started = jobs.start(ctx, ARCHIVIST, kind="k", key="transfer.export:x", title="导出", work=work,
                                permission=Permission.TRANSFER_MANAGE)
    second, again = jobs.start(ctx, ARCHIVIST, kind="k", key="transfer.export:x", title="导出", work=work,
                               permission=Permission.TRANSFER_MANAGE)
    assert started and not again and second == first
    release.set()
    assert jobs.wait(ctx, first).status == "done"
    third, started_again = jobs.start(ctx, ARCHIVIST, kind="k", key="transfer.export:x", title="导出", work=work,
                                      permission=Permission.TRANSFER_MANAGE)
    assert started_again and third != first  # once it ended, the action may run again
    jobs.wait(ctx, third)
    with ctx.catalogue.reading() as s:
        assert s.scalar(select(Job.status).where(Job.id == third)) == "done"


@pytest.mark.parametrize(("error", "code", "words"), [
    (Conflict("销毁清册 XH-1 尚未经两名不同的审批人批准", code="destruction_not_approved"),
     "destruction_not_approved", "尚未经两名不同的审批人批准"),
    (RuntimeError("boom: <object at 0x7f>"), "job_failed", "后台任务出错中止"),
])
def test_a_failed_job_says_why_in_chinese_without_library_text(ctx: Context, error: Exception, code: str,
                                                                words: str) -> None:
    def work(progress: jobs.Progress) -> jobs.Outcome:
        raise error

    job_id, _ = jobs.start(ctx, ARCHIVIST, kind="k", key=f"k:{code}", title="t", work=work,
                           permission=Permission.RETENTION_MANAGE)
    job = jobs.wait(ctx, job_id)
    assert job.status == "failed" and job.error is not None
    assert job.error["code"] == code and words in job.error["message"] and "boom" not in job.error["message"]


def test_a_job_whose_process_died_is_interrupted_and_may_start_again(ctx: Context) -> None:
    with ctx.catalogue.session() as s:
        dead = Job(kind="k", key="schedule.reapply", title="重新适用", permission="retention.manage",
                   owner={"host": jobs.leases.owner()["host"], "pid": 2**22 + 12345}, started_by="arch01")
        s.add(dead)
        s.flush()
        dead_id = dead.id
    with ctx.catalogue.session() as s:
        latest = jobs.latest(s, "schedule.reapply")
        assert latest is not None and latest.id == dead_id and latest.status == "interrupted"
        assert latest.error is not None and latest.error["code"] == "job_interrupted"
    job_id, started = jobs.start(ctx, ARCHIVIST, kind="k", key="schedule.reapply", title="重新适用",
                                 permission=Permission.RETENTION_MANAGE, work=lambda p: jobs.Outcome())
    assert started and job_id != dead_id and jobs.wait(ctx, job_id).status == "done"


def test_only_the_starter_and_people_with_the_permission_see_a_job(ctx: Context) -> None:
    job_id, _ = jobs.start(ctx, ARCHIVIST, kind="k", key="k:see", title="t", work=lambda p: jobs.Outcome(),
                           permission=Permission.RETENTION_MANAGE)
    jobs.wait(ctx, job_id)
    with ctx.catalogue.session() as s:
        assert jobs.get(s, ARCHIVIST, job_id).id == job_id
        assert jobs.get(s, person("arch02", "archivist"), job_id).id == job_id
        with pytest.raises(NotFound):
            jobs.get(s, person("clerk01", "clerk"), job_id)
        assert [j.id for j in jobs.recent(s, person("clerk01", "clerk"))] == []


def test_a_job_is_alive_until_its_end_is_written(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    """A poll that reads the job while its end is being written must not take it for a dead one (it would be
    shown as interrupted and the page would stop polling)."""
    alive_at_finish: list[bool] = []
    record = jobs.audit.record

    def spy(session, actor, action, **kw):  # type: ignore[no-untyped-def]
        if action == "job.finish":
            with ctx.catalogue.reading() as s:
                row = s.get(Job, kw["target_id"])
                alive_at_finish.append(row is not None and jobs._alive(row))
        return record(session, actor, action, **kw)

    monkeypatch.setattr(jobs.audit, "record", spy)
    job_id, _ = jobs.start(ctx, ARCHIVIST, kind="k", key="k:alive", title="t", work=lambda p: jobs.Outcome(),
                           permission=Permission.RETENTION_MANAGE)
    assert jobs.wait(ctx, job_id).status == "done" and alive_at_finish == [True]
    with ctx.catalogue.session() as s:
        assert not jobs._alive(s.get(Job, job_id))  # once ended, nothing of it is left in this process
