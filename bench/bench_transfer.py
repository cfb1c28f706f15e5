"""Benchmark of transfer packages (移交): export of --items items as a BagIt zip of signed EEPs, then receipt.

Fixture: --distinct real renditions (a 200-dpi A4 JPEG scan → PDF/A-2b → PAdES B-B, about 300 KB each,
made by the real signing pipeline), shared round-robin by --items catalogue rows written straight into a
fresh SQLite catalogue (filing 1,000 cases through the API would time the filing, not the transfer).
Every item still gets its own EEP, built and signed at export, Base64 inside.

Figures: the whole export (EEPs + 目录文件 + 登记表 + BagIt tags into a zip, read back for the YJ checks,
put into the store), its two halves timed separately (writing the zip; the YJ checks on it), and the
receipt of the same zip (digest, all YJ checks, store, catalogue row). MB/s are over the zip's bytes
and over the EEP payload (content Base64-encoded is 4/3 of the renditions).

    .venv/bin/python bench/bench_transfer.py [--items 1000] [--distinct 20] [--json]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from archive.audit import Actor
from archive.catalogue.models import ArchiveItem, Case, Fonds
from archive.context import Context
from archive.retention import bagit, transfer
from archive.settings import load_settings
from bench.bench_signing import a4_scan
from signing.certificates import ensure_dev_pki
from signing.fixity import digest_bytes, digest_stream
from signing.pades import sign_pdf
from signing.rendition import RenditionMetadata, SourceDocument, build_rendition
from storage.base import content_key

MB = 1024 * 1024
ACTOR = Actor("system", "bench")


def renditions(ctx: Context, n: int) -> list[bytes]:
    out = []
    for i in range(n):
        meta = RenditionMetadata(archival_code=f"J001-YW·2026-D30-TQ-{i + 1:06d}", business_serial=f"B{i}",
                                 business_type="提取", retention="定期30年", title="张三提取", fonds_name="中心",
                                 dates=(datetime(2026, 1, 5).date(), datetime(2026, 1, 5).date()), parties=["张三"])
        pdf = build_rendition([SourceDocument(title="申请表", media_type="image/jpeg", data=a4_scan(i),
                                              material_type="申请表")], meta)
        out.append(sign_pdf(pdf, ctx.signer))
    return out


def populate(ctx: Context, items: int, pdfs: list[bytes]) -> None:
    keys = []
    for pdf in pdfs:
        d = digest_bytes(pdf)
        key = content_key("renditions", d.sha256)
        ctx.store.put(key, io.BytesIO(pdf), size=d.size, sha256=d.sha256, sm3=d.sm3)
        keys.append((key, d))
    now = datetime(2026, 1, 5, 8, tzinfo=UTC)
    trail = [{"action": "受理", "person": "clerk01", "at": now.isoformat()},
             {"action": "办结", "person": "clerk01", "at": now.isoformat()}]
    with ctx.catalogue.session() as s:
        fonds = s.scalar(select(Fonds))
        assert fonds is not None
        cases, its = [], []
        for n in range(1, items + 1):
            key, d = keys[n % len(keys)]
            cases.append({"id": n, "serial": f"YW2026{n:09d}", "fonds_id": fonds.id, "category": "TQ",
                          "business_type": "TQ01", "status": "filed", "branch": "本部", "clerk": "clerk01",
                          "applicant_name": "张三", "accepted_at": now, "closed_at": now, "trail": trail})
            its.append({"case_id": n, "archival_code": f"J001-YW·2026-D30-TQ-{n:06d}", "fonds_code": "J001",
                        "year": 2026, "retention_code": "D30", "category": "TQ", "number": n,
                        "trigger": "BUSINESS_CLOSED", "schedule_version": "bench", "status": "filed",
                        "rendition_key": key, "rendition_sha256": d.sha256, "rendition_sm3": d.sm3,
                        "signature": {"level": "B-B"}, "filed_at": now})
        s.execute(insert(Case), cases)
        s.execute(insert(ArchiveItem), its)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--distinct", type=int, default=20, help="distinct real renditions shared by the items")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        from archive.commands.common import ensure_fonds

        settings = load_settings(data_dir=Path(tmp) / "data")
        ensure_dev_pki(settings.pki_path)
        ctx = Context.build(settings)
        ctx.catalogue.upgrade()
        ensure_fonds(ctx)
        pdfs = renditions(ctx, args.distinct)
        populate(ctx, args.items, pdfs)
        content = sum(len(pdfs[n % len(pdfs)]) for n in range(1, args.items + 1))
        selection = transfer.Selection(category="TQ")

        # The two halves on their own: writing the zip, then the YJ checks on it.
        with ctx.catalogue.sessions() as s:
            items = transfer.select_items(s, selection)
            zpath = Path(tmp) / "write.zip"
            began = time.perf_counter()
            with zipfile.ZipFile(zpath, "w", allowZip64=True) as z:
                built = transfer.write_package(ctx, items, transfer._ZipSink(z, "P/", datetime.now(UTC)),
                                               package_no="P", receiver="档案馆", created_by="bench",
                                               created=datetime.now(UTC).replace(microsecond=0))
            write_s = time.perf_counter() - began
        began = time.perf_counter()
        with zpath.open("rb") as f:
            zd = digest_stream(f)
        with bagit.open_bag(zpath, settings) as bag:
            results = transfer.run_checks(ctx, bag, side="export", actor=ACTOR, received=zd, sender_digest=None)
        checks_s = time.perf_counter() - began
        assert not transfer.failed_codes(results), transfer.failed_codes(results)

        # The whole export as the API and CLI run it.
        began = time.perf_counter()
        with ctx.catalogue.session() as s:
            row = transfer.export(ctx, s, ACTOR, selection)
            zip_size, payload, status, key = row.zip_size or 0, row.payload_bytes, row.status, row.zip_key
        export_s = time.perf_counter() - began
        assert status == "released"

        received = Path(tmp) / "received.zip"
        with ctx.store.get(key or "") as f:
            received.write_bytes(f.read())
        began = time.perf_counter()
        with ctx.catalogue.session() as s:
            receipt = transfer.receive(ctx, s, ACTOR, received, source="bench")
            receipt_status = receipt.status
        receive_s = time.perf_counter() - began
        assert receipt_status == "accepted"
        ctx.close()

    figures = {
        "items": args.items, "distinct_renditions": args.distinct, "content_mb": round(content / MB, 1),
        "eep_payload_mb": round(payload / MB, 1), "zip_mb": round(zip_size / MB, 1),
        "export_s": round(export_s, 2), "export_zip_mb_s": round(zip_size / MB / export_s, 1),
        "export_payload_mb_s": round(payload / MB / export_s, 1), "export_items_s": round(args.items / export_s, 1),
        "write_only_s": round(write_s, 2), "write_only_payload_mb_s": round(built.payload_bytes / MB / write_s, 1),
        "yj_checks_s": round(checks_s, 2), "yj_checks_payload_mb_s": round(payload / MB / checks_s, 1),
        "receive_s": round(receive_s, 2), "receive_payload_mb_s": round(payload / MB / receive_s, 1),
    }
    if args.json:
        print(json.dumps(figures))
        return
    print(f"transfer package of {args.items} items ({args.distinct} distinct real renditions, "
          f"{figures['content_mb']} MB of content; EEP payload {figures['eep_payload_mb']} MB; "
          f"zip {figures['zip_mb']} MB)")
    print(f"  export (write + YJ checks + store): {export_s:6.2f} s  {figures['export_payload_mb_s']:6.1f} MB/s payload"
          f"  {figures['export_zip_mb_s']:6.1f} MB/s zip  {figures['export_items_s']:6.1f} items/s")
    print(f"    writing the zip only:            {write_s:6.2f} s  {figures['write_only_payload_mb_s']:6.1f} MB/s")
    print(f"    YJ checks on it only:            {checks_s:6.2f} s  {figures['yj_checks_payload_mb_s']:6.1f} MB/s")
    print(f"  receive (digest + YJ + store):     {receive_s:6.2f} s  {figures['receive_payload_mb_s']:6.1f} MB/s")


if __name__ == "__main__":
    main()
