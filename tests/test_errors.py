"""Errors of storage/, signing/ and search/ reach people exactly like archive's own: the same HTTP status, body and
CLI line, though those packages know nothing of HTTP or of archive/."""

from __future__ import annotations

import pytest
import typer
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from archive.access import RateLimited
from archive.api.errors import KIND_STATUS, install, status_of
from archive.commands.console import friendly
from archive.errors import (
    ERRORS,
    KINDS,
    AnyError,
    Busy,
    ConfigError,
    Conflict,
    Gone,
    InvalidInput,
    InvalidRange,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
    TooLarge,
    Unauthenticated,
)
from archive.images import UnsupportedForRendering
from search.errors import SearchError, SearchInvalid, SearchUnavailable
from signing.errors import CertificateProblem, SigningFailed, TimestampUnavailable, UnsupportedDocument
from storage.base import IntegrityFailure, ObjectExists, ObjectNotFound, StoreUnavailable, range_not_satisfiable

CASES: list[tuple[AnyError, int]] = [
    (ObjectNotFound("对象 k 不存在", detail={"key": "k"}), 404),
    (ObjectExists("对象已存在"), 409),
    (StoreUnavailable("存储不可用"), 503),
    (IntegrityFailure("摘要不符"), 422),
    (range_not_satisfiable("k", 10, 5), 416),
    (UnsupportedDocument("PDF 已加密", code="pdf_encrypted"), 422),
    (CertificateProblem("证书已过期", code="certificate_expired"), 500),
    (TimestampUnavailable("时间戳服务无响应"), 503),
    (SigningFailed("签章失败"), 500),
    (SearchInvalid("检索式有误", code="invalid_query"), 422),
    (SearchUnavailable("检索服务不可用", code="index_unavailable"), 503),
    (SearchError("检索服务拒绝了请求", code="index_error", kind="failed"), 500),
    (InvalidInput("输入有误"), 422),
    (TooLarge("文件过大", code="file_too_large"), 413),
    (UnsupportedForRendering("OFD 不能生成页面图像"), 415),
    (InvalidRange("读取起点超出文件大小", 10, code="range_not_satisfiable"), 416),
    (NotFound("档号不存在", code="item_not_found"), 404),
    (Gone("档案已销毁", code="item_destroyed"), 410),
    (Conflict("业务已归档", code="case_not_open"), 409),
    (Unauthenticated("请先登录"), 401),
    (PermissionDenied("没有权限"), 403),
    (RateLimited(3, 1.0), 429),
    (ServiceUnavailable("签章证书未配置", code="signer_missing"), 503),
    (Busy("系统繁忙"), 503),
    (ConfigError("配置有误"), 500),
]


@pytest.mark.parametrize(("error", "status"), CASES, ids=[type(e).__name__ + ":" + e.code for e, _ in CASES])
def test_each_package_error_gets_the_status_of_its_kind(error: AnyError, status: int) -> None:
    """Given an error of any package, When the API answers it, Then the status is the one its kind (or, for archive's
    own, its status) names, and the body is its code, Chinese message and detail, never a traceback."""
    app = FastAPI()
    install(app)

    @app.get("/boom")
    def boom() -> None:
        raise error

    response = TestClient(app, raise_server_exceptions=False).get("/boom")
    assert status_of(error) == status and response.status_code == status
    assert response.json() == {"code": error.code, "message": error.message, "detail": error.detail}


def test_the_headers_an_answer_needs_come_from_the_error() -> None:
    """Given errors that need response headers, When the API answers them, Then 401 asks for a Bearer token, a rate
    limit and a busy catalogue say when to come back, and a range outside a file names the file's size."""
    app = FastAPI()
    install(app)
    errors: dict[str, AnyError] = {"auth": Unauthenticated("请先登录"), "rate": RateLimited(3, 1.0),
                                   "busy": Busy("系统繁忙", retry_after=7),
                                   "range": InvalidRange("读取起点超出文件大小", 10),
                                   "store_range": range_not_satisfiable("k", 20, 5)}

    @app.get("/boom/{name}")
    def boom(name: str) -> None:
        raise errors[name]

    client = TestClient(app, raise_server_exceptions=False)
    assert client.get("/boom/auth").headers["www-authenticate"] == "Bearer"
    assert client.get("/boom/rate").headers["retry-after"] == "3"
    assert client.get("/boom/busy").headers["retry-after"] == "7"
    assert client.get("/boom/range").headers["content-range"] == "bytes */10"
    assert client.get("/boom/store_range").headers["content-range"] == "bytes */5"


def test_every_kind_has_a_status_and_every_base_is_caught() -> None:
    """Given the kinds any error uses, When mapped, Then each has a status and every status has a declared kind;
    ERRORS holds all four bases."""
    kinds = {e.kind for e, _ in CASES}
    assert kinds <= KINDS and set(KIND_STATUS) == KINDS
    assert all(isinstance(e, ERRORS) for e, _ in CASES)


def test_cli_prints_a_package_error_as_one_chinese_line() -> None:
    """Given a command failing with a storage error, When run, Then it prints the Chinese message and the code and
    exits 2, with no traceback."""
    app = typer.Typer()

    @app.command()
    @friendly
    def fail() -> None:
        raise StoreUnavailable("对象存储暂时不可用，请稍后重试", code="store_unavailable")

    result = CliRunner().invoke(app, [])
    assert result.exit_code == 2
    assert "对象存储暂时不可用，请稍后重试" in result.output and "store_unavailable" in result.output
    assert "Traceback" not in result.output
