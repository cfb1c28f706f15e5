"""归档环节 (GD) checks: run inside filing, refuse on a blocking failure, and each item detects its fault."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from archive.audit import Actor
from archive.catalogue.models import (
    ArchivalCodeSequence,
    ArchiveItem,
    AuditEvent,
    Case,
    CheckReport,
    Document,
)
from archive.checks import gd
from archive.checks.base import REGISTRY, Outcome, Stage, items_of, run_items
from archive.context import Context
from tests import samples
from tests.factories import CLOSE, complete_case, file_case
from tests.helpers import add_client, add_user, login
from tests.test_audit import _disable_guard

CODE = "J001-YW·2026-D30-TQ-000001"


@pytest.fixture
def core(ctx: Context) -> dict[str, str]:
    return add_client(ctx, "core", ["cases.write", "data.read", "pii.read"])


def outcomes(results: list[tuple[object, object]], code: str) -> list[Outcome]:
    return [r.outcome for i, r in results if i.code == code]  # type: ignore[attr-defined]


def run_one(subject: gd.FilingSubject, code: str) -> list[Outcome]:
    return outcomes(run_items([REGISTRY[code]], subject), code)  # type: ignore[arg-type]


def nothing_filed(ctx: Context) -> None:
    """A refused filing leaves no item, no consumed 档号 and no stored rendition."""
    with ctx.catalogue.sessions() as s:
        assert s.scalar(select(func.count()).select_from(ArchiveItem)) == 0
        assert (s.scalar(select(func.max(ArchivalCodeSequence.last_number))) or 0) == 0
        assert s.scalar(select(func.count()).select_from(CheckReport).where(CheckReport.item_id.is_not(None))) == 0
    assert not list((ctx.settings.objects_path / "renditions").rglob("*"))


# --- at filing ---------------------------------------------------------------------------------------


def test_filing_runs_every_gd_item_and_stores_the_report_with_the_item(ctx: Context, client: TestClient,
                                                                       core: dict[str, str]) -> None:
    """Given a complete case and no virus scanner, when it is filed, then every filing-stage GD item ran and its
    report is stored with the item (passed with a warning: GD-4-1 warns, GD-4-2 not applicable, the rest pass),
    and the item.file audit event points at the report."""
    code = file_case(client, core)
    with ctx.catalogue.sessions() as s:
        item = s.scalar(select(ArchiveItem))
        report = s.scalar(select(CheckReport))
        assert item is not None and report is not None
        assert (report.stage, report.subject, report.item_id, report.passed) == ("gd", code, item.id, True)
        codes = {r.code for r in report.results}
        assert codes == {i.code for i in items_of(Stage.FILING)}
        by_code = {r.code: r.outcome for r in report.results}
        # with no virus scanner configured, GD-4-1 warns and the scan is not applicable; all else passes
        assert by_code["GD-4-1"] == "failed" and by_code["GD-4-2"] == "not_applicable"
        assert report.outcome == "warning"
        for must_pass in ("GD-1-1", "GD-1-2", "GD-1-6", "GD-1-7", "GD-1-10", "GD-2-6", "GD-3-3", "GD-3-4", "GD-4-7"):
            assert by_code[must_pass] == "passed", must_pass
        filed = s.scalar(select(AuditEvent).where(AuditEvent.action == "item.file"))
        assert filed is not None and filed.detail["check_report"] == report.id
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "check.report")) == 1


def test_control_character_in_metadata_refuses_filing(ctx: Context, client: TestClient,
                                                      core: dict[str, str]) -> None:
    """Given a case whose 申请人 holds a control character, when it is closed, then 409 filing_checks_failed names
    GD-1-6 and U+0001, nothing is signed, numbered or stored, the case stays open, and the failed report and a
    refused item.file event are on record. (Intake refuses the character since data quality's source rules, so the
    case reaches filing the way legacy rows do: changed in the catalogue after intake.)"""
    complete_case(client, core, applicant={"name": "张三", "id_number": "11010519491231002X"})
    with ctx.catalogue.session() as s:
        s.execute(update(Case).where(Case.serial == "YW2026010500001").values(applicant_name="张\x01三"))
    r = client.post("/api/v1/cases/YW2026010500001/close", json=CLOSE, headers=core)
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["code"] == "filing_checks_failed" and "四性检测" in body["message"]
    failed = {f["code"]: f for f in body["detail"]["failed"]}
    assert "GD-1-6" in failed and "U+0001" in failed["GD-1-6"]["detail"]
    nothing_filed(ctx)
    with ctx.catalogue.sessions() as s:
        case = s.scalar(select(Case))
        assert case is not None and case.status == "open" and case.trail is None
        # the refusal is on record: its report (why) and a refused audit event (who, when)
        report = s.get(CheckReport, body["detail"]["check_report"])
        assert report is not None and report.subject == "YW2026010500001" and report.outcome == "failed"
        assert "GD-1-6" in {r.code for r in report.results if r.outcome == "failed"}
        refused = s.scalar(select(AuditEvent).where(AuditEvent.action == "item.file"))
        assert refused is not None and refused.outcome == "refused" and refused.target_id == "YW2026010500001"


def test_gap_in_item_numbers_refuses_filing(ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given a 件号 counter that skipped a number, when the next case is closed, then GD-2-6 alone refuses it with
    件号不连续, and the counter and the one filed item are unchanged."""
    file_case(client, core)
    with ctx.catalogue.session() as s:
        s.execute(update(ArchivalCodeSequence).values(last_number=2))
    complete_case(client, core, "YW2026010500002")
    r = client.post("/api/v1/cases/YW2026010500002/close", json=CLOSE, headers=core)
    assert r.status_code == 409 and r.json()["code"] == "filing_checks_failed"
    assert [f["code"] for f in r.json()["detail"]["failed"]] == ["GD-2-6"]
    assert "件号不连续" in r.json()["message"]
    with ctx.catalogue.sessions() as s:
        assert s.scalar(select(ArchivalCodeSequence.last_number)) == 2
        assert s.scalar(select(func.count()).select_from(ArchiveItem)) == 1


def test_continuity_counts_only_above_the_numbers_this_process_filed(ctx: Context, client: TestClient,
                                                                      core: dict[str, str],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """GD-2-6 counted the whole class for every filing (linear in the class, quadratic over a large import): after
    each committed filing it passed, the next counts only above that 件号; the gap test above still refuses."""
    seen: list[tuple[int, int]] = []
    real_run = gd.run_gd

    def spy(subject: gd.FilingSubject, *, phase: str = "all") -> list[tuple[object, object]]:
        if phase == "metadata":
            p = subject.parts
            seen.append((p.number, (subject.continuous or {}).get((p.fonds, p.year, p.retention, p.category), 0)))
        return real_run(subject, phase=phase)  # type: ignore[return-value]

    monkeypatch.setattr(gd, "run_gd", spy)
    codes = [file_case(client, core, f"YW202601050000{n}") for n in (1, 2, 3)]
    assert [c[-1] for c in codes] == ["1", "2", "3"]
    assert seen == [(1, 0), (2, 1), (3, 2)]
    with ctx.catalogue.reading() as r:
        item = r.scalar(select(ArchiveItem).where(ArchiveItem.number == 3))
        assert item is not None
        assert ctx.continuous == {(item.fonds_code, item.year, item.retention_code, item.category): 3}


def test_digest_mismatch_refuses_filing(ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given an original whose recorded digest differs from its bytes, when the case is closed, then GD-1-1 and
    GD-1-11 refuse it and nothing is filed."""
    complete_case(client, core)
    with ctx.catalogue.session() as s:
        s.execute(update(Document).where(Document.sequence == 1).values(sha256="0" * 64))
    r = client.post("/api/v1/cases/YW2026010500001/close", json=CLOSE, headers=core)
    assert r.status_code == 409, r.text
    codes = {f["code"] for f in r.json()["detail"]["failed"]}
    assert {"GD-1-1", "GD-1-11"} <= codes
    nothing_filed(ctx)


def test_missing_stored_original_refuses_filing(ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given an original gone from the store, when the case is closed, then GD-2-7, GD-3-4 and GD-1-11 refuse it
    before a rendition is attempted, and nothing is filed."""
    complete_case(client, core)
    with ctx.catalogue.sessions() as s:
        key = s.scalar(select(Document.original_key).where(Document.sequence == 2))
    assert key is not None
    ctx.store.path_of(key).unlink()
    r = client.post("/api/v1/cases/YW2026010500001/close", json=CLOSE, headers=core)
    assert r.status_code == 409, r.text
    codes = {f["code"] for f in r.json()["detail"]["failed"]}
    assert {"GD-2-7", "GD-3-4", "GD-1-11"} <= codes
    nothing_filed(ctx)


# --- each item on its failing fixture ----------------------------------------------------------------


@pytest.fixture
def subject(ctx: Context, client: TestClient, core: dict[str, str]) -> Iterator[gd.FilingSubject]:
    """A filed item read back as a GD subject (changes to it are never committed)."""
    file_case(client, core)
    with ctx.catalogue.sessions() as s:
        item = s.scalar(select(ArchiveItem))
        assert item is not None
        subj = gd.item_subject(ctx, s, item, verify_signatures=False)
        assert not [(i.code, r.detail) for i, r in gd.run_gd(subj)
                    if r.outcome in (Outcome.FAILED, Outcome.ERROR) and i.code != "GD-4-1"]
        yield subj


def test_metadata_field_over_its_length(subject: gd.FilingSubject) -> None:
    """Given a filed item read back, when 申请人 is longer than its field allows, then GD-1-2 fails."""
    subject.case.applicant_name = "张" * 101
    assert run_one(subject, "GD-1-2") == [Outcome.FAILED]


def test_required_field_empty(subject: gd.FilingSubject) -> None:
    """Given a filed item read back, when the required 经办人 is blank, then GD-2-4 fails."""
    subject.case.clerk = " "
    assert run_one(subject, "GD-2-4") == [Outcome.FAILED]


def test_badly_formatted_and_out_of_domain_values(subject: gd.FilingSubject) -> None:
    """Given a filed item read back, when the mobile number is malformed and the outcome is not one of its values,
    then GD-1-3 (format) and GD-1-4 (value domain) fail."""
    subject.case.applicant_mobile = "2380013800x"
    subject.case.outcome = "maybe"
    assert run_one(subject, "GD-1-3") == [Outcome.FAILED]
    assert run_one(subject, "GD-1-4") == [Outcome.FAILED]


def test_implausible_year(subject: gd.FilingSubject) -> None:
    """Given a filed item read back, when its year disagrees with its dates, then GD-1-5 fails."""
    subject.parts = dataclasses.replace(subject.parts, year=2025)
    assert Outcome.FAILED in run_one(subject, "GD-1-5")


def test_forbidden_character_in_a_file_name(subject: gd.FilingSubject) -> None:
    """Given a filed item read back, when a document's file name holds an escape character, then GD-1-6 fails."""
    subject.originals[0].doc.filename = "申请表\x1b.jpg"
    assert run_one(subject, "GD-1-6") == [Outcome.FAILED]


def test_broken_archival_code(subject: gd.FilingSubject) -> None:
    """Given a filed item read back, when its 档号 carries another 件号, then GD-1-7 fails naming the 件号; when the
    档号 does not parse at all, then GD-1-7 fails too."""
    subject.code = CODE.replace("000001", "000002")
    [result] = run_items([REGISTRY["GD-1-7"]], subject)
    assert result[1].outcome == Outcome.FAILED and "件号" in result[1].detail
    subject.code = "J001-YW-2026"
    assert run_one(subject, "GD-1-7") == [Outcome.FAILED]


def test_format_outside_the_whitelist(subject: gd.FilingSubject) -> None:
    """Given a filed item read back, when an original is a GIF, then GD-3-3 (format whitelist) and GD-1-9 fail."""
    gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"
    subject.originals[0] = dataclasses.replace(subject.originals[0], data=gif)
    assert run_one(subject, "GD-3-3") == [Outcome.FAILED]
    assert Outcome.FAILED in run_one(subject, "GD-1-9")


def test_corrupt_content_file(subject: gd.FilingSubject) -> None:
    """Given a filed item read back, when an original is a JPEG cut short (it still sniffs as JPEG), then GD-3-4
    fails naming the file and GD-2-2 fails too."""
    jpeg = samples.jpeg()
    subject.originals[0] = dataclasses.replace(subject.originals[0], data=jpeg[: len(jpeg) // 3])
    [result] = run_items([REGISTRY["GD-3-4"]], subject)
    assert result[1].outcome == Outcome.FAILED and subject.originals[0].doc.filename in result[1].detail
    assert Outcome.FAILED in run_one(subject, "GD-2-2")


def test_digest_mismatch_of_the_rendition(subject: gd.FilingSubject) -> None:
    """Given a filed item read back, when one byte of its rendition is flipped, then GD-1-1 and GD-1-14 fail."""
    assert subject.rendition is not None
    flipped = bytearray(subject.rendition)
    flipped[len(flipped) // 2] ^= 0x01
    subject.rendition = bytes(flipped)
    assert Outcome.FAILED in run_one(subject, "GD-1-1")
    assert run_one(subject, "GD-1-14") == [Outcome.FAILED]


def test_rendition_missing_documents(subject: gd.FilingSubject) -> None:
    """Given a filed item read back, when it has one more original than its rendition holds, then GD-2-11, GD-1-12,
    GD-1-10 and GD-2-1 fail (bookmark and pages missing)."""
    subject.originals.append(subject.originals[0])
    assert run_one(subject, "GD-2-11") == [Outcome.FAILED]
    assert run_one(subject, "GD-1-12") == [Outcome.FAILED]
    assert run_one(subject, "GD-1-10") == [Outcome.FAILED]
    assert run_one(subject, "GD-2-1") == [Outcome.FAILED]


def test_embedded_metadata_differs(subject: gd.FilingSubject) -> None:
    """Given a filed item read back, when its 档号 differs from the one embedded in the rendition, then GD-2-10
    fails."""
    subject.code = CODE.replace("TQ", "DK")
    assert run_one(subject, "GD-2-10") == [Outcome.FAILED]


def test_edited_audit_event_fails_process_security(ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given a filed item, when an audit event of its case is edited in the database and the item is re-checked, then
    GD-4-7 fails saying the event was 被改动 and the report does not pass."""
    code = file_case(client, core)
    _disable_guard(ctx)
    with ctx.catalogue.session() as s:
        s.execute(update(AuditEvent).where(AuditEvent.action == "case.open").values(detail={"branch": "BR99"}))
    with ctx.catalogue.session() as s:
        report = gd.recheck_item(ctx, s, Actor.system("test"), code, verify_signatures=False)
        [row] = [r for r in report.results if r.code == "GD-4-7"]
        assert row.outcome == "failed" and "被改动" in row.detail and not report.passed


def test_encrypted_pdf_is_not_acceptable(subject: gd.FilingSubject) -> None:
    """Given a filed item read back, when its PDF original is replaced by an encrypted PDF, then GD-3-8 fails."""
    pdf = next(o for o in subject.originals if o.doc.media_type == "application/pdf")
    i = subject.originals.index(pdf)
    subject.originals[i] = dataclasses.replace(pdf, data=samples.encrypted_pdf())
    assert run_one(subject, "GD-3-8") == [Outcome.FAILED]


def test_a_crashing_check_is_an_error_not_a_crash(subject: gd.FilingSubject) -> None:
    """Given a filed item read back with no rendition and an unreadable original, when every GD item runs, then
    GD-2-7 fails and no item ends in an error: each check copes with missing content."""
    subject.rendition = None
    subject.originals[0] = dataclasses.replace(subject.originals[0], data=None, read_error="gone")
    results = gd.run_gd(subject)
    assert outcomes(results, "GD-2-7")[0] == Outcome.FAILED  # type: ignore[arg-type]
    assert Outcome.ERROR not in [r.outcome for _, r in results]


# --- re-checking a filed item --------------------------------------------------------------------------


def test_recheck_of_a_filed_item_finds_a_tampered_catalogue(ctx: Context, client: TestClient,
                                                            core: dict[str, str]) -> None:
    """Given a filed item, when it is re-checked, then it passes with its signature validated; when its 件号 is then
    changed in the catalogue and it is re-checked, then GD-1-7 and GD-2-6 fail, and the item's report list shows
    the filing and both re-checks."""
    code = file_case(client, core)
    with ctx.catalogue.session() as s:
        report = gd.recheck_item(ctx, s, Actor.system("test"), code)
        assert report.passed and report.item_id is not None
        assert {r.code: r.outcome for r in report.results}["GD-1-1"] == "passed"  # signature validated too
    with ctx.catalogue.session() as s:
        s.execute(update(ArchiveItem).values(number=7))
    with ctx.catalogue.session() as s:
        report = gd.recheck_item(ctx, s, Actor.system("test"), code)
        failed = {r.code for r in report.results if r.outcome == "failed"}
        assert not report.passed and {"GD-1-7", "GD-2-6"} <= failed
    path = f"/api/v1/checks/items/{quote(code)}/reports"
    add_user(ctx, "arch", ["archivist"])
    listed = client.get(path, headers=login(client, "arch")).json()
    assert [r["outcome"] for r in listed] == ["warning", "warning", "failed"]  # filing, recheck, recheck


def test_reading_an_item_back_closes_every_stored_object(ctx: Context, client: TestClient,
                                                         core: dict[str, str]) -> None:
    """Given a filed item, When its originals and rendition are read back for the GD checks and a page image is
    rendered from an original, Then no stored object is left open (an unclosed one warns when collected, in
    whatever thread happens to be running a PDF/A check)."""
    import gc
    import warnings

    from archive import images

    file_case(client, core)
    with warnings.catch_warnings(record=True) as caught, ctx.catalogue.sessions() as s:
        warnings.simplefilter("always", ResourceWarning)
        item = s.scalar(select(ArchiveItem))
        assert item is not None
        subj = gd.item_subject(ctx, s, item, verify_signatures=False)
        assert subj.rendition and all(o.data for o in subj.originals)
        images.page_image(ctx, subj.originals[0].doc, 1, 400, "jpeg")
        del subj
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_a_fresh_signature_is_checked_on_its_bytes_and_a_tampered_one_fails(ctx: Context,
                                                                            subject: gd.FilingSubject) -> None:
    """Given the subject as filing sees it (the rendition just signed by this system's signer), when GD-1-1 runs,
    then it passes with the cheap check of that signature; when one byte inside the signed range changes (and the
    recorded digests are those of the changed bytes, so only the signature can tell), then GD-1-1 fails."""
    from signing.fixity import digest_bytes

    assert subject.rendition is not None
    subject.item, subject.verify_signatures, subject.signed_by = None, True, ctx.signer.signing_cert
    [result] = [r for _, r in run_items([REGISTRY["GD-1-1"]], subject) if r.target == "rendition"]
    assert result.outcome == Outcome.PASSED and "本次签章" in result.detail
    flipped = bytearray(subject.rendition)
    flipped[flipped.index(b"stream", flipped.index(b"/DCTDecode")) + 400] ^= 0x01
    subject.rendition = bytes(flipped)
    digests = digest_bytes(subject.rendition)
    subject.rendition_sha256, subject.rendition_sm3 = digests.sha256, digests.sm3
    [result] = [r for _, r in run_items([REGISTRY["GD-1-1"]], subject) if r.target == "rendition"]
    assert result.outcome == Outcome.FAILED and "摘要与签名覆盖的字节不一致" in result.detail


def test_images_the_rendition_build_decoded_are_not_decoded_again(subject: gd.FilingSubject,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Given the originals filing's rendition build has just decoded (subject.decoded), when GD-3-4 runs, then it
    decodes only the others: each image is decoded once per filing; a damaged one not decoded still fails."""
    opened: list[str] = []
    real = gd.check_readable
    monkeypatch.setattr(gd, "check_readable", lambda data, kind, name: (opened.append(name), real(data, kind, name)))
    images = [o for o in subject.originals if o.doc.media_type in gd.RASTER]
    assert len(images) >= 2
    subject.decoded = {o.doc.id for o in images[1:]}
    assert run_one(subject, "GD-3-4") == [Outcome.PASSED]
    assert images[0].doc.filename in opened and not {o.doc.filename for o in images[1:]} & set(opened)
    jpeg = samples.jpeg()
    subject.originals[subject.originals.index(images[0])] = dataclasses.replace(images[0], data=jpeg[: len(jpeg) // 3])
    assert run_one(subject, "GD-3-4") == [Outcome.FAILED]


def test_the_rendition_is_parsed_once_for_every_item_that_reads_it(subject: gd.FilingSubject,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a filed item read back (its rendition's checks not yet run on these bytes), when every GD item runs,
    then the rendition is opened by pikepdf once - not once for each of GD-1-10, GD-1-12, GD-2-3, GD-3-4, GD-3-5
    and GD-3-8 (issue 17) - and is closed when the run ends; an encrypted rendition still fails GD-3-8 and an
    empty one fails GD-3-4, each in its own words."""
    import pikepdf

    assert subject.rendition is not None
    subject.rendition = bytes(subject.rendition)  # other bytes object: nothing memoised for it yet
    rendition, real, opened = subject.rendition, pikepdf.open, []

    def counted(source: object, *args: object, **kwargs: object) -> pikepdf.Pdf:
        if hasattr(source, "getvalue") and source.getvalue() == rendition:  # type: ignore[attr-defined]
            opened.append("rendition")
        return real(source, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pikepdf, "open", counted)
    results = gd.run_gd(subject)
    assert not [(i.code, r.detail) for i, r in results
                if r.outcome in (Outcome.FAILED, Outcome.ERROR) and i.code != "GD-4-1"]
    assert opened == ["rendition"]
    assert not [key for key in subject._memo if key[0] == "pdf"]  # released: nothing left open
    subject.rendition = samples.encrypted_pdf()
    assert run_one(subject, "GD-3-8") == [Outcome.FAILED]
    subject.rendition = b"%PDF-1.7\n%%EOF\n"
    [(_, readable)] = run_items([REGISTRY["GD-3-4"]], subject)
    assert readable.outcome == Outcome.FAILED and "归档 PDF" in readable.detail
