"""Typed errors of the signing package: a stable English ``code``, a Chinese ``message`` a clerk can act on, a
``detail`` and a ``kind`` (invalid, unavailable, config, failed) that the application maps to its own answer (an HTTP
status, a CLI exit). The package knows nothing of HTTP or of the application.
"""

from __future__ import annotations

from typing import Any


class SigningError(Exception):
    """Base of every error the signing package raises on purpose."""

    kind: str = "invalid"
    code: str = "signing_error"

    def __init__(self, message: str, *, code: str | None = None, detail: Any = None, kind: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if kind is not None:
            self.kind = kind
        self.detail = detail

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "detail": self.detail}


class SigningConfigError(SigningError):
    """The signing key, certificate, seal image or TSA setting cannot be used."""

    kind = "config"
    code = "config_error"


class UnsupportedDocument(SigningError):
    """An original cannot go into an archival rendition.

    Codes: pdf_encrypted, pdf_unreadable, pdf_damaged, file_polyglot, document_too_many_pages, the
    active-content families (pdf_has_javascript, pdf_has_launch_action, pdf_has_submit_form,
    pdf_has_external_link, pdf_has_xfa, pdf_has_richmedia, pdf_has_3d, pdf_has_embedded_files),
    image_undecodable, image_too_many_pixels, media_type_unsupported, no_documents.
    """

    kind = "invalid"
    code = "unsupported_document"


class RenditionFailed(SigningError):
    """The rendition (or the signed file) is not PDF/A-2b; ``detail`` lists the failed rules."""

    kind = "invalid"
    code = "rendition_not_pdfa"


class CertificateProblem(SigningConfigError):
    """The signing certificate cannot be used (codes: certificate_expired, certificate_not_yet_valid,
    certificate_wrong_usage, certificate_unreadable, certificate_key_mismatch)."""

    code = "certificate_problem"


class TimestampUnavailable(SigningError):
    """The time-stamp authority did not answer, or answered with an error (codes: tsa_unreachable,
    tsa_error)."""

    kind = "unavailable"
    code = "tsa_unreachable"


class SigningFailed(SigningError):
    """The signature could not be applied (code: signing_failed)."""

    kind = "failed"
    code = "signing_failed"


class EepInvalid(SigningError):
    """A DA/T 48 encapsulation package cannot be read or does not verify."""

    kind = "invalid"
    code = "eep_invalid"
