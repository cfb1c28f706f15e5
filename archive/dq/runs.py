"""Batch runs (常态化检核): the chosen rules over the catalogue, each rule in its own transaction, resumable.

A run records the version of every rule it runs and, per rule, how many objects failed and how many findings
are new. A rule that raises is a rule error of the run (not a finding, not the end of the run).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from archive import audit
from archive.audit import Actor
from archive.catalogue.models import DqFinding, DqRun
from archive.catalogue.types import utcnow
from archive.context import Context
from archive.dq import findings, reconcile
from archive.dq.registry import Failure, Rule, Scope
from archive.dq.rules import get_rule, select_rules
from archive.errors import Conflict, InvalidInput, NotFound

log = logging.getLogger(__name__)
Progress = Callable[[int, int, str], None]
RULE_FAILED = "规则执行出错，已跳过，其余规则照常检核；请联系信息部门查看日志"


def start(ctx: Context, actor: Actor, codes: list[str] | None = None, since: datetime | None = None,
          kind: str | None = None) -> int:
    with ctx.catalogue.session() as s:
        return create(s, actor, codes, since, kind).id


def create(session: Session, actor: Actor, codes: list[str] | None = None, since: datetime | None = None,
           kind: str | None = None) -> DqRun:
    """Record a run of ``codes`` (every batch rule of ``kind`` when None) over cases changed since ``since``."""
    rules = select_rules(codes, kind)
    if not_batch := [r.code for r in rules if r.batch is None]:
        raise InvalidInput(f"规则 {'、'.join(not_batch)} 不能批量检核（只在数据比对中检查）",
                           code="dq_rule_not_batch", detail={"rules": not_batch})
    if since is not None and since.tzinfo is None:
        raise InvalidInput("起始时间须带时区，例如 2026-01-05T00:00:00+08:00", code="naive_datetime",
                           detail={"field": "since"})
    run = DqRun(status="running", rules={r.code: r.version for r in rules}, since=since, done_rules=[],
                counts={}, rule_errors=[], started_by=actor.name)
    session.add(run)
    session.flush()
    audit.record(session, actor, "dq.run.start", target_type="dq_run", target_id=run.id,
                 detail={"rules": len(rules), "since": since.isoformat() if since else None})
    return run


def execute(ctx: Context, actor: Actor, run_id: int, progress: Progress | None = None) -> DqRun:
    """Run (or resume) ``run_id``: each rule not yet done, in its own transaction, then finish the run."""
    with ctx.catalogue.session() as s:
        run = s.get(DqRun, run_id)
        if run is None:
            raise NotFound(f"检核批次 {run_id} 不存在", code="dq_run_not_found", detail={"id": run_id})
        if run.status == "done":
            raise Conflict(f"检核批次 {run_id} 已完成", code="dq_run_finished", detail={"id": run_id})
        todo = [c for c in run.rules if c not in run.done_rules]
        scope = Scope(now=utcnow(), since=run.since)
        total = len(run.rules)
    for code in todo:
        rule = get_rule(code)
        if progress:
            progress(total - len(todo) + todo.index(code), total, code)
        _one(ctx, run_id, rule, scope)
    with ctx.catalogue.session() as s:
        run = s.get_one(DqRun, run_id)
        run.status, run.finished_at = "done", utcnow()
        audit.record(s, actor, "dq.run.finish", target_type="dq_run", target_id=run.id,
                     detail={"failing": sum(c["failing"] for c in run.counts.values()),
                             "new": sum(c["new"] for c in run.counts.values()), "rule_errors": len(run.rule_errors)})
        s.flush()
        s.expunge(run)
    if progress:
        progress(total, total, "")
    return run


def _one(ctx: Context, run_id: int, rule: Rule, scope: Scope) -> None:
    counts = {"failing": 0, "new": 0}
    error: str | None = None
    with ctx.catalogue.session() as s:
        try:
            with s.begin_nested():
                assert rule.batch is not None
                failing, new = findings.observe_many(s, rule, rule.batch(ctx, s, scope), run_id, scope.now)
                counts = {"failing": failing, "new": new}
        except Exception:  # a broken rule is reported, the run goes on
            log.exception("data-quality rule %s failed", rule.code)
            counts, error = {"failing": 0, "new": 0}, RULE_FAILED
        run = s.get_one(DqRun, run_id, with_for_update=True)
        run.counts = {**run.counts, rule.code: counts}
        run.done_rules = [*run.done_rules, rule.code]
        if error:
            run.rule_errors = [*run.rule_errors, {"rule": rule.code, "message": error}]


def run(ctx: Context, actor: Actor, codes: list[str] | None = None, since: datetime | None = None,
        progress: Progress | None = None, kind: str | None = None) -> DqRun:
    return execute(ctx, actor, start(ctx, actor, codes, since, kind), progress)


def unfinished(ctx: Context) -> int | None:
    """The newest run that did not finish (to resume), if any."""
    with ctx.catalogue.session() as s:
        return s.scalar(select(DqRun.id).where(DqRun.status == "running").order_by(DqRun.id.desc()).limit(1))


def recheck(ctx: Context, session: Session, finding: DqFinding) -> Failure | None:
    """Run the finding's rule again on its object alone: the failure still found (the same one first), or None when
    the object passes now. Reconciliation findings are re-checked against the business system's reported values."""
    rule = get_rule(finding.rule_code)
    if rule.batch is None or finding.serial is None:
        return reconcile.recheck(session, rule, finding)
    scope = Scope(now=utcnow(), serials=(finding.serial,))
    same = [f for f in rule.batch(ctx, session, scope)
            if f.object_type == finding.object_type and f.object_key == finding.object_key]
    exact = [f for f in same if f.fingerprint(rule.code) == finding.fingerprint]
    return (exact or same)[0] if same else None
