"""The signer's state for /readyz, `archive init` and `archive serve`: loaded and checked once
(archive.wiring.build_signer), its certificate's validity re-checked on every call (it may expire while the process
runs).

`archive serve` checks the signer in the background once its socket listens (:class:`BackgroundCheck`: loading the
signing libraries and the key took ~1.3 s of a 6 s start-up). Until that check has finished /readyz (and the
administrator's readiness page) say ``signer_checking``, not ready; a filing meanwhile waits for the same load
(Context.signer holds its lock while loading) and is refused as before when the signer cannot sign; the check's
result, good or bad, is printed as it was at start.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from archive.context import Context
from archive.errors import ERRORS, ServiceUnavailable
from archive.wiring import signer_setting

log = logging.getLogger(__name__)

CHECKING = "签章证书检查中（服务刚启动，正在加载并核验签章证书），请稍候"

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


def checking(ctx: Context) -> bool:
    """A background check of the signer (:class:`BackgroundCheck`) is under way."""
    done = ctx.signer_check
    return done is not None and not done.is_set()


def readiness(ctx: Context) -> dict[str, Any]:
    """The signer part of /readyz: ServiceUnavailable ``signer_checking`` while the start-up check runs, then
    :func:`signer_status`."""
    if checking(ctx):
        raise ServiceUnavailable(CHECKING, code="signer_checking")
    return signer_status(ctx)


class BackgroundCheck:
    """The start-up check of the signer, run in a thread once the service listens.

    Made (``ctx.signer_check`` set: /readyz answers ``signer_checking``) before the app is built, started after the
    socket listens; ``report`` loads and checks the signer and prints what it found (a failure is printed, never
    raised: the service keeps running so an operator can see why it is not ready).
    """

    def __init__(self, ctx: Context, report: Callable[[Context], None]) -> None:
        self.ctx = ctx
        self.report = report
        self.done = threading.Event()
        ctx.signer_check = self.done
        self.thread: threading.Thread | None = None

    def start(self) -> threading.Thread:
        self.thread = threading.Thread(target=self._run, name="signer-check", daemon=True)
        self.thread.start()
        return self.thread

    def _run(self) -> None:
        try:
            self.report(self.ctx)
        except Exception:  # the report prints the signer's problems itself; anything else must not pass silently
            log.exception("signer check at start failed")
        finally:
            self.done.set()


def describe(status: dict[str, Any]) -> list[str]:
    """Chinese lines summarising a signer_status for a person."""
    lines = [f"签章密钥：{BACKENDS.get(status['backend'], status['backend'])}",
             f"签章证书：{status['subject']}，有效期至 {status['not_after'][:10]}"]
    if status["key_encrypted"] is not None:
        lines.append("私钥文件：" + ("已加密" if status["key_encrypted"] else "未加密"))
    lines += [f"警告：{w}" for w in status["warnings"]]
    return lines
