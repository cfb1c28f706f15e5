"""Retention at scale: the appraisal queue's expiry scan and building a 销毁清册.

Inserts N filed items straight into a fresh catalogue (default 1,000,000; cases and items in bulk), of which
about 10 % have expired, 10 % wait for their trigger (expiry NULL), a few thousand are held and a few thousand
already have destroy decisions, then measures on SQLite and PostgreSQL:

- the expiry scan: the appraisal queue's count plus its first page, as the API runs it (target ≤ 10 s);
- ``held_item_ids`` over 10,000 ids;
- building a destruction list of 10,000 items (decisions → entries with 题名/页数, one transaction);
- rendering and signing that list's PDF (what the second approval does).

    .venv/bin/python bench/bench_retention.py [--items 1000000] [--list 10000] [--no-postgres] [--no-sqlite]
                                              [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import io
import random
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, func, insert, select, text, update
from sqlalchemy.engine import make_url

from archive.catalogue.db import Catalogue
from archive.catalogue.models import AppraisalDecision, ArchiveItem, Case, Document, Fonds, Hold, HoldItem
from archive.context import Context
from archive.permissions import Principal, permissions_of_roles
from archive.retention import destruction
from archive.retention.appraisal import queue
from archive.retention.holds import held_item_ids
from archive.settings import load_settings

BATCH = 20_000
TYPES = [("TQ", "TQ01"), ("TQ", "TQ02"), ("GJ", "GJ03"), ("DK", "DK01"), ("ZJ", "ZJ01")]
TARGET_SCAN_S = 10.0


def rows(n: int, today: date) -> Iterator[tuple[list[dict[str, object]], list[dict[str, object]]]]:
    rnd = random.Random(7)
    accepted = datetime(2000, 1, 1, tzinfo=UTC)
    for start in range(0, n, BATCH):
        cases, items = [], []
        for i in range(start + 1, min(n, start + BATCH) + 1):
            cat, bt = TYPES[i % len(TYPES)]
            year = 2000 + i % 26
            roll = rnd.random()
            if roll < 0.10:
                expiry: date | None = today - timedelta(days=rnd.randint(1, 3000))
            elif roll < 0.20:
                expiry = None  # waiting for its trigger
            else:
                expiry = today + timedelta(days=rnd.randint(1, 11000))
            cases.append({"id": i, "serial": f"YW{i:012d}", "fonds_id": 1, "category": cat, "business_type": bt,
                          "status": "filed", "applicant_name": "张三", "branch": f"BR{i % 20:02d}", "clerk": "c",
                          "accepted_at": accepted, "created_at": accepted, "updated_at": accepted})
            items.append({"id": i, "case_id": i, "archival_code": f"J001-YW·{year}-D30-{cat}-{i:07d}",
                          "fonds_code": "J001", "year": year, "retention_code": "D30", "category": cat,
                          "number": i, "trigger": "BUSINESS_CLOSED", "trigger_date": None if expiry is None else
                          date(year, 6, 1), "expiry_date": expiry, "schedule_version": "bench", "status": "filed",
                          "rendition_key": f"renditions/00/00/{i:064d}", "filed_at": accepted})
        yield cases, items


@contextmanager
def timed(label: str, figures: dict[str, float]) -> Iterator[None]:
    t = time.perf_counter()
    yield
    figures[label] = time.perf_counter() - t


def run(url: str, name: str, n: int, list_size: int, work: Path) -> dict[str, float]:
    figures: dict[str, float] = {}
    cat = Catalogue(url)
    cat.upgrade()
    settings = load_settings(data_dir=work / name, database_url=url)
    ctx = Context.build(settings)
    today = datetime.now(UTC).astimezone(ctx.zone).date()
    with cat.session() as s:
        s.add(Fonds(id=1, code="J001", name="bench"))
    with timed("insert", figures):
        for cases, items in rows(n, today):
            with cat.session() as s:
                s.execute(insert(Case), cases)
                s.execute(insert(ArchiveItem), items)
    if cat.engine.dialect.name == "postgresql":
        with cat.engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
    archivist = Principal("user", 1, "bench", permissions_of_roles(["archivist"]), roles=("archivist",))
    with cat.session() as s:
        expired = list(s.scalars(select(ArchiveItem.id).where(ArchiveItem.expiry_date <= today)
                                 .order_by(ArchiveItem.id)))
        hold = Hold(reason="bench", authority="bench", scope="items", criteria={}, status="active", item_count=2000,
                    created_by="bench")
        s.add(hold)
        s.flush()
        s.execute(insert(HoldItem), [{"hold_id": hold.id, "item_id": i} for i in expired[:2000]])
        listed = expired[2000:2000 + list_size]
        s.execute(insert(AppraisalDecision), [
            {"item_id": i, "decision": "destroy", "reason": "保管期满，经鉴定无继续保存价值", "status": "proposed",
             "decided_by": "bench", "decided_at": datetime.now(UTC)} for i in listed])
        s.execute(insert(Document), [
            {"case_id": i, "sequence": k, "material_type": "other", "filename": f"{k}.pdf",
             "original_key": f"originals/00/00/{i:060d}{k:04d}", "sha256": f"{i:060d}{k:04d}", "sm3": "0" * 64,
             "size": 1, "media_type": "application/pdf", "page_count": 3, "status": "active", "created_by": "b",
             "created_at": datetime.now(UTC)} for i in listed for k in (1, 2)])
    expected = len(expired) - 2000 - len(listed)
    with cat.session() as s, timed("expiry_scan", figures):
        total, page = queue(ctx, s, archivist, limit=100)
    assert total == expected and len(page) == 100, (total, expected)
    with cat.session() as s, timed("expiry_scan_again", figures):
        queue(ctx, s, archivist, limit=100)
    with cat.session() as s, timed("held_item_ids_10k", figures):
        assert len(held_item_ids(s, expired[:10_000])) == 2000
    with cat.session() as s, timed("build_list", figures):
        report = destruction.build_list(ctx, s, archivist, destruction.ListIn())
        list_id = report.list.id
    with cat.session() as s:
        assert s.scalar(select(func.count()).select_from(AppraisalDecision)
                        .where(AppraisalDecision.status == "listed")) == len(listed)
        s.execute(update(AppraisalDecision).values(status="listed"))
    from signing.certificates import ensure_dev_pki

    ensure_dev_pki(settings.pki_path)
    with cat.session() as s, timed("list_pdf_render", figures):
        dl = destruction.get_list(s, list_id)
        pdf = destruction.render_pdf(ctx, s, dl)
    with timed("list_pdf_sign", figures):
        signed = destruction.sign_list_pdf(ctx, pdf)
    figures["list_pdf_mb"] = len(signed) / 1e6
    figures["expired"] = float(total)
    io.BytesIO(signed).close()
    ctx.close()
    return figures


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--list", type=int, default=10_000, help="items in the destruction list")
    p.add_argument("--no-sqlite", action="store_true")
    p.add_argument("--no-postgres", action="store_true")
    p.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-retention-"))
    runs: list[tuple[str, str]] = []
    if not args.no_sqlite:
        runs.append(("sqlite", f"sqlite:///{work / 'catalogue.db'}"))
    pg_db = f"bench_retention_{int(time.time())}"
    admin = None
    if not args.no_postgres:
        admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{pg_db}"'))
        runs.append(("postgresql", make_url(args.pg_url).set(database=pg_db).render_as_string(hide_password=False)))
    try:
        for name, url in runs:
            f = run(url, name, args.items, args.list, work)
            verdict = "ok" if f["expiry_scan"] <= TARGET_SCAN_S else "SLOWER THAN TARGET"
            print(f"[{name}] {args.items:,} items inserted in {f['insert']:.1f} s; {int(f['expired']):,} awaiting "
                  "appraisal")
            print(f"[{name}] expiry scan (queue count + first page): {f['expiry_scan']:.2f} s cold, "
                  f"{f['expiry_scan_again']:.2f} s warm (target ≤ {TARGET_SCAN_S:.0f} s: {verdict})")
            print(f"[{name}] held_item_ids over 10,000 ids: {f['held_item_ids_10k'] * 1000:.0f} ms")
            print(f"[{name}] build destruction list of {args.list:,} items: {f['build_list']:.2f} s")
            print(f"[{name}] list PDF: render {f['list_pdf_render']:.1f} s, sign {f['list_pdf_sign']:.2f} s, "
                  f"{f['list_pdf_mb']:.1f} MB")
    finally:
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)'))
            admin.dispose()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
