"""Static assets of the UI, served by the app with their content hash in the URL.

``asset_url("app.js")`` is ``/ui/static/<12 hex of its SHA-256>/app.js``: a changed file gets a new URL, so the
response can be cached for a year (``immutable``). The files are read once, with a gzip copy for browsers that
accept it; nothing comes from outside (centers run on intranets).
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request, Response

from archive.errors import NotFound

STATIC = Path(__file__).parent / "static"
PREFIX = "/ui/static"
_SERVED = {".js", ".css", ".svg", ".png", ".ico", ".txt"}


@dataclass(frozen=True)
class Asset:
    name: str
    digest: str  # first 12 hex digits of the SHA-256
    data: bytes
    gzipped: bytes
    media_type: str


@cache
def assets() -> dict[str, Asset]:
    found: dict[str, Asset] = {}
    for path in sorted(STATIC.iterdir()):
        if path.suffix not in _SERVED or not path.is_file():
            continue
        data = path.read_bytes()
        media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if media.startswith("text/") or media.endswith("javascript"):
            media += "; charset=utf-8"
        found[path.name] = Asset(path.name, hashlib.sha256(data).hexdigest()[:12], data,
                                 gzip.compress(data, 9, mtime=0), media)
    return found


def asset_url(name: str) -> str:
    a = assets()[name]
    return f"{PREFIX}/{a.digest}/{a.name}"


router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("/{digest}/{name}")
def static(digest: str, name: str, request: Request) -> Response:
    a = assets().get(name)
    if a is None or a.digest != digest:  # an old hash after an upgrade: the page that asked is stale too
        raise NotFound("页面资源不存在，请刷新页面", code="asset_not_found")
    headers = {"Cache-Control": "public, max-age=31536000, immutable", "ETag": f'"{a.digest}"',
               "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(a.gzipped, media_type=a.media_type, headers={**headers, "Content-Encoding": "gzip"})
    return Response(a.data, media_type=a.media_type, headers=headers)
