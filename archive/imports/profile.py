"""Mapping profile (映射配置) of one vendor delivery of digitised historical archives (存量档案, DA/T 31).

A TOML file says where the catalogue (目录) is and how to read it, which column is which field, how a row finds its
page-image folder, how a row maps to a business type, and whether the historical 档号 stays the item's 档号
(``archival_code = "keep"``, checked against the template) or is kept as 原档号 beside a new one
(``archival_code = "renumber"``).

Column names are recognised without a map when they are the Chinese field names or the pinyin codes vendors
(Beijing style) use: DH 档号, TM 题名, BGQX 保管期限, YS 页数, QZH 全宗号 …
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from archive.errors import InvalidInput

# The fields a catalogue row can carry (canonical names are the Chinese ones used in reports and profiles).
FIELDS = ("档号", "题名", "责任者", "日期", "保管期限", "页数", "业务流水号", "证件号码", "姓名", "单位名称", "密级",
          "全宗号", "年度", "类别", "件号", "案卷号", "业务类型", "备注")

# Column names recognised without a map: the field names themselves, common variants and pinyin codes.
ALIASES: dict[str, str] = {
    "DH": "档号", "TM": "题名", "ZRZ": "责任者", "RQ": "日期", "XCSJ": "日期", "WJRQ": "日期", "BGQX": "保管期限",
    "YS": "页数", "YWLSH": "业务流水号", "LSH": "业务流水号", "ZJHM": "证件号码", "SFZH": "证件号码",
    "SFZHM": "证件号码", "XM": "姓名", "DWMC": "单位名称", "MJ": "密级", "QZH": "全宗号", "ND": "年度",
    "LB": "类别", "FLH": "类别", "JH": "件号", "AJH": "案卷号", "YWLX": "业务类型", "BZ": "备注",
    "身份证号": "证件号码", "身份证号码": "证件号码", "成文日期": "日期", "形成日期": "日期", "办理日期": "日期",
    "页码数": "页数", "流水号": "业务流水号", "文件题名": "题名", "案卷题名": "题名",
}

RETENTION_VALUES: dict[str, str] = {
    "Y": "Y", "永久": "Y", "D30": "D30", "30年": "D30", "定期30年": "D30", "30": "D30", "长期": "D30",
    "D10": "D10", "10年": "D10", "定期10年": "D10", "10": "D10", "短期": "D10",
}


class CatalogueSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file: str = Field(description="目录文件，相对交付目录")
    format: Literal["auto", "xlsx", "xls", "dbf", "xml", "csv"] = "auto"
    sheet: str | None = None  # xlsx/xls: sheet name; default the first
    encoding: str = "gb18030"  # csv, dbf, xls without a code page
    record: str = "record"  # xml: the element of one row; its children (or attributes) are the columns


class BusinessTypeRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str = "类别"  # which field's value decides the business type
    map: dict[str, str] = {}  # field value → business type code of the schedule (TQ01 …)
    default: str | None = None


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vendor: str = Field(min_length=1, max_length=100)  # 数字化服务商
    delivery: str = Field(min_length=1, max_length=100)  # 批次名称
    catalogue: CatalogueSpec
    columns: dict[str, str] = {}  # column → field (beyond the recognised names)
    layout: str = "{档号}"  # folder of a row, relative to the delivery, e.g. "{年度}/{类别}/{档号}"
    pages: list[str] = [".jpg", ".jpeg", ".tif", ".tiff", ".png"]
    business_type: BusinessTypeRule = BusinessTypeRule()
    archival_code: Literal["keep", "renumber"] = "keep"
    retention: Literal["schedule", "catalogue"] = "catalogue"  # which 保管期限 the item gets
    min_dpi: int = Field(200, ge=72, le=1200)  # DA/T 31: 200 dpi at least
    exclude: list[str] = []  # 档号 of rows left out (their findings stay in the report)
    fixes: dict[str, dict[str, str]] = {}  # 档号 → {field: corrected value}

    def field_of(self, column: str) -> str | None:
        """The field a catalogue column carries, or None when unknown."""
        name = column.strip()
        if name in self.columns:
            return self.columns[name]
        if name in FIELDS:
            return name
        return ALIASES.get(name.upper(), ALIASES.get(name))


def load_profile(path: Path) -> tuple[Profile, str]:
    """The profile and the SHA-256 of its bytes (recorded in the manifest and every imported item's provenance)."""
    try:
        raw = path.read_bytes()
    except OSError:
        raise InvalidInput(f"映射配置文件 {path} 无法读取", code="import_profile_invalid",
                           detail={"path": str(path)}) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"映射配置文件 {path.name} 不是有效的 UTF-8 TOML：{exc}", code="import_profile_invalid",
                           detail={"path": str(path)}) from None
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        shown = "；".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        raise InvalidInput(f"映射配置 {path.name} 有误：{shown}", code="import_profile_invalid",
                           detail={"path": str(path)}) from None
    unknown = sorted({f for f in profile.columns.values() if f not in FIELDS})
    if unknown:
        raise InvalidInput(f"映射配置 {path.name} 的 columns 中有未知字段 {'、'.join(unknown)}；可用字段："
                           f"{'、'.join(FIELDS)}", code="import_profile_invalid", detail={"fields": unknown})
    return profile, hashlib.sha256(raw).hexdigest()
