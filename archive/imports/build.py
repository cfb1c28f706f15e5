"""The heavy part of importing one item, run in a worker process: verify and store the page images, build the
PDF/A rendition, sign it and digest it. Uses the same signing/ and storage/ pieces as filing
(archive/filing.py); nothing here touches the catalogue.

The page images are stored under content keys (from their SHA-256) without a retention lock, so re-storing one
after a crash puts the same bytes under the same key. The signed rendition is returned, not stored: its key
depends on the signing time, so the job (archive/imports/job.py) first records the key in the catalogue and only
then stores it - a crash can never leave a rendition nobody knows about (an orphan for `archive storage gc`).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy.orm import Session

from archive.catalogue.models import Case, Document
from archive.checks import gd
from archive.checks.base import Result
from archive.context import Context
from archive.errors import ERRORS, SYSTEM_KINDS
from archive.settings import Settings
from signing.fixity import Digests, digest_bytes
from storage.base import content_key

if TYPE_CHECKING:
    from signing.rendition import SourceDocument

MEDIA_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".tif": "image/tiff", ".tiff": "image/tiff",
               ".png": "image/png"}

BRANCH = "历史档案"  # 办理网点 of an imported case
_ctx: Context | None = None


def init_worker(settings: Settings) -> None:
    """Process-pool initializer: each worker loads the signer and opens the store once."""
    global _ctx
    _ctx = Context.build(settings)


def build_item(job: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """Store, render, sign and store one item; ``{"ok": …}`` or ``{"failed": code, "reason": Chinese text}``."""
    assert _ctx is not None, "init_worker was not run"
    return build_with(_ctx, job, item)


def build_with(ctx: Context, job: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    try:
        return _build(ctx, job, item)
    except ERRORS as exc:
        if exc.kind in ("unavailable", "busy"):  # the store or the signer is down: stop the job, not the item
            raise
        return {"failed": exc.code, "reason": exc.message}


def build_rendition(*args: Any, **kwargs: Any) -> bytes:
    """signing.rendition.build_rendition, imported in the worker that renders (pikepdf and PIL stay out of start-up)."""
    from signing.rendition import build_rendition as build

    return build(*args, **kwargs)


def sign_pdf(*args: Any, **kwargs: Any) -> bytes:
    """signing.pades.sign_pdf, imported in the worker that signs (pyHanko stays out of start-up); tests replace it."""
    from signing.pades import sign_pdf as sign

    return sign(*args, **kwargs)


def _build(ctx: Context, job: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    from signing.rendition import RenditionMetadata, SourceDocument

    folder = Path(job["delivery"], item["folder"])
    originals: list[dict[str, Any]] = []
    sources: list[SourceDocument] = []
    for n, (name, size, sha256) in enumerate(item["files"], 1):
        data = (folder / name).read_bytes()
        d = digest_bytes(data)  # the check against the scan and the store's digests, from one pass
        if d.size != size or d.sha256 != sha256:
            return {"failed": "file_changed", "reason": f"{item['folder']}/{name} 在预扫描后被改动（大小或摘要不符）；"
                    "请重新预扫描并出具预检报告"}
        key = content_key("originals", d.sha256)
        media = MEDIA_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")
        ctx.store.put(key, io.BytesIO(data), size=d.size, sha256=d.sha256, sm3=d.sm3, media_type=media,
                      sm3_computed=True)
        originals.append({"key": key, "sha256": d.sha256, "sm3": d.sm3, "size": d.size, "name": name,
                          "media_type": media})
        sources.append(SourceDocument(title=f"第{n}页（{name}）", media_type=media, data=data,
                                      material_type="其他材料"))
    rec = item["record"]
    meta = RenditionMetadata(
        archival_code=item["archival_code"], business_serial=item["serial"], business_type=rec["business_type_name"],
        retention=rec["retention_label"], title=rec["title"], fonds_name=ctx.settings.fonds_name,
        dates=(_date(rec["date"]),), parties=[p for p in (rec["name"], rec["id_number"]) if p],
        extra={"年度": str(rec["year"]), "办理网点": BRANCH, "经办人": job["operator"],
               "原档号": rec["original_code"], "数字化服务商": job["vendor"],
               "数字化批次": job["delivery_name"]},
    )
    rendition = build_rendition(sources, meta, max_pixels=ctx.settings.max_pixels)
    del sources  # the page bytes: the checks read the stored copies
    # pikepdf's PDF/A save validated the fresh rendition: only what the signature's increment adds is checked
    signed = sign_pdf(rendition, ctx.signer, timestamper=ctx.timestamper, tsa_required=ctx.settings.tsa_required,
                      pdfa_checked=True)
    d = digest_bytes(signed)
    built = {"ok": True, "originals": originals, "rendition_key": content_key("renditions", d.sha256),
             "rendition_sha256": d.sha256, "rendition_sm3": d.sm3, "rendition_size": d.size,
             "level": "B-T" if ctx.timestamper else "B-B"}
    # the content checks here, beside the bytes, as filing runs them on a rendition it has just signed: the
    # signature checked on its bytes (decision 0020), the page images the build decoded not decoded again
    checks = content_checks(ctx, item, built, signed, digests=d, signed_now=True)
    return built | {"rendition": signed, "checks": checks}


def check_stored(job: dict[str, Any], item: dict[str, Any], recorded: dict[str, Any]) -> dict[str, Any]:
    """The content checks of an item built and stored before a crash (reused, not rebuilt), read back from the
    store; its signature gets the full validation (it was not made in this run)."""
    assert _ctx is not None, "init_worker was not run"
    return check_stored_with(_ctx, item, recorded)


def check_stored_with(ctx: Context, item: dict[str, Any], recorded: dict[str, Any]) -> dict[str, Any]:
    try:
        signed = ctx.store.read_bytes(recorded["rendition_key"])
    except ERRORS as exc:
        if exc.kind in SYSTEM_KINDS:
            raise
        signed = None
    return recorded | {"checks": content_checks(ctx, item, recorded, signed, digests=None, signed_now=False)}


def content_checks(ctx: Context, item: dict[str, Any], built: dict[str, Any], signed: bytes | None, *,
                   digests: Digests | None, signed_now: bool) -> list[tuple[str, Result]]:
    """The GD items that judge the bytes (archive.checks.gd.DETACHED) on the stored originals and the signed
    rendition; (code, result) pairs, small enough to send back to the parent, which runs the others on the
    catalogued item and judges them together."""
    docs = [Document(id=n, sequence=n, material_type="other", filename=o["name"], original_key=o["key"],
                     sha256=o["sha256"], sm3=o["sm3"], size=o["size"], media_type=o["media_type"], page_count=1)
            for n, o in enumerate(built["originals"], 1)]
    subject = gd.FilingSubject(
        cast(Session, _NO_SESSION), ctx, Case(serial=item["serial"]), gd.load_originals(ctx, docs),
        item["archival_code"], ctx.code_rule.parse(item["archival_code"]), "system", signed,
        built["rendition_sha256"], built["rendition_sm3"], built["rendition_key"], scanner=ctx.scanner)
    if signed_now:
        subject.signed_by = ctx.signer.signing_cert
        subject.decoded = {d.id for d in docs if d.media_type in gd.RASTER}  # build_rendition decoded each frame
    if signed is not None and digests is not None:
        subject.memo("digest", signed, lambda _: digests)  # just computed
    return [(i.code, r) for i, r in gd.run_gd(subject, phase="detached")]


class _NoSession:
    """The detached checks need no catalogue: any use of this stand-in is a bug (an ``error`` result)."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"check used the catalogue session ({name}) in a worker")


_NO_SESSION = _NoSession()


def store_rendition(ctx: Context, res: dict[str, Any]) -> None:
    """Store a built item's signed rendition (after its key was recorded), without a lock: filing sets it."""
    ctx.store.put(res["rendition_key"], io.BytesIO(res["rendition"]), size=res["rendition_size"],
                  sha256=res["rendition_sha256"], sm3=res["rendition_sm3"])


def _date(value: str) -> Any:
    import datetime as dt

    return dt.date.fromisoformat(value)
