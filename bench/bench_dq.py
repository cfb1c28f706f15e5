"""Data quality at scale (issue 19): a batch run of every batch rule, source checks at intake, the findings list.

Inserts N filed cases with their items and one document each straight into a fresh PostgreSQL catalogue (default
1,000,000; in bulk), about 0.5 % of them with a problem some rule finds, then measures:

- a batch run of every SQL rule over the whole catalogue (target ≤ 60 s at 1,000,000 items on PostgreSQL), and
  apart the rules that read and check rows one by one (check digits, 档号 parsing, per-page dpi);
- the source rules of one case intake (the checks ``open_case`` runs), p95 over 2,000 cases (target ≤ 5 ms);
- the findings list as the API asks for it (a filter, a page of 100, keyset paging) at 100,000 findings, p95 over
  200 requests (target ≤ 100 ms).

    .venv/bin/python bench/bench_dq.py [--items 1000000] [--findings 100000] [--sqlite]
                                       [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

With fewer items the run time is also extrapolated linearly to 1,000,000 (the rules are scans and hash joins).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

from _common import PG_ADMIN_URL, databases, pct
from sqlalchemy import insert

from archive.audit import Actor
from archive.catalogue.db import Catalogue
from archive.catalogue.models import ArchiveItem, Case, Document, DqFinding, Fonds
from archive.context import Context
from archive.dq import findings, runs, source
from archive.identifiers import id_number_check_char
from archive.retention.schedules import ensure_version
from archive.settings import load_settings

BATCH = 20_000
TYPES = ["GJ11", "DK04", "ZJ03", "GJ12"]  # one required material each: every case is complete but the bad ones
TARGET_RUN_S, TARGET_SOURCE_MS, TARGET_LIST_MS = 60.0, 5.0, 100.0


def person(i: int) -> str:
    first17 = f"110105{1950 + i % 50:04d}{1 + i % 12:02d}{1 + i % 28:02d}{i % 1000:03d}"
    return first17 + id_number_check_char(first17)


def insert_catalogue(ctx: Context, n: int) -> None:
    rnd = random.Random(19)
    at = datetime(2024, 1, 1, tzinfo=UTC)
    with ctx.catalogue.session() as s:
        version = ensure_version(s, ctx.schedule).ref
    types = [(bt, ctx.schedule.business_type(bt)) for bt in TYPES]
    with ctx.catalogue.engine.begin() as c:
        for start in range(0, n, BATCH):
            cases, items, docs = [], [], []
            for i in range(start + 1, min(n, start + BATCH) + 1):
                bt, t = types[i % len(types)]
                cat, ret = t.category, t.retention.value
                bad = rnd.random() < 0.005
                number = person(i)
                cases.append({"id": i, "serial": f"YW{i:012d}", "fonds_id": 1, "category": cat, "business_type": bt,
                              "status": "filed", "applicant_name": "张三", "applicant_id_number":
                              number[:17] + ("0" if number[17] != "0" else "1") if bad else number,
                              "loan_contract_no": f"HT{i}" if cat == "DK" else None, "branch": f"BR{i % 20:02d}",
                              "clerk": "c", "accepted_at": at, "closed_at": at + timedelta(hours=2),
                              "outcome": "approved", "trail": [], "created_at": at, "updated_at": at})
                items.append({"id": i, "case_id": i, "archival_code": f"J001-YW·2024-{ret}-{cat}-{i:06d}",
                              "fonds_code": "J001", "year": 2024, "retention_code": ret, "category": cat,
                              "number": i, "trigger": t.trigger.value, "trigger_date": None, "expiry_date": None,
                              "schedule_version": version, "status": "filed", "rendition_key": f"r/{i}",
                              "rendition_sha256": "0" * 64, "rendition_sm3": "0" * 64, "signature": {"level": "B-T"},
                              "filed_at": at + timedelta(hours=3)})
                docs.append({"case_id": i, "sequence": 1, "material_type": t.required[0], "filename": "1.jpg",
                             "original_key": f"o/{i}", "sha256": f"{i:064d}", "sm3": "0" * 64, "size": 1000,
                             "media_type": "image/jpeg", "page_count": 1, "status": "active",
                             "detail": {"dpi": [200 if rnd.random() > 0.005 else 150]}, "created_by": "c",
                             "created_at": at})
            c.execute(insert(Case), cases)
            c.execute(insert(ArchiveItem), items)
            c.execute(insert(Document), docs)
        if c.dialect.name == "postgresql":
            c.exec_driver_sql(f"SELECT setval('case_id_seq', {n})")
            c.exec_driver_sql("ANALYZE")


def insert_findings(ctx: Context, n: int) -> None:
    now = datetime.now(UTC)
    statuses = ["open", "assigned", "fixing", "submitted", "verified"]
    with ctx.catalogue.engine.begin() as c:
        for start in range(0, n, BATCH):
            c.execute(insert(DqFinding), [
                {"fingerprint": f"bench{i:059d}", "rule_code": f"DQ-CA-{1 + i % 18:03d}", "rule_version": 1,
                 "dimension": "accuracy", "severity": "error", "object_type": "case", "object_key": f"YX{i:012d}",
                 "serial": f"YX{i:012d}", "key_values": {}, "message": "bench", "branch": f"BR{i % 20:02d}",
                 "status": statuses[i % 5], "owner": f"科室{i % 30}", "first_seen": now, "last_seen": now,
                 "seen_count": 1, "history": []} for i in range(start, min(n, start + BATCH))])
        if c.dialect.name == "postgresql":
            c.exec_driver_sql("ANALYZE dq_finding")


def measure(url: str, name: str, n: int, n_findings: int, work: Path) -> None:
    settings = load_settings(data_dir=work, database_url=url)
    Catalogue(url).upgrade()
    ctx = Context.build(settings)
    with ctx.catalogue.session() as s:
        s.add(Fonds(id=1, code=settings.fonds_code, name="bench"))
    t = time.perf_counter()
    insert_catalogue(ctx, n)
    print(f"{name}: inserted {n:,} cases, items and documents in {time.perf_counter() - t:.1f} s")

    for kind in ("sql", "python"):
        marks: list[tuple[float, str]] = []
        t = time.perf_counter()
        run = runs.run(ctx, Actor.system("bench"), kind=kind,
                       progress=lambda d, total, code, marks=marks: marks.append((time.perf_counter(), code)))
        took = time.perf_counter() - t
        failing = sum(c["failing"] for c in run.counts.values())
        per_rule = [(b[0] - a[0], a[1]) for a, b in pairwise(marks) if a[1]]
        slowest = ", ".join(f"{code} {sec:.1f} s" for sec, code in sorted(per_rule, reverse=True)[:4])
        scaled = took * 1_000_000 / n
        target = f" (target ≤ {TARGET_RUN_S:.0f} s, ratio {scaled / TARGET_RUN_S:.2f})" if kind == "sql" else ""
        print(f"{name}: batch run of the {len(run.rules)} {kind} rules over {n:,} items: {took:.1f} s, "
              f"{failing:,} failing, {len(run.rule_errors)} rule errors; at 1,000,000 items ≈ {scaled:.1f} s"
              f"{target}; slowest: {slowest}")

    durations = []
    with ctx.catalogue.session() as s:
        for i in range(2000):
            values = {"serial": f"YWNEW{i:08d}", "business_type": "TQ01", "category": "TQ", "applicant_name": "张三",
                      "applicant_id_number": person(i + 7), "applicant_mobile": "13800138000", "unit_name": None,
                      "unit_uscc": None, "accepted_at": datetime.now(UTC), "branch": "BR01", "clerk": "c"}
            t = time.perf_counter()
            source.check(ctx, s, "case", values)
            durations.append(time.perf_counter() - t)
    p95 = pct(durations, 95)
    print(f"{name}: source rules per case intake: p50 {pct(durations, 50):.2f} ms, p95 {p95:.2f} ms "
          f"(target ≤ {TARGET_SOURCE_MS:.0f} ms, ratio {p95 / TARGET_SOURCE_MS:.2f})")

    insert_findings(ctx, n_findings)
    durations = []
    with ctx.catalogue.session() as s:
        for i in range(200):
            filters = [{}, {"status": "open"}, {"rule": f"DQ-CA-{1 + i % 18:03d}"}, {"owner": f"科室{i % 30}"},
                       {"branch": f"BR{i % 20:02d}", "live": True}][i % 5]
            t = time.perf_counter()
            page = list(s.scalars(findings.query(limit=100, **filters)))  # type: ignore[arg-type]
            if page:
                list(s.scalars(findings.query(limit=100, after_id=page[-1].id, **filters)))  # type: ignore[arg-type]
            durations.append((time.perf_counter() - t) / 2)
            s.expunge_all()
    p95 = pct(durations, 95)
    print(f"{name}: findings list at {n_findings:,} findings: p50 {pct(durations, 50):.1f} ms, p95 {p95:.1f} ms "
          f"(target ≤ {TARGET_LIST_MS:.0f} ms, ratio {p95 / TARGET_LIST_MS:.2f})")
    ctx.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--findings", type=int, default=100_000)
    parser.add_argument("--sqlite", action="store_true", help="also measure on SQLite")
    parser.add_argument("--pg-url", default=PG_ADMIN_URL)
    args = parser.parse_args()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    with databases(args.pg_url, "dq") as targets:
        for name, url in targets:
            if name == "sqlite" and not args.sqlite:
                continue
            work = Path(tempfile.mkdtemp())
            try:
                measure(url, name, args.items, args.findings, work)
            finally:
                shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
