"""Classification schedule (分类方案与保管期限表): categories, business types, required materials,
retention code and trigger of each type.

Loaded from a versioned TOML file: the packaged default (our reading of JGJ/T 495-2022, marked as
defaults to be checked) or a center's own file named by ``ARCHIVE_SCHEDULE``.
"""

from __future__ import annotations

import tomllib
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from archive.errors import ConfigError, InvalidInput

DEFAULT_SCHEDULE = "jgjt495-default.toml"


class RetentionCode(StrEnum):
    """保管期限代码."""

    PERMANENT = "Y"  # 永久
    YEARS_30 = "D30"  # 定期30年
    YEARS_10 = "D10"  # 定期10年

    @property
    def years(self) -> int | None:
        return {"Y": None, "D30": 30, "D10": 10}[self.value]

    @property
    def label(self) -> str:
        return {"Y": "永久", "D30": "定期30年", "D10": "定期10年"}[self.value]


class Trigger(StrEnum):
    """Event from which a retention period is counted (保管期限起算事件)."""

    BUSINESS_CLOSED = "BUSINESS_CLOSED"
    LOAN_SETTLED = "LOAN_SETTLED"
    ACCOUNT_CLOSED = "ACCOUNT_CLOSED"
    FISCAL_YEAR_END = "FISCAL_YEAR_END"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TriggerRule(_Strict):
    name: str = Field(min_length=1)
    counting: Literal["next_year", "next_day"]


class Category(_Strict):
    name: str = Field(min_length=1)
    unit: Literal["件", "卷"] = "件"


class BusinessType(_Strict):
    category: str
    name: str = Field(min_length=1)
    retention: RetentionCode
    trigger: Trigger
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()


class Schedule(_Strict):
    schema_: Literal[1] = Field(alias="schema")
    version: str = Field(min_length=1, max_length=40)
    is_default: bool = False
    basis: str = ""
    triggers: dict[Trigger, TriggerRule]
    categories: dict[str, Category]
    materials: dict[str, str]
    types: dict[str, BusinessType]
    _source: tuple[str, str] = PrivateAttr(default=("", ""))  # (file name, TOML text) as loaded

    @property
    def source_name(self) -> str:
        return self._source[0]

    @property
    def source_text(self) -> str:
        """The TOML text this schedule was loaded from (kept with its version in the catalogue)."""
        return self._source[1]

    @model_validator(mode="after")
    def _references(self) -> Schedule:
        missing_triggers = set(Trigger) - set(self.triggers)
        if missing_triggers:
            raise ValueError(f"triggers: missing {sorted(missing_triggers)}")
        for code in self.categories:
            if not (len(code) == 2 and code.isascii() and code.isupper()):
                raise ValueError(f"categories.{code}: category codes are two capital letters")
        for code, bt in self.types.items():
            if bt.category not in self.categories:
                raise ValueError(f"types.{code}.category: unknown category {bt.category!r}")
            for field in ("required", "optional"):
                for m in getattr(bt, field):
                    if m not in self.materials:
                        raise ValueError(f"types.{code}.{field}: unknown material {m!r}")
        return self

    def business_type(self, code: str) -> BusinessType:
        try:
            return self.types[code]
        except KeyError:
            raise InvalidInput(
                f"业务类型 {code!r} 不在分类方案中，请使用分类方案中的业务类型代码",
                code="unknown_business_type", detail={"field": "business_type", "value": code},
            ) from None

    def material_name(self, code: str) -> str:
        try:
            return self.materials[code]
        except KeyError:
            raise InvalidInput(
                f"材料类型 {code!r} 不在分类方案中", code="unknown_material_type",
                detail={"field": "material_type", "value": code},
            ) from None


def load_schedule(path: Path | None = None) -> Schedule:
    """Load and check a schedule; any problem is a ConfigError naming the file, field and reason."""
    if path is None:
        source = resources.files("archive.schedules").joinpath(DEFAULT_SCHEDULE)
        name, text = f"<packaged>/{DEFAULT_SCHEDULE}", source.read_text(encoding="utf-8")
    else:
        name = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise _broken(name, "-", f"cannot read the file: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _broken(name, "-", f"not valid TOML: {exc}") from None
    try:
        schedule = Schedule.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "-"
        reason = err["msg"].removeprefix("Value error, ")
        if field == "-" and ": " in reason:  # cross-reference errors name their field first
            field, reason = reason.split(": ", 1)
        raise _broken(name, field, reason) from None
    schedule._source = (name, text)
    return schedule


def parse_schedule(name: str, text: str) -> Schedule:
    """A schedule from stored TOML text (a recorded schedule version); problems as in load_schedule."""
    try:
        data = tomllib.loads(text)
        schedule = Schedule.model_validate(data)
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise _broken(name, "-", str(exc).splitlines()[0]) from None
    schedule._source = (name, text)
    return schedule


def _broken(file: str, field: str, reason: str) -> ConfigError:
    return ConfigError(
        f"分类方案文件有误：{file}，字段 {field}：{reason}（请修正文件或 ARCHIVE_SCHEDULE 设置）",
        code="schedule_invalid", detail={"file": file, "field": field, "reason": reason},
    )


@lru_cache(maxsize=8)
def _cached(path: str | None) -> Schedule:
    return load_schedule(Path(path) if path else None)


def get_schedule(path: Path | None = None) -> Schedule:
    return _cached(str(path) if path else None)
