"""What a multi-process bench spends: CPU seconds of the server's processes, its PostgreSQL backends and the bench
itself, against the whole machine's, over a phase (from /proc); and what PostgreSQL sessions wait on while it runs
(pg_stat_activity and ungranted pg_locks, sampled). Linux only."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import create_engine, text

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(session id, CPU seconds) of a process, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()  # after "pid (comm) "
    return int(fields[3]), (int(fields[11]) + int(fields[12])) / TICK


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def machine_busy() -> tuple[float, float]:
    """(busy CPU seconds of all cores, elapsed CPU seconds of all cores) since boot."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / TICK, sum(values[:8]) / TICK


@dataclass
class CpuSnapshot:
    at: float
    server: dict[int, float]
    database: dict[int, float]
    bench: float
    machine: tuple[float, float]


@dataclass
class CpuUse:
    """CPU seconds over a phase of ``wall`` seconds."""

    wall: float
    server: float
    database: float
    bench: float
    machine: float  # every process on the machine (other work included)
    per_process: list[float] = field(default_factory=list)  # the server's busiest processes, CPU seconds

    def line(self, filings: int) -> str:
        cores = lambda s: s / self.wall  # noqa: E731
        return (f"cores used: server {cores(self.server):.2f}, PostgreSQL {cores(self.database):.2f}, "
                f"bench {cores(self.bench):.2f}, whole machine {cores(self.machine):.2f} of {os.cpu_count()}; "
                f"CPU per filing {1000 * (self.server + self.database) / filings:.0f} ms "
                f"(server + PostgreSQL); server processes {', '.join(f'{v:.1f}' for v in self.per_process)} s")


class CpuMeter:
    """CPU of the processes of the server's session (``serve`` runs in a session of its own), of the PostgreSQL
    backends of ``database`` and of this process and its children."""

    def __init__(self, server_sid: int, db_url: str, database: str) -> None:
        self.sid = server_sid
        self.engine = create_engine(db_url, isolation_level="AUTOCOMMIT", pool_size=1)
        self.database = database

    def _backends(self) -> list[int]:
        with self.engine.connect() as c:
            return [int(p) for p in c.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = :d "
                                                   "AND pid <> pg_backend_pid()"), {"d": self.database}).scalars()]

    def snapshot(self) -> CpuSnapshot:
        server: dict[int, float] = {}
        for pid in _pids():
            st = _stat(pid)
            if st is not None and st[0] == self.sid:
                server[pid] = st[1]
        database = {pid: st[1] for pid in self._backends() if (st := _stat(pid)) is not None}
        t = os.times()
        return CpuSnapshot(time.perf_counter(), server, database,
                           t.user + t.system + t.children_user + t.children_system, machine_busy())

    def since(self, before: CpuSnapshot) -> CpuUse:
        after = self.snapshot()

        def spent(a: dict[int, float], b: dict[int, float]) -> float:  # processes that started meanwhile from 0
            return sum(v - b.get(pid, 0.0) for pid, v in a.items())

        per = sorted((v - before.server.get(pid, 0.0) for pid, v in after.server.items()), reverse=True)
        return CpuUse(after.at - before.at, spent(after.server, before.server),
                      spent(after.database, before.database), after.bench - before.bench,
                      after.machine[0] - before.machine[0], [v for v in per if v >= 0.05])

    def close(self) -> None:
        self.engine.dispose()


@dataclass
class Waits:
    samples: int = 0
    active: int = 0  # session-samples running a statement or waiting in one
    events: Counter[str] = field(default_factory=Counter)  # "Lock/transactionid  UPDATE audit_chain_head …"
    locks: Counter[str] = field(default_factory=Counter)  # ungranted locks by type and relation
    idle_in_tx: int = 0

    def report(self, top: int = 12) -> str:
        lines = [f"  {self.samples} samples; mean active sessions {self.active / max(1, self.samples):.2f}, "
                 f"idle in transaction {self.idle_in_tx / max(1, self.samples):.2f}"]
        lines += [f"  {n / max(1, self.samples):6.3f}  {what}" for what, n in self.events.most_common(top)]
        if self.locks:
            lines.append("  ungranted locks (mean waiting):")
            lines += [f"  {n / max(1, self.samples):6.3f}  {what}" for what, n in self.locks.most_common(top)]
        return "\n".join(lines)


_ACTIVITY = text("""
SELECT state, backend_xid IS NOT NULL, coalesce(wait_event_type, 'CPU'), coalesce(wait_event, ''),
       left(regexp_replace(query, '\\s+', ' ', 'g'), 70)
FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid() AND state <> 'idle'
""")
_LOCKS = text("""
SELECT l.locktype, coalesce(c.relname, ''), l.mode
FROM pg_locks l LEFT JOIN pg_class c ON c.oid = l.relation
WHERE NOT l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = :d)
   OR NOT l.granted AND l.locktype IN ('transactionid', 'advisory')
""")


class WaitSampler:
    """Samples what the database's sessions are doing every ``every`` seconds in a thread, into :class:`Waits`."""

    def __init__(self, db_url: str, database: str, every: float = 0.05) -> None:
        self.engine = create_engine(db_url, isolation_level="AUTOCOMMIT", pool_size=1)
        self.database, self.every = database, every
        self.waits = Waits()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> WaitSampler:
        self.waits = Waits()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="pg-waits", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> Waits:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.waits

    def _run(self) -> None:
        with self.engine.connect() as c:
            while not self._stop.wait(self.every):
                w = self.waits
                w.samples += 1
                for state, writing, kind, event, query in c.execute(_ACTIVITY, {"d": self.database}):
                    if state == "idle in transaction":  # writing: it holds the row locks it has taken
                        w.idle_in_tx += 1
                        w.events[f"idle in {'writing' if writing else 'reading'} transaction  {query}"] += 1
                        continue
                    w.active += 1
                    w.events[f"{kind}/{event}  {query}"] += 1
                for locktype, rel, mode in c.execute(_LOCKS, {"d": self.database}):
                    w.locks[f"{locktype} {rel} {mode}".strip()] += 1

    def close(self) -> None:
        self.engine.dispose()
