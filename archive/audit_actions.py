"""Every audit-event action (``AuditEvent.action``), declared once with what it means to an auditor.

``audit.record`` refuses a name not listed here, and tests/test_registries.py checks that every literal action
passed in the code is listed. Names are stable: they are stored in the hash-chained log, so one is never renamed.
"""

from __future__ import annotations

ACTIONS: dict[str, str] = {
    # capture: cases, documents, batch scans
    "case.open": "登记业务（受理）",
    "document.attach": "上传材料",
    "document.replace": "替换材料",
    "document.remove": "撤下材料",
    "document.retype": "更正材料类型",
    "document.split": "拆分材料",
    "scan.receive": "接收批量扫描件",
    "scan.process": "拆分批量扫描件",
    "scan.assign": "将待分配的扫描页归入业务",
    # filing and retention
    "item.file": "归档（生成并签署归档件）",
    "item.retention.reapply": "按新版分类方案调整档案的保管期限",
    "item.destroy": "销毁档案",
    "item.ltv.renew": "续期归档时间戳（PAdES B-LTA：新增文档时间戳与验证数据，保存为新版本）",
    "schedule.version.record": "登记分类方案的新版本",
    "schedule.reapply": "对已归档档案重新适用分类方案",
    "retention.event": "接收业务事件（贷款结清、账户销户、单位注销），开始计算保管期限",
    "hold.set": "冻结档案",
    "hold.lift": "解除冻结",
    "appraisal.decide": "鉴定（继续保存或拟销毁）",
    "destruction.list.create": "编制销毁清册",
    "destruction.approve": "审批销毁清册（同意）",
    "destruction.reject": "审批销毁清册（驳回）",
    "destruction.execute": "执行销毁",
    # use: access, lending, paper loans, search
    "access.read": "查阅档案",
    "search.person": "按证件号码检索",
    "search.save": "保存检索条件",
    "search.saved.delete": "删除保存的检索条件",
    "lending.request": "提出利用申请",
    "lending.approve": "批准利用申请",
    "lending.reject": "驳回利用申请",
    "lending.revoke": "撤销利用授权",
    "lending.loan.out": "实体档案借出",
    "lending.loan.remind": "实体档案催还",
    "lending.loan.return": "实体档案归还",
    # transfer
    "transfer.export": "生成移交信息包",
    "transfer.download": "下载移交信息包",
    "transfer.receive": "接收移交信息包",
    # four-properties checks and storage
    "check.report": "保存四性检测报告",
    "check.manual": "登记人工检测结果",
    "check.sweep.start": "开始长期保存检测",
    "check.sweep.resume": "继续长期保存检测",
    "check.sweep.pause": "暂停长期保存检测",
    "check.sweep.finish": "完成长期保存检测",
    "check.sweep.fail": "长期保存检测出错中止",
    # web console
    "job.start": "开始后台任务（销毁执行、移交导出、重新适用分类方案等）",
    "job.finish": "后台任务结束（完成、出错或中断）",
    "alert.raise": "产生存储告警",
    "alert.acknowledge": "确认存储告警",
    "storage.gc": "清理未登记的存储对象",
    "storage.extend": "延长存储对象的保管期限锁定（到期前续期）",
    "backup.create": "备份目录数据库与证书",
    "backup.restore": "从备份恢复目录数据库与证书",
    # identity and sign-in
    "fonds.create": "登记全宗",
    "user.create": "创建用户",
    "user.roles": "变更用户角色",
    "client.create": "登记业务系统接口账号",
    "client.revoke": "吊销业务系统接口账号",
    "auth.login": "登录",
    "permission.denied": "无权限的操作被拒绝",
    "auth.login.failed": "登录失败",
    "auth.logout": "退出登录",
    "auth.account.locked": "账号因连续登录失败被锁定",
    "auth.account.unlocked": "解除账号锁定",
    # data quality (archive/dq/)
    "dq.run.start": "开始数据质量检核",
    "dq.run.finish": "完成数据质量检核",
    "dq.finding.assign": "分派问题数据",
    "dq.finding.fix": "开始整改问题数据",
    "dq.finding.submit": "提交问题数据的整改",
    "dq.finding.verify": "复核问题数据（通过或退回）",
    "dq.finding.waiver": "申请豁免问题数据",
    "dq.finding.waive": "批准豁免问题数据",
    "dq.correction": "著录更正（数据质量整改）",
    "dq.reconcile": "与业务系统比对办结数据",
    "dq.export": "导出问题数据清单或数据质量报告",
    "dq.plan.propose": "编制批量治理方案",
    "dq.plan.approve": "批准批量治理方案",
    "dq.plan.apply": "执行批量治理方案（先备份原值）",
    "dq.plan.rollback": "回退批量治理方案",
    # historical imports (存量档案导入, archive/imports)
    "import.report": "出具存量档案导入预检报告",
    "import.approve": "批准存量档案导入预检报告",
    "import.start": "开始存量档案导入任务",
    "import.finish": "存量档案导入任务结束",
    "item.import": "导入存量档案（生成并签署归档件）",
    "import.sample": "抽取存量档案抽检样本",
    "import.sample.verdict": "登记存量档案抽检结论",
}


class UnknownAction(ValueError):
    """A programming error: an audit action that is not declared in :data:`ACTIONS`."""


def check(action: str) -> str:
    if action not in ACTIONS:
        raise UnknownAction(f"audit action {action!r} is not declared in archive/audit_actions.py")
    return action
