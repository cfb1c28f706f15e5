"""The DA/T 48 EEP description (封装包元数据) of a filed item, shared by the item API and transfer packages."""

from __future__ import annotations

from datetime import datetime

from archive.catalogue.models import ArchiveItem
from archive.classification import RetentionCode
from archive.context import Context
from signing.eep import EepAction, EepAgent, EepRecord


def eep_record(ctx: Context, item: ArchiveItem) -> EepRecord:
    """Agents are the center and the people of the business trail; actions are the trail steps plus 归档."""
    case = item.case
    bt = ctx.schedule.business_type(case.business_type)
    center = EepAgent("A0", ctx.settings.fonds_name)
    people = {step.get("person", "") for step in case.trail or []} | {case.clerk}
    agents = [center] + [EepAgent(f"P{i}", p, "个人") for i, p in enumerate(sorted(x for x in people if x), 1)]
    ids = {a.name: a.id for a in agents[1:]}
    actions = [EepAction(f"B{i}", ids.get(step.get("person", ""), "A0"), step.get("action", ""),
                         datetime.fromisoformat(step["at"]), description=step.get("opinion") or "")
               for i, step in enumerate(case.trail or [], 1) if step.get("at")]
    actions.append(EepAction(f"B{len(actions) + 1}", "A0", "归档", item.filed_at))
    when = (case.closed_at or item.filed_at).astimezone(ctx.zone).date()
    return EepRecord(archival_code=item.archival_code, fonds_code=item.fonds_code, year=item.year,
                     retention=RetentionCode(item.effective_retention).label, item_number=item.number,
                     title=f"{case.applicant_name or case.unit_name or ''}{bt.name}",
                     responsible=ctx.settings.fonds_name,
                     date=when, unit_name=ctx.settings.fonds_name, fonds_name=ctx.settings.fonds_name,
                     carriers=[item.rendition_key or ""], agents=agents, actions=actions, category=item.category,
                     pages=None)
