"""Data quality (数据质量): registered rules, source checks, batch runs, findings (问题数据) and their correction,
reconciliation with the business system, and reports — 采集－检核－反馈－治理－再采集－再检核."""
