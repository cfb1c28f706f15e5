"""Typed errors of the signing package: stable English codes, Chinese messages a clerk can act on."""

from __future__ import annotations

from archive.errors import ArchiveError, ConfigError, InvalidInput, ServiceUnavailable


class UnsupportedDocument(InvalidInput):
    """An original cannot go into an archival rendition.

    Codes: pdf_encrypted, pdf_unreadable, pdf_damaged, file_polyglot, document_too_many_pages, the
    active-content families (pdf_has_javascript, pdf_has_launch_action, pdf_has_submit_form,
    pdf_has_external_link, pdf_has_xfa, pdf_has_richmedia, pdf_has_3d, pdf_has_embedded_files),
    image_undecodable, image_too_many_pixels, media_type_unsupported, no_documents.
    """

    code = "unsupported_document"


class RenditionFailed(ArchiveError):
    """The rendition (or the signed file) is not PDF/A-2b; ``detail`` lists the failed rules."""

    status = 422
    code = "rendition_not_pdfa"


class CertificateProblem(ConfigError):
    """The signing certificate cannot be used (codes: certificate_expired, certificate_not_yet_valid,
    certificate_wrong_usage, certificate_unreadable, certificate_key_mismatch)."""

    code = "certificate_problem"


class TimestampUnavailable(ServiceUnavailable):
    """The time-stamp authority did not answer, or answered with an error (codes: tsa_unreachable,
    tsa_error)."""

    code = "tsa_unreachable"


class SigningFailed(ArchiveError):
    """The signature could not be applied (code: signing_failed)."""

    status = 500
    code = "signing_failed"
