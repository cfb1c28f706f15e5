"""The DA/T 48 EEP description (封装包元数据) of a filed item, shared by the item API and transfer packages."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import object_session

from archive.catalogue.models import ArchiveItem
from archive.classification import RetentionCode
from archive.context import Context
from archive.ltv import RENEWAL, versions

if TYPE_CHECKING:
    from signing.eep import EepAction, EepRecord


def renewal_actions(item: ArchiveItem, first: int) -> list[EepAction]:
    """Each archive time-stamp renewal of the rendition (archive.ltv) as a 业务行为 of the center; the package's
    rendition is the newest version, carrying its validation data (DSS) and every time stamp."""
    from signing.eep import EepAction

    session = object_session(item)
    if session is None:
        return []
    renewals = [v for v in versions(session, item.id) if v.kind == RENEWAL]
    return [EepAction(f"B{first + i}", "A0", "归档时间戳续期", v.created_at,
                      description=f"版式文件第 {v.version} 版，PAdES {v.level}，SHA-256 {v.sha256}"
                                  + (f"，时间戳证书有效至 {v.timestamp_expiry:%Y-%m-%d}" if v.timestamp_expiry else ""))
            for i, v in enumerate(renewals)]


def eep_record(ctx: Context, item: ArchiveItem) -> EepRecord:
    """Agents are the center and the people of the business trail; actions are the trail steps plus 归档."""
    from signing.eep import EepAction, EepAgent, EepRecord

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
    actions += renewal_actions(item, len(actions) + 1)
    when = (case.closed_at or item.filed_at).astimezone(ctx.zone).date()
    return EepRecord(archival_code=item.archival_code, fonds_code=item.fonds_code, year=item.year,
                     retention=RetentionCode(item.effective_retention).label, item_number=item.number,
                     title=f"{case.applicant_name or case.unit_name or ''}{bt.name}",
                     responsible=ctx.settings.fonds_name,
                     date=when, unit_name=ctx.settings.fonds_name, fonds_name=ctx.settings.fonds_name,
                     carriers=[item.rendition_key or ""], agents=agents, actions=actions, category=item.category,
                     pages=None)
