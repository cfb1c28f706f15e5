"""Background jobs (后台任务) of the web console: long actions with visible progress that survive a page reload.

Executing a 销毁清册 of 10,000 items, exporting a 移交 package or re-applying a schedule takes minutes. The page
starts a job and shows its progress from the catalogue, so a reload, another tab or another person sees the same
job; starting the same action again while it runs answers the running job (one running job per ``key``,
enforced by a partial unique index, so also across processes). The work itself is the domain function the API and
the CLI call, with its own transactions and audit events; the job only adds progress and the outcome.

Jobs run in a small thread pool of the process that started them. A job whose process ended is shown as
``interrupted`` when next looked at; the domain functions are resumable (an executed entry stays executed), so
starting it again goes on where it stopped.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from archive import audit, leases
from archive.audit import Actor
from archive.catalogue.models import Job, JobStatus
from archive.catalogue.types import utcnow
from archive.context import Context
from archive.errors import ArchiveError, NotFound
from archive.permissions import Permission, Principal

log = logging.getLogger(__name__)

Progress = Callable[[int, "int | None"], None]
LEASE = timedelta(minutes=10)  # a job of another host not heard of for this long is taken as dead
PROGRESS_EVERY = 0.5  # seconds between progress writes: the page polls once a second
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="job")
_running: set[str] = set()  # run tokens of the jobs this process runs now
_lock = threading.Lock()
FAILED = "后台任务出错中止，已完成的部分已保存；请稍后重新开始，或联系系统管理员查看日志"


@dataclass
class Outcome:
    """What a job's work returns: a summary for the page (JSON) and where to see what it made."""

    result: dict[str, Any] = field(default_factory=dict)
    link: str | None = None


Work = Callable[[Progress], Outcome]


def start(ctx: Context, principal: Principal, *, kind: str, key: str, title: str, permission: Permission,
          work: Work, total: int | None = None) -> tuple[int, bool]:
    """Start ``work`` as a job, or find the job of ``key`` that is running; (job id, whether it was started now).

    ``permission`` is what a person needs to watch it besides the one who started it.
    """
    actor = Actor.of(principal)
    with ctx.catalogue.session() as s:
        running = _running_job(s, key)
        if running is not None:
            return running.id, False
    # a job of this process is alive while its run token is in _running: the token goes in before the row is
    # written and out after its end is, so a poll never takes a live job for a dead one
    run = secrets.token_hex(8)
    with _lock:
        _running.add(run)
    try:
        with ctx.catalogue.session() as s:
            job = Job(kind=kind, key=key, title=title, permission=permission.value, total=total,
                      owner={**leases.owner(), "run": run}, started_by=principal.name)
            s.add(job)
            s.flush()
            job_id = job.id
            audit.record(s, actor, "job.start", target_type="job", target_id=job_id,
                         detail={"kind": kind, "key": key})
    except IntegrityError:  # another process started it between the look and the insert
        with _lock:
            _running.discard(run)
        with ctx.catalogue.session() as s:
            running = _running_job(s, key)
            if running is None:
                raise
            return running.id, False
    except BaseException:
        with _lock:
            _running.discard(run)
        raise
    _pool.submit(_run, ctx, actor, job_id, run, work)
    return job_id, True


def _running_job(session: Session, key: str) -> Job | None:
    """The running job of ``key``; one whose process is gone is marked interrupted first (and not returned)."""
    job = session.scalar(select(Job).where(Job.key == key, Job.status == JobStatus.RUNNING.value))
    if job is None or _alive(job):
        return job
    _interrupt(session, job)
    return None


def _alive(job: Job) -> bool:
    if job.owner.get("pid") == leases.owner()["pid"] and job.owner.get("host") == leases.owner()["host"]:
        with _lock:
            return job.owner.get("run") in _running
    return leases.alive(job.owner, job.heartbeat_at, LEASE)


def _interrupt(session: Session, job: Job) -> None:
    job.status, job.finished_at = JobStatus.INTERRUPTED.value, utcnow()
    job.error = {"code": "job_interrupted",
                 "message": "后台任务所在的进程已停止，任务未完成；可重新开始，已完成的部分不会重复执行"}
    audit.record(session, Actor.system(), "job.finish", target_type="job", target_id=job.id, outcome="failure",
                 detail={"kind": job.kind, "key": job.key, "status": job.status, "done": job.done})
    session.flush()


def _run(ctx: Context, actor: Actor, job_id: int, run: str, work: Work) -> None:
    last = 0.0

    def progress(done: int, total: int | None) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < PROGRESS_EVERY and not (total is not None and done >= total):
            return
        last = now
        with ctx.catalogue.session() as s:
            job = s.get(Job, job_id)
            if job is not None:
                job.done, job.total, job.heartbeat_at = done, total, utcnow()

    status, result, link, error = JobStatus.DONE, None, None, None
    try:
        try:
            outcome = work(progress)
            result, link = outcome.result, outcome.link
        except ArchiveError as e:
            status, error = JobStatus.FAILED, {"code": e.code, "message": e.message}
        except Exception:  # the person sees a plain message; the log keeps the trace
            log.exception("job %s failed", job_id)
            status, error = JobStatus.FAILED, {"code": "job_failed", "message": FAILED}
        with ctx.catalogue.session() as s:
            job = s.get(Job, job_id)
            assert job is not None
            job.status, job.result, job.link, job.error = status.value, result, link, error
            job.finished_at = job.heartbeat_at = utcnow()
            if status is JobStatus.DONE and job.total is not None:
                job.done = job.total
            audit.record(s, actor, "job.finish", target_type="job", target_id=job_id,
                         outcome="success" if status is JobStatus.DONE else "failure",
                         detail={"kind": job.kind, "key": job.key, "status": job.status,
                                 **({"error": error["code"]} if error else {})})
    finally:  # only once its end is written: until then a poll must see it alive, not interrupted
        with _lock:
            _running.discard(run)


def get(session: Session, principal: Principal, job_id: int) -> Job:
    """A job the person may watch (404 otherwise, like one that does not exist); a dead running one is marked."""
    job = session.get(Job, job_id)
    if job is None or not (job.started_by == principal.name or principal.can(Permission(job.permission))):
        raise NotFound(f"后台任务 {job_id} 不存在", code="job_not_found", detail={"job": job_id})
    if job.status == JobStatus.RUNNING.value and not _alive(job):
        _interrupt(session, job)
    return job


def latest(session: Session, key: str) -> Job | None:
    """The newest job of ``key`` (running or not): what a page shows beside the action it started."""
    job = session.scalar(select(Job).where(Job.key == key).order_by(Job.id.desc()).limit(1))
    if job is not None and job.status == JobStatus.RUNNING.value and not _alive(job):
        _interrupt(session, job)
    return job


def recent(session: Session, principal: Principal, limit: int = 50) -> list[Job]:
    """The newest jobs the person may watch."""
    allowed = [p.value for p in principal.permissions]
    return list(session.scalars(select(Job).where((Job.started_by == principal.name) | Job.permission.in_(allowed))
                                .order_by(Job.id.desc()).limit(limit)))


def wait(ctx: Context, job_id: int, timeout: float = 60.0) -> Job:
    """Block until the job is no longer running (tests, the CLI); the job as it ended."""
    deadline = time.monotonic() + timeout
    while True:
        with ctx.catalogue.session() as s:
            job = s.get(Job, job_id)
            if job is None:
                raise NotFound(f"后台任务 {job_id} 不存在", code="job_not_found", detail={"job": job_id})
            if job.status != JobStatus.RUNNING.value:
                s.expunge(job)
                return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still running after {timeout} s")
        time.sleep(0.05)
