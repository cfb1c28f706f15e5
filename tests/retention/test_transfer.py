"""Transfer packages (移交 / 接收): export as BagIt + EEP, register, download, receive and verify.

Tampered packages (flipped byte, missing file, totals that disagree …) are in tests/checks/test_yj.py;
this file covers the happy paths, the API and CLI, and the containers refused before any check runs.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from archive.audit import Actor
from archive.catalogue.models import ArchiveItem, AuditEvent, CheckReport, TransferPackage, TransferReceipt
from archive.cli import app as cli_app
from archive.context import Context
from archive.errors import ArchiveError
from archive.retention import transfer
from archive.retention.transfer import Selection
from signing.certificates import load_trust_roots
from signing.eep import verify_eep
from signing.fixity import digest_bytes
from tests.factories import file_cases
from tests.helpers import add_client, add_user, login

ARCHIVIST = Actor("user", "arch")
SERIALS = ("YW2026010500001", "YW2026010500002", "YW2026010500003")


def file_items(client: TestClient, ctx: Context, n: int = 3) -> list[str]:
    """File ``n`` 提取 cases through the API; their 档号 in order."""
    return file_cases(client, add_client(ctx, "core", ["cases.write", "data.read", "pii.read"]), SERIALS[:n])


@pytest.fixture
def codes(client: TestClient, ctx: Context) -> list[str]:
    return file_items(client, ctx)


def export(ctx: Context, codes: list[str]) -> TransferPackage:
    with ctx.catalogue.session() as s:
        row = transfer.export(ctx, s, ARCHIVIST, Selection(archival_codes=codes), receiver="市档案馆")
        s.expunge(row)
    return row


def snapshot(ctx: Context) -> list[tuple[str, str, str | None, str]]:
    """What must not change when a transfer is made or refused: each item and its stored rendition bytes."""
    with ctx.catalogue.sessions() as s:
        items = list(s.scalars(select(ArchiveItem).order_by(ArchiveItem.id)))
        return [(i.archival_code, i.status, i.rendition_sha256,
                 digest_bytes(ctx.store.get(i.rendition_key or "").read()).sha256) for i in items]


def test_export_builds_a_bag_of_signed_eeps_with_a_register(ctx: Context, codes: list[str]) -> None:
    """Given three filed items, when exported by 档号, then the zip is a BagIt bag whose manifests, EEP
    signatures and register totals all agree, it is kept in the store, recorded and audited."""
    before = snapshot(ctx)
    row = export(ctx, codes)
    assert row.status == "released", [r for r in row.check_results if r["outcome"] != "passed"]
    assert row.item_count == 3 and row.receiver == "市档案馆"
    data = ctx.store.get(row.zip_key or "").read()
    assert digest_bytes(data).sha256 == row.zip_sha256 and len(data) == row.zip_size
    z = zipfile.ZipFile(io.BytesIO(data))
    root = f"{row.package_no}/"
    names = set(z.namelist())
    assert {root + n for n in ("bagit.txt", "bag-info.txt", "manifest-sha256.txt", "manifest-sm3.txt",
                               "tagmanifest-sha256.txt", "data/items.json", "data/register.json",
                               "data/register.pdf")} <= names
    assert z.read(root + "bagit.txt").startswith(b"BagIt-Version: 1.0")
    manifest, sm3 = ({path: digest for digest, path in (line.split("  ", 1) for line in
                                                        z.read(root + f"manifest-{alg}.txt").decode().splitlines())}
                     for alg in ("sha256", "sm3"))
    payload = sorted(n[len(root):] for n in names if n.startswith(root + "data/"))
    assert sorted(manifest) == sorted(sm3) == payload
    for rel in payload:
        d = digest_bytes(z.read(root + rel))
        assert (manifest[rel], sm3[rel]) == (d.sha256, d.sm3)
    tag = z.read(root + "tagmanifest-sha256.txt")
    assert digest_bytes(tag).sha256 == row.bag_sha256
    roots = load_trust_roots(ctx.settings.pki_path)
    eeps = [n for n in payload if n.startswith("data/eep/")]
    assert sorted(eeps) == sorted(f"data/eep/{c}.eep" for c in codes)
    assert all(verify_eep(z.read(root + n), roots).ok for n in eeps)
    register = json.loads(z.read(root + "data/register.json"))
    assert register["item_count"] == 3 and register["retention_counts"] == {"D30": 3}
    assert register["payload_bytes"] == sum(z.getinfo(root + n).file_size for n in eeps)
    assert register["years"] == [2026, 2026] and register["receiver"] == "市档案馆"
    assert register["digests"]["sha256"] == digest_bytes(z.read(root + "data/items.json")).sha256
    assert z.read(root + "data/register.pdf").startswith(b"%PDF")
    info = z.read(root + "bag-info.txt").decode()
    assert f"Payload-Oxum: {sum(z.getinfo(root + n).file_size for n in payload)}.{len(payload)}" in info
    codes_run = {r["code"] for r in row.check_results}
    assert {"YJ-1-1", "YJ-1-14", "YJ-2-1", "YJ-2-2", "YJ-2-11", "YJ-3-3", "YJ-4-2", "YJ-4-7"} <= codes_run
    assert all(r["outcome"] in ("passed", "not_applicable") for r in row.check_results)
    with ctx.catalogue.sessions() as s:
        event = s.scalar(select(AuditEvent).where(AuditEvent.action == "transfer.export"))
    assert event is not None and event.target_id == row.package_no and event.detail["zip_sha256"] == row.zip_sha256
    with ctx.catalogue.sessions() as s:
        report = s.get(CheckReport, row.report_id)
        assert report is not None and report.stage == "yj" and report.passed
        assert {r.code for r in report.results} == codes_run
    assert snapshot(ctx) == before


def test_export_by_filters_and_refusals(ctx: Context, codes: list[str]) -> None:
    """Given three filed TQ items, when items are selected by category, year and period, then all three; when the
    selection is empty or names an unknown 档号, then selection_empty or item_not_found naming it; a selection
    with no criteria at all cannot be made (至少一个筛选条件)."""
    with ctx.catalogue.sessions() as s:
        assert len(transfer.select_items(s, Selection(category="TQ", year=2026, retention_code="D30"))) == 3
        with pytest.raises(ArchiveError) as err:
            transfer.select_items(s, Selection(year=2001))
        assert err.value.code == "selection_empty"
        with pytest.raises(ArchiveError) as err:
            transfer.select_items(s, Selection(archival_codes=[codes[0], "J001-YW·2026-D30-TQ-999999"]))
        assert err.value.code == "item_not_found" and "999999" in err.value.message
    with pytest.raises(ValueError, match="至少一个筛选条件"):
        Selection()


def test_a_branch_limited_archivist_exports_only_her_branchs_items(ctx: Context, client: TestClient,
                                                                  codes: list[str]) -> None:
    """Given items of branch BR01, an archivist of BR02 can neither name them nor select them by filter
    (refused as unknown: existence must not leak); one of BR01 exports them."""
    add_user(ctx, "other", ["archivist"], branch="BR02")
    add_user(ctx, "mine", ["archivist"], branch="BR01")
    other = login(client, "other")
    r = client.post("/api/v1/transfers", json={"archival_codes": codes[:1]}, headers=other)
    assert r.status_code == 404 and r.json()["code"] == "item_not_found" and codes[0] in r.json()["message"]
    r = client.post("/api/v1/transfers", json={"category": "TQ"}, headers=other)
    assert r.status_code == 404 and r.json()["code"] == "selection_empty"
    with ctx.catalogue.sessions() as s:
        assert s.scalar(select(func.count()).select_from(TransferPackage)) == 0
    r = client.post("/api/v1/transfers", json={"category": "TQ"}, headers=login(client, "mine"))
    assert r.status_code == 201 and r.json()["item_count"] == 3


def test_a_reappraised_item_is_transferred_with_both_retentions(ctx: Context, client: TestClient) -> None:
    """Given a D30 item re-appraised to 永久 (its 档号 keeps D30), when exported, then YJ-1-7 passes: the 档号
    is checked against the filed retention; items.json carries both, the EEP the one in force."""
    codes = file_items(client, ctx, 1)
    with ctx.catalogue.session() as s:
        s.execute(update(ArchiveItem).values(current_retention="Y"))
    row = export(ctx, codes)
    assert row.status == "released", [r for r in row.check_results if r["outcome"] != "passed"]
    assert {r["outcome"] for r in row.check_results if r["code"] == "YJ-1-7"} == {"passed"}
    z = zipfile.ZipFile(io.BytesIO(ctx.store.get(row.zip_key or "").read()))
    [entry] = json.loads(z.read(f"{row.package_no}/data/items.json"))["items"]
    assert (entry["retention_code"], entry["effective_retention"]) == ("D30", "Y")
    assert "<保管期限>永久</保管期限>" in z.read(f"{row.package_no}/data/eep/{codes[0]}.eep").decode()


def test_api_export_download_receive_round_trip(ctx: Context, client: TestClient, codes: list[str]) -> None:
    """Given an archivist, when she exports through the API, downloads the zip and uploads it as received with
    the sender's digest, then the receipt is accepted and both registers come out as PDF."""
    add_user(ctx, "arch", ["archivist"])
    h = login(client, "arch")
    r = client.post("/api/v1/transfers", json={"category": "TQ", "receiver": "市档案馆"}, headers=h)
    assert r.status_code == 201, r.text
    package = r.json()
    assert package["status"] == "released" and package["item_count"] == 3
    r = client.get(f"/api/v1/transfers/{package['id']}/package.zip", headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert digest_bytes(r.content).sha256 == package["zip_sha256"]
    zipped = r.content
    r = client.get(f"/api/v1/transfers/{package['id']}/register.pdf", headers=h)
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    r = client.post("/api/v1/transfer-receipts", files={"file": ("移交.zip", zipped, "application/zip")},
                    data={"sender_sha256": package["zip_sha256"]}, headers=h)
    assert r.status_code == 201, r.text
    receipt = r.json()
    assert receipt["status"] == "accepted", receipt["failed"]
    assert receipt["package_no"] == package["package_no"] and receipt["item_count"] == 3
    assert receipt["sha256"] == package["zip_sha256"] and receipt["message"].startswith("信息包通过")
    assert receipt["report_id"] is not None and receipt["register"]["item_count"] == 3
    assert {c["code"]: c["outcome"] for c in receipt["check_results"]}["YJ-4-7"] == "passed"
    r = client.get(f"/api/v1/transfer-receipts/{receipt['id']}/register.pdf", headers=h)
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    assert client.get("/api/v1/transfer-receipts", headers=h).json()[0]["id"] == receipt["id"]
    with ctx.catalogue.sessions() as s:
        actions = [e.action for e in s.scalars(select(AuditEvent).where(AuditEvent.action.like("transfer.%"))
                                               .order_by(AuditEvent.seq))]
    assert actions == ["transfer.export", "transfer.download", "transfer.receive"]


def test_a_wrong_sender_digest_returns_the_package(ctx: Context, client: TestClient, codes: list[str]) -> None:
    """Given the sender declared another digest, when received, then 信息包一致性 fails and it is returned."""
    row = export(ctx, codes[:1])
    add_user(ctx, "arch", ["archivist"])
    h = login(client, "arch")
    r = client.post("/api/v1/transfer-receipts", files={"file": ("p.zip", ctx.store.get(row.zip_key or "").read())},
                    data={"sender_sha256": "0" * 64}, headers=h)
    assert r.status_code == 201 and r.json()["status"] == "returned"
    assert "YJ-1-14" in r.json()["failed"] and "退回" in r.json()["message"]


def test_transfer_needs_the_permission(ctx: Context, client: TestClient, codes: list[str]) -> None:
    """Given filed items and a clerk, when the clerk exports or uploads a package, then 403 each, and no package and
    no transfer audit event is made."""
    add_user(ctx, "clerk", ["clerk"])
    h = login(client, "clerk")
    r = client.post("/api/v1/transfers", json={"archival_codes": codes}, headers=h)
    assert r.status_code == 403 and r.json()["code"] == "permission_denied"
    r = client.post("/api/v1/transfer-receipts", files={"file": ("p.zip", b"PK")}, headers=h)
    assert r.status_code == 403
    with ctx.catalogue.sessions() as s:
        assert s.scalar(select(func.count()).select_from(TransferPackage)) == 0
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action.like("transfer.%"))) == 0


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


BAG = {"p/bagit.txt": b"BagIt-Version: 1.0\n", "p/data/x.txt": b"x"}


def _declaring_4gb() -> bytes:
    """A tiny zip whose central directory declares a 4 GB member (the header lies)."""
    data = bytearray(_zip(BAG))
    at = data.rfind(b"PK\x01\x02")  # central directory header of the last member
    data[at + 24:at + 28] = (0xFFFFFFF0).to_bytes(4, "little")  # uncompressed size
    return bytes(data)


@pytest.mark.parametrize(("name", "body", "code"), [
    ("not-a-zip", b"%PDF-1.7 this is not a zip", "transfer_not_zip"),
    ("empty", b"", "transfer_not_zip"),
    ("traversal", _zip({**BAG, "p/../../etc/evil.txt": b"x"}), "transfer_unsafe_path"),
    ("absolute", _zip({**BAG, "/etc/evil.txt": b"x"}), "transfer_unsafe_path"),
    ("backslash", _zip({**BAG, "p\\..\\evil.txt": b"x"}), "transfer_unsafe_path"),
    ("no-bagit", _zip({"p/data/x.txt": b"x"}), "transfer_not_bag"),
    ("bomb", _zip({**BAG, "p/data/zeros.bin": bytes(3 * 1024 * 1024)}), "transfer_too_large"),
    ("lying-header", _declaring_4gb(), "transfer_too_large"),
])
def test_hostile_uploads_are_refused_and_audited(ctx: Context, client: TestClient, name: str, body: bytes,
                                                 code: str) -> None:
    """Given a non-zip, a zip with ../ or absolute paths, no bagit.txt, or more unpacked bytes than allowed
    (the compressed upload is tiny), when uploaded, then 422 with a Chinese message and a stable code, a
    ``refused`` audit event, no receipt and no stored object."""
    ctx.settings.transfer_max_package_mb = 2
    add_user(ctx, "arch", ["archivist"])
    h = login(client, "arch")
    r = client.post("/api/v1/transfer-receipts", files={"file": (f"{name}.zip", body)}, headers=h)
    assert r.status_code == 422, r.text
    assert (r.json()["code"] == code and "拒收" in r.json()["message"]) or "不是" in r.json()["message"]
    with ctx.catalogue.sessions() as s:
        assert s.scalar(select(func.count()).select_from(TransferReceipt)) == 0
        event = s.scalar(select(AuditEvent).where(AuditEvent.action == "transfer.receive"))
    assert event is not None and event.outcome == "refused" and event.detail["code"] == code
    assert not list(ctx.store.list_keys("packages/"))


def test_upload_over_the_size_limit_is_refused(ctx: Context, client: TestClient) -> None:
    """Given a package limit of 1 MB, when an archivist uploads a package just over it, then 413 transfer_too_large."""
    ctx.settings.transfer_max_package_mb = 1
    add_user(ctx, "arch", ["archivist"])
    r = client.post("/api/v1/transfer-receipts", files={"file": ("big.zip", b"PK" + bytes(1024 * 1024 + 10))},
                    headers=login(client, "arch"))
    assert r.status_code == 413 and r.json()["code"] == "transfer_too_large"


def test_cli_export_as_directory_and_receive_it(ctx: Context, client: TestClient, codes: list[str], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Given filed items, when `archive transfer export --dir` runs, then it writes a BagIt directory of two EEPs
    that `archive transfer receive` accepts (已接收); with a flipped byte, receive exits 1 and says 退回;
    `register` writes the PDF, an unknown package exits 2 transfer_not_found and `list` shows the returned
    receipt."""
    monkeypatch.setenv("ARCHIVE_DATA_DIR", str(ctx.settings.data_dir))
    monkeypatch.setenv("ARCHIVE_DATABASE_URL", ctx.settings.catalogue_url)
    runner = CliRunner()
    out = tmp_path / "bag"
    r = runner.invoke(cli_app, ["transfer", "export", *codes[:2], "--receiver", "市档案馆", "--out", str(out), "--dir"])
    assert r.exit_code == 0, r.output
    assert (out / "bagit.txt").is_file() and len(list((out / "data" / "eep").iterdir())) == 2
    r = runner.invoke(cli_app, ["transfer", "receive", str(out)])
    assert r.exit_code == 0, r.output
    assert "已接收" in r.output
    eep = next((out / "data" / "eep").iterdir())
    data = bytearray(eep.read_bytes())
    data[len(data) // 2] ^= 0x01
    eep.write_bytes(bytes(data))
    r = runner.invoke(cli_app, ["transfer", "receive", str(out)])
    assert r.exit_code == 1 and "退回" in r.output
    r = runner.invoke(cli_app, ["transfer", "register", "--receipt", "2", "--out", str(tmp_path / "r.pdf")])
    assert r.exit_code == 0 and (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF")
    r = runner.invoke(cli_app, ["transfer", "receive", str(tmp_path / "nothing.zip")])
    assert r.exit_code == 2 and "transfer_not_found" in r.output
    r = runner.invoke(cli_app, ["transfer", "list"])
    assert r.exit_code == 0 and "returned" in r.output


def test_another_instance_verifies_against_its_own_trust_roots(ctx: Context, codes: list[str],
                                                               tmp_path: Path) -> None:
    """Given a second instance with its own PKI, when it receives our package, then the EEP signatures are
    untrusted (YJ-1-1, returned) until our root certificate is placed under its pki/trust/; then accepted."""
    from archive.commands.common import ensure_fonds
    from archive.settings import load_settings
    from signing.certificates import ensure_dev_pki

    row = export(ctx, codes[:1])
    zipped = tmp_path / "in.zip"
    zipped.write_bytes(ctx.store.get(row.zip_key or "").read())
    other = Context.build(load_settings(data_dir=tmp_path / "other"))
    try:
        other.catalogue.upgrade()
        ensure_fonds(other)
        ensure_dev_pki(other.settings.pki_path)
        with other.catalogue.session() as s:
            first = transfer.receive(other, s, ARCHIVIST, zipped, source="in.zip", sender_sha256=row.zip_sha256)
            assert first.status == "returned"
            assert [r["code"] for r in first.check_results if r["outcome"] == "failed"] == ["YJ-1-1"]
            assert "信任的根证书" in next(r["detail"] for r in first.check_results if r["code"] == "YJ-1-1")
        (other.settings.pki_path / "trust").mkdir(exist_ok=True)
        shutil.copyfile(ctx.settings.pki_path / "ca.pem", other.settings.pki_path / "trust" / "sender.pem")
        with other.catalogue.session() as s:
            second = transfer.receive(other, s, ARCHIVIST, zipped, source="in.zip", sender_sha256=row.zip_sha256)
            assert second.status == "accepted" and second.package_no == row.package_no
    finally:
        other.close()
