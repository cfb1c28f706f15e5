"""Soak: two API processes and ``archive worker`` on PostgreSQL and the Ceph RADOS Gateway under mixed traffic,
with failures on the way; then proof that nothing acknowledged was lost.

Traffic (threads, each request to API process A or B in turn, like a load balancer: a refused connection is
retried once on the other process and counted as a failover): counter work (open a 汇缴 case, upload two ~300 KB
scans, file it), a business system reading filed items (data, page images) and searching.

Failures, at fixed fractions of the run: kill -9 API process A (started again at once), kill -9 the worker (started
again), and the object store cut off for a while: a TCP proxy between the API processes and the gateway refuses
connections, as a gateway that went away would. ``--restart-gateway`` instead kills -9 the real gateway daemon
and starts it again (scripts/s3-gateway kill-rgw|start-rgw; the cluster keeps the data): only on a machine nobody
else is using it on.

Reported: requests/s; p50/p99 per route; answers by status per route (503 is the only error expected, during the
outage); then every acknowledged filing verifies (signature, fixity, through the API), the outbox drains, and the
audit chain verifies.

    scripts/s3-gateway start   # prints the ARCHIVE_TEST_S3_* to export
    .venv/bin/python bench/bench_soak.py [--seconds 180] [--restart-gateway]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import random
import subprocess
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx
from _common import pct, scan_jpeg, with_comment
from _procs import Proc, TcpProxy, archive_env, cli, data_dir, gateway_endpoint, pg_database, s3_settings, serve
from _procs import worker as worker_proc

MAX_SECONDS = 600
GATEWAY = Path(__file__).resolve().parent.parent / "scripts" / "s3-gateway"
TRAIL = [{"action": "受理", "person": "clerk01", "at": "2026-01-05T09:30:00+08:00"},
         {"action": "办结", "person": "clerk01", "at": "2026-01-05T16:00:00+08:00"}]


class Load:
    """Requests and their outcomes, shared by the traffic threads."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.turn = itertools.count()
        self.times: dict[str, list[float]] = defaultdict(list)
        self.status: dict[str, Counter[str]] = defaultdict(Counter)
        self.failovers = 0
        self.samples: list[str] = []  # bodies of the first unexpected errors
        self.filed: list[str] = []  # 档号 of filings answered 200: acknowledged
        self.filed_unanswered: list[str] = []  # filed, but the answer was lost with a killed process
        self.docs: list[int] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def call(self, route: str, method: str, path: str, headers: dict[str, str], **kw: object) -> httpx.Response | None:
        first = next(self.turn) % len(self.urls)
        for attempt in range(2):
            url = self.urls[(first + attempt) % len(self.urls)]
            t0 = time.perf_counter()
            try:
                r = httpx.request(method, url + path, headers=headers, timeout=60, **kw)  # type: ignore[arg-type]
            except httpx.TransportError as exc:
                with self.lock:
                    if attempt == 0 and isinstance(exc, httpx.ConnectError):
                        self.failovers += 1
                        continue
                    self.status[route][type(exc).__name__] += 1
                return None
            label = str(r.status_code)
            if r.status_code >= 400:
                with contextlib.suppress(ValueError):
                    label += f" {r.json().get('code')}"
            with self.lock:
                self.times[route].append(time.perf_counter() - t0)
                self.status[route][label] += 1
                if r.status_code >= 400 and r.status_code not in (503, 429) and len(self.samples) < 5:
                    self.samples.append(f"{method} {path} → {r.status_code} {r.text[:600]}")
            return r
        return None


def counter(load: Load, headers: dict[str, str], pages: list[bytes], n: int) -> None:
    for i in itertools.count():
        if load.stop.is_set():
            return
        serial = f"YW2026{n:02d}{i:07d}"
        body = {"serial": serial, "business_type": "GJ09", "unit": {"name": f"示例单位{n}"}, "branch": "BR01",
                "clerk": "clerk01", "accepted_at": "2026-01-05T09:30:00+08:00"}
        if not _until_ok(load, "open", "POST", "/api/v1/cases", headers, {200, 201, 409}, json=body):
            continue
        files = [("files", (f"p{k}.jpg", with_comment(p, f"{serial} {k}"), "image/jpeg")) for k, p in enumerate(pages)]
        if not _until_ok(load, "upload", "POST", f"/api/v1/cases/{serial}/documents", headers, {201},
                         files=files, data={"material_type": ["payroll_list", "bank_receipt"]}):
            continue
        r = _until_ok(load, "file", "POST", f"/api/v1/cases/{serial}/close", headers, {200, 409},
                      json={"outcome": "approved", "closed_at": "2026-01-05T16:00:00+08:00", "trail": TRAIL})
        if r is not None and r.status_code == 409:  # filed by an attempt whose answer was lost (kill -9): look
            case = load.call("case", "GET", f"/api/v1/cases/{serial}", headers)
            item = case.json().get("item") if case is not None and case.status_code == 200 else None
            if item:
                with load.lock:
                    load.filed_unanswered.append(item["archival_code"])
            continue
        if r is not None:
            with load.lock:
                load.filed.append(r.json()["item"]["archival_code"])


def _until_ok(load: Load, route: str, method: str, path: str, headers: dict[str, str], ok: set[int],
              **kw: object) -> httpx.Response | None:
    """The counter's clerk tries again while the system answers 503 (or a process is away)."""
    for _ in range(60):
        if load.stop.is_set():
            return None
        r = load.call(route, method, path, headers, **kw)
        if r is not None and r.status_code in ok:
            return r
        if r is not None and r.status_code not in (503, 429):
            return None  # a real error: counted, case abandoned
        time.sleep(0.5)
    return None


def reader(load: Load, headers: dict[str, str]) -> None:
    rng = random.Random(7)
    while not load.stop.is_set():
        with load.lock:
            code = rng.choice(load.filed) if load.filed else None
        if code is None:
            time.sleep(0.2)
            continue
        r = load.call("item", "GET", f"/api/v1/items/{code}", headers)
        if r is not None and r.status_code == 200:
            docs = [d["id"] for d in r.json().get("documents", [])]
            if docs:
                load.call("page", "GET", f"/api/v1/documents/{rng.choice(docs)}/pages/1?w={rng.choice([200, 800])}",
                          headers)
        load.call("search", "GET", "/api/v1/search", headers, params={"business_type": "GJ09", "page_size": 20})


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=int, default=180, help=f"traffic duration (at most {MAX_SECONDS})")
    p.add_argument("--counters", type=int, default=3, help="counter threads (open, upload, file)")
    p.add_argument("--readers", type=int, default=2, help="business-system threads (read, page, search)")
    p.add_argument("--restart-gateway", action="store_true",
                   help="stop/start the real gateway instead of cutting the proxy (nobody else may be using it)")
    args = p.parse_args(argv)
    seconds = max(20, min(MAX_SECONDS, args.seconds))
    endpoint = gateway_endpoint()
    proxy = TcpProxy(endpoint)
    tmp = data_dir("soak")
    with pg_database("soak") as url:
        settings = {"ARCHIVE_DATA_DIR": str(tmp / "data"), "ARCHIVE_DATABASE_URL": url, "ARCHIVE_API_RATE": "10000",
                    **s3_settings(endpoint if args.restart_gateway else proxy.endpoint)}
        env = archive_env(settings)
        cli(env, "init")
        writer = cli(env, "client", "add", "counter", "-s", "cases.write", "-s", "data.read")
        business = cli(env, "client", "add", "core", "-s", "data.read", "-s", "images.read")
        w_key = {"X-API-Key": writer.split("：")[-1].strip().replace("[bold]", "").replace("[/]", "")}
        r_key = {"X-API-Key": business.split("：")[-1].strip().replace("[bold]", "").replace("[/]", "")}
        a, b, worker = serve("A", env, tmp).start(), serve("B", env, tmp).start(), worker_proc(env, tmp).start()
        try:
            _soak(args, seconds, proxy, a, b, worker, w_key, r_key, env)
        finally:
            for proc in (a, b, worker):
                proc.stop()
            proxy.close()


def _soak(args: argparse.Namespace, seconds: int, proxy: TcpProxy, a: Proc, b: Proc, worker: Proc,
          w_key: dict[str, str], r_key: dict[str, str], env: dict[str, str]) -> None:
    pages = [scan_jpeg(i) for i in range(2)]
    load = Load([a.url, b.url])
    threads = [threading.Thread(target=counter, args=(load, w_key, pages, n), daemon=True)
               for n in range(args.counters)]
    threads += [threading.Thread(target=reader, args=(load, r_key), daemon=True) for _ in range(args.readers)]
    started = time.monotonic()
    for t in threads:
        t.start()
    events: list[str] = []

    def at(fraction: float) -> None:
        time.sleep(max(0.0, started + fraction * seconds - time.monotonic()))

    def mark(what: str) -> None:
        events.append(f"{time.monotonic() - started:6.1f} s  {what}")

    outage = min(15.0, max(5.0, seconds * 0.1))
    at(0.25)
    a.kill()
    mark("kill -9 API process A")
    a.start(wait=False)
    a.wait_healthy()
    mark("A answers again")
    at(0.45)
    worker.kill()
    mark("kill -9 worker")
    worker.start(wait=False)
    mark("worker started again")
    at(0.6)
    if args.restart_gateway:
        subprocess.run([str(GATEWAY), "kill-rgw"], check=True)  # kill -9 the gateway daemon; the OSD keeps the data
        mark("gateway killed")
        time.sleep(outage)
        subprocess.run([str(GATEWAY), "start-rgw"], check=True, capture_output=True)
        mark("gateway started")
    else:
        proxy.cut()
        mark(f"object store cut off ({outage:.0f} s)")
        time.sleep(outage)
        proxy.restore()
        mark("object store back")
    at(1.0)
    load.stop.set()
    for t in threads:
        t.join(120)
    elapsed = time.monotonic() - started
    _report(load, elapsed, events)
    _prove(load, a, w_key, env)


def _report(load: Load, elapsed: float, events: list[str]) -> None:
    total = sum(sum(c.values()) for c in load.status.values())
    print(f"soak: {elapsed:.0f} s, {total} requests, {total / elapsed:.1f} requests/s, "
          f"{len(load.filed)} filings acknowledged, {load.failovers} failovers to the other process")
    for e in events:
        print(f"  {e}")
    print(f"  {'route':8} {'n':>6} {'p50 ms':>8} {'p99 ms':>8}  answers")
    for route in ("open", "upload", "file", "case", "item", "page", "search"):
        times = load.times.get(route, [])
        if not times and not load.status.get(route):
            continue
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(load.status[route].items()))
        p50 = f"{pct(times, 50):8.1f}" if times else "       -"
        p99 = f"{pct(times, 99):8.1f}" if times else "       -"
        print(f"  {route:8} {len(times):6d} {p50} {p99}  {answers}")
    in_flight = {route: {k: v for k, v in c.items() if not k[0].isdigit()} for route, c in load.status.items()}
    unexpected = {route: {k: v for k, v in c.items() if k[0] in "45" and not k.startswith("503")
                          and k not in ("409 case_exists", "409 case_not_open")}
                  for route, c in load.status.items()}
    print(f"  connections lost in flight (kill -9): {({k: v for k, v in in_flight.items() if v}) or 'none'}")
    print(f"  errors other than 503 (and 409 for a retried step that had succeeded): "
          f"{({k: v for k, v in unexpected.items() if v}) or 'none'}")
    for sample in load.samples:
        print(f"    {sample}")


def _prove(load: Load, a: Proc, w_key: dict[str, str], env: dict[str, str]) -> None:
    """Every acknowledged filing is there and verifies; the outbox drains; the audit chain verifies."""
    bad = []
    with httpx.Client(base_url=a.url, headers=w_key, timeout=120) as c:
        for code in load.filed + load.filed_unanswered:
            r = c.get(f"/api/v1/items/{code}/verification")
            if r.status_code != 200 or not r.json()["ok"]:
                bad.append((code, r.status_code, r.text[:200]))
    checked = len(load.filed) + len(load.filed_unanswered)
    print(f"  filings verified: {checked - len(bad)}/{checked} ({len(load.filed)} acknowledged, "
          f"{len(load.filed_unanswered)} filed by an attempt whose answer was lost)"
          + (f"  FAILED: {bad[:5]}" if bad else ""))
    from archive import indexing
    from archive.catalogue.db import Catalogue

    catalogue = Catalogue(env["ARCHIVE_DATABASE_URL"])
    deadline, started = time.monotonic() + 120, time.monotonic()
    while True:
        with catalogue.sessions() as s:
            backlog = indexing.backlog(s)
        if backlog.pending == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    catalogue.dispose()
    print(f"  outbox: {backlog.pending} pending, {backlog.failed} failed "
          f"(drained {time.monotonic() - started:.0f} s after the traffic stopped)")
    print("  audit: " + cli(env, "audit", "verify").strip())
    if bad or backlog.pending or backlog.failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
