"""移交与接收环节 (YJ) check items: the four-properties checks on a transfer package (DA/T 70-2018, §2.3).

Codes mirror the GD items of the same meaning (YJ-1-1 固化信息有效性 … YJ-4-7 移交过程安全性); items that
only make sense inside filing (过程信息, 归档范围) have no YJ twin. The subject is a :class:`TransferSubject`:
the package read back from its zip or directory, whether we just wrote it (``side="export"``) or received
it (``side="import"``). Expensive facts (digests of every file, each EEP's verification) are computed once
and shared by the items that need them.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections import Counter
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import Any

from archive.archival_code import CodeParts, CodeRule
from archive.capture.sniff import sniff
from archive.checks.base import CheckObject, Dimension, Outcome, Result, Stage, check
from archive.checks.security import ScanFailed
from archive.errors import ERRORS
from archive.retention.bagit import (
    BAG_INFO,
    BAGIT,
    EEP_DIR,
    ITEMS,
    MANIFESTS,
    REGISTER,
    REGISTER_PDF,
    TAG_MANIFEST,
    Bag,
    BagReadError,
    parse_tag_lines,
    tag_file_limit,
)
from archive.retention.register import register_problems
from archive.wiring import scanner_from_settings
from signing.fixity import Digests, digest_bytes

Y = Stage.TRANSFER
AUTH, INTEG, USE, SEC = Dimension.AUTHENTICITY, Dimension.INTEGRITY, Dimension.USABILITY, Dimension.SECURITY
RETENTION_LABELS = {"Y": "永久", "D30": "定期30年", "D10": "定期10年"}
SECURITY_LEVELS = {"公开", "内部", "限制", "秘密", "机密", "绝密"}
ARCHIVAL_FORMATS = {"application/pdf", "application/ofd", "image/jpeg", "image/tiff", "image/png"}
MAX_LENGTHS = {"档号": 64, "全宗号": 8, "年度": 4, "保管期限": 10, "机构或问题": 16, "室编件号": 10, "题名": 500,
               "责任者": 200, "日期": 10, "密级": 10}
REQUIRED = ("档号", "全宗号", "年度", "保管期限", "室编件号", "题名", "责任者", "日期", "密级")
REGISTER_FIELDS = ("package_no", "sender", "receiver", "item_count", "payload_bytes", "digests", "created_at")
BAG_INFO_FIELDS = ("Source-Organization", "External-Identifier", "Bagging-Date", "Payload-Oxum")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")
_NS = "{http://www.saac.gov.cn/standards/ERM/encapsulation}"


@dataclass
class FileFacts:
    """One computer file inside an EEP."""

    name: str
    declared_size: str | None
    declared_format: str | None
    size: int = 0
    decoded: bool = False  # the Base64 编码数据 could be restored
    media: str | None = None  # sniffed from the bytes
    pages: int | None = None
    encrypted: bool = False
    problem: str | None = None  # why it could not be decoded or read


@dataclass
class EepFacts:
    rel: str
    problem: str | None = None  # unreadable EEP
    checks: dict[str, tuple[bool, str]] = field(default_factory=dict)  # verify_eep: name → (passed, detail)
    meta: dict[str, str] = field(default_factory=dict)
    files: list[FileFacts] = field(default_factory=list)

    @property
    def code(self) -> str:
        return self.meta.get("档号") or self.rel


@dataclass
class TransferSubject:
    bag: Bag
    side: str  # export (we wrote it) | import (we received it)
    actor: str
    trust_roots: list[Any]
    received: Digests | None  # of the zip as received (or of the tag manifest for a directory)
    sender_digest: str | None  # SHA-256 the sender declared for the package
    settings: Any
    carrier: str = "online"  # online | offline (a package read from a carrier by the CLI)

    # --- tag files ---

    @cached_property
    def json_limit(self) -> int:
        """Largest tag/JSON file read: derived from the number of EEPs (open_bag refuses larger ones)."""
        return tag_file_limit(self.bag.files)

    def text(self, rel: str) -> str | None:
        if rel not in self.bag.files or self.bag.files[rel] > self.json_limit:
            return None
        try:
            return self.bag.read(rel).decode("utf-8")
        except (BagReadError, UnicodeDecodeError):
            return None

    @cached_property
    def bag_info(self) -> dict[str, str]:
        return parse_tag_lines(self.text(BAG_INFO) or "")

    @cached_property
    def manifests(self) -> dict[str, dict[str, str]]:
        """alg → path → digest; an unparseable line is kept under a ``<无法解析的行…>`` path for YJ-1-13."""
        out: dict[str, dict[str, str]] = {}
        for alg, rel in MANIFESTS.items():
            out[alg] = _manifest(self.text(rel) or "")
        return out

    @cached_property
    def tag_manifest(self) -> dict[str, str]:
        return _manifest(self.text(TAG_MANIFEST) or "")

    @cached_property
    def bag_digest(self) -> str | None:
        """SHA-256 of tagmanifest-sha256.txt: the digest of the bag in any form (zip or directory)."""
        try:
            return self.bag.digests(TAG_MANIFEST).sha256 if TAG_MANIFEST in self.bag.files else None
        except BagReadError:
            return None

    @cached_property
    def payload(self) -> list[str]:
        return sorted(n for n in self.bag.files if n.startswith("data/"))

    @cached_property
    def fixity(self) -> dict[str, Digests | str]:
        """Digests of every payload file actually present (or why it could not be read)."""
        out: dict[str, Digests | str] = {}
        for rel in self.payload:
            try:
                out[rel] = self.bag.digests(rel)
            except BagReadError as exc:
                out[rel] = str(exc)
        return out

    # --- data files ---

    def _json(self, rel: str) -> tuple[Any, str | None]:
        if rel not in self.bag.files:
            return None, f"缺少 {rel}"
        if self.bag.files[rel] > self.json_limit:
            return None, f"{rel} 有 {self.bag.files[rel]} 字节，超过本包允许的 {self.json_limit} 字节，不予解析"
        try:
            return json.loads(self.bag.read(rel).decode("utf-8")), None
        except BagReadError as exc:
            return None, str(exc)
        except (UnicodeDecodeError, ValueError) as exc:
            return None, f"{rel} 不是合法的 UTF-8 JSON：{exc}"

    @cached_property
    def register(self) -> tuple[dict[str, Any] | None, str | None]:
        value, problem = self._json(REGISTER)
        if problem is None and not isinstance(value, dict):
            return None, f"{REGISTER} 应为 JSON 对象"
        wrong = register_problems(value) if problem is None else []
        if wrong:
            return None, f"{REGISTER} 的字段类型不对：{'；'.join(wrong)}"
        return value, problem

    @cached_property
    def items_document(self) -> tuple[Any, str | None]:
        """items.json parsed once (it may be tens of MB) and shared by the items that read it."""
        return self._json(ITEMS)

    @cached_property
    def listing(self) -> tuple[list[dict[str, Any]], str | None]:
        """The 目录文件's item entries (empty with a reason when unreadable)."""
        value, problem = self.items_document
        if problem is None and not (isinstance(value, dict) and isinstance(value.get("items"), list)
                                    and all(isinstance(e, dict) for e in value["items"])):
            return [], f"{ITEMS} 应为带 items 列表的 JSON 对象"
        return (value["items"] if problem is None else []), problem

    @cached_property
    def code_rule(self) -> str | None:
        value, problem = self.items_document
        return value.get("archival_code_rule") if problem is None and isinstance(value, dict) else None

    @cached_property
    def eep_paths(self) -> list[str]:
        return sorted(n for n in self.bag.files if n.startswith(EEP_DIR))

    @cached_property
    def eeps(self) -> list[EepFacts]:
        expected = {e.get("file"): e for e in self.listing[0]}
        return [self._eep(rel, expected.get(rel)) for rel in self.eep_paths]

    def _eep(self, rel: str, entry: dict[str, Any] | None) -> EepFacts:
        from signing.eep import EepInvalid, eep_files, parse_eep, verify_eep

        facts = EepFacts(rel)
        try:
            data = self.bag.read(rel)
        except BagReadError as exc:
            facts.problem = str(exc)
            return facts
        wanted = {c["name"]: Digests(str(c.get("sha256")), str(c.get("sm3")), int(c.get("size") or 0))
                  for c in (entry or {}).get("content", []) if isinstance(c, dict) and "name" in c}
        report = verify_eep(data, self.trust_roots, wanted or None)
        for c in report.checks:  # keep the first failure of each kind, else the pass
            if c.name not in facts.checks or (facts.checks[c.name][0] and c.status == "failed"):
                facts.checks[c.name] = (c.status != "failed", c.detail)
        try:
            root = parse_eep(data)
        except EepInvalid as exc:
            facts.problem = exc.message
            return facts
        facts.meta = _metadata(root)
        try:
            decoded = eep_files(root)
        except EepInvalid as exc:
            decoded = {}
            facts.problem = exc.message
        for enc in root.iter(f"{_NS}电子属性"):
            name = enc.findtext(f"{_NS}计算机文件名") or ""
            f = FileFacts(name, enc.findtext(f"{_NS}计算机文件大小"), enc.findtext(f"{_NS}格式信息"))
            body = decoded.get(name)
            if body is None:
                f.problem = "编码数据无法还原"
            else:
                _inspect(f, body)
            facts.files.append(f)
        return facts

    @cached_property
    def virus_scan(self) -> tuple[Any, str | None]:
        return _scanner(self.settings)


# --- helpers ---------------------------------------------------------------------------------------


def _manifest(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        digest, _, path = line.strip().partition(" ")
        out[path.strip() or f"<无法解析的行：{line[:60]}>"] = digest.lower()
    return out


def _metadata(root: Any) -> dict[str, str]:
    entity = root.find(f".//{_NS}文件实体")
    if entity is None:
        return {}
    out = {"档号": entity.findtext(f"{_NS}电子文件号") or ""}
    for parent, names in (("档号", ("全宗号", "年度", "保管期限", "机构或问题", "室编件号")),
                          ("内容描述", ("题名", "责任者", "日期", "密级"))):
        node = entity.find(f"{_NS}{parent}")
        for n in names:
            value = node.findtext(f"{_NS}{n}") if node is not None else None
            if value is not None:
                out[n] = value
    return out


def _inspect(f: FileFacts, body: bytes) -> None:
    import pikepdf
    from PIL import Image

    f.size, f.decoded = len(body), True  # content digests are YJ-1-1's (verify_eep against items.json)
    try:
        f.media = sniff(body[:2048], io.BytesIO(body), f.name)
    except ERRORS:
        f.media = None
    if f.media == "application/pdf":
        try:
            with pikepdf.open(io.BytesIO(body)) as pdf:
                f.pages, f.encrypted = len(pdf.pages), bool(pdf.is_encrypted)
        except pikepdf.PasswordError:
            f.encrypted, f.problem = True, "PDF 已加密，无法打开"
        except Exception as exc:  # any parse failure: unreadable
            f.problem = f"PDF 无法打开：{exc}"
    elif f.media in ("image/jpeg", "image/png", "image/tiff"):
        try:
            with Image.open(io.BytesIO(body)) as im:
                im.verify()
            f.pages = 1
        except Exception as exc:  # PIL raises many kinds for broken images
            f.problem = f"图像无法解码：{exc}"
    elif f.media == "application/ofd":
        try:
            with zipfile.ZipFile(io.BytesIO(body)) as z:
                f.encrypted = any(i.flag_bits & 0x1 for i in z.infolist())
                f.pages = 1
        except zipfile.BadZipFile as exc:
            f.problem = f"OFD 无法打开：{exc}"


def _scanner(settings: Any) -> tuple[Any, str | None]:
    """The ClamAV scanner of archive/checks/security.py when configured, else (None, why)."""
    scanner = scanner_from_settings(settings)
    return (scanner, None) if scanner is not None else (
        None, "未配置杀毒软件（设置 ARCHIVE_CLAMD_SOCKET 或 ARCHIVE_CLAMSCAN）")


def _ok(detail: str, **data: Any) -> Result:
    return Result(Outcome.PASSED, detail, data=data)


def _fail(detail: str, target: str | None = None, **data: Any) -> Result:
    return Result(Outcome.FAILED, detail, target=target, data=data)


def _each(problems: list[tuple[str, str]], passed: str) -> Iterator[Result]:
    """One failed result per (target, problem), or one passed result."""
    if not problems:
        yield _ok(passed)
        return
    for target, problem in problems[:200]:
        yield _fail(problem, target)
    if len(problems) > 200:
        yield _fail(f"另有 {len(problems) - 200} 处问题未逐条列出", None, more=len(problems) - 200)


def _values(s: TransferSubject) -> Iterator[tuple[str, str, str]]:
    """(target 档号, field, value) of every EEP metadata field."""
    for e in s.eeps:
        for k, v in e.meta.items():
            yield e.code, k, v


# --- 真实性 (authenticity) ----------------------------------------------------------------------------


@check("YJ-1-1", "固化信息有效性检测", Y, AUTH, CheckObject.PACKAGE)
def fixed_information(s: TransferSubject) -> Iterator[Result]:
    """Each EEP's signature, certificate chain and embedded file digests (vs the 目录文件)."""
    if not s.eeps:
        yield _fail("信息包中没有封装包（data/eep/*.eep）")
        return
    problems = []
    for e in s.eeps:
        bad = [d for name, (ok, d) in e.checks.items()
               if not ok and name in ("readable", "signature_present", "signature_valid", "certificate_trusted",
                                      "file_fixity")]
        if e.problem and not bad:
            bad = [e.problem]
        if bad:
            problems.append((e.code, "；".join(bad)))
    yield from _each(problems, f"{len(s.eeps)} 个封装包的电子签名、证书链与文件摘要均有效")


@check("YJ-1-2", "元数据项数据长度检测", Y, AUTH, CheckObject.METADATA)
def metadata_length(s: TransferSubject) -> Iterator[Result]:
    problems = [(code, f"{k} 长度 {len(v)} 超过 {MAX_LENGTHS[k]}")
                for code, k, v in _values(s) if k in MAX_LENGTHS and len(v) > MAX_LENGTHS[k]]
    yield from _each(problems, "元数据项长度均在限值内")


@check("YJ-1-3", "元数据项数据类型、格式检测", Y, AUTH, CheckObject.METADATA)
def metadata_format(s: TransferSubject) -> Iterator[Result]:
    problems = []
    for e in s.eeps:
        m = e.meta
        if "年度" in m and not re.fullmatch(r"\d{4}", m["年度"]):
            problems.append((e.code, f"年度“{m['年度']}”不是四位数字"))
        if "室编件号" in m and not re.fullmatch(r"[1-9]\d*", m["室编件号"]):
            problems.append((e.code, f"室编件号“{m['室编件号']}”不是正整数"))
        if "日期" in m and _date(m["日期"]) is None:
            problems.append((e.code, f"日期“{m['日期']}”不是 YYYY-MM-DD 格式"))
    for entry in s.listing[0]:
        if not isinstance(entry.get("year"), int) or not isinstance(entry.get("number"), int):
            problems.append((str(entry.get("archival_code")), "目录文件中年度或件号不是整数"))
    yield from _each(problems, "元数据项类型与格式正确")


@check("YJ-1-4", "设定值域的元数据项值域符合度检测", Y, AUTH, CheckObject.METADATA)
def metadata_range(s: TransferSubject) -> Iterator[Result]:
    problems = []
    for e in s.eeps:
        if e.meta.get("保管期限") not in RETENTION_LABELS.values():
            problems.append((e.code, f"保管期限“{e.meta.get('保管期限')}”不在值域（永久、定期30年、定期10年）内"))
        if e.meta.get("密级") not in SECURITY_LEVELS:
            problems.append((e.code, f"密级“{e.meta.get('密级')}”不在值域内"))
    for entry in s.listing[0]:
        if entry.get("retention_code") not in RETENTION_LABELS:
            problems.append((str(entry.get("archival_code")), f"保管期限代码“{entry.get('retention_code')}”不在值域内"))
    yield from _each(problems, "保管期限、密级均在值域内")


@check("YJ-1-5", "元数据项数据值合理性检测", Y, AUTH, CheckObject.METADATA)
def metadata_plausible(s: TransferSubject) -> Iterator[Result]:
    problems = []
    tomorrow = date.today() + timedelta(days=1)
    for e in s.eeps:
        d = _date(e.meta.get("日期", ""))
        if d is not None and d > tomorrow:
            problems.append((e.code, f"日期 {d} 晚于今天"))
        if d is not None and e.meta.get("年度", "").isdigit() and int(e.meta["年度"]) != d.year:
            problems.append((e.code, f"年度 {e.meta['年度']} 与日期 {d} 的年份不一致"))
    by_code = {e.code: e for e in s.eeps}
    for entry in s.listing[0]:
        eep = by_code.get(str(entry.get("archival_code")))
        if eep is not None and str(entry.get("year")) != eep.meta.get("年度"):
            problems.append((eep.code, f"目录文件年度 {entry.get('year')} 与封装包年度 {eep.meta.get('年度')} 不一致"))
    yield from _each(problems, "元数据项取值合理")


@check("YJ-1-6", "元数据项数据包含特殊字符检测", Y, AUTH, CheckObject.METADATA)
def metadata_characters(s: TransferSubject) -> Iterator[Result]:
    problems = []
    for code, k, v in _values(s):
        if _CONTROL.search(v):
            problems.append((code, f"{k} 含控制字符或替换字符"))
            continue
        try:
            v.encode("gb18030")
        except UnicodeEncodeError:
            problems.append((code, f"{k} 含 GB 18030 无法编码的字符"))
    yield from _each(problems, "元数据项不含特殊字符")


@check("YJ-1-7", "档号规范性检测", Y, AUTH, CheckObject.METADATA)
def archival_code_rule(s: TransferSubject) -> Iterator[Result]:
    if not s.code_rule:
        yield _fail("目录文件没有给出档号规则（archival_code_rule）")
        return
    try:
        rule = CodeRule(s.code_rule)
    except ERRORS as exc:
        yield _fail(f"目录文件中的档号规则无效：{exc.message}")
        return
    retention_codes = {v: k for k, v in RETENTION_LABELS.items()}
    entries = {str(e.get("archival_code")): e for e in s.listing[0]}
    problems = []
    for e in s.eeps:
        m, entry = e.meta, entries.get(e.code, {})
        # the 档号 keeps the filed 保管期限; the EEP carries the one in force (re-appraisal may have changed it)
        in_force = retention_codes.get(m.get("保管期限", ""), m.get("保管期限", ""))
        listed = entry.get("retention_code")
        filed = listed if isinstance(listed, str) else in_force
        effective = entry.get("effective_retention")
        if effective is not None and effective != in_force:
            problems.append((e.code, f"封装包保管期限“{m.get('保管期限', '')}”与目录文件的现行保管期限"
                                     f"“{effective}”不一致"))
        try:
            expected = CodeParts(fonds=m.get("全宗号", ""), year=int(m.get("年度", "0") or 0), retention=filed,
                                 category=str(entry.get("category") or m.get("机构或问题", "")),
                                 number=int(m.get("室编件号", "0") or 0))
            wrong = rule.check(e.code, expected)
        except ERRORS as exc:
            wrong = [exc.message]
        except ValueError as exc:
            wrong = [f"档号组成项无法解析：{exc}"]
        if wrong:
            problems.append((e.code, "；".join(wrong)))
    yield from _each(problems, f"档号符合规则 {s.code_rule}，各段与元数据一致")


@check("YJ-1-8", "元数据项数据重复性检测", Y, AUTH, CheckObject.METADATA)
def metadata_duplicates(s: TransferSubject) -> Iterator[Result]:
    counts = Counter(e.code for e in s.eeps) + Counter(str(e.get("archival_code")) for e in s.listing[0])
    expected = 2 if s.listing[0] else 1
    problems = [(code, f"档号 {code} 重复出现 {n - expected + 1} 次") for code, n in counts.items() if n > expected]
    yield from _each(problems, "档号在信息包内唯一")


@check("YJ-1-9", "电子文件内容数据电子属性一致性检测", Y, AUTH, CheckObject.CONTENT)
def electronic_attributes(s: TransferSubject) -> Iterator[Result]:
    problems = []
    for e in s.eeps:
        for f in e.files:
            if not f.decoded:
                continue
            if f.declared_size != str(f.size):
                problems.append((e.code, f"{f.name}：计算机文件大小记为 {f.declared_size}，实际 {f.size} 字节"))
            if f.declared_format and f.media and f.declared_format != f.media:
                problems.append((e.code, f"{f.name}：格式信息记为 {f.declared_format}，按内容识别为 {f.media}"))
    yield from _each(problems, "内容文件的大小、格式与电子属性一致")


@check("YJ-1-11", "元数据与内容关联一致性检测", Y, AUTH, CheckObject.METADATA)
def metadata_content_link(s: TransferSubject) -> Iterator[Result]:
    problems = []
    by_rel = {e.rel: e for e in s.eeps}
    for entry in s.listing[0]:
        code, rel = str(entry.get("archival_code")), str(entry.get("file"))
        e = by_rel.get(rel)
        if e is None:
            problems.append((code, f"目录文件指向的 {rel} 不在信息包中"))
        elif e.meta and e.code != code:
            problems.append((code, f"{rel} 中的档号为 {e.code}，与目录文件不一致"))
        elif e.meta:
            names = {f.name for f in e.files}
            missing = [c.get("name") for c in entry.get("content", []) if c.get("name") not in names]
            if missing:
                problems.append((code, f"封装包中缺少目录文件登记的内容文件：{'、'.join(map(str, missing))}"))
    yield from _each(problems, "目录文件中的每件档案都关联到对应的封装包与内容文件")


@check("YJ-1-13", "信息包目录结构规范性检测", Y, AUTH, CheckObject.PACKAGE)
def package_structure(s: TransferSubject) -> Iterator[Result]:
    problems = []
    bagit = s.text(BAGIT) or ""
    if not re.search(r"^BagIt-Version: \d+\.\d+$", bagit, re.M):
        problems.append((BAGIT, "bagit.txt 缺少 BagIt-Version 声明"))
    for rel in (BAG_INFO, *MANIFESTS.values(), TAG_MANIFEST, ITEMS, REGISTER, REGISTER_PDF):
        if rel not in s.bag.files:
            problems.append((rel, f"缺少必备文件 {rel}"))
    for rel in s.payload:
        if rel.startswith(EEP_DIR) and not rel.endswith(".eep"):
            problems.append((rel, "data/eep/ 下只能存放 .eep 封装包"))
        elif not rel.startswith(EEP_DIR) and rel not in (ITEMS, REGISTER, REGISTER_PDF):
            problems.append((rel, "data/ 下有不属于信息包结构的文件"))
    for alg, lines in s.manifests.items():
        bad = [p for p in lines if p.startswith("<")]
        if bad:
            problems.append((MANIFESTS[alg], f"清单中有无法解析的行：{bad[0]}"))
    yield from _each(problems, "信息包目录结构符合规范（BagIt 1.0，data/eep/ 下每件一个 EEP）")


@check("YJ-1-14", "信息包一致性检测", Y, AUTH, CheckObject.PACKAGE)
def package_consistency(s: TransferSubject) -> Iterator[Result]:
    """Receiver's digests vs the sender's: the manifests, the tag manifest, the package digest if declared."""
    problems = []
    for alg, lines in s.manifests.items():
        for rel, digest in lines.items():
            got = s.fixity.get(rel)
            if isinstance(got, Digests) and getattr(got, alg) != digest:
                problems.append((rel, f"{rel} 的 {alg.upper()} 摘要与清单不一致（文件已被改动或损坏）"))
            elif isinstance(got, str):
                problems.append((rel, got))
    for rel, digest in s.tag_manifest.items():
        if rel in s.bag.files:
            try:
                if digest_bytes(s.bag.read(rel)).sha256 != digest:
                    problems.append((rel, f"标签文件 {rel} 的摘要与 tagmanifest 不一致"))
            except BagReadError as exc:
                problems.append((rel, str(exc)))
    if s.sender_digest and s.received is not None:
        bag_digest = s.bag_digest
        if s.sender_digest not in (s.received.sha256, bag_digest):
            problems.append(("package", f"接收到的信息包摘要 {s.received.sha256} 与移交方提供的 "
                                        f"{s.sender_digest} 不一致"))
    if not s.manifests["sha256"]:
        problems.append((MANIFESTS["sha256"], "没有 SHA-256 清单，无法核对信息包"))
    passed = "清单（SHA-256、SM3）与标签清单核对一致" + ("，与移交方提供的摘要一致" if s.sender_digest else "")
    yield from _each(problems, passed)


# --- 完整性 (integrity) -------------------------------------------------------------------------------


@check("YJ-2-1", "电子文件总件数相符性检测", Y, INTEG, CheckObject.PACKAGE)
def item_count(s: TransferSubject) -> Iterator[Result]:
    register, problem = s.register
    if register is None:
        yield _fail(f"无法读取移交登记表：{problem}")
        return
    counts = {"移交登记表": register.get("item_count"), "目录文件": len(s.listing[0]), "封装包": len(s.eeps)}
    if "Item-Count" in s.bag_info:
        counts["bag-info.txt"] = int(s.bag_info["Item-Count"]) if s.bag_info["Item-Count"].isdigit() else -1
    if len(set(counts.values())) != 1:
        yield Result(Outcome.FAILED, "总件数不一致：" + "，".join(f"{k} {v}" for k, v in counts.items()), data=counts)
    else:
        yield _ok(f"总件数 {len(s.eeps)} 与移交登记表一致", **counts)


@check("YJ-2-2", "总字节数相符性检测", Y, INTEG, CheckObject.PACKAGE)
def byte_count(s: TransferSubject) -> Iterator[Result]:
    register, problem = s.register
    if register is None:
        yield _fail(f"无法读取移交登记表：{problem}")
        return
    actual = sum(s.bag.files[r] for r in s.eep_paths)
    listed = sum(int(e.get("size") or 0) for e in s.listing[0] if isinstance(e.get("size"), int))
    problems = []
    if register.get("payload_bytes") != actual:
        problems.append(("移交登记表", f"登记表字节数 {register.get('payload_bytes')}，实际封装包共 {actual} 字节"))
    if listed != actual:
        problems.append((ITEMS, f"目录文件登记 {listed} 字节，实际封装包共 {actual} 字节"))
    oxum = s.bag_info.get("Payload-Oxum", "")
    total = f"{sum(s.bag.files[r] for r in s.payload)}.{len(s.payload)}"
    if oxum != total:
        problems.append((BAG_INFO, f"Payload-Oxum 为 {oxum or '（缺）'}，实际为 {total}"))
    yield from _each(problems, f"总字节数 {actual} 与移交登记表一致")


@check("YJ-2-3", "元数据项完整性检测", Y, INTEG, CheckObject.METADATA)
def metadata_complete(s: TransferSubject) -> Iterator[Result]:
    problems = [(e.code, e.checks["schema"][1]) for e in s.eeps if "schema" in e.checks and not e.checks["schema"][0]]
    problems += [(e.code, e.problem or "封装包无法读取") for e in s.eeps if "schema" not in e.checks]
    yield from _each(problems, "封装包元数据项齐全，符合 DA/T 48-2009 结构")


@check("YJ-2-4", "元数据必填著录项目检测", Y, INTEG, CheckObject.METADATA)
def metadata_required(s: TransferSubject) -> Iterator[Result]:
    problems = [(e.code, f"必填项为空：{'、'.join(missing)}") for e in s.eeps
                if e.meta and (missing := [k for k in REQUIRED if not e.meta.get(k, "").strip()])]
    yield from _each(problems, "必填著录项目均已填写")


@check("YJ-2-7", "内容数据完整性检测", Y, INTEG, CheckObject.CONTENT)
def content_complete(s: TransferSubject) -> Iterator[Result]:
    problems = []
    for e in s.eeps:
        if not e.files:
            problems.append((e.code, e.problem or "封装包中没有内容文件"))
        for f in e.files:
            if not f.decoded or f.size == 0:
                problems.append((e.code, f"{f.name}：{f.problem or '内容为空'}"))
    yield from _each(problems, "每件档案都有完整的内容数据")


@check("YJ-2-10", "信息包元数据完整性检测", Y, INTEG, CheckObject.PACKAGE)
def package_metadata(s: TransferSubject) -> Iterator[Result]:
    problems = [(BAG_INFO, f"bag-info.txt 缺少 {k}") for k in BAG_INFO_FIELDS if not s.bag_info.get(k)]
    register, problem = s.register
    if register is None:
        problems.append((REGISTER, f"无法读取移交登记表：{problem}"))
    else:
        problems += [(REGISTER, f"移交登记表缺少 {k}") for k in REGISTER_FIELDS if register.get(k) in (None, "")]
        if register.get("package_no") and register.get("package_no") != s.bag_info.get("External-Identifier"):
            problems.append((REGISTER, "移交登记表的批次号与 bag-info.txt 不一致"))
        digests = register.get("digests") or {}
        got = s.fixity.get(ITEMS)
        if isinstance(got, Digests) and (digests.get("sha256"), digests.get("sm3")) != (got.sha256, got.sm3):
            problems.append((REGISTER, "移交登记表记录的目录文件摘要与实际不一致"))
    yield from _each(problems, "信息包元数据（bag-info、移交登记表）齐全且一致")


@check("YJ-2-11", "信息包内容数据完整性检测", Y, INTEG, CheckObject.PACKAGE)
def package_content(s: TransferSubject) -> Iterator[Result]:
    problems = []
    for alg, lines in s.manifests.items():
        problems += [(rel, f"{MANIFESTS[alg]} 登记了 {rel}，但信息包中没有这个文件")
                     for rel in lines if not rel.startswith("<") and rel not in s.bag.files]
    listed = set(s.manifests["sha256"])
    problems += [(rel, f"{rel} 未登记在 {MANIFESTS['sha256']} 中") for rel in s.payload if rel not in listed]
    problems += [(str(e.get("archival_code")), f"目录文件登记的 {e.get('file')} 不在信息包中")
                 for e in s.listing[0] if e.get("file") not in s.bag.files]
    if s.listing[1]:
        problems.append((ITEMS, s.listing[1]))
    yield from _each(problems, f"清单与目录文件登记的 {len(s.payload)} 个文件均在信息包中")


# --- 可用性 (usability) -------------------------------------------------------------------------------


@check("YJ-3-1", "信息包中元数据的可读性检测", Y, USE, CheckObject.METADATA)
def metadata_readable(s: TransferSubject) -> Iterator[Result]:
    problems = [(rel, p) for rel, p in ((REGISTER, s.register[1]), (ITEMS, s.listing[1])) if p]
    problems += [(e.code, e.problem) for e in s.eeps if e.problem and not e.meta]
    if s.text(BAG_INFO) is None:
        problems.append((BAG_INFO, "bag-info.txt 缺失或不是 UTF-8 文本"))
    yield from _each(problems, "登记表、目录文件与封装包元数据均可读")


@check("YJ-3-3", "内容数据格式检测", Y, USE, CheckObject.CONTENT)
def content_format(s: TransferSubject) -> Iterator[Result]:
    problems = [(e.code, f"{f.name}：格式{'无法识别' if f.media is None else f.media}，不在归档格式（PDF、OFD、JPEG、"
                 "TIFF、PNG）之内") for e in s.eeps for f in e.files
                if f.decoded and f.media not in ARCHIVAL_FORMATS]
    yield from _each(problems, "内容文件均为长期保存格式（按内容识别）")


@check("YJ-3-4", "内容数据的可读性检测", Y, USE, CheckObject.CONTENT)
def content_readable(s: TransferSubject) -> Iterator[Result]:
    problems = [(e.code, f"{f.name}：{f.problem or '没有页面'}") for e in s.eeps for f in e.files
                if f.decoded and f.media in ARCHIVAL_FORMATS and (f.problem or not f.pages)]
    yield from _each(problems, "内容文件均可打开")


@check("YJ-3-8", "信息包中包含的内容数据格式合规性检测", Y, USE, CheckObject.PACKAGE)
def no_encryption(s: TransferSubject) -> Iterator[Result]:
    problems = [(rel, f"{rel} 在 zip 中被加密") for rel in s.bag.encrypted]
    problems += [(e.code, f"{f.name} 已加密") for e in s.eeps for f in e.files if f.encrypted]
    yield from _each(problems, "信息包与内容文件均未加密")


# --- 安全性 (security) --------------------------------------------------------------------------------


@check("YJ-4-1", "系统环境中是否安装杀毒软件检测", Y, SEC, CheckObject.ENVIRONMENT, blocking=False)
def antivirus_present(s: TransferSubject) -> Result:
    scanner, why = s.virus_scan
    if scanner is None:
        return Result(Outcome.NOT_APPLICABLE, f"{why}，未做病毒检测")
    info = scanner.info()
    return _ok(f"{info.engine}（{info.kind}），病毒库 {info.database or '版本未知'}", kind=info.kind,
               engine=info.engine, database=info.database)


@check("YJ-4-2", "病毒感染检测", Y, SEC, CheckObject.CONTENT)
def virus(s: TransferSubject) -> Iterator[Result]:
    """Every payload file as it is in the package (EEPs carry content as Base64, which ClamAV decodes)
    and every content file decoded from the EEPs, in batches of up to SCAN_BATCH bytes."""
    scanner, why = s.virus_scan
    if scanner is None:
        yield Result(Outcome.NOT_APPLICABLE, f"{why}，未做病毒检测")
        return
    problems: list[tuple[str, str]] = []
    scanned = 0
    try:
        for batch in _scan_batches(s, problems):
            scanned += len(batch)
            problems += [(f.name, f"“{f.name}”感染病毒：{f.signature}") for f in scanner.scan(batch)]
    except ScanFailed as exc:
        yield Result(Outcome.ERROR, f"病毒扫描未能完成：{exc}")
        return
    yield from _each(problems, f"{scanned} 个文件未发现病毒")


SCAN_BATCH = 64 * 1024 * 1024


def _scan_batches(s: TransferSubject, problems: list[tuple[str, str]]) -> Iterator[list[tuple[str, bytes]]]:
    from signing.eep import EepInvalid, eep_files, parse_eep

    batch: list[tuple[str, bytes]] = []
    size = 0
    for rel in s.payload:
        try:
            data = s.bag.read(rel)
        except BagReadError as exc:
            problems.append((rel, str(exc)))
            continue
        files = [(rel, data)]
        if rel.startswith(EEP_DIR):
            with suppress(EepInvalid):  # unreadable EEPs are YJ-3-1's finding; the raw bytes are still scanned
                files += [(f"{rel}/{name}", body) for name, body in eep_files(parse_eep(data)).items()]
        for name, body in files:
            batch.append((name, body))
            size += len(body)
        if size >= SCAN_BATCH:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


@check("YJ-4-3", "载体中多余文件检测", Y, SEC, CheckObject.PACKAGE)
def extra_files(s: TransferSubject) -> Iterator[Result]:
    declared = set(s.manifests["sha256"]) | set(s.tag_manifest) | {TAG_MANIFEST}
    problems = [(rel, f"信息包中有未登记的文件 {rel}") for rel in sorted(s.bag.files)
                if rel not in declared and not rel.startswith("data/")]
    yield from _each(problems, "信息包中没有未登记的多余文件")


@check("YJ-4-4", "载体外观与读取检测", Y, SEC, CheckObject.CARRIER, blocking=False, manual=True)
def carrier(s: TransferSubject) -> Result:
    if s.carrier == "online":
        return Result(Outcome.NOT_APPLICABLE, "在线移交，不涉及离线载体")
    return Result(Outcome.MANUAL, "离线载体的外观、读取速度与光盘合格性须由接收人检查后登记")


@check("YJ-4-7", "移交过程安全性检测", Y, SEC, CheckObject.PROCESS, blocking=False)
def process_security(s: TransferSubject) -> Result:
    if s.side == "export":
        return _ok(f"信息包由已认证的 {s.actor} 在本系统内生成，操作记入审计日志，摘要记入目录")
    if not s.sender_digest:
        return Result(Outcome.MANUAL, "移交方未提供信息包摘要，须人工核对移交单上的摘要")
    if s.received is not None and s.sender_digest in (s.received.sha256, s.bag_digest):
        return _ok(f"由已认证的 {s.actor} 接收，与移交方提供的摘要一致，操作记入审计日志")
    return _fail("接收到的信息包与移交方提供的摘要不一致，传输过程中可能被改动")


def _date(text: str) -> date | None:
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except (TypeError, ValueError):
        return None
