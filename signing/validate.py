"""Independent verification of a signed archival PDF: one report, one check per property.

Checks (stable names): fixity (SHA-256 and SM3 against the catalogue), readable, signature_present;
per signature: signature_intact, signature_valid, certificate_trusted, signing_time, timestamp,
coverage, contents_padding, signature_container; then pdfa (PDF/A-2b of the signed revision).
A one-byte change anywhere in the file fails at least one of them, even without catalogue digests:
the signature covers every byte except /Contents, and /Contents is checked here.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from asn1crypto import cms
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.utils import CryptographyDeprecationWarning
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from signing.certificates import to_asn1_certificate
from signing.fixity import Digests, digest_bytes
from signing.pdfa import pdfa_problems

_KEY_USAGE = KeyUsageConstraints(key_usage={"digital_signature", "non_repudiation"}, match_all_key_usages=False)
_HEX = re.compile(rb"[0-9A-Fa-f]*")


#: What a check found: it passed, it failed, or there was nothing to check (a B-B signature has no
#: time stamp: not a failure, but not a pass either).
PASSED, FAILED, ABSENT = "passed", "failed", "absent"
NO_TIMESTAMP = "无时间戳（PAdES B-B，仅证明签章时的完整性）"


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str
    signature: str | None = None  # the signature field the check is about
    status: str = ""  # PASSED, FAILED or ABSENT; derived from ``passed`` when not given

    def __post_init__(self) -> None:
        if not self.status:
            object.__setattr__(self, "status", PASSED if self.passed else FAILED)


@dataclass
class VerificationReport:
    checks: list[Check] = field(default_factory=list)
    level: str | None = None  # PAdES baseline of the last signature: B-B or B-T
    signer: str | None = None
    signing_time: dt.datetime | None = None
    digests: Digests | None = None

    @property
    def ok(self) -> bool:
        return bool(self.checks) and not self.failures

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAILED]

    def add(self, name: str, passed: bool, detail: str, signature: str | None = None) -> None:
        self.checks.append(Check(name, bool(passed), detail, signature))

    def add_absent(self, name: str, detail: str, signature: str | None = None) -> None:
        """Nothing to check (e.g. no time stamp): neither passed nor failed."""
        self.checks.append(Check(name, False, detail, signature, ABSENT))

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "level": self.level, "signer": self.signer,
                "signing_time": self.signing_time.isoformat() if self.signing_time else None,
                "digests": asdict(self.digests) if self.digests else None,
                "checks": [asdict(c) for c in self.checks]}


def verify_pdf(data: bytes, trust_roots: Sequence[x509.Certificate], expected: Digests | None = None, *,
               require_timestamp: bool = False, check_pdfa: bool = True) -> VerificationReport:
    """Verify every signature of ``data`` against ``trust_roots``, its PDF/A-2b conformance and fixity."""
    digests = digest_bytes(data)
    report = VerificationReport(digests=digests)
    check_fixity(report, digests, expected)
    try:
        signatures = PdfFileReader(io.BytesIO(data), strict=False).embedded_signatures
    except Exception as exc:  # any parse failure means "not a readable PDF"
        report.add("readable", False, f"文件无法作为 PDF 读取：{exc}")
        return report
    report.add("readable", True, "文件可以作为 PDF 读取")
    if not signatures:
        report.add("signature_present", False, "文件没有电子签名")
    else:
        report.add("signature_present", True, f"文件有 {len(signatures)} 个电子签名")
        context = ValidationContext(trust_roots=[to_asn1_certificate(c) for c in trust_roots],
                                    allow_fetching=False, revocation_mode="soft-fail")
        for index, sig in enumerate(signatures):
            _check_signature(report, sig, data, context, trust_roots, last=index == len(signatures) - 1,
                             require_timestamp=require_timestamp)
    if check_pdfa:
        revision = _signed_revision(data, signatures)
        try:
            problems = pdfa_problems(revision)
        except Exception as exc:  # a damaged file can break the checker in many ways
            problems = [f"pikepdf:internal: {type(exc).__name__}: {exc}"]
        what = "签章时的版本" if len(revision) == len(data) else f"签章时的版本（前 {len(revision)} 字节）"
        report.add("pdfa", not problems,
                   f"{what}符合 PDF/A-2b" if not problems else f"{what}不符合 PDF/A-2b：" + "；".join(problems[:5]))
    return report


def check_fixity(report: VerificationReport, actual: Digests, expected: Digests | None) -> None:
    """Add the ``fixity`` check: the file's digests against the catalogue's (passes with a note when none)."""
    if expected is None:
        report.add("fixity", True, f"未提供目录中的摘要，仅计算：SHA-256 {actual.sha256}，SM3 {actual.sm3}")
        return
    wrong = [name for name, a, e in (("SHA-256", actual.sha256, expected.sha256), ("SM3", actual.sm3, expected.sm3),
                                     ("大小", str(actual.size), str(expected.size))) if a.lower() != e.lower()]
    report.add("fixity", not wrong,
               "SHA-256、SM3 摘要与目录一致" if not wrong else f"{'、'.join(wrong)}与目录记录不一致，文件已被改动")


def _lta_updates_only(status: Any) -> bool:
    """Whether everything after this signature's revision is long-term validation data (DSS, document time
    stamps: PAdES B-LT/B-LTA), which ISO 32000-2 and PAdES do not count as a modification."""
    return getattr(status, "modification_level", None) in (ModificationLevel.NONE, ModificationLevel.LTA_UPDATES) \
        and status.coverage is not None and status.coverage >= SignatureCoverageLevel.ENTIRE_REVISION


def _signed_revision(data: bytes, signatures: Sequence[EmbeddedPdfSignature]) -> bytes:
    # the revision the (last regular) signature covers; later DSS and document time-stamp updates are not PDF/A-2
    regular = [s for s in signatures if s.sig_object_type != "/DocTimeStamp"] or list(signatures)
    try:
        _start, _len1, start2, len2 = (int(v) for v in regular[-1].sig_object["/ByteRange"])
    except (IndexError, KeyError, TypeError, ValueError):
        return data
    return data[: start2 + len2]


def _contents(sig: EmbeddedPdfSignature, data: bytes) -> tuple[bytes | None, str]:
    """/Contents as written. Being outside the ByteRange, its encoding and padding are checked here:
    hex digits of one case only, zeros after the DER object."""
    try:
        _s, len1, start2, _l2 = (int(v) for v in sig.sig_object["/ByteRange"])
    except (KeyError, TypeError, ValueError):
        return None, "/ByteRange 无效"
    raw = data[len1:start2]
    if len(raw) < 2 or raw[:1] != b"<" or raw[-1:] != b">" or not _HEX.fullmatch(raw[1:-1]):
        return None, "/Contents 不是十六进制字符串"
    digits = raw[1:-1]
    if digits.lower() != digits and digits.upper() != digits:
        return None, "/Contents 的十六进制字母大小写混杂（被改动过）"
    contents = bytes.fromhex(digits.decode("ascii"))
    try:
        der_length = len(cms.ContentInfo.load(contents, strict=False).dump())
    except (ValueError, TypeError) as exc:
        return None, f"/Contents 无法解析：{exc}"
    if any(contents[der_length:]):
        return None, "/Contents 中签名之后的填充区被改动"
    return contents[:der_length], "/Contents 编码与填充区未被改动"


_KNOWN_UNSIGNED_ATTRIBUTES = {"signature_time_stamp_token"}


def _content_infos(contents: bytes) -> list[cms.ContentInfo]:
    """The CMS object of the signature and those of the signature time-stamp tokens inside it.

    Each is first parsed by cryptography's strict DER parser, which refuses what asn1crypto would skip
    over, then entirely by asn1crypto (``.native``), so a damaged field is an error, not ignored.
    """
    main = cms.ContentInfo.load(contents)
    found = [main]
    for info in main["content"]["signer_infos"]:
        for attr in info["unsigned_attrs"] or []:
            if attr["type"].native == "signature_time_stamp_token":
                found += list(attr["values"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no silent fallback to BER parsing
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        for content_info in found:
            pkcs7.load_der_pkcs7_certificates(content_info.dump())
    main.native  # noqa: B018
    return found


def _container_problems(contents: bytes, roots: Sequence[x509.Certificate]) -> list[str]:
    """The parts of the CMS object no signature covers must be sound: strict DER with nothing unparsed,
    embedded certificates that verify under their issuers, only known unsigned attributes,
    digestAlgorithms matching the signers, version numbers as RFC 5652 prescribes."""
    problems, certs = [], []
    try:
        content_infos = _content_infos(contents)
    except (ValueError, UserWarning) as exc:
        return [f"签名结构不是规范的 DER 编码，或含有无法识别的部分（{exc}）"]
    for content_info in content_infos:
        signed = content_info["content"]
        problems += _version_problems(signed)
        used = {info["digest_algorithm"]["algorithm"].dotted for info in signed["signer_infos"]}
        listed = {alg["algorithm"].dotted for alg in signed["digest_algorithms"]}
        if used != listed:
            problems.append("digestAlgorithms 与签名者使用的摘要算法不一致")
        for info in signed["signer_infos"]:
            unknown = [a["type"].dotted for a in info["unsigned_attrs"] or []
                       if a["type"].native not in _KNOWN_UNSIGNED_ATTRIBUTES]
            if unknown:
                problems.append(f"签名中有无法识别的未签名属性 {', '.join(unknown)}")
        with warnings.catch_warnings():  # a damaged certificate may only warn (e.g. a negative serial)
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            certs += [x509.load_der_x509_certificate(c.chosen.dump()) for c in signed["certificates"] or []]
    pool = [*certs, *roots]
    for cert in certs:
        if not any(_issued_by(cert, issuer) for issuer in pool):
            problems.append(f"嵌入的证书无法用其签发者验证（被改动或缺少签发者）：{cert.subject.rfc4514_string()}")
    return problems


def _version_problems(signed: cms.SignedData) -> list[str]:
    """The version numbers RFC 5652 prescribes (5.1, 5.3) for what the structures hold."""
    problems = []
    signer_versions = []
    for info in signed["signer_infos"]:
        expected = "v1" if info["sid"].name == "issuer_and_serial_number" else "v3"
        signer_versions.append(info["version"].native)
        if info["version"].native != expected:
            problems.append(f"SignerInfo 的版本号 {info['version'].native} 与其结构不符")
    other_content = signed["encap_content_info"]["content_type"].native != "data"
    expected = "v3" if other_content or "v3" in signer_versions else "v1"
    if signed["version"].native != expected and signed["version"].native not in ("v4", "v5"):
        problems.append(f"SignedData 的版本号 {signed['version'].native} 与其结构不符")
    return problems


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _name(cert: Any) -> str:
    """Common name of an asn1crypto certificate (or trust anchor), else its whole subject."""
    subject = getattr(cert, "subject", None) or getattr(cert, "name", None)
    if subject is None:
        return str(cert)
    return str(subject.native.get("common_name") or subject.human_friendly)


def _check_signature(report: VerificationReport, sig: EmbeddedPdfSignature, data: bytes,
                     context: ValidationContext, roots: Sequence[x509.Certificate], *, last: bool,
                     require_timestamp: bool) -> None:
    name = sig.field_name
    try:
        if sig.sig_object_type == "/DocTimeStamp":
            status: Any = validate_pdf_timestamp(sig, validation_context=context)
        else:
            status = validate_pdf_signature(sig, signer_validation_context=context, key_usage_settings=_KEY_USAGE)
    except Exception as exc:  # a damaged signature can fail in many ways
        report.add("signature_intact", False, f"签名无法验证：{exc}", name)
        return
    report.add("signature_intact", status.intact,
               "签名覆盖的内容未被改动" if status.intact else "签名覆盖的内容已被改动（摘要不一致）", name)
    report.add("signature_valid", status.valid,
               "签名值正确" if status.valid else "签名值不正确（签名或证书被改动）", name)
    subject = _name(status.signing_cert)
    if status.trusted:
        anchor = _name(status.validation_path[0]) if status.validation_path else ""
        report.add("certificate_trusted", True, f"证书链可信：{subject} → {anchor}", name)
    else:
        report.add("certificate_trusted", False,
                   f"证书不能验证到信任的根证书（{subject}）：{status.trust_problem_indic or '路径无法建立'}", name)
    timestamp = getattr(status, "timestamp_validity", None)
    if sig.sig_object_type == "/DocTimeStamp":
        when, source = status.timestamp, "文档时间戳"
    elif timestamp is not None:
        when, source = timestamp.timestamp, "时间戳"
    else:
        when, source = status.signer_reported_dt, "签章人自报时间（无时间戳）"
    cert = status.signing_cert
    in_validity = when is not None and cert.not_valid_before <= when <= cert.not_valid_after
    report.add("signing_time", in_validity,
               f"签章时间 {when:%Y-%m-%d %H:%M:%S %Z}（{source}）" + ("" if in_validity else "，不在证书有效期内")
               if when else "没有签章时间", name)
    if timestamp is not None:
        ok = timestamp.intact and timestamp.valid and timestamp.trusted
        report.add("timestamp", ok, "时间戳有效且可信" if ok else
                   f"时间戳无效（完整 {timestamp.intact}，签名 {timestamp.valid}，可信 {timestamp.trusted}）", name)
    elif sig.sig_object_type != "/DocTimeStamp":
        if require_timestamp:
            report.add("timestamp", False, NO_TIMESTAMP + "，但要求有时间戳", name)
        else:
            report.add_absent("timestamp", NO_TIMESTAMP, name)
    lta_only = _lta_updates_only(status)
    if last:
        whole = status.coverage == SignatureCoverageLevel.ENTIRE_FILE or lta_only
        level = status.coverage.name if status.coverage else "未知"
        report.add("coverage", whole, "签名覆盖整个文件" if whole else
                   f"签名没有覆盖整个文件（{level}），签章后文件被追加了内容", name)
        report.level = "B-T" if timestamp is not None else "B-B"
        if sig.sig_object_type == "/DocTimeStamp" or lta_only:  # PAdES B-LT / B-LTA (signing.ltv)
            from signing.ltv import level_of

            report.level = level_of(data)
        report.signer = subject
        report.signing_time = when
    else:
        ok = (bool(status.docmdp_ok) or lta_only) and status.coverage is not None and \
            status.coverage >= SignatureCoverageLevel.ENTIRE_REVISION
        report.add("coverage", ok, "签名覆盖其版本，之后的修改是允许的" if ok else "签名之后的修改不被允许", name)
    contents, detail = _contents(sig, data)
    report.add("contents_padding", contents is not None, detail, name)
    if contents is not None:
        try:
            bad = _container_problems(contents, roots)
        except Exception as exc:  # a damaged structure can fail in many ways
            bad = [f"签名结构无法解析（{exc}）"]
        report.add("signature_container", not bad, "签名结构中未受签名保护的部分未被改动" if not bad else
                   "；".join(bad), name)
