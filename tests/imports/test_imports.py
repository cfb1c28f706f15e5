"""Historical imports (issue 20): scan → dry-run report → approve → run (resumable) → reconcile, sample, hand-over."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from archive import jobs
from archive.audit import Actor
from archive.catalogue.models import (
    ArchivalCodeSequence,
    ArchiveItem,
    AuditEvent,
    Case,
    CheckReport,
    CheckResult,
    Document,
    ImportItem,
)
from archive.checks import gd
from archive.checks.base import CheckItem, Result, Stage, items_of
from archive.context import Context
from archive.errors import Conflict, InvalidInput
from archive.imports import after, build, job
from archive.imports.approval import approve, make_report
from archive.imports.profile import load_profile
from archive.imports.scan import read_manifest, scan
from archive.permissions import ROLE_PERMISSIONS, Permission
from signing.pdfa import pdfa_problems
from tests.helpers import add_user, login
from tests.imports.delivery import PROFILE, code, make_delivery, row

ACTOR = Actor("system", "cli:tester")


def _setup(tmp_path: Path, rows: list[dict[str, str]], profile: str = PROFILE, pages: int = 3) -> tuple[Path, Path]:
    (tmp_path / "profile.toml").write_text(profile, encoding="utf-8")
    return make_delivery(tmp_path / "delivery", rows, pages=pages), tmp_path / "profile.toml"


def _scan(tmp_path: Path, delivery: Path, profile_path: Path) -> Path:
    prof, digest = load_profile(profile_path)
    manifest = tmp_path / "d.manifest.jsonl"
    scan(prof, digest, delivery, manifest)
    return manifest


def _findings(report: dict, key: str) -> set[str]:
    return {f["code"] for e in report["failing"] + report["warnings"] if e["key"] == key for f in e["findings"]}


def test_scan_and_dry_run_name_every_fault_without_crashing(ctx: Context, tmp_path: Path) -> None:
    rows = [row(1), row(2), row(3, YS="5"), row(4, ZJHM="110105196501150017"), row(5, BGQX="很久"),
            row(6, 类别="未知业务"), row(7, DH="J001-YW·2015-X-TQ-7"), row(8), row(8), row(10)]
    delivery, profile_path = _setup(tmp_path, rows)
    (delivery / "2015" / code(2) / "0002.jpg").unlink()  # a page missing from the folder
    (delivery / "2015" / code(8) / "0003.jpg").write_bytes(b"\xff\xd8 not really a jpeg")  # corrupt image
    (delivery / "2015" / "J001-YW·2015-D30-TQ-000099").mkdir()  # a folder without a row
    (delivery / "2015" / "J001-YW·2015-D30-TQ-000099" / "0001.jpg").write_bytes(
        (delivery / "2015" / code(1) / "0001.jpg").read_bytes())
    os.symlink("/etc", delivery / "2015" / "escape")  # a link out of the delivery
    (delivery / "2015" / code(10) / "0003.jpg").write_bytes((delivery / "2015" / code(10) / "0001.jpg").read_bytes())
    manifest = _scan(tmp_path, delivery, profile_path)
    lines = list(read_manifest(manifest))
    assert lines[0]["type"] == "header" and lines[-1]["type"] == "summary"
    item1 = next(x for x in lines if x.get("key") == code(1))
    assert [f[0] for f in item1["files"]] == ["0001.jpg", "0002.jpg", "0003.jpg"] and len(item1["files"][0][2]) == 64

    row_ = make_report(ctx, ACTOR, manifest, workers=1)
    report = json.loads(Path(row_.report_path).read_text(encoding="utf-8"))
    assert Path(row_.report_path).with_suffix(".xlsx").is_file()
    pdf = pdfium.PdfDocument(Path(row_.report_path).with_suffix(".pdf"))
    text = "".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
    assert "存量档案导入预检报告" in text and "page_missing" in text and code(2) in text and "缺页" in text
    assert _findings(report, code(1)) == set()
    assert "page_missing" in _findings(report, code(2))
    assert "page_count_mismatch" in _findings(report, code(3))
    assert "id_number_invalid" in _findings(report, code(4))
    assert "retention_unknown" in _findings(report, code(5))
    assert "business_type_unknown" in _findings(report, code(6))
    assert "code_invalid" in _findings(report, "J001-YW·2015-X-TQ-7")
    assert "code_duplicate" in _findings(report, code(8))
    assert "image_corrupt" in _findings(report, code(8))
    assert "duplicate_page" in _findings(report, code(10))  # a warning: still importable
    delivery_codes = {f["code"] for f in report["delivery_findings"]}
    assert {"folder_without_row", "link_in_delivery"} <= delivery_codes
    assert report["counts"]["importable"] == 2 and report["counts"]["items"] == 10
    with ctx.catalogue.reading() as r:  # nothing archived by a dry run
        assert r.scalar(select(func.count()).select_from(ArchiveItem)) == 0


def test_wrong_encoding_and_malformed_sheet_are_findings(ctx: Context, tmp_path: Path) -> None:
    delivery, profile_path = _setup(tmp_path, [row(1)])
    (delivery / "目录.csv").write_bytes(b"DH,TM\n" + "J001,张三\n".encode("utf-16"))
    report = json.loads(Path(make_report(ctx, ACTOR, _scan(tmp_path, delivery, profile_path), workers=1)
                             .report_path).read_text(encoding="utf-8"))
    assert report["blocked"] and "catalogue_encoding" in report["by_code"]
    bad = tmp_path / "xlsx"
    bad.mkdir()
    (bad / "目录.xlsx").write_bytes(b"PK\x03\x04 broken zip")
    (tmp_path / "p2.toml").write_text(PROFILE.replace("目录.csv", "目录.xlsx"), encoding="utf-8")
    prof, digest = load_profile(tmp_path / "p2.toml")
    m = tmp_path / "x.manifest.jsonl"
    scan(prof, digest, bad, m)
    assert any(x.get("code") == "catalogue_unreadable" for x in read_manifest(m))


def test_path_outside_delivery_is_refused(ctx: Context, tmp_path: Path) -> None:
    profile = PROFILE.replace('layout = "{年度}/{档号}"', 'layout = "{题名}"')
    delivery, profile_path = _setup(tmp_path, [row(1, TM="../../etc")], profile=profile)
    lines = list(read_manifest(_scan(tmp_path, delivery, profile_path)))
    item = next(x for x in lines if x["type"] == "item")
    assert [f["code"] for f in item["findings"]] == ["path_outside_delivery"] and item["files"] == []


def test_import_runs_only_from_an_approved_report_resumes_and_reruns_change_nothing(ctx: Context,
                                                                                   tmp_path: Path) -> None:
    rows = [row(n) for n in range(1, 6)] + [row(6, YS="9")]
    delivery, profile_path = _setup(tmp_path, rows)
    manifest = _scan(tmp_path, delivery, profile_path)
    report = make_report(ctx, ACTOR, manifest, workers=1)
    with pytest.raises(Conflict) as refused:
        job.start(ctx, ACTOR, manifest, report.id)
    assert refused.value.code == "import_report_not_approved"
    with ctx.catalogue.session() as s:
        approve(ctx, s, ACTOR, report.id)
    job_id = job.start(ctx, ACTOR, manifest, report.id)

    # a crash after the first chunk: the second chunk's build raises mid-way
    calls = {"n": 0}
    real = job._catalogue

    def crashing(*args: object) -> int:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args)  # type: ignore[arg-type]

    job.CHUNK, saved = 2, job.CHUNK
    try:
        job._catalogue = crashing  # type: ignore[assignment]
        with pytest.raises(KeyboardInterrupt):
            job.run(ctx, ACTOR, job_id, pool=False)
        job._catalogue = real  # type: ignore[assignment]
        mid = job.counts(ctx, job_id)
        assert mid.get("catalogued") == 2 and mid.get("pending") == 3
        final = job.run(ctx, ACTOR, job_id, workers=1)  # resumed, through the process pool
    finally:
        job.CHUNK, job._catalogue = saved, real  # type: ignore[assignment]
    assert final == {"indexed": 5, "excluded": 1}
    with ctx.catalogue.reading() as r:
        items = r.scalars(select(ArchiveItem).order_by(ArchiveItem.number)).all()
        assert [i.archival_code for i in items] == [code(n) for n in range(1, 6)]
        assert r.scalar(select(func.count()).select_from(Document)) == 15
        case = r.scalar(select(Case).where(Case.id == items[0].case_id))
        assert case is not None and case.trail and "某数字化服务公司" in case.trail[-1]["opinion"]
        seq = r.scalar(select(ArchivalCodeSequence.last_number).where(ArchivalCodeSequence.category == "TQ"))
        assert seq == 5  # born-digital filings of the class continue after the kept 档号
        assert items[0].expiry_date is not None and items[0].retention_code == "D30"
        events = r.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "item.import"))
        assert events == 5
        key = items[0].rendition_key or ""
    rendition = ctx.store.read_bytes(key)
    assert rendition.startswith(b"%PDF") and b"/ByteRange" in rendition  # a signed PDF
    assert ctx.store.stat(key).retain_until is not None  # object lock from the retention
    with ctx.catalogue.reading() as r:
        before = (r.scalar(select(func.count()).select_from(AuditEvent)),
                  r.scalar(select(func.count()).select_from(ArchiveItem)))
    assert job.run(ctx, ACTOR, job_id) == final  # a completed import: nothing changes
    assert job.start(ctx, ACTOR, manifest, report.id) == job_id
    with ctx.catalogue.reading() as r:
        assert (r.scalar(select(func.count()).select_from(AuditEvent)),
                r.scalar(select(func.count()).select_from(ArchiveItem))) == before

    rec = after.reconcile(ctx, job_id)
    assert rec["balanced"] and rec["archive"] == {"rows": 5, "pages": 15, "bytes": rec["archive"]["bytes"]}
    assert rec["left_out"]["rows"] == 1 and rec["differences"][0]["key"] == code(6)
    sample = after.draw_sample(ctx, ACTOR, job_id, 2, seed=1)
    assert len(sample) == 2
    keys = [r["key"] for r in after.sample_rows(ctx, job_id)]
    with pytest.raises(InvalidInput):
        after.record_verdict(ctx, ACTOR, job_id, keys[0], "fail", None)
    after.record_verdict(ctx, ACTOR, job_id, keys[0], "pass", None)
    assert after.sample_rows(ctx, job_id)[0]["verdict"] == "pass"
    assert after.handover_pdf(ctx, job_id).startswith(b"%PDF")


def test_renumber_keeps_the_historical_code_as_original(ctx: Context, tmp_path: Path) -> None:
    profile = PROFILE.replace('archival_code = "keep"', 'archival_code = "renumber"')
    delivery, profile_path = _setup(tmp_path, [row(1, DH="2015-TQ-0007", ND="2015")], profile=profile, pages=1)
    (delivery / "目录.csv").write_text((delivery / "目录.csv").read_text(encoding="gb18030").replace(",3,", ",1,"),
                                      encoding="gb18030")
    manifest = _scan(tmp_path, delivery, profile_path)
    report = make_report(ctx, ACTOR, manifest, workers=1)
    assert report.counts["importable"] == 1
    with ctx.catalogue.session() as s:
        approve(ctx, s, ACTOR, report.id)
    job_id = job.start(ctx, ACTOR, manifest, report.id)
    job.run(ctx, ACTOR, job_id, pool=False)
    with ctx.catalogue.reading() as r:
        imp = r.scalar(select(ImportItem).where(ImportItem.job_id == job_id))
        assert imp is not None and imp.original_code == "2015-TQ-0007"
        assert imp.archival_code == "J001-YW·2015-D30-TQ-000001" and imp.state == "indexed", imp.reason


def test_api_starts_the_import_and_reports_progress(client: TestClient, ctx: Context, tmp_path: Path) -> None:
    add_user(ctx, "archivist", ["archivist"])
    add_user(ctx, "clerk01", ["clerk"])
    headers = login(client, "archivist")
    delivery, profile_path = _setup(tmp_path, [row(1), row(2)], pages=1)
    (delivery / "目录.csv").write_text((delivery / "目录.csv").read_text(encoding="gb18030").replace(",3,", ",1,"),
                                      encoding="gb18030")
    manifest = _scan(tmp_path, delivery, profile_path)
    report = make_report(ctx, ACTOR, manifest, workers=1)
    body = {"manifest": str(manifest), "report_id": report.id}
    assert client.post("/api/v1/imports", json=body, headers=login(client, "clerk01")).status_code == 403
    refused = client.post("/api/v1/imports", json=body, headers=headers)
    assert refused.status_code == 409 and refused.json()["code"] == "import_report_not_approved"
    missing = client.post("/api/v1/imports", json=body | {"manifest": str(tmp_path / "nope.jsonl")}, headers=headers)
    assert missing.status_code == 422 and missing.json()["code"] == "import_manifest_invalid"
    with ctx.catalogue.session() as s:
        approve(ctx, s, ACTOR, report.id)
    started = client.post("/api/v1/imports", json=body, headers=headers)
    assert started.status_code == 202
    jobs.wait(ctx, started.json()["console_job"], timeout=120)
    status = client.get(f"/api/v1/imports/{started.json()['job']}", headers=headers).json()
    assert status["states"]["indexed"] == 2 and status["done"] == status["total"] == 2
    assert client.get("/api/v1/imports/999", headers=headers).json()["code"] == "import_job_not_found"


def _approved_job(ctx: Context, tmp_path: Path, rows: list[dict[str, str]], pages: int = 1) -> int:
    delivery, profile_path = _setup(tmp_path, rows, pages=pages)
    csv_ = delivery / "目录.csv"
    csv_.write_text(csv_.read_text(encoding="gb18030").replace(",3,", f",{pages},"), encoding="gb18030")
    manifest = _scan(tmp_path, delivery, profile_path)
    report = make_report(ctx, ACTOR, manifest, workers=1)
    with ctx.catalogue.session() as s:
        approve(ctx, s, ACTOR, report.id)
    return job.start(ctx, ACTOR, manifest, report.id)


def test_imported_items_get_gd_checks_and_a_failing_item_is_not_half_imported(ctx: Context, tmp_path: Path) -> None:
    # a control character in the 姓名 passes the dry run but not GD-1-6 (特殊字符) at filing
    job_id = _approved_job(ctx, tmp_path, [row(1), row(2, XM="张\x07三")])
    assert job.run(ctx, ACTOR, job_id, pool=False) == {"indexed": 1, "failed": 1}
    with ctx.catalogue.reading() as r:
        bad = r.scalar(select(ImportItem).where(ImportItem.key == code(2)))
        good = r.scalar(select(ImportItem).where(ImportItem.key == code(1)))
        assert bad is not None and good is not None
        assert "四性检测未通过" in (bad.reason or "") and "GD-1-6" in (bad.reason or "") and bad.item_id is None
        assert [i.archival_code for i in r.scalars(select(ArchiveItem))] == [code(1)]  # nothing of item 2 stays
        assert r.scalar(select(func.count()).select_from(Case)) == 1
        assert r.scalar(select(func.count()).select_from(Document)) == 1
        assert not r.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "document.attach", AuditEvent.detail["row"].as_integer() == bad.row))
        kept = r.get(CheckReport, (bad.detail or {})["check_report"])
        assert kept is not None and not kept.passed and kept.item_id is None  # the refusal's report is kept
        passed = r.get(CheckReport, (good.detail or {})["check_report"])
        assert passed is not None and passed.passed and passed.item_id == good.item_id
        bad_key, good_key = (bad.detail or {})["rendition_key"], (good.detail or {})["rendition_key"]
    assert not ctx.store.exists(bad_key)  # its unlocked rendition removed
    assert set(ctx.store.list_keys("renditions")) == {good_key}


@pytest.mark.parametrize("change", ["same_size", "appended"])
def test_a_page_changed_after_the_scan_fails_its_item_and_stores_nothing_of_it(ctx: Context, tmp_path: Path,
                                                                                 change: str) -> None:
    """Given an approved import whose page was changed after the scan (the same size, or bytes appended), when the
    import runs, then that item fails as file_changed naming the file, nothing of it is stored or catalogued, and the
    other item is imported."""
    job_id = _approved_job(ctx, tmp_path, [row(1), row(2)])
    page = tmp_path / "delivery" / "2015" / code(2) / "0001.jpg"
    data = page.read_bytes()
    page.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]) if change == "same_size" else data + b"\0")
    assert job.run(ctx, ACTOR, job_id, pool=False) == {"indexed": 1, "failed": 1}
    with ctx.catalogue.reading() as r:
        bad = r.scalar(select(ImportItem).where(ImportItem.key == code(2)))
        assert bad is not None and bad.item_id is None
        assert "在预扫描后被改动" in (bad.reason or "") and f"{code(2)}/0001.jpg" in (bad.reason or "")
        assert [i.archival_code for i in r.scalars(select(ArchiveItem))] == [code(1)]
        assert r.scalar(select(func.count()).select_from(Document)) == 1
    assert len(list(ctx.store.list_keys("renditions"))) == 1
    assert len(list(ctx.store.list_keys("originals"))) == 1


def test_crash_between_store_and_catalogue_reuses_the_stored_rendition(ctx: Context, tmp_path: Path) -> None:
    job_id = _approved_job(ctx, tmp_path, [row(n) for n in range(1, 5)])
    real = build.store_rendition
    stored: list[str] = []

    def store_then_crash(c: Context, res: dict[str, object]) -> None:
        real(c, res)
        stored.append(str(res["rendition_key"]))
        if len(stored) == 3:  # the second chunk's first rendition is stored, its catalogue write never happens
            raise KeyboardInterrupt

    job.CHUNK, saved = 2, job.CHUNK
    try:
        build.store_rendition = store_then_crash  # type: ignore[assignment]
        with pytest.raises(KeyboardInterrupt):
            job.run(ctx, ACTOR, job_id, pool=False)
        build.store_rendition = real  # type: ignore[assignment]
        mid = job.counts(ctx, job_id)
        assert mid == {"catalogued": 2, "signed": 2}
        with ctx.catalogue.reading() as r:
            recorded = {x.key: (x.detail or {})["rendition_key"] for x in r.scalars(
                select(ImportItem).where(ImportItem.state == "signed"))}
        assert recorded[code(3)] == stored[2] and ctx.store.exists(stored[2])
        assert not ctx.store.exists(recorded[code(4)])  # recorded before it was stored: rebuilt on resume
        final = job.run(ctx, ACTOR, job_id, pool=False)
    finally:
        job.CHUNK, build.store_rendition = saved, real  # type: ignore[assignment]
    assert final == {"indexed": 4}
    with ctx.catalogue.reading() as r:
        items = {i.archival_code: i.rendition_key for i in r.scalars(select(ArchiveItem))}
    assert items[code(3)] == stored[2]  # the stored rendition was reused, not built again
    with ctx.catalogue.reading() as r:
        reused = r.scalar(select(ImportItem).where(ImportItem.key == code(3)))
        assert reused is not None
        report = (reused.detail or {})["check_report"]
    # its content checks ran on the stored bytes, the signature fully validated (not made in this run)
    assert any("签署人" in x.detail and x.outcome == "passed" for x in _report_codes(ctx, report)["GD-1-1"])
    assert set(ctx.store.list_keys("renditions")) == set(items.values())  # no orphan left for gc


def _report_codes(ctx: Context, report_id: int) -> dict[str, list[CheckResult]]:
    with ctx.catalogue.reading() as r:
        rows = r.scalars(select(CheckResult).where(CheckResult.report_id == report_id)).all()
        r.expunge_all()
    out: dict[str, list[CheckResult]] = {}
    for x in rows:
        out.setdefault(x.code, []).append(x)
    return out


def test_content_checks_run_beside_the_bytes_and_every_gd_item_is_judged(ctx: Context, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    job_id = _approved_job(ctx, tmp_path, [row(1), row(2)], pages=2)
    phases: list[str] = []
    real_run = gd.run_gd

    def spy(subject: gd.FilingSubject, *, phase: str = "all") -> list[tuple[CheckItem, Result]]:
        phases.append(phase)
        return real_run(subject, phase=phase)

    monkeypatch.setattr(gd, "run_gd", spy)
    versions: list[str] = []
    real_version = job.ensure_version
    monkeypatch.setattr(job, "ensure_version", lambda *a: versions.append("v") or real_version(*a))
    assert job.run(ctx, ACTOR, job_id, pool=False) == {"indexed": 2}
    assert versions == ["v"]  # the schedule's version row once a chunk, not digested again per item
    # the content items once per item in the build (a worker's job), the catalogue's items once where it is filed;
    # never the whole list again in the parent (the full signature validation of decision 0020's re-checks)
    assert phases == ["detached", "detached", "attached", "attached"]
    every = {i.code for i in items_of(Stage.FILING)}
    assert every - gd.DETACHED and every > gd.DETACHED
    with ctx.catalogue.reading() as r:
        reports = [(x.detail or {})["check_report"] for x in r.scalars(select(ImportItem))]
    for report_id in reports:
        by_code = _report_codes(ctx, report_id)
        assert set(by_code) == every  # every GD item, as for a filing
        assert not [x.code for rows in by_code.values() for x in rows if x.outcome == "error"]
        assert not [x.code for rows in by_code.values() for x in rows if x.outcome == "failed" and x.blocking]
        assert any("本次签章" in x.detail for x in by_code["GD-1-1"])  # the signature just made, on its bytes
        assert any("与原件页数一致" in x.detail for x in by_code["GD-1-10"])
    with ctx.catalogue.reading() as r:
        keys = list(r.scalars(select(ArchiveItem.rendition_key)))
    assert len(keys) == 2
    for key in keys:  # the build checked only what the signature's increment added: the whole file still passes
        assert pdfa_problems(ctx.store.read_bytes(key)) == []


def test_a_tampered_rendition_fails_the_workers_checks(ctx: Context, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    job_id = _approved_job(ctx, tmp_path, [row(1), row(2)])
    real_sign = build.sign_pdf

    def tampered(*args: object, **kwargs: object) -> bytes:
        signed = bytearray(real_sign(*args, **kwargs))  # type: ignore[arg-type]
        if b"2015-D30-TQ-000002" in signed:  # item 2 only: one byte under the signature changed
            at = signed.index(b"2015-D30-TQ-000002") + len("2015-D30-TQ-00000")
            signed[at] = ord("9")
        return bytes(signed)

    monkeypatch.setattr(build, "sign_pdf", tampered)
    assert job.run(ctx, ACTOR, job_id, pool=False) == {"indexed": 1, "failed": 1}
    with ctx.catalogue.reading() as r:
        bad = r.scalar(select(ImportItem).where(ImportItem.key == code(2)))
        assert bad is not None and "GD-1-1" in (bad.reason or "") and bad.item_id is None
        report, key = (bad.detail or {})["check_report"], (bad.detail or {})["rendition_key"]
    assert [x.outcome for x in _report_codes(ctx, report)["GD-1-1"]] == ["failed"]
    assert not ctx.store.exists(key)



def test_imports_have_their_own_permission(client: TestClient, ctx: Context, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # granted to every role that handles transfers, and checked by the import routes instead of transfer.manage
    assert {r for r, p in ROLE_PERMISSIONS.items() if Permission.IMPORTS_MANAGE in p} == \
        {r for r, p in ROLE_PERMISSIONS.items() if Permission.TRANSFER_MANAGE in p} != set()
    monkeypatch.setitem(ROLE_PERMISSIONS, "archivist", ROLE_PERMISSIONS["archivist"] - {Permission.IMPORTS_MANAGE})
    add_user(ctx, "archivist", ["archivist"])
    headers = login(client, "archivist")  # transfer.manage, not imports.manage
    refused = client.post("/api/v1/imports", json={"manifest": str(tmp_path / "m.jsonl"), "report_id": 1},
                          headers=headers)
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"
    assert client.get("/api/v1/imports/1", headers=headers).status_code == 403


def test_the_pool_is_replaced_every_recycle_items(ctx: Context, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    job_id = _approved_job(ctx, tmp_path, [row(n) for n in range(1, 5)])
    pools: list[object] = []
    real_pool = job.ProcessPoolExecutor

    def counted(*args: object, **kwargs: object) -> object:
        pools.append(real_pool(*args, **kwargs))  # type: ignore[arg-type]
        return pools[-1]

    monkeypatch.setattr(job, "ProcessPoolExecutor", counted)
    monkeypatch.setattr(job, "CHUNK", 2)
    monkeypatch.setattr(job, "RECYCLE", 2)
    assert job.run(ctx, ACTOR, job_id, workers=1) == {"indexed": 4}
    assert len(pools) == 2  # the second chunk went to a fresh worker, after the first chunk was catalogued


def test_a_chunk_is_catalogued_in_a_bounded_number_of_statements(ctx: Context, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Cases, documents, items, reports and their rows, audit events, outbox rows and import states go in per
    chunk, not per item: only the GD items' own queries grow with the chunk (issue 20)."""
    from sqlalchemy import event

    from archive import audit

    def statements(n: int, sub: Path) -> dict[str, int]:
        sub.mkdir()
        job_id = _approved_job(ctx, sub, [row(k) for k in range(first[0], first[0] + n)], pages=2)
        first[0] += n
        seen: dict[str, int] = {}

        def count(conn: object, cursor: object, sql: str, *args: object) -> None:
            verb = sql.split()[0].upper()
            if verb in ("INSERT", "UPDATE"):
                name = f"{verb} {(sql.split()[2] if verb == 'INSERT' else sql.split()[1]).strip(chr(34))}"
                seen[name] = seen.get(name, 0) + 1
            seen["all"] = seen.get("all", 0) + 1

        def counted(*args: object, **kwargs: object) -> int:
            event.listen(ctx.catalogue.engine, "before_cursor_execute", count)
            try:
                return real(*args, **kwargs)  # type: ignore[arg-type]
            finally:
                event.remove(ctx.catalogue.engine, "before_cursor_execute", count)

        monkeypatch.setattr(job, "_catalogue", counted)
        assert job.run(ctx, ACTOR, job_id, pool=False) == {"indexed": n}
        return seen

    first, real = [1], job._catalogue
    monkeypatch.setattr(job, "CHUNK", 8)
    two, eight = statements(2, tmp_path / "a"), statements(8, tmp_path / "b")
    # once a chunk whatever its size (the audit events twice: the receipts before the checks, which look for
    # them, then the reports' and items' events); cases, documents, items and reports in one flush each, which
    # PostgreSQL sends as one statement and SQLite as one per row (its RETURNING keeps no order)
    assert (eight["INSERT check_result"], eight["INSERT audit_event"], eight["UPDATE audit_chain_head"],
            eight["INSERT outbox"], eight["UPDATE import_job"]) == (1, 2, 2, 1, 1), eight
    updates = sum(v for k, v in eight.items() if k.startswith("UPDATE") and "import_item" in k)
    assert updates == sum(v for k, v in two.items() if k.startswith("UPDATE") and "import_item" in k) <= 2
    # what still grows per item: the GD items' catalogue queries (~8) and, on SQLite, the rows of one flush (5)
    assert (eight["all"] - two["all"]) / 6 <= 15, (two, eight)
    with ctx.catalogue.reading() as r:
        assert audit.verify(r).ok  # the chunk's events chained in order
        assert r.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "document.attach")) \
            == 20


def test_gd_duplicates_asks_the_catalogue_once(ctx: Context, tmp_path: Path) -> None:
    """GD-1-8's three counts (档号, 业务流水号, the case's items) come from its one round trip, not again."""
    from sqlalchemy import event

    job_id = _approved_job(ctx, tmp_path, [row(1)])
    assert job.run(ctx, ACTOR, job_id, pool=False) == {"indexed": 1}
    seen: list[str] = []
    with ctx.catalogue.reading() as r:
        item = r.scalar(select(ArchiveItem))
        assert item is not None
        subject = gd.item_subject(ctx, r, item, actor_kind="system", scanner=None, verify_signatures=False)
        _ = subject.case.serial  # loaded before counting

        def count(conn: object, cursor: object, sql: str, *args: object) -> None:
            seen.append(sql)

        event.listen(ctx.catalogue.engine, "before_cursor_execute", count)
        try:
            results = gd.duplicates(subject)
        finally:
            event.remove(ctx.catalogue.engine, "before_cursor_execute", count)
    assert [x.outcome.value for x in results] == ["passed"]
    assert len(seen) == 1, seen


def test_gd_continuity_counts_only_above_the_numbers_the_run_has_committed(ctx: Context, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Counting the whole class for every item made a large import quadratic (GD-2-6 was 42% of the parent's time
    at 68,000 items): each check now counts only above the 件号 this run has committed gap-free, and a count that
    does not add up is judged and reported on the whole class."""
    monkeypatch.setattr(job, "CHUNK", 2)
    job_id = _approved_job(ctx, tmp_path, [row(n) for n in range(1, 6)])
    seen: dict[int, int] = {}
    real_run = gd.run_gd

    def spy(subject: gd.FilingSubject, *, phase: str = "all") -> list[tuple[CheckItem, Result]]:
        if phase == "attached":
            p = subject.parts
            seen[p.number] = (subject.continuous or {}).get((p.fonds, p.year, p.retention, p.category), 0)
        return real_run(subject, phase=phase)

    monkeypatch.setattr(gd, "run_gd", spy)
    assert job.run(ctx, ACTOR, job_id, pool=False) == {"indexed": 5}
    assert seen == {1: 0, 2: 0, 3: 2, 4: 2, 5: 4}  # known after each chunk's commit, not before
    with ctx.catalogue.reading() as r:
        reports = [(x.detail or {})["check_report"] for x in r.scalars(select(ImportItem))]
        assert all(x.outcome == "passed" for rep in reports for x in _report_codes(ctx, rep)["GD-2-6"])
        item = r.scalar(select(ArchiveItem).where(ArchiveItem.number == 5))
        assert item is not None
        klass = (item.fonds_code, item.year, item.retention_code, item.category)
        parts = ctx.code_rule.parse(item.archival_code)
        gap = dataclasses.replace(parts, number=7)  # 件号 6 was never filed
        subject = gd.FilingSubject(r, ctx, item.case, [], ctx.code_rule.format(gap), gap, "system",
                                   continuous={klass: 5})
        failed = gd.continuity(subject)
    assert [x.outcome for x in failed][:1] == ["failed"]
    assert "应有 6 件，实有 5 件" in failed[0].detail  # recounted over the whole class for the report
