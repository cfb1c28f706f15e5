"""The archivists' console at scale (issue 15): server time of 统计 (dashboard), 检索 (search with a facet), the
item page and the appraisal queue, on a catalogue of N filed items (default 1,000,000) with its search index,
logged in as an archivist through the /ui/login form. Targets (p95): dashboard ≤ 300 ms, search ≤ 150 ms, item
page ≤ 100 ms, appraisal queue ≤ 200 ms.

The catalogue is written with bulk INSERTs (cases + items + one document row each, filed over ten years up to
today, so the last 30 days hold their share and some items expire within 90 days); a few items are filed through
the real pipeline first (API: open, upload 3 scans, close → signed rendition) so the item page has a real
rendition. The index is built as `archive index rebuild` does (archive.indexing.rebuild). A page not built yet
(404) is reported as such, not measured.

    .venv/bin/python bench/bench_console.py [--items 1000000] [--runs 50] [--real 3] [--sqlite-only | --pg-only]

(PYTHONPATH=. from a git worktree: the script's directory comes first on sys.path, and the virtual environment's
editable install points at the main checkout.)
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from _common import PG_ADMIN_URL, databases, pct, scan_jpeg, with_comment
from fastapi.testclient import TestClient
from sqlalchemy import insert, select, text

from archive import identity, indexing
from archive.api.app import create_app
from archive.audit import Actor
from archive.catalogue.models import ArchiveItem, Case, Document, Fonds
from archive.commands.common import ensure_fonds
from archive.context import Context
from archive.identifiers import id_number_check_char
from archive.settings import load_settings
from signing.certificates import ensure_dev_pki

PASSWORD = "bench-pass-1"
TARGETS = {"dashboard": 300.0, "search": 150.0, "item": 100.0, "appraisal": 200.0}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华玉萍红娥玲芬燕彬鹏辉建国志宏海波峰亮文斌宁浩宇轩"
YEARS = 10
BATCH = 10_000
FIRST_NUMBER = 1000  # bulk 件号 start here: the real filings took the first numbers of their year


def file_real(client: TestClient, key: str, n: int) -> list[str]:
    """``n`` GJ09 cases opened, given 3 scans each and closed through the API: their 档号 (signed renditions)."""
    codes = []
    scans = [scan_jpeg(i) for i in range(3)]
    headers = {"X-API-Key": key}
    for i in range(n):
        serial = f"BENCHREAL{i:04d}"
        client.post("/api/v1/cases", headers=headers, json={"serial": serial, "business_type": "GJ09",
                                                             "unit": {"name": "示例单位"}, "branch": "BR01",
                                                             "clerk": "bench"}).raise_for_status()
        r = client.post(f"/api/v1/cases/{serial}/documents", headers=headers,
                        files=[("files", (f"p{k}.jpg", with_comment(d, f"{serial} {k}"), "image/jpeg"))
                               for k, d in enumerate(scans)],
                        data={"material_type": ["payroll_list", "bank_receipt", "other"]})
        assert r.status_code == 201, r.text
        r = client.post(f"/api/v1/cases/{serial}/close", headers=headers, json={
            "outcome": "approved", "trail": [{"action": "办结", "person": "bench",
                                              "at": datetime.now(UTC).isoformat()}]})
        assert r.status_code == 200, r.text
        codes.append(r.json()["item"]["archival_code"])
    return codes


def fill(ctx: Context, items: int, seed: int = 15) -> None:
    """``items`` filed cases with their item and one document row, accepted over the last ten years."""
    rng = random.Random(seed)
    types = list(ctx.schedule.types.items())
    now = datetime.now(UTC)
    span = YEARS * 365 * 86400
    with ctx.catalogue.session() as s:
        fonds = s.scalar(select(Fonds))
        assert fonds is not None
        fonds_id, first_id = fonds.id, (s.scalar(select(Case.id).order_by(Case.id.desc()).limit(1)) or 0) + 1
    for start in range(0, items, BATCH):
        cases, archive_items, documents = [], [], []
        for i in range(start, min(items, start + BATCH)):
            code, bt = types[rng.randrange(len(types))]
            accepted = now - timedelta(seconds=rng.randrange(span))
            closed = min(now, accepted + timedelta(hours=rng.randrange(1, 5 * 24)))
            filed = min(now, closed + timedelta(hours=rng.randrange(0, 7 * 24)))  # about half within 3 days
            year = closed.astimezone(ctx.zone).year
            years = bt.retention.years
            expiry = date(year + years + 1, 1, 1) if years else None
            born = date(1955, 1, 1) + timedelta(days=rng.randrange(45 * 365))
            first = f"110105{born:%Y%m%d}{rng.randrange(1000):03d}"
            case_id = first_id + i
            cases.append({
                "id": case_id, "serial": f"YW{accepted:%Y%m%d}{i:08d}", "fonds_id": fonds_id,
                "category": bt.category, "business_type": code, "status": "filed",
                "applicant_name": rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(2)),
                "applicant_id_number": first + id_number_check_char(first), "applicant_mobile": "13800138000",
                "branch": f"BR{rng.randrange(1, 21):02d}", "clerk": f"c{i % 50}", "accepted_at": accepted,
                "closed_at": closed, "outcome": "approved", "created_at": accepted, "updated_at": filed})
            archive_items.append({
                "case_id": case_id, "archival_code": f"J001-YW·{year}-{bt.retention.value}-{bt.category}-"
                                                     f"{FIRST_NUMBER + i:07d}",
                "fonds_code": "J001", "year": year, "retention_code": bt.retention.value, "category": bt.category,
                "number": FIRST_NUMBER + i, "trigger": bt.trigger.value, "trigger_date": closed.date(),
                "expiry_date": expiry, "schedule_version": ctx.schedule.version, "status": "filed",
                "rendition_key": None, "filed_at": filed})
            documents.append({
                "case_id": case_id, "sequence": 1, "material_type": "other", "filename": "1.jpg",
                "original_key": f"originals/bench/{i:08d}", "sha256": f"{i:064x}", "sm3": f"{i:064x}",
                "size": 300_000 + rng.randrange(100_000), "media_type": "image/jpeg", "page_count": 1,
                "created_by": "bench", "created_at": accepted})
        with ctx.catalogue.session() as s:
            s.execute(insert(Case), cases)
            s.execute(insert(ArchiveItem), archive_items)
            s.execute(insert(Document), documents)
    with ctx.catalogue.engine.connect() as c:  # statistics, as autovacuum (PostgreSQL) or upkeep keeps them
        c.execute(text("ANALYZE"))
        c.commit()


def ui_login(client: TestClient, username: str) -> None:
    page = client.get("/ui/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    r = client.post("/ui/login", data={"username": username, "password": PASSWORD, "csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303, r.text


def measure(client: TestClient, path: str, runs: int, before: object = None) -> tuple[float, float, int] | int:
    """(p50, p95) in ms of ``runs`` GETs after one to warm, and the page's size (a tiny page would be a refusal);
    the status code instead when it is not 200."""
    r = client.get(path)
    if r.status_code != 200:
        return r.status_code
    size = len(r.content)
    times = []
    for _ in range(runs):
        if callable(before):
            before()
        t = time.perf_counter()
        r = client.get(path)
        times.append(time.perf_counter() - t)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
    return pct(times, 50), pct(times, 95), size


def report(db: str, what: str, target: str, figure: tuple[float, float, int] | int) -> None:
    if isinstance(figure, int):
        print(f"{db}: {what}: not measured (HTTP {figure}: page not built yet)")
        return
    p50, p95, size = figure
    goal = TARGETS[target]
    print(f"{db}: {what}: p50 {p50:.1f} ms, p95 {p95:.1f} ms (target p95 ≤ {goal:.0f} ms; "
          f"ratio {p95 / goal:.2f}; page {size / 1024:.0f} KB)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--real", type=int, default=3, help="items filed through the real pipeline (renditions)")
    ap.add_argument("--pg", default=PG_ADMIN_URL)
    ap.add_argument("--sqlite-only", action="store_true")
    ap.add_argument("--pg-only", action="store_true", help="PostgreSQL only (when it answers)")
    ap.add_argument("--no-index", action="store_true", help="skip the index (the dashboard does not use it)")
    args = ap.parse_args(argv)
    with databases(args.pg, "console") as targets:
        chosen = targets[:1] if args.sqlite_only else targets[1:] if args.pg_only else targets
        for name, url in chosen:
            data = Path(tempfile.mkdtemp())
            settings = load_settings(data_dir=data, database_url=url, index="embedded")
            ctx = Context.build(settings)
            try:
                ctx.catalogue.upgrade()
                ensure_fonds(ctx)
                ensure_dev_pki(settings.pki_path)
                with ctx.catalogue.session() as s:
                    identity.add_user(s, Actor.system("bench"), "arch01", PASSWORD, "档案员甲", ["archivist"])
                    _, key = identity.add_client(s, Actor.system("bench"), "bench", ["cases.write", "data.read"])
                app = create_app(context=ctx)
                with TestClient(app) as client:
                    t = time.perf_counter()
                    codes = file_real(client, key, args.real)
                    print(f"{name}: {args.real} items filed through the pipeline in {time.perf_counter() - t:.1f} s")
                    t = time.perf_counter()
                    fill(ctx, args.items)
                    print(f"{name}: {args.items:,} items (cases, items, documents) inserted in "
                          f"{time.perf_counter() - t:.1f} s")
                    if not args.no_index:
                        t = time.perf_counter()
                        n = indexing.rebuild(ctx)
                        took = time.perf_counter() - t
                        print(f"{name}: index rebuilt: {n:,} documents in {took:.1f} s ({n / took:,.0f}/s)")
                    ui_login(client, "arch01")

                    def cold(state: object = app.state) -> None:  # figures computed afresh: none cached
                        state.dashboard_cache = None  # type: ignore[attr-defined]

                    report(name, "dashboard (cached figures)", "dashboard", measure(client, "/ui/dashboard", args.runs))
                    report(name, "dashboard (figures computed per request)", "dashboard",
                           measure(client, "/ui/dashboard", min(args.runs, 20), cold))
                    report(name, "search 张 + category facet", "search",
                           measure(client, "/ui/search?q=" + quote("张") + "&category=TQ", args.runs))
                    report(name, "search 提取 + year facet", "search",
                           measure(client, f"/ui/search?q={quote('提取')}&year=2024", args.runs))
                    report(name, "search by 档号", "search", measure(client, f"/ui/search?q={quote(codes[0])}",
                                                                       args.runs))
                    report(name, "item page (real rendition)", "item",
                           measure(client, f"/ui/items/{quote(codes[0])}", args.runs))
                    report(name, "appraisal queue", "appraisal", measure(client, "/ui/appraisal", args.runs))
            finally:
                ctx.close()
                shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
