"""Long-term validation (ETSI EN 319 142 PAdES B-LT and B-LTA): sign with validation data, renew archive time stamps.

* B-LT: the signature and its time stamp, plus every certificate of their chains and fresh revocation data (OCSP or
  CRL, fetched from the URLs the certificates name) in the document security store (DSS).
* B-LTA: B-LT plus a document time stamp over the signature and its validation data.
* Renewal: validation data for the newest document time stamp, then a new document time stamp over everything
  (pyHanko's ``update_archival_timestamp_chain``), before the newest one's TSA certificate expires or its algorithm
  weakens. Each renewal is an incremental update: the earlier revisions stay byte for byte.

Fetching happens only here, when signing or renewing; verification (signing.ltv_verify) uses what the file carries.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass

from asn1crypto import cms
from cryptography import x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.timestamps import TimeStamper, TimestampRequestError
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import PathValidationError, RevokedError
from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend

from signing.certificates import to_asn1_certificate
from signing.errors import CertificateProblem, SigningFailed, TimestampUnavailable

LEVELS = ("B-B", "B-T", "B-LT", "B-LTA")
FETCH_TIMEOUT = 10.0


def fetching_context(roots: Sequence[x509.Certificate], timeout: float = FETCH_TIMEOUT) -> ValidationContext:
    """A validation context that fetches OCSP responses and CRLs and fails when a declared source cannot answer."""
    return ValidationContext(trust_roots=[to_asn1_certificate(c) for c in roots], allow_fetching=True,
                             revocation_mode="hard-fail",
                             fetcher_backend=RequestsFetcherBackend(per_request_timeout=timeout))


def check_not_revoked(cert: x509.Certificate, chain: Sequence[x509.Certificate], context: ValidationContext) -> None:
    """Refuse a revoked (or unverifiable) signing certificate, naming it; revocation data unreachable is a 503."""
    subject = cert.subject.rfc4514_string()
    detail = {"subject": subject, "serial": format(cert.serial_number, "x")}
    validator = CertificateValidator(to_asn1_certificate(cert), [to_asn1_certificate(c) for c in chain],
                                     validation_context=context)
    try:
        asyncio.run(validator.async_validate_usage(set(), extended_optional=True))
    except RevokedError as exc:
        raise CertificateProblem(f"签章证书已被吊销（{subject}，序列号 {cert.serial_number:x}），不能签章；"
                                 "请更换有效证书", code="certificate_revoked", detail=detail) from exc
    except PathValidationError as exc:
        if "revocation" in str(exc).lower() or "fetch" in str(exc).lower():
            raise TimestampUnavailable(f"无法取得签章证书的吊销信息（OCSP/CRL），未签章（{subject}）；"
                                       "请检查网络或吊销信息服务后重试", code="revocation_unavailable",
                                       detail={**detail, "reason": str(exc)}) from exc
        raise CertificateProblem(f"签章证书无法验证到信任的根证书（{subject}）：{exc}",
                                 code="certificate_untrusted", detail=detail) from exc


def signature_metadata(level: str, context: ValidationContext | None) -> dict[str, object]:
    """The PdfSignatureMetadata fields for ``level`` (B-LT and B-LTA need ``context``)."""
    if level not in ("B-LT", "B-LTA") or context is None:
        return {}
    return {"embed_validation_info": True, "use_pades_lta": level == "B-LTA", "validation_context": context}


def renew(pdf: bytes, timestamper: TimeStamper, context: ValidationContext) -> bytes:
    """Add validation data for the newest time stamp and a new document time stamp over the whole file.

    An unreachable TSA or revocation source is TimestampUnavailable; the input is never changed.
    """
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        out = io.BytesIO()
        signers.PdfTimeStamper(timestamper).update_archival_timestamp_chain(reader, context, in_place=False,
                                                                            output=out)
        return complete_validation_data(out.getvalue(), context)
    except TimestampRequestError as exc:
        raise TimestampUnavailable(f"时间戳服务无法使用（{exc}），未续期；请检查时间戳服务后重试",
                                   code="tsa_unreachable", detail={"reason": str(exc)}) from exc
    except (PathValidationError, OSError) as exc:
        raise TimestampUnavailable(f"无法取得时间戳证书的验证数据（{exc}），未续期；请检查 OCSP/CRL 服务后重试",
                                   code="revocation_unavailable", detail={"reason": str(exc)}) from exc
    except Exception as exc:  # pyhanko wraps network and parse failures in many types
        raise SigningFailed(f"续期失败：{exc}", code="ltv_renewal_failed", detail={"reason": str(exc)}) from exc


def complete_validation_data(pdf: bytes, context: ValidationContext) -> bytes:
    """Revocation data for the newest document time stamp's certificate when the DSS lacks it.

    pyHanko collects it for the certificates a TimeStamper saw in its first (cached) answer; a TSA that has since
    changed its certificate signs with one those paths do not cover. Then the data is fetched and added here.
    """
    from pyhanko.sign.validation import add_validation_info

    from signing.ltv_verify import embedded_validation_data, has_revocation_data

    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    stamps = reader.embedded_timestamp_signatures
    if not stamps or has_revocation_data(stamps[-1].signer_cert, embedded_validation_data(reader)):
        return pdf
    out = io.BytesIO()
    add_validation_info(stamps[-1], context, output=out)
    return out.getvalue()


def append_document_timestamp(pdf: bytes, timestamper: TimeStamper, context: ValidationContext) -> bytes:
    """Validation data for the signature, then a first document time stamp (B-LT → B-LTA)."""
    return renew(pdf, timestamper, context)


@dataclass(frozen=True)
class TimeStampInfo:
    """One time stamp of a file: when, by which TSA certificate, until when that certificate is valid."""

    kind: str  # "signature" (the signature's time stamp) or "archive" (a document time stamp)
    field: str
    at: dt.datetime
    tsa: str
    tsa_not_after: dt.datetime
    digest_algorithm: str
    signature_algorithm: str


def _tst_info(signed_data: cms.SignedData) -> tuple[dt.datetime, x509.Certificate | None, str, str]:
    tst = signed_data["encap_content_info"]["content"].parsed
    info = signed_data["signer_infos"][0]
    sid = info["sid"]
    cert = None
    for choice in signed_data["certificates"] or []:
        candidate = choice.chosen
        if sid.name == "issuer_and_serial_number":
            if candidate.serial_number == sid.chosen["serial_number"].native:
                cert = candidate
        elif candidate.key_identifier == sid.chosen.native:
            cert = candidate
    crypto = x509.load_der_x509_certificate(cert.dump()) if cert is not None else None
    return (tst["gen_time"].native, crypto, tst["message_imprint"]["hash_algorithm"]["algorithm"].native,
            info["signature_algorithm"].signature_algo)


def signature_timestamp_tokens(sig: EmbeddedPdfSignature) -> list[cms.SignedData]:
    """The SignedData of each signature time-stamp token of a signature (its unsigned attributes)."""
    return [attr["values"][0]["content"] for attr in sig.signer_info["unsigned_attrs"] or []
            if attr["type"].native == "signature_time_stamp_token"]


def time_stamps(pdf: bytes) -> list[TimeStampInfo]:
    """The file's time stamps, oldest first: each signature's time stamp, then each document time stamp."""
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    found = []
    for sig in reader.embedded_signatures:
        if sig.sig_object_type == "/DocTimeStamp":
            parts = [("archive", sig.signed_data)]
        else:
            parts = [("signature", token) for token in signature_timestamp_tokens(sig)]
        found += _infos(parts, sig.field_name)
    return found


def signature_time_stamps(signed_data: cms.SignedData, field: str) -> list[TimeStampInfo]:
    """The time stamps of one regular signature, given its SignedData (for a signature just made, whose SignedData
    the signer already read from the bytes: signing.selfcheck.last_signature)."""
    tokens = [attr["values"][0]["content"] for info in signed_data["signer_infos"]
              for attr in info["unsigned_attrs"] or [] if attr["type"].native == "signature_time_stamp_token"]
    return _infos([("signature", token) for token in tokens], field)


def _infos(parts: list[tuple[str, cms.SignedData]], field: str) -> list[TimeStampInfo]:
    found = []
    for kind, signed_data in parts:
        at, cert, digest, algorithm = _tst_info(signed_data)
        if cert is None:
            continue
        found.append(TimeStampInfo(kind, field, at, cert.subject.rfc4514_string(),
                                   cert.not_valid_after_utc, digest, algorithm))
    return found


def signed_revision(pdf: bytes) -> bytes:
    """The revision the last regular signature covers (later updates hold only DSS data and document time stamps)."""
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    regular = reader.embedded_regular_signatures
    if not regular:
        return pdf
    _s, _l1, start2, len2 = (int(v) for v in regular[-1].sig_object["/ByteRange"])
    return pdf[: start2 + len2]


def level_of(pdf: bytes) -> str:
    """The PAdES baseline level the file reaches: B-LTA, B-LT, B-T or B-B."""
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    stamps = time_stamps(pdf)
    has_dss = "/DSS" in reader.root
    if any(s.kind == "archive" for s in stamps) and has_dss:
        return "B-LTA"
    if stamps and has_dss:
        return "B-LT"
    return "B-T" if stamps else "B-B"


def evidence_until(pdf: bytes, signer_not_after: dt.datetime | None = None) -> dt.datetime | None:
    """Until when the evidence holds without renewal: the newest time stamp's TSA certificate expiry
    (the signer certificate's for a file without a time stamp)."""
    stamps = time_stamps(pdf)
    if stamps:
        return stamps[-1].tsa_not_after
    return signer_not_after
