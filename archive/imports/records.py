"""What a catalogue row means for the archive: business type, 保管期限 (and where it came from), date, 档号.

Shared by the dry run (which reports what cannot be resolved) and the import job (which files what can).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from archive.archival_code import CodeParts, CodeRule
from archive.classification import Schedule
from archive.errors import InvalidInput
from archive.identifiers import validate_id_number
from archive.imports.findings import Finding, finding
from archive.imports.profile import RETENTION_VALUES, Profile


@dataclass(frozen=True)
class Record:
    key: str
    business_type: str
    category: str
    retention: str  # Y / D30 / D10
    retention_source: str  # "catalogue" or "schedule"
    date: dt.date
    original_code: str
    parts: CodeParts | None  # the historical 档号's parts when it is kept as the item's 档号
    title: str
    name: str | None
    id_number: str | None
    serial: str | None


def parse_date(value: str) -> dt.date | None:
    v = value.strip()
    for pattern in (r"(\d{4})-(\d{1,2})-(\d{1,2})", r"(\d{4})/(\d{1,2})/(\d{1,2})", r"(\d{4})\.(\d{1,2})\.(\d{1,2})",
                    r"(\d{4})(\d{2})(\d{2})", r"(\d{4})年(\d{1,2})月(\d{1,2})日"):
        m = re.fullmatch(pattern, v.split("T")[0].split(" ")[0])
        if m:
            try:
                return dt.date(int(m[1]), int(m[2]), int(m[3]))
            except ValueError:
                return None
    return None


def resolve(profile: Profile, schedule: Schedule, rule: CodeRule, key: str, fields: dict[str, str]
            ) -> tuple[Record | None, list[Finding]]:
    """The row as an archive record, or None with the findings that stop it (and warnings either way)."""
    out: list[Finding] = []
    rule_bt = profile.business_type
    value = fields.get(rule_bt.field, "")
    bt_code = rule_bt.map.get(value) or (value if value in schedule.types else None) or rule_bt.default
    if bt_code is None or bt_code not in schedule.types:
        out.append(finding("business_type_unknown", f"{rule_bt.field}“{value}”无法对应到分类方案的业务类型；"
                           "请在映射配置 business_type.map 中补充", key))
    raw = fields.get("保管期限", "").strip().upper()
    retention = RETENTION_VALUES.get(raw) or RETENTION_VALUES.get(fields.get("保管期限", "").strip())
    if raw and retention and raw in ("长期", "短期"):
        out.append(finding("retention_legacy", f"保管期限“{raw}”按旧制折算为 {retention}", key))
    if profile.retention == "catalogue" and retention is None:
        out.append(finding("retention_unknown", f"保管期限“{fields.get('保管期限', '')}”无法识别"
                           "（可用：永久、定期30年、定期10年、Y、D30、D10）", key))
    day = parse_date(fields.get("日期", ""))
    if day is None and (year := fields.get("年度", "")).isdigit() and len(year) == 4:
        day = dt.date(int(year), 12, 31)
    if day is None:
        out.append(finding("date_invalid", f"日期“{fields.get('日期', '')}”无法识别，且没有年度", key))
    id_number = fields.get("证件号码") or None
    if id_number:
        try:
            id_number = validate_id_number(id_number, "证件号码")
        except InvalidInput as exc:
            out.append(finding("id_number_invalid", f"证件号码有误：{exc.message}", key))
    code = fields.get("档号", "")
    parts: CodeParts | None = None
    if profile.archival_code == "keep" and code:
        try:
            parts = rule.parse(code)
        except InvalidInput as exc:
            out.append(finding("code_invalid", f"{exc.message}；可在映射配置中改用 archival_code = \"renumber\""
                               "（保留为原档号）",
                               key))
    if any(f["severity"] == "error" for f in out) or bt_code is None or day is None:
        return None, out
    bt = schedule.types[bt_code]
    chosen, source = (retention, "catalogue") if profile.retention == "catalogue" and retention else \
        (bt.retention.value, "schedule")
    if parts is not None and parts.retention != chosen:
        chosen, source = parts.retention, "archival_code"  # the kept 档号 carries the retention it was filed under
    return Record(key=key, business_type=bt_code, category=bt.category, retention=chosen, retention_source=source,
                  date=day, original_code=code, parts=parts, title=fields.get("题名") or f"{bt.name}（历史档案）",
                  name=fields.get("姓名") or fields.get("责任者") or None, id_number=id_number,
                  serial=fields.get("业务流水号") or None), out
