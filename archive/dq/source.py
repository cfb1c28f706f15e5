"""Rules at the source (源头管控): at case intake and document upload, ``block`` rules refuse with the rule's code
and hint; ``warn`` and ``error`` rules let the work go on and open a finding."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from archive.catalogue.types import utcnow
from archive.context import Context
from archive.dq import findings
from archive.dq.registry import Failure, Rule
from archive.dq.rules import all_rules
from archive.errors import InvalidInput

Found = list[tuple[Rule, str]]
KEYS = {"DQ-CA-005": ("applicant_id_number", "applicant_name"), "DQ-DO-003": ("sequence", "material_type"),
        "DQ-DO-004": ("sequence", "material_type", "page_count")}


def check(ctx: Context, session: Session, obj: str, values: Mapping[str, Any]) -> Found:
    """Run the source checks of ``obj`` (case or document) on ``values``: refuse on the first ``block`` rule that
    fails; the other failures, to open as findings once the object exists (:func:`record`)."""
    found: Found = []
    for rule in all_rules():
        if rule.source is None or rule.object != obj:
            continue
        message = rule.source(ctx, session, values)
        if message is None:
            continue
        if rule.severity == "block":
            raise InvalidInput(f"{message}（数据质量规则 {rule.code} {rule.name}）。{rule.hint}",
                               code="dq_rule_refused", detail={"rule": rule.code, "hint": rule.hint,
                                                               "field": _field(rule)})
        found.append((rule, message))
    return found


def record(session: Session, found: Found, *, object_type: str, object_key: str, serial: str, branch: str,
           key_values: Mapping[str, Any] | None = None) -> None:
    """Open the findings of ``found`` on the object now stored; key values as the batch check gives them, so that
    the next batch run finds the same finding."""
    now, values = utcnow(), dict(key_values or {})
    for rule, message in found:
        keys = KEYS.get(rule.code, ())
        findings.observe(session, rule, Failure(object_type, object_key, serial, message, branch,
                                                {k: values.get(k) for k in keys}), None, now)


def _field(rule: Rule) -> str | None:
    return {"DQ-CA-001": "applicant.id_number", "DQ-CA-002": "unit.uscc", "DQ-CA-004": "applicant.name",
            "DQ-CA-007": "serial", "DQ-CA-010": "accepted_at"}.get(rule.code)
