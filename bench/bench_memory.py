"""Memory of ``archive serve`` over many filings: RSS after 100 and after 1,000 must be within 10 %.

Starts ``archive serve`` on embedded defaults (SQLite catalogue, filesystem store, tantivy index, its worker
thread), then files cases over HTTP one after another, as a counter would: open a 汇缴 case, upload two small
scans, 办结归档, read the case back. The server's RSS (/proc/<pid>/status VmRSS) is sampled after every
``--every`` filings; printed: RSS after 100 and after the last, their ratio (target ≤ 1.10) and the per-filing
growth between them, with the load average at the start.

    .venv/bin/python bench/bench_memory.py [--cases 1000] [--every 100]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import time
from pathlib import Path

import httpx
from _common import with_comment
from _procs import archive_env, cli, data_dir, serve
from PIL import Image

TARGET_RATIO = 1.10
TRAIL = [{"action": "受理", "person": "clerk01", "at": "2026-01-05T09:30:00+08:00"},
         {"action": "办结", "person": "clerk01", "at": "2026-01-05T16:00:00+08:00"}]


def small_page(seed: int) -> bytes:
    """A small scan: 413 × 585 pixels at 200 dpi, grey noise (tens of KB): a filing's work without A4's pixels."""
    img = Image.effect_noise((413, 585), 20 + seed).point(lambda v: 200 + v // 5)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=60, dpi=(200, 200))
    return buf.getvalue()


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def file_one(c: httpx.Client, serial: str, pages: list[bytes]) -> None:
    body = {"serial": serial, "business_type": "GJ09", "unit": {"name": "示例单位"}, "branch": "BR01",
            "clerk": "clerk01", "accepted_at": "2026-01-05T09:30:00+08:00"}
    _ok(c.post("/api/v1/cases", json=body), serial)
    files = [("files", (f"p{k}.jpg", with_comment(p, f"{serial} {k}"), "image/jpeg")) for k, p in enumerate(pages)]
    _ok(c.post(f"/api/v1/cases/{serial}/documents", files=files,
               data={"material_type": ["payroll_list", "bank_receipt"]}), serial)
    _ok(c.post(f"/api/v1/cases/{serial}/close",
               json={"outcome": "approved", "closed_at": "2026-01-05T16:00:00+08:00", "trail": TRAIL}), serial)
    _ok(c.get(f"/api/v1/cases/{serial}"), serial)


def _ok(r: httpx.Response, serial: str) -> None:
    if r.status_code >= 300:
        raise RuntimeError(f"{r.request.method} {r.request.url.path} ({serial}): {r.status_code} {r.text[:500]}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", type=int, default=1000)
    p.add_argument("--every", type=int, default=100)
    args = p.parse_args(argv)
    load = os.getloadavg()
    print(f"cases: {args.cases}; load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    tmp = data_dir("memory")
    env = archive_env({"ARCHIVE_DATA_DIR": str(tmp / "data"), "ARCHIVE_API_RATE": "100000"})
    try:
        cli(env, "init")
        added = cli(env, "client", "add", "counter", "-s", "cases.write", "-s", "data.read")
        key = {"X-API-Key": added.split("：")[-1].strip().replace("[bold]", "").replace("[/]", "")}
        server = serve("serve", env, tmp).start()
        assert server.popen is not None
        pid = server.popen.pid
        pages = [small_page(0), small_page(1)]
        samples: dict[int, int] = {0: rss_kb(pid)}
        print(f"RSS idle: {samples[0] / 1024:.1f} MB")
        t0 = time.perf_counter()
        try:
            with httpx.Client(base_url=server.url, headers=key, timeout=120) as c:
                for i in range(1, args.cases + 1):
                    file_one(c, f"YW2026MEM{i:07d}", pages)
                    if i % args.every == 0 or i == args.cases:
                        samples[i] = rss_kb(pid)
                        print(f"  after {i:5d} filings: RSS {samples[i] / 1024:7.1f} MB "
                              f"({i / (time.perf_counter() - t0):.1f} filings/s)", flush=True)
        finally:
            server.stop()
        first = min(args.cases, 100)
        a, b = samples[first], samples[args.cases]
        ratio = b / a
        per = (b - a) / max(1, args.cases - first)
        print(f"RSS after {first}: {a / 1024:.1f} MB; after {args.cases}: {b / 1024:.1f} MB; ratio {ratio:.3f} "
              f"(target ≤ {TARGET_RATIO:.2f}: {'PASS' if ratio <= TARGET_RATIO else 'MISS'}); "
              f"growth {per:.1f} KB per filing")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
