"""归档件 (an archive item by its 档号): facts, documents, the verification of its signed PDF/A, and the PDF itself.

Read-only. The verification and the download are the API's own (archive.items.verify,
archive.api.files.rendition_response), so each registers the same access event (利用登记) as there.
Included by the filing pages' router: filing is where people come from.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from archive import items
from archive.api.deps import UnitOfWork, context
from archive.api.files import rendition_response
from archive.catalogue.models import ArchiveItem
from archive.classification import RetentionCode, Trigger
from archive.context import Context
from archive.permissions import Permission, Principal
from archive.web.deps import require
from archive.web.render import render

router = APIRouter(prefix="/items")
PURPOSE = "柜面核验"  # what the access register says these reads were for
CHECK_NAMES = {"readable": "可读性", "signature_present": "电子签名", "pdfa": "PDF/A 格式",
               "fixity": "固定性（摘要比对）",
               "signature_intact": "签名完整性", "signature_valid": "签名有效性", "certificate_trusted": "证书链",
               "signing_time": "签章时间", "timestamp": "时间戳", "coverage": "签名覆盖范围",
               "contents_padding": "签名容器", "signature_container": "签名结构"}


@dataclass(frozen=True)
class ItemFacts:
    """What a person reads about an item's retention and signature, in words."""

    retention: str  # 保管期限 in force, e.g. 定期30年
    filed_retention: str  # the one in the 档号, if different
    trigger: str  # 起算事件, e.g. 业务办结
    signature: str  # PAdES B-T（带时间戳）


def facts(ctx: Context, item: ArchiveItem) -> ItemFacts:
    trigger = ctx.schedule.triggers.get(Trigger(item.trigger)) if item.trigger in Trigger.__members__ else None
    level = str((item.signature or {}).get("level") or "")
    signature = {"B-T": "PAdES B-T（带可信时间戳）", "B-B": "PAdES B-B（无时间戳）"}.get(level, level or "无签章")
    return ItemFacts(RetentionCode(item.effective_retention).label, RetentionCode(item.retention_code).label,
                     trigger.name if trigger else item.trigger, signature)


@router.get("/{archival_code}")
def item_page(archival_code: str, request: Request, ctx: Context = Depends(context), db: Session = UnitOfWork,
              principal: Principal = Depends(require(Permission.ITEM_READ))) -> Response:
    item, report = items.verify(ctx, db, principal, archival_code, PURPOSE)
    return render(request, "item.html", item=item, case=item.case, report=report, facts=facts(ctx, item),
                  check_names=CHECK_NAMES,
                  schedule=ctx.schedule,
                  full_pii=principal.can(Permission.PII_READ), can_download=principal.can(Permission.FILE_READ))


@router.get("/{archival_code}/rendition.pdf")
def rendition(archival_code: str, request: Request, ctx: Context = Depends(context), db: Session = UnitOfWork,
              principal: Principal = Depends(require(Permission.ITEM_READ))) -> Response:
    """The signed PDF/A (with 下载档案文件, or under a lending grant), its read registered like the API's."""
    return rendition_response(ctx, request, db, principal, archival_code, PURPOSE)
