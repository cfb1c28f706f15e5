"""Rules on cases (业务): identifiers, parties, dates, and their agreement across cases."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import Executable, bindparam, func, select
from sqlalchemy.orm import Session

from archive.catalogue.models import Case
from archive.catalogue.types import utcnow
from archive.context import Context
from archive.dq.registry import Failure, Scope, rule, table_of, with_source
from archive.errors import InvalidInput
from archive.identifiers import validate_id_number, validate_mobile, validate_uscc

CHUNK = 20_000
SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{5,63}")  # archive.capture.cases.SERIAL (capture imports dq)
_NAME = re.compile(r"[\u4e00-\u9fa5·•A-Za-z .]{1,100}")


def _rows(session: Session, query: Executable) -> Iterator[Any]:
    yield from session.execute(query.execution_options(yield_per=CHUNK))


def _case_failures(session: Session, scope: Scope, where: Any, message: str, *columns: Any) -> Iterator[Failure]:
    q = scope.cases(select(Case.serial, Case.branch, *columns).where(where))
    for row in _rows(session, q):
        yield Failure("case", row.serial, row.serial, message, row.branch,
                      {c.key: _plain(getattr(row, c.key)) for c in columns})


def elapsed_days(session: Session, later: Any, earlier: Any) -> Any:
    """SQL for the days from ``earlier`` to ``later`` (fractional), the same on SQLite and PostgreSQL."""
    if session.get_bind().dialect.name == "sqlite":
        return func.julianday(later) - func.julianday(earlier)
    return func.extract("epoch", later - earlier) / 86400.0


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _invalid(check: Any, value: str) -> str | None:
    try:
        check(value)
    except InvalidInput as exc:
        return exc.message
    return None


# --- accuracy: check digits and formats ------------------------------------------------------------------------


@rule("DQ-CA-001", "证件号码校验位", dimension="accuracy", object="case", severity="block", owner="business",
      where="both", kind="python",
      hint="核对申请人身份证件，按证件重新录入18位证件号码（末位校验码可能为X）")
def id_number_check_digit(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    q = scope.cases(select(Case.serial, Case.branch, Case.applicant_id_number)
                    .where(Case.applicant_id_number.is_not(None)))
    for row in _rows(session, q):
        reason = _invalid(validate_id_number, row.applicant_id_number)
        if reason:
            yield Failure("case", row.serial, row.serial, reason, row.branch,
                          {"applicant_id_number": row.applicant_id_number})


def _id_number_source(ctx: Context, session: Session, values: Mapping[str, Any]) -> str | None:
    v = values.get("applicant_id_number")
    return _invalid(validate_id_number, v) if v else None


with_source("DQ-CA-001", _id_number_source)


@rule("DQ-CA-002", "统一社会信用代码校验位", dimension="accuracy", object="case", severity="block",
      owner="business", where="both", kind="python",
      hint="核对单位营业执照，重新录入18位统一社会信用代码")
def uscc_check_digit(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    q = scope.cases(select(Case.serial, Case.branch, Case.unit_uscc).where(Case.unit_uscc.is_not(None)))
    for row in _rows(session, q):
        reason = _invalid(validate_uscc, row.unit_uscc)
        if reason:
            yield Failure("case", row.serial, row.serial, reason, row.branch, {"unit_uscc": row.unit_uscc})


with_source("DQ-CA-002", lambda ctx, s, v: _invalid(validate_uscc, v["unit_uscc"]) if v.get("unit_uscc") else None)


@rule("DQ-CA-003", "手机号码格式", dimension="conformity", object="case", severity="warn", owner="business",
      where="batch", kind="python",
      hint="向申请人核实手机号码，按11位数字重新录入")
def mobile_format(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    q = scope.cases(select(Case.serial, Case.branch, Case.applicant_mobile)
                    .where(Case.applicant_mobile.is_not(None)))
    for row in _rows(session, q):
        reason = _invalid(validate_mobile, row.applicant_mobile)
        if reason:
            yield Failure("case", row.serial, row.serial, reason, row.branch,
                          {"applicant_mobile": row.applicant_mobile})


def _name_problem(name: str | None) -> str | None:
    if name is None:
        return None
    if not _NAME.fullmatch(name) or name != name.strip():
        return f"申请人姓名“{name}”含有数字、符号或首尾空格"
    return None


@rule("DQ-CA-004", "申请人姓名规范", dimension="conformity", object="case", severity="block", owner="business",
      where="both", kind="python",
      hint="按证件上的姓名录入，不含数字、符号和空格（少数民族姓名的间隔号用“·”）")
def name_format(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    q = scope.cases(select(Case.serial, Case.branch, Case.applicant_name).where(Case.applicant_name.is_not(None)))
    for row in _rows(session, q):
        reason = _name_problem(row.applicant_name)
        if reason:
            yield Failure("case", row.serial, row.serial, reason, row.branch, {"applicant_name": row.applicant_name})


with_source("DQ-CA-004", lambda ctx, s, v: _name_problem(v.get("applicant_name")))


# --- consistency: the same person, the same unit -----------------------------------------------------------------


@rule("DQ-CA-005", "同一证件号码的姓名一致", dimension="consistency", object="case", severity="warn",
      owner="business", where="both", hint="核对证件，更正录错的姓名或证件号码（同一证件号码只能对应一个姓名）")
def name_id_agreement(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    conflicting = (select(Case.applicant_id_number).where(Case.applicant_id_number.is_not(None))
                   .group_by(Case.applicant_id_number).having(func.count(func.distinct(Case.applicant_name)) > 1))
    q = scope.cases(select(Case.serial, Case.branch, Case.applicant_id_number, Case.applicant_name)
                    .where(Case.applicant_id_number.in_(conflicting.scalar_subquery())))
    for row in _rows(session, q):
        yield Failure("case", row.serial, row.serial,
                      f"证件号码相同的业务中申请人姓名不一致（本业务为“{row.applicant_name}”）", row.branch,
                      {"applicant_id_number": row.applicant_id_number, "applicant_name": row.applicant_name})


_OTHER_NAME = select(Case.applicant_name).where(Case.applicant_id_number == bindparam("number"),
                                               Case.applicant_name != bindparam("name")).limit(1)


def _name_id_source(ctx: Context, session: Session, values: Mapping[str, Any]) -> str | None:
    number, name = values.get("applicant_id_number"), values.get("applicant_name")
    if not number or not name:
        return None
    other = session.execute(_OTHER_NAME, {"number": number, "name": name}).scalar()
    return None if other is None else f"该证件号码在以前的业务中登记的姓名为“{other}”，与本次“{name}”不一致"


with_source("DQ-CA-005", _name_id_source)


@rule("DQ-CA-006", "同一统一社会信用代码的单位名称一致", dimension="consistency", object="case",
      severity="warn", owner="business", hint="核对营业执照，统一单位名称的写法")
def unit_name_agreement(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    conflicting = (select(Case.unit_uscc).where(Case.unit_uscc.is_not(None))
                   .group_by(Case.unit_uscc).having(func.count(func.distinct(Case.unit_name)) > 1))
    q = scope.cases(select(Case.serial, Case.branch, Case.unit_uscc, Case.unit_name)
                    .where(Case.unit_uscc.in_(conflicting.scalar_subquery())))
    for row in _rows(session, q):
        yield Failure("case", row.serial, row.serial,
                      f"统一社会信用代码相同的业务中单位名称不一致（本业务为“{row.unit_name}”）", row.branch,
                      {"unit_uscc": row.unit_uscc, "unit_name": row.unit_name})


# --- conformity: serials --------------------------------------------------------------------------------------


@rule("DQ-CA-007", "业务流水号格式", dimension="conformity", object="case", severity="block", owner="it",
      where="both", kind="python",
      hint="业务流水号应为6-64位字母、数字、下划线或连字符，由业务系统按规则生成")
def serial_pattern(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    for row in _rows(session, scope.cases(select(Case.serial, Case.branch))):
        if not SERIAL.fullmatch(row.serial):
            yield Failure("case", row.serial, row.serial, f"业务流水号“{row.serial}”格式不符合规则", row.branch)


with_source("DQ-CA-007", lambda ctx, s, v: None if SERIAL.fullmatch(v["serial"]) else "业务流水号格式不符合规则")


@rule("DQ-CA-008", "业务流水号唯一（不区分大小写）", dimension="consistency", object="case", severity="error",
      owner="it", hint="同一笔业务只能有一个业务流水号：核对业务系统，合并或更正重复登记的业务")
def serial_unique(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    dup = select(func.upper(Case.serial)).group_by(func.upper(Case.serial)).having(func.count() > 1)
    q = scope.cases(select(Case.serial, Case.branch).where(func.upper(Case.serial).in_(dup.scalar_subquery())))
    for row in _rows(session, q):
        yield Failure("case", row.serial, row.serial, f"业务流水号“{row.serial}”与另一业务仅大小写不同", row.branch)


# --- accuracy: dates ---------------------------------------------------------------------------------------------


@rule("DQ-CA-009", "受理时间不晚于办结时间", dimension="accuracy", object="case", severity="error",
      owner="business", hint="核对业务系统的受理和办结时间，更正录错的一项")
def accepted_before_closed(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    return _case_failures(session, scope, Case.closed_at < Case.accepted_at, "办结时间早于受理时间",
                          Case.accepted_at, Case.closed_at)


@rule("DQ-CA-010", "受理时间不在将来", dimension="accuracy", object="case", severity="block", owner="it",
      where="both", hint="检查业务系统和柜面电脑的时钟，按实际受理时间重新提交")
def accepted_not_in_future(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    return _case_failures(session, scope, Case.accepted_at > scope.now + timedelta(hours=1), "受理时间晚于当前时间",
                          Case.accepted_at)


def _future_source(ctx: Context, session: Session, values: Mapping[str, Any]) -> str | None:
    return "受理时间晚于当前时间" if values["accepted_at"] > utcnow() + timedelta(hours=1) else None


with_source("DQ-CA-010", _future_source)


# --- completeness --------------------------------------------------------------------------------------------


@rule("DQ-CA-011", "贷款业务有贷款合同号", dimension="completeness", object="case", severity="error",
      owner="business", hint="补录贷款合同号（贷款结清后据此起算保管期限）")
def loan_contract_present(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    return _case_failures(session, scope, (Case.category == "DK") & Case.loan_contract_no.is_(None),
                          "贷款业务缺少贷款合同号")


@rule("DQ-CA-012", "提取、贷款业务有申请人证件号码", dimension="completeness", object="case", severity="error",
      owner="business", hint="补录申请人姓名和证件号码")
def applicant_present(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    return _case_failures(session, scope, Case.category.in_(("TQ", "DK")) & Case.applicant_id_number.is_(None),
                          "提取或贷款业务缺少申请人证件号码")


@rule("DQ-CA-013", "已办结业务有办结结果和业务行为", dimension="completeness", object="case", severity="error",
      owner="business", hint="由业务系统补报办结结果（approved/rejected/withdrawn）和受理、审批、办结记录")
def outcome_present(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    return _case_failures(session, scope, Case.closed_at.is_not(None) & (Case.outcome.is_(None) | Case.trail.is_(None)),
                          "已办结的业务缺少办结结果或业务行为记录")


@rule("DQ-CA-014", "业务类型在分类方案中", dimension="conformity", object="case", severity="error",
      owner="archive", hint="按现行分类方案更正业务类型代码，或在分类方案中补充该业务类型")
def business_type_known(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    known = tuple(ctx.schedule.types)
    return _case_failures(session, scope, Case.business_type.not_in(known), "业务类型不在现行分类方案中",
                          Case.business_type)


@rule("DQ-CA-015", "类别与业务类型一致", dimension="consistency", object="case", severity="error",
      owner="archive", hint="按分类方案更正业务的类别")
def category_matches_type(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    cats = table_of("categories", ((code, bt.category) for code, bt in ctx.schedule.types.items()))
    q = scope.cases(select(Case.serial, Case.branch, Case.business_type, Case.category, cats.c.b.label("expected"))
                    .join(cats, cats.c.a == Case.business_type).where(Case.category != cats.c.b))
    for row in _rows(session, q):
        yield Failure("case", row.serial, row.serial, f"业务类型 {row.business_type} 属于类别 {row.expected}，"
                      "业务登记的类别不同", row.branch, {"category": row.category})


# --- timeliness ----------------------------------------------------------------------------------------------


@rule("DQ-CA-016", "办结后按期归档", dimension="timeliness", object="case", severity="error", owner="archive",
      hint="办结超过归档期限仍未归档：补齐材料后办结归档，或说明原因")
def closed_not_filed(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    due = scope.now - timedelta(days=ctx.settings.filing_due_days)
    return _case_failures(session, scope, (Case.status == "open") & (Case.closed_at < due),
                          f"办结超过 {ctx.settings.filing_due_days} 天仍未归档", Case.closed_at)


@rule("DQ-CA-017", "受理后长期未办结", dimension="timeliness", object="case", severity="warn", owner="business",
      hint="业务受理已久仍未办结：请业务系统报送办结，或撤销登记")
def open_too_long(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    since = scope.now - timedelta(days=ctx.settings.dq_open_case_days)
    return _case_failures(session, scope, (Case.status == "open") & Case.closed_at.is_(None)
                          & (Case.accepted_at < since), f"受理超过 {ctx.settings.dq_open_case_days} 天仍未办结")


@rule("DQ-CA-018", "办理网点和经办人", dimension="completeness", object="case", severity="error",
      owner="business", hint="补录办理网点和经办人")
def branch_clerk_present(ctx: Context, session: Session, scope: Scope) -> Iterable[Failure]:
    return _case_failures(session, scope, (Case.branch == "") | (Case.clerk == ""), "缺少办理网点或经办人")
