"""Files over HTTP, for the API and the web UI alike: one byte range (``Range``), ETag revalidation, a download
name in any script, the stream closed even when the client leaves early; and the rendition of an archive item
as such a file, its read registered (利用登记, what=rendition)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask

from archive import items
from archive.access import record_access
from archive.context import Context
from archive.errors import InvalidRange
from archive.permissions import Permission, Principal

CHUNK = 256 * 1024


def rendition_response(ctx: Context, request: Request, session: Session, principal: Principal, archival_code: str,
                       purpose: str | None) -> Response:
    """The item's signed PDF/A (by role and branch, or under a lending grant), its read registered."""
    item, grant = items.granted_item(session, principal, archival_code, "rendition", Permission.FILE_READ, ctx)
    key = items.rendition_key(item)
    size = ctx.store.stat(key).size
    response = file_response(ctx, request, key, size, item.rendition_sha256 or "", "application/pdf",
                             f"{archival_code}.pdf")
    record_access(session, principal, item.case, "rendition", purpose, range=request.headers.get("range"),
                  grant=grant)
    return response


_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The single byte range ``bytes=a-b``, ``bytes=a-`` or ``bytes=-n`` as (start, end inclusive)."""
    if header is None:
        return None
    m = _RANGE.fullmatch(header.strip())
    if m is None or not (m.group(1) or m.group(2)):
        raise InvalidRange(f"Range 请求头 {header!r} 格式不对：只支持单个范围，"
                           "如 bytes=0-1023、bytes=1024-、bytes=-500", size)
    if m.group(1):
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) else max(start, size - 1)
        if end < start:
            raise InvalidRange(f"Range 请求头 {header!r} 的终点小于起点", size)
    else:
        suffix = int(m.group(2))
        if suffix == 0:
            raise InvalidRange("Range bytes=-0 不包含任何字节", size, code="range_not_satisfiable")
        start, end = max(0, size - suffix), size - 1
    if start >= size:
        raise InvalidRange(f"读取起点 {start} 超出文件大小（{size} 字节）", size, code="range_not_satisfiable")
    return start, min(end, size - 1)


def file_response(ctx: Context, request: Request, key: str, size: int, sha256: str, media_type: str,
                   filename: str) -> Response:
    etag = f'"{sha256}"'
    span = parse_range(request.headers.get("range"), size)
    headers = {"ETag": etag, "Accept-Ranges": "bytes", "Cache-Control": "private, max-age=86400",
               "Content-Disposition": f"attachment; filename=\"{_ascii(filename)}\"; "
                                      f"filename*=UTF-8''{quote(filename)}"}
    if span is None and matches(request, etag):
        return Response(status_code=304, headers=headers)
    start, end = span if span is not None else (0, size - 1)
    length = end - start + 1
    headers["Content-Length"] = str(length)
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    stream = ctx.store.get(key, offset=start, length=length) if length > 0 else None
    # closed after the response even when the client left before the first chunk was read
    return StreamingResponse(_chunks(stream), status_code=206 if span is not None else 200, media_type=media_type,
                             headers=headers, background=BackgroundTask(stream.close) if stream else None)


def _chunks(stream: Any) -> Iterator[bytes]:
    if stream is None:
        return
    with stream:
        while chunk := stream.read(CHUNK):
            yield chunk


def matches(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match")
    return header is not None and (header.strip() == "*" or etag in [t.strip() for t in header.split(",")])


def _ascii(name: str) -> str:
    return "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name) or "file"
