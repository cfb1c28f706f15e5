"""PDF/A-2b check of a signed PDF.

pikepdf's validator (``pikepdf.pdfa``) stops at ``/AcroForm`` ("interactive forms are not supported"),
so it cannot judge a signed file by itself. Here the signature form is checked against the PDF/A-2b
rules that apply to it (ISO 19005-2 clauses 6.3.2, 6.3.3, 6.4.1, 6.4.2, 6.4.3, numbered as in the
veraPDF profile), then the form is taken out of an in-memory copy - each visible signature widget
becomes a plain stamp annotation with the same appearance, so its appearance stream is still
checked - and pikepdf checks everything else. File-level syntax that pikepdf trusts because qpdf
wrote it (header, end of file, trailer ID) is checked here on the bytes, since the signer's
incremental update was not written by qpdf.
"""

from __future__ import annotations

import io
import logging
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pikepdf
import pikepdf.pdfa as pdfa
from asn1crypto import cms

import signing.pdfa_schemas  # noqa: F401  (pikepdf's PDF/A check asks the compiled schemas first)

FLAVOUR = "2b"
_R = "ISO_19005_2:"
_F_INVISIBLE, _F_HIDDEN, _F_PRINT, _F_NOVIEW, _F_TOGGLE_NOVIEW = 1, 2, 4, 32, 256
_HEADER = re.compile(rb"%PDF-1\.[0-7]")
_EOF_TAIL = re.compile(rb"%%EOF(\r\n|\r|\n)?\Z")
_ONE_CHECK = threading.Lock()
log = logging.getLogger("signing.pdfa")


def pdfa_problems(data: bytes) -> list[str]:
    """Failed PDF/A-2b rules of a (signed or unsigned) PDF, as ``rule at where: message``; [] if valid."""
    problems = _file_problems(data)
    try:
        pdf = pikepdf.open(io.BytesIO(data))
    except pikepdf.PdfError as exc:
        return [*problems, f"pikepdf:unreadable at file: {exc}"]
    with pdf:
        if pdf.is_encrypted:
            return [*problems, f"{_R}6.1.3-2 at trailer: file is encrypted"]
        problems += _version_problems(pdf)
        if "/AcroForm" in pdf.Root:
            problems += _form_problems(pdf, data)
            _strip_signature_form(pdf)
        with _own_warnings_only():
            problems += [str(f) for f in pdfa.check(pdf, FLAVOUR).findings]
    return problems


@contextmanager
def _own_warnings_only() -> Iterator[None]:
    """Keep other threads' warnings out of pikepdf's check.

    pikepdf denies a content stream its parser warned about, catching the warnings with
    ``warnings.catch_warnings(record=True)``; before Python 3.14 that state is process-wide, so a warning
    another thread raised meanwhile (a ResourceWarning for a file it left open, say) was recorded as this
    PDF's violation. While the check runs, ``warnings._showwarnmsg`` - the hook through which the Python and
    C warning machinery show or record every warning - hands warnings from other threads to the log
    instead. One check at a time, so concurrent checks cannot swap the hook (or pikepdf's state) in turn.
    """
    owner = threading.get_ident()
    with _ONE_CHECK:
        show = warnings._showwarnmsg  # type: ignore[attr-defined]

        def route(msg: warnings.WarningMessage) -> None:
            if threading.get_ident() == owner:
                show(msg)
            else:
                log.debug("warning from another thread during a PDF/A check: %s: %s", msg.category.__name__,
                          msg.message)

        warnings._showwarnmsg = route  # type: ignore[attr-defined]
        try:
            yield
        finally:
            warnings._showwarnmsg = show  # type: ignore[attr-defined]


def _file_problems(data: bytes) -> list[str]:
    problems = []
    if not _HEADER.match(data):
        problems.append(f"{_R}6.1.2-1 at header: file does not start with %PDF-1.0 … %PDF-1.7")
    if not _EOF_TAIL.search(data[-64:]):
        problems.append(f"{_R}6.1.3-3 at end of file: data follows the last %%EOF marker")
    return problems


def _version_problems(pdf: pikepdf.Pdf) -> list[str]:
    problems = []
    version = pdf.Root.get("/Version")
    if version is not None and not re.fullmatch(r"/1\.[0-7]", str(version)):
        problems.append(f"{_R}6.1.2-1 at catalog /Version: {version} is above PDF 1.7")
    if "/ID" not in pdf.trailer:
        problems.append(f"{_R}6.1.3-1 at trailer: the file identifier /ID is missing")
    return problems


def _terminal_fields(form: pikepdf.Object) -> list[pikepdf.Object]:
    fields, stack = [], list(form.get("/Fields", pikepdf.Array()))
    while stack:
        f = stack.pop()
        kids = f.get("/Kids")
        if kids is not None and any("/T" in k for k in kids):
            stack.extend(kids)
        else:
            fields.append(f)
    return fields


def _widgets(field: pikepdf.Object) -> list[pikepdf.Object]:
    if field.get("/Subtype") == pikepdf.Name.Widget:
        return [field]
    return [k for k in field.get("/Kids", pikepdf.Array())]


def _has_area(rect: Any) -> bool:
    try:
        x1, y1, x2, y2 = (float(v) for v in rect)
    except (TypeError, ValueError):
        return True
    return x1 != x2 and y1 != y2


def _form_problems(pdf: pikepdf.Pdf, data: bytes) -> list[str]:
    form = pdf.Root.AcroForm
    problems = []
    if "/XFA" in form:
        problems.append(f"{_R}6.4.2-1 at AcroForm: /XFA forms are not permitted")
    if bool(form.get("/NeedAppearances", False)):
        problems.append(f"{_R}6.4.1-3 at AcroForm: /NeedAppearances is true")
    for field in _terminal_fields(form):
        name = str(field.get("/T", "?"))
        where = f"field {name}"
        if field.get("/FT") != pikepdf.Name.Sig:
            problems.append(f"pikepdf:form-field at {where}: only signature fields are checked; "
                            f"{field.get('/FT')} fields are not supported")
            continue
        if "/AA" in field:
            problems.append(f"{_R}6.4.1-2 at {where}: a form field shall not contain /AA")
        for widget in _widgets(field):
            problems += _widget_problems(widget, where)
        sig = field.get("/V")
        if isinstance(sig, pikepdf.Dictionary):
            problems += _signature_problems(sig, data, where)
    return problems


def _widget_problems(widget: pikepdf.Object, where: str) -> list[str]:
    problems = []
    if "/A" in widget or "/AA" in widget:
        problems.append(f"{_R}6.4.1-1 at {where} widget: a widget shall not contain /A or /AA")
    flags = widget.get("/F")
    if flags is None:
        problems.append(f"{_R}6.3.2-1 at {where} widget: /F is missing")
    else:
        f = int(flags)
        if not f & _F_PRINT or f & (_F_INVISIBLE | _F_HIDDEN | _F_NOVIEW | _F_TOGGLE_NOVIEW):
            problems.append(f"{_R}6.3.2-2 at {where} widget: flags {f} shall set Print and clear "
                            "Hidden, Invisible, NoView and ToggleNoView")
    ap = widget.get("/AP")
    if ap is None:
        if _has_area(widget.get("/Rect")):
            problems.append(f"{_R}6.3.3-1 at {where} widget: a visible widget has no appearance")
    else:
        if set(ap.keys()) != {"/N"}:
            problems.append(f"{_R}6.3.3-2 at {where} widget: the appearance dictionary shall hold only /N")
        if not isinstance(ap.get("/N"), pikepdf.Stream):
            problems.append(f"{_R}6.3.3-4 at {where} widget: the normal appearance shall be a stream")
    return problems


def _signature_problems(sig: pikepdf.Dictionary, data: bytes, where: str) -> list[str]:
    problems = []
    try:
        start, len1, start2, len2 = (int(v) for v in sig.ByteRange)
    except (AttributeError, TypeError, ValueError):
        return [f"{_R}6.4.3-1 at {where}: the signature has no valid /ByteRange"]
    end = start2 + len2
    covers = (start == 0 and len1 < start2 and data[len1:len1 + 1] == b"<"
              and data[start2 - 1:start2] == b">" and end <= len(data) and _EOF_TAIL.search(data[:end][-64:]))
    if not covers:
        problems.append(f"{_R}6.4.3-1 at {where}: /ByteRange does not cover the whole revision except "
                        "/Contents")
    try:
        signed_data = cms.ContentInfo.load(bytes(sig.Contents))["content"]
        if len(signed_data["signer_infos"]) != 1:
            problems.append(f"{_R}6.4.3-3 at {where}: the signature shall have exactly one signer")
        if not len(signed_data["certificates"] or []):
            problems.append(f"{_R}6.4.3-2 at {where}: the signer's certificate is not embedded")
    except (ValueError, TypeError, KeyError) as exc:
        problems.append(f"{_R}6.4.3-2 at {where}: /Contents is not a DER-encoded PKCS#7 object ({exc})")
    return problems


def _strip_signature_form(pdf: pikepdf.Pdf) -> None:
    """Remove the (already checked) signature form; keep visible appearances as stamp annotations."""
    form = pdf.Root.AcroForm
    widgets = {w.objgen for f in _terminal_fields(form) for w in _widgets(f) if w.is_indirect}
    for page in pdf.pages:
        annots = page.obj.get("/Annots")
        if annots is None:
            continue
        kept = pikepdf.Array()
        for annot in annots:
            if annot.objgen not in widgets:
                kept.append(annot)
            elif "/AP" in annot:
                kept.append(pdf.make_indirect(pikepdf.Dictionary(
                    Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Stamp, Rect=annot.Rect,
                    F=annot.get("/F", 0), AP=annot.AP)))
        if len(kept):
            page.obj.Annots = kept
        else:
            del page.obj.Annots
    del pdf.Root.AcroForm
    ext = pdf.Root.get("/Extensions")
    if isinstance(ext, pikepdf.Dictionary) and set(ext.keys()) == {"/ESIC"} and \
            str(ext.ESIC.get("/BaseVersion")) in ("/1.7", "/1.6", "/1.5", "/1.4"):
        # pyhanko's PAdES declaration (ISO 32000-1 developer extension); allowed in PDF/A-2.
        del pdf.Root.Extensions


_OBJECT = re.compile(rb"(?:^|[\r\n\s])(\d+)\s+(\d+)\s+obj\b")
_CATALOG_KEYS_A_SIGNATURE_CHANGES = {"/AcroForm", "/Extensions", "/Metadata", "/Version"}


def increment_problems(unsigned: bytes, signed: bytes) -> list[str]:
    """Failed PDF/A-2b rules of a signed rendition, checking only what the signature's incremental update adds.

    ``unsigned`` must be a rendition that already passed the full check (pikepdf's ``pdfa.save`` validates what
    it writes). Its bytes are the start of ``signed``, unchanged; the update may rewrite only the catalogue's
    /AcroForm, /Extensions and /Metadata, the pages' /Annots, the document information and the XMP, and add new
    objects. Those are checked: the file-level syntax and version, the signature form (field, widgets, flags,
    /ByteRange, the CMS object), and - with pikepdf's checker, on a one-page probe document holding the new XMP,
    the document information, the output intent and every signature appearance with its fonts and images - the
    rest. Anything else in the update, or a file that is not ``unsigned`` + update, gets the full check.
    """
    if not signed.startswith(unsigned):
        return pdfa_problems(signed)
    increment = signed[len(unsigned):]
    if b"/ObjStm" in increment or b"/XRefStm" in increment:
        return pdfa_problems(signed)  # objects this parser cannot list: check everything
    rewritten = {(int(n), int(g)) for n, g in _OBJECT.findall(increment)}
    problems = _file_problems(signed)
    try:
        before = pikepdf.open(io.BytesIO(unsigned))
        after = pikepdf.open(io.BytesIO(signed))
    except pikepdf.PdfError:
        return pdfa_problems(signed)
    with before, after:
        if after.is_encrypted or "/AcroForm" not in after.Root or not _only_signature_changes(before, after,
                                                                                                  rewritten):
            return pdfa_problems(signed)
        problems += _version_problems(after)
        problems += _form_problems(after, signed)
        with _appearance_probe(after) as probe, _own_warnings_only():
            problems += [str(f) for f in pdfa.check(probe, FLAVOUR).findings]
    return problems


def _same(a: object, b: object) -> bool:
    if isinstance(a, pikepdf.Object) and isinstance(b, pikepdf.Object):
        if a.is_indirect or b.is_indirect:
            return a.is_indirect and b.is_indirect and a.objgen == b.objgen
        return bool(a.unparse() == b.unparse())
    return a == b


def _same_except(a: pikepdf.Object, b: pikepdf.Object, allowed: set[str]) -> bool:
    keys = (set(a.keys()) | set(b.keys())) - allowed
    return all(k in a and k in b and _same(a[k], b[k]) for k in keys)


def _only_signature_changes(before: pikepdf.Pdf, after: pikepdf.Pdf, rewritten: set[tuple[int, int]]) -> bool:
    """The update rewrote only the catalogue (form, extensions, XMP), pages (annotations), the document
    information and the XMP stream, and every other object it wrote is new."""
    existing = {obj.objgen for obj in before.objects if obj.is_indirect}
    pages_before = {p.obj.objgen: p.obj for p in before.pages}
    pages_after = {p.obj.objgen: p.obj for p in after.pages}
    if set(pages_before) != set(pages_after):
        return False
    allowed = {after.Root.objgen}
    info = after.trailer.get("/Info")
    if isinstance(info, pikepdf.Dictionary) and info.is_indirect:
        allowed.add(info.objgen)
    metadata = after.Root.get("/Metadata")
    if isinstance(metadata, pikepdf.Stream) and metadata.is_indirect:
        allowed.add(metadata.objgen)
    if not _same_except(before.Root, after.Root, _CATALOG_KEYS_A_SIGNATURE_CHANGES):
        return False
    for objgen in rewritten & existing:
        if objgen in pages_after:
            if not _same_except(pages_before[objgen], pages_after[objgen], {"/Annots"}):
                return False
        elif objgen not in allowed:
            return False
    return True


@contextmanager
def _appearance_probe(pdf: pikepdf.Pdf) -> Iterator[pikepdf.Pdf]:
    """A one-page document with ``pdf``'s XMP, document information and output intents, and each signature
    widget's appearance as a stamp annotation (its resources - fonts, images - come along)."""
    with pikepdf.new() as probe:
        probe.Root.Metadata = _copied(probe, pdf.Root.Metadata)
        probe.Root.OutputIntents = _copied(probe, pdf.Root.OutputIntents)
        if "/Info" in pdf.trailer:
            probe.trailer.Info = _copied(probe, pdf.trailer.Info)
        box = pdf.pages[0].mediabox
        page = probe.add_blank_page(page_size=(float(box[2]) - float(box[0]), float(box[3]) - float(box[1])))
        stamps = pikepdf.Array()
        for field in _terminal_fields(pdf.Root.AcroForm):
            for widget in _widgets(field):
                if "/AP" in widget:
                    stamps.append(probe.make_indirect(pikepdf.Dictionary(
                        Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Stamp, Rect=_copied(probe, widget.Rect),
                        F=widget.get("/F", 0), AP=_copied(probe, widget.AP))))
        if len(stamps):
            page.obj.Annots = stamps
        yield probe


def _copied(probe: pikepdf.Pdf, obj: Any) -> Any:
    """``obj`` in ``probe``: indirect objects by qpdf's foreign copy, direct ones element by element."""
    if not isinstance(obj, pikepdf.Object):
        return obj  # numbers, booleans: pikepdf hands them over as Python values
    if obj.is_indirect:
        return probe.copy_foreign(obj)
    if isinstance(obj, pikepdf.Array):
        return pikepdf.Array([_copied(probe, v) for v in obj])
    if isinstance(obj, pikepdf.Dictionary):
        return pikepdf.Dictionary({k: _copied(probe, v) for k, v in obj.items()})
    return obj
