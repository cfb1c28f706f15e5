"""The signer's state for /readyz, `archive init` and `archive serve`: loaded and checked once
(archive.wiring.build_signer), its certificate's validity re-checked on every call (it may expire while the process
runs)."""

from __future__ import annotations

from typing import Any

from archive.context import Context
from archive.errors import ERRORS, ServiceUnavailable
from archive.wiring import signer_setting

BACKENDS = {"file": "证书文件", "dev": "开发用证书（仅供开发测试）", "pkcs11": "PKCS#11 密码设备"}


def signer_status(ctx: Context) -> dict[str, Any]:
    """``{backend, subject, not_after, key_encrypted, warnings}``; ServiceUnavailable with the problem's code and a
    Chinese message when the signer cannot sign."""
    from signing.certificates import load_trust_roots
    from signing.keys import verify_signer

    signer = ctx.signer
    info = ctx.signer_info
    try:
        verify_signer(signer, load_trust_roots(ctx.settings.pki_path), info, check_key=False)
    except ERRORS as exc:
        raise ServiceUnavailable(f"签章证书不可用：{exc.message}（{signer_setting(ctx.settings)}）", code=exc.code,
                                 detail=exc.detail) from exc
    cert = signer.certificate
    return {"backend": info.backend, "subject": cert.subject.rfc4514_string(),
            "not_after": cert.not_valid_after_utc.isoformat(), "key_encrypted": info.key_encrypted,
            "warnings": list(info.warnings)}


def describe(status: dict[str, Any]) -> list[str]:
    """Chinese lines summarising a signer_status for a person."""
    lines = [f"签章密钥：{BACKENDS.get(status['backend'], status['backend'])}",
             f"签章证书：{status['subject']}，有效期至 {status['not_after'][:10]}"]
    if status["key_encrypted"] is not None:
        lines.append("私钥文件：" + ("已加密" if status["key_encrypted"] else "未加密"))
    lines += [f"警告：{w}" for w in status["warnings"]]
    return lines
