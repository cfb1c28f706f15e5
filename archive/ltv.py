"""Long-term validation of archive items: the PAdES level at filing, the rendition's versions, archive time-stamp
renewal and offline verification at a given time (issue 18; the signing side is signing.ltv / signing.ltv_verify).

* Filing signs at B-LTA when the item's 保管期限 is in ``ARCHIVE_LTV_LTA_RETENTION`` (default D30, Y), else B-LT
  (``ARCHIVE_LTV_LEVEL`` caps it); without a TSA at B-B, as before.
* Renewal (``archive ltv renew``, and a step of the storage sweep) adds a document time stamp with fresh validation
  data to items whose newest time stamp's certificate expires within ``ARCHIVE_LTV_RENEW_DAYS`` or whose algorithm
  is weak. The rendition is WORM-locked, so the renewed file is a new object: stored first, then one short
  transaction adds its ``rendition_version`` row, points the item at it and writes the audit event, then the new
  object gets the old one's lock. A crash leaves the old version in force (an unreferenced object for the
  collector) or the new one; never a row without its object. Items destroyed or proposed/listed for destruction
  are never renewed; a TSA or OCSP responder that is down leaves the item as it was and raises an alert.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session

from archive import audit
from archive.audit import Actor
from archive.catalogue.models import AppraisalDecision, ArchiveItem, DecisionStatus, RenditionVersion
from archive.catalogue.types import utcnow
from archive.checks.alerts import raise_alerts
from archive.checks.base import REGISTRY, Outcome, Result
from archive.context import Context
from archive.errors import ERRORS, ConfigError, Conflict
from archive.settings import Settings
from signing.fixity import Digests, digest_bytes
from storage.base import content_key

if TYPE_CHECKING:
    from pyhanko.sign.timestamps import TimeStamper
    from pyhanko_certvalidator import ValidationContext

    from signing.ltv import TimeStampInfo

log = logging.getLogger(__name__)

SIGNED, RENEWAL = "signed", "renewal"
_DESTRUCTION_PENDING = (DecisionStatus.PROPOSED.value, DecisionStatus.LISTED.value)


def filing_level(settings: Settings, retention: str, timestamped: bool) -> str:
    """The PAdES level a rendition of an item with this 保管期限 is signed at."""
    if not timestamped:
        return "B-B"
    if settings.ltv_level == "B-T":
        return "B-T"
    if settings.ltv_level == "B-LTA" and retention in settings.ltv_lta_retention:
        return "B-LTA"
    return "B-LT"


def sign_rendition(ctx: Context, rendition: bytes, retention: str,
                   sign_and_digest: Callable[..., tuple[bytes, Digests]], *,
                   pdfa_checked: bool = False) -> tuple[bytes, Digests, str]:
    """Sign a rendition for filing at the level its retention calls for (with ``sign_and_digest``, signing.pades's,
    passed by the filing); returns (signed bytes, their digests, level)."""
    from signing.certificates import load_trust_roots
    from signing.ltv import fetching_context, level_of

    settings = ctx.settings
    timestamper = ctx.timestamper
    level = filing_level(settings, retention, timestamper is not None)
    context = fetching_context(load_trust_roots(settings.pki_path)) if level in ("B-LT", "B-LTA") else None
    signed, digests = sign_and_digest(rendition, ctx.signer, timestamper=timestamper,
                                      tsa_required=settings.tsa_required, level=level, validation_context=context,
                                      pdfa_checked=pdfa_checked)
    return signed, digests, level_of(signed) if context is not None else ("B-T" if timestamper else "B-B")


def version_row(item_id: int, version: int, key: str, data: bytes, digests: Digests, kind: str, *,
                read: tuple[str, list[TimeStampInfo]] | None = None) -> RenditionVersion:
    """A rendition_version row describing ``data`` (its level and newest time stamp read from the file).
    ``read``: (level, time stamps) the caller has already read from ``data`` (own_signature_read)."""
    from signing.ltv import level_of, time_stamps

    level, stamps = read if read is not None else (level_of(data), time_stamps(data))
    return RenditionVersion(item_id=item_id, version=version, object_key=key, sha256=digests.sha256,
                            sm3=digests.sm3, size=digests.size, kind=kind, level=level,
                            timestamp_expiry=stamps[-1].tsa_not_after if stamps else None,
                            algorithm=stamps[-1].digest_algorithm if stamps else None, created_at=utcnow())


def own_signature_read(data: bytes) -> tuple[str, list[TimeStampInfo]]:
    """(level, time stamps) of a B-B/B-T file this system has just signed (one signature, no DSS, no document time
    stamp), read from the signature's own bytes: what :func:`version_row` would read with pyHanko's parser,
    without its cost (~35 ms a filing, issue 17). A file carrying more gets the full reading."""
    from signing.ltv import level_of, signature_time_stamps, time_stamps
    from signing.selfcheck import only_signature

    try:  # from the file's structure, as pyHanko reads it: no scan of the whole file's bytes (~1.5 ms a filing)
        found = only_signature(data)
    except (ValueError, TypeError, KeyError):
        found = None
    if found is None:
        return level_of(data), time_stamps(data)
    stamps = signature_time_stamps(found[1], found[0])
    return ("B-T" if stamps else "B-B"), stamps


def record_filed(session: Session, item: ArchiveItem, data: bytes) -> None:
    """At filing: the signed rendition is version 1 (call inside the filing's transaction, after a flush)."""
    assert item.rendition_key is not None
    session.add(version_row(item.id, 1, item.rendition_key, data, digest_bytes(data), SIGNED))


def versions(session: Session, item_id: int) -> list[RenditionVersion]:
    return list(session.scalars(select(RenditionVersion).where(RenditionVersion.item_id == item_id)
                                .order_by(RenditionVersion.version)))


def _backfill(session: Session, ctx: Context, item: ArchiveItem) -> list[RenditionVersion]:
    """Items filed before versions were kept: their current rendition becomes version 1."""
    found = versions(session, item.id)
    if found or not item.rendition_key:
        return found
    data = ctx.store.read_bytes(item.rendition_key)
    row = version_row(item.id, 1, item.rendition_key, data, digest_bytes(data), SIGNED)
    session.add(row)
    session.flush()
    return [row]


def backfill(ctx: Context) -> int:
    """Version 1 for every filed item without versions (reads each rendition once). Returns how many."""
    done = 0
    with ctx.catalogue.session() as s:
        ids = list(s.scalars(select(ArchiveItem.id).where(
            ArchiveItem.status == "filed", ArchiveItem.rendition_key.is_not(None),
            ~exists().where(RenditionVersion.item_id == ArchiveItem.id))))
    for item_id in ids:
        with ctx.catalogue.session() as s:
            item = s.get(ArchiveItem, item_id)
            if item is not None and not versions(s, item_id):
                _backfill(s, ctx, item)
                done += 1
    return done


def under_destruction(session: Session, item_id: int) -> bool:
    """Destroyed, or proposed or listed for destruction: never renewed."""
    item = session.get(ArchiveItem, item_id)
    if item is None or item.status != "filed":
        return True
    return bool(session.scalar(select(func.count()).select_from(AppraisalDecision).where(
        AppraisalDecision.item_id == item_id, AppraisalDecision.decision == "destroy",
        AppraisalDecision.status.in_(_DESTRUCTION_PENDING))))


def due(session: Session, settings: Settings, now: dt.datetime | None = None, limit: int | None = None) -> list[int]:
    """Ids of filed items whose newest version's time stamp expires within the margin or uses a weak algorithm,
    and which are not under destruction."""
    now = now or dt.datetime.now(dt.UTC)
    horizon = now + dt.timedelta(days=settings.ltv_renew_days)
    newest = (select(RenditionVersion.item_id, func.max(RenditionVersion.version).label("v"))
              .group_by(RenditionVersion.item_id).subquery())
    pending = exists().where(AppraisalDecision.item_id == ArchiveItem.id, AppraisalDecision.decision == "destroy",
                             AppraisalDecision.status.in_(_DESTRUCTION_PENDING))
    q = (select(ArchiveItem.id).join(newest, newest.c.item_id == ArchiveItem.id)
         .join(RenditionVersion, (RenditionVersion.item_id == ArchiveItem.id)
               & (RenditionVersion.version == newest.c.v))
         .where(ArchiveItem.status == "filed", ~pending, RenditionVersion.timestamp_expiry.is_not(None),
                or_(RenditionVersion.timestamp_expiry <= horizon,
                    RenditionVersion.algorithm.in_(settings.ltv_weak_algorithms)))
         .order_by(RenditionVersion.timestamp_expiry, ArchiveItem.id))
    if limit is not None:
        q = q.limit(limit)
    return list(session.scalars(q))


@dataclass
class RenewalSummary:
    due: int = 0
    renewed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # under destruction since it was found due
    failed: dict[str, str] = field(default_factory=dict)  # 档号 -> message

    def to_dict(self) -> dict[str, Any]:
        return {"due": self.due, "renewed": len(self.renewed), "skipped": self.skipped, "failed": self.failed}


@dataclass
class _Renewer:
    """What a renewal run shares across its items: a fresh TSA client (one made at start-up would keep the
    certificates of the TSA's first answer) and one validation context (its fetched OCSP/CRL answers are reused)."""

    timestamper: TimeStamper
    context: ValidationContext

    @classmethod
    def of(cls, ctx: Context) -> _Renewer:
        from archive.wiring import timestamper_from_settings
        from signing.certificates import load_trust_roots
        from signing.ltv import fetching_context

        timestamper = timestamper_from_settings(ctx.settings)
        if timestamper is None:
            raise ConfigError("没有配置时间戳服务（ARCHIVE_TSA_URL），无法续期归档时间戳", code="tsa_not_configured")
        return cls(timestamper, fetching_context(load_trust_roots(ctx.settings.pki_path)))


def renew_item(ctx: Context, actor: Actor, item_id: int, renewer: _Renewer | None = None) -> RenditionVersion | None:
    """Renew one item's archive time stamp; None when it is (now) under destruction. Raises the signing errors
    (TSA or revocation source down: TimestampUnavailable) with the item unchanged."""
    from signing.ltv import renew

    renewer = renewer or _Renewer.of(ctx)
    with ctx.catalogue.session() as s:
        if under_destruction(s, item_id):
            return None
        item = s.get(ArchiveItem, item_id)
        assert item is not None and item.rendition_key is not None
        current = _backfill(s, ctx, item)[-1]
        code, old_key, expected = item.archival_code, item.rendition_key, current.sha256
    data = ctx.store.read_bytes(old_key)
    if digest_bytes(data).sha256 != expected:
        raise Conflict(f"归档件 {code} 的版式文件与目录登记的摘要不一致，未续期；请先核查存储",
                       code="ltv_fixity_mismatch", detail={"archival_code": code, "key": old_key})
    renewed = renew(data, renewer.timestamper, renewer.context)
    digests = digest_bytes(renewed)
    key = content_key("renditions", digests.sha256)
    ctx.store.put(key, io.BytesIO(renewed), size=digests.size, sha256=digests.sha256, sm3=digests.sm3,
                  sm3_computed=True)
    with ctx.catalogue.session() as s:
        item = s.get(ArchiveItem, item_id, with_for_update=True)
        if item is None or under_destruction(s, item_id) or item.rendition_key != old_key:
            return None  # destruction started, or another renewal won: the new object is left for the collector
        number = versions(s, item_id)[-1].version + 1
        row = version_row(item_id, number, key, renewed, digests, RENEWAL)
        s.add(row)
        item.rendition_key, item.rendition_sha256, item.rendition_sm3 = key, digests.sha256, digests.sm3
        item.signature = {**(item.signature or {}), "level": row.level, "renewed_at": utcnow().isoformat()}
        audit.record(s, actor, "item.ltv.renew", target_type="item", target_id=code, detail={
            "version": number, "previous_sha256": expected, "rendition_sha256": digests.sha256,
            "timestamp_expiry": row.timestamp_expiry.isoformat() if row.timestamp_expiry else None})
    lock = ctx.store.stat(old_key).retain_until
    if lock is not None:
        ctx.store.set_retention(key, lock)
    return row


def renew_due(ctx: Context, actor: Actor, *, limit: int | None = None, now: dt.datetime | None = None
              ) -> RenewalSummary:
    """Renew every item due; a failure raises an alert (BC-1-2) and leaves that item as it was."""
    backfill(ctx)
    with ctx.catalogue.session() as s:
        ids = due(s, ctx.settings, now, limit)
        codes: dict[int, str] = {i: c for i, c in s.execute(
            select(ArchiveItem.id, ArchiveItem.archival_code).where(ArchiveItem.id.in_(ids)))} if ids else {}
    summary = RenewalSummary(due=len(ids))
    if not ids:
        return summary
    renewer = _Renewer.of(ctx)
    for item_id in ids:
        code = codes[item_id]
        try:
            row = renew_item(ctx, actor, item_id, renewer)
        except ERRORS as exc:
            summary.failed[code] = exc.message
            _alert(ctx, actor, code, exc.message, exc.code)
            continue
        (summary.renewed if row is not None else summary.skipped).append(code)
    return summary


def _alert(ctx: Context, actor: Actor, code: str, message: str, error_code: str) -> None:
    log.warning("archive time-stamp renewal of %s failed: %s", code, error_code, extra={"code": error_code})
    result = Result(Outcome.ERROR, f"归档件 {code} 的归档时间戳续期失败，证据仍为原版本：{message}", target=code,
                    data={"archival_code": code, "error": error_code})
    import archive.checks.bc  # noqa: F401  # registers BC-1-2

    with ctx.catalogue.session() as s:
        raise_alerts(s, actor, [(REGISTRY["BC-1-2"], result)])
        audit.record(s, actor, "item.ltv.renew", target_type="item", target_id=code, outcome="failure",
                     detail={"error": error_code})


def sweep_step(ctx: Context, actor: Actor) -> RenewalSummary | None:
    """The storage sweep's last step: renew what is due when a TSA is configured. Never raises: a failure is an
    alert (per item in :func:`renew_due`, else one for the whole step) and the items stay as they were."""
    if ctx.settings.tsa_url is None:
        return None
    try:
        return renew_due(ctx, actor)
    except Exception as exc:  # the sweep itself has finished; the step must not turn it into a failure
        log.exception("archive time-stamp renewal step of the sweep failed")
        message = getattr(exc, "message", None) or type(exc).__name__
        try:
            _alert(ctx, actor, "续期步骤", message, getattr(exc, "code", "ltv_renewal_failed"))
        except Exception:  # nothing more can be done here; it is logged above
            log.exception("could not raise the renewal alert")
        return None
