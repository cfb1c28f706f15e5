"""Every registered data-quality rule, by module: cases, documents, items, reconciliation."""

from __future__ import annotations

from archive.dq.registry import REGISTRY, Rule
from archive.dq.rules import cases, documents, items, reconciliation  # noqa: F401  # register their rules
from archive.errors import NotFound


def all_rules() -> list[Rule]:
    return sorted(REGISTRY.values(), key=lambda r: r.code)


def get_rule(code: str) -> Rule:
    r = REGISTRY.get(code)
    if r is None:
        raise NotFound(f"数据质量规则 {code} 不存在，请用 archive dq rules 查看可用规则", code="dq_rule_not_found",
                       detail={"rule": code})
    return r


def select_rules(codes: list[str] | None, kind: str | None = None) -> list[Rule]:
    """The rules named (each must exist), or every rule that runs in batches (only SQL or only row-by-row ones
    when ``kind`` says so)."""
    if codes:
        return [get_rule(c) for c in codes]
    return [r for r in all_rules() if r.batch is not None and kind in (None, r.kind)]
