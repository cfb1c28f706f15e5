"""Start-up: ``archive --help`` (target ≤ 1 s) and ``archive serve`` ready, /healthz answering (target ≤ 3 s).

Each figure is the median of ``--runs`` runs, printed with its floor measured in the same run (a bare Python that
imports typer and prints a help text; for serve, a bare Python that imports uvicorn and answers /healthz) and the
ratio, plus the load average at the start. Serve runs on embedded defaults (SQLite, filesystem, tantivy).

The checkout's modules are compiled to bytecode first, as ``pip install`` does for the installed package (the image
of deploy/Dockerfile): with PYTHONDONTWRITEBYTECODE set (this machine, the image) and no ``__pycache__``, every start
would compile each of our ~200 modules again. ``--no-compile`` measures that fresh checkout instead.

    .venv/bin/python bench/bench_startup.py [--runs 5] [--no-compile]
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import time

import httpx
from _common import free_port
from _procs import CLI, ROOT, archive_env, cli, data_dir

FLOOR_HELP = "import typer; app = typer.Typer(); app.command()(lambda: None); app()"
FLOOR_SERVE = """
import sys, uvicorn
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def timed_help(code: str, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, "--help"], env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def timed_ready(args: list[str], port: int, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        while time.perf_counter() - t0 < 60:
            if p.poll() is not None:
                raise RuntimeError(f"{args} exited with {p.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return time.perf_counter() - t0
            except httpx.HTTPError:
                time.sleep(0.02)
        raise RuntimeError(f"{args} not ready in 60 s")
    finally:
        os.killpg(p.pid, 15)
        p.wait(20)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--no-compile", action="store_true", help="do not compile the checkout's modules first")
    a = p.parse_args(argv)
    if not a.no_compile:
        for package in ("archive", "signing", "storage", "search"):
            compileall.compile_dir(ROOT / package, quiet=1)
    load = os.getloadavg()
    print(f"runs: {a.runs}; bytecode: {'as found' if a.no_compile else 'compiled'}; "
          f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    tmp = data_dir("startup")
    env = archive_env({"ARCHIVE_DATA_DIR": str(tmp / "data")})
    try:
        cli(env, "init")
        rows = []
        helps = [timed_help(CLI, env) for _ in range(a.runs)]
        floors = [timed_help(FLOOR_HELP, env) for _ in range(a.runs)]
        rows.append(("archive --help", statistics.median(helps), statistics.median(floors), 1.0))
        ready, floor = [], []
        for _ in range(a.runs):
            port = free_port()
            ready.append(timed_ready(["-c", CLI, "serve", "--port", str(port)], port, env))
            port = free_port()
            floor.append(timed_ready(["-c", FLOOR_SERVE, str(port)], port, env))
        rows.append(("archive serve → /healthz 200", statistics.median(ready), statistics.median(floor), 3.0))
        for what, value, base, target in rows:
            print(f"  {what:30s} {value:6.2f} s  floor {base:5.2f} s  ratio {value / base:5.2f}  "
                  f"target ≤ {target:.0f} s: {'PASS' if value <= target else 'MISS'}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
