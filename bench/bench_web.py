"""The counter's pages at scale: server time of 工作台, the case page with 10 documents and the unassigned queue
with 1,000 parts, on a catalogue of 100,000 cases (issue 14: p95 ≤ 100 ms); then, in Debian's Chromium on
loopback, the case page's DOMContentLoaded and an upload of 3 × 300 KB scans until the results show.

    .venv/bin/python bench/bench_web.py [--cases 100000] [--runs 50] [--no-browser]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvicorn
from _common import PG_ADMIN_URL, databases, free_port, pct, scan_jpeg, with_comment
from fastapi.testclient import TestClient
from sqlalchemy import insert, select, text

from archive import identity
from archive.api.app import create_app
from archive.audit import Actor
from archive.catalogue.models import Case, Fonds, ScanBatch, ScanPart
from archive.commands.common import ensure_fonds
from archive.context import Context
from archive.settings import load_settings
from archive.web.session import COOKIE, csrf_token

PASSWORD = "bench-pass-1"
TODAY_CASES = 300  # of this clerk, today: the home page counts and pages them
CASE_DOCS = 10


def fill(ctx: Context, cases: int, unassigned: int) -> str:
    """``cases`` cases (a few hundred today, of clerk01), ``unassigned`` unassigned scan parts; the serial of a
    case that gets ``CASE_DOCS`` real documents."""
    now = datetime.now(UTC)
    with ctx.catalogue.session() as s:
        fonds = s.scalar(select(Fonds))
        assert fonds is not None
        batch = 10_000
        for start in range(0, cases, batch):
            rows = []
            for n in range(start, min(cases, start + batch)):
                today = n < TODAY_CASES
                rows.append({"serial": f"YW{n:013d}", "fonds_id": fonds.id, "category": "TQ",
                             "business_type": "TQ01", "status": "open", "branch": f"BR{n % 20:02d}" if not today
                             else "BR01", "clerk": "clerk01" if today else f"c{n % 50}",
                             "applicant_name": "张三", "applicant_id_number": "11010519491231002X",
                             "accepted_at": now - (timedelta(minutes=n) if today else timedelta(days=2 + n % 900))})
            s.execute(insert(Case), rows)
        b = ScanBatch(filename="stack.pdf", original_key="scans/none", sha256="0" * 64, media_type="application/pdf",
                      status="done", pages_total=unassigned * 2, pages_done=unassigned * 2, created_by="clerk01",
                      branch="BR01", covers=[])
        s.add(b)
        s.flush()
        s.execute(insert(ScanPart), [{"batch_id": b.id, "first_page": 2 * i + 1, "last_page": 2 * i + 2,
                                      "serial": None, "reason": "unknown_serial", "status": "unassigned"}
                                     for i in range(unassigned)])
        identity.add_user(s, Actor.system("bench"), "clerk01", PASSWORD, "柜员甲", ["clerk"], "BR01")
    with ctx.catalogue.engine.connect() as c:  # statistics, as autovacuum (PostgreSQL) or `archive` upkeep keeps them
        c.execute(text("ANALYZE"))
        c.commit()
    return f"YW{0:013d}"


def attach_documents(client: TestClient, serial: str) -> None:
    page = scan_jpeg(0)
    files = [("files", (f"p{i}.jpg", with_comment(page, f"page {i}"), "image/jpeg")) for i in range(CASE_DOCS)]
    r = client.post(f"/api/v1/cases/{serial}/documents", files=files,
                    data={"material_type": ["other"] * CASE_DOCS}, headers=_api_login(client))
    assert r.status_code in (201, 207), r.text


def _api_login(client: TestClient) -> dict[str, str]:
    r = client.post("/api/v1/auth/login", json={"username": "clerk01", "password": PASSWORD})
    return {"Authorization": f"Bearer {r.json()['token']}"}


def ui_login(client: TestClient) -> None:
    page = client.get("/ui/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    r = client.post("/ui/login", data={"username": "clerk01", "password": PASSWORD, "csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303, r.text


def server_times(client: TestClient, paths: dict[str, str], runs: int) -> dict[str, tuple[float, float]]:
    out = {}
    for name, path in paths.items():
        client.get(path)  # warm
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            r = client.get(path)
            times.append(time.perf_counter() - t)
            assert r.status_code == 200, (path, r.status_code, r.text[:300])
        out[name] = (pct(times, 50), pct(times, 95))
    return out


def browser_times(ctx: Context, serial: str, runs: int) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        print("browser: skipped (no chromium)")
        return
    from playwright.sync_api import sync_playwright

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(context=ctx), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    base = f"http://127.0.0.1:{port}"
    scans = [with_comment(scan_jpeg(i), f"bench {i} {time.time()}") for i in range(3)]
    tmp = Path(tempfile.mkdtemp())
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.goto(f"{base}/ui/login")
            page.get_by_label("用户名").fill("clerk01")
            page.get_by_label("密码").fill(PASSWORD)
            page.get_by_role("button", name="登录").click()
            page.wait_for_url(f"{base}/ui/")
            dcl = []
            for _ in range(runs):
                page.goto(f"{base}/ui/cases/{serial}")
                dcl.append(page.evaluate("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd")
                           / 1000)
            print(f"browser: case page DOMContentLoaded p50 {pct(dcl, 50):.0f} ms, p95 {pct(dcl, 95):.0f} ms "
                  f"(target ≤ 300 ms)")
            uploads = []
            for i in range(min(runs, 10)):
                paths = []
                for j, data in enumerate(scans):
                    path = tmp / f"scan-{i}-{j}.jpg"
                    path.write_bytes(with_comment(data, f"run {i} {j}"))
                    paths.append(str(path))
                page.goto(f"{base}/ui/cases/{serial}")
                t = time.perf_counter()
                page.locator("#f-other").set_input_files(paths)
                page.locator("#m-other .upload-results li.result").nth(2).wait_for()  # (CSP: no string eval)
                uploads.append(time.perf_counter() - t)
            print(f"browser: upload 3 × {len(scans[0]) // 1024} KB to results shown p50 {pct(uploads, 50):.0f} ms, "
                  f"p95 {pct(uploads, 95):.0f} ms (target ≤ 1000 ms)")
            browser.close()
    finally:
        server.should_exit = True
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--parts", type=int, default=1_000)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--pg", default=PG_ADMIN_URL)
    ap.add_argument("--no-browser", action="store_true")
    args = ap.parse_args(argv)
    with databases(args.pg, "web") as targets:
        for name, url in targets:
            data = Path(tempfile.mkdtemp())
            ctx = Context.build(load_settings(data_dir=data, database_url=url))
            try:
                ctx.catalogue.upgrade()
                ensure_fonds(ctx)
                t = time.perf_counter()
                serial = fill(ctx, args.cases, args.parts)
                took = time.perf_counter() - t
                print(f"{name}: {args.cases:,} cases, {args.parts:,} unassigned parts in {took:.1f} s")
                with TestClient(create_app(context=ctx)) as client:
                    attach_documents(client, serial)
                    ui_login(client)
                    assert COOKIE in client.cookies and csrf_token(client.cookies[COOKIE])
                    figures = server_times(client, {"home": "/ui/", f"case page ({CASE_DOCS} documents)":
                                                    f"/ui/cases/{serial}",
                                                    f"unassigned queue ({args.parts:,} parts)": "/ui/scans/unassigned"},
                                           args.runs)
                for what, (p50, p95) in figures.items():
                    print(f"{name}: {what}: p50 {p50:.1f} ms, p95 {p95:.1f} ms (target p95 ≤ 100 ms)")
                if name == "sqlite" and not args.no_browser:
                    browser_times(ctx, serial, min(args.runs, 20))
            finally:
                ctx.close()
                shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
