"""The cheap check of a signature this system has just made (issue 17).

A full validation (signing.validate.verify_pdf: pyHanko's parse and path building, the CMS structure, PDF/A
again) answers "is this file, from anywhere, a valid signed archive?". Right after signing, the question is
narrower: did the bytes that leave the signer carry the signature it made? That is checked on the bytes:

- the last signature's /ByteRange covers the whole file except its /Contents hex string, nothing appended;
- /Contents is one CMS SignedData with one signer, whose embedded certificate is the signer's own;
- its messageDigest attribute is the SHA-256 of the byte range, and the signature value verifies over the
  signed attributes with the signer's public key;
- with a time stamp (B-T): the token's message imprint is the SHA-256 of that signature value, the token's
  own messageDigest is the digest of its TSTInfo, and the token's signature verifies with the TSA certificate
  it embeds (whether that TSA is trusted is the full validation's question, asked again at every re-check).

A changed byte anywhere in the file fails one of these. Filed items are re-checked with the full validation
(re-check, sweeps, 重新核验); this is only for the signature of the filing being built.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import pikepdf
from asn1crypto import cms, tsp
from asn1crypto import x509 as asn1_x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import load_der_x509_certificate


@dataclass(frozen=True)
class OwnSignature:
    """What the check found: ``problems`` empty means the signature is the signer's and covers the file."""

    problems: list[str]
    level: str | None = None  # B-B or B-T


def check_own_signature(data: bytes, signing_cert: asn1_x509.Certificate) -> OwnSignature:
    """Check the last signature of ``data`` against the certificate that made it (see the module doc)."""
    try:
        byte_range = _last_byte_range(data)
    except (pikepdf.PdfError, ValueError):
        return OwnSignature(["文件无法作为 PDF 读取，找不到签名（文件被改动）"])
    if byte_range is None:
        return OwnSignature(["文件没有电子签名"])
    if len(byte_range) != 4:
        return OwnSignature(["签名的 /ByteRange 无效"])
    start, len1, start2, len2 = byte_range
    end = start2 + len2
    if not (start == 0 and 0 < len1 < start2 and end == len(data)
            and data[len1:len1 + 1] == b"<" and data[start2 - 1:start2] == b">"):
        return OwnSignature(["签名的 /ByteRange 没有覆盖除 /Contents 外的整个文件（签章后文件被改动或追加了内容）"])
    hex_digits = data[len1 + 1:start2 - 1]
    try:
        contents = bytes.fromhex(hex_digits.decode("ascii"))
        signed = cms.ContentInfo.load(contents, strict=False)["content"]
        infos = signed["signer_infos"]
    except (ValueError, TypeError, KeyError, UnicodeDecodeError):
        return OwnSignature(["签名的 /Contents 不是可解析的签名结构（被改动）"])
    if len(infos) != 1:
        return OwnSignature([f"签名应有 1 个签署者，实有 {len(infos)} 个"])
    info = infos[0]
    problems = _signer_problems(signed, info, signing_cert)
    covered = _sha256(data, (start, len1), (start2, end))
    if _message_digest(info) != covered:
        problems.append("签名中的摘要与签名覆盖的字节不一致（文件被改动）")
    if not problems and not _verifies(load_der_x509_certificate(signing_cert.dump()).public_key(), info):
        problems.append("签名值无法用签章证书的公钥验证（签名被改动）")
    token = _timestamp_token(info)
    if token is not None:
        problems += _token_problems(token, info["signature"].native)
    return OwnSignature(problems, "B-T" if token is not None else "B-B")


def last_signature(data: bytes) -> tuple[str, cms.SignedData] | None:
    """The field name and CMS SignedData of the last signature of a file this system has just signed, read from
    the bytes (pyHanko's reader parses the /Contents hex string in Python, ~30 ms a file). None: no signature.
    Raises ValueError when it cannot be read; only for files whose signature was just made (no checking here:
    :func:`check_own_signature` checks)."""
    fields = _fields(data)
    return _signed_data(data, fields.signed[-1]) if fields.signed else None


def only_signature(data: bytes) -> tuple[str, cms.SignedData] | None:
    """:func:`last_signature` of a file whose one signature is all a PAdES level counts: exactly one signed field,
    no document time stamp, no /DSS (what pyHanko's reader would find, from the same structure). None when the file
    carries more, or nothing; ValueError when it cannot be read."""
    fields = _fields(data)
    if fields.dss or fields.doc_timestamps or len(fields.signed) != 1:
        return None
    return _signed_data(data, fields.signed[0])


@dataclass(frozen=True)
class _Fields:
    signed: list[tuple[str, tuple[int, ...]]]  # (name, /ByteRange) of each signed field, in form order
    doc_timestamps: int
    dss: bool


def _fields(data: bytes) -> _Fields:
    try:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            return _form_fields(pdf)
    except pikepdf.PdfError as exc:
        raise ValueError("not a PDF") from exc


def _form_fields(pdf: pikepdf.Pdf) -> _Fields:
    """The signature fields holding a value, in the form's field tree (kids included), in one reading."""
    form = pdf.Root.get("/AcroForm")
    todo = list(form.get("/Fields", pikepdf.Array())) if isinstance(form, pikepdf.Dictionary) else []
    signed, stamps, seen = [], 0, set()
    while todo:
        field = todo.pop(0)
        if not isinstance(field, pikepdf.Dictionary) or (field.is_indirect and field.objgen in seen):
            continue
        if field.is_indirect:
            seen.add(field.objgen)
        todo[:0] = list(field.get("/Kids", pikepdf.Array()))
        value = field.get("/V")
        if field.get("/FT") == pikepdf.Name.Sig and isinstance(value, pikepdf.Dictionary):
            signed.append((str(field.get("/T", "")), tuple(int(v) for v in value.get("/ByteRange", pikepdf.Array()))))
            stamps += value.get("/Type") == pikepdf.Name.DocTimeStamp
    return _Fields(signed, stamps, "/DSS" in pdf.Root)


def _signed_data(data: bytes, field: tuple[str, tuple[int, ...]]) -> tuple[str, cms.SignedData]:
    name, (_start, len1, start2, _len2) = field
    contents = bytes.fromhex(data[len1 + 1:start2 - 1].decode("ascii"))
    return name, cms.ContentInfo.load(contents, strict=False)["content"]


def _last_byte_range(data: bytes) -> tuple[int, ...] | None:
    """The /ByteRange of the last signature field's value (None: no signature)."""
    signed = _fields(data).signed
    return signed[-1][1] if signed else None


def _sha256(data: bytes, *spans: tuple[int, int]) -> bytes:
    """SHA-256 of the spans of ``data``, hashed in place: slicing and joining them copied the file three times,
    which took longer than the hashing (a 30-page rendition: 8 ms of 14)."""
    h, view = hashlib.sha256(), memoryview(data)
    for start, end in spans:
        h.update(view[start:end])
    return h.digest()


def _signer_problems(signed: cms.SignedData, info: cms.SignerInfo, cert: asn1_x509.Certificate) -> list[str]:
    embedded = [c.chosen for c in signed["certificates"] or [] if c.name == "certificate"]
    if not any(c.dump() == cert.dump() for c in embedded):
        return ["签名中没有嵌入本系统的签章证书"]
    sid = info["sid"].chosen
    if isinstance(sid, cms.IssuerAndSerialNumber):
        ok = sid["serial_number"].native == cert.serial_number and sid["issuer"].dump() == cert.issuer.dump()
    else:
        ok = sid.native == cert.key_identifier
    return [] if ok else ["签名的签署者标识不是本系统的签章证书"]


def _attribute(attrs: cms.CMSAttributes | None, name: str) -> object:
    for attr in attrs or []:
        if attr["type"].native == name:
            return attr["values"][0]
    return None


def _message_digest(info: cms.SignerInfo) -> bytes | None:
    value = _attribute(info["signed_attrs"], "message_digest")
    return value.native if value is not None else None  # type: ignore[attr-defined]


def _verifies(key: object, info: cms.SignerInfo) -> bool:
    """The signer's signature value over its signed attributes, with ``key`` (ECDSA or RSA, SHA-256 family)."""
    algo = hashes.SHA512() if info["digest_algorithm"]["algorithm"].native == "sha512" else hashes.SHA256()
    signed_attrs = info["signed_attrs"].untag().dump()  # signed as a SET OF, not with its [0] tag
    value = info["signature"].native
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(value, signed_attrs, ec.ECDSA(algo))
        elif isinstance(key, rsa.RSAPublicKey):
            if info["signature_algorithm"].signature_algo == "rsassa_pss":
                params = info["signature_algorithm"]["parameters"]
                key.verify(value, signed_attrs, padding.PSS(padding.MGF1(algo), params["salt_length"].native),
                           algo)
            else:
                key.verify(value, signed_attrs, padding.PKCS1v15(), algo)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, KeyError):
        return False
    return True


def _timestamp_token(info: cms.SignerInfo) -> cms.ContentInfo | None:
    value = _attribute(info["unsigned_attrs"], "signature_time_stamp_token")
    return value if isinstance(value, cms.ContentInfo) else None


def _token_problems(token: cms.ContentInfo, signature_value: bytes) -> list[str]:
    try:
        signed = token["content"]
        tst_der = signed["encap_content_info"]["content"].parsed.dump()
        tst = tsp.TSTInfo.load(tst_der)
        imprint = tst["message_imprint"]
        algorithm = imprint["hash_algorithm"]["algorithm"].native
        expected = hashlib.new(algorithm, signature_value).digest()
        token_info = signed["signer_infos"][0]
        token_digest = _message_digest(token_info)
        digest_algo = token_info["digest_algorithm"]["algorithm"].native
        tsa_key = _signer_key(signed, token_info)
    except (ValueError, TypeError, KeyError, IndexError):
        return ["时间戳无法解析（被改动）"]
    problems = []
    if imprint["hashed_message"].native != expected:
        problems.append("时间戳不是对本签名值加盖的（消息摘要不一致）")
    if token_digest != hashlib.new(digest_algo, tst_der).digest():
        problems.append("时间戳内容与其摘要不一致（时间戳被改动）")
    elif tsa_key is None or not _verifies(tsa_key, token_info):
        problems.append("时间戳的签名无法用时间戳服务的证书验证（时间戳被改动）")
    return problems


def _signer_key(signed: cms.SignedData, info: cms.SignerInfo) -> object | None:
    """The public key of the embedded certificate ``info`` names (None: not embedded)."""
    sid = info["sid"].chosen
    for choice in signed["certificates"] or []:
        cert = choice.chosen
        if choice.name != "certificate":
            continue
        if isinstance(sid, cms.IssuerAndSerialNumber):
            match = sid["serial_number"].native == cert.serial_number and sid["issuer"].dump() == cert.issuer.dump()
        else:
            match = sid.native == cert.key_identifier
        if match:
            return load_der_x509_certificate(cert.dump()).public_key()
    return None
