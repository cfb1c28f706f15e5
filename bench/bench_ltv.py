"""Benchmark of long-term validation (issue 18): signing at B-B / B-T / B-LT / B-LTA, archive time-stamp renewal
throughput, offline verification.

Cases: a 3-page rendition of 200-dpi A4 JPEG scans, built once per run (the filing's render + sign stages: the
rest of a filing does not depend on the level). TSA, OCSP and CRL are the local development services
(signing.tsa.LocalTsa on 127.0.0.1). Renewal: signing.ltv.renew + SHA-256/SM3 of the result, over --items files
(each a distinct B-LTA file), sequentially in one process; the issue's figure is over 10,000 items
(--items 10000 takes about half an hour on a 2-core machine).

Targets: B-LTA filing p50 <= 2 x B-B filing p50 (local services).

    .venv/bin/python bench/bench_ltv.py [--runs 15] [--items 200] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_signing import a4_scan

from signing.certificates import ensure_dev_pki, load_pki_signer, load_trust_roots
from signing.fixity import digest_bytes
from signing.ltv import fetching_context, renew
from signing.ltv_verify import verify_ltv
from signing.pades import sign_pdf
from signing.rendition import RenditionMetadata, SourceDocument, build_rendition
from signing.tsa import LocalTsa, http_timestamper


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _p(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, round(q * (len(values) - 1)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} cores)")
    port = _free_port()
    pki = ensure_dev_pki(Path(tempfile.mkdtemp()) / "pki", service_url=f"http://127.0.0.1:{port}/")
    signer, roots = load_pki_signer(pki.directory), load_trust_roots(pki.directory)
    scans = [a4_scan(i) for i in range(3)]
    meta = RenditionMetadata(archival_code="J001-YW·2026-D30-TQ-000001", business_serial="YW2026010500001",
                             business_type="提取", retention="定期30年", title="张三提取")
    figures: dict[str, float] = {}
    with LocalTsa(pki, port=port) as service:
        stamper = http_timestamper(service.url)

        def filing(level: str) -> Callable[[], bytes]:
            def run() -> bytes:
                rendition = build_rendition([SourceDocument("申请表", "image/jpeg", data=s) for s in scans], meta)
                return sign_pdf(rendition, signer, timestamper=None if level == "B-B" else stamper, level=level,
                                validation_context=fetching_context(roots) if level in ("B-LT", "B-LTA") else None)
            return run

        lta = b""
        for level in ("B-B", "B-T", "B-LT", "B-LTA"):
            times = []
            for _ in range(args.runs):
                start = time.perf_counter()
                lta = filing(level)()
                times.append(time.perf_counter() - start)
            figures[f"filing_{level}_p50_ms"] = _p(times, 0.5)
            figures[f"filing_{level}_p90_ms"] = _p(times, 0.9)
            print(f"filing (render + sign) {level:5}: p50 {_p(times, 0.5):7.1f} ms  p90 {_p(times, 0.9):7.1f} ms")
        figures["ratio_B-LT_vs_B-B"] = figures["filing_B-LT_p50_ms"] / figures["filing_B-B_p50_ms"]
        figures["ratio_B-LTA_vs_B-B"] = figures["filing_B-LTA_p50_ms"] / figures["filing_B-B_p50_ms"]
        print(f"ratio B-LT / B-B: {figures['ratio_B-LT_vs_B-B']:.2f}x;  B-LTA / B-B: "
              f"{figures['ratio_B-LTA_vs_B-B']:.2f}x (target <= 2.00x)")

        start = time.perf_counter()
        context = fetching_context(roots)  # one per run, as archive.ltv.renew_due does
        for _ in range(args.items):
            digest_bytes(renew(lta, stamper, context))
        elapsed = time.perf_counter() - start
        figures["renewal_items_per_s"] = args.items / elapsed
        print(f"renewal: {args.items} items in {elapsed:.1f} s = {figures['renewal_items_per_s']:.1f} items/s "
              f"(10,000 items: about {10_000 / figures['renewal_items_per_s'] / 60:.0f} min)")

    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        assert verify_ltv(lta, roots).ok
        times.append(time.perf_counter() - start)
    figures["verify_offline_p50_ms"] = statistics.median(times) * 1000
    print(f"verification offline (6 layers): p50 {figures['verify_offline_p50_ms']:.0f} ms  "
          f"p90 {_p(times, 0.9):.0f} ms")
    if args.json:
        print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
