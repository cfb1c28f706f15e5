"""Filing p50 on the production backends (PostgreSQL + the Ceph RADOS Gateway over S3) next to the embedded
defaults (SQLite + filesystem), each through a real ``archive serve`` process on loopback, as a ratio.

    scripts/s3-gateway start   # prints the ARCHIVE_TEST_S3_* to export
    .venv/bin/python bench/bench_filing_backends.py [--cases 20]
"""

from __future__ import annotations

import argparse

import httpx
from _common import pct, scan_jpeg
from _procs import archive_env, cli, data_dir, gateway_endpoint, pg_database, s3_settings, serve
from bench_capture import _file_cases


def _run(name: str, settings: dict[str, str], files: list[bytes], cases: int) -> tuple[list[float], list[float]]:
    tmp = data_dir(f"filing-{name}")
    env = archive_env({"ARCHIVE_DATA_DIR": str(tmp / "data"), "ARCHIVE_API_RATE": "10000", **settings})
    cli(env, "init")
    key = cli(env, "client", "add", "bench", "-s", "cases.write", "-s", "data.read").split("：")[-1].strip()
    server = serve(name, env, tmp).start()
    try:
        with httpx.Client(base_url=server.url, headers={"X-API-Key": key}, timeout=120) as c:
            _file_cases(c, files, "WARM", 2, "B-B")  # first filings load the signer and fonts
            return _file_cases(c, files, name.upper()[:2], cases, "B-B")
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", type=int, default=20)
    args = p.parse_args(argv)
    endpoint = gateway_endpoint()
    files = [scan_jpeg(i) for i in range(3)]
    up_e, file_e = _run("embedded", {}, files, args.cases)
    with pg_database("filing") as url:
        up_p, file_p = _run("production", {"ARCHIVE_DATABASE_URL": url, **s3_settings(endpoint)}, files, args.cases)
    print(f"{args.cases} filings each, 3 × ~300 KB scans, no TSA (B-B), one API process:")
    print(f"  SQLite + filesystem      upload p50 {pct(up_e, 50):7.1f} ms   filing p50 {pct(file_e, 50):7.1f} ms"
          f"   p95 {pct(file_e, 95):7.1f} ms")
    print(f"  PostgreSQL + Ceph (S3)   upload p50 {pct(up_p, 50):7.1f} ms   filing p50 {pct(file_p, 50):7.1f} ms"
          f"   p95 {pct(file_p, 95):7.1f} ms")
    print(f"  ratio production/embedded: upload {pct(up_p, 50) / pct(up_e, 50):.2f}×, "
          f"filing {pct(file_p, 50) / pct(file_e, 50):.2f}×")


if __name__ == "__main__":
    main()
