"""Filing throughput on both cores (issue 17 part 5): one client against ``archive serve --workers N`` on PostgreSQL
(filesystem object store), then 4 clients at once, each filing a different class (全宗-年度-保管期限-类别), and the
ratio of the two throughputs (target ≥ 1.6). The load average at the start is printed first.

Each client is a process of its own (forked: the bench's own Python never caps the clients). For each phase the bench
prints the cores used by the server's processes, its PostgreSQL backends, the bench and the whole machine (other work
included), and the CPU one filing costs: on 2 cores, 4 clients can go no faster than 2 cores / that cost, and what
the whole machine already uses during the one-client run is what is left for scaling. ``--waits`` samples
pg_stat_activity and ungranted pg_locks every 50 ms during the 4-client phase and prints what sessions waited on.

    .venv/bin/python bench/bench_filing_workers.py [--cases 10] [--workers 4] [--waits]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time

import httpx
from _common import PG_ADMIN_URL, pct, scan_jpeg, with_comment
from _procs import archive_env, cli, data_dir, pg_database, serve
from _watch import CpuMeter, WaitSampler
from sqlalchemy.engine import make_url

# four business types of four classes (GJ D30, ZJ D30 … differ by category or retention), no applicant needed
TYPES = {"GJ09": ["payroll_list", "bank_receipt", "other"], "ZJ01": ["transfer_instruction", "bank_receipt", "other"],
         "ZJ02": ["bank_statement", "reconciliation", "other"], "ZJ03": ["distribution_plan", "other", "other"]}
CLOSE = {"outcome": "approved", "trail": [{"action": "办结", "person": "bench", "at": "2026-11-23T10:00:00+08:00"}]}


def _open_cases(c: httpx.Client, files: list[bytes], business_type: str, tag: str, count: int) -> list[str]:
    """``count`` cases of ``business_type``, each with three pages uploaded (not timed)."""
    serials = []
    for i in range(count):
        serial = f"W{tag}{business_type}{i:05d}"
        c.post("/api/v1/cases", json={"serial": serial, "business_type": business_type, "unit": {"name": "示例单位"},
                                      "branch": "BR01", "clerk": "bench"}).raise_for_status()
        r = c.post(f"/api/v1/cases/{serial}/documents",
                   files=[("files", (f"p{n}.jpg", with_comment(d, f"{serial} {n}"), "image/jpeg"))
                          for n, d in enumerate(files)], data={"material_type": TYPES[business_type]})
        assert r.status_code == 201, r.text
        serials.append(serial)
    return serials


def _file(url: str, key: str, serials: list[str]) -> list[float]:
    """File the cases one after another through one client: each filing's duration in seconds."""
    durations = []
    with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=120) as c:
        for serial in serials:
            t0 = time.perf_counter()
            r = c.post(f"/api/v1/cases/{serial}/close", json=CLOSE)
            durations.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text
    return durations


def _client(url: str, key: str, serials: list[str], go: multiprocessing.synchronize.Event,
            out: multiprocessing.Queue[tuple[list[float], float]]) -> None:
    go.wait()
    durations = _file(url, key, serials)
    out.put((durations, time.perf_counter()))


def _throughput(url: str, key: str, batches: list[list[str]]) -> tuple[float, list[float]]:
    """Filings per second with one client process per batch, all at once; and every filing's duration."""
    mp = multiprocessing.get_context("fork")
    go, out = mp.Event(), mp.Queue()
    clients = [mp.Process(target=_client, args=(url, key, batch, go, out)) for batch in batches]
    for c in clients:
        c.start()
    time.sleep(0.5)  # every client imported and waiting
    t0 = time.perf_counter()
    go.set()
    results = [out.get(timeout=1800) for _ in clients]
    for c in clients:
        c.join()
        assert c.exitcode == 0, f"a client failed ({c.exitcode})"
    elapsed = max(end for _, end in results) - t0
    return sum(map(len, batches)) / elapsed, [d for r, _ in results for d in r]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", type=int, default=10, help="filings per client in each phase")
    p.add_argument("--workers", type=int, default=4, help="API processes (archive serve --workers)")
    p.add_argument("--waits", action="store_true", help="sample what PostgreSQL sessions wait on (4 clients)")
    args = p.parse_args(argv)
    print("load average at start: {:.2f} {:.2f} {:.2f} ({} cores)".format(*os.getloadavg(), os.cpu_count()))
    files = [scan_jpeg(i) for i in range(3)]
    tmp = data_dir("filing-workers")
    with pg_database("workers") as db:
        env = archive_env({"ARCHIVE_DATA_DIR": str(tmp / "data"), "ARCHIVE_DATABASE_URL": db,
                           "ARCHIVE_API_RATE": "100000"})
        cli(env, "init")
        key = cli(env, "client", "add", "bench", "-s", "cases.write", "-s", "data.read").split("：")[-1].strip()
        server = serve("workers", env, tmp, "--workers", str(args.workers)).start()
        name = make_url(db).database or ""
        assert server.popen is not None
        meter = CpuMeter(server.popen.pid, PG_ADMIN_URL, name)
        sampler = WaitSampler(PG_ADMIN_URL, name)
        try:
            with httpx.Client(base_url=server.url, headers={"X-API-Key": key}, timeout=120) as c:
                warm = [_open_cases(c, files, t, "WARM", 2) for t in TYPES]
                per_type = [_open_cases(c, files, t, "ONE", -(-args.cases // len(TYPES))) for t in TYPES]
                one = [s for turn in zip(*per_type, strict=True) for s in turn][:args.cases]  # the classes in turn
                four = [_open_cases(c, files, t, "FOUR", args.cases) for t in TYPES]
            _throughput(server.url, key, warm)  # every worker process loads the signer, fonts and profile once
            before = meter.snapshot()
            single, single_d = _throughput(server.url, key, [one])
            single_cpu = meter.since(before)
            if args.waits:
                sampler.start()
            before = meter.snapshot()
            many, many_d = _throughput(server.url, key, four)
            many_cpu = meter.since(before)
            waits = sampler.stop() if args.waits else None
        finally:
            server.stop()
            meter.close()
            sampler.close()
    print(f"archive serve --workers {args.workers}, PostgreSQL + filesystem store, 3 × ~300 KB scans, B-B:")
    print(f"  1 client,  {len(one):3d} filings of 4 classes in turn: {single:5.2f} filings/s   "
          f"p50 {pct(single_d, 50):7.1f} ms")
    print(f"    {single_cpu.line(len(one))}")
    print(f"  4 clients, {sum(map(len, four)):3d} filings, one class each:     {many:5.2f} filings/s   "
          f"p50 {pct(many_d, 50):7.1f} ms")
    print(f"    {many_cpu.line(sum(map(len, four)))}")
    print(f"  ratio 4 clients / 1 client: {many / single:.2f}× (target ≥ 1.6)")
    cost, cores = (single_cpu.server + single_cpu.database) / len(one), os.cpu_count() or 1
    print(f"  ceiling on {cores} cores at the one-client CPU per filing: {cores / cost:.2f} filings/s "
          f"= {cores / cost / single:.2f}× one client; the one-client run left "
          f"{cores - single_cpu.machine / single_cpu.wall:.2f} cores idle")
    if waits is not None:
        print("  PostgreSQL sessions during the 4-client run (mean sessions per sample):")
        print(waits.report())


if __name__ == "__main__":
    main()
