"""Page images for business systems over HTTP on loopback, against the app `archive serve` runs.

- cached page image at w=1000 from a warm cache, 8 concurrent clients: requests/s and p99 (target ≤ 50 ms); every
  request authenticates its key, checks its grant and writes its access event (利用登记). Printed next to the floor
  measured in the same run: a bare Starlette app serving the same bytes with one WAL SQLite insert (and commit) per
  request, to the same 8 clients; the ratio project/floor (target ≥ 0.5) and the load average at the start
- first (uncached) render of a 200-dpi A4 page at w=1000, from a scanned JPEG and from a scanner PDF:
  p50 / max over distinct widths (target ≤ 150 ms), measured over HTTP and for the renderer alone

    .venv/bin/python bench/bench_images.py [--requests 4000] [--threads 8] [--cold 15] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from statistics import median

import httpx
from _common import free_port, pct, scan_jpeg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def run(requests: int, threads: int, cold: int, tmp: Path, database_url: str | None = None,
        rounds: int = 3) -> None:
    import img2pdf
    import uvicorn

    from archive.api.app import create_app
    from archive.audit import Actor
    from archive.commands.common import ensure_fonds
    from archive.context import Context
    from archive.identity import add_client
    from archive.images import render_page
    from archive.settings import load_settings
    from signing.certificates import ensure_dev_pki

    settings = load_settings(data_dir=tmp / "data", api_rate=1e6,  # measure the server, not the per-client limit
                             **({"database_url": database_url} if database_url else {}))
    ctx = Context.build(settings)
    ctx.catalogue.upgrade()
    ensure_fonds(ctx)
    ensure_dev_pki(settings.pki_path)
    with ctx.catalogue.session() as s:
        _, key = add_client(s, Actor.system("bench"), "bench", ["cases.write", "data.read", "images.read"])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(context=ctx), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    jpeg = scan_jpeg(1)
    pdf = img2pdf.convert(scan_jpeg(2))
    base = f"http://127.0.0.1:{port}"
    headers = {"X-API-Key": key, "X-Purpose": "%E6%80%A7%E8%83%BD%E6%B5%8B%E8%AF%95"}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
        serial = "BENCHIMG0001"
        c.post("/api/v1/cases", json={"serial": serial, "business_type": "GJ09", "unit": {"name": "示例单位"},
                                      "branch": "BR01", "clerk": "bench"}).raise_for_status()
        r = c.post(f"/api/v1/cases/{serial}/documents",
                   files=[("files", ("p0.jpg", jpeg, "image/jpeg")), ("files", ("p1.jpg", scan_jpeg(3), "image/jpeg")),
                          ("files", ("p2.pdf", pdf, "application/pdf"))],
                   data={"material_type": ["payroll_list", "bank_receipt", "other"]})
        assert r.status_code == 201, r.text
        docs = [res["document"]["id"] for res in r.json()["results"]]
        c.post(f"/api/v1/cases/{serial}/close", json={
            "outcome": "approved", "trail": [{"action": "办结", "person": "bench",
                                              "at": "2026-11-23T10:00:00+08:00"}]}).raise_for_status()

        for label, doc in (("scanned JPEG", docs[0]), ("scanner PDF ", docs[2])):
            times = []
            for i in range(cold):
                t0 = time.perf_counter()
                r = c.get(f"/api/v1/documents/{doc}/pages/1", params={"w": 1000 + i})
                times.append(time.perf_counter() - t0)
                assert r.status_code == 200 and r.headers["x-cache"] == "miss", r.text
            print(f"first render {label} w≈1000 over HTTP   p50 {pct(times, 50):6.1f} ms   "
                  f"max {max(times) * 1000:6.1f} ms   (target ≤ 150)")
        for label, data, media in (("scanned JPEG", jpeg, "image/jpeg"), ("scanner PDF ", pdf, "application/pdf")):
            times = []
            for _ in range(cold):
                t0 = time.perf_counter()
                render_page(data, media, 1, 1000)
                times.append(time.perf_counter() - t0)
            print(f"render only  {label} w=1000             p50 {pct(times, 50):6.1f} ms   "
                  f"max {max(times) * 1000:6.1f} ms")

        url = f"/api/v1/documents/{docs[0]}/pages/1?w=1000"
        warm = c.get(url)
        assert warm.status_code == 200
        size = len(warm.content)

    floor_base, stop_floor = floor_server(warm.content, tmp)
    print(f"cached page w=1000 ({size // 1024} KB), {threads} clients, {requests // threads * threads} requests a "
          f"run, floor and project alternating, {rounds} rounds (the median counts: the machine is shared)")
    floors, projects, ratios = [], [], []
    for _ in range(rounds):
        floor, floor_cpu = load(floor_base, "-", "/page", threads, requests)
        project, project_cpu = load(base, key, url, threads, requests)
        floors.append(floor)
        projects.append(project)
        ratios.append(project / floor)
        print(f"  floor   {floor:6.0f} req/s ({floor_cpu:4.2f} ms server CPU a request)   "
              f"project {project:6.0f} req/s ({project_cpu:4.2f} ms)   ratio {project / floor:4.2f}")
    stop_floor()
    server.should_exit = True
    print(f"  floor   (bare Starlette + one WAL SQLite insert per request) {median(floors):6.0f} req/s (median)")
    print(f"  project (API key, grant check, 利用登记)                     {median(projects):6.0f} req/s (median)   "
          f"ratio {median(ratios):4.2f} (median; target ≥ 0.5)")


def load(base: str, key: str, url: str, threads: int, requests: int) -> tuple[float, float]:
    """Requests/s of ``threads`` clients fetching ``url``, and the server's CPU time a request (this process: the
    servers run here); the clients run in a child process, so they do not compete with the server for its GIL.
    Prints p50/p99 and the errors."""
    cpu = time.process_time()
    out = subprocess.run([sys.executable, "-c", LOAD, base, key, url, str(threads), str(requests // threads)],
                         capture_output=True, text=True, check=True)
    cpu = time.process_time() - cpu
    count, wall, p50, p99, errors, first = out.stdout.strip().split("\t")
    print(f"    {url.split('?')[0]}: p50 {float(p50):5.1f} ms   p99 {float(p99):5.1f} ms (target ≤ 50)   "
          f"errors {errors}" + (f"   first: {first}" if int(errors) else ""))
    return int(count) / float(wall), cpu * 1000 / int(count)


def floor_server(image: bytes, tmp: Path) -> tuple[str, Callable[[], None]]:
    """The floor: a bare Starlette app serving ``image`` with one insert-and-commit into a WAL SQLite database per
    request (the least a durable access register costs). Its address, and how to stop it."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    path = tmp / "floor.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE event (id INTEGER PRIMARY KEY, at REAL, actor TEXT, target TEXT)")
    local = threading.local()

    def serve(request: Request) -> Response:  # sync: Starlette runs it in its thread pool
        db = getattr(local, "db", None)
        if db is None:
            db = local.db = sqlite3.connect(path, timeout=30)
        db.execute("INSERT INTO event (at, actor, target) VALUES (?, ?, ?)",
                   (time.time(), request.headers.get("x-api-key", "")[:12], request.url.path))
        db.commit()
        return Response(image, media_type="image/jpeg", headers={"X-Cache": "hit"})

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/page", serve)]), host="127.0.0.1", port=port,
                                           log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)

    def stop() -> None:
        server.should_exit = True

    return f"http://127.0.0.1:{port}", stop


LOAD = """
import sys, threading, time
import httpx
base, key, url, threads, per = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
headers = {"X-API-Key": key, "X-Purpose": "%E6%80%A7%E8%83%BD%E6%B5%8B%E8%AF%95"}
lat, errors = [], []
def worker():
    with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
        for _ in range(per):
            t0 = time.perf_counter()
            r = c.get(url)
            lat.append(time.perf_counter() - t0)
            if r.status_code != 200 or r.headers.get("x-cache") != "hit":
                errors.append(f"{r.status_code} {r.text[:200]}")
pool = [threading.Thread(target=worker) for _ in range(threads)]
t0 = time.perf_counter()
for t in pool: t.start()
for t in pool: t.join()
wall = time.perf_counter() - t0
lat.sort()
pick = lambda p: lat[min(len(lat) - 1, round(p / 100 * (len(lat) - 1)))] * 1000
print(len(lat), wall, pick(50), pick(99), len(errors), errors[0] if errors else "-", sep="\t")
"""


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--requests", type=int, default=4000)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--cold", type=int, default=15)
    p.add_argument("--rounds", type=int, default=3, help="floor and project runs, alternating")
    p.add_argument("--database-url", help="an empty catalogue database (default: SQLite in a temporary directory)")
    args = p.parse_args(argv)
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    with tempfile.TemporaryDirectory() as tmp:
        run(args.requests, args.threads, args.cold, Path(tmp), args.database_url, args.rounds)


if __name__ == "__main__":
    main()
