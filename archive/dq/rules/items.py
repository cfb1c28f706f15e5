"""Rules on filed items (归档件): 档号, GB/T 18894 metadata, dates, retention and schedule, holds and loans."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from archive.archival_code import CodeParts
from archive.catalogue.models import (
    ArchiveItem,
    Case,
    Hold,
    HoldItem,
    LendingItem,
    LendingRequest,
    PaperLoan,
    PaperLoanItem,
    ScheduleVersion,
)
from archive.context import Context
from archive.dq.registry import Failure, Scope, rule, table_of
from archive.dq.rules.cases import _invalid, _plain, _rows, elapsed_days


def _items(scope: Scope, *columns: Any) -> Any:
    return scope.cases(select(ArchiveItem.archival_code, Case.serial, Case.branch, *columns)
                       .join(Case, ArchiveItem.case_id == Case.id))


def _failures(session: Session, scope: Scope, where: Any, message: str, *columns: Any) -> Iterable[Failure]:
    for row in _rows(session, _items(scope, *columns).where(where)):
        yield Failure("item", row.archival_code, row.serial, message, row.branch,
                      {c.key: _plain(getattr(row, c.key)) for c in columns})


FILED = ArchiveItem.status == "filed"


@rule("DQ-IT-001", "档号符合档号规则并与条目一致", dimension="conformity", object="item", severity="error",
      owner="archive", kind="python",
      hint="档号与档号规则或条目的全宗号、年度、保管期限、类别、件号不一致：核对后由档案部门更正条目")
def archival_code_pattern(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    cols = (ArchiveItem.fonds_code, ArchiveItem.year, ArchiveItem.retention_code, ArchiveItem.category,
            ArchiveItem.number)
    for row in _rows(session, _items(scope, *cols)):
        expected = CodeParts(row.fonds_code, row.year, row.retention_code, row.category, row.number)
        reason = _invalid(ctx.code_rule.parse, row.archival_code)
        if reason is None:
            diffs = ctx.code_rule.check(row.archival_code, expected)
            reason = "；".join(diffs) if diffs else None
        if reason:
            yield Failure("item", row.archival_code, row.serial, reason, row.branch)


@rule("DQ-IT-002", "档号唯一（不区分大小写）", dimension="consistency", object="item", severity="error",
      owner="archive", hint="档号重复：核对两件档案，由档案部门更正其中录错的一件")
def archival_code_unique(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    dup = (select(func.upper(ArchiveItem.archival_code)).group_by(func.upper(ArchiveItem.archival_code))
           .having(func.count() > 1))
    return _failures(session, scope, func.upper(ArchiveItem.archival_code).in_(dup.scalar_subquery()),
                     "档号与另一件档案重复")


@rule("DQ-IT-003", "归档件元数据齐全（GB/T 18894）", dimension="completeness", object="item", severity="error",
      owner="archive", hint="归档件缺少版式文件、摘要值、电子签名或分类方案版本：检查归档过程，必要时重新核验")
def metadata_present(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    missing = (ArchiveItem.rendition_key.is_(None) | ArchiveItem.rendition_sha256.is_(None)
               | ArchiveItem.rendition_sm3.is_(None) | ArchiveItem.signature.is_(None)
               | (ArchiveItem.schedule_version == "") | (ArchiveItem.trigger == ""))
    return _failures(session, scope, FILED & missing, "缺少版式文件、SHA-256/SM3 摘要、签名信息或分类方案版本")


@rule("DQ-IT-004", "办结时间不晚于归档时间", dimension="accuracy", object="item", severity="error",
      owner="business", hint="核对业务系统报送的办结时间")
def closed_before_filed(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    late = Case.closed_at.is_(None) | (elapsed_days(session, Case.closed_at, ArchiveItem.filed_at) > 5 / 1440)
    return _failures(session, scope, late, "办结时间缺失或晚于归档时间", Case.closed_at, ArchiveItem.filed_at)


@rule("DQ-IT-005", "归档及时（办结后规定天数内归档）", dimension="timeliness", object="item", severity="warn",
      owner="archive", hint="超期归档：分析原因（材料不齐、系统故障），督促网点办结即归档")
def filed_on_time(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    days = ctx.settings.filing_due_days
    late = elapsed_days(session, ArchiveItem.filed_at, Case.closed_at) > days
    return _failures(session, scope, late, f"办结后超过 {days} 天才归档", Case.closed_at, ArchiveItem.filed_at)


@rule("DQ-IT-006", "保管期限与现行分类方案一致", dimension="consistency", object="item", severity="warn",
      owner="archive", hint="按现行分类方案的保管期限表核对；确需调整的通过“重新适用分类方案”或鉴定办理")
def retention_matches_schedule(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    current = session.scalars(select(ScheduleVersion.ref).where(ScheduleVersion.label == ctx.schedule.version)).all()
    periods = table_of("periods", ((code, bt.retention.value) for code, bt in ctx.schedule.types.items()))
    effective = func.coalesce(ArchiveItem.current_retention, ArchiveItem.retention_code)
    q = (_items(scope, Case.business_type, ArchiveItem.retention_code, ArchiveItem.schedule_version,
                periods.c.b.label("expected"))
         .join(periods, periods.c.a == Case.business_type)
         .where(FILED, effective != periods.c.b, ArchiveItem.schedule_version.in_(current)))
    for row in _rows(session, q):
        bt = ctx.schedule.types[row.business_type]
        yield Failure("item", row.archival_code, row.serial, f"保管期限与分类方案 {ctx.schedule.version} 中{bt.name}"
                      f"的{bt.retention.label}不一致", row.branch,
                      {"retention_code": row.retention_code, "schedule_version": row.schedule_version})


@rule("DQ-IT-007", "分类方案版本已登记", dimension="consistency", object="item", severity="error",
      owner="archive", hint="归档件引用的分类方案版本未登记：运行 archive schedule record 登记该版本")
def schedule_version_known(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    known = select(ScheduleVersion.ref)
    return _failures(session, scope, ArchiveItem.schedule_version.not_in(known), "分类方案版本未登记",
                     ArchiveItem.schedule_version)


@rule("DQ-IT-008", "起算事件久未发生", dimension="timeliness", object="item", severity="warn", owner="business",
      hint="贷款结清、账户销户等事件久未报送：核对业务系统，补报事件（archive 事件接口）")
def trigger_pending_too_long(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    years = ctx.settings.dq_trigger_pending_years
    before = scope.now - timedelta(days=365 * years)
    where = FILED & (ArchiveItem.trigger != "BUSINESS_CLOSED") & ArchiveItem.trigger_date.is_(None) & \
        (ArchiveItem.filed_at < before)
    return _failures(session, scope, where, f"归档超过 {years} 年起算事件仍未报送", ArchiveItem.trigger)


@rule("DQ-IT-009", "已起算的定期档案有到期日", dimension="accuracy", object="item", severity="error",
      owner="archive", hint="起算日期已有但到期日缺失：重新计算保管期限")
def expiry_present(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    effective = func.coalesce(ArchiveItem.current_retention, ArchiveItem.retention_code)
    where = FILED & ArchiveItem.trigger_date.is_not(None) & ArchiveItem.expiry_date.is_(None) & (effective != "Y")
    return _failures(session, scope, where, "定期档案已起算但没有到期日", ArchiveItem.trigger_date)


@rule("DQ-IT-010", "冻结的档案仍然存在", dimension="consistency", object="item", severity="error",
      owner="archive", hint="有效冻结覆盖了已销毁的档案：核对销毁过程，并通知冻结机关")
def held_items_exist(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    held = select(HoldItem.item_id).join(Hold, Hold.id == HoldItem.hold_id).where(Hold.status == "active")
    return _failures(session, scope, (ArchiveItem.status != "filed") & ArchiveItem.id.in_(held),
                     "有效冻结中的档案已不存在（已销毁）")


@rule("DQ-IT-011", "借出或授权利用的档案仍然存在", dimension="consistency", object="item", severity="error",
      owner="archive", hint="借出未还或有效授权的档案已销毁：核对借阅登记与销毁清册")
def lent_items_exist(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    out = select(PaperLoanItem.item_id).join(PaperLoan, PaperLoan.id == PaperLoanItem.loan_id).where(
        PaperLoan.status == "out")
    granted = select(LendingItem.item_id).join(LendingRequest, LendingRequest.id == LendingItem.request_id).where(
        LendingRequest.status == "approved", LendingRequest.expires_at > scope.now)
    gone = ArchiveItem.status != "filed"
    yield from _failures(session, scope, gone & ArchiveItem.id.in_(out), "借出未还的档案已不存在（已销毁）")
    yield from _failures(session, scope, gone & ArchiveItem.id.in_(granted), "有效利用授权中的档案已不存在（已销毁）")


@rule("DQ-IT-012", "业务状态与归档件一致", dimension="consistency", object="case", severity="error",
      owner="it", hint="业务标为已归档却没有归档件（或相反）：检查归档过程，联系信息部门")
def case_item_agreement(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    q = scope.cases(select(Case.serial, Case.branch, Case.status)
                    .outerjoin(ArchiveItem, ArchiveItem.case_id == Case.id)
                    .where(((Case.status == "filed") & ArchiveItem.id.is_(None))
                           | ((Case.status == "open") & ArchiveItem.id.is_not(None))))
    for row in _rows(session, q):
        yield Failure("case", row.serial, row.serial, "业务状态与归档件不一致", row.branch, {"status": row.status})


@rule("DQ-IT-013", "保管期限代码有效", dimension="conformity", object="item", severity="error", owner="archive",
      hint="保管期限只能为 Y、D30、D10：由档案部门鉴定后更正")
def retention_code_valid(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    bad = ArchiveItem.retention_code.not_in(("Y", "D30", "D10")) | \
        (ArchiveItem.current_retention.is_not(None) & ArchiveItem.current_retention.not_in(("Y", "D30", "D10")))
    return _failures(session, scope, bad, "保管期限代码无效", ArchiveItem.retention_code)
