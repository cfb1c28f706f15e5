"""Filing (归档): closing a case into a signed, stored, catalogued archive item with its 档号.

The heavy work runs outside any write transaction, so a long filing (thousands of pages) never holds
SQLite's database-wide write lock or a PostgreSQL row lock while it renders
(docs/decisions/0014-filing-outside-write-transactions.md). In a read-only session (Catalogue.reading):
check the case and its materials, predict the 档号 (the 件号 the class's counter would give next; the
rendition carries the 档号), run the catalogue record's GD checks, build and sign the PDF/A rendition, run
the remaining GD checks, store the rendition. Then one short write transaction: lock the case, make sure
nothing it was built from changed, take the 件号 (row-locked, gap-free) and file - the item, its retention
locks (the originals' were set as the rendition was stored, so the transaction writes the rendition's alone), the GD
report, the audit event and the outbox row. If another filing took the predicted 件号
meanwhile (another process; filings of one class in this process queue on a lock) or the case changed,
nothing is written and the filing starts again with the next number; the unused rendition, stored without
a retention lock, is an orphan for `archive storage gc`.

A blocking GD failure (archive/checks/gd.py) refuses the filing (409 filing_checks_failed) before anything
is stored or numbered; a filed item's report is saved with it.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal, NoReturn

from pydantic import BaseModel, Field
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from archive import audit, authorization, indexing, ltv, metrics
from archive.archival_code import CodeParts, allocate, peek
from archive.audit import Actor
from archive.capture.cases import ensure_open, get_case
from archive.capture.documents import DECODED, filing_order, missing_materials
from archive.capture.sniff import JPEG
from archive.catalogue.db import is_busy
from archive.catalogue.models import ArchiveItem, Case, RenditionVersion
from archive.catalogue.types import utcnow
from archive.checks import gd
from archive.checks.base import CheckItem, Outcome, Result, Stage, blocking_failures, code_key
from archive.checks.reports import add_report, save_report
from archive.classification import Trigger
from archive.context import Context
from archive.errors import Busy, Conflict, InvalidInput, NotFound, PermissionDenied
from archive.permissions import Permission, Principal
from archive.retention import expiry_date
from archive.retention.holds import case_objects
from archive.retention.periods import lock_end
from archive.retention.refusals import audited
from archive.retention.schedules import ensure_version
from signing.fixity import Digests, digest_bytes
from storage.base import content_key

ATTEMPTS = 3  # builds of one filing whose predicted 件号 another process took first, before 503 filing_busy

# Hashing beside the filing thread (hashlib releases the GIL): the originals' digests while the GD record checks run
_helpers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="filing")

_class_locks: dict[tuple[str, int, str, str], threading.Lock] = {}
_class_locks_guard = threading.Lock()


class TrailStep(BaseModel):
    """One 业务行为 of the approval trail (GB/T 18894 process metadata)."""

    action: Literal["受理", "初审", "审核", "复核", "审批", "签章", "放款", "付款", "办结"]
    person: str = Field(min_length=1, max_length=64)
    at: datetime
    opinion: str | None = Field(None, max_length=500)


class CloseIn(BaseModel):
    outcome: Literal["approved", "rejected", "withdrawn"] = Field(description="办结结果：approved 办结, "
                                                                  "rejected 不予办理, withdrawn 撤回")
    closed_at: datetime | None = Field(None, description="办结时间（带时区）；默认为现在")
    trail: list[TrailStep] = Field(min_length=1, max_length=50)
    override_reason: str | None = Field(None, max_length=500, description="材料不全仍归档的理由（仅档案管理员）")


@dataclass(frozen=True)
class _Built:
    """A filing built and checked outside any write transaction, waiting to be committed."""

    parts: CodeParts  # predicted: the 件号 must still be the next one when the filing commits
    code: str
    basis: tuple[Any, ...]  # what the rendition and the checks were built from (see _basis)
    results: list[tuple[CheckItem, Result]]
    key: str
    digests: Digests
    originals: list[str]  # keys of the active documents' originals
    missing: list[str]
    trigger_date: date | None
    expiry: date | None
    lock: datetime | None  # object-lock end; None for back-filed records already past their period
    level: str  # B-T with a time stamp, else B-B; B-LT / B-LTA with validation data (archive.ltv)
    version: RenditionVersion | None = None  # the rendition's version 1 (archive.ltv), item_id set at commit


class _Stale(Exception):
    """The predicted 件号 was taken, or the case changed, while the filing was being built."""


def build_rendition(*args: Any, **kwargs: Any) -> bytes:
    """signing.rendition.build_rendition, imported when a filing renders (pikepdf and PIL stay out of start-up)."""
    from signing.rendition import build_rendition as build

    return build(*args, **kwargs)


def sign_and_digest(*args: Any, **kwargs: Any) -> tuple[bytes, Digests]:
    """signing.pades.sign_and_digest, imported when a filing signs (pyHanko stays out of start-up)."""
    from signing.pades import sign_and_digest as sign

    return sign(*args, **kwargs)


def file_case(ctx: Context, session: Session, principal: Principal, serial: str, data: CloseIn) -> ArchiveItem:
    """办结归档 as people and business systems ask for it (API and UI alike): the permission check, then
    :func:`close_case` as an audited step (``item.file``); a GD refusal keeps its check report.

    ``session`` is the request's unit of work: it is committed here, before filing starts, because filing takes
    short transactions of its own and on SQLite an open one would hold the write lock they need.
    """
    authorization.require(session, principal, Permission.CASE_WRITE, Permission.FILING_OVERRIDE, action="item.file",
                          target_type="case", target_id=serial,
                          message="当前账号没有「受理与修改业务」权限，不能办结归档")
    session.commit()
    try:
        with audited(session, principal, "item.file", target_type="case", target_id=serial):
            return close_case(ctx, principal, serial, data)
    except FilingChecksFailed as exc:
        keep_refusal(ctx, principal, serial, exc)
        raise


def close_case(ctx: Context, principal: Principal, serial: str, data: CloseIn) -> ArchiveItem:
    """File the case in transactions of its own (the caller must not hold one: on SQLite it would hold the
    write lock the filing's commit needs). Returns the filed item, committed, with its case and the case's
    documents loaded as the commit wrote them (detached: what they were at the commit, with nothing left to load)."""
    closed_at = data.closed_at or utcnow()
    for when, field in [(closed_at, "closed_at"), *((s.at, f"trail.{i}.at") for i, s in enumerate(data.trail))]:
        if when.tzinfo is None:
            raise InvalidInput("时间须带时区，例如 2026-01-05T16:30:00+08:00", code="naive_datetime",
                               detail={"field": field})
    with ctx.catalogue.reading() as r:
        bt = ctx.schedule.business_type(get_case(r, principal, serial).business_type)
        klass = (ctx.settings.fonds_code, closed_at.astimezone(ctx.zone).year, bt.retention.value, bt.category)
    try:
        item = _file(ctx, principal, serial, data, closed_at, klass)
    except FilingChecksFailed:
        metrics.filing("refused", bt.category)
        raise
    except Exception:
        metrics.filing("error", bt.category)
        raise
    metrics.filing("filed", bt.category)
    return item


def _file(ctx: Context, principal: Principal, serial: str, data: CloseIn, closed_at: datetime,
          klass: tuple[str, int, str, str]) -> ArchiveItem:
    with _class_turn(ctx, klass, serial):  # filings of one class take their numbers in turn
        for _ in range(ATTEMPTS):
            with ctx.catalogue.reading() as r:
                built = _build(ctx, r, principal, serial, data, closed_at)
            try:
                with ctx.catalogue.session() as s:
                    item = _commit(ctx, s, principal, serial, data, closed_at, built)
            except _Stale:
                continue
            if any(i.code == "GD-2-6" and r.outcome == Outcome.PASSED for i, r in built.results):
                klass = (built.parts.fonds, built.parts.year, built.parts.retention, built.parts.category)
                # committed: GD-2-6 counts only above this 件号 next time (a racing thread may write a lower N)
                ctx.continuous[klass] = max(ctx.continuous.get(klass, 0), built.parts.number)
            return item
    raise Busy("同类业务正在集中归档，本次未归档，请稍后重试", code="filing_busy", detail={"serial": serial})


def _class_lock(klass: tuple[str, int, str, str]) -> threading.Lock:
    with _class_locks_guard:
        return _class_locks.setdefault(klass, threading.Lock())


@contextmanager
def _class_turn(ctx: Context, klass: tuple[str, int, str, str], serial: str) -> Iterator[None]:
    """This filing's turn in its class: the threads of this process by a lock, and on PostgreSQL the processes
    (``serve --workers N``, other hosts) by a session advisory lock on the class. Without it two processes build
    the same predicted 件号 and the loser builds again: filing one class through two processes at once, some
    filings lost three times running and answered 503 filing_busy (tests/test_processes.py)."""
    with _class_lock(klass):
        engine = ctx.catalogue.engine
        if engine.dialect.name != "postgresql":
            yield
            return
        key = int.from_bytes(hashlib.sha256(repr(("filing", *klass)).encode()).digest()[:8], "big", signed=True)
        with engine.connect() as conn:
            try:  # waits at most the catalogue's lock_timeout (ARCHIVE_DB_BUSY_TIMEOUT_SECONDS)
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
                conn.commit()
            except OperationalError as exc:
                if not is_busy(exc):
                    raise
                raise Busy("同类业务正在集中归档，本次未归档，请稍后重试", code="filing_busy",
                           detail={"serial": serial}) from exc
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()


def _lock_case(s: Session, serial: str) -> Case:
    case = s.scalar(select(Case).where(Case.serial == serial).with_for_update())
    if case is None:
        raise NotFound(f"业务流水号 {serial} 不存在", code="case_not_found", detail={"serial": serial})
    return case


def _basis(case: Case) -> tuple[Any, ...]:
    """Everything of the case a filing is built from: its row and its documents."""
    return (tuple(getattr(case, c.key) for c in Case.__table__.columns),
            tuple((d.id, d.status, d.sha256, d.original_key, d.material_type, d.filename, d.media_type)
                  for d in case.documents))


def _build(ctx: Context, r: Session, principal: Principal, serial: str, data: CloseIn,
           closed_at: datetime) -> _Built:
    """Check, render, sign and store, in the read-only session ``r`` (nothing here writes the catalogue)."""
    from signing.rendition import RenditionMetadata, SourceDocument

    schedule, settings = ctx.schedule, ctx.settings
    case = get_case(r, principal, serial)
    ensure_open(case)
    if closed_at < case.accepted_at:
        raise InvalidInput("办结时间早于受理时间", code="closed_before_accepted", detail={"field": "closed_at"})
    lacking = missing_materials(ctx, case)
    missing = [e.material_type for e in lacking]
    if missing and not data.override_reason:
        names = "、".join(e.name for e in lacking)
        raise Conflict(f"材料不齐，不能归档：缺少{names}。请补齐材料，或由档案管理员说明理由后归档",
                       code="materials_missing", detail={"missing": missing})
    if missing and not principal.can(Permission.FILING_OVERRIDE):
        raise PermissionDenied("材料不全时只有档案管理员可以说明理由后归档", code="override_not_allowed")
    basis = _basis(case)
    bt = schedule.business_type(case.business_type)
    local_closed = closed_at.astimezone(ctx.zone).date()
    trigger_date = _trigger_date(bt.trigger, local_closed)
    expiry = expiry_date(bt.retention, trigger_date, schedule.triggers[bt.trigger].counting)
    parts = peek(r, ctx.code_rule, settings.fonds_code, local_closed.year, bt.retention.value, bt.category)
    code = ctx.code_rule.format(parts)

    docs = filing_order(ctx, case)  # the rendition lists the materials as the checklist does
    _close(case, data, closed_at)  # in memory only, for the checks: this session never flushes
    # 四性检测 (GD): the catalogue record first, so a bad record is refused before anything is signed.
    subject = gd.FilingSubject(r, ctx, case, gd.load_originals(ctx, docs), code, parts, principal.kind,
                               missing=missing, scanner=ctx.scanner, rendition_pending=True,
                               continuous=ctx.continuous)
    # GD-1-1's digests of the originals, computed once, beside the record checks and the render
    hashing = [(o, _helpers.submit(digest_bytes, o.data)) for o in subject.originals if o.data is not None]
    results = gd.run_gd(subject, phase="metadata")
    if blocking_failures(results):
        _refuse(results)
    if any(o.data is None for o in subject.originals):  # unreadable originals: report them, build nothing
        _verified(subject, hashing)
        _refuse(results + gd.run_gd(subject, phase="content"))
    # A JPEG decoded at intake (check_source, GD-3-4) whose bytes are verified the same is not decoded again. The
    # render does not wait for the verification (the digests are computed beside it): it takes the intake's word,
    # and is built again in the rare case that the bytes turn out to differ (GD-1-1 then refuses the filing).
    claimed = {o.doc.id for o in subject.rendered if o.doc.media_type == JPEG and (o.doc.detail or {}).get(DECODED)}
    parties = [p for p in (case.applicant_name, case.applicant_id_number, case.unit_name) if p]
    meta = RenditionMetadata(
        archival_code=code, business_serial=case.serial, business_type=bt.name, retention=bt.retention.label,
        title=f"{case.applicant_name or case.unit_name}{bt.name}", fonds_name=settings.fonds_name,
        dates=(case.accepted_at.astimezone(ctx.zone).date(), local_closed), parties=parties,
        extra={"年度": str(parts.year), "办理网点": case.branch, "经办人": case.clerk},
    )

    def render(intake: set[int]) -> bytes:
        sources = [SourceDocument(title=f"{schedule.materials[o.doc.material_type]}（{o.doc.filename}）",
                                  media_type=o.doc.media_type, data=o.data,
                                  material_type=schedule.materials[o.doc.material_type], decoded=o.doc.id in intake)
                   for o in subject.rendered]  # OFD is itself an archival 版式 format, kept as received
        with metrics.stage("render"):
            return build_rendition(sources, meta, max_pixels=settings.max_pixels)

    rendition = render(claimed)
    intake = claimed & _verified(subject, hashing)
    if intake != claimed:
        rendition = render(intake)  # an original changed since intake: decoded now, as the checks will report
    # GD-3-4 decodes none of them again: the build just did, or (intake) did so on the same bytes
    subject.decoded = {o.doc.id for o in subject.rendered if o.doc.media_type in gd.RASTER}
    subject.decoded_at_intake = intake & subject.decoded
    with metrics.stage("sign"):  # includes the time stamp, also measured alone (metrics.instrument_timestamper)
        # build_rendition validated the rendition it wrote: only the signature's increment is checked again
        signed, digests, level = ltv.sign_rendition(ctx, rendition, parts.retention, sign_and_digest,
                                                    pdfa_checked=True)
    key = content_key("renditions", digests.sha256)
    subject.rendition, subject.rendition_sha256, subject.rendition_sm3 = signed, digests.sha256, digests.sm3
    subject.rendition_key, subject.rendition_pending = key, False
    # GD-1-1 checks a B-B/B-T signature just made on its bytes (signing.selfcheck); B-LT/B-LTA files carry later
    # updates (DSS, document time stamps) that only the full validation judges, so they get it
    subject.signed_by = ctx.signer.signing_cert if level in ("B-B", "B-T") else None
    subject.memo("digest", signed, lambda _: digests)  # the digests just computed: not computed again by the checks
    results += gd.run_gd(subject, phase="content")
    if blocking_failures(results):
        _refuse(results)  # before anything is stored: a refused filing leaves no object behind
    # Back-filed records (历史档案) may already be past their period: no lock then; appraisal decides.
    lock_until = lock_end(expiry, bt.retention.years, local_closed)
    lock = lock_until if lock_until > datetime.now(UTC) else None
    # The originals' locks are set beside the rendition's put (both mostly wait for fsyncs, which then share journal
    # commits); the commit locks the rendition and finds the originals locked. An original locked by a filing that
    # then fails stays locked: originals leave the store only through destruction, whatever their case's state.
    locking = _helpers.submit(ctx.store.extend_retentions, sorted(case_objects(case, None)), lock) if lock else None
    # Stored without a lock: the filing's commit sets it, so a rendition that is never filed can be reclaimed.
    with metrics.stage("store"):
        ctx.store.put(key, io.BytesIO(signed), size=digests.size, sha256=digests.sha256, sm3=digests.sm3,
                      sm3_computed=True)  # from these bytes, just above: not computed twice
    if locking is not None:
        locking.result()
    split_sources = [d for d in case.documents if d.status == "split"]  # the originals split documents came from
    originals = [d.original_key for d in docs + split_sources]
    return _Built(parts, code, basis, results, key, digests, originals, missing, trigger_date, expiry, lock, level,
                  ltv.version_row(0, 1, key, signed, digests, ltv.SIGNED,
                                  read=ltv.own_signature_read(signed) if level in ("B-B", "B-T") else None))


def _verified(subject: gd.FilingSubject, hashing: list[tuple[gd.Original, Future[Digests]]]) -> set[int]:
    """The documents whose bytes are the ones recorded (and checked) at intake, once their digests, computed on the
    helper threads, are in; GD-1-1 takes the digests from the subject's memo."""
    verified = set()
    for o, digesting in hashing:
        assert o.data is not None
        d = _memo_result(subject, o.data, digesting.result())
        if (d.sha256, d.sm3) == (o.doc.sha256, o.doc.sm3):
            verified.add(o.doc.id)
    return verified


def _memo_result(subject: gd.FilingSubject, data: bytes, digests: Digests) -> Digests:
    return subject.memo("digest", data, lambda _: digests)


def _close(case: Case, data: CloseIn, closed_at: datetime) -> None:
    # in UTC, as the catalogue stores and reads it back: the filing's answer is built from this row (close route)
    case.status, case.closed_at, case.outcome = "filed", closed_at.astimezone(UTC), data.outcome
    case.trail = [step.model_dump(mode="json") for step in data.trail]


def _commit(ctx: Context, s: Session, principal: Principal, serial: str, data: CloseIn, closed_at: datetime,
            b: _Built) -> ArchiveItem:
    """The short write transaction: file what :func:`_build` built, or raise _Stale (nothing written)."""
    case = _lock_case(s, serial)
    ensure_open(case)  # a concurrent filing of the same case won: 409 case_not_open
    if _basis(case) != b.basis:
        raise _Stale
    parts = allocate(s, ctx.code_rule, b.parts.fonds, b.parts.year, b.parts.retention, b.parts.category)
    if parts != b.parts:
        raise _Stale  # rolls the allocation back with the transaction
    version = ensure_version(s, ctx.schedule)  # the item records the schedule content it was filed under
    _close(case, data, closed_at)
    bt = ctx.schedule.business_type(case.business_type)
    item = ArchiveItem(
        case=case, archival_code=b.code, fonds_code=parts.fonds, year=parts.year,
        retention_code=parts.retention, category=parts.category, number=parts.number, trigger=bt.trigger.value,
        trigger_date=b.trigger_date, expiry_date=b.expiry, schedule_version=version.ref, status="filed",
        rendition_key=b.key, rendition_sha256=b.digests.sha256, rendition_sm3=b.digests.sm3,
        signature={"level": b.level, "signer": _subject(ctx), "signed_at": utcnow().isoformat(), "format": "PAdES",
                   "pdfa": "2b"},
    )
    s.add(item)
    s.flush()
    if b.version is not None:  # every version of the rendition is kept in order (archive.ltv)
        b.version.item_id = item.id
        s.add(b.version)
    if b.lock is not None:  # every object the item references: rendition and all its documents' originals
        # (holds.item_objects, from the rows this transaction holds), durable before the commit, in one batch
        # (durability order: storage/filesystem.py). The build locked the originals it was made from (the basis
        # check above: the same ones), so only the rendition's sidecar is written here, inside the write lock
        ctx.store.extend_retentions([b.key, *sorted(case_objects(case, b.key) - {b.key})], b.lock)
    indexing.enqueue(s, serial)
    actor = Actor.of(principal)
    # The audit chain head is one row every audited write of every process waits for: it is taken last (by the
    # report's and the item's events, after the report's rows), so it is held for the events' inserts and the commit
    # only; the class's 件号 counter, taken above, is waited for by filings of its own class alone.
    report, reported = add_report(s, actor, Stage.FILING, b.code, _ordered(b.results), item_id=item.id,
                                  serial=serial)
    detail: dict[str, object] = {"serial": serial, "documents": len(b.originals),
                                 "rendition_sha256": b.digests.sha256, "check_report": report.id,
                                 "check_outcome": report.outcome}
    if b.missing:
        detail |= {"missing": b.missing, "override_reason": data.override_reason}
    # the report's event, then the item's: one chain-head update for both
    audit.record_many(s, [reported, audit.Event(actor, "item.file", "item", b.code, detail)])
    return item


def _ordered(results: list[tuple[CheckItem, Result]]) -> list[tuple[CheckItem, Result]]:
    return sorted(results, key=lambda pair: code_key(pair[0].code))


class FilingChecksFailed(Conflict):
    """A blocking GD failure; carries the results so the refusal's report can be kept (see keep_refusal)."""

    def __init__(self, message: str, results: list[tuple[CheckItem, Result]], detail: dict[str, Any]) -> None:
        super().__init__(message, code="filing_checks_failed", detail=detail)
        self.results = results


def _refuse(results: list[tuple[CheckItem, Result]]) -> NoReturn:
    """A blocking GD failure: refused before the 件号 is taken, so the 档号 is not consumed."""
    ordered = _ordered(results)
    failed = gd.refusal_summary(ordered)
    shown = "；".join(f"{f['code']} {f['name']}：{f['detail']}" for f in failed[:5])
    more = f" 等 {len(failed)} 项" if len(failed) > 5 else ""
    raise FilingChecksFailed(f"归档前四性检测未通过，未归档：{shown}{more}", ordered, {"failed": failed})


def keep_refusal(ctx: Context, principal: Principal, serial: str, exc: FilingChecksFailed) -> None:
    """Store the GD report of a refused filing in a transaction of its own (the filing's was rolled back), so
    archivists can see why a case did not file; the report id goes into the error's detail."""
    with ctx.catalogue.session() as own:
        report = save_report(own, Actor.of(principal), Stage.FILING, serial, exc.results,
                             serial=serial, refused=True)
        exc.detail["check_report"] = report.id


def _trigger_date(trigger: Trigger, closed: date) -> date | None:
    """When the retention clock starts, if it already can: loans and accounts wait for their event."""
    if trigger is Trigger.BUSINESS_CLOSED:
        return closed
    if trigger is Trigger.FISCAL_YEAR_END:
        return date(closed.year, 12, 31)
    return None


def _subject(ctx: Context) -> str:
    cert = getattr(ctx.signer, "signing_cert", None)
    return cert.subject.human_friendly if cert is not None else ""
