"""First use (`archive init`): the first administrator, the signer and the time-stamp service, checked and summarised
in Chinese; and the signer check `archive serve` prints at start.

archive/cli.py's ``init`` calls :func:`prepare_signer`, :func:`ensure_admin` and :func:`check_signing`.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from archive import identity
from archive.catalogue.models import Role, User
from archive.commands.common import cli_actor
from archive.commands.console import err, out
from archive.context import Context
from archive.errors import ERRORS, InvalidInput, ServiceUnavailable
from archive.signer_status import describe, signer_status
from archive.wiring import signer_passphrase


def prepare_signer(ctx: Context) -> None:
    """Development without a configured signer: make (or keep) the development PKI, its signing key encrypted when
    a passphrase is configured. Production never gets one; a configured certificate or token is left alone."""
    settings = ctx.settings
    if settings.environment == "production":
        out.print("生产环境：不生成开发用证书")
        return
    if settings.signer != "file" or settings.signer_cert is not None:
        return
    from signing.certificates import ensure_dev_pki

    # the certificates name the CRL and OCSP that `archive tsa` serves at ARCHIVE_DEV_PKI_URL (PAdES B-LT)
    ensure_dev_pki(settings.pki_path, passphrase=signer_passphrase(settings), service_url=settings.dev_pki_url)
    out.print(f"开发用证书已就绪（仅供开发测试）：{settings.pki_path}")


def _password(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"无法读取管理员密码文件 {path}：{exc}", code="invalid_request",
                           detail={"field": "admin_password_file"}) from exc
    return lines[0] if lines else ""


def ensure_admin(ctx: Context, username: str | None, password_file: Path | None) -> None:
    """Create the first system administrator (role admin) unless one exists; a second run changes nothing."""
    if username is None and password_file is None:
        return
    if username is None or password_file is None:
        raise InvalidInput("创建首个系统管理员需要同时给出 --admin 与 --admin-password-file", code="invalid_request",
                           detail={"field": "admin" if username is None else "admin_password_file"})
    with ctx.catalogue.session() as s:
        existing = s.scalars(select(User.username).join(User.roles).where(Role.code == "admin")).all()
        if existing:
            out.print(f"已有系统管理员（{'、'.join(sorted(existing))}），未创建 {username}，未做任何修改")
            return
        user = identity.add_user(s, cli_actor(), username, _password(password_file), "系统管理员", ["admin"])
        out.print(f"已创建首个系统管理员 {user.username}（角色：系统管理员）")


def check_signing(ctx: Context) -> None:
    """Load and check the signer and probe the TSA; print a Chinese summary. A signer that cannot sign, or a required
    TSA that does not answer, raises (the command exits non-zero naming what to fix)."""
    status = signer_status(ctx)
    for line in describe(status):
        out.print(line)
    settings = ctx.settings
    if not settings.tsa_url:
        note = "未配置时间戳服务（ARCHIVE_TSA_URL）：签章为 PAdES B-B，不含可信时间"
        (err.print(f"[yellow]警告[/] {note}") if settings.environment == "production" else out.print(note))
        return
    from signing.tsa import probe_tsa

    try:
        probe_tsa(settings.tsa_url)
    except ERRORS as exc:
        if settings.tsa_required:
            raise ServiceUnavailable(
                f"时间戳服务 {settings.tsa_url} 无法使用：{exc.message}"
                "（ARCHIVE_TSA_REQUIRED=true 时没有时间戳不能签章）",
                code=exc.code, detail={"tsa_url": settings.tsa_url}) from exc
        err.print(f"[yellow]警告[/] 时间戳服务 {settings.tsa_url} 无法使用：{exc.message}；签章将降为 PAdES B-B")
        return
    out.print(f"时间戳服务可用：{settings.tsa_url}")


def report_signer_at_start(ctx: Context) -> None:
    """`archive serve`: load and check the signer (and probe the TSA) now, so a wrong PIN or certificate is reported
    at start, not at the first filing. The service still starts (and /readyz says not ready) so an operator can see
    why."""
    try:
        for line in describe(signer_status(ctx)):
            (err.print(f"[yellow]{line}[/]") if line.startswith("警告") else out.print(line))
    except ERRORS as exc:
        err.print(f"[bold red]签章不可用，归档将被拒绝[/] {exc.message}  [dim]({exc.code})[/]", highlight=False)
    if ctx.settings.tsa_url:
        from signing.tsa import probe_tsa

        try:
            probe_tsa(ctx.settings.tsa_url)
        except ERRORS as exc:
            fate = "归档将被拒绝" if ctx.settings.tsa_required else "签章将降为 PAdES B-B"
            err.print(f"[bold red]时间戳服务 {ctx.settings.tsa_url} 无法使用，{fate}[/] {exc.message}  "
                      f"[dim]({exc.code})[/]", highlight=False)
