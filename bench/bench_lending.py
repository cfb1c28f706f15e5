"""Lending checks at scale, on SQLite and PostgreSQL.

- ``items_with_open_lending`` over the 10,000 items of a destruction list, with 2,000 grants (half expired)
  and 1,000 paper loans (half returned) in the catalogue — destruction asks it once per list.
- the grant check of one read (``active_grant``), which a person's every page view pays.

    .venv/bin/python bench/bench_lending.py [--items 10000] [--pg URL]
"""

from __future__ import annotations

import argparse
import time
from datetime import date, timedelta

from _common import PG_ADMIN_URL, databases
from sqlalchemy import insert

from archive.catalogue.db import Catalogue
from archive.catalogue.models import (
    ArchiveItem,
    Case,
    Fonds,
    LendingItem,
    LendingRequest,
    PaperLoan,
    PaperLoanItem,
)
from archive.catalogue.types import utcnow
from archive.permissions import Principal, permissions_of_roles
from archive.retention.lending import active_grant, items_with_open_lending


def fill(cat: Catalogue, items: int) -> None:
    now = utcnow()
    with cat.session() as s:
        s.execute(insert(Fonds), [{"id": 1, "code": "J001", "name": "bench"}])
        s.execute(insert(Case), [{"id": n, "serial": f"YW{n:013d}", "fonds_id": 1, "category": "TQ",
                                  "business_type": "TQ01", "status": "filed", "branch": "BR01", "clerk": "c",
                                  "accepted_at": now} for n in range(1, items + 1)])
        s.execute(insert(ArchiveItem), [{"id": n, "case_id": n, "archival_code": f"J001-YW·2016-D10-TQ-{n:06d}",
                                         "fonds_code": "J001", "year": 2016, "retention_code": "D10",
                                         "category": "TQ", "number": n, "trigger": "BUSINESS_CLOSED",
                                         "schedule_version": "bench", "status": "filed"}
                                        for n in range(1, items + 1)])
        grants = 2000
        s.execute(insert(LendingRequest), [
            {"id": g, "requester": f"user{g % 50}", "purpose": "review", "mode": "online", "days_requested": 7,
             "status": "approved", "decided_by": "arch", "decided_at": now - timedelta(days=3), "days_granted": 7,
             "expires_at": now + timedelta(days=(4 if g % 2 else -1))} for g in range(1, grants + 1)])
        s.execute(insert(LendingItem), [{"request_id": g, "item_id": (g * 7) % items + 1,
                                         "archival_code": f"J001-YW·2016-D10-TQ-{(g * 7) % items + 1:06d}",
                                         "position": 0} for g in range(1, grants + 1)])
        loans = 1000
        s.execute(insert(PaperLoan), [{"id": n, "borrower": "b", "lent_by": "arch", "lent_at": now,
                                       "due_date": date.today(), "status": "out" if n % 2 else "returned",
                                       "reminders": []} for n in range(1, loans + 1)])
        s.execute(insert(PaperLoanItem), [{"loan_id": n, "item_id": (n * 13) % items + 1,
                                           "archival_code": "x", "position": 0} for n in range(1, loans + 1)])


def measure(cat: Catalogue, items: int) -> tuple[float, int, float]:
    ids = range(1, items + 1)
    with cat.sessions() as s:
        items_with_open_lending(s, ids)  # warm
        t0 = time.perf_counter()
        blocked = items_with_open_lending(s, ids)
        scan = time.perf_counter() - t0
        who = Principal("user", 1, "user7", permissions_of_roles(["clerk"]), roles=("clerk",))
        t0 = time.perf_counter()
        for n in range(1, 1001):
            active_grant(s, who, n, "page")
        per_view = (time.perf_counter() - t0) / 1000
    return scan, len(blocked), per_view


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--items", type=int, default=10_000)
    p.add_argument("--pg", default=PG_ADMIN_URL, help="a PostgreSQL server to create a scratch database on")
    args = p.parse_args(argv)
    print(f"{'database':<12}{'items':>8}{'open-lending scan (ms)':>24}{'blocked':>9}{'grant check/view (ms)':>23}")
    with databases(args.pg, "lending") as targets:
        for name, url in targets:
            cat = Catalogue(url)
            cat.upgrade()
            fill(cat, args.items)
            scan, blocked, per_view = measure(cat, args.items)
            print(f"{name:<12}{args.items:>8}{scan * 1000:>24.1f}{blocked:>9}{per_view * 1000:>23.3f}", flush=True)
            cat.dispose()


if __name__ == "__main__":
    main()
