"""受理 and the case page (业务页): open a case at the counter, attach, check and correct its materials.

Every change calls the domain service the API calls (archive.capture.cases.open_case, archive.capture.documents
attach_many/attach/retype/split/remove, archive.capture.sheets, archive.reading.read_page); a view only turns a
form into that call and its result, or its refusal, into HTML next to the field or file it concerns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from archive.access import record_access
from archive.api.deps import UnitOfWork, context, context_of, sqlite_turn
from archive.api.errors import reason, status_of
from archive.api.params import Id
from archive.capture import documents, sheets
from archive.capture.cases import CaseIn, get_case, open_case
from archive.catalogue.models import Case, Document
from archive.context import Context
from archive.errors import ERRORS, SYSTEM_KINDS, AnyError, InvalidInput, NotFound
from archive.identifiers import validate_id_number, validate_mobile, validate_uscc
from archive.images import THUMBNAIL_WIDTH
from archive.permissions import Permission, Principal
from archive.reading import granted_document, read_page
from archive.web.deps import require
from archive.web.render import SECURITY_HEADERS, is_htmx, render

router = APIRouter(prefix="/ui", include_in_schema=False)
Serial = Annotated[str, Path(max_length=64)]
ACCEPT = "image/jpeg,image/png,image/tiff,application/pdf,.jpg,.jpeg,.png,.tif,.tiff,.pdf,.ofd"
VIEW_WIDTH = 1000
FormText = Annotated[str, Form(max_length=500)]

# --- 受理 ---------------------------------------------------------------------------------------

# the domain names a refused field as in CaseIn; the form's inputs are flat
FIELDS = {"serial": "serial", "business_type": "business_type", "applicant": "applicant_name",
          "applicant.name": "applicant_name", "applicant.id_number": "applicant_id_number",
          "applicant.mobile": "applicant_mobile", "unit": "unit_name", "unit.name": "unit_name",
          "unit.uscc": "unit_uscc", "loan_contract_no": "loan_contract_no", "branch": "branch", "clerk": "clerk"}
LIVE_CHECKS = {"id-number": ("applicant_id_number", "applicant.id_number", validate_id_number),
               "uscc": ("unit_uscc", "unit.uscc", validate_uscc),
               "mobile": ("applicant_mobile", "applicant.mobile", validate_mobile)}


@dataclass(frozen=True)
class FieldError:
    message: str
    code: str


def _branches(principal: Principal) -> list[str] | None:
    """The branches this person opens cases for, or None: any branch (typed in)."""
    return sorted(principal.branches) if principal.branches is not None else None


def _new_form(request: Request, ctx: Context, principal: Principal, values: dict[str, str],
              errors: dict[str, FieldError] | None = None, problem: FieldError | None = None,
              status: int = 200) -> Response:
    return render(request, "case_new.html", status=status, values=values, errors=errors or {}, problem=problem,
                  schedule=ctx.schedule, branches=_branches(principal))


@router.get("/cases/new")
def new_case(request: Request, serial: Annotated[str, Query(max_length=64)] = "", ctx: Context = Depends(context),
             principal: Principal = Depends(require(Permission.CASE_WRITE))) -> Response:
    branches = _branches(principal)
    values = {"serial": serial.strip(), "branch": branches[0] if branches else "", "clerk": principal.name}
    return _new_form(request, ctx, principal, values)


def _case_in(values: dict[str, str], principal: Principal) -> CaseIn:
    """The form as the API's request body: a block (applicant, unit) is sent when any of its fields is filled."""
    v = {k: s.strip() for k, s in values.items()}
    applicant = ({"name": v["applicant_name"], "id_number": v["applicant_id_number"],
                  "mobile": v["applicant_mobile"] or None}
                 if v["applicant_name"] or v["applicant_id_number"] or v["applicant_mobile"] else None)
    unit = {"name": v["unit_name"], "uscc": v["unit_uscc"] or None} if v["unit_name"] or v["unit_uscc"] else None
    branches = _branches(principal)
    branch = branches[0] if branches is not None and len(branches) == 1 else v["branch"] or None
    return CaseIn.model_validate({
        "serial": v["serial"], "business_type": v["business_type"], "applicant": applicant, "unit": unit,
        "loan_contract_no": v["loan_contract_no"] or None, "branch": branch, "clerk": v["clerk"] or None})


def _field_of(exc: AnyError) -> str | None:
    detail = exc.detail if isinstance(exc.detail, dict) else {}
    if exc.code in ("serial_conflict", "case_not_found"):
        return "serial"
    return FIELDS.get(str(detail.get("field", "")))


@router.post("/cases")
def create_case(request: Request, serial: FormText = "", business_type: FormText = "", applicant_name: FormText = "",
                applicant_id_number: FormText = "", applicant_mobile: FormText = "", unit_name: FormText = "",
                unit_uscc: FormText = "", loan_contract_no: FormText = "", branch: FormText = "",
                clerk: FormText = "", ctx: Context = Depends(context), db: Session = UnitOfWork,
                principal: Principal = Depends(require(Permission.CASE_WRITE))) -> Response:
    values = dict(serial=serial, business_type=business_type, applicant_name=applicant_name,
                  applicant_id_number=applicant_id_number, applicant_mobile=applicant_mobile, unit_name=unit_name,
                  unit_uscc=unit_uscc, loan_contract_no=loan_contract_no, branch=branch, clerk=clerk)
    try:
        data = _case_in(values, principal)
    except ValidationError as exc:  # what the API answers as invalid_request, per field
        errors: dict[str, FieldError] = {}
        for e in exc.errors():
            name = FIELDS.get(".".join(str(p) for p in e["loc"]), "serial")
            errors.setdefault(name, FieldError(reason(e), "invalid_request"))
        return _new_form(request, ctx, principal, values, errors, status=422)
    try:
        with db.begin_nested():
            case, _ = open_case(ctx, db, principal, data)
    except ERRORS as exc:
        at = _field_of(exc)
        found = FieldError(exc.message, exc.code)
        return _new_form(request, ctx, principal, values, {at: found} if at else {},
                         None if at else found, status=status_of(exc))
    return RedirectResponse(f"/ui/cases/{case.serial}", status_code=303, headers=SECURITY_HEADERS)


@router.post("/validate/{kind}")
async def validate(request: Request, kind: Annotated[str, Path(max_length=16)],
                   principal: Principal = Depends(require(Permission.CASE_WRITE))) -> Response:
    """Live check of one identifier as it is typed: the domain's own validation, its message at the field."""
    if kind not in LIVE_CHECKS:
        raise NotFound("没有这种校验", code="not_found")
    name, domain_field, check = LIVE_CHECKS[kind]
    raw = (await request.form()).get(name)
    value = raw.strip()[:100] if isinstance(raw, str) else ""
    found: FieldError | None = None
    if value:
        try:
            check(value, domain_field)
        except ERRORS as exc:
            found = FieldError(exc.message, exc.code)
    return render(request, "partials/case_field_msg.html", name=name, error=found, ok=bool(value) and not found)


# --- the case page ------------------------------------------------------------------------------

@dataclass
class PageState:
    """What a change left to show on the case page: per-file results of an upload, a refusal at a document."""

    uploaded: str | None = None  # material type of the upload
    outcomes: list[documents.FileOutcome] = field(default_factory=list)
    doc_errors: dict[int, FieldError] = field(default_factory=dict)
    split_rows: dict[int, list[tuple[str, str, str]]] = field(default_factory=dict)  # a refused split, as typed
    row_error: FieldError | None = None
    note: str | None = None  # what a change did


def _page_values(ctx: Context, case: Case, principal: Principal) -> dict[str, Any]:
    entries = documents.checklist(ctx, case)
    docs = {d.id: d for d in case.active_documents}
    listed = {i for e in entries for i in e.documents}
    twins: dict[int, list[int]] = {}
    for e in entries:
        for a, b in e.duplicates:
            twins.setdefault(a, []).append(b)
    bt = ctx.schedule.business_type(case.business_type)
    return dict(case=case, bt=bt, category=ctx.schedule.categories.get(case.category),
                rows=[(e, [docs[i] for i in e.documents]) for e in entries],
                others=[d for d in docs.values() if d.id not in listed], twins=twins,
                missing=[e for e in entries if e.required and not e.present],
                choices=[(m, ctx.schedule.materials[m]) for m in (*bt.required, *bt.optional)],
                editable=case.status == "open" and principal.can(Permission.CASE_WRITE),
                full_pii=principal.can(Permission.PII_READ), can_images=principal.can(Permission.IMAGE_READ),
                accept=ACCEPT, thumb_width=THUMBNAIL_WIDTH, materials=ctx.schedule.materials)


def _answer(request: Request, ctx: Context, db: Session, case: Case, principal: Principal, state: PageState,
            status: int = 200) -> Response:
    """After a change: the checklist fragment for htmx (it replaces #checklist), else the whole page."""
    db.flush()
    db.refresh(case)
    values = _page_values(ctx, case, principal)
    template = "partials/case_checklist.html" if is_htmx(request) else "case.html"
    return render(request, template, status=status, state=state, **values)


@router.get("/cases/{serial}")
def case_page(request: Request, serial: Serial, ctx: Context = Depends(context), db: Session = UnitOfWork,
              principal: Principal = Depends(require(Permission.CASE_READ))) -> Response:
    case = get_case(db, principal, serial)
    record_access(db, principal, case, "data", None, via="ui")  # a filed case's data read is 利用 (登记)
    return render(request, "case.html", state=PageState(), **_page_values(ctx, case, principal))


@router.post("/cases/{serial}/documents")
def upload(request: Request, serial: Serial, material_type: Annotated[str, Form(max_length=40)],
           files: Annotated[list[UploadFile] | None, File()] = None, ctx: Context = Depends(context),
           db: Session = UnitOfWork,
           principal: Principal = Depends(require(Permission.CASE_WRITE))) -> Response:
    case = get_case(db, principal, serial)
    state = PageState(uploaded=material_type)
    try:
        state.outcomes = documents.attach_many(ctx, db, principal, case, [
            documents.Upload(f.filename, f.file, material_type) for f in files or []])
    except ERRORS as exc:  # the whole upload refused (too many files, the case filed meanwhile)
        if exc.kind in SYSTEM_KINDS:  # the system's fault (storage, virus scanner): nothing of it is kept
            raise
        state.row_error = FieldError(exc.message, exc.code)
        return _answer(request, ctx, db, case, principal, state, status_of(exc))
    if not state.outcomes:
        state.row_error = FieldError("请选择要上传的文件", "no_files")
        return _answer(request, ctx, db, case, principal, state, 422)
    refused = documents.refusals(state.outcomes)
    status = status_of(documents.all_refused(refused, None)) if len(refused) == len(state.outcomes) else 200
    return _answer(request, ctx, db, case, principal, state, status)


def _change(request: Request, ctx: Context, db: Session, case: Case, principal: Principal, doc_id: int,
            action: Callable[[Document], str], state: PageState | None = None) -> Response:
    """Run ``action(document)``, which says what it did; its refusal is shown at the document, nothing of it kept."""
    state = state or PageState()
    try:
        with db.begin_nested():
            state.note = action(documents.find_document(db, case, doc_id))
    except ERRORS as exc:
        if exc.code == "document_not_found":
            raise
        state.doc_errors[doc_id] = FieldError(exc.message, exc.code)
        return _answer(request, ctx, db, case, principal, state, status_of(exc))
    state.split_rows.clear()
    return _answer(request, ctx, db, case, principal, state)


@router.post("/cases/{serial}/documents/{document_id}/type")
def retype(request: Request, serial: Serial, document_id: Id, material_type: Annotated[str, Form(max_length=40)],
           ctx: Context = Depends(context), db: Session = UnitOfWork,
           principal: Principal = Depends(require(Permission.CASE_WRITE))) -> Response:
    case = get_case(db, principal, serial)

    def action(d: Document) -> str:
        documents.retype(ctx, db, principal, case, d, material_type)
        return f"“{d.filename}”的材料类型已更正为{ctx.schedule.materials.get(material_type, material_type)}"

    return _change(request, ctx, db, case, principal, document_id, action)


@router.post("/cases/{serial}/documents/{document_id}/split")
def split(request: Request, serial: Serial, document_id: Id,
          first_page: Annotated[list[str], Form(max_length=12)],
          last_page: Annotated[list[str], Form(max_length=12)],
          material_type: Annotated[list[str], Form(max_length=40)],
          ctx: Context = Depends(context), db: Session = UnitOfWork,
          principal: Principal = Depends(require(Permission.CASE_WRITE))) -> Response:
    case = get_case(db, principal, serial)
    rows = list(zip(first_page, last_page, material_type, strict=False))

    def action(d: Document) -> str:
        ranges = []
        for i, (a, b, m) in enumerate(rows, 1):  # a row left empty is no range
            if not (a.strip() or b.strip()):
                continue
            if not (a.strip().isdecimal() and b.strip().isdecimal()):
                raise InvalidInput(f"第 {i} 段的起始页和结束页都要填写页码数字", code="split_range_invalid",
                                   detail={"field": f"parts.{i - 1}"})
            ranges.append(documents.PageRange(int(a), int(b), m))
        made = documents.split(ctx, db, principal, case, d, ranges)
        return f"“{d.filename}”已拆分为 {len(made)} 份材料，原件保留"

    # a refused split keeps what was typed, so that one number can be corrected
    return _change(request, ctx, db, case, principal, document_id, action, PageState(split_rows={document_id: rows}))


@router.post("/cases/{serial}/documents/{document_id}/remove")
def remove(request: Request, serial: Serial, document_id: Id, reason_text: Annotated[str, Form(
        alias="reason", max_length=2000)] = "", ctx: Context = Depends(context), db: Session = UnitOfWork,
           principal: Principal = Depends(require(Permission.CASE_WRITE))) -> Response:
    case = get_case(db, principal, serial)

    def action(d: Document) -> str:
        documents.remove(db, principal, case, d, reason_text.strip())
        return f"已撤下“{d.filename}”（原件仍保存，撤下记入审计日志）"

    return _change(request, ctx, db, case, principal, document_id, action)


@router.post("/cases/{serial}/documents/{document_id}/replace")
def replace(request: Request, serial: Serial, document_id: Id, file: Annotated[UploadFile, File()],
            ctx: Context = Depends(context), db: Session = UnitOfWork,
            principal: Principal = Depends(require(Permission.CASE_WRITE))) -> Response:
    case = get_case(db, principal, serial)

    def action(old: Document) -> str:
        received = documents.Received.read(file.filename or "", file.file, ctx.settings.max_upload_mb * 1024 * 1024)
        new, _ = documents.attach(ctx, db, principal, case, received, old.material_type, replaces=old)
        return f"已用“{new.filename}”替换“{old.filename}”"

    return _change(request, ctx, db, case, principal, document_id, action)


# --- printed sheets -----------------------------------------------------------------------------

def _pdf(data: bytes, name: str) -> Response:
    return Response(data, media_type="application/pdf",
                    headers={**SECURITY_HEADERS, "Content-Disposition": f'inline; filename="{name}"'})


@router.get("/cases/{serial}/cover-sheet.pdf")
def cover_sheet(serial: Serial, ctx: Context = Depends(context), db: Session = UnitOfWork,
                principal: Principal = Depends(require(Permission.CASE_READ))) -> Response:
    case = get_case(db, principal, serial)
    return _pdf(sheets.cover(ctx, case), f"cover-{case.serial}.pdf")


@router.get("/cases/{serial}/separator-sheets.pdf")
def separator_sheets(serial: Serial, material_type: Annotated[list[str] | None, Query(max_length=40)] = None,
                     ctx: Context = Depends(context), db: Session = UnitOfWork,
                     principal: Principal = Depends(require(Permission.CASE_READ))) -> Response:
    case = get_case(db, principal, serial)
    return _pdf(sheets.separators(ctx, case, material_type), f"separators-{case.serial}.pdf")


# --- page images --------------------------------------------------------------------------------

@router.get("/documents/{document_id}/pages/{page}")
def page_image(request: Request, document_id: Id, page: Annotated[int, Path(ge=1, le=100_000)],
               w: Annotated[int, Query(ge=16, le=2000)] = THUMBNAIL_WIDTH,
               _turn: None = Depends(sqlite_turn, scope="function"), db: Session = UnitOfWork,
               principal: Principal = Depends(require(Permission.IMAGE_READ))) -> Response:
    read = read_page(context_of(request), db, principal, document_id, page, w, "jpeg", None)
    cache = "private, no-store" if read.watermarked else "private, max-age=86400"
    return Response(read.image.data, media_type=read.image.media_type,
                    headers={"ETag": read.image.etag, "Cache-Control": cache, "X-Content-Type-Options": "nosniff"})


@router.get("/documents/{document_id}/view")
def page_view(request: Request, document_id: Id, page: Annotated[int, Query(ge=1, le=100_000)] = 1,
              ctx: Context = Depends(context), db: Session = UnitOfWork,
              principal: Principal = Depends(require(Permission.IMAGE_READ))) -> Response:
    """One page at reading size, with the previous and next page (arrow keys) and the way back to the case."""
    doc, _ = granted_document(db, principal, document_id, "page", Permission.IMAGE_READ, ctx)
    page = min(page, max(doc.page_count, 1))
    return render(request, "case_view.html", doc=doc, case=doc.case, page=page, width=VIEW_WIDTH,
                  material=ctx.schedule.materials.get(doc.material_type, doc.material_type))
