"""``archive backup create|verify|restore``: the catalogue and certificates, backed up and restored with proof
(archive/backup.py; the operator's guide is docs/operations/backup.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from archive.commands.common import cli_actor, cli_context
from archive.commands.console import err, friendly, out
from archive.settings import get_settings

if TYPE_CHECKING:
    from archive.backup import Problem

# archive.backup (cryptography, sqlite3, subprocess) is imported inside the commands: `archive --help` stays fast.

app = typer.Typer(help="备份与恢复：目录数据库、证书、分类方案版本和存储清单。", no_args_is_help=True)


@app.callback()
def _backup() -> None:
    """备份与恢复：目录数据库、证书、分类方案版本和存储清单。"""


def _problems(title: str, problems: list[Problem]) -> None:
    out.print(f"[bold red]{title}[/]（文件或对象键：问题）：")
    for p in problems[:500]:  # one line each: a key must never be cut by the terminal width
        out.print(f"  {p.subject}：{p.problem}", highlight=False)
    if len(problems) > 500:
        out.print(f"（另有 {len(problems) - 500} 项未列出）")


@app.command()
@friendly
def create(to: Annotated[Path | None, typer.Option("--to", help="备份写到此目录下；默认 ARCHIVE_BACKUP_DIR"
                                                   "（<数据目录>/backups）。")] = None) -> None:
    """创建一份备份：目录数据库、配置（口令已隐去）、证书（有口令时加密，含私钥）、分类方案版本、存储对象清单和摘要清单。

    对象本身不复制（归档存储一次写入并有副本）。退出码：0 成功；2 失败（已说明原因）。
    """
    from archive import backup

    ctx = cli_context()
    try:
        passphrase = backup.read_passphrase(ctx.settings)
        created = backup.create(ctx, cli_actor(), to, passphrase)
    finally:
        ctx.close()
    m = created.manifest
    out.print(f"备份已完成：{created.path}", highlight=False)
    out.print(f"  目录数据库：{m['catalogue']['backend']}，版本 {m['catalogue']['revision']}；"
              f"登记的存储对象 {m['catalogued_objects']['count']} 个", highlight=False)
    out.print(f"  存储清单：{m['inventory']['objects']} 个对象、{m['inventory']['bytes'] / 1e6:.1f} MB"
              "（对象本身不在备份中）", highlight=False)
    out.print(f"  分类方案版本：{m['schedules']['versions']} 个；文件 {len(m['files'])} 个", highlight=False)
    pki = m["pki"]
    if pki["mode"] == "encrypted":
        out.print("  证书与私钥：已加密（AES-256-GCM）", highlight=False)
    elif pki["mode"] == "public_only":
        err.print(f"[yellow]注意[/] 未设置 ARCHIVE_BACKUP_PASSPHRASE_FILE：私钥未备份（"
                  f"{'、'.join(pki['omitted_private_keys'])}），只备份了证书。请设置口令文件，或另行保管私钥。",
                  highlight=False)
    else:
        err.print(f"[yellow]注意[/] {pki['note']}", highlight=False)
    out.print(f"  备份清单 SHA-256：{created.manifest_sha256}（已记入审计日志，请与备份分开记录）", highlight=False)


@app.command()
@friendly
def verify(path: Annotated[Path, typer.Argument(help="备份目录（backup-…）。")],
           no_store: Annotated[bool, typer.Option("--no-store", help="不检查当前存储中的对象（只检查备份本身）。")]
           = False) -> None:
    """校验备份：重算每个文件的摘要、打开目录数据库副本，并确认登记的每个对象都在存储清单中、且现在仍在存储中。

    退出码：0 完好；1 发现问题（已列出）；2 无法校验（不是备份目录、存储不可用等）。
    """
    from archive import backup
    from archive.wiring import build_store

    store = None if no_store else build_store(get_settings())
    name = backup.load_manifest(path).get("name")
    recorded = _recorded_digest(str(name))
    report = backup.verify(path, store, recorded)
    m = report.manifest
    out.print(f"备份 {m.get('name')}（创建于 {m.get('created_at')}，{m.get('by')}）", highlight=False)
    out.print(f"  已核对文件 {report.files} 个；登记的对象 {report.catalogued} 个，"
              + (f"已在当前存储中核对 {report.checked_live} 个" if store is not None else "未核对当前存储"),
              highlight=False)
    if m.get("pki", {}).get("mode") == "public_only":
        out.print("  注意：此备份不含私钥（创建时未设置口令）", highlight=False)
    if recorded is None:
        out.print("  注意：当前目录数据库的审计日志中没有此备份的记录，无法核对备份清单本身（manifest.json）",
                  highlight=False)
    if report.ok:
        out.print("[green]备份完好：所有文件与清单一致，目录数据库副本可用，登记的对象齐全。[/green]")
        return
    _problems(f"备份校验发现 {len(report.problems)} 项问题", report.problems)
    raise typer.Exit(1)


def _recorded_digest(name: str) -> str | None:
    """The manifest digest the live catalogue's audit log recorded, or None (no such event, or no catalogue: the
    backup is then checked on its own)."""
    from archive import backup
    from archive.errors import ERRORS

    try:
        ctx = cli_context()
    except ERRORS:
        return None
    try:
        with ctx.catalogue.reading() as s:
            return backup.recorded_manifest_digest(s, name)
    except ERRORS:
        return None
    finally:
        ctx.close()


@app.command()
@friendly
def restore(path: Annotated[Path, typer.Argument(help="备份目录（backup-…）。")],
            yes: Annotated[bool, typer.Option("--yes", help="目录数据库（或证书目录）已有数据时也覆盖。")] = False,
            reindex: Annotated[bool, typer.Option("--reindex", help="恢复后重建检索索引。")] = False,
            pki_only: Annotated[bool, typer.Option("--pki-only", help="只恢复证书与私钥，不动目录数据库"
                                                   "（例如在 PostgreSQL 按时间点恢复之后）。")] = False) -> None:
    """从备份恢复目录数据库与证书，然后核对登记的每个对象都在存储中。

    先校验备份、检查口令和目标，任何一项不通过都不改动任何内容。
    退出码：0 恢复完成且对象齐全；1 已恢复但存储中缺少对象（已列出）；2 未恢复（已说明原因）。
    """
    from archive import backup

    ctx = cli_context(check=False)
    try:
        passphrase = backup.read_passphrase(ctx.settings)
        restored = backup.restore(ctx, cli_actor(), path, passphrase, overwrite=yes, pki_only=pki_only)
        pki = _PKI.get(restored.pki, restored.pki)
        what = "未改动目录数据库" if pki_only else f"已从 {path} 恢复目录数据库（版本 {restored.revision}）"
        out.print(f"{what}；证书：{pki}", highlight=False)
        out.print(f"登记的存储对象 {restored.catalogued} 个，缺失 {len(restored.missing)} 个", highlight=False)
        if reindex:
            from archive.indexing import rebuild

            out.print(f"检索索引已重建：{rebuild(ctx)} 件")
    finally:
        ctx.close()
    if not reindex:
        out.print("请运行 `archive index rebuild` 重建检索索引，再运行 `archive audit verify` 与 "
                  "`archive storage verify` 确认。")
    if restored.missing:
        _problems("存储中缺少以下对象（从副本恢复，或查明原因）", restored.missing)
        raise typer.Exit(1)


_PKI = {"encrypted": "已解密恢复（含私钥）", "public_only": "只恢复了证书（备份中没有私钥）",
        "absent": "备份中没有证书"}
