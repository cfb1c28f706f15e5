"""Roles, permissions and API-client scopes.

Roles follow 三员分立 (GB/T 39784): the administrator (系统管理员) manages accounts but reads neither
business records nor the audit log; the security officer (安全保密管理员) grants roles; the auditor
(安全审计员) reads and verifies the audit log and changes nothing. The three are mutually exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Permission(StrEnum):
    CASE_READ = "case.read"
    CASE_WRITE = "case.write"
    ITEM_READ = "item.read"
    IMAGE_READ = "image.read"
    FILE_READ = "file.read"
    PII_READ = "pii.read"  # see 证件号码/手机号/银行卡号 unmasked
    RETENTION_MANAGE = "retention.manage"
    FILING_OVERRIDE = "filing.override"  # file a case whose materials are incomplete, with a reason
    AUDIT_READ = "audit.read"
    USER_MANAGE = "user.manage"
    CLIENT_MANAGE = "client.manage"
    ROLE_ASSIGN = "role.assign"
    USER_READ = "user.read"
    HOLD_MANAGE = "hold.manage"  # set and lift 冻结
    DESTRUCTION_APPROVE = "destruction.approve"  # one of the two approvals of a 销毁清册
    EVENT_REPORT = "event.report"  # business systems report 贷款结清/账户销户/单位注销
    LENDING_REQUEST = "lending.request"  # ask to use (利用) items
    LENDING_APPROVE = "lending.approve"  # approve or reject lending, record paper loans
    TRANSFER_MANAGE = "transfer.manage"  # export and import transfer packages (移交/接收)
    CHECK_RUN = "check.run"  # run 四性检测 and record manual items
    CHECK_READ = "check.read"  # read check reports and alerts
    DQ_READ = "dq.read"  # read data-quality rules, findings, runs and reports
    DQ_RUN = "dq.run"  # run data-quality checks, reconcile with the business system
    DQ_ASSIGN = "dq.assign"  # assign findings to departments, branches or banks
    DQ_FIX = "dq.fix"  # correct findings (著录更正), propose waivers
    DQ_VERIFY = "dq.verify"  # re-check submitted corrections, grant waivers
    IMPORTS_MANAGE = "imports.manage"  # historical imports (存量档案导入): dry-run reports, approval, import jobs


PERMISSION_NAMES: dict[Permission, str] = {
    Permission.CASE_READ: "查看业务",
    Permission.CASE_WRITE: "受理与修改业务",
    Permission.ITEM_READ: "查看档案",
    Permission.IMAGE_READ: "查看档案影像",
    Permission.FILE_READ: "下载档案文件",
    Permission.PII_READ: "查看完整个人信息",
    Permission.RETENTION_MANAGE: "管理保管期限、鉴定与销毁",
    Permission.FILING_OVERRIDE: "材料不全时说明理由归档",
    Permission.AUDIT_READ: "查看与核验审计日志",
    Permission.USER_MANAGE: "管理用户账号",
    Permission.CLIENT_MANAGE: "管理接入系统",
    Permission.ROLE_ASSIGN: "分配角色",
    Permission.USER_READ: "查看用户",
    Permission.HOLD_MANAGE: "冻结与解除冻结",
    Permission.DESTRUCTION_APPROVE: "审批销毁清册",
    Permission.EVENT_REPORT: "报送业务事件",
    Permission.LENDING_REQUEST: "申请利用档案",
    Permission.LENDING_APPROVE: "审批利用与办理借阅",
    Permission.TRANSFER_MANAGE: "办理移交与接收",
    Permission.CHECK_RUN: "执行四性检测",
    Permission.CHECK_READ: "查看检测报告与告警",
    Permission.DQ_READ: "查看数据质量问题与报告",
    Permission.DQ_RUN: "执行数据质量检核与数据比对",
    Permission.DQ_ASSIGN: "分派问题数据",
    Permission.DQ_FIX: "整改问题数据（著录更正）",
    Permission.DQ_VERIFY: "复核整改与批准豁免",
    Permission.IMPORTS_MANAGE: "办理存量档案导入",
}

P = Permission
ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "clerk": frozenset({P.CASE_READ, P.CASE_WRITE, P.ITEM_READ, P.IMAGE_READ, P.PII_READ, P.LENDING_REQUEST}),
    "archivist": frozenset({P.CASE_READ, P.ITEM_READ, P.IMAGE_READ, P.FILE_READ, P.PII_READ,
                            P.RETENTION_MANAGE, P.FILING_OVERRIDE, P.HOLD_MANAGE, P.DESTRUCTION_APPROVE,
                            P.LENDING_REQUEST, P.LENDING_APPROVE, P.TRANSFER_MANAGE, P.CHECK_RUN, P.CHECK_READ}),
    # 档案部门负责人: approves 销毁清册 and lending, sets holds; does not run daily retention work.
    "archive_head": frozenset({P.CASE_READ, P.ITEM_READ, P.IMAGE_READ, P.HOLD_MANAGE, P.DESTRUCTION_APPROVE,
                               P.LENDING_APPROVE, P.CHECK_READ}),
    "auditor": frozenset({P.AUDIT_READ, P.CHECK_READ}),
    "admin": frozenset({P.USER_MANAGE, P.CLIENT_MANAGE, P.USER_READ}),
    "security_officer": frozenset({P.ROLE_ASSIGN, P.USER_READ}),
}
# data quality (issue 19): archivists run, assign and verify; the head verifies; auditors read; a business
# department (业务部门) corrects what is assigned to it.
_DQ_ALL = frozenset({P.DQ_READ, P.DQ_RUN, P.DQ_ASSIGN, P.DQ_FIX, P.DQ_VERIFY})
ROLE_PERMISSIONS["archivist"] = ROLE_PERMISSIONS["archivist"] | _DQ_ALL
ROLE_PERMISSIONS["archive_head"] = ROLE_PERMISSIONS["archive_head"] | {P.DQ_READ, P.DQ_VERIFY}
ROLE_PERMISSIONS["auditor"] = ROLE_PERMISSIONS["auditor"] | {P.DQ_READ}
ROLE_PERMISSIONS["dq_department"] = frozenset({P.CASE_READ, P.DQ_READ, P.DQ_FIX})
# historical imports (issue 20): whoever handles transfers (移交/接收) handles vendor deliveries too
for _role, _granted in list(ROLE_PERMISSIONS.items()):
    if P.TRANSFER_MANAGE in _granted:
        ROLE_PERMISSIONS[_role] = _granted | {P.IMPORTS_MANAGE}
ROLE_NAMES = {"clerk": "柜员", "archivist": "档案管理员", "archive_head": "档案部门负责人", "auditor": "安全审计员",
              "admin": "系统管理员", "security_officer": "安全保密管理员"}
ROLE_NAMES["dq_department"] = "业务部门数据整改员"
SEPARATED_ROLES = frozenset({"admin", "security_officer", "auditor"})  # 三员: at most one per person

# Scopes of business-system clients → the permissions they grant.
SCOPES: dict[str, frozenset[Permission]] = {
    "data.read": frozenset({P.CASE_READ, P.ITEM_READ}),
    "images.read": frozenset({P.IMAGE_READ}),
    "files.read": frozenset({P.FILE_READ}),
    "cases.write": frozenset({P.CASE_WRITE}),
    "pii.read": frozenset({P.PII_READ}),
    "events.write": frozenset({P.EVENT_REPORT}),
    "dq.reconcile": frozenset({P.DQ_RUN}),
}


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a request."""

    kind: str  # user | client
    id: int
    name: str
    permissions: frozenset[Permission]
    roles: tuple[str, ...] = ()
    branches: frozenset[str] | None = None  # None: every branch
    scopes: tuple[str, ...] = field(default=())

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    def sees_branch(self, branch: str) -> bool:
        return self.branches is None or branch in self.branches


def permissions_of_roles(roles: list[str] | tuple[str, ...]) -> frozenset[Permission]:
    out: set[Permission] = set()
    for r in roles:
        out |= ROLE_PERMISSIONS.get(r, frozenset())
    return frozenset(out)


def permissions_of_scopes(scopes: list[str] | tuple[str, ...]) -> frozenset[Permission]:
    out: set[Permission] = set()
    for s in scopes:
        out |= SCOPES.get(s, frozenset())
    return frozenset(out)
