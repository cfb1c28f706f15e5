"""Historical import (issue 20) of a generated vendor delivery, through the real `archive import` commands.

- a delivery of N items × 3 small JPEG pages (default 2,000; `--items 100000` for the full one), its disk size
- scan rate, dry-run rate and import rate (items/s)
- the floor for the same work measured in this run: per item, the page images digested (SHA-256 + SM3) and
  stored, the PDF/A rendition built, signed (PAdES), digested and stored, in one process, times the cores;
  the import's ratio to it (target ≥ 0.6)
- peak RSS of the import's process tree (the sum of each process's VmHWM; target ≤ 500 MB)
- a second import of the same delivery killed (SIGKILL, the whole process group) at a random point and run
  again: its counts must equal the clean run's, with no orphan rendition
- an extrapolation to 1,000,000 items, and the load average at start

    .venv/bin/python bench/bench_import.py [--items 2000] [--pages 3] [--seed N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _procs import CLI, ROOT, archive_env, cli

sys.path.insert(0, str(ROOT))  # tests/imports/delivery.py: the generator the import tests use

from tests.imports.delivery import PROFILE, make_delivery, row


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


TICK = os.sysconf("SC_CLK_TCK")


def tree_memory(root: int, seen: dict[int, int], stop: threading.Event, cpu: dict[int, float] | None = None) -> None:
    """Poll the process tree under ``root``: ``seen`` keeps each process's VmHWM (kB), read before it exits; under
    key -2 the largest sum of the VmHWM of the processes alive at one poll (the pool is replaced every 2,000 items,
    so summing every process ever seen would add up pools that never ran together); and under key -1 the largest
    sum of the tree's Pss (kB; shared library pages divided among the processes);
    ``cpu`` each process's CPU seconds (user + system) as last seen (a worker's last second before it exits may be
    missed). Once a second: reading smaps_rollup walks each process's page tables, and at five times a second the
    poller took 11% of a core from the import it measures."""
    while not stop.is_set():
        todo, pss, live = [root], 0, 0
        while todo:
            pid = todo.pop()
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                hwm = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
                seen[pid] = max(seen.get(pid, 0), hwm)
                live += hwm
                if cpu is not None:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    cpu[pid] = max(cpu.get(pid, 0.0), (int(fields[11]) + int(fields[12])) / TICK)
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
                pss += int(re.search(r"^Pss:\s+(\d+)", rollup, re.M).group(1))  # type: ignore[union-attr]
                for task in Path(f"/proc/{pid}/task").iterdir():
                    todo += [int(c) for c in (task / "children").read_text().split()]
            except (OSError, AttributeError):
                continue
        seen[-1] = max(seen.get(-1, 0), pss)
        seen[-2] = max(seen.get(-2, 0), live)
        stop.wait(1.0)


def archive(env: dict[str, str], *args: str, kill_after: float | None = None, cpu: dict[int, float] | None = None,
            profile: Path | None = None) -> tuple[float, tuple[int, int], str]:
    """Run `archive ARGS`; seconds taken, peak memory of its process tree (the largest sum of the VmHWM of the
    processes alive together, peak Pss; MB), stdout.
    ``kill_after``: SIGKILL the process group after that many seconds (a crash); ``cpu``: filled with each
    process's CPU seconds, the parent's under key 0; ``profile``: a cProfile of the parent process written there."""
    t0 = time.perf_counter()
    code = CLI if profile is None else (
        "import cProfile; from archive.cli import main\np = cProfile.Profile(); p.enable()\n"
        f"try:\n    main()\nfinally:\n    p.disable(); p.dump_stats({str(profile)!r})")
    p = subprocess.Popen([sys.executable, "-c", code, *args], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    seen: dict[int, int] = {}
    stop = threading.Event()
    poll = threading.Thread(target=tree_memory, args=(p.pid, seen, stop, cpu), daemon=True)
    poll.start()
    try:
        out, err = p.communicate(timeout=kill_after)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
    stop.set()
    poll.join()
    if kill_after is None and p.returncode:
        raise RuntimeError(f"archive {' '.join(args)} failed ({p.returncode}):\n{out}{err}")
    pss, together = seen.pop(-1, 0), seen.pop(-2, 0)
    if cpu is not None and p.pid in cpu:
        cpu[0] = cpu.pop(p.pid)
    return time.perf_counter() - t0, (together // 1024, pss // 1024), out


def prepare(tag: str, base: Path) -> dict[str, str]:
    env = archive_env({"ARCHIVE_DATA_DIR": str(base / tag)})
    cli(env, "init")
    return env


def outcome(env: dict[str, str], job_id: int) -> dict[str, object]:
    """What the import left: counts by state, items, documents, and renditions in the store not in the catalogue."""
    code = f"""
import json
from sqlalchemy import func, select
from archive.commands.common import cli_context
from archive.catalogue.models import ArchiveItem, Document
from archive.imports import job
ctx = cli_context()
with ctx.catalogue.reading() as r:
    items = r.scalar(select(func.count()).select_from(ArchiveItem))
    docs = r.scalar(select(func.count()).select_from(Document))
    keys = set(r.scalars(select(ArchiveItem.rendition_key)))
orphans = len(set(ctx.store.list_keys("renditions")) - keys)
print(json.dumps({{"states": job.counts(ctx, {job_id}), "items": items, "documents": docs, "orphans": orphans}}))
"""
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return dict(json.loads(r.stdout.strip().splitlines()[-1]))


def floor(env: dict[str, str], delivery: Path, sample: int) -> float:
    """Items/s of the bare work of an item (digests, store, PDF/A, signature, store) in one process."""
    code = f"""
import io, time
from pathlib import Path
from typing import Any
from archive.commands.common import cli_context
from signing.fixity import digest_bytes
from signing.pades import sign_pdf
from signing.rendition import RenditionMetadata, SourceDocument, build_rendition
from storage.base import content_key
ctx = cli_context()
folders = sorted(p for p in Path({str(delivery)!r}).glob("*/*") if p.is_dir())[:{sample} + 3]

def one(n, folder):
    sources = []
    for f in sorted(folder.glob("*.jpg")):
        data = f.read_bytes()
        d = digest_bytes(data)
        ctx.store.put(content_key("originals", d.sha256), io.BytesIO(data), size=d.size, sha256=d.sha256, sm3=d.sm3)
        sources.append(SourceDocument(title=f.name, media_type="image/jpeg", data=data, material_type="其他材料"))
    meta = RenditionMetadata(archival_code=folder.name, business_serial=f"FLOOR{{n:08d}}", business_type="提取",
                             retention="定期30年", title="floor", fonds_name=ctx.settings.fonds_name, dates=(),
                             parties=[], extra={{}})
    signed = sign_pdf(build_rendition(sources, meta, max_pixels=ctx.settings.max_pixels), ctx.signer,
                      timestamper=ctx.timestamper, tsa_required=ctx.settings.tsa_required, pdfa_checked=True)
    d = digest_bytes(signed)
    ctx.store.put(content_key("renditions", d.sha256), io.BytesIO(signed), size=d.size, sha256=d.sha256, sm3=d.sm3)

for n, folder in enumerate(folders[:3]):  # warm-up: fonts, signer, first store writes
    one(n, folder)
t0 = time.perf_counter()
for n, folder in enumerate(folders[3:]):
    one(n + 3, folder)
print(len(folders) - 3, time.perf_counter() - t0)
"""
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    n, seconds = r.stdout.split()[-2:]
    return int(n) / float(seconds)


def import_once(env: dict[str, str], profile: Path, delivery: Path, tmp: Path,
                kill_after: float | None = None, cprofile: Path | None = None) -> dict[str, Any]:
    manifest = tmp / f"{env['ARCHIVE_DATA_DIR'].rsplit('/', 1)[-1]}.manifest.jsonl"
    t_scan, _, _ = archive(env, "import", "scan", str(profile), str(delivery), "--manifest", str(manifest))
    t_report, _, out = archive(env, "import", "report", str(manifest))
    report = int(re.search(r"预检报告 (\d+)", out).group(1))  # type: ignore[union-attr]
    archive(env, "import", "approve", str(report))
    cpu: dict[int, float] = {}
    t_run, rss, out = archive(env, "import", "run", str(manifest), "--report", str(report), kill_after=kill_after,
                              cpu=cpu, profile=cprofile)
    parent = cpu.pop(0, 0.0)
    return {"scan": t_scan, "report": t_report, "run": t_run, "rss": rss, "report_id": report,
            "manifest": str(manifest), "cpu_parent": parent, "cpu_workers": sum(cpu.values())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--pages", type=int, default=3)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--floor-sample", type=int, default=60)
    ap.add_argument("--no-crash", action="store_true", help="skip the crash-and-resume run (large deliveries)")
    ap.add_argument("--profile", type=Path, default=None,
                    help="cProfile the clean import's parent process into FILE, top 25 printed (rates off: take them "
                         "from a run without it)")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    print(f"load average at start {os.getloadavg()[0]:.2f} / {os.getloadavg()[1]:.2f} ({cores} cores)", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-import-"))
    rows = [row(n, RQ=f"2015-{1 + n % 12:02d}-{1 + n % 28:02d}", YS=str(args.pages)) for n in range(1, args.items + 1)]
    t0 = time.perf_counter()
    delivery = make_delivery(tmp / "delivery", rows, pages=args.pages)
    size = du(delivery)
    print(f"delivery: {args.items} items × {args.pages} pages, {size / 2**20:.1f} MB on disk "
          f"({size / args.items / args.pages / 1024:.1f} KB per page), generated in {time.perf_counter() - t0:.0f} s",
          flush=True)
    profile = tmp / "profile.toml"
    profile.write_text(PROFILE, encoding="utf-8")

    clean = import_once(prepare("clean", tmp), profile, delivery, tmp, cprofile=args.profile)
    clean_env = archive_env({"ARCHIVE_DATA_DIR": str(tmp / "clean")})
    result = outcome(clean_env, 1)
    n = args.items
    rate = n / float(clean["run"])
    print(f"scan      {n / float(clean['scan']):8.1f} items/s  ({clean['scan']:.1f} s)")
    print(f"dry run   {n / float(clean['report']):8.1f} items/s  ({clean['report']:.1f} s)")
    print(f"import    {rate:8.1f} items/s  ({clean['run']:.1f} s)  → {result}", flush=True)
    print(f"CPU/item  parent {clean['cpu_parent'] / n * 1000:6.1f} ms, "
          f"workers {clean['cpu_workers'] / n * 1000:6.1f} ms "
          f"(parent {clean['cpu_parent']:.1f} s, workers {clean['cpu_workers']:.1f} s in all)", flush=True)
    if args.profile:
        import pstats

        pstats.Stats(str(args.profile)).sort_stats("cumulative").print_stats(25)

    one = floor(prepare("floor", tmp), delivery, min(args.floor_sample, n - 3))
    print(f"floor     {one:8.1f} items/s in one process × {cores} cores = {one * cores:.1f} items/s")
    print(f"ratio     {rate / (one * cores):8.2f}  (target ≥ 0.6); the floor's CPU per item "
          f"{1000 / one:.1f} ms (one process, wall ≈ CPU)")
    hwm, pss = clean["rss"]
    print(f"peak RSS  {hwm:8d} MB  (import process tree, largest sum of the VmHWM of processes alive together; "
          "target ≤ 500); "
          f"peak Pss {pss} MB (shared pages counted once)")
    for target in (100_000, 1_000_000):
        per = target / n
        total = (float(clean["scan"]) + float(clean["report"]) + float(clean["run"])) * per
        print(f"{target:,} items (linear): scan {float(clean['scan']) * per / 3600:.1f} h, "
              f"dry run {float(clean['report']) * per / 3600:.1f} h, "
              f"import {float(clean['run']) * per / 3600:.1f} h, all {total / 3600:.1f} h; "
              f"delivery {size * per / 2**30:.1f} GB", flush=True)
    if args.no_crash:
        return

    rng = random.Random(args.seed)
    kill_at = rng.uniform(0.2, 0.8) * float(clean["run"])
    crash_env = prepare("crash", tmp)
    crashed = import_once(crash_env, profile, delivery, tmp, kill_after=kill_at)
    mid = outcome(crash_env, 1)
    print(f"crash     SIGKILL after {kill_at:.1f} s → {mid['states']}", flush=True)
    t_resume, rss_resume, _ = archive(crash_env, "import", "run", str(crashed["manifest"]), "--report",
                                      str(crashed["report_id"]))
    resumed = outcome(crash_env, 1)
    same = resumed == result
    print(f"resumed   in {t_resume:.1f} s → {resumed}; peak RSS {rss_resume[0]} MB (Pss {rss_resume[1]} MB)")
    print(f"crash + resume counts equal the clean run: {'yes' if same else 'NO'}; "
          f"orphan renditions {resumed['orphans']}")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
