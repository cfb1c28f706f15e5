"""Benchmark of the signing package: per-item rendition, signing, verification; fixity throughput.

Item: 3 pages of 200-dpi A4 JPEG scans (about 300 KB each). Figures are p50/p90 over --runs runs.
Fixity: SHA-256 + SM3 in one streaming pass over a --mb MB file (default 200 MB to stay under a
minute; the issue's target is stated for 500 MB: use --mb 500), beside hashlib hashing the same bytes
in memory in the same run; best of --repeat rounds each.

Targets (2-core machine): rendition + B-B signature p50 <= 120 ms; one-pass streaming rate >= 0.8 x
the slower digest's in-memory rate.

    .venv/bin/python bench/bench_signing.py [--runs 20] [--mb 200] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from signing.certificates import ensure_dev_pki, load_pki_signer, load_trust_roots
from signing.fixity import _new_sm3, digest_stream
from signing.pades import sign_pdf
from signing.rendition import RenditionMetadata, SourceDocument, build_rendition
from signing.tsa import LocalTsa, http_timestamper
from signing.validate import verify_pdf

A4_200DPI = (1654, 2339)
MB = 1024 * 1024


def a4_scan(seed: int) -> bytes:
    """A 200-dpi A4 'scan': ruled text-like lines, a stamp box and sensor noise; JPEG of about 300 KB."""
    image = Image.new("RGB", A4_200DPI, (250, 250, 245))
    draw = ImageDraw.Draw(image)
    for y in range(150 + seed, 2200, 48):
        for x in range(120, 1500, 90):
            draw.rectangle([x, y, x + 60 + (x * y + seed) % 25, y + 14], fill=(35, 35, 40))
    draw.ellipse([1150, 1900, 1450, 2200], outline=(200, 20, 20), width=10)
    image = Image.blend(image, Image.effect_noise(A4_200DPI, 18).convert("RGB"), 0.08)
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=66, dpi=(200, 200))
    return buf.getvalue()


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """p50 and p90 in milliseconds (after one warm-up call)."""
    fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.9))]


def per_item(runs: int, workdir: Path) -> dict[str, object]:
    pki = ensure_dev_pki(workdir / "pki")
    signer = load_pki_signer(pki.directory)
    roots = load_trust_roots(pki.directory)
    scans = [a4_scan(seed) for seed in (0, 1, 4)]
    docs = [SourceDocument(f"材料{i + 1}", "image/jpeg", data=s, material_type="申请表") for i, s in enumerate(scans)]
    meta = RenditionMetadata("J001-YW·2024-D30-GJ-000001", "LS2024030100017", "住房公积金提取", "D30",
                             "张三 提取住房公积金", parties=["张三"])
    rendition = build_rendition(docs, meta)
    results: dict[str, object] = {"jpeg_kb": [round(len(s) / 1024) for s in scans],
                                  "rendition_kb": round(len(rendition) / 1024)}
    with LocalTsa(pki) as tsa:
        stamper = http_timestamper(tsa.url)
        signed_bt = sign_pdf(rendition, signer, timestamper=stamper)
        results["rendition_ms"] = timed(lambda: build_rendition(docs, meta), runs)
        results["sign_bb_ms"] = timed(lambda: sign_pdf(rendition, signer), runs)
        results["sign_bt_ms"] = timed(lambda: sign_pdf(rendition, signer, timestamper=stamper), runs)
        results["rendition_plus_bb_ms"] = timed(lambda: sign_pdf(build_rendition(docs, meta), signer), runs)
        results["verify_bt_ms"] = timed(lambda: verify_pdf(signed_bt, roots), runs)
    assert verify_pdf(signed_bt, roots).ok
    return results


def fixity(mb: int, workdir: Path, repeat: int) -> dict[str, object]:
    """Best of ``repeat`` rounds for each way of hashing the same bytes."""
    path = workdir / "fixity.bin"
    block = os.urandom(16 * MB)
    with path.open("wb") as f:
        for _ in range(mb // 16):
            f.write(block)
        f.write(block[: (mb % 16) * MB])
    size = path.stat().st_size

    def best(fn: Callable[[], object]) -> float:
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    def stream() -> None:
        with path.open("rb") as f:
            digest_stream(f)

    def sm3_in_memory() -> None:
        h = _new_sm3()
        h.update(data)
        h.hexdigest()

    stream_s = best(stream)
    data = path.read_bytes()
    sha_s = best(lambda: hashlib.sha256(data).hexdigest())
    sm3_s = best(sm3_in_memory)
    sm3_impl = type(_new_sm3()).__name__
    path.unlink()

    rate = {k: size / MB / s for k, s in (("stream_both", stream_s), ("sha256_mem", sha_s), ("sm3_mem", sm3_s))}
    slower = min(rate["sha256_mem"], rate["sm3_mem"])
    return {"mb": round(size / MB), "sm3_impl": sm3_impl, **{f"{k}_mb_s": round(v) for k, v in rate.items()},
            "ratio_vs_slower_in_memory": round(rate["stream_both"] / slower, 3),
            "ideal_one_pass_ratio": round((1 / (1 / rate["sha256_mem"] + 1 / rate["sm3_mem"])) / slower, 3)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="runs per per-item figure (default 20)")
    parser.add_argument("--mb", type=int, default=200, help="fixity file size in MB (default 200; target: 500)")
    parser.add_argument("--repeat", type=int, default=3, help="fixity: best of this many rounds (default 3)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-signing-") as tmp:
        result = {"per_item": per_item(args.runs, Path(tmp)), "fixity": fixity(args.mb, Path(tmp), args.repeat),
                  "cpus": os.cpu_count()}
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return
    item = result["per_item"]
    print(f"item: 3 × A4 200-dpi JPEG {item['jpeg_kb']} KB → rendition {item['rendition_kb']} KB;"
          f" {args.runs} runs, p50 / p90 ms")
    for key in ("rendition_ms", "sign_bb_ms", "sign_bt_ms", "rendition_plus_bb_ms", "verify_bt_ms"):
        p50, p90 = item[key]  # type: ignore[index]
        target = "   (target p50 ≤ 120 ms)" if key == "rendition_plus_bb_ms" else ""
        print(f"  {key[:-3]:<22} {p50:7.1f} {p90:7.1f}{target}")
    fx = result["fixity"]
    print(f"fixity over {fx['mb']} MB (SM3 via {fx['sm3_impl']}), best of {args.repeat}, MB/s:")  # type: ignore[index]
    print(f"  SHA-256 + SM3, one streaming pass from file  {fx['stream_both_mb_s']}")  # type: ignore[index]
    print(f"  SHA-256 in memory (hashlib)                  {fx['sha256_mem_mb_s']}")  # type: ignore[index]
    print(f"  SM3 in memory                                {fx['sm3_mem_mb_s']}")  # type: ignore[index]
    print(f"  ratio one-pass / slower in-memory digest     {fx['ratio_vs_slower_in_memory']}"  # type: ignore[index]
          f"   (target ≥ 0.8; ideal for sequential hashing {fx['ideal_one_pass_ratio']})")  # type: ignore[index]


if __name__ == "__main__":
    main()
