"""Benchmark of the filing-stage four-properties checks (GD, 四性检测) per item, signature validation excluded.

Items: the demo data's filed items (made by the real pipeline: 200-dpi A4 JPEG scans, 2-4 per item) in a
temporary SQLite catalogue and filesystem store. Per item, two figures over --rounds rounds:

- ``checks``: every GD item on a subject already in memory (what filing adds after signing);
- ``load+checks``: reading the item, its originals and rendition back from the catalogue and store, then
  the checks (what `archive check item --skip-signature` does, less the report write).

Signature validation (GD-1-1's PAdES part) is shown apart. No virus scanner is configured (GD-4-2 is
ClamAV's own time). Target: checks p50 <= 50 ms.

    .venv/bin/python bench/bench_checks.py [--rounds 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select

from archive.catalogue.models import ArchiveItem
from archive.checks import gd
from archive.checks.base import REGISTRY, run_items
from archive.context import Context
from archive.settings import load_settings


def percentiles(ms: list[float]) -> dict[str, float]:
    q = statistics.quantiles(ms, n=20)
    return {"p50": round(statistics.median(ms), 1), "p95": round(q[18], 1), "n": len(ms)}


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-checks-") as tmp:
        os.environ.pop("ARCHIVE_DATABASE_URL", None)
        settings = load_settings(data_dir=Path(tmp) / "data")
        from archive.commands.common import ensure_fonds
        from archive.demo import load_demo
        from signing.certificates import ensure_dev_pki

        ensure_dev_pki(settings.pki_path)
        ctx = Context.build(settings)
        ctx.catalogue.upgrade()
        ensure_fonds(ctx)
        load_demo(ctx)
        checks, loaded, signature = [], [], []
        with ctx.catalogue.sessions() as s:
            items = list(s.scalars(select(ArchiveItem)))
            subjects = [gd.item_subject(ctx, s, i, verify_signatures=False) for i in items]
            for subject in subjects:  # warm-up, and every item must pass what it can
                bad = [(i.code, r.detail) for i, r in gd.run_gd(subject)
                       if r.outcome in ("failed", "error") and i.code != "GD-4-1"]
                assert not bad, bad
            for _ in range(args.rounds):
                for item, subject in zip(items, subjects, strict=True):
                    checks.append(timed(lambda subject=subject: gd.run_gd(subject)))
                    loaded.append(timed(lambda item=item: gd.run_gd(
                        gd.item_subject(ctx, s, item, verify_signatures=False))))
            for subject in subjects:
                subject.verify_signatures = True
                signature.append(timed(lambda subject=subject: run_items([REGISTRY["GD-1-1"]], subject)))
        docs = sum(len(sub.originals) for sub in subjects)
        ctx.close()
    result = {"items": len(items), "originals_per_item": round(docs / len(items), 1),
              "checks_ms": percentiles(checks), "load_and_checks_ms": percentiles(loaded),
              "gd_1_1_with_signature_ms": percentiles(signature * 2), "target_p50_ms": 50}
    if args.json:
        print(json.dumps(result))
    else:
        c, lc, sig = result["checks_ms"], result["load_and_checks_ms"], result["gd_1_1_with_signature_ms"]
        print(f"GD checks per item ({result['items']} items, {result['originals_per_item']} originals each, "
              f"{args.rounds} rounds; signature validation excluded)")
        print(f"  checks        p50 {c['p50']:7.1f} ms   p95 {c['p95']:7.1f} ms   (target p50 <= 50 ms)")  # type: ignore[index]
        print(f"  load + checks p50 {lc['p50']:7.1f} ms   p95 {lc['p95']:7.1f} ms")  # type: ignore[index]
        print(f"  GD-1-1 with PAdES validation, for comparison: p50 {sig['p50']:.1f} ms")  # type: ignore[index]
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
