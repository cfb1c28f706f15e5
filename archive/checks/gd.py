"""归档环节 (GD) check items of DA/T 70-2018 §2.2, run on one item being filed (or re-run on a filed one).

The subject is what filing has: the case and its catalogue metadata, each original with its stored bytes
and recorded digests, the signed rendition (our 归档信息包: it carries the metadata as XMP, one bookmark per
document as its 目录, and the signature), the allocated 档号, the schedule and the catalogue session.

Items on the catalogue record alone (object ``metadata``) run first, before the rendition is built, so a
bad record is refused without signing anything; the rest run once the signed rendition exists, before it
is stored. Filing online (在线归档) has no offline carrier: carrier items are manual (人工) and
not applicable unless a person records them for a carrier.
"""

from __future__ import annotations

import io
import itertools
import logging
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from archive import audit
from archive.archival_code import CodeParts
from archive.capture.cases import NEEDS_APPLICANT
from archive.capture.documents import missing_materials
from archive.capture.inspect import check_readable
from archive.capture.sniff import ACCEPTED, JPEG, NAMES, OFD, PDF, PNG, TIFF, sniff
from archive.catalogue.models import ArchiveItem, AuditEvent, Case, Document, DocumentStatus
from archive.checks.base import (
    CheckItem,
    CheckObject,
    Dimension,
    Outcome,
    Result,
    Stage,
    blocking_failures,
    check,
    items_of,
    run_items,
)
from archive.checks.reports import save_report
from archive.checks.security import ScanFailed, Scanner, database_age_days
from archive.classification import RetentionCode
from archive.context import Context
from archive.errors import ERRORS, SYSTEM_KINDS, InvalidInput, NotFound
from archive.wiring import scanner_from_settings
from signing.fixity import digest_bytes
from storage.base import content_key

log = logging.getLogger(__name__)
P, F, NA, MANUAL = Outcome.PASSED, Outcome.FAILED, Outcome.NOT_APPLICABLE, Outcome.MANUAL
AUTH, INTEG, USE, SEC = Dimension.AUTHENTICITY, Dimension.INTEGRITY, Dimension.USABILITY, Dimension.SECURITY
META, CONTENT, PACKAGE = CheckObject.METADATA, CheckObject.CONTENT, CheckObject.PACKAGE
CARRIER, ENV, PROCESS = CheckObject.CARRIER, CheckObject.ENVIRONMENT, CheckObject.PROCESS
RASTER = frozenset({JPEG, PNG, TIFF})  # images the rendition decodes frame by frame
FUTURE_TOLERANCE = timedelta(minutes=10)  # clocks of business systems drift a little
AV_DATABASE_MAX_AGE_DAYS = 7
OUTCOMES = ("approved", "rejected", "withdrawn")


@dataclass(frozen=True)
class Original:
    """One active document and its stored bytes (None when they could not be read)."""

    doc: Document
    data: bytes | None
    read_error: str | None = None


@dataclass
class FilingSubject:
    session: Session
    ctx: Context
    case: Case
    originals: list[Original]
    code: str  # 档号
    parts: CodeParts  # the item's own fields (from allocation, or the item row)
    actor_kind: str
    rendition: bytes | None = None  # None before it is built
    rendition_sha256: str | None = None
    rendition_sm3: str | None = None
    rendition_key: str | None = None
    item: ArchiveItem | None = None  # set when re-checking a filed item
    missing: list[str] = field(default_factory=list)  # required materials filed without (with a reason)
    scanner: Scanner | None = None
    verify_signatures: bool = True
    rendition_pending: bool = False  # filing, before the rendition is built
    # The certificate that signed the rendition in this filing, just now: GD-1-1 then checks that signature on
    # its bytes (signing.selfcheck: byte range, digest, signature value, time-stamp imprint) rather than running
    # the full validation; a filed item (re-check, sweeps) always gets the full one.
    signed_by: Any = None
    # Documents (ids) whose every frame the rendition build just decoded, as GD-3-4 would (signing.rendition: JPEG
    # at 1/8 scale, other images in full): GD-3-4 does not decode them a second time. Among them, those it did not
    # decode either (``decoded_at_intake``): JPEGs decoded at intake (check_source and GD-3-4 there) whose bytes
    # this filing verified to be the same (SHA-256 and SM3), so it took them byte for byte.
    decoded: set[int] = field(default_factory=set)
    decoded_at_intake: set[int] = field(default_factory=set)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    # 件号 known to be gap-free (Context.continuous, for filing and imports; None for re-checks of filed items):
    # class (全宗, 年度, 保管期限, 类别) → N when the committed items of the class are numbered 1..N. GD-2-6 then
    # counts only the numbers above N: items are never deleted or renumbered, so those below stay; counting the
    # whole class for every item made a large import quadratic. Whoever commits the items raises N.
    continuous: dict[tuple[str, int, str, str], int] | None = None
    _memo: dict[tuple[str, int], Any] = field(default_factory=dict, repr=False)

    def memo(self, name: str, data: bytes, fn: Callable[[bytes], Any]) -> Any:
        """One parse/digest of the same bytes per run, shared by the items that need it."""
        key = (name, id(data))
        if key not in self._memo:
            self._memo[key] = (data, fn(data))  # keep data referenced so id() stays unique
        return self._memo[key][1]

    def release(self) -> None:
        """Close the parsed PDF the memo holds open (see _rendition_pdf); an item run later opens it again."""
        for key in [k for k in self._memo if k[0] == "pdf"]:
            opened = self._memo.pop(key)[1]
            if not isinstance(opened, Exception):
                opened.close()

    @property
    def filed(self) -> bool:
        return self.item is not None

    @property
    def rendered(self) -> list[Original]:
        """Originals merged into the rendition (OFD is kept as received, not rendered)."""
        return [o for o in self.originals if o.doc.media_type != OFD]


def load_originals(ctx: Context, docs: Sequence[Document]) -> list[Original]:
    out = []
    for d in docs:
        try:
            out.append(Original(d, ctx.store.read_bytes(d.original_key)))
        except ERRORS as exc:  # missing object, digest mismatch on read …
            if exc.kind in SYSTEM_KINDS:  # the store is down, not the original bad: 503, no failed report
                raise
            out.append(Original(d, None, f"{exc.code}: {exc.message}"))
    return out


def item_subject(ctx: Context, session: Session, item: ArchiveItem, *, actor_kind: str = "system",
                 scanner: Scanner | None = None, verify_signatures: bool = True) -> FilingSubject:
    """A filed item, read back from the catalogue and the store, for re-running the GD checks."""
    rendition: bytes | None = None
    if item.rendition_key:
        try:
            rendition = ctx.store.read_bytes(item.rendition_key)
        except ERRORS:
            rendition = None
    parts = CodeParts(item.fonds_code, item.year, item.retention_code, item.category, item.number)
    return FilingSubject(session, ctx, item.case, load_originals(ctx, item.case.active_documents),
                         item.archival_code, parts, actor_kind, rendition, item.rendition_sha256,
                         item.rendition_sm3, item.rendition_key, item, scanner=scanner,
                         verify_signatures=verify_signatures)


# GD items that judge only the bytes of the originals and the rendition (and the virus scanner): they read
# neither the catalogue session nor the store, so a process without a catalogue (the import's workers,
# archive/imports/build.py) runs them where the bytes are, and sends back only the results. The other items
# (``attached``) need the catalogue or the store's records and run where the item is catalogued.
DETACHED = frozenset({"GD-1-1", "GD-1-9", "GD-1-10", "GD-1-12", "GD-1-14", "GD-2-2", "GD-2-3", "GD-2-7", "GD-2-10",
                      "GD-2-11", "GD-3-1", "GD-3-3", "GD-3-4", "GD-3-5", "GD-3-8", "GD-4-2"})


def run_gd(subject: FilingSubject, *, phase: str = "all") -> list[tuple[CheckItem, Result]]:
    """Run the GD items: ``metadata`` (catalogue record only), ``content`` (the rest) or ``all``; or split the
    other way, ``detached`` (the bytes only, see DETACHED) and ``attached`` (the rest)."""
    items = items_of(Stage.FILING)
    if phase == "metadata":
        items = [i for i in items if i.object == META]
    elif phase == "content":
        items = [i for i in items if i.object != META]
    elif phase == "detached":
        items = [i for i in items if i.code in DETACHED]
    elif phase == "attached":
        items = [i for i in items if i.code not in DETACHED]
    try:
        return run_items(items, subject)
    finally:
        subject.release()


def refusal_summary(results: list[tuple[CheckItem, Result]]) -> list[dict[str, Any]]:
    return [{"code": i.code, "name": i.name, "target": r.target, "outcome": r.outcome.value, "detail": r.detail}
            for i, r in blocking_failures(results)]


# --- the catalogue record as metadata elements ----------------------------------------------------


@dataclass(frozen=True)
class Element:
    key: str
    label: str  # 元数据项名称
    max_length: int | None
    required: bool
    kind: str  # text, code, int, year, datetime, id_number, mobile, uscc, serial, enum


SCHEME: tuple[Element, ...] = (
    Element("archival_code", "档号", 64, True, "code"),
    Element("fonds_code", "全宗号", 8, True, "fonds"),
    Element("year", "年度", 4, True, "year"),
    Element("retention_code", "保管期限", 3, True, "enum"),
    Element("category", "类别", 2, True, "enum"),
    Element("number", "件号", 9, True, "int"),
    Element("serial", "业务流水号", 64, True, "serial"),
    Element("business_type", "业务类型", 16, True, "enum"),
    Element("title", "题名", 300, True, "text"),
    Element("applicant_name", "申请人", 100, False, "text"),
    Element("applicant_id_number", "证件号码", 18, False, "id_number"),
    Element("applicant_mobile", "手机号码", 11, False, "mobile"),
    Element("unit_name", "单位名称", 200, False, "text"),
    Element("unit_uscc", "统一社会信用代码", 18, False, "uscc"),
    Element("personal_account", "个人账号", 32, False, "account"),
    Element("unit_account", "单位账号", 32, False, "account"),
    Element("loan_contract_no", "贷款合同号", 64, False, "text"),
    Element("branch", "办理网点", 32, True, "text"),
    Element("clerk", "经办人", 64, True, "text"),
    Element("accepted_at", "受理时间", None, True, "datetime"),
    Element("closed_at", "办结时间", None, True, "datetime"),
    Element("outcome", "办结结果", 16, True, "enum"),
)
_PATTERNS = {
    "fonds": re.compile(r"[A-Za-z0-9]{1,8}"), "serial": re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{5,63}"),
    "id_number": re.compile(r"\d{17}[\dX]"), "mobile": re.compile(r"1\d{10}"),
    "uscc": re.compile(r"[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}"), "account": re.compile(r"[0-9A-Za-z-]+"),
}


def metadata(s: FilingSubject) -> dict[str, Any]:
    """The item's metadata elements, from the case and the 档号 fields."""
    c, bt = s.case, s.ctx.schedule.types.get(s.case.business_type)
    return {
        "archival_code": s.code, "fonds_code": s.parts.fonds, "year": s.parts.year,
        "retention_code": s.parts.retention, "category": s.parts.category, "number": s.parts.number,
        "serial": c.serial, "business_type": c.business_type,
        "title": f"{c.applicant_name or c.unit_name or ''}{bt.name if bt else ''}",
        "applicant_name": c.applicant_name, "applicant_id_number": c.applicant_id_number,
        "applicant_mobile": c.applicant_mobile, "unit_name": c.unit_name, "unit_uscc": c.unit_uscc,
        "personal_account": c.personal_account, "unit_account": c.unit_account,
        "loan_contract_no": c.loan_contract_no, "branch": c.branch, "clerk": c.clerk,
        "accepted_at": c.accepted_at, "closed_at": c.closed_at, "outcome": c.outcome,
    }


def _present(v: Any) -> bool:
    return v is not None and (not isinstance(v, str) or v.strip() != "")


def _each(s: FilingSubject) -> Iterator[tuple[Element, Any]]:
    values = metadata(s)
    for el in SCHEME:
        yield el, values.get(el.key)


def _summary(failures: list[Result], passed: str) -> list[Result]:
    return failures or [Result(P, passed)]


# --- 真实性 (authenticity) --------------------------------------------------------------------------


@check("GD-1-1", "固化信息有效性检测", Stage.FILING, AUTH, CONTENT)
def fixity(s: FilingSubject) -> list[Result]:
    """Digests of every original and of the rendition; the rendition's signature and time stamp."""
    from signing.certificates import load_trust_roots
    from signing.selfcheck import check_own_signature
    from signing.validate import verify_pdf

    out = []
    for o in s.originals:
        if o.data is None:
            out.append(Result(F, f"原件“{o.doc.filename}”无法读取，无法核验摘要：{o.read_error}", o.doc.filename))
            continue
        d = s.memo("digest", o.data, digest_bytes)  # filing computed it beside the record checks
        if (d.sha256, d.sm3) != (o.doc.sha256, o.doc.sm3):
            out.append(Result(F, f"原件“{o.doc.filename}”的摘要与登记值不一致（SHA-256 登记 {o.doc.sha256[:16]}…，"
                                 f"实际 {d.sha256[:16]}…），内容可能被篡改", o.doc.filename,
                              {"expected_sha256": o.doc.sha256, "actual_sha256": d.sha256}))
    if s.rendition is None:
        return [*out, _no_rendition(s)]
    d = s.memo("digest", s.rendition, digest_bytes)
    if (d.sha256, d.sm3) != (s.rendition_sha256, s.rendition_sm3):
        out.append(Result(F, "归档 PDF 的摘要与登记值不一致", "rendition",
                          {"expected_sha256": s.rendition_sha256, "actual_sha256": d.sha256}))
    if not s.verify_signatures:
        out.append(Result(NA, "本次检测未验证电子签名与时间戳（仅核验摘要）", "rendition"))
    elif s.signed_by is not None and not s.filed:
        own = check_own_signature(s.rendition, s.signed_by)
        if own.problems:
            out.append(Result(F, f"归档 PDF 的电子签名验证未通过：{'；'.join(own.problems[:3])}", "rendition",
                              {"failures": own.problems}))
        else:
            level = "PAdES B-B，无时间戳" if own.level == "B-B" else f"PAdES {own.level}"
            out.append(Result(P, f"电子签名有效（{level}，本次签章：签名覆盖整个文件，摘要与签名值一致）",
                              "rendition", {"level": own.level}))
    else:
        report = verify_pdf(s.rendition, load_trust_roots(s.ctx.settings.pki_path), d)
        if not report.ok:
            shown = "；".join(f"{c.name}: {c.detail}" for c in report.failures[:3])
            out.append(Result(F, f"归档 PDF 的电子签名验证未通过：{shown}", "rendition",
                              {"failures": [c.name for c in report.failures]}))
        else:
            level = "PAdES B-B，无时间戳" if report.level == "B-B" else f"PAdES {report.level}"
            out.append(Result(P, f"电子签名有效（{level}，签署人 {report.signer}），摘要一致", "rendition",
                              {"level": report.level}))
    if not any(r.outcome == F for r in out):
        out.insert(0, Result(P, f"{len(s.originals)} 个原件的 SHA-256/SM3 摘要与登记值一致"))
    return out


@check("GD-1-2", "元数据项数据长度检测", Stage.FILING, AUTH, META)
def lengths(s: FilingSubject) -> list[Result]:
    bad = [Result(F, f"{el.label}长度为 {len(str(v))}，超过上限 {el.max_length}", el.label,
                  {"length": len(str(v)), "max": el.max_length})
           for el, v in _each(s) if el.max_length is not None and v is not None and len(str(v)) > el.max_length]
    return _summary(bad, f"{len(SCHEME)} 个元数据项长度均未超过上限")


@check("GD-1-3", "元数据项数据类型、格式检测", Stage.FILING, AUTH, META)
def formats(s: FilingSubject) -> list[Result]:
    bad = []
    for el, v in _each(s):
        if not _present(v):
            continue
        if el.kind in ("int", "year") and not (isinstance(v, int) and v > 0 and
                                               (el.kind != "year" or 1000 <= v <= 9999)):
            want = "四位年份" if el.kind == "year" else "正整数"
            bad.append(Result(F, f"{el.label}应为{want}，实为 {v!r}", el.label))
        elif el.kind == "datetime" and not (isinstance(v, datetime) and v.tzinfo is not None):
            bad.append(Result(F, f"{el.label}应为带时区的日期时间，实为 {v!r}", el.label))
        elif el.kind in _PATTERNS and not _PATTERNS[el.kind].fullmatch(str(v)):
            bad.append(Result(F, f"{el.label}格式不正确：{_mask(el, v)}", el.label))
    return _summary(bad, "元数据项的数据类型与格式正确")


def _mask(el: Element, v: Any) -> str:
    """Personal data never goes into a report in clear."""
    text_ = str(v)
    if el.kind in ("id_number", "mobile", "account") and len(text_) > 4:
        return text_[:2] + "*" * (len(text_) - 4) + text_[-2:]
    return repr(text_[:40])


@check("GD-1-4", "设定值域的元数据项值域符合度检测", Stage.FILING, AUTH, META)
def value_domains(s: FilingSubject) -> list[Result]:
    sch, c, bad = s.ctx.schedule, s.case, []
    bt = sch.types.get(c.business_type)
    if bt is None:
        bad.append(Result(F, f"业务类型 {c.business_type} 不在分类方案 {sch.version} 中", "业务类型"))
    if s.parts.retention not in {r.value for r in RetentionCode}:
        bad.append(Result(F, f"保管期限 {s.parts.retention} 不是有效代码（Y、D30、D10）", "保管期限"))
    elif bt is not None and s.parts.retention != bt.retention.value:
        bad.append(Result(F, f"保管期限 {s.parts.retention} 与业务类型{bt.name}规定的 {bt.retention.value} 不符",
                          "保管期限"))
    if s.parts.category not in sch.categories:
        bad.append(Result(F, f"类别 {s.parts.category} 不在分类方案中", "类别"))
    elif bt is not None and s.parts.category != bt.category:
        bad.append(Result(F, f"类别 {s.parts.category} 与业务类型{bt.name}的类别 {bt.category} 不符", "类别"))
    if c.outcome is not None and c.outcome not in OUTCOMES:
        bad.append(Result(F, f"办结结果 {c.outcome!r} 不是 approved/rejected/withdrawn 之一", "办结结果"))
    for o in s.originals:
        if o.doc.material_type not in sch.materials:
            bad.append(Result(F, f"材料类型 {o.doc.material_type} 不在分类方案中", o.doc.filename))
    return _summary(bad, "保管期限、类别、业务类型、办结结果、材料类型均在规定值域内")


@check("GD-1-5", "元数据项数据值合理性检测", Stage.FILING, AUTH, META)
def plausibility(s: FilingSubject) -> list[Result]:
    c, bad, zone = s.case, [], s.ctx.zone
    closed = c.closed_at
    latest = s.now + FUTURE_TOLERANCE
    if closed is not None:
        if closed.astimezone(zone).year != s.parts.year:
            bad.append(Result(F, f"年度 {s.parts.year} 与办结年份 {closed.astimezone(zone).year} 不一致", "年度"))
        if c.accepted_at is not None and closed < c.accepted_at:
            bad.append(Result(F, "办结时间早于受理时间", "办结时间"))
        if closed > latest and not s.filed:
            bad.append(Result(F, f"办结时间 {closed.isoformat()} 晚于当前时间", "办结时间"))
    if c.accepted_at is not None and c.accepted_at > latest:
        bad.append(Result(F, f"受理时间 {c.accepted_at.isoformat()} 晚于当前时间", "受理时间"))
    for i, step in enumerate(c.trail or [], 1):
        at = _instant(step.get("at"))
        if at is not None and at > latest and not s.filed:
            bad.append(Result(F, f"业务行为第 {i} 步（{step.get('action')}）的时间晚于当前时间", "业务行为"))
    item = s.item
    if item is not None and item.trigger_date and item.expiry_date and item.expiry_date < item.trigger_date:
        bad.append(Result(F, "到期日期早于保管期限起算日期", "到期日期"))
    return _summary(bad, "年度与办结年份一致，时间先后合理")


def _instant(v: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(v) if isinstance(v, str) else v if isinstance(v, datetime) else None
    except ValueError:
        return None


def _bad_chars(value: str) -> list[str]:
    found = []
    for ch in value:
        cat = unicodedata.category(ch)
        # private-use and not-yet-assigned code points stay allowed: rare characters in names (生僻字) use them
        if cat in ("Cc", "Cs") or ch in "\ufffe\uffff\ufeff":
            found.append(f"U+{ord(ch):04X}")
    if not found:
        try:
            value.encode("gb18030")
        except UnicodeEncodeError:
            found.append("非 GB 18030 字符")
    return found


@check("GD-1-6", "元数据项数据包含特殊字符检测", Stage.FILING, AUTH, META)
def special_characters(s: FilingSubject) -> list[Result]:
    bad = []
    for el, v in _each(s):
        if isinstance(v, str) and (chars := _bad_chars(v)):
            bad.append(Result(F, f"{el.label}含不允许的字符：{'、'.join(sorted(set(chars)))}", el.label,
                              {"characters": sorted(set(chars))}))
    for i, step in enumerate(s.case.trail or [], 1):
        for key in ("person", "opinion"):
            if isinstance(step.get(key), str) and (chars := _bad_chars(step[key])):
                bad.append(Result(F, f"业务行为第 {i} 步的{key}含不允许的字符：{'、'.join(chars)}", "业务行为"))
    for o in s.originals:
        if chars := _bad_chars(o.doc.filename):
            bad.append(Result(F, f"文件名含不允许的字符：{'、'.join(chars)}", f"document:{o.doc.id}"))
    return _summary(bad, "元数据项不含控制字符等特殊字符，均可用 GB 18030 编码")


@check("GD-1-7", "档号规范性检测", Stage.FILING, AUTH, META)
def archival_code(s: FilingSubject) -> Result:
    rule = s.ctx.code_rule
    try:
        differing = rule.check(s.code, s.parts)
    except ERRORS as exc:
        return Result(F, exc.message, s.code)
    if differing:
        return Result(F, f"档号 {s.code} 与条目字段不一致：{'；'.join(differing)}", s.code, {"differing": differing})
    if s.parts.fonds != s.ctx.settings.fonds_code:
        return Result(F, f"档号的全宗号 {s.parts.fonds} 不是本馆全宗号 {s.ctx.settings.fonds_code}", s.code)
    return Result(P, f"档号 {s.code} 符合规则 {rule.template}，各段与条目字段一致", s.code)


@check("GD-1-8", "元数据项数据重复性检测", Stage.FILING, AUTH, META)
def duplicates(s: FilingSubject) -> list[Result]:
    own = s.item.id if s.item is not None else -1
    bad = []
    same_code, same_serial, same_case = s.session.execute(select(  # one round trip for the three counts
        select(func.count()).select_from(ArchiveItem).where(ArchiveItem.archival_code == s.code,
                                                            ArchiveItem.id != own).scalar_subquery(),
        select(func.count()).select_from(Case).where(Case.serial == s.case.serial).scalar_subquery(),
        select(func.count()).select_from(ArchiveItem).where(ArchiveItem.case_id == s.case.id,
                                                            ArchiveItem.id != own).scalar_subquery())).one()
    if same_code:
        bad.append(Result(F, f"档号 {s.code} 已被其他归档件使用", "档号"))
    if same_serial != 1:  # the counts of the one round trip above (issue 17), not queried again
        bad.append(Result(F, f"业务流水号 {s.case.serial} 在目录中出现 {same_serial} 次", "业务流水号"))
    if same_case:
        bad.append(Result(F, f"业务 {s.case.serial} 已有归档件，不能重复归档", "业务流水号"))
    return _summary(bad, "档号、业务流水号在目录中唯一")


@check("GD-1-9", "电子文件内容数据电子属性一致性检测", Stage.FILING, AUTH, CONTENT)
def original_properties(s: FilingSubject) -> list[Result]:
    """Each original's size and (content-identified) format equal what the catalogue recorded."""
    bad = []
    for o in s.originals:
        if o.data is None:
            bad.append(Result(F, f"原件“{o.doc.filename}”无法读取：{o.read_error}", o.doc.filename))
            continue
        if len(o.data) != o.doc.size:
            bad.append(Result(F, f"原件“{o.doc.filename}”大小 {len(o.data)} 字节，登记为 {o.doc.size} 字节",
                              o.doc.filename))
        kind = _sniff(o.data, o.doc.filename)
        if kind != o.doc.media_type:
            bad.append(Result(F, f"原件“{o.doc.filename}”按内容识别为 {kind or '未知格式'}，登记为 {o.doc.media_type}",
                              o.doc.filename))
    return _summary(bad, f"{len(s.originals)} 个原件的大小、格式与登记一致")


def _sniff(data: bytes, filename: str) -> str | None:
    try:
        return sniff(data[:2048], io.BytesIO(data), filename)
    except ERRORS:
        return None


@check("GD-1-10", "归档文件电子属性一致性检测", Stage.FILING, AUTH, PACKAGE)
def rendition_properties(s: FilingSubject) -> list[Result]:
    """The rendition is a PDF whose page count is the sum of the rendered originals' pages."""
    import pikepdf

    if s.rendition is None:
        return [_no_rendition(s)]
    try:
        pages = len(_rendition_pdf(s).pages)
    except pikepdf.PdfError as exc:
        return [Result(F, f"归档 PDF 无法解析：{exc}", "rendition")]
    expected = sum(o.doc.page_count for o in s.rendered)
    if pages != expected:
        return [Result(F, f"归档 PDF 共 {pages} 页，原件登记页数合计 {expected} 页", "rendition",
                       {"pages": pages, "expected": expected})]
    return [Result(P, f"归档 PDF 共 {pages} 页，与原件页数一致", "rendition")]


@check("GD-1-11", "元数据与内容关联一致性检测", Stage.FILING, AUTH, CONTENT)
def content_links(s: FilingSubject) -> list[Result]:
    """Every object key in the catalogue resolves to the object with the recorded digest."""
    bad = []
    for o in s.originals:
        try:
            info = s.ctx.store.stat(o.doc.original_key)
        except ERRORS as exc:
            if exc.kind in SYSTEM_KINDS:
                raise
            bad.append(Result(F, f"原件“{o.doc.filename}”的存储对象 {o.doc.original_key} 不存在：{exc.message}",
                              o.doc.filename))
            continue
        if info.sha256 != o.doc.sha256 or o.doc.original_key != content_key("originals", o.doc.sha256):
            bad.append(Result(F, f"原件“{o.doc.filename}”的存储对象与目录登记的摘要不一致", o.doc.filename))
    if s.rendition_key and s.rendition_sha256 and s.rendition_key != content_key("renditions", s.rendition_sha256):
        bad.append(Result(F, "归档 PDF 的对象键与其摘要不一致", "rendition"))
    if s.filed and s.rendition_key:
        try:
            if s.ctx.store.stat(s.rendition_key).sha256 != s.rendition_sha256:
                bad.append(Result(F, "归档 PDF 的存储对象与目录登记的摘要不一致", "rendition"))
        except ERRORS as exc:
            if exc.kind in SYSTEM_KINDS:
                raise
            bad.append(Result(F, f"归档 PDF 的存储对象不存在：{exc.message}", "rendition"))
    return _summary(bad, "目录中的对象键均指向摘要一致的存储对象")


def _no_rendition(s: FilingSubject) -> Result:
    if s.rendition_pending:
        return Result(NA, "原件有问题，未生成归档 PDF，本项未检测", "rendition")
    return Result(F, "归档 PDF 不存在或无法读取", "rendition")


def _rendition_pdf(s: FilingSubject) -> Any:
    """The rendition parsed once (pikepdf) for every item that reads its structure - pages, outline, XMP,
    encryption - rather than once per item (issue 17); closed when the run ends (FilingSubject.release). Raises
    what opening it raised, to each item that asks, which reports it in its own words."""
    assert s.rendition is not None
    opened = s.memo("pdf", s.rendition, _open_pdf)
    if isinstance(opened, Exception):
        raise opened
    return opened


def _open_pdf(data: bytes) -> Any:
    import pikepdf

    try:
        return pikepdf.open(io.BytesIO(data))
    except Exception as exc:  # kept, and raised to each item that reads the file (see _rendition_pdf)
        return exc


@dataclass(frozen=True)
class _Xmp:
    values: dict[str, str]  # signing.rendition.metadata_values
    creator_tool: str


def _read_xmp(s: FilingSubject) -> _Xmp:
    """The rendition's XMP, parsed once for GD-2-3, GD-2-10, GD-3-1 and GD-3-5."""
    assert s.rendition is not None
    return s.memo("xmp", s.rendition, lambda _: _parse_xmp(_rendition_pdf(s)))


def _parse_xmp(pdf: Any) -> _Xmp:
    from signing.rendition import metadata_values

    xmp = pdf.open_metadata()
    return _Xmp(metadata_values(xmp), str(xmp.get("xmp:CreatorTool", "") or ""))


def _xmp(s: FilingSubject) -> dict[str, str] | Result:
    """The rendition's embedded metadata, or why it cannot be read."""
    if s.rendition is None:
        return _no_rendition(s)
    try:
        return _read_xmp(s).values
    except Exception as exc:  # pikepdf and XMP parsing raise several kinds
        return Result(F, f"归档 PDF 的元数据无法读取：{type(exc).__name__}: {exc}", "rendition")


def _outline(s: FilingSubject) -> list[str] | Result:
    if s.rendition is None:
        return _no_rendition(s)
    return s.memo("outline", s.rendition, lambda _: _read_outline(s))


def _read_outline(s: FilingSubject) -> list[str] | Result:
    try:
        pdf = _rendition_pdf(s)
        titles = [str(i.title) for i in pdf.open_outline().root]  # read only: no ``with``, which writes it back
        if "/PageLabels" not in pdf.Root:
            return Result(F, "归档 PDF 没有页码标签", "rendition")
        return titles
    except Exception as exc:
        return Result(F, f"归档 PDF 的目录无法读取：{type(exc).__name__}: {exc}", "rendition")


@check("GD-1-12", "说明文件和目录文件规范性检测", Stage.FILING, AUTH, PACKAGE)
def navigation(s: FilingSubject) -> Result:
    """The rendition's 目录: one bookmark per rendered original, numbered in order, and page labels."""
    titles = _outline(s)
    if isinstance(titles, Result):
        return titles
    wrong = [t for i, t in enumerate(titles, 1) if not t.startswith(f"{i}. ")]
    if len(titles) != len(s.rendered) or wrong:
        return Result(F, f"归档 PDF 目录有 {len(titles)} 条，应为 {len(s.rendered)} 条且按顺序编号", "rendition")
    return Result(P, f"归档 PDF 目录 {len(titles)} 条，与原件一一对应", "rendition")


@check("GD-1-13", "信息包目录结构规范性检测", Stage.FILING, AUTH, PACKAGE)
def package_layout(s: FilingSubject) -> Result:
    return Result(NA, "在线归档，不形成目录结构的归档信息包（移交信息包在移交环节检测）")


@check("GD-1-14", "信息包一致性检测", Stage.FILING, AUTH, PACKAGE)
def package_consistency(s: FilingSubject) -> Result:
    """The bytes checked are the bytes recorded (and, once filed, the bytes stored)."""
    if s.rendition is None:
        return _no_rendition(s)
    d = s.memo("digest", s.rendition, digest_bytes)
    if d.sha256 != s.rendition_sha256:
        return Result(F, "归档 PDF 与登记的摘要不一致（存储前后内容不同）", "rendition")
    return Result(P, f"归档 PDF SHA-256 {d.sha256[:16]}… 与登记一致", "rendition")


# --- 完整性 (integrity) -----------------------------------------------------------------------------


@check("GD-2-1", "电子文件总件数相符性检测", Stage.FILING, INTEG, CONTENT)
def document_count(s: FilingSubject) -> Result:
    active = s.session.scalar(select(func.count()).select_from(Document).where(
        Document.case_id == s.case.id, Document.is_active)) or 0
    if active != len(s.originals):
        return Result(F, f"目录登记有效原件 {active} 件，实际检测 {len(s.originals)} 件")
    return Result(P, f"原件 {active} 件，与目录登记一致", data={"documents": active})


@check("GD-2-2", "总字节数相符性检测", Stage.FILING, INTEG, CONTENT)
def byte_total(s: FilingSubject) -> Result:
    recorded = sum(o.doc.size for o in s.originals)
    actual = sum(len(o.data) for o in s.originals if o.data is not None)
    if recorded != actual:
        return Result(F, f"原件登记总字节数 {recorded}，实际 {actual}", data={"recorded": recorded, "actual": actual})
    return Result(P, f"原件总字节数 {actual}，与登记一致", data={"bytes": actual})


XMP_ELEMENTS = ("档号", "业务流水号", "业务类型", "保管期限", "全宗名称", "年度", "办理网点", "经办人", "题名")


@check("GD-2-3", "元数据项完整性检测", Stage.FILING, INTEG, PACKAGE)
def xmp_elements(s: FilingSubject) -> Result:
    xmp = _xmp(s)
    if isinstance(xmp, Result):
        return xmp
    missing = [k for k in XMP_ELEMENTS if not xmp.get(k)]
    if missing:
        return Result(F, f"归档 PDF 内嵌元数据缺项：{'、'.join(missing)}", "rendition", {"missing": missing})
    return Result(P, f"归档 PDF 内嵌元数据 {len(XMP_ELEMENTS)} 项齐全", "rendition")


@check("GD-2-4", "元数据必填著录项目检测", Stage.FILING, INTEG, META)
def required_elements(s: FilingSubject) -> Result:
    values = metadata(s)
    missing = [el.label for el in SCHEME if el.required and not _present(values.get(el.key))]
    if s.case.category in NEEDS_APPLICANT:
        missing += [label for key, label in (("applicant_name", "申请人"), ("applicant_id_number", "证件号码"))
                    if not _present(values.get(key))]
    if s.case.category == "DK" and not _present(values.get("loan_contract_no")):
        missing.append("贷款合同号")
    if not _present(values.get("applicant_name")) and not _present(values.get("unit_name")):
        missing.append("申请人或单位名称")
    if missing:
        return Result(F, f"必填著录项目为空：{'、'.join(missing)}", data={"missing": missing})
    return Result(P, "必填著录项目均已填写")


@check("GD-2-5", "过程信息完整性检测", Stage.FILING, INTEG, META, blocking=False)
def process_trail(s: FilingSubject) -> Result:
    trail = s.case.trail or []
    if not trail:
        return Result(F, "没有业务行为记录（受理…办结）", "业务行为")
    actions = [step.get("action") for step in trail]
    gaps = [a for a in ("受理",) if a not in actions]
    if s.case.outcome == "approved" and "办结" not in actions:
        gaps.append("办结")
    times = [_instant(step.get("at")) for step in trail]
    if any(t is None for t in times):
        return Result(F, "业务行为有缺少时间的步骤", "业务行为")
    # the ignore below: no None left (returned above)
    unordered = any(b < a for a, b in itertools.pairwise(times))  # type: ignore[operator]
    if gaps or unordered:
        why = ([f"缺少{'、'.join(gaps)}步骤"] if gaps else []) + (["步骤时间先后颠倒"] if unordered else [])
        return Result(F, f"业务行为不完整：{'；'.join(why)}", "业务行为", {"actions": actions})
    return Result(P, f"业务行为 {len(trail)} 步（{'→'.join(str(a) for a in actions)}）", "业务行为")


@check("GD-2-6", "连续性元数据项检测", Stage.FILING, INTEG, META)
def continuity(s: FilingSubject) -> list[Result]:
    """件号 gap-free from 1 in its class (全宗, 年度, 保管期限, 类别); 件内顺序号 gap-free from 1."""
    p, own = s.parts, s.item.id if s.item is not None else -1
    same_class = (ArchiveItem.fonds_code == p.fonds, ArchiveItem.year == p.year,
                  ArchiveItem.retention_code == p.retention, ArchiveItem.category == p.category)

    def numbers_between(start: int) -> tuple[int, int]:  # items and distinct 件号 in (start, number)
        n, distinct = s.session.execute(select(func.count(), func.count(func.distinct(ArchiveItem.number))).where(
            *same_class, ArchiveItem.number > start, ArchiveItem.number < p.number, ArchiveItem.id != own)).one()
        return int(n), int(distinct)

    known = (s.continuous or {}).get((p.fonds, p.year, p.retention, p.category), 0)
    start = known if known < p.number else 0
    n, distinct = numbers_between(start)
    if start and (n != p.number - 1 - start or distinct != n):
        start, (n, distinct) = 0, numbers_between(0)  # judged, and reported, on the whole class
    bad = []
    if start + n != p.number - 1 or distinct != n:
        bad.append(Result(F, f"件号不连续：{p.fonds}/{p.year}/{p.retention}/{p.category} 中件号 {p.number} 之前应有 "
                             f"{p.number - 1} 件，实有 {distinct} 件", "件号",
                          {"number": p.number, "before": distinct}))
    # A replaced document's slot is taken by its replacement; every other document keeps its own number.
    sequences = sorted(s.session.scalars(select(Document.sequence).where(
        Document.case_id == s.case.id, Document.status != DocumentStatus.REPLACED)))
    if sequences != list(range(1, len(sequences) + 1)):
        bad.append(Result(F, f"件内顺序号不连续：{sequences}", "件内顺序号"))
    return _summary(bad, f"件号 {p.number} 与前序件号连续，件内顺序号连续")


@check("GD-2-7", "内容数据完整性检测", Stage.FILING, INTEG, CONTENT)
def content_present(s: FilingSubject) -> list[Result]:
    bad = [Result(F, f"原件“{o.doc.filename}”内容缺失：{o.read_error or '0 字节'}", o.doc.filename)
           for o in s.originals if not o.data]
    if not s.originals:
        bad.append(Result(F, "该业务没有任何原件"))
    if not s.rendition and not s.rendition_pending:
        bad.append(Result(F, "归档 PDF 内容缺失", "rendition"))
    return _summary(bad, f"{len(s.originals)} 个原件及归档 PDF 均有内容")


@check("GD-2-8", "附件数据完整性检测", Stage.FILING, INTEG, CONTENT, blocking=False)
def attachments(s: FilingSubject) -> Result:
    """The business type's required materials; filing without some (with a reason) is a warning."""
    missing = [e.name for e in missing_materials(s.ctx, s.case)]
    if missing:
        return Result(F, f"缺少必备材料：{'、'.join(missing)}", data={"missing": missing})
    return Result(P, "必备材料齐全")


@check("GD-2-9", "归档范围检测", Stage.FILING, INTEG, META)
def scope(s: FilingSubject) -> Result:
    bt = s.ctx.schedule.types.get(s.case.business_type)
    if bt is None or bt.category != s.case.category:
        return Result(F, f"业务类型 {s.case.business_type}（类别 {s.case.category}）不在归档范围（分类方案"
                         f" {s.ctx.schedule.version}）内")
    return Result(P, f"{bt.name}属于归档范围（分类方案 {s.ctx.schedule.version}）")


@check("GD-2-10", "信息包元数据完整性检测", Stage.FILING, INTEG, PACKAGE)
def xmp_values(s: FilingSubject) -> Result:
    """The embedded metadata says what the catalogue says, and the file declares PDF/A-2b."""
    xmp = _xmp(s)
    if isinstance(xmp, Result):
        return xmp
    expected = {"档号": s.code, "业务流水号": s.case.serial, "年度": str(s.parts.year)}
    differing = [f"{k}（内嵌 {xmp.get(k)!r}，目录 {v!r}）" for k, v in expected.items() if xmp.get(k) != v]
    if xmp.get("pdfaid") != "2b":
        differing.append(f"PDF/A 标识（{xmp.get('pdfaid')!r}）")
    if differing:
        return Result(F, f"归档 PDF 内嵌元数据与目录不一致：{'；'.join(differing)}", "rendition")
    return Result(P, "归档 PDF 内嵌元数据与目录一致，声明 PDF/A-2b", "rendition")


@check("GD-2-11", "信息包内容数据完整性检测", Stage.FILING, INTEG, PACKAGE)
def package_contents(s: FilingSubject) -> Result:
    titles = _outline(s)
    if isinstance(titles, Result):
        return titles
    if len(titles) != len(s.rendered):
        return Result(F, f"归档 PDF 含 {len(titles)} 份文件，应含 {len(s.rendered)} 份", "rendition")
    return Result(P, f"归档 PDF 含全部 {len(titles)} 份可转换原件（OFD 原件按原样保存）", "rendition")


# --- 可用性 (usability) -----------------------------------------------------------------------------


@check("GD-3-1", "信息包中元数据的可读性检测", Stage.FILING, USE, PACKAGE)
def xmp_readable(s: FilingSubject) -> Result:
    xmp = _xmp(s)
    if isinstance(xmp, Result):
        return xmp
    return Result(P, f"归档 PDF 内嵌元数据可读（{len(xmp)} 项）", "rendition")


@check("GD-3-2", "目标数据库中的元数据可访问性检测", Stage.FILING, USE, META)
def catalogue_readable(s: FilingSubject) -> Result:
    serial = s.session.scalar(select(Case.serial).where(Case.id == s.case.id))
    if serial != s.case.serial:
        return Result(F, "目录数据库中读不到该业务记录")
    return Result(P, "目录数据库可访问，业务记录可读")


@check("GD-3-3", "内容数据格式检测", Stage.FILING, USE, CONTENT)
def format_whitelist(s: FilingSubject) -> list[Result]:
    """Formats of GB/T 18894 accepted here, identified by content, never by name."""
    allowed = "、".join(NAMES[m] for m in ACCEPTED)
    bad = []
    for o in s.originals:
        if o.data is None:
            continue
        kind = _sniff(o.data, o.doc.filename)
        if kind not in ACCEPTED:
            bad.append(Result(F, f"原件“{o.doc.filename}”的格式不在归档格式范围（{allowed}）内", o.doc.filename))
    if s.rendition is not None and _sniff(s.rendition, "rendition.pdf") != PDF:
        bad.append(Result(F, "归档文件不是 PDF", "rendition"))
    return _summary(bad, f"原件格式均在归档格式范围（{allowed}）内，归档文件为 PDF/A")


@check("GD-3-4", "内容数据的可读性检测", Stage.FILING, USE, CONTENT)
def readable(s: FilingSubject) -> list[Result]:
    bad = []
    for o in s.originals:
        if o.data is None:
            bad.append(Result(F, f"原件“{o.doc.filename}”无法读取：{o.read_error}", o.doc.filename))
        elif o.doc.id in s.decoded and o.doc.media_type in RASTER:
            continue  # decoded by the rendition build of this filing (or at intake, the same bytes)
        elif problem := _unreadable(o.data, o.doc.media_type, o.doc.filename):
            bad.append(Result(F, f"原件{problem}", o.doc.filename))
    if s.rendition is not None and (problem := _rendition_unreadable(s)):
        bad.append(Result(F, problem, "rendition"))
    intake = [o.doc.filename for o in s.originals if o.doc.id in s.decoded_at_intake]
    if intake and not bad:
        return [Result(P, f"原件与归档 PDF 均可正常打开（其中 {len(intake)} 个图像在受理时已完整解码，"
                          "本次核验摘要一致）", data={"decoded_at_intake": intake})]
    return _summary(bad, "原件与归档 PDF 均可正常打开")


def _rendition_unreadable(s: FilingSubject) -> str | None:
    """GD-3-4 on the rendition, from its one parse (check_readable's test for a PDF: it opens and has pages);
    a rendition that fails it goes through check_readable itself, for the reason in its words."""
    assert s.rendition is not None
    try:
        if len(_rendition_pdf(s).pages):
            return None
    except Exception:
        pass
    return _unreadable(s.rendition, PDF, "归档 PDF")


def _unreadable(data: bytes, media_type: str, filename: str) -> str | None:
    """Why a file does not open (None: it does)."""
    try:
        check_readable(data, media_type, filename)
    except InvalidInput as exc:
        return exc.message
    return None


@check("GD-3-5", "软硬件环境合规性检测", Stage.FILING, USE, ENV)
def environment(s: FilingSubject) -> Result:
    """The rendition records the program that made it (xmp:CreatorTool, PDF Producer)."""
    if s.rendition is None:
        return _no_rendition(s)
    try:
        tool = _read_xmp(s).creator_tool
        producer = str(_rendition_pdf(s).docinfo.get("/Producer", "") or "")
    except Exception as exc:
        return Result(F, f"归档 PDF 的环境信息无法读取：{exc}", "rendition")
    if not tool and not producer:
        return Result(F, "归档 PDF 未记录创建程序", "rendition")
    return Result(P, f"创建程序：{tool or producer}", "rendition", {"creator_tool": tool, "producer": producer})


@check("GD-3-8", "信息包中包含的内容数据格式合规性检测", Stage.FILING, USE, CONTENT)
def no_encryption(s: FilingSubject) -> list[Result]:
    """No encrypted PDFs or OFD entries: an archive must open without a password, forever."""
    import pikepdf

    bad = []
    named = [(o.doc.filename, o.doc.media_type, o.data) for o in s.originals if o.data is not None]
    if s.rendition is not None:
        named.append(("rendition", PDF, s.rendition))
    for name, kind, data in named:
        try:
            if kind == PDF and data is s.rendition:
                if _rendition_pdf(s).is_encrypted:
                    bad.append(Result(F, f"“{name}”是加密的 PDF", name))
            elif kind == PDF:
                with pikepdf.open(io.BytesIO(data)) as pdf:
                    if pdf.is_encrypted:
                        bad.append(Result(F, f"“{name}”是加密的 PDF", name))
            elif kind == OFD:
                with zipfile.ZipFile(io.BytesIO(data)) as z:
                    if any(i.flag_bits & 0x1 for i in z.infolist()):
                        bad.append(Result(F, f"“{name}”含加密的压缩条目", name))
        except pikepdf.PasswordError:
            bad.append(Result(F, f"“{name}”是加密的 PDF，需要密码才能打开", name))
        except Exception:
            continue  # unreadable files are GD-3-4's finding
    return _summary(bad, "内容数据未加密，未使用非标准压缩")


# --- 安全性 (security) ------------------------------------------------------------------------------


@check("GD-4-1", "系统环境中是否安装杀毒软件检测", Stage.FILING, SEC, ENV, blocking=False)
def antivirus_present(s: FilingSubject) -> Result:
    if s.scanner is None:
        return Result(F, "未配置杀毒软件（设置 ARCHIVE_CLAMD_SOCKET 或 ARCHIVE_CLAMSCAN），未做病毒检测")
    info = s.scanner.info()
    data = {"kind": info.kind, "engine": info.engine, "database": info.database,
            "database_date": info.database_date.isoformat() if info.database_date else None}
    age = database_age_days(info, s.now)
    if age is not None and age > AV_DATABASE_MAX_AGE_DAYS:
        return Result(F, f"病毒库已 {age:.0f} 天未更新（{info.engine}，病毒库 {info.database}）", data=data)
    return Result(P, f"{info.engine}（{info.kind}），病毒库 {info.database or '版本未知'}", data=data)


@check("GD-4-2", "病毒感染检测", Stage.FILING, SEC, CONTENT)
def virus_scan(s: FilingSubject) -> list[Result]:
    if s.scanner is None:
        return [Result(NA, "未配置杀毒软件，未扫描")]
    files = [(o.doc.filename, o.data) for o in s.originals if o.data is not None]
    if s.rendition is not None:
        files.append(("rendition.pdf", s.rendition))
    try:
        found = s.scanner.scan(files)
    except ScanFailed as exc:
        return [Result(Outcome.ERROR, f"病毒扫描未能完成：{exc}")]
    bad = [Result(F, f"文件“{f.name}”感染病毒：{f.signature}", f.name, {"signature": f.signature}) for f in found]
    return _summary(bad, f"{len(files)} 个文件未发现病毒")


@check("GD-4-3", "载体中多余文件检测", Stage.FILING, SEC, CARRIER)
def carrier_extra_files(s: FilingSubject) -> Result:
    return Result(NA, "在线归档，无离线载体")


def _manual(code: str, name: str) -> Callable[[FilingSubject], Result]:
    def run(s: FilingSubject) -> Result:
        return Result(NA, "在线归档，无离线载体；以光盘等载体归档时由人工检测后登记")

    check(code, name, Stage.FILING, SEC, CARRIER, manual=True)(run)
    return run


carrier_speed = _manual("GD-4-4", "载体读取速度检测")
carrier_appearance = _manual("GD-4-5", "载体外观检测")
carrier_disc_quality = _manual("GD-4-6", "光盘合格性检测")


@check("GD-4-7", "归档过程安全性检测", Stage.FILING, SEC, PROCESS)
def process_security(s: FilingSubject) -> list[Result]:
    """An authenticated filer, and the case's audit events present and unaltered (hash recomputes)."""
    bad = []
    if s.actor_kind not in ("user", "client", "system"):
        bad.append(Result(F, f"归档操作者类型 {s.actor_kind!r} 未经认证"))
    events = list(s.session.scalars(select(AuditEvent).where(
        AuditEvent.target_type == "case", AuditEvent.target_id == s.case.serial).order_by(AuditEvent.seq)))
    if not any(e.action == "case.open" for e in events):
        bad.append(Result(F, f"审计日志中没有业务 {s.case.serial} 的受理记录", "audit"))
    altered = [e.seq for e in events if audit.event_hash(e) != e.hash]
    if altered:
        bad.append(Result(F, f"业务 {s.case.serial} 的审计事件被改动（序号 {altered}）", "audit", {"seqs": altered}))
    attached = {e.detail.get("document_id") for e in events if e.action in ("document.attach", "document.replace")}
    unrecorded = [o.doc.filename for o in s.originals if o.doc.id not in attached]
    if unrecorded:
        bad.append(Result(F, f"原件无接收审计记录：{'、'.join(unrecorded)}", "audit"))
    return _summary(bad, f"操作者已认证，业务的 {len(events)} 条审计事件完整未被改动")



def recheck_item(ctx: Context, session: Session, actor: audit.Actor, archival_code: str, *,
                 verify_signatures: bool = True) -> Any:
    """Re-run every GD item on a filed item and store the report, linked to the item."""
    item = session.scalar(select(ArchiveItem).where(ArchiveItem.archival_code == archival_code.strip()))
    if item is None:
        raise NotFound(f"档号 {archival_code} 不存在", code="item_not_found", detail={"archival_code": archival_code})
    subject = item_subject(ctx, session, item, actor_kind=actor.kind, scanner=scanner_from_settings(ctx.settings),
                           verify_signatures=verify_signatures)
    return save_report(session, actor, Stage.FILING, item.archival_code, run_gd(subject), item_id=item.id,
                       serial=item.case.serial, trigger="recheck")
