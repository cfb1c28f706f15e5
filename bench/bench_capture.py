"""Capture and filing over HTTP on loopback, and batch separation.

- upload of 3 × ~300 KB 200-dpi A4 JPEGs to an open case: p50 / p95 (target p95 ≤ 200 ms); ``--case-pages N``
  makes each case N pages (the ratio to the floor grows with N: the project's fixed work per filing is shared)
- filing that case without a TSA (PAdES B-B): p50 (target ≤ 250 ms)
- filing with a time stamp from the local development TSA (`archive tsa`, PAdES B-T): p50, next to B-B
- separation of a 300-page stack: pages/s (target ≥ 10) and peak RSS (target ≤ 400 MB), in a child process
- the floor of filing, measured in the same run: the same work in-process with no framework (img2pdf → PDF/A-2b
  save → pyHanko sign → SHA-256 + SM3 → write and fsync), B-B and B-T, and each filing p50 as a ratio of it
  (issue 17: ≥ 0.6); the load average at the start is printed first

- with ``--phases``: the B-B filings' steps timed without a profiler (wall clock in the request thread), p50 each
- with ``--profile FILE``: cProfile of every B-B filing's ``file_case`` (the request thread), saved to FILE and its top
  20 by cumulative time printed

    .venv/bin/python bench/bench_capture.py [--cases 30] [--pages 300] [--case-pages 3] [--phases] [--profile FILE]
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from _common import free_port, pct, scan_jpeg, with_comment

from archive.wiring import timestamper_from_settings

CHILD = """
import sys, time
from archive.capture.separation import open_stack, read_serial
from pathlib import Path
t0, covers = time.perf_counter(), 0
with open_stack(Path(sys.argv[1]), "application/pdf", 200, 100_000_000) as stack:
    for n in range(1, stack.pages + 1):
        covers += read_serial(stack.render(n)) is not None
    pages = stack.pages
dt = time.perf_counter() - t0
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM")).split()[1]
print(pages, covers, dt, int(hwm) // 1024)
"""


def http_bench(cases: int, tmp: Path, profile: Path | None = None, phases: bool = False, case_pages: int = 3) -> None:
    import uvicorn

    from archive.api.app import create_app
    from archive.audit import Actor
    from archive.commands.common import ensure_fonds
    from archive.context import Context
    from archive.identity import add_client
    from archive.settings import load_settings
    from signing.certificates import ensure_dev_pki
    from signing.tsa import LocalTsa

    settings = load_settings(data_dir=tmp / "data")
    ctx = Context.build(settings)
    ctx.catalogue.upgrade()
    ensure_fonds(ctx)
    pki = ensure_dev_pki(settings.pki_path)
    with ctx.catalogue.session() as s:
        _, key = add_client(s, Actor.system("bench"), "bench", ["cases.write", "data.read"])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(context=ctx), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    files = [scan_jpeg(i % 3) for i in range(case_pages)]
    print(f"{case_pages} page JPEGs per case: {', '.join(f'{len(f) // 1024} KB' for f in files[:3])}"
          f"{' …' if case_pages > 3 else ''}")
    floor = Floor(files, ctx.signer, tmp / "floor")
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": key}, timeout=60) as c:
        with _profiled(profile), _phased(ctx, phases):
            up, filing = _file_cases(c, files, "BB", cases, "B-B", between=floor.file)
        floor_bb, floor.durations = floor.durations, []
        with LocalTsa(pki) as tsa:  # the running app's settings now name the TSA: filings are B-T
            # B-T pinned: the long-term levels (B-LT/B-LTA) are measured by bench_ltv.py
            ctx.settings = settings.model_copy(update={"tsa_url": tsa.url, "ltv_level": "B-T"})
            ctx._timestamper = timestamper_from_settings(ctx.settings)  # the context builds it once; rebuild it
            floor.timestamper = ctx.timestamper
            floor.file()  # the first time stamp warms the TSA client up
            floor.durations = []
            _, stamped = _file_cases(c, files, "BT", cases, "B-T", between=floor.file)
            floor_bt = floor.durations
    server.should_exit = True
    print(f"{f'upload {len(files)} files':<17}p50 {pct(up, 50):7.1f} ms   p95 {pct(up, 95):7.1f} ms   "
          f"{'(target p95 ≤ 200)' if len(files) == 3 else '(the target is for 3 files)'}")
    for name, measured, least in (("B-B", filing, floor_bb), ("B-T", stamped, floor_bt)):
        print(f"filing ({name})     p50 {pct(measured, 50):7.1f} ms   p95 {pct(measured, 95):7.1f} ms   "
              f"floor p50 {pct(least, 50):7.1f} ms   ratio floor/project {pct(least, 50) / pct(measured, 50):.2f} "
              f"(target ≥ 0.6{', p50 ≤ 250' if name == 'B-B' else ', local TSA'})")


@contextmanager
def _profiled(out: Path | None) -> Iterator[None]:
    """With ``out``: every filing's ``file_case`` (in the request's worker thread) under one cProfile, saved to
    ``out`` and its top 20 by cumulative time printed. The profiler slows what it watches: read its shares, and
    take the p50 figures from a run without it."""
    if out is None:
        yield
        return
    import cProfile
    import pstats

    from archive.api.routes import cases

    prof, plain = cProfile.Profile(), cases.file_case

    def file_case(*args: Any, **kwargs: Any) -> Any:
        prof.enable()  # this thread only
        try:
            return plain(*args, **kwargs)
        finally:
            prof.disable()

    cases.file_case = file_case  # type: ignore[assignment]
    try:
        yield
    finally:
        cases.file_case = plain
        prof.dump_stats(out)
        pstats.Stats(str(out)).sort_stats("cumulative").print_stats(20)


@contextmanager
def _phased(ctx: Any, on: bool) -> Iterator[None]:
    """With ``on``: the filing's steps wrapped in wall-clock timers (no profiler: the figures are the real ones),
    p50 per filing printed at the end. Steps nest: ``build`` holds checks, render, sign and store. ``sign`` includes
    the signed file's digests (signing.pades.sign_and_digest); ``originals' digests`` is time on the helper threads
    beside the render, not on the filing's path."""
    if not on:
        yield
        return
    from archive import audit, filing, ltv
    from archive.api.routes import cases
    from archive.checks import gd

    times: dict[str, list[float]] = {}
    current: dict[str, float] = {}
    patched: list[tuple[object, str, object]] = []

    def timed(owner: object, name: str, label: str | Callable[..., str]) -> None:
        plain = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return plain(*args, **kwargs)
            finally:
                key = label(*args, **kwargs) if callable(label) else label
                current[key] = current.get(key, 0.0) + time.perf_counter() - t0

        patched.append((owner, name, plain))
        setattr(owner, name, wrapper)

    timed(cases, "file_case", "route: file_case")
    timed(cases, "case_out", "route: case_out")
    timed(filing, "close_case", "filing (close_case)")
    timed(filing, "_build", "  build")
    timed(gd, "run_gd", lambda *a, phase="", **k: f"    GD {phase}")
    timed(filing, "build_rendition", "    render")
    timed(gd, "load_originals", "    read originals")
    timed(filing, "missing_materials", "    materials list")
    timed(filing, "peek", "    档号 predicted")
    timed(filing, "get_case", "    case read")
    timed(gd, "FilingSubject", "    GD subject")
    timed(ltv, "sign_rendition", "    sign")
    timed(filing, "digest_bytes", "    originals' digests")
    timed(ctx.store, "put", "    store put")
    timed(filing, "_commit", "  commit (before COMMIT)")
    timed(ctx.store, "extend_retentions", "    retention locks")
    timed(filing, "add_report", "    GD report")
    timed(audit, "record_many", "    audit events")
    timed(filing, "allocate", "    件号")
    plain_items = gd.run_items

    def run_items(items: Any, subject: Any) -> Any:  # each GD item on its own line, the slowest shown
        out = []
        for item in items:
            t0 = time.perf_counter()
            out += plain_items([item], subject)
            current[f"      {item.code}"] = current.get(f"      {item.code}", 0.0) + time.perf_counter() - t0
        return out

    patched.append((gd, "run_items", plain_items))
    gd.run_items = run_items
    plain_file, plain_out = cases.file_case, cases.case_out

    def flush() -> None:
        for key, seconds in current.items():
            times.setdefault(key, []).append(seconds)
        current.clear()

    def file_case(*args: Any, **kwargs: Any) -> Any:
        current.clear()  # the upload before it also stored objects
        return plain_file(*args, **kwargs)

    def case_out(*args: Any, **kwargs: Any) -> Any:
        try:
            return plain_out(*args, **kwargs)
        finally:
            flush()  # the filing's answer is the last step

    cases.file_case, cases.case_out = file_case, case_out  # type: ignore[assignment]
    try:
        yield
    finally:
        cases.file_case, cases.case_out = plain_file, plain_out  # type: ignore[assignment]
        for owner, name, plain in reversed(patched):
            setattr(owner, name, plain)
        order = ["route: file_case", "route: case_out", "filing (close_case)", "  build", "    case read",
                 "    materials list", "    档号 predicted", "    read originals", "    GD subject", "    GD metadata",
                 "    render", "    originals' digests", "    sign", "    GD content", "    store put",
                 "  commit (before COMMIT)", "    件号", "    retention locks", "    GD report", "    audit events"]
        items = sorted((k for k in times if k.strip().startswith("GD-")), key=lambda k: -pct(times[k], 50))
        for key in order + items[:8] + sorted(set(times) - set(order) - set(items)):
            if key in times:
                print(f"  {key:<28} p50 {pct(times[key], 50):7.1f} ms")


class Floor:
    """The floor of one filing: the same work done with the libraries alone, in this process, no framework:
    img2pdf → PDF/A-2b save (pikepdf validates what it writes) → pyHanko PAdES signature in a reserved /Contents
    (with ``timestamper``: B-T) → SHA-256 + SM3 → write the file and fsync it and its directory. Run between the
    project's filings, so both see the same machine; :meth:`file` appends its duration (seconds) to ``durations``."""

    def __init__(self, files: list[bytes], signer: object, out: Path) -> None:
        self.files, self.signer, self.out = files, signer, out
        self.timestamper: object = None
        self.durations: list[float] = []
        out.mkdir(parents=True, exist_ok=True)
        self.file()  # warm up (fonts, ICC profile, the signer's key)
        self.durations.clear()

    def file(self) -> None:
        import img2pdf
        import pikepdf
        import pikepdf.pdfa as pdfa
        from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
        from pyhanko.sign import fields, signers

        from signing.fixity import digest_bytes
        from signing.pades import reserved_size

        meta = signers.PdfSignatureMetadata(field_name="Floor", subfilter=fields.SigSeedSubFilter.PADES,
                                            md_algorithm="sha256")
        pages = [with_comment(f, f"floor {len(self.durations)} {time.time()}") for f in self.files]
        t0 = time.perf_counter()
        with pikepdf.open(io.BytesIO(img2pdf.convert(pages))) as pdf:
            buf = io.BytesIO()
            pdfa.save(pdf, buf, "2b")
        signed = io.BytesIO()
        signers.PdfSigner(meta, self.signer, timestamper=self.timestamper).sign_pdf(  # type: ignore[arg-type]
            IncrementalPdfFileWriter(io.BytesIO(buf.getvalue()), strict=False), output=signed,
            # the /Contents size the project reserves: without one pyHanko signs twice (a dry run to learn the
            # size), about 8 ms here, which made earlier floors higher than the least work
            bytes_reserved=reserved_size(self.signer, self.timestamper is not None))  # type: ignore[arg-type]
        data = signed.getvalue()
        digests = digest_bytes(data)
        with (self.out / f"{digests.sha256}.pdf").open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        fd = os.open(self.out, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(fd)
        os.close(fd)
        self.durations.append(time.perf_counter() - t0)


def _file_cases(c: httpx.Client, files: list[bytes], tag: str, cases: int, level: str,
                between: Callable[[], object] | None = None) -> tuple[list[float], list[float]]:
    """Open ``cases`` cases, upload its pages and file it: (upload, filing) durations in seconds.
    ``between`` runs after each filing (the floor's filing, so both see the same load)."""
    up, filing = [], []
    for i in range(cases):
        serial = f"BENCH{tag}{i:06d}"
        c.post("/api/v1/cases", json={"serial": serial, "business_type": "GJ09", "unit": {"name": "示例单位"},
                                      "branch": "BR01", "clerk": "bench"}).raise_for_status()
        variant = [with_comment(f, f"case {tag}{i}") for f in files]  # distinct objects, the same pages
        t0 = time.perf_counter()
        r = c.post(f"/api/v1/cases/{serial}/documents",
                   files=[("files", (f"p{n}.jpg", d, "image/jpeg")) for n, d in enumerate(variant)],
                   data={"material_type": ["payroll_list", "bank_receipt", *["other"] * (len(files) - 2)]})
        up.append(time.perf_counter() - t0)
        assert r.status_code == 201, r.text
        t0 = time.perf_counter()
        r = c.post(f"/api/v1/cases/{serial}/close", json={
            "outcome": "approved", "trail": [{"action": "办结", "person": "bench",
                                              "at": "2026-11-23T10:00:00+08:00"}]})
        filing.append(time.perf_counter() - t0)
        r.raise_for_status()
        if between is not None:
            between()
        assert r.json()["item"]["signature"]["level"] == level, r.text
    return up, filing


def separation_bench(pages: int, tmp: Path) -> None:
    import img2pdf
    import pypdfium2 as pdfium

    from archive.capture.cover_sheet import ChecklistLine, render

    plain = [scan_jpeg(i) for i in range(5)]
    covers = []
    for i in range(pages // 10):
        doc = pdfium.PdfDocument(render(f"STACK{i:06d}", "演示", None, "BR01", [ChecklistLine("申请表", True, False)],
                                        "中心"))
        buf = io.BytesIO()
        doc[0].render(scale=200 / 72, grayscale=True).to_pil().save(buf, "JPEG", quality=70, dpi=(200, 200))
        doc.close()
        covers.append(buf.getvalue())
    sequence = [covers[i // 10] if i % 10 == 0 else plain[i % 5] for i in range(pages)]
    path = tmp / "stack.pdf"
    path.write_bytes(img2pdf.convert(sequence))
    out = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True)
    n, found, seconds, rss = out.stdout.split()
    print(f"separation       {int(n)} pages, {found} covers found of {pages // 10}: "
          f"{int(n) / float(seconds):.1f} pages/s (target ≥ 10), peak RSS {rss} MB (target ≤ 400), "
          f"stack {path.stat().st_size // 1024**2} MB")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--cases", type=int, default=30)
    p.add_argument("--pages", type=int, default=300)
    p.add_argument("--case-pages", type=int, default=3, help="pages (scans) per filed case, at least 2")
    p.add_argument("--phases", action="store_true", help="time the B-B filings' steps (no profiler), p50 each")
    p.add_argument("--profile", type=Path, help="cProfile the B-B filings into this file and print the top 20")
    args = p.parse_args(argv)
    print("load average at start: {:.2f} {:.2f} {:.2f} ({} cores)".format(*os.getloadavg(), os.cpu_count()))
    with tempfile.TemporaryDirectory() as tmp:
        http_bench(args.cases, Path(tmp), args.profile, args.phases, max(2, args.case_pages))
        if args.pages:  # --pages 0: filing only
            separation_bench(args.pages, Path(tmp))
    print(f"(bench process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB)")


if __name__ == "__main__":
    main()
