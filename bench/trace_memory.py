"""What grows per filing, found inside the server: the application in this process (the same app, context and
embedded index worker as ``archive serve``), filings over HTTP as in bench_memory.py, and between filing
``--start`` and filing ``--end`` a tracemalloc snapshot diff (top growing allocation sites) and a diff of live
objects by type. A diagnostic, not a benchmark: tracemalloc makes everything slower.

    .venv/bin/python bench/trace_memory.py [--start 100] [--end 300] [--frames 12] [--top 25]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import ctypes
import gc
import os
import shutil
import threading
import tracemalloc

import httpx
import uvicorn
from _common import free_port
from _procs import archive_env, cli, data_dir
from bench_memory import file_one, rss_kb, small_page


def live_types() -> collections.Counter[str]:
    gc.collect()
    return collections.Counter(type(o).__qualname__ for o in gc.get_objects())


def trim() -> None:
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--start", type=int, default=100)
    p.add_argument("--end", type=int, default=300)
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--no-trace", action="store_true", help="only RSS and live objects (faster)")
    args = p.parse_args(argv)
    load = os.getloadavg()
    print(f"filings {args.start} → {args.end}; load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    tmp = data_dir("memtrace")
    env = archive_env({"ARCHIVE_DATA_DIR": str(tmp / "data"), "ARCHIVE_API_RATE": "100000"})
    try:
        cli(env, "init")
        added = cli(env, "client", "add", "counter", "-s", "cases.write", "-s", "data.read")
        key = {"X-API-Key": added.split("：")[-1].strip().replace("[bold]", "").replace("[/]", "")}
        os.environ.update(env)
        from archive import indexing
        from archive.api.app import create_app
        from archive.commands.common import cli_context

        if not args.no_trace:
            tracemalloc.start(args.frames)
        ctx = cli_context()
        app = create_app(context=ctx)
        indexer = indexing.start_worker_thread(ctx) if ctx.settings.index == "embedded" else None
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                               access_log=False, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            threading.Event().wait(0.1)
        pages = [small_page(0), small_page(1)]
        pid = os.getpid()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=key, timeout=120) as c:
            snap = None
            types: collections.Counter[str] = collections.Counter()
            for i in range(1, args.end + 1):
                file_one(c, f"YW2026TRC{i:07d}", pages)
                if i in (args.start, args.end):
                    threading.Event().wait(2)  # the index worker catches up
                    types_now = live_types()
                    before_trim = rss_kb(pid)
                    trim()
                    print(f"after {i}: RSS {before_trim / 1024:.1f} MB, after malloc_trim "
                          f"{rss_kb(pid) / 1024:.1f} MB, python objects {sum(types_now.values())}", flush=True)
                    snap_now = None if args.no_trace else tracemalloc.take_snapshot().filter_traces(
                        [tracemalloc.Filter(False, tracemalloc.__file__),
                         tracemalloc.Filter(False, "*/httpx/_client.py", all_frames=True)])  # the client side
                    if i == args.start:
                        snap, types = snap_now, types_now
                        continue
                    n = args.end - args.start
                    print(f"\nlive objects grown by type ({n} filings):")
                    for name, d in (types_now - types).most_common(args.top):
                        print(f"  {d:8d}  {d / n:7.2f}/filing  {name}")
                    if snap is not None and snap_now is not None:
                        diff = snap_now.compare_to(snap, "traceback")
                        total = sum(s.size_diff for s in diff)
                        print(f"\ntracemalloc: {total / 1024:.1f} KB grown ({total / n / 1024:.2f} KB/filing); "
                              "top sites:")
                        for stat in diff[:args.top]:
                            print(f"\n  {stat.size_diff / 1024:+.1f} KB, {stat.count_diff:+d} blocks")
                            for line in stat.traceback.format()[-2 * args.frames:]:
                                print("    " + line)
        server.should_exit = True
        thread.join(10)
        if indexer is not None:
            indexer.stop()
        ctx.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
    os._exit(0)
