"""PAdES signatures with pyhanko: baseline B-T with an RFC 3161 time stamp, B-B without one.

The signature is an incremental update (``ETSI.CAdES.detached``), invisible or with a visible seal
image, and the signed file is checked to still be PDF/A-2b (signing.pdfa). pyhanko declares PDF 2.0
(ISO 32002) for ECDSA signatures, which PDF/A-2 forbids; for a PDF/A-2 file this signer only declares
the PAdES extension (ESIC) of PDF 1.7, which is all an ECDSA or RSA signature with SHA-256 needs.
See docs/decisions/0003-signing.md for why pyhanko rather than endesive.
"""

from __future__ import annotations

import io
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pikepdf
from cryptography import x509
from PIL import Image
from pyhanko.pdf_utils import layout
from pyhanko.pdf_utils.images import PdfImage
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.writer import BasePdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.general import SigningError
from pyhanko.sign.signers.pdf_signer import _ensure_esic_ext
from pyhanko.sign.timestamps import TimeStamper, TimestampRequestError
from pyhanko.stamp import StaticStampStyle
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.errors import PathValidationError

from signing.certificates import check_signing_certificate
from signing.errors import SigningConfigError, SigningFailed, TimestampUnavailable
from signing.fixity import Digests, digest_bytes
from signing.ltv import check_not_revoked, complete_validation_data, signature_metadata, signed_revision
from signing.pdfa import increment_problems, pdfa_problems
from signing.rendition import rendition_failed

log = logging.getLogger(__name__)

FIELD_NAME = "ArchiveSignature"
SEAL_SIZE = 119.0  # points: a 42 mm round official seal
SEAL_MARGIN = 36.0

_checks = ThreadPoolExecutor(max_workers=2, thread_name_prefix="pdfa-check")  # sign_and_digest's PDF/A checks


@dataclass(frozen=True)
class Seal:
    """A visible seal: an image (PNG with transparency, or JPEG) stamped on a page.

    ``box`` is (x1, y1, x2, y2) in points from the page's lower-left corner; by default a 42 mm square
    in the lower-right corner. ``page`` counts from 0; -1 is the last page.
    """

    image: bytes | Path
    page: int = -1
    box: tuple[float, float, float, float] | None = None


class _PdfA2Signer(signers.PdfSigner):
    """pyhanko's PdfSigner without the PDF 2.0 declarations that would break PDF/A-2."""

    def register_extensions(self, pdf_out: BasePdfFileWriter, *, md_algorithm: str) -> None:
        _ensure_esic_ext(pdf_out)


def reserved_size(signer: signers.Signer, timestamped: bool) -> int:
    """Bytes for /Contents: certificates + signature + attributes, and as much again for a token."""
    certs = [signer.signing_cert, *(signer.cert_registry or ())]
    size = 4096 + sum(len(c.dump()) for c in certs if c is not None)
    if timestamped:
        size += 8192 + size
    return (size + 1023) // 1024 * 1024


def _seal_box(pdf: bytes, seal: Seal) -> tuple[int, tuple[float, float, float, float]]:
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        page_index = seal.page % len(doc.pages)
        if seal.box is not None:
            return page_index, seal.box
        x1, y1, x2, _y2 = (float(v) for v in doc.pages[page_index].mediabox)
    right, bottom = x2 - SEAL_MARGIN, y1 + SEAL_MARGIN
    return page_index, (max(x1, right - SEAL_SIZE), bottom, right, bottom + SEAL_SIZE)


def _seal_style(seal: Seal) -> StaticStampStyle:
    try:
        raw = seal.image.read_bytes() if isinstance(seal.image, Path) else seal.image
        image = Image.open(io.BytesIO(raw))
        image.load()
    except (OSError, ValueError, SyntaxError) as exc:
        raise SigningConfigError(f"签章图片无法读取：{exc}", code="seal_image_invalid",
                                 detail={"reason": str(exc)}) from exc
    transparent = "A" in image.getbands() or "transparency" in image.info
    converted = image.convert("RGBA" if transparent else "RGB")
    return StaticStampStyle(background=PdfImage(converted), border_width=0, background_opacity=1.0,
                            background_layout=layout.SimpleBoxLayoutRule(
                                x_align=layout.AxisAlignment.ALIGN_MID,
                                y_align=layout.AxisAlignment.ALIGN_MID,
                                inner_content_scaling=layout.InnerScaling.SHRINK_TO_FIT))


def _sign(pdf: bytes, signer: signers.Signer, timestamper: TimeStamper | None, seal: Seal | None,
          reason: str, location: str | None, field_name: str, ltv: dict[str, Any] | None = None) -> bytes:
    meta = signers.PdfSignatureMetadata(
        field_name=field_name, subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256",
        reason=reason, location=location, **(ltv or {}))
    field_spec: fields.SigFieldSpec | None = None
    stamp_style: StaticStampStyle | None = None
    if seal is not None:
        page, box = _seal_box(pdf, seal)
        x1, y1, x2, y2 = (round(v) for v in box)
        field_spec = fields.SigFieldSpec(field_name, on_page=page, box=(x1, y1, x2, y2))
        stamp_style = _seal_style(seal)
    pdf_signer = _PdfA2Signer(meta, signer, timestamper=timestamper, stamp_style=stamp_style,
                              new_field_spec=field_spec)
    out = io.BytesIO()
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    pdf_signer.sign_pdf(writer, output=out, bytes_reserved=reserved_size(signer, timestamper is not None))
    return out.getvalue()


def sign_pdf(pdf: bytes, signer: signers.Signer, *, timestamper: TimeStamper | None = None,
             tsa_required: bool = True, seal: Seal | None = None, reason: str = "电子档案归档签章",
             location: str | None = None, field_name: str = FIELD_NAME, check_pdfa: bool = True,
             level: str = "B-T", validation_context: ValidationContext | None = None,
             pdfa_checked: bool = False) -> bytes:
    """Sign a PDF/A-2b file as PAdES B-T (with ``timestamper``) or B-B (without).

    ``level`` B-LT or B-LTA with a ``validation_context`` that may fetch (signing.ltv.fetching_context) and a
    ``timestamper``: the certificate chains and revocation data go into the document security store (B-LT) and a
    document time stamp covers them (B-LTA); a revoked signing certificate is refused (``certificate_revoked``).

    An unreachable or failing TSA is a TimestampUnavailable when ``tsa_required``; otherwise the
    signature is made as B-B and the downgrade is logged as a warning. The signer's certificate is
    checked again (it may have expired since it was loaded). With ``check_pdfa`` the signed file must
    still be PDF/A-2b, else RenditionFailed naming the failed rules. ``pdfa_checked`` says ``pdf`` itself
    already passed the full PDF/A-2b check (a fresh rendition: pikepdf's ``pdfa.save`` validated what it
    wrote); then only what the signature's incremental update adds is checked (signing.pdfa.increment_problems).
    """
    return _signed(pdf, signer, timestamper=timestamper, tsa_required=tsa_required, seal=seal, reason=reason,
                   location=location, field_name=field_name, check_pdfa=check_pdfa, level=level,
                   validation_context=validation_context, pdfa_checked=pdfa_checked, digesting=False)[0]


def sign_and_digest(pdf: bytes, signer: signers.Signer, **options: Any) -> tuple[bytes, Digests]:
    """:func:`sign_pdf` (with its options), and the signed file's SHA-256 and SM3 (signing.fixity), computed while its
    PDF/A check runs.

    The check runs on a helper thread and the digests on this one, not the other way round: hashlib lets the GIL go
    as soon as it starts, so the check proceeds at once; a helper thread hashing beside a check that holds the GIL
    would wait up to the interpreter's switch interval (5 ms) to start, and overlap nothing (issue 17: 7.3 → 3.9 ms).
    """
    signed, digests = _signed(pdf, signer, digesting=True, **options)
    assert digests is not None
    return signed, digests


def _signed(pdf: bytes, signer: signers.Signer, *, timestamper: TimeStamper | None = None,
            tsa_required: bool = True, seal: Seal | None = None, reason: str = "电子档案归档签章",
            location: str | None = None, field_name: str = FIELD_NAME, check_pdfa: bool = True,
            level: str = "B-T", validation_context: ValidationContext | None = None,
            pdfa_checked: bool = False, digesting: bool) -> tuple[bytes, Digests | None]:
    """:func:`sign_pdf`; with ``digesting``, the signed file's digests too (:func:`sign_and_digest`)."""
    if signer.signing_cert is None:
        raise SigningFailed("签章器没有证书", code="signing_failed")
    signing_cert = x509.load_der_x509_certificate(signer.signing_cert.dump())
    check_signing_certificate(signing_cert)
    ltv = signature_metadata(level, validation_context) if timestamper is not None else {}
    if ltv and validation_context is not None:
        chain = [x509.load_der_x509_certificate(c.dump()) for c in signer.cert_registry or ()]
        check_not_revoked(signing_cert, chain, validation_context)
    try:
        try:
            signed = _sign(pdf, signer, timestamper, seal, reason, location, field_name, ltv)
        except TimestampRequestError as exc:
            url = getattr(timestamper, "url", None)
            code = "tsa_unreachable" if isinstance(exc.__cause__, OSError) else "tsa_error"
            if tsa_required:
                raise TimestampUnavailable(
                    f"时间戳服务 {url or ''} 无法使用（{exc}），未签章；请检查网络或时间戳服务后重试",
                    code=code, detail={"tsa_url": url, "reason": str(exc)}) from exc
            log.warning("TSA %s unavailable (%s): signing as PAdES B-B without a time stamp "
                        "(tsa_required is off)", url, exc, extra={"code": "tsa_downgrade", "tsa_url": url})
            signed = _sign(pdf, signer, None, seal, reason, location, field_name)
    except PathValidationError as exc:  # B-LT/B-LTA: validation data for the signature or time stamp unavailable
        raise TimestampUnavailable(f"无法取得签章或时间戳证书的验证数据（OCSP/CRL），未签章：{exc}",
                                   code="revocation_unavailable", detail={"reason": str(exc)}) from exc
    except (SigningError, PdfError, pikepdf.PdfError, OSError, ValueError) as exc:
        raise SigningFailed(f"签章失败：{exc}", code="signing_failed", detail={"reason": str(exc)}) from exc
    if ltv.get("use_pades_lta") and validation_context is not None:
        signed = complete_validation_data(signed, validation_context)
    if not check_pdfa:
        return signed, digest_bytes(signed) if digesting else None
    revision = signed_revision(signed) if ltv else signed  # B-LT/B-LTA: the DSS and document time stamp follow
    if digesting:
        checking = _checks.submit(_pdfa_problems, pdf, revision, pdfa_checked)
        digests: Digests | None = digest_bytes(signed)
        problems = checking.result()
    else:
        digests, problems = None, _pdfa_problems(pdf, revision, pdfa_checked)
    if problems:
        raise rendition_failed(problems, "signed")
    return signed, digests


def _pdfa_problems(unsigned: bytes, signed: bytes, unsigned_checked: bool) -> list[str]:
    return increment_problems(unsigned, signed) if unsigned_checked else pdfa_problems(signed)
