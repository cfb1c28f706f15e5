"""Offline long-term verification of a signed archival PDF, now or at a given future time.

Uses only what the file carries (certificates and revocation data in the document security store, the tokens of
its time stamps) and the trust roots; never the network. The evidence is a chain:

1. ``signature_intact``: the signature covers its revision unchanged and its value is right;
2. ``signer_trusted``: the signer's certificate chains to a trusted root and was valid and not revoked at the
   signing time proven by the signature's time stamp (checked with the embedded revocation data);
3. ``timestamp``: that time stamp is intact and its TSA certificate was trusted and unrevoked when it was made;
4. ``validation_data``: the file carries revocation data (OCSP or CRL) for every certificate the evidence rests on;
5. ``archive_timestamps``: each document time stamp covers everything before it and was made while the previous
   time stamp's TSA certificate was still valid (and its algorithm not weak); the newest one's TSA certificate is
   valid at the time of verification;
6. ``pdfa``: the signed revision is PDF/A-2b.

The evidence holds until the newest time stamp's TSA certificate expires (or its algorithm is declared weak):
``holds_until``; a renewal (signing.ltv.renew) before then extends it.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from cryptography import x509
from pyhanko.pdf_utils.decode_limits import DecodePurpose
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
from pyhanko.sign.validation.dss import DocumentSecurityStore, NoDSSFoundError
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from signing.certificates import to_asn1_certificate
from signing.ltv import TimeStampInfo, level_of, signature_timestamp_tokens, signed_revision, time_stamps
from signing.pdfa import pdfa_problems

_KEY_USAGE = KeyUsageConstraints(key_usage={"digital_signature", "non_repudiation"}, match_all_key_usages=False)
LAYERS = ("signature_intact", "signer_trusted", "timestamp", "validation_data", "archive_timestamps", "pdfa")
DEFAULT_WEAK = frozenset({"md5", "sha1", "sha1_rsa", "md5_rsa"})


@dataclass(frozen=True)
class Layer:
    name: str
    passed: bool
    detail: str


@dataclass
class LtvReport:
    at: dt.datetime
    layers: list[Layer] = field(default_factory=list)
    level: str | None = None
    holds_until: dt.datetime | None = None
    chain: list[TimeStampInfo] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.layers) and all(layer.passed for layer in self.layers)

    def add(self, name: str, passed: bool, detail: str) -> None:
        self.layers.append(Layer(name, bool(passed), detail))

    @property
    def summary(self) -> str:
        """One line a person understands: does the evidence hold, and until when without renewal."""
        when = f"{self.at:%Y-%m-%d}"
        if self.ok:
            until = f"，无需续期可保持到 {self.holds_until:%Y-%m-%d}" if self.holds_until else ""
            return f"证据有效：截至 {when}，签章及其时间戳链可以离线验证{until}。"
        failed = next(layer for layer in self.layers if not layer.passed)
        return f"证据不成立：截至 {when}，{failed.detail}。"

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "at": self.at.isoformat(), "level": self.level, "summary": self.summary,
                "holds_until": self.holds_until.isoformat() if self.holds_until else None,
                "layers": [{"name": x.name, "passed": x.passed, "detail": x.detail} for x in self.layers],
                "chain": [{"kind": s.kind, "field": s.field, "at": s.at.isoformat(), "tsa": s.tsa,
                           "tsa_not_after": s.tsa_not_after.isoformat(), "digest_algorithm": s.digest_algorithm}
                          for s in self.chain]}


@dataclass(frozen=True)
class _Embedded:
    certs: list[Any]
    crls: list[asn1_crl.CertificateList]
    ocsps: list[asn1_ocsp.OCSPResponse]


def embedded_validation_data(reader: PdfFileReader) -> _Embedded:
    try:
        dss = DocumentSecurityStore.read_dss(reader)
    except NoDSSFoundError:
        return _Embedded([], [], [])
    ocsps = [asn1_ocsp.OCSPResponse.load(r.get_object().read_data(DecodePurpose.OCSP_RESPONSE)) for r in dss.ocsps]
    crls = [asn1_crl.CertificateList.load(c.get_object().read_data(DecodePurpose.CRL)) for c in dss.crls]
    return _Embedded(list(dss.load_certs()), crls, ocsps)


def _context(roots: Sequence[x509.Certificate], data: _Embedded, moment: dt.datetime) -> ValidationContext:
    """Offline: the file's certificates and revocation data only, at ``moment``; revocation data gathered later
    (at renewal) vouches for earlier moments too."""
    return ValidationContext(trust_roots=[to_asn1_certificate(c) for c in roots], other_certs=data.certs,
                             crls=data.crls, ocsps=data.ocsps, moment=moment, allow_fetching=False,
                             revocation_mode="hard-fail", retroactive_revinfo=True)


def _covered_serials(data: _Embedded) -> set[int]:
    serials: set[int] = set()
    for response in data.ocsps:
        basic = response["response_bytes"]["response"].parsed
        for single in basic["tbs_response_data"]["responses"]:
            serials.add(single["cert_id"]["serial_number"].native)
    return serials


def _crl_issuers(data: _Embedded) -> set[str]:
    return {c["tbs_cert_list"]["issuer"].sha256.hex() for c in data.crls}


def has_revocation_data(cert: Any, data: _Embedded) -> bool:
    return cert.serial_number in _covered_serials(data) or cert.issuer.sha256.hex() in _crl_issuers(data)


def verify_ltv(pdf: bytes, roots: Sequence[x509.Certificate], at: dt.datetime | None = None,
               weak_algorithms: frozenset[str] = DEFAULT_WEAK) -> LtvReport:
    """Verify ``pdf`` offline as it would be verified at ``at`` (default now), layer by layer."""
    at = at or dt.datetime.now(dt.UTC)
    report = LtvReport(at=at)
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        regular = reader.embedded_regular_signatures
        doc_stamps = reader.embedded_timestamp_signatures
        stamps = time_stamps(pdf)
    except Exception as exc:  # any parse failure: not a readable signed PDF
        report.add("signature_intact", False, f"文件无法作为签章的 PDF 读取（{exc}）")
        return report
    if not regular:
        report.add("signature_intact", False, "文件没有电子签名")
        return report
    report.level, report.chain = level_of(pdf), stamps
    data = embedded_validation_data(reader)
    sig = regular[-1]
    signature_stamp = next((s for s in stamps if s.kind == "signature"), None)
    signing_time = signature_stamp.at if signature_stamp else sig.self_reported_timestamp or at
    _signature_layers(report, sig, roots, data, signing_time, signature_stamp)
    _validation_data_layer(report, sig, doc_stamps, data)
    _archive_layer(report, doc_stamps, roots, data, stamps, weak_algorithms)
    report.holds_until = stamps[-1].tsa_not_after if stamps else None
    revision = signed_revision(pdf)
    problems = pdfa_problems(revision)
    report.add("pdfa", not problems, "签章时的版本符合 PDF/A-2b" if not problems else
               "签章时的版本不符合 PDF/A-2b：" + "；".join(problems[:3]))
    return report


def _signature_layers(report: LtvReport, sig: EmbeddedPdfSignature, roots: Sequence[x509.Certificate],
                      data: _Embedded, signing_time: dt.datetime, stamp: TimeStampInfo | None) -> None:
    try:
        status = validate_pdf_signature(sig, signer_validation_context=_context(roots, data, signing_time),
                                        ts_validation_context=_context(roots, data, signing_time),
                                        key_usage_settings=_KEY_USAGE)
    except Exception as exc:  # a damaged signature can fail in many ways
        report.add("signature_intact", False, f"签名无法验证（{exc}）")
        return
    intact = status.intact and status.valid and status.coverage is not None and \
        status.coverage >= SignatureCoverageLevel.ENTIRE_REVISION
    report.add("signature_intact", intact, "签名覆盖的内容未被改动，签名值正确" if intact else
               "签名覆盖的内容已被改动或签名值不正确")
    subject = status.signing_cert.subject.human_friendly
    trusted = status.trusted and not status.revoked
    why = str(status.trust_problem_indic) if status.trust_problem_indic else "证书链无法建立"
    report.add("signer_trusted", trusted,
               f"签章证书在签章时（{signing_time:%Y-%m-%d %H:%M}）可信且未被吊销：{subject}" if trusted else
               f"签章证书在签章时（{signing_time:%Y-%m-%d %H:%M}）不可信或已被吊销（{subject}：{why}）")
    ts = status.timestamp_validity
    if ts is None or stamp is None:
        report.add("timestamp", False, "签名没有时间戳，不能证明签章时间（PAdES B-B）")
        return
    ok = ts.intact and ts.valid and ts.trusted
    report.add("timestamp", ok, f"签名时间戳有效：{stamp.at:%Y-%m-%d %H:%M:%S} UTC，{stamp.tsa}" if ok else
               "签名时间戳无效或其证书在盖戳时不可信")


def _validation_data_layer(report: LtvReport, sig: EmbeddedPdfSignature,
                           doc_stamps: Sequence[EmbeddedPdfSignature], data: _Embedded) -> None:
    needed = [sig.signer_cert]
    for token in signature_timestamp_tokens(sig):
        needed += _tsa_certs(token)
    for stamp in doc_stamps[:-1]:  # the newest document time stamp is vouched for by the time of verification
        needed.append(stamp.signer_cert)
    missing = [c.subject.human_friendly for c in needed if not has_revocation_data(c, data)]
    if not data.ocsps and not data.crls:
        report.add("validation_data", False, "文件没有内嵌验证数据（证书吊销信息），不是 PAdES B-LT")
    elif missing:
        report.add("validation_data", False, "缺少以下证书的吊销信息：" + "、".join(missing))
    else:
        report.add("validation_data", True,
                   f"内嵌验证数据完整：{len(data.certs)} 个证书、{len(data.ocsps)} 个 OCSP 响应、"
                   f"{len(data.crls)} 个 CRL")


def _tsa_certs(signed_data: Any) -> list[Any]:
    sid = signed_data["signer_infos"][0]["sid"]
    return [c.chosen for c in signed_data["certificates"] or []
            if sid.name == "issuer_and_serial_number" and c.chosen.serial_number == sid.chosen["serial_number"].native]


def _archive_layer(report: LtvReport, doc_stamps: Sequence[EmbeddedPdfSignature], roots: Sequence[x509.Certificate],
                   data: _Embedded, stamps: Sequence[TimeStampInfo], weak: frozenset[str]) -> None:
    if not stamps:
        report.add("archive_timestamps", False, "没有时间戳，无法证明签章证书过期后的证据")
        return
    for stamp in doc_stamps:
        try:
            status = validate_pdf_timestamp(stamp, validation_context=_context(roots, data, stamp_time(stamp)))
        except Exception as exc:  # a damaged token can fail in many ways
            report.add("archive_timestamps", False, f"归档时间戳 {stamp.field_name} 无法验证（{exc}）")
            return
        if not (status.intact and status.valid and status.trusted):
            report.add("archive_timestamps", False, f"归档时间戳 {stamp.field_name} 无效或其证书在盖戳时不可信")
            return
    for older, newer in itertools.pairwise(stamps):
        if newer.at > older.tsa_not_after:
            report.add("archive_timestamps", False,
                       f"{newer.at:%Y-%m-%d} 的时间戳晚于前一时间戳证书的到期日 "
                       f"{older.tsa_not_after:%Y-%m-%d}，证据链断开")
            return
    newest = stamps[-1]
    if newest.digest_algorithm in weak or newest.signature_algorithm in weak:
        report.add("archive_timestamps", False, f"最新的时间戳使用已不安全的算法 {newest.digest_algorithm}，需要续期")
        return
    if report.at > newest.tsa_not_after:
        report.add("archive_timestamps", False,
                   f"最新的时间戳（{newest.at:%Y-%m-%d}）的证书已于 {newest.tsa_not_after:%Y-%m-%d} 过期，"
                   "到期前没有续期归档时间戳")
        return
    count = sum(1 for s in stamps if s.kind == "archive")
    report.add("archive_timestamps", True,
               f"{len(stamps)} 个时间戳（其中归档时间戳 {count} 个）依次覆盖，"
               f"最新的证书有效至 {newest.tsa_not_after:%Y-%m-%d}")


def stamp_time(stamp: EmbeddedPdfSignature) -> dt.datetime:
    tst = stamp.signed_data["encap_content_info"]["content"].parsed
    return tst["gen_time"].native
