"""Trigger events and schedule re-application at catalogue scale.

Builds a catalogue of N filed items (default 200,000: 70 % 业务办结, 20 % loan files waiting for 贷款结清 in
pairs, 10 % unit files waiting for 单位注销, 1,000 of them one unit), then measures:

- the pending list (counts by trigger + first page of 50), p50/p95;
- 贷款结清 events, each starting the two items of one loan (events/s, catalogue cost: synthetic items
  carry no stored objects, so no lock extension is timed);
- one 单位注销 starting 1,000 items;
- the re-apply dry run over every item after a schedule change (items/s).

    .venv/bin/python bench/bench_triggers.py [--items 200000] [--events 500] [--db URL]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import insert, select

from archive.audit import Actor
from archive.catalogue.models import ArchiveItem, Case, Fonds
from archive.classification import load_schedule
from archive.context import Context
from archive.retention import schedules, triggers
from archive.settings import load_settings

USCC = "91350100M000100Y43"
BATCH = 5000


def build(ctx: Context, n: int) -> None:
    with ctx.catalogue.session() as s:
        s.add(Fonds(code=ctx.settings.fonds_code, name="bench"))
    fonds_id = 1
    now = datetime(2024, 1, 5, 8, tzinfo=UTC)
    version = schedules.record_current(ctx).ref
    with ctx.catalogue.engine.begin() as conn:
        for start in range(0, n, BATCH):
            cases, items = [], []
            for i in range(start, min(n, start + BATCH)):
                kind = i % 10
                if kind < 7:
                    bt, cat, trig, td, exp = "TQ01", "TQ", "BUSINESS_CLOSED", date(2024, 1, 5), date(2055, 1, 1)
                    loan, uscc = None, None
                elif kind < 9:
                    bt, cat, trig, td, exp = "DK03", "DK", "LOAN_SETTLED", None, None
                    loan, uscc = f"DK{i // 10:09d}", None
                else:
                    bt, cat, trig, td, exp = "GJ02", "GJ", "ACCOUNT_CLOSED", None, None
                    loan, uscc = None, USCC if i < 10_000 else f"UNIT{i:014d}"
                cases.append({"id": i + 1, "serial": f"BENCH{i:010d}", "fonds_id": fonds_id, "category": cat,
                              "business_type": bt, "status": "filed", "branch": "BR01", "clerk": "bench",
                              "accepted_at": now, "closed_at": now, "loan_contract_no": loan, "unit_uscc": uscc})
                items.append({"case_id": i + 1, "archival_code": f"J001-YW·2024-D30-{cat}-{i:07d}",
                              "fonds_code": "J001", "year": 2024, "retention_code": "D30", "category": cat,
                              "number": i, "trigger": trig, "trigger_date": td, "expiry_date": exp,
                              "schedule_version": version, "status": "filed", "filed_at": now})
            conn.execute(insert(Case), cases)
            conn.execute(insert(ArchiveItem), items)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--items", type=int, default=200_000)
    p.add_argument("--events", type=int, default=500)
    p.add_argument("--db", default=None)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'catalogue.db'}"
        ctx = Context.build(load_settings(data_dir=Path(tmp) / "data", database_url=url))
        ctx.catalogue.upgrade()
        t0 = time.perf_counter()
        build(ctx, args.items)
        if ctx.catalogue.engine.dialect.name == "postgresql":  # as autovacuum would after a load
            with ctx.catalogue.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        print(f"catalogue: {args.items:,} items built in {time.perf_counter() - t0:.1f} s ({url.split(':')[0]})")

        runs = []
        for _ in range(20):
            t = time.perf_counter()
            with ctx.catalogue.sessions() as s:
                page = triggers.pending(ctx, s)
            runs.append((time.perf_counter() - t) * 1000)
        runs.sort()
        print(f"pending list ({page['total']:,} pending): p50 {statistics.median(runs):.1f} ms, "
              f"p95 {runs[int(len(runs) * 0.95) - 1]:.1f} ms")

        actor = Actor("client", "bench")
        loans = [f"DK{i // 10:09d}" for i in range(args.items) if i % 10 == 7][: args.events]
        t = time.perf_counter()
        started = 0
        for n, loan in enumerate(loans):
            with ctx.catalogue.session() as s:
                _, body = triggers.report(ctx, s, actor, triggers.EventIn(
                    event_id=f"B-{n}", event_type="loan_settled", event_date=date(2026, 3, 1), loan_contract_no=loan))
                started += len(body["started"])
        dt = time.perf_counter() - t
        print(f"贷款结清: {len(loans)} events, {started} items started, {len(loans) / dt:.0f} events/s "
              f"({dt / len(loans) * 1000:.1f} ms each)")

        t = time.perf_counter()
        with ctx.catalogue.session() as s:
            _, body = triggers.report(ctx, s, actor, triggers.EventIn(
                event_id="U-1", event_type="unit_deregistered", event_date=date(2026, 3, 1), uscc=USCC))
        print(f"单位注销: {len(body['started'])} items started in {(time.perf_counter() - t) * 1000:.0f} ms")

        text = ctx.schedule.source_text.replace('version = "2026.1-default"', 'version = "bench-2"')
        text = text.replace('[types.TQ01]\ncategory = "TQ"\nname = "购买自住住房提取"\nretention = "D30"',
                            '[types.TQ01]\ncategory = "TQ"\nname = "购买自住住房提取"\nretention = "Y"')
        path = Path(tmp) / "bench-2.toml"
        path.write_text(text, encoding="utf-8")
        ctx.schedule = load_schedule(path)
        t = time.perf_counter()
        with ctx.catalogue.session() as s:
            plan = schedules.plan(ctx, s)
        dt = time.perf_counter() - t
        print(f"re-apply dry run: {plan.counts['items']:,} items in {dt:.1f} s ({plan.counts['items'] / dt:,.0f} "
              f"items/s), {plan.counts.get('lengthen', 0):,} to lengthen")
        with ctx.catalogue.sessions() as s:
            assert s.scalar(select(ArchiveItem.id).limit(1)) is not None
        ctx.close()


if __name__ == "__main__":
    main()
