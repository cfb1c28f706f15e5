"""The import job (存量档案导入): an approved dry-run report's manifest, item by item, into the archive.

Per item: pending → (stored →) signed → catalogued → indexed, or ``failed`` with its reason; rows the report
failed, or the profile excluded, are ``excluded``.

- A worker process (archive/imports/build.py) stores the page images and builds and signs the rendition.
- ``signed`` is written per chunk as soon as the workers return, with the keys and digests of the stored page
  images and of the signed rendition, *before* the rendition is stored (write-ahead). ``stored`` (page images
  in the store) is not written on its own: it happens inside the worker, which never writes to the catalogue
  (SQLite has one writer; the workers stay catalogue-free), and a crash before ``signed`` leaves only page
  images under content keys that the resumed build puts again under the same keys.
- The rendition is then stored, and the chunk is catalogued in one transaction (case, documents, item with its
  档号 and retention, audit events, outbox row) with each item's GD checks (四性检测, archive/checks/gd.py) in a
  savepoint: an item whose checks fail is rolled back, its unlocked rendition removed, its report kept and it is
  ``failed`` with the reason - never half-imported. Object locks are set only for items that passed.
- ``indexed``: the outbox drained in bulk.

Resumable: the job is keyed by the manifest's digest and its items by 档号, states are committed per chunk. A
``signed`` item whose recorded rendition is in the store is catalogued from what was recorded (no rebuild, no
second rendition); one whose rendition never got stored is rebuilt. So a crash or Ctrl-C followed by ``run``
goes on where it stopped with no duplicate item and no orphan object; re-running a completed import changes
nothing. Memory is bounded: the manifest is streamed in chunks, at most ``2 × workers`` chunks are in flight, each
worker sends back the signed rendition and small check results (no page bytes), no per-item result is kept once
its chunk is catalogued, and the pool is replaced every ``RECYCLE`` items.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from archive import audit
from archive.archival_code import allocate
from archive.audit import Actor
from archive.catalogue.models import (
    ArchivalCodeSequence,
    ArchiveItem,
    Case,
    Document,
    Fonds,
    ImportItem,
    ImportJob,
    ImportReport,
)
from archive.catalogue.types import utcnow
from archive.checks import gd
from archive.checks.base import CheckItem, Outcome, Result, Stage, blocking_failures, code_key, items_of
from archive.checks.reports import add_reports
from archive.classification import RetentionCode, Trigger
from archive.context import Context
from archive.errors import Conflict, InvalidInput, NotFound
from archive.imports import build
from archive.imports.dryrun import failing_keys, manifest_digest
from archive.imports.profile import Profile
from archive.imports.records import Record, resolve
from archive.imports.scan import manifest_header, read_manifest
from archive.indexing.outbox import enqueue_many
from archive.retention.periods import expiry_date, lock_end
from archive.retention.schedules import ensure_version

BRANCH = build.BRANCH  # 办理网点 of an imported case (in the rendition's metadata too)
Class = tuple[str, int, str, str]  # an item's class: 全宗, 年度, 保管期限, 类别

CHUNK = 16  # items per catalogue transaction (and per dispatch to the pool)
# Items a pool builds before it is replaced by a fresh one (its in-flight work drained first, so never more than
# ``workers`` worker processes at once): whatever a long-lived worker's libraries keep (font, parser, certificate
# caches) cannot grow with the delivery; ~5 s of start-up per 2,000 items.
RECYCLE = 2000
WORKING = ("pending", "stored", "signed")
DONE = ("catalogued", "indexed")
STATES = ("pending", "stored", "signed", "catalogued", "indexed", "failed", "excluded")


@dataclass
class Progress:
    done: int
    total: int
    rate: float  # items per second in this run
    eta_seconds: float | None


def load_report(ctx: Context, report_id: int) -> tuple[ImportReport, dict[str, Any]]:
    import json

    with ctx.catalogue.reading() as r:
        row = r.get(ImportReport, report_id)
        if row is None:
            raise NotFound(f"预检报告 {report_id} 不存在", code="import_report_not_found", detail={"report": report_id})
        r.expunge(row)
    return row, json.loads(Path(row.report_path).read_text(encoding="utf-8"))


def start(ctx: Context, actor: Actor, manifest: Path, report_id: int) -> int:
    """The job of ``manifest`` (created and planned the first time, from the approved report); its id."""
    if not manifest.is_file():
        raise InvalidInput(f"清单文件 {manifest} 不存在", code="import_manifest_invalid",
                           detail={"path": str(manifest)})
    digest = manifest_digest(manifest)
    with ctx.catalogue.reading() as r:
        existing = r.scalar(select(ImportJob.id).where(ImportJob.manifest_sha256 == digest))
    if existing is not None:
        return int(existing)
    row, report = load_report(ctx, report_id)
    if row.status != "approved":
        raise Conflict(f"预检报告 {report_id} 尚未批准，不能导入；请先由档案管理员审核批准",
                       code="import_report_not_approved", detail={"report": report_id})
    if row.manifest_sha256 != digest:
        raise Conflict(f"清单 {manifest.name} 与预检报告 {report_id} 所检的清单不一致（预检后被改动）；"
                       "请重新出具预检报告",
                       code="import_manifest_mismatch", detail={"report": report_id})
    if report.get("blocked"):
        raise Conflict("预检报告显示目录无法读取，没有可导入的条目", code="import_report_blocked",
                       detail={"report": report_id})
    header = manifest_header(manifest)
    with ctx.catalogue.session() as s:
        job = ImportJob(manifest_sha256=digest, manifest_path=str(manifest.resolve()), report_id=report_id,
                        vendor=header["vendor"], delivery_name=header["delivery_name"],
                        profile_sha256=header["profile_sha256"], operator=actor.name, status="running")
        s.add(job)
        s.flush()
        audit.record(s, actor, "import.start", target_type="import_job", target_id=job.id,
                     detail={"manifest_sha256": digest, "report": report_id, "vendor": job.vendor,
                             "delivery": job.delivery_name})
        job_id = job.id
    _plan(ctx, job_id, manifest, failing_keys(report))
    return job_id


def _plan(ctx: Context, job_id: int, manifest: Path, failing: set[str]) -> None:
    """One import_item per manifest item, with its 档号 (kept, or newly allocated when renumbering)."""
    lines = read_manifest(manifest)
    profile = Profile.model_validate(next(lines)["profile"])
    items = (x for x in lines if x["type"] == "item")
    total = 0
    for chunk in _chunks(items, 500):
        with ctx.catalogue.session() as s:
            for it in chunk:
                total += 1
                s.add(_planned(ctx, s, profile, job_id, it, failing))
    with ctx.catalogue.session() as s:
        s.execute(update(ImportJob).where(ImportJob.id == job_id).values(total=total))


def _planned(ctx: Context, s: Session, profile: Profile, job_id: int, it: dict[str, Any],
             failing: set[str]) -> ImportItem:
    row = ImportItem(job_id=job_id, key=it["key"], row=it["row"], pages=len(it["files"]),
                     bytes=sum(f[1] for f in it["files"]), original_code=it["fields"].get("档号"))
    if it["excluded"] or it["key"] in failing:
        row.state = "excluded"
        row.reason = "映射配置排除" if it["excluded"] else "预检未通过（见预检报告）"
        return row
    record, _ = resolve(profile, ctx.schedule, ctx.code_rule, it["key"], it["fields"])
    if record is None:  # the report passed it, so the schedule or template changed since: leave it out, say why
        row.state, row.reason = "failed", "分类方案或档号规则在预检后有变化，本条无法解析；请重新预检"
        return row
    parts = record.parts or allocate(s, ctx.code_rule, ctx.settings.fonds_code, record.date.year, record.retention,
                                     record.category)
    if record.parts is not None:
        _reserve(s, record.parts.fonds, record.parts.year, record.parts.retention, record.parts.category,
                 record.parts.number)
    row.state, row.archival_code, row.retention_source = "pending", ctx.code_rule.format(parts), \
        record.retention_source
    return row


def _reserve(s: Session, fonds: str, year: int, retention: str, category: str, number: int) -> None:
    """A kept historical 档号 takes its 件号: later filings of the class continue after it, never reuse it."""
    from sqlalchemy.dialects import postgresql, sqlite

    seq = ArchivalCodeSequence
    insert = postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert
    s.execute(insert(seq).values(fonds_code=fonds, year=year, retention_code=retention, category=category,
                                 last_number=number)
              .on_conflict_do_update(index_elements=[seq.fonds_code, seq.year, seq.retention_code, seq.category],
                                     set_={"last_number": func.max(seq.last_number, number)
                                           if s.get_bind().dialect.name == "sqlite"
                                           else func.greatest(seq.last_number, number)}))


def _chunks(it: Iterator[dict[str, Any]], n: int) -> Iterator[list[dict[str, Any]]]:
    while chunk := list(islice(it, n)):
        yield chunk


def run(ctx: Context, actor: Actor, job_id: int, *, workers: int | None = None,
        progress: Callable[[Progress], None] | None = None, pool: bool = True) -> dict[str, int]:
    """Import what is left of the job; the counts by state when done."""
    with ctx.catalogue.reading() as r:
        job = r.get(ImportJob, job_id)
        if job is None:
            raise NotFound(f"导入任务 {job_id} 不存在", code="import_job_not_found", detail={"job": job_id})
        r.expunge(job)
    before = counts(ctx, job_id)
    if sum(before.get(s, 0) for s in WORKING) == 0 and before.get("catalogued", 0) == 0:
        return before  # a completed import: nothing changes
    lines = read_manifest(Path(job.manifest_path))
    header = next(lines)
    profile = Profile.model_validate(header["profile"])
    meta = {"delivery": header["delivery"], "vendor": job.vendor, "delivery_name": job.delivery_name,
            "operator": job.operator}
    n = workers or os.cpu_count() or 1
    started, done_now = time.monotonic(), 0
    total = job.total
    done_before = sum(before.get(s, 0) for s in (*DONE, "failed", "excluded"))

    def report(k: int) -> None:
        nonlocal done_now
        done_now += k
        elapsed = max(time.monotonic() - started, 1e-6)
        rate = done_now / elapsed
        left = total - done_before - done_now
        if progress:
            progress(Progress(done_before + done_now, total, rate, left / rate if rate else None))

    def new_pool() -> ProcessPoolExecutor | None:
        # spawn, not fork: the API runs this in a thread of a multi-threaded server
        return ProcessPoolExecutor(max_workers=n, initializer=build.init_worker, initargs=(ctx.settings,),
                                   mp_context=multiprocessing.get_context("spawn")) if pool else None

    executor, built = new_pool(), 0
    try:
        in_flight: list[tuple[list[dict[str, Any]], list[Future[dict[str, Any]] | dict[str, Any]]]] = []
        for chunk in _chunks((x for x in lines if x["type"] == "item"), CHUNK):
            todo = _todo(ctx, job_id, profile, chunk)
            if not todo:
                continue
            if executor is not None and built >= RECYCLE:  # a fresh pool, after the old one's work is catalogued
                while in_flight:
                    report(_catalogue(ctx, actor, job, *in_flight.pop(0)))
                executor.shutdown()
                executor, built = new_pool(), 0
            built += len(todo)
            futures = [_dispatch(executor, ctx, meta, it) for it in todo]
            in_flight.append((todo, futures))
            if len(in_flight) >= 2 * n:
                report(_catalogue(ctx, actor, job, *in_flight.pop(0)))
        while in_flight:
            report(_catalogue(ctx, actor, job, *in_flight.pop(0)))
    finally:
        if executor:
            executor.shutdown(cancel_futures=True)
    _index(ctx, job_id)
    with ctx.catalogue.session() as s:
        final = _counts(s, job_id)
        s.execute(update(ImportJob).where(ImportJob.id == job_id)
                  .values(status="done", finished_at=utcnow(), heartbeat_at=utcnow()))
        audit.record(s, actor, "import.finish", target_type="import_job", target_id=job_id, detail=final)
    return final


def _todo(ctx: Context, job_id: int, profile: Profile, chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The chunk's items still to build, with what the worker needs (record, 档号, serial)."""
    with ctx.catalogue.reading() as r:
        rows = {x.key: x for x in r.scalars(select(ImportItem).where(
            ImportItem.job_id == job_id, ImportItem.key.in_([c["key"] for c in chunk]),
            ImportItem.state.in_(WORKING)))}
        for x in rows.values():
            r.expunge(x)
    out = []
    for it in chunk:
        row = rows.get(it["key"])
        if row is None:
            continue
        record, _ = resolve(profile, ctx.schedule, ctx.code_rule, it["key"], it["fields"])
        assert record is not None and row.archival_code is not None  # planned as pending only when it resolved
        bt = ctx.schedule.business_type(record.business_type)
        out.append(it | {"archival_code": row.archival_code, "serial": _serial(ctx, record, row.archival_code),
                         "import_item_id": row.id, "record_obj": record, "_recorded": _recorded(ctx, row),
                         "record": {"year": ctx.code_rule.parse(row.archival_code).year,
                                    "business_type_name": bt.name, "retention_label": RetentionCode(
                             record.retention).label, "title": record.title, "date": record.date.isoformat(),
                             "name": record.name, "id_number": record.id_number,
                             "original_code": record.original_code}})
    for it in out:  # the worker needs only plain data
        it["_record"] = it.pop("record_obj")
    return [{k: v for k, v in it.items()} for it in out]


def _recorded(ctx: Context, row: ImportItem) -> dict[str, Any] | None:
    """A ``signed`` item's recorded build, when its rendition reached the store (a crash before cataloguing)."""
    if row.state != "signed" or not row.detail or not ctx.store.exists(row.detail["rendition_key"]):
        return None
    return dict(row.detail)


def _dispatch(executor: ProcessPoolExecutor | None, ctx: Context, meta: dict[str, Any],
              it: dict[str, Any]) -> Future[dict[str, Any]] | dict[str, Any]:
    work = {k: v for k, v in it.items() if not k.startswith("_")}
    if (recorded := it["_recorded"]) is not None:  # built and stored before a crash: reuse it, build no second
        # rendition; its content checks still run, on the stored bytes
        return executor.submit(build.check_stored, meta, work, recorded) if executor \
            else build.check_stored_with(ctx, work, recorded)
    return executor.submit(build.build_item, meta, work) if executor else build.build_with(ctx, meta, work)


def _serial(ctx: Context, record: Record, code: str) -> str:
    """业务流水号 of an imported item: the catalogue's, else one derived from its 档号 (历史档案 have none), in
    the serial format (ASCII letters, digits, ``-``) the GD checks require."""
    if record.serial:
        return record.serial
    p = ctx.code_rule.parse(code)
    return re.sub(r"[^A-Za-z0-9_-]", "", f"LS-{p.fonds}-{p.year}-{p.retention}-{p.category}-{p.number:06d}")[:64]


def _catalogue(ctx: Context, actor: Actor, job: ImportJob, todo: list[dict[str, Any]],
               futures: list[Future[dict[str, Any]] | dict[str, Any]]) -> int:
    """Record a chunk's builds (``signed``), store their renditions, then file them in one transaction (item by
    item when one of them conflicts)."""
    built = [(it, f.result() if isinstance(f, Future) else f) for it, f in zip(todo, futures, strict=True)]
    fresh = [(it, res) for it, res in built if "rendition" in res]
    with ctx.catalogue.session() as s:  # write-ahead: the rendition keys are known before the objects exist
        _states(s, [{"id": it["import_item_id"], "state": "failed", "reason": res["reason"]}
                    for it, res in built if "failed" in res]
                + [{"id": it["import_item_id"], "state": "signed", "reason": None, "detail": _recordable(res)}
                   for it, res in fresh])
    for _, res in fresh:
        build.store_rendition(ctx, res)
        del res["rendition"]  # bounded memory: the bytes are in the store now
    ok = [(it, res) for it, res in built if "failed" not in res]
    try:
        through: dict[Class, int] = {}
        with ctx.catalogue.session() as s:
            locks: dict[dt.datetime, list[str]] = {}
            version = ensure_version(s, ctx.schedule).ref  # once a chunk (it digests the whole schedule)
            refused = _file_chunk(ctx, s, actor, job, ok, locks, version, through)
            _lock(ctx, locks)  # durable before the chunk's catalogue commit
        _committed(ctx, through)
    except IntegrityError:
        refused = []
        for it, res in ok:
            try:
                through = {}
                with ctx.catalogue.session() as s:
                    locks = {}
                    version = ensure_version(s, ctx.schedule).ref
                    refused += _file_chunk(ctx, s, actor, job, [(it, res)], locks, version, through)
                    _lock(ctx, locks)
                _committed(ctx, through)
            except IntegrityError:
                with ctx.catalogue.session() as s:
                    _state(s, it["import_item_id"], "failed", f"档号 {it['archival_code']} 或业务流水号 "
                           f"{it['serial']} 已在档案库中，未重复导入")
                _discard(ctx, res)
    if refused:
        _keep_refusals(ctx, actor, refused)
    return len(built)


def _committed(ctx: Context, through: dict[Class, int]) -> None:
    """After a commit: the classes' 件号 now known gap-free up to the highest filed number that GD-2-6 passed."""
    for key, number in through.items():
        ctx.continuous[key] = max(ctx.continuous.get(key, 0), number)


def _lock(ctx: Context, locks: dict[dt.datetime, list[str]]) -> None:
    """The object locks of a chunk's filed items, one batch per retain-until date (the store fsyncs a batch
    together); an object already retained longer keeps its date."""
    for until, keys in locks.items():
        ctx.store.extend_retentions(keys, until)


def _recordable(res: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in res.items() if k not in ("rendition", "ok", "checks")}


def _discard(ctx: Context, res: dict[str, Any]) -> None:
    """Remove the unlocked rendition of an item that was not filed (its page images may be shared: gc's)."""
    if not ctx.store.exists(res["rendition_key"]):
        return
    with ctx.catalogue.reading() as r:
        used = r.scalar(select(func.count()).select_from(ArchiveItem)
                        .where(ArchiveItem.rendition_key == res["rendition_key"]))
    if not used:
        ctx.store.delete(res["rendition_key"])


@dataclass
class _Refusal:
    import_item_id: int
    code: str
    serial: str
    results: list[tuple[CheckItem, Result]]
    built: dict[str, Any]


def _keep_refusals(ctx: Context, actor: Actor, refused: list[_Refusal]) -> None:
    """Items whose GD checks failed: their report kept, the item ``failed`` with the reason, rendition removed."""
    with ctx.catalogue.session() as s:
        made = add_reports(s, actor, Stage.FILING, [
            (r.code, r.results, {"serial": r.serial, "refused": True, "import_item": r.import_item_id})
            for r in refused])
        audit.record_many(s, [event for _, event in made])
        states = []
        for r, (report, _) in zip(refused, made, strict=True):
            failed = gd.refusal_summary(r.results)
            shown = "；".join(f"{f['code']} {f['name']}：{f['detail']}" for f in failed[:3])
            states.append({"id": r.import_item_id, "state": "failed",
                           "reason": f"四性检测未通过，未导入（检测报告 {report.id}）：{shown}"[:2000],
                           "detail": _recordable(r.built) | {"check_report": report.id}})
        _states(s, states)
    for r in refused:
        _discard(ctx, r.built)


def _state(s: Session, row_id: int, state: str, reason: str | None = None, **values: Any) -> None:
    s.execute(update(ImportItem).where(ImportItem.id == row_id)
              .values(state=state, reason=reason, updated_at=utcnow(), **values))


def _states(s: Session, rows: list[dict[str, Any]]) -> None:
    """Several import items' new states (``id``, ``state``, ``reason`` and other columns) in one executemany per
    set of columns (ORM bulk UPDATE by primary key)."""
    now = utcnow()
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        by_columns.setdefault(tuple(sorted(row)), []).append(row | {"updated_at": now})
    for batch in by_columns.values():
        s.execute(update(ImportItem), batch)


@dataclass
class _Filed:
    it: dict[str, Any]
    res: dict[str, Any]
    case: Case
    documents: list[Document]
    item: ArchiveItem
    lock: dt.datetime
    results: list[tuple[CheckItem, Result]]


def _file_chunk(ctx: Context, s: Session, actor: Actor, job: ImportJob, ok: list[tuple[dict[str, Any], dict[str, Any]]],
                locks: dict[dt.datetime, list[str]], version: str, through: dict[Class, int]) -> list[_Refusal]:
    """File a chunk's built items together, in a savepoint: cases, documents and items each in one batched insert,
    their receipts' audit events in one append, then each item's GD checks. The content checks ran in the worker,
    on the bytes (``res["checks"]``); the rest run here on the catalogued item and all are judged together. When an
    item's checks fail, the savepoint is rolled back (nothing of any item stays: no case, documents, item or audit
    events) and the chunk is filed again without it, so every item filed was checked as it stands; the refusals are
    returned. The filed items' object locks are added to ``locks`` (set by the caller), and the highest 件号 per
    class that GD-2-6 passed to ``through`` (the caller adds them to ``ctx.continuous`` once the chunk is committed)."""
    refused: list[_Refusal] = []
    todo = list(ok)
    while todo:
        savepoint = s.begin_nested()
        filed = _add_chunk(ctx, s, actor, job, todo, version)
        failing = {}
        for f in filed:
            f.results = sorted(_checked(ctx, s, actor, f), key=lambda pair: code_key(pair[0].code))
            if blocking_failures(f.results):
                failing[f.it["import_item_id"]] = _Refusal(f.it["import_item_id"], f.it["archival_code"],
                                                           f.it["serial"], f.results, f.res)
        if failing:
            savepoint.rollback()
            refused += failing.values()
            todo = [(it, res) for it, res in todo if it["import_item_id"] not in failing]
            continue
        savepoint.commit()
        _finish_chunk(ctx, s, actor, job, filed, locks)
        for f in filed:
            if any(i.code == "GD-2-6" and r.outcome == Outcome.PASSED for i, r in f.results):
                key = (f.item.fonds_code, f.item.year, f.item.retention_code, f.item.category)
                through[key] = max(through.get(key, 0), f.item.number)
        break
    return refused


def _add_chunk(ctx: Context, s: Session, actor: Actor, job: ImportJob,
               todo: list[tuple[dict[str, Any], dict[str, Any]]], version: str) -> list[_Filed]:
    """The chunk's cases, documents and items, and the receipts' audit events (the case's and each page's, as for
    born-digital cases: GD-4-7 looks for them)."""
    fonds = s.scalar(select(Fonds.id).where(Fonds.code == ctx.settings.fonds_code))
    now = utcnow()
    cases, planned = [], []
    for it, res in todo:
        record: Record = it["_record"]
        bt = ctx.schedule.business_type(record.business_type)
        when = dt.datetime.combine(record.date, dt.time(12), tzinfo=ctx.zone)
        provenance = (f"服务商 {job.vendor}；批次 {job.delivery_name}；导入任务 {job.id}；预检报告 {job.report_id}；"
                      f"映射配置 {job.profile_sha256[:12]}；原档号 {record.original_code}；"
                      f"保管期限来源 {_SOURCES[record.retention_source]}")
        cases.append(Case(serial=it["serial"], fonds_id=fonds, category=bt.category,
                          business_type=record.business_type, status="filed", applicant_name=record.name,
                          applicant_id_number=record.id_number, branch=BRANCH, clerk=job.operator, accepted_at=when,
                          closed_at=when, outcome="approved",
                          trail=[{"action": "受理", "person": "", "at": when.isoformat()},
                                 {"action": "办结", "person": "", "at": when.isoformat()},
                                 {"action": "数字化导入", "person": job.operator, "at": now.isoformat(),
                                  "opinion": provenance}]))
        planned.append((it, res, record, bt))
    s.add_all(cases)
    s.flush()  # one batched insert
    documents = []
    for (it, res, _, _), case in zip(planned, cases, strict=True):
        origin = {"import_job": job.id, "row": it["row"], "folder": it["folder"]}
        documents.append([Document(case_id=case.id, sequence=n, material_type="other", filename=o["name"],
                                   original_key=o["key"], sha256=o["sha256"], sm3=o["sm3"], size=o["size"],
                                   media_type=o["media_type"], page_count=1, created_by=job.operator, detail=origin)
                          for n, o in enumerate(res["originals"], 1)])
    s.add_all([d for docs in documents for d in docs])
    s.flush()
    events: list[audit.Event] = []
    for (it, _, _, _), case, docs in zip(planned, cases, documents, strict=True):
        origin = {"import_job": job.id, "row": it["row"], "folder": it["folder"]}
        events.append(audit.Event(actor, "case.open", "case", case.serial, origin))
        events += [audit.Event(actor, "document.attach", "case", case.serial,
                               {"document_id": d.id, "filename": d.filename, "sha256": d.sha256} | origin)
                   for d in docs]
    audit.record_many(s, events)
    filed = []
    for (it, res, record, bt), case, docs in zip(planned, cases, documents, strict=True):
        parts = ctx.code_rule.parse(it["archival_code"])
        trigger_date = _trigger_date(bt.trigger, record.date)
        expiry = expiry_date(record.retention, trigger_date, ctx.schedule.triggers[bt.trigger].counting)
        item = ArchiveItem(case_id=case.id, archival_code=it["archival_code"], fonds_code=parts.fonds,
                           year=parts.year, retention_code=parts.retention, category=parts.category,
                           number=parts.number, trigger=bt.trigger.value, trigger_date=trigger_date,
                           expiry_date=expiry, schedule_version=version, status="filed",
                           current_retention=record.retention if record.retention != parts.retention else None,
                           rendition_key=res["rendition_key"], rendition_sha256=res["rendition_sha256"],
                           rendition_sm3=res["rendition_sm3"],
                           signature={"level": res["level"], "signer": "", "signed_at": now.isoformat(),
                                      "format": "PAdES", "pdfa": "2b"})
        item.case = case
        filed.append(_Filed(it, res, case, docs, item,
                            lock_end(expiry, RetentionCode(record.retention).years, record.date), []))
    s.add_all([f.item for f in filed])
    s.flush()
    return filed


def _finish_chunk(ctx: Context, s: Session, actor: Actor, job: ImportJob, filed: list[_Filed],
                  locks: dict[dt.datetime, list[str]]) -> None:
    """The filed items' reports (one flush, one executemany of their rows), their events (each report's, then the
    item's import event, in one append), outbox rows, import states and the job's heartbeat."""
    made = add_reports(s, actor, Stage.FILING, [(f.item.archival_code, f.results,
                                                 {"item_id": f.item.id, "serial": f.case.serial}) for f in filed])
    now = dt.datetime.now(dt.UTC)
    events: list[audit.Event] = []
    states = []
    for f, (report, event) in zip(filed, made, strict=True):
        record: Record = f.it["_record"]
        locked = f.lock > now  # back-filed records already past their period get no lock; appraisal decides
        if locked:
            locks.setdefault(f.lock, []).extend([f.res["rendition_key"], *(o["key"] for o in f.res["originals"])])
        events += [event, audit.Event(actor, "item.import", "item", f.item.archival_code, {
            "import_job": job.id, "row": f.it["row"], "original_code": record.original_code,
            "retention_source": record.retention_source, "pages": len(f.res["originals"]),
            "rendition_sha256": f.res["rendition_sha256"], "check_report": report.id,
            "check_outcome": report.outcome})]
        states.append({"id": f.it["import_item_id"], "state": "catalogued", "reason": None, "item_id": f.item.id,
                       "detail": {"rendition_key": f.res["rendition_key"],
                                  "originals": [o["key"] for o in f.res["originals"]], "check_report": report.id,
                                  "lock_until": f.lock.isoformat() if locked else None}})
    audit.record_many(s, events)
    enqueue_many(s, [f.case.serial for f in filed])
    _states(s, states)
    s.execute(update(ImportJob).where(ImportJob.id == job.id).values(heartbeat_at=utcnow()))


def _checked(ctx: Context, s: Session, actor: Actor, f: _Filed) -> list[tuple[CheckItem, Result]]:
    """Every GD item of an imported item: the worker's content results (gd.DETACHED) and the others run here on
    the catalogued item, whose originals' bytes this process does not read (none of those items looks at them).
    Its documents are the ones just added (a new case has no other)."""
    by_code = {i.code: i for i in items_of(Stage.FILING)}
    detached = [(by_code[code], r) for code, r in f.res["checks"]]
    if missing := gd.DETACHED - {i.code for i, _ in detached}:  # never judge an item on part of its checks
        raise RuntimeError(f"content checks missing from the worker: {sorted(missing)}")
    item = f.item
    subject = gd.FilingSubject(s, ctx, f.case, [gd.Original(d, None) for d in f.documents if d.is_active],
                               item.archival_code, ctx.code_rule.parse(item.archival_code), actor.kind, None,
                               item.rendition_sha256, item.rendition_sm3, item.rendition_key, item,
                               scanner=ctx.scanner, continuous=ctx.continuous)
    return detached + gd.run_gd(subject, phase="attached")


_SOURCES = {"catalogue": "目录著录", "schedule": "分类方案", "archival_code": "原档号"}


def _trigger_date(trigger: Trigger, day: dt.date) -> dt.date | None:
    if trigger is Trigger.BUSINESS_CLOSED:
        return day
    if trigger is Trigger.FISCAL_YEAR_END:
        return dt.date(day.year, 12, 31)
    return None


def _index(ctx: Context, job_id: int) -> None:
    """Drain the outbox in bulk, then mark the job's catalogued items indexed (the ones the index took)."""
    from archive.indexing.outbox import IndexWorker

    worker = IndexWorker(ctx, batch_size=500)
    while worker.run_once().taken:
        pass
    with ctx.catalogue.session() as s:
        s.execute(update(ImportItem).where(ImportItem.job_id == job_id, ImportItem.state == "catalogued")
                  .values(state="indexed", updated_at=utcnow()))


def counts(ctx: Context, job_id: int) -> dict[str, int]:
    with ctx.catalogue.reading() as r:
        return _counts(r, job_id)


def _counts(s: Session, job_id: int) -> dict[str, int]:
    rows = s.execute(select(ImportItem.state, func.count()).where(ImportItem.job_id == job_id)
                     .group_by(ImportItem.state)).all()
    return {state: int(n) for state, n in rows}


def status(ctx: Context, job_id: int) -> dict[str, Any]:
    """The job's state for the CLI, the API and the console: counts by state, rate and time left."""
    with ctx.catalogue.reading() as r:
        job = r.get(ImportJob, job_id)
        if job is None:
            raise NotFound(f"导入任务 {job_id} 不存在", code="import_job_not_found", detail={"job": job_id})
        by_state = _counts(r, job_id)
        finished = sum(by_state.get(s, 0) for s in (*DONE, "failed", "excluded"))
        elapsed = ((job.finished_at or utcnow()) - job.started_at).total_seconds()
        rate = by_state.get("indexed", 0) + by_state.get("catalogued", 0)
        rate_s = rate / elapsed if elapsed > 0 else 0.0
        left = job.total - finished
        return {"id": job.id, "status": job.status, "vendor": job.vendor, "delivery": job.delivery_name,
                "report": job.report_id, "operator": job.operator, "total": job.total, "done": finished,
                "states": {s: by_state.get(s, 0) for s in STATES}, "rate_items_per_s": round(rate_s, 2),
                "eta_seconds": round(left / rate_s) if rate_s and left else None,
                "started_at": job.started_at.isoformat(),
                "finished_at": job.finished_at.isoformat() if job.finished_at else None}


def recent(ctx: Context, limit: int = 50) -> list[dict[str, Any]]:
    """The newest import jobs with their states, for the console page."""
    with ctx.catalogue.reading() as r:
        started = dict(r.execute(select(ImportJob.id, ImportJob.started_at).order_by(ImportJob.id.desc())
                                 .limit(limit)).tuples().all())
    return [status(ctx, job_id) | {"started": at} for job_id, at in started.items()]  # a datetime, for the page
