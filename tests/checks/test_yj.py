"""YJ (移交与接收) check items: each one detects what it exists for on a tampered package.

A package is exported from filed items and unpacked as a BagIt directory; a test damages it, optionally
re-seals the manifests (as a careless or malicious sender would), receives it, and looks at which items
failed. Received packages never change what is archived.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pikepdf
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from archive.catalogue.models import AuditEvent, TransferReceipt
from archive.checks import yj  # noqa: F401  (registers the YJ items)
from archive.checks.base import REGISTRY, CheckObject, Dimension, Stage, items_of
from archive.context import Context
from archive.retention import bagit, transfer
from archive.retention import register as transfer_register
from signing.eep import EepAction, EepAgent, EepFile, EepRecord, build_eep, eep_files, parse_eep
from signing.fixity import digest_bytes
from tests.checks.test_security import CLAMSCAN, eicar
from tests.helpers import add_user, login
from tests.retention.test_transfer import ARCHIVIST, export, file_items, snapshot


@pytest.fixture
def bag(ctx: Context, client: TestClient, tmp_path: Path) -> Path:
    """A released two-item package, unpacked as a BagIt directory."""
    row = export(ctx, file_items(client, ctx, 2))
    assert row.status == "released"
    zipped = tmp_path / "p.zip"
    zipped.write_bytes(ctx.store.get(row.zip_key or "").read())
    return bagit.extract_zip(zipped, tmp_path / "bag")


def reseal(root: Path) -> None:
    """Recompute manifests, Payload-Oxum and the tag manifest, as a sender's tool would after an edit."""
    payload = sorted(p for p in (root / "data").rglob("*") if p.is_file())
    rel = {p: p.relative_to(root).as_posix() for p in payload}
    digests = {p: digest_bytes(p.read_bytes()) for p in payload}
    (root / "manifest-sha256.txt").write_text("".join(f"{digests[p].sha256}  {rel[p]}\n" for p in payload))
    (root / "manifest-sm3.txt").write_text("".join(f"{digests[p].sm3}  {rel[p]}\n" for p in payload))
    info = (root / "bag-info.txt").read_text().splitlines()
    oxum = f"Payload-Oxum: {sum(d.size for d in digests.values())}.{len(payload)}"
    (root / "bag-info.txt").write_text("\n".join(oxum if x.startswith("Payload-Oxum") else x for x in info) + "\n")
    tags = ("bagit.txt", "bag-info.txt", "manifest-sha256.txt", "manifest-sm3.txt")
    (root / "tagmanifest-sha256.txt").write_text(
        "".join(f"{digest_bytes((root / t).read_bytes()).sha256}  {t}\n" for t in tags))


def receive(ctx: Context, path: Path, **kw: object) -> TransferReceipt:
    before = snapshot(ctx)
    with ctx.catalogue.session() as s:
        row = transfer.receive(ctx, s, ARCHIVIST, path, source=str(path), **kw)  # type: ignore[arg-type]
        s.expunge(row)
    assert snapshot(ctx) == before  # receiving never touches what is archived
    return row


def outcomes(row: TransferReceipt) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in row.check_results:
        out.setdefault(r["code"], set()).add(r["outcome"])
    return out


def failed(row: TransferReceipt) -> set[str]:
    return {code for code, o in outcomes(row).items() if "failed" in o or "error" in o}


def details(row: TransferReceipt, code: str) -> str:
    return "；".join(r["detail"] for r in row.check_results if r["code"] == code)


def pdf_text(pdf: bytes) -> str:
    import pypdfium2 as pdfium

    return "".join(page.get_textpage().get_text_range() for page in pdfium.PdfDocument(pdf))


def eeps(root: Path) -> list[Path]:
    return sorted((root / "data" / "eep").iterdir())


def test_registered_items_cover_the_four_dimensions() -> None:
    """Given the check registry, when its transfer-stage (YJ) items are listed, then they cover all four dimensions,
    include the items the receiving checks rely on, and YJ-4-4 is a manual check of the carrier."""
    items = items_of(Stage.TRANSFER)
    assert {i.dimension for i in items} == set(Dimension)
    assert {"YJ-1-1", "YJ-1-14", "YJ-2-1", "YJ-2-2", "YJ-3-1", "YJ-3-8", "YJ-4-2", "YJ-4-7"} <= {i.code for i in items}
    assert REGISTRY["YJ-4-4"].object is CheckObject.CARRIER and REGISTRY["YJ-4-4"].manual


def test_an_intact_package_is_accepted(ctx: Context, bag: Path) -> None:
    """Given an untouched two-item package, when received, then it is accepted with no failed item and its register
    kept; YJ-4-7 is manual because the sender gave no digest of the 移交单."""
    row = receive(ctx, bag)
    assert row.status == "accepted" and not failed(row), [r for r in row.check_results if r["outcome"] == "failed"]
    assert row.item_count == 2 and row.register is not None and row.register["item_count"] == 2
    assert outcomes(row)["YJ-4-7"] == {"manual"}  # no digest from the sender: compare the 移交单 by hand


def test_register_totals_that_disagree_fail_yj_2_1_and_2_2(ctx: Context, bag: Path) -> None:
    """Given a register claiming 3 items and other bytes (manifests re-sealed, so the bag itself is
    consistent), when received, then 总件数/总字节数 fail naming both figures and the package is returned."""
    path = bag / "data" / "register.json"
    register = json.loads(path.read_text())
    register["item_count"], register["payload_bytes"] = 3, register["payload_bytes"] + 10
    path.write_text(json.dumps(register, ensure_ascii=False))
    reseal(bag)
    row = receive(ctx, bag)
    assert row.status == "returned"
    assert failed(row) == {"YJ-2-1", "YJ-2-2"}
    assert "移交登记表 3" in details(row, "YJ-2-1") and "封装包 2" in details(row, "YJ-2-1")
    assert "登记表字节数" in details(row, "YJ-2-2")
    text = pdf_text(transfer_register.receipt_pdf(ctx, row))  # the 移交与接收登记表 says so too
    assert "电子档案移交与接收登记表" in text and "不通过（YJ-2-1、YJ-2-2）" in text and "退回移交单位" in text


def test_a_flipped_byte_fails_package_consistency_and_the_eep_signature(ctx: Context, bag: Path) -> None:
    """Given a package with one byte flipped in an EEP, when received, then it is returned with YJ-1-14 naming the
    file (摘要与清单不一致) and YJ-1-1; when the sender re-seals the bag, then YJ-1-14 passes but the EEP's own
    signature still fails YJ-1-1."""
    target = eeps(bag)[0]
    data = bytearray(target.read_bytes())
    data[len(data) // 3] ^= 0x01
    target.write_bytes(bytes(data))
    row = receive(ctx, bag)
    assert row.status == "returned" and {"YJ-1-14", "YJ-1-1"} <= failed(row)
    assert "摘要与清单不一致" in details(row, "YJ-1-14") and target.name in details(row, "YJ-1-14")
    reseal(bag)  # a sender who re-seals the bag cannot fix the EEP's own signature
    row = receive(ctx, bag)
    assert "YJ-1-14" not in failed(row) and "YJ-1-1" in failed(row)


def test_a_missing_file_fails_content_completeness(ctx: Context, bag: Path) -> None:
    """Given a package with one EEP deleted, when received, then it is returned with YJ-2-11 naming the missing file
    (没有这个文件), YJ-2-1 and YJ-1-11."""
    gone = eeps(bag)[1]
    gone.unlink()
    row = receive(ctx, bag)
    assert row.status == "returned" and {"YJ-2-11", "YJ-2-1", "YJ-1-11"} <= failed(row)
    assert f"data/eep/{gone.name}" in details(row, "YJ-2-11") and "没有这个文件" in details(row, "YJ-2-11")


def test_a_manifest_line_for_an_absent_file_and_an_undeclared_file_fail(ctx: Context, bag: Path) -> None:
    """Given a manifest line for a file that is absent, an undeclared payload file and an undeclared tag file, when
    received, then the package is returned with YJ-2-11 naming both payload files, YJ-4-3 naming the tag file, and
    YJ-1-14 because the tag manifest no longer matches."""
    with (bag / "manifest-sha256.txt").open("a") as f:
        f.write(f"{'ab' * 32}  data/eep/ghost.eep\n")
    (bag / "notes.txt").write_text("not declared")
    (bag / "data" / "stray.bin").write_bytes(b"stray")
    row = receive(ctx, bag)
    assert row.status == "returned"
    assert "ghost.eep" in details(row, "YJ-2-11") and "stray.bin" in details(row, "YJ-2-11")
    assert "notes.txt" in details(row, "YJ-4-3")
    assert "YJ-1-14" in failed(row)  # the tag manifest no longer matches manifest-sha256.txt


def test_register_digest_and_bag_info_are_checked(ctx: Context, bag: Path) -> None:
    """Given items.json edited after its digest was registered and bag-info.txt without External-Identifier (bag
    re-sealed), when received, then YJ-2-10 fails naming both."""
    items = bag / "data" / "items.json"
    listing = json.loads(items.read_text())
    listing["items"][0]["title"] = "改过的题名"
    items.write_text(json.dumps(listing, ensure_ascii=False))
    info = bag / "bag-info.txt"
    info.write_text("\n".join(x for x in info.read_text().splitlines() if not x.startswith("External-Identifier")))
    reseal(bag)
    row = receive(ctx, bag)
    assert "YJ-2-10" in failed(row)
    assert "目录文件摘要与实际不一致" in details(row, "YJ-2-10") and "External-Identifier" in details(row, "YJ-2-10")


def test_unreadable_metadata_fails_yj_3_1(ctx: Context, bag: Path) -> None:
    """Given a register.json that is not JSON and an items.json of the wrong shape (bag re-sealed), when received,
    then YJ-3-1 names register.json, YJ-2-1 and YJ-2-11 fail too, and the package is returned."""
    (bag / "data" / "register.json").write_bytes(b"\xff\xfe not json")
    (bag / "data" / "items.json").write_text("{\"items\": 5}")
    reseal(bag)
    row = receive(ctx, bag)
    assert {"YJ-3-1", "YJ-2-1", "YJ-2-11"} <= failed(row)
    assert "register.json" in details(row, "YJ-3-1") and row.status == "returned"


def _replace_eep(ctx: Context, root: Path, path: Path, files: list[EepFile] | None = None, **record: object) -> None:
    """Re-sign an EEP with other metadata or content (a sender whose system produced bad packages)."""
    old = parse_eep(path.read_bytes())
    content = eep_files(old)
    ns = "{http://www.saac.gov.cn/standards/ERM/encapsulation}"
    code = old.findtext(f".//{ns}电子文件号") or ""
    base = EepRecord(archival_code=code, fonds_code="J001", year=2026, retention="定期30年",
                     item_number=int(code.rsplit("-", 1)[1]), title="张三提取", responsible="中心",
                     date=date(2026, 1, 5), unit_name="中心", carriers=["k"], agents=[EepAgent("A0", "中心")],
                     actions=[EepAction("B1", "A0", "归档", datetime(2026, 1, 5, 16, tzinfo=UTC))], category="TQ")
    files = files or [EepFile(n, b, title="归档 PDF/A") for n, b in content.items()]
    path.write_bytes(build_eep(replace(base, **record), files, ctx.signer))  # type: ignore[arg-type]
    reseal(root)


def test_metadata_checks_catch_length_characters_range_and_archival_code(ctx: Context, bag: Path) -> None:
    """Given a re-signed EEP with an over-long title containing U+FFFD, an unknown 保管期限 and a 件号 that disagrees
    with its 档号, when received, then YJ-1-2, YJ-1-6, YJ-1-4 and YJ-1-7 each fail on that item."""
    target = eeps(bag)[0]
    _replace_eep(ctx, bag, target, title="很长的题名\ufffd" * 100, retention="长期", item_number=77)
    row = receive(ctx, bag)
    assert {"YJ-1-2", "YJ-1-4", "YJ-1-6", "YJ-1-7"} <= failed(row)
    assert "题名 长度" in details(row, "YJ-1-2") and "长期" in details(row, "YJ-1-4")
    assert "件号" in details(row, "YJ-1-7") and target.stem in {r["target"] for r in row.check_results
                                                                 if r["code"] == "YJ-1-7"}


def test_encrypted_and_non_archival_content_fail_usability(ctx: Context, bag: Path) -> None:
    """Given one EEP re-signed around an encrypted PDF and another around text that is not a PDF, when received, then
    YJ-3-8 (已加密), YJ-3-3 (不在归档格式) and YJ-1-1 fail."""
    first, second = eeps(bag)
    pdf = next(iter(eep_files(parse_eep(first.read_bytes())).values()))
    buf = io.BytesIO()
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        doc.save(buf, encryption=pikepdf.Encryption(owner="o", user="u"))
    _replace_eep(ctx, bag, first, files=[EepFile(f"{first.stem}.pdf", buf.getvalue())])
    _replace_eep(ctx, bag, second, files=[EepFile(f"{second.stem}.pdf", b"just some text, not a PDF")])
    row = receive(ctx, bag)
    assert {"YJ-3-8", "YJ-3-3", "YJ-1-1"} <= failed(row)
    assert "已加密" in details(row, "YJ-3-8") and "不在归档格式" in details(row, "YJ-3-3")


@pytest.mark.skipif(CLAMSCAN is None, reason="ClamAV (clamscan) not installed: apt-get install clamav")
def test_eicar_inside_an_eep_is_found_by_clamav(ctx: Context, bag: Path, tmp_path: Path) -> None:
    """Given clamscan configured, when a clean package is received, then YJ-4-1 and YJ-4-2 pass; when an EEP
    re-signed around EICAR is received, then YJ-4-2 fails naming the signature."""
    db = tmp_path / "clamdb"
    db.mkdir()
    (db / "archive-test.ndb").write_text(f"Archive.Test.EICAR:0:*:{eicar().hex()}\n")
    ctx.settings.clamscan, ctx.settings.clamav_database = Path(CLAMSCAN or ""), db
    clean = receive(ctx, bag)
    assert outcomes(clean)["YJ-4-2"] == {"passed"} and outcomes(clean)["YJ-4-1"] == {"passed"}
    target = eeps(bag)[0]
    _replace_eep(ctx, bag, target, files=[EepFile(f"{target.stem}.pdf", b"%PDF-1.4\n" + eicar())])
    row = receive(ctx, bag)
    assert "YJ-4-2" in failed(row) and "Archive.Test.EICAR" in details(row, "YJ-4-2")


def test_without_a_virus_engine_the_items_are_not_applicable(ctx: Context, bag: Path) -> None:
    """Given no virus engine configured, when a package is received, then YJ-4-2 is not applicable and says
    未做病毒检测."""
    row = receive(ctx, bag)
    assert outcomes(row)["YJ-4-2"] == {"not_applicable"} and "未做病毒检测" in details(row, "YJ-4-2")


def test_export_of_a_damaged_rendition_fails_and_is_not_released(ctx: Context, client: TestClient) -> None:
    """Given a stored rendition damaged behind the store's back, when exported, then YJ-1-1 fails (the EEP's file no
    longer matches the catalogue digest), the package is recorded as failed and no zip is kept."""
    from tests.checks.storage_support import flip_byte, fs_path

    codes = file_items(client, ctx, 1)
    with ctx.catalogue.sessions() as s:
        from archive.catalogue.models import ArchiveItem

        key = s.scalar(select(ArchiveItem.rendition_key))
    flip_byte(fs_path(ctx.store, key or ""))
    with ctx.catalogue.session() as s:
        row = transfer.export(ctx, s, ARCHIVIST, transfer.Selection(archival_codes=codes))
        s.flush()
        status, zip_key, results = row.status, row.zip_key, row.check_results
    assert status == "failed" and zip_key is None
    assert any(r["code"] == "YJ-1-1" and r["outcome"] == "failed" and "摘要" in r["detail"] for r in results)
    assert not list(ctx.store.list_keys("packages/"))


def test_a_zip_with_a_damaged_member_is_returned_not_crashed(ctx: Context, bag: Path, tmp_path: Path) -> None:
    """Given a zipped package with a byte flipped inside a member (its CRC no longer matches), when received, then it
    is returned with YJ-1-14 saying 已损坏: a finding, not a server error."""
    import zipfile

    out = tmp_path / "d.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for p in sorted(bag.rglob("*")):
            if p.is_file():
                z.write(p, "pkg/" + p.relative_to(bag).as_posix())
    data = bytearray(out.read_bytes())
    at = data.find("<电子文件封装包".encode())
    data[at + 400] ^= 0x01
    out.write_bytes(bytes(data))
    row = receive(ctx, out)
    assert row.status == "returned" and "YJ-1-14" in failed(row)
    assert "已损坏" in details(row, "YJ-1-14")
    shutil.rmtree(bag)


def test_attributes_structure_duplicates_and_dates(ctx: Context, bag: Path) -> None:
    """Given a declared file size that lies, a required element emptied, a missing register.pdf, a second EEP
    carrying the first one's 档号 and a 日期 in another year, when received, then YJ-1-9, YJ-2-4, YJ-1-13, YJ-1-8
    and YJ-1-5 each fail (the edited EEP's signature fails YJ-1-1 too)."""
    first, second = eeps(bag)
    ns = "{http://www.saac.gov.cn/standards/ERM/encapsulation}"
    code = parse_eep(first.read_bytes()).findtext(f".//{ns}电子文件号") or ""
    _replace_eep(ctx, bag, second, archival_code=code, item_number=int(code.rsplit("-", 1)[1]),
                 date=date(2031, 5, 1))
    text = first.read_text(encoding="utf-8")
    size = text.split("<计算机文件大小>", 1)[1].split("<", 1)[0]
    text = text.replace(f"<计算机文件大小>{size}<", f"<计算机文件大小>{int(size) + 1}<", 1)
    text = re.sub("<责任者>[^<]*<", "<责任者> <", text, count=1)
    first.write_text(text, encoding="utf-8")
    (bag / "data" / "register.pdf").unlink()
    reseal(bag)
    row = receive(ctx, bag)
    assert {"YJ-1-9", "YJ-2-4", "YJ-1-13", "YJ-1-8", "YJ-1-5", "YJ-1-1"} <= failed(row)
    assert "计算机文件大小记为" in details(row, "YJ-1-9") and "责任者" in details(row, "YJ-2-4")
    assert "register.pdf" in details(row, "YJ-1-13") and "重复" in details(row, "YJ-1-8")
    assert "晚于今天" in details(row, "YJ-1-5") or "不一致" in details(row, "YJ-1-5")


def _zip_dir(root: Path, out: Path) -> bytes:
    import zipfile

    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                z.write(p, "pkg/" + p.relative_to(root).as_posix())
    return out.read_bytes()


def test_an_items_json_too_large_for_the_package_is_refused_unparsed(ctx: Context, client: TestClient, bag: Path,
                                                                      tmp_path: Path) -> None:
    """Given an items.json of tiny objects far larger than 64 KB + 8 KB per EEP (it compresses to almost
    nothing, and json.loads would take ~50 times its size in memory), when uploaded, then 422
    transfer_tag_file_too_large naming the file and the limit, audited, no receipt and no stored object."""
    (bag / "data" / "items.json").write_text('{"items": [' + "{}," * 100_000 + "{}]}")
    reseal(bag)
    body = _zip_dir(bag, tmp_path / "big.zip")
    stored = set(ctx.store.list_keys("packages/"))  # the exported package
    add_user(ctx, "arch", ["archivist"])
    r = client.post("/api/v1/transfer-receipts", files={"file": ("big.zip", body)}, headers=login(client, "arch"))
    assert r.status_code == 422 and r.json()["code"] == "transfer_tag_file_too_large", r.text
    limit = bagit.JSON_BASE_BYTES + 2 * bagit.JSON_PER_EEP_BYTES
    assert "data/items.json" in r.json()["message"] and str(limit) in r.json()["message"]
    with ctx.catalogue.sessions() as s:
        assert s.scalar(select(TransferReceipt)) is None
        assert s.scalar(select(AuditEvent).where(AuditEvent.outcome == "refused")) is not None
    assert set(ctx.store.list_keys("packages/")) == stored


def test_items_json_is_parsed_once_per_check_run(ctx: Context, bag: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given an intact package, when it is received, then it is accepted and data/items.json was read once for all
    the checks."""
    reads: list[str] = []
    original = bagit.Bag.read

    def read(self: bagit.Bag, rel: str) -> bytes:
        reads.append(rel)
        return original(self, rel)

    monkeypatch.setattr(bagit.Bag, "read", read)
    row = receive(ctx, bag)
    assert row.status == "accepted" and reads.count("data/items.json") == 1


def test_a_register_of_the_wrong_types_returns_the_package_and_its_pdf_still_renders(
        ctx: Context, client: TestClient, bag: Path) -> None:
    """Given a register.json whose years is a number, retention_counts a list and digests a string, when
    received, then the package is returned naming the fields (YJ-3-1), the register is not kept, and the
    接收登记表 PDF renders; register_pdf itself survives such a register."""
    path = bag / "data" / "register.json"
    register = json.loads(path.read_text())
    register.update(years=5, retention_counts=["D30"], digests="abc")
    path.write_text(json.dumps(register, ensure_ascii=False))
    reseal(bag)
    row = receive(ctx, bag)
    assert row.status == "returned" and "YJ-3-1" in failed(row)
    text = details(row, "YJ-3-1")
    assert "years" in text and "retention_counts" in text and "digests" in text
    assert row.register is None and row.package_no == register["package_no"]  # from bag-info.txt
    assert transfer_register.receipt_pdf(ctx, row).startswith(b"%PDF")
    assert transfer_register.register_pdf(ctx, register).startswith(b"%PDF")
    add_user(ctx, "arch", ["archivist"])
    r = client.get(f"/api/v1/transfer-receipts/{row.id}/register.pdf", headers=login(client, "arch"))
    assert r.status_code == 200 and r.content.startswith(b"%PDF")


def test_an_over_long_package_number_is_a_finding_and_fits_the_column(ctx: Context, client: TestClient, bag: Path,
                                                                        tmp_path: Path) -> None:
    """Given a sender's 批次号 of 100 characters (the column holds 64), when uploaded, then 201 with the
    package returned (not a database error) and the stored number cut to 64."""
    long_no = "P" * 100
    path = bag / "data" / "register.json"
    register = json.loads(path.read_text())
    old_no, register["package_no"] = register["package_no"], long_no
    path.write_text(json.dumps(register, ensure_ascii=False))
    info = bag / "bag-info.txt"
    info.write_text(info.read_text().replace(old_no, long_no))
    reseal(bag)
    add_user(ctx, "arch", ["archivist"])
    r = client.post("/api/v1/transfer-receipts", files={"file": ("long.zip", _zip_dir(bag, tmp_path / "l.zip"))},
                    headers=login(client, "arch"))
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "returned" and r.json()["package_no"] == "P" * 64
    assert "package_no" in details(TransferReceipt(check_results=r.json()["check_results"]), "YJ-3-1")


def test_a_receipt_that_cannot_be_recorded_leaves_no_stored_zip(ctx: Context, bag: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a receipt whose catalogue row cannot be written (a naive time the UTC column refuses), when the package
    is received, then the error propagates and no zip is stored: the row is written before the zip."""
    from datetime import datetime as dt

    zipped = tmp_path / "p.zip"
    _zip_dir(bag, zipped)
    stored = set(ctx.store.list_keys("packages/"))  # the exported package
    monkeypatch.setattr(transfer, "utcnow", lambda: dt(2026, 1, 1))  # naive: the UTC column refuses it
    with pytest.raises(Exception, match="naive"), ctx.catalogue.session() as s:
        transfer.receive(ctx, s, ARCHIVIST, zipped, source="p.zip")
    assert set(ctx.store.list_keys("packages/")) == stored
