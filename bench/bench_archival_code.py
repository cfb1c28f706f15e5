"""档号 allocations per second on SQLite and PostgreSQL with 1 and 8 writers.

Each allocation is its own committed transaction, as in filing. Target: ≥ 500/s with one writer on
PostgreSQL.    .venv/bin/python bench/bench_archival_code.py [--seconds 3] [--pg URL]
"""

from __future__ import annotations

import argparse
import threading
import time

from _common import PG_ADMIN_URL, databases
from sqlalchemy import text

from archive.archival_code import CodeRule, allocate
from archive.catalogue.db import Catalogue
from archive.settings import DEFAULT_CODE_TEMPLATE

RULE = CodeRule(DEFAULT_CODE_TEMPLATE)


def run(cat: Catalogue, writers: int, seconds: float) -> tuple[float, int]:
    counts = [0] * writers
    stop = time.perf_counter() + seconds
    start_line = threading.Barrier(writers)

    def worker(i: int) -> None:
        start_line.wait()
        while time.perf_counter() < stop:
            with cat.session() as s:
                allocate(s, RULE, "J001", 2026, "D30", "TQ")
            counts[i] += 1

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - t0), sum(counts)


def check_no_gap(cat: Catalogue, total: int) -> None:
    with cat.session() as s:
        last = s.execute(text("SELECT last_number FROM archival_code_sequence")).scalar_one()
    assert last == total, (last, total)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--pg", default=PG_ADMIN_URL, help="a PostgreSQL server to create a scratch database on")
    args = p.parse_args(argv)
    print(f"{'database':<12}{'writers':>8}{'allocations/s':>16}{'total':>8}")
    with databases(args.pg, "code") as targets:
        for name, url in targets:
            cat = Catalogue(url, pool_size=10) if name == "postgresql" else Catalogue(url)
            cat.upgrade()
            done = 0
            for writers in (1, 8):
                rate, n = run(cat, writers, args.seconds)
                done += n
                print(f"{name:<12}{writers:>8}{rate:>16.0f}{n:>8}", flush=True)
            check_no_gap(cat, done)
            cat.dispose()


if __name__ == "__main__":
    main()
