"""DA/T 48 EEP: an original package of the signed rendition, valid against the schema, signed, verifiable."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from lxml import etree

from signing.certificates import DevPki, KeySigner, ensure_dev_pki, load_trust_roots
from signing.eep import (
    EepAction,
    EepAgent,
    EepFile,
    EepInvalid,
    EepRecord,
    build_eep,
    eep_files,
    parse_eep,
    verify_eep,
)
from signing.eep_schema import NAMESPACE, schema
from signing.fixity import Digests, digest_bytes

PDF_NAME = "J001-YW·2024-D30-TQ-000017.pdf"


def _record(**overrides: object) -> EepRecord:
    values: dict[str, object] = dict(
        archival_code="J001-YW·2024-D30-TQ-000017", fonds_code="J001", year=2024, retention="D30", item_number=17,
        title="张三 提取住房公积金（购房）", responsible="住房公积金管理中心", date=dt.date(2024, 3, 1),
        unit_name="住房公积金管理中心", fonds_name="住房公积金管理中心", category="TQ", pages=3,
        carriers=["renditions/ab/cd/abcd"],
        agents=[EepAgent("A1", "住房公积金管理中心"), EepAgent("A2", "李四", "个人", position="柜员")],
        actions=[EepAction("B1", "A2", "受理", dt.datetime(2024, 3, 1, 9, tzinfo=dt.UTC)),
                 EepAction("B2", "A1", "归档", dt.datetime(2024, 3, 2, 9, tzinfo=dt.UTC))])
    values.update(overrides)
    return EepRecord(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def package(signed_bt: bytes, signer: KeySigner) -> bytes:
    return build_eep(_record(), [EepFile(PDF_NAME, signed_bt, title="归档 PDF")], signer)


def _q(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"


def test_package_is_schema_valid_and_carries_the_item(package: bytes, signed_bt: bytes) -> None:
    """Given a signed rendition and its catalogue metadata, When packaged, Then the EEP is valid against our
    DA/T 48 schema, is an original package, holds 档号 parts, business actions, agents and the file byte for byte."""
    root = parse_eep(package)
    assert schema().validate(root), schema().error_log
    assert root.findtext(f"{_q('被签名对象')}/{_q('封装包类型')}") == "原始型"
    code = root.find(f".//{_q('档号')}")
    assert [(e.tag.split("}")[1], e.text) for e in code] == [
        ("全宗号", "J001"), ("年度", "2024"), ("保管期限", "D30"), ("机构或问题", "TQ"), ("室编件号", "17")]
    assert [e.text for e in root.iter(_q("业务行为"))] == ["受理", "归档"]
    assert [e.text for e in root.iter(_q("机构人员名称"))] == ["住房公积金管理中心", "李四"]
    assert eep_files(root) == {PDF_NAME: signed_bt}


def test_package_verifies_with_catalogue_digests(package: bytes, signed_bt: bytes,
                                                 roots: list[x509.Certificate]) -> None:
    """Given the package and the catalogue's digests of its file, When verified, Then every check passes."""
    report = verify_eep(package, roots, {PDF_NAME: digest_bytes(signed_bt)})
    assert report.ok, report.failures
    assert {c.name for c in report.checks} == {"readable", "schema", "package_type", "signature_present",
                                               "signature_valid", "certificate_trusted", "files", "file_fixity"}


def test_changed_metadata_breaks_the_signature(package: bytes, roots: list[x509.Certificate]) -> None:
    """Given a package whose title was edited after signing, When verified, Then signature_valid fails."""
    edited = package.replace("张三".encode(), "张五".encode(), 1)
    report = verify_eep(edited, roots)
    assert [c.name for c in report.failures] == ["signature_valid"]


def test_changed_file_data_breaks_signature_and_fixity(package: bytes, signed_bt: bytes,
                                                       roots: list[x509.Certificate]) -> None:
    """Given a package with one Base64 character of the file changed, When verified with digests,
    Then the signature and fixity fail."""
    root = parse_eep(package)
    data = root.find(f".//{_q('编码数据')}")
    text = data.text
    i = text.index("A", 200)
    data.text = text[:i] + "B" + text[i + 1:]
    edited = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    report = verify_eep(edited, roots, {PDF_NAME: digest_bytes(signed_bt)})
    assert {c.name for c in report.failures} == {"signature_valid", "file_fixity"}


def test_other_trust_root_fails_certificate_trust(package: bytes, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Given another development CA as the only root, When verified, Then certificate_trusted fails."""
    other = load_trust_roots(ensure_dev_pki(tmp_path / "other").directory)
    report = verify_eep(package, other)
    assert [c.name for c in report.failures] == ["certificate_trusted"]


def test_structure_errors_are_reported(package: bytes, roots: list[x509.Certificate]) -> None:
    """Given a package without its 版本 element or not XML at all, When verified, Then schema / readable fail."""
    root = parse_eep(package)
    root.remove(root.find(_q("版本")))
    report = verify_eep(etree.tostring(root, encoding="UTF-8"), roots)
    assert "schema" in {c.name for c in report.failures}
    assert [c.name for c in verify_eep(b"<not-xml", roots).failures] == ["readable"]


def test_signing_time_without_zone_is_read_as_beijing_time(package: bytes, roots: list[x509.Certificate]) -> None:
    """Given a package whose 签名时间 has no time zone (outside the signed part), When verified,
    Then it is read as Beijing time and the package still verifies."""
    root = parse_eep(package)
    beijing_wall_clock = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).replace(tzinfo=None)
    root.find(f".//{_q('签名时间')}").text = beijing_wall_clock.isoformat(timespec="seconds")
    report = verify_eep(etree.tostring(root, encoding="UTF-8"), roots)
    assert report.ok, report.failures
    assert report.signing_time is not None and report.signing_time.utcoffset() == dt.timedelta(hours=8)


def test_wrong_catalogue_digest_fails_fixity(package: bytes, roots: list[x509.Certificate]) -> None:
    """Given a wrong digest for the file, When verified, Then only fixity fails."""
    report = verify_eep(package, roots, {PDF_NAME: Digests("0" * 64, "0" * 64, 1)})
    assert [c.name for c in report.failures] == ["file_fixity"]


def test_incomplete_input_is_refused(signer: KeySigner, pki: DevPki) -> None:
    """Given no files, or no storage carrier, When packaging, Then EepInvalid with a clear code."""
    with pytest.raises(EepInvalid) as err:
        build_eep(_record(), [], signer)
    assert err.value.code == "eep_no_files"
    with pytest.raises(EepInvalid) as err:
        build_eep(_record(carriers=[]), [EepFile("a.pdf", b"%PDF")], signer)
    assert err.value.code == "eep_incomplete"


def test_cli_verify_accepts_an_eep(package: bytes, pki: DevPki, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Given an EEP file, When `verify` runs on it with the package's catalogue digests, Then exit 0;
    with the title edited, Then exit 1 naming signature_valid."""
    from typer.testing import CliRunner

    from archive.commands import signing as cli

    path = tmp_path / "item.eep"
    path.write_bytes(package)
    d = digest_bytes(package)
    args = ["verify", str(path), "--pki-dir", str(pki.directory), "--sha256", d.sha256, "--sm3", d.sm3]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    path.write_bytes(package.replace("张三".encode(), "张五".encode(), 1))
    result = CliRunner().invoke(cli.app, args[:4])
    assert result.exit_code == 1
    assert "signature_valid" in result.output
