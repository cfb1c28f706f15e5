"""Command groups imported when they run, not when ``archive`` starts.

The command modules pull in SQLAlchemy, pydantic, the catalogue models and the signing libraries: importing them all
took ``archive --help`` to ~1.6 s on an idle machine (issue 17 asks ≤ 1 s). The root group lists these commands from
the table below, with their help line, and imports a module only when one of its commands is run (or its own
``--help`` is asked). tests/test_cli_startup.py checks that each help line here is the command's own.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup


@dataclass(frozen=True)
class Lazy:
    """Where a top-level command lives: ``module.attr`` is a typer app (``apps`` dicts: ``apps[key]``); with
    ``command`` it is one command of that app, registered at the top level (``archive tsa``)."""

    module: str
    help: str
    attr: str = "app"
    key: str | None = None
    command: str | None = None


LAZY: dict[str, Lazy] = {
    "tsa": Lazy("archive.commands.signing", "运行本地 RFC 3161 时间戳服务，仅供开发和测试（不可用于生产）。",
                command="tsa"),
    "verify": Lazy("archive.commands.signing", "验证签章的 PDF（签名、证书链、时间戳、覆盖范围、PDF/A-2b、固定性）"
                   "或 EEP 信息包；未通过时退出码 1。", command="verify"),
    "storage": Lazy("archive.commands.storage", "对象存储：副本比对与完整性检查。"),
    "index": Lazy("archive.commands.index", "检索索引：重建与状态。"),
    "backup": Lazy("archive.commands.backup", "备份与恢复：目录数据库、证书、分类方案版本和存储清单。"),
    "ltv": Lazy("archive.commands.ltv", "长期验证：归档时间戳续期（PAdES B-LTA）与版式文件版本。"),
    "hold": Lazy("archive.commands.retention", "冻结：法律或审计冻结的设置与解除。", "apps", "hold"),
    "appraisal": Lazy("archive.commands.retention", "鉴定：到期档案的鉴定队列与处理意见。", "apps", "appraisal"),
    "destruction": Lazy("archive.commands.retention", "销毁：销毁清册、双人审批与执行。", "apps", "destruction"),
    "event": Lazy("archive.commands.triggers", "业务事件：贷款结清、账户销户、单位注销，启动保管期限计算。", "apps",
                  "event"),
    "lending": Lazy("archive.commands.lending", "利用与借阅：申请、审批、查阅登记、实体借出与归还。", "apps",
                    "lending"),
    "transfer": Lazy("archive.commands.transfer", "移交：导出移交信息包，接收并校验。", "apps", "transfer"),
    "check": Lazy("archive.commands.checks", "四性检测：归档、移交、长期保存环节的检测与报告。", "apps", "check"),
    "dq": Lazy("archive.commands.dq", "数据质量：规则、批量检核、问题数据、导出与统计。", "apps", "dq"),
    "import": Lazy("archive.commands.imports", "存量档案导入：预扫描、预检报告、批准、导入、抽检与交接。", "apps",
                   "import"),
}


def load(name: str) -> Any:
    """The real (click) command for a lazy entry (imports its module). Typer vendors click, so its types are
    not named here."""
    spec = LAZY[name]
    found = getattr(importlib.import_module(spec.module), spec.attr)
    app: typer.Typer = found[spec.key] if spec.key is not None else found
    group = typer.main.get_group(app)
    if spec.command is not None:
        command = group.commands.get(spec.command)
        assert command is not None, f"{spec.module} has no command {spec.command}"
        return command
    group.name = name
    return group


class LazyRootGroup(TyperGroup):
    """The ``archive`` group: its own commands plus the LAZY ones, listed without importing them."""

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in LAZY if n not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in self.commands or cmd_name not in LAZY:
            return super().get_command(ctx, cmd_name)
        if self._listing:  # the help page needs only the name and help line
            return TyperCommand(cmd_name, help=LAZY[cmd_name].help)
        self.commands[cmd_name] = load(cmd_name)
        return self.commands[cmd_name]

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False
