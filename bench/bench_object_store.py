"""Object-store throughput: the filesystem store against the S3 store on a real object-lock server.

    .venv/bin/python bench/bench_object_store.py [--count 8] [--repeat 2]

The S3 server is the one ARCHIVE_TEST_S3_ENDPOINT / _ACCESS_KEY / _SECRET_KEY name (``scripts/s3-gateway start``
runs a single-node Ceph RADOS Gateway on memstore and prints them). Put: ``--count`` distinct objects of 1 MB
and 10 MB each (distinct, so content addressing cannot skip a write), with a COMPLIANCE lock one day ahead, from
memory; get: read every object back whole. Both stores verify SHA-256 on put; the S3 store also sends it as a
checksum and pins reads to the written version. The best of ``--repeat`` rounds is reported, with the ratio
S3 / filesystem.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from signing.fixity import digest_bytes
from storage.base import ObjectStore, content_key
from storage.filesystem import FilesystemStore
from storage.s3 import S3Store

MB = 1_000_000
SIZES = {"1 MB": MB, "10 MB": 10 * MB}


def _objects(size: int, count: int, salt: int) -> list[tuple[str, bytes, str]]:
    out = []
    for i in range(count):
        data = random.Random(salt * 1000 + i).randbytes(size)
        sha = digest_bytes(data).sha256
        out.append((content_key("originals", sha), data, sha))
    return out


def _round(store: ObjectStore, objects: list[tuple[str, bytes, str]]) -> tuple[float, float]:
    """(put MB/s, get MB/s) for one round on ``store``."""
    total = sum(len(d) for _, d, _ in objects) / MB
    lock = datetime.now(UTC) + timedelta(days=1)
    started = time.perf_counter()
    for key, data, sha in objects:
        store.put(key, io.BytesIO(data), size=len(data), sha256=sha, retain_until=lock)
    put_s = time.perf_counter() - started
    started = time.perf_counter()
    for key, data, _ in objects:
        assert len(store.read_bytes(key)) == len(data)
    get_s = time.perf_counter() - started
    return total / put_s, total / get_s


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=8, help="objects of each size per round")
    parser.add_argument("--repeat", type=int, default=2, help="rounds; the best is reported")
    args = parser.parse_args(argv)
    endpoint = os.environ.get("ARCHIVE_TEST_S3_ENDPOINT")
    if not endpoint:
        print("no S3 gateway: run scripts/s3-gateway start and export the ARCHIVE_TEST_S3_* lines it prints")
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, size in SIZES.items():
            best: dict[str, tuple[float, float]] = {}
            for r in range(args.repeat):
                objects = _objects(size, args.count, salt=size // MB * 100 + r)
                stores: dict[str, ObjectStore] = {
                    "filesystem": FilesystemStore(Path(tmp) / f"fs-{label}-{r}"),
                    "s3 (Ceph RGW)": S3Store(endpoint, os.environ.get("ARCHIVE_TEST_S3_ACCESS_KEY", ""),
                                             os.environ.get("ARCHIVE_TEST_S3_SECRET_KEY", ""),
                                             f"bench-{uuid.uuid4().hex[:20]}", secure=False),
                }
                for name, store in stores.items():
                    put, get = _round(store, objects)
                    old = best.get(name, (0.0, 0.0))
                    best[name] = (max(old[0], put), max(old[1], get))
            fs_put, fs_get = best["filesystem"]
            for name, (put, get) in best.items():
                rows.append((label, name, put, get, put / fs_put, get / fs_get))
    print(f"{'size':6} {'store':16} {'put MB/s':>9} {'get MB/s':>9} {'put ÷ fs':>9} {'get ÷ fs':>9}"
          f"   ({args.count} objects a size, best of {args.repeat})")
    for label, name, put, get, rp, rg in rows:
        print(f"{label:6} {name:16} {put:9.1f} {get:9.1f} {rp:9.2f} {rg:9.2f}")


if __name__ == "__main__":
    main()
