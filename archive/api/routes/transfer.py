"""Transfer packages (移交) and receipts (接收): export, download, receive, 登记表 as PDF."""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from archive.api.deps import UnitOfWork, actor_of, context, require
from archive.api.errors import error_response
from archive.api.params import Id, Offset
from archive.catalogue.models import TransferPackage, TransferReceipt
from archive.checks import yj  # noqa: F401  (registers the YJ items wherever the API lists check items)
from archive.context import Context
from archive.permissions import Permission, Principal
from archive.retention import refusals, transfer
from archive.retention.register import receipt_pdf, register_pdf
from archive.retention.transfer import Selection

router = APIRouter(prefix="/api/v1", tags=["transfer"])
_manage = require(Permission.TRANSFER_MANAGE)
CHUNK = 1024 * 1024

_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "缺少「办理移交与接收」权限（permission_denied）"},
    404: {"description": "档号、信息包或接收记录不存在（item_not_found / selection_empty / transfer_not_found /"
                         " receipt_not_found）"},
    409: {"description": "档案已不在库（item_not_transferable），或信息包未通过检测没有文件（transfer_not_released）"},
    413: {"description": "上传的信息包超过大小上限（transfer_too_large）"},
    422: {"description": "输入有误；上传的不是 zip（transfer_not_zip）、不是 BagIt 信息包（transfer_not_bag）、"
                         "含不安全路径（transfer_unsafe_path）、解压后过大（transfer_too_large）、"
                         "目录文件或登记表过大（transfer_tag_file_too_large）等，均记入审计日志"},
}


class CheckResultOut(BaseModel):
    code: str
    name: str
    dimension: str
    object: str
    blocking: bool
    outcome: str
    detail: str
    target: str | None


class ExportIn(Selection):
    receiver: str | None = Field(None, max_length=200, description="接收单位；默认为配置的接收单位")


class PackageOut(BaseModel):
    id: int
    package_no: str
    sender: str
    receiver: str
    status: str  # released 已生成可移交, failed 检测未通过
    item_count: int
    payload_bytes: int
    bag_sha256: str
    bag_sm3: str
    zip_size: int | None
    zip_sha256: str | None
    zip_sm3: str | None
    selection: dict[str, Any]
    register_data: dict[str, Any] = Field(validation_alias="register", serialization_alias="register")
    check_results: list[CheckResultOut]
    report_id: int | None
    created_by: str
    created_at: datetime


class ReceiptOut(BaseModel):
    id: int
    package_no: str | None
    sender: str | None
    receiver: str | None
    status: str  # accepted 接收, returned 退回
    message: str
    failed: list[str]
    source: str
    size: int
    sha256: str
    sm3: str
    sender_sha256: str | None
    item_count: int
    payload_bytes: int
    register_data: dict[str, Any] | None = Field(validation_alias="register", serialization_alias="register")
    check_results: list[CheckResultOut]
    report_id: int | None
    received_by: str
    received_at: datetime


def package_out(row: TransferPackage) -> PackageOut:
    return PackageOut.model_validate(row, from_attributes=True)


def receipt_out(row: TransferReceipt) -> ReceiptOut:
    message, failed = transfer.receipt_verdict(row)
    data = {c: getattr(row, c) for c in ReceiptOut.model_fields if hasattr(row, c)}
    return ReceiptOut(**(data | {"register": row.register, "message": message, "failed": failed}))


# --- export ---------------------------------------------------------------------------------------

@router.post("/transfers", response_model=PackageOut, status_code=201, responses=_ERRORS,
             summary="生成移交信息包：按档号列表或类别/年度/保管期限筛选，每件一个 EEP，附目录文件与移交登记表，"
                     "运行移交检测（YJ），通过后可下载")
def create_package(req: ExportIn, ctx: Context = Depends(context), session: Session = UnitOfWork,
                   principal: Principal = Depends(_manage)) -> PackageOut | JSONResponse:
    actor = actor_of(principal)
    selection = Selection.model_validate(req.model_dump(exclude={"receiver"}))
    with refusals.answered(session, actor, "transfer.export", source="api") as refused:
        row = transfer.export(ctx, session, actor, selection, receiver=req.receiver, branches=principal.branches)
    if refused:
        return error_response(refused[0])  # answered, not raised: the refusal's audit event commits
    return package_out(row)


@router.get("/transfers", response_model=list[PackageOut], responses=_ERRORS, summary="移交信息包（最新在前）")
def list_packages(limit: int = Query(50, ge=1, le=500), offset: Offset = 0,
                  session: Session = UnitOfWork, _: Principal = Depends(_manage)) -> list[PackageOut]:
    rows = session.scalars(select(TransferPackage).order_by(TransferPackage.id.desc()).limit(limit).offset(offset))
    return [package_out(r) for r in rows]


@router.get("/transfers/{package_id}", response_model=PackageOut, responses=_ERRORS, summary="移交信息包详情与检测结果")
def read_package(package_id: Id, session: Session = UnitOfWork, _: Principal = Depends(_manage)) -> PackageOut:
    return package_out(transfer.get_package(session, package_id))


@router.get("/transfers/{package_id}/package.zip", response_class=StreamingResponse, responses={
    **_ERRORS, 200: {"content": {"application/zip": {}}}}, summary="下载移交信息包（zip，流式）")
def download_package(package_id: Id, ctx: Context = Depends(context), session: Session = UnitOfWork,
                     principal: Principal = Depends(_manage)) -> StreamingResponse:
    row, chunks = transfer.download(ctx, session, actor_of(principal), package_id)
    return StreamingResponse(chunks, media_type="application/zip", headers={
        "Content-Length": str(row.zip_size), "ETag": f'"{row.zip_sha256}"', "X-Package-SHA256": row.zip_sha256 or "",
        "Content-Disposition": attachment(f"{row.package_no}.zip")})


@router.get("/transfers/{package_id}/register.pdf", response_class=Response, responses={
    **_ERRORS, 200: {"content": {"application/pdf": {}}}}, summary="移交登记表（PDF，含移交检测结果）")
def package_register(package_id: Id, ctx: Context = Depends(context), session: Session = UnitOfWork,
                     _: Principal = Depends(_manage)) -> Response:
    row = transfer.get_package(session, package_id)
    pdf = register_pdf(ctx, row.register, row.check_results)
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": attachment(f"{row.package_no}-移交登记表.pdf")})


# --- receive --------------------------------------------------------------------------------------

@router.post("/transfer-receipts", response_model=ReceiptOut, status_code=201, responses=_ERRORS,
             summary="接收移交信息包：核对 BagIt 清单、EEP 签名与摘要，运行移交与接收检测（YJ），登记接收或退回",
             description="上传 zip。检测未通过时仍登记（status=returned，应退回移交单位）；无法安全打开的文件直接拒收"
                         "（4xx），只记审计日志。不在本系统中生成档案条目。")
def receive_package(file: Annotated[UploadFile, File(description="移交信息包 zip")],
                    sender_sha256: Annotated[str | None, Form(description="移交方提供的信息包 SHA-256（可选）")] = None,
                    ctx: Context = Depends(context), session: Session = UnitOfWork,
                    principal: Principal = Depends(_manage)) -> ReceiptOut | JSONResponse:
    actor = actor_of(principal)
    name = file.filename or "upload.zip"
    base = ctx.settings.data_dir / "tmp"
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="receive-", dir=base))
    try:
        with refusals.answered(session, actor, "transfer.receive", source=name) as refused:
            path = tmp / "package.zip"
            transfer.save_upload(file.file, path, ctx.settings.transfer_max_package_mb)
            row = transfer.receive(ctx, session, actor, path, source=name, sender_sha256=sender_sha256 or None)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if refused:
        return error_response(refused[0])  # answered, not raised: the refusal's audit event commits
    return receipt_out(row)


@router.get("/transfer-receipts", response_model=list[ReceiptOut], responses=_ERRORS, summary="接收记录（最新在前）")
def list_receipts(limit: int = Query(50, ge=1, le=500), offset: Offset = 0,
                  session: Session = UnitOfWork, _: Principal = Depends(_manage)) -> list[ReceiptOut]:
    rows = session.scalars(select(TransferReceipt).order_by(TransferReceipt.id.desc()).limit(limit).offset(offset))
    return [receipt_out(r) for r in rows]


@router.get("/transfer-receipts/{receipt_id}", response_model=ReceiptOut, responses=_ERRORS,
            summary="接收记录详情：移交与接收登记表数据与检测结果")
def read_receipt(receipt_id: Id, session: Session = UnitOfWork, _: Principal = Depends(_manage)) -> ReceiptOut:
    return receipt_out(transfer.get_receipt(session, receipt_id))


@router.get("/transfer-receipts/{receipt_id}/register.pdf", response_class=Response, responses={
    **_ERRORS, 200: {"content": {"application/pdf": {}}}}, summary="移交与接收登记表（PDF）")
def receipt_register(receipt_id: Id, ctx: Context = Depends(context), session: Session = UnitOfWork,
                     _: Principal = Depends(_manage)) -> Response:
    row = transfer.get_receipt(session, receipt_id)
    pdf = receipt_pdf(ctx, row)
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": attachment(f"接收登记表-{row.id}.pdf")})


def attachment(filename: str) -> str:
    ascii_name = "".join(c if (c.isascii() and c.isalnum()) or c in "-_." else "_" for c in filename)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
