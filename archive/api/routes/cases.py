"""Cases (业务): opening, documents, checklist, cover sheet, filing."""

from __future__ import annotations

from datetime import date, datetime
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Header, Query, Response, UploadFile
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from archive.access import PURPOSE_HEADER, EventOut, case_events, purpose_of, record_access
from archive.api.deps import UnitOfWork, caller, context, require
from archive.api.params import MAX_INT, Id, Offset
from archive.capture import documents, sheets
from archive.capture.cases import CaseIn, get_case, open_case
from archive.catalogue.models import Case, Document
from archive.context import Context
from archive.errors import InvalidInput
from archive.filing import CloseIn, file_case
from archive.identifiers import mask_id_number, mask_mobile, mask_name
from archive.permissions import Permission, Principal

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])


class CaseSummary(BaseModel):
    serial: str
    category: str
    business_type: str
    status: str
    applicant_name: str | None
    applicant_id_number: str | None
    applicant_mobile: str | None
    unit_name: str | None
    unit_uscc: str | None
    loan_contract_no: str | None
    branch: str
    clerk: str
    accepted_at: datetime
    closed_at: datetime | None
    archival_code: str | None


class DocumentOut(BaseModel):
    id: int
    sequence: int
    material_type: str
    filename: str
    media_type: str
    size: int
    page_count: int
    sha256: str
    sm3: str
    status: str
    created_by: str
    created_at: datetime
    warnings: list[str] = []


class ItemOut(BaseModel):
    archival_code: str
    retention_code: str = Field(description="档号中的保管期限（归档时）")
    effective_retention: str = Field(description="现行保管期限：鉴定或重新适用分类方案后可能不同于档号中的期限")
    trigger: str
    trigger_date: date | None
    expiry_date: date | None
    status: str
    rendition_sha256: str | None
    rendition_sm3: str | None
    signature: dict[str, Any] | None
    filed_at: datetime


class CaseOut(CaseSummary):
    outcome: str | None
    trail: list[dict[str, Any]] | None
    documents: list[DocumentOut]
    item: ItemOut | None


def summarise(case: Case, principal: Principal) -> CaseSummary:
    """Personal data is masked unless the caller's role may see it (个人信息保护)."""
    return CaseSummary(**_summary_fields(case, principal))


def _summary_fields(case: Case, principal: Principal) -> dict[str, Any]:
    full = principal.can(Permission.PII_READ)
    return dict(
        serial=case.serial, category=case.category, business_type=case.business_type, status=case.status,
        applicant_name=case.applicant_name if full else mask_name(case.applicant_name),
        applicant_id_number=case.applicant_id_number if full else mask_id_number(case.applicant_id_number),
        applicant_mobile=case.applicant_mobile if full else mask_mobile(case.applicant_mobile),
        unit_name=case.unit_name, unit_uscc=case.unit_uscc, loan_contract_no=case.loan_contract_no,
        branch=case.branch, clerk=case.clerk, accepted_at=case.accepted_at, closed_at=case.closed_at,
        archival_code=case.item.archival_code if case.item else None,
    )


def document_out(d: Document) -> DocumentOut:
    return DocumentOut(id=d.id, sequence=d.sequence, material_type=d.material_type, filename=d.filename,
                       media_type=d.media_type, size=d.size, page_count=d.page_count, sha256=d.sha256, sm3=d.sm3,
                       status=d.status, created_by=d.created_by, created_at=d.created_at,
                       warnings=(d.detail or {}).get("warnings", []))


def case_out(case: Case, principal: Principal) -> CaseOut:
    item = case.item
    return CaseOut(
        **_summary_fields(case, principal), outcome=case.outcome, trail=case.trail,
        documents=[document_out(d) for d in case.active_documents],
        item=ItemOut.model_validate(item, from_attributes=True) if item else None,
    )


@router.get("", response_model=list[CaseSummary], summary="业务列表（按网点权限过滤，个人信息按角色脱敏）")
def list_cases(status: str | None = Query(None, max_length=16),
               business_type: str | None = Query(None, max_length=16),
               limit: int = Query(50, ge=1, le=500), offset: Offset = 0,
               session: Session = UnitOfWork,
               principal: Principal = Depends(require(Permission.CASE_READ))) -> list[CaseSummary]:
    q = select(Case).order_by(Case.accepted_at.desc(), Case.id.desc()).limit(limit).offset(offset)
    if status:
        q = q.where(Case.status == status)
    if business_type:
        q = q.where(Case.business_type == business_type)
    if principal.branches is not None:
        q = q.where(Case.branch.in_(principal.branches))
    return [summarise(c, principal) for c in session.scalars(q)]


@router.post("", response_model=CaseOut, status_code=201, summary="受理业务（按业务流水号幂等）",
             responses={200: {"description": "同一业务流水号、相同内容再次提交：返回已受理的业务"},
                        409: {"description": "同一业务流水号、不同内容：detail.fields 列出不同的字段"}})
def create_case(req: CaseIn, response: Response, ctx: Context = Depends(context), session: Session = UnitOfWork,
                principal: Principal = Depends(require(Permission.CASE_WRITE))) -> CaseOut:
    case, created = open_case(ctx, session, principal, req)
    if not created:
        response.status_code = 200
    session.refresh(case)
    return case_out(case, principal)


class CaseRecord(CaseOut):
    """A case with its archive item and its events (利用登记 included), for business systems."""

    events: list[EventOut]


def case_record(session: Session, case: Case, principal: Principal) -> CaseRecord:
    return CaseRecord(**case_out(case, principal).model_dump(), events=case_events(session, case))


@router.get("/{serial}", response_model=CaseRecord, summary="业务详情：材料、归档信息（档号、保管期限、签章）、事件",
            description="已归档的业务每读取一次登记一条利用记录（access.read），请求头 X-Purpose 写明利用目的。")
def read_case(serial: str, session: Session = UnitOfWork,
              principal: Principal = Depends(require(Permission.CASE_READ)),
              x_purpose: str | None = Header(None, alias=PURPOSE_HEADER, description="利用目的（可 URL 编码）",
                                             examples=["%E6%8F%90%E5%8F%96%E5%AE%A1%E6%A0%B8"])) -> CaseRecord:
    case = get_case(session, principal, serial)
    record_access(session, principal, case, "data", purpose_of(x_purpose))
    return case_record(session, case, principal)


class NoticeOut(BaseModel):
    code: str = Field(description="稳定的英文代码，如 duplicate_content（与本业务已有材料内容完全相同）")
    message: str
    detail: dict[str, Any] | None = None


def notice_out(n: documents.Notice) -> NoticeOut:
    return NoticeOut(code=n.code, message=n.message, detail=n.detail)


def notices(ctx: Context, session: Session, doc: Document) -> list[NoticeOut]:
    found = documents.duplicate_notice(ctx, session, doc)
    return [notice_out(found)] if found else []


class FileResult(BaseModel):
    filename: str
    material_type: str
    accepted: bool
    duplicate: bool = False
    document: DocumentOut | None = None
    code: str | None = None
    message: str | None = None
    warnings: list[NoticeOut] = []


class AttachOut(BaseModel):
    results: list[FileResult]


@router.post("/{serial}/documents", response_model=AttachOut, status_code=201,
             summary="上传材料（可多个文件，每个文件对应一个材料类型）",
             responses={207: {"description": "部分文件被拒绝，逐个文件说明原因"},
                        422: {"description": "全部文件被拒绝"}, 413: {"description": "文件过大"}})
def attach_documents(serial: str, files: Annotated[list[UploadFile], File(description="材料文件")],
                     material_type: Annotated[list[str], Form(description="每个文件的材料类型代码，顺序与文件一致")],
                     response: Response, ctx: Context = Depends(context), session: Session = UnitOfWork,
                     principal: Principal = Depends(require(Permission.CASE_WRITE))) -> AttachOut:
    case = get_case(session, principal, serial)
    documents.check_file_count(len(files))
    if len(material_type) != len(files):
        raise InvalidInput(f"上传了 {len(files)} 个文件，但给出了 {len(material_type)} 个材料类型；"
                           "请为每个文件指定材料类型", code="material_type_count", detail={"field": "material_type"})
    outcomes = documents.attach_many(ctx, session, principal, case, [
        documents.Upload(f.filename, f.file, m) for f, m in zip(files, material_type, strict=True)])
    results = [FileResult(filename=o.filename, material_type=o.material_type, accepted=True, duplicate=not o.created,
                          document=document_out(o.document), warnings=[notice_out(n) for n in o.notices])
               if o.document is not None else
               FileResult(filename=o.filename, material_type=o.material_type, accepted=False, code=o.code,
                          message=o.message)
               for o in outcomes]
    out = AttachOut(results=results)
    refused = documents.refusals(outcomes)
    if len(refused) == len(results):
        raise documents.all_refused(refused, out.model_dump(mode="json"))
    if refused:
        response.status_code = HTTPStatus.MULTI_STATUS  # some files accepted: each refusal is explained in its result
    return out


class RemoveIn(BaseModel):
    reason: str = Field(min_length=documents.MIN_REASON, max_length=documents.MAX_REASON,
                        examples=["误传了其他业务的材料"])


@router.post("/{serial}/documents/{document_id}/remove", status_code=204,
             summary="撤下材料（仅未归档业务，须说明理由）")
def remove_document(serial: str, document_id: Id, req: RemoveIn, session: Session = UnitOfWork,
                    principal: Principal = Depends(require(Permission.CASE_WRITE))) -> None:
    case = get_case(session, principal, serial)
    documents.remove(session, principal, case, documents.find_document(session, case, document_id), req.reason)


@router.put("/{serial}/documents/{document_id}", response_model=DocumentOut, summary="替换材料（仅未归档业务）")
def replace_document(serial: str, document_id: Id, file: Annotated[UploadFile, File()],
                     ctx: Context = Depends(context), session: Session = UnitOfWork,
                     principal: Principal = Depends(require(Permission.CASE_WRITE))) -> DocumentOut:
    case = get_case(session, principal, serial)
    old = documents.find_document(session, case, document_id)
    received = documents.Received.read(file.filename or "", file.file, ctx.settings.max_upload_mb * 1024 * 1024)
    doc, _ = documents.attach(ctx, session, principal, case, received, old.material_type, replaces=old)
    return document_out(doc)


class MaterialTypeIn(BaseModel):
    material_type: str = Field(max_length=40, description="材料类型代码（见业务类型的材料清单）",
                               examples=["id_proof"])


class DocumentChanged(DocumentOut):
    notices: list[NoticeOut] = []


@router.patch("/{serial}/documents/{document_id}", response_model=DocumentChanged,
              summary="指定材料类型（仅未归档业务；如批量扫描的材料默认为“其他”）")
def set_material_type(serial: str, document_id: Id, req: MaterialTypeIn, ctx: Context = Depends(context),
                      session: Session = UnitOfWork,
                      principal: Principal = Depends(require(Permission.CASE_WRITE))) -> DocumentChanged:
    case = get_case(session, principal, serial)
    doc = documents.retype(ctx, session, principal, case, documents.find_document(session, case, document_id),
                           req.material_type)
    return DocumentChanged(**document_out(doc).model_dump(), notices=notices(ctx, session, doc))


class SplitPartIn(BaseModel):
    first_page: int = Field(le=MAX_INT, description="起始页（从 1 起）", examples=[1])
    last_page: int = Field(le=MAX_INT, description="结束页（含）", examples=[2])
    material_type: str = Field(max_length=40, examples=["application_form"])


class SplitIn(BaseModel):
    parts: list[SplitPartIn] = Field(description="每段页码及其材料类型；各段不重叠，合起来覆盖全部页")


class SplitOut(BaseModel):
    source: DocumentOut = Field(description="被拆分的原材料：原件保留不变，状态为 split")
    documents: list[DocumentChanged]


@router.post("/{serial}/documents/{document_id}/split", response_model=SplitOut, status_code=201,
             summary="按页码拆分扫描材料，每段指定材料类型（仅未归档业务；原件保留）",
             responses={422: {"description": "页码段重叠、越界、为空或未覆盖全部页；材料类型不属于该业务"}})
def split_document(serial: str, document_id: Id, req: SplitIn, ctx: Context = Depends(context),
                   session: Session = UnitOfWork,
                   principal: Principal = Depends(require(Permission.CASE_WRITE))) -> SplitOut:
    case = get_case(session, principal, serial)
    source = documents.find_document(session, case, document_id)
    made = documents.split(ctx, session, principal, case, source,
                           [documents.PageRange(p.first_page, p.last_page, p.material_type) for p in req.parts])
    return SplitOut(source=document_out(source),
                    documents=[DocumentChanged(**document_out(d).model_dump(), notices=notices(ctx, session, d))
                               for d in made])


class DuplicateOut(BaseModel):
    document_id: int
    same_as: int = Field(description="内容完全相同（SHA-256 一致）的另一份有效材料")


class ChecklistLine(BaseModel):
    material_type: str
    name: str
    required: bool
    present: bool
    documents: list[int]
    duplicates: list[DuplicateOut] = Field([], description="本类材料中与本业务其他材料内容完全相同的")


class ChecklistOut(BaseModel):
    serial: str
    business_type: str
    complete: bool
    missing: list[str]
    materials: list[ChecklistLine]


@router.get("/{serial}/checklist", response_model=ChecklistOut, summary="材料清单：必备材料是否齐全")
def checklist(serial: str, ctx: Context = Depends(context), session: Session = UnitOfWork,
              principal: Principal = Depends(require(Permission.CASE_READ))) -> ChecklistOut:
    case = get_case(session, principal, serial)
    entries = documents.checklist(ctx, case)
    missing = [e.material_type for e in entries if e.required and not e.present]
    return ChecklistOut(serial=case.serial, business_type=case.business_type, complete=not missing, missing=missing,
                        materials=[ChecklistLine(material_type=e.material_type, name=e.name, required=e.required,
                                                 present=e.present, documents=e.documents,
                                                 duplicates=[DuplicateOut(document_id=a, same_as=b)
                                                             for a, b in e.duplicates])
                                   for e in entries])


@router.get("/{serial}/cover-sheet.pdf", summary="打印扫描封面（条码为业务流水号）",
            response_class=Response, responses={200: {"content": {"application/pdf": {}}}})
def cover(serial: str, ctx: Context = Depends(context), session: Session = UnitOfWork,
          principal: Principal = Depends(require(Permission.CASE_READ))) -> Response:
    case = get_case(session, principal, serial)
    pdf = sheets.cover(ctx, case)
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="cover-{case.serial}.pdf"'})


@router.get("/{serial}/separator-sheets.pdf", summary="打印材料分隔页（每种材料一张，条码为业务流水号和材料类型）",
            description="默认打印全部必备材料；可用 material_type 参数（可重复）指定材料，包括可选材料。"
                        "把每张分隔页放在对应材料前面，与扫描封面一起批量扫描，材料即自动归类。",
            response_class=Response, responses={200: {"content": {"application/pdf": {}}}})
def separator_sheets(serial: str,
                     material_type: Annotated[list[str] | None, Query(description="材料类型代码；默认全部必备材料")]
                     = None,
                     ctx: Context = Depends(context), session: Session = UnitOfWork,
                     principal: Principal = Depends(require(Permission.CASE_READ))) -> Response:
    case = get_case(session, principal, serial)
    pdf = sheets.separators(ctx, case, material_type)
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="separators-{case.serial}.pdf"'})


@router.post("/{serial}/close", response_model=CaseOut, summary="办结并归档：生成签章的 PDF/A 归档件和档号",
             responses={409: {"description": "材料不齐（detail.missing）或业务已归档"}})
def close(serial: str, req: CloseIn, response: Response, ctx: Context = Depends(context),
          session: Session = UnitOfWork, principal: Principal = Depends(caller)) -> CaseOut:
    # A filing is a fraction of a second of one core; its connection is released afterwards, so the caller's next
    # request is accepted by whichever API process is free (archive/processes.py: with serve --workers N a kept-alive
    # connection stays with one process, and two clients filing through one process share its one interpreter).
    response.headers["Connection"] = "close"
    item = file_case(ctx, session, principal, serial, req)
    return case_out(item.case, principal)  # the rows the filing committed, not read back (issue 17)

