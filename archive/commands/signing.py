"""Commands ``archive tsa`` (local development TSA) and ``archive verify FILE`` (print a verification report).

archive/cli.py registers ``tsa`` and ``verify`` as top-level commands.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from archive.errors import ERRORS
from archive.settings import get_settings

if TYPE_CHECKING:
    from signing.ltv_verify import LtvReport
    from signing.validate import VerificationReport

# The signing stack (pyhanko, pikepdf, …) is imported inside the commands, so `archive --help` starts fast.

app = typer.Typer(help="签章与验证：时间戳服务、验证签章文件。", no_args_is_help=True)


def _pki_dir(pki_dir: Path | None) -> Path:
    return pki_dir or get_settings().pki_path


@app.command()
def tsa(host: str = typer.Option("127.0.0.1", help="监听地址。"),
        port: int = typer.Option(3161, help="监听端口（0：任一空闲端口）。"),
        pki_dir: Path | None = typer.Option(None, help="证书目录；默认 <data_dir>/pki。")) -> None:
    """运行本地 RFC 3161 时间戳服务，仅供开发和测试（不可用于生产）。"""
    from signing.certificates import ensure_dev_pki
    from signing.tsa import LocalTsa

    console = Console(stderr=True)
    try:
        server = LocalTsa(ensure_dev_pki(_pki_dir(pki_dir)), host, port)
    except (*ERRORS, OSError) as exc:
        console.print(f"[red]无法启动时间戳服务：{getattr(exc, 'message', exc)}[/red]")
        raise typer.Exit(1) from exc
    console.print(f"本地时间戳服务（仅供开发测试）: {server.url}  设置 ARCHIVE_TSA_URL={server.url}  按 Ctrl+C 停止")
    from signing.certificates import dev_service_url

    named = dev_service_url(_pki_dir(pki_dir))
    if named:
        where = "" if named.rstrip("/") == server.url.rstrip("/") else f"；但证书指向 {named}，请在该端口运行"
        console.print(f"同时提供开发 CA 的吊销信息：CRL {server.url}crl，OCSP {server.url}ocsp{where}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        console.print("已停止")


def print_report(report: VerificationReport, console: Console, title: str) -> None:
    """Print a verification report as a table."""
    from signing.validate import NO_TIMESTAMP

    table = Table(title=title, show_lines=False)
    table.add_column("检查项 check")
    table.add_column("结果")
    table.add_column("说明")
    for check in report.checks:
        name = check.name if not check.signature else f"{check.name} [{check.signature}]"
        result = {"passed": "[green]通过[/green]", "absent": "[yellow]无[/yellow]"}.get(check.status,
                                                                                     "[red]未通过[/red]")
        table.add_row(name, result, check.detail)
    console.print(table)
    if report.level:
        console.print(f"签章级别 PAdES {report.level}；签章人：{report.signer}；"
                      f"签章时间：{report.signing_time:%Y-%m-%d %H:%M:%S %Z}" if report.signing_time else "")
    if report.digests:
        d = report.digests
        console.print(f"SHA-256 {d.sha256}\nSM3     {d.sm3}\n大小    {d.size} 字节")
    if report.ok:
        note = "（PAdES B-B：" + NO_TIMESTAMP + "）" if report.level == "B-B" else ""
        console.print("[bold green]验证通过[/bold green]" + note)
    else:
        console.print("[bold red]验证未通过：[/bold red]" + "、".join(c.name for c in report.failures))


@app.command()
def verify(file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                       help="签章的 PDF，或 DA/T 48 EEP 信息包。"),
           trust: list[Path] = typer.Option(
               [], help="信任的根证书（PEM），可重复；默认：证书目录中的根证书。"),
           pki_dir: Path | None = typer.Option(None, help="证书目录；默认 <data_dir>/pki。"),
           sha256: str | None = typer.Option(None, help="目录中登记的 SHA-256。"),
           sm3: str | None = typer.Option(None, help="目录中登记的 SM3。"),
           size: int | None = typer.Option(None, help="目录中登记的大小（字节）。"),
           require_timestamp: bool = typer.Option(False, help="没有 RFC 3161 时间戳的签章判为不通过。"),
           as_json: bool = typer.Option(False, "--json", help="以 JSON 输出报告。"),
           at: datetime | None = typer.Option(None, "--at", formats=["%Y-%m-%d"],
                                              help="长期验证的时间点（如 2056-01-01）；给出时只用文件自带的"
                                                   "验证数据离线验证（签章、签章时可信、时间戳、验证数据、"
                                                   "归档时间戳链、PDF/A），默认也在现在做一次。")) -> None:
    """验证签章的 PDF（签名、证书链、时间戳、覆盖范围、PDF/A-2b、固定性）或 EEP 信息包；未通过时退出码 1。"""
    from signing.certificates import load_certificates, load_trust_roots
    from signing.eep import verify_eep
    from signing.fixity import Digests
    from signing.validate import check_fixity, verify_pdf

    console = Console()
    try:
        roots = [c for p in trust for c in load_certificates(p)] if trust else load_trust_roots(_pki_dir(pki_dir))
    except ERRORS as exc:
        Console(stderr=True).print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from exc
    data = file.read_bytes()
    expected = None
    if sha256 or sm3:
        if not (sha256 and sm3):
            Console(stderr=True).print("[red]请同时给出 --sha256 与 --sm3[/red]")
            raise typer.Exit(2)
        expected = Digests(sha256, sm3, size if size is not None else len(data))
    if data.lstrip()[:1] == b"<":  # a DA/T 48 encapsulation package
        report = verify_eep(data, roots)
        check_fixity(report, report.digests, expected)  # type: ignore[arg-type]  # verify_eep sets digests
    else:
        report = verify_pdf(data, roots, expected, require_timestamp=require_timestamp)
    long_term = None
    if data.lstrip()[:1] != b"<":
        from signing.ltv_verify import verify_ltv

        long_term = verify_ltv(data, roots, at.replace(tzinfo=UTC) if at else None)
    if as_json:
        typer.echo(json.dumps({**report.to_dict(), "long_term": long_term.to_dict() if long_term else None},
                              ensure_ascii=False, indent=2))
    else:
        print_report(report, console, f"验证 {file.name}")
        if long_term is not None:
            print_long_term(long_term, console)
    if (not report.ok and at is None) or (long_term is not None and not long_term.ok and at is not None):
        raise typer.Exit(1)


def print_long_term(report: LtvReport, console: Console) -> None:
    """Print the long-term (offline) verification: one row per layer, then the one-line conclusion."""
    table = Table(title=f"长期验证（离线，时间点 {report.at:%Y-%m-%d}，PAdES {report.level}）")
    table.add_column("层 layer")
    table.add_column("结果")
    table.add_column("说明")
    for layer in report.layers:
        table.add_row(layer.name, "[green]通过[/green]" if layer.passed else "[red]未通过[/red]", layer.detail)
    console.print(table)
    for stamp in report.chain:
        console.print(f"  时间戳 {stamp.at:%Y-%m-%d %H:%M:%S}（{'签名' if stamp.kind == 'signature' else '归档'}）"
                      f"  证书有效至 {stamp.tsa_not_after:%Y-%m-%d}  {stamp.digest_algorithm}", highlight=False)
    console.print(("[bold green]" if report.ok else "[bold red]") + report.summary + "[/]", highlight=False)
