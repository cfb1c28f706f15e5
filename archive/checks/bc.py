"""长期保存环节 (BC) check items: what a storage sweep checks (standards.md §2.4).

The subject is one batch of object keys of a sweep (:class:`StorageSubject`), with every copy of
every catalogued key already read and digested by the sweep (in parallel, rate-limited). Per-object
items look at ``subject.keys``; whole-store items (inventory, audit chain) run once, on the final
subject of a sweep (``final=True``, no keys). Each item returns its findings, one Result per
target, plus one untargeted summary Result counting what it checked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from archive import audit
from archive.catalogue.models import ArchiveItem, Case, Document, RenditionVersion, ScanBatch
from archive.checks.base import CheckObject, Dimension, Outcome, Result, Stage, check
from archive.context import Context
from signing.fixity import Digests
from storage.base import ObjectNotFound, ObjectStore

DESTROYED = "destroyed"
SAMPLE_TARGETS = 20  # keys named in a summary's data


@dataclass(frozen=True)
class Expected:
    """What the catalogue says one stored object is."""

    key: str
    kind: str  # original, scan, rendition
    sha256: str
    sm3: str | None
    size: int | None
    destroyed: bool  # every row naming it belongs to a destroyed item: its absence is no finding
    refs: tuple[str, ...]  # 档号 or 业务流水号 of the rows naming it, for people
    archival_code: str | None = None  # of a rendition
    timestamped: bool = False  # a rendition signed at PAdES B-T


@dataclass(frozen=True)
class Probe:
    """What reading one copy of one object found: its digests, or why there are none."""

    digests: Digests | None
    problem: str | None = None  # missing, unreadable
    detail: str = ""


@dataclass
class StorageSubject:
    ctx: Context
    copies: list[tuple[str, ObjectStore]]  # (primary|secondary|store, the copy) this sweep reads
    replicated: bool  # both copies of a replicated store are compared
    keys: list[str] = field(default_factory=list)  # this batch, ascending
    expected: dict[str, Expected] = field(default_factory=dict)
    listed: dict[str, set[str]] = field(default_factory=dict)  # key -> copies whose listing holds it
    probes: dict[tuple[str, str], Probe] = field(default_factory=dict)  # (copy, key) -> probe
    signature_due: Callable[[str], bool] = lambda _key: False
    final: bool = False
    tiers: tuple[str, ...] = ("originals", "renditions")
    tally: dict[str, Any] = field(default_factory=dict)  # the sweep's running tallies (read at the end)

    def live(self) -> list[Expected]:
        """Catalogued objects of this batch that must be present (not of destroyed items)."""
        return [e for k in self.keys if (e := self.expected.get(k)) is not None and not e.destroyed]

    def where(self, copy: str, key: str) -> str:
        return f"{key}@{copy}" if self.replicated else key

    @cached_property
    def trust_roots(self) -> list[Any]:
        from signing.certificates import load_trust_roots

        return load_trust_roots(self.ctx.settings.pki_path)


def _summary(checked: int, what: str) -> Result:
    return Result(Outcome.PASSED, f"检测{what} {checked} 个", data={"checked": checked, "what": what})


def _refs(e: Expected) -> str:
    return "、".join(e.refs[:3]) + ("等" if len(e.refs) > 3 else "")


def _kind_name(e: Expected) -> str:
    return {"original": "原件", "scan": "批量扫描原件", "rendition": "归档版式文件"}[e.kind]


@check("BC-1-1", "固化信息有效性检测（数字摘要）", Stage.STORAGE, Dimension.AUTHENTICITY, CheckObject.CONTENT)
def fixity(subject: StorageSubject) -> list[Result]:
    """Recomputed SHA-256 and SM3 (and size) of every copy equal the catalogue's digests."""
    if subject.final:
        return []
    out, checked = [], 0
    for e in subject.live():
        for copy, _ in subject.copies:
            probe = subject.probes.get((copy, e.key))
            if probe is None or probe.digests is None:
                continue  # absence and unreadability are BC-2-2 / BC-4-1 findings
            checked += 1
            d = probe.digests
            wrong = [n for n, a, x in (("SHA-256", d.sha256, e.sha256), ("SM3", d.sm3, e.sm3),
                                       ("大小", d.size, e.size)) if x is not None and a != x]
            if wrong:
                out.append(Result(Outcome.FAILED, f"{_kind_name(e)} {e.key}（{_refs(e)}）的{'、'.join(wrong)}"
                                  f"与目录登记不符，文件已被改动或损坏；请用另一副本或备份核对修复",
                                  target=subject.where(copy, e.key),
                                  data={"key": e.key, "copy": copy, "mismatch": wrong, "expected_sha256": e.sha256,
                                        "actual_sha256": d.sha256, "actual_size": d.size}))
    return [*out, _summary(checked, "对象副本")]


@check("BC-1-2", "固化信息有效性检测（电子签名、时间戳）", Stage.STORAGE, Dimension.AUTHENTICITY,
       CheckObject.CONTENT)
def signatures(subject: StorageSubject) -> list[Result]:
    """Signatures and time stamps of the renditions due this sweep still validate (sampled: costly)."""
    from signing.validate import verify_pdf

    if subject.final:
        return []

    out, checked = [], 0
    for e in subject.live():
        if e.kind != "rendition" or not subject.signature_due(e.key):
            continue
        data = _readable_copy(subject, e)
        if data is None:
            continue  # nothing left to validate; BC-2-2 reports it
        checked += 1
        report = verify_pdf(data, subject.trust_roots, Digests(e.sha256, e.sm3 or "", e.size or len(data)),
                            require_timestamp=e.timestamped, check_pdfa=False)
        if not report.ok:
            problems = "；".join(f.detail for f in report.failures[:3])
            out.append(Result(Outcome.FAILED, f"归档件 {e.archival_code} 的电子签名或时间戳核验不通过：{problems}",
                              target=e.archival_code or e.key,
                              data={"key": e.key, "failed": [f.name for f in report.failures]}))
    return [*out, _summary(checked, "归档版式文件签名")]


def _readable_copy(subject: StorageSubject, e: Expected) -> bytes | None:
    """The bytes of the first copy matching the catalogue, else of the first copy present."""
    present = [(c, s) for c, s in subject.copies if (p := subject.probes.get((c, e.key))) and p.digests]
    # the ignore below: filtered on digests above
    present.sort(key=lambda cs: subject.probes[(cs[0], e.key)].digests.sha256 != e.sha256)  # type: ignore[union-attr]
    for _, store in present:
        try:
            with store.get(e.key) as f:
                return bytes(f.read())
        except ObjectNotFound:
            continue
    return None


@check("BC-2-1", "库存总量相符性检测（件数、字节数）", Stage.STORAGE, Dimension.INTEGRITY, CheckObject.CONTENT)
def inventory(subject: StorageSubject) -> list[Result]:
    """Items (件) with their rendition and bytes of originals in each copy equal the catalogue's totals.

    Each batch counts what its reads found (kept in the sweep's tally); at the end those counts are compared
    with the catalogue's totals. When they differ (damage, or the catalogue changed while the sweep ran),
    the store is counted again object by object, and that count decides.
    """
    if not subject.final:
        return [Result(Outcome.PASSED, "", data={"checked": 0, "counts": _seen(subject)})]
    with subject.ctx.catalogue.sessions() as s:
        items, doc_sizes = _catalogue_totals(s)
    catalogued = {"items": len(items), "originals": len(doc_sizes), "bytes": sum(doc_sizes.values())}
    seen = subject.tally.get("BC-2-1", {}).get("counts", {})
    out = []
    for copy, store in subject.copies:
        counted = seen.get(copy, {})
        if any(counted.get(k, 0) != v for k, v in _wanted(catalogued, subject.tiers).items()):
            counted = _recount(store, items, doc_sizes, subject.tiers)
        out.append(_compare(copy, _wanted(catalogued, subject.tiers), counted))
    return out


def _seen(subject: StorageSubject) -> dict[str, dict[str, int]]:
    """Per copy: items whose rendition, and originals (with their bytes) this batch's reads found."""
    counts: dict[str, dict[str, int]] = {}
    for copy, _ in subject.copies:
        c = counts[copy] = {"items": 0, "originals": 0, "bytes": 0}
        for e in subject.live():
            probe = subject.probes.get((copy, e.key))
            if probe is None or probe.digests is None:
                continue
            if e.kind == "rendition":
                c["items"] += len(e.refs)
            elif e.kind == "original":
                c["originals"] += 1
                c["bytes"] += probe.digests.size
    return counts


def _wanted(catalogued: dict[str, int], tiers: tuple[str, ...]) -> dict[str, int]:
    keys = (["items"] if "renditions" in tiers else []) + (["originals", "bytes"] if "originals" in tiers else [])
    return {k: catalogued[k] for k in keys}


def _recount(store: ObjectStore, items: dict[str, str], doc_sizes: dict[str, int],
             tiers: tuple[str, ...]) -> dict[str, int]:
    counted = {"items": 0, "originals": 0, "bytes": 0}
    if "renditions" in tiers:
        counted["items"] = sum(1 for key in items.values() if _size(store, key) is not None)
    if "originals" in tiers:
        stored = [sz for key in doc_sizes if (sz := _size(store, key)) is not None]
        counted["originals"], counted["bytes"] = len(stored), sum(stored)
    return counted


def _compare(copy: str, wanted: dict[str, int], counted: dict[str, int]) -> Result:
    where = {"primary": "主副本", "secondary": "备副本"}.get(copy, "存储")
    names = {"items": ("件", "件"), "originals": ("原件", "个"), "bytes": ("原件字节", "字节")}
    facts = {"copy": copy, **{f"{k}_catalogued": v for k, v in wanted.items()},
             **{f"{k}_stored": counted.get(k, 0) for k in wanted}}
    wrong = [f"{names[k][0]}目录登记 {v} {names[k][1]}、存储中 {counted.get(k, 0)} {names[k][1]}"
             for k, v in wanted.items() if counted.get(k, 0) != v]
    if wrong:
        return Result(Outcome.FAILED, f"{where}库存总量与目录不符：{'；'.join(wrong)}", target=f"inventory@{copy}",
                      data=facts)
    summary = "，".join(f"{names[k][0]} {v} {names[k][1]}" for k, v in wanted.items())
    return Result(Outcome.PASSED, f"{where}库存总量与目录相符（{summary}）", data=facts | {"checked": 1})


def _catalogue_totals(s: Session) -> tuple[dict[str, str], dict[str, int]]:
    """Live items' rendition keys by 档号, and live originals' sizes by key (each object once)."""
    live = ArchiveItem.status != DESTROYED
    q = select(ArchiveItem.archival_code, ArchiveItem.rendition_key).where(live, ArchiveItem.rendition_key.is_not(None))
    items = {code: key for code, key in s.execute(q) if key is not None}
    destroyed_cases = select(ArchiveItem.case_id).where(ArchiveItem.status == DESTROYED)
    docs = s.execute(select(Document.original_key, func.max(Document.size))
                     .where(Document.case_id.not_in(destroyed_cases)).group_by(Document.original_key))
    return items, {key: int(size) for key, size in docs}


def _size(store: ObjectStore, key: str) -> int | None:
    try:
        return store.stat(key).size
    except ObjectNotFound:
        return None
    except Exception:  # damaged metadata: counted as absent; BC-1-1 names the object
        return None


@check("BC-2-2", "内容数据完整性检测（目录条目有对应对象）", Stage.STORAGE, Dimension.INTEGRITY,
       CheckObject.CONTENT)
def catalogued_present(subject: StorageSubject) -> list[Result]:
    """Every catalogue row's object can be read from at least one copy (destroyed items excepted)."""
    if subject.final:
        return []
    out, live = [], subject.live()
    for e in live:
        probes = [subject.probes.get((c, e.key)) for c, _ in subject.copies]
        if any(p is not None and p.digests is not None for p in probes):
            continue
        unreadable = [p.detail for p in probes if p is not None and p.problem == "unreadable"]
        what = f"无法读取（{unreadable[0]}）" if unreadable else "在存储中不存在"
        out.append(Result(Outcome.FAILED, f"{_kind_name(e)} {e.key}（{_refs(e)}）{what}；请从备份恢复",
                          target=e.key, data={"key": e.key, "refs": list(e.refs[:10]), "kind": e.kind}))
    return [*out, _summary(len(live), "目录登记的对象")]


@check("BC-2-3", "存储对象登记检测（对象有对应目录条目）", Stage.STORAGE, Dimension.INTEGRITY, CheckObject.CONTENT,
       blocking=False)
def objects_catalogued(subject: StorageSubject) -> list[Result]:
    """Every stored original and rendition is named by a catalogue row (else: orphan, or a lost row)."""
    if subject.final:
        return []
    out, checked = [], 0
    for key in subject.keys:
        where = subject.listed.get(key, set())
        if not where:
            continue
        checked += 1
        if key not in subject.expected:
            out.append(Result(Outcome.FAILED, f"存储对象 {key} 没有对应的目录条目（可能是归档中断留下的孤立对象，"
                              "或目录记录丢失）；请核对后由 archive storage gc 清理或补登目录",
                              target=key, data={"key": key, "copies": sorted(where)}))
    return [*out, _summary(checked, "存储对象")]


@check("BC-4-1", "备份副本检测（两副本齐全且一致）", Stage.STORAGE, Dimension.SECURITY, CheckObject.CARRIER)
def replicas(subject: StorageSubject) -> list[Result]:
    """With a replicated store, each catalogued object is on both copies with the same digests."""
    if subject.final:
        return []
    if not subject.replicated:
        return [Result(Outcome.NOT_APPLICABLE, "未配置副本存储，或本次只检测一个副本", data={"checked": 0})]
    out, live = [], subject.live()
    for e in live:
        probes = {c: subject.probes.get((c, e.key)) for c, _ in subject.copies}
        present = {c: p.digests for c, p in probes.items() if p is not None and p.digests is not None}
        absent = [c for c in probes if c not in present]
        if not present:
            continue  # on neither copy: BC-2-2
        if absent:
            side = "、".join({"primary": "主副本", "secondary": "备副本"}.get(c, c) for c in absent)
            out.append(Result(Outcome.FAILED, f"{_kind_name(e)} {e.key}（{_refs(e)}）的{side}缺失或无法读取；"
                              "请用 archive storage verify --repair 从完好副本补齐",
                              target=e.key, data={"key": e.key, "missing": absent}))
        elif len({(d.sha256, d.sm3, d.size) for d in present.values()}) > 1:
            out.append(Result(Outcome.FAILED, f"{_kind_name(e)} {e.key}（{_refs(e)}）的主、备副本内容不同",
                              target=e.key, data={"key": e.key,
                                                  "sha256": {c: d.sha256 for c, d in present.items()}}))
    return [*out, _summary(len(live), "对象的副本")]


@check("BC-4-2", "审计日志完整性检测（哈希链）", Stage.STORAGE, Dimension.SECURITY, CheckObject.PROCESS)
def audit_chain(subject: StorageSubject) -> list[Result]:
    """The audit log's hash chain is unbroken: no event edited, removed or reordered."""
    if not subject.final:
        return []
    with subject.ctx.catalogue.sessions() as s:
        report = audit.verify(s)
    if report.ok:
        return [Result(Outcome.PASSED, f"审计日志 {report.checked} 条事件的哈希链完整",
                       data={"checked": report.checked})]
    return [Result(Outcome.FAILED, f"审计日志哈希链断裂：{report.reason}；请立即保全数据库并报告安全审计员",
                   target=f"audit_event:{report.broken_at}",
                   data={"broken_at": report.broken_at, "checked": report.checked})]


def load_expected(s: Session, tiers: tuple[str, ...]) -> dict[str, Expected]:
    """Every object the catalogue names under the tiers, keyed by object key."""
    rows: dict[str, list[Expected]] = {}

    def add(e: Expected) -> None:
        rows.setdefault(e.key, []).append(e)

    if "originals" in tiers:
        q = (select(Document.original_key, Document.sha256, Document.sm3, Document.size, Case.serial,
                    ArchiveItem.archival_code, ArchiveItem.status)
             .join(Case, Case.id == Document.case_id).outerjoin(ArchiveItem, ArchiveItem.case_id == Case.id))
        for key, sha, sm3, size, serial, code, status in s.execute(q):
            add(Expected(key, "original", sha, sm3, size, status == DESTROYED, (code or serial,)))
        for key, sha, bid in s.execute(select(ScanBatch.original_key, ScanBatch.sha256, ScanBatch.id)):
            add(Expected(key, "scan", sha, None, None, False, (f"批量扫描 {bid}",)))
    if "renditions" in tiers:
        q = select(ArchiveItem.rendition_key, ArchiveItem.rendition_sha256, ArchiveItem.rendition_sm3,
                   ArchiveItem.archival_code, ArchiveItem.status, ArchiveItem.signature).where(
            ArchiveItem.rendition_key.is_not(None))
        for key, sha, sm3, code, status, sig in s.execute(q):  # type: ignore[misc]  # SQLAlchemy 2.1 stubs miscount a 6-column row
            add(Expected(key, "rendition", sha or "", sm3, None, status == DESTROYED, (code,), code,
                         (sig or {}).get("level") in ("B-T", "B-LT", "B-LTA")))
        # earlier versions of renewed renditions (archive.ltv): kept, locked, and checked like the newest
        q2 = select(RenditionVersion.object_key, RenditionVersion.sha256, RenditionVersion.sm3, RenditionVersion.size,
                    ArchiveItem.archival_code, ArchiveItem.status).join(
            ArchiveItem, ArchiveItem.id == RenditionVersion.item_id).where(
            RenditionVersion.object_key != ArchiveItem.rendition_key)
        for key, sha, sm3, size, code, status in s.execute(q2):
            add(Expected(key, "rendition", sha, sm3, size, status == DESTROYED, (code,), code, True))
    return {key: _merge(es) for key, es in rows.items()}


def _merge(es: list[Expected]) -> Expected:
    """One object named by several rows (the same bytes uploaded twice): live if any row is live."""
    first = es[0]
    if len(es) == 1:
        return first
    refs = tuple(dict.fromkeys(r for e in es for r in e.refs))
    size = next((e.size for e in es if e.size is not None), None)
    sm3 = next((e.sm3 for e in es if e.sm3), None)
    return Expected(first.key, first.kind, first.sha256, sm3, size, all(e.destroyed for e in es), refs,
                    first.archival_code, any(e.timestamped for e in es))

