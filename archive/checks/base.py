"""Check items of the four-properties checks (四性检测, DA/T 70-2018) as code.

Each item is a small function registered with its code (GD-1-1, YJ-2-1, BC-1-1 …), name, dimension and
object. It receives a stage-specific subject (an archive item at filing, a package at transfer, a store
at a sweep) and returns one or more :class:`Result`; it never raises for what it finds, only for faults
of its own (those become an ``error`` result in the runner).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from archive.errors import ERRORS, SYSTEM_KINDS


class Stage(StrEnum):
    FILING = "gd"  # 归档环节
    TRANSFER = "yj"  # 移交与接收环节
    STORAGE = "bc"  # 长期保存环节


class Dimension(StrEnum):
    AUTHENTICITY = "authenticity"  # 真实性
    INTEGRITY = "integrity"  # 完整性
    USABILITY = "usability"  # 可用性
    SECURITY = "security"  # 安全性


DIMENSION_NAMES = {Dimension.AUTHENTICITY: "真实性", Dimension.INTEGRITY: "完整性",
                   Dimension.USABILITY: "可用性", Dimension.SECURITY: "安全性"}


class CheckObject(StrEnum):
    METADATA = "metadata"  # 元数据
    CONTENT = "content"  # 电子文件内容
    PACKAGE = "package"  # 信息包
    CARRIER = "carrier"  # 载体
    ENVIRONMENT = "environment"  # 系统环境
    PROCESS = "process"  # 过程


class Outcome(StrEnum):
    PASSED = "passed"  # 通过
    FAILED = "failed"  # 不通过
    NOT_APPLICABLE = "not_applicable"  # 不适用
    MANUAL = "manual"  # 人工待检
    ERROR = "error"  # the check itself could not run


OUTCOME_NAMES = {Outcome.PASSED: "通过", Outcome.FAILED: "不通过", Outcome.NOT_APPLICABLE: "不适用",
                 Outcome.MANUAL: "人工待检", Outcome.ERROR: "检测出错"}


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    detail: str = ""  # a Chinese sentence for the archivist
    target: str | None = None  # 档号, object key, file name … when the item checks many targets
    data: dict[str, Any] = field(default_factory=dict)  # machine-readable facts behind the detail


@dataclass(frozen=True)
class CheckItem:
    code: str
    name: str
    stage: Stage
    dimension: Dimension
    object: CheckObject
    blocking: bool  # a failure refuses filing / returns the package (阻断); else a warning
    run: Callable[[Any], Result | Iterable[Result]]
    basis: str = "DA/T 70-2018"  # 检测依据
    manual: bool = False  # needs a person (载体外观 …): the run leaves it open, a person records the result


REGISTRY: dict[str, CheckItem] = {}


def check(code: str, name: str, stage: Stage, dimension: Dimension, obj: CheckObject, *, blocking: bool = True,
          basis: str = "DA/T 70-2018", manual: bool = False
          ) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
    """Register a check item function under its code."""

    def register(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        if code in REGISTRY:
            raise ValueError(f"check item {code} registered twice")
        REGISTRY[code] = CheckItem(code, name, stage, dimension, obj, blocking, fn, basis, manual)
        return fn

    return register


def items_of(stage: Stage) -> list[CheckItem]:
    return sorted((i for i in REGISTRY.values() if i.stage == stage), key=lambda i: code_key(i.code))


def code_key(code: str) -> tuple[str, ...]:
    """Sort key putting GD-1-2 before GD-1-10."""
    return tuple(p.zfill(4) for p in code.split("-"))


def run_items(items: Iterable[CheckItem], subject: Any) -> list[tuple[CheckItem, Result]]:
    """Run check items on a subject; a check that raises becomes an ``error`` result, never a crash, except for
    an outage (an error of SYSTEM_KINDS, e.g. 503 store_unavailable), which ends the run: a report must not blame
    the subject for it."""
    out: list[tuple[CheckItem, Result]] = []
    for item in items:
        try:
            produced = item.run(subject)
            results = [produced] if isinstance(produced, Result) else list(produced)
        except ERRORS as exc:  # ours and the packages' (storage/, signing/, search/) errors, with a kind
            if exc.kind in SYSTEM_KINDS:  # the store or catalogue is down: not the subject's fault, no report
                raise
            results = [Result(Outcome.ERROR, f"检测项 {item.code} 执行出错：{type(exc).__name__}: {exc}")]
        except Exception as exc:  # the check's own fault, recorded so the report shows it
            results = [Result(Outcome.ERROR, f"检测项 {item.code} 执行出错：{type(exc).__name__}: {exc}")]
        out.extend((item, r) for r in results)
    return out


def blocking_failures(results: Iterable[tuple[CheckItem, Result]]) -> list[tuple[CheckItem, Result]]:
    return [(i, r) for i, r in results if i.blocking and r.outcome in (Outcome.FAILED, Outcome.ERROR)]
