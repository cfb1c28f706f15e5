"""DA/T 48-2009 electronic-file encapsulation packages (EEP, 基于XML的电子文件封装包): build and verify.

A package (原始型) holds one archival item's metadata (文件实体), its files as Base64 (编码数据),
the business actions (业务实体) and the agents (机构人员实体), all inside ``被签名对象``, followed by
a signature block. The signature rule is fixed and written into ``签名规则``: the ``被签名对象``
element canonicalised with inclusive C14N 1.0 without comments, as UTF-8, signed with SHA-256 by
the center's key (RSA PKCS#1 v1.5 or ECDSA); ``签名算法标识`` holds the algorithm's OID.
SM2 signatures are not produced (no SM2 in the installed cryptography library).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from lxml import etree

from signing.certificates import KeySigner, check_signing_certificate
from signing.eep_schema import NAMESPACE, schema
from signing.errors import CertificateProblem, EepInvalid
from signing.fixity import Digests, digest_bytes
from signing.validate import VerificationReport

if TYPE_CHECKING:
    from signing.keys import HsmSigner  # pkcs11: loaded only when a token is configured

FORMAT_DESCRIPTION = "本EEP根据中华人民共和国档案行业标准DA/T 48-2009《基于XML的电子文件封装规范》生成"
ORIGINAL_DESCRIPTION = "本封装包包含电子文件数据及其元数据，原始封装，未经修改"
ENCODING_DESCRIPTION = (
    "本封装包中“编码数据”元素存储的是计算机文件二进制流的Base64编码，有关Base64编码规则参见"
    "IETF RFC 2045 多用途邮件扩展（MIME）第一部分：因特网信息体格式。当提取和显现封装在编码数据元素中的计算机文件时，"
    "应对Base64编码进行反编码，并依据反编码关键字元素中记录的值还原计算机文件的扩展名")
SIGNATURE_RULE = ("对“被签名对象”元素按 Canonical XML 1.0（不含注释，http://www.w3.org/TR/2001/REC-xml-c14n-20010315）"
                  "规范化后的 UTF-8 字节计算 SHA-256 摘要并签名；签名结果为 Base64 编码")
ALGORITHMS = {"1.2.840.113549.1.1.11": "sha256WithRSAEncryption", "1.2.840.10045.4.3.2": "ecdsa-with-SHA256"}
_RSA_SHA256, _ECDSA_SHA256 = "1.2.840.113549.1.1.11", "1.2.840.10045.4.3.2"
BEIJING = dt.timezone(dt.timedelta(hours=8), "CST")


def _q(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"


@dataclass(frozen=True)
class EepFile:
    """One computer file of the item (the signed rendition, an original …)."""

    name: str  # 计算机文件名, with its extension
    data: bytes
    media_type: str = "application/pdf"  # 格式信息
    title: str = ""  # 文档题名
    main: bool = True  # 主文档, else 附属文档
    creator_program: str = ""  # 文档创建程序


@dataclass(frozen=True)
class EepAgent:
    """机构人员实体: the center, a department or a person."""

    id: str
    name: str
    kind: Literal["单位", "内设机构", "个人"] = "单位"
    code: str = ""  # 组织机构代码 (统一社会信用代码)
    position: str = ""  # 个人职位


@dataclass(frozen=True)
class EepAction:
    """业务实体: something an agent did to the file (受理, 办结, 归档 …)."""

    id: str
    agent_id: str
    action: str
    time: dt.datetime
    basis: str = ""  # 行为依据
    description: str = ""  # 行为描述


@dataclass(frozen=True)
class EepRecord:
    """文件实体 metadata of one archival item."""

    archival_code: str  # 档号 as allocated, e.g. J001-YW·2024-D30-TQ-000017
    fonds_code: str  # 全宗号
    year: int  # 年度
    retention: str  # 保管期限
    item_number: int  # 室编件号
    title: str  # 题名
    responsible: str  # 责任者
    date: dt.date  # 日期
    unit_name: str  # 立档单位名称
    carriers: Sequence[str]  # 脱机载体编号: where the files are kept (object-store keys)
    agents: Sequence[EepAgent]
    actions: Sequence[EepAction]
    fonds_name: str = ""  # 全宗名称
    category: str = ""  # 机构或问题 (the business category, e.g. TQ)
    electronic_file_id: str = ""  # 电子文件号; default: the 档号
    security: str = "内部"  # 密级
    keywords: str = ""  # 关键词
    pages: int | None = None  # 页数
    notes: Sequence[str] = field(default_factory=tuple)  # 附注


# --- building --------------------------------------------------------------------------------------


def _add(parent: etree._Element, name: str, text: object = None, **attrs: str) -> etree._Element:
    element = etree.SubElement(parent, _q(name), {k: v for k, v in attrs.items()})
    if text is not None:
        element.text = str(text)
    return element


def _add_optional(parent: etree._Element, name: str, text: object) -> None:
    if text not in (None, ""):
        _add(parent, name, text)


def _file_entity(parent: etree._Element, record: EepRecord, files: Sequence[EepFile]) -> None:
    entity = _add(parent, "文件实体")
    _add(entity, "聚合层次", "文件")
    source = _add(entity, "来源")
    _add_optional(source, "全宗名称", record.fonds_name)
    _add(source, "立档单位名称", record.unit_name)
    _add(entity, "电子文件号", record.electronic_file_id or record.archival_code)
    code = _add(entity, "档号")
    _add(code, "全宗号", record.fonds_code)
    _add(code, "年度", f"{record.year:04d}")
    _add(code, "保管期限", record.retention)
    _add_optional(code, "机构或问题", record.category)
    _add(code, "室编件号", record.item_number)
    content = _add(entity, "内容描述")
    _add(content, "题名", record.title)
    _add_optional(content, "关键词", record.keywords)
    _add(content, "责任者", record.responsible)
    _add(content, "日期", record.date.isoformat())
    _add(content, "密级", record.security)
    form = _add(entity, "形式特征")
    _add(form, "文件组合类型", "单件" if len(files) == 1 else "组合文件")
    _add_optional(form, "页数", record.pages)
    _add(form, "语种", "汉语")
    storage = _add(entity, "存储位置")
    for carrier in record.carriers:
        _add(storage, "脱机载体编号", carrier)
    _add(entity, "权限管理")
    for note in record.notes:
        _add(entity, "附注", note)
    data = _add(entity, "文件数据")
    for n, f in enumerate(files, 1):
        document = _add(data, "文档")
        _add(document, "文档标识符", f"D{n}")
        _add(document, "文档序号", n)
        _add(document, "文档主从声明", "主文档" if f.main else "附属文档")
        _add_optional(document, "题名", f.title)
        document_data = _add(document, "文档数据", 文档数据ID=f"D{n}-1")
        encoding = _add(document_data, "编码", 编码ID=f"E{n}")
        electronic = _add(encoding, "电子属性")
        _add(electronic, "格式信息", f.media_type)
        _add(electronic, "计算机文件名", f.name)
        _add(electronic, "计算机文件大小", len(f.data))
        _add_optional(electronic, "文档创建程序", f.creator_program)
        _add(encoding, "编码描述", ENCODING_DESCRIPTION)
        _add(encoding, "反编码关键字", f.name.rpartition(".")[2] if "." in f.name else "bin")
        _add(encoding, "编码数据", "\n" + base64.encodebytes(f.data).decode("ascii"), 编码数据ID=f"B{n}")


def _business(parent: etree._Element, record: EepRecord) -> None:
    block = _add(parent, "业务实体块")
    for action in record.actions:
        entity = _add(block, "业务实体")
        _add(entity, "业务标识符", action.id)
        _add(entity, "机构人员标识符", action.agent_id)
        _add(entity, "文件标识符", record.electronic_file_id or record.archival_code)
        _add(entity, "业务状态", "历史行为")
        _add(entity, "业务行为", action.action)
        _add(entity, "行为时间", action.time.isoformat(timespec="seconds"))
        _add_optional(entity, "行为依据", action.basis)
        _add_optional(entity, "行为描述", action.description)
    agents = _add(parent, "机构人员实体块")
    for agent in record.agents:
        entity = _add(agents, "机构人员实体")
        _add(entity, "机构人员标识符", agent.id)
        _add(entity, "机构人员类型", agent.kind)
        _add(entity, "机构人员名称", agent.name)
        _add_optional(entity, "组织机构代码", agent.code)
        _add_optional(entity, "个人职位", agent.position)


def canonical_signed_object(root: etree._Element) -> bytes:
    """The bytes the signature covers: C14N 1.0 (no comments) of ``被签名对象``."""
    signed = root.find(_q("被签名对象"))
    if signed is None:
        raise EepInvalid("封装包中没有“被签名对象”", code="eep_invalid")
    return etree.tostring(signed, method="c14n", exclusive=False, with_comments=False)


def build_eep(record: EepRecord, files: Sequence[EepFile], signer: KeySigner | HsmSigner, *,
              created: dt.datetime | None = None, creator_unit: str | None = None) -> bytes:
    """An original (原始型) EEP of one item's files and metadata, signed by the center's key."""
    if not files:
        raise EepInvalid("封装包至少要有一个文件", code="eep_no_files")
    if not record.carriers or not record.agents or not record.actions:
        raise EepInvalid("封装包需要存储位置（脱机载体编号）、机构人员和业务行为", code="eep_incomplete")
    signing_cert = signer.certificate
    check_signing_certificate(signing_cert)
    created = created or dt.datetime.now(dt.UTC).replace(microsecond=0)
    root = etree.Element(_q("电子文件封装包"), nsmap={None: NAMESPACE})
    _add(root, "封装包格式描述", FORMAT_DESCRIPTION)
    _add(root, "版本", "2009")
    signed = _add(root, "被签名对象", eep版本="2009")
    _add(signed, "封装包类型", "原始型")
    _add(signed, "封装包类型描述", ORIGINAL_DESCRIPTION)
    _add(signed, "封装包创建时间", created.isoformat(timespec="seconds"))
    _add(signed, "封装包创建单位", creator_unit or record.unit_name)
    content = _add(signed, "封装内容")
    _file_entity(_add(content, "文件实体块"), record, files)
    _business(content, record)

    algorithm = signer.get_signature_mechanism_for_digest("sha256")["algorithm"].dotted
    if algorithm not in ALGORITHMS:
        raise CertificateProblem(f"封装包签名不支持算法 {algorithm}", code="certificate_wrong_usage")
    value = signer.sign_raw(canonical_signed_object(root), "sha256")
    block = _add(_add(root, "电子签名块"), "电子签名")
    _add(block, "签名标识符", "S1")
    _add(block, "签名规则", SIGNATURE_RULE)
    _add(block, "签名时间", dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat())
    _add(block, "签名人", signing_cert.subject.rfc4514_string())
    _add(block, "签名结果", base64.b64encode(value).decode("ascii"))
    certs = _add(block, "证书块")
    for cert in [signer.signing_cert, *(signer.cert_registry or ())]:
        _add(certs, "证书", base64.b64encode(cert.dump()).decode("ascii"))
    _add(block, "签名算法标识", algorithm)

    if not schema().validate(root):
        raise EepInvalid("生成的封装包不符合 DA/T 48 结构：" + str(schema().error_log.last_error),
                         detail=[str(e) for e in schema().error_log])
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


# --- reading and verifying -------------------------------------------------------------------------

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True, remove_comments=False)


def parse_eep(data: bytes) -> etree._Element:
    try:
        return etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise EepInvalid(f"封装包不是合法的 XML：{exc}", code="eep_unreadable") from exc


def eep_files(root: etree._Element) -> dict[str, bytes]:
    """The files inside a package, by 计算机文件名 (decoded from Base64)."""
    files = {}
    for encoding in root.iter(_q("编码")):
        name = encoding.findtext(f"{_q('电子属性')}/{_q('计算机文件名')}") or ""
        raw = encoding.findtext(_q("编码数据")) or ""
        try:
            files[name] = base64.b64decode("".join(raw.split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise EepInvalid(f"文件“{name}”的编码数据不是合法的 Base64", code="eep_bad_encoding") from exc
    return files


def _verify_value(cert: x509.Certificate, value: bytes, data: bytes, algorithm: str) -> bool:
    key = cert.public_key()
    try:
        if algorithm == _RSA_SHA256 and isinstance(key, rsa.RSAPublicKey):
            key.verify(value, data, padding.PKCS1v15(), hashes.SHA256())
        elif algorithm == _ECDSA_SHA256 and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(value, data, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _chain_to_root(cert: x509.Certificate, pool: Sequence[x509.Certificate], roots: Sequence[x509.Certificate],
                   at: dt.datetime) -> str | None:
    """None when ``cert`` chains to a trust root through ``pool`` with every certificate valid at ``at``."""
    current = cert
    for _ in range(8):
        if not current.not_valid_before_utc <= at <= current.not_valid_after_utc:
            return f"证书 {current.subject.rfc4514_string()} 在签名时不在有效期内"
        for root in roots:
            if _issued(current, root):
                return None
        issuers = [c for c in pool if c != current and _issued(current, c)]
        if not issuers:
            return f"证书 {current.subject.rfc4514_string()} 不能验证到信任的根证书"
        current = issuers[0]
    return "证书链过长"


def _issued(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def verify_eep(data: bytes, trust_roots: Sequence[x509.Certificate],
               expected: Mapping[str, Digests] | None = None) -> VerificationReport:
    """Verify a package: DA/T 48 structure, each signature and its certificate chain, the files' sizes,
    and their digests against the catalogue (``expected`` by 计算机文件名).

    Checks: readable, schema, package_type, signature_present, signature_valid, certificate_trusted,
    files, file_fixity.
    """
    report = VerificationReport(digests=digest_bytes(data))
    try:
        root = parse_eep(data)
    except EepInvalid as exc:
        report.add("readable", False, exc.message)
        return report
    report.add("readable", True, "封装包是合法的 XML")
    valid = schema().validate(root)
    report.add("schema", valid, "符合 DA/T 48-2009 封装包结构" if valid else
               "不符合 DA/T 48-2009 封装包结构：" + "；".join(str(e.message) for e in list(schema().error_log)[:3]))
    kind = root.findtext(f"{_q('被签名对象')}/{_q('封装包类型')}")
    report.add("package_type", kind == "原始型",
               f"封装包类型：{kind}" + ("" if kind == "原始型" else "（暂只支持原始型）"))
    _check_signatures(report, root, trust_roots)
    _check_files(report, root, expected)
    return report


def _check_signatures(report: VerificationReport, root: etree._Element, roots: Sequence[x509.Certificate]) -> None:
    signatures = list(root.iter(_q("电子签名")))
    report.add("signature_present", bool(signatures), f"封装包有 {len(signatures)} 个电子签名" if signatures
               else "封装包没有电子签名")
    try:
        signed_bytes = canonical_signed_object(root)
    except EepInvalid as exc:
        report.add("signature_valid", False, exc.message)
        return
    for element in signatures:
        name = element.findtext(_q("签名标识符")) or "?"
        algorithm = element.findtext(_q("签名算法标识")) or ""
        try:
            value = base64.b64decode(element.findtext(_q("签名结果")) or "", validate=True)
            certs = [x509.load_der_x509_certificate(base64.b64decode(c.text or "", validate=True))
                     for c in element.iter(_q("证书"))]
        except (binascii.Error, ValueError) as exc:
            report.add("signature_valid", False, f"签名结果或证书无法解码：{exc}", name)
            continue
        if not certs:
            report.add("signature_valid", False, "签名没有附带证书", name)
            continue
        ok = _verify_value(certs[0], value, signed_bytes, algorithm)
        report.add("signature_valid", ok, f"签名正确（{ALGORITHMS.get(algorithm, algorithm)}）" if ok else
                   f"签名不正确：被签名对象已被改动，或算法 {algorithm} 不受支持", name)
        when = _signing_time(element.findtext(_q("签名时间")))
        problem = _chain_to_root(certs[0], certs[1:], roots, when)
        if problem is None:
            try:
                check_signing_certificate(certs[0], when)
            except CertificateProblem as exc:
                problem = exc.message
        report.add("certificate_trusted", problem is None, problem or
                   f"证书链可信：{certs[0].subject.rfc4514_string()}", name)
        report.signer = report.signer or certs[0].subject.rfc4514_string()
        report.signing_time = report.signing_time or when


def _signing_time(text: str | None) -> dt.datetime:
    """签名时间 as an aware datetime; a time without zone is taken as Beijing time; none means now."""
    try:
        when = dt.datetime.fromisoformat(text) if text else dt.datetime.now(dt.UTC)
    except ValueError:
        return dt.datetime.now(dt.UTC)
    return when if when.tzinfo else when.replace(tzinfo=BEIJING)


def _check_files(report: VerificationReport, root: etree._Element, expected: Mapping[str, Digests] | None) -> None:
    try:
        files = eep_files(root)
    except EepInvalid as exc:
        report.add("files", False, exc.message)
        return
    sizes = {e.findtext(_q("计算机文件名")): e.findtext(_q("计算机文件大小")) for e in root.iter(_q("电子属性"))}
    wrong = [name for name, body in files.items() if str(len(body)) != sizes.get(name)]
    report.add("files", bool(files) and not wrong, f"{len(files)} 个文件可以还原，大小与记录一致" if not wrong
               else f"文件大小与记录不一致：{'、'.join(wrong)}")
    if expected is None:
        report.add("file_fixity", True, "未提供目录中各文件的摘要")
        return
    mismatched = [n for n, d in expected.items() if n not in files or digest_bytes(files[n]) != d]
    report.add("file_fixity", not mismatched, "文件摘要与目录一致" if not mismatched else
               f"文件摘要与目录不一致或缺少文件：{'、'.join(mismatched)}")
