"""Object-store throughput beside a plain file copy of the same bytes, in one run.

    .venv/bin/python bench/bench_storage.py [--repeat 3]

Put: N distinct objects of 1 MB and 10 MB (distinct, so content addressing cannot skip a write),
read from page-cached source files, into the filesystem store and into the S3 store (moto in this
process). Get: read every object back. Baselines: ``shutil.copyfile`` of the same source files, with
and without fsync (the store fsyncs, so the durable copy is the like-for-like baseline), and a plain
read of the copies. The best of ``--repeat`` rounds is reported for every row alike.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from moto.server import ThreadedMotoServer

from signing.fixity import digest_bytes
from storage.base import ObjectStore, content_key
from storage.filesystem import FilesystemStore
from storage.s3 import S3Store

MB = 1_000_000
SIZES = {"1 MB": (MB, 40), "10 MB": (10 * MB, 8)}
COPY = "plain copy (copyfile, page cache)"
DURABLE = "plain copy + fsync (durable; get: plain read)"
FS = "filesystem store (SHA-256 verified)"
FS_SM3 = "filesystem store (SHA-256 + SM3 verified)"
S3 = "s3 store, moto in-process"


def make_sources(work: Path, size: int, count: int, rounds: int) -> list[list[tuple[Path, str, str]]]:
    """Per round, ``count`` distinct source files with their SHA-256 and SM3 (the caller knows them)."""
    base = os.urandom(size)
    rounds_out = []
    for r in range(rounds):
        files = []
        for i in range(count):
            data = f"{size}-{r}-{i}-".encode() + base[32:]
            path = work / f"src-{size}-{r}-{i}"
            path.write_bytes(data)
            d = digest_bytes(data)
            files.append((path, d.sha256, d.sm3))
        rounds_out.append(files)
    return rounds_out


def copy_plain(dst: Path, sources: list[list[tuple[Path, str, str]]], fsync: bool) -> Callable[[int], None]:
    def run(r: int) -> None:
        for src, sha, _ in sources[r]:
            target = dst / f"{sha}-{fsync}"
            shutil.copyfile(src, target)
            if fsync:
                fd = os.open(target, os.O_RDONLY)
                os.fsync(fd)
                os.close(fd)
    return run


def read_plain(dst: Path, sources: list[list[tuple[Path, str, str]]]) -> Callable[[int], None]:
    def run(r: int) -> None:
        for _, sha, _ in sources[r]:
            with open(dst / f"{sha}-True", "rb") as f:
                while f.read(1 << 20):
                    pass
    return run


def put_store(store: ObjectStore, sources: list[list[tuple[Path, str, str]]], with_sm3: bool,
              prefix: str = "originals") -> Callable[[int], None]:
    def run(r: int) -> None:
        for src, sha, sm3 in sources[r]:
            with open(src, "rb") as f:
                store.put(content_key(prefix, sha), f, size=src.stat().st_size, sha256=sha,
                          sm3=sm3 if with_sm3 else None)
    return run


def get_store(store: ObjectStore, sources: list[list[tuple[Path, str, str]]],
              prefix: str = "originals") -> Callable[[int], None]:
    def run(r: int) -> None:
        for _, sha, _ in sources[r]:
            with store.get(content_key(prefix, sha)) as f:
                while f.read(1 << 20):
                    pass
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds per measurement (best is reported)")
    rounds = parser.parse_args().repeat

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    rows: list[tuple[str, str, float, float | None]] = []
    ratios: list[str] = []
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp:
            work = Path(tmp)
            for label, (size, count) in SIZES.items():
                sources = make_sources(work, size, count, rounds)
                copies = work / f"copies-{size}"
                copies.mkdir()
                fs = FilesystemStore(work / f"fs-{size}")
                fs_sm3 = FilesystemStore(work / f"fs-sm3-{size}")
                s3 = S3Store(f"{host}:{port}", "bench", "bench", f"bench-{size}", secure=False)
                puts: dict[str, Callable[[int], None]] = {
                    COPY: copy_plain(copies, sources, fsync=False),
                    DURABLE: copy_plain(copies, sources, fsync=True),
                    FS: put_store(fs, sources, with_sm3=False),
                    FS_SM3: put_store(fs_sm3, sources, with_sm3=True),
                    S3: put_store(s3, sources, with_sm3=False),
                }
                gets: dict[str, Callable[[int], None]] = {
                    DURABLE: read_plain(copies, sources),
                    FS: get_store(fs, sources),
                    S3: get_store(s3, sources),
                }
                total = size * count / MB
                put = {k: total / v for k, v in _interleaved(puts, rounds).items()}
                get = {k: total / v for k, v in _interleaved(gets, rounds).items()}
                rows += [(label, what, put[what], get.get(what)) for what in puts]
                ratios.append(f"{label}: filesystem put / durable copy = {put[FS] / put[DURABLE]:.2f}, "
                              f"/ page-cache copy = {put[FS] / put[COPY]:.2f}; "
                              f"filesystem get / plain read = {get[FS] / get[DURABLE]:.2f}")
    finally:
        server.stop()

    print(f"object-store throughput, MB/s (best of {rounds} interleaved rounds; "
          f"1 MB x {SIZES['1 MB'][1]}, 10 MB x {SIZES['10 MB'][1]} distinct objects per round)")
    print(f"{'size':<6} {'what':<46} {'put':>8} {'get':>8}")
    for label, what, put, get in rows:
        print(f"{label:<6} {what:<46} {put:>8.0f} {'-' if get is None else f'{get:.0f}':>8}")
    for line in ratios:
        print(line)
    print(f"run took {time.perf_counter() - started:.1f} s")


def _interleaved(runs: dict[str, Callable[[int], None]], rounds: int) -> dict[str, float]:
    """Fastest seconds per variant; each round runs every variant once, so load changes hit all alike."""
    best = dict.fromkeys(runs, float("inf"))
    for r in range(rounds):
        for name, run in runs.items():
            started = time.perf_counter()
            run(r)
            best[name] = min(best[name], time.perf_counter() - started)
    return best


if __name__ == "__main__":
    main()
