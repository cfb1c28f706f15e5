"""Rules of the reconciliation with the business system (数据比对): their findings come from a reported list."""

from __future__ import annotations

from archive.dq.registry import Rule, add

CLOSED_NOT_FILED = add(Rule("DQ-RC-001", "业务系统已办结的业务已归档", "completeness", "case", "error",
                            "reconciliation", 1, "business",
                            "业务系统报送已办结但档案系统未归档：补齐材料后办结归档，或向业务系统核实"))
FILED_UNKNOWN = add(Rule("DQ-RC-002", "已归档业务在业务系统办结清单中", "consistency", "case", "warn",
                         "reconciliation", 1, "it", "档案系统已归档但业务系统办结清单中没有：核对办结日期和业务流水号"))
TYPE_MISMATCH = add(Rule("DQ-RC-003", "业务类型与业务系统一致", "consistency", "case", "error",
                         "reconciliation", 1, "business", "档案系统登记的业务类型与业务系统不同：核对后更正"))
