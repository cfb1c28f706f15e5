"""`archive check sweep`: resumable from its cursor, limited, rate-limited, refusing bad scopes."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from archive.audit import Actor
from archive.catalogue.models import AuditEvent, CheckReport, StorageAlert, StorageSweep
from archive.catalogue.types import utcnow
from archive.checks import sweep as sweep_module
from archive.checks.bc import Probe
from archive.checks.sweep import RateLimiter, SweepOptions, run_sweep, signature_due
from archive.cli import app
from archive.context import Context
from archive.errors import Conflict, InvalidInput, NotFound
from storage.base import ObjectStore
from tests.checks.storage_support import add_item, flip_byte, fs_path, put

ACTOR = Actor.system("test-sweep")
REAL_PROBE = sweep_module.probe
runner = CliRunner()


class Crash(Exception):
    pass


def probing(monkeypatch: pytest.MonkeyPatch, crash_on: str | None = None) -> list[str]:
    """Record every key the sweep reads; reading ``crash_on`` fails as a lost disk would."""
    seen: list[str] = []
    lock = threading.Lock()

    def spy(store: ObjectStore, key: str, limiter: RateLimiter) -> Probe:
        if key == crash_on:
            raise Crash("disk went away")
        with lock:
            seen.append(key)
        return REAL_PROBE(store, key, limiter)

    monkeypatch.setattr(sweep_module, "probe", spy)
    return seen


def events(ctx: Context, action: str) -> list[AuditEvent]:
    with ctx.catalogue.sessions() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_an_interrupted_sweep_resumes_after_its_last_checkpoint(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given 12 objects checkpointed every 3, when reading the 8th fails, then the sweep is recorded failed at its
    last checkpoint (6 read) and audited; when resumed, then the same sweep reads only the last 6 and finishes
    with a report."""
    for n in range(1, 5):
        add_item(ctx, n, originals=2)
    keys = sorted([*ctx.store.list_keys("originals/"), *ctx.store.list_keys("renditions/")])
    assert len(keys) == 12
    first = probing(monkeypatch, crash_on=keys[7])
    with pytest.raises(Crash):
        run_sweep(ctx, ACTOR, SweepOptions(checkpoint_every=3))
    with ctx.catalogue.sessions() as s:
        broken = s.scalar(select(StorageSweep))
        assert broken is not None
    assert broken.status == "failed" and "disk went away" in (broken.error or "")
    assert broken.object_count == 6 and broken.cursor == keys[5]  # two batches of three made it
    assert set(keys[:6]) <= set(first) and events(ctx, "check.sweep.fail")

    second = probing(monkeypatch)
    done = run_sweep(ctx, ACTOR, SweepOptions(checkpoint_every=3), resume=True)
    assert done.id == broken.id and done.status == "done" and done.object_count == 12
    assert sorted(second) == keys[6:]  # nothing before the checkpoint is read again
    assert done.report_id is not None and len(events(ctx, "check.sweep.resume")) == 1


def test_resume_starts_a_sweep_when_none_of_its_scope_is_unfinished(ctx: Context) -> None:
    """Given a paused sweep of the originals only, when a resume of every tier is asked, then a new sweep runs (the
    paused one covers another tier); a resume of the originals goes on with the paused one, and resuming a
    finished sweep by id is NotFound."""
    add_item(ctx, 1)
    add_item(ctx, 2)
    other = run_sweep(ctx, ACTOR, SweepOptions(tier="originals", limit=1))
    assert other.status == "paused"
    done = run_sweep(ctx, ACTOR, SweepOptions(tier="all"), resume=True)  # the paused one has another tier
    assert done.id != other.id and done.status == "done" and done.object_count == 4
    resumed = run_sweep(ctx, ACTOR, SweepOptions(tier="originals"), resume=True)
    assert resumed.id == other.id and resumed.status == "done"
    with pytest.raises(NotFound):
        run_sweep(ctx, ACTOR, resume=other.id)  # finished: nothing to go on with


def test_a_limited_sweep_pauses_and_the_next_run_goes_on(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given six objects and a limit of four, when a sweep runs, then it pauses after four with no report; when
    resumed, then it finishes at six having read each object exactly once."""
    for n in range(1, 4):
        add_item(ctx, n, originals=1)
    seen = probing(monkeypatch)
    paused = run_sweep(ctx, ACTOR, SweepOptions(limit=4, checkpoint_every=3))
    assert paused.status == "paused" and paused.object_count == 4 and paused.report_id is None
    done = run_sweep(ctx, ACTOR, SweepOptions(checkpoint_every=3), resume=True)
    assert done.status == "done" and done.object_count == 6 and len(seen) == 6 == len(set(seen))


def test_a_finding_seen_by_a_resumed_run_is_still_in_the_report(ctx: Context) -> None:
    """Given a damaged original read before a sweep paused, when the sweep is resumed and finishes, then the report
    still fails on that original alone and the inventory counts items across both runs."""
    bad = add_item(ctx, 1)
    add_item(ctx, 2)
    flip_byte(fs_path(ctx.store, bad.original_keys[0]))
    run_sweep(ctx, ACTOR, SweepOptions(limit=2, checkpoint_every=1))
    done = run_sweep(ctx, ACTOR, SweepOptions(checkpoint_every=1), resume=True)
    with ctx.catalogue.sessions() as s:
        report = s.get(CheckReport, done.report_id)
        assert report is not None and not report.passed
        assert [r.target for r in report.results if r.outcome == "failed"] == [bad.original_keys[0]]
        inventory = next(r for r in report.results if r.code == "BC-2-1")
    assert inventory.outcome == "passed" and "2 件" in inventory.detail  # counted across both runs


def test_items_filed_while_a_sweep_is_paused_do_not_break_its_inventory(ctx: Context) -> None:
    """Given a sweep paused after five objects, when six more items are filed (some behind its cursor) and it is
    resumed, then it finishes with no finding: the batch counts miss the late objects but the recount at the end
    finds all nine items and originals."""
    for n in range(1, 4):
        add_item(ctx, n)
    paused = run_sweep(ctx, ACTOR, SweepOptions(limit=5, checkpoint_every=5))
    late = [add_item(ctx, n) for n in range(4, 10)]
    assert any(k <= (paused.cursor or "") for s in late for k in [s.rendition_key, *s.original_keys])
    done = run_sweep(ctx, ACTOR, resume=True)
    assert done.status == "done" and done.findings == 0
    counts = done.tally["BC-2-1"]["counts"]["store"]
    assert counts["items"] + counts["originals"] < 18  # the batches missed some of the late objects …
    assert "件 9 件，原件 9 个" in done.tally["BC-2-1"]["note"]["detail"]  # … the recount did not


def test_a_sweep_still_running_elsewhere_is_not_resumed_twice(ctx: Context) -> None:
    """Given a running sweep recorded by a live process on this host, when a resume is asked, then Conflict
    sweep_running; when that process has gone, then the resume picks the sweep up and finishes it."""
    add_item(ctx, 1)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with ctx.catalogue.session() as s:
            s.add(StorageSweep(scope="all", tier="all", status="running", options={
                "host": socket.gethostname(), "pid": other.pid}, tally={}, started_by="cron"))
        with pytest.raises(Conflict) as exc:
            run_sweep(ctx, ACTOR, resume=True)
        assert exc.value.code == "sweep_running"
    finally:
        other.kill()
        other.wait()
    done = run_sweep(ctx, ACTOR, resume=True)  # its process is gone: the sweep is picked up
    assert done.status == "done" and done.started_by == "cron"


def test_a_sweep_of_another_host_is_resumed_once_its_lease_has_lapsed(ctx: Context) -> None:
    """Given a running sweep recorded by another host (a killed container) that checkpointed a minute ago, when a
    resume is asked, then Conflict sweep_running; when its last checkpoint is older than LEASE, then the resume
    picks it up and finishes it."""
    add_item(ctx, 1)
    with ctx.catalogue.session() as s:
        row = StorageSweep(scope="all", tier="all", status="running", options={"host": "gone-container", "pid": 7},
                           tally={}, started_by="cron", checkpoint_at=utcnow() - timedelta(minutes=1))
        s.add(row)
        s.flush()
        sweep_id = row.id
    with pytest.raises(Conflict) as exc:
        run_sweep(ctx, ACTOR, resume=True)
    assert exc.value.code == "sweep_running"
    with ctx.catalogue.session() as s:
        stale = s.get(StorageSweep, sweep_id)
        assert stale is not None
        stale.checkpoint_at = utcnow() - sweep_module.LEASE - timedelta(seconds=1)
    done = run_sweep(ctx, ACTOR, resume=True)
    assert done.id == sweep_id and done.status == "done" and done.started_by == "cron"


def test_bad_options_are_refused_before_anything_is_written(ctx: Context) -> None:
    """Given an unknown sweep to resume, a secondary with no replica, an unknown scope or tier, a zero limit or a
    negative rate, when a sweep is asked, then each is refused with its own code and status and no sweep row is
    written."""
    with pytest.raises(NotFound) as nothing:
        run_sweep(ctx, ACTOR, resume=99)
    assert nothing.value.code == "sweep_not_resumable" and nothing.value.kind == "not_found"
    for options, code in [(SweepOptions(scope="secondary"), "no_replica"),
                          (SweepOptions(scope="tape"), "invalid_sweep_scope"),  # type: ignore[arg-type]
                          (SweepOptions(tier="thumbnails"), "invalid_sweep_tier"),  # type: ignore[arg-type]
                          (SweepOptions(limit=0), "invalid_sweep_limit"),
                          (SweepOptions(rate_mb=-1), "invalid_sweep_rate")]:
        with pytest.raises(InvalidInput) as exc:
            run_sweep(ctx, ACTOR, options)
        assert exc.value.code == code and exc.value.kind == "invalid"
    with ctx.catalogue.sessions() as s:
        assert s.scalar(select(StorageSweep)) is None


def test_the_rate_limiter_spaces_reads_to_the_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a limiter of 1 MB/s on a fake clock, when four 0.5 MB chunks are taken, then the first goes at once and
    each next waits 0.5 s; an unlimited limiter never waits."""
    clock = {"now": 100.0}
    slept: list[float] = []
    monkeypatch.setattr(sweep_module.time, "monotonic", lambda: clock["now"])

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock["now"] += seconds

    monkeypatch.setattr(sweep_module.time, "sleep", sleep)
    limiter = RateLimiter(1_000_000)  # 1 MB/s
    for _ in range(4):
        limiter.take(500_000)
    assert slept == pytest.approx([0.5, 0.5, 0.5])  # 2 MB in 2 s: the first chunk goes at once
    unlimited = RateLimiter(None)
    unlimited.take(10**9)
    assert len(slept) == 3


def test_the_sweep_reads_through_the_rate_limiter(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a sweep with rate_mb=5, when it runs, then every byte it reads goes through the limiter set to 5 MB/s."""
    add_item(ctx, 1, originals=2)
    taken: list[int] = []
    monkeypatch.setattr(RateLimiter, "take", lambda self, n: taken.append(n) if self.rate == 5e6 else None)
    done = run_sweep(ctx, ACTOR, SweepOptions(rate_mb=5))
    assert sum(taken) == done.byte_count > 0


def test_signature_cadence_covers_every_rendition_once_in_n_sweeps() -> None:
    """Given 50 renditions and a cadence of 5, when five consecutive sweeps pick which to validate, then each
    rendition is picked exactly once; with a cadence of 1 every rendition is picked every time."""
    keys = [f"renditions/aa/bb/{i:064x}" for i in range(50)]
    per_sweep = [{k for k in keys if signature_due(sweep_id, 5)(k)} for sweep_id in range(10, 15)]
    assert set().union(*per_sweep) == set(keys) and sum(len(p) for p in per_sweep) == len(keys)
    assert all(signature_due(7, 1)(k) for k in keys)


def test_hashing_runs_on_several_threads(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given nine objects and two workers, when a sweep runs, then two sweep threads read at the same time."""
    for n in range(1, 4):
        add_item(ctx, n, originals=3)
    names: set[str] = set()
    lock = threading.Lock()
    barrier = threading.Barrier(2, timeout=10)  # passes only when two threads read at the same time
    real = REAL_PROBE

    def spy(store: ObjectStore, key: str, limiter: RateLimiter) -> Probe:
        name = threading.current_thread().name
        with lock:
            new = name not in names
            names.add(name)
        if new:
            barrier.wait()
        return real(store, key, limiter)

    monkeypatch.setattr(sweep_module, "probe", spy)
    run_sweep(ctx, ACTOR, SweepOptions(workers=2))
    assert len(names) == 2 and all(n.startswith("sweep") for n in names)


@pytest.fixture
def cli_env(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> Context:
    monkeypatch.setenv("ARCHIVE_DATA_DIR", str(ctx.settings.data_dir))
    monkeypatch.setenv("ARCHIVE_DATABASE_URL", ctx.settings.catalogue_url)
    return ctx


def test_cli_sweep_exits_1_on_findings_and_lists_and_acknowledges_alerts(cli_env: Context) -> None:
    """Given a clean store, when `archive check sweep` runs, then it exits 0 with 发现问题 0 项; with a stray object
    it exits 1 with 发现问题 1 项, `check alerts list` shows BC-2-3, `check alerts ack` confirms it (已确认), a
    second ack exits 2 with alert_already_acknowledged, and the list no longer shows it."""
    ctx = cli_env
    add_item(ctx, 1)
    clean = runner.invoke(app, ["check", "sweep", "--rate", "0"])
    assert clean.exit_code == 0, clean.output
    assert "完成" in clean.output and "发现问题 0 项" in clean.output
    stray, _ = put(ctx.store, "originals", b"no row for me")
    found = runner.invoke(app, ["check", "sweep", "--tier", "originals"])
    assert found.exit_code == 1 and "发现问题 1 项" in found.output
    listed = runner.invoke(app, ["check", "alerts", "list"])
    assert listed.exit_code == 0 and "BC-2-3" in listed.output
    with ctx.catalogue.sessions() as s:
        alert = s.scalar(select(StorageAlert))
        assert alert is not None and alert.target == stray
    ack = runner.invoke(app, ["check", "alerts", "ack", str(alert.id), "--note", "已核实为上传中断"])
    assert ack.exit_code == 0 and "已确认" in ack.output
    again = runner.invoke(app, ["check", "alerts", "ack", str(alert.id)])
    assert again.exit_code == 2 and "alert_already_acknowledged" in again.output
    assert "BC-2-3" not in runner.invoke(app, ["check", "alerts", "list"]).output


def test_cli_refuses_bad_options_with_a_message(cli_env: Context) -> None:
    """Given no replica and no paused sweep, when `archive check sweep` is asked for the secondary, to resume sweep
    7, or for a sweep id without --resume, then each exits 2, naming the code and saying 备副本 where relevant."""
    r = runner.invoke(app, ["check", "sweep", "--store", "secondary"])
    assert r.exit_code == 2 and "no_replica" in r.output and "备副本" in r.output
    r = runner.invoke(app, ["check", "sweep", "--resume", "--sweep", "7"])
    assert r.exit_code == 2 and "sweep_not_resumable" in r.output
    r = runner.invoke(app, ["check", "sweep", "--sweep", "3"])
    assert r.exit_code == 2


def test_cli_resume_of_a_paused_sweep(cli_env: Context) -> None:
    """Given two items, when `archive check sweep --limit 1` runs, then it says 已暂停; when `--resume` follows, then
    it finishes (完成) having read all four objects."""
    for n in range(1, 3):
        add_item(cli_env, n)
    paused = runner.invoke(app, ["check", "sweep", "--limit", "1"])
    assert paused.exit_code == 0 and "已暂停" in paused.output
    resumed = runner.invoke(app, ["check", "sweep", "--resume"])
    assert resumed.exit_code == 0 and "完成" in resumed.output and "共 4 个对象" in resumed.output
