"""Bulk indexing from the catalogue: ``archive index rebuild`` at 100 k and 1 M items, against a floor.

Fills a SQLite catalogue with N cases (default 100,000; ``--items 1000000`` for the issue's second figure) by bulk
inserts, not through the pipeline: the generator of bench_search.py (realistic names, ID numbers, the schedule's
business types, ten years of dates), two or three documents a case and an archive item for 80 % of them. Then:

- project: ``archive.indexing.rebuild`` (catalogue reads, projection, analysis, tantivy), end to end;
- floor: a raw tantivy writer (same schema, heap and threads) adding the same documents prepared beforehand as
  field dicts, with nothing else in the timed loop: what tantivy alone needs.

Prints both rates, the ratio project/floor, the target (≥ 2,000 items/s) and the load average at the start.

    .venv/bin/python bench/bench_indexing.py [--items 100000] [--dir /tmp/keep-me]

The catalogue load (bulk inserts with the secondary indexes built once at the end) is timed and printed on its
own and is not part of any rate; with --dir a second run reuses it.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

from bench_search import generate

from search.base import SearchDocument

TARGET = 2000.0
FLOOR_SAMPLE = 100_000  # the floor indexes at most this many documents (held in memory)
CHUNK = 10_000  # cases inserted at a time
TEMPLATES = 50_000  # distinct generated businesses, cycled


def _ts(value: datetime | None) -> str | None:
    """A UTC datetime as SQLAlchemy stores it in SQLite (naive UTC text)."""
    return None if value is None else f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S.%f}"


CASE_SQL = ('INSERT INTO "case" (id, serial, fonds_id, category, business_type, status, applicant_name, '
            "applicant_id_number, unit_name, unit_uscc, loan_contract_no, branch, clerk, accepted_at, closed_at, "
            "created_at, updated_at) VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'bench', ?, ?, ?, ?)")
DOC_SQL = ("INSERT INTO document (id, case_id, sequence, material_type, filename, original_key, sha256, sm3, size, "
           "media_type, page_count, status, created_by, created_at) "
           "VALUES (?, ?, ?, ?, 'scan.jpg', ?, ?, ?, 300000, 'image/jpeg', 1, ?, 'bench', ?)")
ITEM_SQL = ("INSERT INTO archive_item (id, case_id, archival_code, fonds_code, year, retention_code, category, "
            "number, trigger, expiry_date, schedule_version, status, filed_at) "
            "VALUES (?, ?, ?, 'J001', ?, ?, ?, ?, 'case_closed', ?, 'bench', 'filed', ?)")


_templates: list[SearchDocument] = []


def catalogue_documents(n: int) -> Iterator[SearchDocument]:
    """N cases: bench_search's generator makes TEMPLATES people and businesses (realistic but slow, ~0.3 ms each),
    which are then cycled with unique ids, 业务流水号, 档号 and contract numbers (a person comes back for several
    businesses over the years), so 1 M rows load in minutes."""
    if not _templates:
        _templates.extend(generate(min(n, TEMPLATES)))
    for i in range(1, n + 1):
        t = _templates[(i - 1) % len(_templates)]
        yield replace(t, id=i, serial=f"YW{t.accepted_at:%Y%m%d}{i:08d}",
                      archival_code=t.archival_code and f"J001-YW·{t.year}-{t.retention_code}-{t.category}-{i:07d}",
                      loan_contract_no=t.loan_contract_no and f"DK{t.accepted_at:%Y}{i:08d}")


def _rows(first: int, docs_of: Iterator[SearchDocument], now: str) -> tuple[list[tuple[Any, ...]], ...]:
    """Rows of the next CHUNK cases: cases, their documents and archive items."""
    rng = random.Random(first)
    materials = ("ID_CARD", "APPLICATION", "BANK_CARD", "CONTRACT")
    cases: list[tuple[Any, ...]] = []
    docs: list[tuple[Any, ...]] = []
    items: list[tuple[Any, ...]] = []
    for d in islice(docs_of, CHUNK):
        filed = d.kind == "item"
        cases.append((d.id, d.serial, d.category, d.business_type, "filed" if filed else "open", d.applicant_name,
                      d.applicant_id_number, d.unit_name, d.unit_uscc, d.loan_contract_no, d.branch,
                      _ts(d.accepted_at), _ts(d.closed_at), now, now))
        for seq in range(1, rng.choice((3, 3, 4))):
            doc_id = d.id * 4 + seq
            digest = f"{doc_id:064x}"
            docs.append((doc_id, d.id, seq, rng.choice(materials), f"k/{doc_id}", digest, digest,
                         "active" if seq < 3 else "replaced", now))
        if filed:
            items.append((d.id, d.id, d.archival_code, d.year, d.retention_code, d.category, d.id,
                          d.expiry_date.isoformat() if d.expiry_date else None, _ts(d.closed_at)))
    return cases, docs, items


def load_catalogue(path: Path, n: int) -> float:
    """N cases with two or three documents (one replaced in a third of them) and, for 80 %, an archive item:
    migrated by Alembic, then filled by sqlite3 executemany (the pipeline would take days at 1 M)."""
    from archive.catalogue.db import Catalogue

    cat = Catalogue(f"sqlite:///{path}")
    cat.upgrade()
    cat.dispose()
    now = f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S.%f}"
    t0 = time.perf_counter()
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")
    # the indexes on serial, 证件号码, dates… take random keys: with SQLite's default 2 MB page cache each insert
    # read and wrote index pages from the disk (1 M cases took ~8 minutes); a bench file needs no journal either
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA cache_size=-1000000")
    db.execute("INSERT INTO fonds (id, code, name, created_at) VALUES (1, 'J001', 'bench', ?)", (now,))
    # secondary indexes are built once at the end (sorted) rather than row by row; UNIQUE constraints stay
    indexes = db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                         "AND tbl_name IN ('case', 'document', 'archive_item')").fetchall()
    for name, _ in indexes:
        db.execute(f'DROP INDEX "{name}"')
    documents = catalogue_documents(n)
    for first in range(1, n + 1, CHUNK):
        for sql, rows in zip((CASE_SQL, DOC_SQL, ITEM_SQL), _rows(first, documents, now), strict=True):
            db.executemany(sql, rows)
    for _, sql in indexes:
        db.execute(sql)
    db.commit()
    db.close()
    return time.perf_counter() - t0


def floor_rate(workdir: Path, url: str, n: int, heap_bytes: int, threads: int) -> float:
    """Raw tantivy: the first ``n`` documents of the same catalogue, projected and turned into field dicts
    beforehand; only from_dict + add_document + commit + merge are timed (the rebuild's writer settings)."""
    import tantivy

    from archive.catalogue.db import Catalogue
    from archive.classification import load_schedule
    from archive.indexing.documents import iter_documents
    from search.embedded import SCHEMA, TOKENIZER, _analyzer, to_fields

    cat = Catalogue(url)
    fields = [to_fields(d) for d in islice(iter_documents(cat, load_schedule()), n)]
    cat.dispose()
    path = workdir / "floor"
    shutil.rmtree(path, ignore_errors=True)  # left by an interrupted run in a kept --dir
    path.mkdir()
    index = tantivy.Index(SCHEMA, path=str(path))
    index.register_tokenizer(TOKENIZER, _analyzer())
    writer = index.writer(heap_size=heap_bytes, num_threads=threads)
    t0 = time.perf_counter()
    for f in fields:
        writer.add_document(tantivy.Document.from_dict(f, SCHEMA))
    writer.commit()
    writer.wait_merging_threads()
    seconds = time.perf_counter() - t0
    del writer, index
    shutil.rmtree(path, ignore_errors=True)
    return len(fields) / seconds


def project_rate(workdir: Path, url: str, n: int) -> tuple[float, int]:
    from archive import indexing
    from archive.context import Context
    from archive.settings import Settings

    settings = Settings(data_dir=workdir / "data", database_url=url)
    ctx = Context.build(settings)
    t0 = time.perf_counter()
    indexed = indexing.rebuild(ctx)
    seconds = time.perf_counter() - t0
    counted = ctx.index.count()
    ctx.close()
    if indexed != n or counted != n:
        raise SystemExit(f"rebuild indexed {indexed}, the index counts {counted}, expected {n}")
    return n / seconds, counted


def _cases(path: Path) -> int | None:
    """Cases in a catalogue kept by an earlier run with --dir (None when there is none)."""
    if not path.exists():
        return None
    with sqlite3.connect(path) as db:
        try:
            return int(db.execute('SELECT count(*) FROM "case"').fetchone()[0])
        except sqlite3.Error:
            return None


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--dir", type=Path, default=None,
                   help="work directory, kept (default: a temporary one, removed); a catalogue of --items cases "
                        "left there by an earlier run is reused")
    args = p.parse_args(argv)
    load = os.getloadavg()
    print(f"items: {args.items:,}; cores: {os.cpu_count()}; load average at start: "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="bench-indexing-"))
    workdir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{workdir / 'catalogue.db'}"
    try:
        if _cases(workdir / "catalogue.db") == args.items:
            print(f"catalogue of {args.items:,} cases reused from {workdir} (not part of any rate)")
        else:
            seconds = load_catalogue(workdir / "catalogue.db", args.items)
            print(f"catalogue loaded by bulk inserts in {seconds:.1f} s ({args.items / seconds:,.0f} cases/s; "
                  "not part of any rate)")
        t0 = time.perf_counter()
        rate, _ = project_rate(workdir, url, args.items)
        print(f"project (archive index rebuild): {rate:,.0f} items/s ({time.perf_counter() - t0:.1f} s)")
        from search.embedded import REBUILD_HEAP_BYTES, REBUILD_THREADS

        sample = min(args.items, FLOOR_SAMPLE)
        floor = floor_rate(workdir, url, sample, REBUILD_HEAP_BYTES, REBUILD_THREADS)
        print(f"floor (raw tantivy writer, the catalogue's first {sample:,} documents prepared): {floor:,.0f} items/s")
        print(f"ratio project/floor: {rate / floor:.2f}")
        print(f"target ≥ {TARGET:,.0f} items/s: {'PASS' if rate >= TARGET else 'MISS'} ({rate / TARGET:.2f}× target)")
        print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    finally:
        if args.dir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
