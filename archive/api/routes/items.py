"""Archive items for business systems: data by 档号 or in batches, page images, files, access register.

Every endpoint here is rate limited per API client (429 with Retry-After) and registers each read
of an archive item as an access event (利用登记, ``access.read``) with the caller's ``X-Purpose``.
Without the permission the answer is 403 before anything is looked up; an item, case or document
outside the caller's branches is 404, as if it did not exist.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from archive import access, authorization, images, items, reading
from archive.access import PURPOSE_HEADER, AccessEventOut, purpose_of, record_access
from archive.api.deps import UnitOfWork, caller, context, context_of, quick_caller, require, require_alone, route_of
from archive.api.files import file_response, matches, rendition_response
from archive.api.params import MAX_INT, Id, Offset, Page
from archive.api.routes.cases import CaseRecord, case_record
from archive.catalogue.models import Case
from archive.context import Context
from archive.eep_record import eep_record
from archive.permissions import Permission, Principal
from archive.reading import granted_document

MAX_BATCH = 100
CODE_EXAMPLE = "J001-YW·2026-D30-TQ-000001"


router = APIRouter(prefix="/api/v1", tags=["items"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "未登录，或接入密钥无效、已过期、已吊销"
                         "（invalid_api_key / expired_api_key / revoked_api_key）"},
    403: {"description": "缺少所需权限范围（permission_denied），不登记利用"},
    404: {"description": "不存在，或不在调用方可见的网点范围内"},
    429: {"description": "超过该接入系统的请求频率（rate_limited），响应头 Retry-After 给出等待秒数"},
}


def guard(permission: Permission, *, grantable: bool = False) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """The caller: rate limited (API clients), then checked for ``permission`` (403 otherwise).

    ``grantable``: a person may instead hold a lending grant (利用授权) for the item, which the handler checks.
    """

    async def dependency(request: Request, principal: Principal = Depends(caller),
                         session: Session = UnitOfWork) -> Principal:  # no thread hop, but to audit a refusal
        if principal.kind == "client":
            await _rate_limit(request, principal)
        elif grantable:
            return principal
        if not principal.can(permission):
            await run_in_threadpool(authorization.require, session, principal, permission, target_type="api",
                                    target_id=route_of(request))
        return principal

    return dependency


def quick_guard(permission: Permission) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """:func:`guard` (grantable) for a hot read-only route: the caller from :func:`quick_caller` and no unit of
    work; a refusal is audited in a transaction of its own."""

    async def dependency(request: Request, principal: Principal = Depends(quick_caller)) -> Principal:
        if principal.kind != "client":
            return principal  # a person may hold a grant: the handler checks
        await _rate_limit(request, principal)
        if not principal.can(permission):
            await run_in_threadpool(require_alone, context_of(request), principal, permission, route_of(request))
        return principal

    return dependency


async def _rate_limit(request: Request, principal: Principal) -> None:
    limiter = context_of(request).rate_limiter
    if limiter.shared:  # a catalogue round trip: not on the event loop
        await run_in_threadpool(limiter.take, f"client:{principal.id}")
    else:
        limiter.take(f"client:{principal.id}")


async def purpose(x_purpose: str | None = Header(None, alias=PURPOSE_HEADER, description="利用目的，记入利用登记；"
                                           "中文请 URL 编码", examples=["%E6%8F%90%E5%8F%96%E5%AE%A1%E6%A0%B8"])
            ) -> str | None:
    return purpose_of(x_purpose)




# --- data ----------------------------------------------------------------------------------------

@router.get("/items/{archival_code}", response_model=CaseRecord, responses=_ERRORS,
            summary="按档号查询：业务、材料、归档信息（档号、保管期限、状态、签章）和事件",
            description=f"档号中的「·」须 URL 编码，例如 `{quote(CODE_EXAMPLE)}`。登记一条利用记录（what=data）。")
def read_item(archival_code: str, ctx: Context = Depends(context), session: Session = UnitOfWork,
              why: str | None = Depends(purpose),
              principal: Principal = Depends(guard(Permission.ITEM_READ, grantable=True))) -> CaseRecord:
    item, grant = items.granted_item(session, principal, archival_code, "data", Permission.ITEM_READ, ctx)
    record_access(session, principal, item.case, "data", why, grant=grant)
    return case_record(session, item.case, principal)


class LookupIn(BaseModel):
    serials: list[str] = Field(min_length=1, max_length=MAX_BATCH, description=f"业务流水号，最多 {MAX_BATCH} 个",
                               examples=[["YW2026010500001", "YW2026010500002"]])


class LookupOut(BaseModel):
    found: list[CaseRecord]
    not_found: list[str] = Field(description="不存在或不在可见网点范围内的业务流水号")


@router.post("/cases/lookup", response_model=LookupOut, responses=_ERRORS, tags=["items"],
             summary=f"批量查询：一次最多 {MAX_BATCH} 个业务流水号",
             description="已归档的业务各登记一条利用记录（what=data）。结果按请求顺序，重复的流水号只返回一次。")
def lookup(req: LookupIn = Body(openapi_examples={"two": {"summary": "两个流水号", "value": {
               "serials": ["YW2026010500001", "YW2026010500002"]}}}),
           session: Session = UnitOfWork, why: str | None = Depends(purpose),
           principal: Principal = Depends(guard(Permission.CASE_READ))) -> LookupOut:
    wanted = list(dict.fromkeys(s.strip() for s in req.serials))
    cases = {c.serial: c for c in session.scalars(select(Case).where(Case.serial.in_(wanted)))}
    found, missing = [], []
    for serial in wanted:
        case = cases.get(serial)
        if case is None or not principal.sees_branch(case.branch):
            missing.append(serial)
            continue
        record_access(session, principal, case, "data", why)
        found.append(case_record(session, case, principal))
    return LookupOut(found=found, not_found=missing)


# --- images --------------------------------------------------------------------------------------

@router.get("/documents/{document_id}/pages/{page}", response_class=Response,
            responses={**_ERRORS, 200: {"content": {t: {} for t in images.FORMATS.values()},
                                        "description": "页面图像；ETag 为图像的 SHA-256"},
                       304: {"description": "If-None-Match 与 ETag 相同"},
                       415: {"description": "OFD 等不能生成图像的格式（page_render_unsupported）"},
                       422: {"description": "宽度超过上限（width_too_large）或格式不支持"}},
            summary="材料的页面图像（JPEG/PNG/WebP，指定宽度；缩略图用 w=200）",
            description="由原件渲染并缓存，再次请求直接读缓存。登记一条利用记录（what=page）。")
async def page_image(document_id: Id, page: Page, request: Request,
                     w: int = Query(images.DEFAULT_WIDTH, le=MAX_INT,
                                    description=f"宽度（像素），最大 {images.MAX_WIDTH}",
                                    examples=[1000, images.THUMBNAIL_WIDTH]),
                     format: str = Query("jpeg", description="jpeg、png 或 webp", examples=["jpeg", "webp"]),
                     why: str | None = Depends(purpose),
                     principal: Principal = Depends(quick_guard(Permission.IMAGE_READ))) -> Response:
    fmt, ctx = format.lower().replace("jpg", "jpeg"), context_of(request)
    started = reading.quick_page_read(ctx, principal, document_id, page, w, fmt, why)  # from memory: no thread
    if started is None:
        started = await run_in_threadpool(reading.start_page_read, ctx, None, principal, document_id, page, w, fmt,
                                          why)
    read, registered = started
    await ctx.access_writer.registered(registered)  # answered only once its 利用登记 is committed
    image, marked = read.image, read.watermarked
    headers = {"ETag": image.etag, "X-Cache": "hit" if image.cached else "miss",
               "Cache-Control": "private, no-store" if marked else "private, max-age=86400"}
    if not marked and matches(request, image.etag):
        return Response(status_code=304, headers=headers)
    return Response(image.data, media_type=image.media_type, headers=headers)


# --- files ---------------------------------------------------------------------------------------

_FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_ERRORS, 206: {"description": "Range 请求的部分内容（只支持单个范围）"}, 304: {"description": "未变化"},
    416: {"description": "Range 格式错误（invalid_range）或超出文件大小（range_not_satisfiable）"}}


@router.get("/documents/{document_id}/original", response_class=StreamingResponse,
            responses={**_FILE_RESPONSES, 200: {"content": {"application/octet-stream": {}}}},
            summary="材料原件（按接收时原样），支持 Range",
            description="登记一条利用记录（what=original）。")
def original(document_id: Id, request: Request, ctx: Context = Depends(context), session: Session = UnitOfWork,
             why: str | None = Depends(purpose),
             principal: Principal = Depends(guard(Permission.FILE_READ, grantable=True))) -> Response:
    doc, grant = granted_document(session, principal, document_id, "original", Permission.FILE_READ, ctx)
    response = file_response(ctx, request, doc.original_key, doc.size, doc.sha256, doc.media_type, doc.filename)
    record_access(session, principal, doc.case, "original", why, document=doc.id,
                  range=request.headers.get("range"), grant=grant)
    return response


@router.get("/items/{archival_code}/rendition.pdf", response_class=StreamingResponse,
            responses={**_FILE_RESPONSES, 200: {"content": {"application/pdf": {}}}},
            summary="归档件：签章的 PDF/A，支持 Range", description="登记一条利用记录（what=rendition）。")
def rendition(archival_code: str, request: Request, ctx: Context = Depends(context), session: Session = UnitOfWork,
              why: str | None = Depends(purpose),
              principal: Principal = Depends(guard(Permission.FILE_READ, grantable=True))) -> Response:
    return rendition_response(ctx, request, session, principal, archival_code, why)


class CheckOut(BaseModel):
    name: str
    passed: bool
    detail: str
    signature: str | None
    status: str = Field(description="passed 通过；failed 未通过；absent 无可检查之物（如 PAdES B-B 签章没有时间戳），"
                                    "既非通过也非未通过")


class VerificationOut(BaseModel):
    archival_code: str
    ok: bool
    level: str | None
    signer: str | None
    signing_time: str | None
    digests: dict[str, Any] | None
    checks: list[CheckOut]
    verified_at: datetime
    long_term: dict[str, Any] | None = Field(
        None, description="长期验证（仅用文件自带的验证数据，离线）：逐层结果 layers、一句话结论 summary、"
        "无需续期可保持到 holds_until、时间戳链 chain、版式文件的各版本 versions")


@router.get("/items/{archival_code}/verification", response_model=VerificationOut, responses=_ERRORS,
            summary="归档件核验报告：签章、证书链、PDF/A、固定性（与目录中的 SHA-256/SM3 比对）",
            description="每次请求重新核验。登记一条利用记录（what=verification）。")
def verification(archival_code: str, ctx: Context = Depends(context), session: Session = UnitOfWork,
                 why: str | None = Depends(purpose),
                 principal: Principal = Depends(guard(Permission.ITEM_READ)),
                 at: date | None = Query(None, description="长期验证的时间点（如 2056-01-01）：在该日验证，"
                                         "只用文件自带的证书与吊销信息；默认现在")) -> VerificationOut:
    item, report = items.verify(ctx, session, principal, archival_code, why)
    when = datetime(at.year, at.month, at.day, tzinfo=UTC) if at else None
    return VerificationOut(archival_code=archival_code, verified_at=datetime.now(UTC), **report.to_dict(),
                           long_term=items.long_term(ctx, session, item, when))


@router.get("/items/{archival_code}/package.eep", response_class=Response,
            responses={**_ERRORS, 200: {"content": {"application/xml": {}}}},
            summary="DA/T 48 电子文件封装包（EEP，含签章的 PDF/A 与元数据，由本中心签名）",
            description="按需生成。登记一条利用记录（what=package）。")
def package(archival_code: str, ctx: Context = Depends(context), session: Session = UnitOfWork,
            why: str | None = Depends(purpose),
            principal: Principal = Depends(guard(Permission.FILE_READ))) -> Response:
    from signing.eep import EepFile, build_eep

    item = items.find_item(session, principal, archival_code)
    with ctx.store.get(items.rendition_key(item)) as f:
        data = f.read()
    xml = build_eep(eep_record(ctx, item), [EepFile(f"{archival_code}.pdf", data, title="归档 PDF/A")], ctx.signer,
                    creator_unit=ctx.settings.fonds_name)
    record_access(session, principal, item.case, "package", why)
    name = quote(f"{archival_code}.eep")
    return Response(xml, media_type="application/xml",
                    headers={"Content-Disposition": f"attachment; filename=\"package.eep\"; filename*=UTF-8''{name}"})


# --- 利用登记 ------------------------------------------------------------------------------------

class AccessPage(BaseModel):
    total: int
    events: list[AccessEventOut]


_register_reader = require(Permission.AUDIT_READ, Permission.RETENTION_MANAGE,
                           message="只有档案管理员和安全审计员可以查看利用登记")


@router.get("/access-events", response_model=AccessPage, responses=_ERRORS,
            summary="利用登记：谁、何时、以何目的读取了哪个档案（档案管理员、安全审计员）")
def access_events(archival_code: str | None = Query(None, max_length=64, examples=[CODE_EXAMPLE]),
                  actor: str | None = Query(None, max_length=100, description="用户名或接入系统名称"),
                  since: datetime | None = Query(None), limit: int = Query(100, ge=1, le=1000),
                  offset: Offset = 0, session: Session = UnitOfWork,
                  _: Principal = Depends(_register_reader)) -> AccessPage:
    total, events = access.list_access(session, target=archival_code, actor=actor, since=since, limit=limit,
                                       offset=offset)
    return AccessPage(total=total, events=events)


