"""Data quality (数据质量): rules, batch runs, findings (问题数据) and their correction, reconciliation, figures."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from archive.api.deps import UnitOfWork, actor_of, context, require
from archive.api.params import Id
from archive.catalogue.models import DqRun
from archive.context import Context
from archive.dq import corrections, findings, plans, reconcile, reports, service
from archive.dq.rules import all_rules, get_rule
from archive.permissions import Permission, Principal

router = APIRouter(prefix="/api/v1/dq", tags=["data-quality"])
P = Permission
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "缺少权限（permission_denied）"},
    404: {"description": "规则、检核批次或问题数据不存在"
                         "（dq_rule_not_found / dq_run_not_found / dq_finding_not_found）"},
    409: {"description": "问题数据的状态不允许此操作（dq_finding_wrong_status …）"},
    422: {"description": "参数有误；更正后仍不符合规则（dq_correction_still_failing）"},
}


class RuleOut(BaseModel):
    code: str = Field(examples=["DQ-CA-001"])
    name: str
    dimension: str = Field(description="completeness 完整性 / accuracy 准确性 / consistency 一致性 / "
                                       "conformity 规范性 / timeliness 及时性")
    dimension_name: str
    object: str = Field(description="case / document / item / import_row")
    object_name: str
    severity: str = Field(description="block 阻断（源头拒收）/ error 错误 / warn 警告")
    severity_name: str
    where: str = Field(description="source / batch / both / reconciliation")
    where_name: str
    version: int
    owner: str
    owner_name: str
    hint: str


class RunIn(BaseModel):
    rules: list[str] | None = Field(None, max_length=200, description="规则编号；不填则运行全部批量规则")
    since: datetime | None = Field(None, description="只检核此后有变动的业务（带时区）")


class RunOut(BaseModel):
    id: int
    status: str
    rules: dict[str, int]
    since: datetime | None
    done_rules: list[str]
    counts: dict[str, Any]
    rule_errors: list[dict[str, Any]]
    started_by: str
    started_at: datetime
    finished_at: datetime | None


class RunStarted(BaseModel):
    run_id: int
    job_id: int = Field(description="后台任务编号：GET /ui/jobs/{id} 查看进度")


class FindingOut(BaseModel):
    id: int
    rule_code: str
    rule_version: int
    dimension: str
    severity: str
    object_type: str
    object_key: str
    serial: str | None
    key_values: dict[str, Any] = Field(description="问题值；无权查看完整个人信息的，证件号码和手机号已遮蔽")
    message: str
    branch: str | None
    status: str = Field(description="open / assigned / fixing / submitted / verified / waiver_proposed / waived")
    status_name: str
    owner: str | None
    owner_kind: str | None
    due_date: date | None
    first_seen: datetime
    last_seen: datetime
    seen_count: int
    resolved_at: datetime | None
    resolved_by: str | None
    waive_reason: str | None
    history: list[dict[str, Any]]


class AssignIn(BaseModel):
    owner: str = Field(min_length=1, max_length=100, description="责任部门、网点或受委托银行", examples=["归集科"])
    owner_kind: str = Field("department", description="department 部门 / branch 网点 / bank 受委托银行")
    due_date: date | None = Field(None, description="整改期限；不填按 ARCHIVE_DQ_FINDING_DUE_DAYS")


class CorrectionIn(BaseModel):
    field: str = Field(max_length=40, description="著录项，例如 applicant_name、applicant_id_number")
    value: str | None = Field(None, max_length=500, description="更正后的值")
    reason: str = Field(min_length=2, max_length=500, description="更正依据")


class CorrectionOut(BaseModel):
    id: int
    finding_id: int | None
    serial: str
    field: str
    by: str
    at: datetime
    finding: FindingOut


class NoteIn(BaseModel):
    note: str | None = Field(None, max_length=500, description="整改说明（在业务系统或线下完成的整改）")


class ReasonIn(BaseModel):
    reason: str = Field(min_length=2, max_length=500, description="豁免理由")


class PlanChange(BaseModel):
    serial: str = Field(min_length=1, max_length=64)
    field: str = Field(max_length=40, description="著录项，例如 applicant_name")
    value: str | None = Field(None, max_length=500)


class PlanIn(BaseModel):
    title: str = Field(min_length=1, max_length=200, description="方案名称")
    reason: str = Field(min_length=2, max_length=500, description="治理理由与依据")
    changes: list[PlanChange] = Field(min_length=1, max_length=plans.MAX_CHANGES)


class PlanOut(BaseModel):
    id: int
    title: str
    reason: str
    status: str = Field(description="proposed 待审批 / approved 已批准 / applied 已执行 / rolled_back 已回退")
    changes: list[dict[str, Any]]
    proposed_by: str
    approved_by: str | None
    applied_at: datetime | None
    rolled_back_at: datetime | None


class ReportedCase(BaseModel):
    serial: str = Field(min_length=1, max_length=64)
    business_type: str = Field(min_length=1, max_length=16)


class ReconcileIn(BaseModel):
    day: date = Field(description="办结日期（本地日期）")
    cases: list[ReportedCase] = Field(max_length=reconcile.MAX_CASES, description="业务系统当天办结的业务")


class ReconcileOut(BaseModel):
    id: int
    day: date
    reported: int
    filed: int
    counts: dict[str, int] = Field(description="closed_not_filed 已办结未归档 / filed_unknown 已归档但清单中没有 / "
                                               "type_mismatch 业务类型不一致")
    filing_rate: float | None = Field(description="归档率：清单中已归档的比例")


def _finding(f: Any, principal: Principal) -> FindingOut:
    return FindingOut(**findings.masked(findings.as_dict(f), principal.can(P.PII_READ)))


@router.get("/rules", response_model=list[RuleOut],
            summary="数据质量规则（编号、维度、对象、级别、版本、责任部门、整改提示）")
def rules(_: Principal = Depends(require(P.DQ_READ))) -> list[RuleOut]:
    return [RuleOut(**r.describe()) for r in all_rules()]


@router.get("/rules/{code}", response_model=RuleOut, responses=_ERRORS, summary="一条规则")
def rule(code: str, _: Principal = Depends(require(P.DQ_READ))) -> RuleOut:
    return RuleOut(**get_rule(code).describe())


@router.post("/runs", response_model=RunStarted, status_code=202, responses=_ERRORS,
             summary="开始一次批量检核（后台任务，可续跑）")
def start_run(body: RunIn, ctx: Context = Depends(context), session: Session = UnitOfWork,
              principal: Principal = Depends(require(P.DQ_RUN))) -> RunStarted:
    run_id, job_id = service.start_run_job(ctx, session, principal, body.rules, body.since)
    return RunStarted(run_id=run_id, job_id=job_id)


@router.get("/runs", response_model=list[RunOut], summary="检核批次，最新在前")
def list_runs(limit: int = Query(20, ge=1, le=500), session: Session = UnitOfWork,
              _: Principal = Depends(require(P.DQ_READ))) -> list[RunOut]:
    rows = session.scalars(select(DqRun).order_by(DqRun.id.desc()).limit(limit))
    return [RunOut.model_validate(r, from_attributes=True) for r in rows]


@router.get("/runs/{run_id}", response_model=RunOut, responses=_ERRORS, summary="一次检核的进度、计数和规则错误")
def get_run(run_id: Id, session: Session = UnitOfWork, _: Principal = Depends(require(P.DQ_READ))) -> RunOut:
    return RunOut.model_validate(service.get_run(session, run_id), from_attributes=True)


@router.get("/findings", response_model=list[FindingOut], responses=_ERRORS,
            summary="问题数据（筛选；按编号倒序，after_id 翻页）")
def list_findings(rule: str | None = Query(None, max_length=16), dimension: str | None = Query(None, max_length=16),
                  severity: str | None = Query(None, max_length=8), status: str | None = Query(None, max_length=16),
                  owner: str | None = Query(None, max_length=100), branch: str | None = Query(None, max_length=32),
                  serial: str | None = Query(None, max_length=64),
                  live: bool = Query(False, description="只列未关闭的"),
                  after_id: int | None = Query(None, ge=1, le=2**62), limit: int = Query(100, ge=1, le=1000),
                  session: Session = UnitOfWork,
                  principal: Principal = Depends(require(P.DQ_READ))) -> list[FindingOut]:
    q = findings.query(rule=rule, dimension=dimension, severity=severity, status=status, owner=owner, branch=branch,
                       serial=serial, live=live, after_id=after_id, limit=limit)
    return [_finding(f, principal) for f in session.scalars(q)]


@router.get("/findings.xlsx", responses=_ERRORS, summary="导出问题数据清单（XLSX，供没有系统账号的责任部门）",
            response_class=Response)
def export_findings(owner: str | None = Query(None, max_length=100), live: bool = Query(True),
                    session: Session = UnitOfWork, principal: Principal = Depends(require(P.DQ_READ))) -> Response:
    data = service.export_findings(session, actor_of(principal), owner, live)
    return Response(data, media_type=XLSX, headers={"Content-Disposition": "attachment; filename=dq-findings.xlsx"})


@router.get("/findings/{finding_id}", response_model=FindingOut, responses=_ERRORS, summary="一条问题数据及其处理经过")
def get_finding(finding_id: Id, session: Session = UnitOfWork,
                principal: Principal = Depends(require(P.DQ_READ))) -> FindingOut:
    return _finding(findings.get(session, finding_id), principal)


@router.post("/findings/{finding_id}/assign", response_model=FindingOut, responses=_ERRORS, summary="分派")
def assign(finding_id: Id, body: AssignIn, ctx: Context = Depends(context), session: Session = UnitOfWork,
           principal: Principal = Depends(require(P.DQ_ASSIGN))) -> FindingOut:
    f = findings.assign(session, actor_of(principal), finding_id, body.owner, body.owner_kind, body.due_date,
                        ctx.settings.dq_finding_due_days)
    return _finding(f, principal)


@router.post("/findings/{finding_id}/fixing", response_model=FindingOut, responses=_ERRORS, summary="开始整改")
def fixing(finding_id: Id, session: Session = UnitOfWork,
           principal: Principal = Depends(require(P.DQ_FIX))) -> FindingOut:
    return _finding(findings.start_fixing(session, actor_of(principal), finding_id), principal)


@router.post("/findings/{finding_id}/corrections", response_model=CorrectionOut, status_code=201,
             responses=_ERRORS, summary="著录更正：更正后立即按规则复查，仍不通过的拒绝且不作修改；通过的提交复核")
def correct(finding_id: Id, body: CorrectionIn, ctx: Context = Depends(context), session: Session = UnitOfWork,
            principal: Principal = Depends(require(P.DQ_FIX))) -> CorrectionOut:
    row = corrections.correct(ctx, session, actor_of(principal), finding_id, body.field, body.value, body.reason)
    return CorrectionOut(id=row.id, finding_id=row.finding_id, serial=row.serial, field=row.field, by=row.by,
                         at=row.at, finding=_finding(findings.get(session, finding_id), principal))


@router.post("/findings/{finding_id}/submit", response_model=FindingOut, responses=_ERRORS,
             summary="提交整改（在业务系统或线下完成的），待复核")
def submit(finding_id: Id, body: NoteIn | None = None, session: Session = UnitOfWork,
           principal: Principal = Depends(require(P.DQ_FIX))) -> FindingOut:
    f = findings.submit(session, actor_of(principal), findings.get(session, finding_id), body.note if body else None)
    return _finding(f, principal)


@router.post("/findings/{finding_id}/verify", response_model=FindingOut, responses=_ERRORS,
             summary="复核：重新按规则检核该对象，通过则关闭，不通过则退回")
def verify(finding_id: Id, ctx: Context = Depends(context), session: Session = UnitOfWork,
           principal: Principal = Depends(require(P.DQ_VERIFY))) -> FindingOut:
    return _finding(corrections.verify(ctx, session, actor_of(principal), finding_id), principal)


@router.post("/findings/{finding_id}/waiver", response_model=FindingOut, responses=_ERRORS,
             summary="申请豁免（须由另一人批准）")
def propose_waiver(finding_id: Id, body: ReasonIn, session: Session = UnitOfWork,
                   principal: Principal = Depends(require(P.DQ_FIX, P.DQ_ASSIGN))) -> FindingOut:
    return _finding(findings.propose_waiver(session, actor_of(principal), finding_id, body.reason), principal)


@router.post("/findings/{finding_id}/waive", response_model=FindingOut, responses=_ERRORS,
             summary="批准豁免（申请人以外的人员）")
def waive(finding_id: Id, session: Session = UnitOfWork,
          principal: Principal = Depends(require(P.DQ_VERIFY))) -> FindingOut:
    return _finding(findings.waive(session, actor_of(principal), finding_id), principal)


@router.post("/reconciliations", response_model=ReconcileOut, status_code=201, responses=_ERRORS,
             summary="数据比对：业务系统报送某日办结的业务清单，返回已办结未归档、已归档未报送、类型不一致和归档率")
def reconciliation(body: ReconcileIn, ctx: Context = Depends(context), session: Session = UnitOfWork,
                   principal: Principal = Depends(require(P.DQ_RUN))) -> ReconcileOut:
    reported = [reconcile.Reported(c.serial, c.business_type) for c in body.cases]
    row = reconcile.reconcile(ctx, session, actor_of(principal), body.day, reported)
    return ReconcileOut.model_validate(row, from_attributes=True)


@router.get("/stats",
            summary="数据质量统计：按规则、维度、网点、责任方的问题数和问题数据率，整改率，平均整改时长，趋势")
def stats(session: Session = UnitOfWork, _: Principal = Depends(require(P.DQ_READ))) -> dict[str, Any]:
    return reports.stats(session)


@router.get("/reports/monthly.xlsx", response_class=Response, summary="月通报（XLSX）")
def monthly_xlsx(session: Session = UnitOfWork, principal: Principal = Depends(require(P.DQ_READ))) -> Response:
    return Response(service.monthly_xlsx(session, actor_of(principal)), media_type=XLSX,
                    headers={"Content-Disposition": "attachment; filename=dq-monthly.xlsx"})


@router.get("/reports/weekly.xlsx", response_class=Response, summary="周调度：未关闭的重点问题，按责任方和时长（XLSX）")
def weekly_xlsx(session: Session = UnitOfWork, principal: Principal = Depends(require(P.DQ_READ))) -> Response:
    data = service.weekly_xlsx(session, actor_of(principal))
    return Response(data, media_type=XLSX, headers={"Content-Disposition": "attachment; filename=dq-weekly.xlsx"})


@router.get("/reports/monthly.pdf", response_class=Response, summary="月通报（PDF）")
def monthly_pdf(ctx: Context = Depends(context), session: Session = UnitOfWork,
                principal: Principal = Depends(require(P.DQ_READ))) -> Response:
    return Response(service.monthly_pdf(ctx, session, actor_of(principal)), media_type="application/pdf",
                    headers={"Content-Disposition": "inline; filename=dq-monthly.pdf"})


@router.get("/reports/weekly.pdf", response_class=Response, summary="周调度（PDF）")
def weekly_pdf(ctx: Context = Depends(context), session: Session = UnitOfWork,
               principal: Principal = Depends(require(P.DQ_READ))) -> Response:
    return Response(service.weekly_pdf(ctx, session, actor_of(principal)), media_type="application/pdf",
                    headers={"Content-Disposition": "inline; filename=dq-weekly.pdf"})


@router.post("/plans", response_model=PlanOut, status_code=201, responses=_ERRORS,
             summary="编制批量治理方案（须另一人批准后执行；执行前备份原值，可回退）")
def propose_plan(body: PlanIn, session: Session = UnitOfWork,
                 principal: Principal = Depends(require(P.DQ_ASSIGN))) -> PlanOut:
    plan = plans.propose(session, actor_of(principal), body.title, body.reason,
                         [c.model_dump() for c in body.changes])
    return PlanOut.model_validate(plan, from_attributes=True)


@router.get("/plans/{plan_id}", response_model=PlanOut, responses=_ERRORS, summary="一个治理方案")
def get_plan(plan_id: Id, session: Session = UnitOfWork, _: Principal = Depends(require(P.DQ_READ))) -> PlanOut:
    return PlanOut.model_validate(plans.get(session, plan_id), from_attributes=True)


@router.post("/plans/{plan_id}/approve", response_model=PlanOut, responses=_ERRORS, summary="批准（编制人以外）")
def approve_plan(plan_id: Id, session: Session = UnitOfWork,
                 principal: Principal = Depends(require(P.DQ_VERIFY))) -> PlanOut:
    return PlanOut.model_validate(plans.approve(session, actor_of(principal), plan_id), from_attributes=True)


@router.post("/plans/{plan_id}/apply", response_model=PlanOut, responses=_ERRORS, summary="执行（先备份原值）")
def apply_plan(plan_id: Id, session: Session = UnitOfWork,
               principal: Principal = Depends(require(P.DQ_ASSIGN))) -> PlanOut:
    return PlanOut.model_validate(plans.apply(session, actor_of(principal), plan_id), from_attributes=True)


@router.post("/plans/{plan_id}/rollback", response_model=PlanOut, responses=_ERRORS, summary="按备份回退")
def rollback_plan(plan_id: Id, session: Session = UnitOfWork,
                  principal: Principal = Depends(require(P.DQ_ASSIGN))) -> PlanOut:
    return PlanOut.model_validate(plans.rollback(session, actor_of(principal), plan_id), from_attributes=True)
